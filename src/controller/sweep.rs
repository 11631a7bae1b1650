//! The safety net: bindings the operator manages that must not exist any more,
//! whatever happened to their requests. Runs at start-up and on a timer, from
//! memory, so grants end even when the operator was down at the deadline, a
//! request vanished without its finalizer, or garbage collection is not running.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use tracing::{info, warn};

use super::{grant, Error};
use crate::{
    api::{BindingKind, Phase},
    labels::{self, EXPIRES_AT, REQUEST_NAMESPACE, REQUEST_UID},
    metrics::Metrics,
    store::Cache,
};

/// ApprovalRequests in memory, by `(namespace, uid)`.
type Requests = HashSet<(String, String)>;

/// Whether a managed binding must go: past its expiry annotation (a missing or
/// unreadable one counts as expired: fail closed), or its request is gone.
fn must_go(requests: &Requests, meta: &ObjectMeta, now: DateTime<Utc>) -> bool {
    // Memory may hold bindings the operator does not manage: never touch those.
    if !labels::is_managed(meta) {
        return false;
    }
    let expired = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .is_none_or(|t| t.with_timezone(&Utc) <= now);
    expired || !request_exists(requests, meta)
}

/// Whether the request the binding belongs to exists, by uid: the owner
/// reference of a RoleBinding, or the labels naming the request's namespace and
/// uid (a ClusterRoleBinding cannot have a namespaced owner). Never by the name
/// label, which holds only 63 characters: a binding whose request cannot be
/// found this way is an orphan, whatever its labels say.
fn request_exists(requests: &Requests, meta: &ObjectMeta) -> bool {
    let exists = |ns: &str, uid: &str| requests.contains(&(ns.to_string(), uid.to_string()));
    let owned = meta.namespace.as_deref().is_some_and(|ns| {
        meta.owner_references
            .iter()
            .flatten()
            .any(|o| o.kind == "ApprovalRequest" && exists(ns, &o.uid))
    });
    let labels = meta.labels.clone().unwrap_or_default();
    let labelled = match (labels.get(REQUEST_NAMESPACE), labels.get(REQUEST_UID)) {
        (Some(ns), Some(uid)) => exists(ns, uid),
        _ => false,
    };
    owned || labelled
}

/// Deletes every managed binding in memory that must go; returns how many.
/// Does nothing before memory is complete: an incomplete list of requests would
/// make live grants look orphaned.
pub async fn sweep(client: &kube::Client, cache: &Cache, now: DateTime<Utc>) -> Result<usize, Error> {
    if !cache.health.synced() {
        return Ok(0);
    }
    let requests: Requests = cache
        .requests
        .state()
        .iter()
        .filter_map(|r| Some((r.namespace()?, r.uid()?)))
        .collect();
    let mut doomed = Vec::new();
    for rb in cache.role_bindings.state() {
        if must_go(&requests, &rb.metadata, now) {
            doomed.push(grant::binding_ref_of(rb.as_ref(), BindingKind::RoleBinding));
        }
    }
    for crb in cache.cluster_role_bindings.state() {
        if must_go(&requests, &crb.metadata, now) {
            doomed.push(grant::binding_ref_of(
                crb.as_ref(),
                BindingKind::ClusterRoleBinding,
            ));
        }
    }
    // One binding that cannot be deleted must not keep the others alive.
    let mut removed = 0;
    let mut first_error = None;
    for target in doomed {
        match grant::delete_binding(client, &target).await {
            Ok(true) => {
                info!(binding = %target.name, namespace = ?target.namespace, "sweep removed an expired or orphaned binding");
                removed += 1;
            }
            Ok(false) => {}
            Err(e) => {
                warn!(binding = %target.name, namespace = ?target.namespace, error = %e, "sweep could not remove a binding");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if removed == 0 => Err(e),
        _ => Ok(removed),
    }
}

/// Refreshes the gauges of requests by phase and live grants, from memory.
pub fn refresh_gauges(cache: &Cache, metrics: &Metrics) {
    metrics.requests.clear();
    for r in cache.requests.state() {
        let phase = r.status.as_ref().map(|s| s.phase).unwrap_or(Phase::Pending);
        metrics
            .requests
            .get_or_create(&crate::metrics::PhaseLabel {
                phase: phase.as_str().into(),
            })
            .inc();
    }
    let grants = cache
        .role_bindings
        .state()
        .iter()
        .filter(|b| labels::is_managed(&b.metadata))
        .count()
        + cache
            .cluster_role_bindings
            .state()
            .iter()
            .filter(|b| labels::is_managed(&b.metadata))
            .count();
    metrics
        .active_grants
        .set(i64::try_from(grants).unwrap_or(i64::MAX));
}
