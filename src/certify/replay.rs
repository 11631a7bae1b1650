//! The review replay of one item: its AccessReviews in the order the API server
//! stamped them, level after level, up to `now` or the due time.
//!
//! - A review counts at the level open when it was made; level N+1 opens when
//!   level N decides, so its reviewers have seen that decision, and the last
//!   level's decision stands.
//! - Never the subject, nor a member of the subject group; one person decides
//!   one level of an item at most.
//! - Reassign hands the open level to other reviewers (with a comment, never to
//!   the subject); escalation adds reviewers to a level left open too long.
//! - At `dueAt` an item still open closes without a final decision, and the
//!   campaign's `onNoDecision` says what happens to the access.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::convert;
use crate::{
    api::{
        AccessCertification, AccessPolicy, AccessReview, Decision, Justification, LevelReviewers, Principals,
        ReviewVerdict, Subject, SubjectKind,
    },
    decide::{duration, eligibility::describe, order, to_chrono},
};

/// Everything a replay looks at.
#[derive(Clone, Copy)]
pub struct ReplayInput<'a> {
    /// The item.
    pub item: &'a AccessCertification,
    /// AccessReviews that name the item (`spec.certification.name`); the uid is checked here.
    pub reviews: &'a [AccessReview],
    /// AccessPolicies, for `convertTo`.
    pub policies: &'a [AccessPolicy],
    /// Labels of the binding's namespace, for policies that select namespaces by label.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// The evaluation time.
    pub now: DateTime<Utc>,
}

/// A level's decision.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelDecision {
    /// Approve or Revoke.
    pub decision: Decision,
    /// Who.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
    /// Their comment.
    pub comment: Option<String>,
    /// The AccessPolicy of an accepted `convertTo`.
    pub convert_to: Option<String>,
}

/// Where one level is.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelProgress {
    /// Level name.
    pub name: String,
    /// When it opened.
    pub opened_at: Option<DateTime<Utc>>,
    /// Its decision.
    pub decided: Option<LevelDecision>,
    /// Who it was handed to.
    pub reassigned_to: Option<Principals>,
    /// When escalation reviewers became eligible.
    pub escalated_at: Option<DateTime<Utc>>,
}

/// How the item closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closure {
    /// The last level decided (Approve or Revoke).
    Reviewed {
        /// When.
        at: DateTime<Utc>,
        /// What.
        decision: Decision,
    },
    /// Due without a final decision.
    Due {
        /// The due time.
        at: DateTime<Utc>,
    },
}

/// The verdict on one review.
#[derive(Debug, Clone, PartialEq)]
pub struct ReviewRecord {
    /// Name of the AccessReview.
    pub review: String,
    /// Who made it.
    pub reviewer: String,
    /// What it decided.
    pub decision: Decision,
    /// When.
    pub at: DateTime<Utc>,
    /// The level it was judged at.
    pub level: Option<String>,
    /// How it counted or why not.
    pub verdict: ReviewVerdict,
    /// In words.
    pub message: String,
}

/// The replay's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Replay {
    /// Every level.
    pub levels: Vec<LevelProgress>,
    /// The open level, while the item is open.
    pub open: Option<usize>,
    /// How it closed, if it did.
    pub closure: Option<Closure>,
    /// One record per review that exists at `now`, in replay order.
    pub records: Vec<ReviewRecord>,
    /// Who can act on the open level at `now`.
    pub eligible_now: Option<Principals>,
    /// The next instant at which the answer changes without a new review.
    pub next_deadline: Option<DateTime<Utc>>,
}

/// How many reviews an item's status lists besides those that decided a level.
pub const LISTED_REVIEWS: usize = 20;

/// What an item's status lists of the replay's records.
#[derive(Debug, Clone, PartialEq)]
pub struct Listed<'a> {
    /// Every record that decided a level (one per level at most), and the most
    /// recent [`LISTED_REVIEWS`] others, in replay order.
    pub records: Vec<&'a ReviewRecord>,
    /// Records not accepted, listed or not.
    pub ignored: u32,
    /// Records left out.
    pub omitted: u32,
}

/// The records an item's status lists. Anyone who may file a review can file
/// thousands (a wrong uid is enough to be recorded); the status must stay far
/// below etcd's object limit and still show what decided the item.
pub fn listed(records: &[ReviewRecord]) -> Listed<'_> {
    let decides = |r: &ReviewRecord| r.verdict == ReviewVerdict::Decided;
    let others = records.iter().filter(|r| !decides(r)).count();
    let mut drop = others.saturating_sub(LISTED_REVIEWS);
    let mut kept = Vec::new();
    for r in records {
        if !decides(r) && drop > 0 {
            drop -= 1;
            continue;
        }
        kept.push(r);
    }
    let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    Listed {
        ignored: count(records.iter().filter(|r| !r.verdict.accepted()).count()),
        omitted: count(records.len() - kept.len()),
        records: kept,
    }
}

pub use crate::decide::naming::is_subject;

fn service_account_user(subject: &Subject) -> String {
    crate::decide::naming::service_account_username(
        subject.namespace.as_deref().unwrap_or_default(),
        &subject.name,
    )
}

/// Whether a reassignment names the subject (or the subject group).
pub fn names_subject(subject: &Subject, to: &Principals) -> bool {
    match subject.kind {
        SubjectKind::User => to.users.contains(&subject.name),
        SubjectKind::Group => to.groups.contains(&subject.name),
        SubjectKind::ServiceAccount => to.users.contains(&service_account_user(subject)),
    }
}

fn merged(a: &Principals, b: &Principals) -> Principals {
    let mut out = a.clone();
    out.groups
        .extend(b.groups.iter().filter(|g| !a.groups.contains(g)).cloned());
    out.users
        .extend(b.users.iter().filter(|u| !a.users.contains(u)).cloned());
    out
}

/// Whether a campaign with `justification` needs a comment on `decision` (a
/// reassignment always needs one, for the new reviewer).
pub fn comment_required(justification: Justification, decision: Decision) -> bool {
    match justification {
        _ if decision == Decision::Reassign => true,
        Justification::RequireForAll => true,
        Justification::RequireForRevoke => decision == Decision::Revoke,
        Justification::Optional => false,
    }
}

fn has_comment(review: &AccessReview) -> bool {
    review
        .spec
        .comment
        .as_deref()
        .is_some_and(|c| !c.trim().is_empty())
}

struct Replayer<'a> {
    input: ReplayInput<'a>,
    plans: &'a [LevelReviewers],
    escalation: Option<(chrono::Duration, Principals)>,
    levels: Vec<LevelProgress>,
    open: Option<usize>,
    closure: Option<Closure>,
    records: Vec<ReviewRecord>,
}

impl<'a> Replayer<'a> {
    fn new(input: ReplayInput<'a>) -> Self {
        let spec = &input.item.spec;
        let plans = spec.review.levels.as_slice();
        // The API server checked the pattern; an unparsable delay means no escalation.
        let escalation = spec.review.escalation.as_ref().and_then(|e| {
            let after = duration::parse(&e.after).ok()?;
            Some((
                after,
                Principals {
                    groups: e.groups.clone(),
                    users: Vec::new(),
                },
            ))
        });
        let levels = plans
            .iter()
            .enumerate()
            .map(|(i, p)| LevelProgress {
                name: p.name.clone(),
                opened_at: (i == 0).then_some(spec.started_at),
                decided: None,
                reassigned_to: None,
                escalated_at: None,
            })
            .collect();
        Replayer {
            input,
            plans,
            escalation,
            levels,
            open: (!plans.is_empty()).then_some(0),
            closure: None,
            records: Vec::new(),
        }
    }

    fn escalation_at(&self, level: usize) -> Option<DateTime<Utc>> {
        let (after, _) = self.escalation.as_ref()?;
        Some(self.levels[level].opened_at? + *after)
    }

    /// Who may decide level `i` at `t`.
    fn reviewers_at(&self, i: usize, t: DateTime<Utc>) -> Principals {
        let plan = &self.plans[i];
        let base = match &self.levels[i].reassigned_to {
            Some(to) => to.clone(),
            None => merged(&plan.reviewers, &plan.namespace_owners),
        };
        match (&self.escalation, self.escalation_at(i)) {
            (Some((_, extra)), Some(at)) if t >= at => merged(&base, extra),
            _ => base,
        }
    }

    fn close_if_due(&mut self, t: DateTime<Utc>) {
        let due = self.input.item.spec.due_at;
        if self.closure.is_none() && due <= t {
            self.closure = Some(Closure::Due { at: due });
            self.open = None;
        }
    }

    fn record(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        level: Option<usize>,
        verdict: ReviewVerdict,
        message: String,
    ) {
        self.records.push(ReviewRecord {
            review: review.name_any(),
            reviewer: review.spec.reviewer.username.clone(),
            decision: review.spec.decision,
            at: t,
            level: level.map(|i| self.levels[i].name.clone()),
            verdict,
            message,
        });
    }

    fn handle(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let item = self.input.item;
        let named = review.spec.certification.as_ref().map_or("", |c| c.uid.as_str());
        if Some(named) != item.metadata.uid.as_deref() {
            let message = format!(
                "the review names item uid {named}, but {} has uid {}: it was made for an earlier item of the same name",
                item.name_any(),
                item.metadata.uid.as_deref().unwrap_or_default()
            );
            return self.record(review, t, None, ReviewVerdict::UidMismatch, message);
        }
        let decision = review.spec.decision;
        if decision == Decision::Comment {
            return self.record(
                review,
                t,
                self.open,
                ReviewVerdict::Commented,
                "comment recorded".into(),
            );
        }
        let Some(i) = self.open else {
            let message = match self.closure {
                Some(Closure::Due { at }) => format!("the item fell due at {}", at.to_rfc3339()),
                _ => "the last level has already decided".to_string(),
            };
            return self.record(review, t, None, ReviewVerdict::Closed, message);
        };
        if matches!(decision, Decision::Reject | Decision::Cancel)
            || (review.spec.convert_to.is_some() && decision != Decision::Revoke)
        {
            let message = format!(
                "{decision} does not apply to a certification item: decide Approve, Revoke, Reassign or Comment (convertTo only with Revoke)"
            );
            return self.record(review, t, Some(i), ReviewVerdict::NotApplicable, message);
        }
        let who = &review.spec.reviewer;
        if is_subject(&item.spec.subject, who) {
            let message = format!(
                "{} holds this access ({}), so cannot certify it",
                who.username, item.spec.subject
            );
            return self.record(review, t, Some(i), ReviewVerdict::SelfReview, message);
        }
        let eligible = self.reviewers_at(i, t);
        if !eligible.matches(who) {
            let message = format!(
                "{} is not a reviewer of level {}; who can decide it: {}",
                who.username,
                self.levels[i].name,
                describe(&eligible)
            );
            return self.record(review, t, Some(i), ReviewVerdict::NotEligible, message);
        }
        if let Some(earlier) = self.levels[..i]
            .iter()
            .find(|l| l.decided.as_ref().is_some_and(|d| d.by == who.username))
        {
            let message = format!(
                "{} already decided level {}: another person decides level {}",
                who.username, earlier.name, self.levels[i].name
            );
            return self.record(review, t, Some(i), ReviewVerdict::AlreadyDecided, message);
        }
        match decision {
            Decision::Reassign => self.reassign(review, t, i),
            _ => self.decide(review, t, i),
        }
    }

    fn reassign(&mut self, review: &AccessReview, t: DateTime<Utc>, i: usize) {
        if !has_comment(review) {
            let message = "a reassignment needs a comment for the new reviewer".to_string();
            return self.record(review, t, Some(i), ReviewVerdict::CommentRequired, message);
        }
        let to = review.spec.reassign_to.as_deref().cloned().unwrap_or_default();
        if to.is_empty() {
            let message = "Reassign names nobody in reassignTo".to_string();
            return self.record(review, t, Some(i), ReviewVerdict::NotApplicable, message);
        }
        if names_subject(&self.input.item.spec.subject, &to) {
            let message = format!(
                "reassignTo names {}, who holds this access and cannot certify it",
                self.input.item.spec.subject
            );
            return self.record(review, t, Some(i), ReviewVerdict::ReassignToSubject, message);
        }
        let message = format!(
            "level {} is now reviewed by {}",
            self.levels[i].name,
            describe(&to)
        );
        self.levels[i].reassigned_to = Some(to);
        self.record(review, t, Some(i), ReviewVerdict::Reassigned, message);
    }

    fn decide(&mut self, review: &AccessReview, t: DateTime<Utc>, i: usize) {
        let decision = review.spec.decision;
        if comment_required(self.input.item.spec.review.justification, decision) && !has_comment(review) {
            let message = format!("the campaign requires a comment on {decision}");
            return self.record(review, t, Some(i), ReviewVerdict::CommentRequired, message);
        }
        let convert_to = review.spec.convert_to.as_ref().map(|c| c.policy.clone());
        if let Some(policy) = &convert_to {
            let inp = self.input;
            if let Err(why) = convert::check(&inp.item.spec, policy, inp.policies, inp.namespace_labels) {
                let message = format!("convertTo {policy} refused: {why}");
                return self.record(review, t, Some(i), ReviewVerdict::ConversionRefused, message);
            }
        }
        self.levels[i].decided = Some(LevelDecision {
            decision,
            by: review.spec.reviewer.username.clone(),
            at: t,
            comment: review.spec.comment.clone().filter(|c| !c.trim().is_empty()),
            convert_to,
        });
        let last = i + 1 == self.levels.len();
        let message = if last {
            self.closure = Some(Closure::Reviewed { at: t, decision });
            self.open = None;
            format!("level {} decided {decision}: final", self.levels[i].name)
        } else {
            self.levels[i + 1].opened_at = Some(t);
            self.open = Some(i + 1);
            format!(
                "level {} decided {decision}; level {} opens",
                self.levels[i].name,
                self.levels[i + 1].name
            )
        };
        self.record(review, t, Some(i), ReviewVerdict::Decided, message);
    }

    fn finish(mut self) -> Replay {
        let now = self.input.now;
        self.close_if_due(now);
        let until = match self.closure {
            Some(Closure::Reviewed { at, .. } | Closure::Due { at }) => at,
            None => now,
        };
        // Escalation happened only if it came before the level decided (or the item closed).
        for i in 0..self.levels.len() {
            let level_until = self.levels[i].decided.as_ref().map_or(until, |d| d.at);
            self.levels[i].escalated_at = self.escalation_at(i).filter(|at| *at <= level_until);
        }
        let eligible_now = self.open.map(|i| self.reviewers_at(i, now));
        let next_deadline = match self.open {
            Some(i) => [self.escalation_at(i), Some(self.input.item.spec.due_at)]
                .into_iter()
                .flatten()
                .filter(|d| *d > now)
                .min(),
            None => None,
        };
        Replay {
            levels: self.levels,
            open: self.open,
            closure: self.closure,
            records: self.records,
            eligible_now,
            next_deadline,
        }
    }
}

/// Replays the item's reviews up to `now`.
pub fn replay(input: ReplayInput) -> Replay {
    let item = input.item;
    let started = item.spec.started_at;
    let mut reviews: Vec<(&AccessReview, DateTime<Utc>)> = input
        .reviews
        .iter()
        .filter(|r| {
            r.spec
                .certification
                .as_ref()
                .is_some_and(|c| c.name == item.name_any())
        })
        .map(|r| {
            let t = r
                .metadata
                .creation_timestamp
                .as_ref()
                .and_then(to_chrono)
                .unwrap_or(input.now);
            (r, t.max(started))
        })
        .filter(|(_, t)| *t <= input.now)
        .collect();
    // Within one second, the order that keeps the least access: comments and
    // reassignments first, a revoke before an approval.
    order::sort_for_replay(&mut reviews, |r| match r.spec.decision {
        Decision::Comment => 0,
        Decision::Reassign => 1,
        Decision::Revoke | Decision::Reject | Decision::Cancel => 2,
        Decision::Approve => 3,
    });
    let mut r = Replayer::new(input);
    for (review, t) in reviews {
        r.close_if_due(t);
        r.handle(review, t);
    }
    r.finish()
}
