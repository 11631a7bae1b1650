//! What this operator wrote that its memory may not show yet.
//!
//! A write's own watch event arrives a few milliseconds after the write. A
//! reconcile that runs in between (woken by another of its writes, a review's
//! verdict say) sees the old version and would write the same thing again: a
//! wasted write, and for a status a certain conflict. So each write is noted
//! with the version it replaced; while memory still holds exactly that version,
//! the same value is not written again. Once memory holds anything else the
//! note is dropped and the usual comparison with memory decides.

use std::{collections::HashMap, sync::Mutex};

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
}
