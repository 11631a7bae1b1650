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
//! write only what changed, requeue at the exact next deadline, and share its
//! [`Shell`]: the timeout, the error policy and the back-off.

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

use super::shell::{shell_context, Clock, Failure, Shell};
use crate::{metrics::Metrics, store::Cache};

pub use self::{campaign::reconcile_campaign, item::reconcile_item};

/// What can fail in a certification reconcile. Every variant ends in a retry,
/// by the policy of [`super::shell::Failures::retry_after`].
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
    /// The cluster could not be read for a run's launch.
    #[error("reading the cluster for run {run}: {source}")]
    Snapshot {
        /// The run.
        run: String,
        /// What failed.
        #[source]
        source: crate::controller::watch::WatchError,
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

impl Failure for Error {
    fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "certify_kube",
            Error::Launch { .. } => "certify_launch",
            Error::Snapshot { .. } => "certify_snapshot",
            Error::Task(_) => "certify_task",
            Error::MissingField(_) => "certify_missing_field",
            Error::Timeout(_) => "certify_timeout",
        }
    }

    fn api_error(&self) -> Option<&kube::Error> {
        match self {
            Error::Kube(e)
            | Error::Launch { source: e, .. }
            | Error::Snapshot {
                source: crate::controller::watch::WatchError::Api(e),
                ..
            } => Some(e),
            Error::Snapshot { .. } | Error::Task(_) | Error::MissingField(_) | Error::Timeout(_) => None,
        }
    }

    fn timed_out(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    fn timeout(after: Duration) -> Self {
        Error::Timeout(after)
    }
}

/// How certification behaves in this operator.
#[derive(Debug, Clone, Copy)]
pub struct Settings {
    /// The operator removes revoked access itself (campaigns with
    /// `remediation: Automatic`). Off: every removal waits for an admin, with the
    /// exact command in the item's status.
    pub remediation: bool,
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
            launch_slice: Duration::from_secs(10),
            create_parallelism: 8,
            min_review_window: chrono::Duration::hours(1),
        }
    }
}

/// Everything a certification reconcile needs: the [`Shell`] every controller
/// holds, which it dereferences to (its Events on a queue of their own: a run
/// falling due at once never crowds out the Events of requests), and what only
/// certification needs.
pub struct Context {
    /// What every controller holds.
    pub shell: Shell,
    /// Settings.
    pub settings: Settings,
    /// Verdicts and item statuses written that memory may not show yet.
    written_verdict: super::written::Written<crate::api::AccessReviewStatus>,
    written_status: super::written::Written<crate::api::AccessCertificationStatus>,
    /// The items of each launch under way, computed once when it starts (or
    /// when this process first continues it), by campaign uid and run.
    launches: Mutex<HashMap<(String, String), LaunchItems>>,
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
        clock: Clock,
        settings: Settings,
    ) -> Self {
        Context {
            shell: Shell::new(client, cache, metrics, clock),
            settings,
            written_verdict: Default::default(),
            written_status: Default::default(),
            launches: Mutex::default(),
            identity: None,
            bindable: bindable::BindCache::default(),
            usage: None,
        }
    }
}

shell_context!(Context);

/// After an error: retry (see [`super::shell::Failures::retry_after`]), never crash.
fn retry_after(ctx: &Context, kind: &'static str, key: String, err: &Error) -> Requeue {
    ctx.shell.retry_after(kind, &key, err)
}

/// Runs a reconcile within the shell's timeout, and forgets the object's
/// failures once it succeeds.
async fn bounded<F>(ctx: &Context, key: &str, work: F) -> Result<Requeue, Error>
where
    F: std::future::Future<Output = Result<Requeue, Error>>,
{
    ctx.shell
        .bounded(key, &ctx.metrics.certification_reconcile_duration, work)
        .await
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
