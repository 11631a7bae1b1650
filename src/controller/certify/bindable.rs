//! Whether the operator may `bind` a role: the question asked before it removes
//! access through a binding of that role (`super::remediate`), since Kubernetes
//! runs no escalation check on a delete. Answers are kept a short while.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec,
};
use kube::{
    api::{Api, PostParams},
    Client,
};

use crate::api::{BindingKind, BindingSnapshot, RoleKind, RoleRef};

/// How long an answer to "may the operator bind this role?" is reused: RBAC
/// changes rarely, and a run falling due asks for many items of one role.
const BIND_ANSWER_TTL: Duration = Duration::from_secs(60);
/// Answers kept at most (then all are forgotten: they are cheap to ask again).
const BIND_CACHE_MAX: usize = 4096;

/// The attributes RBAC checks for writing a binding: `bind` on the role, in the
/// binding's namespace (none for a ClusterRoleBinding).
type BindKey = (Option<String>, &'static str, String);

/// Recent answers of [`may_bind`].
#[derive(Default)]
pub struct BindCache(Mutex<HashMap<BindKey, (bool, Instant)>>);

impl BindCache {
    fn get(&self, key: &BindKey) -> Option<bool> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < BIND_ANSWER_TTL)
            .map(|(allowed, _)| *allowed)
    }

    fn put(&self, key: BindKey, allowed: bool) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= BIND_CACHE_MAX {
                map.clear();
            }
            map.insert(key, (allowed, Instant::now()));
        }
    }
}

/// Whether the operator may `bind` the role of the binding, as the API server
/// answers for its own identity (a SelfSubjectAccessReview, which every
/// authenticated user may make). An error is an error, never a yes.
pub async fn may_bind(
    client: &Client,
    cache: &BindCache,
    binding: &BindingSnapshot,
    role: &RoleRef,
) -> Result<bool, kube::Error> {
    let resource = match role.kind {
        RoleKind::Role => "roles",
        RoleKind::ClusterRole => "clusterroles",
    };
    let namespace = match binding.kind {
        BindingKind::RoleBinding => binding.namespace.clone(),
        BindingKind::ClusterRoleBinding => None,
    };
    let key = (namespace.clone(), resource, role.name.clone());
    if let Some(allowed) = cache.get(&key) {
        return Ok(allowed);
    }
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("rbac.authorization.k8s.io".into()),
                resource: Some(resource.into()),
                verb: Some("bind".into()),
                name: Some(role.name.clone()),
                namespace,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let allowed = answer.status.is_some_and(|s| s.allowed && s.denied != Some(true));
    cache.put(key, allowed);
    Ok(allowed)
}
