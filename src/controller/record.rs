//! What the operator writes down: each review's verdict, the request's status
//! (only when it changed), an Event per phase change, and failures to act.

use chrono::{DateTime, Utc};
use kube::{
    api::{Api, Patch, PatchParams, PostParams},
    runtime::events::EventType,
    ResourceExt,
};
use serde_json::json;
use tracing::{debug, info, warn};

use super::{owned, written::Written, Context, Error};
use crate::{
    api::{AccessReview, AccessReviewStatus, ApprovalRequest, ConditionStatus, Phase, ReviewReason},
    decide::{
        self,
        reason::{ApprovalKind, Failure},
        Evaluation,
    },
    metrics,
};

/// Writes each review's verdict to its status, only when it changed.
pub async fn record_reviews(
    ctx: &Context,
    ns: &str,
    reviews: &[AccessReview],
    ev: &Evaluation,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let verdicts = ev.verdicts.iter().map(|v| VerdictView {
        review: &v.review,
        accepted: v.accepted,
        reason: v.reason.into(),
        message: &v.message,
    });
    write_verdicts(&ctx.client, &ctx.written_verdict, ns, reviews, verdicts, now)
        .await
        .map_err(Error::Kube)
}

/// A review's verdict as written to its status.
pub struct VerdictView<'a> {
    /// Name of the AccessReview.
    pub review: &'a str,
    /// Whether it counted.
    pub accepted: bool,
    /// How it counted or why not.
    pub reason: ReviewReason,
    /// In words.
    pub message: &'a str,
}

/// Writes each verdict to its review's status, only when it changed (requests'
/// and certification items' reviews alike) and was not just written over the
/// version memory holds ([`Written`]). A review deleted meanwhile is fine.
pub async fn write_verdicts<'a>(
    client: &kube::Client,
    written: &Written<AccessReviewStatus>,
    ns: &str,
    reviews: &[AccessReview],
    verdicts: impl Iterator<Item = VerdictView<'a>>,
    now: DateTime<Utc>,
) -> Result<(), kube::Error> {
    let api: Api<AccessReview> = Api::namespaced(client.clone(), ns);
    for v in verdicts {
        let Some(review) = reviews.iter().find(|r| r.name_any() == v.review) else {
            continue;
        };
        let current = review.status.clone().unwrap_or_default();
        let shown = current.accepted == Some(v.accepted)
            && current.reason == Some(v.reason)
            && current.message.as_deref() == Some(v.message);
        // The verdict without its time: what decides whether it changed.
        let verdict = AccessReviewStatus {
            accepted: Some(v.accepted),
            reason: Some(v.reason),
            message: Some(v.message.to_string()),
            observed_at: None,
        };
        let key = format!("{ns}/{}", v.review);
        let version = review.resource_version().unwrap_or_default();
        // Asked even when memory shows the verdict: memory past the version
        // written over drops the note, which would otherwise stay as long as the
        // review (a note per live grant).
        if written.already(&key, &version, &verdict) || shown {
            continue;
        }
        // The first judgement's instant stays: the replay orders reviews of one
        // second by it (decide::order), so it must not move when a verdict does.
        let status = AccessReviewStatus {
            observed_at: current.observed_at.or(Some(now)),
            ..verdict.clone()
        };
        let patch = json!({"status": status});
        match api
            .patch_status(v.review, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(e) if !owned::is_status(&e, 404) => return Err(e),
            _ => written.wrote(key, version, verdict),
        }
    }
    Ok(())
}

/// Writes the request's status when it changed, and announces a phase change.
pub async fn record_status(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    ev: &Evaluation,
) -> Result<(), Error> {
    if req.status.as_ref() == Some(&ev.status) {
        debug!(request = %req.name_any(), "status unchanged");
        return Ok(());
    }
    // Replace, not merge: fields that disappear (eligibleReviewers after approval)
    // must disappear; the resourceVersion makes a stale write fail and retry.
    let mut updated = req.clone();
    updated.status = Some(ev.status.clone());
    let written = api
        .replace_status(&req.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::Kube)?;
    ctx.superseded.wrote(
        &decide::naming::request_key(req),
        req.resource_version().unwrap_or_default(),
        written.resource_version().unwrap_or_default(),
    );
    // Notifications are derived from the status as stored (never blocks).
    ctx.notify.observe_request(&written);
    let before = req.status.as_ref().map(|s| s.phase);
    if before != Some(ev.status.phase) {
        announce(req, ctx, before, ev);
    }
    Ok(())
}

fn announce(req: &ApprovalRequest, ctx: &Context, before: Option<Phase>, ev: &Evaluation) {
    let s = &ev.status;
    let phase = s.phase;
    ctx.metrics
        .transitions
        .get_or_create(&metrics::PhaseLabel {
            phase: phase.as_str().to_string(),
        })
        .inc();
    let message = |t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    let forced = ev.approval == Some(ApprovalKind::ForceApproved);
    if phase == Phase::Active && before.is_none_or(|b| b == Phase::Pending) {
        if let (Some(approved), Some(granted)) = (s.approved_at, s.grant.as_ref().and_then(|g| g.granted_at))
        {
            let latency = (((ctx.clock)()) - approved.max(granted))
                .num_milliseconds()
                .max(0);
            ctx.metrics.approval_to_grant.observe(latency as f64 / 1000.0);
        }
    }
    let (type_, reason, note) = match phase {
        Phase::Active if forced && before.is_none_or(|b| b == Phase::Pending) => (
            EventType::Warning,
            ApprovalKind::ForceApproved.as_str(),
            message(decide::APPROVED),
        ),
        Phase::Denied | Phase::Rejected | Phase::Failed | Phase::TimedOut => {
            let approved_false = s
                .conditions
                .iter()
                .any(|c| c.type_ == decide::APPROVED && c.status == ConditionStatus::False);
            let note = if approved_false {
                message(decide::APPROVED)
            } else {
                message(decide::COMPLETE)
            };
            (EventType::Warning, phase.as_str(), note)
        }
        Phase::Approved if forced => (
            EventType::Warning,
            ApprovalKind::ForceApproved.as_str(),
            message(decide::APPROVED),
        ),
        Phase::Active | Phase::Approved | Phase::Processing => {
            (EventType::Normal, phase.as_str(), message(decide::GRANTED))
        }
        _ => (EventType::Normal, phase.as_str(), message(decide::COMPLETE)),
    };
    info!(request = %req.name_any(), namespace = ?req.namespace(), from = ?before, to = %phase, "phase changed");
    ctx.events.publish(req, type_, reason, "Evaluate", note);
}

/// A binding, ServiceAccount or Job could not be created: say so in the status,
/// where users look.
pub async fn record_failure(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    err: &Error,
    failure: Failure,
    what: &str,
) {
    let reason = failure.as_str();
    let now = (ctx.clock)();
    let mut status = req.status.clone().unwrap_or_default();
    let message = format!("could not {what}: {err}; retrying");
    let existing = status.conditions.iter_mut().find(|c| c.type_ == decide::GRANTED);
    match existing {
        Some(c) if c.reason == reason && c.message == message => return,
        Some(c) => {
            if c.status != ConditionStatus::False {
                c.last_transition_time = now;
            }
            c.status = ConditionStatus::False;
            c.reason = reason.into();
            c.message = message.clone();
        }
        None => status.conditions.push(crate::api::Condition {
            type_: decide::GRANTED.into(),
            status: ConditionStatus::False,
            reason: reason.into(),
            message: message.clone(),
            observed_generation: req.metadata.generation,
            last_transition_time: now,
        }),
    }
    let patch = json!({"status": {"conditions": status.conditions}});
    if let Err(e) = api
        .patch_status(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        warn!(request = %req.name_any(), error = %e, "could not record the binding failure");
    }
    ctx.events
        .publish(req, EventType::Warning, reason, "Grant", message);
}
