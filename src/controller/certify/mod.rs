//! Access certification on the cluster: the shell around [`crate::certify`].
//!
//! Two kube-runtime controllers of their own, beside the JIT one, each with its
//! own trigger queue ([`super::watch::Hub`]) and workers, so that launching a run
//! of thousands of items never delays a grant or a revoke:
//!
//! - [`campaign`]: a campaign's validity, the start of each run (scheduled or on
//!   demand), recorded in `status.runs[]` before any item exists, the creation of
//!   its items ([`launch`]), their counts, and the end of their retention;
//! - [`item`]: one item, evaluated by the core from memory, its reviews'
//!   verdicts, and the removal of revoked access ([`remediate`]) guarded by the
//!   binding's uid and resourceVersion.
//!
//! Like the JIT reconcile, both read only from memory ([`Cache`]),
//! write only what changed, requeue at the exact next deadline and give up on a
//! reconcile that takes too long.

mod bindable;
pub mod campaign;
mod inventory;
mod issue;
pub mod item;
mod launch;
mod record;
pub mod remediate;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use kube::{runtime::controller::Action as Requeue, Client};
use thiserror::Error;

use super::Events;
use crate::{metrics::Metrics, store::Cache};

pub use self::{campaign::reconcile_campaign, item::reconcile_item};

/// What can fail in a certification reconcile. Every variant ends in a retry
/// with backoff.
#[derive(Debug, Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Items of a run could not be created.
    #[error("creating the items of run {run} in namespace {namespace}: {source}")]
    Launch {
        /// The run.
        run: String,
        /// The review namespace.
        namespace: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A computation on a blocking thread did not finish (it panicked).
    #[error("a background computation failed: {0}")]
    Task(String),
    /// The object has no namespace or name (never from a real API server).
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// The reconcile did not finish in time (an API call that never answered).
    #[error("the reconcile took longer than {0:?} and was abandoned")]
    Timeout(Duration),
}

impl Error {
    /// Metric label of the variant.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "certify_kube",
            Error::Launch { .. } => "certify_launch",
            Error::Task(_) => "certify_task",
            Error::MissingField(_) => "certify_missing_field",
            Error::Timeout(_) => "certify_timeout",
        }
    }
}

/// How certification behaves in this operator.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The operator removes revoked access itself (campaigns with
    /// `remediation: Automatic`). Off: every removal waits for an admin, with the
    /// exact command in the item's status.
    pub remediation: bool,
    /// A reconcile that takes longer is abandoned and retried.
    pub reconcile_timeout: Duration,
    /// How long one campaign reconcile spends creating items before it hands
    /// over and continues in the next one (a launch never holds a worker long).
    pub launch_slice: Duration,
    /// Items created at once during a launch.
    pub create_parallelism: usize,
    /// The shortest review window a campaign may have.
    pub min_review_window: chrono::Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            remediation: false,
            reconcile_timeout: Duration::from_secs(30),
            launch_slice: Duration::from_secs(10),
            create_parallelism: 8,
            min_review_window: chrono::Duration::hours(1),
        }
    }
}

/// Everything a certification reconcile needs; no globals.
pub struct Context {
    /// Client of the API server.
    pub client: Client,
    /// What the operator knows of the cluster.
    pub cache: Arc<Cache>,
    /// Publishes Events, on a queue of its own (a run falling due at once never
    /// crowds out the Events of requests).
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Arc<Metrics>,
    /// The clock.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Settings.
    pub settings: Settings,
    /// Consecutive failed reconciles per object (`namespace/name`), for backoff.
    failures: Mutex<HashMap<String, u32>>,
    /// Verdicts and item statuses written that memory may not show yet.
    written_verdict: super::written::Written<crate::api::AccessReviewStatus>,
    written_status: super::written::Written<crate::api::AccessCertificationStatus>,
    /// The items of each launch under way, computed once when it starts (or
    /// when this process first continues it), by campaign uid and run.
    launches: Mutex<HashMap<(String, String), LaunchItems>>,
    /// Tells people what changed; disabled unless the operator starts it.
    pub notify: crate::notify::Notifier,
    /// Who the operator is (SelfSubjectReview at start); `None`: unknown, and
    /// then it removes nothing itself.
    pub identity: Option<crate::certify::OperatorIdentity>,
    /// Recent answers to "may the operator bind this role?".
    bindable: bindable::BindCache,
    /// Usage evidence from the audit webhook, and how often it is refreshed (items
    /// are evaluated again that often); `None`: no evidence.
    pub usage: Option<(Arc<crate::audit::UsageState>, std::time::Duration)>,
}

/// The items a launch creates, and what it skips.
type LaunchItems = Arc<crate::certify::Launch>;

impl Context {
    /// A context on the given clock; starts its Event publisher.
    pub fn new(
        client: Client,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
        settings: Settings,
    ) -> Self {
        Context {
            events: Events::start(client.clone(), metrics.clone()),
            client,
            cache,
            metrics,
            clock,
            settings,
            failures: Mutex::default(),
            written_verdict: Default::default(),
            written_status: Default::default(),
            launches: Mutex::default(),
            notify: crate::notify::Notifier::default(),
            identity: None,
            bindable: bindable::BindCache::default(),
            usage: None,
        }
    }

    /// The clock now.
    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    fn succeeded(&self, key: &str) {
        if let Ok(mut f) = self.failures.lock() {
            f.remove(key);
        }
    }

    fn failed(&self, key: String) -> u32 {
        match self.failures.lock() {
            Ok(mut f) => {
                let n = f.entry(key).or_insert(0);
                *n = n.saturating_add(1);
                *n
            }
            Err(_) => 1,
        }
    }
}

/// After an error: retry with backoff (per object), never crash.
fn retry_after(ctx: &Context, key: String, err: &Error) -> Requeue {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&crate::metrics::ErrorLabel {
            error: err.label().to_string(),
        })
        .inc();
    tracing::warn!(object = %key, error = %err, "certification reconcile failed; retrying");
    if matches!(err, Error::Kube(kube::Error::Api(s)) if s.code == 409) {
        return Requeue::requeue(Duration::from_millis(200));
    }
    Requeue::requeue(super::backoff(ctx.failed(key)))
}

/// Runs a reconcile with the context's deadline, and forgets the object's
/// failures once it succeeds.
async fn bounded<F>(ctx: &Context, key: &str, work: F) -> Result<Requeue, Error>
where
    F: std::future::Future<Output = Result<Requeue, Error>>,
{
    let started = std::time::Instant::now();
    let timeout = ctx.settings.reconcile_timeout;
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(Error::Timeout(timeout)),
    };
    if result.is_ok() {
        ctx.succeeded(key);
    }
    ctx.metrics
        .certification_reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

/// How long until `deadline` (plus a hair, so the core sees it passed).
fn until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> Duration {
    (deadline - now).to_std().unwrap_or_default() + Duration::from_millis(50)
}

/// The earlier of two optional waits.
fn sooner(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Requeue after the wait, or only on a change.
fn requeue(wait: Option<Duration>) -> Requeue {
    wait.map_or_else(Requeue::await_change, Requeue::requeue)
}
