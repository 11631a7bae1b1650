//! `gatehouse run`: the operator process. Wires the HTTP endpoints, leader
//! election, the controller and the sweep; shuts down cleanly on SIGTERM.

use std::{
    net::SocketAddr,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc,
    },
    time::Duration as StdDuration,
};

use axum::{extract::State, http::StatusCode, routing::get, Router};
use futures::StreamExt;
use k8s_openapi::api::{
    batch::v1::Job,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    api::{Api, ListParams},
    runtime::{controller::Controller, reflector::ObjectRef, watcher},
    Client, ResourceExt,
};
use kube_lease_manager::LeaseManagerBuilder;
use thiserror::Error;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{error_policy, grant, metrics::Metrics, reconcile, Context};
use crate::{
    api::{AccessPolicy, AccessReview, ApprovalRequest, Phase},
    decide::duration,
};

/// Settings of `gatehouse run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "GATEHOUSE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// How often to delete expired or orphaned bindings and refresh the gauges (Go duration).
    #[arg(long, env = "GATEHOUSE_SWEEP_INTERVAL", default_value = "2m")]
    pub sweep_interval: String,
    /// Elect a leader with a Lease so only one replica acts; `false` for a single replica.
    #[arg(long, env = "GATEHOUSE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "GATEHOUSE_LEASE_NAME", default_value = "gatehouse-leader")]
    pub lease_name: String,
    /// Namespace of the Lease (the operator's own namespace).
    #[arg(long, env = "POD_NAMESPACE", default_value = "gatehouse-system")]
    pub lease_namespace: String,
    /// Requests reconciled in parallel.
    #[arg(long, env = "GATEHOUSE_CONCURRENCY", default_value_t = 16)]
    pub concurrency: u16,
}

/// Why the operator could not run.
#[derive(Debug, Error)]
pub enum RunError {
    /// No kubeconfig or in-cluster configuration.
    #[error("cannot configure a Kubernetes client (kubeconfig or in-cluster): {0}")]
    Client(#[source] kube::Error),
    /// A flag has a bad value.
    #[error("--{flag}: {message}")]
    Flag {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The HTTP address cannot be bound.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Leader election could not start.
    #[error("leader election: {0}")]
    Lease(String),
}

#[derive(Clone)]
struct HttpState {
    metrics: Arc<Metrics>,
    ready: Arc<AtomicBool>,
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

async fn ready_handler(State(s): State<HttpState>) -> (StatusCode, &'static str) {
    if s.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

/// A future that resolves on SIGTERM or Ctrl-C, and a receiver others can watch.
fn shutdown_signal() -> watch::Receiver<bool> {
    let (tx, rx) = watch::channel(false);
    tokio::spawn(async move {
        let ctrl_c = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let term = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(e) => {
                    warn!(error = %e, "cannot listen for SIGTERM");
                    std::future::pending::<()>().await
                }
            }
        };
        #[cfg(not(unix))]
        let term = std::future::pending::<()>();
        tokio::select! {
            _ = ctrl_c => {},
            _ = term => {},
        }
        info!("shutdown requested");
        let _ = tx.send(true);
    });
    rx
}

async fn wait_true(rx: &mut watch::Receiver<bool>) {
    // A closed channel means the sender is gone: treat it as the condition holding.
    let _ = rx.wait_for(|v| *v).await;
}

/// Runs the operator until SIGTERM.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    let sweep_every = duration::parse(&args.sweep_interval)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| RunError::Flag {
            flag: "sweep-interval",
            message: format!("{:?} is not a positive Go duration", args.sweep_interval),
        })?;
    let client = Client::try_default().await.map_err(RunError::Client)?;
    let metrics = Arc::new(Metrics::default());
    let ready = Arc::new(AtomicBool::new(false));
    let shutdown = shutdown_signal();

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: args.http_addr,
            source,
        })?;
    let state = HttpState {
        metrics: metrics.clone(),
        ready: ready.clone(),
    };
    let app = Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(ready_handler))
        .with_state(state);
    let mut http_shutdown = shutdown.clone();
    let http = tokio::spawn(async move {
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(async move { wait_true(&mut http_shutdown).await });
        if let Err(e) = serve.await {
            error!(error = %e, "HTTP server failed");
        }
    });
    info!(addr = %args.http_addr, "serving /metrics, /healthz, /readyz");

    // Ready once the API server answers; a standby replica is ready too (it is
    // healthy and waiting for the lease).
    match client.apiserver_version().await {
        Ok(v) => info!(version = %v.git_version, "connected to the API server"),
        Err(e) => warn!(error = %e, "API server not reachable yet; the controller will retry"),
    }
    ready.store(true, Ordering::Relaxed);

    if args.leader_election {
        let identity =
            std::env::var("POD_NAME").unwrap_or_else(|_| format!("gatehouse-{}", std::process::id()));
        let manager = LeaseManagerBuilder::new(client.clone(), &args.lease_name)
            .with_namespace(&args.lease_namespace)
            .with_identity(&identity)
            .with_duration(15)
            .with_grace(5)
            .with_field_manager(crate::labels::FIELD_MANAGER)
            .build()
            .await
            .map_err(|e| RunError::Lease(e.to_string()))?;
        let (mut leader, lease_task) = manager.watch().await;
        let mut stop = shutdown.clone();
        loop {
            info!(identity = %identity, lease = %args.lease_name, "waiting to become the leader");
            tokio::select! {
                _ = wait_true(&mut leader) => {},
                _ = wait_true(&mut stop) => break,
            }
            info!(identity = %identity, "became the leader");
            let mut lost = leader.clone();
            let mut stop_now = shutdown.clone();
            let until = async move {
                tokio::select! {
                    _ = lost.wait_for(|v| !*v) => warn!("lost the lease: stopping"),
                    _ = wait_true(&mut stop_now) => {},
                }
            };
            act(
                client.clone(),
                metrics.clone(),
                sweep_every,
                args.concurrency,
                until,
            )
            .await;
            if *shutdown.borrow() {
                break;
            }
        }
        // Dropping the receiver makes the lease task release the lease for the next replica.
        drop(leader);
        let _ = lease_task.await;
    } else {
        let mut stop = shutdown.clone();
        act(client, metrics, sweep_every, args.concurrency, async move {
            wait_true(&mut stop).await
        })
        .await;
    }
    let _ = http.await;
    info!("stopped");
    Ok(())
}

/// Runs the controller and the sweep until `until` resolves.
pub async fn act(
    client: Client,
    metrics: Arc<Metrics>,
    sweep_every: StdDuration,
    concurrency: u16,
    until: impl std::future::Future<Output = ()> + Send + 'static,
) {
    let (stop_tx, stop_rx) = watch::channel(false);
    let stopper = tokio::spawn(async move {
        until.await;
        let _ = stop_tx.send(true);
    });
    let ctx = Arc::new(Context::new(client.clone(), metrics.clone()));
    let sweeper = {
        let (client, metrics, mut stop) = (client.clone(), metrics.clone(), stop_rx.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(sweep_every);
            loop {
                tokio::select! {
                    _ = tick.tick() => sweep_once(&client, &metrics).await,
                    _ = wait_true(&mut stop) => break,
                }
            }
        })
    };
    let mut stop = stop_rx.clone();
    controller(client, concurrency)
        .graceful_shutdown_on(async move { wait_true(&mut stop).await })
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                // Object-level errors are already logged by error_policy; these are watch errors.
                warn!(error = %e, "controller event");
            }
        })
        .await;
    let _ = sweeper.await;
    let _ = stopper.await;
}

/// The kube-runtime controller with everything it watches.
pub fn controller(client: Client, concurrency: u16) -> Controller<ApprovalRequest> {
    let managed = watcher::Config::default().labels(&crate::labels::managed_selector());
    let ctrl = Controller::new(
        Api::<ApprovalRequest>::all(client.clone()),
        watcher::Config::default(),
    )
    .with_config(kube::runtime::controller::Config::default().concurrency(concurrency));
    let store = ctrl.store();
    ctrl.owns(Api::<RoleBinding>::all(client.clone()), managed.clone())
        // A OneTime request's Job: its end wakes the request at once.
        .owns(Api::<Job>::all(client.clone()), managed.clone())
        // Cluster-scoped bindings cannot carry an owner reference to a namespaced request.
        .watches(Api::<ClusterRoleBinding>::all(client.clone()), managed, |crb| {
            let labels = crb.labels();
            Some(
                ObjectRef::new(labels.get(crate::labels::REQUEST_NAME)?)
                    .within(labels.get(crate::labels::REQUEST_NAMESPACE)?),
            )
        })
        .watches(
            Api::<AccessReview>::all(client.clone()),
            watcher::Config::default(),
            // A certification review (no spec.request) never wakes a request.
            |review| Some(ObjectRef::new(&review.spec.request.as_ref()?.name).within(&review.namespace()?)),
        )
        // A request that extends another wakes the old one, which then ends as Superseded.
        .watches(
            Api::<ApprovalRequest>::all(client.clone()),
            watcher::Config::default(),
            |r| Some(ObjectRef::new(r.spec.extends.as_ref()?).within(&r.namespace()?)),
        )
        // A new or changed policy re-evaluates the requests not yet decided.
        .watches(
            Api::<AccessPolicy>::all(client),
            watcher::Config::default(),
            move |_| {
                store
                    .state()
                    .iter()
                    .filter(|r| {
                        r.status
                            .as_ref()
                            .is_none_or(|s| s.phase == Phase::Pending && s.requirements.is_none())
                    })
                    .map(|r| ObjectRef::from_obj(r.as_ref()))
                    .collect::<Vec<_>>()
            },
        )
}

async fn sweep_once(client: &Client, metrics: &Metrics) {
    let now = chrono::Utc::now();
    match grant::sweep(client, now).await {
        Ok(n) => {
            metrics.swept.inc_by(n as u64);
            if n > 0 {
                info!(removed = n, "sweep removed bindings");
            }
        }
        Err(e) => warn!(error = %e, "sweep failed; will retry"),
    }
    let lp = ListParams::default();
    if let Ok(list) = Api::<ApprovalRequest>::all(client.clone()).list(&lp).await {
        metrics.requests.clear();
        for r in &list.items {
            let phase = r.status.as_ref().map(|s| s.phase).unwrap_or_default();
            metrics
                .requests
                .get_or_create(&super::metrics::PhaseLabel {
                    phase: phase.as_str().into(),
                })
                .inc();
        }
    }
    let managed = lp.labels(&crate::labels::managed_selector());
    let rb = Api::<RoleBinding>::all(client.clone())
        .list_metadata(&managed)
        .await
        .map(|l| l.items.len());
    let crb = Api::<ClusterRoleBinding>::all(client.clone())
        .list_metadata(&managed)
        .await
        .map(|l| l.items.len());
    if let (Ok(a), Ok(b)) = (rb, crb) {
        metrics.active_grants.set((a + b) as i64);
    }
}
