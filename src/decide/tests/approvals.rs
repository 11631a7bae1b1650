//! Scenarios: approvals.

use super::*;

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

#[test]
fn a_second_click_in_the_same_second_is_the_duplicate_not_the_first() {
    let mut p = simple_policy();
    p.spec.approval.min_approvals = 2;
    // "erin-z" came first and was judged; "erin-a" sorts before it by name.
    let mut first = review("erin-z", "erin", &["sre"], Decision::Approve, "10:05");
    first.status = Some(crate::api::AccessReviewStatus {
        accepted: Some(true),
        reason: Some(crate::api::ReviewReason::Approved),
        message: Some("counted".into()),
        observed_at: Some(at("10:05") + chrono::Duration::milliseconds(300)),
    });
    let mut second = review("erin-a", "erin", &["sre"], Decision::Approve, "10:05");
    let ev = eval(
        std::slice::from_ref(&p),
        &dana_view(),
        &[second.clone(), first.clone()],
        "10:10",
    );
    assert!(verdict(&ev, "erin-z").accepted);
    assert_eq!(verdict(&ev, "erin-a").reason, reason::VerdictReason::Duplicate);
    // Once both are judged, the earlier judgement still comes first.
    second.status = Some(crate::api::AccessReviewStatus {
        accepted: Some(false),
        reason: Some(crate::api::ReviewReason::Duplicate),
        message: Some("duplicate".into()),
        observed_at: Some(at("10:05") + chrono::Duration::milliseconds(900)),
    });
    let again = eval(&[p.clone()], &dana_view(), &[second, first.clone()], "10:10");
    assert_eq!(again.verdicts, ev.verdicts);
    // Without any judgement yet, the name decides.
    let fresh = eval(
        &[p],
        &dana_view(),
        &[review("erin-a", "erin", &["sre"], Decision::Approve, "10:05"), {
            first.status = None;
            first
        }],
        "10:10",
    );
    assert!(verdict(&fresh, "erin-a").accepted);
    assert_eq!(verdict(&fresh, "erin-z").reason, reason::VerdictReason::Duplicate);
}
