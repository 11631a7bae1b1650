//! The one writer of the objects the operator owns for a request: bindings,
//! ServiceAccounts and Jobs. Labels and owner reference come from here; writes
//! are server-side apply of typed objects (or a plain create where an object
//! must exist at most once), deletes tolerate an object already gone.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams},
    Resource,
};
use serde::{de::DeserializeOwned, Serialize};
use tracing::warn;

use crate::{
    api::ApprovalRequest,
    labels::{request_labels, FIELD_MANAGER},
};

/// Whether the API answered with this HTTP status.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
}

/// Metadata of an object that belongs to the request: its labels, and an owner
/// reference when the object is namespaced (owner references cannot point from a
/// cluster-scoped object to a namespaced one; those rely on the labels, the
/// finalizer and the sweep).
pub fn metadata(
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

/// Creates or restores the object with a forced server-side apply: fields edited
/// by hand are taken back. An object changed in a way apply cannot undo (an
/// immutable field such as a binding's roleRef) is deleted and created again.
pub async fn apply<K>(api: &Api<K>, name: &str, obj: &K) -> Result<K, kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + Serialize + DeserializeOwned + std::fmt::Debug,
{
    let mut body = serde_json::to_value(obj).map_err(kube::Error::SerdeError)?;
    // Server-side apply needs apiVersion and kind in the body.
    body["apiVersion"] = K::api_version(&()).into();
    body["kind"] = K::kind(&()).into();
    let params = PatchParams::apply(FIELD_MANAGER).force();
    match api.patch(name, &params, &Patch::Apply(&body)).await {
        Err(e) if is_status(&e, 422) => {
            warn!(
                kind = %K::kind(&()),
                name,
                "object was changed in a way apply cannot undo; recreating it"
            );
            delete_if_present(api, name, &DeleteParams::default()).await?;
            api.patch(name, &params, &Patch::Apply(&body)).await
        }
        result => result,
    }
}

/// Deletes the object; returns whether it existed.
pub async fn delete_if_present<K>(
    api: &Api<K>,
    name: &str,
    params: &DeleteParams,
) -> Result<bool, kube::Error>
where
    K: Resource + Clone + DeserializeOwned + std::fmt::Debug,
{
    match api.delete(name, params).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 404) => Ok(false),
        Err(e) => Err(e),
    }
}
