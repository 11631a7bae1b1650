//! One binding's counts on their way to its `BindingUsage` object, kept until a
//! write is known to have added them.
//!
//! Each flush gives the new counts the flush's sequence number. A write adds
//! every part the object's mark for this writer does not cover yet, and sets the
//! mark to the highest sequence it added ([`super::merge::marked`]). When a
//! write's outcome is unknown (a timeout, a reset connection, a server error: the
//! API server may have applied it), its parts stay as they are, *sent*: the next
//! write reads the mark and adds them only if they are not in. Counts never sent
//! can join the newest unsent part, so a binding holds at most a few parts
//! ([`MAX_PARTS`]) even while the API server is unreachable.

use std::collections::HashMap;

use super::{
    book::{PairKey, PairUsage, Settings},
    merge::Merge,
};

/// Parts kept per binding. Only a run of writes whose outcome stayed unknown,
/// one per flush interval with no success in between, makes more than two; past
/// this the oldest part is given up (counted, never added twice).
pub const MAX_PARTS: usize = 8;

#[derive(Clone, Debug, PartialEq, Eq)]
struct Part {
    sequence: u64,
    pairs: HashMap<PairKey, PairUsage>,
    /// A write holding this part may have been applied.
    sent: bool,
}

/// One binding's counts not known to be written.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Outbox {
    parts: Vec<Part>,
    /// Parts given up past [`MAX_PARTS`], and how many pairs they held.
    pub given_up: u64,
}

fn join(
    into: &mut HashMap<PairKey, PairUsage>,
    pairs: impl IntoIterator<Item = (PairKey, PairUsage)>,
    s: Settings,
) {
    for (k, p) in pairs {
        match into.get_mut(&k) {
            Some(e) => e.merge(&p, Merge::Add, s),
            None => {
                into.insert(k, p);
            }
        }
    }
}

impl Outbox {
    /// Adds the new counts of flush `sequence` (higher than any before).
    pub fn push(&mut self, sequence: u64, pairs: Vec<(PairKey, PairUsage)>, s: Settings) {
        if pairs.is_empty() {
            return;
        }
        match self.parts.last_mut() {
            // Never sent: nothing of it can be in the object, so it may take the
            // new counts and their sequence.
            Some(last) if !last.sent => {
                join(&mut last.pairs, pairs, s);
                last.sequence = last.sequence.max(sequence);
            }
            _ => {
                self.parts.push(Part {
                    sequence,
                    pairs: pairs.into_iter().collect(),
                    sent: false,
                });
                if self.parts.len() > MAX_PARTS {
                    let gone = self.parts.remove(0);
                    self.given_up = self.given_up.saturating_add(gone.pairs.len() as u64);
                }
            }
        }
    }

    /// Whether nothing is left to write.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// What a write adds to an object whose mark for this writer is `mark`: the
    /// parts after the mark, summed, with the sequence to mark; `None` when all
    /// are in. Parts up to the mark are dropped (the mark never goes down, so
    /// even an outdated copy of the object tells the truth about them).
    pub fn to_add(&mut self, mark: Option<u64>, s: Settings) -> Option<(u64, Vec<(PairKey, PairUsage)>)> {
        if let Some(m) = mark {
            self.parts.retain(|p| p.sequence > m);
        }
        let sequence = self.parts.iter().map(|p| p.sequence).max()?;
        let mut sum: HashMap<PairKey, PairUsage> = HashMap::new();
        for p in &self.parts {
            join(&mut sum, p.pairs.iter().map(|(k, v)| (k.clone(), v.clone())), s);
        }
        let mut v: Vec<(PairKey, PairUsage)> = sum.into_iter().collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        Some((sequence, v))
    }

    /// A write of every part may have been applied: each stays, to be checked
    /// against the mark.
    pub fn sent(&mut self) {
        for p in &mut self.parts {
            p.sent = true;
        }
    }

    /// Every pair held, summed (what memory counts while the write is pending).
    pub fn pairs(&self, s: Settings) -> Vec<(PairKey, PairUsage)> {
        let mut copy = self.clone();
        copy.to_add(None, s).map(|(_, v)| v).unwrap_or_default()
    }
}
