//! Watches for the fake API server. kube-fake-client answers a watch request with a
//! plain list, which kube cannot read as events; this layer in front of it answers
//! `?watch=true` itself, the way the API server does: a stream of
//! `{"type":"ADDED|MODIFIED|DELETED","object":...}` lines for every change after the
//! requested resourceVersion. It finds the changes by re-reading the fake every few
//! milliseconds (test plumbing only: the plugin itself just watches). List answers
//! get a real resourceVersion (the fake always says "1"), so a watch starts where
//! its list ended.
//!
//! [`Front`] also records each request the plugin makes, and can answer chosen
//! requests with an error `Status` the way the API server words it (RBAC refusals,
//! which the fake has no notion of).

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use futures::StreamExt;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{combinators::UnsyncBoxBody, BodyExt, StreamBody};
use kube::{client::Body, Client};
use serde_json::{json, Value};

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type Answer = Response<UnsyncBoxBody<Bytes, BoxError>>;

/// `inner` (a kube-fake-client client) with watches.
pub fn with_watch(inner: Client) -> Client {
    Front::default().client(inner)
}

/// A refusal to give instead of the fake's answer.
struct Refusal {
    method: http::Method,
    path: String,
    status: Value,
}

/// The front of the fake: watches, a log of requests, and refusals.
#[derive(Clone, Default)]
pub struct Front {
    log: Arc<Mutex<Vec<String>>>,
    refusals: Arc<Mutex<Vec<Refusal>>>,
}

impl Front {
    /// A client of `inner` through this front.
    pub fn client(&self, inner: Client) -> Client {
        let front = self.clone();
        let service = tower::service_fn(move |req: Request<Body>| {
            let inner = inner.clone();
            let front = front.clone();
            async move { front.answer(inner, req).await }
        });
        Client::new(service, "default")
    }

    /// Answers `method` on `path` (exactly, without the query) with a failure `Status`.
    pub fn refuse(&self, method: http::Method, path: &str, code: u16, reason: &str, message: &str) {
        self.refusals.lock().unwrap().push(Refusal {
            method,
            path: path.to_string(),
            status: json!({"kind": "Status", "apiVersion": "v1", "metadata": {},
                "status": "Failure", "message": message, "reason": reason, "code": code}),
        });
    }

    /// Every request so far, as `METHOD PATH?QUERY`.
    pub fn requests(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    async fn answer(&self, inner: Client, req: Request<Body>) -> Result<Answer, BoxError> {
        let uri = req.uri().clone();
        self.log.lock().unwrap().push(format!("{} {uri}", req.method()));
        let refused = self
            .refusals
            .lock()
            .unwrap()
            .iter()
            .find(|r| r.method == req.method() && r.path == uri.path())
            .map(|r| r.status.clone());
        if let Some(status) = refused {
            let code = status["code"].as_u64().unwrap_or(500) as u16;
            let body = http_body_util::Full::new(Bytes::from(serde_json::to_vec(&status)?))
                .map_err(|e| match e {})
                .boxed_unsync();
            let mut response = Response::new(body);
            *response.status_mut() = http::StatusCode::from_u16(code)?;
            return Ok(response);
        }
        answer(inner, req).await
    }
}

fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn rv(obj: &Value) -> u64 {
    obj["metadata"]["resourceVersion"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn answer(inner: Client, req: Request<Body>) -> Result<Answer, BoxError> {
    let query = req.uri().query().unwrap_or_default().to_string();
    let is_get = req.method() == http::Method::GET;
    if is_get && matches!(query_value(&query, "watch"), Some("true" | "1")) {
        return Ok(watch(inner, req.uri().path().to_string(), &query));
    }
    let response = inner.send(req).await?;
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await?.to_bytes();
    // Give lists a resourceVersion a watch can start from.
    let bytes = match serde_json::from_slice::<Value>(&bytes) {
        Ok(mut v) if is_get && v["items"].is_array() => {
            let newest = v["items"].as_array().into_iter().flatten().map(rv).max();
            v["metadata"]["resourceVersion"] = json!(newest.unwrap_or(0).to_string());
            Bytes::from(serde_json::to_vec(&v)?)
        }
        _ => bytes,
    };
    let body = http_body_util::Full::new(bytes)
        .map_err(|e| match e {})
        .boxed_unsync();
    Ok(Response::from_parts(parts, body))
}

struct Follow {
    inner: Client,
    list_uri: String,
    seen: BTreeMap<String, Value>,
    since: u64,
    queue: VecDeque<Value>,
    first: bool,
}

fn watch(inner: Client, path: String, query: &str) -> Answer {
    let since = query_value(query, "resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let list_uri = match query_value(query, "fieldSelector") {
        Some(selector) => format!("{path}?fieldSelector={selector}"),
        None => path,
    };
    let state = Follow {
        inner,
        list_uri,
        seen: BTreeMap::new(),
        since,
        queue: VecDeque::new(),
        first: true,
    };
    let events = futures::stream::unfold(state, |mut s| async move {
        loop {
            if let Some(event) = s.queue.pop_front() {
                let mut line = serde_json::to_vec(&event).unwrap_or_default();
                line.push(b'\n');
                return Some((Ok::<_, BoxError>(Frame::data(Bytes::from(line))), s));
            }
            if !s.first {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            s.first = false;
            let items = list(&s.inner, &s.list_uri).await?;
            let mut now: BTreeMap<String, Value> = BTreeMap::new();
            for obj in items {
                let key = format!(
                    "{}/{}",
                    obj["metadata"]["namespace"].as_str().unwrap_or_default(),
                    obj["metadata"]["name"].as_str().unwrap_or_default()
                );
                let version = rv(&obj);
                let kind = match s.seen.get(&key).map(rv) {
                    None if version > s.since => Some("ADDED"),
                    Some(previous) if version > previous => Some("MODIFIED"),
                    _ => None,
                };
                if let Some(kind) = kind {
                    s.queue.push_back(json!({"type": kind, "object": obj}));
                }
                now.insert(key, obj);
            }
            for (key, obj) in &s.seen {
                if !now.contains_key(key) {
                    s.queue.push_back(json!({"type": "DELETED", "object": obj}));
                }
            }
            s.seen = now;
        }
    });
    Response::new(StreamBody::new(events.boxed()).boxed_unsync())
}

async fn list(inner: &Client, uri: &str) -> Option<Vec<Value>> {
    let req = Request::get(uri).body(Body::from(Vec::new())).ok()?;
    let response = inner.send(req).await.ok()?;
    let bytes = response.into_body().collect().await.ok()?.to_bytes();
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["items"].as_array().cloned()
}
