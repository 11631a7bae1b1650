//! The real reconcile against an in-process fake API server (kube-fake-client):
//! request -> reviews -> binding -> expiry -> binding gone, and the ways a grant
//! can end or be tampered with. The clock is the context's, so expiry is tested
//! without sleeping.

use std::sync::{Arc, Mutex};

use chrono::Duration;
use gatehouse::{
    api::{AccessReview, ApprovalRequest, Phase},
    controller,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{
    api::{DeleteParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

mod support;
use support::fake::{at, stamp, team_policy, Rig};

impl Rig {
    async fn new(extra: Vec<serde_json::Value>) -> Rig {
        Rig::with(extra, kube_fake_client::interceptor::Funcs::new()).await
    }

    /// A fake API server holding `extra` objects and the team-view policy, with
    /// `funcs` intercepting calls (fault injection).
    async fn with(extra: Vec<serde_json::Value>, funcs: kube_fake_client::interceptor::Funcs) -> Rig {
        let policy = team_policy(
            "team-view",
            "view",
            json!({"justification": "RequireForRevoke", "retention": "24h"}),
        );
        Rig::with_policy(policy, extra, funcs).await
    }

    async fn request(&self, name: &str, created: &str) -> ApprovalRequest {
        let mut r: ApprovalRequest = serde_saphyr::from_str(&format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: ApprovalRequest\nmetadata: {{name: {name}, namespace: team}}\nspec:\n  requester: {{username: dana, groups: [dev]}}\n  role: {{kind: ClusterRole, name: view}}\n  reason: debug checkout"
        ))
        .unwrap();
        r.metadata.creation_timestamp = Some(stamp(at(created)));
        self.requests().create(&PostParams::default(), &r).await.unwrap()
    }

    async fn review(
        &self,
        req: &ApprovalRequest,
        name: &str,
        who: &str,
        group: &str,
        decision: &str,
        when: &str,
    ) {
        let mut r: AccessReview = serde_saphyr::from_str(&format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: AccessReview\nmetadata: {{name: {name}, namespace: team}}\nspec:\n  request: {{name: {}, uid: {}}}\n  decision: {decision}\n  reviewer: {{username: {who}, groups: [{group}]}}\n  comment: done",
            req.name_any(),
            req.uid().unwrap()
        ))
        .unwrap();
        r.metadata.creation_timestamp = Some(stamp(at(when)));
        self.reviews().create(&PostParams::default(), &r).await.unwrap();
    }

    /// Runs the real reconcile on the stored request, as the controller would.
    async fn reconcile(&self, name: &str) -> Result<kube::runtime::controller::Action, controller::Error> {
        let req = self.requests().get(name).await.unwrap();
        // What synced watches would hold now; the reconcile reads only that.
        self.memory.fill().await;
        controller::reconcile(Arc::new(req), self.ctx.clone()).await
    }

    async fn phase(&self, name: &str) -> Phase {
        self.requests().get(name).await.unwrap().status.unwrap().phase
    }

    async fn binding(&self, req: &str) -> Option<RoleBinding> {
        let r = self.requests().get(req).await.unwrap();
        let name = r.status.as_ref()?.grant.as_ref()?.name.clone();
        self.bindings().get_opt(&name).await.unwrap()
    }
}

#[tokio::test]
async fn approval_grants_a_binding_that_is_removed_at_expiry() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.reconcile("dana-view").await.unwrap();
    let stored = rig.requests().get("dana-view").await.unwrap();
    assert_eq!(stored.status.as_ref().unwrap().phase, Phase::Pending);
    assert!(stored.finalizers().contains(&controller::FINALIZER.to_string()));

    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:05");
    let requeue = rig.reconcile("dana-view").await.unwrap();
    assert_eq!(rig.phase("dana-view").await, Phase::Active);
    // Requeued for the exact expiry, one hour after the approval.
    let expected = kube::runtime::controller::Action::requeue(
        std::time::Duration::from_secs(3600) + std::time::Duration::from_millis(10),
    );
    assert_eq!(requeue, expected);

    let rb = rig.binding("dana-view").await.expect("binding exists");
    assert_eq!(rb.role_ref.name, "view");
    assert_eq!(rb.role_ref.kind, "ClusterRole");
    let subjects = rb.subjects.clone().unwrap();
    assert_eq!(
        (subjects[0].kind.as_str(), subjects[0].name.as_str()),
        ("User", "dana")
    );
    assert_eq!(
        rb.labels()
            .get(gatehouse::labels::REQUEST_NAME)
            .map(String::as_str),
        Some("dana-view")
    );
    assert_eq!(
        rb.annotations()
            .get(gatehouse::labels::EXPIRES_AT)
            .map(String::as_str),
        Some("2026-11-23T11:05:00Z")
    );
    let owner = &rb.owner_references()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.uid.as_str()),
        ("ApprovalRequest", req.uid().unwrap().as_str())
    );

    let review = rig.reviews().get("erin-ok").await.unwrap().status.unwrap();
    assert_eq!(
        (review.accepted, review.reason.map(|r| r.as_str())),
        (Some(true), Some("Approved"))
    );

    rig.set_time("11:05");
    assert_eq!(
        rig.reconcile("dana-view").await.unwrap(),
        kube::runtime::controller::Action::requeue(
            std::time::Duration::from_secs(24 * 3600) + std::time::Duration::from_millis(10)
        )
    );
    assert_eq!(rig.phase("dana-view").await, Phase::Expired);
    assert!(
        rig.binding("dana-view").await.is_none(),
        "binding removed at expiry"
    );
    let grant = rig
        .requests()
        .get("dana-view")
        .await
        .unwrap()
        .status
        .unwrap()
        .grant
        .unwrap();
    assert_eq!(grant.revoked_at, Some(at("11:05")));
}

#[tokio::test]
async fn status_is_written_only_when_it_changes() {
    let rig = Rig::new(vec![]).await;
    rig.request("dana-view", "10:00").await;
    rig.reconcile("dana-view").await.unwrap();
    let before = rig.requests().get("dana-view").await.unwrap().resource_version();
    rig.set_time("10:30");
    rig.reconcile("dana-view").await.unwrap();
    rig.reconcile("dana-view").await.unwrap();
    assert_eq!(
        rig.requests().get("dana-view").await.unwrap().resource_version(),
        before
    );
}

#[tokio::test]
async fn revoke_removes_the_binding_and_cancel_ends_a_pending_request() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.reconcile("dana-view").await.unwrap();
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:06");
    rig.reconcile("dana-view").await.unwrap();
    assert!(rig.binding("dana-view").await.is_some());
    rig.review(&req, "dana-done", "dana", "dev", "Revoke", "10:20")
        .await;
    rig.set_time("10:20");
    rig.reconcile("dana-view").await.unwrap();
    assert_eq!(rig.phase("dana-view").await, Phase::Revoked);
    assert!(rig.binding("dana-view").await.is_none());

    let other = rig.request("dana-again", "10:30").await;
    rig.set_time("10:30");
    rig.reconcile("dana-again").await.unwrap();
    rig.review(&other, "dana-cancel", "dana", "dev", "Cancel", "10:31")
        .await;
    rig.set_time("10:31");
    rig.reconcile("dana-again").await.unwrap();
    assert_eq!(rig.phase("dana-again").await, Phase::Canceled);
}

#[tokio::test]
async fn an_ignored_review_gets_its_reason_in_its_status() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "dana-self", "dana", "sre", "Approve", "10:01")
        .await;
    rig.set_time("10:02");
    rig.reconcile("dana-view").await.unwrap();
    let status = rig.reviews().get("dana-self").await.unwrap().status.unwrap();
    assert_eq!(
        (status.accepted, status.reason.map(|r| r.as_str())),
        (Some(false), Some("SelfApproval"))
    );
    assert_eq!(rig.phase("dana-view").await, Phase::Pending);
}

#[tokio::test]
async fn a_binding_changed_or_deleted_by_hand_is_restored() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:06");
    rig.reconcile("dana-view").await.unwrap();
    let rb = rig.binding("dana-view").await.unwrap();

    let tamper =
        json!({"subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]});
    rig.bindings()
        .patch(&rb.name_any(), &PatchParams::default(), &Patch::Merge(&tamper))
        .await
        .unwrap();
    rig.reconcile("dana-view").await.unwrap();
    let restored = rig.binding("dana-view").await.unwrap();
    let names: Vec<String> = restored.subjects.unwrap().into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["dana"]);

    rig.bindings()
        .delete(&rb.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    rig.reconcile("dana-view").await.unwrap();
    assert!(
        rig.binding("dana-view").await.is_some(),
        "deleted binding recreated while access is valid"
    );
}

#[tokio::test]
async fn deleting_a_request_revokes_its_grant_before_it_goes() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:06");
    rig.reconcile("dana-view").await.unwrap();
    assert!(rig.binding("dana-view").await.is_some());
    let binding_name = rig.binding("dana-view").await.unwrap().name_any();

    // The fake deletes at once, ignoring finalizers; hand the reconcile what a real
    // API server shows while a finalizer holds the object: a deletionTimestamp.
    let mut deleting = rig.requests().get("dana-view").await.unwrap();
    deleting.metadata.deletion_timestamp = Some(stamp(at("10:10")));
    rig.memory.fill().await;
    controller::reconcile(Arc::new(deleting), rig.ctx.clone())
        .await
        .unwrap();
    assert!(
        rig.bindings().get_opt(&binding_name).await.unwrap().is_none(),
        "grant revoked"
    );
    let left = rig.requests().get("dana-view").await.unwrap();
    assert!(
        !left.finalizers().contains(&controller::FINALIZER.to_string()),
        "finalizer released"
    );
}

#[tokio::test]
async fn the_sweep_removes_expired_and_orphaned_bindings_only() {
    // A grant's request is found by uid (its labels, as the operator writes
    // them); the name label holds only 63 characters and proves nothing.
    let managed = |name: &str, expires: &str, request: &str, uid: &str| {
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": "team",
                "labels": {"app.kubernetes.io/managed-by": "gatehouse", "gatehouse.dev/request-namespace": "team",
                           "gatehouse.dev/request-name": request, "gatehouse.dev/request-uid": uid},
                "annotations": {"gatehouse.dev/expires-at": expires}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": "dana", "apiGroup": "rbac.authorization.k8s.io"}]
        })
    };
    let mut foreign = managed("someone-elses", "2000-01-01T00:00:00Z", "x", "x");
    foreign["metadata"]["labels"] = json!({"team": "platform"});
    let rig = Rig::new(vec![foreign]).await;
    let req = rig.request("dana-view", "09:00").await;
    let uid = req.uid().unwrap();
    let long = "r".repeat(63);
    for b in [
        managed("expired", "2026-11-23T09:00:00Z", "dana-view", &uid),
        managed("orphan", "2026-11-23T18:00:00Z", "gone", "uid-of-a-request-gone"),
        // Issue 22: Gatehouse's labels with a name too long to look up, and no request.
        managed(
            "labelled-only",
            "2026-11-23T18:00:00Z",
            &long,
            "0b5e0b5e-0000-4000-8000-000000000000",
        ),
        managed("valid", "2026-11-23T18:00:00Z", "dana-view", &uid),
    ] {
        let rb: RoleBinding = serde_json::from_value(b).unwrap();
        rig.bindings().create(&Default::default(), &rb).await.unwrap();
    }
    rig.memory.fill().await;
    let removed = controller::sweep::sweep(&rig.client, &rig.ctx.cache, at("10:00"))
        .await
        .unwrap();
    assert_eq!(removed, 3);
    let left: Vec<String> = rig
        .bindings()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|b| b.name_any())
        .collect();
    assert_eq!(left.len(), 2);
    assert!(
        left.contains(&"valid".to_string()) && left.contains(&"someone-elses".to_string()),
        "{left:?}"
    );
}

#[tokio::test]
async fn the_sweep_never_touches_a_binding_it_does_not_manage_even_one_that_looks_expired() {
    // Memory holds every binding (certification reviews them all). This one
    // carries Gatehouse's request labels and an expiry long past, but not the
    // managed-by label: someone copied a grant by hand. It is theirs.
    let lookalike = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "copied-grant", "namespace": "team",
            "labels": {"gatehouse.dev/request-namespace": "team", "gatehouse.dev/request-name": "gone",
                       "app.kubernetes.io/managed-by": "Helm"},
            "annotations": {"gatehouse.dev/expires-at": "2000-01-01T00:00:00Z"}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "dana", "apiGroup": "rbac.authorization.k8s.io"}]
    });
    let rig = Rig::new(vec![lookalike]).await;
    rig.memory.fill().await;
    let in_memory = rig
        .ctx
        .cache
        .role_bindings
        .get(&kube::runtime::reflector::ObjectRef::new("copied-grant").within("team"));
    assert!(in_memory.is_some(), "memory holds unmanaged bindings too");
    let removed = controller::sweep::sweep(&rig.client, &rig.ctx.cache, at("10:00"))
        .await
        .unwrap();
    assert_eq!(removed, 0);
    assert!(rig.bindings().get_opt("copied-grant").await.unwrap().is_some());
    // Nor is it counted among Gatehouse's grants.
    controller::sweep::refresh_gauges(&rig.ctx.cache, &rig.ctx.metrics);
    assert_eq!(rig.ctx.metrics.active_grants.get(), 0);
}

#[tokio::test]
async fn a_restarted_operator_picks_up_where_the_old_one_stopped() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.reconcile("dana-view").await.unwrap();
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    // The operator was down from 10:01 to 10:30: a new context, nothing in memory.
    let restarted = rig.restarted();
    restarted.set_time("10:30");
    restarted.reconcile("dana-view").await.unwrap();
    assert_eq!(restarted.phase("dana-view").await, Phase::Active);
    let status = restarted
        .requests()
        .get("dana-view")
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(
        status.approved_at,
        Some(at("10:05")),
        "the approval time comes from the review, not the restart"
    );
    // Down again past the expiry: the next reconcile ends it at once.
    let again = rig.restarted();
    again.set_time("12:00");
    again.reconcile("dana-view").await.unwrap();
    assert_eq!(again.phase("dana-view").await, Phase::Expired);
    assert!(again
        .bindings()
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .is_empty());
}

#[tokio::test]
async fn retention_deletes_the_request_and_its_reviews_never_earlier() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "erin-no", "erin", "sre", "Reject", "10:05")
        .await;
    rig.set_time("10:06");
    rig.reconcile("dana-view").await.unwrap();
    assert_eq!(rig.phase("dana-view").await, Phase::Rejected);
    *rig.clock.lock().unwrap() = at("10:04") + Duration::hours(24);
    rig.reconcile("dana-view").await.unwrap();
    assert!(
        rig.requests().get_opt("dana-view").await.unwrap().is_some(),
        "kept until retention (24h) passes"
    );
    *rig.clock.lock().unwrap() = at("10:05") + Duration::hours(24);
    rig.reconcile("dana-view").await.unwrap();
    assert!(
        rig.reviews().get_opt("erin-no").await.unwrap().is_none(),
        "reviews deleted with the record"
    );
    // The fake ignores finalizers on delete; a real API server would wait for the
    // next reconcile to release it (covered by the deletion test).
    assert!(rig.requests().get_opt("dana-view").await.unwrap().is_none());
}

#[tokio::test]
async fn a_binding_the_api_server_refuses_ends_in_a_readable_condition_not_a_crash() {
    // The API server refuses the binding (in a real cluster: 403, the operator may
    // not bind that role); the fake can only say so with a 500.
    let funcs = kube_fake_client::interceptor::Funcs::new().patch(|ctx| {
        if ctx.name.starts_with("gatehouse-") {
            return Err(kube_fake_client::Error::Internal(
                "rolebindings.rbac.authorization.k8s.io is forbidden: attempt to grant extra privileges"
                    .into(),
            ));
        }
        Ok(None)
    });
    let rig = Rig::with(vec![], funcs).await;
    rig.set_time("10:06");
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    let err = rig.reconcile("dana-view").await.unwrap_err();
    assert!(err.to_string().contains("forbidden"), "{err}");
    // How soon it is retried is the error policy's (src/controller/shell.rs, tested there).
    let status = rig.requests().get("dana-view").await.unwrap().status.unwrap();
    let granted = status.conditions.iter().find(|c| c.type_ == "Granted").unwrap();
    assert_eq!(granted.reason, "BindingFailed");
    assert!(
        granted.message.contains("attempt to grant extra privileges"),
        "{}",
        granted.message
    );
}

/// Interceptors that log every API call as `verb name` (Events aside: they are
/// published off the reconcile path).
fn api_log() -> (kube_fake_client::interceptor::Funcs, Arc<Mutex<Vec<String>>>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let l = |log: &Arc<Mutex<Vec<String>>>| log.clone();
    let (a, b, c, d, e, f, g, h, i) = (
        l(&log),
        l(&log),
        l(&log),
        l(&log),
        l(&log),
        l(&log),
        l(&log),
        l(&log),
        l(&log),
    );
    let push = |log: &Arc<Mutex<Vec<String>>>, s: String| {
        log.lock().unwrap().push(s);
        Ok(None)
    };
    let funcs = kube_fake_client::interceptor::Funcs::new()
        .create(move |ctx| {
            if ctx.object["kind"] == "Event" {
                return Ok(None);
            }
            push(
                &a,
                format!("create {}", ctx.object["metadata"]["name"].as_str().unwrap_or("")),
            )
        })
        .get(move |ctx| push(&b, format!("get {}", ctx.name)))
        .replace(move |ctx| push(&c, format!("update {}", ctx.name)))
        .delete(move |ctx| push(&d, format!("delete {}", ctx.name)))
        .list(move |_| {
            e.lock().unwrap().push("list".into());
            Ok(None)
        })
        .patch(move |ctx| push(&f, format!("patch {}", ctx.name)))
        .get_status(move |ctx| push(&g, format!("get {}/status", ctx.name)))
        .patch_status(move |ctx| push(&h, format!("patch {}/status", ctx.name)))
        .replace_status(move |ctx| push(&i, format!("update {}/status", ctx.name)));
    (funcs, log)
}

impl Rig {
    /// Reconciles with memory filled beforehand, returning only the calls the
    /// reconcile itself made.
    async fn reconcile_logged(&self, name: &str, log: &Arc<Mutex<Vec<String>>>) -> Vec<String> {
        self.memory.fill().await;
        let req = self.ctx.cache.request("team", name).unwrap();
        log.lock().unwrap().clear();
        controller::reconcile(req, self.ctx.clone()).await.unwrap();
        std::mem::take(&mut *log.lock().unwrap())
    }
}

#[tokio::test]
async fn a_settled_request_costs_no_api_call_and_a_transition_three_writes() {
    let (funcs, log) = api_log();
    let rig = Rig::with(vec![], funcs).await;
    let req = rig.request("dana-view", "10:00").await;
    // First sight: the finalizer, then the Pending status.
    let first = rig.reconcile_logged("dana-view", &log).await;
    assert_eq!(first, ["patch dana-view", "update dana-view/status"]);
    // Woken again before memory shows those writes (another of its writes woke
    // it): it waits for memory instead of writing again into a conflict.
    let stale = rig.ctx.cache.request("team", "dana-view").unwrap();
    controller::reconcile(stale, rig.ctx.clone()).await.unwrap();
    assert_eq!(std::mem::take(&mut *log.lock().unwrap()), Vec::<String>::new());
    // Settled: reconciling again reads memory only and writes nothing.
    rig.set_time("10:01");
    assert_eq!(
        rig.reconcile_logged("dana-view", &log).await,
        Vec::<String>::new()
    );

    // Approved: the binding, the review's verdict, the request's status. Nothing read.
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:05");
    let binding = rig.reconcile_logged("dana-view", &log).await;
    assert_eq!(binding.len(), 3, "{binding:?}");
    assert!(
        binding[0].starts_with("patch gatehouse-dana-view-"),
        "{binding:?}"
    );
    assert_eq!(binding[1..], ["patch erin-ok/status", "update dana-view/status"]);
    // Active and settled: the binding in memory is the one it would write.
    rig.set_time("10:30");
    assert_eq!(
        rig.reconcile_logged("dana-view", &log).await,
        Vec::<String>::new()
    );

    // Expired: the binding goes, the status says so; two writes.
    rig.set_time("11:05");
    let expiry = rig.reconcile_logged("dana-view", &log).await;
    assert_eq!(expiry.len(), 2, "{expiry:?}");
    assert!(expiry[0].starts_with("delete gatehouse-dana-view-"), "{expiry:?}");
    assert_eq!(expiry[1], "update dana-view/status");
    // A removed binding is not deleted again.
    rig.set_time("11:06");
    assert_eq!(
        rig.reconcile_logged("dana-view", &log).await,
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn a_deadline_that_passes_without_a_reconcile_is_found_by_the_watchdog() {
    let rig = Rig::new(vec![]).await;
    let req = rig.request("dana-view", "10:00").await;
    rig.review(&req, "erin-ok", "erin", "sre", "Approve", "10:05")
        .await;
    rig.set_time("10:05");
    rig.reconcile("dana-view").await.unwrap();
    // The grant ends at 11:05: the reconcile noted that deadline.
    let grace = Duration::seconds(2);
    assert!(rig.ctx.overdue(at("11:05"), grace).is_empty(), "not late yet");
    // Two seconds past it and still not reconciled: a lost wake-up, found once.
    let late = rig.ctx.overdue(at("11:05") + grace, grace);
    assert_eq!(late, ["team/dana-view"]);
    assert!(rig.ctx.overdue(at("11:10"), grace).is_empty(), "handed over once");
    // The reconcile it triggers notes the next deadline (the end of retention).
    rig.set_time("11:07");
    rig.reconcile("dana-view").await.unwrap();
    assert_eq!(rig.phase("dana-view").await, Phase::Expired);
    assert!(rig.ctx.overdue(at("12:00"), grace).is_empty());
}
