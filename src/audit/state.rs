//! The operator's usage evidence in memory: the book the receiver fills, and the
//! index certification reads, rebuilt at most once per flush interval.

use std::sync::{Arc, Mutex, RwLock};

use chrono::{DateTime, Utc};

use crate::{
    certify::usage::UsageIndex,
    usage::{self, AuditEvent, Settings, UsageBook},
};

/// Usage evidence shared by the receiver and the reconcilers.
#[derive(Debug)]
pub struct UsageState {
    book: Mutex<UsageBook>,
    index: RwLock<Option<Arc<UsageIndex>>>,
}

impl UsageState {
    /// An empty state keeping what `settings` allow.
    pub fn new(settings: Settings) -> Self {
        UsageState {
            book: Mutex::new(UsageBook::new(settings)),
            index: RwLock::new(None),
        }
    }

    /// Adds events (and a count of unreadable ones) to the book.
    pub fn ingest(&self, events: &[AuditEvent], malformed: u64) {
        // A poisoned lock only means another ingest panicked mid-way; the book
        // stays consistent per event, so go on with it.
        let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
        for e in events {
            usage::ingest(&mut book, e);
        }
        book.add_malformed(malformed);
    }

    /// A copy of the book (for status, tests and the flush).
    pub fn snapshot(&self) -> UsageBook {
        self.book.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// How many binding × subject pairs are kept.
    pub fn len(&self) -> usize {
        self.book.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no pair is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops what is past the retention and rebuilds the index certification reads.
    pub fn refresh(&self, now: DateTime<Utc>) {
        let index = {
            let mut book = self.book.lock().unwrap_or_else(|p| p.into_inner());
            book.prune(now);
            UsageIndex::from_book(&book)
        };
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(index));
    }

    /// The index as of the last refresh; `None` before the first.
    pub fn index(&self) -> Option<Arc<UsageIndex>> {
        self.index.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
