//! Scenarios: status mechanics.

use super::*;

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
