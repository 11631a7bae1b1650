//! The bindings that carry grants: build, apply, remove, and sweep the expired.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef as K8sRoleRef, Subject as K8sSubject},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams},
    Client, Resource, ResourceExt,
};
use tracing::{info, warn};

use super::Error;
use crate::{
    api::{ApprovalRequest, BindingKind, RoleKind, SubjectKind},
    decide::{Binding, BindingRef},
};

/// Field manager of every write the operator makes.
pub const FIELD_MANAGER: &str = "gatehouse";
/// Label on every binding the operator manages.
pub const MANAGED_BY: (&str, &str) = ("app.kubernetes.io/managed-by", "gatehouse");
/// Label: namespace of the request a binding belongs to.
pub const REQUEST_NAMESPACE: &str = "gatehouse.dev/request-namespace";
/// Label: name of the request a binding belongs to.
pub const REQUEST_NAME: &str = "gatehouse.dev/request-name";
/// Label: uid of the request a binding belongs to.
pub const REQUEST_UID: &str = "gatehouse.dev/request-uid";
/// Annotation: the instant the binding must be gone at the latest (RFC 3339).
pub const EXPIRES_AT: &str = "gatehouse.dev/expires-at";

/// Label selector of every managed binding.
pub fn managed_selector() -> String {
    format!("{}={}", MANAGED_BY.0, MANAGED_BY.1)
}

fn metadata(req: &ApprovalRequest, b: &Binding) -> ObjectMeta {
    let labels = BTreeMap::from([
        (MANAGED_BY.0.to_string(), MANAGED_BY.1.to_string()),
        (REQUEST_NAMESPACE.to_string(), req.namespace().unwrap_or_default()),
        (REQUEST_NAME.to_string(), truncate_label(&req.name_any())),
        (REQUEST_UID.to_string(), req.uid().unwrap_or_default()),
    ]);
    let annotations = BTreeMap::from([(
        EXPIRES_AT.to_string(),
        b.valid_until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    )]);
    // Owner references cannot point from a cluster-scoped object to a namespaced
    // one; ClusterRoleBindings rely on the labels, the finalizer and the sweep.
    let owner_references = match b.target.kind {
        BindingKind::RoleBinding => req.controller_owner_ref(&()).map(|o| {
            vec![OwnerReference {
                block_owner_deletion: Some(false),
                ..o
            }]
        }),
        BindingKind::ClusterRoleBinding => None,
    };
    ObjectMeta {
        name: Some(b.target.name.clone()),
        namespace: b.target.namespace.clone(),
        labels: Some(labels),
        annotations: Some(annotations),
        owner_references,
        ..Default::default()
    }
}

/// Label values are limited to 63 characters; names can be longer.
fn truncate_label(v: &str) -> String {
    v.chars()
        .take(63)
        .collect::<String>()
        .trim_end_matches(['-', '.', '_'])
        .to_string()
}

fn role_ref(b: &Binding) -> K8sRoleRef {
    K8sRoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: match b.role.kind {
            RoleKind::ClusterRole => "ClusterRole".into(),
            RoleKind::Role => "Role".into(),
        },
        name: b.role.name.clone(),
    }
}

fn subject(b: &Binding) -> K8sSubject {
    // ServiceAccounts are in the core group; users and groups in RBAC's.
    let api_group =
        (b.subject.kind != SubjectKind::ServiceAccount).then(|| "rbac.authorization.k8s.io".to_string());
    K8sSubject {
        kind: b.subject.kind.as_str().into(),
        api_group,
        name: b.subject.name.clone(),
        namespace: b.subject.namespace.clone(),
    }
}

/// Creates or restores the binding with server-side apply. A binding edited by
/// hand is put back (forced apply takes the fields back); one whose roleRef was
/// changed (immutable) is deleted and created again.
pub async fn ensure_binding(client: &Client, req: &ApprovalRequest, b: &Binding) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let result = match b.target.kind {
        BindingKind::RoleBinding => {
            let ns = b.target.namespace.clone().unwrap_or_default();
            let api: Api<RoleBinding> = Api::namespaced(client.clone(), &ns);
            let obj = RoleBinding {
                metadata: metadata(req, b),
                role_ref: role_ref(b),
                subjects: Some(vec![subject(b)]),
            };
            apply_or_recreate(&api, &b.target.name, &obj, &params).await
        }
        BindingKind::ClusterRoleBinding => {
            let api: Api<ClusterRoleBinding> = Api::all(client.clone());
            let obj = ClusterRoleBinding {
                metadata: metadata(req, b),
                role_ref: role_ref(b),
                subjects: Some(vec![subject(b)]),
            };
            apply_or_recreate(&api, &b.target.name, &obj, &params).await
        }
    };
    result.map_err(|source| Error::Binding {
        name: b.target.name.clone(),
        source,
    })
}

async fn apply_or_recreate<K>(
    api: &Api<K>,
    name: &str,
    obj: &K,
    params: &PatchParams,
) -> Result<(), kube::Error>
where
    K: Resource<DynamicType = ()> + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut body = serde_json::to_value(obj).map_err(kube::Error::SerdeError)?;
    // Server-side apply needs apiVersion and kind in the body.
    body["apiVersion"] = "rbac.authorization.k8s.io/v1".into();
    body["kind"] = K::kind(&()).to_string().into();
    match api.patch(name, params, &Patch::Apply(&body)).await {
        Ok(_) => Ok(()),
        // roleRef is immutable: a binding repointed by hand cannot be patched back.
        Err(kube::Error::Api(s)) if s.code == 422 => {
            warn!(
                binding = name,
                "binding was changed in a way apply cannot undo; recreating it"
            );
            api.delete(name, &DeleteParams::default()).await?;
            api.patch(name, params, &Patch::Apply(&body)).await.map(|_| ())
        }
        Err(e) => Err(e),
    }
}

/// Deletes the binding; absent is fine.
pub async fn remove_binding(client: &Client, target: &BindingRef) -> Result<bool, Error> {
    let dp = DeleteParams::default();
    let result = match target.kind {
        BindingKind::RoleBinding => {
            let api: Api<RoleBinding> =
                Api::namespaced(client.clone(), target.namespace.as_deref().unwrap_or_default());
            api.delete(&target.name, &dp).await.map(|_| ())
        }
        BindingKind::ClusterRoleBinding => {
            let api: Api<ClusterRoleBinding> = Api::all(client.clone());
            api.delete(&target.name, &dp).await.map(|_| ())
        }
    };
    match result {
        Ok(()) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(source) => Err(Error::Binding {
            name: target.name.clone(),
            source,
        }),
    }
}

/// Whether a managed binding must go: past its expiry annotation (a missing or
/// unreadable one counts as expired: fail closed), or its request is gone.
fn expired(meta: &ObjectMeta, now: DateTime<Utc>) -> bool {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .is_none_or(|t| t.with_timezone(&Utc) <= now)
}

/// Deletes every managed binding whose expiry has passed or whose request no
/// longer exists. Runs at start-up and on a timer, so grants end even when the
/// operator was down at the deadline or garbage collection is not running.
pub async fn sweep(client: &Client, now: DateTime<Utc>) -> Result<usize, Error> {
    let lp = ListParams::default().labels(&managed_selector());
    let mut removed = 0;
    let rbs: Api<RoleBinding> = Api::all(client.clone());
    for rb in rbs.list(&lp).await.map_err(Error::Kube)? {
        if expired(&rb.metadata, now) || !request_exists(client, &rb.metadata).await? {
            let target = BindingRef {
                kind: BindingKind::RoleBinding,
                name: rb.name_any(),
                namespace: rb.namespace(),
            };
            if remove_binding(client, &target).await? {
                info!(binding = %target.name, namespace = ?target.namespace, "sweep removed an expired or orphaned binding");
                removed += 1;
            }
        }
    }
    let crbs: Api<ClusterRoleBinding> = Api::all(client.clone());
    for crb in crbs.list(&lp).await.map_err(Error::Kube)? {
        if expired(&crb.metadata, now) || !request_exists(client, &crb.metadata).await? {
            let target = BindingRef {
                kind: BindingKind::ClusterRoleBinding,
                name: crb.name_any(),
                namespace: None,
            };
            if remove_binding(client, &target).await? {
                info!(binding = %target.name, "sweep removed an expired or orphaned binding");
                removed += 1;
            }
        }
    }
    Ok(removed)
}

async fn request_exists(client: &Client, meta: &ObjectMeta) -> Result<bool, Error> {
    let labels = meta.labels.clone().unwrap_or_default();
    let (Some(ns), Some(name)) = (labels.get(REQUEST_NAMESPACE), labels.get(REQUEST_NAME)) else {
        return Ok(false);
    };
    let api: Api<ApprovalRequest> = Api::namespaced(client.clone(), ns);
    match api.get_opt(name).await.map_err(Error::Kube)? {
        Some(r) => Ok(labels
            .get(REQUEST_UID)
            .is_none_or(|uid| r.uid().as_deref() == Some(uid.as_str()))),
        // A name longer than a label holds cannot be looked up: leave it to expiry.
        None => Ok(name.len() >= 63),
    }
}
