//! Requests that are over: denied at first sight, or ended and kept as the audit
//! record until their retention passes.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{
    duration,
    model::{Action, Denial, Evaluation, Input, Verdict},
    naming::binding_ref,
    onetime::one_time_cleanup,
    policy::DEFAULT_RETENTION,
    reason::{condition::*, ApprovalKind, DenialReason, Ending, Progress, VerdictReason},
    replay::Recorded,
    status::{condition, record, settle_conditions},
};
use crate::api::{AccessReview, ApprovalRequestStatus, ConditionStatus, Phase};

/// Reviews that arrive after the end get a verdict; nothing else changes.
pub fn keep_terminal(
    input: &Input,
    mut status: ApprovalRequestStatus,
    reviews: &[(&AccessReview, DateTime<Utc>)],
) -> Evaluation {
    let phase = status.phase;
    let mut verdicts = Vec::new();
    for (review, t) in reviews {
        let name = review.name_any();
        if let Some(d) = status.decisions.iter().find(|d| d.review == name) {
            verdicts.push(Verdict {
                review: name,
                accepted: d.accepted,
                // A reason this version does not know (written by another one) reads as NotPending.
                reason: VerdictReason::parse(&d.reason).unwrap_or(VerdictReason::NotPending),
                message: d.message.clone(),
            });
            continue;
        }
        let message = format!("the request is already {phase}");
        let v = late(review, *t, message);
        status.decisions.push(record(&v));
        verdicts.push(v.verdict);
    }
    status.observed_generation = input.request.metadata.generation;
    let mut actions = Vec::new();
    if status.grant.is_some() {
        actions.push(Action::RemoveBinding(binding_ref(input.request)));
    }
    actions.extend(one_time_cleanup(input.request, &status));
    let retention = retention_deadline(&status);
    if retention.is_some_and(|d| d <= input.now) {
        actions.push(Action::DeleteRecord);
    }
    let (approval, ending) = stored_outcome(&status);
    Evaluation {
        next_deadline: retention.filter(|d| *d > input.now),
        status,
        actions,
        verdicts,
        approval,
        ending,
    }
}

/// How a stored terminal status says the request was approved and ended.
fn stored_outcome(status: &ApprovalRequestStatus) -> (Option<ApprovalKind>, Option<Ending>) {
    let reason = |t: &str, s: ConditionStatus| {
        status
            .conditions
            .iter()
            .find(|c| c.type_ == t && c.status == s)
            .map(|c| c.reason.as_str())
    };
    let approval = reason(APPROVED, ConditionStatus::True).and_then(ApprovalKind::parse);
    let ending = match status.phase {
        Phase::Denied => reason(APPROVED, ConditionStatus::False)
            .and_then(DenialReason::parse)
            .map(Ending::Denied),
        _ => reason(COMPLETE, ConditionStatus::True).and_then(Ending::parse),
    };
    (approval, ending)
}

/// A review that arrived once the request was over.
fn late(review: &AccessReview, t: DateTime<Utc>, message: String) -> Recorded {
    Recorded {
        verdict: Verdict {
            review: review.name_any(),
            accepted: false,
            reason: VerdictReason::NotPending,
            message,
        },
        decision: review.spec.decision,
        reviewer: review.spec.reviewer.username.clone(),
        at: t,
        forced: false,
    }
}

/// When the audit record of an ended request is deleted.
pub fn retention_deadline(status: &ApprovalRequestStatus) -> Option<DateTime<Utc>> {
    let retention = status
        .requirements
        .as_ref()
        .and_then(|r| duration::parse(&r.retention).ok())
        .unwrap_or(DEFAULT_RETENTION);
    status.completed_at.map(|c| c + retention)
}

/// A request the policy refused at first sight: denied at `created` (its
/// creation, or the end of the wait for a named policy), kept for the default
/// retention.
pub fn denied(
    input: &Input,
    created: DateTime<Utc>,
    denial: Denial,
    reviews: &[(&AccessReview, DateTime<Utc>)],
) -> Evaluation {
    let generation = input.request.metadata.generation;
    let prev = input.request.status.clone().unwrap_or_default();
    let mut status = ApprovalRequestStatus {
        phase: Phase::Denied,
        completed_at: Some(created),
        observed_generation: generation,
        ..Default::default()
    };
    let mut verdicts = Vec::new();
    for (review, t) in reviews {
        let v = late(review, *t, "the request was denied by policy".into());
        status.decisions.push(record(&v));
        verdicts.push(v.verdict);
    }
    let denied = Progress::Denied.as_str();
    status.conditions = settle_conditions(
        vec![
            condition(
                APPROVED,
                ConditionStatus::False,
                denial.reason.as_str(),
                denial.message.clone(),
                created,
                generation,
            ),
            condition(
                GRANTED,
                ConditionStatus::False,
                denied,
                "no access was granted".into(),
                created,
                generation,
            ),
            condition(
                COMPLETE,
                ConditionStatus::True,
                denied,
                denial.message,
                created,
                generation,
            ),
        ],
        &prev.conditions,
    );
    let deadline = created + DEFAULT_RETENTION;
    let actions = if deadline <= input.now {
        vec![Action::DeleteRecord]
    } else {
        Vec::new()
    };
    Evaluation {
        status,
        actions,
        verdicts,
        next_deadline: (deadline > input.now).then_some(deadline),
        approval: None,
        ending: Some(Ending::Denied(denial.reason)),
    }
}

/// How long a request waits for the policy it names before it is denied with
/// `PolicyNotFound`. A GitOps sync applies a policy and the requests naming it
/// together, in any order, and the operator may see a request before its policy.
pub const POLICY_WAIT: chrono::Duration = chrono::Duration::minutes(5);

/// A request whose named policy does not exist (yet): `Pending` with `Approved`
/// false for `PolicyNotFound` until `deadline`, when it is evaluated again (a new
/// policy wakes it sooner). Reviews wait too: they are replayed once the policy
/// is there.
pub fn awaiting_policy(
    input: &Input,
    created: DateTime<Utc>,
    denial: Denial,
    deadline: DateTime<Utc>,
) -> Evaluation {
    let generation = input.request.metadata.generation;
    let prev = input.request.status.clone().unwrap_or_default();
    let message = format!(
        "{}; the request waits for it until {} and is denied if it does not appear by then",
        denial.message,
        deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let status = ApprovalRequestStatus {
        phase: Phase::Pending,
        observed_generation: generation,
        conditions: settle_conditions(
            vec![
                condition(
                    APPROVED,
                    ConditionStatus::False,
                    denial.reason.as_str(),
                    message,
                    created,
                    generation,
                ),
                condition(
                    GRANTED,
                    ConditionStatus::False,
                    Progress::NotApproved.as_str(),
                    "no access was granted".into(),
                    created,
                    generation,
                ),
                condition(
                    COMPLETE,
                    ConditionStatus::False,
                    Progress::InProgress.as_str(),
                    "waiting for the policy the request names".into(),
                    created,
                    generation,
                ),
            ],
            &prev.conditions,
        ),
        ..Default::default()
    };
    Evaluation {
        status,
        actions: Vec::new(),
        verdicts: Vec::new(),
        next_deadline: Some(deadline),
        approval: None,
        ending: None,
    }
}
