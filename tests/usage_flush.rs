//! The flush of usage counts to `BindingUsage` objects, against the in-process
//! fake API server: counts gathered since the last flush are written at
//! shutdown, a write whose answer is lost is not added twice, and another
//! replica's write is joined.

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
    controller::{
        usage_flush::{self, Flusher},
        usage_versions::Versions,
    },
    metrics::Metrics,
    usage::{AuditEvent, Settings},
};
use kube::{api::Api, Client, ResourceExt};
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
    let mut flusher = Flusher::new(
        client.clone(),
        NS,
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

/// Every stored object's name and version, as the metadata watch reports them.
async fn versions(client: &Client) -> Versions {
    let v = Versions::default();
    let list = Api::<BindingUsage>::namespaced(client.clone(), NS)
        .list(&Default::default())
        .await
        .unwrap();
    for o in &list.items {
        v.set(&o.name_any(), &o.resource_version().unwrap());
    }
    v
}

/// The requests a replica knows of.
fn known(state: &UsageState) -> u64 {
    state.snapshot().pairs().iter().map(|(_, p)| p.requests()).sum()
}

#[tokio::test]
async fn another_replicas_write_is_joined_and_read_only_when_it_changed() {
    let gets = Arc::new(AtomicUsize::new(0));
    let counted = gets.clone();
    let client = fake(Funcs::new().get(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        Ok(None)
    }))
    .await;
    let replica = |writer: &str| {
        let state = Arc::new(UsageState::new(Settings::default()));
        let flusher = Flusher::new(
            client.clone(),
            NS,
            state.clone(),
            Arc::new(Metrics::default()),
            writer.into(),
        );
        (state, flusher)
    };
    let (a, mut fa) = replica("gatehouse-0/test");
    let (b, mut fb) = replica("gatehouse-1/test");
    assert_eq!(fa.load_stored().await.unwrap(), 0);
    assert_eq!(fb.load_stored().await.unwrap(), 0);
    // Replica a receives 5 requests and writes them.
    a.ingest(&uses(5, now() - chrono::Duration::minutes(5)), 0);
    assert_eq!(fa.flush(now()).await.written, 1);
    assert_eq!(known(&b), 0);
    // b learns of a's write from the watch, reads it and joins it.
    let seen = versions(&client).await;
    assert_eq!(fb.join_changed(&seen).await, 1);
    assert_eq!(known(&b), 5, "a's write is joined by b");
    // Unchanged since: not read again; a's own write is not read back by a.
    let before = gets.load(Ordering::SeqCst);
    assert_eq!(fb.join_changed(&seen).await, 0);
    assert_eq!(fa.join_changed(&seen).await, 0);
    assert_eq!(
        gets.load(Ordering::SeqCst),
        before,
        "no read of an unchanged object"
    );
    // b writes its own 2 on top (read before its write): both count, and a
    // joins b's write.
    b.ingest(&uses(2, now() - chrono::Duration::minutes(1)), 0);
    assert_eq!(fb.flush(now()).await.written, 1);
    assert_eq!(stored_requests(&client).await, 7);
    assert_eq!(fa.join_changed(&versions(&client).await).await, 1);
    assert_eq!(known(&a), 7);
    assert_eq!(known(&b), 7);
    // A restarted replica loads what is stored.
    let (c, mut fc) = replica("gatehouse-2/test");
    assert_eq!(fc.load_stored().await.unwrap(), 1);
    assert_eq!(known(&c), 7);
}
