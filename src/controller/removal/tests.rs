//! The lane after a (re)start, against an API server played by the test: the
//! first expired RoleBinding is deleted while the list of RoleBindings is
//! still under way, not once it is complete.

use std::{
    collections::BTreeMap,
    convert::Infallible,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef};
use kube::{client::Body, Client};
use serde_json::{json, Value};
use tokio::sync::{watch, Notify};

use crate::{
    api::ApprovalRequest,
    controller::watch::{Hub, Loop, WatchSettings},
    labels::EXPIRES_AT,
    metrics::Metrics,
    store::Cache,
};

fn binding(name: &str, expires: &str) -> Value {
    let mut owner = ApprovalRequest::new("dana-view", Default::default());
    owner.metadata.namespace = Some("team".into());
    owner.metadata.uid = Some("req-uid".into());
    let mut metadata = crate::labels::owned_metadata(
        &owner,
        name,
        Some("team"),
        BTreeMap::from([(EXPIRES_AT.to_string(), expires.to_string())]),
    );
    metadata.uid = Some(format!("{name}-uid"));
    metadata.resource_version = Some("5".into());
    let rb = RoleBinding {
        metadata,
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "ClusterRole".into(),
            name: "view".into(),
        },
        subjects: None,
    };
    let mut v = serde_json::to_value(rb).unwrap();
    v["apiVersion"] = json!("rbac.authorization.k8s.io/v1");
    v["kind"] = json!("RoleBinding");
    v
}

fn page(item: Value, next: Option<&str>) -> Value {
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBindingList",
        "metadata": {"resourceVersion": "9", "continue": next.unwrap_or_default()},
        "items": [item]
    })
}

fn answer(v: Value) -> Response<Full<Bytes>> {
    Response::new(Full::new(Bytes::from(v.to_string())))
}

/// The API server: RoleBindings in two pages of one, the second answered only
/// once the expired binding of the first was deleted (or after 20 s); watches
/// never answer. Records what happened, in order.
fn api_server(log: Arc<Mutex<Vec<String>>>) -> Client {
    let deleted = Arc::new(Notify::new());
    let service = tower::service_fn(move |req: Request<Body>| {
        let (log, deleted) = (log.clone(), deleted.clone());
        async move {
            let uri = req.uri().to_string();
            let method = req.method().clone();
            let note = |what: String| log.lock().unwrap().push(what);
            if method == http::Method::DELETE {
                note(format!("DELETE {}", req.uri().path()));
                deleted.notify_one();
                return Ok::<_, Infallible>(answer(
                    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success"}),
                ));
            }
            if uri.contains("watch=true") {
                std::future::pending::<()>().await;
            }
            if uri.contains("continue=page-2") {
                let _ = tokio::time::timeout(Duration::from_secs(20), deleted.notified()).await;
                note("page 2 answered: the list is complete".into());
                return Ok(answer(page(binding("live", "2099-01-01T00:00:00Z"), None)));
            }
            note("page 1 answered".into());
            Ok(answer(page(
                binding("expired", "2026-01-01T00:00:00Z"),
                Some("page-2"),
            )))
        }
    });
    Client::new(service, "default")
}

#[tokio::test]
async fn after_a_restart_the_first_expired_binding_is_removed_before_the_list_is_complete() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = api_server(log.clone());
    let (cache, writers) = Cache::new();
    let metrics = Arc::new(Metrics::default());
    let settings = WatchSettings {
        page_size: 1,
        request_timeout: Duration::from_secs(60),
        ..WatchSettings::default()
    };
    let list = tokio::spawn(
        Loop::new(
            client.clone(),
            cache.clone(),
            writers.role_bindings,
            Arc::new(Hub::default()),
            metrics.clone(),
            settings,
        )
        .run(),
    );
    let (_leads, leading) = watch::channel(true);
    let lane = tokio::spawn(super::lane::run(
        client,
        cache.clone(),
        metrics,
        leading,
        chrono::Utc::now,
    ));
    let complete = tokio::time::timeout(Duration::from_secs(30), async {
        while !log.lock().unwrap().iter().any(|l| l.starts_with("page 2")) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    list.abort();
    lane.abort();
    assert!(
        complete.is_ok(),
        "the list never completed: {:?}",
        log.lock().unwrap()
    );
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "page 1 answered",
            "DELETE /apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings/expired",
            "page 2 answered: the list is complete",
        ],
    );
}
