//! Live updates: `GET /api/events` streams server-sent events from kube watches
//! (the user's own, like every other call), so pages refresh what changed
//! instead of reloading. Each event says only which kind changed (`request` or
//! `item`); the page asks for its view again.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{future::ready, Stream, StreamExt};
use kube::{
    api::{Api, ListParams},
    runtime::{watcher, WatchStreamExt},
    Resource,
};
use serde::de::DeserializeOwned;

use super::Desk;
use crate::api::{AccessCertification, ApprovalRequest};

/// Watches everywhere if the user may list everywhere, else in the desk's namespace.
async fn scoped<K>(desk: &Desk) -> Api<K>
where
    K: Resource<Scope = kube::core::NamespaceResourceScope> + Clone + DeserializeOwned + std::fmt::Debug,
    K::DynamicType: Default,
{
    let env = &desk.env;
    let all: Api<K> = Api::all(env.client.clone());
    match all.list(&ListParams::default().limit(1)).await {
        Ok(_) => Api::all(env.watch_client.clone()),
        Err(_) => Api::namespaced(env.watch_client.clone(), &env.namespace),
    }
}

fn changes<K>(api: Api<K>, kind: &'static str) -> impl Stream<Item = Result<Event, Infallible>> + Send
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug + Send + 'static,
    K::DynamicType: Default,
{
    watcher(api, watcher::Config::default())
        .default_backoff()
        .filter_map(move |e| {
            ready(match e {
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) => {
                    Some(Ok(Event::default().event("change").data(kind)))
                }
                _ => None,
            })
        })
}

/// `GET /api/events`.
pub async fn events(State(desk): State<Arc<Desk>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let requests = changes(scoped::<ApprovalRequest>(&desk).await, "request");
    let items = changes(scoped::<AccessCertification>(&desk).await, "item");
    let hello = futures::stream::once(ready(Ok(Event::default().event("ready").data("watching"))));
    Sse::new(hello.chain(futures::stream::select(requests, items))).keep_alive(KeepAlive::default())
}
