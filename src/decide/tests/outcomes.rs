//! Scenarios: outcomes.

use super::*;

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
