//! The bindings that carry grants: build, apply, remove, and sweep the expired.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef as K8sRoleRef, Subject as K8sSubject},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    api::{Api, DeleteParams, ListParams},
    Client, ResourceExt,
};
use tracing::info;

use super::{owned, Error};
use crate::{
    api::{ApprovalRequest, BindingKind, SubjectKind},
    decide::{timestamp::rfc3339, Binding, BindingRef},
    labels::{managed_selector, EXPIRES_AT, REQUEST_NAME, REQUEST_NAMESPACE, REQUEST_UID},
};

fn metadata(req: &ApprovalRequest, b: &Binding) -> ObjectMeta {
    let annotations = BTreeMap::from([(EXPIRES_AT.to_string(), rfc3339(b.valid_until))]);
    owned::metadata(req, &b.target.name, b.target.namespace.as_deref(), annotations)
}

fn role_ref(b: &Binding) -> K8sRoleRef {
    K8sRoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: b.role.kind.to_string(),
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

/// Creates or restores the binding (see [`owned::apply`]): a binding edited by
/// hand is put back, one whose roleRef was changed is created again.
pub async fn ensure_binding(client: &Client, req: &ApprovalRequest, b: &Binding) -> Result<(), Error> {
    let name = &b.target.name;
    let result = match b.target.kind {
        BindingKind::RoleBinding => {
            let ns = b.target.namespace.as_deref().unwrap_or_default();
            let obj = RoleBinding {
                metadata: metadata(req, b),
                role_ref: role_ref(b),
                subjects: Some(vec![subject(b)]),
            };
            owned::apply(&Api::namespaced(client.clone(), ns), name, &obj)
                .await
                .map(drop)
        }
        BindingKind::ClusterRoleBinding => {
            let obj = ClusterRoleBinding {
                metadata: metadata(req, b),
                role_ref: role_ref(b),
                subjects: Some(vec![subject(b)]),
            };
            owned::apply(&Api::all(client.clone()), name, &obj)
                .await
                .map(drop)
        }
    };
    result.map_err(|source| Error::Binding {
        name: name.clone(),
        source,
    })
}

/// Deletes the binding; returns whether it existed.
pub async fn remove_binding(client: &Client, target: &BindingRef) -> Result<bool, Error> {
    let dp = DeleteParams::default();
    let result = match target.kind {
        BindingKind::RoleBinding => {
            let ns = target.namespace.as_deref().unwrap_or_default();
            let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
            owned::delete_if_present(&api, &target.name, &dp).await
        }
        BindingKind::ClusterRoleBinding => {
            let api: Api<ClusterRoleBinding> = Api::all(client.clone());
            owned::delete_if_present(&api, &target.name, &dp).await
        }
    };
    result.map_err(|source| Error::Binding {
        name: target.name.clone(),
        source,
    })
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
