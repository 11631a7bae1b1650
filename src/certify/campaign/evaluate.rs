//! One campaign's reconcile as a pure function: from the campaign (its status as
//! read), the items of its runs in memory and `now`, the status to write, what
//! to do first (record a run before its items exist, launch it, delete expired
//! items), what to say (events) and when to look again.
//!
//! A launch creates items, so it is the shell's to do; the evaluation stops at it
//! and is run again with its [`LaunchOutcome`], as [`crate::decide::evaluate`] is
//! run again with a Job it created.

use chrono::{DateTime, Duration, TimeDelta, Utc};
use kube::ResourceExt;

use super::{
    launched_condition, problems, record_skips, retention_until, review_window, run_summary,
    ReviewWindowTooShort,
};
use crate::{
    api::{
        AccessCampaign, AccessCampaignStatus, AccessCertificationStatus, CampaignRun, Condition,
        ConditionStatus, RunTrigger, SkippedItem,
    },
    certify::schedule::{self, RunPlan},
    decide::status::settle_conditions,
};

/// Condition type: the campaign is valid and runs.
pub const READY: &str = "Ready";

/// A launch that did not finish goes on this soon: a launch never holds a
/// worker long.
const LAUNCH_AGAIN: TimeDelta = TimeDelta::milliseconds(100);

/// Expired items asked to be deleted show as gone in memory within moments;
/// their run leaves `status.runs` then.
const EXPIRY_AGAIN: TimeDelta = TimeDelta::seconds(1);

/// A deadline is looked at just after it passes, never just before.
const PAST_DEADLINE: TimeDelta = TimeDelta::milliseconds(50);

/// One item of the campaign, as memory shows it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunItem {
    /// The run it belongs to (`spec.run`).
    pub run: String,
    /// Its status (default while it has none).
    pub status: AccessCertificationStatus,
}

/// What a launch of the run under way achieved.
#[derive(Debug, Clone, PartialEq)]
pub struct LaunchOutcome {
    /// When the launch ended.
    pub at: DateTime<Utc>,
    /// Every item exists, or was skipped.
    pub complete: bool,
    /// Items of the run that exist as issued (once complete).
    pub total: u32,
    /// What did not become an item (once complete).
    pub skipped: Vec<SkippedItem>,
    /// The item cap, when the run reached it.
    pub capped: Option<u32>,
}

/// What one reconcile of a campaign sees.
#[derive(Debug, Clone)]
pub struct CampaignInput<'a> {
    /// The campaign; after a run was recorded in this reconcile, as written.
    pub campaign: &'a AccessCampaign,
    /// Its conditions as the reconcile first read them: transition times are
    /// kept against these, not against a status written in between.
    pub conditions_read: &'a [Condition],
    /// Every item of the campaign in memory.
    pub items: &'a [RunItem],
    /// The launch made in this reconcile, when the evaluation is run again after it.
    pub launched: Option<&'a LaunchOutcome>,
    /// The operator's minimum review window.
    pub min_review_window: Duration,
    /// The instant of the evaluation.
    pub now: DateTime<Utc>,
}

/// What the campaign's events say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteKind {
    /// A run was recorded; its items follow.
    RunStarted,
    /// An on-demand request named a run that exists (same minute).
    RunExists,
    /// Every item of a run exists.
    RunLaunched,
    /// Some bindings × subjects of a run did not become items.
    ItemsSkipped,
    /// A run is due and all its items are closed.
    RunCompleted,
}

impl NoteKind {
    /// The event's reason.
    pub fn as_str(self) -> &'static str {
        match self {
            NoteKind::RunStarted => "RunStarted",
            NoteKind::RunExists => "RunExists",
            NoteKind::RunLaunched => "RunLaunched",
            NoteKind::ItemsSkipped => "ItemsSkipped",
            NoteKind::RunCompleted => "RunCompleted",
        }
    }

    /// Whether the event is a warning (someone may have to act).
    pub fn warning(self) -> bool {
        matches!(self, NoteKind::RunExists | NoteKind::ItemsSkipped)
    }
}

/// One event to emit on the campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// What it says.
    pub kind: NoteKind,
    /// For people.
    pub message: String,
}

/// A status to record before anything else happens.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordFirst {
    /// The status to write now.
    pub status: AccessCampaignStatus,
    /// The event to emit once it is written.
    pub note: Note,
    /// The run this starts, if any (a request for an existing run starts none).
    pub started: Option<RunPlan>,
}

/// What the shell does for a campaign, in this order.
#[derive(Debug, Clone, PartialEq)]
pub struct CampaignEvaluation {
    /// The campaign is valid; an invalid one waits for a change.
    pub valid: bool,
    /// A run starts (its entry precedes its items), or a request asked for a
    /// run that exists: this status is written first.
    pub record_first: Option<RecordFirst>,
    /// Create this run's missing items, then evaluate again with the
    /// [`LaunchOutcome`]: what follows depends on it and is left empty here.
    pub launch: Option<RunPlan>,
    /// Delete the items (and their reviews) of these runs: past their retention.
    pub expire: Vec<String>,
    /// The status to write.
    pub status: AccessCampaignStatus,
    /// Events to emit.
    pub notes: Vec<Note>,
    /// When to look again; `None`: only on a change.
    pub wait: Option<TimeDelta>,
}

/// Evaluates a campaign. See the module documentation.
pub fn evaluate(input: &CampaignInput) -> CampaignEvaluation {
    let (campaign, now) = (input.campaign, input.now);
    let generation = campaign.metadata.generation;
    let mut status = campaign.status.clone().unwrap_or_default();
    status.observed_generation = generation;
    let mut ev = CampaignEvaluation {
        valid: true,
        record_first: None,
        launch: None,
        expire: Vec::new(),
        status: AccessCampaignStatus::default(),
        notes: Vec::new(),
        wait: None,
    };
    let mut problems = problems(campaign);
    let reason = match review_window(campaign, input.min_review_window) {
        Err(e) if problems.is_empty() => {
            problems.push(e.to_string());
            ReviewWindowTooShort::REASON
        }
        _ => "Invalid",
    };
    status.conditions = vec![ready(&status.conditions, (&problems, reason), generation, now)];
    if !problems.is_empty() {
        status.next_run_at = None;
        ev.valid = false;
        ev.status = status;
        return ev;
    }
    if input.launched.is_none() && status.runs.last().is_none_or(|r| r.launched_at.is_some()) {
        ev.record_first = start_due_run(campaign, &mut status, input.min_review_window, now);
    }
    let mut wait = None;
    if let Some(run) = status.runs.last_mut().filter(|r| r.launched_at.is_none()) {
        // The shell reads the cluster for the items when it launches, so what
        // was written just before the start is in the run: it launches at once.
        match input.launched {
            None => {
                ev.launch = Some(plan_of(campaign, run));
                ev.status = status;
                return ev;
            }
            Some(outcome) if outcome.complete => {
                run.launched_at = Some(outcome.at);
                run.items = outcome.total;
                record_skips(run, &outcome.skipped, outcome.capped);
                ev.notes.extend(launched_notes(run));
            }
            Some(_) => wait = Some(LAUNCH_AGAIN),
        }
    }
    let retention = expire_runs(input, &mut status, &mut ev.expire);
    ev.notes.extend(count_runs(input, &mut status));
    if let Some(run) = status.runs.last() {
        let launched = launched_condition(run, generation, now);
        let conditions = [status.conditions.clone(), vec![launched]].concat();
        status.conditions = settle_conditions(conditions, input.conditions_read);
    }
    status.next_run_at = schedule::next_run_at(campaign, now).unwrap_or(None);
    let due = status
        .runs
        .iter()
        .filter(|r| r.due_at > now)
        .map(|r| until(r.due_at, now))
        .min();
    let next = status.next_run_at.map(|t| until(t, now));
    ev.wait = [wait, retention, due, next].into_iter().flatten().min();
    ev.status = status;
    ev
}

/// The wait until just past a deadline (none for one already past).
fn until(deadline: DateTime<Utc>, now: DateTime<Utc>) -> TimeDelta {
    (deadline - now).max(TimeDelta::zero()) + PAST_DEADLINE
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

/// The run entry's plan.
pub fn plan_of(campaign: &AccessCampaign, run: &CampaignRun) -> RunPlan {
    RunPlan {
        campaign: campaign.name_any(),
        name: run.name.clone(),
        started_at: run.started_at,
        due_at: run.due_at,
        trigger: run.trigger.unwrap_or(RunTrigger::Scheduled),
    }
}

/// Records the run that is due now, if any, before any of its items exists.
fn start_due_run(
    campaign: &AccessCampaign,
    status: &mut AccessCampaignStatus,
    min_review_window: Duration,
    now: DateTime<Utc>,
) -> Option<RecordFirst> {
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
    let Ok(Some(plan)) = schedule::due_run(campaign, last, now) else {
        return None;
    };
    if plan.trigger == RunTrigger::Requested {
        status.last_requested_at = Some(plan.started_at);
    }
    if status.runs.iter().any(|r| r.name == plan.name) {
        // Runs are named by their start minute: a second request in the same
        // minute is the same run.
        let message = format!(
            "run {} already exists: runs are named by the minute they start in; ask again in the next minute",
            plan.name
        );
        let note = Note {
            kind: NoteKind::RunExists,
            message,
        };
        return Some(RecordFirst {
            status: status.clone(),
            note,
            started: None,
        });
    }
    // A run started late still gives reviewers the minimum window.
    let plan = RunPlan {
        due_at: super::due_at(plan.due_at, now, min_review_window),
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
    let message = format!(
        "run {} started ({}); due {}",
        plan.name,
        plan.trigger,
        plan.due_at.to_rfc3339()
    );
    Some(RecordFirst {
        status: status.clone(),
        note: Note {
            kind: NoteKind::RunStarted,
            message,
        },
        started: Some(plan),
    })
}

fn launched_notes(run: &CampaignRun) -> Vec<Note> {
    let mut notes = vec![Note {
        kind: NoteKind::RunLaunched,
        message: format!(
            "run {}: {} items to review by {}",
            run.name,
            run.items,
            run.due_at.to_rfc3339()
        ),
    }];
    if run.skipped > 0 {
        notes.push(Note {
            kind: NoteKind::ItemsSkipped,
            message: format!(
                "run {}: {} bindings × subjects did not become items (status.runs[].skippedItems)",
                run.name, run.skipped
            ),
        });
    }
    notes
}

/// The runs past their retention: their items are to be deleted (`expire`),
/// and a run leaves `runs` once none of its items is left. Returns when to look
/// again.
fn expire_runs(
    input: &CampaignInput,
    status: &mut AccessCampaignStatus,
    expire: &mut Vec<String>,
) -> Option<TimeDelta> {
    let (campaign, now) = (input.campaign, input.now);
    let mut wait: Option<TimeDelta> = None;
    let mut expired = Vec::new();
    for run in &status.runs {
        match retention_until(campaign, &plan_of(campaign, run)) {
            Ok(t) if t <= now => expired.push(run.name.clone()),
            Ok(t) => wait = Some(wait.map_or(until(t, now), |w| w.min(until(t, now)))),
            Err(_) => {}
        }
    }
    for run in expired {
        if input.items.iter().any(|i| i.run == run) {
            expire.push(run);
        } else {
            status.runs.retain(|r| r.name != run);
        }
    }
    if expire.is_empty() {
        return wait;
    }
    Some(wait.map_or(EXPIRY_AGAIN, |w| w.min(EXPIRY_AGAIN)))
}

/// Fills each run's counts from its items in memory; a run past its due time
/// whose items are all closed is complete. Returns the runs completed now.
fn count_runs(input: &CampaignInput, status: &mut AccessCampaignStatus) -> Vec<Note> {
    let (campaign, now) = (input.campaign, input.now);
    let mut notes = Vec::new();
    for run in &mut status.runs {
        let statuses: Vec<&AccessCertificationStatus> = input
            .items
            .iter()
            .filter(|i| i.run == run.name)
            .map(|i| &i.status)
            .collect();
        let counts = run_summary(&plan_of(campaign, run), &statuses);
        let all_closed = statuses.iter().all(|s| s.closed_at.is_some());
        let completed = run
            .completed_at
            .or_else(|| (run.launched_at.is_some() && run.due_at <= now && all_closed).then_some(now));
        if completed.is_some() && run.completed_at.is_none() {
            notes.push(Note {
                kind: NoteKind::RunCompleted,
                message: format!(
                    "run {} completed: {} items, {} approved, {} revoked, {} unreviewed, {} remediated",
                    run.name,
                    counts.items,
                    counts.approved,
                    counts.revoked,
                    counts.unreviewed,
                    counts.remediated
                ),
            });
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
    notes
}
