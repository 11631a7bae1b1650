//! The controller shell: read from memory, call the decision core, act, record.
//!
//! - [`watch`] keeps [`Cache`](crate::store::Cache) filled, one watch loop per kind, and wakes
//!   the requests a change concerns;
//! - [`reconcile`](reconcile()) loads a request's facts from memory, evaluates
//!   it, applies the actions ([`grant`], [`job`], through [`owned`]), records the
//!   verdicts and the status, and requeues at the next deadline;
//! - [`certify`] runs access-certification campaigns and their items, in
//!   controllers of their own;
//! - [`shell`] is what every controller shares: the context's common part, the
//!   reconcile timeout, the error policy and its back-off;
//! - [`sweep`] removes what must not exist whatever happened; [`health`](crate::store::health) says
//!   whether the process can be trusted; [`leader`] makes one replica act,
//!   while [`removal`] removes expired grants on time in every replica, ahead of
//!   status writes and Events;
//!   [`run`] wires it all into `gatehouse run`.

pub mod api_count;
mod args;
pub mod certify;
mod confirm;
mod events;
mod evidence;
mod finalize;
pub mod grant;
mod http;
pub mod job;
pub mod leader;
mod listing;
pub mod owned;
mod reconcile;
mod record;
pub mod removal;
pub mod run;
pub mod shell;
pub mod sweep;
mod usage;
pub mod usage_flush;
pub mod usage_versions;
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
    reconcile::{error_policy, reconcile},
    shell::{Clock, Failure, Shell},
};

/// What can fail in a request's reconcile. Every variant ends in a retry, by
/// the policy of [`shell::Failures::retry_after`].
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

impl Failure for Error {
    fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Binding { .. } => "binding",
            Error::Job { .. } => "job",
            Error::JobConflict { .. } => "job_conflict",
            Error::MissingField(_) => "missing_field",
            Error::Timeout(_) => "timeout",
        }
    }

    fn api_error(&self) -> Option<&kube::Error> {
        match self {
            Error::Kube(e) | Error::Binding { source: e, .. } | Error::Job { source: e, .. } => Some(e),
            Error::JobConflict { .. } | Error::MissingField(_) | Error::Timeout(_) => None,
        }
    }

    fn timed_out(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }

    fn timeout(after: Duration) -> Self {
        Error::Timeout(after)
    }
}

/// Everything a request's reconcile needs: the [`Shell`] every controller
/// holds (client, memory, Events, metrics, clock, notifier, timeout, back-off),
/// which it dereferences to, and what only requests need.
pub struct Context {
    /// What every controller holds.
    pub shell: Shell,
    /// Versions of requests written over that memory may still show.
    pub(crate) superseded: written::Superseded,
    /// The next deadline of each request, as its last reconcile computed it: the
    /// watchdog wakes a request whose deadline passed without a reconcile.
    pub deadlines: Mutex<HashMap<String, DateTime<Utc>>>,
    /// Verdicts written that memory may not show yet, by review.
    pub(crate) written_verdict: written::Written<crate::api::AccessReviewStatus>,
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

    /// A context on the given clock; starts its Event publisher.
    pub fn new(
        client: Client,
        cache: Arc<crate::store::Cache>,
        metrics: Arc<crate::metrics::Metrics>,
        clock: Clock,
    ) -> Self {
        Context {
            shell: Shell::new(client, cache, metrics, clock),
            superseded: Default::default(),
            deadlines: Mutex::default(),
            written_verdict: Default::default(),
            protected_namespaces: crate::decide::protected::protected_namespaces(
                crate::decide::protected::DEFAULT_OPERATOR_NAMESPACE,
                &[],
            ),
            usage: None,
        }
    }
}

shell::shell_context!(Context);
