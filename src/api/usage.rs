// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{BindingKind, RoleKind, SubjectKind};

/// What one RoleBinding or ClusterRoleBinding was used for, per subject, as the
/// API server's audit events say (docs/usage.md). Written by the operator, in its
/// own namespace, at most once per binding per `--usage-flush-interval`; one
/// object per binding, named from a digest of the binding's kind, namespace and
/// name (`spec` says which binding).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "BindingUsage",
    namespaced,
    shortname = "bu",
    status = "BindingUsageStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn(name = "Kind", type_ = "string", json_path = ".spec.kind"),
    printcolumn(name = "Binding Namespace", type_ = "string", json_path = ".spec.namespace"),
    printcolumn(name = "Binding", type_ = "string", json_path = ".spec.name"),
    printcolumn(name = "Subjects", type_ = "integer", json_path = ".status.subjectCount"),
    printcolumn(name = "Last Used", type_ = "date", json_path = ".status.lastUsedAt"),
    printcolumn(name = "Requests", type_ = "integer", json_path = ".status.requests")
)]
#[serde(rename_all = "camelCase")]
pub struct BindingUsageSpec {
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub kind: BindingKind,
    /// Namespace of a RoleBinding.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Name of the binding.
    pub name: String,
}

/// The usage summary of the binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct BindingUsageStatus {
    /// The earliest audit event any replica saw: usage is known from here on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_since: Option<DateTime<Utc>>,
    /// The last request credited to the binding, any subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<DateTime<Utc>>,
    /// Requests credited within the retention period, all subjects.
    #[serde(default)]
    pub requests: u64,
    /// How many subjects are listed.
    #[serde(default)]
    pub subject_count: u32,
    /// Per subject RBAC credited, most recently used first (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subjects: Vec<SubjectUsage>,
    /// The last flush of each operator process added here: a write retried after
    /// its response was lost is not added twice. Processes that have not written
    /// for the retention period are dropped (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub writers: Vec<FlushMark>,
}

/// The last flush one operator process added to the summary.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlushMark {
    /// The process: its pod and a random suffix drawn at start.
    pub writer: String,
    /// Its flush sequence number, counted from 1 at start.
    pub sequence: u64,
    /// When it was written.
    pub at: DateTime<Utc>,
}

/// The usage of the binding by one subject.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct SubjectUsage {
    /// `User`, `Group` or `ServiceAccount`.
    pub kind: SubjectKind,
    /// Name of the subject.
    pub name: String,
    /// Namespace of a ServiceAccount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// Kind of the role the binding granted when last used.
    pub role_kind: RoleKind,
    /// Name of that role.
    pub role_name: String,
    /// The first request credited.
    pub first_used_at: DateTime<Utc>,
    /// The last request credited.
    pub last_used_at: DateTime<Utc>,
    /// Requests within the retention period.
    #[serde(default)]
    pub requests: u64,
    /// Requests per day (UTC, `YYYY-MM-DD`), within the retention period.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub daily: BTreeMap<String, u64>,
    /// The most frequent actions (`verb resource`), with their counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_actions: Vec<Counted>,
    /// The users who acted through the binding most (for a group's binding: its
    /// members), with their counts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub top_actors: Vec<Counted>,
}

/// A name and how often it was seen.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct Counted {
    /// The action or user name.
    pub name: String,
    /// How often.
    pub count: u64,
}
