//! Issuing an item: create it, then record the digest of its spec in its status
//! ([`crate::certify::issue`]), the proof that the operator wrote it. Only the
//! operator may write status (`write-status` at cluster scope), so an item a
//! tenant slipped in by another path never carries it and decides nothing.
//!
//! A crash between the create and the status write leaves an item without its
//! digest; the next launch slice sees it as not yet issued ([`needs_issuing`]),
//! creates it again, and on the `AlreadyExists` answer reads the stored item:
//! if its spec is exactly the one intended, it records the digest then. A spec
//! that differs (an item planted under the run's deterministic name) gets none.

use kube::{
    api::{Api, Patch, PatchParams, PostParams},
    runtime::reflector::ObjectRef,
    ResourceExt,
};
use serde_json::json;

use super::Context;
use crate::{api::AccessCertification, certify::issue::spec_digest, controller::owned::is_status};

/// Whether the launch must still issue `item`: it is not in memory, or memory
/// shows it without the digest of this spec.
pub fn needs_issuing(ctx: &Context, item: &AccessCertification) -> bool {
    let wanted = spec_digest(&item.spec);
    ctx.cache
        .items
        .get(&ObjectRef::from_obj(item))
        .is_none_or(|stored| stored.status.as_ref().and_then(|s| s.issued_digest.as_ref()) != Some(&wanted))
}

/// Creates `item` and records its digest. On `AlreadyExists` the digest is
/// recorded if the stored spec is the intended one, and the 409 is returned as
/// the create's answer, so the caller treats it as it always did.
pub async fn create(
    api: &Api<AccessCertification>,
    item: &AccessCertification,
) -> Result<AccessCertification, kube::Error> {
    match api.create(&PostParams::default(), item).await {
        Ok(created) => {
            record_digest(api, &created).await?;
            Ok(created)
        }
        Err(e) if is_status(&e, 409) => {
            heal(api, item).await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// After `AlreadyExists`: the stored item gets its digest if its spec is the
/// one intended and the digest is missing.
async fn heal(api: &Api<AccessCertification>, intended: &AccessCertification) -> Result<(), kube::Error> {
    let Some(stored) = api.get_opt(&intended.name_any()).await? else {
        return Ok(());
    };
    let wanted = spec_digest(&intended.spec);
    if spec_digest(&stored.spec) != wanted {
        tracing::warn!(
            item = %intended.name_any(),
            "an item of this name exists with another spec: the operator did not issue it and records no digest"
        );
        return Ok(());
    }
    let recorded = stored.status.as_ref().and_then(|s| s.issued_digest.as_ref());
    if recorded != Some(&wanted) {
        record_digest(api, &stored).await?;
    }
    Ok(())
}

/// Writes `status.issuedDigest` (a merge patch: nothing else of the status changes).
async fn record_digest(
    api: &Api<AccessCertification>,
    item: &AccessCertification,
) -> Result<(), kube::Error> {
    let patch = json!({"status": {"issuedDigest": spec_digest(&item.spec)}});
    api.patch_status(&item.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map(|_| ())
}
