//! What the desk reads often, kept in memory from the user's own watches.
//!
//! When the desk starts it watches ApprovalRequests and AccessCertifications as
//! the user (everywhere if the user may list everywhere, else in the desk's
//! namespace), the way `kubectl get -w` would: a reflector keeps what the API
//! server sent, so My queue is built from memory instead of listing a 5,000-item
//! run on every visit. The same watches feed the live updates ([`super::events`]):
//! a change goes to the pages only after the memory has it, so a page that asks
//! again sees it.
//!
//! The memory holds only what the user's own watch returned. While a watch is
//! not in sync (starting, refused by RBAC, broken) the desk does what it did
//! without it: it lists as the user, and a refusal becomes the queue's note.

use std::{fmt::Debug, time::Duration};

use futures::StreamExt;
use kube::{
    api::{Api, ListParams},
    runtime::{
        reflector::{self, Store},
        watcher, WatchStreamExt,
    },
    Resource,
};
use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, watch};

use super::super::Env;
use crate::api::{AccessCertification, ApprovalRequest};

/// How long a page's first call waits for a starting watch before listing.
const FIRST_SYNC: Duration = Duration::from_secs(10);

/// Whether a watch's memory may be served.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Memory {
    /// The first list has not come yet.
    Starting,
    /// The memory has everything the watch has seen.
    InSync,
    /// The last call failed (RBAC, network); the watch retries.
    Failing,
}

/// One kind, in memory.
pub struct Feed<K: Resource + 'static>
where
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    store: Store<K>,
    memory: watch::Receiver<Memory>,
}

impl<K> Feed<K>
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + std::hash::Hash + Clone,
{
    /// Everything in memory, or `None` when the watch is not in sync (the
    /// caller lists instead). Waits a little for a watch that is starting.
    pub async fn snapshot(&self) -> Option<Vec<std::sync::Arc<K>>> {
        let mut memory = self.memory.clone();
        let state = match tokio::time::timeout(FIRST_SYNC, memory.wait_for(|s| *s != Memory::Starting)).await
        {
            Ok(Ok(s)) => *s,
            _ => Memory::Starting,
        };
        (state == Memory::InSync).then(|| self.store.state())
    }
}

/// The desk's watches.
pub struct Feeds {
    /// The ApprovalRequests the user may see.
    pub requests: Feed<ApprovalRequest>,
    /// The AccessCertifications the user may see.
    pub items: Feed<AccessCertification>,
    /// `request` or `item` when one changed (after the memory has it).
    pub changes: broadcast::Sender<&'static str>,
}

impl Feeds {
    /// Starts the watches in the background, as the user of `env`.
    pub fn start(env: &Env) -> Feeds {
        let (changes, _) = broadcast::channel(256);
        Feeds {
            requests: feed::<ApprovalRequest>(env, "request", changes.clone()),
            items: feed::<AccessCertification>(env, "item", changes.clone()),
            changes,
        }
    }
}

fn feed<K>(env: &Env, kind: &'static str, changes: broadcast::Sender<&'static str>) -> Feed<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Debug
        + Send
        + Sync
        + 'static,
    K::DynamicType: Default + Eq + std::hash::Hash + Clone,
{
    let (store, writer) = reflector::store();
    let (tell, memory) = watch::channel(Memory::Starting);
    let env = env.clone();
    tokio::spawn(async move {
        let api = scoped::<K>(&env).await;
        let stream = reflector::reflector(writer, watcher(api, watcher::Config::default())).default_backoff();
        let mut stream = std::pin::pin!(stream);
        while let Some(event) = stream.next().await {
            match event {
                Ok(watcher::Event::InitDone) => {
                    tell.send_replace(Memory::InSync);
                    let _ = changes.send(kind);
                }
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    let _ = changes.send(kind);
                }
                Ok(_) => {}
                // Until the watch lists again, the memory may hold what the
                // user may no longer read: serve from the API server instead.
                Err(_) => {
                    tell.send_replace(Memory::Failing);
                }
            }
        }
    });
    Feed { store, memory }
}

/// Watches everywhere if the user may list everywhere, else in the desk's namespace
/// (as the queue's lists do).
async fn scoped<K>(env: &Env) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + Debug,
    K::DynamicType: Default,
{
    let all: Api<K> = Api::all(env.client.clone());
    match all.list(&ListParams::default().limit(1)).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {
            Api::namespaced(env.watch_client.clone(), &env.namespace)
        }
        // Any other failure: the watch retries everywhere (and the queue lists meanwhile).
        _ => Api::all(env.watch_client.clone()),
    }
}
