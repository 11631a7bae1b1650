//! Creating the items of a run: the core says which ([`crate::certify::launch`]),
//! from the cluster in memory; this creates those that do not exist yet, a few
//! at a time, for a bounded slice of time. Names are deterministic, so an item
//! created before a restart (or by the previous leader) is found in memory or
//! answered `AlreadyExists`, never made twice.

use std::{sync::Arc, time::Instant};

use futures::StreamExt;
use kube::{api::Api, ResourceExt};

use super::{inventory, Context, Error};
use crate::{
    api::{AccessCampaign, AccessCertification},
    certify::{scope, RunPlan, DEFAULT_REVIEW_NAMESPACE},
    controller::owned::is_status,
};

/// How far a launch got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Items of the run.
    pub total: u32,
    /// Items this call created.
    pub created: u32,
    /// Every item exists.
    pub complete: bool,
}

/// Creates the run's missing items until they all exist or the time slice
/// ends. An error on one item does not stop the others; the first one is
/// returned once the rest are done (the run stays unlaunched and is retried).
pub async fn launch(ctx: &Context, campaign: &AccessCampaign, plan: &RunPlan) -> Result<Progress, Error> {
    let items = items_of(ctx, campaign, plan).await?;
    let total = u32::try_from(items.len()).unwrap_or(u32::MAX);
    let missing: Vec<AccessCertification> = items
        .iter()
        .filter(|i| super::issue::needs_issuing(ctx, i))
        .cloned()
        .collect();
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
            async move {
                match super::issue::create(&api, &item).await {
                    Ok(_) => Ok(true),
                    // Created before a restart, or by the previous leader.
                    Err(e) if is_status(&e, 409) => Ok(false),
                    Err(e) => Err((item.name_any(), e)),
                }
            }
        })
        .buffer_unordered(ctx.settings.create_parallelism.max(1));
    let (mut done, mut created, mut first_error) = (0, 0, None);
    while let Some(result) = creates.next().await {
        done += 1;
        match result {
            Ok(true) => {
                created += 1;
                ctx.metrics.certification_items_created.inc();
            }
            Ok(false) => {}
            Err((name, e)) => {
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
    Ok(Progress {
        total,
        created,
        complete,
    })
}

fn launch_key(campaign: &AccessCampaign, plan: &RunPlan) -> (String, String) {
    (campaign.uid().unwrap_or_default(), plan.name.clone())
}

/// The run's items: computed from memory the first time (off the async workers:
/// thousands take a while, and the other controllers go on meanwhile), then kept
/// until the launch completes, so each slice of a long launch only creates.
async fn items_of(
    ctx: &Context,
    campaign: &AccessCampaign,
    plan: &RunPlan,
) -> Result<Arc<Vec<AccessCertification>>, Error> {
    let key = launch_key(campaign, plan);
    if let Some(known) = ctx.launches.lock().ok().and_then(|l| l.get(&key).cloned()) {
        return Ok(known);
    }
    let (cache, c, p) = (ctx.cache.clone(), campaign.clone(), plan.clone());
    let items = tokio::task::spawn_blocking(move || scope::launch(&c, &p, &inventory::whole(&cache)).items)
        .await
        .map_err(|e| Error::Task(e.to_string()))?;
    let items = Arc::new(items);
    if let Ok(mut launches) = ctx.launches.lock() {
        launches.insert(key, items.clone());
    }
    Ok(items)
}
