//! One campaign: is it valid, is a run due (on its schedule or on demand), the
//! launch of that run, the counts of every run, and the end of their retention.
//!
//! A run is written into `status.runs[]` (without `launchedAt`) before its first
//! item is created, and `launchedAt` is set once every item exists. An operator
//! that restarts (or a new leader) in between finds the run unfinished and
//! creates only the items still missing; it never starts the run again.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use kube::{
    api::{Api, DeleteParams},
    runtime::{controller::Action as Requeue, events::EventType},
    ResourceExt,
};

use super::{
    bounded, launch,
    record::{self, on_campaign},
    requeue, retry_after, sooner, until, Context, Error,
};
use crate::{
    api::{
        AccessCampaign, AccessCampaignStatus, AccessCertification, AccessCertificationStatus, AccessReview,
        CampaignRun, Condition, ConditionStatus, RunTrigger,
    },
    certify::{campaign as core, schedule, RunPlan},
    controller::owned::is_status,
    decide::status::settle_conditions,
};

/// Condition type: the campaign is valid and runs.
pub const READY: &str = "Ready";

/// Reconciles one AccessCampaign.
pub async fn reconcile_campaign(campaign: Arc<AccessCampaign>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    bounded(&ctx, &campaign.name_any(), reconcile_inner(&campaign, &ctx)).await
}

/// After an error: retry with backoff, never crash.
pub fn campaign_error_policy(campaign: Arc<AccessCampaign>, err: &Error, ctx: Arc<Context>) -> Requeue {
    if let Error::Launch { .. } = err {
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

fn ready(
    prev: &[Condition],
    (problems, reason): (&[String], &str),
    generation: Option<i64>,
    now: DateTime<Utc>,
) -> Condition {
    let (status, reason, message) = match problems {
        [] => (
            ConditionStatus::True,
            "Valid",
            "the schedule, time zone and durations are valid".to_string(),
        ),
        _ => (ConditionStatus::False, reason, problems.join("; ")),
    };
    let since = prev
        .iter()
        .find(|c| c.type_ == READY && c.status == status)
        .map_or(now, |c| c.last_transition_time);
    Condition {
        type_: READY.into(),
        status,
        reason: reason.into(),
        message,
        observed_generation: generation,
        last_transition_time: since,
    }
}

/// How long after a run's start its items are taken from memory: a binding
/// written just before the start (a campaign applied right after its bindings)
/// reaches the watches within this, even on a busy API server.
const LAUNCH_SETTLE: chrono::TimeDelta = chrono::TimeDelta::seconds(2);

fn plan_of(campaign: &AccessCampaign, run: &CampaignRun) -> RunPlan {
    RunPlan {
        campaign: campaign.name_any(),
        name: run.name.clone(),
        started_at: run.started_at,
        due_at: run.due_at,
        trigger: run.trigger.unwrap_or(RunTrigger::Scheduled),
    }
}

async fn reconcile_inner(campaign: &AccessCampaign, ctx: &Context) -> Result<Requeue, Error> {
    let now = ctx.now();
    let mut status = campaign.status.clone().unwrap_or_default();
    let prev_conditions = status.conditions.clone();
    status.observed_generation = campaign.metadata.generation;
    let mut problems = core::problems(campaign);
    let reason = match core::review_window(campaign, ctx.settings.min_review_window) {
        Err(e) if problems.is_empty() => {
            problems.push(e.to_string());
            core::ReviewWindowTooShort::REASON
        }
        _ => "Invalid",
    };
    status.conditions = vec![ready(
        &status.conditions,
        (&problems, reason),
        campaign.metadata.generation,
        now,
    )];
    if !problems.is_empty() {
        status.next_run_at = None;
        record::campaign_status(ctx, campaign, &status).await?;
        return Ok(Requeue::await_change());
    }
    let mut current = campaign.clone();
    if status.runs.last().is_none_or(|r| r.launched_at.is_some()) {
        current = start_due_run(ctx, current, &mut status, now).await?;
    }
    let mut wait = None;
    let unlaunched = status.runs.last_mut().filter(|r| r.launched_at.is_none());
    // What was written just before the run started may still be on its way to
    // memory: items are taken from memory a moment after the start, not at it.
    let settled = |r: &CampaignRun| r.started_at + LAUNCH_SETTLE;
    if let Some(run) = unlaunched.as_ref().filter(|r| now < settled(r)) {
        let left = (settled(run) - now).to_std().unwrap_or_default();
        wait = Some(left);
    } else if let Some(run) = unlaunched {
        let plan = plan_of(&current, run);
        let progress = launch::launch(ctx, &current, &plan).await?;
        if progress.complete {
            run.launched_at = Some(ctx.now());
            run.items = progress.total;
            core::record_skips(run, &progress.skipped, progress.capped);
            tracing::info!(campaign = %current.name_any(), run = %run.name, items = progress.total, skipped = run.skipped, "run launched");
            let note = format!(
                "run {}: {} items to review by {}",
                run.name,
                progress.total,
                run.due_at.to_rfc3339()
            );
            on_campaign(ctx, &current, EventType::Normal, "RunLaunched", note);
            if run.skipped > 0 {
                let note = format!(
                    "run {}: {} bindings × subjects did not become items (status.runs[].skippedItems)",
                    run.name, run.skipped
                );
                on_campaign(ctx, &current, EventType::Warning, "ItemsSkipped", note);
            }
        } else {
            // Go on at once, in the next reconcile: a launch never holds a worker long.
            wait = Some(StdDuration::from_millis(100));
        }
    }
    let retention = expire_runs(ctx, &current, &mut status, now).await?;
    count_runs(ctx, &current, &mut status, now);
    if let Some(run) = status.runs.last() {
        let launched = core::launched_condition(run, campaign.metadata.generation, now);
        let conditions = [status.conditions.clone(), vec![launched]].concat();
        status.conditions = settle_conditions(conditions, &prev_conditions);
    }
    status.next_run_at = schedule::next_run_at(&current, now).unwrap_or(None);
    record::campaign_status(ctx, &current, &status).await?;

    let due = status
        .runs
        .iter()
        .filter(|r| r.due_at > now)
        .map(|r| until(r.due_at, now))
        .min();
    let next = status.next_run_at.map(|t| until(t, now));
    Ok(requeue(sooner(sooner(wait, retention), sooner(due, next))))
}

/// Records the run that is due now, if any, before any of its items exists.
async fn start_due_run(
    ctx: &Context,
    campaign: AccessCampaign,
    status: &mut AccessCampaignStatus,
    now: DateTime<Utc>,
) -> Result<AccessCampaign, Error> {
    // The last start honoured, even if its run has left `runs` (retention), and
    // the last on-demand request honoured, even if it started no run.
    let last = [
        status.last_run_started_at,
        status.runs.last().map(|r| r.started_at),
        status.last_requested_at,
    ]
    .into_iter()
    .flatten()
    .max();
    let Ok(Some(plan)) = schedule::due_run(&campaign, last, now) else {
        return Ok(campaign);
    };
    if plan.trigger == RunTrigger::Requested {
        status.last_requested_at = Some(plan.started_at);
    }
    if status.runs.iter().any(|r| r.name == plan.name) {
        // Runs are named by their start minute: a second request in the same
        // minute is the same run.
        let note = format!(
            "run {} already exists: runs are named by the minute they start in; ask again in the next minute",
            plan.name
        );
        on_campaign(ctx, &campaign, EventType::Warning, "RunExists", note);
        return record::campaign_status(ctx, &campaign, status).await;
    }
    // A run started late still gives reviewers the minimum window.
    let plan = RunPlan {
        due_at: core::due_at(plan.due_at, now, ctx.settings.min_review_window),
        ..plan
    };
    status.runs.push(CampaignRun {
        name: plan.name.clone(),
        started_at: plan.started_at,
        due_at: plan.due_at,
        trigger: Some(plan.trigger),
        ..Default::default()
    });
    status.last_run = Some(plan.name.clone());
    status.last_run_started_at = Some(plan.started_at);
    let written = record::campaign_status(ctx, &campaign, status).await?;
    tracing::info!(campaign = %campaign.name_any(), run = %plan.name, trigger = ?plan.trigger, "run started");
    let note = format!(
        "run {} started ({:?}); due {}",
        plan.name,
        plan.trigger,
        plan.due_at.to_rfc3339()
    );
    on_campaign(ctx, &written, EventType::Normal, "RunStarted", note);
    Ok(written)
}

/// Fills each run's counts from its items in memory; a run past its due time
/// whose items are all closed is complete.
fn count_runs(
    ctx: &Context,
    campaign: &AccessCampaign,
    status: &mut AccessCampaignStatus,
    now: DateTime<Utc>,
) {
    let items = ctx.cache.items_of_campaign(&campaign.name_any());
    for run in &mut status.runs {
        let statuses: Vec<AccessCertificationStatus> = items
            .iter()
            .filter(|i| i.spec.run == run.name)
            .map(|i| i.status.clone().unwrap_or_default())
            .collect();
        let refs: Vec<&AccessCertificationStatus> = statuses.iter().collect();
        let counts = core::run_summary(&plan_of(campaign, run), &refs);
        let all_closed = statuses.iter().all(|s| s.closed_at.is_some());
        let completed = run
            .completed_at
            .or_else(|| (run.launched_at.is_some() && run.due_at <= now && all_closed).then_some(now));
        if completed.is_some() && run.completed_at.is_none() {
            let note = format!(
                "run {} completed: {} items, {} approved, {} revoked, {} unreviewed, {} remediated",
                run.name, counts.items, counts.approved, counts.revoked, counts.unreviewed, counts.remediated
            );
            on_campaign(ctx, campaign, EventType::Normal, "RunCompleted", note);
        }
        *run = CampaignRun {
            launched_at: run.launched_at,
            completed_at: completed,
            trigger: run.trigger,
            skipped: run.skipped,
            skipped_items: std::mem::take(&mut run.skipped_items),
            item_cap: run.item_cap,
            // While launching, the items memory holds so far; once launched, how
            // many the launch made (memory may still be catching up).
            items: match run.launched_at {
                Some(_) => run.items,
                None => counts.items,
            },
            ..counts
        };
    }
}

/// Deletes the items of runs past their retention, and their reviews; a run
/// leaves `runs` once none of its items is left. Returns when to look again.
async fn expire_runs(
    ctx: &Context,
    campaign: &AccessCampaign,
    status: &mut AccessCampaignStatus,
    now: DateTime<Utc>,
) -> Result<Option<StdDuration>, Error> {
    let mut wait = None;
    let mut expired = Vec::new();
    for run in &status.runs {
        match core::retention_until(campaign, &plan_of(campaign, run)) {
            Ok(until_t) if until_t <= now => expired.push(run.name.clone()),
            Ok(until_t) => wait = sooner(wait, Some(until(until_t, now))),
            Err(_) => {}
        }
    }
    if expired.is_empty() {
        return Ok(wait);
    }
    let items: Vec<Arc<AccessCertification>> = ctx
        .cache
        .items_of_campaign(&campaign.name_any())
        .into_iter()
        .filter(|i| expired.contains(&i.spec.run))
        .collect();
    for run in &expired {
        if !items.iter().any(|i| &i.spec.run == run) {
            status.runs.retain(|r| &r.name != run);
            tracing::info!(campaign = %campaign.name_any(), run = %run, "run past its retention removed");
        }
    }
    if items.is_empty() {
        return Ok(wait);
    }
    delete_items(ctx, &items).await?;
    // Memory shows them gone in a moment; the run leaves `runs` then.
    Ok(sooner(wait, Some(StdDuration::from_secs(1))))
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
