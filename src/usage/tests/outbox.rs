//! A delta is added exactly once even when a write's answer is lost: the flush
//! mark in the object says what is in, and the outbox keeps what may not be.
//! Each scenario plays the object as the API server would hold it.

use chrono::Duration;

use super::at;
use crate::{
    api::{BindingKind, FlushMark, RoleKind, RoleRef, Subject, SubjectKind},
    usage::{
        book::{PairKey, PairUsage, Settings},
        merge::{added, marked, MAX_WRITERS},
        outbox::MAX_PARTS,
        BindingRef, Outbox,
    },
};

fn key() -> PairKey {
    PairKey {
        binding: BindingRef {
            kind: BindingKind::RoleBinding,
            namespace: Some("payments".into()),
            name: "deployers".into(),
        },
        subject: Subject {
            kind: SubjectKind::User,
            name: "alice".into(),
            namespace: None,
        },
    }
}

/// `n` uses of the pair on one day.
fn uses(n: u64) -> Vec<(PairKey, PairUsage)> {
    let mut p = PairUsage::empty(
        RoleRef {
            kind: RoleKind::ClusterRole,
            name: "edit".into(),
        },
        at(1),
        at(1),
    );
    p.add_day(chrono::Datelike::num_days_from_ce(&at(1).date_naive()), n);
    vec![(key(), p)]
}

fn count(pairs: &[(PairKey, PairUsage)]) -> u64 {
    pairs.iter().map(|(_, p)| p.requests()).sum()
}

/// The stored object: its request count and its marks.
#[derive(Default)]
struct Object {
    requests: u64,
    marks: Vec<FlushMark>,
}

impl Object {
    fn mark(&self, writer: &str) -> Option<u64> {
        self.marks
            .iter()
            .filter(|m| m.writer == writer)
            .map(|m| m.sequence)
            .max()
    }

    /// One write by `writer`, as usage_flush makes it; `applied` says whether
    /// the API server applied it (the answer may be lost either way).
    fn write(&mut self, writer: &str, outbox: &mut Outbox, applied: bool, answered: bool) {
        let s = Settings::default();
        let Some((seq, delta)) = outbox.to_add(self.mark(writer), s) else {
            return;
        };
        if applied {
            self.requests += count(&delta);
            self.marks = marked(&self.marks, writer, seq, at(2), s.retention_days);
        }
        if !answered {
            outbox.sent();
        } else if applied {
            *outbox = Outbox::default();
        }
    }
}

#[test]
fn a_write_applied_but_unanswered_is_not_added_again() {
    let s = Settings::default();
    let mut obj = Object::default();
    let mut outbox = Outbox::default();
    outbox.push(1, uses(5), s);
    obj.write("a", &mut outbox, true, false);
    assert_eq!(obj.requests, 5);
    // The next flush: new counts, and the old ones the operator cannot know
    // were written.
    outbox.push(2, uses(3), s);
    obj.write("a", &mut outbox, true, true);
    assert_eq!(obj.requests, 8, "the lost write's 5 are added once");
    assert!(outbox.is_empty());
}

#[test]
fn a_write_not_applied_and_unanswered_is_added_by_the_next() {
    let s = Settings::default();
    let mut obj = Object::default();
    let mut outbox = Outbox::default();
    outbox.push(1, uses(5), s);
    obj.write("a", &mut outbox, false, false);
    assert_eq!(obj.requests, 0);
    outbox.push(2, uses(3), s);
    obj.write("a", &mut outbox, true, true);
    assert_eq!(obj.requests, 8);
}

#[test]
fn an_outdated_copy_of_the_object_never_adds_twice() {
    let s = Settings::default();
    let mut obj = Object::default();
    let mut outbox = Outbox::default();
    outbox.push(1, uses(5), s);
    obj.write("a", &mut outbox, true, false);
    // The watch's copy still shows no mark: the write built on it is refused
    // (resourceVersion), the outbox is unchanged, and the fresh read decides.
    let stale = outbox.to_add(None, s).map(|(_, d)| count(&d));
    assert_eq!(stale, Some(5));
    outbox.push(2, uses(3), s);
    obj.write("a", &mut outbox, true, true);
    assert_eq!(obj.requests, 8);
}

#[test]
fn counts_never_sent_join_one_part_and_unanswered_writes_are_bounded() {
    let s = Settings::default();
    let mut outbox = Outbox::default();
    // The API server is unreachable: nothing is sent, everything joins.
    for seq in 1..=50 {
        outbox.push(seq, uses(1), s);
    }
    assert_eq!(
        outbox.to_add(None, s).map(|(q, d)| (q, count(&d))),
        Some((50, 50))
    );
    // Every write times out: one part per flush, at most MAX_PARTS.
    let mut obj = Object::default();
    for seq in 51..=70 {
        outbox.push(seq, uses(1), s);
        obj.write("a", &mut outbox, false, false);
    }
    // 20 parts made, the oldest 12 given up (counted), the newest 8 kept.
    assert_eq!(outbox.given_up, 12);
    let left = outbox.to_add(obj.mark("a"), s).map(|(q, d)| (q, count(&d)));
    assert_eq!(left, Some((70, MAX_PARTS as u64)));
}

#[test]
fn marks_are_per_writer_never_lowered_and_bounded() {
    let s = Settings::default();
    let marks = marked(&[], "a", 7, at(1), s.retention_days);
    assert!(added(&marks, "a", 7) && added(&marks, "a", 3));
    assert!(!added(&marks, "a", 8) && !added(&marks, "b", 1));
    let lowered = marked(&marks, "a", 2, at(2), s.retention_days);
    assert!(added(&lowered, "a", 7));
    // A writer silent for the retention is dropped; many writers keep the newest.
    let later = at(1) + Duration::days(i64::from(s.retention_days) + 1);
    assert!(!added(&marked(&marks, "b", 1, later, s.retention_days), "a", 7));
    let mut many = Vec::new();
    for i in 0..100 {
        many = marked(
            &many,
            &format!("w{i}"),
            1,
            at(1) + Duration::minutes(i),
            s.retention_days,
        );
    }
    assert_eq!(many.len(), MAX_WRITERS);
    assert!(added(&many, "w99", 1) && !added(&many, "w0", 1));
}
