//! Keeps each operator of the end-to-end tests to its own namespaces.
//!
//! `gatehouse run` watches the whole cluster, and scenarios run in parallel: the
//! shared operator would act in the namespace of a scenario that runs operators
//! of its own (two leader-elected replicas, or one with only the chart's RBAC),
//! and those would act in everyone else's. So every test operator runs as a user
//! of its own, impersonated, and an admission policy refuses its writes in any
//! namespace not labelled with its scope: its reads are untouched, so it
//! still sees, and tries to act on, the others' requests, and is refused.
//! Cluster-scoped writes (the ClusterRoleBinding of a cluster-wide grant) are
//! not fenced: no scenario asks for one. NotificationChannels are the exception:
//! every operator reads them all, so a channel belongs to the scope named by its
//! own `LABEL`, and an operator writes (its status) only to its scope's channels.
//!
//! Scopes: `shared-RUN` for the operator all shared scenarios of one test run
//! use, the namespace's name for a scenario with its own operators. An operator
//! runs as `gatehouse-e2e-operator:SCOPE` (in `system:masters`, so only the fence
//! limits it) or, with the chart's RBAC, as the ServiceAccount
//! `system:serviceaccount:SCOPE:gatehouse` (so the chart's ServiceAccount in
//! any `gh-e2e-*` namespace is fenced too).

use std::time::Duration;

use k8s_openapi::api::{
    admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    core::v1::ConfigMap,
};
use kube::{
    api::{Api, PostParams},
    Client,
};
use serde_json::json;

use super::cluster::{apply, eventually};

/// The namespace label naming the scope of the operator that may write there.
pub const LABEL: &str = "gatehouse.dev/e2e-operator";
const USER_PREFIX: &str = "gatehouse-e2e-operator:";
const POLICY: &str = "gatehouse-e2e-operator-fence";

/// The user an operator of `scope` runs as.
pub fn operator_user(scope: &str) -> String {
    format!("{USER_PREFIX}{scope}")
}

/// The groups of an operator user: the admin's, so that only the fence limits it.
pub const OPERATOR_GROUPS: [&str; 1] = ["system:masters"];

/// Installs the fence and waits until the API server enforces it.
pub async fn install(admin: &Client, probe: Client) {
    let policy = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicy",
        "metadata": {"name": POLICY},
        "spec": {
            "failurePolicy": "Fail",
            "matchConstraints": {"resourceRules": [{
                "apiGroups": ["*"], "apiVersions": ["*"],
                "operations": ["CREATE", "UPDATE", "DELETE"], "resources": ["*/*"]
            }]},
            "matchConditions": [{
                "name": "an-e2e-operator",
                "expression": format!(
                    "request.userInfo.username.startsWith('{USER_PREFIX}') || \
                     (request.userInfo.username.startsWith('system:serviceaccount:gh-e2e-') && \
                      request.userInfo.username.endsWith(':gatehouse'))"
                )
            }],
            "variables": [{
                "name": "scope",
                "expression": "request.userInfo.username.split(':')[request.userInfo.username.startsWith('system:serviceaccount:') ? 2 : 1]"
            }],
            "validations": [{
                // Other cluster-scoped objects have no namespace to fence.
                "expression": format!(
                    "namespaceObject == null ? \
                     (request.resource.resource != 'notificationchannels' || \
                      (object != null && has(object.metadata.labels) && '{LABEL}' in object.metadata.labels && \
                       object.metadata.labels['{LABEL}'] == variables.scope)) : \
                     (has(namespaceObject.metadata.labels) && '{LABEL}' in namespaceObject.metadata.labels && \
                      namespaceObject.metadata.labels['{LABEL}'] == variables.scope)"
                ),
                "messageExpression": "'e2e fence: ' + request.userInfo.username + ' may not write ' + request.resource.resource + ' ' + request.name + (namespaceObject != null ? ' in ' + namespaceObject.metadata.name : '')"
            }]
        }
    });
    let binding = json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": POLICY},
        "spec": {"policyName": POLICY, "validationActions": ["Deny"]}
    });
    apply::<ValidatingAdmissionPolicy>(admin, &policy).await;
    apply::<ValidatingAdmissionPolicyBinding>(admin, &binding).await;
    // The API server loads policies asynchronously: wait until an operator
    // user is refused in a namespace that is not its own.
    let config_maps: Api<ConfigMap> = Api::namespaced(probe, "default");
    let probe_map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "gatehouse-e2e-fence-probe"}})).unwrap();
    let refusal = eventually(
        "the operator fence to be enforced",
        Duration::from_secs(30),
        || {
            let config_maps = config_maps.clone();
            let probe_map = probe_map.clone();
            async move {
                let dry_run = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                config_maps.create(&dry_run, &probe_map).await.err()
            }
        },
    )
    .await;
    assert!(refusal.to_string().contains("e2e fence"), "{refusal}");
}
