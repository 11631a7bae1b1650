//! Which request an operator-made object belongs to (by owner reference, or,
//! for a ClusterRoleBinding, by the names it claims and the grant the request
//! recorded), and the entry it gets in the index from that.

use super::*;

pub(super) fn owner_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

pub(super) fn key_of(meta: &ObjectMeta, kind: Kind) -> Option<Key> {
    let namespace = match kind {
        Kind::ClusterRoleBinding => String::new(),
        Kind::RoleBinding | Kind::Job => meta.namespace.clone()?,
    };
    Some(Key {
        kind,
        namespace,
        name: meta.name.clone()?,
    })
}

/// The request that controls a RoleBinding or Job (owner reference), as an
/// index owner key, if the object is one for the lane.
pub(super) fn owner_by_reference(meta: &ObjectMeta) -> Option<String> {
    match (
        considered(meta),
        controller_request(meta),
        meta.namespace.as_deref(),
    ) {
        (true, Some(o), Some(ns)) => Some(owner_key(ns, &o.name)),
        _ => None,
    }
}

pub(super) fn same_uid(meta: &ObjectMeta, owner: &ApprovalRequest) -> bool {
    controller_request(meta).is_some_and(|o| owner.metadata.uid.as_deref() == Some(o.uid.as_str()))
}

pub(super) fn set_binding(i: &mut Inner, cache: &Cache, rb: &RoleBinding) -> bool {
    let owner = owner_in(cache, &rb.metadata);
    i.set(
        &rb.metadata,
        Kind::RoleBinding,
        binding_deadline(&rb.metadata, owner.as_deref()),
    )
}

pub(super) fn set_job(i: &mut Inner, cache: &Cache, job: &Job) -> bool {
    let owner = owner_in(cache, &job.metadata);
    i.set(&job.metadata, Kind::Job, job_deadline(job, owner.as_deref()))
}

/// A ClusterRoleBinding, judged against `owner` (the request memory holds
/// under the names it claims): kept only if it was made for that request.
pub(super) fn set_cluster_binding(i: &mut Inner, meta: &ObjectMeta, owner: Option<&ApprovalRequest>) -> bool {
    let Some(key) = key_of(meta, Kind::ClusterRoleBinding) else {
        return false;
    };
    let owner = owner.filter(|r| made_for(meta, r));
    let deadline = cluster_binding_deadline(meta, owner);
    let owner = owner.map(|r| owner_key(&r.namespace().unwrap_or_default(), &r.name_any()));
    i.set_owned(key, meta, owner, deadline)
}

/// The ClusterRoleBinding the operator would make for the request, if its
/// grant is cluster-wide.
pub(super) fn cluster_key(req: &ApprovalRequest) -> Option<Key> {
    let target = binding_ref(req);
    (target.kind == BindingKind::ClusterRoleBinding).then(|| Key {
        kind: Kind::ClusterRoleBinding,
        namespace: String::new(),
        name: target.name,
    })
}

/// The request a ClusterRoleBinding was made for, if memory holds it.
pub(super) fn cluster_owner_in(cache: &Cache, meta: &ObjectMeta) -> Option<std::sync::Arc<ApprovalRequest>> {
    let (namespace, names) = cluster_binding_claim(meta)?;
    names
        .iter()
        .filter_map(|n| cache.request(&namespace, n))
        .find(|r| made_for(meta, r))
}

/// The request the owner reference names, if memory holds it with that uid.
pub(super) fn owner_in(cache: &Cache, meta: &ObjectMeta) -> Option<std::sync::Arc<ApprovalRequest>> {
    let o = controller_request(meta)?;
    let r = cache.request(meta.namespace.as_deref()?, &o.name)?;
    same_uid(meta, &r).then_some(r)
}
