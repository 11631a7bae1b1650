//! Usage evidence in the recommendation: unused for `unusedFor`, observed at least
//! that long, is `Revoke`; used through another binding is `Review`; too short an
//! observation or too young a binding says so and recommends nothing.

use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::{
    api::{BindingKind, BindingSnapshot, FindingCode, Recommendation, Subject, SubjectKind},
    certify::usage::{PairFacts, UsageIndex},
    usage::{BindingRef, PairKey},
};

fn day(d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::days(i64::from(d))
}

fn binding(name: &str, created: u32) -> BindingSnapshot {
    BindingSnapshot {
        kind: BindingKind::ClusterRoleBinding,
        namespace: None,
        name: name.into(),
        uid: "u".into(),
        created_at: Some(day(created)),
    }
}

fn subject(kind: SubjectKind, name: &str) -> Subject {
    Subject {
        kind,
        name: name.into(),
        namespace: None,
    }
}

fn index(observed: u32, uses: &[(&str, Subject, u32, &[&str])]) -> UsageIndex {
    let mut idx = UsageIndex::observing(day(observed));
    for (b, s, last, actors) in uses {
        idx.add(
            PairKey {
                binding: BindingRef {
                    kind: BindingKind::ClusterRoleBinding,
                    namespace: None,
                    name: (*b).into(),
                },
                subject: s.clone(),
            },
            PairFacts {
                last_used: day(*last),
                requests: 3,
                top_actions: vec!["get pods".into()],
            },
            actors.iter().copied(),
        );
    }
    idx
}

const THIRTY: Duration = Duration::days(30);

#[test]
fn unused_for_the_period_and_observed_as_long_is_revoke() {
    let idx = index(0, &[]);
    let dave = subject(SubjectKind::User, "dave");
    let j = idx.judge(&binding("old", 0), &dave, Some(THIRTY), day(31));
    let j = j.unwrap_or_else(|| panic!("no judgement"));
    assert_eq!(j.recommendation, Some(Recommendation::Revoke));
    assert_eq!(j.findings[0].code, FindingCode::Unused);
    assert_eq!(j.usage.last_used_at, None);

    // Observed 29 days only, or a binding 10 days old: too short to judge.
    for (observed, created) in [(2, 0), (0, 21)] {
        let idx = index(observed, &[]);
        let j = idx.judge(&binding("old", created), &dave, Some(THIRTY), day(31));
        let j = j.unwrap_or_else(|| panic!("no judgement"));
        assert_eq!(j.recommendation, None);
        assert_eq!(j.findings[0].code, FindingCode::UnusedTooShortToJudge);
    }
    // No unusedFor: the usage is shown, nothing recommended.
    let j = idx.judge(&binding("old", 0), &dave, None, day(31));
    assert_eq!(j.map(|j| (j.recommendation, j.findings.len())), Some((None, 0)));
}

#[test]
fn last_use_decides_against_the_period() {
    let sre = subject(SubjectKind::Group, "sre");
    let idx = index(0, &[("oncall", sre.clone(), 20, &["bob"])]);
    let recent = idx.judge(&binding("oncall", 0), &sre, Some(THIRTY), day(49));
    assert_eq!(recent.as_ref().and_then(|j| j.recommendation), None);
    assert_eq!(recent.map(|j| j.usage.last_used_at), Some(Some(day(20))));
    let stale = idx.judge(&binding("oncall", 0), &sre, Some(THIRTY), day(50));
    assert_eq!(stale.and_then(|j| j.recommendation), Some(Recommendation::Revoke));
}

#[test]
fn used_only_through_another_binding_is_review_and_names_it() {
    let devs = subject(SubjectKind::Group, "devs");
    let alice = subject(SubjectKind::User, "alice");
    let idx = index(0, &[("devs-view", devs, 40, &["alice"])]);
    let j = idx.judge(&binding("alice-view", 0), &alice, Some(THIRTY), day(45));
    let j = j.unwrap_or_else(|| panic!("no judgement"));
    assert_eq!(j.recommendation, Some(Recommendation::Review));
    assert_eq!(j.findings[0].code, FindingCode::UsedThroughAnotherBinding);
    assert_eq!(
        j.usage.used_through.as_deref(),
        Some("ClusterRoleBinding devs-view (as Group devs)")
    );
}

#[test]
fn without_evidence_usage_says_nothing() {
    let idx = UsageIndex::default();
    let j = idx.judge(
        &binding("old", 0),
        &subject(SubjectKind::User, "dave"),
        Some(THIRTY),
        day(90),
    );
    assert_eq!(j, None);
}

#[test]
fn a_grants_usage_says_how_often_and_for_what() {
    let alice = subject(SubjectKind::User, "alice");
    let mut idx = index(0, &[]);
    let key = |s: Subject| PairKey {
        binding: BindingRef {
            kind: BindingKind::RoleBinding,
            namespace: Some("team".into()),
            name: "gatehouse-grant".into(),
        },
        subject: s,
    };
    idx.add(
        key(alice),
        PairFacts {
            last_used: day(3),
            requests: 14,
            top_actions: vec!["get pods".into(), "create pods/exec".into()],
        },
        ["alice"],
    );
    let g = idx.grant(&key(subject(SubjectKind::User, "x")).binding);
    let g = g.unwrap_or_else(|| panic!("no usage"));
    assert_eq!(g.summary, "used 14 times: get pods, create pods/exec");
    assert_eq!((g.requests, g.last_used_at), (14, Some(day(3))));
    assert_eq!(crate::certify::usage::grant_summary(1, &[]), "used once");
}
