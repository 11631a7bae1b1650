//! Removal (issue 22, items 2 and 3): the operator removes only what it could
//! have granted, never its own access, and never after a review nobody had
//! time for. Each scenario runs the operator with exactly the chart's RBAC
//! (certification.remediation on), as the ServiceAccount the chart makes, and
//! campaigns scoped by a label on the bindings they review (so no other
//! scenario's campaign picks these ClusterRoleBindings up).

use std::time::Duration;

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::{json, Value};

use crate::support::{cluster::eventually, operator::Operator, scene::Scene, tools};

const WAIT: Duration = Duration::from_secs(90);
/// The label campaigns select their bindings by.
const LABEL: &str = "gh-security-removal";

struct Rig {
    scene: Scene,
    operator: Option<Operator>,
    /// Cluster-scoped objects to delete at the end: (kind, name).
    cluster_scoped: Vec<(&'static str, String)>,
    campaigns: Vec<String>,
}

impl Rig {
    /// A scenario with an operator of its own, installed as the chart installs it.
    async fn new(name: &str) -> Option<Rig> {
        let scene = Scene::with_own_operators(name).await?;
        let mut rig = Rig {
            scene,
            operator: None,
            cluster_scoped: Vec::new(),
            campaigns: Vec::new(),
        };
        rig.install_chart_rbac();
        let ns = rig.scene.ns.clone();
        let kubeconfig = rig.scene.user_kubeconfig(
            &format!("system:serviceaccount:{ns}:gatehouse"),
            &["system:serviceaccounts", &format!("system:serviceaccounts:{ns}")],
        );
        let args = [
            "--leader-election=false",
            "--certification-remediation=true",
            // Short enough for a due time inside the test; campaigns below it are refused.
            "--certification-min-review-window=10s",
        ];
        rig.operator = Some(rig.scene.start_operator(&kubeconfig, "removal", &args).await);
        Some(rig)
    }

    /// The chart's operator RBAC with remediation on, its cluster-scoped names
    /// made unique to this scenario (the chart's ServiceAccount lives in the
    /// scenario's namespace).
    fn install_chart_rbac(&mut self) {
        let ns = self.scene.ns.clone();
        let mut objects = tools::chart_objects(
            &ns,
            &[
                "--show-only",
                "templates/rbac.yaml",
                "--set",
                "certification.remediation=true",
            ],
        );
        let unique = self.operator_binding();
        for o in &mut objects {
            if o["metadata"]["name"] == "gatehouse-operator" {
                o["metadata"]["name"] = json!(unique);
                let kind = if o["kind"] == "ClusterRole" {
                    "ClusterRole"
                } else {
                    "ClusterRoleBinding"
                };
                self.cluster_scoped.push((kind, unique.clone()));
            }
            if o["roleRef"]["name"] == "gatehouse-operator" {
                o["roleRef"]["name"] = json!(unique);
            }
        }
        let list = json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string();
        let kubeconfig = self.scene.cluster.kubeconfig.to_str().unwrap();
        let applied = tools::run(
            "kubectl",
            &["--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-"],
            Some(&list),
        );
        assert!(applied.ok, "applying the chart's RBAC: {}", applied.stderr);
    }

    /// Name of the operator's ClusterRole and ClusterRoleBinding here.
    fn operator_binding(&self) -> String {
        format!("gatehouse-operator-{}", self.scene.ns)
    }

    fn tag(&self, campaign: &str) -> String {
        format!("{campaign}-{}", self.scene.ns)
    }

    fn crbs(&self) -> Api<ClusterRoleBinding> {
        Api::all(self.scene.admin.clone())
    }

    /// A ClusterRoleBinding of `cluster-admin` to a user of this scenario alone
    /// (named after `who`, so that a binding left by a failed run gives no other
    /// suite's user anything), for campaign `tag`.
    async fn cluster_admin_binding(&mut self, tag: &str, who: &str) -> String {
        let name = format!("gh-sec-root-{}", self.tag(tag));
        let who = format!("{who}-{}", self.scene.ns);
        let crb: ClusterRoleBinding = serde_json::from_value(json!({
            "metadata": {"name": name, "labels": {LABEL: self.tag(tag)}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cluster-admin"},
            "subjects": [{"kind": "User", "name": who, "apiGroup": "rbac.authorization.k8s.io"}]
        }))
        .unwrap();
        self.crbs().create(&PostParams::default(), &crb).await.unwrap();
        self.cluster_scoped.push(("ClusterRoleBinding", name.clone()));
        name
    }

    /// A campaign reviewing the bindings labelled for `tag`, its items in the
    /// scenario's namespace, reviewed by group security, removing automatically.
    fn campaign_body(&self, tag: &str, spec: Value) -> Value {
        let mut spec = spec;
        spec["reviewNamespace"] = json!(self.scene.ns);
        spec["remediation"] = json!("Automatic");
        spec["scope"] = json!({"bindingSelector": {"matchLabels": {LABEL: self.tag(tag)}}});
        spec["reviewers"] = json!({"levels": [{"name": "security", "groups": ["security"]}]});
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
               "metadata": {"name": self.tag(tag)}, "spec": spec})
    }

    async fn create_campaign(&mut self, tag: &str, spec: Value) -> Result<String, kube::Error> {
        let c: AccessCampaign = serde_json::from_value(self.campaign_body(tag, spec)).unwrap();
        let made = Api::<AccessCampaign>::all(self.scene.admin.clone())
            .create(&PostParams::default(), &c)
            .await?;
        self.campaigns.push(made.name_any());
        Ok(made.name_any())
    }

    /// The one item of the campaign's run, once launched.
    async fn only_item(&self, campaign: &str) -> AccessCertification {
        let api: Api<AccessCertification> = Api::namespaced(self.scene.admin.clone(), &self.scene.ns);
        let label = format!("gatehouse.dev/campaign={campaign}");
        eventually(&format!("{campaign} to launch one item"), WAIT, || async {
            let mut items = api.list(&ListParams::default().labels(&label)).await.ok()?.items;
            (items.len() == 1).then(|| items.remove(0))
        })
        .await
    }

    /// sam (group security) revokes the item.
    async fn revoke(&self, item: &AccessCertification) {
        // A review lists every group of its reviewer, as the API server knows them.
        let sam = self.scene.cluster.as_user("sam", &["security"]);
        let review: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": format!("{}-sam", item.name_any()), "namespace": self.scene.ns},
            "spec": {"certification": {"name": item.name_any(), "uid": item.uid().unwrap()},
                     "decision": "Revoke", "comment": "not needed",
                     "reviewer": {"username": "sam", "groups": ["security", "system:authenticated"]}}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(sam, &self.scene.ns)
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
    }

    /// The item's `status.remediation` as stored, once the operator wrote one,
    /// after asserting that the ClusterRoleBinding `crb` is still there (an
    /// operator that deleted its own binding cannot write the status at all).
    async fn remediation(&self, item: &AccessCertification, crb: &str) -> Value {
        let api: Api<AccessCertification> = Api::namespaced(self.scene.admin.clone(), &self.scene.ns);
        let name = item.name_any();
        let crbs = self.crbs();
        let rem = eventually(&format!("{name} to have a remediation"), WAIT, || async {
            if crbs.get_opt(crb).await.ok()?.is_none() {
                return Some(None);
            }
            let stored = serde_json::to_value(api.get(&name).await.ok()?).ok()?;
            let rem = stored["status"]["remediation"].clone();
            (!rem.is_null()).then_some(Some(rem))
        })
        .await;
        self.still_there(crb).await;
        rem.unwrap_or_default()
    }

    /// Asserts that the ClusterRoleBinding is still there, now and a few
    /// seconds later (a removal would come right after the decision).
    async fn still_there(&self, name: &str) {
        for _ in 0..2 {
            assert!(
                self.crbs().get_opt(name).await.unwrap().is_some(),
                "ClusterRoleBinding {name} was removed"
            );
            tokio::time::sleep(Duration::from_secs(3)).await;
        }
    }

    async fn finish(mut self) {
        let admin = self.scene.admin.clone();
        for c in &self.campaigns {
            let _ = Api::<AccessCampaign>::all(admin.clone())
                .delete(c, &DeleteParams::default())
                .await;
        }
        self.operator = None;
        for (kind, name) in &self.cluster_scoped {
            let dp = DeleteParams::default();
            let _ = match *kind {
                "ClusterRole" => Api::<ClusterRole>::all(admin.clone())
                    .delete(name, &dp)
                    .await
                    .map(drop),
                _ => Api::<ClusterRoleBinding>::all(admin.clone())
                    .delete(name, &dp)
                    .await
                    .map(drop),
            };
        }
        self.scene.finish().await;
    }
}

/// Asserts that a removal waits for an admin: `Pending`, the typed reason
/// `hold`, the reason in words and the command.
fn waits_for_an_admin(rem: &Value, hold: &str) {
    assert_eq!(rem["state"], "Pending", "{rem:#}");
    assert_eq!(rem["hold"], hold, "{rem:#}");
    assert!(
        rem["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("protected: ")),
        "{rem:#}"
    );
    assert!(
        rem["command"]
            .as_str()
            .is_some_and(|c| c.contains("kubectl") && c.contains("clusterrolebinding")),
        "{rem:#}"
    );
}

#[tokio::test]
async fn a_reviewers_revoke_never_deletes_a_cluster_admin_binding() {
    let Some(mut rig) = Rig::new("sec-rm-admin").await else {
        return;
    };
    let crb = rig.cluster_admin_binding("admin", "frank").await;
    let campaign = rig
        .create_campaign("admin", json!({"duration": "1h"}))
        .await
        .unwrap();
    let item = rig.only_item(&campaign).await;
    rig.revoke(&item).await;
    let rem = rig.remediation(&item, &crb).await;
    waits_for_an_admin(&rem, "ClusterAdminEquivalent");
    rig.finish().await;
}

#[tokio::test]
async fn on_no_decision_revoke_at_the_due_time_never_deletes_a_cluster_admin_binding() {
    let Some(mut rig) = Rig::new("sec-rm-due").await else {
        return;
    };
    let crb = rig.cluster_admin_binding("due", "grace").await;
    let campaign = rig
        .create_campaign("due", json!({"duration": "15s", "onNoDecision": "Revoke"}))
        .await
        .unwrap();
    let item = rig.only_item(&campaign).await;
    let rem = rig.remediation(&item, &crb).await;
    waits_for_an_admin(&rem, "ClusterAdminEquivalent");
    rig.finish().await;
}

#[tokio::test]
async fn a_revoke_of_the_operators_own_binding_never_removes_it() {
    let Some(mut rig) = Rig::new("sec-rm-self").await else {
        return;
    };
    // The operator's ClusterRoleBinding as `gatehouse rbac` (the kustomize
    // install) makes it: no tool's marks, so nothing but the protection keeps
    // it. In the campaign's scope.
    let own = rig.operator_binding();
    let unmarked = json!({"metadata": {"labels": null, "annotations": null}});
    let labels = json!({"metadata": {"labels": {"app.kubernetes.io/name": "gatehouse",
        "app.kubernetes.io/component": "operator", LABEL: rig.tag("self")}}});
    for patch in [unmarked, labels] {
        rig.crbs()
            .patch(&own, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }
    let campaign = rig
        .create_campaign("self", json!({"duration": "1h"}))
        .await
        .unwrap();
    let item = rig.only_item(&campaign).await;
    assert_eq!(item.spec.subject.name, "gatehouse");
    rig.revoke(&item).await;
    let rem = rig.remediation(&item, &own).await;
    waits_for_an_admin(&rem, "OperatorIdentity");
    rig.finish().await;
}

#[tokio::test]
async fn a_review_window_below_the_minimum_is_refused() {
    let Some(mut rig) = Rig::new("sec-rm-window").await else {
        return;
    };
    // No time at all: the API server refuses it.
    let zero = rig.create_campaign("zero", json!({"duration": "0s"})).await;
    let refused = zero.expect_err("a campaign with a zero review window was accepted");
    assert!(refused.to_string().contains("reviewers need time"), "{refused}");
    // Below the operator's minimum (10s here, one hour by default): not Ready,
    // and no run starts.
    let short = rig
        .create_campaign("short", json!({"duration": "5s", "onNoDecision": "Revoke"}))
        .await
        .unwrap();
    let api = Api::<AccessCampaign>::all(rig.scene.admin.clone());
    let status = eventually("the short campaign to be judged", WAIT, || async {
        let status = api.get(&short).await.ok()?.status?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready")
            .then_some(status)
    })
    .await;
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!(
        (format!("{:?}", ready.status), ready.reason.as_str()),
        ("False".to_string(), "ReviewWindowTooShort"),
        "{ready:?}"
    );
    assert!(ready.message.contains("shorter than"), "{}", ready.message);
    assert!(status.runs.is_empty(), "a run started: {:?}", status.runs);
    rig.finish().await;
}
