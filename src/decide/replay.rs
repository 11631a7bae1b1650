//! The replay of a request's history: its state, moved forward by deadlines
//! (timeout, expiry, supersession, the job's end) and by reviews in the order the
//! API server stamped them. What each review does is in [`super::review`]; who may
//! act is in [`super::eligibility`].

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{
    duration,
    model::{Input, Supersession, Verdict},
    onetime::JobFacts,
    policy::Rules,
    reason::{ApprovalKind, DenialReason, EndCause, Ending, VerdictReason},
    related,
    tally::{self, Approval, Tally},
    window::{self, Interval},
};
use crate::api::{AccessReview, Decision, Identity};

/// How the request ended, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct End {
    /// The cause (or the denial).
    pub ending: Ending,
    /// When.
    pub at: DateTime<Utc>,
    /// For people: what happened.
    pub message: String,
}

/// When and how the request was approved.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Approved {
    /// When quorum was reached (or the request was auto-approved).
    pub at: DateTime<Utc>,
    /// How.
    pub kind: ApprovalKind,
}

/// Where the replay is.
#[derive(Debug, Clone, PartialEq)]
pub enum State {
    /// Waiting for reviews.
    Pending,
    /// Approved; access follows the window until it expires.
    Approved(Approved),
    /// Terminal.
    Ended(End),
}

/// A break-glass approval.
#[derive(Debug, Clone)]
pub struct Forced {
    /// Who.
    pub reviewer: String,
    /// Through which force-approval group.
    pub group: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// The rejection that ended the request.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Who.
    pub reviewer: String,
    /// Their groups.
    pub groups: Vec<String>,
}

/// A verdict with what the status records of the review.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The verdict.
    pub verdict: Verdict,
    /// What the review decided.
    pub decision: Decision,
    /// Who reviewed.
    pub reviewer: String,
    /// When it took effect.
    pub at: DateTime<Utc>,
    /// A force approval.
    pub forced: bool,
}

/// The replay of one request under its rules.
pub struct Replay<'a> {
    pub(super) input: &'a Input<'a>,
    pub(super) rules: &'a Rules,
    pub(super) created: DateTime<Utc>,
    pub(super) requester: &'a Identity,
    pub(super) state: State,
    /// Approved at some point (stays set after the request ends).
    pub(super) approved: Option<Approved>,
    pub(super) approvals: Vec<Approval>,
    pub(super) forced_by: Option<Forced>,
    pub(super) rejected_by: Option<Rejection>,
    pub(super) verdicts: Vec<Recorded>,
    /// OneTime: what is known of the job.
    pub(super) job: Option<JobFacts<'a>>,
    /// A newer request that took over this one's access.
    superseded_by: Option<Supersession>,
}

impl<'a> Replay<'a> {
    /// A pending request, before any review.
    pub fn new(
        input: &'a Input<'a>,
        rules: &'a Rules,
        created: DateTime<Utc>,
        job: Option<JobFacts<'a>>,
    ) -> Self {
        Replay {
            input,
            rules,
            created,
            requester: &input.request.spec.requester,
            state: State::Pending,
            approved: None,
            approvals: Vec::new(),
            forced_by: None,
            rejected_by: None,
            verdicts: Vec::new(),
            job,
            superseded_by: related::superseded_by(input.request, input.requester_requests),
        }
    }

    /// Replays the reviews (sorted, each with the instant it takes effect) up to `now`.
    pub fn run(&mut self, reviews: &[(&AccessReview, DateTime<Utc>)]) {
        if self.rules.auto_approved {
            self.approve(self.created, ApprovalKind::AutoApproved);
        }
        for (review, t) in reviews {
            self.advance(*t);
            self.handle(review, *t);
        }
        self.advance(self.input.now);
    }

    pub(super) fn timeout_at(&self) -> Option<DateTime<Utc>> {
        self.rules.timeout.map(|t| self.created + t)
    }

    pub(super) fn escalation_at(&self) -> Option<DateTime<Utc>> {
        super::eligibility::escalation_at(self.created, self.rules)
    }

    /// Access start and expiry once approved at `at`.
    pub(super) fn access_span(&self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = match self.input.request.spec.not_before {
            Some(nb) if nb > at => nb,
            _ => at,
        };
        (start, start + self.rules.duration)
    }

    /// The intervals in which access exists, from approval until `until`.
    pub(super) fn intervals_until(&self, until: DateTime<Utc>) -> Vec<Interval> {
        let Some(approved) = self.approved else {
            return Vec::new();
        };
        let (start, expires) = self.access_span(approved.at);
        window::access_intervals(self.rules.window.as_ref(), start, expires.min(until))
    }

    pub(super) fn end(&mut self, ending: Ending, at: DateTime<Utc>, message: String) {
        self.state = State::Ended(End { ending, at, message });
    }

    /// The end, if the request has ended.
    pub fn ended(&self) -> Option<&End> {
        match &self.state {
            State::Ended(end) => Some(end),
            _ => None,
        }
    }

    /// Applies the deadlines that pass before `t`.
    fn advance(&mut self, t: DateTime<Utc>) {
        if let State::Approved(approved) = self.state {
            if self.advance_job(approved.at, t) {
                return;
            }
        }
        match self.state {
            State::Pending => {
                if let Some(deadline) = self.timeout_at().filter(|d| *d <= t) {
                    let timeout = duration::format(self.rules.timeout.unwrap_or_default());
                    self.end(
                        Ending::Ended(EndCause::TimedOut),
                        deadline,
                        format!("no decision within the policy's timeout of {timeout}"),
                    );
                }
            }
            State::Approved(approved) => {
                let (_, expires) = self.access_span(approved.at);
                let superseded = self.superseded_by.clone().filter(|s| s.at <= t && s.at < expires);
                if let Some(s) = superseded {
                    let message = format!("access continues under request {}", s.by);
                    self.end(Ending::Ended(EndCause::Superseded), s.at, message);
                } else if expires <= t {
                    let message = if self.job.is_some() {
                        "the access ended before the job could be started".to_string()
                    } else {
                        format!(
                            "access expired {} after it started",
                            duration::format(self.rules.duration)
                        )
                    };
                    self.end(Ending::Ended(EndCause::Expired), expires, message);
                }
            }
            State::Ended(_) => {}
        }
    }

    pub(super) fn tally(&self) -> Tally {
        tally::tally(self.rules, self.created, &self.approvals)
    }

    pub(super) fn verdict(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        accepted: bool,
        reason: VerdictReason,
        message: String,
    ) {
        self.record(review, t, accepted, reason, message, false);
    }

    pub(super) fn record(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        accepted: bool,
        reason: VerdictReason,
        message: String,
        forced: bool,
    ) {
        self.verdicts.push(Recorded {
            verdict: Verdict {
                review: review.name_any(),
                accepted,
                reason,
                message,
            },
            decision: review.spec.decision,
            reviewer: review.spec.reviewer.username.clone(),
            at: t,
            forced,
        });
    }

    /// Quorum reached (or auto/force approval) at `at`, unless the requester
    /// already holds the policy's maximum of live grants then.
    pub(super) fn approve(&mut self, at: DateTime<Utc>, kind: ApprovalKind) {
        if let Some(max) = self.rules.max_active {
            let request = self.input.request;
            let prior_approval = request.status.as_ref().is_some_and(|s| s.approved_at.is_some());
            let extended = request
                .spec
                .extends
                .as_ref()
                .map(|e| format!("{}/{e}", request.namespace().unwrap_or_default()));
            let others: Vec<String> =
                related::live_grants(request, &self.rules.policy, self.input.requester_requests, at)
                    .into_iter()
                    .filter(|k| Some(k) != extended.as_ref())
                    .collect();
            if !prior_approval && others.len() >= max as usize {
                let message = format!(
                    "{} already holds {} live grant(s) under AccessPolicy {} ({}), the policy's maximum is {max}",
                    self.requester.username,
                    others.len(),
                    self.rules.policy,
                    others.join(", ")
                );
                self.end(Ending::Denied(DenialReason::TooManyActiveGrants), at, message);
                return;
            }
        }
        let approved = Approved { at, kind };
        self.state = State::Approved(approved);
        self.approved = Some(approved);
    }
}
