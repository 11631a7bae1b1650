//! What a JIT grant was used for, on its request's status: the evidence of the
//! audit webhook now, or what was recorded before when that says more (the
//! operator's evidence starts over when it restarts; a count never goes back).

use crate::{
    api::{ApprovalRequest, ApprovalRequestStatus},
    usage::BindingRef,
};

use super::Context;

/// Sets `status.usage` from the evidence or the stored status.
pub fn overlay(ctx: &Context, req: &ApprovalRequest, status: &mut ApprovalRequestStatus) {
    let stored = req.status.as_ref().and_then(|s| s.usage.clone());
    let fresh = match (ctx.usage.as_ref().and_then(|u| u.index()), &status.grant) {
        (Some(index), Some(g)) => index.grant(&BindingRef {
            kind: g.kind,
            namespace: g.namespace.clone(),
            name: g.name.clone(),
        }),
        _ => None,
    };
    tracing::debug!(request = %kube::ResourceExt::name_any(req), evidence = ctx.usage.is_some(), grant = ?status.grant.as_ref().map(|g| &g.name), fresh = ?fresh, "grant usage");
    status.usage = match (fresh, stored) {
        (Some(f), Some(s)) if s.requests > f.requests => Some(s),
        (f, s) => f.or(s),
    };
}
