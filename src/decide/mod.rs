//! The decision core: every access rule of Gatehouse, and nothing else.
//!
//! `evaluate(input)` takes a request, the policies, the reviews that name the
//! request, a few facts about other objects, and `now`; it returns the request's
//! complete status, the actions that make the cluster match it, each review's
//! verdict, and the next instant at which the answer can change. No I/O, no clock.
//!
//! The evaluation replays the request's history from its creation: reviews in the
//! order the API server stamped them, and the deadlines (timeout, escalation,
//! window edges, expiry) between them. The same inputs therefore always give the
//! same status, whether the operator watched every step or was down for a day,
//! and `simulate` can show any moment of a request's life. Two facts are sticky
//! and come from the stored status instead: the policy snapshot taken at the first
//! evaluation, and a terminal phase, which never changes again.
//!
//! The rooms, in the order an evaluation walks through them:
//! - [`model`]: what goes in ([`Input`]) and comes out ([`Evaluation`], [`Action`], [`Verdict`]);
//! - [`admit`]: the first evaluation: which policy, and whether it admits the request
//!   (never in a [`protected`] namespace; a named policy not there yet is waited for);
//! - [`policy`]: the policy snapshot as validated [`policy::Rules`];
//! - [`replay`], [`review`], [`eligibility`], [`tally`]: the history, one review at a time;
//! - [`related`]: rules over the requester's other requests (live grants, supersession);
//! - [`onetime`] and [`job`]: OneTime requests and their Job;
//! - [`status`] and [`terminal`]: the status, actions and next deadline;
//! - [`window`], [`duration`], [`timestamp`], [`naming`], [`reason`]: the vocabulary.

pub mod admit;
pub mod duration;
pub mod eligibility;
pub mod job;
pub mod model;
pub mod naming;
pub mod onetime;
pub mod order;
pub mod policy;
pub mod protected;
pub mod reason;
pub mod related;
pub mod replay;
mod review;
pub mod status;
pub mod tally;
pub mod terminal;
pub mod timestamp;
pub mod window;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

pub use self::{
    eligibility::{escalation_at, escalation_of, is_beneficiary, self_approval_barred},
    job::{JobObservation, JobPlan, JobProgress, ObjectName},
    model::{Action, Binding, BindingRef, Denial, Evaluation, Input, Supersession, Verdict},
    naming::{benefits, binding_name, binding_ref, subject_of},
    reason::condition::{APPROVED, COMPLETE, GRANTED},
    timestamp::{created_at, to_chrono},
};
use self::{
    reason::DenialReason,
    replay::Replay,
    terminal::{awaiting_policy, denied, keep_terminal, POLICY_WAIT},
};
use crate::api::{AccessReview, Decision, RequestType};

/// Evaluates one request. See the module documentation.
pub fn evaluate(input: &Input) -> Evaluation {
    let req = input.request;
    let now = input.now;
    let created = created_at(req).unwrap_or(now);
    let prev = req.status.clone().unwrap_or_default();
    let reviews = history(input, created);

    if req.status.is_some() && prev.phase.is_terminal() {
        return keep_terminal(input, prev, &reviews);
    }
    let requirements = match &prev.requirements {
        Some(r) => Ok(r.clone()),
        None => admit::first_admission(input),
    };
    // A named policy that memory does not show (yet) is waited for: it may be
    // applied together with the request and arrive a moment later.
    let mut denied_at = created;
    if let Err(d) = &requirements {
        if d.reason == DenialReason::PolicyNotFound {
            let deadline = created + POLICY_WAIT;
            if now < deadline {
                return awaiting_policy(input, created, d.clone(), deadline);
            }
            denied_at = deadline;
        }
    }
    let rules = requirements.as_ref().map_err(Clone::clone).and_then(|r| {
        policy::rules_from_snapshot(r).map_err(|e| {
            Denial::new(
                DenialReason::InvalidPolicy,
                format!("the policy snapshot is invalid: {e}"),
            )
        })
    });
    let (requirements, rules) = match (requirements, rules) {
        (Ok(snapshot), Ok(rules)) => (snapshot, rules),
        (_, Err(denial)) | (Err(denial), _) => return denied(input, denied_at, denial, &reviews),
    };
    let job = (req.spec.type_ == RequestType::OneTime).then(|| onetime::job_facts(input, &prev));
    let mut replay = Replay::new(input, &rules, created, job);
    replay.run(&reviews);
    status::build(&replay, requirements, &prev)
}

/// The reviews of the request that exist at `now`, each with the instant it
/// takes effect (never before the request), in the order they are replayed.
fn history<'a>(input: &Input<'a>, created: DateTime<Utc>) -> Vec<(&'a AccessReview, DateTime<Utc>)> {
    let name = input.request.name_any();
    let now = input.now;
    let mut reviews: Vec<(&AccessReview, DateTime<Utc>)> = input
        .reviews
        .iter()
        .filter(|r| r.spec.request.as_ref().is_some_and(|q| q.name == name))
        .map(|r| (r, created_at(r).unwrap_or(now).max(created)))
        .filter(|(_, t)| *t <= now)
        .collect();
    // Within one second, the order that grants the least: a reject or cancel
    // before an approval, a revoke after it.
    order::sort_for_replay(&mut reviews, |r| match r.spec.decision {
        Decision::Comment | Decision::Reassign => 0,
        Decision::Reject | Decision::Cancel => 1,
        Decision::Approve => 2,
        Decision::Revoke => 3,
    });
    reviews
}

#[cfg(test)]
mod tests;
