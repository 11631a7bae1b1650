//! The labels, annotations and field manager Gatehouse puts on what it writes.
//! The operator writes them; the sweep, `simulate` and the plugin read them.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{Resource, ResourceExt};

use crate::api::ApprovalRequest;

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "gatehouse";
/// Label on every object the operator manages (bindings, ServiceAccounts, Jobs).
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "gatehouse");
/// Label: namespace of the request an object belongs to.
pub const REQUEST_NAMESPACE: &str = "gatehouse.dev/request-namespace";
/// Label: name of the request an object belongs to (cut to 63 characters).
pub const REQUEST_NAME: &str = "gatehouse.dev/request-name";
/// Label: uid of the request an object belongs to.
pub const REQUEST_UID: &str = "gatehouse.dev/request-uid";
/// Annotation: the instant a binding must be gone at the latest (RFC 3339).
pub const EXPIRES_AT: &str = "gatehouse.dev/expires-at";

/// Annotation the operator sets on its in-memory copy of a binding whose
/// subjects it cut (`store::trim`): how many the binding has. Never written
/// to the cluster; one that arrives from it is dropped.
pub const CACHED_SUBJECTS_TRUNCATED: &str = "gatehouse.dev/cached-subjects-truncated-from";
/// Likewise, on a copy whose labels were cut: their size in bytes.
pub const CACHED_LABELS_TRUNCATED: &str = "gatehouse.dev/cached-labels-truncated-from";
/// Likewise, on a copy of a role whose rules were cut: how many it has.
pub const CACHED_RULES_TRUNCATED: &str = "gatehouse.dev/cached-rules-truncated-from";

/// Label selector of every managed object.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}

/// Whether the operator manages the object (it carries the managed-by label).
pub fn is_managed(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> bool {
    meta.labels
        .as_ref()
        .and_then(|l| l.get(MANAGED_BY.0))
        .map(String::as_str)
        == Some(MANAGED_BY.1)
}

/// The labels of an object that belongs to the request.
pub fn request_labels(req: &ApprovalRequest) -> BTreeMap<String, String> {
    BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (REQUEST_NAMESPACE.to_string(), req.namespace().unwrap_or_default()),
        (REQUEST_NAME.to_string(), label_value(&req.name_any())),
        (REQUEST_UID.to_string(), req.uid().unwrap_or_default()),
    ])
}

/// Label values are limited to 63 characters and must end alphanumeric; names can be longer.
pub fn label_value(v: &str) -> String {
    v.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

/// Metadata of an object that belongs to the request: its labels, and an owner
/// reference when the object is namespaced (owner references cannot point from a
/// cluster-scoped object to a namespaced one; those rely on the labels, the
/// finalizer and the sweep).
pub fn owned_metadata(
    req: &ApprovalRequest,
    name: &str,
    namespace: Option<&str>,
    annotations: BTreeMap<String, String>,
) -> ObjectMeta {
    let owner_references = namespace.and_then(|_| {
        req.controller_owner_ref(&()).map(|o| {
            vec![OwnerReference {
                // The operator may not set blockOwnerDeletion without `update` on
                // the owner's finalizers; the finalizer orders deletion instead.
                block_owner_deletion: Some(false),
                ..o
            }]
        })
    });
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(request_labels(req)),
        annotations: (!annotations.is_empty()).then_some(annotations),
        owner_references,
        ..Default::default()
    }
}
