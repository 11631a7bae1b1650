//! What this operator wrote that its memory may not show yet.
//!
//! A write's own watch event arrives a few milliseconds after the write. A
//! reconcile that runs in between (woken by another of its writes, a review's
//! verdict say) sees the old version: it would write the same thing again, and
//! for a request (whose writes carry the resourceVersion they replace) fail
//! with a conflict. So each write is noted with the version it replaced. A
//! request whose memory still shows a version this operator already wrote over
//! is not reconciled again until memory catches up (its watch event wakes it);
//! a review's verdict is not written again over the same version.

use std::{collections::HashMap, sync::Mutex};

/// The versions of requests this operator wrote over, by request: memory
/// showing one of them is behind.
#[derive(Default)]
pub struct Superseded {
    notes: Mutex<HashMap<String, Chain>>,
}

/// Consecutive writes to one object: the versions they replaced, and the last
/// version they made.
struct Chain {
    over: Vec<String>,
    made: String,
}

impl Superseded {
    /// A write replaced `before` with `after`. A write that changed nothing (the
    /// API server keeps the version, and no watch event follows) is not noted:
    /// memory is not behind it.
    pub fn wrote(&self, key: &str, before: String, after: String) {
        if before == after || after.is_empty() {
            return;
        }
        let Ok(mut notes) = self.notes.lock() else { return };
        match notes.get_mut(key) {
            // The next write of a chain memory has not caught up with.
            Some(chain) if chain.made == before => {
                chain.over.push(before);
                chain.made = after;
            }
            _ => {
                notes.insert(
                    key.to_string(),
                    Chain {
                        over: vec![before],
                        made: after,
                    },
                );
            }
        }
    }

    /// Whether memory's `version` of the object is one this operator already
    /// wrote over. Any other version (the last write's, or someone else's)
    /// drops the note.
    pub fn behind(&self, key: &str, version: &str) -> bool {
        let Ok(mut notes) = self.notes.lock() else {
            return false;
        };
        match notes.get(key) {
            Some(chain) if chain.over.iter().any(|v| v == version) => true,
            Some(_) => {
                notes.remove(key);
                false
            }
            None => false,
        }
    }

    /// Drops the notes of objects `keep` says are gone.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.retain(|k, _| keep(k));
        }
    }
}

/// Notes of recent writes of one kind of value, by object.
pub struct Written<V> {
    notes: Mutex<HashMap<String, (String, V)>>,
}

impl<V> Default for Written<V> {
    fn default() -> Self {
        Written {
            notes: Mutex::default(),
        }
    }
}

impl<V: PartialEq> Written<V> {
    /// Whether `value` was written over `version`, the version memory still holds.
    pub fn already(&self, key: &str, version: &str, value: &V) -> bool {
        let Ok(mut notes) = self.notes.lock() else {
            return false;
        };
        match notes.get(key) {
            Some((over, written)) if over == version => written == value,
            Some(_) => {
                notes.remove(key);
                false
            }
            None => false,
        }
    }

    /// `value` was written over `version`.
    pub fn wrote(&self, key: String, version: String, value: V) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.insert(key, (version, value));
        }
    }

    /// Drops the notes of objects `keep` says are gone.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        if let Ok(mut notes) = self.notes.lock() {
            notes.retain(|k, _| keep(k));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_not_written_twice_over_the_same_version() {
        let w = Written::default();
        w.wrote("team/a".into(), "41".into(), "Active");
        assert!(w.already("team/a", "41", &"Active"), "memory still shows 41");
        assert!(!w.already("team/a", "41", &"Expired"), "another value is written");
        // Memory moved on (our write, or someone else's): the note is dropped.
        assert!(!w.already("team/a", "42", &"Active"));
        assert!(!w.already("team/a", "41", &"Active"), "dropped");
    }

    #[test]
    fn memory_is_behind_while_it_shows_a_version_we_wrote_over() {
        let s = Superseded::default();
        // The finalizer (40 -> 41), then the status (41 -> 42), before memory saw either.
        s.wrote("team/a", "40".into(), "41".into());
        s.wrote("team/a", "41".into(), "42".into());
        assert!(s.behind("team/a", "40"));
        assert!(s.behind("team/a", "41"));
        // Memory caught up with the last write: the note goes.
        assert!(!s.behind("team/a", "42"));
        assert!(!s.behind("team/a", "40"), "dropped with the note");
        // Someone else's write also ends it.
        s.wrote("team/b", "7".into(), "8".into());
        assert!(!s.behind("team/b", "9"));
        assert!(!s.behind("team/b", "7"));
        // A write that changed nothing leaves nothing to wait for.
        s.wrote("team/c", "5".into(), "5".into());
        assert!(!s.behind("team/c", "5"));
    }
}
