//! What one review does to the replay, by decision and by the request's state.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{
    reason::{ApprovalKind, EndCause, Ending, VerdictReason},
    replay::{Forced, Rejection, Replay, State},
    tally::Approval,
    timestamp::rfc3339,
};
use crate::api::{AccessReview, Decision};

impl Replay<'_> {
    /// Applies one review at `t`, the instant it takes effect.
    pub(super) fn handle(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let decision = review.spec.decision;
        let named_uid = review.spec.request.as_ref().map_or("", |q| q.uid.as_str());
        if Some(named_uid) != self.input.request.uid().as_deref() {
            let message = format!(
                "the review names request uid {}, but {} has uid {}: it was made for an earlier request of the same name",
                named_uid,
                self.input.request.name_any(),
                self.input.request.uid().unwrap_or_default()
            );
            return self.verdict(review, t, false, VerdictReason::UidMismatch, message);
        }
        if decision == Decision::Comment {
            return self.verdict(
                review,
                t,
                true,
                VerdictReason::Commented,
                "comment recorded".into(),
            );
        }
        if decision == Decision::Reassign {
            let message = "Reassign applies to certification items, not to requests".to_string();
            return self.verdict(review, t, false, VerdictReason::NotApplicable, message);
        }
        match self.state.clone() {
            State::Ended(end) => {
                let message = format!("the request is already {}", end.ending.phase());
                self.verdict(review, t, false, VerdictReason::NotPending, message);
            }
            State::Pending => self.handle_pending(review, t),
            State::Approved(approved) => self.handle_approved(review, t, approved.at),
        }
    }

    fn handle_pending(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        match review.spec.decision {
            Decision::Approve => self.approval(review, t),
            Decision::Reject => self.rejection(review, t),
            Decision::Revoke => self.verdict(
                review,
                t,
                false,
                VerdictReason::NotActive,
                "nothing to revoke yet: the request is pending (use Reject or Cancel)".into(),
            ),
            Decision::Cancel => self.cancel(review, t, false),
            // Both answered in `handle`.
            Decision::Comment | Decision::Reassign => {}
        }
    }

    fn approval(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let who = &review.spec.reviewer;
        if super::eligibility::self_approval_barred(self.input.request, who, self.rules.allow_self_approval) {
            let message = if self.is_self(who) {
                "the requester's own approval does not count".to_string()
            } else {
                format!(
                    "{} would receive this access (spec.subject), so their approval does not count",
                    who.username
                )
            };
            return self.verdict(review, t, false, VerdictReason::SelfApproval, message);
        }
        if self.approvals.iter().any(|a| a.reviewer == who.username) {
            let message = format!("{} has already approved; one person counts once", who.username);
            return self.verdict(review, t, false, VerdictReason::Duplicate, message);
        }
        if let Some(group) = self.force_group_of(who) {
            self.forced_by = Some(Forced {
                reviewer: who.username.clone(),
                group: group.clone(),
                at: t,
            });
            let message = format!("force approval by a member of {group}");
            self.record(review, t, true, VerdictReason::ForceApproved, message, true);
            return self.approve(t, ApprovalKind::ForceApproved);
        }
        let listed = self.listed(who);
        let escalated = !listed && self.escalated(who, t);
        if !listed && !escalated {
            let message = format!(
                "{} may not approve this request; who can: {}",
                who.username,
                self.who_can_approve(t)
            );
            return self.verdict(review, t, false, VerdictReason::NotEligible, message);
        }
        let escalated_to = if escalated {
            self.tally().open_stage()
        } else {
            None
        };
        self.approvals.push(Approval {
            reviewer: who.username.clone(),
            groups: who.groups.clone(),
            at: t,
            escalated_to,
        });
        let after = self.tally();
        let message = self.where_it_counts(&after, self.approvals.len() - 1, who);
        self.verdict(review, t, true, VerdictReason::Approved, message);
        if after.approved_at.is_some() {
            self.approve(t, ApprovalKind::Approved);
        }
    }

    /// The verdict message of approval `k`: which stage it counted for, or when it will.
    fn where_it_counts(&self, after: &super::tally::Tally, k: usize, who: &crate::api::Identity) -> String {
        let stages = &self.rules.stages;
        let stage_of = after
            .stages
            .iter()
            .position(|s| s.counted.iter().any(|(i, _)| *i == k));
        match stage_of {
            Some(i) if after.stages[i].opened_at.is_none() => {
                format!("counts once stage {} opens", stages[i].name)
            }
            Some(i) if self.rules.explicit_stages => format!("counted for stage {}", stages[i].name),
            Some(_) => "counted".to_string(),
            None => match stages.iter().position(|s| s.lists(&who.username, &who.groups)) {
                Some(i) if after.stages.get(i).is_some_and(|s| s.opened_at.is_none()) => {
                    format!("counts once stage {} opens", stages[i].name)
                }
                _ => "recorded; the stages it could count for are already satisfied".to_string(),
            },
        }
    }

    fn rejection(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let who = &review.spec.reviewer;
        if self.is_self(who) {
            return self.verdict(
                review,
                t,
                false,
                VerdictReason::SelfApproval,
                "the requester cannot review their own request; use Cancel to withdraw it".into(),
            );
        }
        if !self.may_review(who, t) {
            let message = format!(
                "{} may not review this request; who can: {}",
                who.username,
                self.who_can_approve(t)
            );
            return self.verdict(review, t, false, VerdictReason::NotEligible, message);
        }
        if self.comment_missing(review, Decision::Reject) {
            return self.verdict(
                review,
                t,
                false,
                VerdictReason::CommentRequired,
                "the policy requires a comment on a rejection".into(),
            );
        }
        self.rejected_by = Some(Rejection {
            reviewer: who.username.clone(),
            groups: who.groups.clone(),
        });
        self.conclude(
            review,
            t,
            EndCause::Rejected,
            "the request is rejected",
            "rejected",
        );
    }

    fn cancel(&mut self, review: &AccessReview, t: DateTime<Utc>, granted: bool) {
        if !self.is_self(&review.spec.reviewer) {
            return self.verdict(
                review,
                t,
                false,
                VerdictReason::NotRequester,
                "only the requester can cancel a request".into(),
            );
        }
        if granted {
            return self.verdict(
                review,
                t,
                false,
                VerdictReason::AlreadyActive,
                "access has already started; use Revoke to end it".into(),
            );
        }
        self.conclude(
            review,
            t,
            EndCause::Canceled,
            "the request is canceled",
            "canceled",
        );
    }

    /// An accepted review that ends the request: its verdict, and the cause with
    /// who ended it (and their comment) as the message.
    fn conclude(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        cause: EndCause,
        verdict: &str,
        verb: &str,
    ) {
        self.verdict(review, t, true, VerdictReason::ending(cause), verdict.to_string());
        let message = format!(
            "{verb} by {}{}",
            review.spec.reviewer.username,
            comment_suffix(review)
        );
        self.end(Ending::Ended(cause), t, message);
    }

    fn handle_approved(&mut self, review: &AccessReview, t: DateTime<Utc>, approved_at: DateTime<Utc>) {
        let who = &review.spec.reviewer;
        match review.spec.decision {
            Decision::Approve | Decision::Reject => {
                let message = format!("the request was already approved at {}", rfc3339(approved_at));
                self.verdict(review, t, false, VerdictReason::NotPending, message);
            }
            Decision::Cancel => {
                let granted = self
                    .intervals_until(t)
                    .first()
                    .is_some_and(|(start, _)| *start < t);
                self.cancel(review, t, granted);
            }
            Decision::Revoke => {
                if !self.is_self(who) && !self.may_review(who, t) {
                    let message = format!(
                        "{} may neither request nor approve this access, so may not revoke it",
                        who.username
                    );
                    return self.verdict(review, t, false, VerdictReason::NotEligible, message);
                }
                if self.comment_missing(review, Decision::Revoke) {
                    return self.verdict(
                        review,
                        t,
                        false,
                        VerdictReason::CommentRequired,
                        "the policy requires a comment on a revocation".into(),
                    );
                }
                self.conclude(review, t, EndCause::Revoked, "access is revoked", "revoked");
            }
            // Both answered in `handle`.
            Decision::Comment | Decision::Reassign => {}
        }
    }
}

fn comment_suffix(review: &AccessReview) -> String {
    match review.spec.comment.as_deref().map(str::trim) {
        Some(c) if !c.is_empty() => format!(": {c}"),
        _ => String::new(),
    }
}
