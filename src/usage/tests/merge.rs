//! The merge rules of the persisted summary: a delta added once, views joined
//! any number of times, in any order, within the caps; and the object form
//! round-trips.

use chrono::{Duration, TimeZone, Utc};
use proptest::prelude::*;

use super::at;
use crate::{
    api::{BindingKind, RoleKind, RoleRef, Subject, SubjectKind},
    usage::{
        book::{PairKey, PairUsage, Settings, Top},
        summary::{object_name, pairs_of, spec_of, status_of, MAX_SUBJECTS},
        BindingRef, Merge, UsageBook,
    },
};

fn binding(name: &str) -> BindingRef {
    BindingRef {
        kind: BindingKind::RoleBinding,
        namespace: Some("payments".into()),
        name: name.into(),
    }
}

fn key(b: &str, user: &str) -> PairKey {
    PairKey {
        binding: binding(b),
        subject: Subject {
            kind: SubjectKind::User,
            name: user.into(),
            namespace: None,
        },
    }
}

fn role(name: &str) -> RoleRef {
    RoleRef {
        kind: RoleKind::ClusterRole,
        name: name.into(),
    }
}

/// A pair used `uses` = (hour offset from the base, action, actor).
fn pair(uses: &[(i64, &str, &str)]) -> PairUsage {
    let base = at(0);
    let times: Vec<_> = uses.iter().map(|(h, _, _)| base + Duration::hours(*h)).collect();
    let first = times.iter().min().copied().unwrap_or(base);
    let last = times.iter().max().copied().unwrap_or(base);
    let mut p = PairUsage::empty(role("view"), first, last);
    let s = Settings::default();
    for ((_, action, actor), t) in uses.iter().zip(&times) {
        let mut one = PairUsage::empty(role("view"), *t, *t);
        one.add_day(t.date_naive().num_days_from_ce_(), 1);
        one.actions = Top::from_counts([(*action, 1)], s.max_actions);
        one.actors = Top::from_counts([(*actor, 1)], s.max_actors);
        p.merge(&one, Merge::Add, s);
    }
    p
}

trait Ce {
    fn num_days_from_ce_(&self) -> i32;
}
impl Ce for chrono::NaiveDate {
    fn num_days_from_ce_(&self) -> i32 {
        chrono::Datelike::num_days_from_ce(self)
    }
}

#[test]
fn a_delta_adds_its_counts_and_widens_the_times() {
    let s = Settings::default();
    let mut stored = pair(&[(0, "get pods", "alice"), (1, "get pods", "alice")]);
    let delta = pair(&[(30, "list pods", "bob")]);
    stored.merge(&delta, Merge::Add, s);
    assert_eq!(stored.requests(), 3);
    assert_eq!(stored.first_used, at(0));
    assert_eq!(stored.last_used, at(0) + Duration::hours(30));
    assert_eq!(stored.daily().count(), 2);
    assert_eq!(stored.actions.ranked(), vec![("get pods", 2), ("list pods", 1)]);
}

#[test]
fn joining_the_same_summary_again_changes_nothing() {
    let s = Settings::default();
    let a = pair(&[(0, "get pods", "alice"), (26, "list pods", "alice")]);
    let mut j = a.clone();
    j.merge(&a, Merge::Join, s);
    assert_eq!(j, a);
    // A newer version of the same object (more counted) wins, in either order.
    let mut newer = a.clone();
    newer.merge(&pair(&[(27, "list pods", "alice")]), Merge::Add, s);
    let mut x = a.clone();
    x.merge(&newer, Merge::Join, s);
    let mut y = newer.clone();
    y.merge(&a, Merge::Join, s);
    assert_eq!(x, newer);
    assert_eq!(y, newer);
}

#[test]
fn days_older_than_the_retention_are_dropped_on_merge() {
    let s = Settings {
        retention_days: 2,
        ..Default::default()
    };
    let mut p = pair(&[(0, "get pods", "alice")]);
    p.merge(&pair(&[(24 * 5, "get pods", "alice")]), Merge::Add, s);
    assert_eq!(p.requests(), 1, "only the recent day is kept");
    assert_eq!(p.first_used, at(0), "the first use stays known");
}

#[test]
fn the_object_round_trips_and_keeps_at_most_max_subjects() {
    let s = Settings::default();
    let mut book = UsageBook::new(s);
    for i in 0..(MAX_SUBJECTS + 20) {
        book.merge_pair(
            key("deployers", &format!("user-{i:03}")),
            &pair(&[(i as i64, "get pods", "x")]),
            Merge::Add,
        );
    }
    let status = status_of(book.pairs(), Some(at(0)));
    assert_eq!(status.subjects.len(), MAX_SUBJECTS);
    assert_eq!(status.subject_count as usize, MAX_SUBJECTS);
    // The most recently used are kept.
    assert_eq!(status.subjects[0].name, format!("user-{:03}", MAX_SUBJECTS + 19));
    assert_eq!(status.requests, MAX_SUBJECTS as u64);
    assert_eq!(status.observed_since, Some(at(0)));
    let spec = spec_of(&binding("deployers"));
    let back = pairs_of(&spec, &status, s);
    assert_eq!(back.len(), MAX_SUBJECTS);
    for (k, p) in &back {
        assert_eq!(book.pair(k), Some(p), "{k:?}");
    }
}

#[test]
fn a_hostile_stored_object_is_held_to_the_caps() {
    let s = Settings::default();
    let mut status = status_of([(&key("b", "alice"), &pair(&[(0, "get pods", "a")]))], None);
    let u = &mut status.subjects[0];
    u.daily.insert("not a date".into(), 5);
    u.daily.insert("1970-01-01".into(), 7);
    for i in 0..50 {
        u.top_actions.push(crate::api::Counted {
            name: format!("verb{i}"),
            count: i,
        });
    }
    u.first_used_at = Utc
        .with_ymd_and_hms(2030, 1, 1, 0, 0, 0)
        .single()
        .unwrap_or_default();
    let back = pairs_of(&spec_of(&binding("b")), &status, s);
    let p = &back[0].1;
    assert_eq!(p.requests(), 1, "unreadable and expired days are not counted");
    assert!(p.actions.ranked().len() <= s.max_actions);
    assert!(p.first_used <= p.last_used);
}

#[test]
fn object_names_are_valid_and_distinct_for_any_binding_name() {
    let names = [
        "a",
        "A/B",
        "x\" of ClusterRole \"cluster-admin",
        &"é".repeat(300),
        "system:controller:foo",
    ];
    let mut seen = std::collections::BTreeSet::new();
    for n in names {
        for kind in [BindingKind::RoleBinding, BindingKind::ClusterRoleBinding] {
            for ns in [None, Some("payments".to_string()), Some("payment".to_string())] {
                let b = BindingRef {
                    kind,
                    namespace: ns,
                    name: n.into(),
                };
                let o = object_name(&b);
                assert!(o.len() <= 63, "{o}");
                assert!(
                    o.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-'),
                    "{o}"
                );
                assert!(seen.insert(o));
            }
        }
    }
}

fn arb_pair() -> impl Strategy<Value = PairUsage> {
    proptest::collection::vec((0i64..24 * 200, 0usize..12, 0usize..6), 1..30).prop_map(|uses| {
        let actions: Vec<String> = (0..12).map(|i| format!("get r{i}")).collect();
        let actors: Vec<String> = (0..6).map(|i| format!("u{i}")).collect();
        let uses: Vec<(i64, &str, &str)> = uses
            .iter()
            .map(|(h, a, u)| (*h, actions[*a].as_str(), actors[*u].as_str()))
            .collect();
        pair(&uses)
    })
}

proptest! {
    #[test]
    fn join_is_idempotent_and_commutative_add_is_commutative(a in arb_pair(), b in arb_pair()) {
        let s = Settings { retention_days: 400, ..Default::default() };
        let mut aa = a.clone();
        aa.merge(&a, Merge::Join, s);
        prop_assert_eq!(&aa, &a);
        for how in [Merge::Add, Merge::Join] {
            let mut ab = a.clone();
            ab.merge(&b, how, s);
            let mut ba = b.clone();
            ba.merge(&a, how, s);
            prop_assert_eq!(ab.requests(), ba.requests());
            prop_assert_eq!(ab.last_used, ba.last_used);
            prop_assert_eq!(ab.first_used, ba.first_used);
            prop_assert_eq!(&ab.role, &ba.role);
            prop_assert_eq!(ab.actions.ranked(), ba.actions.ranked());
            prop_assert_eq!(ab.actors.ranked(), ba.actors.ranked());
            prop_assert!(ab.actions.ranked().len() <= s.max_actions);
            prop_assert!(ab.actors.ranked().len() <= s.max_actors);
        }
        // Added, requests are the sum; joined, the larger per day.
        let mut sum = a.clone();
        sum.merge(&b, Merge::Add, s);
        prop_assert_eq!(sum.requests(), a.requests() + b.requests());
        let mut j = a.clone();
        j.merge(&b, Merge::Join, s);
        prop_assert!(j.requests() >= a.requests().max(b.requests()));
        prop_assert!(j.requests() <= sum.requests());
    }

    #[test]
    fn the_retention_holds_after_any_merge(a in arb_pair(), b in arb_pair(), days in 1u32..120) {
        let s = Settings { retention_days: days, ..Default::default() };
        let mut m = a.clone();
        m.merge(&b, Merge::Add, s);
        let newest = m.last_used.date_naive();
        for (d, _) in m.daily() {
            prop_assert!((newest - d).num_days() <= i64::from(days));
        }
    }

    #[test]
    fn books_stay_within_max_pairs(n in 1usize..40, cap in 1usize..10) {
        let s = Settings { max_pairs: cap, ..Default::default() };
        let mut book = UsageBook::new(s);
        let mut other = UsageBook::new(Settings::default());
        for i in 0..n {
            other.merge_pair(key("b", &format!("u{i}")), &pair(&[(0, "get pods", "x")]), Merge::Add);
        }
        book.merge_book(&other, Merge::Add);
        book.merge_book(&other, Merge::Join);
        prop_assert_eq!(book.len(), n.min(cap));
    }
}

/// The largest object the operator writes: `MAX_SUBJECTS` subjects with every
/// day of the default retention counted, every action and actor slot taken by
/// a name of the longest kept length. It must stay under the API server's
/// request limit (1.5 MiB in etcd). Run with `--nocapture` for the figure.
#[test]
fn a_full_object_stays_under_the_api_servers_limit() {
    let s = Settings::default();
    let mut book = UsageBook::new(s);
    let long = |c: char, i: usize| format!("{i:03}{}", c.to_string().repeat(250));
    for i in 0..MAX_SUBJECTS {
        let mut p = PairUsage::empty(
            role(&long('r', 0)),
            at(0),
            at(0) + Duration::days(i64::from(s.retention_days)),
        );
        for d in 0..=s.retention_days {
            let day = (at(0) + Duration::days(i64::from(d)))
                .date_naive()
                .num_days_from_ce_();
            p.add_day(day, 1_000_000);
        }
        p.actions = Top::from_counts(
            (0..s.max_actions)
                .map(|a| (long('a', a), 7))
                .collect::<Vec<_>>()
                .iter()
                .map(|(n, c)| (n.as_str(), *c)),
            s.max_actions,
        );
        p.actors = Top::from_counts(
            (0..s.max_actors)
                .map(|a| (long('u', a), 7))
                .collect::<Vec<_>>()
                .iter()
                .map(|(n, c)| (n.as_str(), *c)),
            s.max_actors,
        );
        book.merge_pair(key(&long('b', 0), &long('s', i)), &p, Merge::Join);
    }
    let status = status_of(book.pairs(), Some(at(0)));
    let bytes = serde_json::to_vec(&status).map(|v| v.len()).unwrap_or(usize::MAX);
    let typical = {
        let mut b = UsageBook::new(s);
        b.merge_pair(
            key("deployers", "ci"),
            &pair(&[(0, "get pods", "ci"), (30, "list pods", "ci")]),
            Merge::Add,
        );
        serde_json::to_vec(&status_of(b.pairs(), Some(at(0))))
            .map(|v| v.len())
            .unwrap_or(0)
    };
    eprintln!("BindingUsage status: worst case {bytes} bytes ({MAX_SUBJECTS} subjects), one subject used on 2 days {typical} bytes");
    assert_eq!(status.subjects.len(), MAX_SUBJECTS);
    assert!(bytes < 1_400_000, "{bytes}");
}
