//! The in-process fake API server the controller and plugin tests share.

use gatehouse::api::{AccessPolicy, AccessReview, ApprovalRequest};
use kube::{api::PostParams, Api, Client};
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
