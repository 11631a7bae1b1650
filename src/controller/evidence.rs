//! Usage evidence in the operator: the audit webhook receiver, the flush of
//! its counts to `BindingUsage` objects, and the refresh of what certification
//! reads, started together when `--audit-webhook-addr` is set. At shutdown the
//! flush writes what it holds once more; `run` waits for it.

use std::{sync::Arc, time::Duration as StdDuration};

use kube::Client;
use tokio::sync::watch;
use tracing::info;

use super::{
    args::RunArgs,
    run::{go_duration, RunError},
};
use crate::metrics::Metrics;

/// The usage evidence of a running operator.
pub(super) struct Evidence {
    /// What the reconcilers read, and how often it is refreshed.
    pub usage: (Arc<crate::audit::UsageState>, StdDuration),
    /// The flush task: it ends after its last flush, once shutdown is asked.
    pub flush: tokio::task::JoinHandle<()>,
}

/// Starts the audit webhook receiver when `--audit-webhook-addr` is set, and the
/// task that folds its evidence into what certification reads every flush
/// interval.
pub(super) async fn start(
    client: &Client,
    args: &RunArgs,
    metrics: &Arc<Metrics>,
    shutdown: &watch::Receiver<bool>,
) -> Result<Option<Evidence>, RunError> {
    let Some(addr) = args.audit_webhook_addr else {
        return Ok(None);
    };
    let flush = go_duration("usage-flush-interval", &args.usage_flush_interval)?;
    let flag = |flag: &'static str, message: String| RunError::Flag { flag, message };
    let (Some(cert), Some(key)) = (&args.audit_tls_cert, &args.audit_tls_key) else {
        return Err(flag(
            "audit-tls-cert",
            "the audit webhook needs --audit-tls-cert and --audit-tls-key".into(),
        ));
    };
    let creds = crate::audit::Credentials {
        cert: cert.clone(),
        key: key.clone(),
        client_ca: args.audit_client_ca.clone(),
        token_file: args.audit_token_file.clone(),
    };
    let settings = crate::usage::Settings {
        retention_days: args.usage_retention_days,
        max_pairs: args.usage_max_pairs,
        ..Default::default()
    };
    let state = Arc::new(crate::audit::UsageState::new(settings));
    let webhook = crate::audit::AuditWebhook::new(&creds, state.clone(), metrics.clone())
        .map_err(|e| flag("audit-webhook-addr", e.to_string()))?;
    let bound = webhook
        .serve(addr, shutdown.clone())
        .await
        .map_err(|e| flag("audit-webhook-addr", e.to_string()))?;
    info!(addr = %bound, flush = ?flush, "serving the audit webhook on /audit");
    // The index is rebuilt and open items looked at again every half interval: a
    // request shows on its item within one flush interval.
    let half = (flush / 2).max(StdDuration::from_secs(1));
    let namespace = args
        .usage_namespace
        .clone()
        .unwrap_or_else(|| args.lease_namespace.clone());
    let flush_task = tokio::spawn(super::usage_flush::run(
        client.clone(),
        namespace,
        state.clone(),
        metrics.clone(),
        flush,
        shutdown.clone(),
    ));
    let refreshing = state.clone();
    tokio::spawn(async move {
        loop {
            refreshing.refresh(chrono::Utc::now());
            tokio::time::sleep(half).await;
        }
    });
    Ok(Some(Evidence {
        usage: (state, half),
        flush: flush_task,
    }))
}
