use std::collections::BTreeMap;

use super::*;
use crate::labels::EXPIRES_AT;

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

fn request(name: &str) -> ApprovalRequest {
    let mut r = ApprovalRequest::new(name, Default::default());
    r.metadata.namespace = Some("team".into());
    r.metadata.uid = Some(format!("{name}-uid"));
    r
}

fn binding(name: &str, version: &str, expires: &str) -> RoleBinding {
    let mut meta = crate::labels::owned_metadata(
        &request(name),
        name,
        Some("team"),
        BTreeMap::from([(EXPIRES_AT.to_string(), expires.to_string())]),
    );
    meta.uid = Some(format!("{name}-b"));
    meta.resource_version = Some(version.into());
    RoleBinding {
        metadata: meta,
        ..Default::default()
    }
}

#[test]
fn the_earliest_deadline_comes_first_and_each_version_is_taken_once() {
    let (cache, _writers) = Cache::new();
    let d = &cache.removals;
    d.index_binding(&cache, Change::Upsert(&binding("b", "1", "2026-12-07T12:00:02Z")));
    d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
    d.index_binding(&cache, Change::Upsert(&binding("c", "1", "2026-12-07T12:00:09Z")));
    assert_eq!(d.next(), Some(at("2026-12-07T12:00:01Z")));
    let zero = chrono::Duration::zero();
    assert!(d.take_due(at("2026-12-07T12:00:00Z"), zero, 10).is_empty());
    let due = d.take_due(at("2026-12-07T12:00:05Z"), zero, 10);
    let names: Vec<&str> = due.iter().map(|x| x.key.name.as_str()).collect();
    assert_eq!(names, ["a", "b"]);
    // In hand: not taken again, even when the watch repeats that version.
    d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
    assert!(d.take_due(at("2026-12-07T12:00:05Z"), zero, 10).is_empty());
    // A failure waits again; a conflict settles that version until a new one comes.
    d.finish(&due[0], Outcome::Failed, at("2026-12-07T12:00:05Z"));
    d.finish(&due[1], Outcome::Changed, at("2026-12-07T12:00:05Z"));
    // The failure is retried after a back-off, not at once.
    assert!(d.take_due(at("2026-12-07T12:00:05.100Z"), zero, 10).is_empty());
    assert_eq!(
        d.take_due(at("2026-12-07T12:00:05.250Z"), zero, 10),
        vec![due[0].clone()]
    );
    d.finish(&due[0], Outcome::Failed, at("2026-12-07T12:00:05.250Z"));
    assert!(d.take_due(at("2026-12-07T12:00:05.700Z"), zero, 10).is_empty());
    assert_eq!(d.take_due(at("2026-12-07T12:00:05.750Z"), zero, 10).len(), 1);
    d.index_binding(&cache, Change::Upsert(&binding("b", "2", "2026-12-07T12:00:02Z")));
    let again = d.take_due(at("2026-12-07T12:00:05Z"), zero, 10);
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].version, "2");
    // Gone from memory: gone from the index.
    d.index_binding(&cache, Change::Remove(&binding("c", "1", "2026-12-07T12:00:09Z")));
    assert_eq!(d.len(), (2, 0));
    assert_eq!(d.next(), None);
}

#[test]
fn a_grace_delays_what_is_due() {
    let (cache, _writers) = Cache::new();
    let d = &cache.removals;
    d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
    let grace = chrono::Duration::milliseconds(250);
    assert!(d.take_due(at("2026-12-07T12:00:01.200Z"), grace, 10).is_empty());
    assert_eq!(d.take_due(at("2026-12-07T12:00:01.250Z"), grace, 10).len(), 1);
}

#[test]
fn a_rebuild_forgets_what_the_list_no_longer_holds() {
    let (cache, _writers) = Cache::new();
    let d = &cache.removals;
    d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
    d.index_binding(&cache, Change::Upsert(&binding("b", "1", "2026-12-07T12:00:02Z")));
    d.index_binding(
        &cache,
        Change::Rebuild(&[binding("b", "1", "2026-12-07T12:00:02Z")]),
    );
    assert_eq!(d.len(), (1, 1));
    assert_eq!(d.next(), Some(at("2026-12-07T12:00:02Z")));
}

#[test]
fn the_requests_earlier_expiry_moves_its_bindings_deadline() {
    use crate::api::{ApprovalRequestStatus, BindingKind, GrantStatus};
    let (cache, mut writers) = Cache::new();
    let d = &cache.removals;
    let rb = binding("a", "1", "2026-12-07T12:00:09Z");
    d.index_binding(&cache, Change::Upsert(&rb));
    writers
        .role_bindings
        .apply_watcher_event(&kube::runtime::watcher::Event::Apply(rb));
    let mut req = request("a");
    req.status = Some(ApprovalRequestStatus {
        grant: Some(GrantStatus {
            kind: BindingKind::RoleBinding,
            name: "a".into(),
            namespace: Some("team".into()),
            granted_at: None,
            expires_at: Some(at("2026-12-07T12:00:01Z")),
            revoked_at: None,
        }),
        ..Default::default()
    });
    d.index_request(&cache, Change::Upsert(&req));
    assert_eq!(d.next(), Some(at("2026-12-07T12:00:01Z")));
    // The request goes: the annotation alone counts again.
    d.index_request(&cache, Change::Remove(&req));
    assert_eq!(d.next(), Some(at("2026-12-07T12:00:09Z")));
    // Another request of that name (another uid) does not move it.
    req.metadata.uid = Some("other".into());
    d.index_request(&cache, Change::Upsert(&req));
    assert_eq!(d.next(), Some(at("2026-12-07T12:00:09Z")));
}
