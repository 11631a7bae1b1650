//! The skeleton every controller shares: what a reconcile holds ([`Shell`]),
//! how long it may take ([`Shell::bounded`]) and when it runs again after it
//! failed ([`Shell::retry_after`], [`backoff`]).
//!
//! The request controller ([`super::Context`]) and the certification ones
//! ([`super::certify::Context`]) each hold a [`Shell`] and add only what is
//! theirs; so a 409, an API server that is down or a reconcile that hangs is
//! handled the same way whichever controller meets it.

use std::{
    collections::HashMap,
    future::Future,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use chrono::{DateTime, Utc};
use kube::{
    runtime::{
        controller::{self, Action as Requeue},
        reflector::ObjectRef,
    },
    Client, Resource,
};
use prometheus_client::metrics::histogram::Histogram;

use super::Events;
use crate::{
    metrics::{ErrorLabel, Metrics},
    notify::Notifier,
    store::Cache,
};

/// The clock: `Utc::now` in production, a controllable one in tests.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// A reconcile that takes longer is abandoned and retried (an API call that
/// never answers must not hold an object and a worker forever).
pub const RECONCILE_TIMEOUT: Duration = Duration::from_secs(30);

/// The wait before a retry that needs no back-off.
pub const SOON: Duration = Duration::from_secs(1);

/// The longest back-off.
pub const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the error policy needs to know of a controller's error.
pub trait Failure: std::fmt::Display {
    /// The metric label of the variant.
    fn label(&self) -> &'static str;
    /// The API call that failed underneath, if one did.
    fn api_error(&self) -> Option<&kube::Error>;
    /// Whether the reconcile was abandoned for taking too long.
    fn timed_out(&self) -> bool;
    /// The error of a reconcile abandoned after `after`.
    fn timeout(after: Duration) -> Self
    where
        Self: Sized;

    /// Whether the failure says nothing about the object itself: the API server
    /// could not be reached, did not answer in time, or was overloaded or down
    /// (5xx, 429).
    fn is_transient(&self) -> bool {
        self.timed_out() || self.api_error().is_some_and(transient)
    }

    /// Whether memory was behind the API server (409 Conflict).
    fn is_conflict(&self) -> bool {
        matches!(self.api_error(), Some(kube::Error::Api(s)) if s.code == 409)
    }
}

/// Whether an API error is the API server's trouble rather than a refusal.
fn transient(e: &kube::Error) -> bool {
    match e {
        kube::Error::Api(s) => s.code >= 500 || s.code == 429,
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Delay before retry number `attempt` (from 1): doubling from 1 s, capped at 5 min.
pub fn backoff(attempt: u32) -> Duration {
    let secs = 1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX);
    Duration::from_secs(secs).min(MAX_BACKOFF)
}

/// Consecutive failures per object (a key such as `namespace/name`).
#[derive(Debug, Default)]
pub struct Failures(Mutex<HashMap<String, u32>>);

impl Failures {
    /// Forgets the object's failures.
    pub fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.0.lock() {
            f.remove(key);
        }
    }

    /// Counts one more failure; the back-off before the next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        let attempt = match self.0.lock() {
            Ok(mut f) => {
                let n = f.entry(key.to_string()).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        };
        backoff(attempt)
    }

    /// The error policy: how long to wait before reconciling the object again.
    ///
    /// A conflict means memory is behind the API server (usually by our own
    /// last write): the watch event that brings it up to date wakes the object
    /// within milliseconds; the requeue is only the fallback. An unreachable or
    /// overloaded API server, or a reconcile that timed out, is retried every
    /// second: when it comes back nothing must be waiting out a back-off (an
    /// expiry or a revoke would be late). Other errors back off exponentially
    /// per object (1 s, 2 s, 4 s, ... up to 5 min), so a role the operator may
    /// not bind does not hammer the API server.
    pub fn retry_after(&self, key: &str, err: &impl Failure) -> Duration {
        if err.is_conflict() || err.is_transient() {
            return SOON;
        }
        self.failed(key)
    }
}

/// What every controller's reconcile holds; no globals.
pub struct Shell {
    /// Client of the API server.
    pub client: Client,
    /// What the operator knows of the cluster.
    pub cache: Arc<Cache>,
    /// Publishes Events, off the reconcile path, on a queue of this controller's own.
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: Clock,
    /// Tells people what changed; disabled unless the operator starts it.
    pub notify: Notifier,
    /// A reconcile that takes longer is abandoned and retried.
    pub reconcile_timeout: Duration,
    /// Consecutive failed reconciles per object, for back-off.
    failures: Failures,
}

impl Shell {
    /// A shell on the given clock; starts its Event publisher.
    pub fn new(client: Client, cache: Arc<Cache>, metrics: Arc<Metrics>, clock: Clock) -> Self {
        Shell {
            events: Events::start(client.clone(), metrics.clone(), Some(cache.clone())),
            client,
            cache,
            metrics,
            clock,
            notify: Notifier::default(),
            reconcile_timeout: RECONCILE_TIMEOUT,
            failures: Failures::default(),
        }
    }

    /// The clock now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// Forgets the failures counted under `key`.
    pub fn succeeded(&self, key: &str) {
        self.failures.succeeded(key)
    }

    /// Counts one more failure under `key`; the back-off before the next attempt.
    pub fn failed(&self, key: &str) -> Duration {
        self.failures.failed(key)
    }

    /// Runs a reconcile of the object `key` within the timeout, forgets its
    /// failures once it succeeds, and observes how long it took.
    pub async fn bounded<E: Failure>(
        &self,
        key: &str,
        duration: &Histogram,
        work: impl Future<Output = Result<Requeue, E>>,
    ) -> Result<Requeue, E> {
        let started = Instant::now();
        let result = match tokio::time::timeout(self.reconcile_timeout, work).await {
            Ok(result) => result,
            Err(_) => Err(E::timeout(self.reconcile_timeout)),
        };
        if result.is_ok() {
            self.succeeded(key);
        }
        duration.observe(started.elapsed().as_secs_f64());
        result
    }

    /// After a failed reconcile of the object `key` (a `kind`): counted, logged,
    /// retried by the policy of [`Failures::retry_after`]; never a crash.
    pub fn retry_after(&self, kind: &'static str, key: &str, err: &impl Failure) -> Requeue {
        self.metrics
            .reconcile_errors
            .get_or_create(&ErrorLabel {
                error: err.label().to_string(),
            })
            .inc();
        tracing::warn!(kind, object = %key, error = %err, "reconcile failed; retrying");
        Requeue::requeue(self.failures.retry_after(key, err))
    }
}

/// What a controller reports after each reconcile, logged the same way for
/// every controller: a failed reconcile was logged by the error policy; an
/// object woken after it was deleted (with its namespace, say) needs nothing;
/// anything else (the queue, the store) is a warning.
pub fn log_outcome<K, E, Q>(result: Result<(ObjectRef<K>, Requeue), controller::Error<E, Q>>)
where
    K: Resource,
    E: std::error::Error + 'static,
    Q: std::error::Error + 'static,
{
    match result {
        Ok(_) | Err(controller::Error::ReconcilerFailed(..)) => {}
        Err(controller::Error::ObjectNotFound(r)) => {
            tracing::debug!(object = %r, "woken for an object no longer in memory")
        }
        Err(e) => tracing::warn!(error = %e, "controller"),
    }
}

/// A controller's context is its shell plus what is its own.
macro_rules! shell_context {
    ($context:ty) => {
        impl std::ops::Deref for $context {
            type Target = $crate::controller::shell::Shell;

            fn deref(&self) -> &Self::Target {
                &self.shell
            }
        }

        impl std::ops::DerefMut for $context {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.shell
            }
        }
    };
}
pub(crate) use shell_context;

#[cfg(test)]
mod tests {
    use kube::core::Status;

    use super::*;

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error("api: {0}")]
        Api(kube::Error),
        #[error("timed out")]
        Timeout,
        #[error("no name")]
        MissingField,
    }

    impl Failure for TestError {
        fn label(&self) -> &'static str {
            "test"
        }
        fn api_error(&self) -> Option<&kube::Error> {
            match self {
                TestError::Api(e) => Some(e),
                _ => None,
            }
        }
        fn timed_out(&self) -> bool {
            matches!(self, TestError::Timeout)
        }
        fn timeout(_: Duration) -> Self {
            TestError::Timeout
        }
    }

    fn api(code: u16) -> TestError {
        TestError::Api(kube::Error::Api(Box::new(Status {
            code,
            ..Default::default()
        })))
    }

    fn delays(f: &Failures, key: &str, err: &TestError, n: usize) -> Vec<u64> {
        (0..n).map(|_| f.retry_after(key, err).as_secs()).collect()
    }

    #[test]
    fn a_conflict_an_api_server_in_trouble_or_a_timeout_is_retried_every_second() {
        let f = Failures::default();
        for err in [api(409), api(500), api(503), api(429), TestError::Timeout] {
            assert_eq!(delays(&f, "ns/a", &err, 4), [1, 1, 1, 1], "{err}");
        }
        // Nothing was counted: a refusal afterwards starts its back-off at 1 s.
        assert_eq!(delays(&f, "ns/a", &api(403), 1), [1]);
    }

    #[test]
    fn a_refusal_backs_off_per_object_until_it_succeeds() {
        let f = Failures::default();
        assert_eq!(delays(&f, "ns/a", &api(403), 4), [1, 2, 4, 8]);
        assert_eq!(delays(&f, "ns/a", &TestError::MissingField, 1), [16]);
        // Another object has a count of its own.
        assert_eq!(delays(&f, "ns/b", &api(422), 2), [1, 2]);
        f.succeeded("ns/a");
        assert_eq!(delays(&f, "ns/a", &api(403), 2), [1, 2]);
    }

    #[test]
    fn the_back_off_doubles_up_to_five_minutes() {
        let secs: Vec<u64> = (1..=10).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(secs, [1, 2, 4, 8, 16, 32, 64, 128, 256, 300]);
        assert_eq!(backoff(0), Duration::from_secs(1));
        assert_eq!(backoff(64), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
