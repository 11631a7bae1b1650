//! The controller shell: read from memory, call the decision core, act, record.
//!
//! - [`watch`] keeps [`Cache`](crate::store::Cache) filled, one watch loop per kind, and wakes
//!   the requests a change concerns;
//! - [`reconcile`](reconcile()) loads a request's facts from memory, evaluates
//!   it, applies the actions ([`grant`], [`job`], through [`owned`]), records the
//!   verdicts and the status, and requeues at the next deadline;
//! - [`certify`] runs access-certification campaigns and their items, in
//!   controllers of their own;
//! - [`sweep`] removes what must not exist whatever happened; [`health`](crate::store::health) says
//!   whether the process can be trusted; [`leader`] makes one replica act,
//!   while [`standby`] removes expired grants on the others;
//!   [`run`] wires it all into `gatehouse run`.

pub mod api_count;
mod args;
pub mod certify;
mod confirm;
mod events;
mod finalize;
pub mod grant;
pub mod job;
pub mod leader;
mod listing;
pub mod owned;
mod reconcile;
mod record;
pub mod run;
pub mod standby;
pub mod sweep;
mod usage;
pub mod watch;
mod written;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use kube::Client;
use thiserror::Error;

pub use self::{
    events::Events,
    finalize::FINALIZER,
    reconcile::{backoff, error_policy, reconcile},
};

/// What can fail in a reconcile. Every variant ends in a retry with backoff.
#[derive(Debug, Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Applying or deleting a binding failed (e.g. the operator may not bind that role).
    #[error("binding {name}: {source}")]
    Binding {
        /// Name of the binding.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating, reading or deleting a OneTime request's Job or ServiceAccount failed.
    #[error("job {name}: {source}")]
    Job {
        /// Name of the Job (and of its ServiceAccount).
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A Job with the request's deterministic name exists but was not made for it.
    #[error(
        "a Job named {name} exists that was not created for this request; it is neither adopted nor replaced"
    )]
    JobConflict {
        /// Name of the Job.
        name: String,
    },
    /// The request has no namespace or name (never from a real API server).
    #[error("object is missing {0}")]
    MissingField(&'static str),
    /// The reconcile did not finish in time (an API call that never answered).
    #[error("the reconcile took longer than {0:?} and was abandoned")]
    Timeout(std::time::Duration),
}

impl Error {
    /// Whether the failure says nothing about the request itself: the API server
    /// could not be reached, did not answer in time, or was overloaded or down
    /// (5xx, 429). Such a reconcile is retried soon, without the exponential
    /// back-off meant for requests the cluster refuses.
    pub fn is_transient(&self) -> bool {
        fn transient(e: &kube::Error) -> bool {
            match e {
                kube::Error::Api(s) => s.code >= 500 || s.code == 429,
                kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
                _ => false,
            }
        }
        match self {
            Error::Kube(e) | Error::Binding { source: e, .. } | Error::Job { source: e, .. } => transient(e),
            Error::Timeout(_) => true,
            Error::JobConflict { .. } | Error::MissingField(_) => false,
        }
    }

    /// Metric label of the variant.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Binding { .. } => "binding",
            Error::Job { .. } => "job",
            Error::JobConflict { .. } => "job_conflict",
            Error::MissingField(_) => "missing_field",
            Error::Timeout(_) => "timeout",
        }
    }
}

/// Everything a reconcile needs; no globals.
pub struct Context {
    /// Client of the API server.
    pub client: Client,
    /// What the operator knows of the cluster.
    pub cache: Arc<crate::store::Cache>,
    /// Publishes Events on requests, off the reconcile path.
    pub events: Events,
    /// Prometheus metrics.
    pub metrics: Arc<crate::metrics::Metrics>,
    /// The clock: `Utc::now` in production, a controllable one in tests.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Consecutive failed reconciles per request (`namespace/name`), for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
    /// A reconcile that takes longer is abandoned and retried.
    pub reconcile_timeout: Duration,
    /// Versions of requests written over that memory may still show.
    pub(crate) superseded: written::Superseded,
    /// The next deadline of each request, as its last reconcile computed it: the
    /// watchdog wakes a request whose deadline passed without a reconcile.
    pub deadlines: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Verdicts written that memory may not show yet, by review.
    pub(crate) written_verdict: written::Written<crate::api::AccessReviewStatus>,
    /// Tells people what changed; disabled unless the operator starts it.
    pub notify: crate::notify::Notifier,
    /// Namespaces where nothing is granted: the operator's own and
    /// `kube-system`, minus those `--allow-grants-in` names.
    pub protected_namespaces: Vec<String>,
    /// Usage evidence from the audit webhook (what grants were used for); `None`: none.
    pub usage: Option<Arc<crate::audit::UsageState>>,
}

impl Context {
    /// The requests whose deadline passed more than `grace` before `now`
    /// without a reconcile (the scheduler should have woken them), removed from
    /// the watch list: each is reconciled again, which notes its next deadline.
    pub fn overdue(&self, now: DateTime<Utc>, grace: chrono::Duration) -> Vec<String> {
        let Ok(mut deadlines) = self.deadlines.lock() else {
            return Vec::new();
        };
        let late: Vec<String> = deadlines
            .iter()
            .filter(|(_, d)| **d + grace <= now)
            .map(|(k, _)| k.clone())
            .collect();
        for k in &late {
            deadlines.remove(k);
        }
        late
    }

    /// A context on the given clock; starts the Event publisher.
    pub fn new(
        client: Client,
        cache: Arc<crate::store::Cache>,
        metrics: Arc<crate::metrics::Metrics>,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Self {
        Context {
            events: Events::start(client.clone(), metrics.clone()),
            client,
            cache,
            metrics,
            clock,
            failures: Mutex::default(),
            reconcile_timeout: Duration::from_secs(30),
            superseded: Default::default(),
            deadlines: Mutex::default(),
            written_verdict: Default::default(),
            notify: crate::notify::Notifier::default(),
            protected_namespaces: crate::decide::protected::protected_namespaces(
                crate::decide::protected::DEFAULT_OPERATOR_NAMESPACE,
                &[],
            ),
            usage: None,
        }
    }
}
