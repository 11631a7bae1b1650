//! Kubernetes Events on requests (and certification items and bindings),
//! published off the reconcile path: a reconcile queues its Event and moves on,
//! so granting and revoking never wait for the events API. The queue is bounded; when it is full an Event is dropped and
//! counted (`gatehouse_events_dropped_total`), never the reconcile slowed.

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    runtime::events::{Event, EventType, Recorder, Reporter},
    Client, Resource,
};
use tokio::sync::mpsc;
use tracing::warn;

use crate::{api::ApprovalRequest, metrics::Metrics, store::Cache};

/// Events waiting to be published at most.
const QUEUE: usize = 4096;
/// Events published at once.
const PARALLEL: usize = 8;
/// How long an Event waits at most for the removals due.
const REMOVALS_FIRST: std::time::Duration = std::time::Duration::from_secs(1);

/// The publishing queue.
#[derive(Clone)]
pub struct Events {
    tx: mpsc::Sender<(ObjectReference, Event)>,
    metrics: Arc<Metrics>,
}

impl Events {
    /// Starts the publisher; it stops once every handle is dropped. With a
    /// cache, each Event waits (a second at most) while removals are due or
    /// under way: the deletes that end access go first.
    pub fn start(client: Client, metrics: Arc<Metrics>, cache: Option<Arc<Cache>>) -> Self {
        let reporter = Reporter {
            controller: "gatehouse".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        let (tx, rx) = mpsc::channel::<(ObjectReference, Event)>(QUEUE);
        let queue = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|e| (e, rx)) });
        tokio::spawn(
            queue
                .map(move |(reference, event)| {
                    // A recorder per Event: kube's keeps every Event it published
                    // for six minutes (to count repeats in a series), which after
                    // 10,000 grants was tens of MiB (docs/performance.md). The
                    // operator seldom repeats an Event (a phase changes once; a
                    // failure is announced when its message changes); a repeat is
                    // now an Event of its own instead of a count on the first.
                    let recorder = Recorder::new(client.clone(), reporter.clone());
                    let cache = cache.clone();
                    async move {
                        if let Some(c) = &cache {
                            c.removals.removals_first(chrono::Utc::now, REMOVALS_FIRST).await;
                        }
                        // Events are informational: a failure is logged, nothing else.
                        if let Err(e) = recorder.publish(&event, &reference).await {
                            warn!(object = ?reference.name, error = %e, "could not publish event");
                        }
                    }
                })
                .buffer_unordered(PARALLEL)
                .for_each(|()| async {}),
        );
        Events { tx, metrics }
    }

    /// Queues an Event on the request.
    pub fn publish(&self, req: &ApprovalRequest, type_: EventType, reason: &str, action: &str, note: String) {
        self.publish_about(req.object_ref(&()), type_, reason, action, note);
    }

    /// Queues an Event on any object (an Event lives in the object's namespace;
    /// for a cluster-scoped object, in `default`).
    pub fn publish_about(
        &self,
        regarding: ObjectReference,
        type_: EventType,
        reason: &str,
        action: &str,
        note: String,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note.chars().take(1000).collect()),
            action: action.to_string(),
            secondary: None,
        };
        if self.tx.try_send((regarding, event)).is_err() {
            self.metrics.events_dropped.inc();
        }
    }
}
