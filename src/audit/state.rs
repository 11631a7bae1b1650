//! The operator's usage evidence in memory: the new counts the receiver adds
//! (pending, then in flight until a write is known to have added them, see
//! [`crate::usage::outbox`]), what the `BindingUsage`
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
    usage::{self, AuditEvent, BindingRef, Merge, Outbox, PairKey, PairUsage, Settings, UsageBook},
};

/// Usage evidence shared by the receiver, the flush and the reconcilers.
#[derive(Debug)]
pub struct UsageState {
    settings: Settings,
    /// Counts received and not yet taken by a flush.
    pending: Mutex<UsageBook>,
    /// Counts taken by a flush whose write has not succeeded yet.
    inflight: Mutex<UsageBook>,
    /// The same, per binding, as the next write must send them, for the
    /// bindings whose last write failed.
    unsent: Mutex<BTreeMap<BindingRef, Outbox>>,
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

/// What a flush writes: per binding, its counts not yet known to be written.
pub type Deltas = BTreeMap<BindingRef, Outbox>;

impl UsageState {
    /// An empty state keeping what `settings` allow. Nothing is stored: call
    /// [`UsageState::load`] (the flush does) before the index is built.
    pub fn new(settings: Settings) -> Self {
        UsageState {
            settings,
            pending: Mutex::new(UsageBook::new(settings)),
            inflight: Mutex::new(UsageBook::new(settings)),
            unsent: Mutex::new(BTreeMap::new()),
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

    /// Takes the pending counts for flush `sequence`, with those of earlier
    /// flushes not known to be written, grouped by binding (they stay counted,
    /// in flight, until [`UsageState::flushed`] or [`UsageState::failed`]), and
    /// the start of the observation to store.
    pub fn take_pending(&self, sequence: u64) -> (Deltas, Option<DateTime<Utc>>) {
        let (new, since) = {
            let mut pending = lock(&self.pending);
            let since = pending.observed_since;
            (pending.take_pairs(), since)
        };
        let mut inflight = lock(&self.inflight);
        for pairs in new.values() {
            for (k, p) in pairs {
                inflight.merge_pair(k.clone(), p, Merge::Add);
            }
        }
        let mut deltas = std::mem::take(&mut *self.unsent.lock().unwrap_or_else(|p| p.into_inner()));
        for (binding, pairs) in new {
            deltas
                .entry(binding)
                .or_default()
                .push(sequence, pairs, self.settings);
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

    /// A binding's write failed: its counts stay as they are, for the next
    /// flush to send again (never merged with newer ones into one sequence: the
    /// write may have been applied).
    pub fn failed(&self, binding: &BindingRef, outbox: Outbox) {
        {
            let mut inflight = lock(&self.inflight);
            inflight.remove_binding(binding);
            for (k, p) in outbox.pairs(self.settings) {
                inflight.merge_pair(k, &p, Merge::Add);
            }
        }
        if !outbox.is_empty() {
            self.unsent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(binding.clone(), outbox);
        }
    }

    /// Bindings and pairs whose counts are not known to be written.
    pub fn unwritten(&self) -> (usize, usize) {
        let pending = lock(&self.pending);
        let inflight = lock(&self.inflight);
        let mut bindings: std::collections::BTreeSet<&BindingRef> = std::collections::BTreeSet::new();
        for (k, _) in pending.pairs().into_iter().chain(inflight.pairs()) {
            bindings.insert(&k.binding);
        }
        (bindings.len(), pending.len() + inflight.len())
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
