//! Which `BindingUsage` objects exist and at which `resourceVersion`, from a
//! metadata-only watch: the flush ([`super::usage_flush`]) fetches an object's
//! body only when its version differs from the one it joined or wrote. No copy
//! of the objects is kept (the book holds their merged state); this map holds a
//! name and a version per object.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, MutexGuard},
};

use futures::StreamExt;
use kube::{
    api::Api,
    core::PartialObjectMeta,
    runtime::{watcher, WatchStreamExt},
    Client, ResourceExt,
};

use crate::{api::BindingUsage, labels::MANAGED_BY};

/// Object name → `resourceVersion`, as the watch last saw them.
#[derive(Clone, Default)]
pub struct Versions(Arc<Mutex<HashMap<String, String>>>);

impl Versions {
    /// The current map.
    pub fn lock(&self) -> MutexGuard<'_, HashMap<String, String>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets one object's version (as a watch event would).
    pub fn set(&self, name: &str, resource_version: &str) {
        self.lock().insert(name.into(), resource_version.into());
    }

    /// Names whose version is not `joined`'s, with the version seen.
    pub fn changed(&self, joined: &HashMap<String, String>) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .filter(|(n, v)| joined.get(*n) != Some(*v))
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    }
}

/// Keeps `versions` up to date from a metadata-only watch of the managed
/// objects of `namespace`; runs until dropped.
pub async fn watch(client: Client, namespace: String, versions: Versions) {
    let api = Api::<PartialObjectMeta<BindingUsage>>::namespaced(client, &namespace);
    let selector = format!("{}={}", MANAGED_BY.0, MANAGED_BY.1);
    // A relist's objects are gathered apart, then replace the map, so objects
    // deleted while the watch was down are dropped.
    let mut relist: Option<HashMap<String, String>> = None;
    watcher(api, watcher::Config::default().labels(&selector))
        .default_backoff()
        .for_each(|event| {
            match event {
                Ok(watcher::Event::Init) => relist = Some(HashMap::new()),
                Ok(watcher::Event::InitApply(o)) => {
                    if let (Some(m), Some(v)) = (relist.as_mut(), o.resource_version()) {
                        m.insert(o.name_any(), v);
                    }
                }
                Ok(watcher::Event::InitDone) => {
                    if let Some(m) = relist.take() {
                        *versions.lock() = m;
                    }
                }
                Ok(watcher::Event::Apply(o)) => {
                    if let Some(v) = o.resource_version() {
                        versions.set(&o.name_any(), &v);
                    }
                }
                Ok(watcher::Event::Delete(o)) => {
                    versions.lock().remove(&o.name_any());
                }
                Err(e) => tracing::debug!(error = %e, "usage summary watch interrupted"),
            }
            futures::future::ready(())
        })
        .await;
}
