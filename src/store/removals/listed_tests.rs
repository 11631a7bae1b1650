use std::collections::BTreeMap;

use super::*;
use crate::labels::EXPIRES_AT;

#[test]
fn a_page_of_bindings_is_due_before_the_list_is_complete_and_the_rebuild_keeps_it_in_hand() {
    let (cache, _writers) = Cache::new();
    let d = &cache.removals;
    let mut req = ApprovalRequest::new("r", Default::default());
    req.metadata.namespace = Some("team".into());
    req.metadata.uid = Some("r-uid".into());
    let rb = |name: &str| {
        let mut meta = crate::labels::owned_metadata(
            &req,
            name,
            Some("team"),
            BTreeMap::from([(EXPIRES_AT.to_string(), "2026-12-07T12:00:01Z".to_string())]),
        );
        meta.uid = Some(format!("{name}-uid"));
        meta.resource_version = Some("1".into());
        RoleBinding {
            metadata: meta,
            ..Default::default()
        }
    };
    let (first, second) = (rb("first"), rb("second"));
    d.listed_bindings(&cache, std::slice::from_ref(&first));
    let now: DateTime<Utc> = "2026-12-07T12:00:05Z".parse().unwrap();
    let due = d.take_due(now, chrono::Duration::zero(), 10);
    assert_eq!(due.len(), 1);
    // The list completes while that delete is under way: not taken twice.
    d.index_binding(&cache, Change::Rebuild(&[first, second]));
    let rest = d.take_due(now, chrono::Duration::zero(), 10);
    let names: Vec<&str> = rest.iter().map(|x| x.key.name.as_str()).collect();
    assert_eq!(names, ["second"]);
}
