//! Scenarios: given these objects at these times, the request is in this phase
//! with this grant. Times are on Monday 2026-11-23 (UTC) unless written out.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};

use super::*;
use crate::api::*;

const UID: &str = "11111111-2222-3333-4444-555555555555";

/// "10:05" → 2026-11-23T10:05:00Z; a full RFC 3339 string is taken as is.
pub(super) fn at(s: &str) -> DateTime<Utc> {
    if s.len() == 5 {
        format!("2026-11-23T{s}:00Z").parse().unwrap()
    } else {
        s.parse().unwrap()
    }
}

pub(super) fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).unwrap())
}

pub(super) fn policy(name: &str, spec_yaml: &str) -> AccessPolicy {
    let spec: AccessPolicySpec = serde_saphyr::from_str(spec_yaml).unwrap();
    let mut p = AccessPolicy::new(name, spec);
    p.metadata.generation = Some(1);
    p
}

/// The usual policy: developers may get `view` in `team`, one SRE approves.
pub(super) fn simple_policy() -> AccessPolicy {
    policy(
        "simple",
        r#"
requesters: {groups: [dev]}
roles: [{kind: ClusterRole, name: view}]
namespaces: {names: [team]}
duration: {default: 1h, max: 4h}
approval: {reviewers: {groups: [sre]}}
oneTime: {}
"#,
    )
}

pub(super) fn request(name: &str, created: &str, spec_yaml: &str) -> ApprovalRequest {
    let spec: ApprovalRequestSpec = serde_saphyr::from_str(spec_yaml).unwrap();
    ApprovalRequest {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team".into()),
            uid: Some(UID.into()),
            generation: Some(1),
            creation_timestamp: Some(k8s_time(at(created))),
            ..Default::default()
        },
        spec,
        status: None,
    }
}

/// Dana (group dev) asks for `view` in `team` at 10:00.
pub(super) fn dana_view() -> ApprovalRequest {
    request(
        "dana-view",
        "10:00",
        "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}",
    )
}

pub(super) fn review(name: &str, who: &str, groups: &[&str], decision: Decision, when: &str) -> AccessReview {
    AccessReview {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some("team".into()),
            creation_timestamp: Some(k8s_time(at(when))),
            ..Default::default()
        },
        spec: AccessReviewSpec {
            request: Some(RequestRef {
                name: "dana-view".into(),
                uid: UID.into(),
            }),
            decision,
            reviewer: Identity {
                username: who.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            ..Default::default()
        },
        status: None,
    }
}

pub(super) fn approve(who: &str, groups: &[&str], when: &str) -> AccessReview {
    review(
        &format!("{who}-{}", when.replace(':', "")),
        who,
        groups,
        Decision::Approve,
        when,
    )
}

pub(super) fn with_comment(mut r: AccessReview, c: &str) -> AccessReview {
    r.spec.comment = Some(c.into());
    r
}

pub(super) fn for_request(mut r: AccessReview, name: &str) -> AccessReview {
    if let Some(q) = r.spec.request.as_mut() {
        q.name = name.into();
    }
    r
}

pub(super) fn eval_with<'a>(
    policies: &'a [AccessPolicy],
    req: &'a ApprovalRequest,
    reviews: &'a [AccessReview],
    now: &str,
    tweak: impl FnOnce(&mut Input<'a>),
) -> Evaluation {
    let mut input = Input {
        request: req,
        policies,
        reviews,
        namespace_labels: None,
        requester_requests: &[],
        extended: None,
        job: None,
        protected_namespaces: &[],
        now: at(now),
    };
    tweak(&mut input);
    evaluate(&input)
}

pub(super) fn eval(
    policies: &[AccessPolicy],
    req: &ApprovalRequest,
    reviews: &[AccessReview],
    now: &str,
) -> Evaluation {
    eval_with(policies, req, reviews, now, |_| {})
}

pub(super) fn cond<'a>(ev: &'a Evaluation, type_: &str) -> &'a Condition {
    ev.status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

pub(super) fn verdict<'a>(ev: &'a Evaluation, review: &str) -> &'a Verdict {
    ev.verdicts
        .iter()
        .find(|v| v.review == review)
        .unwrap_or_else(|| panic!("no verdict for {review}: {:#?}", ev.verdicts))
}

pub(super) fn denial(ev: &Evaluation) -> (String, String) {
    assert_eq!(ev.status.phase, Phase::Denied, "{:#?}", ev.status);
    let c = cond(ev, APPROVED);
    (c.reason.clone(), c.message.clone())
}

pub(super) fn has_binding(ev: &Evaluation) -> bool {
    ev.actions.iter().any(|a| matches!(a, Action::EnsureBinding(_)))
}

pub(super) fn binding(ev: &Evaluation) -> &Binding {
    ev.actions
        .iter()
        .find_map(|a| match a {
            Action::EnsureBinding(b) => Some(b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no binding: {:#?}", ev.actions))
}

/// Feeds the stored status back, as the controller does on the next reconcile.
pub(super) fn stored(req: &ApprovalRequest, ev: &Evaluation) -> ApprovalRequest {
    let mut r = req.clone();
    r.status = Some(ev.status.clone());
    r
}

pub(super) fn staged_policy() -> AccessPolicy {
    policy(
        "staged",
        r#"
requesters: {groups: [dev]}
roles: [{kind: ClusterRole, name: view}]
namespaces: {names: [team]}
duration: {default: 1h, max: 4h}
approval:
  minApprovals: 3
  stages:
    - {name: lead, groups: [leads]}
    - {name: security, operator: All, groups: [security, compliance]}
  forceApprovalGroups: [ic]
  escalation: {after: 1h, groups: [oncall]}
  timeout: 4h
"#,
    )
}

pub(super) fn windowed_policy(window: &str) -> AccessPolicy {
    let mut p = simple_policy();
    p.spec.duration.max = Some("24h".into());
    p.spec.time_window = Some(serde_saphyr::from_str(window).unwrap());
    p
}

mod approvals;
mod justification;
mod onetime;
mod outcomes;
mod properties;
mod selection;
mod status;
mod windows;
