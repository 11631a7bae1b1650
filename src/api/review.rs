// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Identity, NAME_PATTERN};

/// One person's decision on an ApprovalRequest. Create-only: a permanent record.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "AccessReview",
    namespaced,
    shortname = "arev",
    category = "reviews",
    status = "AccessReviewStatus",
    derive = "Default",
    derive = "PartialEq",
    selectable = ".spec.request.name",
    selectable = ".spec.reviewer.username",
    selectable = ".spec.decision",
    cel,
    printcolumn(name = "Request", type_ = "string", json_path = ".spec.request.name"),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(name = "Reviewer", type_ = "string", json_path = ".spec.reviewer.username"),
    printcolumn(name = "Accepted", type_ = "boolean", json_path = ".status.accepted"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: an AccessReview is a permanent record; create a new one instead"))]
pub struct AccessReviewSpec {
    /// The ApprovalRequest (same namespace) this review decides on.
    pub request: RequestRef,
    /// `Approve`, `Reject`, `Revoke`, `Cancel` or `Comment`.
    pub decision: Decision,
    /// Who decides: must equal the authenticated creator (checked by admission policy).
    pub reviewer: Identity,
    /// Free text; required for Reject and Revoke when the policy says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub comment: Option<String>,
}

/// Reference to an ApprovalRequest, pinned to its uid.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct RequestRef {
    /// Name of the ApprovalRequest.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// uid of the ApprovalRequest: a re-created request with the same name gets none of the old reviews.
    #[schemars(length(min = 1, max = 64))]
    pub uid: String,
}

/// What a review decides.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Decision {
    /// Approve the request (counts toward the open stage).
    Approve,
    /// Reject the request; final.
    Reject,
    /// End an active grant early.
    Revoke,
    /// Withdraw the request (requester only, before it is active).
    Cancel,
    /// Comment only; changes nothing.
    #[default]
    Comment,
}

impl std::fmt::Display for Decision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Decision::Approve => "Approve",
            Decision::Reject => "Reject",
            Decision::Revoke => "Revoke",
            Decision::Cancel => "Cancel",
            Decision::Comment => "Comment",
        })
    }
}

/// The operator's verdict on this review.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct AccessReviewStatus {
    /// Whether the review counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accepted: Option<bool>,
    /// `Accepted`, or why it was ignored: `SelfApproval`, `NotEligible`, `NotPending`, `UidMismatch`, `CommentRequired`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the operator decided.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
}
