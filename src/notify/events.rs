//! What happened, typed: a [`Notice`] is one occurrence of a
//! [`NotificationEvent`] on one object, with the facts a message needs.
//!
//! Notices are derived from the stored status alone ([`request_notices`]), never
//! from what one reconcile happened to see: the same status always yields the
//! same notices with the same keys. That is what makes delivery survive restarts
//! and leader changes: whoever leads re-derives, and the ledger says which keys
//! were sent. Events that ask someone to act (a review, an expiry warning) are
//! derived only while acting is still possible, so a restart after the fact never
//! sends a stale "waiting for you".

use chrono::{DateTime, Duration, Utc};
use kube::ResourceExt;

use crate::{
    api::{
        ApprovalRequest, ConditionStatus, Decision, NotificationEvent, Phase, Principals, RequestType,
        ReviewState, Scope,
    },
    decide::{
        self, created_at,
        reason::{ApprovalKind, EndCause, Ending},
    },
};

/// The object an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectId {
    /// `ApprovalRequest`, `AccessCertification` or `AccessCampaign`.
    pub kind: &'static str,
    /// Namespace, for namespaced kinds.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// uid: the identity deliveries are keyed by.
    pub uid: String,
}

impl ObjectId {
    /// `namespace/name`, or `name`.
    pub fn path(&self) -> String {
        match &self.namespace {
            Some(ns) => format!("{ns}/{}", self.name),
            None => self.name.clone(),
        }
    }
}

/// One occurrence of an event on an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Notice {
    /// The event.
    pub event: NotificationEvent,
    /// Tells repeated occurrences of one event on one object apart (the stage,
    /// level or run); empty for events that happen once.
    pub occurrence: String,
    /// When it happened (for `ExpiringSoon`, when the warning is due).
    pub at: DateTime<Utc>,
    /// What it is about.
    pub object: ObjectId,
    /// The facts for the message.
    pub details: Details,
}

impl Notice {
    /// The stable key of the occurrence: `Event` or `Event/occurrence`.
    pub fn key(&self) -> String {
        if self.occurrence.is_empty() {
            self.event.as_str().to_string()
        } else {
            format!("{}/{}", self.event, self.occurrence)
        }
    }
}

/// The facts of a notice, by kind of object.
#[derive(Debug, Clone, PartialEq)]
pub enum Details {
    /// An ApprovalRequest.
    Request(RequestFacts),
    /// An AccessCertification item.
    Item(super::certification::ItemFacts),
    /// A run of an AccessCampaign.
    Run(super::certification::RunFacts),
}

/// What a message about a request says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RequestFacts {
    /// Who asked.
    pub requester: String,
    /// Who receives the access (`User alice`, `Group oncall`).
    pub subject: String,
    /// The role (`ClusterRole/view`).
    pub role: String,
    /// The namespace granted in; `None` for a cluster-wide grant.
    pub namespace: Option<String>,
    /// The duration asked for or granted (Go duration).
    pub duration: Option<String>,
    /// The requester's reason.
    pub reason: Option<String>,
    /// The policy the request is evaluated under.
    pub policy: Option<String>,
    /// Who can review now.
    pub reviewers: Principals,
    /// The open stage, for a staged policy.
    pub stage: Option<String>,
    /// Who approved.
    pub approvers: Vec<String>,
    /// How it was approved.
    pub approval: Option<ApprovalKind>,
    /// When access ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// How it ended.
    pub ending: Option<Ending>,
    /// Who ended it (rejected, revoked, canceled).
    pub ended_by: Option<String>,
    /// Why it ended or was refused, in the operator's words.
    pub why: Option<String>,
    /// OneTime: the job's image.
    pub job_image: Option<String>,
    /// What the grant was used for (`used 14 times: get pods`), with audit evidence.
    pub usage: Option<String>,
}

/// Facts of a request from its spec and stored status.
pub fn request_facts(req: &ApprovalRequest) -> RequestFacts {
    let status = req.status.clone().unwrap_or_default();
    let requirements = status.requirements.as_ref();
    let subject = req.spec.subject.as_ref().map_or_else(
        || format!("User {}", req.spec.requester.username),
        ToString::to_string,
    );
    let open_stage = status
        .stages
        .iter()
        .find(|s| s.status == ReviewState::Pending)
        .map(|s| s.name.clone());
    let mut approvers: Vec<String> = status
        .review_groups
        .iter()
        .filter(|g| g.status == ReviewState::Approved)
        .filter_map(|g| g.reviewed_by.clone())
        .collect();
    approvers.dedup();
    let condition = |t: &str| status.conditions.iter().find(|c| c.type_ == t);
    let approval = condition(decide::APPROVED)
        .filter(|c| c.status == ConditionStatus::True)
        .and_then(|c| ApprovalKind::parse(&c.reason));
    let complete = condition(decide::COMPLETE).filter(|c| c.status == ConditionStatus::True);
    let ending = complete.and_then(|c| Ending::parse(&c.reason));
    let why = complete
        .map(|c| c.message.clone())
        .or_else(|| {
            condition(decide::APPROVED)
                .filter(|c| c.status == ConditionStatus::False && status.phase == Phase::Denied)
                .map(|c| c.message.clone())
        })
        .filter(|m| !m.is_empty());
    let ended_by = ending.and_then(|e| {
        let decision = match e {
            Ending::Ended(EndCause::Rejected) => Decision::Reject,
            Ending::Ended(EndCause::Revoked) => Decision::Revoke,
            Ending::Ended(EndCause::Canceled) => Decision::Cancel,
            _ => return None,
        };
        status
            .decisions
            .iter()
            .rev()
            .find(|d| d.accepted && d.decision == decision)
            .map(|d| d.reviewer.clone())
    });
    RequestFacts {
        requester: req.spec.requester.username.clone(),
        subject,
        role: req.spec.role.to_string(),
        namespace: match req.spec.scope {
            Scope::Namespace => req.namespace(),
            Scope::Cluster => None,
        },
        duration: requirements
            .map(|r| r.duration.clone())
            .or_else(|| req.spec.duration.clone()),
        reason: req.spec.reason.clone(),
        policy: requirements.map(|r| r.policy.clone()),
        reviewers: status.eligible_reviewers.clone().unwrap_or_default(),
        stage: open_stage,
        approvers,
        approval,
        expires_at: status.expires_at,
        ending,
        ended_by,
        why,
        usage: status.usage.as_ref().map(|u| u.summary.clone()),
        job_image: (req.spec.type_ == RequestType::OneTime)
            .then(|| req.spec.job.as_ref().map(|j| j.image.clone()))
            .flatten(),
    }
}

/// Lead times of the events a channel schedules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Leads {
    /// `ExpiringSoon` this long before a grant's expiry.
    pub expiring_soon: Duration,
    /// `CertificationReminder` this long before an item is due.
    pub remind: Duration,
}

impl Default for Leads {
    fn default() -> Self {
        Leads {
            expiring_soon: Duration::minutes(10),
            remind: Duration::hours(24),
        }
    }
}

/// The event of a terminal phase, if it has one (`Superseded` has none: the
/// newer request's own events say it all).
pub fn terminal_event(phase: Phase) -> Option<NotificationEvent> {
    Some(match phase {
        Phase::Denied => NotificationEvent::Denied,
        Phase::TimedOut => NotificationEvent::TimedOut,
        Phase::Expired => NotificationEvent::Expired,
        Phase::Rejected => NotificationEvent::Rejected,
        Phase::Revoked => NotificationEvent::Revoked,
        Phase::Canceled => NotificationEvent::Canceled,
        Phase::Executed => NotificationEvent::Executed,
        Phase::Failed => NotificationEvent::ExecutionFailed,
        Phase::Superseded | Phase::Pending | Phase::Approved | Phase::Active | Phase::Processing => {
            return None
        }
    })
}

/// Every notice the request's stored status shows has happened by `now`.
pub fn request_notices(req: &ApprovalRequest, now: DateTime<Utc>, leads: Leads) -> Vec<Notice> {
    let (Some(status), Some(uid)) = (req.status.as_ref(), req.uid()) else {
        return Vec::new();
    };
    let facts = request_facts(req);
    let object = ObjectId {
        kind: "ApprovalRequest",
        namespace: req.namespace(),
        name: req.name_any(),
        uid,
    };
    let created = created_at(req).unwrap_or(now);
    let mut out = Vec::new();
    let mut push = |event, occurrence: String, at| {
        out.push(Notice {
            event,
            occurrence,
            at,
            object: object.clone(),
            details: Details::Request(facts.clone()),
        })
    };
    let pending = status.phase == Phase::Pending && status.requirements.is_some();
    if pending {
        // Only while someone can still act on it.
        let open = status.stages.iter().find(|s| s.status == ReviewState::Pending);
        let (stage, opened) = match open {
            Some(s) => (s.name.clone(), s.opened_at.unwrap_or(created)),
            None => (String::new(), created),
        };
        push(NotificationEvent::ReviewRequired, stage, opened);
        // The instant the core lets the escalation groups approve.
        if let Some(at) = decide::escalation_of(req, now).filter(|at| now >= *at) {
            push(NotificationEvent::Escalated, String::new(), at);
        }
    }
    if let Some(approved) = status.approved_at {
        push(NotificationEvent::Approved, String::new(), approved);
    }
    if let Some(granted) = status.grant.as_ref().and_then(|g| g.granted_at) {
        push(NotificationEvent::Granted, String::new(), granted);
        if status.phase == Phase::Active {
            if let Some(due) = expiring_soon_at(req, leads.expiring_soon) {
                if now >= due {
                    push(NotificationEvent::ExpiringSoon, String::new(), due);
                }
            }
        }
    }
    if let Some(event) = terminal_event(status.phase) {
        push(event, String::new(), status.completed_at.unwrap_or(now));
    }
    out
}

/// When the `ExpiringSoon` warning of an active grant is due, with this lead; `None`
/// when the grant is not active, has passed its expiry, or is shorter than the lead.
pub fn expiring_soon_at(req: &ApprovalRequest, lead: Duration) -> Option<DateTime<Utc>> {
    let status = req.status.as_ref()?;
    if status.phase != Phase::Active {
        return None;
    }
    let expires = status.expires_at?;
    let granted = status.grant.as_ref().and_then(|g| g.granted_at)?;
    let due = expires - lead;
    (granted < due).then_some(due)
}
