//! Two ways to combine usage, for the persisted summary (`BindingUsage`):
//!
//! - **add** (`⊕`): a replica's *new* counts since its last write, added to what
//!   is stored. Commutative (several replicas' deltas, in any order, give the
//!   same sum); not idempotent, so each delta is added exactly once: the write
//!   that adds it is conditional on the stored object's `resourceVersion`, it
//!   carries the writer's flush mark ([`added`], [`marked`]), and a delta is
//!   dropped when a write succeeded or a later read shows its mark. A write whose
//!   response was lost is retried with the same sequence ([`super::outbox`]),
//!   and the retry adds nothing the mark says is in.
//! - **join** (`⊔`): two views of the *same* summary (the copy this replica wrote
//!   and the one its watch delivers, older or newer): the larger of each count.
//!   Idempotent and commutative: seeing an object twice, or out of order, never
//!   counts anything twice.
//!
//! Both keep the caps of the book: days within the retention, a few actions and
//! actors per pair ([`Settings`]), at most `max_pairs` pairs.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::book::{day, PairKey, PairUsage, Settings, Top, UsageBook};
use crate::api::FlushMark;

/// The most flush marks one summary keeps, the most recent: far more than the
/// replicas that write at once (each process start is a new writer).
pub const MAX_WRITERS: usize = 32;

/// How two counts of the same thing combine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Merge {
    /// Sum: a delta added to a total.
    Add,
    /// Maximum: two views of the same total.
    Join,
}

impl Merge {
    fn apply(self, a: u64, b: u64) -> u64 {
        match self {
            Merge::Add => a.saturating_add(b),
            Merge::Join => a.max(b),
        }
    }
}

impl Top {
    /// Builds a top from counted names, keeping the `cap` most counted.
    pub fn from_counts<'a>(counts: impl IntoIterator<Item = (&'a str, u64)>, cap: usize) -> Top {
        let mut t = Top::default();
        t.merge(
            &Top {
                entries: counts.into_iter().map(|(k, n)| (k.into(), n)).collect(),
            },
            Merge::Add,
            cap,
        );
        t
    }

    /// Combines `other` into this one: each name's counts summed or maxed, then
    /// the `cap` most counted kept (ties by name), whatever the order of the two.
    pub fn merge(&mut self, other: &Top, how: Merge, cap: usize) {
        let mut all: HashMap<Box<str>, u64> = HashMap::new();
        for (k, n) in self.entries.drain(..) {
            let e = all.entry(k).or_default();
            *e = Merge::Add.apply(*e, n);
        }
        let mut theirs: HashMap<&str, u64> = HashMap::new();
        for (k, n) in &other.entries {
            let e = theirs.entry(k).or_default();
            *e = Merge::Add.apply(*e, *n);
        }
        for (k, n) in theirs {
            match all.get_mut(k) {
                Some(e) => *e = how.apply(*e, n),
                None => {
                    all.insert(k.into(), n);
                }
            }
        }
        let mut v: Vec<(Box<str>, u64)> = all.into_iter().collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        v.truncate(cap);
        self.entries = v;
    }
}

impl PairUsage {
    /// A pair first and last used at these times (a first use after the last is
    /// taken as the last), with no counts yet.
    pub fn empty(
        role: crate::api::RoleRef,
        first_used: chrono::DateTime<chrono::Utc>,
        last_used: chrono::DateTime<chrono::Utc>,
    ) -> Self {
        PairUsage {
            role,
            first_used: first_used.min(last_used),
            last_used,
            daily: Vec::new(),
            actions: Top::default(),
            actors: Top::default(),
        }
    }

    /// Sets (adds to) the count of one day, given as days since the common era.
    pub fn add_day(&mut self, day: i32, n: u64) {
        self.count(day, n);
    }

    /// Combines `other` (usage of the same pair) into this one.
    pub fn merge(&mut self, other: &PairUsage, how: Merge, s: Settings) {
        // The role of the later use; on a tie the larger, so the order of the
        // two never matters.
        if other.last_used > self.last_used || (other.last_used == self.last_used && other.role > self.role) {
            self.role = other.role.clone();
        }
        self.last_used = self.last_used.max(other.last_used);
        self.first_used = self.first_used.min(other.first_used);
        for (d, n) in &other.daily {
            match self.daily.binary_search_by_key(d, |(x, _)| *x) {
                Ok(i) => {
                    if let Some(e) = self.daily.get_mut(i) {
                        e.1 = how.apply(e.1, *n);
                    }
                }
                Err(i) => self.daily.insert(i, (*d, *n)),
            }
        }
        self.actions.merge(&other.actions, how, s.max_actions);
        self.actors.merge(&other.actors, how, s.max_actors);
        let oldest = day(self.last_used) - i32::try_from(s.retention_days).unwrap_or(i32::MAX);
        self.daily.retain(|(d, _)| *d >= oldest);
    }
}

impl UsageBook {
    /// Combines one pair's usage into the book (a new pair beyond `max_pairs`
    /// is counted in `dropped`, not kept).
    pub fn merge_pair(&mut self, key: PairKey, usage: &PairUsage, how: Merge) {
        let s = self.settings();
        if let Some(p) = self.pairs.get_mut(&key) {
            p.merge(usage, how, s);
        } else if self.pairs.len() >= s.max_pairs {
            self.dropped = self.dropped.saturating_add(1);
        } else {
            let mut p = PairUsage::empty(usage.role.clone(), usage.first_used, usage.last_used);
            p.merge(usage, how, s);
            self.pairs.insert(key, p);
        }
    }

    /// Combines every pair and count of `other` into this book.
    pub fn merge_book(&mut self, other: &UsageBook, how: Merge) {
        for (k, p) in &other.pairs {
            self.merge_pair(k.clone(), p, how);
        }
        if let Some(at) = other.observed_since {
            self.observe_since(at);
        }
        if let Some(at) = other.observed_until {
            self.observed_until = Some(self.observed_until.map_or(at, |u| u.max(at)));
        }
        for (c, n) in &other.unattributed {
            let e = self.unattributed.entry(*c).or_default();
            *e = how.apply(*e, *n);
        }
        self.ignored = how.apply(self.ignored, other.ignored);
        self.malformed = how.apply(self.malformed, other.malformed);
        self.dropped = how.apply(self.dropped, other.dropped);
    }

    /// Moves the start of the observation back to `at` if earlier.
    pub fn observe_since(&mut self, at: chrono::DateTime<chrono::Utc>) {
        self.observed_since = Some(self.observed_since.map_or(at, |s| s.min(at)));
    }

    /// Takes the pairs of the bindings out of the book, grouped by binding (the
    /// book's counters stay).
    pub fn take_pairs(&mut self) -> std::collections::BTreeMap<super::BindingRef, Vec<(PairKey, PairUsage)>> {
        let mut out: std::collections::BTreeMap<_, Vec<_>> = std::collections::BTreeMap::new();
        for (k, p) in self.pairs.drain() {
            out.entry(k.binding.clone()).or_default().push((k, p));
        }
        out
    }
}

impl UsageBook {
    /// Drops every pair of `binding`.
    pub fn remove_binding(&mut self, binding: &super::BindingRef) {
        self.pairs.retain(|k, _| k.binding != *binding);
    }
}

/// Whether flush `sequence` of `writer` is already in a summary with these
/// marks. A writer adds its flushes in order and each write sets its mark to the
/// highest sequence it added, so everything up to the mark is in.
pub fn added(marks: &[FlushMark], writer: &str, sequence: u64) -> bool {
    marks.iter().any(|m| m.writer == writer && m.sequence >= sequence)
}

/// The marks once `writer` added its flushes up to `sequence` at `now`: its mark
/// set (never lowered), the marks of writers silent for the retention dropped,
/// the [`MAX_WRITERS`] most recent kept.
pub fn marked(
    marks: &[FlushMark],
    writer: &str,
    sequence: u64,
    now: DateTime<Utc>,
    retention_days: u32,
) -> Vec<FlushMark> {
    let cutoff = now - chrono::Duration::days(i64::from(retention_days));
    let previous = marks
        .iter()
        .filter(|m| m.writer == writer)
        .map(|m| m.sequence)
        .max()
        .unwrap_or(0);
    let mut out: Vec<FlushMark> = marks
        .iter()
        .filter(|m| m.writer != writer && m.at >= cutoff)
        .cloned()
        .collect();
    out.push(FlushMark {
        writer: writer.to_string(),
        sequence: sequence.max(previous),
        at: now,
    });
    out.sort_by(|a, b| b.at.cmp(&a.at).then(a.writer.cmp(&b.writer)));
    out.truncate(MAX_WRITERS);
    out
}
