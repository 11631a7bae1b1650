//! What the controller writes to a campaign: whether it is valid, how far each run
//! is, and how long a run's items are kept. [`evaluate()`] puts these together
//! into one reconcile's status, actions and next wake-up.

use chrono::{DateTime, Utc};

pub mod evaluate;

pub use self::evaluate::{
    evaluate, plan_of, CampaignEvaluation, CampaignInput, LaunchOutcome, Note, NoteKind, RecordFirst,
    RunItem, READY,
};
use super::{
    schedule::{review_period, RunPlan, Schedule},
    DEFAULT_RETENTION,
};
use crate::{
    api::{
        AccessCampaign, AccessCertificationStatus, CampaignRun, Condition, ConditionStatus, ItemDecision,
        Outcome, RemediationState, SkipReason, SkippedItem,
    },
    decide::{duration, status::condition},
};

/// Whether a run's review is over for the people in it: every item decided, or
/// the due time reached. This is when reviewers hear that the run completed;
/// the run's `completedAt` comes later, once every item is also closed (its
/// removals done).
pub fn review_over(run: &CampaignRun, now: DateTime<Utc>) -> bool {
    let decided = run.items > 0 && run.approved + run.revoked >= run.items;
    decided || now >= run.due_at
}

/// Condition type: how the latest run's launch ended.
pub const LAUNCHED: &str = "Launched";
/// Skipped items a run lists at most (`skipped` counts them all).
pub const LISTED_SKIPS: usize = 20;

/// Records in the run what its launch skipped: how many, the first
/// [`LISTED_SKIPS`] (those a person can act on first: invalid, refused and
/// conflicting items before those past the cap), and the cap if it was reached.
pub fn record_skips(run: &mut CampaignRun, skipped: &[SkippedItem], capped: Option<u32>) {
    run.skipped = u32::try_from(skipped.len()).unwrap_or(u32::MAX);
    let mut listed = skipped.to_vec();
    listed.sort_by_key(|s| s.reason == SkipReason::ItemCap);
    listed.truncate(LISTED_SKIPS);
    run.skipped_items = listed;
    run.item_cap = capped;
}

/// The `Launched` condition for the latest run, if there is one: `False` while
/// its items are being created, then `True` with `AllItemsCreated`,
/// `ItemsSkipped` or `ItemCapReached`. A launch always ends; what it could not
/// create is listed in the run, never retried in a loop.
pub fn launched_condition(run: &CampaignRun, generation: Option<i64>, now: DateTime<Utc>) -> Condition {
    let (status, reason, message) = match (run.launched_at, run.item_cap, run.skipped) {
        (None, _, _) => (
            ConditionStatus::False,
            "Launching",
            format!("run {}: creating its items", run.name),
        ),
        (Some(_), Some(cap), n) => (
            ConditionStatus::True,
            "ItemCapReached",
            format!(
                "run {}: {} items; {n} bindings × subjects skipped, the run reached spec.maxItemsPerRun ({cap}): narrow the scope or raise the cap",
                run.name, run.items
            ),
        ),
        (Some(_), None, 0) => (
            ConditionStatus::True,
            "AllItemsCreated",
            format!("run {}: {} items", run.name, run.items),
        ),
        (Some(_), None, n) => (
            ConditionStatus::True,
            "ItemsSkipped",
            format!(
                "run {}: {} items; {n} bindings × subjects could not become items (status.runs[].skippedItems says why)",
                run.name, run.items
            ),
        ),
    };
    let at = run.launched_at.unwrap_or(now);
    condition(LAUNCHED, status, reason, message, at, generation)
}

/// Problems with a campaign itself, each naming its field; empty when valid. The
/// API server checks shapes; this checks what it cannot (the zone exists, the
/// schedule parses as cron, durations are positive).
pub fn problems(campaign: &AccessCampaign) -> Vec<String> {
    let spec = &campaign.spec;
    let mut out = Vec::new();
    if let Some(s) = &spec.schedule {
        if let Err(e) = Schedule::parse(s, spec.time_zone.as_deref()) {
            out.push(e.to_string());
        }
    }
    match review_period(campaign) {
        Ok(d) if d <= chrono::Duration::zero() => out.push("spec.duration: must be longer than zero".into()),
        Ok(_) => {}
        Err(e) => out.push(e.to_string()),
    }
    let mut check = |field: &str, value: Option<&String>| {
        if let Some(Err(e)) = value.map(|v| duration::parse(v)) {
            out.push(format!("{field}: {e}"));
        }
    };
    check(
        "spec.escalation.after",
        spec.escalation.as_ref().map(|e| &e.after),
    );
    check("spec.retention", spec.retention.as_ref());
    out
}

/// A review window shorter than the operator's minimum: reviewers would not
/// have time, and every item would fall to `onNoDecision` at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("spec.duration: the review window {window} is shorter than this operator's minimum of {minimum} (reviewers need time to decide; the minimum is the operator's --certification-min-review-window)")]
pub struct ReviewWindowTooShort {
    /// The campaign's window, as written.
    pub window: String,
    /// The minimum, as configured.
    pub minimum: String,
}

impl ReviewWindowTooShort {
    /// The reason of the campaign's `Ready` condition.
    pub const REASON: &'static str = "ReviewWindowTooShort";
}

/// Checks the campaign's review window against the operator's minimum. A
/// window that does not parse is one of [`problems`], not this.
pub fn review_window(
    campaign: &AccessCampaign,
    minimum: chrono::Duration,
) -> Result<(), ReviewWindowTooShort> {
    match review_period(campaign) {
        Ok(d) if d < minimum => Err(ReviewWindowTooShort {
            window: campaign
                .spec
                .duration
                .clone()
                .unwrap_or_else(|| super::DEFAULT_DURATION.into()),
            minimum: duration::format(minimum),
        }),
        _ => Ok(()),
    }
}

/// When a run that starts now is due: its planned due time, but never less than
/// the minimum window from now. A run started late (a scheduled start missed
/// while the operator was down, an on-demand request dated in the past) still
/// gives reviewers the minimum instead of falling due at once.
pub fn due_at(planned: DateTime<Utc>, now: DateTime<Utc>, minimum: chrono::Duration) -> DateTime<Utc> {
    planned.max(now + minimum)
}

/// Until when a run's items and their reviews are kept: the due time plus the
/// campaign's retention (default one year).
pub fn retention_until(campaign: &AccessCampaign, run: &RunPlan) -> Result<DateTime<Utc>, String> {
    let text = campaign.spec.retention.as_deref().unwrap_or(DEFAULT_RETENTION);
    duration::parse(text)
        .map(|d| run.due_at + d)
        .map_err(|e| format!("spec.retention: {e}"))
}

/// The entry of `status.runs[]` for a run with these item statuses.
pub fn run_summary(run: &RunPlan, items: &[&AccessCertificationStatus]) -> CampaignRun {
    let count = |f: &dyn Fn(&AccessCertificationStatus) -> bool| items.iter().filter(|s| f(s)).count() as u32;
    CampaignRun {
        name: run.name.clone(),
        started_at: run.started_at,
        due_at: run.due_at,
        items: items.len() as u32,
        approved: count(&|s| s.decision == ItemDecision::Approved),
        revoked: count(&|s| s.decision == ItemDecision::Revoked),
        unreviewed: count(&|s| s.decision == ItemDecision::Unreviewed),
        remediated: count(&|s| {
            s.outcome == Outcome::Remove
                && s.remediation
                    .as_ref()
                    .is_some_and(|r| matches!(r.state, RemediationState::Done | RemediationState::Gone))
        }),
        failed: count(&|s| remediation_is(s, RemediationState::Failed)),
        managed_externally: count(&|s| remediation_is(s, RemediationState::ManagedExternally)),
        trigger: Some(run.trigger),
        ..Default::default()
    }
}

fn remediation_is(s: &AccessCertificationStatus, state: RemediationState) -> bool {
    s.outcome == Outcome::Remove && s.remediation.as_ref().is_some_and(|r| r.state == state)
}
