//! One worker per channel: a bounded queue, one message at a time (chat
//! messages arrive in the order things happened), retries with exponential
//! back-off up to a cap, and the ledger written around every send.
//!
//! The order of one delivery, and what a crash at each point causes:
//! 1. the ledger says `delivered` → nothing is sent (a restart, a re-list, a
//!    second reconcile, a new leader: never a repeat);
//! 2. `sending` is written before the first attempt → a crash before the endpoint
//!    answered, or between its answer and step 3, leaves `sending`, and whoever
//!    leads next sends again with the same `X-Gatehouse-Delivery` id. That one
//!    window (milliseconds: one API write) is the only way a message reaches an
//!    endpoint twice; a webhook receiver that keeps delivery ids drops the
//!    repeat, a chat shows it twice. Nothing is ever lost for it;
//! 3. `delivered` is written once the endpoint accepted it (2xx).
//!
//! A 4xx other than 408/429 is final (a wrong or revoked address stays wrong):
//! the delivery is marked `failed` and not retried. Other failures are retried
//! until the event falls out of the catch-up window, then marked `failed`.

use std::{
    collections::{HashSet, VecDeque},
    sync::Arc,
    time::Duration as StdDuration,
};

use chrono::{DateTime, Utc};
use kube::Client;
use kube::ResourceExt;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::{
    channel::Channel,
    endpoint::{self, EndpointError},
    events::Notice,
    hmac::delivery_id,
    http::{Http, SendError},
    ledger::{Ledger, LedgerStore, Mark},
    message::{message, Message, Tone},
    render::{render, Envelope},
    status, Settings,
};
use crate::{
    api::{DeliveryError, DeliveryRecord, NotificationChannel, TestRecord},
    metrics::{ChannelLabel, ChannelOutcomeLabel, Metrics},
};

/// Notices a channel's queue holds at most; more are dropped and counted, and
/// queued again by the next resync.
pub const QUEUE: usize = 2048;

/// What every worker shares.
pub struct Shared {
    /// API client.
    pub client: Client,
    /// HTTP client.
    pub http: Http,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Timing and the operator's namespace.
    pub settings: Settings,
    /// The clock.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
}

/// A notice to deliver, with its delivery id.
#[derive(Debug, Clone)]
pub struct Job {
    /// What happened.
    pub notice: Notice,
    /// `X-Gatehouse-Delivery`.
    pub id: String,
}

impl Job {
    /// The job of a notice for a channel.
    pub fn new(notice: Notice, channel: &str) -> Self {
        let id = delivery_id(&notice.object.uid, &notice.key(), channel);
        Job { notice, id }
    }
}

/// How a delivery ended.
enum Outcome {
    Delivered,
    GaveUp,
}

/// Delay before retry number `attempt` (from 1): doubling from the minimum, capped.
pub fn backoff(attempt: u32, min: StdDuration, max: StdDuration) -> StdDuration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1).min(20))
        .unwrap_or(u32::MAX);
    min.saturating_mul(factor).min(max)
}

/// A channel's worker: runs until the sender is dropped or the task aborted.
/// `config` follows the channel's spec; each delivery uses the latest.
pub async fn run(
    shared: Arc<Shared>,
    channel: NotificationChannel,
    config: watch::Receiver<Channel>,
    mut rx: mpsc::Receiver<Job>,
) {
    let name = channel.name_any();
    let mut store = LedgerStore::new(shared.client.clone(), &shared.settings.namespace, &channel);
    let mut ledger = load(&shared, &mut store, &name).await;
    let mut queue: VecDeque<Job> = VecDeque::new();
    let mut queued: HashSet<String> = HashSet::new();
    let label = ChannelLabel {
        channel: name.clone(),
    };
    // The family's guard must not live across an await: look the gauge up each time.
    let depth = |n: usize| {
        shared
            .metrics
            .notification_queue
            .get_or_create(&label)
            .set(i64::try_from(n).unwrap_or(i64::MAX));
    };
    loop {
        if queue.is_empty() {
            depth(0);
            match rx.recv().await {
                Some(job) => enqueue(&ledger, &mut queue, &mut queued, job),
                None => return,
            }
        }
        while let Ok(job) = rx.try_recv() {
            enqueue(&ledger, &mut queue, &mut queued, job);
        }
        depth(queue.len());
        let Some(job) = queue.pop_front() else { continue };
        queued.remove(&job.id);
        if ledger.get(&job.id).is_some_and(|m| m != Mark::Sending) {
            continue;
        }
        let config = config.borrow().clone();
        deliver(&shared, &config, &mut store, &mut ledger, &job).await;
    }
}

fn enqueue(ledger: &Ledger, queue: &mut VecDeque<Job>, queued: &mut HashSet<String>, job: Job) {
    let done = ledger.get(&job.id).is_some_and(|m| m != Mark::Sending);
    if !done && queued.insert(job.id.clone()) {
        queue.push_back(job);
    }
}

/// Reads the ledger, retrying until it can: nothing is sent without knowing
/// what was sent before.
async fn load(shared: &Shared, store: &mut LedgerStore, channel: &str) -> Ledger {
    let s = &shared.settings;
    let mut attempt = 0;
    loop {
        match store.load().await {
            Ok(l) => return l,
            Err(e) => {
                attempt += 1;
                warn!(channel, error = %e, "cannot read the delivery ledger; retrying");
                tokio::time::sleep(backoff(attempt, s.backoff_min, s.backoff_max)).await;
            }
        }
    }
}

/// Writes the ledger, retrying until it can.
async fn save(shared: &Shared, store: &mut LedgerStore, ledger: &mut Ledger, channel: &str) {
    let s = &shared.settings;
    let mut attempt = 0;
    loop {
        match store.save(ledger, (shared.clock)()).await {
            Ok(()) => return,
            Err(e) => {
                attempt += 1;
                warn!(channel, error = %e, "cannot write the delivery ledger; retrying");
                tokio::time::sleep(backoff(attempt, s.backoff_min, s.backoff_max)).await;
            }
        }
    }
}

async fn deliver(shared: &Shared, ch: &Channel, store: &mut LedgerStore, ledger: &mut Ledger, job: &Job) {
    let expires = job.notice.at + shared.settings.catch_up + chrono::Duration::hours(1);
    ledger.mark(&job.id, Mark::Sending, expires);
    save(shared, store, ledger, &ch.name).await;
    let outcome = attempts(shared, ch, job).await;
    let mark = match outcome {
        Outcome::Delivered => Mark::Delivered,
        Outcome::GaveUp => Mark::Failed,
    };
    ledger.mark(&job.id, mark, expires);
    save(shared, store, ledger, &ch.name).await;
}

/// Attempts until the endpoint accepts, refuses for good, or the event is too old.
async fn attempts(shared: &Shared, ch: &Channel, job: &Job) -> Outcome {
    let s = &shared.settings;
    let n = &job.notice;
    let msg = message(n);
    let body = render(ch.type_, &Envelope::of(n, &msg, &job.id, &ch.name));
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        let now = (shared.clock)();
        if now - n.at > s.catch_up {
            fail(
                shared,
                ch,
                n,
                "stale",
                format!("gave up after {attempt} attempts: the event is older than the catch-up window"),
            )
            .await;
            return Outcome::GaveUp;
        }
        let result = match endpoint::endpoint(
            &shared.client,
            &s.namespace,
            &ch.secret,
            ch.type_,
            s.destinations,
        )
        .await
        {
            Ok(ep) => endpoint::post(&shared.http, &ep, n.event.as_str(), &job.id, &body)
                .await
                .map_err(Failure::Send),
            Err(e) => Err(Failure::Secret(e)),
        };
        match result {
            Ok(answer) if answer.accepted() => {
                let now = (shared.clock)();
                let latency = (now - n.at).num_milliseconds().max(0) as f64 / 1000.0;
                shared.metrics.notification_latency.observe(latency);
                shared
                    .metrics
                    .notifications_delivered
                    .get_or_create(&ChannelOutcomeLabel {
                        channel: ch.name.clone(),
                        what: n.event.as_str().into(),
                    })
                    .inc();
                info!(channel = %ch.name, event = %n.event, object = %n.object.path(), delivery = %job.id, attempt, "notification delivered");
                let record = DeliveryRecord {
                    at: now,
                    event: n.event.as_str().into(),
                    object: n.object.path(),
                    delivery: job.id.clone(),
                };
                status::write_delivery(&shared.client, &ch.name, &record).await;
                return Outcome::Delivered;
            }
            Ok(answer) => {
                let class = if answer.status >= 500 {
                    "status_5xx"
                } else {
                    "status_4xx"
                };
                // The status only: never the endpoint's body (see `http::Answer`).
                let text = format!("HTTP {}", answer.status);
                fail(shared, ch, n, class, text).await;
                if !answer.retryable() {
                    return Outcome::GaveUp;
                }
            }
            Err(f) => fail(shared, ch, n, f.label(), f.to_string()).await,
        }
        let wait = backoff(attempt, s.backoff_min, s.backoff_max);
        debug!(channel = %ch.name, delivery = %job.id, attempt, wait_ms = wait.as_millis() as u64, "retrying");
        tokio::time::sleep(wait).await;
    }
}

/// Sends a test message to a channel (`kubectl gatehouse notify test`) and
/// records the endpoint's status code and timing on its status. Not in the ledger: every test
/// request is sent once, and it is about the channel, not an object.
pub async fn send_test(shared: Arc<Shared>, channel: NotificationChannel, requested: String) {
    let name = channel.name_any();
    let s = &shared.settings;
    let command = crate::escape::shell::join(&["kubectl", "gatehouse", "notify", "test", &name]);
    let msg = Message {
        tone: Tone::Info,
        title: format!("Test message from Gatehouse to channel {name}"),
        text: format!("Channel {name} works. Someone ran `{command}`; nothing needs doing."),
        fields: vec![
            ("Channel", name.clone()),
            ("Type", channel.spec.type_.as_str().to_string()),
        ],
        commands: vec![command],
    };
    let id = delivery_id(
        &channel.uid().unwrap_or_default(),
        &format!("Test/{requested}"),
        &name,
    );
    let now = (shared.clock)();
    let envelope = Envelope {
        event: "Test",
        occurrence: &requested,
        at: now,
        object: None,
        details: None,
        message: &msg,
        delivery: &id,
        channel: &name,
    };
    let body = render(channel.spec.type_, &envelope);
    let outcome = match endpoint::endpoint(
        &shared.client,
        &s.namespace,
        &channel.spec.secret_ref.name,
        channel.spec.type_,
        s.destinations,
    )
    .await
    {
        Ok(ep) => endpoint::post(&shared.http, &ep, "Test", &id, &body)
            .await
            .map_err(Failure::Send),
        Err(e) => Err(Failure::Secret(e)),
    };
    let record = match outcome {
        Ok(answer) => TestRecord {
            requested,
            at: (shared.clock)(),
            status_code: Some(answer.status),
            elapsed: Some(format!("{}ms", answer.elapsed.as_millis())),
            error: None,
        },
        Err(e) => TestRecord {
            requested,
            at: (shared.clock)(),
            status_code: None,
            elapsed: None,
            error: Some(e.to_string()),
        },
    };
    info!(channel = %name, status = ?record.status_code, "test message sent");
    status::write_test(&shared.client, &name, &record).await;
}

#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("{0}")]
    Send(SendError),
    #[error("{0}")]
    Secret(EndpointError),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Send(e) => e.label(),
            // The same rule as at connect time, caught earlier.
            Failure::Secret(EndpointError::Refused { .. }) => "refused",
            Failure::Secret(_) => "secret",
        }
    }
}

async fn fail(shared: &Shared, ch: &Channel, n: &Notice, what: &str, message: String) {
    shared
        .metrics
        .notification_failures
        .get_or_create(&ChannelOutcomeLabel {
            channel: ch.name.clone(),
            what: what.into(),
        })
        .inc();
    warn!(channel = %ch.name, event = %n.event, object = %n.object.path(), error = %message, "notification attempt failed");
    let error = DeliveryError {
        at: (shared.clock)(),
        event: n.event.as_str().into(),
        message,
    };
    status::write_error(&shared.client, &ch.name, &error).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let (min, max) = (StdDuration::from_millis(500), StdDuration::from_secs(60));
        let waits: Vec<u64> = (1..=10)
            .map(|a| backoff(a, min, max).as_millis() as u64)
            .collect();
        assert_eq!(
            waits,
            [500, 1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000, 60000]
        );
        assert_eq!(backoff(u32::MAX, min, max), max);
    }
}
