// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    BindingKind, Condition, Decision, Justification, NoDecision, Principals, Protection, RemediationAction,
    RemediationHold, RemediationMode, RemediationState, RemediationStatus, RoleRef, Subject, NAME_PATTERN,
};

/// One subject's access through one binding, to be certified in one campaign run
/// (the "review" of Okta and Oracle Access Governance). Created by the operator;
/// the spec is an immutable snapshot taken when the run started.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "AccessCertification",
    namespaced,
    shortname = "acert",
    shortname = "certitem",
    category = "reviews",
    status = "AccessCertificationStatus",
    derive = "Default",
    derive = "PartialEq",
    selectable = ".spec.campaign",
    selectable = ".spec.run",
    selectable = ".spec.subject.name",
    cel,
    printcolumn(name = "Subject", type_ = "string", json_path = ".spec.subject.name"),
    printcolumn(name = "Role", type_ = "string", json_path = ".spec.roleRef.name"),
    printcolumn(name = "Binding", type_ = "string", json_path = ".spec.binding.name"),
    printcolumn(name = "Risk", type_ = "string", json_path = ".status.riskSummary"),
    printcolumn(name = "Recommendation", type_ = "string", json_path = ".status.recommendation"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".status.decision"),
    // A string, not a date: kubectl prints a future date as "<invalid>".
    printcolumn(name = "Due", type_ = "string", json_path = ".spec.dueAt"),
    printcolumn(name = "Remediation", type_ = "string", json_path = ".status.remediation.state")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: an AccessCertification is the snapshot a run reviews"))]
pub struct AccessCertificationSpec {
    /// Name of the AccessCampaign.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub campaign: String,
    /// Name of the run (`CAMPAIGN-YYYYMMDD-HHMM`).
    #[schemars(length(min = 1, max = 253))]
    pub run: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When reviewers must have decided; then `review.onNoDecision` applies.
    pub due_at: DateTime<Utc>,
    /// The binding under review, pinned to its uid.
    pub binding: BindingSnapshot,
    /// Who holds the access.
    pub subject: Subject,
    /// The role the binding grants.
    pub role_ref: RoleRef,
    /// Digest of the role's effective rules (aggregated ClusterRoles resolved) at
    /// the start of the run; a different digest later means the role changed.
    pub rules_digest: String,
    /// How this item is reviewed: the campaign's rules, copied at the start of the
    /// run so that a later edit of the campaign does not change a run under way.
    pub review: ReviewRules,
}

/// The binding an item reviews.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingSnapshot {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: BindingKind,
    /// Namespace of a RoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the binding.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,
    /// uid of the binding: remediation touches only this exact object.
    pub uid: String,
    /// When the binding was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<DateTime<Utc>>,
}

/// `RoleBinding NS/NAME` or `ClusterRoleBinding NAME`: how every message, event,
/// table and notification names a binding.
pub fn describe_binding(kind: BindingKind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

impl std::fmt::Display for BindingSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&describe_binding(
            self.kind,
            self.namespace.as_deref(),
            &self.name,
        ))
    }
}

/// The review rules of an item, copied from its campaign.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRules {
    /// Levels in order, with the reviewers resolved for this item (namespace owners
    /// included).
    pub levels: Vec<LevelReviewers>,
    /// When a comment is required.
    #[serde(default)]
    pub justification: Justification,
    /// Extra reviewers of a level left open too long.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<super::Escalation>,
    /// What happens at `dueAt` without a final decision.
    #[serde(default)]
    pub on_no_decision: NoDecision,
    /// Who removes revoked access.
    #[serde(default)]
    pub remediation: RemediationMode,
    /// Protected access the operator may remove anyway (the campaign's
    /// `removeProtected`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_protected: Vec<Protection>,
    /// The campaign's `recommendation.unusedFor`: access unused this long is
    /// recommended for `Revoke`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub unused_for: Option<String>,
}

/// The reviewers of one level of one item.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelReviewers {
    /// Name of the level.
    pub name: String,
    /// Groups and users named by the campaign.
    #[serde(default, skip_serializing_if = "Principals::is_empty")]
    pub reviewers: Principals,
    /// Owners of the binding's namespace (`gatehouse.dev/owners`), when the level
    /// includes them.
    #[serde(default, skip_serializing_if = "Principals::is_empty")]
    pub namespace_owners: Principals,
}

/// Where an item stands, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessCertificationStatus {
    /// `Unreviewed` until the last level decides, then `Approved` or `Revoked`.
    #[serde(default)]
    pub decision: ItemDecision,
    /// What happens to the access: `Open` while under review, then `Keep` or
    /// `Remove`, and why (`closedBy`).
    #[serde(default)]
    pub outcome: Outcome,
    /// Why the item closed: `Reviewers`, or the campaign's `onNoDecision` at the
    /// due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<ClosedBy>,
    /// When the item closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Each level: open, waiting, or who decided what and when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub levels: Vec<LevelStatus>,
    /// Who can act on the open level now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewers: Option<Principals>,
    /// Who the open level was reassigned to, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<Principals>,
    /// `Accept`, `Review` or `Revoke`, from the role's risk and the binding's
    /// staleness; absent until the operator has assessed the item (never
    /// read as `Accept`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<Recommendation>,
    /// Why, in words, one entry per finding.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<Finding>,
    /// Risk tags of the role's effective rules.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub risk: Vec<RiskTag>,
    /// Whether the access is used, from the API server's audit events, when the
    /// operator has them. RBAC credits a request to the first binding that
    /// allows it, so access also granted by another binding may show as unused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<ItemUsage>,
    /// The risk tags as one comma-separated string, for `kubectl get`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_summary: Option<String>,
    /// The AccessPolicy the subject can use instead, when the revoke converted the
    /// standing access to just-in-time access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub converted_to: Option<String>,
    /// What removing the access takes, and how far it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation: Option<RemediationStatus>,
    /// The reviews seen, in order: every one that decided a level, and the most
    /// recent 20 of the others (reassignments, comments, ignored reviews), so the
    /// status stays small however many reviews are filed. Each review's own
    /// status carries its verdict.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub decisions: Vec<ItemDecisionRecord>,
    /// How many reviews were ignored (not accepted), listed or not.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub ignored_reviews: u32,
    /// How many reviews `decisions` leaves out (the oldest beyond the limit).
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub omitted_reviews: u32,
    /// Conditions: `Decided`, `Remediated`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// `sha256:` digest of the spec, written by the operator right after it
    /// created the item. Only the operator writes status, so an item without it
    /// (or with another digest) was not issued by the operator: it decides
    /// nothing and removes nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_digest: Option<String>,
}

/// The usage of one subject's access through one binding, from audit events.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemUsage {
    /// The last request RBAC credited to this binding and subject; absent when
    /// none was seen since `observedSince`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Since when requests have been observed (the start of the audit evidence,
    /// within the retention period).
    pub observed_since: DateTime<Utc>,
    /// Requests credited within the retention period.
    #[serde(default)]
    #[schemars(extend("format" = "int64"))]
    pub requests: u64,
    /// The most frequent actions, most frequent first, e.g. `get pods`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub top_actions: Vec<String>,
    /// The other binding the subject's requests were credited to, when none was
    /// credited to this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub used_through: Option<String>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The reviewers' final word on an item.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ItemDecision {
    /// The last level has not decided (yet, or at all).
    #[default]
    Unreviewed,
    /// The last level approved: the access stays.
    Approved,
    /// The last level revoked: the access goes.
    Revoked,
}

/// What happens to the access.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Outcome {
    /// Under review.
    #[default]
    Open,
    /// The access stays.
    Keep,
    /// The access is removed.
    Remove,
}

/// Why an item closed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ClosedBy {
    /// The last level decided.
    Reviewers,
    /// Due without a final decision; `onNoDecision: Keep`.
    NoDecisionKeep,
    /// Due without a final decision; `onNoDecision: Revoke`.
    NoDecisionRevoke,
    /// Due without a final decision; `onNoDecision: Recommendation`.
    NoDecisionRecommendation,
}

/// One level of an item.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct LevelStatus {
    /// Name of the level.
    pub name: String,
    /// `Waiting` (an earlier level is open), `Open`, `Decided`, or `Expired` (the
    /// item fell due while it was open or waiting).
    pub state: LevelState,
    /// What the level decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    /// Who decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_by: Option<String>,
    /// When.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reviewed_at: Option<DateTime<Utc>>,
    /// The reviewer's comment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// When the level opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opened_at: Option<DateTime<Utc>>,
    /// Who the level was reassigned to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<Principals>,
    /// When the escalation reviewers became eligible at this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated_at: Option<DateTime<Utc>>,
}

/// State of one level.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum LevelState {
    /// An earlier level is still open.
    Waiting,
    /// Reviewers of this level can decide now.
    Open,
    /// The level decided.
    Decided,
    /// The item fell due before this level decided.
    Expired,
}

impl AccessCertificationStatus {
    /// The recommendation for tables, reports and filters: `-` until the
    /// operator has assessed the item, never a default `Accept`.
    pub fn recommendation_label(&self) -> String {
        self.recommendation
            .map_or_else(|| "-".to_string(), |r| r.to_string())
    }
}

/// A recommendation in a sentence (`certify status`, notifications): `not
/// assessed yet` until the operator has assessed the item.
pub fn recommendation_words(r: Option<Recommendation>) -> String {
    r.map_or_else(|| "not assessed yet".to_string(), |r| r.to_string())
}

/// What the recommendation says.
#[derive(
    Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema,
)]
pub enum Recommendation {
    /// Nothing risky or stale was found.
    #[default]
    Accept,
    /// The role grants something risky: look closely.
    Review,
    /// The binding is stale (missing role, ServiceAccount or namespace): remove it.
    Revoke,
}

/// One reason behind a recommendation.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Finding {
    /// What was found.
    pub code: FindingCode,
    /// Which risky permission, for code `Risk`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk: Option<RiskTag>,
    /// The same in words, naming the rule or object.
    pub message: String,
}

/// A finding about an item's access.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum FindingCode {
    /// A risky permission (named in `risk`).
    Risk,
    /// The bound role does not exist.
    RoleMissing,
    /// The bound ServiceAccount does not exist.
    ServiceAccountMissing,
    /// The namespace of the binding or of its ServiceAccount does not exist (or is
    /// being deleted).
    NamespaceGone,
    /// The role's rules changed since the run started.
    RulesChanged,
    /// The role was not among the objects given (a partial export): its rules are unknown.
    RoleNotSeen,
    /// Nothing risky or stale.
    NothingRisky,
    /// Not used for the campaign's `recommendation.unusedFor`, observed at least
    /// that long.
    Unused,
    /// Not used through this binding, but through another one (RBAC credits the
    /// first binding that matches).
    UsedThroughAnotherBinding,
    /// Not used so far, but observed for less than `recommendation.unusedFor`
    /// (or the binding is younger than that).
    UnusedTooShortToJudge,
}

/// A risky permission in a role's effective rules.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum RiskTag {
    /// Every verb on every resource (`cluster-admin`).
    ClusterAdmin,
    /// A `*` in verbs, resources or API groups.
    Wildcard,
    /// get, list or watch on Secrets.
    SecretsRead,
    /// exec, attach or port-forward into pods.
    PodExec,
    /// create or change pods or the controllers that make them (a pod can run as
    /// any ServiceAccount of its namespace).
    CreateWorkloads,
    /// `escalate` on roles: grant oneself more than one has.
    Escalate,
    /// `bind` on roles: bind roles one does not hold.
    Bind,
    /// `impersonate` users, groups or ServiceAccounts.
    Impersonate,
    /// create ServiceAccount tokens.
    ServiceAccountTokens,
    /// nodes/proxy: the kubelet API, exec into any pod on the node.
    NodesProxy,
    /// pods/proxy or services/proxy: any port of any pod or Service of the
    /// namespace through the API server, past NetworkPolicies.
    Proxy,
    /// Change admission webhooks or policies: see or alter every write.
    AdmissionWebhooks,
    /// Approve CertificateSigningRequests: mint client certificates.
    CsrApproval,
}

impl RiskTag {
    /// Short lowercase label for tables and `kubectl get`.
    pub fn label(self) -> &'static str {
        match self {
            RiskTag::ClusterAdmin => "cluster-admin",
            RiskTag::Wildcard => "wildcard",
            RiskTag::SecretsRead => "secrets",
            RiskTag::PodExec => "exec",
            RiskTag::CreateWorkloads => "workloads",
            RiskTag::Escalate => "escalate",
            RiskTag::Bind => "bind",
            RiskTag::Impersonate => "impersonate",
            RiskTag::ServiceAccountTokens => "tokens",
            RiskTag::NodesProxy => "nodes-proxy",
            RiskTag::Proxy => "proxy",
            RiskTag::AdmissionWebhooks => "webhooks",
            RiskTag::CsrApproval => "csr-approval",
        }
    }
}

/// The operator's verdict on one review of an item.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ItemDecisionRecord {
    /// Name of the AccessReview.
    pub review: String,
    /// Who made it.
    pub reviewer: String,
    /// What it decided.
    pub decision: Decision,
    /// When it was made (its creation time).
    pub at: DateTime<Utc>,
    /// The level it counted at.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Whether it counted.
    pub accepted: bool,
    /// How it counted, or why it was ignored.
    pub reason: ReviewVerdict,
    /// Human-readable explanation.
    #[serde(default)]
    pub message: String,
}

/// How a review of an item counted, or why it did not.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ReviewVerdict {
    /// The level decided.
    Decided,
    /// The level was handed to `reassignTo`.
    Reassigned,
    /// A comment, recorded.
    Commented,
    /// The review names another uid: it was made for an earlier item of the same name.
    UidMismatch,
    /// The reviewer is the subject, or a member of the subject group.
    SelfReview,
    /// The reviewer is not a reviewer of the open level.
    NotEligible,
    /// The reviewer already decided an earlier level of this item.
    AlreadyDecided,
    /// The item's last level already decided, or it fell due.
    Closed,
    /// The justification rule requires a comment.
    CommentRequired,
    /// Reassign to the subject (or the subject group) is refused.
    ReassignToSubject,
    /// The AccessPolicy named in `convertTo` would not let the subject request this
    /// role here.
    ConversionRefused,
    /// A decision that does not apply to certification items (`Reject`, `Cancel`),
    /// or `convertTo` without `Revoke`.
    NotApplicable,
}

impl ReviewVerdict {
    /// Whether the review counted.
    pub fn accepted(self) -> bool {
        matches!(
            self,
            ReviewVerdict::Decided | ReviewVerdict::Reassigned | ReviewVerdict::Commented
        )
    }
}

crate::wire_names!(
    ItemDecision,
    Outcome,
    ClosedBy,
    LevelState,
    Recommendation,
    RemediationState,
    RemediationHold,
    RemediationAction,
    ReviewVerdict
);
