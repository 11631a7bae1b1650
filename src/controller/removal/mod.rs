//! Removals first: the writes that end access never wait for a leader
//! election nor behind a burst of status writes and Events.
//!
//! - `store::deadline`: when an operator-made RoleBinding, ClusterRoleBinding
//!   or OneTime Job must be gone, from memory (pure);
//! - `store::removals`: every such object by its deadline ([`Deadlines`], a
//!   `BTreeMap` kept in step by the watch loops), and the gate that makes
//!   status writes and Events wait while removals are due;
//! - [`lane`]: the task, in every replica, that deletes what falls due.

pub mod lane;

pub use crate::store::removals::{Deadlines, Handled, Key, Kind};

#[cfg(test)]
mod tests;
