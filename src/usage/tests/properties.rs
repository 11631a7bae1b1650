//! Properties over hostile input: nothing panics, and a name, however written,
//! comes back exactly as the API server quoted it.

use proptest::prelude::*;

use super::{crb_reason, go_quote};
use crate::{
    api::SubjectKind,
    usage::{
        decode::{read_events, Limits},
        reason::parse,
        UsageBook,
    },
};

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z0-9.:-]{1,40}",
        "\\PC{1,40}",
        proptest::collection::vec(any::<char>(), 1..40).prop_map(|v| v.into_iter().collect()),
        Just(r#"a" of ClusterRole "cluster-admin" to User "root"#.to_string()),
    ]
}

proptest! {
    #[test]
    fn any_names_round_trip_through_the_reason(binding in name(), role in name(), subject in name()) {
        let reason = crb_reason(&binding, &role, "User", &subject);
        let c = parse(&reason);
        let fits = binding.len() <= 253 && role.len() <= 253 && subject.len() <= 512 && reason.len() <= 2048;
        prop_assume!(fits);
        let c = c.ok().flatten();
        prop_assert!(c.is_some(), "{reason:?} not read");
        if let Some(c) = c {
            // Go's \xNN of a control byte comes back as that byte; our quote emits
            // only such bytes below 0x80, so the text is exact.
            prop_assert_eq!(c.binding.name, binding);
            prop_assert_eq!(c.role.name, role);
            prop_assert_eq!(c.subject.kind, SubjectKind::User);
            prop_assert_eq!(c.subject.name, subject);
        }
    }

    #[test]
    fn any_reason_text_is_read_or_refused_without_panic(s in "RBAC: allowed by \\PC{0,200}") {
        let _ = parse(&s);
    }

    #[test]
    fn any_bytes_are_read_or_counted_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let mut book = UsageBook::default();
        let limits = Limits { max_line: 256, max_document: 1024 };
        let _ = read_events(bytes.as_slice(), limits, &mut |e| crate::usage::ingest(&mut book, &e));
    }

    #[test]
    fn any_json_event_is_ingested_without_panic(
        user in name(), reason in "\\PC{0,100}", verb in name(), stage in prop_oneof![Just("ResponseComplete".to_string()), Just("Panic".to_string()), "\\PC{0,10}"],
        ts in prop_oneof![Just("2026-03-02T10:00:00.123456Z".to_string()), "\\PC{0,30}"],
    ) {
        let e = serde_json::json!({
            "stage": stage, "verb": verb, "user": {"username": user},
            "stageTimestamp": ts,
            "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason},
        });
        let mut book = UsageBook::default();
        let line = e.to_string();
        let _ = read_events(line.as_bytes(), Limits::default(), &mut |e| crate::usage::ingest(&mut book, &e));
        let _ = go_quote(&user);
    }
}
