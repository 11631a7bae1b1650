//! The in-process fake API server the controller and plugin tests share.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use gatehouse::{
    api::{AccessPolicy, AccessReview, ApprovalRequest},
    controller::{metrics::Metrics, Context},
};
use kube::{
    api::PostParams,
    runtime::events::{Recorder, Reporter},
    Api, Client,
};
use kube_fake_client::{interceptor::Funcs, ClientBuilder};

/// A fake API server serving the three Gatehouse kinds (with status
/// subresources), holding `extra` objects, with `funcs` intercepting calls.
pub async fn fake_api(extra: Vec<serde_json::Value>, funcs: Funcs) -> Client {
    ClientBuilder::new()
        .with_resource::<AccessPolicy>()
        .with_resource::<ApprovalRequest>()
        .with_resource::<AccessReview>()
        .with_status_subresource::<AccessPolicy>()
        .with_status_subresource::<ApprovalRequest>()
        .with_status_subresource::<AccessReview>()
        .with_runtime_objects(extra)
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap()
}

/// kube-fake-client registers every custom resource as namespaced, so the
/// (cluster-scoped) policy is stored under a placeholder namespace; listing
/// policies across all namespaces finds it either way.
pub async fn create_policy(client: &Client, policy: &AccessPolicy) {
    let resource = kube::core::ApiResource::erase::<AccessPolicy>(&());
    let api: Api<kube::core::DynamicObject> =
        Api::namespaced_with(client.clone(), "fake-cluster-scope", &resource);
    let obj: kube::core::DynamicObject =
        serde_json::from_value(serde_json::to_value(policy).unwrap()).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A controller context on the fake, reading the test's clock. A new one is what
/// an operator restart starts with: no backoff state, fresh metrics.
#[allow(dead_code)] // the plugin suite runs no controller
pub fn test_context(client: &Client, clock: &Arc<Mutex<DateTime<Utc>>>) -> Arc<Context> {
    let clock = clock.clone();
    Arc::new(Context {
        client: client.clone(),
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: "gatehouse".into(),
                instance: None,
            },
        ),
        metrics: Arc::new(Metrics::default()),
        failures: Default::default(),
        clock: Arc::new(move || *clock.lock().unwrap()),
    })
}
