//! Live updates: `GET /api/events` streams server-sent events from the desk's
//! watches ([`super::feed`], the user's own, like every other call), so pages
//! refresh what changed instead of reloading. Each event says only which kind
//! changed (`request` or `item`); the page asks for its view again, and the
//! desk's memory already has the change when the event goes out.

use std::{convert::Infallible, sync::Arc};

use axum::{
    extract::State,
    response::sse::{Event, KeepAlive, Sse},
};
use futures::{future::ready, Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use super::Desk;

/// `GET /api/events`.
pub async fn events(State(desk): State<Arc<Desk>>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let changes = desk.feeds.changes.subscribe();
    let changes = futures::stream::unfold(changes, |mut rx| async move {
        match rx.recv().await {
            Ok(kind) => Some((kind, rx)),
            // Events were missed: something changed.
            Err(RecvError::Lagged(_)) => Some(("item", rx)),
            Err(RecvError::Closed) => None,
        }
    })
    .map(|kind| Ok(Event::default().event("change").data(kind)));
    let hello = futures::stream::once(ready(Ok(Event::default().event("ready").data("watching"))));
    Sse::new(hello.chain(changes)).keep_alive(KeepAlive::default())
}
