//! The persisted usage summary: every flush interval, each binding with new
//! counts has them added to its `BindingUsage` object (one write per binding,
//! conditional on the object's `resourceVersion`, retried on a conflict), and
//! every object read by the watch is joined into what certification reads. On
//! start, what is stored is loaded before any index is built, so a restart or a
//! new leader keeps `observedSince` and the counts. Every replica that receives
//! events flushes its own; the merge rules are in [`crate::usage::merge`].
//!
//! Each write carries this process's flush mark (writer, flush sequence), so a
//! write retried after its response was lost adds nothing twice
//! ([`crate::usage::outbox`]). At shutdown the counts gathered since the last
//! flush are written once more, within [`FINAL_FLUSH`].

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use futures::StreamExt;
use kube::{
    api::{Api, PostParams},
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher, WatchStreamExt,
    },
    Client, ResourceExt,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use crate::{
    api::BindingUsage,
    audit::UsageState,
    labels::{FIELD_MANAGER, MANAGED_BY},
    metrics::Metrics,
    usage::{
        merge,
        summary::{binding_of, object_name, pairs_of, spec_of, status_of},
        BindingRef, Merge, Outbox, UsageBook,
    },
};

/// Conditional writes tried per binding and flush before its counts wait for
/// the next flush.
const ATTEMPTS: usize = 5;
/// How long the first load waits for the watch before going on without.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the last flush, at shutdown, may take: well inside the pod's
/// `terminationGracePeriodSeconds` (30 s by default, in the chart too), with
/// room for the lease release.
pub const FINAL_FLUSH: Duration = Duration::from_secs(10);

/// How one write of a summary ended (the label of
/// `gatehouse_usage_flush_writes_total`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Written.
    Written,
    /// The object changed meanwhile: merged again and retried.
    Conflict,
    /// Not written: the counts wait for the next flush.
    Failed,
}

impl WriteOutcome {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            WriteOutcome::Written => "written",
            WriteOutcome::Conflict => "conflict",
            WriteOutcome::Failed => "failed",
        }
    }
}

/// What one flush did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Flushed {
    /// Bindings whose summary was written (or found to hold the counts already).
    pub written: usize,
    /// Writes refused because the object had changed, then retried.
    pub conflicts: usize,
    /// Bindings whose counts wait for the next flush.
    pub failed: usize,
}

/// Why one binding's summary was not written.
#[derive(Debug, thiserror::Error)]
enum FlushError {
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error("the object {0} names another binding")]
    Foreign(String),
    #[error("still conflicting after {ATTEMPTS} attempts")]
    Conflicts,
}

fn load(state: &UsageState, store: &Store<BindingUsage>) {
    let settings = state.settings();
    let objects = store.state();
    let mut n = 0usize;
    for o in objects
        .iter()
        .filter(|o| o.name_any() == object_name(&binding_of(&o.spec)))
    {
        if let Some(s) = &o.status {
            state.load(pairs_of(&o.spec, s, settings), s.observed_since);
            n += 1;
        }
    }
    if n == 0 {
        // Nothing stored yet: loaded all the same.
        state.load(Vec::new(), None);
    }
    debug!(objects = n, "stored usage summaries joined");
}

/// This process as a writer of summaries: its pod (`POD_NAME`) and a random
/// suffix, so a restarted pod, whose flush sequence starts again at 1, is a
/// new writer.
pub fn writer_id() -> String {
    use ring::rand::SecureRandom;
    let pod = std::env::var("POD_NAME").unwrap_or_else(|_| "gatehouse".into());
    let mut nonce = [0u8; 8];
    if ring::rand::SystemRandom::new().fill(&mut nonce).is_err() {
        // No randomness: the start time and pid are as good for uniqueness.
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        nonce = (t ^ u64::from(std::process::id())).to_le_bytes();
    }
    let hex: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    format!("{pod}/{hex}")
}

/// Writes usage counts to `BindingUsage` objects.
pub struct Flusher {
    api: Api<BindingUsage>,
    namespace: String,
    store: Store<BindingUsage>,
    state: Arc<UsageState>,
    metrics: Arc<Metrics>,
    writer: String,
    sequence: u64,
}

impl Flusher {
    /// A flusher for the objects of `namespace`, reading them from `store` first
    /// (a watch's; an empty store makes every write read the API).
    pub fn new(
        client: Client,
        namespace: &str,
        store: Store<BindingUsage>,
        state: Arc<UsageState>,
        metrics: Arc<Metrics>,
        writer: String,
    ) -> Self {
        Flusher {
            api: Api::namespaced(client, namespace),
            namespace: namespace.into(),
            store,
            state,
            metrics,
            writer,
            sequence: 0,
        }
    }

    /// Writes every binding's new counts once; what fails waits for the next
    /// flush.
    pub async fn flush(&mut self, now: chrono::DateTime<chrono::Utc>) -> Flushed {
        self.sequence += 1;
        let (deltas, since) = self.state.take_pending(self.sequence);
        let mut done = Flushed::default();
        for (binding, mut outbox) in deltas {
            let mut conflicts = 0usize;
            let result = self
                .write(&binding, &mut outbox, since, now, &mut conflicts)
                .await;
            done.conflicts += conflicts;
            for _ in 0..conflicts {
                self.metrics.usage_write(WriteOutcome::Conflict.label());
            }
            match result {
                Ok(obj) => {
                    let settings = self.state.settings();
                    let stored = obj
                        .status
                        .as_ref()
                        .map(|s| pairs_of(&obj.spec, s, settings))
                        .unwrap_or_default();
                    self.state.flushed(&binding, stored, since);
                    self.metrics.usage_write(WriteOutcome::Written.label());
                    done.written += 1;
                }
                Err(e) => {
                    warn!(binding = %binding, error = %e, given_up = outbox.given_up, "cannot write the usage summary; kept for the next flush");
                    self.state.failed(&binding, outbox);
                    self.metrics.usage_write(WriteOutcome::Failed.label());
                    done.failed += 1;
                }
            }
        }
        let (unwritten, _) = self.state.unwritten();
        self.metrics
            .usage_unwritten_bindings
            .set(i64::try_from(unwritten).unwrap_or(i64::MAX));
        if done.failed == 0 {
            self.metrics.usage_last_flush.set(now.timestamp());
        }
        if done.written + done.failed > 0 {
            debug!(
                written = done.written,
                failed = done.failed,
                "usage summaries flushed"
            );
        }
        done
    }

    /// Joins the stored summaries the watch holds into memory.
    pub fn load(&self) {
        load(&self.state, &self.store);
    }

    /// Adds one binding's counts to its object: read (the watch's copy first,
    /// the API's after a conflict), leave out what its mark says is in, merge,
    /// write conditionally with the new mark.
    async fn write(
        &self,
        binding: &BindingRef,
        outbox: &mut Outbox,
        since: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
        conflicts: &mut usize,
    ) -> Result<BindingUsage, FlushError> {
        let (api, namespace, store) = (&self.api, &self.namespace, &self.store);
        let name = object_name(binding);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let settings = self.state.settings();
        for attempt in 0..ATTEMPTS {
            let cached = (attempt == 0)
                .then(|| store.get(&ObjectRef::new(&name).within(namespace)))
                .flatten()
                .map(|o| (*o).clone());
            let current = match cached {
                Some(o) => Some(o),
                None => api.get_opt(&name).await?,
            };
            let current = match current {
                Some(o) => o,
                None => {
                    let mut o = BindingUsage::new(&name, spec_of(binding));
                    o.metadata.labels = Some(BTreeMap::from([(MANAGED_BY.0.into(), MANAGED_BY.1.into())]));
                    match api.create(&pp, &o).await {
                        Ok(o) => o,
                        Err(kube::Error::Api(s)) if s.code == 409 => continue,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            if binding_of(&current.spec) != *binding {
                return Err(FlushError::Foreign(name));
            }
            let marks = current
                .status
                .as_ref()
                .map(|s| s.writers.as_slice())
                .unwrap_or_default();
            let mark = marks
                .iter()
                .filter(|m| m.writer == self.writer)
                .map(|m| m.sequence)
                .max();
            let Some((sequence, delta)) = outbox.to_add(mark, settings) else {
                // Everything is in already: a write whose answer was lost.
                debug!(binding = %binding, "usage counts already in the summary");
                return Ok(current);
            };
            let mut book = UsageBook::new(settings);
            if let Some(s) = &current.status {
                for (k, p) in pairs_of(&current.spec, s, settings) {
                    book.merge_pair(k, &p, Merge::Join);
                }
            }
            for (k, p) in &delta {
                book.merge_pair(k.clone(), p, Merge::Add);
            }
            book.prune(now);
            let observed = match (current.status.as_ref().and_then(|s| s.observed_since), since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let mut status = status_of(book.pairs(), observed);
            status.writers = merge::marked(marks, &self.writer, sequence, now, settings.retention_days);
            let mut updated = current.clone();
            updated.status = Some(status);
            match api.replace_status(&name, &pp, &updated).await {
                Ok(o) => return Ok(o),
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    *conflicts += 1;
                    debug!(binding = %binding, attempt, "usage summary changed meanwhile; merging again");
                }
                Err(e) => {
                    // Perhaps applied, its answer lost: the next write checks the mark.
                    outbox.sent();
                    return Err(e.into());
                }
            }
        }
        Err(FlushError::Conflicts)
    }
}

/// Runs the flush every `every` until `shutdown` turns true, then once more
/// (within [`FINAL_FLUSH`]) so the counts since the last flush are kept.
pub async fn run(
    client: Client,
    namespace: String,
    state: Arc<UsageState>,
    metrics: Arc<Metrics>,
    every: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let api: Api<BindingUsage> = Api::namespaced(client.clone(), &namespace);
    let (store, writer) = reflector::store::<BindingUsage>();
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    // Managed fields are not kept: they would about double each object in
    // memory, and the flush never reads them.
    let watch = reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().labels(&selector))
            .modify(|o| o.managed_fields_mut().clear()),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    let watch = tokio::spawn(watch);
    let loaded = tokio::select! {
        r = tokio::time::timeout(LOAD_TIMEOUT, store.wait_until_ready()) => matches!(r, Ok(Ok(()))),
        _ = shutdown.wait_for(|v| *v) => false,
    };
    if loaded {
        load(&state, &store);
        info!(namespace = %namespace, objects = store.state().len(), "usage summaries loaded");
    } else {
        warn!(namespace = %namespace, "cannot read the stored usage summaries (BindingUsage); observing from now");
        state.load(Vec::new(), None);
    }
    let mut flusher = Flusher::new(client, &namespace, store, state, metrics, writer_id());
    loop {
        let stop = tokio::select! {
            _ = tokio::time::sleep(every) => false,
            // A closed channel: nobody can ask for shutdown any more; stop too.
            _ = shutdown.wait_for(|v| *v) => true,
        };
        if stop {
            break;
        }
        flusher.flush(chrono::Utc::now()).await;
        // Other replicas' writes, and this one's as the watch returns them.
        flusher.load();
    }
    match tokio::time::timeout(FINAL_FLUSH, flusher.flush(chrono::Utc::now())).await {
        Ok(done) if done.failed == 0 => {
            info!(written = done.written, "usage counts written at shutdown");
        }
        Ok(done) => {
            warn!(
                written = done.written,
                failed = done.failed,
                "some usage counts could not be written at shutdown; they are lost"
            );
        }
        Err(_) => {
            warn!(
                budget_s = FINAL_FLUSH.as_secs(),
                "the last usage flush did not finish in time; unwritten counts are lost"
            );
        }
    }
    watch.abort();
}
