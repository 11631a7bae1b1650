//! OneTime requests through the real reconcile against the in-process fake API:
//! approval → ServiceAccount, binding and exactly one Job → Executed or Failed,
//! access removed; restarts and a crash between creating the Job and recording
//! it never produce a second Job.

use std::sync::{
    atomic::{AtomicBool, Ordering},
    Arc,
};

use gatehouse::{
    api::{AccessReview, ApprovalRequest, JobState, Phase},
    controller, labels,
};
use k8s_openapi::api::{
    batch::v1::{Job, JobCondition, JobStatus},
    core::v1::ServiceAccount,
};
use kube::{
    api::{Api, DeleteParams, ListParams, PostParams},
    ResourceExt,
};

mod support;
use support::fake::{at, stamp, team_policy, Rig};

impl Rig {
    async fn new(funcs: kube_fake_client::interceptor::Funcs) -> Rig {
        let policy = team_policy(
            "team-jobs",
            "edit",
            serde_json::json!({"oneTime": {"images": ["ghcr.io/acme/"]}, "retention": "24h"}),
        );
        Rig::with_policy(policy, vec![], funcs).await
    }

    fn jobs(&self) -> Api<Job> {
        self.api()
    }

    fn accounts(&self) -> Api<ServiceAccount> {
        self.api()
    }

    /// Dana asks to run a migration once with `edit`, approved by Erin at 10:05.
    async fn approved_job(&self) -> ApprovalRequest {
        let mut r: ApprovalRequest = serde_saphyr::from_str(
            r#"
apiVersion: gatehouse.dev/v1alpha1
kind: ApprovalRequest
metadata: {name: migrate, namespace: team}
spec:
  requester: {username: dana, groups: [dev]}
  role: {kind: ClusterRole, name: edit}
  type: OneTime
  reason: schema migration 42
  job:
    image: ghcr.io/acme/migrate:1.4
    command: [migrate]
    args: [up, --to, "42"]
    env: [{name: DRY_RUN, value: "false"}]
"#,
        )
        .unwrap();
        r.metadata.creation_timestamp = Some(stamp(at("10:00")));
        let req = self.requests().create(&PostParams::default(), &r).await.unwrap();
        self.reconcile().await.unwrap();
        assert_eq!(self.status().await.phase, Phase::Pending);
        assert!(self.all_jobs().await.is_empty(), "nothing runs before approval");
        let mut review: AccessReview = serde_saphyr::from_str(&format!(
            "apiVersion: gatehouse.dev/v1alpha1\nkind: AccessReview\nmetadata: {{name: erin-ok, namespace: team}}\nspec:\n  request: {{name: migrate, uid: {}}}\n  decision: Approve\n  reviewer: {{username: erin, groups: [sre]}}",
            req.uid().unwrap()
        ))
        .unwrap();
        review.metadata.creation_timestamp = Some(stamp(at("10:05")));
        Api::<AccessReview>::namespaced(self.client.clone(), "team")
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
        self.set_time("10:05");
        req
    }

    async fn reconcile(&self) -> Result<kube::runtime::controller::Action, controller::Error> {
        let req = self.requests().get("migrate").await.unwrap();
        // What synced watches would hold now; the reconcile reads only that.
        self.memory.fill().await;
        controller::reconcile(Arc::new(req), self.ctx.clone()).await
    }

    async fn status(&self) -> gatehouse::api::ApprovalRequestStatus {
        self.requests().get("migrate").await.unwrap().status.unwrap()
    }

    async fn all_jobs(&self) -> Vec<Job> {
        self.jobs().list(&ListParams::default()).await.unwrap().items
    }

    async fn the_job(&self) -> Job {
        let jobs = self.all_jobs().await;
        assert_eq!(jobs.len(), 1, "exactly one Job: {jobs:#?}");
        jobs.into_iter().next().unwrap()
    }

    /// The Job finishes: the condition the Job controller would set.
    async fn finish_job(&self, type_: &str, reason: &str, message: &str, when: &str) {
        let mut job = self.the_job().await;
        job.status = Some(JobStatus {
            conditions: Some(vec![JobCondition {
                type_: type_.into(),
                status: "True".into(),
                reason: Some(reason.into()),
                message: Some(message.into()),
                last_transition_time: Some(stamp(at(when))),
                last_probe_time: None,
            }]),
            ..Default::default()
        });
        self.jobs()
            .replace(&job.name_any(), &PostParams::default(), &job)
            .await
            .unwrap();
    }

    async fn access_is_gone(&self) {
        let name = self.status().await.job.unwrap().name;
        assert!(
            self.accounts().get_opt(&name).await.unwrap().is_none(),
            "ServiceAccount removed"
        );
        let binding = self.status().await.grant.unwrap().name;
        assert!(
            self.bindings().get_opt(&binding).await.unwrap().is_none(),
            "binding removed"
        );
    }
}

#[tokio::test]
async fn an_approved_job_runs_once_as_its_own_account_and_access_ends_with_it() {
    let rig = Rig::new(Default::default()).await;
    let req = rig.approved_job().await;
    rig.reconcile().await.unwrap();
    let status = rig.status().await;
    assert_eq!(status.phase, Phase::Processing);
    let record = status.job.clone().unwrap();
    assert_eq!(record.state, JobState::Running);
    assert_eq!(record.deadline, Some(at("11:05")));

    // The dedicated ServiceAccount, owned by the request.
    let sa = rig.accounts().get(&record.service_account).await.unwrap();
    assert_eq!(sa.owner_references()[0].uid, req.uid().unwrap());
    assert_eq!(
        sa.labels().get(labels::REQUEST_UID).map(String::as_str),
        req.uid().as_deref()
    );
    // The role is bound to that account, nobody else.
    let rb = rig.bindings().get(&status.grant.unwrap().name).await.unwrap();
    assert_eq!(rb.role_ref.name, "edit");
    let subjects = rb.subjects.clone().unwrap();
    assert_eq!(subjects.len(), 1);
    assert_eq!(
        (
            subjects[0].kind.as_str(),
            subjects[0].name.as_str(),
            subjects[0].namespace.as_deref()
        ),
        ("ServiceAccount", record.service_account.as_str(), Some("team"))
    );
    assert_eq!(
        rb.annotations().get(labels::EXPIRES_AT).map(String::as_str),
        Some("2026-11-23T11:05:00Z")
    );

    // Exactly the reviewed job, run once, hardened, stopped by the kubelet at the deadline too.
    let job = rig.the_job().await;
    assert_eq!(job.name_any(), record.name);
    assert_eq!(job.uid(), record.uid);
    assert_eq!(job.owner_references()[0].uid, req.uid().unwrap());
    let spec = job.spec.unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert_eq!(spec.active_deadline_seconds, Some(3600));
    assert_eq!(spec.ttl_seconds_after_finished, None, "kept for its logs");
    let pod = spec.template.spec.unwrap();
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(record.service_account.as_str())
    );
    assert_eq!(pod.automount_service_account_token, Some(true));
    assert_eq!(pod.containers.len(), 1);
    let c = &pod.containers[0];
    assert_eq!(c.image.as_deref(), Some("ghcr.io/acme/migrate:1.4"));
    assert_eq!(c.command, Some(vec!["migrate".to_string()]));
    assert_eq!(c.args, Some(vec!["up".to_string(), "--to".into(), "42".into()]));
    let env = c.env.clone().unwrap();
    assert_eq!(
        (env[0].name.as_str(), env[0].value.as_deref()),
        ("DRY_RUN", Some("false"))
    );
    let sc = c.security_context.clone().unwrap();
    assert_eq!(sc.allow_privilege_escalation, Some(false));
    assert_eq!(sc.capabilities.unwrap().drop, Some(vec!["ALL".to_string()]));
    assert_eq!(sc.seccomp_profile.unwrap().type_, "RuntimeDefault");

    // Reconciling again, and after a restart, changes nothing and creates nothing.
    rig.set_time("10:10");
    rig.reconcile().await.unwrap();
    let restarted = rig.restarted();
    restarted.reconcile().await.unwrap();
    assert_eq!(restarted.the_job().await.uid(), record.uid);
    assert_eq!(restarted.status().await.phase, Phase::Processing);

    // The job succeeds at 10:20: Executed, access gone, the Job kept for its logs.
    restarted
        .finish_job("Complete", "CompletionsReached", "", "10:20")
        .await;
    restarted.set_time("10:20");
    restarted.reconcile().await.unwrap();
    let status = restarted.status().await;
    assert_eq!(status.phase, Phase::Executed);
    assert_eq!(status.completed_at, Some(at("10:20")));
    let record = status.job.unwrap();
    assert_eq!(
        (record.state, record.finished_at),
        (JobState::Succeeded, Some(at("10:20")))
    );
    assert_eq!(record.logs, format!("kubectl logs -n team job/{}", record.name));
    restarted.access_is_gone().await;
    assert_eq!(restarted.all_jobs().await.len(), 1);
}

#[tokio::test]
async fn a_failed_job_fails_the_request_with_the_jobs_message() {
    let rig = Rig::new(Default::default()).await;
    rig.approved_job().await;
    rig.reconcile().await.unwrap();
    rig.finish_job(
        "Failed",
        "BackoffLimitExceeded",
        "Job has reached the specified backoff limit",
        "10:12",
    )
    .await;
    rig.set_time("10:13");
    rig.reconcile().await.unwrap();
    let status = rig.status().await;
    assert_eq!(status.phase, Phase::Failed);
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!(complete.reason, "JobFailed");
    assert!(
        complete.message.contains("BackoffLimitExceeded"),
        "{}",
        complete.message
    );
    assert_eq!(status.job.unwrap().state, JobState::Failed);
    rig.access_is_gone().await;
}

#[tokio::test]
async fn a_job_still_running_at_the_deadline_is_stopped_and_the_request_fails() {
    let rig = Rig::new(Default::default()).await;
    rig.approved_job().await;
    let requeue = rig.reconcile().await.unwrap();
    // While it runs the request is looked at every minute (a lost Job event is
    // noticed), and at the deadline at the latest.
    assert_eq!(
        requeue,
        kube::runtime::controller::Action::requeue(std::time::Duration::from_secs(60))
    );
    rig.set_time("11:05");
    rig.reconcile().await.unwrap();
    let status = rig.status().await;
    assert_eq!(status.phase, Phase::Failed);
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!(complete.reason, "DeadlineExceeded");
    assert_eq!(status.job.as_ref().unwrap().state, JobState::Stopped);
    assert!(rig.all_jobs().await.is_empty(), "the Job was deleted");
    rig.access_is_gone().await;
}

#[tokio::test]
async fn a_job_deleted_after_it_started_is_never_created_again() {
    let rig = Rig::new(Default::default()).await;
    rig.approved_job().await;
    rig.reconcile().await.unwrap();
    let job = rig.the_job().await;
    rig.jobs()
        .delete(&job.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    rig.set_time("10:15");
    rig.reconcile().await.unwrap();
    let status = rig.status().await;
    assert_eq!(status.phase, Phase::Failed);
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!(complete.reason, "JobDeleted");
    assert_eq!(status.job.as_ref().unwrap().state, JobState::Deleted);
    rig.set_time("10:20");
    rig.reconcile().await.unwrap();
    assert!(rig.all_jobs().await.is_empty(), "not re-created");
    rig.access_is_gone().await;
}

#[tokio::test]
async fn a_recorded_job_replaced_by_a_foreign_one_ends_the_request() {
    let rig = Rig::new(Default::default()).await;
    rig.approved_job().await;
    rig.reconcile().await.unwrap();
    let job = rig.the_job().await;
    rig.jobs()
        .delete(&job.name_any(), &DeleteParams::default())
        .await
        .unwrap();
    let planted: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job.name_any(), "namespace": "team"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "evil"}]}}}
    }))
    .unwrap();
    rig.jobs().create(&PostParams::default(), &planted).await.unwrap();
    rig.set_time("10:15");
    rig.reconcile().await.unwrap();
    let status = rig.status().await;
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!(
        (status.phase, complete.reason.as_str()),
        (Phase::Failed, "JobDeleted")
    );
    rig.access_is_gone().await;
    // Not the operator's Job: left for whoever made it to explain.
    assert_eq!(rig.all_jobs().await.len(), 1);
}

#[tokio::test]
async fn a_crash_between_creating_the_job_and_recording_it_adopts_the_job() {
    // The status write fails (the operator "crashes") right after the Job was created.
    let crash = Arc::new(AtomicBool::new(true));
    let flag = crash.clone();
    let funcs = kube_fake_client::interceptor::Funcs::new().replace_status(move |_| {
        if flag.load(Ordering::SeqCst) {
            return Err(kube_fake_client::Error::Internal("connection reset".into()));
        }
        Ok(None)
    });
    let rig = Rig::new(funcs).await;
    crash.store(false, Ordering::SeqCst);
    rig.approved_job().await;
    crash.store(true, Ordering::SeqCst);
    assert!(rig.reconcile().await.is_err());
    let job = rig.the_job().await;
    assert!(rig.status().await.job.is_none(), "the Job was not recorded");

    // After the restart the operator finds the Job by its name and adopts it.
    crash.store(false, Ordering::SeqCst);
    let restarted = rig.restarted();
    restarted.set_time("10:06");
    restarted.reconcile().await.unwrap();
    let status = restarted.status().await;
    assert_eq!(status.phase, Phase::Processing);
    assert_eq!(status.job.unwrap().uid, job.uid());
    assert_eq!(restarted.the_job().await.uid(), job.uid());
}

#[tokio::test]
async fn a_job_of_the_same_name_not_made_for_the_request_is_not_adopted() {
    let rig = Rig::new(Default::default()).await;
    rig.approved_job().await;
    let name = gatehouse::decide::job::job_ref(&rig.requests().get("migrate").await.unwrap()).name;
    let planted: Job = serde_json::from_value(serde_json::json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "x", "image": "evil"}]}}}
    }))
    .unwrap();
    rig.jobs().create(&PostParams::default(), &planted).await.unwrap();
    let err = rig.reconcile().await.unwrap_err();
    assert!(err.to_string().contains("not created for this request"), "{err}");
    let status = rig.status().await;
    assert_ne!(status.phase, Phase::Processing);
    let granted = status.conditions.iter().find(|c| c.type_ == "Granted").unwrap();
    assert_eq!(granted.reason, "JobFailed");
    assert_eq!(
        rig.the_job()
            .await
            .spec
            .unwrap()
            .template
            .spec
            .unwrap()
            .containers[0]
            .image
            .as_deref(),
        Some("evil")
    );
}
