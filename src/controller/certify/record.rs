//! What certification writes down: an item's status and its reviews' verdicts
//! (only when they changed), a campaign's status, and Events on items, on the
//! bindings they review and on campaigns.

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{
    api::{Api, PostParams},
    runtime::events::EventType,
    Resource, ResourceExt,
};
use tracing::debug;

use super::{Context, Error};
use crate::{
    api::{
        AccessCampaign, AccessCampaignStatus, AccessCertification, AccessCertificationStatus, BindingKind,
        BindingSnapshot,
    },
    certify::Verdict,
    controller::record::{write_verdicts, VerdictView},
};

/// Writes each review's verdict, only when it changed.
pub async fn verdicts(
    ctx: &Context,
    ns: &str,
    reviews: &[crate::api::AccessReview],
    verdicts: &[Verdict],
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let views = verdicts.iter().map(|v| VerdictView {
        review: &v.review,
        accepted: v.accepted,
        reason: v.reason.into(),
        message: &v.message,
    });
    write_verdicts(&ctx.client, &ctx.written_verdict, ns, reviews, views, now)
        .await
        .map_err(Error::Kube)
}

/// Writes the item's status when it changed; returns whether it wrote.
pub async fn item_status(
    ctx: &Context,
    item: &AccessCertification,
    status: &AccessCertificationStatus,
) -> Result<bool, Error> {
    if item.status.as_ref() == Some(status) {
        debug!(item = %item.name_any(), "status unchanged");
        return Ok(false);
    }
    let ns = item
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let key = format!("{ns}/{}", item.name_any());
    let version = item.resource_version().unwrap_or_default();
    if ctx.written_status.already(&key, &version, status) {
        debug!(item = %item.name_any(), "status already written; memory is catching up");
        return Ok(false);
    }
    let api: Api<AccessCertification> = Api::namespaced(ctx.client.clone(), &ns);
    // Replace, not merge: fields that disappear (reviewers once closed) must
    // disappear; the resourceVersion makes a stale write fail and retry.
    let mut updated = item.clone();
    updated.status = Some(status.clone());
    let written = api
        .replace_status(&item.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::Kube)?;
    ctx.written_status.wrote(key, version, status.clone());
    // Notifications are derived from the status as stored (never blocks).
    ctx.notify.observe_certification(&written);
    Ok(true)
}

/// Writes the campaign's status when it changed; returns the campaign as
/// written (or as it was).
pub async fn campaign_status(
    ctx: &Context,
    campaign: &AccessCampaign,
    status: &AccessCampaignStatus,
) -> Result<AccessCampaign, Error> {
    if campaign.status.as_ref() == Some(status) {
        return Ok(campaign.clone());
    }
    let api: Api<AccessCampaign> = Api::all(ctx.client.clone());
    let mut updated = campaign.clone();
    updated.status = Some(status.clone());
    let written = api
        .replace_status(&campaign.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::Kube)?;
    ctx.notify.observe_campaign(&written);
    Ok(written)
}

/// An Event on the item.
pub fn on_item(ctx: &Context, item: &AccessCertification, type_: EventType, reason: &str, note: String) {
    ctx.events
        .publish_about(item.object_ref(&()), type_, reason, "Certify", note);
}

/// An Event on the campaign.
pub fn on_campaign(ctx: &Context, campaign: &AccessCampaign, type_: EventType, reason: &str, note: String) {
    ctx.events
        .publish_about(campaign.object_ref(&()), type_, reason, "Certify", note);
}

/// An Event on the binding under review, in its namespace (`default` for a
/// ClusterRoleBinding), where its owners look.
pub fn on_binding(ctx: &Context, binding: &BindingSnapshot, type_: EventType, reason: &str, note: String) {
    let kind = match binding.kind {
        BindingKind::RoleBinding => "RoleBinding",
        BindingKind::ClusterRoleBinding => "ClusterRoleBinding",
    };
    let regarding = ObjectReference {
        api_version: Some("rbac.authorization.k8s.io/v1".into()),
        kind: Some(kind.into()),
        name: Some(binding.name.clone()),
        namespace: binding.namespace.clone(),
        uid: Some(binding.uid.clone()),
        ..Default::default()
    };
    ctx.events
        .publish_about(regarding, type_, reason, "Certify", note);
}
