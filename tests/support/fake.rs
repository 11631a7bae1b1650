//! The in-process fake API server (kube-fake-client) the controller and plugin
//! tests share, and a rig around it: the fake, a clock the test sets, and the
//! controller context that reads it.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use gatehouse::{
    api::{AccessCampaign, AccessCertification, AccessPolicy, AccessReview, ApprovalRequest},
    controller::{watch::load_once, Context},
    metrics::Metrics,
    store::{Cache, Writers},
};
use k8s_openapi::{api::rbac::v1::RoleBinding, apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{api::PostParams, Api, Client, Resource};
use kube_fake_client::{interceptor::Funcs, ClientBuilder};
use serde_json::{json, Value};

/// The namespace the rig's requests, reviews and grants live in.
pub const NAMESPACE: &str = "team";

/// `hh:mm` on the day every fake-API scenario happens.
pub fn at(hhmm: &str) -> DateTime<Utc> {
    format!("2026-11-23T{hhmm}:00Z").parse().unwrap()
}

/// A Kubernetes timestamp (creation, transition) for `t`.
pub fn stamp(t: DateTime<Utc>) -> Time {
    Time(Timestamp::from_second(t.timestamp()).unwrap())
}

/// A policy `name` for the rig's namespace: group `dev` may request the
/// ClusterRole `role` for up to 4 h (1 h by default), reviewed by `sre`; the
/// fields of `extra` are added to its spec.
pub fn team_policy(name: &str, role: &str, extra: Value) -> AccessPolicy {
    let mut spec = json!({
        "requesters": {"groups": ["dev"]}, "roles": [{"kind": "ClusterRole", "name": role}],
        "namespaces": {"names": [NAMESPACE]}, "duration": {"default": "1h", "max": "4h"},
        "approval": {"reviewers": {"groups": ["sre"]}}
    });
    for (field, value) in extra.as_object().into_iter().flatten() {
        spec[field] = value.clone();
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessPolicy",
        "metadata": {"name": name}, "spec": spec
    }))
    .unwrap()
}

/// A fake API server serving the Gatehouse kinds (with status
/// subresources), holding `extra` objects, with `funcs` intercepting calls.
pub async fn fake_api(extra: Vec<Value>, funcs: Funcs) -> Client {
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
pub struct Memory {
    client: Client,
    cache: Arc<Cache>,
    writers: tokio::sync::Mutex<Writers>,
}

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

/// The fake API server with one policy, a clock starting at 10:00 and a
/// controller context reading it. Each suite adds its own scenario steps in an
/// `impl Rig` block of its own.
pub struct Rig {
    pub client: Client,
    pub clock: Arc<Mutex<DateTime<Utc>>>,
    pub ctx: Arc<Context>,
    /// What the operator holds in memory: fill it before each reconcile.
    pub memory: Arc<Memory>,
}

impl Rig {
    /// A fake holding `extra` objects and `policy`, with `funcs` intercepting
    /// calls (fault injection).
    pub async fn with_policy(policy: AccessPolicy, extra: Vec<Value>, funcs: Funcs) -> Rig {
        let client = fake_api(extra, funcs).await;
        let clock = Arc::new(Mutex::new(at("10:00")));
        let (ctx, memory) = test_context(&client, &clock);
        create_policy(&client, &policy).await;
        Rig {
            client,
            clock,
            ctx,
            memory,
        }
    }

    /// The same API server and clock seen by a restarted operator: a fresh
    /// context, nothing in memory yet.
    pub fn restarted(&self) -> Rig {
        let (ctx, memory) = test_context(&self.client, &self.clock);
        Rig {
            client: self.client.clone(),
            clock: self.clock.clone(),
            ctx,
            memory,
        }
    }

    pub fn set_time(&self, hhmm: &str) {
        *self.clock.lock().unwrap() = at(hhmm);
    }

    /// Objects of kind `K` in the rig's namespace.
    pub fn api<K>(&self) -> Api<K>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>,
        <K as Resource>::DynamicType: Default,
    {
        Api::namespaced(self.client.clone(), NAMESPACE)
    }

    pub fn requests(&self) -> Api<ApprovalRequest> {
        self.api()
    }

    pub fn reviews(&self) -> Api<AccessReview> {
        self.api()
    }

    pub fn bindings(&self) -> Api<RoleBinding> {
        self.api()
    }
}
