//! `gatehouse run`: the operator process. Wires the HTTP endpoints, the watch
//! loops, leader election, the controller and the sweep; shuts down cleanly on
//! SIGTERM.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration as StdDuration, Instant},
};

use futures::StreamExt;
use kube::{
    client::ClientBuilder,
    runtime::{
        controller::{self, Controller},
        reflector::ObjectRef,
    },
    Api, Client, Config,
};
use thiserror::Error;
use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{
    api_count::ApiCountLayer,
    certify, error_policy, http,
    leader::{self, LeaseSettings},
    reconcile, removal,
    shell::log_outcome,
    sweep,
    watch::{Hub, WatchSettings},
    Context,
};
use crate::{api::ApprovalRequest, decide::duration, metrics::Metrics, store::Cache};

pub use super::args::RunArgs;

/// Why the operator could not run.
#[derive(Debug, Error)]
pub enum RunError {
    /// No kubeconfig or in-cluster configuration.
    #[error("cannot configure a Kubernetes client (kubeconfig or in-cluster): {0}")]
    Client(String),
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
}

/// How often a probe goes through the controller's queue (liveness).
const PROBE_EVERY: StdDuration = StdDuration::from_secs(10);
/// The probe's name can never be an object's (names cannot start with `-`).
const PROBE: &str = "-liveness-probe-";

/// A receiver that turns true on SIGTERM or Ctrl-C.
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

async fn wait_for(rx: &mut watch::Receiver<bool>, value: bool) {
    // A closed channel means the sender is gone: treat it as the value holding.
    let _ = rx.wait_for(|v| *v == value).await;
}

pub(super) fn go_duration(flag: &'static str, value: &str) -> Result<StdDuration, RunError> {
    duration::parse(value)
        .ok()
        .and_then(|d| d.to_std().ok())
        .filter(|d| !d.is_zero())
        .ok_or_else(|| RunError::Flag {
            flag,
            message: format!("{value:?} is not a positive Go duration"),
        })
}

/// A client that counts its requests. Every call gets a read deadline: a
/// connection that stops answering fails instead of hanging (watches are closed
/// by the server well before it, see [`WatchSettings`]).
async fn client(metrics: &Arc<Metrics>) -> Result<Client, RunError> {
    let mut config = Config::infer()
        .await
        .map_err(|e| RunError::Client(e.to_string()))?;
    config.read_timeout = Some(StdDuration::from_secs(90));
    let builder = ClientBuilder::try_from(config).map_err(|e| RunError::Client(e.to_string()))?;
    Ok(builder.with_layer(&ApiCountLayer::new(metrics.clone())).build())
}

/// Who the operator is, as the API server authenticates it (SelfSubjectReview,
/// which every authenticated user may make): certification never removes
/// this identity's access. Asked a few times; `None` when there is no answer,
/// and then certification removes nothing itself.
async fn whoami(client: &Client) -> Option<crate::certify::OperatorIdentity> {
    use k8s_openapi::api::authentication::v1::SelfSubjectReview;
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    for attempt in 1..=5u32 {
        match api
            .create(&Default::default(), &SelfSubjectReview::default())
            .await
        {
            Ok(review) => {
                let user = review.status.and_then(|s| s.user_info).unwrap_or_default();
                let Some(username) = user.username.filter(|u| !u.is_empty()) else {
                    warn!("SelfSubjectReview named no user; certification will remove nothing itself");
                    return None;
                };
                info!(user = %username, "the operator's identity");
                return Some(crate::certify::OperatorIdentity {
                    username,
                    groups: user.groups.unwrap_or_default(),
                });
            }
            Err(e) => {
                warn!(error = %e, attempt, "cannot learn the operator's identity (SelfSubjectReview)");
                tokio::time::sleep(StdDuration::from_secs(u64::from(attempt))).await;
            }
        }
    }
    warn!("the operator's identity is unknown; certification will remove nothing itself");
    None
}

static STARTED: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// When this process started running the operator (the first call, made first
/// thing in [`run`]): what the start-up log lines count from.
pub fn started() -> Instant {
    *STARTED.get_or_init(Instant::now)
}

/// Runs the operator until SIGTERM.
pub async fn run(args: RunArgs) -> Result<(), RunError> {
    started();
    let sweep_every = go_duration("sweep-interval", &args.sweep_interval)?;
    let lease_duration = go_duration("lease-duration", &args.lease_duration)?;
    let catch_up = go_duration("notify-catch-up", &args.notify_catch_up)?;
    let min_window = go_duration(
        "certification-min-review-window",
        &args.certification_min_review_window,
    )?;
    let notify = args.notifications.then(|| {
        let mut s = crate::notify::Settings::new(&args.lease_namespace);
        s.catch_up = chrono::Duration::from_std(catch_up).unwrap_or(s.catch_up);
        s.destinations.allow_private = args.notify_allow_private_destinations;
        s
    });
    let metrics = Arc::new(Metrics::default());
    let client = client(&metrics).await?;
    let shutdown = shutdown_signal();

    let (cache, writers) = Cache::new();
    let hub = Arc::new(Hub::default());
    let watches = writers.spawn(&client, &cache, &hub, &metrics, WatchSettings::default());
    // Expired grants are removed on time by every replica, leader or not, and
    // from the first page of RoleBindings on: nothing below (the HTTP server,
    // the audit webhook, the operator's identity, the Lease) holds it up.
    let (leading_tx, leading) = watch::channel(!args.leader_election);
    let lane = tokio::spawn(removal::lane::run(
        client.clone(),
        cache.clone(),
        metrics.clone(),
        leading.clone(),
        chrono::Utc::now,
    ));

    let listener = tokio::net::TcpListener::bind(args.http_addr)
        .await
        .map_err(|source| RunError::Listen {
            addr: args.http_addr,
            source,
        })?;
    let mut http_shutdown = shutdown.clone();
    let http = http::serve(listener, metrics.clone(), cache.health.clone(), async move {
        wait_for(&mut http_shutdown, true).await
    });
    info!(addr = %args.http_addr, "serving /metrics, /healthz, /readyz");
    let evidence = super::evidence::start(&client, &args, &metrics, &shutdown).await?;
    let (usage, usage_flush) = match evidence {
        Some(e) => (Some(e.usage), Some(e.flush)),
        None => (None, None),
    };
    let identity = whoami(&client).await;

    let operator = Operator {
        client: client.clone(),
        cache: cache.clone(),
        hub,
        metrics,
        sweep_every,
        concurrency: args.concurrency,
        certification: certify::Settings {
            remediation: args.certification_remediation,
            create_parallelism: usize::from(args.certification_launch_parallelism.max(1)),
            min_review_window: chrono::Duration::from_std(min_window).unwrap_or(chrono::Duration::MAX),
            ..Default::default()
        },
        identity,
        certification_concurrency: args.certification_concurrency,
        notify,
        protected_namespaces: crate::decide::protected::protected_namespaces(
            &args.lease_namespace,
            &args.allow_grants_in,
        ),
        usage,
    };
    info!(namespaces = ?operator.protected_namespaces, "nothing is granted in these protected namespaces");
    if args.leader_election {
        let identity =
            std::env::var("POD_NAME").unwrap_or_else(|_| format!("gatehouse-{}", std::process::id()));
        let settings =
            LeaseSettings::with_duration(&args.lease_name, &args.lease_namespace, &identity, lease_duration);
        let mut leading = leading;
        // The election stops (and releases the Lease) only after this replica
        // stopped acting, not at SIGTERM: two replicas never act at once.
        let (release, release_rx) = watch::channel(false);
        let election = tokio::spawn(leader::elect(client, settings, leading_tx, release_rx));
        let mut stop = shutdown.clone();
        loop {
            info!(identity = %identity, lease = %args.lease_name, "waiting to become the leader");
            // Meanwhile the removal lane removes expired grants (and nothing
            // else is done).
            tokio::select! {
                _ = wait_for(&mut leading, true) => {},
                _ = wait_for(&mut stop, true) => break,
            }
            if !*leading.borrow() {
                continue;
            }
            let mut lost = leading.clone();
            operator
                .act(shutdown.clone(), async move { wait_for(&mut lost, false).await })
                .await;
            if *shutdown.borrow() {
                break;
            }
        }
        // Nothing acts any more: the election task releases the Lease, for the
        // next replica.
        info!(
            margin_ms = leader::RELEASE_MARGIN.as_millis() as u64,
            "stopped acting; releasing the lease after the margin"
        );
        let _ = release.send(true);
        let _ = election.await;
        lane.abort();
    } else {
        // Leads alone: the sender stays here, true, until the end.
        let _leading = (leading_tx, leading);
        operator.act(shutdown.clone(), std::future::pending()).await;
        lane.abort();
    }
    for w in watches {
        w.abort();
    }
    // The usage counts gathered since the last flush are written before the
    // process ends (bounded by usage_flush::FINAL_FLUSH).
    if let Some(f) = usage_flush {
        let _ = f.await;
    }
    let _ = http.await;
    info!("stopped");
    Ok(())
}

/// What acting needs.
struct Operator {
    client: Client,
    cache: Arc<Cache>,
    hub: Arc<Hub>,
    metrics: Arc<Metrics>,
    sweep_every: StdDuration,
    concurrency: u16,
    certification: certify::Settings,
    /// Who the operator is, as the API server says.
    identity: Option<crate::certify::OperatorIdentity>,
    certification_concurrency: u16,
    /// Notifier settings; `None`: notifications are off.
    notify: Option<crate::notify::Settings>,
    /// Where nothing is granted (the operator's namespace, kube-system).
    protected_namespaces: Vec<String>,
    /// Usage evidence from the audit webhook, and its refresh interval.
    usage: Option<(Arc<crate::audit::UsageState>, StdDuration)>,
}

impl Operator {
    /// Runs the controller and the sweep until `shutdown` turns true (in-flight
    /// reconciles finish) or `fence` resolves (leadership lost: everything stops
    /// at once, in-flight reconciles are cancelled, so nothing acts after the
    /// renew deadline).
    async fn act(&self, shutdown: watch::Receiver<bool>, fence: impl std::future::Future<Output = ()>) {
        let health = self.cache.health.clone();
        let mut stop = shutdown.clone();
        let started = Instant::now();
        // Decide nothing on a half-filled memory.
        while !health.synced() {
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_millis(100)) => {}
                _ = wait_for(&mut stop, true) => return,
            }
        }
        info!(
            waited_ms = started.elapsed().as_millis() as u64,
            "memory synced; reconciling every request"
        );
        health.controller_reset(Some(Instant::now()));
        let triggers = self.hub.requests.connect();
        let everything: Vec<ObjectRef<ApprovalRequest>> = self
            .cache
            .requests
            .state()
            .iter()
            .map(|r| crate::store::key_of(r.as_ref()))
            .collect();
        self.hub.requests.wake(everything);
        let mut ctx = Context::new(
            self.client.clone(),
            self.cache.clone(),
            self.metrics.clone(),
            Arc::new(chrono::Utc::now),
        );
        ctx.protected_namespaces = self.protected_namespaces.clone();
        ctx.usage = self.usage.as_ref().map(|(u, _)| u.clone());
        // The notifier runs while this replica leads, like the controller.
        let notifier = self.notify.clone().and_then(|settings| {
            let started = crate::notify::Notifier::start(
                self.client.clone(),
                self.cache.clone(),
                self.metrics.clone(),
                settings,
                Arc::new(chrono::Utc::now),
            );
            match started {
                Ok((handle, task)) => {
                    ctx.notify = handle;
                    Some(task)
                }
                Err(e) => {
                    error!(error = %e, "cannot start notifications");
                    None
                }
            }
        });
        let certification = self.certification_controllers(shutdown.clone(), ctx.notify.clone());
        let ctx = Arc::new(ctx);
        let sweeper = tokio::spawn(sweep_loop(self.client.clone(), ctx.clone(), self.sweep_every));
        let watchdog = tokio::spawn(watchdog(ctx.clone(), self.hub.clone()));
        let queue =
            futures::stream::unfold(triggers, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) });
        let probes = futures::stream::unfold((), |()| async {
            tokio::time::sleep(PROBE_EVERY).await;
            Some((ObjectRef::new(PROBE).within(PROBE), ()))
        });
        let mut graceful = shutdown.clone();
        let controller = Controller::for_stream(futures::stream::pending(), self.cache.requests.clone())
            .with_config(controller::Config::default().concurrency(self.concurrency))
            .reconcile_on(queue)
            .reconcile_on(probes)
            .graceful_shutdown_on(async move { wait_for(&mut graceful, true).await })
            .run(reconcile, error_policy, ctx)
            .for_each(|res| {
                let health = health.clone();
                async move {
                    match res {
                        Err(controller::Error::ObjectNotFound(r)) if r.name == PROBE => {
                            health.controller_progressed(Instant::now())
                        }
                        res => log_outcome(res),
                    }
                }
            });
        tokio::pin!(fence);
        let mut fenced = false;
        tokio::select! {
            _ = controller => {}
            _ = &mut fence => fenced = true,
        }
        if fenced {
            warn!("leadership lost: stopped acting");
        }
        sweeper.abort();
        watchdog.abort();
        for mut c in certification {
            // On SIGTERM their in-flight reconciles finish (graceful shutdown),
            // for 10 s at most and only while this replica still leads; when
            // leadership is lost they stop at once. Either way the task is
            // ended before this returns: the Lease is released only after.
            if *shutdown.borrow() && !fenced {
                tokio::select! {
                    ended = tokio::time::timeout(StdDuration::from_secs(10), &mut c) => {
                        if ended.is_ok() {
                            continue;
                        }
                    }
                    _ = &mut fence => fenced = true,
                }
            }
            c.abort();
            let _ = c.await;
        }
        if let Some(n) = notifier {
            n.abort();
            let _ = n.await;
        }
        // Aborted above; awaited here so that nothing of this term of
        // leadership is left running when this returns.
        let _ = sweeper.await;
        let _ = watchdog.await;
        self.hub.requests.disconnect();
        self.hub.items.disconnect();
        self.hub.campaigns.disconnect();
        self.cache.health.controller_reset(None);
    }

    /// The campaign and item controllers, each a task of its own with its own
    /// queue and workers: a launch of thousands of items, or a run falling due,
    /// takes nothing from the requests' controller.
    fn certification_controllers(
        &self,
        shutdown: watch::Receiver<bool>,
        notify: crate::notify::Notifier,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut ctx = certify::Context::new(
            self.client.clone(),
            self.cache.clone(),
            self.metrics.clone(),
            Arc::new(chrono::Utc::now),
            self.certification,
        );
        ctx.notify = notify;
        ctx.identity = self.identity.clone();
        ctx.usage = self.usage.clone();
        let ctx = Arc::new(ctx);
        let items = queue(&self.hub.items, self.cache.items.state());
        let campaigns = queue(&self.hub.campaigns, self.cache.campaigns.state());
        let mut graceful = shutdown.clone();
        let item_controller = Controller::for_stream(futures::stream::pending(), self.cache.items.clone())
            .with_config(controller::Config::default().concurrency(self.certification_concurrency))
            .reconcile_on(items)
            .graceful_shutdown_on(async move { wait_for(&mut graceful, true).await })
            .run(
                certify::reconcile_item,
                certify::item::item_error_policy,
                ctx.clone(),
            )
            .for_each(|res| async move { log_outcome(res) });
        let mut graceful = shutdown;
        // Item changes wake their campaign by the thousand during a launch or at
        // a due time: one reconcile a second is enough for the counts.
        let campaign_controller =
            Controller::for_stream(futures::stream::pending(), self.cache.campaigns.clone())
                .with_config(
                    controller::Config::default()
                        .concurrency(2)
                        .debounce(StdDuration::from_secs(1)),
                )
                .reconcile_on(campaigns)
                .graceful_shutdown_on(async move { wait_for(&mut graceful, true).await })
                .run(
                    certify::reconcile_campaign,
                    certify::campaign::campaign_error_policy,
                    ctx,
                )
                .for_each(|res| async move { log_outcome(res) });
        vec![tokio::spawn(item_controller), tokio::spawn(campaign_controller)]
    }
}

/// Connects a controller's trigger queue and wakes every object it holds.
fn queue<K>(
    triggers: &super::watch::Triggers<K>,
    all: Vec<Arc<K>>,
) -> impl futures::Stream<Item = ObjectRef<K>> + Send + 'static
where
    K: kube::Resource<DynamicType = ()> + Send + Sync + 'static,
{
    let rx = triggers.connect();
    triggers.wake(all.iter().map(|o| crate::store::key_of(o.as_ref())).collect());
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|r| (r, rx)) })
}

/// Belt and braces for the scheduler: every second, wakes the requests whose
/// deadline (an expiry, a start, a window edge) passed five seconds ago without a
/// reconcile. A burst of thousands of deadlines at once is worked off within a
/// few seconds; one found here is a wake-up the scheduler lost.
async fn watchdog(ctx: Arc<Context>, hub: Arc<Hub>) {
    let mut tick = tokio::time::interval(StdDuration::from_secs(1));
    loop {
        tick.tick().await;
        let late = ctx.overdue((ctx.clock)(), chrono::Duration::seconds(5));
        if late.is_empty() {
            continue;
        }
        warn!(
            requests = late.len(),
            "deadlines passed without a reconcile; waking them"
        );
        ctx.metrics.watchdog_wakes.inc_by(late.len() as u64);
        let refs = late
            .iter()
            .filter_map(|k| k.split_once('/'))
            .map(|(ns, name)| ObjectRef::new(name).within(ns))
            .collect();
        hub.requests.wake(refs);
    }
}

async fn sweep_loop(client: Client, ctx: Arc<Context>, every: StdDuration) {
    let (cache, metrics) = (&ctx.cache, &ctx.metrics);
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        // Notes of writes to objects that are gone are not needed any more.
        ctx.superseded.retain(|key| {
            key.split_once('/')
                .is_some_and(|(ns, name)| cache.request(ns, name).is_some())
        });
        ctx.written_verdict.retain(|key| {
            key.split_once('/')
                .is_some_and(|(ns, name)| cache.reviews.get(&ObjectRef::new(name).within(ns)).is_some())
        });
        match sweep::sweep(&client, cache, chrono::Utc::now()).await {
            Ok(n) => {
                metrics.swept.inc_by(n as u64);
                if n > 0 {
                    info!(removed = n, "sweep removed bindings");
                }
            }
            Err(e) => warn!(error = %e, "sweep failed; will retry"),
        }
        sweep::refresh_gauges(cache, metrics);
    }
}
