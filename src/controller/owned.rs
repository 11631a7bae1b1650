//! The one writer of the objects the operator owns for a request: bindings,
//! ServiceAccounts and Jobs (their labels and owner reference: `labels::owned_metadata`); writes
//! are server-side apply of typed objects (or a plain create where an object
//! must exist at most once), deletes tolerate an object already gone.

use kube::{
    api::{Api, DeleteParams, Patch, PatchParams},
    Resource,
};
use serde::{de::DeserializeOwned, Serialize};
use tracing::warn;

use crate::labels::FIELD_MANAGER;

/// Whether the API answered with this HTTP status.
pub fn is_status(e: &kube::Error, code: u16) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == code)
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
