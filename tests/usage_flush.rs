//! The flush of usage counts to `BindingUsage` objects, against the in-process
//! fake API server: counts gathered since the last flush are written at
//! shutdown, and a write whose answer is lost is not added twice.

use std::{
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use gatehouse::{
    api::BindingUsage,
    audit::UsageState,
    controller::usage_flush::{self, Flusher},
    metrics::Metrics,
    usage::{AuditEvent, Settings},
};
use kube::{api::Api, runtime::reflector, Client};
use kube_fake_client::{interceptor::Funcs, ClientBuilder};
use serde_json::json;

const NS: &str = "gatehouse-system";

async fn fake(funcs: Funcs) -> Client {
    ClientBuilder::new()
        .with_resource::<BindingUsage>()
        .with_status_subresource::<BindingUsage>()
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap()
}

/// `n` requests by alice through the RoleBinding payments/deployers, a second
/// apart from `at`.
fn uses(n: usize, at: chrono::DateTime<chrono::Utc>) -> Vec<AuditEvent> {
    (0..n)
        .map(|i| {
            serde_json::from_value(json!({
                "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
                "auditID": format!("a{i}"), "stage": "ResponseComplete", "verb": "get",
                "requestURI": "/api/v1/namespaces/payments/pods/web",
                "user": {"username": "alice", "groups": ["dev"]},
                "objectRef": {"resource": "pods", "namespace": "payments", "apiVersion": "v1"},
                "responseStatus": {"code": 200},
                "stageTimestamp": (at + chrono::Duration::seconds(i as i64)).to_rfc3339(),
                "annotations": {
                    "authorization.k8s.io/decision": "allow",
                    "authorization.k8s.io/reason": "RBAC: allowed by RoleBinding \"deployers/payments\" of ClusterRole \"edit\" to User \"alice\""
                }
            }))
            .unwrap()
        })
        .collect()
}

/// The requests the stored summaries hold, all bindings.
async fn stored_requests(client: &Client) -> u64 {
    let list = Api::<BindingUsage>::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    list.items
        .iter()
        .filter_map(|o| o.status.as_ref())
        .map(|s| s.requests)
        .sum()
}

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-03-02T10:05:00Z".parse().unwrap()
}

#[tokio::test]
async fn counts_since_the_last_flush_are_written_at_shutdown() {
    let client = fake(Funcs::new()).await;
    let state = Arc::new(UsageState::new(Settings::default()));
    let metrics = Arc::new(Metrics::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    // A flush interval no test waits for: only the shutdown can write.
    let flush = tokio::spawn(usage_flush::run(
        client.clone(),
        NS.into(),
        state.clone(),
        metrics.clone(),
        Duration::from_secs(3600),
        shutdown,
    ));
    // Requests of the last minute: the summary keeps 90 days.
    state.ingest(&uses(3, chrono::Utc::now() - chrono::Duration::minutes(1)), 0);
    stop.send(true).unwrap();
    tokio::time::timeout(usage_flush::FINAL_FLUSH + Duration::from_secs(5), flush)
        .await
        .expect("the flush ends after shutdown")
        .unwrap();
    assert_eq!(stored_requests(&client).await, 3);
    let m = metrics.render();
    assert!(
        m.contains("gatehouse_usage_flush_writes_total{outcome=\"written\"} 1"),
        "{m}"
    );
    assert!(m.contains("gatehouse_usage_unwritten_bindings 0"), "{m}");
}

#[tokio::test]
async fn a_write_applied_whose_answer_is_lost_is_not_added_again() {
    // The first status write is applied, and then its answer is lost.
    let lost = Arc::new(AtomicUsize::new(0));
    let seen = lost.clone();
    let funcs = Funcs::new().replace_status(move |ctx| {
        if seen.fetch_add(1, Ordering::SeqCst) == 0 {
            let obj: BindingUsage = serde_json::from_value(ctx.object.clone()).unwrap();
            ctx.client.update_status(ctx.namespace, &obj, ctx.params).unwrap();
            return Err(kube_fake_client::Error::Internal("connection reset".into()));
        }
        Ok(None)
    });
    let client = fake(funcs).await;
    let state = Arc::new(UsageState::new(Settings::default()));
    state.load(Vec::new(), None);
    let metrics = Arc::new(Metrics::default());
    let (store, _writer) = reflector::store::<BindingUsage>();
    let mut flusher = Flusher::new(
        client.clone(),
        NS,
        store,
        state.clone(),
        metrics.clone(),
        "gatehouse-0/test".into(),
    );
    state.ingest(&uses(5, now() - chrono::Duration::minutes(5)), 0);
    let first = flusher.flush(now()).await;
    assert_eq!(first.failed, 1, "the operator saw the write fail");
    assert_eq!(stored_requests(&client).await, 5, "but it was applied");
    state.ingest(&uses(2, now() - chrono::Duration::minutes(1)), 0);
    let second = flusher.flush(now()).await;
    assert_eq!(second.failed, 0);
    assert_eq!(
        stored_requests(&client).await,
        7,
        "the lost write's 5 are added once"
    );
    // Nothing left to write: a further flush adds nothing.
    flusher.flush(now()).await;
    assert_eq!(stored_requests(&client).await, 7);
    let m = metrics.render();
    assert!(
        m.contains("gatehouse_usage_flush_writes_total{outcome=\"failed\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("gatehouse_usage_flush_writes_total{outcome=\"written\"} 1"),
        "{m}"
    );
}
