//! The watch loops that keep the [`Cache`] filled: one per kind, each with its
//! own bounded back-off, so a failing watch of one kind never holds up another.
//!
//! A loop lists the kind (in pages), then watches from the list's resource
//! version with bookmarks and a short server-side timeout, and starts over with
//! a fresh list after any error: an expired resource version (410 Gone), a
//! dropped connection, an API server restart, a partition. Every network call
//! has a deadline, so a loop never hangs on a dead connection; every turn is
//! recorded in [`Health`](crate::store::health::Health), which is what `/healthz` and
//! `/readyz` answer from. Each change (and, after a re-list, each difference
//! from what was in memory) wakes the requests it concerns.
//!
//! Removals first, from the start: each page of RoleBindings and Jobs goes to
//! the removal lane's deadline index as it arrives ([`Cached::index_listed`]),
//! and at start-up the other kinds are listed only once those two have their
//! first page (or after [`FIRST_WAIT`]), so the API server answers the lists
//! the lane needs before the large ones (requests, reviews, roles).

use std::{
    collections::HashSet,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use futures::{Stream, StreamExt};
use kube::{
    api::{Api, ListParams, WatchEvent, WatchParams},
    runtime::{
        reflector::{store::Writer, ObjectRef},
        watcher::Event,
    },
    Client, Resource, ResourceExt,
};
use thiserror::Error;
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use super::listing;
use crate::{
    api::{AccessCampaign, AccessCertification, ApprovalRequest},
    metrics::Metrics,
    store::{selector, Cache, Cached, CertificationWakes, Change},
};

/// Timing of the watch loops.
#[derive(Debug, Clone, Copy)]
pub struct WatchSettings {
    /// Server-side timeout of one watch call; the loop re-watches after it. Short,
    /// so a silently dead connection is noticed within about this long.
    pub watch_timeout: Duration,
    /// Deadline of each list page and of opening a watch.
    pub request_timeout: Duration,
    /// First delay after a failure; doubled after each further failure.
    pub backoff_min: Duration,
    /// Longest delay between two attempts.
    pub backoff_max: Duration,
    /// Objects per list page.
    pub page_size: u32,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            watch_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(30),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            page_size: 500,
        }
    }
}

/// Why a list or watch ended; the loop starts over after any of them.
#[derive(Debug, Error)]
pub enum WatchError {
    /// The API call failed.
    #[error("{0}")]
    Api(#[from] kube::Error),
    /// The API server answered nothing before the deadline.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// A list page could not be read or parsed.
    #[error("reading a list page: {0}")]
    Parse(String),
    /// The watch reported an error (410 Gone: the resource version expired).
    #[error("watch error {code}: {message}")]
    Watch {
        /// HTTP status code.
        code: u16,
        /// The API server's message.
        message: String,
    },
}

/// Where watch loops send the objects of one kind to reconcile: to the running
/// controller of that kind, if this replica leads; nowhere otherwise.
pub struct Triggers<K: Resource<DynamicType = ()>> {
    to: Mutex<Option<mpsc::UnboundedSender<ObjectRef<K>>>>,
}

impl<K: Resource<DynamicType = ()>> Default for Triggers<K> {
    fn default() -> Self {
        Triggers { to: Mutex::new(None) }
    }
}

impl<K: Resource<DynamicType = ()>> Triggers<K> {
    /// Sends the objects to the controller, if one runs.
    pub fn wake(&self, refs: Vec<ObjectRef<K>>) {
        if refs.is_empty() {
            return;
        }
        if let Ok(to) = self.to.lock() {
            if let Some(tx) = to.as_ref() {
                for r in refs {
                    let _ = tx.send(r);
                }
            }
        }
    }

    /// A controller starts: from now on it receives every trigger.
    pub fn connect(&self) -> mpsc::UnboundedReceiver<ObjectRef<K>> {
        let (tx, rx) = mpsc::unbounded_channel();
        if let Ok(mut to) = self.to.lock() {
            *to = Some(tx);
        }
        rx
    }

    /// The controller stopped.
    pub fn disconnect(&self) {
        if let Ok(mut to) = self.to.lock() {
            *to = None;
        }
    }
}

/// One trigger hub per controller: JIT requests, certification items and
/// campaigns each have their own queue, so a campaign launch of thousands of
/// items never waits in front of a grant or a revoke.
#[derive(Default)]
pub struct Hub {
    /// ApprovalRequests.
    pub requests: Triggers<ApprovalRequest>,
    /// AccessCertification items.
    pub items: Triggers<AccessCertification>,
    /// AccessCampaigns.
    pub campaigns: Triggers<AccessCampaign>,
}

/// What one change concerns, for every controller.
#[derive(Default)]
struct Wake {
    requests: Vec<ObjectRef<ApprovalRequest>>,
    certification: CertificationWakes,
}

impl Wake {
    fn of<K: Cached>(cache: &Cache, obj: &K) -> Self {
        Wake {
            requests: obj.wakes(cache),
            certification: obj.wakes_certification(cache),
        }
    }

    fn extend(&mut self, other: Wake) {
        self.requests.extend(other.requests);
        self.certification.items.extend(other.certification.items);
        self.certification.campaigns.extend(other.certification.campaigns);
    }

    fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.certification.items.is_empty()
            && self.certification.campaigns.is_empty()
    }
}

impl Hub {
    /// Sends what a change concerns to the controllers.
    fn wake(&self, wake: Wake) {
        self.requests.wake(wake.requests);
        self.items.wake(wake.certification.items);
        self.campaigns.wake(wake.certification.campaigns);
    }
}

/// Delay before the next attempt: doubling from the minimum, capped.
struct Backoff {
    next: Duration,
    min: Duration,
    max: Duration,
}

impl Backoff {
    fn new(s: &WatchSettings) -> Self {
        Backoff {
            next: s.backoff_min,
            min: s.backoff_min,
            max: s.backoff_max,
        }
    }

    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }

    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// At start-up, how long the other kinds wait for the first pages of the
/// kinds the removal lane needs before they list anyway.
pub const FIRST_WAIT: Duration = Duration::from_secs(1);

/// The kinds the removal lane needs listed first: RoleBindings and Jobs.
const FIRST_KINDS: usize = 2;

/// Everything one loop needs.
pub struct Loop<K: Cached> {
    client: Client,
    api: Api<K::Wire>,
    cache: Arc<Cache>,
    writer: Writer<K>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    settings: WatchSettings,
    /// A kind listed first: counts up once its first page is in (or its
    /// first list failed).
    opens: Option<Arc<watch::Sender<usize>>>,
    /// A kind listed after those: waits for them at its first list.
    after: Option<watch::Receiver<usize>>,
    /// Whether a list has completed yet (the first one is logged).
    listed: bool,
}

impl<K: Cached> Loop<K> {
    /// A loop over every object of the kind (or every managed one) in the cluster.
    pub fn new(
        client: Client,
        cache: Arc<Cache>,
        writer: Writer<K>,
        hub: Arc<Hub>,
        metrics: Arc<Metrics>,
        settings: WatchSettings,
    ) -> Self {
        cache.health.register(K::RESOURCE);
        Loop {
            api: Api::all_with(client.clone(), &()),
            client,
            cache,
            writer,
            hub,
            metrics,
            settings,
            opens: None,
            after: None,
            listed: false,
        }
    }

    /// Listed first: `opens` counts up once this kind's first page is in.
    fn first(mut self, opens: Arc<watch::Sender<usize>>) -> Self {
        self.opens = Some(opens);
        self
    }

    /// Listed after the first kinds (at most [`FIRST_WAIT`] later).
    fn after(mut self, first: watch::Receiver<usize>) -> Self {
        self.after = Some(first);
        self
    }

    /// Runs until the task is dropped.
    pub async fn run(mut self) {
        let mut backoff = Backoff::new(&self.settings);
        if let Some(mut first) = self.after.take() {
            let _ = tokio::time::timeout(FIRST_WAIT, first.wait_for(|n| *n >= FIRST_KINDS)).await;
        }
        loop {
            self.cache.health.turned(K::RESOURCE, Instant::now());
            let error = self.list_and_watch(&mut backoff).await;
            warn!(kind = K::RESOURCE, error = %error, "watch failed; listing again");
            self.cache
                .health
                .failed(K::RESOURCE, Instant::now(), error.to_string());
            self.metrics.watch_restarted(K::RESOURCE);
            tokio::time::sleep(backoff.next()).await;
        }
    }

    /// One cycle: list everything into memory, then follow the watch until it fails.
    async fn list_and_watch(&mut self, backoff: &mut Backoff) -> WatchError {
        let opens = self.opens.take();
        let mut opened = false;
        let open = |opened: &mut bool| {
            if let Some(tx) = opens.as_ref().filter(|_| !*opened) {
                tx.send_modify(|n| *n += 1);
            }
            *opened = true;
        };
        let cache = self.cache.clone();
        let listed = {
            let mut on_page = |page: &[K]| {
                K::index_listed(&cache, page);
                open(&mut opened);
            };
            list::<K>(&self.client, &self.settings, &mut on_page).await
        };
        open(&mut opened);
        let (objects, version) = match listed {
            Ok(listed) => listed,
            Err(e) => return e,
        };
        let count = objects.len();
        self.replace_all(objects);
        self.cache.health.alive(K::RESOURCE, Instant::now(), true);
        self.metrics.listed(K::RESOURCE);
        if std::mem::replace(&mut self.listed, true) {
            debug!(kind = K::RESOURCE, objects = count, "listed");
        } else {
            let since_start_ms = super::run::started().elapsed().as_millis() as u64;
            info!(kind = K::RESOURCE, objects = count, since_start_ms, "listed");
        }
        let mut version = version;
        let mut since = Instant::now();
        loop {
            let stream = match self.open_watch(&version).await {
                Ok(s) => s,
                Err(e) => return e,
            };
            self.cache.health.turned(K::RESOURCE, Instant::now());
            let mut stream = std::pin::pin!(stream);
            let idle = self.settings.watch_timeout + self.settings.request_timeout;
            loop {
                let item = match tokio::time::timeout(idle, stream.next()).await {
                    Err(_) => return WatchError::Timeout(idle),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return WatchError::Api(e),
                    Ok(Some(Ok(item))) => item,
                };
                match item {
                    WatchEvent::Added(obj) | WatchEvent::Modified(obj) => {
                        version = obj.resource_version().unwrap_or(version);
                        self.upsert(obj);
                    }
                    WatchEvent::Deleted(obj) => {
                        version = obj.resource_version().unwrap_or(version);
                        self.remove(obj);
                    }
                    WatchEvent::Bookmark(b) => version = b.metadata.resource_version,
                    WatchEvent::Error(e) => {
                        return WatchError::Watch {
                            code: e.code,
                            message: e.message,
                        }
                    }
                }
                self.cache.health.alive(K::RESOURCE, Instant::now(), false);
                // A watch that has worked for a while earns a fresh back-off.
                if since.elapsed() >= Duration::from_secs(10) {
                    backoff.reset();
                    since = Instant::now();
                }
            }
            // The server closed the watch at its timeout: watch again from where we are.
            self.cache.health.alive(K::RESOURCE, Instant::now(), false);
        }
    }

    async fn open_watch(
        &self,
        version: &str,
    ) -> Result<impl Stream<Item = kube::Result<WatchEvent<K>>> + use<K>, WatchError> {
        let secs = u32::try_from(self.settings.watch_timeout.as_secs()).unwrap_or(60);
        let mut params = WatchParams::default().timeout(secs);
        if let Some(sel) = selector::<K>() {
            params = params.labels(&sel);
        }
        let api = self.api.clone();
        let version = version.to_string();
        tokio::time::timeout(self.settings.request_timeout, async move {
            api.watch(&params, &version).await
        })
        .await
        .map_err(|_| WatchError::Timeout(self.settings.request_timeout))?
        .map(|s| s.map(|e| e.map(|e| strip_event::<K>(e))))
        .map_err(WatchError::Api)
    }

    fn replace_all(&mut self, objects: Vec<K>) {
        replace_all(&self.cache, &mut self.writer, &self.hub, objects);
    }

    fn upsert(&mut self, obj: K) {
        K::index(&self.cache, Change::Upsert(&obj));
        let wake = Wake::of(&self.cache, &obj);
        self.writer.apply_watcher_event(&Event::Apply(obj));
        self.hub.wake(wake);
    }

    fn remove(&mut self, obj: K) {
        K::index(&self.cache, Change::Remove(&obj));
        let wake = Wake::of(&self.cache, &obj);
        self.writer.apply_watcher_event(&Event::Delete(obj));
        self.hub.wake(wake);
    }
}

/// What memory keeps of the object ([`crate::store::trim`], [`crate::store::wire`]).
fn strip<K: Cached>(wire: K::Wire) -> K {
    K::from_wire(wire)
}

fn strip_event<K: Cached>(e: WatchEvent<K::Wire>) -> WatchEvent<K> {
    match e {
        WatchEvent::Added(o) => WatchEvent::Added(strip(o)),
        WatchEvent::Modified(o) => WatchEvent::Modified(strip(o)),
        WatchEvent::Deleted(o) => WatchEvent::Deleted(strip(o)),
        WatchEvent::Bookmark(b) => WatchEvent::Bookmark(b),
        WatchEvent::Error(e) => WatchEvent::Error(e),
    }
}

/// Lists every object of the kind (or every managed one), page by page, each
/// parsed as it streams in ([`super::listing`]); `on_page` sees each page as
/// it arrives.
async fn list<K: Cached>(
    client: &Client,
    settings: &WatchSettings,
    on_page: &mut (dyn FnMut(&[K]) + Send),
) -> Result<(Vec<K>, String), WatchError> {
    let mut objects = Vec::new();
    let mut params = ListParams::default().limit(settings.page_size);
    if let Some(sel) = selector::<K>() {
        params = params.labels(&sel);
    }
    loop {
        let page = listing::page::<K::Wire>(client, &params, settings.request_timeout).await?;
        let token = page.metadata.continue_.clone().filter(|t| !t.is_empty());
        let version = page.metadata.resource_version.clone().unwrap_or_default();
        let from = objects.len();
        objects.extend(page.items.into_iter().flatten().map(strip::<K>));
        on_page(&objects[from..]);
        match token {
            Some(t) => params = params.continue_token(&t),
            None => return Ok((objects, version)),
        }
    }
}

/// Every object of the kind (or every managed one) as the API server holds it
/// now: a consistent read (no `resourceVersion`, so never an older copy),
/// paged and trimmed as memory trims. For what must not miss a write made just
/// before it, however far the watches lag (a certification run's launch).
pub async fn read_now<K: Cached>(client: &Client) -> Result<Vec<K>, WatchError> {
    let (objects, _) = list::<K>(client, &WatchSettings::default(), &mut |_| {}).await?;
    Ok(objects)
}

/// Puts a full list in memory; wakes what the objects that are new, changed or
/// gone compared to what memory held concern.
fn replace_all<K: Cached>(cache: &Cache, writer: &mut Writer<K>, hub: &Hub, objects: Vec<K>) {
    let store = K::store(cache);
    let mut wake = Wake::default();
    let mut changed = 0;
    let mut seen = HashSet::new();
    for obj in &objects {
        let key = ObjectRef::from_obj(obj);
        let same = store
            .get(&key)
            .is_some_and(|old| old.resource_version() == obj.resource_version());
        if !same {
            wake.extend(Wake::of(cache, obj));
            changed += 1;
        }
        seen.insert(key);
    }
    for old in store.state() {
        if !seen.contains(&ObjectRef::from_obj(old.as_ref())) {
            wake.extend(Wake::of(cache, old.as_ref()));
            changed += 1;
        }
    }
    K::index(cache, Change::Rebuild(&objects));
    writer.apply_watcher_event(&Event::Init);
    for obj in objects {
        writer.apply_watcher_event(&Event::InitApply(obj));
    }
    writer.apply_watcher_event(&Event::InitDone);
    if !wake.is_empty() {
        debug!(
            kind = K::RESOURCE,
            objects = changed,
            "list changed what was in memory"
        );
    }
    hub.wake(wake);
}

/// Fills one kind of the cache once from the API, without watching: what a
/// synced watch would hold. For tests (the in-process fake API has no watch).
pub async fn load_once<K: Cached>(
    client: &Client,
    cache: &Cache,
    writer: &mut Writer<K>,
) -> Result<(), WatchError> {
    let (objects, _) = list::<K>(client, &WatchSettings::default(), &mut |_| {}).await?;
    replace_all(cache, writer, &Hub::default(), objects);
    cache.health.alive(K::RESOURCE, Instant::now(), true);
    Ok(())
}

impl crate::store::Writers {
    /// Starts one watch loop per kind; they run until their tasks are aborted.
    /// RoleBindings and Jobs first: the other kinds list once those have their
    /// first page in (at most [`FIRST_WAIT`] later).
    pub fn spawn(
        self,
        client: &Client,
        cache: &Arc<Cache>,
        hub: &Arc<Hub>,
        metrics: &Arc<Metrics>,
        settings: WatchSettings,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let (opens, first) = watch::channel(0usize);
        let opens = Arc::new(opens);
        macro_rules! start {
            ($how:ident($with:expr): $($field:ident),+) => {
                vec![$(tokio::spawn(
                    Loop::new(client.clone(), cache.clone(), self.$field, hub.clone(), metrics.clone(), settings)
                        .$how($with.clone())
                        .run(),
                )),+]
            };
        }
        let mut loops = start!(first(opens): role_bindings, jobs);
        loops.extend(start!(after(first):
            requests,
            reviews,
            policies,
            namespaces,
            cluster_role_bindings,
            service_accounts,
            roles,
            cluster_roles,
            campaigns,
            items,
            notification_channels
        ));
        loops
    }
}
