//! The test's own watch on the operator's RoleBindings of a scene: when each
//! appeared and went, with its request and its `expires-at`.

use std::{
    sync::{Arc, Mutex},
    time::SystemTime,
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gatehouse::labels::{managed_selector, EXPIRES_AT, REQUEST_NAME};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{
    api::Api,
    runtime::{watcher, WatchStreamExt},
    ResourceExt,
};

use crate::support::scene::Scene;

/// A binding seen appearing or going.
#[derive(Debug, Clone)]
pub struct Seen {
    pub binding: String,
    pub uid: String,
    pub request: String,
    pub added: bool,
    pub at: SystemTime,
    pub expires: Option<DateTime<Utc>>,
}

/// Records every managed RoleBinding of the scene's namespace appearing or
/// going, until the task is aborted.
pub fn record(scene: &Scene) -> (Arc<Mutex<Vec<Seen>>>, tokio::task::JoinHandle<()>) {
    let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let bindings: Api<RoleBinding> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let shared = seen.clone();
    let config = watcher::Config::default().labels(&managed_selector());
    let task = tokio::spawn(watcher(bindings, config).default_backoff().for_each(move |e| {
        let seen = shared.clone();
        async move {
            let (obj, added) = match e {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => (o, true),
                Ok(watcher::Event::Delete(o)) => (o, false),
                _ => return,
            };
            seen.lock().unwrap().push(Seen {
                binding: obj.name_any(),
                uid: obj.uid().unwrap_or_default(),
                request: obj.labels().get(REQUEST_NAME).cloned().unwrap_or_default(),
                added,
                at: SystemTime::now(),
                expires: obj.annotations().get(EXPIRES_AT).and_then(|t| t.parse().ok()),
            });
        }
    }));
    (seen, task)
}
