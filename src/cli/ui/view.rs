//! What the desk's pages show, as JSON: rows built from the objects by the same
//! functions the plugin's tables use (who may review: [`can_review`] and
//! [`waits_for`]; summaries: [`render::summary`]). Pure, so unit-tested.

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde::Serialize;

use super::super::{
    can_review,
    certify::waits_for,
    certify_render::{binding, due, open_level},
    is_mine, render,
};
use crate::{
    api::{AccessCertification, ApprovalRequest, Decision, Identity, ItemDecision, LevelState, Outcome},
    certify::replay::comment_required,
};

/// One request in a list.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct RequestRow {
    /// The status summary `kubectl gatehouse status -o json` prints.
    #[serde(flatten)]
    pub summary: render::StatusSummary,
    /// Why the requester asks.
    pub reason: Option<String>,
    /// When it was filed.
    pub created_at: Option<DateTime<Utc>>,
    /// Whether the user may approve or reject it now.
    pub can_review: bool,
    /// Whether it is the user's own.
    pub mine: bool,
    /// Whether the user may extend it (their own, Active).
    pub can_extend: bool,
}

/// The row of `req` for `me`.
pub fn request_row(req: &ApprovalRequest, me: &Identity, now: DateTime<Utc>) -> RequestRow {
    let mine = is_mine(req, me);
    let summary = render::summary(req, now);
    RequestRow {
        can_extend: mine && summary.phase == Some(crate::api::Phase::Active),
        summary,
        reason: req.spec.reason.clone(),
        created_at: req
            .creation_timestamp()
            .and_then(|t| crate::decide::to_chrono(&t)),
        can_review: can_review(req, me),
        mine,
    }
}

/// One certification item.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemRow {
    /// Its name.
    pub name: String,
    /// Its namespace (the campaign's review namespace).
    pub namespace: String,
    /// Campaign and run.
    pub campaign: String,
    /// The run.
    pub run: String,
    /// Who holds the access.
    pub subject: String,
    /// The role bound.
    pub role: String,
    /// The binding, `namespace/name`.
    pub binding: String,
    /// Risk tags.
    pub risk: Vec<String>,
    /// Risk in one line.
    pub risk_summary: Option<String>,
    /// Accept, Review or Revoke.
    pub recommendation: String,
    /// Why: the findings behind the recommendation.
    pub reasons: Vec<String>,
    /// The level that decides now.
    pub level: String,
    /// Unreviewed, Approved or Revoked.
    pub decision: String,
    /// Open or closed how.
    pub outcome: String,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// "3d4h" or "due".
    pub due_in: String,
    /// Whether the user may decide it now.
    pub can_decide: bool,
    /// Whether an approval needs a comment (the campaign's justification rule).
    pub comment_on_approve: bool,
    /// Whether a revocation needs a comment.
    pub comment_on_revoke: bool,
}

/// The row of `item` for `me`.
pub fn item_row(item: &AccessCertification, me: &Identity, now: DateTime<Utc>) -> ItemRow {
    let s = item.status.clone().unwrap_or_default();
    let justification = item.spec.review.justification;
    ItemRow {
        name: item.name_any(),
        namespace: item.namespace().unwrap_or_default(),
        campaign: item.spec.campaign.clone(),
        run: item.spec.run.clone(),
        subject: item.spec.subject.to_string(),
        role: item.spec.role_ref.to_string(),
        binding: binding(item),
        risk: s.risk.iter().map(|r| r.label().to_string()).collect(),
        risk_summary: s.risk_summary.clone(),
        recommendation: s.recommendation_label(),
        reasons: s.reasons.iter().map(|f| f.message.clone()).collect(),
        level: open_level(item),
        decision: s.decision.to_string(),
        outcome: s.outcome.to_string(),
        due_at: item.spec.due_at,
        due_in: due(item, now),
        can_decide: waits_for(item, me),
        comment_on_approve: comment_required(justification, Decision::Approve),
        comment_on_revoke: comment_required(justification, Decision::Revoke),
    }
}

/// Progress of one review level over a run's items.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LevelProgress {
    /// The level's name.
    pub name: String,
    /// Items this level decided.
    pub decided: usize,
    /// Items open at this level now.
    pub open: usize,
    /// Items waiting for an earlier level.
    pub waiting: usize,
    /// Items that fell due here.
    pub expired: usize,
}

/// A run's progress: totals and by level, in the levels' order.
#[derive(Serialize, Debug, Clone, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Progress {
    /// Items in the run the user can see.
    pub items: usize,
    /// Approved at the last level.
    pub approved: usize,
    /// Revoked.
    pub revoked: usize,
    /// Not decided yet.
    pub unreviewed: usize,
    /// Closed (decided or due).
    pub closed: usize,
    /// By level.
    pub levels: Vec<LevelProgress>,
}

/// The progress over `items`.
pub fn progress<I: std::ops::Deref<Target = AccessCertification>>(items: &[I]) -> Progress {
    let mut p = Progress {
        items: items.len(),
        ..Default::default()
    };
    for item in items {
        let s = item.status.clone().unwrap_or_default();
        match s.decision {
            ItemDecision::Approved => p.approved += 1,
            ItemDecision::Revoked => p.revoked += 1,
            ItemDecision::Unreviewed => p.unreviewed += 1,
        }
        if s.outcome != Outcome::Open {
            p.closed += 1;
        }
        for level in &s.levels {
            let at = match p.levels.iter().position(|l| l.name == level.name) {
                Some(i) => i,
                None => {
                    p.levels.push(LevelProgress {
                        name: level.name.clone(),
                        ..Default::default()
                    });
                    p.levels.len() - 1
                }
            };
            let l = &mut p.levels[at];
            match level.state {
                LevelState::Decided => l.decided += 1,
                LevelState::Open => l.open += 1,
                LevelState::Waiting => l.waiting += 1,
                LevelState::Expired => l.expired += 1,
            }
        }
    }
    p
}
