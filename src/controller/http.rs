//! The operator's HTTP endpoints: `/metrics`, and `/healthz` and `/readyz`,
//! which judge the watches and the controller by [`THRESHOLDS`].

use std::{future::Future, sync::Arc, time::Duration as StdDuration, time::Instant};

use axum::{extract::State, http::StatusCode, routing::get, Router};
use tokio::{net::TcpListener, task::JoinHandle};
use tracing::error;

use crate::{
    metrics::Metrics,
    store::health::{Health, Thresholds, Verdict},
};

/// What the endpoints judge health by.
pub const THRESHOLDS: Thresholds = Thresholds {
    watch_failure: StdDuration::from_secs(30),
    watch_stall: StdDuration::from_secs(180),
    controller_stall: StdDuration::from_secs(60),
};

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    health: Arc<Health>,
}

async fn metrics_handler(State(s): State<HttpState>) -> ([(&'static str, &'static str); 1], String) {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        s.metrics.render(),
    )
}

fn answer(v: Verdict) -> (StatusCode, String) {
    if v.ok {
        (StatusCode::OK, "ok".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, v.problems.join("\n") + "\n")
    }
}

async fn ready_handler(State(s): State<HttpState>) -> (StatusCode, String) {
    answer(s.health.readiness(Instant::now(), &THRESHOLDS))
}

async fn live_handler(State(s): State<HttpState>) -> (StatusCode, String) {
    answer(s.health.liveness(Instant::now(), &THRESHOLDS))
}

/// Serves the endpoints on `listener` until `shutdown` completes.
pub fn serve(
    listener: TcpListener,
    metrics: Arc<Metrics>,
    health: Arc<Health>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> JoinHandle<()> {
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(live_handler))
        .route("/readyz", get(ready_handler))
        .with_state(HttpState { metrics, health });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(shutdown).await {
            error!(error = %e, "HTTP server failed");
        }
    })
}
