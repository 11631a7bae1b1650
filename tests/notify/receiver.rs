//! A local HTTP endpoint on 127.0.0.1 that records what it receives, and can
//! answer 503 a few times first or take its time over each message.

#![allow(dead_code)]

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{body::Bytes, extract::State, http::HeaderMap, http::StatusCode, routing::post, Router};

/// One message as received.
#[derive(Debug, Clone)]
pub struct Received {
    pub delivery: String,
    pub event: String,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

impl Received {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

#[derive(Default)]
struct Inner {
    received: Vec<Received>,
    attempts: usize,
    fail_first: usize,
    delay: Duration,
}

#[derive(Clone, Default)]
pub struct Receiver {
    inner: Arc<Mutex<Inner>>,
}

async fn accept(State(r): State<Receiver>, headers: HeaderMap, body: Bytes) -> (StatusCode, &'static str) {
    let (fail, delay) = {
        let mut i = r.inner.lock().unwrap();
        i.attempts += 1;
        (i.attempts <= i.fail_first, i.delay)
    };
    tokio::time::sleep(delay).await;
    if fail {
        return (StatusCode::SERVICE_UNAVAILABLE, "try later");
    }
    let h = |k: &str| headers.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    r.inner.lock().unwrap().received.push(Received {
        delivery: h("x-gatehouse-delivery").unwrap_or_default(),
        event: h("x-gatehouse-event").unwrap_or_default(),
        signature: h("x-gatehouse-signature"),
        body: body.to_vec(),
    });
    (StatusCode::OK, "ok")
}

impl Receiver {
    /// Serves on `addr` (port 0: any free port); returns the URL.
    pub async fn serve(&self, addr: SocketAddr) -> String {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let app = Router::new()
            .route("/hook", post(accept))
            .with_state(self.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        url
    }

    pub fn fail_first(&self, n: usize) {
        self.inner.lock().unwrap().fail_first = n;
    }

    pub fn delay(&self, d: Duration) {
        self.inner.lock().unwrap().delay = d;
    }

    pub fn received(&self) -> Vec<Received> {
        self.inner.lock().unwrap().received.clone()
    }

    pub fn attempts(&self) -> usize {
        self.inner.lock().unwrap().attempts
    }
}
