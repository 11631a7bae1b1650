//! Launching a campaign run when tenants write the bindings (issue 22, items 4-6):
//! one bad binding must not stop the run, reviews must not grow an item without
//! bound, a squatted item name must not pass for the item, and standing access
//! must not hide behind names or labels a tenant chooses.
//!
//! Each scenario runs its own operator (admin rights, fenced to the scenario's
//! namespace), a campaign without a schedule (it runs once, at once) over the
//! bindings labelled for it, its items in the scenario's namespace. Campaign
//! status is read as JSON, so that these tests compile against any version of
//! the API types.

use std::time::Duration;

use gatehouse::{
    api::{AccessCampaign, AccessCertification, AccessReview, Subject, SubjectKind},
    certify::{
        inventory::BindingFacts,
        naming::{item_name, run_name},
    },
};
use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    events::v1::Event,
    rbac::v1::RoleBinding,
};
use kube::{
    api::{Api, ApiResource, DeleteParams, DynamicObject, ListParams, PostParams},
    Client, ResourceExt,
};
use serde_json::{json, Value};

use crate::support::{cluster::eventually, operator::Operator, scene::Scene};

const WAIT: Duration = Duration::from_secs(60);
/// The label that puts a binding in a scenario's campaign.
const SCOPE_LABEL: &str = "gh-security-launch";

struct Launch {
    scene: Scene,
    operator: Option<Operator>,
    /// Namespaces made besides the scenario's own, deleted at the end.
    extra: Vec<String>,
}

impl Launch {
    async fn new(name: &str) -> Option<Launch> {
        let scene = Scene::with_own_operators(name).await?;
        Some(Launch {
            scene,
            operator: None,
            extra: Vec::new(),
        })
    }

    async fn start_operator(&mut self) {
        let kubeconfig = self.scene.operator_kubeconfig();
        let operator = self
            .scene
            .start_operator(&kubeconfig, "launch", &["--leader-election=false"])
            .await;
        self.operator = Some(operator);
    }

    fn admin(&self) -> Client {
        self.scene.admin.clone()
    }

    fn ns(&self) -> &str {
        &self.scene.ns
    }

    /// A namespace the scenario's operator may read but not write (the fence
    /// covers only the scenario's own): what a tenant owns.
    async fn tenant_namespace(&mut self) -> String {
        let name = format!("{}-tenant", self.ns());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        Api::<Namespace>::all(self.admin())
            .create(&PostParams::default(), &ns)
            .await
            .unwrap();
        self.extra.push(name.clone());
        name
    }

    /// A RoleBinding of ClusterRole `role` in `ns`, in this scenario's campaign;
    /// `meta` adds labels, annotations or owner references.
    async fn binding(&self, ns: &str, name: &str, role: &str, subjects: Value, meta: Value) -> RoleBinding {
        let mut metadata = json!({"name": name, "labels": {SCOPE_LABEL: self.ns()}});
        for (k, v) in meta.as_object().into_iter().flatten() {
            match v.as_object() {
                Some(fields) => {
                    for (kk, vv) in fields {
                        metadata[k][kk] = vv.clone();
                    }
                }
                None => metadata[k] = v.clone(),
            }
        }
        let rb: RoleBinding = serde_json::from_value(json!({"metadata": metadata, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}}))
        .unwrap();
        Api::<RoleBinding>::namespaced(self.admin(), ns)
            .create(&PostParams::default(), &rb)
            .await
            .unwrap()
    }

    /// A campaign without a schedule over this scenario's bindings, reviewed by
    /// sam at one level; returns it as created.
    async fn campaign(&self, suffix: &str, extra: Value) -> AccessCampaign {
        let mut spec = json!({
            "reviewNamespace": self.ns(),
            "duration": "1h",
            "justification": "Optional",
            "scope": {"bindingSelector": {"matchLabels": {SCOPE_LABEL: self.ns()}}},
            "reviewers": {"levels": [{"name": "security", "users": ["sam"]}]}
        });
        for (k, v) in extra.as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        let c: AccessCampaign = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
            "metadata": {"name": format!("{}-{suffix}", self.ns())}, "spec": spec
        }))
        .unwrap();
        Api::<AccessCampaign>::all(self.admin())
            .create(&PostParams::default(), &c)
            .await
            .unwrap()
    }

    /// The campaign as JSON (fields of any version of the API).
    async fn campaign_json(&self, name: &str) -> Option<Value> {
        let ar = ApiResource::erase::<AccessCampaign>(&());
        let api: Api<DynamicObject> = Api::all_with(self.admin(), &ar);
        serde_json::to_value(api.get(name).await.ok()?).ok()
    }

    /// The last run of the campaign, once it has launched.
    async fn launched_run(&self, campaign: &str) -> Value {
        eventually(&format!("a run of {campaign} to launch"), WAIT, || async {
            let c = self.campaign_json(campaign).await?;
            let run = c["status"]["runs"].as_array()?.last()?.clone();
            run.get("launchedAt").filter(|t| !t.is_null())?;
            Some(run)
        })
        .await
    }

    fn items(&self) -> Api<AccessCertification> {
        Api::namespaced(self.admin(), self.ns())
    }

    /// The items the operator made for the campaign.
    async fn items_of(&self, campaign: &str) -> Vec<AccessCertification> {
        let label = format!("gatehouse.dev/campaign={campaign}");
        self.items()
            .list(&ListParams::default().labels(&label))
            .await
            .unwrap()
            .items
    }

    async fn item_json(&self, name: &str) -> Option<Value> {
        let ar = ApiResource::erase::<AccessCertification>(&());
        let api: Api<DynamicObject> = Api::namespaced_with(self.admin(), self.ns(), &ar);
        serde_json::to_value(api.get(name).await.ok()?).ok()
    }

    /// A review of `item` by `who` (in `groups`), as `who`.
    async fn review(
        &self,
        name: &str,
        item: &AccessCertification,
        uid: &str,
        who: &str,
        groups: &[&str],
        decision: &str,
    ) {
        // A review of an item lists every group of its author.
        let all: Vec<&str> = groups.iter().copied().chain(["system:authenticated"]).collect();
        let review: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": name, "namespace": self.ns()},
            "spec": {"certification": {"name": item.name_any(), "uid": uid}, "decision": decision,
                     "comment": "reviewed", "reviewer": {"username": who, "groups": all}}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(self.scene.cluster.as_user(who, groups), self.ns())
            .create(&PostParams::default(), &review)
            .await
            .unwrap_or_else(|e| panic!("review {name} by {who}: {e}"));
    }

    async fn finish(mut self, campaigns: &[&str]) {
        for c in campaigns {
            let _ = Api::<AccessCampaign>::all(self.admin())
                .delete(c, &DeleteParams::default())
                .await;
        }
        for ns in &self.extra {
            let _ = Api::<Namespace>::all(self.admin())
                .delete(ns, &DeleteParams::default())
                .await;
        }
        self.operator = None;
        self.scene.finish().await;
    }
}

fn user(name: &str) -> Value {
    json!([{"kind": "User", "name": name, "apiGroup": "rbac.authorization.k8s.io"}])
}

/// A RoleBinding whose subject name is longer than an item may hold (RBAC
/// accepts it) used to fail the whole launch, for ever: the run must launch
/// the other bindings and list the bad one with its reason.
#[tokio::test]
async fn a_binding_that_cannot_become_an_item_does_not_stop_the_run() {
    let Some(mut t) = Launch::new("sec-launch-skip").await else {
        return;
    };
    t.start_operator().await;
    let ns = t.ns().to_string();
    let long = format!("user-{}", "x".repeat(295));
    t.binding(&ns, "fine-ann", "view", user("ann"), json!({})).await;
    t.binding(&ns, "bad-subject", "view", user(&long), json!({}))
        .await;
    t.binding(&ns, "fine-ben", "view", user("ben"), json!({})).await;
    let campaign = t.campaign("skip", json!({})).await.name_any();

    let run = t.launched_run(&campaign).await;
    let mut subjects: Vec<String> = t
        .items_of(&campaign)
        .await
        .iter()
        .map(|i| i.spec.subject.name.clone())
        .collect();
    subjects.sort();
    assert_eq!(subjects, ["ann", "ben"], "the other bindings became items");
    assert_eq!(run["items"], 2, "{run:#}");
    assert_eq!(run["skipped"], 1, "one binding skipped: {run:#}");
    let skip = &run["skippedItems"][0];
    assert!(
        skip["binding"]
            .as_str()
            .unwrap_or_default()
            .contains("bad-subject"),
        "the skipped binding is named: {run:#}"
    );
    assert_eq!(skip["reason"], "Invalid", "{run:#}");
    assert!(
        skip["message"].as_str().unwrap_or_default().contains("253"),
        "the reason says what is wrong: {run:#}"
    );
    t.finish(&[&campaign]).await;
}

/// Hundreds of reviews naming a wrong uid (anyone who may file a review can
/// write them) used to grow the item's status by one record each, towards
/// etcd's 1.5 MiB object limit: the status must stay small, count them, and
/// the item must still be decided by its reviewer.
#[tokio::test]
async fn many_ignored_reviews_keep_an_item_small_and_decidable() {
    const IGNORED: usize = 300;
    let Some(mut t) = Launch::new("sec-launch-flood").await else {
        return;
    };
    t.start_operator().await;
    let ns = t.ns().to_string();
    t.binding(&ns, "flooded", "view", user("ann"), json!({})).await;
    let campaign = t.campaign("flood", json!({})).await.name_any();
    t.launched_run(&campaign).await;
    let item = t.items_of(&campaign).await.remove(0);

    // A requester with a long name, filing reviews with long names and a wrong uid.
    let who = format!("mallory-{}", "m".repeat(180));
    let reviews = Api::<AccessReview>::namespaced(t.scene.cluster.as_user(&who, &["developers"]), &ns);
    let mut creates = Vec::new();
    for n in 0..IGNORED {
        let review: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": format!("flood-{}-{n:04}", "f".repeat(230)), "namespace": ns},
            "spec": {"certification": {"name": item.name_any(), "uid": "00000000-0000-0000-0000-000000000000"},
                     "decision": "Approve", "comment": "c".repeat(500),
                     "reviewer": {"username": who, "groups": ["developers", "system:authenticated"]}}
        }))
        .unwrap();
        let api = reviews.clone();
        creates.push(async move { api.create(&PostParams::default(), &review).await.map(drop) });
    }
    let results = futures::future::join_all(creates).await;
    let refused: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();
    assert!(refused.is_empty(), "filing the reviews: {refused:?}");

    let name = item.name_any();
    let seen = eventually("the item to have seen every ignored review", WAIT, || async {
        let i = t.item_json(&name).await?;
        let status = &i["status"];
        let listed = status["decisions"].as_array().map_or(0, Vec::len);
        let counted = status["ignoredReviews"].as_u64().unwrap_or(0) as usize;
        (listed >= IGNORED || counted >= IGNORED).then(|| status.clone())
    })
    .await;
    let size = serde_json::to_vec(&seen).unwrap().len();
    let listed = seen["decisions"].as_array().map_or(0, Vec::len);
    assert!(
        listed <= 50,
        "{listed} decision records kept for {IGNORED} ignored reviews ({size} bytes of status)"
    );
    assert!(size < 64 * 1024, "the status is {size} bytes");
    assert_eq!(seen["ignoredReviews"], IGNORED, "every ignored review counted");

    // The reviewer still decides the item.
    t.review(
        "sam-approves",
        &item,
        &item.uid().unwrap(),
        "sam",
        &["security"],
        "Approve",
    )
    .await;
    eventually("sam's approval to decide the item", WAIT, || async {
        let i = t.item_json(&name).await?;
        (i["status"]["decision"] == "Approved").then_some(())
    })
    .await;
    t.finish(&[&campaign]).await;
}

/// Whoever may create AccessCertifications in the review namespace can create
/// one first under the name the operator will give an item: that item must not
/// pass for the operator's (counted as created), and the conflict must show.
#[tokio::test]
async fn a_squatted_item_name_is_a_recorded_conflict() {
    let Some(mut t) = Launch::new("sec-launch-squat").await else {
        return;
    };
    let ns = t.ns().to_string();
    let target = t.binding(&ns, "squatted", "edit", user("ann"), json!({})).await;
    t.binding(&ns, "plain", "view", user("ben"), json!({})).await;
    // The operator is not running yet: the squatter goes first.
    let campaign = t.campaign("squat", json!({})).await;
    let started = campaign.metadata.creation_timestamp.clone().unwrap();
    let started = chrono::DateTime::from_timestamp(started.0.as_second(), 0).unwrap();
    let run = run_name(&campaign.name_any(), started);
    let facts = BindingFacts {
        kind: gatehouse::api::BindingKind::RoleBinding,
        namespace: Some(ns.clone()),
        name: "squatted".into(),
        uid: target.uid().unwrap(),
        ..Default::default()
    };
    let ann = Subject {
        kind: SubjectKind::User,
        name: "ann".into(),
        namespace: None,
    };
    let squat_name = item_name(&run, &facts, &ann);
    let squat: AccessCertification = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
        "metadata": {"name": squat_name, "namespace": ns,
                     "labels": {"gatehouse.dev/campaign": campaign.name_any(), "gatehouse.dev/run": run}},
        "spec": {"campaign": campaign.name_any(), "run": run,
                 "startedAt": started, "dueAt": started + chrono::Duration::hours(1),
                 "binding": {"kind": "RoleBinding", "namespace": ns, "name": "squatted", "uid": target.uid().unwrap()},
                 "subject": {"kind": "User", "name": "ann"},
                 "roleRef": {"kind": "ClusterRole", "name": "view"},
                 "rulesDigest": "none",
                 "review": {"levels": [{"name": "security", "reviewers": {"users": ["mallory"]}}]}}
    }))
    .unwrap();
    t.items().create(&PostParams::default(), &squat).await.unwrap();

    t.start_operator().await;
    let launched = t.launched_run(&campaign.name_any()).await;
    assert_eq!(
        launched["items"], 1,
        "the squatted item is not counted as created: {launched:#}"
    );
    let conflicts: Vec<&Value> = launched["skippedItems"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|s| s["reason"] == "NameConflict")
        .collect();
    assert_eq!(conflicts.len(), 1, "the conflict is recorded: {launched:#}");
    assert!(
        conflicts[0]["binding"]
            .as_str()
            .unwrap_or_default()
            .contains("squatted"),
        "{launched:#}"
    );
    let events: Api<Event> = Api::namespaced(t.admin(), &ns);
    eventually("a Warning Event on the squatted item", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items
            .into_iter()
            .find(|e| {
                e.reason.as_deref() == Some("ItemConflict")
                    && e.type_.as_deref() == Some("Warning")
                    && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(squat_name.as_str())
            })
            .map(drop)
    })
    .await;
    t.finish(&[&campaign.name_any()]).await;
}

/// Three `edit` bindings a tenant wrote in her namespace used to make no item
/// at all: one named `system:...`, one whose subject is a ServiceAccount written
/// as a `User`, one wearing Gatehouse's grant labels without a request. Each
/// must be reviewed (the ServiceAccount as the ServiceAccount it is).
#[tokio::test]
async fn standing_access_cannot_hide_behind_system_names_or_gatehouse_labels() {
    let Some(mut t) = Launch::new("sec-launch-hide").await else {
        return;
    };
    t.start_operator().await;
    let tenant = t.tenant_namespace().await;
    let sa: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "builder"}})).unwrap();
    Api::<ServiceAccount>::namespaced(t.admin(), &tenant)
        .create(&PostParams::default(), &sa)
        .await
        .unwrap();
    t.binding(&tenant, "system:teamx-ops", "edit", user("carl"), json!({}))
        .await;
    t.binding(
        &tenant,
        "builder-edit",
        "edit",
        user(&format!("system:serviceaccount:{tenant}:builder")),
        json!({}),
    )
    .await;
    let in_future = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339();
    t.binding(
        &tenant,
        "gatehouse-looking",
        "edit",
        user("dora"),
        json!({
            "labels": {"app.kubernetes.io/managed-by": "gatehouse",
                       "gatehouse.dev/request-namespace": tenant,
                       "gatehouse.dev/request-name": "r".repeat(63),
                       "gatehouse.dev/request-uid": "0b5e0b5e-0000-4000-8000-000000000000"},
            "annotations": {"gatehouse.dev/expires-at": in_future}
        }),
    )
    .await;
    let campaign = t.campaign("hide", json!({})).await.name_any();
    let run = t.launched_run(&campaign).await;
    let mut items: Vec<(String, String, String)> = t
        .items_of(&campaign)
        .await
        .iter()
        .map(|i| {
            (
                i.spec.binding.name.clone(),
                format!("{:?}", i.spec.subject.kind),
                i.spec.subject.name.clone(),
            )
        })
        .collect();
    items.sort();
    assert_eq!(
        items,
        [
            ("builder-edit".into(), "ServiceAccount".into(), "builder".into()),
            ("gatehouse-looking".into(), "User".into(), "dora".into()),
            ("system:teamx-ops".into(), "User".into(), "carl".into()),
        ],
        "every hidden binding is reviewed: {run:#}"
    );
    t.finish(&[&campaign]).await;
}

/// A binding that wears Gatehouse's grant labels (with a request name of 63
/// characters, which memory cannot look up) but belongs to no request is an
/// orphan: the sweep removes it instead of keeping it for its labels.
#[tokio::test]
async fn a_binding_with_gatehouse_labels_but_no_request_is_swept() {
    let Some(mut t) = Launch::new("sec-launch-sweep").await else {
        return;
    };
    t.start_operator().await;
    let ns = t.ns().to_string();
    let in_future = (chrono::Utc::now() + chrono::Duration::days(365)).to_rfc3339();
    t.binding(
        &ns,
        "fake-grant",
        "edit",
        user("dora"),
        json!({
            "labels": {"app.kubernetes.io/managed-by": "gatehouse",
                       "gatehouse.dev/request-namespace": ns,
                       "gatehouse.dev/request-name": "r".repeat(63),
                       "gatehouse.dev/request-uid": "0b5e0b5e-0000-4000-8000-000000000000"},
            "annotations": {"gatehouse.dev/expires-at": in_future}
        }),
    )
    .await;
    let bindings: Api<RoleBinding> = Api::namespaced(t.admin(), &ns);
    // The sweep runs every 5 s in these tests.
    eventually(
        "the sweep to remove the orphaned binding",
        Duration::from_secs(30),
        || async {
            matches!(bindings.get("fake-grant").await, Err(kube::Error::Api(s)) if s.code == 404)
                .then_some(())
        },
    )
    .await;
    t.finish(&[]).await;
}

/// One label Helm charts and Argo CD both write (`app.kubernetes.io/instance`)
/// used to make a binding `ManagedExternally`, which the operator never
/// removes: a tool's full marks are needed.
#[tokio::test]
async fn one_instance_label_does_not_make_a_binding_managed_externally() {
    let Some(mut t) = Launch::new("sec-launch-marks").await else {
        return;
    };
    t.start_operator().await;
    let ns = t.ns().to_string();
    t.binding(
        &ns,
        "instance-only",
        "view",
        user("ann"),
        json!({"labels": {"app.kubernetes.io/instance": "whatever"}}),
    )
    .await;
    t.binding(
        &ns,
        "real-helm",
        "view",
        user("ben"),
        json!({"labels": {"app.kubernetes.io/managed-by": "Helm"},
               "annotations": {"meta.helm.sh/release-name": "ledger", "meta.helm.sh/release-namespace": ns}}),
    )
    .await;
    let campaign = t.campaign("marks", json!({})).await.name_any();
    t.launched_run(&campaign).await;
    let mut states = Vec::new();
    for item in t.items_of(&campaign).await {
        t.review(
            &format!("sam-revokes-{}", item.spec.binding.name),
            &item,
            &item.uid().unwrap(),
            "sam",
            &["security"],
            "Revoke",
        )
        .await;
        let name = item.name_any();
        let state = eventually("the revoke's remediation", WAIT, || async {
            let i = t.item_json(&name).await?;
            i["status"]["remediation"]["state"].as_str().map(str::to_string)
        })
        .await;
        states.push((item.spec.binding.name.clone(), state));
    }
    states.sort();
    assert_eq!(
        states,
        [
            ("instance-only".into(), "Pending".into()),
            ("real-helm".into(), "ManagedExternally".into()),
        ]
    );
    t.finish(&[&campaign]).await;
}
