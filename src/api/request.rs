// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    ApprovalRules, Condition, Identity, Justification, Principals, RoleKind, RoleRef, TimeWindow,
    DURATION_PATTERN, NAME_PATTERN,
};

/// A request for temporary access to a role. The spec is immutable once created.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "ApprovalRequest",
    namespaced,
    shortname = "areq",
    shortname = "jit",
    category = "reviews",
    status = "ApprovalRequestStatus",
    derive = "Default",
    derive = "PartialEq",
    selectable = ".spec.requester.username",
    selectable = ".spec.role.name",
    selectable = ".status.phase",
    cel,
    printcolumn(name = "Requester", type_ = "string", json_path = ".spec.requester.username"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.role.name"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase"),
    printcolumn(name = "Approvals", type_ = "string", json_path = ".status.approvals.summary"),
    // A string, not a date: kubectl prints a future date as "<invalid>".
    printcolumn(name = "Expires", type_ = "string", json_path = ".status.expiresAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: create a new ApprovalRequest instead of editing this one"))]
#[x_kube(validation = Rule::new("!has(self.type) || self.type != 'OneTime' || has(self.job)").message("type OneTime needs spec.job: the job to run once"))]
#[x_kube(validation = Rule::new("!has(self.job) || (has(self.type) && self.type == 'OneTime')").message("spec.job is only allowed with type OneTime"))]
#[x_kube(validation = Rule::new("!has(self.scope) || self.scope != 'Cluster' || self.role.kind == 'ClusterRole'").message("scope Cluster needs role.kind ClusterRole: a Role exists only in its namespace"))]
pub struct ApprovalRequestSpec {
    /// Who asks: must equal the authenticated creator (checked by admission policy).
    pub requester: Identity,
    /// Who receives access. Default: the requester's user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    /// Role to grant.
    pub role: RoleRef,
    /// `Namespace` (a RoleBinding in this request's namespace) or `Cluster` (a ClusterRoleBinding). Default Namespace.
    #[serde(default)]
    pub scope: Scope,
    /// `JIT` (time-bound access) or `OneTime` (run `job` once). Default JIT.
    #[serde(default, rename = "type")]
    pub type_: RequestType,
    /// How long access should last (Go duration); defaulted and capped by the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub duration: Option<String>,
    /// Why access is needed; required when the policy says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub reason: Option<String>,
    /// Name of the AccessPolicy to use. Default: the one policy that matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub policy: Option<String>,
    /// Earliest time access may start (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<DateTime<Utc>>,
    /// The job to run once (type OneTime only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<JobSpec>,
    /// Name of an Active request of the same requester, role and scope that this one extends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub extends: Option<String>,
}

/// Who receives the access.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Subject {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: SubjectKind,
    /// Name of the user, group or service account.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// Namespace of a ServiceAccount. Default: the request's namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub namespace: Option<String>,
}

/// Kind of subject a binding names.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum SubjectKind {
    /// A user.
    #[default]
    User,
    /// A group.
    Group,
    /// A service account.
    ServiceAccount,
}

/// `Kind name`, or `ServiceAccount namespace/name`.
impl std::fmt::Display for Subject {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// Where the grant applies.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Scope {
    /// A RoleBinding in the request's namespace.
    #[default]
    Namespace,
    /// A ClusterRoleBinding (the policy must allow cluster scope).
    Cluster,
}

/// Kind of request.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum RequestType {
    /// Time-bound access to a role.
    #[default]
    #[serde(rename = "JIT")]
    Jit,
    /// Run `spec.job` once with the role, then revoke.
    OneTime,
}

/// The job a OneTime request runs. Reviewers approve exactly this.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobSpec {
    /// Container image.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Entrypoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 4096)))]
    pub command: Vec<String>,
    /// Arguments.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(max = 4096)))]
    pub args: Vec<String>,
    /// Environment variables (literal values only: no secrets are mounted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 128))]
    pub env: Vec<EnvVar>,
}

/// A literal environment variable.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct EnvVar {
    /// Name of the variable.
    #[schemars(length(min = 1, max = 256), regex(pattern = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"))]
    pub name: String,
    /// Value of the variable.
    #[serde(default)]
    #[schemars(length(max = 32768))]
    pub value: String,
}

/// Lifecycle phase of a request.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum Phase {
    /// Waiting for reviews.
    #[default]
    Pending,
    /// Approved; access not (yet, or currently) granted: before notBefore, outside the time window.
    Approved,
    /// The binding exists.
    Active,
    /// OneTime: the job is running.
    Processing,
    /// OneTime: the job succeeded.
    Executed,
    /// The access window ended.
    Expired,
    /// A reviewer rejected the request.
    Rejected,
    /// Access was ended early.
    Revoked,
    /// The requester canceled the request.
    Canceled,
    /// Nobody decided before the policy's timeout.
    TimedOut,
    /// The policy refused the request.
    Denied,
    /// A newer request extended this one.
    Superseded,
    /// Granting or running failed.
    Failed,
}

impl Phase {
    /// Whether the phase is final: nothing changes it any more.
    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            Phase::Pending | Phase::Approved | Phase::Active | Phase::Processing
        )
    }
}

/// Observed state of a request, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRequestStatus {
    /// Where the request is in its lifecycle.
    #[serde(default)]
    pub phase: Phase,
    /// The policy's requirements, copied when the request was first evaluated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requirements: Option<Requirements>,
    /// Approvals counted against approvals required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals: Option<ApprovalCount>,
    /// Who can act on the open stage now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eligible_reviewers: Option<Principals>,
    /// Per reviewer group of the open and past stages: whether it approved, who and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub review_groups: Vec<ReviewGroupStatus>,
    /// Progress of each stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stages: Vec<StageStatus>,
    /// Every review seen, accepted or ignored with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<DecisionRecord>,
    /// The binding that carries (or carried) the access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant: Option<GrantStatus>,
    /// What the grant was used for, from the API server's audit events, when the
    /// operator has them (docs/usage.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<GrantUsage>,
    /// When the request was approved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
    /// When access ends (grantedAt + duration, wall-clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the request reached a terminal phase; retention counts from here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// OneTime: the job the operator runs for this request, and how it went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<Box<JobRecord>>,
    /// Conditions: `Approved`, `Granted`, `Complete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// The Job of a OneTime request. Once `uid` is set the job has been created, and
/// it is never created again.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct JobRecord {
    /// Name of the Job, in the request's namespace.
    pub name: String,
    /// The dedicated ServiceAccount the job runs as (bound to the requested role).
    pub service_account: String,
    /// uid of the Job, recorded as soon as it exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// `Starting`, `Running`, `Succeeded`, `Failed`, `Stopped` (ended by the deadline or a revocation) or `Deleted` (removed by someone else before it finished).
    pub state: JobState,
    /// When the Job was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the job is stopped at the latest: the end of the access (expiry or time-window close).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<DateTime<Utc>>,
    /// When the job finished or was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The job's failure message, or why it was stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// How to read the job's output.
    pub logs: String,
}

/// Where the job of a OneTime request is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum JobState {
    /// To be created now.
    #[default]
    Starting,
    /// Created and not finished.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished unsuccessfully.
    Failed,
    /// Stopped by the operator (deadline or revocation) before it finished.
    Stopped,
    /// Deleted by someone else before it finished.
    Deleted,
}

/// Snapshot of the policy taken at first evaluation.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Requirements {
    /// Name of the policy the request is evaluated under.
    pub policy: String,
    /// Generation of the policy when it was copied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_generation: Option<i64>,
    /// Duration granted (Go duration), after defaulting and capping.
    pub duration: String,
    /// Approval rules in force for this request.
    pub approval: ApprovalRules,
    /// Justification rule in force.
    pub justification: Justification,
    /// Time window in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
    /// Whether the request was approved automatically by the policy's autoApprove rule.
    #[serde(default)]
    pub auto_approved: bool,
    /// Live grants one requester may hold under the policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Kubernetes knows int32/int64 formats only; "uint32" draws a warning.
    #[schemars(extend("format" = "int32"))]
    pub max_active_per_requester: Option<u32>,
    /// Audit retention after the request ends (Go duration).
    pub retention: String,
}

/// Approvals received against approvals required.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalCount {
    /// Approvals needed in total.
    #[schemars(extend("format" = "int32"))]
    pub required: u32,
    /// Approvals counted so far.
    #[schemars(extend("format" = "int32"))]
    pub received: u32,
    /// "received/required", for `kubectl get`.
    pub summary: String,
}

/// Review state of one group (or user) of a stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewGroupStatus {
    /// The group (or `user:NAME` for a stage's listed user, `force:GROUP` for a force-approval group).
    pub group: String,
    /// Stage the group belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stage: Option<String>,
    /// `Pending`, `Approved` or `Rejected`.
    pub status: ReviewState,
    /// Reviewer whose review decided the group.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// When that review was made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<DateTime<Utc>>,
    /// Whether the approval was a force (break-glass) approval.
    #[serde(default)]
    pub forced: bool,
}

/// Review state of a group or stage.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
pub enum ReviewState {
    /// Not open yet (a later stage).
    Waiting,
    /// Open, not decided.
    Pending,
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
}

/// Progress of one stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct StageStatus {
    /// Stage name.
    pub name: String,
    /// `Waiting`, `Pending` (open), `Approved` or `Rejected`.
    pub status: ReviewState,
    /// Approvals needed.
    #[schemars(extend("format" = "int32"))]
    pub required: u32,
    /// Approvals counted.
    #[schemars(extend("format" = "int32"))]
    pub received: u32,
    /// When the stage opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    /// When the stage was satisfied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<DateTime<Utc>>,
}

/// The operator's verdict on one review.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DecisionRecord {
    /// Name of the AccessReview.
    pub review: String,
    /// Who made it.
    pub reviewer: String,
    /// What it decided.
    pub decision: super::Decision,
    /// When it was made (its creation time).
    pub at: DateTime<Utc>,
    /// Whether it counted.
    pub accepted: bool,
    /// Why it was ignored (`SelfApproval`, `NotEligible`, ...) or how it counted.
    pub reason: String,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
    /// Whether it was a force approval.
    #[serde(default)]
    pub forced: bool,
}

/// What a grant was used for.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantUsage {
    /// Requests the grant's binding allowed (RBAC credits the first binding that
    /// matches: requests another binding also allowed may be counted there).
    #[schemars(extend("format" = "int64"))]
    pub requests: u64,
    /// The last of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// The most frequent actions, most frequent first (`get pods`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub top_actions: Vec<String>,
    /// In words: `used 14 times: get pods, create pods/exec`.
    pub summary: String,
}

/// The binding that carries the access.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct GrantStatus {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: BindingKind,
    /// Name of the binding.
    pub name: String,
    /// Namespace of a RoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// When access was first granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_at: Option<DateTime<Utc>>,
    /// When access ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
    /// When the binding was removed for good.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
}

/// Kind of binding a grant uses.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum BindingKind {
    /// Namespaced binding.
    #[default]
    RoleBinding,
    /// Cluster-wide binding.
    ClusterRoleBinding,
}

impl RoleKind {
    /// The binding kind able to reference a role of this kind at the given scope.
    pub fn binding_kind(self, scope: Scope) -> BindingKind {
        match (self, scope) {
            (RoleKind::ClusterRole, Scope::Cluster) => BindingKind::ClusterRoleBinding,
            _ => BindingKind::RoleBinding,
        }
    }
}

crate::wire_names!(
    SubjectKind,
    Scope,
    RequestType,
    Phase,
    JobState,
    ReviewState,
    BindingKind
);
