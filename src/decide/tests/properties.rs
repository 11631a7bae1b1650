//! Property tests of the invariants every evaluation must keep, over random
//! policies, requests, reviews and evaluation times.

use proptest::prelude::*;

use super::*;
use crate::api::{Stage, StageOperator, TimeWindow, Weekday};

const PEOPLE: [&str; 7] = [
    "dana",
    "erin",
    "fred",
    "hank",
    "ivan",
    "mia",
    "system:serviceaccount:team:deployer",
];
const GROUPS: [&str; 4] = ["dev", "sre", "leads", "ic"];
/// `spec.subject` of the generated requests ("" = none): the requester, or a grantee.
const SUBJECTS: [&str; 6] = [
    "",
    "",
    "",
    "{kind: User, name: erin}",
    "{kind: Group, name: sre}",
    "{kind: ServiceAccount, name: deployer}",
];

fn base() -> DateTime<Utc> {
    at("2026-11-23T00:00:00Z")
}

prop_compose! {
    fn arb_stage()(name in 0..3usize, groups in proptest::sample::subsequence(GROUPS.to_vec(), 1..3),
                   all in any::<bool>(), min in 1..3u32) -> Stage {
        Stage {
            name: format!("s{name}"),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            users: vec![],
            operator: if all { StageOperator::All } else { StageOperator::Any },
            min_approvals: min,
        }
    }
}

prop_compose! {
    fn arb_policy()(stages in proptest::collection::vec(arb_stage(), 0..3),
                    reviewers in proptest::sample::subsequence(GROUPS.to_vec(), 1..3),
                    min in 1..4u32, force in any::<bool>(), self_ok in any::<bool>(),
                    timeout_h in proptest::option::of(1..30i64),
                    window in proptest::option::of((0..24u32, 1..23u32, proptest::sample::subsequence(vec![Weekday::Mon, Weekday::Tue, Weekday::Sat], 0..3))),
                    max_h in 1..48i64) -> AccessPolicy {
        let mut p = simple_policy();
        let mut stages = stages;
        for (i, s) in stages.iter_mut().enumerate() { s.name = format!("s{i}"); }
        p.spec.approval.stages = stages;
        p.spec.approval.reviewers.groups = reviewers.iter().map(|g| g.to_string()).collect();
        p.spec.approval.min_approvals = min;
        p.spec.approval.force_approval_groups = if force { vec!["ic".into()] } else { vec![] };
        p.spec.approval.allow_self_approval = self_ok;
        p.spec.approval.timeout = timeout_h.map(|h| format!("{h}h"));
        p.spec.duration.default = Some("1h".into());
        p.spec.duration.max = Some(format!("{max_h}h"));
        p.spec.time_window = window.map(|(start, len, days)| TimeWindow {
            timezone: "Europe/Berlin".into(),
            start: format!("{start:02}:00"),
            end: format!("{:02}:00", (start + len) % 24),
            days,
        });
        p
    }
}

prop_compose! {
    fn arb_review()(who in 0..PEOPLE.len(), groups in proptest::sample::subsequence(GROUPS.to_vec(), 0..3),
                    decision in prop_oneof![6 => Just(Decision::Approve), 1 => Just(Decision::Reject),
                                            1 => Just(Decision::Revoke), 1 => Just(Decision::Cancel), 1 => Just(Decision::Comment)],
                    minute in 0..(72 * 60i64), wrong_uid in proptest::bool::weighted(0.05)) -> AccessReview {
        let when = (base() + Duration::minutes(minute)).to_rfc3339();
        let mut r = review(&format!("r{minute}-{who}"), PEOPLE[who], &groups, decision, &when);
        if wrong_uid { if let Some(q) = r.spec.request.as_mut() { q.uid = "stale".into(); } }
        r
    }
}

prop_compose! {
    fn arb_case()(policy in arb_policy(), requester_groups in proptest::sample::subsequence(GROUPS.to_vec(), 0..3),
                  created in 0..(24 * 60i64), duration_h in proptest::option::of(1..72i64),
                  not_before in proptest::option::of(0..(48 * 60i64)),
                  reviews in proptest::collection::vec(arb_review(), 0..12),
                  now1 in 0..(96 * 60i64), later in 0..(48 * 60i64),
                  subject in proptest::sample::select(SUBJECTS.to_vec())) -> (AccessPolicy, ApprovalRequest, Vec<AccessReview>, DateTime<Utc>, DateTime<Utc>) {
        // The policy lets requests name some other subjects; most requests are for the requester.
        let mut policy = policy;
        policy.spec.grantees = serde_saphyr::from_str("users: [erin]\ngroups: [sre]\nserviceAccounts: [{name: deployer}]").unwrap();
        let mut req = request("dana-view", &(base() + Duration::minutes(created)).to_rfc3339(),
                              "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}");
        req.spec.requester.groups.extend(requester_groups.iter().map(|g| g.to_string()));
        req.spec.requester.groups.dedup();
        req.spec.duration = duration_h.map(|h| format!("{h}h"));
        req.spec.not_before = not_before.map(|m| base() + Duration::minutes(m));
        req.spec.subject = (!subject.is_empty()).then(|| serde_saphyr::from_str(subject).unwrap());
        let now1 = base() + Duration::minutes(now1);
        // Names are unique in a namespace: two generated reviews of one person in
        // the same minute would share a name, which no API server allows.
        let mut names = std::collections::BTreeSet::new();
        let reviews: Vec<AccessReview> = reviews.into_iter().filter(|r| names.insert(r.name_any())).collect();
        (policy, req, reviews, now1, now1 + Duration::minutes(later))
    }
}

fn run(p: &AccessPolicy, req: &ApprovalRequest, reviews: &[AccessReview], now: DateTime<Utc>) -> Evaluation {
    run_job(p, req, reviews, now, None)
}

fn window_of(p: &AccessPolicy) -> Option<window::Window> {
    p.spec
        .time_window
        .as_ref()
        .map(|w| window::Window::try_from(w).unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold((p, req, reviews, now, later) in arb_case()) {
        let ev = run(&p, &req, &reviews, now);
        let s = &ev.status;

        // The next deadline is never in the past.
        if let Some(d) = ev.next_deadline {
            prop_assert!(d > now, "deadline {d} is not after {now}");
        }

        let binding = ev.actions.iter().find_map(|a| match a { Action::EnsureBinding(b) => Some(b), _ => None });
        if let Some(b) = binding {
            // Never a grant without quorum (or a force / auto approval).
            prop_assert_eq!(s.phase, Phase::Active);
            let approvals = s.approvals.as_ref().unwrap();
            let forced = s.decisions.iter().any(|d| d.forced && d.accepted);
            prop_assert!(approvals.received >= approvals.required || forced || approvals.summary == "auto");
            // Never past expiry, never before approval or notBefore, never outside the window.
            let expires = s.expires_at.unwrap();
            prop_assert!(now < expires && b.valid_until <= expires);
            prop_assert!(s.approved_at.unwrap() <= now);
            if let Some(nb) = req.spec.not_before { prop_assert!(nb <= now); }
            if let Some(w) = window_of(&p) {
                prop_assert!(w.contains(now), "binding at {now} outside the window");
            }
            prop_assert!(b.valid_until > now);
        } else {
            prop_assert_ne!(s.phase, Phase::Active);
        }

        // A self-approval never counts: neither the requester's nor that of
        // whoever would receive the access.
        if !p.spec.approval.allow_self_approval {
            for d in &s.decisions {
                // Generated review names can repeat; judge by every review of that name.
                let beneficiary = reviews
                    .iter()
                    .filter(|r| r.name_any() == d.review)
                    .all(|r| benefits(&req, &r.spec.reviewer));
                if d.decision == Decision::Approve && (d.reviewer == "dana" || beneficiary) {
                    prop_assert!(!d.accepted, "self-approval accepted: {d:?}");
                }
            }
        }

        // Every review that exists at `now` gets exactly one verdict.
        let existing = reviews.iter().filter(|r| created_at(*r).unwrap() <= now && created_at(&req).unwrap() <= now).count();
        if s.phase != Phase::Denied || existing > 0 {
            prop_assert_eq!(s.decisions.len(), reviews.iter().filter(|r| created_at(*r).unwrap().max(created_at(&req).unwrap()) <= now).count());
        }

        // Evaluating the stored status again gives the identical result.
        let again = run(&p, &stored(&req, &ev), &reviews, now);
        prop_assert_eq!(&again, &ev);

        // Later, with the stored status: a terminal phase never changes, and the
        // result equals a fresh replay (nothing depends on having watched).
        let next = run(&p, &stored(&req, &ev), &reviews, later);
        if s.phase.is_terminal() {
            prop_assert_eq!(next.status.phase, s.phase);
            prop_assert_eq!(next.status.completed_at, s.completed_at);
            prop_assert!(!next.actions.iter().any(|a| matches!(a, Action::EnsureBinding(_))));
        } else {
            let fresh = run(&p, &req, &reviews, later);
            prop_assert_eq!(&next.status.phase, &fresh.status.phase);
            prop_assert_eq!(&next.actions, &fresh.actions);
            prop_assert_eq!(&next.status.grant, &fresh.status.grant);
        }
    }

    #[test]
    fn a_reject_is_final((p, req, reviews, now, _later) in arb_case()) {
        let ev = run(&p, &req, &reviews, now);
        if ev.status.phase == Phase::Rejected {
            let rejected_at = ev.status.completed_at.unwrap();
            let accepted_after = ev.status.decisions.iter().filter(|d| d.at > rejected_at && d.decision != Decision::Comment && d.accepted).count();
            prop_assert_eq!(accepted_after, 0);
            prop_assert!(ev.status.grant.is_none());
        }
    }
}

/// The reviews as the operator leaves them after writing `ev`'s verdicts: each
/// judged at `at` (one pass writes every verdict with the same instant).
fn judged(reviews: &[AccessReview], ev: &Evaluation, at: DateTime<Utc>) -> Vec<AccessReview> {
    reviews
        .iter()
        .map(|r| {
            let mut r = r.clone();
            if let Some(v) = ev.verdicts.iter().find(|v| v.review == r.name_any()) {
                r.status = Some(crate::api::AccessReviewStatus {
                    accepted: Some(v.accepted),
                    reason: Some(v.reason.into()),
                    message: Some(v.message.clone()),
                    observed_at: Some(at),
                });
            }
            r
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    /// A verdict once written does not move: the same evaluation over the judged
    /// reviews gives the same verdicts, and a second click by the same person in
    /// the same second (named to sort first) is the one that does not count.
    #[test]
    fn a_written_verdict_stays((p, req, reviews, now, _later) in arb_case()) {
        let ev = run(&p, &req, &reviews, now);
        let reviews = judged(&reviews, &ev, now);
        let again = run(&p, &req, &reviews, now);
        prop_assert_eq!(&again.verdicts, &ev.verdicts);
        let Some(first) = ev.verdicts.iter().find(|v| v.accepted) else { return Ok(()); };
        let original = reviews.iter().find(|r| r.name_any() == first.review).unwrap();
        let mut twice = original.clone();
        twice.metadata.name = Some(format!("0-{}", first.review));
        twice.status = None;
        let mut with_twice = reviews.clone();
        with_twice.push(twice);
        let later = run(&p, &req, &with_twice, now);
        let kept = later.verdicts.iter().find(|v| v.review == first.review).unwrap();
        prop_assert_eq!(kept, first);
    }
}

/// How the Job fares once created: still running, succeeded or failed after some minutes.
#[derive(Debug, Clone)]
enum Fate {
    Running,
    Succeeds(i64),
    Fails(i64),
    Deleted,
}

fn arb_fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        Just(Fate::Running),
        (0..(6 * 60i64)).prop_map(Fate::Succeeds),
        (0..(6 * 60i64)).prop_map(Fate::Fails),
        Just(Fate::Deleted),
    ]
}

fn one_time(req: &ApprovalRequest) -> ApprovalRequest {
    let mut r = req.clone();
    r.spec.type_ = RequestType::OneTime;
    // A OneTime job runs as its own ServiceAccount and names no subject.
    r.spec.subject = None;
    r.spec.job = Some(crate::api::JobSpec {
        image: "ghcr.io/acme/migrate:1.4".into(),
        command: vec!["migrate".into(), "up".into()],
        ..Default::default()
    });
    r
}

fn run_job(
    p: &AccessPolicy,
    req: &ApprovalRequest,
    reviews: &[AccessReview],
    now: DateTime<Utc>,
    job: Option<&JobObservation>,
) -> Evaluation {
    evaluate(&Input {
        request: req,
        policies: std::slice::from_ref(p),
        reviews,
        namespace_labels: None,
        requester_requests: &[],
        extended: None,
        job,
        protected_namespaces: &[],
        now,
    })
}

/// The Job as the shell would see it at `now`, created at `created`.
fn observe(
    req: &ApprovalRequest,
    created: DateTime<Utc>,
    fate: &Fate,
    now: DateTime<Utc>,
) -> Option<JobObservation> {
    let progress = match fate {
        Fate::Running => JobProgress::Running,
        Fate::Succeeds(m) if created + Duration::minutes(*m) <= now => JobProgress::Succeeded {
            at: created + Duration::minutes(*m),
        },
        Fate::Fails(m) if created + Duration::minutes(*m) <= now => JobProgress::Failed {
            at: created + Duration::minutes(*m),
            message: "BackoffLimitExceeded".into(),
            deadline_exceeded: false,
        },
        Fate::Deleted => return None,
        _ => JobProgress::Running,
    };
    Some(JobObservation {
        name: job::job_ref(req).name,
        uid: "job-1".into(),
        created,
        progress,
    })
}

fn creates(ev: &Evaluation) -> usize {
    ev.actions
        .iter()
        .filter(|a| matches!(a, Action::CreateJob(_)))
        .count()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// A OneTime request follows the shell step by step: evaluate, create the Job
    /// when asked (recording it at once, as the controller does), then evaluate at
    /// a series of later times with the Job as it then is.
    #[test]
    fn one_time_invariants_hold((p, req, reviews, now, _later) in arb_case(), fate in arb_fate(),
                                steps in proptest::collection::vec(0..(3 * 60i64), 1..6)) {
        let req = one_time(&req);
        let mut stored_req = req.clone();
        let mut created: Option<DateTime<Utc>> = None;
        let mut t = now;
        let mut total_creates = 0;
        for (i, step) in std::iter::once(0).chain(steps).enumerate() {
            t += Duration::minutes(step);
            let obs = created.and_then(|c| observe(&req, c, &fate, t));
            let mut ev = run_job(&p, &stored_req, &reviews, t, obs.as_ref());
            let s = &ev.status;

            if let Some(d) = ev.next_deadline { prop_assert!(d > t, "step {i}: deadline {d} not after {t}"); }
            // Evaluating the stored result again gives the identical result.
            let again = run_job(&p, &stored(&stored_req, &ev), &reviews, t, obs.as_ref());
            prop_assert_eq!(&again.status, &ev.status);
            prop_assert_eq!(&again.actions, &ev.actions);

            let binding = ev.actions.iter().find_map(|a| match a { Action::EnsureBinding(b) => Some(b), _ => None });
            let plan = ev.actions.iter().find_map(|a| match a { Action::CreateJob(j) => Some(j), _ => None });
            if binding.is_some() || plan.is_some() {
                // Never a binding or a job without quorum, before the start, past the deadline or outside the window.
                prop_assert_eq!(s.phase, Phase::Processing);
                let approvals = s.approvals.as_ref().unwrap();
                let forced = s.decisions.iter().any(|d| d.forced && d.accepted);
                prop_assert!(approvals.received >= approvals.required || forced || approvals.summary == "auto");
                prop_assert!(s.approved_at.unwrap() <= t);
                if let Some(nb) = req.spec.not_before { prop_assert!(nb <= t); }
                if let Some(w) = window_of(&p) { prop_assert!(w.contains(t), "access at {t} outside the window"); }
                let deadline = s.job.as_ref().and_then(|j| j.deadline).unwrap();
                prop_assert!(t < deadline && deadline <= s.expires_at.unwrap());
                if let Some(b) = binding {
                    prop_assert!(b.valid_until <= deadline);
                    prop_assert_eq!(b.subject.kind, SubjectKind::ServiceAccount);
                }
                if let Some(j) = plan { prop_assert_eq!(j.deadline, deadline); }
            }
            if s.phase != Phase::Processing {
                prop_assert!(binding.is_none() && plan.is_none());
            }

            // The shell: create the Job when asked, and record it in the same status write.
            if plan.is_some() {
                total_creates += 1;
                prop_assert!(created.is_none(), "step {i}: a second CreateJob after the job was created");
                created = Some(t);
                let o = observe(&req, t, &Fate::Running, t).unwrap();
                ev = run_job(&p, &stored(&stored_req, &ev), &reviews, t, Some(&o));
                prop_assert_eq!(creates(&ev), 0);
                prop_assert_eq!(ev.status.job.as_ref().and_then(|j| j.uid.as_deref()), Some("job-1"));
            }
            let before = stored_req.status.as_ref().map(|s| (s.phase, s.completed_at));
            if let Some((phase, completed)) = before.filter(|(p, _)| p.is_terminal()) {
                // Terminal phases are sticky.
                prop_assert_eq!(ev.status.phase, phase);
                prop_assert_eq!(ev.status.completed_at, completed);
            }
            if ev.status.phase.is_terminal() {
                prop_assert!(!ev.actions.iter().any(|a| matches!(a, Action::EnsureBinding(_) | Action::CreateJob(_) | Action::EnsureServiceAccount(_))));
            }
            if ev.status.phase == Phase::Executed {
                prop_assert!(matches!(fate, Fate::Succeeds(_)));
            }
            stored_req = stored(&stored_req, &ev);
        }
        prop_assert!(total_creates <= 1);
        if stored_req.status.as_ref().is_some_and(|s| s.phase == Phase::Rejected) {
            prop_assert!(created.is_none(), "a rejected request ran its job");
        }
    }
}
