//! Scenarios: duration and justification.

use super::*;

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
