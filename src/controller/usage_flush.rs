//! The persisted usage summary: every flush interval, each binding with new
//! counts has them added to its `BindingUsage` object (one write per binding,
//! conditional on the object's `resourceVersion`, retried on a conflict), and
//! every object read by the watch is joined into what certification reads. On
//! start, what is stored is loaded before any index is built, so a restart or a
//! new leader keeps `observedSince` and the counts. Every replica that receives
//! events flushes its own; the merge rules are in [`crate::usage::merge`].

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
use tracing::{debug, info, warn};

use crate::{
    api::BindingUsage,
    audit::UsageState,
    labels::{FIELD_MANAGER, MANAGED_BY},
    usage::{
        summary::{binding_of, object_name, pairs_of, spec_of, status_of},
        BindingRef, Merge, PairKey, PairUsage, UsageBook,
    },
};

/// Conditional writes tried per binding and flush before its counts wait for
/// the next flush.
const ATTEMPTS: usize = 5;
/// How long the first load waits for the watch before going on without.
const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

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

/// Runs the flush until the process ends.
pub async fn run(client: Client, namespace: String, state: Arc<UsageState>, every: Duration) {
    let api: Api<BindingUsage> = Api::namespaced(client, &namespace);
    let (store, writer) = reflector::store::<BindingUsage>();
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    let watch = reflector::reflector(
        writer,
        watcher(api.clone(), watcher::Config::default().labels(&selector)),
    )
    .default_backoff()
    .touched_objects()
    .for_each(|_| futures::future::ready(()));
    tokio::spawn(watch);
    match tokio::time::timeout(LOAD_TIMEOUT, store.wait_until_ready()).await {
        Ok(Ok(())) => {
            load(&state, &store);
            info!(namespace = %namespace, objects = store.state().len(), "usage summaries loaded");
        }
        _ => {
            warn!(namespace = %namespace, "cannot read the stored usage summaries (BindingUsage); observing from now");
            state.load(Vec::new(), None);
        }
    }
    loop {
        tokio::time::sleep(every).await;
        flush(&api, &namespace, &store, &state, chrono::Utc::now()).await;
        // Other replicas' writes, and this one's as the watch returns them.
        load(&state, &store);
    }
}

/// Writes every binding's new counts once.
async fn flush(
    api: &Api<BindingUsage>,
    namespace: &str,
    store: &Store<BindingUsage>,
    state: &UsageState,
    now: chrono::DateTime<chrono::Utc>,
) {
    let (deltas, since) = state.take_pending();
    let (mut written, mut failed) = (0usize, 0usize);
    for (binding, pairs) in deltas {
        match write(api, namespace, store, state, &binding, &pairs, since, now).await {
            Ok(obj) => {
                let settings = state.settings();
                let stored = obj
                    .status
                    .as_ref()
                    .map(|s| pairs_of(&obj.spec, s, settings))
                    .unwrap_or_default();
                state.flushed(&binding, stored, since);
                written += 1;
            }
            Err(e) => {
                warn!(binding = %binding, error = %e, "cannot write the usage summary; kept for the next flush");
                state.failed(&binding, pairs);
                failed += 1;
            }
        }
    }
    if written + failed > 0 {
        debug!(written, failed, "usage summaries flushed");
    }
}

/// Adds one binding's counts to its object: read (the watch's copy first, the
/// API's after a conflict), merge, write conditionally.
#[allow(clippy::too_many_arguments)]
async fn write(
    api: &Api<BindingUsage>,
    namespace: &str,
    store: &Store<BindingUsage>,
    state: &UsageState,
    binding: &BindingRef,
    delta: &[(PairKey, PairUsage)],
    since: Option<chrono::DateTime<chrono::Utc>>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<BindingUsage, FlushError> {
    let name = object_name(binding);
    let pp = PostParams {
        field_manager: Some(FIELD_MANAGER.into()),
        ..Default::default()
    };
    let settings = state.settings();
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
        let mut book = UsageBook::new(settings);
        if let Some(s) = &current.status {
            for (k, p) in pairs_of(&current.spec, s, settings) {
                book.merge_pair(k, &p, Merge::Join);
            }
        }
        for (k, p) in delta {
            book.merge_pair(k.clone(), p, Merge::Add);
        }
        book.prune(now);
        let observed = match (current.status.as_ref().and_then(|s| s.observed_since), since) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let mut updated = current.clone();
        updated.status = Some(status_of(book.pairs(), observed));
        match api.replace_status(&name, &pp, &updated).await {
            Ok(o) => return Ok(o),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                debug!(binding = %binding, attempt, "usage summary changed meanwhile; merging again");
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(FlushError::Conflicts)
}
