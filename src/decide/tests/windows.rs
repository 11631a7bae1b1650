//! Scenarios: time windows.

use super::*;

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
