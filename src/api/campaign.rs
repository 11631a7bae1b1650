// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{
    BindingKind, Condition, Escalation, Justification, RoleRef, SubjectKind, DURATION_PATTERN, NAME_PATTERN,
    TIMEZONE_PATTERN,
};

/// A periodic review of standing access: which bindings, who reviews them, by when,
/// and what happens to access nobody decided on. Each run creates one
/// AccessCertification per binding × subject.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "AccessCampaign",
    plural = "accesscampaigns",
    shortname = "acamp",
    status = "AccessCampaignStatus",
    derive = "Default",
    derive = "PartialEq",
    cel,
    printcolumn(name = "Schedule", type_ = "string", json_path = ".spec.schedule"),
    printcolumn(name = "Time zone", type_ = "string", json_path = ".spec.timeZone"),
    printcolumn(name = "Last run", type_ = "string", json_path = ".status.lastRun"),
    // A string, not a date: kubectl prints a future date as "<invalid>".
    printcolumn(name = "Next run", type_ = "string", json_path = ".status.nextRunAt"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("!has(self.timeZone) || has(self.schedule)").message("timeZone needs a schedule"))]
pub struct AccessCampaignSpec {
    /// When runs start, in cron syntax as for a CronJob: five fields
    /// (minute hour day-of-month month day-of-week) or `@yearly`, `@monthly`,
    /// `@weekly`, `@daily`, `@hourly`. Absent: the campaign runs once when it is
    /// created and again whenever the annotation `gatehouse.dev/run-requested-at`
    /// is set to a new RFC 3339 time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 128))]
    #[x_kube(validation = Rule::new("!self.contains('TZ=')").message("put the time zone in spec.timeZone, not in the schedule (as for CronJobs)"))]
    pub schedule: Option<String>,
    /// IANA time zone of `schedule`, e.g. "Europe/Berlin". Default "UTC".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 64), regex(pattern = TIMEZONE_PATTERN))]
    pub time_zone: Option<String>,
    /// How long reviewers have, from the start of a run (Go duration). Default
    /// 336h (two weeks). The API server refuses a window under one second; the
    /// operator refuses (condition `Ready`, reason `ReviewWindowTooShort`) one
    /// under its minimum, one hour unless its installer lowered it
    /// (`--certification-min-review-window`): a review nobody has time for would
    /// hand every item to `onNoDecision` at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    #[x_kube(validation = Rule::new("duration(self) >= duration('1s')").message("duration: reviewers need time; a review window is at least one second here, and the operator's minimum (one hour by default) beyond that"))]
    pub duration: Option<String>,
    /// Which bindings and subjects a run reviews.
    #[serde(default)]
    pub scope: CampaignScope,
    /// Who reviews, level after level.
    pub reviewers: CampaignReviewers,
    /// When a reviewer must write a comment: `RequireForAll` (every Approve and
    /// Revoke), `RequireForRevoke`, or `Optional`. Reassign always needs one.
    #[serde(default)]
    pub justification: Justification,
    /// Extra reviewers who may decide a level left open for this long after it
    /// opened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// What happens at the due time to an item whose last level has not decided:
    /// `Keep` the access (default), `Revoke` it, or follow the `Recommendation`
    /// (revoke only what was recommended for revocation).
    #[serde(default)]
    pub on_no_decision: NoDecision,
    /// `Manual` (default): the operator records what should be removed and people
    /// remove it. `Automatic`: the operator removes revoked subjects itself.
    #[serde(default)]
    pub remediation: RemediationMode,
    /// Protected access that `remediation: Automatic` may remove in this
    /// campaign's runs anyway. By default the operator removes none of it itself
    /// (the item stays `Pending` with the reason and the command for an admin):
    /// `BootstrapBinding` (the API server's and kubeadm's ClusterRoleBindings),
    /// `KubeSystem` (RoleBindings in kube-system), `ClusterAdminEquivalent` (a
    /// role with every verb on every resource), `PrivilegeEscalation` (a role
    /// with escalate, bind or impersonate). Even then the operator removes only
    /// access to a role it may `bind` itself, and never its own access.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 4))]
    pub remove_protected: Vec<Protection>,
    /// Namespace where the run's AccessCertification items, and the reviews that
    /// decide them, live. Default `gatehouse-system`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub review_namespace: Option<String>,
    /// How long items and their reviews are kept after their run ends, as the audit
    /// record (Go duration). Default 8760h (one year).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub retention: Option<String>,
    /// The most items one run creates (default 10000). A run that would make
    /// more creates these (in name order), lists the rest as skipped with reason
    /// `ItemCap`, and its campaign's `Launched` condition says so: narrow the
    /// scope or raise this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 100000), extend("format" = "int32"))]
    pub max_items_per_run: Option<u32>,
    /// What else the recommendation weighs, beyond the role's risk and the
    /// binding's staleness.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recommendation: Option<RecommendationRules>,
}

/// What the recommendation of a campaign's items weighs.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecommendationRules {
    /// Recommend `Revoke` for access not used for this long (Go duration, e.g.
    /// `2160h` for 90 days), when usage has been observed for at least as long
    /// and the binding is at least that old. Needs usage evidence (audit events,
    /// see docs/usage.md); without it the rule says nothing. Access used only
    /// through another binding is recommended for `Review`, not `Revoke`: RBAC
    /// credits the first binding that matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub unused_for: Option<String>,
}

/// Which bindings and subjects a run reviews. Every filter that is set must match.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignScope {
    /// `RoleBinding`, `ClusterRoleBinding`. Default: both.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 2))]
    pub binding_kinds: Vec<BindingKind>,
    /// RoleBindings in these namespaces only (by name, or by label selector).
    /// ClusterRoleBindings are not filtered by namespace. Default: all namespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespaces: Option<NamespaceFilter>,
    /// Bindings of these roles only. Default: any role.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256))]
    pub roles: Vec<RoleRef>,
    /// `User`, `Group`, `ServiceAccount`. Default: all three.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 3))]
    pub subject_kinds: Vec<SubjectKind>,
    /// Bindings whose labels match this selector only. Default: every binding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub binding_selector: Option<LabelSelector>,
    /// What to leave out, besides the defaults below.
    #[serde(default, skip_serializing_if = "Exclusions::is_empty")]
    pub exclude: Exclusions,
    /// Review subjects and bindings named `system:*` too (the API server's own
    /// users, groups and bootstrap bindings). Default false: they are left out.
    #[serde(default)]
    pub include_system: bool,
    /// Review the bindings Gatehouse creates for JIT requests too (label
    /// `app.kubernetes.io/managed-by: gatehouse`). Default false: they are time-bound
    /// and were reviewed when requested.
    #[serde(default)]
    pub include_gatehouse_grants: bool,
}

/// Namespaces by name or by label selector; a namespace matching either is in.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NamespaceFilter {
    /// Namespaces by name.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63), regex(pattern = NAME_PATTERN)))]
    pub names: Vec<String>,
    /// Namespaces whose labels match this selector.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<LabelSelector>,
}

/// Patterns of what a run leaves out; `*` matches any run of characters.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Exclusions {
    /// Subject names (a ServiceAccount as `namespace/name`), e.g. `ci-*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub subjects: Vec<String>,
    /// Binding names, e.g. `kubeadm:*`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub bindings: Vec<String>,
}

impl Exclusions {
    /// Whether nothing is excluded.
    pub fn is_empty(&self) -> bool {
        self.subjects.is_empty() && self.bindings.is_empty()
    }
}

/// The review levels of a campaign.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.levels.all(l, self.levels.exists_one(m, m.name == l.name))").message("level names must be unique"))]
pub struct CampaignReviewers {
    /// Levels in order: level N+1 opens when level N has decided, sees that
    /// decision and may overturn it; the last level's decision stands.
    #[schemars(length(min = 1, max = 4))]
    pub levels: Vec<ReviewLevel>,
}

/// Who reviews at one level.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("(has(self.groups) && size(self.groups) > 0) || (has(self.users) && size(self.users) > 0) || (has(self.namespaceOwners) && self.namespaceOwners)").message("a level must name groups, users or namespaceOwners"))]
pub struct ReviewLevel {
    /// Name of the level, unique within the campaign (e.g. `owners`, `security`).
    #[schemars(length(min = 1, max = 63), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// Members of these groups review at this level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub groups: Vec<String>,
    /// These users review at this level.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253)))]
    pub users: Vec<String>,
    /// The owners of the binding's namespace review too: the users and groups in
    /// the namespace's annotation `gatehouse.dev/owners` (comma-separated,
    /// `group:NAME` or `user:NAME`, a bare name is a user). Nobody for
    /// ClusterRoleBindings.
    #[serde(default)]
    pub namespace_owners: bool,
}

/// What happens to an item nobody finished deciding by its due time.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum NoDecision {
    /// The access stays.
    #[default]
    Keep,
    /// The access is removed.
    Revoke,
    /// The recommendation decides: removed if it was `Revoke`, kept otherwise.
    Recommendation,
}

/// Access the operator does not remove by itself unless a campaign allows it
/// (`removeProtected`). Its own access is not among them: it is never removed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum Protection {
    /// A ClusterRoleBinding named `system:*` or `kubeadm:*` or labelled
    /// `kubernetes.io/bootstrapping=rbac-defaults`, or such a RoleBinding in
    /// kube-public: the API server's and kubeadm's own.
    BootstrapBinding,
    /// A RoleBinding in kube-system.
    KubeSystem,
    /// The role grants every verb on every resource.
    ClusterAdminEquivalent,
    /// The role grants `escalate` or `bind` on roles, or `impersonate` (users,
    /// groups; ServiceAccounts through a ClusterRoleBinding).
    PrivilegeEscalation,
}

/// Who removes revoked access.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum RemediationMode {
    /// People remove it; the item says what to remove and turns `Done` when it is gone.
    #[default]
    Manual,
    /// The operator removes it (with uid and resourceVersion preconditions).
    Automatic,
}

/// Observed state of a campaign, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessCampaignStatus {
    /// When the next scheduled run starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_run_at: Option<DateTime<Utc>>,
    /// Name of the latest run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run: Option<String>,
    /// When the latest run started (its scheduled or requested time). Kept after
    /// the run itself leaves `runs` at the end of its retention, so a schedule
    /// never starts the same run twice.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_run_started_at: Option<DateTime<Utc>>,
    /// The on-demand request (`gatehouse.dev/run-requested-at`) last honoured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_requested_at: Option<DateTime<Utc>>,
    /// Runs still kept, oldest first, with their counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub runs: Vec<CampaignRun>,
    /// `Ready`: the campaign is valid (schedule parses, time zone exists).
    /// `Launched`: how the latest run's launch ended (`AllItemsCreated`,
    /// `ItemsSkipped`, `ItemCapReached`), or that it is under way.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// Generation the status was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// One run of a campaign and how far its items are.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct CampaignRun {
    /// Name of the run (`CAMPAIGN-YYYYMMDD-HHMM`, UTC start), also the label
    /// `gatehouse.dev/run` of its items.
    pub name: String,
    /// When the run started (its scheduled or requested time).
    pub started_at: DateTime<Utc>,
    /// When reviewers must have decided.
    pub due_at: DateTime<Utc>,
    /// Items created.
    #[schemars(extend("format" = "int32"))]
    pub items: u32,
    /// Items whose last level approved.
    #[schemars(extend("format" = "int32"))]
    pub approved: u32,
    /// Items whose last level revoked.
    #[schemars(extend("format" = "int32"))]
    pub revoked: u32,
    /// Items nobody finished deciding.
    #[schemars(extend("format" = "int32"))]
    pub unreviewed: u32,
    /// Items whose remediation is done.
    #[schemars(extend("format" = "int32"))]
    pub remediated: u32,
    /// Items whose remediation the operator tried and could not do (it retries).
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub failed: u32,
    /// Items whose binding Helm, Argo CD or Flux owns: to be changed there.
    #[serde(default)]
    #[schemars(extend("format" = "int32"))]
    pub managed_externally: u32,
    /// What started the run: `Scheduled`, `Created` (a campaign without a schedule)
    /// or `Requested` (`kubectl gatehouse certify start`, the annotation
    /// `gatehouse.dev/run-requested-at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trigger: Option<RunTrigger>,
    /// When every item of the run had been created. Absent while the launch is
    /// under way: an operator restarted mid-launch finishes it, creating only the
    /// items that do not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub launched_at: Option<DateTime<Utc>>,
    /// When the run ended: its due time has passed and every item is closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<DateTime<Utc>>,
    /// Bindings × subjects in scope that did not become an item of this run
    /// (see `skippedItems`); the rest of the run launched without them.
    #[serde(default, skip_serializing_if = "is_zero")]
    #[schemars(extend("format" = "int32"))]
    pub skipped: u32,
    /// The first skipped bindings × subjects, with why (at most 20 listed;
    /// `skipped` counts them all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 20))]
    pub skipped_items: Vec<SkippedItem>,
    /// `spec.maxItemsPerRun` when this run reached it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub item_cap: Option<u32>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A binding × subject in scope that did not become an item.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SkippedItem {
    /// `RoleBinding NAMESPACE/NAME` or `ClusterRoleBinding NAME` (cut to 300
    /// characters).
    pub binding: String,
    /// The subject, as `KIND NAME` (cut to 300 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// `Invalid`, `Rejected`, `NameConflict` or `ItemCap`.
    pub reason: SkipReason,
    /// What is wrong, in words.
    pub message: String,
}

/// Why a binding × subject did not become an item.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum SkipReason {
    /// The item would break the AccessCertification schema (a name longer than it
    /// holds: RBAC accepts longer ones). Review this binding by hand.
    Invalid,
    /// The API server's schema refused a field of the item, or its size (its
    /// answer is in `message`). An admission policy's denial is not this: the
    /// launch is retried.
    Rejected,
    /// An AccessCertification of the item's name already exists with another
    /// spec: someone else created it. It is not this run's item and decides
    /// nothing; a Warning Event `ItemConflict` names it.
    NameConflict,
    /// The run reached `spec.maxItemsPerRun`.
    ItemCap,
    /// The binding is larger than the operator holds in memory (more than 256
    /// subjects, or more than 16 KiB of labels): reviewing part of it would
    /// hide the rest, so the whole binding is left to an admin.
    TooLarge,
}

/// What started a run.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RunTrigger {
    /// The schedule.
    Scheduled,
    /// A campaign without a schedule runs once when it is created.
    Created,
    /// Asked for with the annotation `gatehouse.dev/run-requested-at`.
    Requested,
}

crate::wire_names!(NoDecision, Protection, RemediationMode, SkipReason, RunTrigger);
