//! Who may act on a request, and when.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{naming::benefits, policy::Rules, replay::Replay, tally::Tally};
use crate::api::{AccessReview, ApprovalRequest, Decision, Identity, Justification, Principals};

/// The requester, or someone who would receive the access (`spec.subject`).
pub fn is_beneficiary(req: &ApprovalRequest, who: &Identity) -> bool {
    who.username == req.spec.requester.username || benefits(req, who)
}

/// When a request's escalation groups may approve: its creation plus
/// `escalation.after` of the rules in force; `None` without escalation.
pub fn escalation_at(created: DateTime<Utc>, rules: &Rules) -> Option<DateTime<Utc>> {
    rules.escalation.as_ref().map(|(after, _)| created + *after)
}

/// [`escalation_at`] of a request as the operator recorded it (its
/// `status.requirements`), for those who read a request rather than decide it
/// (notifications); `None` without requirements, escalation, or when they are invalid.
pub fn escalation_of(req: &ApprovalRequest, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let requirements = req.status.as_ref()?.requirements.as_ref()?;
    let rules = super::policy::rules_from_snapshot(requirements).ok()?;
    escalation_at(super::created_at(req).unwrap_or(now), &rules)
}

/// Whether `who`'s approval of the request does not count because it is their
/// own: they asked for the access or would receive it, and the rules in force
/// (`approval.allowSelfApproval`) do not allow that. The operator's replay and
/// the plugin's `pending` both ask this.
pub fn self_approval_barred(req: &ApprovalRequest, who: &Identity, allow_self_approval: bool) -> bool {
    !allow_self_approval && is_beneficiary(req, who)
}

impl Replay<'_> {
    pub(super) fn is_self(&self, who: &Identity) -> bool {
        who.username == self.requester.username
    }

    /// The first of the reviewer's groups that may force-approve.
    pub(super) fn force_group_of<'w>(&self, who: &'w Identity) -> Option<&'w String> {
        who.groups.iter().find(|g| self.rules.force_groups.contains(g))
    }

    /// An escalation reviewer, once the escalation delay has passed.
    pub(super) fn escalated(&self, who: &Identity, t: DateTime<Utc>) -> bool {
        match (&self.rules.escalation, self.escalation_at()) {
            (Some((_, groups)), Some(at)) => t >= at && who.groups.iter().any(|g| groups.contains(g)),
            _ => false,
        }
    }

    /// Listed as a reviewer of any stage.
    pub(super) fn listed(&self, who: &Identity) -> bool {
        self.rules
            .stages
            .iter()
            .any(|s| s.lists(&who.username, &who.groups))
    }

    /// May act as a reviewer of this request at `t` (approve, reject or revoke).
    pub(super) fn may_review(&self, who: &Identity, t: DateTime<Utc>) -> bool {
        self.force_group_of(who).is_some() || self.listed(who) || self.escalated(who, t)
    }

    /// Who can approve at `t`, in words.
    pub(super) fn who_can_approve(&self, t: DateTime<Utc>) -> String {
        let escalated = self.escalation_at().is_some_and(|e| t >= e);
        describe(&eligible_now(self.rules, &self.tally(), escalated))
    }

    /// The policy's justification rule requires a comment this review lacks.
    pub(super) fn comment_missing(&self, review: &AccessReview, decision: Decision) -> bool {
        let needs = match self.rules.justification {
            Justification::RequireForAll => matches!(decision, Decision::Reject | Decision::Revoke),
            Justification::RequireForRevoke => decision == Decision::Revoke,
            Justification::Optional => false,
        };
        needs && review.spec.comment.as_deref().is_none_or(|c| c.trim().is_empty())
    }
}

/// Who can act on the open stage now: its reviewers (every stage's once all are
/// satisfied), the escalation groups once escalated, and the force-approval groups.
pub fn eligible_now(rules: &Rules, tally: &Tally, escalated: bool) -> Principals {
    let mut p = Principals::default();
    let stages = match tally.open_stage() {
        Some(i) => rules.stages.get(i..=i).unwrap_or_default(),
        None => &rules.stages[..],
    };
    for s in stages {
        p.groups.extend(s.groups.iter().cloned());
        p.users.extend(s.users.iter().cloned());
    }
    if escalated {
        if let Some((_, groups)) = &rules.escalation {
            p.groups.extend(groups.iter().cloned());
        }
    }
    p.groups.extend(rules.force_groups.iter().cloned());
    let mut seen = BTreeSet::new();
    p.groups.retain(|g| seen.insert(g.clone()));
    let mut seen = BTreeSet::new();
    p.users.retain(|u| seen.insert(u.clone()));
    p
}

/// `group sre, user erin`, or `nobody`.
pub fn describe(p: &Principals) -> String {
    let mut parts: Vec<String> = p.groups.iter().map(|g| format!("group {g}")).collect();
    parts.extend(p.users.iter().map(|u| format!("user {u}")));
    if parts.is_empty() {
        "nobody".to_string()
    } else {
        parts.join(", ")
    }
}
