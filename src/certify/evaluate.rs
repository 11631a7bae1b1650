//! One item, evaluated: the recommendation (against the cluster now), the replay of
//! its reviews, what happens to the access, and the remediation, as the complete
//! status the operator writes.

use chrono::{DateTime, Utc};

use super::{
    assess::{assess, Assessment},
    inventory::{BindingFacts, Inventory},
    protect::OperatorIdentity,
    remediation::{plan, RemediationStep},
    replay::{listed, replay, Closure, Replay, ReplayInput},
    usage::weigh,
};
use crate::api::{
    AccessCertification, AccessCertificationStatus, AccessPolicy, AccessReview, ClosedBy, Condition,
    ConditionStatus, Decision, ItemDecision, ItemDecisionRecord, LevelState, LevelStatus, NoDecision,
    Outcome, Principals, Recommendation, RemediationState, RemediationStatus, ReviewVerdict,
};
use crate::decide::{
    eligibility::describe,
    status::{condition, settle_conditions},
};

/// Condition type: the item is closed (decided, or due).
pub const DECIDED: &str = "Decided";
/// Condition type: the removal of revoked access is complete.
pub const REMEDIATED: &str = "Remediated";

/// Everything one evaluation of an item looks at.
#[derive(Clone, Copy)]
pub struct ItemInput<'a> {
    /// The item, with its stored status (if any).
    pub item: &'a AccessCertification,
    /// AccessReviews in the item's namespace that name it.
    pub reviews: &'a [AccessReview],
    /// AccessPolicies, for `convertTo`.
    pub policies: &'a [AccessPolicy],
    /// The cluster now: the binding, its role, namespaces, ServiceAccounts.
    pub inventory: &'a Inventory,
    /// The evaluation time.
    pub now: DateTime<Utc>,
    /// Who the operator is (its own access is never removed); `None` when not
    /// known.
    pub operator: Option<&'a OperatorIdentity>,
}

/// The operator's verdict on one review, for the review's own status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Name of the AccessReview.
    pub review: String,
    /// Whether it counted.
    pub accepted: bool,
    /// How it counted or why not.
    pub reason: ReviewVerdict,
    /// In words.
    pub message: String,
}

/// The result of evaluating one item.
#[derive(Debug, Clone, PartialEq)]
pub struct ItemEvaluation {
    /// The complete status to store.
    pub status: AccessCertificationStatus,
    /// Verdict on each review that exists at `now`, in replay order.
    pub verdicts: Vec<Verdict>,
    /// The write to make now (`remediation: Automatic`, revoked access still there).
    pub remediate: Option<RemediationStep>,
    /// The next instant at which evaluating again can give another answer.
    pub next_deadline: Option<DateTime<Utc>>,
}

/// The binding as the item snapshot describes it (enough to assess the role).
fn snapshot_facts(item: &AccessCertification) -> BindingFacts {
    let b = &item.spec.binding;
    BindingFacts {
        kind: b.kind,
        namespace: b.namespace.clone(),
        name: b.name.clone(),
        uid: b.uid.clone(),
        role: item.spec.role_ref.clone(),
        subjects: vec![item.spec.subject.clone()],
        ..Default::default()
    }
}

/// What happens to the access, once the item is closed.
fn outcome(
    closure: Option<Closure>,
    on_no_decision: NoDecision,
    assessment: &Assessment,
) -> (ItemDecision, Outcome, Option<ClosedBy>) {
    match closure {
        None => (ItemDecision::Unreviewed, Outcome::Open, None),
        Some(Closure::Reviewed {
            decision: Decision::Revoke,
            ..
        }) => (ItemDecision::Revoked, Outcome::Remove, Some(ClosedBy::Reviewers)),
        Some(Closure::Reviewed { .. }) => (ItemDecision::Approved, Outcome::Keep, Some(ClosedBy::Reviewers)),
        Some(Closure::Due { .. }) => {
            let (outcome, by) = match on_no_decision {
                NoDecision::Keep => (Outcome::Keep, ClosedBy::NoDecisionKeep),
                NoDecision::Revoke => (Outcome::Remove, ClosedBy::NoDecisionRevoke),
                NoDecision::Recommendation if assessment.recommendation == Recommendation::Revoke => {
                    (Outcome::Remove, ClosedBy::NoDecisionRecommendation)
                }
                NoDecision::Recommendation => (Outcome::Keep, ClosedBy::NoDecisionRecommendation),
            };
            (ItemDecision::Unreviewed, outcome, Some(by))
        }
    }
}

fn level_statuses(r: &Replay) -> Vec<LevelStatus> {
    let due = matches!(r.closure, Some(Closure::Due { .. }));
    r.levels
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let state = match (&l.decided, r.open) {
                (Some(_), _) => LevelState::Decided,
                (None, Some(open)) if open == i => LevelState::Open,
                (None, _) if due => LevelState::Expired,
                (None, _) => LevelState::Waiting,
            };
            LevelStatus {
                name: l.name.clone(),
                state,
                decision: l.decided.as_ref().map(|d| d.decision),
                reviewed_by: l.decided.as_ref().map(|d| d.by.clone()),
                reviewed_at: l.decided.as_ref().map(|d| d.at),
                comment: l.decided.as_ref().and_then(|d| d.comment.clone()),
                opened_at: l.opened_at,
                reassigned_to: l.reassigned_to.clone(),
                escalated_at: l.escalated_at,
            }
        })
        .collect()
}

/// The `Decided` condition, and `Remediated` once access is to be removed
/// (built as the request's conditions are, [`condition`]).
fn conditions(
    input: &ItemInput,
    prev: &[Condition],
    (decision, outcome, closed_by, closed_at): (
        ItemDecision,
        Outcome,
        Option<ClosedBy>,
        Option<DateTime<Utc>>,
    ),
    eligible_now: Option<&Principals>,
    remediation: Option<&RemediationStatus>,
) -> Vec<Condition> {
    let generation = input.item.metadata.generation;
    let mut conditions = vec![match (closed_by, closed_at) {
        (Some(by), Some(at)) => condition(
            DECIDED,
            ConditionStatus::True,
            by.as_str(),
            format!("closed with decision {decision}; the access: {outcome}"),
            at,
            generation,
        ),
        _ => condition(
            DECIDED,
            ConditionStatus::False,
            "AwaitingReview",
            format!(
                "who can decide now: {}",
                describe(eligible_now.unwrap_or(&Principals::default()))
            ),
            input.item.spec.started_at,
            generation,
        ),
    }];
    if let Some(rem) = remediation {
        let done = matches!(rem.state, RemediationState::Done | RemediationState::Gone);
        conditions.push(condition(
            REMEDIATED,
            if done {
                ConditionStatus::True
            } else {
                ConditionStatus::False
            },
            &rem.state.to_string(),
            rem.message.clone(),
            input.now,
            generation,
        ));
    }
    // A condition keeps its transition time while its status does not change.
    settle_conditions(conditions, prev)
}

/// Evaluates one item. See the module documentation.
pub fn evaluate(input: &ItemInput) -> ItemEvaluation {
    let item = input.item;
    let spec = &item.spec;
    let now = input.now;
    let prev = item.status.clone().unwrap_or_default();
    let generation = item.metadata.generation;
    let unused_for = spec
        .review
        .unused_for
        .as_deref()
        .and_then(|d| crate::decide::duration::parse(d).ok());
    let usage = input
        .inventory
        .usage
        .as_ref()
        .and_then(|u| u.judge(&spec.binding, &spec.subject, unused_for, now));
    let assessment = weigh(
        assess(
            input.inventory,
            &snapshot_facts(item),
            &spec.subject,
            Some(&spec.rules_digest),
        ),
        usage.as_ref(),
    );
    let namespace_labels = spec
        .binding
        .namespace
        .as_deref()
        .and_then(|ns| input.inventory.namespace(ns))
        .map(|n| &n.labels);
    let r = replay(ReplayInput {
        item,
        reviews: input.reviews,
        policies: input.policies,
        namespace_labels,
        now,
    });
    let (decision, outcome, closed_by) = outcome(r.closure, spec.review.on_no_decision, &assessment);
    let closed_at = r.closure.map(|c| match c {
        Closure::Reviewed { at, .. } | Closure::Due { at } => at,
    });
    let done_before = prev
        .remediation
        .as_ref()
        .filter(|r| r.state == RemediationState::Done);
    let (remediation, remediate) = match (outcome, done_before) {
        // Once the access is gone it stays gone for this item: the binding the
        // operator deleted (or that was deleted after the subject was removed) is
        // no longer "Gone before remediation".
        (Outcome::Remove, Some(done)) => (Some(done.clone()), None),
        (Outcome::Remove, None) => {
            let (s, step) = plan(spec, input.inventory, input.operator);
            (Some(s), step)
        }
        _ => (None, None),
    };
    let converted_to = match r.closure {
        Some(Closure::Reviewed {
            decision: Decision::Revoke,
            ..
        }) => r
            .levels
            .last()
            .and_then(|l| l.decided.as_ref())
            .and_then(|d| d.convert_to.clone()),
        _ => None,
    };

    let conditions = conditions(
        input,
        &prev.conditions,
        (decision, outcome, closed_by, closed_at),
        r.eligible_now.as_ref(),
        remediation.as_ref(),
    );
    let risk_summary = (!assessment.risk.is_empty()).then(|| {
        assessment
            .risk
            .iter()
            .map(|t| t.label())
            .collect::<Vec<_>>()
            .join(",")
    });
    let open_reassigned = r.open.and_then(|i| r.levels[i].reassigned_to.clone());
    let listed = listed(&r.records);
    let status = AccessCertificationStatus {
        decision,
        outcome,
        closed_by,
        closed_at,
        levels: level_statuses(&r),
        reviewers: r.eligible_now.clone(),
        reassigned_to: open_reassigned,
        recommendation: Some(assessment.recommendation),
        reasons: assessment.findings.clone(),
        risk: assessment.risk.clone(),
        usage: usage.map(|u| u.usage),
        risk_summary,
        converted_to,
        remediation,
        decisions: listed
            .records
            .iter()
            .map(|rec| ItemDecisionRecord {
                review: rec.review.clone(),
                reviewer: rec.reviewer.clone(),
                decision: rec.decision,
                at: rec.at,
                level: rec.level.clone(),
                accepted: rec.verdict.accepted(),
                reason: rec.verdict,
                message: rec.message.clone(),
            })
            .collect(),
        ignored_reviews: listed.ignored,
        omitted_reviews: listed.omitted,
        conditions,
        observed_generation: generation,
        // Written once by the operator when it issued the item; kept as is.
        issued_digest: prev.issued_digest.clone(),
    };
    let verdicts = r
        .records
        .iter()
        .map(|rec| Verdict {
            review: rec.review.clone(),
            accepted: rec.verdict.accepted(),
            reason: rec.verdict,
            message: rec.message.clone(),
        })
        .collect();
    ItemEvaluation {
        status,
        verdicts,
        remediate,
        next_deadline: r.next_deadline,
    }
}
