//! The decision core: every access rule of Gatehouse, and nothing else.
//!
//! `evaluate(input)` takes a request, the policies, the reviews that name the
//! request, a few facts about other objects, and `now`; it returns the request's
//! complete status, the actions that make the cluster match it, each review's
//! verdict, and the next instant at which the answer can change. No I/O, no clock.
//!
//! The evaluation replays the request's history from its creation: reviews in the
//! order the API server stamped them, and the deadlines (timeout, escalation,
//! window edges, expiry) between them. The same inputs therefore always give the
//! same status, whether the operator watched every step or was down for a day,
//! and `simulate` can show any moment of a request's life. Two facts are sticky
//! and come from the stored status instead: the policy snapshot taken at the first
//! evaluation, and a terminal phase, which never changes again.

pub mod duration;
pub mod job;
pub mod policy;
mod tally;
pub mod window;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use kube::ResourceExt;

pub use self::job::{JobObservation, JobPlan, JobProgress, ObjectName};
use self::{
    policy::Rules,
    tally::{Approval, Tally},
    window::Interval,
};
use crate::api::{
    AccessPolicy, AccessReview, ApprovalCount, ApprovalRequest, ApprovalRequestStatus, BindingKind,
    Condition, ConditionStatus, Decision, DecisionRecord, GrantStatus, Identity, JobRecord, JobState,
    Justification, Phase, Principals, RequestType, ReviewGroupStatus, ReviewState, RoleRef, StageStatus,
    Subject, SubjectKind,
};

/// Condition type: the request has (or had) the approvals it needs.
pub const APPROVED: &str = "Approved";
/// Condition type: the binding exists now.
pub const GRANTED: &str = "Granted";
/// Condition type: the request reached a terminal phase.
pub const COMPLETE: &str = "Complete";

/// Everything one evaluation looks at.
#[derive(Clone, Copy)]
pub struct Input<'a> {
    /// The request, with its stored status (if any).
    pub request: &'a ApprovalRequest,
    /// All AccessPolicies.
    pub policies: &'a [AccessPolicy],
    /// AccessReviews in the request's namespace that name it (`spec.request.name`); the uid is checked here.
    pub reviews: &'a [AccessReview],
    /// Labels of the request's namespace, for policies that select namespaces by label.
    pub namespace_labels: Option<&'a BTreeMap<String, String>>,
    /// Names (`namespace/name`) of the requester's other requests holding a live grant under the same policy.
    pub other_live_grants: &'a [String],
    /// The request named in `spec.extends`, if it exists.
    pub extended: Option<&'a ApprovalRequest>,
    /// A newer request that extends this one and has taken over the access.
    pub superseded_by: Option<&'a Supersession>,
    /// OneTime: the request's Job as it is in the cluster (by its deterministic name), if it exists.
    pub job: Option<&'a JobObservation>,
    /// The evaluation time.
    pub now: DateTime<Utc>,
}

/// A newer request took over this one's access at `at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Supersession {
    /// Name of the newer request.
    pub by: String,
    /// When its access started.
    pub at: DateTime<Utc>,
}

/// The result of one evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    /// The complete status to store.
    pub status: ApprovalRequestStatus,
    /// What to do in the cluster.
    pub actions: Vec<Action>,
    /// Verdict on each review that exists at `now`, in review order.
    pub verdicts: Vec<Verdict>,
    /// The next instant at which evaluating again can give another answer (always after `now`).
    pub next_deadline: Option<DateTime<Utc>>,
}

/// A change to make in the cluster.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Create or update this binding.
    EnsureBinding(Binding),
    /// Delete this binding if it exists.
    RemoveBinding(BindingRef),
    /// OneTime: create or update the job's dedicated ServiceAccount.
    EnsureServiceAccount(ObjectName),
    /// OneTime: delete the job's ServiceAccount if it exists.
    DeleteServiceAccount(ObjectName),
    /// OneTime: create the Job (create only, never update: it runs once).
    CreateJob(JobPlan),
    /// OneTime: stop the Job if it still exists (its pods go with it).
    DeleteJob(ObjectName),
    /// The audit retention has passed: delete the request and its reviews.
    DeleteRecord,
}

/// Where a binding lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRef {
    /// RoleBinding or ClusterRoleBinding.
    pub kind: BindingKind,
    /// Deterministic name.
    pub name: String,
    /// Namespace of a RoleBinding.
    pub namespace: Option<String>,
}

/// The binding that carries a grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    /// Where it lives.
    pub target: BindingRef,
    /// The role it binds.
    pub role: RoleRef,
    /// Who receives access.
    pub subject: Subject,
    /// When the binding must be gone at the latest (expiry or window close).
    pub valid_until: DateTime<Utc>,
}

/// The operator's verdict on one review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Name of the AccessReview.
    pub review: String,
    /// Whether it counted.
    pub accepted: bool,
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
}

/// Why a request was refused outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// CamelCase reason.
    pub reason: String,
    /// Human-readable explanation.
    pub message: String,
}

impl Denial {
    /// A denial with a reason and message.
    pub fn new(reason: &str, message: impl Into<String>) -> Self {
        Denial {
            reason: reason.to_string(),
            message: message.into(),
        }
    }
}

/// Converts a Kubernetes timestamp to chrono.
pub fn to_chrono(t: &k8s_openapi::apimachinery::pkg::apis::meta::v1::Time) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(t.0.as_second(), t.0.subsec_nanosecond().try_into().ok()?)
}

fn created_at<K: kube::Resource>(obj: &K) -> Option<DateTime<Utc>> {
    obj.meta().creation_timestamp.as_ref().and_then(to_chrono)
}

/// The deterministic name of the binding of a request. Includes a hash of the
/// request's uid, so a deleted and re-created request never adopts an old binding.
pub fn binding_name(namespace: &str, name: &str, uid: &str, kind: BindingKind) -> String {
    let body = match kind {
        BindingKind::RoleBinding => name.to_string(),
        BindingKind::ClusterRoleBinding => format!("{namespace}.{name}"),
    };
    derived_name(&body, namespace, name, uid, 253)
}

/// `gatehouse-BODY-HASH`, at most `max` characters, the hash taken over the
/// request's namespace, name and uid.
fn derived_name(body: &str, namespace: &str, name: &str, uid: &str, max: usize) -> String {
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let hash = format!("{namespace}/{name}/{uid}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let body: String = body.chars().take(max - "gatehouse-".len() - 9).collect();
    format!(
        "gatehouse-{}-{:08x}",
        body.trim_end_matches(['-', '.']),
        hash as u32
    )
}

/// Where the request's binding lives (kind, deterministic name, namespace).
pub fn binding_ref(req: &ApprovalRequest) -> BindingRef {
    let namespace = req.namespace().unwrap_or_default();
    let kind = req.spec.role.kind.binding_kind(req.spec.scope);
    let name = binding_name(
        &namespace,
        &req.name_any(),
        req.uid().as_deref().unwrap_or_default(),
        kind,
    );
    BindingRef {
        kind,
        name,
        namespace: (kind == BindingKind::RoleBinding).then_some(namespace),
    }
}

/// Whether `who` would receive the access the request grants: the subject user, a
/// member of the subject group, or the subject ServiceAccount itself. Such a
/// person's approval does not count, as for the requester's own.
pub fn benefits(req: &ApprovalRequest, who: &Identity) -> bool {
    let subject = subject_of(req);
    match subject.kind {
        SubjectKind::User => subject.name == who.username,
        SubjectKind::Group => who.groups.contains(&subject.name),
        SubjectKind::ServiceAccount => {
            let namespace = subject.namespace.unwrap_or_default();
            who.username == format!("system:serviceaccount:{namespace}:{}", subject.name)
        }
    }
}

/// Who receives access: `spec.subject`, with a ServiceAccount's namespace
/// defaulted to the request's, or the requester's user.
pub fn subject_of(req: &ApprovalRequest) -> Subject {
    match &req.spec.subject {
        Some(s) => Subject {
            namespace: match s.kind {
                SubjectKind::ServiceAccount => s.namespace.clone().or_else(|| req.namespace()),
                _ => None,
            },
            ..s.clone()
        },
        None => Subject {
            kind: SubjectKind::User,
            name: req.spec.requester.username.clone(),
            namespace: None,
        },
    }
}

/// Where the replay is.
#[derive(Debug, Clone, PartialEq)]
enum State {
    Pending,
    Approved {
        at: DateTime<Utc>,
        how: &'static str,
    },
    Ended {
        phase: Phase,
        at: DateTime<Utc>,
        reason: String,
        message: String,
    },
}

/// The replay of one request under its rules.
struct Replay<'a> {
    input: &'a Input<'a>,
    rules: &'a Rules,
    created: DateTime<Utc>,
    requester: &'a Identity,
    state: State,
    /// Approved at some point (stays set after the request ends).
    approved: Option<(DateTime<Utc>, &'static str)>,
    approvals: Vec<Approval>,
    forced_by: Option<(String, String, DateTime<Utc>)>,
    rejected_by: Option<(String, Vec<String>, DateTime<Utc>)>,
    verdicts: Vec<(Verdict, Decision, String, DateTime<Utc>, bool)>,
    /// OneTime: what is known of the job.
    job: Option<JobFacts<'a>>,
}

/// What one evaluation knows of a OneTime request's Job: the stored record and
/// the observation, reconciled.
struct JobFacts<'a> {
    target: ObjectName,
    /// The Job found in the cluster, if it is the one recorded (or none is recorded yet).
    observed: Option<&'a JobObservation>,
    /// uid recorded in the status: the Job was created and must never be created again.
    recorded_uid: Option<String>,
    /// When the Job was created, if it was.
    started: Option<DateTime<Utc>>,
    /// The recorded Job no longer exists (or was replaced by another one).
    lost: bool,
    /// The deadline recorded when the job was first planned: sticky, so neither
    /// a clock difference with the API server nor a later window moves it.
    deadline: Option<DateTime<Utc>>,
}

impl<'a> Replay<'a> {
    fn timeout_at(&self) -> Option<DateTime<Utc>> {
        self.rules.timeout.map(|t| self.created + t)
    }

    fn escalation_at(&self) -> Option<DateTime<Utc>> {
        self.rules
            .escalation
            .as_ref()
            .map(|(after, _)| self.created + *after)
    }

    /// Access start and expiry once approved at `at`.
    fn access_span(&self, at: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let start = match self.input.request.spec.not_before {
            Some(nb) if nb > at => nb,
            _ => at,
        };
        (start, start + self.rules.duration)
    }

    fn intervals_until(&self, until: DateTime<Utc>) -> Vec<Interval> {
        let Some((at, _)) = self.approved else {
            return Vec::new();
        };
        let (start, expires) = self.access_span(at);
        window::access_intervals(self.rules.window.as_ref(), start, expires.min(until))
    }

    fn end(&mut self, phase: Phase, at: DateTime<Utc>, reason: &str, message: String) {
        self.state = State::Ended {
            phase,
            at,
            reason: reason.to_string(),
            message,
        };
    }

    /// OneTime: when the job must be stopped, if it starts (or started) at `from`:
    /// the end of the access interval it runs in, so it never runs outside the
    /// time window nor past `expiresAt`.
    fn job_deadline(&self, approved_at: DateTime<Utc>, from: DateTime<Utc>) -> DateTime<Utc> {
        let (start, expires) = self.access_span(approved_at);
        window::access_intervals(self.rules.window.as_ref(), start, expires)
            .into_iter()
            .find(|(_, e)| *e > from)
            .map_or(expires, |(_, e)| e)
    }

    /// OneTime: ends the request when its job finished, hit its deadline or was
    /// deleted, whichever came first by `t`. Returns whether the job has started
    /// (then the JIT expiry rules do not apply: the deadline is the job's).
    fn advance_job(&mut self, approved_at: DateTime<Utc>, t: DateTime<Utc>) -> bool {
        let Some(job) = self.job.as_ref() else {
            return false;
        };
        let Some(started) = job.started else {
            return false;
        };
        let name = job.target.name.clone();
        let logs = job::logs_hint(&job.target);
        let lost = job.lost;
        let finished = job
            .observed
            .and_then(|o| o.progress.finished_at().map(|at| (at, o.progress.clone())));
        let deadline = job
            .deadline
            .unwrap_or_else(|| self.job_deadline(approved_at, started));
        match finished {
            Some((at, progress)) if at <= t && at <= deadline => match progress {
                JobProgress::Failed {
                    deadline_exceeded: true,
                    ..
                } => self.end(
                    Phase::Failed,
                    at,
                    "DeadlineExceeded",
                    format!(
                        "job {name} was still running at its deadline {} and was stopped (activeDeadlineSeconds); logs (while the Job exists): {logs}",
                        deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                ),
                JobProgress::Failed { message, .. } => self.end(
                    Phase::Failed,
                    at,
                    "JobFailed",
                    format!("job {name} failed: {message}; logs: {logs}"),
                ),
                _ => self.end(
                    Phase::Executed,
                    at,
                    "Executed",
                    format!("job {name} succeeded; logs: {logs}"),
                ),
            },
            _ if deadline <= t => self.end(
                Phase::Failed,
                deadline,
                "DeadlineExceeded",
                format!(
                    "job {name} was still running at its deadline {} and was stopped; logs (while the Job exists): {logs}",
                    deadline.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            _ if lost && t >= self.input.now => self.end(
                Phase::Failed,
                t,
                "JobDeleted",
                format!("job {name} was deleted before it finished; it is not run again"),
            ),
            _ => {}
        }
        true
    }

    /// Applies the deadlines that pass before `t`.
    fn advance(&mut self, t: DateTime<Utc>) {
        if let State::Approved { at, .. } = self.state {
            if self.advance_job(at, t) {
                return;
            }
        }
        match self.state {
            State::Pending => {
                if let Some(deadline) = self.timeout_at().filter(|d| *d <= t) {
                    let timeout = duration::format(self.rules.timeout.unwrap_or_default());
                    self.end(
                        Phase::TimedOut,
                        deadline,
                        "TimedOut",
                        format!("no decision within the policy's timeout of {timeout}"),
                    );
                }
            }
            State::Approved { at, .. } => {
                let (_, expires) = self.access_span(at);
                let superseded = self.input.superseded_by.filter(|s| s.at <= t && s.at < expires);
                if let Some(s) = superseded {
                    let message = format!("access continues under request {}", s.by);
                    self.end(Phase::Superseded, s.at, "Superseded", message);
                } else if expires <= t {
                    let message = if self.job.is_some() {
                        "the access ended before the job could be started".to_string()
                    } else {
                        format!(
                            "access expired {} after it started",
                            duration::format(self.rules.duration)
                        )
                    };
                    self.end(Phase::Expired, expires, "Expired", message);
                }
            }
            State::Ended { .. } => {}
        }
    }

    fn is_self(&self, who: &Identity) -> bool {
        who.username == self.requester.username
    }

    /// The requester, or someone who would receive the access (`spec.subject`).
    fn is_beneficiary(&self, who: &Identity) -> bool {
        self.is_self(who) || benefits(self.input.request, who)
    }

    fn in_force_group(&self, who: &Identity) -> bool {
        who.groups.iter().any(|g| self.rules.force_groups.contains(g))
    }

    fn escalated(&self, who: &Identity, t: DateTime<Utc>) -> bool {
        match (&self.rules.escalation, self.escalation_at()) {
            (Some((_, groups)), Some(at)) => t >= at && who.groups.iter().any(|g| groups.contains(g)),
            _ => false,
        }
    }

    fn listed(&self, who: &Identity) -> bool {
        self.rules
            .stages
            .iter()
            .any(|s| s.lists(&who.username, &who.groups))
    }

    /// May act as a reviewer of this request at `t` (approve, reject or revoke).
    fn may_review(&self, who: &Identity, t: DateTime<Utc>) -> bool {
        self.in_force_group(who) || self.listed(who) || self.escalated(who, t)
    }

    fn tally(&self) -> Tally {
        tally::tally(self.rules, self.created, &self.approvals)
    }

    fn who_can_approve(&self, t: DateTime<Utc>) -> String {
        let p = eligible_now(
            self.rules,
            &self.tally(),
            self.escalation_at().is_some_and(|e| t >= e),
        );
        describe(&p)
    }

    fn comment_missing(&self, review: &AccessReview, decision: Decision) -> bool {
        let needs = match self.rules.justification {
            Justification::RequireForAll => matches!(decision, Decision::Reject | Decision::Revoke),
            Justification::RequireForRevoke => decision == Decision::Revoke,
            Justification::Optional => false,
        };
        needs && review.spec.comment.as_deref().is_none_or(|c| c.trim().is_empty())
    }

    fn verdict(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        accepted: bool,
        reason: &str,
        message: String,
    ) {
        self.verdict_forced(review, t, accepted, reason, message, false);
    }

    fn verdict_forced(
        &mut self,
        review: &AccessReview,
        t: DateTime<Utc>,
        accepted: bool,
        reason: &str,
        message: String,
        forced: bool,
    ) {
        let v = Verdict {
            review: review.name_any(),
            accepted,
            reason: reason.to_string(),
            message,
        };
        self.verdicts.push((
            v,
            review.spec.decision,
            review.spec.reviewer.username.clone(),
            t,
            forced,
        ));
    }

    fn approve(&mut self, at: DateTime<Utc>, how: &'static str) {
        if let Some(max) = self.rules.max_active {
            let prior_approval = self
                .input
                .request
                .status
                .as_ref()
                .is_some_and(|s| s.approved_at.is_some());
            let extended = self.input.request.spec.extends.as_deref();
            let ns = self.input.request.namespace().unwrap_or_default();
            let others: Vec<&String> = self
                .input
                .other_live_grants
                .iter()
                .filter(|n| Some(n.as_str()) != extended.map(|e| format!("{ns}/{e}")).as_deref())
                .collect();
            if !prior_approval && others.len() >= max as usize {
                let names: Vec<&str> = others.iter().map(|s| s.as_str()).collect();
                let message = format!(
                    "{} already holds {} live grant(s) under AccessPolicy {} ({}), the policy's maximum is {max}",
                    self.requester.username,
                    others.len(),
                    self.rules.policy,
                    names.join(", ")
                );
                self.end(Phase::Denied, at, "TooManyActiveGrants", message);
                return;
            }
        }
        self.state = State::Approved { at, how };
        self.approved = Some((at, how));
    }

    fn handle(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let decision = review.spec.decision;
        let named_uid = review.spec.request.as_ref().map_or("", |r| r.uid.as_str());
        if Some(named_uid) != self.input.request.uid().as_deref() {
            let message = format!(
                "the review names request uid {}, but {} has uid {}: it was made for an earlier request of the same name",
                named_uid,
                self.input.request.name_any(),
                self.input.request.uid().unwrap_or_default()
            );
            return self.verdict(review, t, false, "UidMismatch", message);
        }
        if decision == Decision::Comment {
            return self.verdict(review, t, true, "Commented", "comment recorded".into());
        }
        if decision == Decision::Reassign {
            let message = "Reassign applies to certification items, not to requests".to_string();
            return self.verdict(review, t, false, "NotApplicable", message);
        }
        match self.state.clone() {
            State::Ended { phase, .. } => {
                self.verdict(
                    review,
                    t,
                    false,
                    "NotPending",
                    format!("the request is already {phase}"),
                );
            }
            State::Pending => self.handle_pending(review, t),
            State::Approved { at, .. } => self.handle_approved(review, t, at),
        }
    }

    fn handle_pending(&mut self, review: &AccessReview, t: DateTime<Utc>) {
        let who = review.spec.reviewer.clone();
        match review.spec.decision {
            Decision::Approve => {
                if self.is_beneficiary(&who) && !self.rules.allow_self_approval {
                    let message = if self.is_self(&who) {
                        "the requester's own approval does not count".to_string()
                    } else {
                        format!(
                            "{} would receive this access (spec.subject), so their approval does not count",
                            who.username
                        )
                    };
                    return self.verdict(review, t, false, "SelfApproval", message);
                }
                if self.approvals.iter().any(|a| a.reviewer == who.username) {
                    return self.verdict(
                        review,
                        t,
                        false,
                        "Duplicate",
                        format!("{} has already approved; one person counts once", who.username),
                    );
                }
                if self.in_force_group(&who) {
                    let group = who
                        .groups
                        .iter()
                        .find(|g| self.rules.force_groups.contains(g))
                        .cloned()
                        .unwrap_or_default();
                    self.forced_by = Some((who.username.clone(), group.clone(), t));
                    self.verdict_forced(
                        review,
                        t,
                        true,
                        "ForceApproved",
                        format!("force approval by a member of {group}"),
                        true,
                    );
                    return self.approve(t, "ForceApproved");
                }
                let listed = self.listed(&who);
                let escalated = !listed && self.escalated(&who, t);
                if !listed && !escalated {
                    let message = format!(
                        "{} may not approve this request; who can: {}",
                        who.username,
                        self.who_can_approve(t)
                    );
                    return self.verdict(review, t, false, "NotEligible", message);
                }
                let before = self.tally();
                let escalated_to = if escalated { before.open_stage() } else { None };
                self.approvals.push(Approval {
                    reviewer: who.username.clone(),
                    groups: who.groups.clone(),
                    at: t,
                    escalated_to,
                });
                let after = self.tally();
                let k = self.approvals.len() - 1;
                let stage_of = after
                    .stages
                    .iter()
                    .position(|s| s.counted.iter().any(|(i, _)| *i == k));
                let message = match stage_of {
                    Some(i) if after.stages[i].opened_at.is_none() => {
                        format!("counts once stage {} opens", self.rules.stages[i].name)
                    }
                    Some(i) if self.rules.explicit_stages => {
                        format!("counted for stage {}", self.rules.stages[i].name)
                    }
                    Some(_) => "counted".to_string(),
                    None => match self
                        .rules
                        .stages
                        .iter()
                        .position(|s| s.lists(&who.username, &who.groups))
                    {
                        Some(i) if after.stages.get(i).is_some_and(|s| s.opened_at.is_none()) => {
                            format!("counts once stage {} opens", self.rules.stages[i].name)
                        }
                        _ => "recorded; the stages it could count for are already satisfied".to_string(),
                    },
                };
                self.verdict(review, t, true, "Approved", message);
                if after.approved_at.is_some() {
                    self.approve(t, "Approved");
                }
            }
            Decision::Reject => {
                if self.is_self(&who) {
                    return self.verdict(
                        review,
                        t,
                        false,
                        "SelfApproval",
                        "the requester cannot review their own request; use Cancel to withdraw it".into(),
                    );
                }
                if !self.may_review(&who, t) {
                    let message = format!(
                        "{} may not review this request; who can: {}",
                        who.username,
                        self.who_can_approve(t)
                    );
                    return self.verdict(review, t, false, "NotEligible", message);
                }
                if self.comment_missing(review, Decision::Reject) {
                    return self.verdict(
                        review,
                        t,
                        false,
                        "CommentRequired",
                        "the policy requires a comment on a rejection".into(),
                    );
                }
                self.rejected_by = Some((who.username.clone(), who.groups.clone(), t));
                self.conclude(review, t, Phase::Rejected, "the request is rejected", "rejected");
            }
            Decision::Revoke => {
                self.verdict(
                    review,
                    t,
                    false,
                    "NotActive",
                    "nothing to revoke yet: the request is pending (use Reject or Cancel)".into(),
                );
            }
            Decision::Cancel => self.cancel(review, t, false),
            // Refused in `handle`.
            Decision::Comment | Decision::Reassign => {}
        }
    }

    fn cancel(&mut self, review: &AccessReview, t: DateTime<Utc>, granted: bool) {
        if !self.is_self(&review.spec.reviewer) {
            return self.verdict(
                review,
                t,
                false,
                "NotRequester",
                "only the requester can cancel a request".into(),
            );
        }
        if granted {
            return self.verdict(
                review,
                t,
                false,
                "AlreadyActive",
                "access has already started; use Revoke to end it".into(),
            );
        }
        self.conclude(review, t, Phase::Canceled, "the request is canceled", "canceled");
    }

    /// An accepted review that ends the request: its verdict, and the phase with
    /// who ended it (and their comment) as the message.
    fn conclude(&mut self, review: &AccessReview, t: DateTime<Utc>, phase: Phase, verdict: &str, verb: &str) {
        self.verdict(review, t, true, phase.as_str(), verdict.to_string());
        let message = format!(
            "{verb} by {}{}",
            review.spec.reviewer.username,
            comment_suffix(review)
        );
        self.end(phase, t, phase.as_str(), message);
    }

    fn handle_approved(&mut self, review: &AccessReview, t: DateTime<Utc>, approved_at: DateTime<Utc>) {
        let who = review.spec.reviewer.clone();
        match review.spec.decision {
            Decision::Approve | Decision::Reject => {
                let message = format!(
                    "the request was already approved at {}",
                    approved_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                );
                self.verdict(review, t, false, "NotPending", message);
            }
            Decision::Cancel => {
                let granted = self
                    .intervals_until(t)
                    .first()
                    .is_some_and(|(start, _)| *start < t);
                self.cancel(review, t, granted);
            }
            Decision::Revoke => {
                if !self.is_self(&who) && !self.may_review(&who, t) {
                    let message = format!(
                        "{} may neither request nor approve this access, so may not revoke it",
                        who.username
                    );
                    return self.verdict(review, t, false, "NotEligible", message);
                }
                if self.comment_missing(review, Decision::Revoke) {
                    return self.verdict(
                        review,
                        t,
                        false,
                        "CommentRequired",
                        "the policy requires a comment on a revocation".into(),
                    );
                }
                self.conclude(review, t, Phase::Revoked, "access is revoked", "revoked");
            }
            // Refused in `handle`.
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

/// Who can act on the open stage now.
fn eligible_now(rules: &Rules, tally: &Tally, escalated: bool) -> Principals {
    let mut p = Principals::default();
    match tally.open_stage() {
        Some(i) => {
            p.groups.extend(rules.stages[i].groups.iter().cloned());
            p.users.extend(rules.stages[i].users.iter().cloned());
        }
        None => {
            for s in &rules.stages {
                p.groups.extend(s.groups.iter().cloned());
                p.users.extend(s.users.iter().cloned());
            }
        }
    }
    if escalated {
        if let Some((_, groups)) = &rules.escalation {
            p.groups.extend(groups.iter().cloned());
        }
    }
    p.groups.extend(rules.force_groups.iter().cloned());
    let mut seen = std::collections::BTreeSet::new();
    p.groups.retain(|g| seen.insert(g.clone()));
    let mut seen = std::collections::BTreeSet::new();
    p.users.retain(|u| seen.insert(u.clone()));
    p
}

fn describe(p: &Principals) -> String {
    let mut parts: Vec<String> = p.groups.iter().map(|g| format!("group {g}")).collect();
    parts.extend(p.users.iter().map(|u| format!("user {u}")));
    if parts.is_empty() {
        "nobody".to_string()
    } else {
        parts.join(", ")
    }
}

/// Evaluates one request. See the module documentation.
pub fn evaluate(input: &Input) -> Evaluation {
    let req = input.request;
    let now = input.now;
    let created = created_at(req).unwrap_or(now);
    let prev = req.status.clone().unwrap_or_default();
    let has_prev = req.status.is_some();

    let mut reviews: Vec<(&AccessReview, DateTime<Utc>)> = input
        .reviews
        .iter()
        .filter(|r| r.spec.request.as_ref().is_some_and(|q| q.name == req.name_any()))
        .map(|r| (r, created_at(r).unwrap_or(now).max(created)))
        .filter(|(_, t)| *t <= now)
        .collect();
    // creationTimestamp has one-second resolution. Within one second the order
    // is the one that grants the least: a reject or cancel before an approval,
    // a revoke after it.
    let rank = |r: &AccessReview| match r.spec.decision {
        Decision::Comment | Decision::Reassign => 0,
        Decision::Reject | Decision::Cancel => 1,
        Decision::Approve => 2,
        Decision::Revoke => 3,
    };
    reviews.sort_by(|(a, ta), (b, tb)| {
        ta.cmp(tb)
            .then_with(|| rank(a).cmp(&rank(b)))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    });

    if has_prev && prev.phase.is_terminal() {
        return keep_terminal(input, prev, &reviews);
    }

    let requirements = match &prev.requirements {
        Some(r) => Ok(r.clone()),
        None => first_admission(input),
    };
    let rules = requirements.as_ref().map_err(Clone::clone).and_then(|r| {
        policy::rules_from_snapshot(r)
            .map_err(|e| Denial::new("InvalidPolicy", format!("the policy snapshot is invalid: {e}")))
    });
    let (requirements, rules) = match (requirements, rules) {
        (Ok(req_snapshot), Ok(rules)) => (req_snapshot, rules),
        (_, Err(denial)) | (Err(denial), _) => return denied(input, created, denial, &reviews),
    };

    let mut replay = Replay {
        input,
        rules: &rules,
        created,
        requester: &req.spec.requester,
        state: State::Pending,
        approved: None,
        approvals: Vec::new(),
        forced_by: None,
        rejected_by: None,
        verdicts: Vec::new(),
        job: (req.spec.type_ == RequestType::OneTime).then(|| job_facts(input, &prev)),
    };
    if rules.auto_approved {
        replay.approve(created, "AutoApproved");
    }
    for (review, t) in &reviews {
        replay.advance(*t);
        replay.handle(review, *t);
    }
    replay.advance(now);
    build(&replay, requirements, &prev)
}

/// Reconciles the stored job record with what the shell observed.
fn job_facts<'a>(input: &Input<'a>, prev: &ApprovalRequestStatus) -> JobFacts<'a> {
    let target = job::job_ref(input.request);
    let recorded = prev.job.as_ref();
    let recorded_uid = recorded.and_then(|j| j.uid.clone());
    let observed = input
        .job
        .filter(|o| o.name == target.name && recorded_uid.as_deref().is_none_or(|u| u == o.uid));
    JobFacts {
        lost: recorded_uid.is_some() && observed.is_none(),
        // A deadline planned for a job that was never created does not bind a later start.
        deadline: recorded
            .and_then(|j| j.deadline)
            .filter(|_| observed.is_some() || recorded_uid.is_some()),
        started: observed
            .map(|o| o.created)
            .or_else(|| recorded.and_then(|j| j.started_at)),
        target,
        observed,
        recorded_uid,
    }
}

/// Policy selection and the checks made once, when a request is first seen.
fn first_admission(input: &Input) -> Result<crate::api::Requirements, Denial> {
    let req = input.request;
    if req.spec.type_ == RequestType::OneTime {
        if req.spec.job.is_none() {
            return Err(Denial::new(
                "MissingJob",
                "a OneTime request needs spec.job: the job to run once",
            ));
        }
        // The job's identity is its own ServiceAccount, created for this request:
        // a subject would hand the role to someone the reviewers did not see run.
        if req.spec.subject.is_some() {
            return Err(Denial::new(
                "SubjectNotAllowed",
                "a OneTime job runs as a ServiceAccount created for this request: omit spec.subject",
            ));
        }
        if req.spec.extends.is_some() {
            return Err(Denial::new(
                "InvalidExtends",
                "a OneTime request runs its job once and cannot extend another request: omit spec.extends",
            ));
        }
    }
    if let Some(name) = &req.spec.extends {
        let Some(old) = input.extended else {
            return Err(Denial::new(
                "InvalidExtends",
                format!("spec.extends names request {name}, which does not exist in this namespace"),
            ));
        };
        let same = old.spec.requester.username == req.spec.requester.username
            && old.spec.role == req.spec.role
            && old.spec.scope == req.spec.scope
            && subject_of(old) == subject_of(req);
        if !same {
            return Err(Denial::new(
                "InvalidExtends",
                format!("request {name} is for another requester, subject, role or scope; only your own request for the same access can be extended"),
            ));
        }
        let phase = old.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if !matches!(phase, Phase::Active | Phase::Approved | Phase::Superseded) {
            return Err(Denial::new(
                "InvalidExtends",
                format!("request {name} is {phase}; only an Active request can be extended"),
            ));
        }
    }
    let chosen = policy::select(req, input.policies, input.namespace_labels)?;
    policy::admit(req, chosen)
}

fn condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
    at: DateTime<Utc>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: at,
    }
}

/// Keeps `lastTransitionTime` of conditions whose status did not change.
fn settle_conditions(mut next: Vec<Condition>, prev: &[Condition]) -> Vec<Condition> {
    for c in &mut next {
        if let Some(p) = prev.iter().find(|p| p.type_ == c.type_ && p.status == c.status) {
            c.last_transition_time = p.last_transition_time;
        }
    }
    next
}

fn record(
    v: &Verdict,
    decision: Decision,
    reviewer: &str,
    at: DateTime<Utc>,
    forced: bool,
) -> DecisionRecord {
    DecisionRecord {
        review: v.review.clone(),
        reviewer: reviewer.to_string(),
        decision,
        at,
        accepted: v.accepted,
        reason: v.reason.clone(),
        message: v.message.clone(),
        forced,
    }
}

/// Reviews that arrive after the end get a verdict; nothing else changes.
fn keep_terminal(
    input: &Input,
    mut status: ApprovalRequestStatus,
    reviews: &[(&AccessReview, DateTime<Utc>)],
) -> Evaluation {
    let phase = status.phase;
    let mut verdicts = Vec::new();
    for (review, t) in reviews {
        let name = review.name_any();
        if let Some(d) = status.decisions.iter().find(|d| d.review == name) {
            verdicts.push(Verdict {
                review: name,
                accepted: d.accepted,
                reason: d.reason.clone(),
                message: d.message.clone(),
            });
            continue;
        }
        let v = Verdict {
            review: name,
            accepted: false,
            reason: "NotPending".into(),
            message: format!("the request is already {phase}"),
        };
        status.decisions.push(record(
            &v,
            review.spec.decision,
            &review.spec.reviewer.username,
            *t,
            false,
        ));
        verdicts.push(v);
    }
    status.observed_generation = input.request.metadata.generation;
    let mut actions = Vec::new();
    if status.grant.is_some() {
        actions.push(Action::RemoveBinding(binding_ref(input.request)));
    }
    actions.extend(one_time_cleanup(input.request, &status));
    let next_deadline = retention_deadline(&status).filter(|d| *d > input.now);
    if retention_deadline(&status).is_some_and(|d| d <= input.now) {
        actions.push(Action::DeleteRecord);
    }
    Evaluation {
        status,
        actions,
        verdicts,
        next_deadline,
    }
}

fn retention_deadline(status: &ApprovalRequestStatus) -> Option<DateTime<Utc>> {
    let retention = status
        .requirements
        .as_ref()
        .and_then(|r| duration::parse(&r.retention).ok())
        .unwrap_or_else(|| duration::parse(policy::DEFAULT_RETENTION).unwrap_or_else(|_| Duration::days(30)));
    status.completed_at.map(|c| c + retention)
}

fn denied(
    input: &Input,
    created: DateTime<Utc>,
    denial: Denial,
    reviews: &[(&AccessReview, DateTime<Utc>)],
) -> Evaluation {
    let generation = input.request.metadata.generation;
    let prev = input.request.status.clone().unwrap_or_default();
    let mut status = ApprovalRequestStatus {
        phase: Phase::Denied,
        completed_at: Some(created),
        observed_generation: generation,
        ..Default::default()
    };
    let mut verdicts = Vec::new();
    for (review, t) in reviews {
        let v = Verdict {
            review: review.name_any(),
            accepted: false,
            reason: "NotPending".into(),
            message: "the request was denied by policy".into(),
        };
        status.decisions.push(record(
            &v,
            review.spec.decision,
            &review.spec.reviewer.username,
            *t,
            false,
        ));
        verdicts.push(v);
    }
    status.conditions = settle_conditions(
        vec![
            condition(
                APPROVED,
                ConditionStatus::False,
                &denial.reason,
                denial.message.clone(),
                created,
                generation,
            ),
            condition(
                GRANTED,
                ConditionStatus::False,
                "Denied",
                "no access was granted".into(),
                created,
                generation,
            ),
            condition(
                COMPLETE,
                ConditionStatus::True,
                "Denied",
                denial.message,
                created,
                generation,
            ),
        ],
        &prev.conditions,
    );
    let retention = duration::parse(policy::DEFAULT_RETENTION).unwrap_or_else(|_| Duration::days(30));
    let deadline = created + retention;
    let actions = if deadline <= input.now {
        vec![Action::DeleteRecord]
    } else {
        Vec::new()
    };
    Evaluation {
        status,
        actions,
        verdicts,
        next_deadline: (deadline > input.now).then_some(deadline),
    }
}

/// Turns the finished replay into the status, the actions and the next deadline.
fn build(r: &Replay, requirements: crate::api::Requirements, prev: &ApprovalRequestStatus) -> Evaluation {
    let input = r.input;
    let req = input.request;
    let now = input.now;
    let rules = r.rules;
    let generation = req.metadata.generation;
    let tally = r.tally();
    let target = binding_ref(req);

    let end = match &r.state {
        State::Ended {
            phase,
            at,
            reason,
            message,
        } => Some((*phase, *at, reason.clone(), message.clone())),
        _ => None,
    };
    let end_at = end.as_ref().map(|e| e.1);
    let span = r.approved.map(|(at, _)| r.access_span(at));
    let intervals = r.intervals_until(
        end_at
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
            .min(span.map(|s| s.1).unwrap_or(now)),
    );
    let past: Vec<Interval> = intervals.iter().filter(|(s, _)| *s <= now).copied().collect();
    let granted_at = past.first().map(|(s, _)| *s);
    let current = if end.is_none() {
        intervals.iter().find(|(s, e)| *s <= now && now < *e).copied()
    } else {
        None
    };

    let phase = match (&r.state, current) {
        (State::Ended { phase, .. }, _) => *phase,
        (State::Pending, _) => Phase::Pending,
        (State::Approved { .. }, Some(_)) if r.job.is_some() => Phase::Processing,
        (State::Approved { .. }, Some(_)) => Phase::Active,
        (State::Approved { .. }, None) => Phase::Approved,
    };
    let job_record = r.job.as_ref().and_then(|j| job_record(r, j, &end, current, prev));

    let revoked_at = match end {
        Some(_) => past.last().map(|(_, e)| (*e).min(end_at.unwrap_or(*e))),
        None => None,
    };
    let grant = span.map(|(_, expires)| GrantStatus {
        kind: target.kind,
        name: target.name.clone(),
        namespace: target.namespace.clone(),
        granted_at,
        expires_at: Some(expires),
        revoked_at,
    });

    // Stages and review groups.
    let open = if matches!(r.state, State::Pending) {
        tally.open_stage()
    } else {
        None
    };
    let mut stages = Vec::new();
    let mut review_groups = Vec::new();
    for (i, (plan, st)) in rules.stages.iter().zip(&tally.stages).enumerate() {
        let rejected_here = r
            .rejected_by
            .as_ref()
            .filter(|(u, g, _)| plan.lists(u, g) && (open == Some(i) || open.is_none()));
        let state_of = |done: bool| {
            if done {
                ReviewState::Approved
            } else if rejected_here.is_some()
                && matches!(
                    r.state,
                    State::Ended {
                        phase: Phase::Rejected,
                        ..
                    }
                )
            {
                ReviewState::Rejected
            } else if st.opened_at.is_some() {
                ReviewState::Pending
            } else {
                ReviewState::Waiting
            }
        };
        if rules.explicit_stages {
            stages.push(StageStatus {
                name: plan.name.clone(),
                status: state_of(st.satisfied_at.is_some()),
                required: plan.required(),
                received: st.counted.len() as u32,
                opened_at: st.opened_at,
                approved_at: st.satisfied_at,
            });
        }
        let slots = plan
            .groups
            .iter()
            .cloned()
            .chain(plan.users.iter().map(|u| format!("user:{u}")));
        let escalation_slots = st.counted.iter().map(|(_, label)| label.clone()).filter(|l| {
            !plan.groups.contains(l)
                && l.strip_prefix("user:")
                    .is_none_or(|u| !plan.users.iter().any(|x| x == u))
        });
        let mut seen = std::collections::BTreeSet::new();
        for slot in slots.chain(escalation_slots) {
            if !seen.insert(slot.clone()) {
                continue;
            }
            let by = st
                .counted
                .iter()
                .find(|(_, l)| *l == slot)
                .map(|(k, _)| &r.approvals[*k]);
            review_groups.push(ReviewGroupStatus {
                group: slot,
                stage: rules.explicit_stages.then(|| plan.name.clone()),
                status: state_of(by.is_some()),
                reviewed_by: by.map(|a| a.reviewer.clone()),
                reviewed_at: by.map(|a| a.at),
                forced: false,
            });
        }
    }
    if let Some((user, group, at)) = &r.forced_by {
        review_groups.push(ReviewGroupStatus {
            group: group.clone(),
            stage: None,
            status: ReviewState::Approved,
            reviewed_by: Some(user.clone()),
            reviewed_at: Some(*at),
            forced: true,
        });
    }

    let required = rules.required();
    let how = r.approved.map(|(_, how)| how);
    let summary = match how {
        Some("AutoApproved") => "auto".to_string(),
        Some("ForceApproved") => "forced".to_string(),
        _ => format!("{}/{required}", tally.received),
    };
    let escalated = r.escalation_at().is_some_and(|e| now >= e);
    let eligible = (phase == Phase::Pending).then(|| eligible_now(rules, &tally, escalated));

    // Conditions: transition times come from the history, never from `now`.
    let mut conditions = Vec::new();
    match (r.approved, &end) {
        (Some((at, how)), _) => conditions.push(condition(
            APPROVED,
            ConditionStatus::True,
            how,
            match how {
                "AutoApproved" => format!("approved automatically by AccessPolicy {}", rules.policy),
                "ForceApproved" => format!(
                    "force-approved by {}",
                    r.forced_by
                        .as_ref()
                        .map(|(u, g, _)| format!("{u} ({g})"))
                        .unwrap_or_default()
                ),
                _ => format!("{} of {required} approvals", tally.received),
            },
            at,
            generation,
        )),
        (None, Some((_, at, reason, message))) => conditions.push(condition(
            APPROVED,
            ConditionStatus::False,
            reason,
            message.clone(),
            *at,
            generation,
        )),
        (None, None) => {
            let stage = open
                .filter(|_| rules.explicit_stages)
                .map(|i| format!("; stage {} is open", rules.stages[i].name))
                .unwrap_or_default();
            let message = format!(
                "{} of {required} approvals{stage}; who can approve: {}",
                tally.received,
                describe(eligible.as_ref().unwrap_or(&Principals::default()))
            );
            conditions.push(condition(
                APPROVED,
                ConditionStatus::False,
                "AwaitingApproval",
                message,
                r.created,
                generation,
            ));
        }
    }
    match (current, &end, span) {
        (Some((from, until)), _, _) => conditions.push(condition(
            GRANTED,
            ConditionStatus::True,
            "BindingActive",
            format!(
                "{} {} grants {} until {}",
                target.kind_str(),
                target.name,
                req.spec.role,
                until.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
            from,
            generation,
        )),
        (None, Some((phase, at, _, _)), _) => conditions.push(condition(
            GRANTED,
            ConditionStatus::False,
            phase.as_str(),
            if granted_at.is_some() {
                "the binding was removed".into()
            } else {
                "no access was granted".into()
            },
            revoked_at.unwrap_or(*at),
            generation,
        )),
        (None, None, Some((start, _))) => {
            let (reason, message) = if now < start {
                (
                    "NotStarted",
                    format!(
                        "access starts at {}",
                        start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                    ),
                )
            } else {
                (
                    "OutsideTimeWindow",
                    "access exists only inside the policy's time window".to_string(),
                )
            };
            let since = past
                .last()
                .map(|(_, e)| *e)
                .unwrap_or(r.approved.map(|(a, _)| a).unwrap_or(r.created));
            conditions.push(condition(
                GRANTED,
                ConditionStatus::False,
                reason,
                message,
                since,
                generation,
            ));
        }
        (None, None, None) => conditions.push(condition(
            GRANTED,
            ConditionStatus::False,
            "NotApproved",
            "waiting for approval".into(),
            r.created,
            generation,
        )),
    }
    match &end {
        Some((_, at, reason, message)) => conditions.push(condition(
            COMPLETE,
            ConditionStatus::True,
            reason,
            message.clone(),
            *at,
            generation,
        )),
        None => conditions.push(condition(
            COMPLETE,
            ConditionStatus::False,
            "InProgress",
            format!("the request is {phase}"),
            r.created,
            generation,
        )),
    }

    let status = ApprovalRequestStatus {
        phase,
        requirements: Some(requirements),
        approvals: Some(ApprovalCount {
            required,
            received: tally.received,
            summary,
        }),
        eligible_reviewers: eligible,
        review_groups,
        stages,
        decisions: r
            .verdicts
            .iter()
            .map(|(v, d, who, at, forced)| record(v, *d, who, *at, *forced))
            .collect(),
        grant,
        approved_at: r.approved.map(|(at, _)| at),
        expires_at: span.map(|(_, e)| e),
        completed_at: end_at,
        job: job_record,
        conditions: settle_conditions(conditions, &prev.conditions),
        observed_generation: generation,
    };

    let mut actions = Vec::new();
    match (current, &r.job) {
        (Some((_, until)), Some(job)) => {
            // Order matters: the job must find its identity and role in place.
            let deadline = status
                .job
                .as_ref()
                .and_then(|j| j.deadline)
                .unwrap_or(until)
                .min(until);
            let sa = job.target.clone();
            actions.push(Action::EnsureServiceAccount(sa.clone()));
            actions.push(Action::EnsureBinding(Binding {
                target: target.clone(),
                role: req.spec.role.clone(),
                subject: Subject {
                    kind: SubjectKind::ServiceAccount,
                    name: sa.name.clone(),
                    namespace: Some(sa.namespace.clone()),
                },
                valid_until: deadline,
            }));
            if job.observed.is_none() && job.recorded_uid.is_none() {
                if let Some(spec) = &req.spec.job {
                    actions.push(Action::CreateJob(JobPlan {
                        target: job.target.clone(),
                        service_account: sa.name,
                        spec: spec.clone(),
                        deadline,
                    }));
                }
            }
        }
        (Some((_, until)), None) => actions.push(Action::EnsureBinding(Binding {
            target: target.clone(),
            role: req.spec.role.clone(),
            subject: subject_of(req),
            valid_until: until,
        })),
        (None, _) if span.is_some() => actions.push(Action::RemoveBinding(target.clone())),
        (None, _) => {}
    }
    if end.is_some() && r.approved.is_some() {
        actions.extend(one_time_cleanup(req, &status));
    }

    let mut deadlines: Vec<DateTime<Utc>> = Vec::new();
    match &r.state {
        State::Pending => {
            deadlines.extend(r.timeout_at());
            deadlines.extend(r.escalation_at());
        }
        State::Approved { at, .. } => {
            let (start, expires) = r.access_span(*at);
            deadlines.push(start);
            deadlines.push(expires);
            for (s, e) in window::access_intervals(rules.window.as_ref(), start.max(now), expires) {
                deadlines.push(s);
                deadlines.push(e);
            }
        }
        State::Ended { .. } => {
            if let Some(d) = retention_deadline(&status) {
                if d <= now {
                    actions.push(Action::DeleteRecord);
                }
                deadlines.push(d);
            }
        }
    }
    if let Some(d) = status
        .job
        .as_ref()
        .and_then(|j| j.deadline)
        .filter(|_| end.is_none())
    {
        deadlines.push(d);
    }
    let next_deadline = deadlines.into_iter().filter(|d| *d > now).min();
    let verdicts = r.verdicts.iter().map(|(v, ..)| v.clone()).collect();
    Evaluation {
        status,
        actions,
        verdicts,
        next_deadline,
    }
}

/// The `status.job` of a OneTime request: kept from the stored status, updated
/// with what was observed and how the request ended.
fn job_record(
    r: &Replay,
    job: &JobFacts,
    end: &Option<(Phase, DateTime<Utc>, String, String)>,
    current: Option<Interval>,
    prev: &ApprovalRequestStatus,
) -> Option<JobRecord> {
    let (approved_at, _) = r.approved?;
    let kept = prev.job.as_ref();
    if job.started.is_none() && current.is_none() && kept.is_none() {
        return None;
    }
    let deadline = match (job.deadline, job.started) {
        (Some(d), _) => Some(d),
        (None, Some(started)) => Some(r.job_deadline(approved_at, started)),
        (None, None) => current.map(|(_, e)| e),
    };
    let (state, finished_at, message) = match end {
        Some((_, at, reason, message)) => {
            let state = match reason.as_str() {
                "Executed" => JobState::Succeeded,
                "JobFailed" => JobState::Failed,
                "JobDeleted" => JobState::Deleted,
                _ => JobState::Stopped,
            };
            let message = match (state, job.observed.map(|o| &o.progress)) {
                (JobState::Succeeded, _) => None,
                (JobState::Failed, Some(JobProgress::Failed { message, .. })) => Some(message.clone()),
                _ => Some(message.clone()),
            };
            (state, Some(*at), message)
        }
        None if job.observed.is_some() || job.recorded_uid.is_some() => (JobState::Running, None, None),
        None => (JobState::Starting, None, None),
    };
    Some(JobRecord {
        name: job.target.name.clone(),
        service_account: job.target.name.clone(),
        uid: job
            .observed
            .map(|o| o.uid.clone())
            .or_else(|| job.recorded_uid.clone()),
        state,
        started_at: job.started,
        deadline,
        finished_at,
        message,
        logs: job::logs_hint(&job.target),
    })
}

/// What stays to be removed once a OneTime request has ended: its ServiceAccount,
/// and its Job unless the job finished by itself (its logs are kept with it).
fn one_time_cleanup(req: &ApprovalRequest, status: &ApprovalRequestStatus) -> Vec<Action> {
    if req.spec.type_ != RequestType::OneTime || status.approved_at.is_none() {
        return Vec::new();
    }
    let target = job::job_ref(req);
    let mut actions = vec![Action::DeleteServiceAccount(target.clone())];
    let finished = status
        .job
        .as_ref()
        .is_some_and(|j| matches!(j.state, JobState::Succeeded | JobState::Failed));
    if !finished {
        actions.push(Action::DeleteJob(target));
    }
    actions
}

impl BindingRef {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub fn kind_str(&self) -> &'static str {
        match self.kind {
            BindingKind::RoleBinding => "RoleBinding",
            BindingKind::ClusterRoleBinding => "ClusterRoleBinding",
        }
    }
}

#[cfg(test)]
mod tests;
