//! The in-process fake API server the controller and plugin tests share.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use gatehouse::{
    api::{AccessCampaign, AccessCertification, AccessPolicy, AccessReview, ApprovalRequest},
    controller::{
        cache::{Cache, Writers},
        metrics::Metrics,
        watch::load_once,
        Context,
    },
};
use kube::{api::PostParams, Api, Client};
use kube_fake_client::{interceptor::Funcs, ClientBuilder};

/// A fake API server serving the Gatehouse kinds (with status
/// subresources), holding `extra` objects, with `funcs` intercepting calls.
pub async fn fake_api(extra: Vec<serde_json::Value>, funcs: Funcs) -> Client {
    ClientBuilder::new()
        .with_resource::<AccessPolicy>()
        .with_resource::<ApprovalRequest>()
        .with_resource::<AccessReview>()
        .with_resource::<AccessCampaign>()
        .with_resource::<AccessCertification>()
        .with_status_subresource::<AccessPolicy>()
        .with_status_subresource::<ApprovalRequest>()
        .with_status_subresource::<AccessReview>()
        .with_status_subresource::<AccessCampaign>()
        .with_status_subresource::<AccessCertification>()
        .with_runtime_objects(extra)
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap()
}

/// kube-fake-client registers every custom resource as namespaced, so the
/// (cluster-scoped) policy is stored under a placeholder namespace; listing
/// policies across all namespaces finds it either way.
#[allow(dead_code)] // the certify plugin suite has no policy
pub async fn create_policy(client: &Client, policy: &AccessPolicy) {
    let resource = kube::core::ApiResource::erase::<AccessPolicy>(&());
    let api: Api<kube::core::DynamicObject> =
        Api::namespaced_with(client.clone(), "fake-cluster-scope", &resource);
    let obj: kube::core::DynamicObject =
        serde_json::from_value(serde_json::to_value(policy).unwrap()).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// What the operator holds in memory, filled from the fake on demand: the fake
/// has no watch, so a test fills memory before each reconcile, as synced watches
/// would have.
#[allow(dead_code)] // the plugin suite runs no controller
pub struct Memory {
    client: Client,
    cache: Arc<Cache>,
    writers: tokio::sync::Mutex<Writers>,
}

#[allow(dead_code)]
impl Memory {
    /// Lists everything from the fake into memory. Not Namespaces: the fake
    /// cannot serve a list of a cluster-scoped kind named `namespaces` (it reads
    /// the path as a namespaced one); no test here selects namespaces by label.
    pub async fn fill(&self) {
        let (client, cache) = (&self.client, &self.cache);
        let w = &mut *self.writers.lock().await;
        load_once(client, cache, &mut w.requests).await.unwrap();
        load_once(client, cache, &mut w.reviews).await.unwrap();
        load_once(client, cache, &mut w.policies).await.unwrap();
        load_once(client, cache, &mut w.role_bindings).await.unwrap();
        load_once(client, cache, &mut w.cluster_role_bindings)
            .await
            .unwrap();
        load_once(client, cache, &mut w.jobs).await.unwrap();
        load_once(client, cache, &mut w.service_accounts).await.unwrap();
    }
}

/// A controller context on the fake, reading the test's clock, and the memory it
/// reads from. A new one is what an operator restart starts with: nothing in
/// memory, no backoff state, fresh metrics.
#[allow(dead_code)] // the plugin suite runs no controller
pub fn test_context(client: &Client, clock: &Arc<Mutex<DateTime<Utc>>>) -> (Arc<Context>, Arc<Memory>) {
    let clock = clock.clone();
    let (cache, writers) = Cache::new();
    let ctx = Context::new(
        client.clone(),
        cache.clone(),
        Arc::new(Metrics::default()),
        Arc::new(move || *clock.lock().unwrap()),
    );
    let memory = Memory {
        client: client.clone(),
        cache,
        writers: tokio::sync::Mutex::new(writers),
    };
    (Arc::new(ctx), Arc::new(memory))
}
