//! Usage evidence: which standing access is used, read from the API server's audit
//! events.
//!
//! Every request RBAC allows carries, in its audit event, the annotation
//! `authorization.k8s.io/reason` naming the binding and subject that allowed it.
//! [`decode`] reads events out of bytes (JSON lines, `EventList`, gzip),
//! [`event`] is their wire shape, [`reason`] reads the annotation back (with
//! [`quoted`], Go's `%q` undone), [`attribute`] turns one event into a use of a
//! binding or a counted cause, and [`book`] keeps the bounded summary per binding
//! and subject; [`merge`] and [`summary`] are its persisted form (`BindingUsage`), and
//! [`outbox`] what is on its way there.
//!
//! Attribution's limit, said wherever usage is shown: RBAC credits the first
//! binding that matches, so a subject with two bindings that both allow a request
//! has it counted on one of them only. Requests RBAC did not authorise
//! (`system:masters`, the Node authorizer, webhooks) are counted by cause, never
//! guessed onto a binding.
//!
//! Like [`crate::decide`], nothing here reads the clock or the cluster. Every field
//! of an event may be written by an attacker (a user name, a binding name in a
//! tenant's namespace): sizes are capped and nothing panics on any input.

pub mod attribute;
pub mod book;
pub mod decode;
pub mod event;
pub mod merge;
pub mod outbox;
pub mod quoted;
pub mod reason;
pub mod summary;

pub use self::{
    attribute::{attribute, Cause, Observation, Use},
    book::{PairKey, PairUsage, Settings, UsageBook},
    decode::{read_events, Decoded, Limits},
    event::AuditEvent,
    merge::Merge,
    outbox::Outbox,
    reason::{BindingRef, Credit},
};

/// Adds one event to the book: attributed, counted by cause, or counted as
/// malformed.
pub fn ingest(book: &mut UsageBook, e: &AuditEvent) {
    match attribute(e) {
        Ok(obs) => {
            if let Some(at) = attribute::timestamp(e) {
                book.observe(at);
            }
            book.add(obs);
        }
        Err(_) => book.add_malformed(1),
    }
}

/// `used once`, `used 14 times`.
pub fn times(n: u64) -> String {
    match n {
        1 => "used once".into(),
        n => format!("used {n} times"),
    }
}

#[cfg(test)]
mod tests;
