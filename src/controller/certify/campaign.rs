//! One campaign: is it valid, is a run due (on its schedule or on demand), the
//! launch of that run, the counts of every run, and the end of their retention.
//!
//! A run is written into `status.runs[]` (without `launchedAt`) before its first
//! item is created, and `launchedAt` is set once every item exists. An operator
//! that restarts (or a new leader) in between finds the run unfinished and
//! creates only the items still missing; it never starts the run again.

use std::sync::Arc;

use futures::StreamExt;
use kube::{
    api::{Api, DeleteParams},
    runtime::{controller::Action as Requeue, events::EventType},
    ResourceExt,
};

use super::{
    bounded, launch,
    record::{self, on_campaign},
    requeue, retry_after, Context, Error,
};
use crate::{
    api::{AccessCampaign, AccessCertification, AccessReview},
    certify::campaign::{self as core, CampaignInput, LaunchOutcome, Note, RunItem},
    controller::owned::is_status,
};

/// Reconciles one AccessCampaign.
pub async fn reconcile_campaign(campaign: Arc<AccessCampaign>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    bounded(&ctx, &campaign.name_any(), reconcile_inner(&campaign, &ctx)).await
}

/// After an error: retry with backoff, never crash.
pub fn campaign_error_policy(campaign: Arc<AccessCampaign>, err: &Error, ctx: Arc<Context>) -> Requeue {
    if let Error::Launch { .. } | Error::Snapshot { .. } = err {
        on_campaign(
            &ctx,
            &campaign,
            EventType::Warning,
            "LaunchFailed",
            format!("{err}; retrying"),
        );
    }
    retry_after(&ctx, "AccessCampaign", campaign.name_any(), err)
}

async fn reconcile_inner(campaign: &AccessCampaign, ctx: &Context) -> Result<Requeue, Error> {
    let now = ctx.now();
    let conditions_read = campaign
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    let mut items = ctx.cache.items_of_campaign(&campaign.name_any());
    let counted = run_items(&items);
    let input = CampaignInput {
        campaign,
        conditions_read: &conditions_read,
        items: &counted,
        launched: None,
        min_review_window: ctx.settings.min_review_window,
        now,
    };
    let mut ev = core::evaluate(&input);
    if !ev.valid {
        record::campaign_status(ctx, campaign, &ev.status).await?;
        return Ok(Requeue::await_change());
    }
    let mut current = campaign.clone();
    if let Some(first) = ev.record_first.take() {
        current = record::campaign_status(ctx, &current, &first.status).await?;
        if let Some(plan) = &first.started {
            tracing::info!(campaign = %current.name_any(), run = %plan.name, trigger = ?plan.trigger, "run started");
        }
        say(ctx, &current, first.note);
    }
    if let Some(plan) = ev.launch.take() {
        let progress = launch::launch(ctx, &current, &plan).await?;
        let outcome = LaunchOutcome {
            at: ctx.now(),
            complete: progress.complete,
            total: progress.total,
            skipped: progress.skipped,
            capped: progress.capped,
        };
        // Counted from memory as it is after the launch.
        items = ctx.cache.items_of_campaign(&current.name_any());
        let counted = run_items(&items);
        ev = core::evaluate(&CampaignInput {
            campaign: &current,
            items: &counted,
            launched: Some(&outcome),
            ..input
        });
        if outcome.complete {
            let skipped = ev.status.runs.last().map_or(0, |r| r.skipped);
            tracing::info!(campaign = %current.name_any(), run = %plan.name, items = outcome.total, skipped, "run launched");
        }
    }
    for note in std::mem::take(&mut ev.notes) {
        say(ctx, &current, note);
    }
    if !ev.expire.is_empty() {
        let expired: Vec<Arc<AccessCertification>> = items
            .into_iter()
            .filter(|i| ev.expire.contains(&i.spec.run))
            .collect();
        delete_items(ctx, &expired).await?;
    }
    for run in runs_removed(campaign, &ev) {
        tracing::info!(campaign = %current.name_any(), run = %run, "run past its retention removed");
    }
    record::campaign_status(ctx, &current, &ev.status).await?;
    Ok(requeue(ev.wait.map(|w| w.to_std().unwrap_or_default())))
}

/// The runs that left `status.runs` in this reconcile (their retention passed).
fn runs_removed(campaign: &AccessCampaign, ev: &core::CampaignEvaluation) -> Vec<String> {
    let before = campaign
        .status
        .as_ref()
        .map(|s| s.runs.as_slice())
        .unwrap_or_default();
    before
        .iter()
        .filter(|r| !ev.status.runs.iter().any(|n| n.name == r.name))
        .map(|r| r.name.clone())
        .collect()
}

fn run_items(items: &[Arc<AccessCertification>]) -> Vec<RunItem> {
    items
        .iter()
        .map(|i| RunItem {
            run: i.spec.run.clone(),
            status: i.status.clone().unwrap_or_default(),
        })
        .collect()
}

fn say(ctx: &Context, campaign: &AccessCampaign, note: Note) {
    let kind = if note.kind.warning() {
        EventType::Warning
    } else {
        EventType::Normal
    };
    on_campaign(ctx, campaign, kind, note.kind.as_str(), note.message);
}

/// Deletes items and the reviews that decide them, a few at a time, within the
/// launch time slice.
async fn delete_items(ctx: &Context, items: &[Arc<AccessCertification>]) -> Result<(), Error> {
    let deadline = std::time::Instant::now() + ctx.settings.launch_slice;
    let mut deletes = futures::stream::iter(items.iter().cloned())
        .map(|item| {
            let client = ctx.client.clone();
            let reviews = ctx.cache.reviews_of_item(&item);
            async move {
                let ns = item.namespace().unwrap_or_default();
                let review_api: Api<AccessReview> = Api::namespaced(client.clone(), &ns);
                for r in reviews {
                    ignore_gone(review_api.delete(&r.name_any(), &DeleteParams::default()).await)?;
                }
                let api: Api<AccessCertification> = Api::namespaced(client, &ns);
                ignore_gone(api.delete(&item.name_any(), &DeleteParams::default()).await)
            }
        })
        .buffer_unordered(ctx.settings.create_parallelism.max(1));
    while let Some(result) = deletes.next().await {
        result.map_err(Error::Kube)?;
        if std::time::Instant::now() >= deadline {
            break;
        }
    }
    Ok(())
}

fn ignore_gone<T>(result: Result<T, kube::Error>) -> Result<(), kube::Error> {
    match result {
        Err(e) if !is_status(&e, 404) => Err(e),
        _ => Ok(()),
    }
}
