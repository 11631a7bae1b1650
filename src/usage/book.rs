//! The usage book: per binding and subject, when it was last used, how often on
//! each day of the retention period, and its most frequent actions, with the
//! allowed requests no binding can be credited with counted by cause. Bounded in
//! every dimension whatever the events say: pairs ([`Settings::max_pairs`]), days
//! (the retention), actions and actors (a few each, the rest counted).

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};

use super::{
    attribute::{Cause, Ignored, Observation, Use},
    reason::BindingRef,
};
use crate::api::{RoleRef, Subject};

/// How much the book keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// Days of daily counts kept (default 90); a pair unused that long is dropped.
    pub retention_days: u32,
    /// The most binding × subject pairs kept; uses of further pairs are counted in
    /// [`UsageBook::dropped`] (default 200,000).
    pub max_pairs: usize,
    /// Actions tracked per pair (default 8).
    pub max_actions: usize,
    /// Actors tracked per pair (default 4): who acted through a group's binding.
    pub max_actors: usize,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            retention_days: 90,
            max_pairs: 200_000,
            max_actions: 8,
            max_actors: 4,
        }
    }
}

/// One binding and one of its subjects.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PairKey {
    /// The binding.
    pub binding: BindingRef,
    /// The subject RBAC matched.
    pub subject: Subject,
}

/// A bounded "top N" of names with counts (the space-saving algorithm: a new
/// name takes the place of the least counted one and inherits its count, so a
/// name used often is never lost; counts of late arrivals are upper bounds).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Top {
    pub(super) entries: Vec<(Box<str>, u64)>,
}

impl Top {
    /// Counts `n` uses of `name`, keeping at most `cap` names.
    pub fn add(&mut self, name: &str, n: u64, cap: usize) {
        if let Some(e) = self.entries.iter_mut().find(|(k, _)| &**k == name) {
            e.1 = e.1.saturating_add(n);
        } else if self.entries.len() < cap {
            self.entries.push((name.into(), n));
        } else if let Some(min) = self
            .entries
            .iter_mut()
            .min_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)))
        {
            *min = (name.into(), min.1.saturating_add(n));
        }
    }

    /// Names by count, most used first (ties by name).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.entries.iter().map(|(k, n)| (&**k, *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }
}

/// The usage of one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairUsage {
    /// The role the binding granted when last used.
    pub role: RoleRef,
    /// The first use seen.
    pub first_used: DateTime<Utc>,
    /// The last use seen.
    pub last_used: DateTime<Utc>,
    /// Requests per day (days since the common era, count), oldest first.
    pub(super) daily: Vec<(i32, u64)>,
    /// The most frequent actions.
    pub actions: Top,
    /// Who acted through it.
    pub actors: Top,
}

impl PairUsage {
    /// Requests within the retention period.
    pub fn requests(&self) -> u64 {
        self.daily.iter().fold(0u64, |a, (_, n)| a.saturating_add(*n))
    }

    /// Requests per day, oldest first.
    pub fn daily(&self) -> impl Iterator<Item = (NaiveDate, u64)> + '_ {
        self.daily
            .iter()
            .filter_map(|(d, n)| NaiveDate::from_num_days_from_ce_opt(*d).map(|d| (d, *n)))
    }

    pub(super) fn count(&mut self, day: i32, n: u64) {
        match self.daily.binary_search_by_key(&day, |(d, _)| *d) {
            Ok(i) => {
                if let Some(e) = self.daily.get_mut(i) {
                    e.1 = e.1.saturating_add(n);
                }
            }
            Err(i) => self.daily.insert(i, (day, n)),
        }
    }
}

/// Everything ingested so far.
#[derive(Clone, Debug, Default)]
pub struct UsageBook {
    settings: Settings,
    /// The earliest event time seen: usage is known from here on.
    pub observed_since: Option<DateTime<Utc>>,
    /// The latest event time seen.
    pub observed_until: Option<DateTime<Utc>>,
    pub(super) pairs: HashMap<PairKey, PairUsage>,
    /// Allowed requests not credited to a binding, by cause.
    pub unattributed: BTreeMap<Cause, u64>,
    /// Events that were not uses (earlier stages, denied, no decision).
    pub ignored: u64,
    /// Events that could not be read.
    pub malformed: u64,
    /// Uses of pairs beyond [`Settings::max_pairs`], not kept.
    pub dropped: u64,
}

pub(super) fn day(at: DateTime<Utc>) -> i32 {
    at.date_naive().num_days_from_ce()
}

impl UsageBook {
    /// An empty book.
    pub fn new(settings: Settings) -> Self {
        UsageBook {
            settings,
            ..Default::default()
        }
    }

    /// The settings.
    pub fn settings(&self) -> Settings {
        self.settings
    }

    /// Adds what one event said.
    pub fn add(&mut self, obs: Observation) {
        match obs {
            Observation::Credited(u) => self.credit(*u),
            Observation::Unattributed(cause) => {
                let n = self.unattributed.entry(cause).or_default();
                *n = n.saturating_add(1);
            }
            Observation::Ignored(Ignored::EarlierStage | Ignored::Denied | Ignored::NoDecision) => {
                self.ignored = self.ignored.saturating_add(1);
            }
        }
    }

    /// Counts one unreadable event.
    pub fn add_malformed(&mut self, n: u64) {
        self.malformed = self.malformed.saturating_add(n);
    }

    /// Widens the observation period to include `at`.
    pub fn observe(&mut self, at: DateTime<Utc>) {
        self.observed_since = Some(self.observed_since.map_or(at, |s| s.min(at)));
        self.observed_until = Some(self.observed_until.map_or(at, |u| u.max(at)));
    }

    fn credit(&mut self, u: Use) {
        self.observe(u.at);
        let s = self.settings;
        let key = PairKey {
            binding: u.credit.binding,
            subject: u.credit.subject,
        };
        if !self.pairs.contains_key(&key) && self.pairs.len() >= s.max_pairs {
            self.dropped = self.dropped.saturating_add(1);
            return;
        }
        let p = self.pairs.entry(key).or_insert_with(|| PairUsage {
            role: u.credit.role.clone(),
            first_used: u.at,
            last_used: u.at,
            daily: Vec::new(),
            actions: Top::default(),
            actors: Top::default(),
        });
        if u.at >= p.last_used {
            p.last_used = u.at;
            p.role = u.credit.role;
        }
        p.first_used = p.first_used.min(u.at);
        p.count(day(u.at), 1);
        p.actions.add(&u.action, 1, s.max_actions);
        p.actors.add(&u.actor, 1, s.max_actors);
        // Days beyond the retention, counted from the newest, are dropped at once so a
        // pair never holds more than retention + 1 days.
        let oldest = day(p.last_used) - i32::try_from(s.retention_days).unwrap_or(i32::MAX);
        p.daily.retain(|(d, _)| *d >= oldest);
    }

    /// Drops what is older than the retention at `now`: days, and pairs unused
    /// since.
    pub fn prune(&mut self, now: DateTime<Utc>) {
        let days = i64::from(self.settings.retention_days);
        let cutoff = now - Duration::days(days);
        let oldest = day(cutoff);
        self.pairs.retain(|_, p| {
            p.daily.retain(|(d, _)| *d >= oldest);
            p.last_used >= cutoff
        });
    }

    /// One pair's usage.
    pub fn pair(&self, key: &PairKey) -> Option<&PairUsage> {
        self.pairs.get(key)
    }

    /// How many pairs are kept.
    pub fn len(&self) -> usize {
        self.pairs.len()
    }

    /// Whether no pair is kept.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// Every pair, in key order.
    pub fn pairs(&self) -> Vec<(&PairKey, &PairUsage)> {
        let mut v: Vec<_> = self.pairs.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    /// Allowed requests in total: credited (within the retention) and not.
    pub fn total_unattributed(&self) -> u64 {
        self.unattributed.values().fold(0u64, |a, n| a.saturating_add(*n))
    }
}
