//! OneTime requests: approved → Processing (ServiceAccount, binding, one Job) →
//! Executed or Failed, and the job never runs twice.

use super::*;
use crate::api::JobState;

/// Dana asks to run a migration once with `edit`-like rights (here: `view`).
fn dana_job() -> ApprovalRequest {
    request(
        "dana-view",
        "10:00",
        "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}\ntype: OneTime\njob: {image: 'ghcr.io/acme/migrate:1.4', command: [migrate, up], env: [{name: DRY_RUN, value: 'false'}]}",
    )
}

fn approved() -> Vec<AccessReview> {
    vec![approve("erin", &["sre"], "10:05")]
}

fn eval_job(
    req: &ApprovalRequest,
    reviews: &[AccessReview],
    now: &str,
    job: Option<&JobObservation>,
) -> Evaluation {
    eval_with(&[simple_policy()], req, reviews, now, |i| i.job = job)
}

fn job_named(req: &ApprovalRequest, progress: JobProgress) -> JobObservation {
    JobObservation {
        name: job::job_ref(req).name,
        uid: "job-uid-1".into(),
        created: at("10:05"),
        progress,
    }
}

fn creates_job(ev: &Evaluation) -> bool {
    ev.actions.iter().any(|a| matches!(a, Action::CreateJob(_)))
}

fn deletes_job(ev: &Evaluation) -> bool {
    ev.actions.iter().any(|a| matches!(a, Action::DeleteJob(_)))
}

fn removes_access(ev: &Evaluation) -> bool {
    ev.actions.iter().any(|a| matches!(a, Action::RemoveBinding(_)))
        && ev
            .actions
            .iter()
            .any(|a| matches!(a, Action::DeleteServiceAccount(_)))
        && !has_binding(ev)
        && !ev
            .actions
            .iter()
            .any(|a| matches!(a, Action::EnsureServiceAccount(_)))
}

/// The request as stored after the shell created the Job and recorded it.
fn running(req: &ApprovalRequest) -> ApprovalRequest {
    let obs = job_named(req, JobProgress::Running);
    let planned = stored(req, &eval_job(req, &approved(), "10:05", None));
    stored(&planned, &eval_job(&planned, &approved(), "10:05", Some(&obs)))
}

#[test]
fn nothing_runs_before_approval() {
    let req = dana_job();
    let ev = eval_job(&req, &[], "10:01", None);
    assert_eq!(ev.status.phase, Phase::Pending);
    assert!(ev.actions.is_empty(), "{:?}", ev.actions);
    assert!(ev.status.job.is_none());
}

#[test]
fn approval_creates_account_binding_and_job_in_that_order() {
    let req = dana_job();
    let ev = eval_job(&req, &approved(), "10:05", None);
    assert_eq!(ev.status.phase, Phase::Processing);
    let name = job::job_ref(&req).name;
    assert!(
        name.starts_with("gatehouse-dana-view-") && name.len() <= 63,
        "{name}"
    );
    match ev.actions.as_slice() {
        [Action::EnsureServiceAccount(sa), Action::EnsureBinding(b), Action::CreateJob(plan)] => {
            assert_eq!((sa.namespace.as_str(), sa.name.as_str()), ("team", name.as_str()));
            assert_eq!(b.subject.kind, SubjectKind::ServiceAccount);
            assert_eq!(b.subject.name, name);
            assert_eq!(b.subject.namespace.as_deref(), Some("team"));
            assert_eq!(b.role.name, "view");
            assert_eq!(b.valid_until, at("11:05"));
            assert_eq!(plan.service_account, name);
            assert_eq!(plan.deadline, at("11:05"));
            assert_eq!(
                Some(&plan.spec),
                req.spec.job.as_ref(),
                "exactly the reviewed job runs"
            );
        }
        other => panic!("unexpected actions {other:#?}"),
    }
    let job = ev.status.job.as_ref().unwrap();
    assert_eq!(job.state, JobState::Starting);
    assert_eq!(job.deadline, Some(at("11:05")));
    assert_eq!(job.logs, format!("kubectl logs -n team job/{name}"));
    assert_eq!(cond(&ev, GRANTED).status, ConditionStatus::True);
    assert_eq!(ev.status.grant.as_ref().unwrap().expires_at, Some(at("11:05")));
    assert_eq!(ev.next_deadline, Some(at("11:05")));
}

#[test]
fn once_the_job_is_recorded_it_is_never_created_again() {
    let req = dana_job();
    let stored_req = running(&req);
    let job = stored_req.status.as_ref().unwrap().job.clone().unwrap();
    assert_eq!(
        (job.state, job.uid.as_deref()),
        (JobState::Running, Some("job-uid-1"))
    );
    assert_eq!(job.started_at, Some(at("10:05")));
    let obs = job_named(&req, JobProgress::Running);
    for now in ["10:05", "10:30", "11:04"] {
        let ev = eval_job(&stored_req, &approved(), now, Some(&obs));
        assert_eq!(ev.status.phase, Phase::Processing, "{now}");
        assert!(!creates_job(&ev), "{now}: {:?}", ev.actions);
        assert!(has_binding(&ev));
    }
    // The Job is gone before it finished: the request fails, nothing is re-created.
    let ev = eval_job(&stored_req, &approved(), "10:30", None);
    assert_eq!(ev.status.phase, Phase::Failed);
    assert_eq!(cond(&ev, COMPLETE).reason, "JobDeleted");
    assert_eq!(ev.status.job.as_ref().unwrap().state, JobState::Deleted);
    assert!(!creates_job(&ev));
    assert!(removes_access(&ev));
    // A Job of the same name with another uid is not the one that was approved to run.
    let impostor = JobObservation {
        uid: "job-uid-2".into(),
        ..obs
    };
    let ev = eval_job(&stored_req, &approved(), "10:30", Some(&impostor));
    assert_eq!(cond(&ev, COMPLETE).reason, "JobDeleted");
    // And it stays failed.
    let later = eval_job(&stored(&stored_req, &ev), &approved(), "10:40", None);
    assert_eq!(later.status.phase, Phase::Failed);
    assert!(!creates_job(&later));
}

#[test]
fn a_job_that_succeeds_executes_the_request_and_ends_access() {
    let req = running(&dana_job());
    let done = job_named(&req, JobProgress::Succeeded { at: at("10:20") });
    let ev = eval_job(&req, &approved(), "10:21", Some(&done));
    assert_eq!(ev.status.phase, Phase::Executed);
    assert_eq!(ev.status.completed_at, Some(at("10:20")));
    assert_eq!(ev.status.grant.as_ref().unwrap().revoked_at, Some(at("10:20")));
    let job = ev.status.job.as_ref().unwrap();
    assert_eq!(
        (job.state, job.finished_at),
        (JobState::Succeeded, Some(at("10:20")))
    );
    let complete = cond(&ev, COMPLETE);
    assert_eq!(complete.reason, "Executed");
    assert!(
        complete.message.contains("kubectl logs -n team job/"),
        "{}",
        complete.message
    );
    assert!(removes_access(&ev));
    assert!(!deletes_job(&ev), "a finished Job is kept for its logs");
    // Terminal: a later Revoke changes nothing, and the job never runs again.
    let revoke = review("erin-revoke", "erin", &["sre"], Decision::Revoke, "10:30");
    let later = eval_job(
        &stored(&req, &ev),
        &[approved()[0].clone(), revoke],
        "10:31",
        None,
    );
    assert_eq!(later.status.phase, Phase::Executed);
    assert_eq!(
        verdict(&later, "erin-revoke").reason,
        reason::VerdictReason::NotPending
    );
    assert!(!creates_job(&later) && !has_binding(&later));
}

#[test]
fn a_job_that_fails_fails_the_request_with_its_message() {
    let req = running(&dana_job());
    let failed = job_named(
        &req,
        JobProgress::Failed {
            at: at("10:12"),
            message: "BackoffLimitExceeded: Job has reached the specified backoff limit".into(),
            deadline_exceeded: false,
        },
    );
    let ev = eval_job(&req, &approved(), "10:13", Some(&failed));
    assert_eq!(ev.status.phase, Phase::Failed);
    let complete = cond(&ev, COMPLETE);
    assert_eq!(complete.reason, "JobFailed");
    assert!(
        complete.message.contains("BackoffLimitExceeded"),
        "{}",
        complete.message
    );
    assert_eq!(ev.status.job.as_ref().unwrap().state, JobState::Failed);
    assert!(removes_access(&ev));
    assert!(!deletes_job(&ev));
}

#[test]
fn a_job_the_job_controller_stopped_at_its_active_deadline_is_deadline_exceeded() {
    // With clock skew between the operator and the cluster, the Job's own
    // activeDeadlineSeconds can fire a moment before the operator's deadline.
    let req = running(&dana_job());
    let stopped = job_named(
        &req,
        JobProgress::Failed {
            at: at("11:04"),
            message: "DeadlineExceeded: Job was active longer than specified deadline".into(),
            deadline_exceeded: true,
        },
    );
    let ev = eval_job(&req, &approved(), "11:04", Some(&stopped));
    assert_eq!(ev.status.phase, Phase::Failed);
    assert_eq!(cond(&ev, COMPLETE).reason, "DeadlineExceeded");
    assert_eq!(ev.status.job.as_ref().unwrap().state, JobState::Stopped);
    assert!(removes_access(&ev));
}

#[test]
fn a_job_still_running_at_the_deadline_is_stopped() {
    let req = running(&dana_job());
    let obs = job_named(&req, JobProgress::Running);
    let ev = eval_job(&req, &approved(), "11:05", Some(&obs));
    assert_eq!(ev.status.phase, Phase::Failed);
    assert_eq!(cond(&ev, COMPLETE).reason, "DeadlineExceeded");
    assert_eq!(ev.status.completed_at, Some(at("11:05")));
    assert_eq!(ev.status.job.as_ref().unwrap().state, JobState::Stopped);
    assert!(deletes_job(&ev));
    assert!(removes_access(&ev));
    // The operator was late and the job finished after its deadline: still a failure.
    let late = job_named(&req, JobProgress::Succeeded { at: at("11:10") });
    let ev = eval_job(&req, &approved(), "11:12", Some(&late));
    assert_eq!(cond(&ev, COMPLETE).reason, "DeadlineExceeded");
    assert_eq!(ev.status.completed_at, Some(at("11:05")));
}

#[test]
fn the_deadline_is_the_window_close_when_it_comes_before_expiry() {
    // 08:00-18:00 Berlin = 07:00-17:00 UTC; approved 16:30 UTC for 1h.
    let p = windowed_policy("{timezone: Europe/Berlin, start: '08:00', end: '18:00', days: [Mon]}");
    let req = dana_job();
    let reviews = [approve("erin", &["sre"], "16:30")];
    let ev = eval_with(std::slice::from_ref(&p), &req, &reviews, "16:30", |_| {});
    assert_eq!(ev.status.phase, Phase::Processing);
    assert_eq!(ev.status.expires_at, Some(at("17:30")));
    assert_eq!(ev.status.job.as_ref().unwrap().deadline, Some(at("17:00")));
    assert_eq!(binding(&ev).valid_until, at("17:00"));
    assert_eq!(ev.next_deadline, Some(at("17:00")));
    let obs = JobObservation {
        created: at("16:30"),
        ..job_named(&req, JobProgress::Running)
    };
    let planned = stored(&req, &ev);
    let running = stored(
        &planned,
        &eval_with(std::slice::from_ref(&p), &planned, &reviews, "16:30", |i| {
            i.job = Some(&obs)
        }),
    );
    let ev = eval_with(&[p], &running, &reviews, "17:00", |i| i.job = Some(&obs));
    assert_eq!(cond(&ev, COMPLETE).reason, "DeadlineExceeded");
    assert!(deletes_job(&ev));
}

#[test]
fn a_revoke_while_processing_stops_the_job() {
    let req = running(&dana_job());
    let obs = job_named(&req, JobProgress::Running);
    let revoke = with_comment(
        review("erin-revoke", "erin", &["sre"], Decision::Revoke, "10:15"),
        "wrong database",
    );
    let ev = eval_job(&req, &[approved()[0].clone(), revoke], "10:15", Some(&obs));
    assert_eq!(ev.status.phase, Phase::Revoked);
    assert_eq!(ev.status.job.as_ref().unwrap().state, JobState::Stopped);
    assert!(deletes_job(&ev));
    assert!(removes_access(&ev));
}

#[test]
fn a_rejected_job_never_runs() {
    let req = dana_job();
    let reject = review("erin-no", "erin", &["sre"], Decision::Reject, "10:03");
    let ev = eval_job(&req, &[reject], "10:05", None);
    assert_eq!(ev.status.phase, Phase::Rejected);
    assert!(ev.actions.is_empty(), "{:?}", ev.actions);
    assert!(ev.status.job.is_none());
}

#[test]
fn one_time_requests_name_no_subject_and_extend_nothing() {
    let mut req = dana_job();
    req.spec.subject = Some(serde_saphyr::from_str("{kind: User, name: dana}").unwrap());
    let (reason, message) = denial(&eval_job(&req, &approved(), "10:05", None));
    assert_eq!(reason, "SubjectNotAllowed");
    assert!(message.contains("ServiceAccount"), "{message}");

    let mut req = dana_job();
    req.spec.extends = Some("older".into());
    assert_eq!(
        denial(&eval_job(&req, &approved(), "10:05", None)).0,
        "InvalidExtends"
    );

    let mut req = dana_job();
    req.spec.job = None;
    assert_eq!(
        denial(&eval_job(&req, &approved(), "10:05", None)).0,
        "MissingJob"
    );
}

#[test]
fn a_policy_must_allow_one_time_requests_and_may_limit_their_images() {
    let mut p = simple_policy();
    p.spec.one_time = None;
    let (reason, message) = denial(&eval(std::slice::from_ref(&p), &dana_job(), &[], "10:01"));
    assert_eq!(reason, "OneTimeNotAllowed");
    assert!(
        message.contains("AccessPolicy simple") && message.contains("spec.oneTime"),
        "{message}"
    );

    p.spec.one_time =
        Some(serde_saphyr::from_str("images: [ghcr.io/acme/migrate, 'quay.io/tools/']").unwrap());
    let ev = eval(std::slice::from_ref(&p), &dana_job(), &approved(), "10:06");
    assert_eq!(ev.status.phase, Phase::Processing);
    for (image, allowed) in [
        ("ghcr.io/acme/migrate", true),
        ("ghcr.io/acme/migrate:1.4", true),
        ("ghcr.io/acme/migrate@sha256:0123", true),
        ("quay.io/tools/jq:1", true),
        ("ghcr.io/acme/migrate-evil:1", false),
        ("ghcr.io/acme/other:1", false),
        ("docker.io/library/busybox", false),
    ] {
        let mut req = dana_job();
        req.spec.job.as_mut().unwrap().image = image.into();
        let ev = eval(std::slice::from_ref(&p), &req, &[], "10:01");
        if allowed {
            assert_eq!(ev.status.phase, Phase::Pending, "{image}");
        } else {
            let (reason, message) = denial(&ev);
            assert_eq!(reason, "ImageNotAllowed", "{image}");
            assert!(
                message.contains("ghcr.io/acme/migrate, quay.io/tools/"),
                "{message}"
            );
        }
    }
}

#[test]
fn a_job_is_never_auto_approved() {
    let mut p = simple_policy();
    p.spec.auto_approve = Some(
        serde_saphyr::from_str("subjects: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]")
            .unwrap(),
    );
    let ev = eval(std::slice::from_ref(&p), &dana_job(), &[], "10:01");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert!(!creates_job(&ev));
    // The same person's JIT request is.
    assert_eq!(eval(&[p], &dana_view(), &[], "10:01").status.phase, Phase::Active);
}
