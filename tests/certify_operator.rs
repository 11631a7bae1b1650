//! The certification item reconcile against an in-process fake API server:
//! a final revoke removes exactly that subject (or the binding it was alone in),
//! or, when the operator may not or must not, leaves the exact command for an
//! admin; a failed write says so and is retried; an item the operator did not
//! issue decides nothing. (Campaign runs, launches and the API server's own
//! refusals are in tests/e2e_certify.rs, on a real API server.)

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc, Mutex,
};

use chrono::{DateTime, Utc};
use gatehouse::{
    api::{
        AccessCampaign, AccessCertification, AccessCertificationStatus, AccessReview, RemediationHold,
        RemediationState,
    },
    certify::{
        inventory::Observed, issue::spec_digest, scope, Inventory, OperatorIdentity, RunPlan, RunTrigger,
    },
    controller::{
        certify::{self, Settings},
        watch::load_once,
    },
    metrics::Metrics,
    store::{Cache, Writers},
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{
    api::{Api, PostParams},
    runtime::watcher::Event,
    Client, ResourceExt,
};
use kube_fake_client::interceptor::Funcs;
use serde_json::{json, Value};

mod support;
use support::fake::{fake_api, stamp};

const NS: &str = "payments";

fn at(s: &str) -> DateTime<Utc> {
    format!("2026-10-{s}:00Z").parse().unwrap()
}

fn binding(name: &str, subjects: &[&str]) -> Value {
    let subjects: Vec<Value> = subjects
        .iter()
        .map(|s| json!({"kind": "User", "name": s, "apiGroup": "rbac.authorization.k8s.io"}))
        .collect();
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"), "resourceVersion": "7",
                        "creationTimestamp": "2026-03-01T10:00:00Z"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
           "subjects": subjects})
}

fn edit_role() -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
           "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]})
}

fn campaign(remediation: &str) -> AccessCampaign {
    let mut c: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": "quarterly", "uid": "uid-campaign"},
        "spec": {"remediation": remediation, "reviewNamespace": NS,
                 "reviewers": {"levels": [{"name": "owners", "groups": ["owners"]}, {"name": "security", "groups": ["security"]}]}},
        "status": {"runs": [{"name": "quarterly-20261001-0700", "startedAt": "2026-10-01T07:00:00Z",
                             "dueAt": "2026-10-15T07:00:00Z", "items": 0, "approved": 0, "revoked": 0,
                             "unreviewed": 0, "remediated": 0, "launchedAt": "2026-10-01T07:00:05Z"}]}
    }))
    .unwrap();
    c.metadata.creation_timestamp = Some(stamp(at("01T00:00")));
    c
}

struct Rig {
    /// What the fake answers when the operator asks whether it may bind a role.
    bindable: Arc<AtomicBool>,
    client: Client,
    cache: Arc<Cache>,
    writers: tokio::sync::Mutex<Writers>,
    ctx: Arc<certify::Context>,
    campaign: AccessCampaign,
}

impl Rig {
    /// A fake holding `bindings` and the `edit` ClusterRole, a campaign in memory
    /// (the fake cannot store a cluster-scoped custom resource), the clock at
    /// 10-04 00:00.
    async fn new(bindings: Vec<Value>, remediation: &str, settings: Settings, funcs: Funcs) -> Rig {
        let mut objects = bindings;
        objects.push(edit_role());
        // The API server's answer to a SelfSubjectAccessReview for `bind`.
        let bindable = Arc::new(AtomicBool::new(true));
        let answer = bindable.clone();
        let funcs = funcs.create(move |c| {
            if c.object["kind"] != "SelfSubjectAccessReview" {
                return Ok(None);
            }
            let mut review = c.object.clone();
            review["status"] = json!({"allowed": answer.load(Ordering::SeqCst)});
            Ok(Some(review))
        });
        let client = fake_api(objects, funcs).await;
        let (cache, mut writers) = Cache::new();
        let campaign = campaign(remediation);
        writers
            .campaigns
            .apply_watcher_event(&Event::Apply(campaign.clone()));
        let clock = Arc::new(Mutex::new(at("04T00:00")));
        let mut ctx = certify::Context::new(
            client.clone(),
            cache.clone(),
            Arc::new(Metrics::default()),
            Arc::new(move || *clock.lock().unwrap()),
            settings,
        );
        ctx.identity = Some(OperatorIdentity::default_install());
        let rig = Rig {
            bindable,
            client,
            cache,
            writers: tokio::sync::Mutex::new(writers),
            ctx: Arc::new(ctx),
            campaign,
        };
        rig.fill().await;
        rig
    }

    /// What synced watches would hold now.
    async fn fill(&self) {
        let w = &mut *self.writers.lock().await;
        let (client, cache) = (&self.client, &self.cache);
        load_once(client, cache, &mut w.role_bindings).await.unwrap();
        load_once(client, cache, &mut w.cluster_roles).await.unwrap();
        load_once(client, cache, &mut w.reviews).await.unwrap();
        load_once(client, cache, &mut w.items).await.unwrap();
    }

    /// The run's item for `subject`, as the operator issues it (owned by the
    /// campaign, with the digest of its spec in its status), stored in the fake.
    async fn item(&self, subject: &str, forged: bool) -> AccessCertification {
        self.item_as(subject, if forged { Forgery::NoOwner } else { Forgery::None })
            .await
    }

    /// The run's item for `subject`, forged as `forgery` says.
    async fn item_as(&self, subject: &str, forgery: Forgery) -> AccessCertification {
        let mut inv = Inventory::observing(&[Observed::ClusterRoles]);
        for b in self.cache.role_bindings.state() {
            inv.add_role_binding(&b);
        }
        for r in self.cache.cluster_roles.state() {
            inv.add_cluster_role(&r);
        }
        let plan = RunPlan {
            campaign: "quarterly".into(),
            name: "quarterly-20261001-0700".into(),
            started_at: at("01T07:00"),
            due_at: at("15T07:00"),
            trigger: RunTrigger::Scheduled,
        };
        let mut item = scope::launch(&self.campaign, &plan, &inv)
            .items
            .into_iter()
            .find(|i| i.spec.subject.name == subject)
            .unwrap();
        item.metadata.uid = Some(format!("uid-item-{subject}"));
        item.metadata.creation_timestamp = Some(stamp(at("01T07:00")));
        let digest = Some(spec_digest(&item.spec));
        item.status = Some(AccessCertificationStatus {
            issued_digest: digest,
            ..Default::default()
        });
        let mut ns = NS;
        match forgery {
            Forgery::None => {}
            Forgery::NoOwner => item.metadata.owner_references = None,
            Forgery::NoDigest => item.status = None,
            Forgery::OtherNamespace(other) => ns = other,
        }
        item.metadata.namespace = Some(ns.to_string());
        Api::<AccessCertification>::namespaced(self.client.clone(), ns)
            .create(&PostParams::default(), &item)
            .await
            .unwrap()
    }

    /// owners, then security, revoke the item.
    async fn revoke_at_both_levels(&self, item: &AccessCertification) {
        for (who, group, day) in [("olaf", "owners", "02T09:00"), ("sam", "security", "03T09:00")] {
            let mut r: AccessReview = serde_json::from_value(json!({
                "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
                "metadata": {"name": format!("{}-{who}", item.name_any()), "namespace": NS},
                "spec": {"certification": {"name": item.name_any(), "uid": item.uid().unwrap()}, "decision": "Revoke",
                         "reviewer": {"username": who, "groups": [group]}}
            }))
            .unwrap();
            r.metadata.creation_timestamp = Some(stamp(at(day)));
            Api::<AccessReview>::namespaced(self.client.clone(), NS)
                .create(&PostParams::default(), &r)
                .await
                .unwrap();
        }
    }

    /// One reconcile of the item, on what memory holds after filling it.
    async fn reconcile(&self, item: &AccessCertification) -> AccessCertification {
        self.fill().await;
        let current = self
            .cache
            .items
            .get(&kube::runtime::reflector::ObjectRef::from_obj(item))
            .unwrap();
        certify::reconcile_item(current, self.ctx.clone()).await.unwrap();
        Api::<AccessCertification>::namespaced(self.client.clone(), NS)
            .get(&item.name_any())
            .await
            .unwrap()
    }

    async fn subjects(&self, name: &str) -> Option<Vec<String>> {
        let rb = Api::<RoleBinding>::namespaced(self.client.clone(), NS)
            .get_opt(name)
            .await
            .unwrap()?;
        Some(
            rb.subjects
                .unwrap_or_default()
                .into_iter()
                .map(|s| s.name)
                .collect(),
        )
    }
}

/// How a test item differs from one the operator issued.
#[derive(Clone, Copy)]
enum Forgery {
    None,
    /// No owner reference to the campaign.
    NoOwner,
    /// Owned by the campaign, but without the digest the operator records.
    NoDigest,
    /// Owned, with the right digest, but in another namespace than the campaign's review namespace.
    OtherNamespace(&'static str),
}

fn remediation(item: &AccessCertification) -> gatehouse::api::RemediationStatus {
    item.status.clone().unwrap().remediation.unwrap()
}

fn automatic() -> Settings {
    Settings {
        remediation: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn a_final_revoke_removes_exactly_that_subject_and_records_it() {
    let rig = Rig::new(
        vec![binding("devs-edit", &["bob", "carol", "dana"])],
        "Automatic",
        automatic(),
        Funcs::new(),
    )
    .await;
    let carol = rig.item("carol", false).await;
    rig.revoke_at_both_levels(&carol).await;
    let done = rig.reconcile(&carol).await;
    assert_eq!(rig.subjects("devs-edit").await.unwrap(), ["bob", "dana"]);
    let rem = remediation(&done);
    assert_eq!(rem.state, RemediationState::Done);
    assert_eq!(
        rem.message,
        "the operator removed User carol from RoleBinding payments/devs-edit"
    );
    assert!(rem.command.is_none());
    let reviews = Api::<AccessReview>::namespaced(rig.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    for r in reviews.items {
        let v = r.status.clone().unwrap();
        assert_eq!(
            (v.accepted, v.reason.map(|r| r.as_str())),
            (Some(true), Some("Decided")),
            "{}",
            r.name_any()
        );
    }
    // Nothing more to do: the next reconcile writes nothing and removes nobody else.
    let again = rig.reconcile(&done).await;
    assert_eq!(again.status, done.status);
    assert_eq!(rig.subjects("devs-edit").await.unwrap(), ["bob", "dana"]);
}

#[tokio::test]
async fn the_only_subject_goes_with_its_binding_and_the_item_stays_done() {
    let rig = Rig::new(
        vec![binding("carol-edit", &["carol"])],
        "Automatic",
        automatic(),
        Funcs::new(),
    )
    .await;
    let carol = rig.item("carol", false).await;
    rig.revoke_at_both_levels(&carol).await;
    let done = rig.reconcile(&carol).await;
    assert!(rig.subjects("carol-edit").await.is_none(), "binding deleted");
    let rem = remediation(&done);
    assert_eq!(rem.state, RemediationState::Done);
    assert!(
        rem.message
            .contains("deleted RoleBinding payments/carol-edit (its only subject was User carol)"),
        "{}",
        rem.message
    );
    // With the binding gone from memory too, the item does not turn Gone.
    let later = rig.reconcile(&done).await;
    assert_eq!(remediation(&later).state, RemediationState::Done);
}

#[tokio::test]
async fn with_remediation_off_every_removal_waits_for_an_admin_with_the_command() {
    let rig = Rig::new(
        vec![binding("devs-edit", &["bob", "carol"])],
        "Automatic",
        Settings::default(),
        Funcs::new(),
    )
    .await;
    let carol = rig.item("carol", false).await;
    rig.revoke_at_both_levels(&carol).await;
    let pending = rig.reconcile(&carol).await;
    assert_eq!(
        rig.subjects("devs-edit").await.unwrap(),
        ["bob", "carol"],
        "untouched"
    );
    let rem = remediation(&pending);
    assert_eq!(rem.state, RemediationState::Pending);
    assert!(
        rem.message.contains("certification.remediation: false"),
        "{}",
        rem.message
    );
    let command = rem.command.unwrap();
    assert!(
        command.starts_with("kubectl patch rolebinding/devs-edit -n payments --type json -p '["),
        "{command}"
    );
    assert!(
        command.contains(r#"{"op":"test","path":"/metadata/uid","value":"uid-devs-edit"}"#),
        "{command}"
    );
    assert!(
        command.contains(r#"{"op":"remove","path":"/subjects/1"}"#),
        "{command}"
    );

    // remediation: Manual says the same, whatever the operator may do.
    let manual = Rig::new(
        vec![binding("devs-edit", &["bob", "carol"])],
        "Manual",
        automatic(),
        Funcs::new(),
    )
    .await;
    let carol = manual.item("carol", false).await;
    manual.revoke_at_both_levels(&carol).await;
    let rem = remediation(&manual.reconcile(&carol).await);
    assert!(
        rem.message.starts_with("to do by hand (remediation: Manual)"),
        "{}",
        rem.message
    );
    assert!(rem.command.is_some());
    assert_eq!(manual.subjects("devs-edit").await.unwrap(), ["bob", "carol"]);
}

#[tokio::test]
async fn a_failed_removal_is_recorded_and_retried() {
    let broken = Arc::new(AtomicBool::new(true));
    let flag = broken.clone();
    let funcs = Funcs::new().patch(move |_| match flag.load(Ordering::SeqCst) {
        true => Err(kube_fake_client::Error::Internal("etcd leader changed".into())),
        false => Ok(None),
    });
    let rig = Rig::new(
        vec![binding("devs-edit", &["bob", "carol"])],
        "Automatic",
        automatic(),
        funcs,
    )
    .await;
    let carol = rig.item("carol", false).await;
    rig.revoke_at_both_levels(&carol).await;
    let failed = rig.reconcile(&carol).await;
    let rem = remediation(&failed);
    assert_eq!(rem.state, RemediationState::Failed);
    assert!(
        rem.message == "could not remove the access: etcd leader changed (HTTP 500); retrying",
        "{}",
        rem.message
    );
    assert!(rem.command.is_some(), "an admin can do it meanwhile");
    assert_eq!(
        rig.ctx
            .metrics
            .certification_remediations
            .get_or_create(&gatehouse::metrics::ResultLabel {
                result: "failed".into()
            })
            .get(),
        1
    );

    broken.store(false, Ordering::SeqCst);
    let done = rig.reconcile(&failed).await;
    assert_eq!(remediation(&done).state, RemediationState::Done);
    assert_eq!(rig.subjects("devs-edit").await.unwrap(), ["bob"]);
}

#[tokio::test]
async fn a_role_the_operator_may_not_bind_is_never_removed_not_even_by_a_delete() {
    // Kubernetes checks `bind` for a patch of a binding but not for a delete:
    // the operator asks first, and removes only what it could have granted.
    let rig = Rig::new(
        vec![binding("carol-edit", &["carol"])],
        "Automatic",
        automatic(),
        Funcs::new(),
    )
    .await;
    rig.bindable.store(false, Ordering::SeqCst);
    let carol = rig.item("carol", false).await;
    rig.revoke_at_both_levels(&carol).await;
    let held = rig.reconcile(&carol).await;
    assert_eq!(
        rig.subjects("carol-edit").await.unwrap(),
        ["carol"],
        "not deleted"
    );
    let rem = remediation(&held);
    assert_eq!(
        (rem.state, rem.hold),
        (RemediationState::Pending, Some(RemediationHold::RoleNotBindable))
    );
    assert!(
        rem.message.contains("the operator may not bind ClusterRole/edit"),
        "{}",
        rem.message
    );
    assert!(
        rem.command
            .as_deref()
            .is_some_and(|c| c.contains("kubectl delete --raw")),
        "{:?}",
        rem.command
    );

    // Once RBAC lets it bind the role (and the brief cached answer is gone: a
    // new operator process), it removes the access.
    rig.bindable.store(true, Ordering::SeqCst);
    let mut ctx = certify::Context::new(
        rig.client.clone(),
        rig.cache.clone(),
        Arc::new(Metrics::default()),
        Arc::new(|| at("04T00:00")),
        automatic(),
    );
    ctx.identity = Some(OperatorIdentity::default_install());
    rig.fill().await;
    let current = rig
        .cache
        .items
        .get(&kube::runtime::reflector::ObjectRef::from_obj(&held))
        .unwrap();
    certify::reconcile_item(current, Arc::new(ctx)).await.unwrap();
    assert!(rig.subjects("carol-edit").await.is_none(), "deleted");
}

#[tokio::test]
async fn an_item_its_campaign_did_not_issue_decides_nothing() {
    // Someone created an item by hand (no owner reference to the campaign),
    // named reviewers they control, and revoked carol's access through it.
    let rig = Rig::new(
        vec![binding("devs-edit", &["bob", "carol"])],
        "Automatic",
        automatic(),
        Funcs::new(),
    )
    .await;
    let forged = rig.item("carol", true).await;
    rig.revoke_at_both_levels(&forged).await;
    let after = rig.reconcile(&forged).await;
    assert_eq!(after.status, forged.status, "not evaluated");
    assert_eq!(rig.subjects("devs-edit").await.unwrap(), ["bob", "carol"]);
    let reviews = Api::<AccessReview>::namespaced(rig.client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    assert!(
        reviews.items.iter().all(|r| r.status.is_none()),
        "no verdicts either"
    );
}

#[tokio::test]
async fn an_item_without_the_operators_digest_or_outside_the_review_namespace_decides_nothing() {
    // Owned by the real campaign and naming a real run, but never issued by the
    // operator: no digest in its status (past the grace for the status write),
    // or in a tenant's own namespace. Neither removes carol's access.
    for forgery in [Forgery::NoDigest, Forgery::OtherNamespace("team-a")] {
        let rig = Rig::new(
            vec![binding("devs-edit", &["bob", "carol"])],
            "Automatic",
            automatic(),
            Funcs::new(),
        )
        .await;
        let forged = rig.item_as("carol", forgery).await;
        let ns = forged.namespace().unwrap();
        for (who, group, day) in [("olaf", "owners", "02T09:00"), ("sam", "security", "03T09:00")] {
            let mut r: AccessReview = serde_json::from_value(json!({
                "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
                "metadata": {"name": format!("{}-{who}", forged.name_any()), "namespace": ns},
                "spec": {"certification": {"name": forged.name_any(), "uid": forged.uid().unwrap()}, "decision": "Revoke",
                         "reviewer": {"username": who, "groups": [group]}}
            }))
            .unwrap();
            r.metadata.creation_timestamp = Some(stamp(at(day)));
            Api::<AccessReview>::namespaced(rig.client.clone(), &ns)
                .create(&PostParams::default(), &r)
                .await
                .unwrap();
        }
        rig.fill().await;
        let current = rig
            .cache
            .items
            .get(&kube::runtime::reflector::ObjectRef::from_obj(&forged))
            .unwrap();
        certify::reconcile_item(current, rig.ctx.clone()).await.unwrap();
        let after = Api::<AccessCertification>::namespaced(rig.client.clone(), &ns)
            .get(&forged.name_any())
            .await
            .unwrap();
        assert_eq!(after.status, forged.status, "not evaluated");
        assert_eq!(rig.subjects("devs-edit").await.unwrap(), ["bob", "carol"]);
    }
}
