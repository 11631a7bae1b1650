//! Waiting on one object through a watch: `request --wait` follows a request to
//! its outcome, a review command waits for the operator's verdict. A watch on the
//! object's name (kube's `watcher`: list, then watch from that resourceVersion,
//! re-listing only when the server says the version is too old), so an update is
//! seen as soon as the API server has it, with no polling.

use std::{fmt::Debug, time::Duration as StdDuration};

use futures::StreamExt;
use kube::{
    api::Api,
    runtime::{watcher, WatchStreamExt},
    Resource,
};
use serde::de::DeserializeOwned;
use tokio::time::Instant;

use super::CliError;

/// How a wait ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Waited<K> {
    /// The object reached a state the caller waited for.
    Done(K),
    /// The time ran out; the object as last seen, if it was seen at all.
    TimedOut(Option<K>),
    /// The object was deleted, or did not exist when the watch started.
    Gone,
}

/// What to do while waiting, besides looking at each version of the object.
pub struct Quiet<N> {
    /// After this long without reaching the goal, call `nudge` once.
    pub after: StdDuration,
    /// Called with the object as last seen (e.g. to say the operator seems absent).
    pub nudge: N,
}

/// No nudge: for `watch_one(.., None::<NoNudge<K>>, ..)`.
pub type NoNudge<K> = Quiet<fn(Option<&K>) -> Result<(), CliError>>;

/// Watches the object `name` of `api` until `done` says so, the object goes away,
/// or `timeout` passes (`None`: no limit). `done` sees every version in order.
///
/// An error before the first answer (forbidden, unreachable) ends the wait with it,
/// classified by `fail`; once the watch runs, kube's backoff retries a dropped
/// connection.
pub async fn watch_one<K, F, N>(
    api: Api<K>,
    name: &str,
    timeout: Option<StdDuration>,
    mut done: F,
    mut quiet: Option<Quiet<N>>,
    fail: impl FnOnce(kube::Error) -> CliError,
) -> Result<Waited<K>, CliError>
where
    K: Resource + Clone + DeserializeOwned + Debug + Send + 'static,
    F: FnMut(&K) -> Result<bool, CliError>,
    N: FnMut(Option<&K>) -> Result<(), CliError>,
{
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    let mut stream = watcher(api, config).default_backoff().boxed();
    let started = Instant::now();
    let deadline = timeout.map(|t| started + t);
    let nudge_at = quiet.as_ref().map(|q| started + q.after);
    let mut last: Option<K> = None;
    let mut listed = false;
    let mut in_list = false;
    loop {
        let event = tokio::select! {
            e = stream.next() => e,
            _ = sleep_until(deadline) => return Ok(Waited::TimedOut(last)),
            _ = sleep_until(nudge_at), if quiet.is_some() => {
                if let Some(mut q) = quiet.take() {
                    (q.nudge)(last.as_ref())?;
                }
                continue;
            }
        };
        let Some(event) = event else {
            return Ok(Waited::TimedOut(last));
        };
        let event = match event {
            Ok(e) => e,
            Err(e) if !listed => return Err(fail(into_kube(e))),
            Err(e) => {
                tracing::debug!(error = %e, "watch interrupted; kube retries with backoff");
                continue;
            }
        };
        match event {
            watcher::Event::Init => in_list = false,
            watcher::Event::InitApply(obj) | watcher::Event::Apply(obj) => {
                in_list = true;
                if done(&obj)? {
                    return Ok(Waited::Done(obj));
                }
                last = Some(obj);
            }
            // A (re-)list without the object: it does not exist (any more).
            watcher::Event::InitDone if !in_list => return Ok(Waited::Gone),
            watcher::Event::InitDone => listed = true,
            watcher::Event::Delete(_) => return Ok(Waited::Gone),
        }
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => futures::future::pending().await,
    }
}

/// The API error inside a watcher error, so it is classified like any other call.
fn into_kube(e: watcher::Error) -> kube::Error {
    match e {
        watcher::Error::InitialListFailed(e)
        | watcher::Error::WatchStartFailed(e)
        | watcher::Error::WatchFailed(e) => e,
        watcher::Error::WatchError(status) => kube::Error::Api(status),
        watcher::Error::NoResourceVersion => kube::Error::Service(
            "the API server sent no resourceVersion: it cannot watch this resource".into(),
        ),
    }
}
