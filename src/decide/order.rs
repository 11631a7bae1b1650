//! The order in which reviews are replayed: the one rule shared by requests and
//! certification items.
//!
//! Reviews are replayed by the instant they take effect. `creationTimestamp` has
//! one-second resolution, so several reviews often share an instant; within one
//! second the order is:
//! 1. by the caller's rank of the decision (the order that keeps the least access);
//! 2. reviews the operator has already judged before those it has not, earlier
//!    first judgement first: a verdict a reviewer has been shown never moves to a
//!    review made after it (a second click in the same second is the duplicate,
//!    not the first one);
//! 3. by name, so the input order never matters.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use crate::api::AccessReview;

/// Sorts `(review, instant it takes effect)` pairs into replay order; `rank` orders
/// decisions that take effect in the same second (lower first).
pub fn sort_for_replay(reviews: &mut [(&AccessReview, DateTime<Utc>)], rank: impl Fn(&AccessReview) -> u8) {
    reviews.sort_by(|(a, ta), (b, tb)| {
        ta.cmp(tb)
            .then_with(|| rank(a).cmp(&rank(b)))
            .then_with(|| first_judged(a, b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });
}

/// Judged before unjudged; of two judged, the one judged first.
fn first_judged(a: &AccessReview, b: &AccessReview) -> Ordering {
    let judged = |r: &AccessReview| r.status.as_ref().and_then(|s| s.observed_at);
    match (judged(a), judged(b)) {
        (Some(x), Some(y)) => x.cmp(&y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}
