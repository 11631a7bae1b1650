//! Creating the items of a run: the core says which ([`crate::certify::launch`]),
//! from the cluster in memory; this creates those that do not exist yet, a few
//! at a time, for a bounded slice of time. Names are deterministic, so an item
//! created before a restart (or by the previous leader) is found in memory or
//! answered `AlreadyExists`, never made twice.
//!
//! An item found under its name counts only if its spec is the one this launch
//! would create; another spec is a conflict (someone took the name first): it is
//! recorded in the run and announced with a Warning, never counted as created.
//! An item the API server refuses as invalid is skipped with the server's
//! answer; only failures that are not the item's own (the server, the network,
//! RBAC) stop the launch, to be retried.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use kube::{
    api::Api,
    runtime::{events::EventType, reflector::ObjectRef},
    ResourceExt,
};

use super::{
    inventory,
    record::{on_campaign, on_item},
    Context, Error,
};
use crate::{
    api::{AccessCampaign, AccessCertification, SkipReason, SkippedItem},
    certify::{scope, RunPlan, DEFAULT_REVIEW_NAMESPACE},
    controller::owned::is_status,
};

/// How far a launch got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// Items of the run that exist as issued (once complete).
    pub total: u32,
    /// Items this call created.
    pub created: u32,
    /// Every item exists, or was skipped.
    pub complete: bool,
    /// What did not become an item: the core's skips, then this call's
    /// conflicts and refusals (complete once `complete`).
    pub skipped: Vec<SkippedItem>,
    /// The item cap, when the run reached it.
    pub capped: Option<u32>,
}

/// What became of one item.
enum Made {
    Created,
    /// It existed already, as issued.
    Existed,
    /// Another object holds the name.
    Conflict(Box<AccessCertification>),
    /// The API server refused it as invalid.
    Rejected(String),
}

/// Whether an error is the item's own fault (the same item would fail again):
/// the schema refused one of its fields (422 naming a field), or it is too
/// large (413). An admission policy's or webhook's denial is 422 too, but names
/// no field: it is the cluster's configuration, retried like any other failure,
/// never a reason to launch a run without its items.
fn refused(e: &kube::Error) -> Option<String> {
    match e {
        kube::Error::Api(s) if s.code == 413 => Some(s.message.clone()),
        kube::Error::Api(s)
            if s.code == 422
                && s.details
                    .as_ref()
                    .is_some_and(|d| d.causes.iter().any(|c| !c.field.is_empty())) =>
        {
            Some(s.message.clone())
        }
        _ => None,
    }
}

async fn create(api: &Api<AccessCertification>, item: &AccessCertification) -> Result<Made, kube::Error> {
    match super::issue::create(api, item).await {
        Ok(_) => Ok(Made::Created),
        // Created before a restart, by the previous leader, or by someone else.
        Err(e) if is_status(&e, 409) => match api.get_opt(&item.name_any()).await? {
            Some(found) if found.spec == item.spec => Ok(Made::Existed),
            Some(found) => Ok(Made::Conflict(Box::new(found))),
            // Deleted in between: the next slice creates it.
            None => Err(e),
        },
        Err(e) => refused(&e).map(Made::Rejected).ok_or(e),
    }
}

/// Records a name taken by an object that is not this run's item.
fn conflict(
    ctx: &Context,
    campaign: &AccessCampaign,
    wanted: &AccessCertification,
    found: &AccessCertification,
) -> SkippedItem {
    let s = &wanted.spec;
    let binding = s.binding.to_string();
    let note = format!(
        "{} already exists with another spec (binding {}, subject {}): it is not the item of {} in run {}, which is not created; delete it to have the item made",
        found.name_any(),
        found.spec.binding.name,
        found.spec.subject,
        binding,
        s.run
    );
    tracing::warn!(campaign = %campaign.name_any(), item = %found.name_any(), "{note}");
    on_item(ctx, found, EventType::Warning, "ItemConflict", note.clone());
    on_campaign(ctx, campaign, EventType::Warning, "ItemConflict", note.clone());
    scope::skipped(&binding, Some(&s.subject), SkipReason::NameConflict, note)
}

/// Creates the run's missing items until they all exist or the time slice
/// ends. An error on one item does not stop the others; the first one is
/// returned once the rest are done (the run stays unlaunched and is retried).
pub async fn launch(ctx: &Context, campaign: &AccessCampaign, plan: &RunPlan) -> Result<Progress, Error> {
    let launch = items_of(ctx, campaign, plan).await?;
    let mut skipped = launch.skipped.clone();
    let mut missing = Vec::new();
    for item in &launch.items {
        match ctx.cache.items.get(&ObjectRef::from_obj(item)) {
            // Issued, unless memory shows it without its digest (a crash
            // between the create and the status write): created again, the
            // 409 has issue.rs record the digest.
            Some(found) if found.spec == item.spec && !super::issue::needs_issuing(ctx, item) => {}
            Some(found) if found.spec == item.spec => missing.push(item.clone()),
            Some(found) => skipped.push(conflict(ctx, campaign, item, &found)),
            None => missing.push(item.clone()),
        }
    }
    let wanted = missing.len();
    let namespace = campaign
        .spec
        .review_namespace
        .clone()
        .unwrap_or_else(|| DEFAULT_REVIEW_NAMESPACE.to_string());
    let api: Api<AccessCertification> = Api::namespaced(ctx.client.clone(), &namespace);
    let deadline = Instant::now() + ctx.settings.launch_slice;
    let mut creates = futures::stream::iter(missing)
        .map(|item| {
            let api = api.clone();
            async move { (create(&api, &item).await, item) }
        })
        .buffer_unordered(ctx.settings.create_parallelism.max(1));
    let (mut done, mut created, mut first_error) = (0, 0, None);
    while let Some((result, item)) = creates.next().await {
        done += 1;
        match result {
            Ok(Made::Created) => {
                created += 1;
                ctx.metrics.certification_items_created.inc();
            }
            Ok(Made::Existed) => {}
            Ok(Made::Conflict(found)) => skipped.push(conflict(ctx, campaign, &item, &found)),
            Ok(Made::Rejected(why)) => {
                let binding = item.spec.binding.to_string();
                tracing::warn!(item = %item.name_any(), error = %why, "the API server refused an item; skipped");
                let why = format!("the API server refused the item: {why}");
                skipped.push(scope::skipped(
                    &binding,
                    Some(&item.spec.subject),
                    SkipReason::Rejected,
                    why,
                ));
            }
            Err(e) => {
                let name = item.name_any();
                tracing::warn!(item = %name, error = %e, "could not create an item");
                first_error.get_or_insert(e);
            }
        }
        if done < wanted && Instant::now() >= deadline {
            break;
        }
    }
    if let Some(source) = first_error {
        return Err(Error::Launch {
            run: plan.name.clone(),
            namespace,
            source,
        });
    }
    let complete = done == wanted;
    if complete {
        if let Ok(mut launches) = ctx.launches.lock() {
            launches.remove(&launch_key(campaign, plan));
        }
    }
    let lost = skipped.len() - launch.skipped.len();
    Ok(Progress {
        total: u32::try_from(launch.items.len().saturating_sub(lost)).unwrap_or(u32::MAX),
        created,
        complete,
        skipped,
        capped: launch.capped,
    })
}

fn launch_key(campaign: &AccessCampaign, plan: &RunPlan) -> (String, String) {
    (campaign.uid().unwrap_or_default(), plan.name.clone())
}

/// The run's items: computed the first time from the cluster as the API server
/// holds it then ([`inventory::read`]: a binding written just before the run
/// started is in it, however far memory lags), off the async workers (thousands
/// take a while, and the other controllers go on meanwhile); then kept until
/// the launch completes, so each slice of a long launch only creates.
async fn items_of(
    ctx: &Context,
    campaign: &AccessCampaign,
    plan: &RunPlan,
) -> Result<Arc<scope::Launch>, Error> {
    let key = launch_key(campaign, plan);
    if let Some(known) = ctx.launches.lock().ok().and_then(|l| l.get(&key).cloned()) {
        return Ok(known);
    }
    let snapshot = inventory::read(&ctx.client)
        .await
        .map_err(|source| Error::Snapshot {
            run: plan.name.clone(),
            source,
        })?;
    let (c, p) = (campaign.clone(), plan.clone());
    let items = tokio::task::spawn_blocking(move || scope::launch(&c, &p, &snapshot.inventory()))
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let items = Arc::new(items);
    if let Ok(mut launches) = ctx.launches.lock() {
        launches.insert(key, items.clone());
    }
    Ok(items)
}
