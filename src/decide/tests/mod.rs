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

fn k8s_time(t: DateTime<Utc>) -> Time {
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

fn with_comment(mut r: AccessReview, c: &str) -> AccessReview {
    r.spec.comment = Some(c.into());
    r
}

fn for_request(mut r: AccessReview, name: &str) -> AccessReview {
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

fn cond<'a>(ev: &'a Evaluation, type_: &str) -> &'a Condition {
    ev.status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

fn verdict<'a>(ev: &'a Evaluation, review: &str) -> &'a Verdict {
    ev.verdicts
        .iter()
        .find(|v| v.review == review)
        .unwrap_or_else(|| panic!("no verdict for {review}: {:#?}", ev.verdicts))
}

fn denial(ev: &Evaluation) -> (String, String) {
    assert_eq!(ev.status.phase, Phase::Denied, "{:#?}", ev.status);
    let c = cond(ev, APPROVED);
    (c.reason.clone(), c.message.clone())
}

fn has_binding(ev: &Evaluation) -> bool {
    ev.actions.iter().any(|a| matches!(a, Action::EnsureBinding(_)))
}

fn binding(ev: &Evaluation) -> &Binding {
    ev.actions
        .iter()
        .find_map(|a| match a {
            Action::EnsureBinding(b) => Some(b),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no binding: {:#?}", ev.actions))
}

/// Feeds the stored status back, as the controller does on the next reconcile.
fn stored(req: &ApprovalRequest, ev: &Evaluation) -> ApprovalRequest {
    let mut r = req.clone();
    r.status = Some(ev.status.clone());
    r
}

// ---------------------------------------------------------------- policy selection

#[test]
fn the_only_matching_policy_is_chosen() {
    let other = policy(
        "other",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: edit}]\nnamespaces: {names: [team]}\napproval: {reviewers: {groups: [sre]}}",
    );
    let ev = eval(&[other, simple_policy()], &dana_view(), &[], "10:01");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.status.requirements.as_ref().unwrap().policy, "simple");
}

#[test]
fn no_matching_policy_is_denied_naming_the_policies_that_grant_the_role() {
    let mut req = dana_view();
    req.spec.requester.groups = vec!["marketing".into()];
    let (reason, message) = denial(&eval(&[simple_policy()], &req, &[], "10:01"));
    assert_eq!(reason, "NoMatchingPolicy");
    assert!(
        message.contains("policies that grant ClusterRole/view: simple"),
        "{message}"
    );
    let mut req = dana_view();
    req.spec.role.name = "cluster-admin".into();
    let (_, message) = denial(&eval(&[simple_policy()], &req, &[], "10:01"));
    assert!(
        message.contains("no policy grants ClusterRole/cluster-admin"),
        "{message}"
    );
}

#[test]
fn two_matching_policies_without_a_name_are_ambiguous() {
    let mut twin = simple_policy();
    twin.metadata.name = Some("twin".into());
    let (reason, message) = denial(&eval(
        &[twin.clone(), simple_policy()],
        &dana_view(),
        &[],
        "10:01",
    ));
    assert_eq!(reason, "AmbiguousPolicy");
    assert!(
        message.contains("simple, twin") && message.contains("spec.policy"),
        "{message}"
    );
    let mut named = dana_view();
    named.spec.policy = Some("twin".into());
    let ev = eval(&[twin, simple_policy()], &named, &[], "10:01");
    assert_eq!(ev.status.requirements.unwrap().policy, "twin");
}

#[test]
fn a_named_policy_must_exist_and_allow_the_request() {
    let mut req = dana_view();
    req.spec.policy = Some("nope".into());
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "PolicyNotFound"
    );

    req.spec.policy = Some("simple".into());
    req.spec.requester.groups = vec!["ops".into()];
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "RequesterNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.spec.role.name = "edit".into();
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "RoleNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.metadata.namespace = Some("prod".into());
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "NamespaceNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.spec.scope = crate::api::Scope::Cluster;
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "ClusterScopeNotAllowed"
    );
}

#[test]
fn cluster_scope_needs_the_policy_to_allow_it_and_uses_a_cluster_role_binding() {
    let p = policy(
        "cluster",
        "requesters: {users: [dana]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {allowClusterScope: true}\napproval: {reviewers: {users: [erin]}}",
    );
    let mut req = dana_view();
    req.spec.scope = crate::api::Scope::Cluster;
    let ev = eval(&[p], &req, &[approve("erin", &[], "10:05")], "10:06");
    let b = binding(&ev);
    assert_eq!(b.target.kind, BindingKind::ClusterRoleBinding);
    assert_eq!(b.target.namespace, None);
    assert!(
        b.target.name.starts_with("gatehouse-team.dana-view-"),
        "{}",
        b.target.name
    );
}

#[test]
fn namespaces_can_be_selected_by_label() {
    let p = policy(
        "labelled",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {selector: {matchLabels: {tier: prod}}}\napproval: {reviewers: {groups: [sre]}}",
    );
    let prod: BTreeMap<String, String> = [("tier".to_string(), "prod".to_string())].into();
    let ev = eval_with(std::slice::from_ref(&p), &dana_view(), &[], "10:01", |i| {
        i.namespace_labels = Some(&prod)
    });
    assert_eq!(ev.status.phase, Phase::Pending);
    let dev: BTreeMap<String, String> = [("tier".to_string(), "dev".to_string())].into();
    let ev = eval_with(std::slice::from_ref(&p), &dana_view(), &[], "10:01", |i| {
        i.namespace_labels = Some(&dev)
    });
    assert_eq!(denial(&ev).0, "NoMatchingPolicy");
    // Labels unknown: a selector cannot match.
    assert_eq!(
        denial(&eval(&[p], &dana_view(), &[], "10:01")).0,
        "NoMatchingPolicy"
    );
}

#[test]
fn an_invalid_policy_denies_with_the_field_named() {
    let p = policy(
        "broken",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {names: [team]}\napproval: {reviewers: {groups: [sre]}}\ntimeWindow: {timezone: Mars/Olympus, start: '08:00', end: '18:00'}",
    );
    let (reason, message) = denial(&eval(&[p], &dana_view(), &[], "10:01"));
    assert_eq!(reason, "InvalidPolicy");
    assert!(message.contains("Mars/Olympus"), "{message}");
}

// ---------------------------------------------------------------- duration and justification

#[test]
fn duration_defaults_from_the_policy_and_is_capped_at_its_maximum() {
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05")],
        "10:06",
    );
    assert_eq!(ev.status.expires_at, Some(at("11:05")), "policy default 1h");

    let mut long = dana_view();
    long.spec.duration = Some("12h".into());
    let ev = eval(
        &[simple_policy()],
        &long,
        &[approve("erin", &["sre"], "10:05")],
        "10:06",
    );
    assert_eq!(ev.status.requirements.as_ref().unwrap().duration, "4h");
    assert_eq!(
        ev.status.expires_at,
        Some(at("14:05")),
        "capped at the policy max 4h"
    );

    let bare = policy(
        "bare",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {names: [team]}\napproval: {reviewers: {groups: [sre]}}",
    );
    let ev = eval(
        &[bare],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05")],
        "10:06",
    );
    assert_eq!(ev.status.requirements.unwrap().duration, "1h", "built-in default");
}

#[test]
fn a_reason_is_required_when_the_policy_requires_justification() {
    let mut p = simple_policy();
    p.spec.justification = Justification::RequireForAll;
    let (reason, message) = denial(&eval(std::slice::from_ref(&p), &dana_view(), &[], "10:01"));
    assert_eq!(reason, "ReasonRequired");
    assert!(message.contains("spec.reason"));
    let mut req = dana_view();
    req.spec.reason = Some("incident 42".into());
    assert_eq!(eval(&[p], &req, &[], "10:01").status.phase, Phase::Pending);
}

#[test]
fn reject_and_revoke_need_a_comment_when_the_policy_says_so() {
    let mut p = simple_policy();
    p.spec.justification = Justification::RequireForAll;
    let mut req = dana_view();
    req.spec.reason = Some("incident 42".into());
    let bare_reject = review("r1", "erin", &["sre"], Decision::Reject, "10:05");
    let ev = eval(
        std::slice::from_ref(&p),
        &req,
        std::slice::from_ref(&bare_reject),
        "10:06",
    );
    assert_eq!(verdict(&ev, "r1").reason, reason::VerdictReason::CommentRequired);
    assert_eq!(ev.status.phase, Phase::Pending);
    let ev = eval(
        std::slice::from_ref(&p),
        &req,
        &[with_comment(bare_reject, "not now")],
        "10:06",
    );
    assert_eq!(ev.status.phase, Phase::Rejected);

    p.spec.justification = Justification::RequireForRevoke;
    let approve_then_revoke = [
        approve("erin", &["sre"], "10:05"),
        review("r2", "dana", &["dev"], Decision::Revoke, "10:10"),
    ];
    let ev = eval(
        std::slice::from_ref(&p),
        &dana_view(),
        &approve_then_revoke,
        "10:11",
    );
    assert_eq!(verdict(&ev, "r2").reason, reason::VerdictReason::CommentRequired);
    assert_eq!(ev.status.phase, Phase::Active);
}

// ---------------------------------------------------------------- approvals

#[test]
fn one_eligible_approval_grants_access_until_expiry() {
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05")],
        "10:30",
    );
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(ev.status.approved_at, Some(at("10:05")));
    let grant = ev.status.grant.as_ref().unwrap();
    assert_eq!(
        (grant.granted_at, grant.expires_at, grant.revoked_at),
        (Some(at("10:05")), Some(at("11:05")), None)
    );
    let b = binding(&ev);
    assert_eq!(
        b.role,
        RoleRef {
            kind: crate::api::RoleKind::ClusterRole,
            name: "view".into()
        }
    );
    assert_eq!(
        b.subject,
        Subject {
            kind: SubjectKind::User,
            name: "dana".into(),
            namespace: None
        }
    );
    assert_eq!(b.target.namespace.as_deref(), Some("team"));
    assert_eq!(b.valid_until, at("11:05"));
    assert_eq!(ev.next_deadline, Some(at("11:05")));
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "1/1");
    assert_eq!(cond(&ev, GRANTED).status, ConditionStatus::True);
}

#[test]
fn min_approvals_counts_distinct_people_once() {
    let mut p = simple_policy();
    p.spec.approval.min_approvals = 2;
    let reviews = [
        approve("erin", &["sre"], "10:05"),
        approve("erin", &["sre"], "10:06"),
    ];
    let ev = eval(std::slice::from_ref(&p), &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "1/2");
    assert_eq!(verdict(&ev, "erin-1006").reason, reason::VerdictReason::Duplicate);
    let reviews = [
        approve("erin", &["sre"], "10:05"),
        approve("fred", &["sre"], "10:07"),
    ];
    let ev = eval(&[p], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(ev.status.approved_at, Some(at("10:07")));
}

#[test]
fn self_approval_never_counts_unless_the_policy_allows_it() {
    let mut req = dana_view();
    req.spec.requester.groups.push("sre".into());
    let ev = eval(
        &[simple_policy()],
        &req,
        &[approve("dana", &["dev", "sre"], "10:05")],
        "10:10",
    );
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(
        verdict(&ev, "dana-1005").reason,
        reason::VerdictReason::SelfApproval
    );
    let mut p = simple_policy();
    p.spec.approval.allow_self_approval = true;
    let ev = eval(&[p], &req, &[approve("dana", &["dev", "sre"], "10:05")], "10:10");
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn reviewers_are_eligible_by_group_or_by_user() {
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("mallory", &["dev"], "10:05")],
        "10:10",
    );
    let v = verdict(&ev, "mallory-1005");
    assert_eq!(v.reason, reason::VerdictReason::NotEligible);
    assert!(v.message.contains("group sre"), "{}", v.message);
    let mut p = simple_policy();
    p.spec.approval.reviewers.users = vec!["boss".into()];
    let ev = eval(&[p], &dana_view(), &[approve("boss", &[], "10:05")], "10:10");
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn a_review_for_another_uid_is_ignored() {
    let mut old = approve("erin", &["sre"], "10:05");
    if let Some(q) = old.spec.request.as_mut() {
        q.uid = "deleted-and-recreated".into();
    }
    let ev = eval(&[simple_policy()], &dana_view(), &[old], "10:10");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(
        verdict(&ev, "erin-1005").reason,
        reason::VerdictReason::UidMismatch
    );
}

#[test]
fn reviews_of_other_requests_and_from_the_future_are_not_seen() {
    let other = for_request(approve("erin", &["sre"], "10:05"), "someone-else");
    let ev = eval(&[simple_policy()], &dana_view(), &[other], "10:10");
    assert!(ev.verdicts.is_empty());
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05")],
        "10:04",
    );
    assert!(ev.verdicts.is_empty());
    assert_eq!(ev.status.phase, Phase::Pending);
}

fn staged_policy() -> AccessPolicy {
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

#[test]
fn stages_open_in_order_and_an_early_approval_counts_once_its_stage_opens() {
    let reviews = [
        approve("ivan", &["security"], "10:02"),
        approve("judy", &["compliance"], "10:03"),
        approve("hank", &["leads"], "10:20"),
    ];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews[..2], "10:10");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(
        verdict(&ev, "ivan-1002").message,
        "counts once stage security opens"
    );
    assert_eq!(ev.status.stages[1].status, ReviewState::Waiting);
    assert_eq!(
        ev.status.eligible_reviewers.as_ref().unwrap().groups,
        ["leads", "ic"]
    );

    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "10:30");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(
        ev.status.approved_at,
        Some(at("10:20")),
        "approved when the lead opened the security stage"
    );
    assert_eq!(ev.status.stages[1].opened_at, Some(at("10:20")));
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "3/3");
    let groups: Vec<(&str, Option<&str>)> = ev
        .status
        .review_groups
        .iter()
        .map(|g| (g.group.as_str(), g.reviewed_by.as_deref()))
        .collect();
    assert_eq!(
        groups,
        [
            ("leads", Some("hank")),
            ("security", Some("ivan")),
            ("compliance", Some("judy"))
        ]
    );
}

#[test]
fn all_needs_every_group_and_one_person_counts_in_one_stage_only() {
    // Kim is in both security and compliance: she covers one group, not both.
    let reviews = [
        approve("hank", &["leads"], "10:01"),
        approve("kim", &["security", "compliance"], "10:02"),
    ];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.status.stages[1].received, 1);
    // A second person from security: the matching moves Kim to compliance.
    let reviews = [
        reviews[0].clone(),
        reviews[1].clone(),
        approve("ivan", &["security"], "10:05"),
    ];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Active);
    // A lead cannot also satisfy the security stage.
    let reviews = [approve("hank", &["leads", "security", "compliance"], "10:01")];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.status.approvals.as_ref().unwrap().received, 1);
}

#[test]
fn any_stage_takes_min_approvals_from_any_listed_group() {
    let p = policy(
        "any",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {names: [team]}\napproval:\n  stages: [{name: peers, groups: [sre, dba], minApprovals: 2}]",
    );
    let reviews = [
        approve("erin", &["sre"], "10:05"),
        approve("dora", &["dba"], "10:06"),
    ];
    let ev = eval(std::slice::from_ref(&p), &dana_view(), &reviews[..1], "10:10");
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "1/2");
    let ev = eval(&[p], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn a_force_approval_approves_at_once_and_is_marked() {
    let ev = eval(
        &[staged_policy()],
        &dana_view(),
        &[approve("mia", &["ic"], "10:05")],
        "10:06",
    );
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "forced");
    assert_eq!(cond(&ev, APPROVED).reason, "ForceApproved");
    let forced: Vec<_> = ev.status.review_groups.iter().filter(|g| g.forced).collect();
    assert_eq!(forced.len(), 1);
    assert_eq!(forced[0].reviewed_by.as_deref(), Some("mia"));
    assert!(ev.status.decisions[0].forced);
}

#[test]
fn escalation_groups_become_eligible_after_the_delay() {
    let reviews = [approve("otto", &["oncall"], "10:30")];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "10:31");
    assert_eq!(
        verdict(&ev, "otto-1030").reason,
        reason::VerdictReason::NotEligible
    );
    assert_eq!(
        ev.next_deadline,
        Some(at("11:00")),
        "escalation is the next deadline"
    );
    let reviews = [approve("otto", &["oncall"], "11:01")];
    let ev = eval(&[staged_policy()], &dana_view(), &reviews, "11:02");
    assert!(verdict(&ev, "otto-1101").accepted);
    assert_eq!(
        ev.status.stages[0].status,
        ReviewState::Approved,
        "counted for the open stage"
    );
    assert!(ev
        .status
        .eligible_reviewers
        .as_ref()
        .unwrap()
        .groups
        .contains(&"oncall".to_string()));
}

#[test]
fn eligible_reviewers_follow_the_open_stage() {
    let ev = eval(
        &[staged_policy()],
        &dana_view(),
        &[approve("hank", &["leads"], "10:05")],
        "10:06",
    );
    assert_eq!(
        ev.status.eligible_reviewers.unwrap().groups,
        ["security", "compliance", "ic"]
    );
    let ev = eval(
        &[staged_policy()],
        &dana_view(),
        &[approve("hank", &["leads"], "10:05")],
        "11:06",
    );
    assert_eq!(
        ev.status.eligible_reviewers.unwrap().groups,
        ["security", "compliance", "oncall", "ic"]
    );
}

// ---------------------------------------------------------------- outcomes

#[test]
fn a_reject_is_final() {
    let reviews = [
        with_comment(
            review("no", "erin", &["sre"], Decision::Reject, "10:05"),
            "use the dashboard",
        ),
        approve("fred", &["sre"], "10:06"),
    ];
    let ev = eval(&[simple_policy()], &dana_view(), &reviews, "10:10");
    assert_eq!(ev.status.phase, Phase::Rejected);
    assert_eq!(ev.status.completed_at, Some(at("10:05")));
    assert_eq!(
        verdict(&ev, "fred-1006").reason,
        reason::VerdictReason::NotPending
    );
    assert!(cond(&ev, COMPLETE).message.contains("use the dashboard"));
    assert!(!has_binding(&ev));
    // Stored and evaluated again later: still rejected, whatever arrives.
    let later = eval(&[simple_policy()], &stored(&dana_view(), &ev), &reviews, "12:00");
    assert_eq!(later.status.phase, Phase::Rejected);
}

#[test]
fn the_requester_can_cancel_until_access_starts() {
    let cancel = review("c", "dana", &["dev"], Decision::Cancel, "10:05");
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        std::slice::from_ref(&cancel),
        "10:06",
    );
    assert_eq!(ev.status.phase, Phase::Canceled);

    let not_mine = review("c", "erin", &["sre"], Decision::Cancel, "10:05");
    let ev = eval(&[simple_policy()], &dana_view(), &[not_mine], "10:06");
    assert_eq!(verdict(&ev, "c").reason, reason::VerdictReason::NotRequester);
    assert_eq!(ev.status.phase, Phase::Pending);

    let late = review("c", "dana", &["dev"], Decision::Cancel, "10:30");
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05"), late],
        "10:31",
    );
    assert_eq!(verdict(&ev, "c").reason, reason::VerdictReason::AlreadyActive);
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn revoke_ends_an_active_grant_and_removes_the_binding() {
    let reviews = [
        approve("erin", &["sre"], "10:05"),
        review("r", "fred", &["sre"], Decision::Revoke, "10:20"),
    ];
    let ev = eval(&[simple_policy()], &dana_view(), &reviews, "10:21");
    assert_eq!(ev.status.phase, Phase::Revoked);
    assert_eq!(ev.status.grant.as_ref().unwrap().revoked_at, Some(at("10:20")));
    assert!(matches!(ev.actions[0], Action::RemoveBinding(_)));

    let by_requester = [
        approve("erin", &["sre"], "10:05"),
        review("r", "dana", &["dev"], Decision::Revoke, "10:20"),
    ];
    assert_eq!(
        eval(&[simple_policy()], &dana_view(), &by_requester, "10:21")
            .status
            .phase,
        Phase::Revoked
    );

    let by_stranger = [
        approve("erin", &["sre"], "10:05"),
        review("r", "eve", &["dev"], Decision::Revoke, "10:20"),
    ];
    let ev = eval(&[simple_policy()], &dana_view(), &by_stranger, "10:21");
    assert_eq!(verdict(&ev, "r").reason, reason::VerdictReason::NotEligible);
    assert_eq!(ev.status.phase, Phase::Active);

    let too_early = [review("r", "erin", &["sre"], Decision::Revoke, "10:02")];
    assert_eq!(
        verdict(&eval(&[simple_policy()], &dana_view(), &too_early, "10:03"), "r").reason,
        reason::VerdictReason::NotActive
    );
}

#[test]
fn within_one_second_the_order_that_grants_least_wins() {
    // creationTimestamp has one-second resolution; names would sort the revoke first.
    let same_second = [
        review("a-revoke", "dana", &["dev"], Decision::Revoke, "10:05"),
        review("b-approve", "erin", &["sre"], Decision::Approve, "10:05"),
    ];
    let ev = eval(&[simple_policy()], &dana_view(), &same_second, "10:06");
    assert_eq!(ev.status.phase, Phase::Revoked);
    let same_second = [
        review("z-cancel", "dana", &["dev"], Decision::Cancel, "10:05"),
        review("b-approve", "erin", &["sre"], Decision::Approve, "10:05"),
    ];
    assert_eq!(
        eval(&[simple_policy()], &dana_view(), &same_second, "10:06")
            .status
            .phase,
        Phase::Canceled
    );
}

#[test]
fn a_pending_request_times_out() {
    let ev = eval(&[staged_policy()], &dana_view(), &[], "13:59");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.next_deadline, Some(at("14:00")), "the 4h timeout");
    let ev = eval(
        &[staged_policy()],
        &dana_view(),
        &[approve("mia", &["ic"], "14:30")],
        "14:31",
    );
    assert_eq!(ev.status.phase, Phase::TimedOut);
    assert_eq!(ev.status.completed_at, Some(at("14:00")));
    assert_eq!(verdict(&ev, "mia-1430").reason, reason::VerdictReason::NotPending);
}

#[test]
fn access_expires_at_start_plus_duration() {
    let ev = eval(
        &[simple_policy()],
        &dana_view(),
        &[approve("erin", &["sre"], "10:05")],
        "11:05",
    );
    assert_eq!(ev.status.phase, Phase::Expired);
    let grant = ev.status.grant.as_ref().unwrap();
    assert_eq!(grant.revoked_at, Some(at("11:05")));
    assert_eq!(ev.status.completed_at, Some(at("11:05")));
    assert!(matches!(&ev.actions[0], Action::RemoveBinding(b) if b.name == grant.name));
    assert_eq!(cond(&ev, COMPLETE).reason, "Expired");
}

#[test]
fn not_before_delays_access_and_expiry_counts_from_it() {
    let mut req = dana_view();
    req.spec.not_before = Some(at("12:00"));
    let reviews = [approve("erin", &["sre"], "10:05")];
    let ev = eval(&[simple_policy()], &req, &reviews, "10:30");
    assert_eq!(ev.status.phase, Phase::Approved);
    assert_eq!(cond(&ev, GRANTED).reason, "NotStarted");
    assert_eq!(ev.next_deadline, Some(at("12:00")));
    assert!(!has_binding(&ev));
    let ev = eval(&[simple_policy()], &req, &reviews, "12:00");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(ev.status.expires_at, Some(at("13:00")));
}

#[test]
fn auto_approve_needs_no_reviewer() {
    let mut p = simple_policy();
    p.spec.auto_approve = Some(
        serde_saphyr::from_str("subjects: {groups: [oncall]}\nroles: [{kind: ClusterRole, name: view}]")
            .unwrap(),
    );
    let mut req = dana_view();
    req.spec.requester.groups.push("oncall".into());
    let ev = eval(std::slice::from_ref(&p), &req, &[], "10:00");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(ev.status.approvals.as_ref().unwrap().summary, "auto");
    assert_eq!(cond(&ev, APPROVED).reason, "AutoApproved");
    assert!(ev.status.requirements.unwrap().auto_approved);
    assert_eq!(
        eval(&[p], &dana_view(), &[], "10:00").status.phase,
        Phase::Pending,
        "not on call: reviewed"
    );
}

#[test]
fn max_active_per_requester_denies_an_extra_grant() {
    let mut p = simple_policy();
    p.spec.max_active_per_requester = Some(1);
    // Dana's older request, approved at 09:30 and still live.
    let mut older = request(
        "dana-older",
        "09:00",
        "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}",
    );
    older.metadata.uid = Some("older-uid".into());
    let mut r = for_request(approve("erin", &["sre"], "09:30"), "dana-older");
    if let Some(q) = r.spec.request.as_mut() {
        q.uid = "older-uid".into();
    }
    let older = stored(&older, &eval(&[p.clone()], &older, &[r], "09:31"));
    assert_eq!(older.status.as_ref().unwrap().phase, Phase::Active);

    let others = [&older];
    let reviews = [approve("erin", &["sre"], "10:05")];
    let ev = eval_with(&[p.clone()], &dana_view(), &reviews, "10:06", |i| {
        i.requester_requests = &others
    });
    let (reason, message) = denial(&ev);
    assert_eq!(reason, "TooManyActiveGrants");
    assert!(message.contains("team/dana-older"), "{message}");
    let ev = eval(&[p.clone()], &dana_view(), &reviews, "10:06");
    assert_eq!(ev.status.phase, Phase::Active);

    // Once the older grant has expired (10:30), a new approval is within the limit.
    let late = [approve("erin", &["sre"], "10:40")];
    let ev = eval_with(&[p], &dana_view(), &late, "10:41", |i| {
        i.requester_requests = &others
    });
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn extends_continues_access_and_supersedes_the_old_request() {
    let mut p = simple_policy();
    p.spec.max_active_per_requester = Some(1);
    let old = dana_view();
    let old_reviews = [approve("erin", &["sre"], "10:05")];
    let old_ev = eval(std::slice::from_ref(&p), &old, &old_reviews, "10:50");
    assert_eq!(old_ev.status.phase, Phase::Active);
    let old_stored = stored(&old, &old_ev);

    let mut new = request("dana-more", "10:50", "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}\nextends: dana-view");
    new.metadata.uid = Some("new-uid".into());
    let mut r = for_request(approve("erin", &["sre"], "10:55"), "dana-more");
    if let Some(q) = r.spec.request.as_mut() {
        q.uid = "new-uid".into();
    }
    let live = [&old_stored];
    let ev = eval_with(
        std::slice::from_ref(&p),
        &new,
        std::slice::from_ref(&r),
        "10:56",
        |i| {
            i.extended = Some(&old_stored);
            i.requester_requests = &live;
        },
    );
    assert_eq!(
        ev.status.phase,
        Phase::Active,
        "the extended request does not count against the limit"
    );
    assert_eq!(ev.status.expires_at, Some(at("11:55")));

    // The old request sees the new one granted and ends as Superseded.
    let new_stored = stored(&new, &ev);
    let newer = [&new_stored];
    let old_ev = eval_with(std::slice::from_ref(&p), &old, &old_reviews, "10:56", |i| {
        i.requester_requests = &newer
    });
    assert_eq!(old_ev.status.phase, Phase::Superseded);
    assert_eq!(
        old_ev.status.grant.as_ref().unwrap().revoked_at,
        Some(at("10:55"))
    );
    assert!(cond(&old_ev, COMPLETE).message.contains("dana-more"));

    // Extending someone else's request, or a request that is not active, is refused.
    let mut foreign = new.clone();
    foreign.spec.requester.username = "eve".into();
    let ev = eval_with(&[p.clone()], &foreign, &[], "10:56", |i| {
        i.extended = Some(&old_stored)
    });
    assert_eq!(denial(&ev).0, "InvalidExtends");
    let ev = eval(&[p], &new, &[], "10:56");
    assert_eq!(denial(&ev).0, "InvalidExtends");
}

// ---------------------------------------------------------------- time windows

fn windowed_policy(window: &str) -> AccessPolicy {
    let mut p = simple_policy();
    p.spec.duration.max = Some("24h".into());
    p.spec.time_window = Some(serde_saphyr::from_str(window).unwrap());
    p
}

#[test]
fn approved_outside_the_window_waits_and_the_binding_follows_the_window() {
    let p = windowed_policy(
        "{timezone: Europe/Berlin, start: '08:00', end: '18:00', days: [Mon, Tue, Wed, Thu, Fri]}",
    );
    let mut req = request(
        "dana-view",
        "05:00",
        "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}\nduration: 12h",
    );
    req.metadata.namespace = Some("team".into());
    let reviews = [approve("erin", &["sre"], "06:00")];
    // 06:30 UTC = 07:30 Berlin: before the window.
    let ev = eval(std::slice::from_ref(&p), &req, &reviews, "06:30");
    assert_eq!(ev.status.phase, Phase::Approved);
    assert_eq!(cond(&ev, GRANTED).reason, "OutsideTimeWindow");
    assert_eq!(ev.next_deadline, Some(at("07:00")));
    assert!(matches!(ev.actions[0], Action::RemoveBinding(_)));
    // Inside: the binding exists until the window closes at 17:00 UTC.
    let ev = eval(std::slice::from_ref(&p), &req, &reviews, "07:00");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(binding(&ev).valid_until, at("17:00"));
    assert_eq!(ev.status.grant.as_ref().unwrap().granted_at, Some(at("07:00")));
    // After the close, before expiry (18:00 UTC): removed, waiting for tomorrow.
    let ev = eval(std::slice::from_ref(&p), &req, &reviews, "17:30");
    assert_eq!(ev.status.phase, Phase::Approved);
    assert!(!has_binding(&ev));
    assert_eq!(
        ev.next_deadline,
        Some(at("18:00")),
        "expiry comes before the next window"
    );
    let ev = eval(&[p], &req, &reviews, "18:00");
    assert_eq!(ev.status.phase, Phase::Expired);
    assert_eq!(
        ev.status.grant.unwrap().revoked_at,
        Some(at("17:00")),
        "access really ended when the window closed"
    );
}

#[test]
fn a_grant_whose_window_never_opens_expires_without_access() {
    let p = windowed_policy("{timezone: UTC, start: '20:00', end: '22:00'}");
    let ev = eval(&[p], &dana_view(), &[approve("erin", &["sre"], "10:05")], "11:05");
    assert_eq!(ev.status.phase, Phase::Expired);
    let grant = ev.status.grant.unwrap();
    assert_eq!((grant.granted_at, grant.revoked_at), (None, None));
}

#[test]
fn a_window_crossing_midnight_grants_through_the_night() {
    let p = windowed_policy("{timezone: UTC, start: '22:00', end: '06:00', days: [Mon]}");
    let mut req = dana_view();
    req.spec.duration = Some("12h".into());
    let reviews = [approve("erin", &["sre"], "21:00")];
    let ev = eval(std::slice::from_ref(&p), &req, &reviews, "2026-11-24T05:59:00Z");
    assert_eq!(ev.status.phase, Phase::Active);
    assert_eq!(binding(&ev).valid_until, at("2026-11-24T06:00:00Z"));
    let ev = eval(&[p], &req, &reviews, "2026-11-24T06:00:00Z");
    assert_eq!(ev.status.phase, Phase::Approved);
    assert_eq!(
        ev.next_deadline,
        Some(at("2026-11-24T09:00:00Z")),
        "expiry; Tuesday night is not in the window"
    );
}

// ---------------------------------------------------------------- status mechanics

#[test]
fn every_review_gets_a_verdict_in_the_status() {
    let reviews = [
        approve("mallory", &["dev"], "10:01"),
        review("note", "erin", &["sre"], Decision::Comment, "10:02"),
        approve("erin", &["sre"], "10:05"),
        approve("fred", &["sre"], "10:06"),
    ];
    let ev = eval(&[simple_policy()], &dana_view(), &reviews, "10:10");
    let seen: Vec<(&str, bool, &str)> = ev
        .status
        .decisions
        .iter()
        .map(|d| (d.review.as_str(), d.accepted, d.reason.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            ("mallory-1001", false, "NotEligible"),
            ("note", true, "Commented"),
            ("erin-1005", true, "Approved"),
            ("fred-1006", false, "NotPending")
        ]
    );
    assert_eq!(ev.verdicts.len(), 4);
}

#[test]
fn evaluating_the_stored_status_again_changes_nothing() {
    let reviews = [
        approve("hank", &["leads"], "10:05"),
        approve("ivan", &["security"], "10:06"),
    ];
    for now in ["10:03", "10:07", "11:30", "14:30"] {
        let first = eval(&[staged_policy()], &dana_view(), &reviews, now);
        let again = eval(&[staged_policy()], &stored(&dana_view(), &first), &reviews, now);
        assert_eq!(first, again, "at {now}");
    }
}

#[test]
fn last_transition_time_changes_only_when_a_condition_flips() {
    let reviews = [approve("erin", &["sre"], "10:05")];
    let pending = eval(&[simple_policy()], &dana_view(), &[], "10:01");
    let active = eval(
        &[simple_policy()],
        &stored(&dana_view(), &pending),
        &reviews,
        "10:06",
    );
    assert_eq!(
        cond(&active, COMPLETE).last_transition_time,
        cond(&pending, COMPLETE).last_transition_time
    );
    assert_eq!(cond(&active, APPROVED).last_transition_time, at("10:05"));
    let later = eval(
        &[simple_policy()],
        &stored(&dana_view(), &active),
        &reviews,
        "10:50",
    );
    assert_eq!(later.status.conditions, active.status.conditions);
}

#[test]
fn a_terminal_request_keeps_its_phase_and_is_deleted_after_retention() {
    let reviews = [approve("erin", &["sre"], "10:05")];
    let expired = eval(&[simple_policy()], &dana_view(), &reviews, "11:10");
    assert_eq!(expired.status.phase, Phase::Expired);
    assert_eq!(expired.next_deadline, Some(at("11:05") + Duration::hours(720)));
    let late = [
        approve("erin", &["sre"], "10:05"),
        review("x", "dana", &["dev"], Decision::Revoke, "12:00"),
    ];
    let ev = eval(&[], &stored(&dana_view(), &expired), &late, "12:01");
    assert_eq!(
        ev.status.phase,
        Phase::Expired,
        "policies gone and new reviews: still Expired"
    );
    assert_eq!(verdict(&ev, "x").reason, reason::VerdictReason::NotPending);
    assert!(!ev.actions.contains(&Action::DeleteRecord));
    let ev = eval(
        &[],
        &stored(&dana_view(), &expired),
        &late,
        "2026-12-23T11:05:00Z",
    );
    assert!(ev.actions.contains(&Action::DeleteRecord));
}

#[test]
fn the_binding_name_is_deterministic_and_bound_to_the_uid() {
    let a = binding_name("team", "dana-view", "uid-1", BindingKind::RoleBinding);
    assert_eq!(
        a,
        binding_name("team", "dana-view", "uid-1", BindingKind::RoleBinding)
    );
    assert_ne!(
        a,
        binding_name("team", "dana-view", "uid-2", BindingKind::RoleBinding)
    );
    let long = binding_name("team", &"x".repeat(253), "uid", BindingKind::ClusterRoleBinding);
    assert!(long.len() <= 253, "{}", long.len());
}

#[test]
fn access_goes_to_the_requester_unless_the_policy_names_grantees() {
    let mut auto = simple_policy();
    auto.spec.auto_approve = Some(
        serde_saphyr::from_str("subjects: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]")
            .unwrap(),
    );
    for subject in [
        "{kind: Group, name: system:authenticated}",
        "{kind: User, name: mallory}",
        "{kind: ServiceAccount, name: ci}",
    ] {
        let mut req = dana_view();
        req.spec.subject = Some(serde_saphyr::from_str(subject).unwrap());
        let (reason, message) = denial(&eval(std::slice::from_ref(&auto), &req, &[], "10:01"));
        assert_eq!(reason, "SubjectNotAllowed", "{subject}");
        assert!(
            message.contains("requester only") && message.contains("User dana"),
            "{message}"
        );
    }
    let mut req = dana_view();
    req.spec.subject = Some(serde_saphyr::from_str("{kind: User, name: dana}").unwrap());
    assert_eq!(eval(&[auto], &req, &[], "10:01").status.phase, Phase::Active);
}

fn grantee_policy() -> AccessPolicy {
    let mut p = simple_policy();
    p.spec.grantees = serde_saphyr::from_str(
        "users: [erin]\ngroups: [oncall]\nserviceAccounts: [{name: deployer}, {namespace: ci, name: runner}]",
    )
    .unwrap();
    p.spec.auto_approve = Some(
        serde_saphyr::from_str("subjects: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]")
            .unwrap(),
    );
    p
}

fn for_subject(subject: &str) -> ApprovalRequest {
    let mut req = dana_view();
    req.spec.subject = Some(serde_saphyr::from_str(subject).unwrap());
    req
}

#[test]
fn a_policy_can_let_requests_grant_access_to_its_listed_grantees() {
    let p = grantee_policy();
    let cases = [
        ("{kind: User, name: erin}", SubjectKind::User, "erin", None),
        ("{kind: Group, name: oncall}", SubjectKind::Group, "oncall", None),
        // A ServiceAccount listed without a namespace is the one in the request's namespace.
        (
            "{kind: ServiceAccount, name: deployer}",
            SubjectKind::ServiceAccount,
            "deployer",
            Some("team"),
        ),
        (
            "{kind: ServiceAccount, name: runner, namespace: ci}",
            SubjectKind::ServiceAccount,
            "runner",
            Some("ci"),
        ),
    ];
    for (subject, kind, name, namespace) in cases {
        let req = for_subject(subject);
        // autoApprove matches dana, but access for someone else always needs a reviewer.
        let ev = eval(std::slice::from_ref(&p), &req, &[], "10:01");
        assert_eq!(ev.status.phase, Phase::Pending, "{subject}");
        let ev = eval(
            std::slice::from_ref(&p),
            &req,
            &[approve("fred", &["sre"], "10:05")],
            "10:10",
        );
        assert_eq!(ev.status.phase, Phase::Active, "{subject}");
        assert_eq!(
            binding(&ev).subject,
            Subject {
                kind,
                name: name.into(),
                namespace: namespace.map(Into::into)
            },
            "{subject}"
        );
    }
    for (subject, shown) in [
        ("{kind: User, name: mallory}", "User mallory"),
        ("{kind: Group, name: sre}", "Group sre"),
        (
            "{kind: ServiceAccount, name: runner}",
            "ServiceAccount team/runner",
        ),
        (
            "{kind: ServiceAccount, name: deployer, namespace: ci}",
            "ServiceAccount ci/deployer",
        ),
    ] {
        let (reason, message) = denial(&eval(
            std::slice::from_ref(&p),
            &for_subject(subject),
            &[],
            "10:01",
        ));
        assert_eq!(reason, "SubjectNotAllowed", "{subject}");
        assert!(message.contains(shown), "{message}");
        assert!(
            message
                .contains("User erin, Group oncall, ServiceAccount team/deployer, ServiceAccount ci/runner"),
            "{message}"
        );
    }
}

#[test]
fn whoever_would_receive_the_access_cannot_approve_it() {
    let p = grantee_policy();
    let cases = [
        ("{kind: User, name: erin}", approve("erin", &["sre"], "10:05")),
        (
            "{kind: Group, name: oncall}",
            approve("erin", &["sre", "oncall"], "10:05"),
        ),
        (
            "{kind: ServiceAccount, name: deployer}",
            approve("system:serviceaccount:team:deployer", &["sre"], "10:05"),
        ),
    ];
    for (subject, review) in cases {
        let req = for_subject(subject);
        let name = review.name_any();
        let ev = eval(
            std::slice::from_ref(&p),
            &req,
            std::slice::from_ref(&review),
            "10:10",
        );
        assert_eq!(ev.status.phase, Phase::Pending, "{subject}");
        let v = verdict(&ev, &name);
        assert_eq!(v.reason, reason::VerdictReason::SelfApproval, "{subject}");
        assert!(v.message.contains("would receive this access"), "{}", v.message);
        // The same person approving someone else's access counts.
        let ev = eval(
            std::slice::from_ref(&p),
            &dana_view(),
            std::slice::from_ref(&review),
            "10:10",
        );
        assert_eq!(ev.status.phase, Phase::Active, "{subject}");
    }
    // allowSelfApproval lets both the requester's and the beneficiary's approval count.
    let mut lax = grantee_policy();
    lax.spec.approval.allow_self_approval = true;
    let ev = eval(
        &[lax],
        &for_subject("{kind: User, name: erin}"),
        &[approve("erin", &["sre"], "10:05")],
        "10:10",
    );
    assert_eq!(ev.status.phase, Phase::Active);
}

#[test]
fn an_extension_must_be_for_the_same_subject() {
    let p = grantee_policy();
    let old = stored(
        &for_subject("{kind: Group, name: oncall}"),
        &eval(
            std::slice::from_ref(&p),
            &for_subject("{kind: Group, name: oncall}"),
            &[approve("fred", &["sre"], "10:05")],
            "10:10",
        ),
    );
    assert_eq!(old.status.as_ref().unwrap().phase, Phase::Active);
    let mut newer = request(
        "dana-view-2",
        "10:20",
        "requester: {username: dana, groups: [dev]}\nrole: {kind: ClusterRole, name: view}\nextends: dana-view",
    );
    let ev = eval_with(std::slice::from_ref(&p), &newer, &[], "10:21", |i| {
        i.extended = Some(&old)
    });
    let (reason, message) = denial(&ev);
    assert_eq!(reason, "InvalidExtends");
    assert!(message.contains("subject"), "{message}");
    newer.spec.subject = Some(serde_saphyr::from_str("{kind: Group, name: oncall}").unwrap());
    let ev = eval_with(&[p], &newer, &[], "10:21", |i| i.extended = Some(&old));
    assert_eq!(ev.status.phase, Phase::Pending);
}

mod onetime;
mod properties;
