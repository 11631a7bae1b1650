//! The operator's usage evidence in memory: the new counts the receiver adds
//! (pending, then in flight while being written), what the `BindingUsage`
//! objects hold (stored), and the index certification reads, rebuilt at most
//! once per half flush interval from stored ⊕ in flight ⊕ pending.

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex, MutexGuard, RwLock,
    },
};

use chrono::{DateTime, Utc};

use crate::{
    certify::usage::UsageIndex,
    usage::{self, AuditEvent, BindingRef, Merge, PairKey, PairUsage, Settings, UsageBook},
};

/// Usage evidence shared by the receiver, the flush and the reconcilers.
#[derive(Debug)]
pub struct UsageState {
    settings: Settings,
    /// Counts received and not yet taken by a flush.
    pending: Mutex<UsageBook>,
    /// Counts taken by a flush whose write has not succeeded yet.
    inflight: Mutex<UsageBook>,
    /// The join of every stored summary read or written.
    stored: Mutex<UsageBook>,
    /// Whether the stored summaries were loaded (no index before: an index of
    /// this replica's evidence alone would restart the observation).
    loaded: AtomicBool,
    index: RwLock<Option<Arc<UsageIndex>>>,
}

/// A poisoned lock only means another holder panicked mid-way; every book stays
/// consistent per pair, so go on with it.
fn lock(m: &Mutex<UsageBook>) -> MutexGuard<'_, UsageBook> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The new counts of each binding a flush writes.
pub type Deltas = BTreeMap<BindingRef, Vec<(PairKey, PairUsage)>>;

impl UsageState {
    /// An empty state keeping what `settings` allow. Nothing is stored: call
    /// [`UsageState::load`] (the flush does) before the index is built.
    pub fn new(settings: Settings) -> Self {
        UsageState {
            settings,
            pending: Mutex::new(UsageBook::new(settings)),
            inflight: Mutex::new(UsageBook::new(settings)),
            stored: Mutex::new(UsageBook::new(settings)),
            loaded: AtomicBool::new(false),
            index: RwLock::new(None),
        }
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Adds events (and a count of unreadable ones) to the pending counts.
    pub fn ingest(&self, events: &[AuditEvent], malformed: u64) {
        let mut book = lock(&self.pending);
        for e in events {
            usage::ingest(&mut book, e);
        }
        book.add_malformed(malformed);
    }

    /// Everything known: stored ⊕ in flight ⊕ pending.
    pub fn snapshot(&self) -> UsageBook {
        let mut view = lock(&self.stored).clone();
        view.merge_book(&lock(&self.inflight), Merge::Add);
        view.merge_book(&lock(&self.pending), Merge::Add);
        view
    }

    /// How many binding × subject pairs are known.
    pub fn len(&self) -> usize {
        self.snapshot().len()
    }

    /// Whether no pair is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Joins stored summaries (read from the API or just written) into what is
    /// stored; idempotent, so the same object read again changes nothing. The
    /// first call marks the state loaded.
    pub fn load(
        &self,
        pairs: impl IntoIterator<Item = (PairKey, PairUsage)>,
        observed_since: Option<DateTime<Utc>>,
    ) {
        let mut stored = lock(&self.stored);
        for (k, p) in pairs {
            stored.merge_pair(k, &p, Merge::Join);
        }
        if let Some(at) = observed_since {
            stored.observe_since(at);
        }
        self.loaded.store(true, Ordering::Release);
    }

    /// Whether the stored summaries were loaded.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::Acquire)
    }

    /// Takes the pending counts for a flush, grouped by binding (they stay
    /// counted, in flight, until [`UsageState::flushed`] or
    /// [`UsageState::failed`]), with the start of the observation to store.
    pub fn take_pending(&self) -> (Deltas, Option<DateTime<Utc>>) {
        let (deltas, since) = {
            let mut pending = lock(&self.pending);
            let since = pending.observed_since;
            (pending.take_pairs(), since)
        };
        let mut inflight = lock(&self.inflight);
        for pairs in deltas.values() {
            for (k, p) in pairs {
                inflight.merge_pair(k.clone(), p, Merge::Add);
            }
        }
        if let Some(at) = since {
            inflight.observe_since(at);
        }
        let stored_since = lock(&self.stored).observed_since;
        let since = match (since, stored_since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        (deltas, since)
    }

    /// A binding's counts were written: `written` is what its object now holds.
    pub fn flushed(
        &self,
        binding: &BindingRef,
        written: Vec<(PairKey, PairUsage)>,
        since: Option<DateTime<Utc>>,
    ) {
        self.load(written, since);
        lock(&self.inflight).remove_binding(binding);
    }

    /// A binding's write failed: its counts go back to pending, for the next flush.
    pub fn failed(&self, binding: &BindingRef, pairs: Vec<(PairKey, PairUsage)>) {
        lock(&self.inflight).remove_binding(binding);
        let mut pending = lock(&self.pending);
        for (k, p) in pairs {
            pending.merge_pair(k, &p, Merge::Add);
        }
    }

    /// Drops what is past the retention and rebuilds the index certification
    /// reads (not before the stored summaries are loaded).
    pub fn refresh(&self, now: DateTime<Utc>) {
        if !self.loaded() {
            return;
        }
        lock(&self.stored).prune(now);
        lock(&self.pending).prune(now);
        let mut view = self.snapshot();
        view.prune(now);
        let index = UsageIndex::from_book(&view);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(index));
    }

    /// The index as of the last refresh; `None` before the first.
    pub fn index(&self) -> Option<Arc<UsageIndex>> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
