//! What goes into an evaluation and what comes out of it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use super::{
    job::{JobObservation, JobPlan, ObjectName},
    reason::{ApprovalKind, DenialReason, Ending, VerdictReason},
};
use crate::api::{
    AccessPolicy, AccessReview, ApprovalRequest, ApprovalRequestStatus, BindingKind, RoleRef, Subject,
};

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
    /// The requester's other requests, in any namespace, with their stored status:
    /// they count against `maxActivePerRequester` and may supersede this one
    /// (see [`super::related`]). Requests of other requesters are ignored.
    pub requester_requests: &'a [&'a ApprovalRequest],
    /// The request named in `spec.extends`, if it exists.
    pub extended: Option<&'a ApprovalRequest>,
    /// OneTime: the request's Job as it is in the cluster (by its deterministic name), if it exists.
    pub job: Option<&'a JobObservation>,
    /// Namespaces where nothing is granted, whatever the policy says (the
    /// operator's own and `kube-system`, see [`super::protected`]).
    pub protected_namespaces: &'a [String],
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
    /// How the request was approved, if it was.
    pub approval: Option<ApprovalKind>,
    /// How the request ended, if it did.
    pub ending: Option<Ending>,
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
    /// Why.
    pub reason: VerdictReason,
    /// Human-readable explanation.
    pub message: String,
}

/// Why a request was refused outright.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The reason.
    pub reason: DenialReason,
    /// Human-readable explanation.
    pub message: String,
}

impl Denial {
    /// A denial with a reason and message.
    pub fn new(reason: DenialReason, message: impl Into<String>) -> Self {
        Denial {
            reason,
            message: message.into(),
        }
    }
}
