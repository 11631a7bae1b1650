//! Notifications: people learn that something needs them without watching
//! `kubectl`.
//!
//! - [`events`] and [`certification`]: what happened, typed ([`events::Notice`]),
//!   derived from an object's stored status alone;
//! - [`message`]: what it says to a person, with the exact command to act;
//! - [`render`]: the payload for Slack, Teams or a generic webhook;
//! - [`channel`]: a `NotificationChannel` validated, and which notices it wants;
//! - [`dispatch`]: the notifier's loop: observations, timers, resyncs, channels;
//! - [`deliver`]: one worker per channel: queue, retries, back-off, ledger;
//! - [`ledger`]: what was sent, kept across restarts; [`hmac`]: signatures and
//!   delivery ids; [`endpoint`] and [`http`]: the Secret and the POST;
//!   [`destination`]: where messages may go (https; no metadata or, unless
//!   allowed, private addresses), checked before every connection;
//!   [`status`]: the channel's status.
//!
//! The controller only calls [`Notifier::observe_request`] after it wrote a
//! request's status: a non-blocking send into a bounded queue. Everything else
//! happens in tasks of the leader, off the reconcile path, so a slow or dead
//! endpoint never delays a grant or a revoke.

pub mod certification;
pub mod channel;
pub mod deliver;
pub mod destination;
pub mod dispatch;
pub mod endpoint;
pub mod events;
pub mod hmac;
pub mod http;
pub mod ledger;
pub mod message;
pub mod render;
pub mod status;

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use kube::Client;
use tokio::sync::mpsc;

use crate::{
    api::{AccessCampaign, AccessCertification, ApprovalRequest},
    metrics::Metrics,
    store::Cache,
};

/// Observations waiting for the notifier at most; more are dropped and counted
/// (the periodic resync derives them again).
const OBSERVATIONS: usize = 4096;

/// Timing of the notifier.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The operator's namespace: channel Secrets and ledgers live there.
    pub namespace: String,
    /// Events older than this are never sent (after a long outage, or to a
    /// channel created later); also how long ledger entries are kept.
    pub catch_up: chrono::Duration,
    /// How often every object is derived again (catches dropped observations).
    pub resync: StdDuration,
    /// Deadline of one HTTP attempt.
    pub attempt_timeout: StdDuration,
    /// First retry delay; doubled after each failure.
    pub backoff_min: StdDuration,
    /// Longest retry delay.
    pub backoff_max: StdDuration,
    /// How often channels are looked at (new, changed, test requested).
    pub channel_poll: StdDuration,
    /// Where messages may go (`--notify-allow-private-destinations`).
    pub destinations: destination::Destinations,
}

impl Settings {
    /// The defaults, for the operator in `namespace`.
    pub fn new(namespace: &str) -> Self {
        Settings {
            namespace: namespace.to_string(),
            catch_up: chrono::Duration::hours(1),
            resync: StdDuration::from_secs(300),
            attempt_timeout: StdDuration::from_secs(10),
            backoff_min: StdDuration::from_secs(1),
            backoff_max: StdDuration::from_secs(300),
            channel_poll: StdDuration::from_secs(1),
            destinations: destination::Destinations::default(),
        }
    }
}

/// Something whose status was just written.
#[derive(Debug)]
pub enum Observation {
    /// A request.
    Request(Box<ApprovalRequest>),
    /// A certification item.
    Certification(Box<AccessCertification>),
    /// A campaign (its runs).
    Campaign(Box<AccessCampaign>),
}

/// The handle the controllers hold. A disabled one (the default) ignores everything.
#[derive(Clone, Default)]
pub struct Notifier {
    tx: Option<mpsc::Sender<Observation>>,
    metrics: Option<Arc<Metrics>>,
}

impl Notifier {
    /// Starts the notifier's loop; it runs until the task is aborted or every
    /// handle is dropped, and its workers stop with it.
    pub fn start(
        client: Client,
        cache: Arc<Cache>,
        metrics: Arc<Metrics>,
        settings: Settings,
        clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    ) -> Result<(Notifier, tokio::task::JoinHandle<()>), rustls::Error> {
        let http = http::Http::new(settings.attempt_timeout, settings.destinations)?;
        let (tx, rx) = mpsc::channel(OBSERVATIONS);
        let shared = Arc::new(deliver::Shared {
            client,
            http,
            metrics: metrics.clone(),
            settings,
            clock,
        });
        let task = tokio::spawn(dispatch::Dispatcher::new(shared, cache, rx).run());
        Ok((
            Notifier {
                tx: Some(tx),
                metrics: Some(metrics),
            },
            task,
        ))
    }

    fn send(&self, o: Observation) {
        if let Some(tx) = &self.tx {
            if tx.try_send(o).is_err() {
                if let Some(m) = &self.metrics {
                    m.notifications_dropped.inc();
                }
            }
        }
    }

    /// The request's status was written: notify what it shows. Never blocks.
    pub fn observe_request(&self, req: &ApprovalRequest) {
        self.send(Observation::Request(Box::new(req.clone())));
    }

    /// Hook for the certification controller: call after writing an
    /// AccessCertification's status (item waiting, escalated, overdue; the
    /// reminder before due is scheduled from it). Never blocks.
    pub fn observe_certification(&self, item: &AccessCertification) {
        self.send(Observation::Certification(Box::new(item.clone())));
    }

    /// Hook for the certification controller: call after writing an
    /// AccessCampaign's status (run started, run completed with counts). Never blocks.
    pub fn observe_campaign(&self, campaign: &AccessCampaign) {
        self.send(Observation::Campaign(Box::new(campaign.clone())));
    }
}
