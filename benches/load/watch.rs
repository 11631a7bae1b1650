//! What the bench sees happen in the cluster: one watch on the bindings the
//! operator manages (when each appeared and went, by request), and per-phase
//! watches on requests (their phases).

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use anyhow::{bail, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use gatehouse::{
    api::{ApprovalRequest, Phase},
    labels::{managed_selector, EXPIRES_AT, REQUEST_NAME},
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{
    api::Api,
    runtime::{
        reflector::{self, ObjectRef, Store},
        watcher::{self, Event},
        WatchStreamExt,
    },
    Client, ResourceExt,
};
use tokio::{sync::watch as signal, task::JoinHandle};

/// A moment the bench saw something: monotonic and wall-clock.
#[derive(Debug, Clone, Copy)]
pub struct Seen {
    /// Monotonic, for latencies from the bench's own calls.
    pub at: Instant,
    /// Wall clock, for latencies from a time written in a spec.
    pub wall: DateTime<Utc>,
}

impl Seen {
    fn now() -> Seen {
        Seen {
            at: Instant::now(),
            wall: Utc::now(),
        }
    }
}

/// The binding of one request: when it appeared and when it went.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeline {
    /// First seen (ADDED).
    pub added: Option<Seen>,
    /// Seen gone (DELETED).
    pub deleted: Option<Seen>,
    /// Its `expires-at` annotation, as first seen.
    pub expires: Option<DateTime<Utc>>,
    /// Distinct bindings (by uid) seen for the request: more than one is a
    /// duplicate grant.
    pub bindings: u32,
}

type Key = (String, String);

#[derive(Default)]
struct Bindings {
    /// Namespace → request name → timeline (nested, so lookups borrow `&str`).
    by_request: HashMap<String, HashMap<String, Timeline>>,
    /// Keys listed since the last `Init`; a re-list also reveals deletions missed meanwhile.
    listing: HashSet<Key>,
    relists: u64,
    /// Every binding uid seen.
    uids: HashSet<String>,
}

/// The one watch on managed RoleBindings, keyed by (namespace, request name).
pub struct BindingWatch {
    state: Arc<Mutex<Bindings>>,
    task: JoinHandle<()>,
}

fn key_of(rb: &RoleBinding, prefix: &str) -> Option<Key> {
    let ns = rb.namespace()?;
    if !ns.starts_with(prefix) {
        return None;
    }
    Some((ns, rb.labels().get(REQUEST_NAME)?.clone()))
}

impl Bindings {
    fn entry(&mut self, (ns, name): Key) -> &mut Timeline {
        self.by_request.entry(ns).or_default().entry(name).or_default()
    }

    fn get(&self, ns: &str, name: &str) -> Timeline {
        self.by_request
            .get(ns)
            .and_then(|m| m.get(name))
            .copied()
            .unwrap_or_default()
    }

    /// A binding seen present.
    fn present(&mut self, rb: &RoleBinding, k: Key, now: Seen) {
        let new = rb.uid().is_some_and(|u| self.uids.insert(u));
        let t = self.entry(k);
        t.added.get_or_insert(now);
        if t.expires.is_none() {
            t.expires = rb.annotations().get(EXPIRES_AT).and_then(|v| v.parse().ok());
        }
        if new {
            t.bindings += 1;
        }
    }

    fn apply(&mut self, event: Event<RoleBinding>, prefix: &str) {
        let now = Seen::now();
        match event {
            Event::Apply(rb) => {
                if let Some(k) = key_of(&rb, prefix) {
                    self.present(&rb, k, now);
                }
            }
            Event::Delete(rb) => {
                if let Some(k) = key_of(&rb, prefix) {
                    self.entry(k).deleted.get_or_insert(now);
                }
            }
            Event::Init => self.listing.clear(),
            Event::InitApply(rb) => {
                if let Some(k) = key_of(&rb, prefix) {
                    self.present(&rb, k.clone(), now);
                    self.listing.insert(k);
                }
            }
            Event::InitDone => {
                for (ns, requests) in &mut self.by_request {
                    for (name, t) in requests {
                        let listed = self.listing.contains(&(ns.clone(), name.clone()));
                        if t.added.is_some() && t.deleted.is_none() && !listed {
                            t.deleted = Some(now);
                        }
                    }
                }
                self.relists += 1;
            }
        }
    }
}

impl BindingWatch {
    /// Starts watching managed RoleBindings in namespaces starting with `prefix`;
    /// returns once the first list is in.
    pub async fn start(client: &Client, prefix: String) -> Result<BindingWatch> {
        let api: Api<RoleBinding> = Api::all(client.clone());
        let config = watcher::Config::default().labels(&managed_selector());
        let state = Arc::new(Mutex::new(Bindings::default()));
        let (synced_tx, mut synced) = signal::channel(false);
        let shared = state.clone();
        let task = tokio::spawn(async move {
            let mut events = std::pin::pin!(watcher::watcher(api, config).default_backoff());
            while let Some(item) = events.next().await {
                match item {
                    Ok(event) => {
                        let done = matches!(event, Event::InitDone);
                        if let Ok(mut s) = shared.lock() {
                            s.apply(event, &prefix);
                        }
                        if done {
                            let _ = synced_tx.send(true);
                        }
                    }
                    Err(e) => eprintln!("bench: the RoleBinding watch failed, retrying: {e}"),
                }
            }
        });
        let listed = tokio::time::timeout(Duration::from_secs(60), synced.wait_for(|s| *s))
            .await
            .is_ok_and(|r| r.is_ok());
        if !listed {
            bail!("the RoleBinding watch did not list within 60 s");
        }
        Ok(BindingWatch { state, task })
    }

    /// The timelines of these requests of `ns`, as far as seen.
    pub fn timelines(&self, ns: &str, names: &[String]) -> Vec<Timeline> {
        let Ok(s) = self.state.lock() else {
            return Vec::new();
        };
        names.iter().map(|n| s.get(ns, n)).collect()
    }

    /// The named requests of `ns` whose timeline does not pass `done` yet.
    pub fn waiting(&self, ns: &str, names: &[String], done: impl Fn(&Timeline) -> bool) -> Vec<String> {
        let Ok(s) = self.state.lock() else {
            return names.to_vec();
        };
        names.iter().filter(|n| !done(&s.get(ns, n))).cloned().collect()
    }

    /// Times the watch listed everything again (the first list included).
    pub fn relists(&self) -> u64 {
        self.state.lock().map(|s| s.relists).unwrap_or(0)
    }

    /// Waits until `done` holds for every named request's timeline of `ns`; fails
    /// after `bound` naming how many are missing.
    pub async fn wait(
        &self,
        ns: &str,
        names: &[String],
        what: &str,
        bound: Duration,
        done: impl Fn(&Timeline) -> bool,
    ) -> Result<Vec<Timeline>> {
        let start = Instant::now();
        // Only the requests not done yet are looked at again: cheap with thousands.
        let mut waiting: Vec<&String> = names.iter().collect();
        loop {
            if let Ok(s) = self.state.lock() {
                waiting.retain(|n| !done(&s.get(ns, n)));
            }
            if waiting.is_empty() {
                return Ok(self.timelines(ns, names));
            }
            if start.elapsed() > bound {
                bail!(
                    "{} of {} requests in {ns} had no binding {what} after {bound:?} (e.g. {})",
                    waiting.len(),
                    names.len(),
                    waiting[0]
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for BindingWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The requests of one namespace, in memory.
pub struct RequestWatch {
    namespace: String,
    store: Store<ApprovalRequest>,
    task: JoinHandle<()>,
}

impl RequestWatch {
    /// Starts watching the requests of `ns`; returns once the first list is in.
    pub async fn start(client: &Client, ns: &str) -> Result<RequestWatch> {
        let api: Api<ApprovalRequest> = Api::namespaced(client.clone(), ns);
        let (store, writer) = reflector::store();
        let stream = reflector::reflector(
            writer,
            watcher::watcher(api, watcher::Config::default()).default_backoff(),
        );
        let task = tokio::spawn(async move {
            let mut stream = std::pin::pin!(stream);
            loop {
                match stream.try_next().await {
                    Ok(Some(_)) => {}
                    Ok(None) => break,
                    Err(e) => eprintln!("bench: the ApprovalRequest watch failed, retrying: {e}"),
                }
            }
        });
        if tokio::time::timeout(Duration::from_secs(60), store.wait_until_ready())
            .await
            .is_err()
        {
            bail!("the ApprovalRequest watch of {ns} did not list within 60 s");
        }
        Ok(RequestWatch {
            namespace: ns.to_string(),
            store,
            task,
        })
    }

    /// The named requests not (yet) in `phase` with their policy snapshot
    /// taken, counted by where they are instead.
    pub fn off_phase(&self, names: &[String], phase: Phase) -> BTreeMap<String, usize> {
        let wanted: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut off: BTreeMap<String, usize> = BTreeMap::new();
        let mut seen = 0;
        for r in self.store.state() {
            if !r.metadata.name.as_deref().is_some_and(|n| wanted.contains(n)) {
                continue;
            }
            seen += 1;
            let status = r.status.as_ref();
            let at = status.map(|s| s.phase);
            let settled = at == Some(phase) && status.is_some_and(|s| s.requirements.is_some());
            if !settled {
                *off.entry(at.map_or("no status".into(), |p| p.to_string()))
                    .or_default() += 1;
            }
        }
        if seen < wanted.len() {
            *off.entry("not seen yet".into()).or_default() += wanted.len() - seen;
        }
        off
    }

    /// Those of the named requests that are in a terminal phase.
    pub fn ended(&self, names: &[String]) -> Vec<String> {
        names
            .iter()
            .filter(|n| {
                self.store
                    .get(&ObjectRef::new(n.as_str()).within(&self.namespace))
                    .and_then(|r| r.status.as_ref().map(|s| s.phase.is_terminal()))
                    .unwrap_or(false)
            })
            .cloned()
            .collect()
    }

    /// Waits until every named request is in `phase` with its policy snapshot
    /// taken; fails after `bound` with the phases seen instead.
    pub async fn wait_phase(&self, names: &[String], phase: Phase, bound: Duration) -> Result<()> {
        let start = Instant::now();
        loop {
            let off = self.off_phase(names, phase);
            if off.is_empty() {
                return Ok(());
            }
            if start.elapsed() > bound {
                let total: usize = off.values().sum();
                bail!(
                    "{total} of {} requests were not {phase} after {bound:?}: {off:?}",
                    names.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for RequestWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}
