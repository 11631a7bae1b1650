// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    Condition, Principals, RoleRef, DURATION_PATTERN, NAME_PATTERN, TIMEZONE_PATTERN, TIME_OF_DAY_PATTERN,
};

/// What may be requested, by whom, for how long, and who must approve it.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "AccessPolicy",
    plural = "accesspolicies",
    shortname = "apol",
    status = "AccessPolicyStatus",
    derive = "Default",
    derive = "PartialEq",
    cel,
    printcolumn(name = "Roles", type_ = "string", json_path = ".spec.roles[*].name"),
    printcolumn(
        name = "Min approvals",
        type_ = "integer",
        json_path = ".spec.approval.minApprovals"
    ),
    printcolumn(name = "Max duration", type_ = "string", json_path = ".spec.duration.max"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicySpec {
    /// Who may request access under this policy.
    #[x_kube(validation = Rule::new("(has(self.groups) && size(self.groups) > 0) || (has(self.users) && size(self.users) > 0)").message("requesters must name at least one group or user"))]
    pub requesters: Principals,
    /// Roles that may be granted.
    #[schemars(length(min = 1, max = 64))]
    pub roles: Vec<RoleRef>,
    /// Namespaces the roles may be granted in, and whether cluster-wide grants are allowed.
    #[serde(default)]
    pub namespaces: NamespaceScope,
    /// Same as `namespaces.allowClusterScope`; either one set to true permits ClusterRoleBindings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allow_cluster_scope: Option<bool>,
    /// How long access lasts: the default when a request names none, and the cap.
    #[serde(default)]
    pub duration: DurationLimits,
    /// Who must approve, in which order, and how long the request waits.
    #[serde(default)]
    pub approval: ApprovalRules,
    /// When a written justification is required.
    #[serde(default)]
    pub justification: Justification,
    /// Optional recurring window outside which access never exists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_window: Option<TimeWindow>,
    /// Requests matching this rule are approved without a reviewer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_approve: Option<AutoApprove>,
    /// Lets requests under this policy be `type: OneTime` (run one reviewed job
    /// with the role). Absent: OneTime requests are Denied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub one_time: Option<OneTimeRules>,
    /// Who else than the requester may receive access (`spec.subject` of a request):
    /// users, groups, ServiceAccounts. Empty: access goes to the requester only.
    /// Such requests are never auto-approved, and whoever would receive the access
    /// cannot approve it (unless `approval.allowSelfApproval`).
    #[serde(default, skip_serializing_if = "Grantees::is_empty")]
    pub grantees: Grantees,
    /// How many live grants one requester may hold under this policy at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    // Kubernetes knows int32/int64 formats only; "uint32" draws a warning.
    #[schemars(extend("format" = "int32"))]
    pub max_active_per_requester: Option<u32>,
    /// How long terminal requests and their reviews are kept as the audit record
    /// before the operator deletes them (Go duration). Default 720h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub retention: Option<String>,
}

/// Where roles may be granted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceScope {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63), regex(pattern = NAME_PATTERN)))]
    pub names: Vec<String>,
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
    /// Permit cluster-wide grants (ClusterRoleBindings) for requests with `scope: Cluster`.
    #[serde(default)]
    pub allow_cluster_scope: bool,
}

/// Default and maximum duration of a grant.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.default) || !has(self.max) || duration(self.default) <= duration(self.max)").message("duration.default must not be longer than duration.max"))]
pub struct DurationLimits {
    /// Duration used when a request names none (Go duration, e.g. "1h"). Default: 1h, or `max` if shorter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub default: Option<String>,
    /// Longest duration a request may ask for (Go duration, e.g. "8h"). Default: 8h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub max: Option<String>,
}

/// Approval requirements.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.stages) || self.stages.all(s, self.stages.exists_one(t, t.name == s.name))").message("stage names must be unique"))]
pub struct ApprovalRules {
    /// Reviewers of a single-stage policy (used when `stages` is empty).
    #[serde(default, skip_serializing_if = "Principals::is_empty")]
    pub reviewers: Principals,
    /// Distinct eligible reviewers needed in total (across all stages). Default 1.
    #[serde(default = "default_min_approvals")]
    #[schemars(range(min = 1, max = 100))]
    #[schemars(extend("format" = "int32"))]
    pub min_approvals: u32,
    /// Ordered review stages; stage N+1 opens when stage N is satisfied.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub stages: Vec<Stage>,
    /// Members of these groups may approve alone and at once (break-glass). Recorded as forced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub force_approval_groups: Vec<String>,
    /// Whether a requester's own approval counts. Default false.
    #[serde(default)]
    pub allow_self_approval: bool,
    /// A request still pending after this long becomes TimedOut (Go duration).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub timeout: Option<String>,
    /// Extra reviewers who become eligible for the open stage after a delay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
}

impl Default for ApprovalRules {
    fn default() -> Self {
        Self {
            reviewers: Principals::default(),
            min_approvals: default_min_approvals(),
            stages: Vec::new(),
            force_approval_groups: Vec::new(),
            allow_self_approval: false,
            timeout: None,
            escalation: None,
        }
    }
}

fn default_min_approvals() -> u32 {
    1
}

/// One stage of a multi-level review.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.groups) && size(self.groups) > 0) || (has(self.users) && size(self.users) > 0)").message("a stage must name at least one group or user"))]
pub struct Stage {
    /// Name of the stage, unique within the policy.
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Reviewer groups of this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// Reviewer users of this stage.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
    /// `All`: every listed group must approve (and every listed user). `Any`: approvals from any of them. Default Any.
    #[serde(default)]
    pub operator: StageOperator,
    /// Distinct approvals this stage needs (with `Any`; with `All`, per group). Default 1.
    #[serde(default = "default_min_approvals")]
    #[schemars(range(min = 1, max = 100))]
    #[schemars(extend("format" = "int32"))]
    pub min_approvals: u32,
}

/// How a stage's groups combine.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum StageOperator {
    /// Every listed group (and user) must approve.
    All,
    /// Approvals from any listed group or user count.
    #[default]
    Any,
}

/// Escalation of a request left pending.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Escalation {
    /// Delay after the request's creation (Go duration).
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub after: String,
    /// Groups that become eligible for the open stage after the delay.
    #[schemars(length(min = 1, max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
}

/// When a written justification is required.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum Justification {
    /// Every request needs `reason`; every Reject and Revoke review needs `comment`.
    RequireForAll,
    /// Only Revoke reviews need `comment`.
    RequireForRevoke,
    /// Nothing is required.
    #[default]
    Optional,
}

/// Day of the week.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum Weekday {
    /// Monday
    Mon,
    /// Tuesday
    Tue,
    /// Wednesday
    Wed,
    /// Thursday
    Thu,
    /// Friday
    Fri,
    /// Saturday
    Sat,
    /// Sunday
    Sun,
}

/// A recurring window in a time zone; access exists only inside it.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.start != self.end").message("timeWindow.start and timeWindow.end must differ"))]
pub struct TimeWindow {
    /// IANA time zone, e.g. "Europe/Berlin". Default "UTC".
    #[serde(default = "default_timezone")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIMEZONE_PATTERN))]
    pub timezone: String,
    /// Opening time, "HH:MM" local time.
    #[schemars(regex(pattern = TIME_OF_DAY_PATTERN))]
    pub start: String,
    /// Closing time, "HH:MM" local time; earlier than `start` means the window crosses midnight.
    #[schemars(regex(pattern = TIME_OF_DAY_PATTERN))]
    pub end: String,
    /// Days on which the window opens (the day of `start`). Default: every day.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 7))]
    #[x_kube(validation = Rule::new("self.all(d, self.exists_one(e, e == d))").message("timeWindow.days must not repeat a day"))]
    pub days: Vec<Weekday>,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

/// Requests matching every part of this rule are approved without a reviewer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AutoApprove {
    /// Requesters whose requests are approved automatically.
    pub subjects: Principals,
    /// Roles that are approved automatically.
    #[schemars(length(min = 1, max = 64))]
    pub roles: Vec<RoleRef>,
}

/// What a policy allows of OneTime requests.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct OneTimeRules {
    /// Images a job may run, by prefix up to a `/`, `:` or `@` boundary:
    /// `ghcr.io/acme/` allows `ghcr.io/acme/migrate:1.4`, `ghcr.io/acme/migrate`
    /// allows its tags and digests but not `ghcr.io/acme/migrate-evil`. Empty: any image.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 512)))]
    pub images: Vec<String>,
}

impl OneTimeRules {
    /// Whether the image is one the policy allows.
    pub fn allows_image(&self, image: &str) -> bool {
        self.images.is_empty()
            || self.images.iter().any(|prefix| {
                image == prefix
                    || image.strip_prefix(prefix.as_str()).is_some_and(|rest| {
                        prefix.ends_with(['/', ':', '@']) || rest.starts_with(['/', ':', '@'])
                    })
            })
    }
}

/// Subjects other than the requester that a policy lets requests hand access to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Grantees {
    /// Users that may receive access requested by someone else.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
    /// Groups that may receive access (a binding to the group: every member gets it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// ServiceAccounts that may receive access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub service_accounts: Vec<ServiceAccountRef>,
}

impl Grantees {
    /// Whether the policy names no grantee: access goes to requesters only.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.groups.is_empty() && self.service_accounts.is_empty()
    }
}

/// A ServiceAccount a policy lets requests grant access to.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ServiceAccountRef {
    /// Namespace of the ServiceAccount. Omitted: the ServiceAccount of this name in the
    /// request's own namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub namespace: Option<String>,
    /// Name of the ServiceAccount.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// Observed state of a policy.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessPolicyStatus {
    /// `Ready` tells whether the policy is valid (time zone exists, durations parse).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}
