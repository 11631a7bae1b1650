//! Whether a crash-storm miss could have been avoided: from the bench's own
//! kill and start times and the `memory synced` line each process logs, was
//! any process alive and synced for a whole second after the moment it had
//! to act (an expiry, an approval) and before the act was seen (or the
//! request's window closed)? If not, no process could act; if so, it is a
//! real miss, to be looked for in that process's log.
//!
//! And when a grant was due to be gone ([`due`]): the target is "gone within
//! 1 s of its expiry, or of the restart after it"; a restart SIGKILLed again
//! before it had that second (the storm's kills fall at random, some a few
//! milliseconds after a start) is not counted as one, the next one is.

use std::path::{Path, PathBuf};

use chrono::{DateTime, TimeDelta, Utc};

/// One operator process of the storm.
#[derive(Debug, Clone)]
pub struct Life {
    /// Its log file.
    pub log: PathBuf,
    /// When it was started (for the first, the start of the phase).
    pub started: DateTime<Utc>,
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

/// When a grant expiring at `expires` was due to be gone (1 s later, by the
/// target): its expiry if a process ran then and went on for at least `grace`;
/// otherwise the start of the first process after it that lived `grace` past
/// its start. `None`: no process ever did (the last one outlives the phase, so
/// only for an expiry after it was killed).
pub fn due(lives: &[Life], expires: DateTime<Utc>, grace: TimeDelta) -> Option<DateTime<Utc>> {
    lives.iter().find_map(|l| {
        let from = l.started.max(expires);
        let had_grace = l.killed.is_none_or(|k| k - from >= grace);
        had_grace.then_some(from)
    })
}
