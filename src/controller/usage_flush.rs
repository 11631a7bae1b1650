//! The persisted usage summary: every flush interval, each binding with new
//! counts has them added to its `BindingUsage` object (one write per binding,
//! conditional on the object's `resourceVersion`, retried on a conflict), and
//! every object another replica wrote is joined into what certification reads.
//! On start, what is stored is loaded (paged, each page dropped once joined)
//! before any index is built, so a restart or a new leader keeps
//! `observedSince` and the counts. Every replica that receives events flushes
//! its own; the merge rules are in [`crate::usage::merge`].
//!
//! No copy of the objects is kept: the book holds their merged state. A
//! metadata-only watch ([`super::usage_versions`]) says which objects changed;
//! an object's body is read only when its `resourceVersion` is not the one
//! joined or written here, and once before each write (one GET per write: at
//! most one write per binding and flush, 12 an hour at the default 5 minutes).
//!
//! Each write carries this process's flush mark (writer, flush sequence), so a
//! write retried after its response was lost adds nothing twice
//! ([`crate::usage::outbox`]). At shutdown the counts gathered since the last
//! flush are written once more, within [`FINAL_FLUSH`].

use std::{
    collections::{BTreeMap, HashMap},
    sync::Arc,
    time::Duration,
};

use kube::{
    api::{Api, ListParams, PostParams},
    Client, ResourceExt,
};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::usage_versions::{self, Versions};
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
/// How long the first load may take before going on without.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// Objects read in one page of the first load.
const PAGE: u32 = 500;
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
    /// The `resourceVersion` of each object as last joined or written here.
    joined: HashMap<String, String>,
    state: Arc<UsageState>,
    metrics: Arc<Metrics>,
    writer: String,
    sequence: u64,
}

impl Flusher {
    /// A flusher for the objects of `namespace`.
    pub fn new(
        client: Client,
        namespace: &str,
        state: Arc<UsageState>,
        metrics: Arc<Metrics>,
        writer: String,
    ) -> Self {
        Flusher {
            api: Api::namespaced(client, namespace),
            joined: HashMap::new(),
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
                    if let Some(v) = obj.resource_version() {
                        self.joined.insert(obj.name_any(), v);
                    }
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

    /// Joins every stored summary into memory, a page at a time; the first
    /// call marks the state loaded.
    pub async fn load_stored(&mut self) -> Result<usize, kube::Error> {
        let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
        let mut params = ListParams::default().labels(&selector).limit(PAGE);
        let mut n = 0usize;
        loop {
            let page = self.api.list(&params).await?;
            for o in &page.items {
                n += usize::from(self.join_object(o));
            }
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(c) => params = params.continue_token(&c),
                None => break,
            }
        }
        // Nothing stored yet: loaded all the same.
        self.state.load(Vec::new(), None);
        debug!(objects = n, "stored usage summaries joined");
        Ok(n)
    }

    /// Joins the objects whose version in `versions` (the metadata watch's) is
    /// not the one joined or written here, reading each from the API: other
    /// replicas' writes. Returns how many were joined.
    pub async fn join_changed(&mut self, versions: &Versions) -> usize {
        let changed = versions.changed(&self.joined);
        let mut n = 0usize;
        for (name, _) in changed {
            match self.api.get_opt(&name).await {
                Ok(Some(o)) => n += usize::from(self.join_object(&o)),
                Ok(None) => {
                    self.joined.remove(&name);
                }
                Err(e) => {
                    debug!(object = %name, error = %e, "cannot read a usage summary; tried again after the next flush");
                }
            }
        }
        // Objects gone from the watch need no version any more.
        let live = versions.lock();
        self.joined.retain(|n, _| live.contains_key(n));
        n
    }

    /// Joins one object into memory and notes its version; false for an object
    /// not named after its binding (not written by the operator).
    fn join_object(&mut self, o: &BindingUsage) -> bool {
        if o.name_any() != object_name(&binding_of(&o.spec)) {
            return false;
        }
        if let Some(v) = o.resource_version() {
            self.joined.insert(o.name_any(), v);
        }
        match &o.status {
            Some(s) => {
                self.state
                    .load(pairs_of(&o.spec, s, self.state.settings()), s.observed_since);
                true
            }
            None => false,
        }
    }

    /// Adds one binding's counts to its object: read it from the API, leave out
    /// what its mark says is in, merge, write conditionally with the new mark.
    async fn write(
        &self,
        binding: &BindingRef,
        outbox: &mut Outbox,
        since: Option<chrono::DateTime<chrono::Utc>>,
        now: chrono::DateTime<chrono::Utc>,
        conflicts: &mut usize,
    ) -> Result<BindingUsage, FlushError> {
        let api = &self.api;
        let name = object_name(binding);
        let pp = PostParams {
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let settings = self.state.settings();
        for attempt in 0..ATTEMPTS {
            let current = match api.get_opt(&name).await? {
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
    let versions = Versions::default();
    let watch = tokio::spawn(usage_versions::watch(
        client.clone(),
        namespace.clone(),
        versions.clone(),
    ));
    let mut flusher = Flusher::new(client, &namespace, state.clone(), metrics, writer_id());
    let first = async {
        loop {
            match flusher.load_stored().await {
                Ok(n) => return n,
                Err(e) => {
                    debug!(error = %e, "cannot list the stored usage summaries yet");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        }
    };
    let loaded = tokio::select! {
        r = tokio::time::timeout(LOAD_TIMEOUT, first) => r.ok(),
        _ = shutdown.wait_for(|v| *v) => None,
    };
    match loaded {
        Some(n) => info!(namespace = %namespace, objects = n, "usage summaries loaded"),
        None => {
            warn!(namespace = %namespace, "cannot read the stored usage summaries (BindingUsage); observing from now");
            state.load(Vec::new(), None);
        }
    }
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
        // Other replicas' writes.
        flusher.join_changed(&versions).await;
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
