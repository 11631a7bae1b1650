//! Whether a crash-storm miss could have been avoided: from the bench's own
//! kill and start times and the `memory synced` line each process logs, was
//! any process alive and synced for a whole second after the moment it had
//! to act (an expiry, an approval) and before the act was seen (or the
//! request's window closed)? If not, no process could act; if so, it is a
//! real miss, to be looked for in that process's log.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};

/// One operator process of the storm.
#[derive(Debug, Clone)]
pub struct Life {
    /// Its log file.
    pub log: PathBuf,
    /// When it was SIGKILLed (`None`: it outlived the phase).
    pub killed: Option<DateTime<Utc>>,
    /// When it logged `memory synced` (`None`: it never did).
    pub synced: Option<DateTime<Utc>>,
}

/// The time of the first line of `log` containing `memory synced`.
pub fn synced_at(log: &Path) -> Option<DateTime<Utc>> {
    let text = std::fs::read_to_string(log).ok()?;
    let line = text.lines().find(|l| l.contains("memory synced"))?;
    let stamp = line.split_whitespace().next()?;
    DateTime::parse_from_rfc3339(stamp)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The first process (index) synced and alive for at least `grace` within
/// `[from, until]`, if any: it had a whole `grace` to act and did not.
pub fn could_act(
    lives: &[Life],
    from: DateTime<Utc>,
    until: DateTime<Utc>,
    grace: TimeDelta,
) -> Option<usize> {
    lives.iter().position(|l| {
        let Some(synced) = l.synced else {
            return false;
        };
        let start = synced.max(from);
        let end = l.killed.map_or(until, |k| k.min(until));
        end - start >= grace
    })
}
