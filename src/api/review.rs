// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Identity, Principals, NAME_PATTERN};

/// One person's decision on an ApprovalRequest or on an AccessCertification item.
/// Create-only: a permanent record.
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
    selectable = ".spec.certification.name",
    selectable = ".spec.reviewer.username",
    selectable = ".spec.decision",
    cel,
    printcolumn(name = "Request", type_ = "string", json_path = ".spec.request.name"),
    printcolumn(
        name = "Certification",
        type_ = "string",
        json_path = ".spec.certification.name"
    ),
    printcolumn(name = "Decision", type_ = "string", json_path = ".spec.decision"),
    printcolumn(name = "Reviewer", type_ = "string", json_path = ".spec.reviewer.username"),
    printcolumn(name = "Accepted", type_ = "boolean", json_path = ".status.accepted"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self == oldSelf").message("spec is immutable: an AccessReview is a permanent record; create a new one instead"))]
#[x_kube(validation = Rule::new("has(self.request) != has(self.certification)").message("name exactly one of spec.request (an ApprovalRequest) and spec.certification (an AccessCertification)"))]
#[x_kube(validation = Rule::new("!has(self.certification) || self.decision in ['Approve', 'Revoke', 'Reassign', 'Comment']").message("a certification review decides Approve, Revoke, Reassign or Comment"))]
#[x_kube(validation = Rule::new("!has(self.request) || self.decision != 'Reassign'").message("Reassign applies to certification items only (spec.certification)"))]
#[x_kube(validation = Rule::new("self.decision != 'Reassign' || (has(self.reassignTo) && ((has(self.reassignTo.users) && size(self.reassignTo.users) > 0) || (has(self.reassignTo.groups) && size(self.reassignTo.groups) > 0)))").message("Reassign needs spec.reassignTo with at least one user or group"))]
#[x_kube(validation = Rule::new("!has(self.reassignTo) || self.decision == 'Reassign'").message("spec.reassignTo is only allowed with decision Reassign"))]
#[x_kube(validation = Rule::new("self.decision != 'Reassign' || (has(self.comment) && size(self.comment) > 0)").message("Reassign needs a comment for the new reviewer"))]
#[x_kube(validation = Rule::new("!has(self.convertTo) || (has(self.certification) && self.decision == 'Revoke')").message("spec.convertTo goes with decision Revoke on a certification item"))]
pub struct AccessReviewSpec {
    /// The ApprovalRequest (same namespace) this review decides on. Exactly one of
    /// `request` and `certification` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<RequestRef>,
    /// The AccessCertification item (same namespace) this review decides on.
    /// Exactly one of `request` and `certification` is set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certification: Option<CertificationRef>,
    /// On a request: `Approve`, `Reject`, `Revoke`, `Cancel` or `Comment`. On a
    /// certification item: `Approve` (keep the access), `Revoke` (remove it),
    /// `Reassign` (hand this level's review to `reassignTo`) or `Comment`.
    pub decision: Decision,
    /// Who decides: must equal the authenticated creator (checked by admission policy).
    pub reviewer: Identity,
    /// Free text; required for Reject and Revoke when the policy says so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 2048))]
    pub comment: Option<String>,
    /// Reassign only: who reviews this level of the item instead. Never the subject
    /// of the item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reassign_to: Option<Box<Principals>>,
    /// Revoke of a certification item only: the standing binding goes, and the
    /// subject can ask for the same role just in time under this AccessPolicy,
    /// which must cover that subject, role and namespace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub convert_to: Option<ConvertTo>,
}

/// Reference to an AccessCertification item, pinned to its uid.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct CertificationRef {
    /// Name of the AccessCertification.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
    /// uid of the AccessCertification: a review counts only for that exact item.
    #[schemars(length(min = 1, max = 64))]
    pub uid: String,
}

/// The JIT policy that replaces a revoked standing binding.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct ConvertTo {
    /// Name of the AccessPolicy under which the subject can request the role.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub policy: String,
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
    /// Approve the request (counts toward the open stage); on a certification item, keep the access.
    Approve,
    /// Reject the request; final.
    Reject,
    /// End an active grant early; on a certification item, remove the standing access.
    Revoke,
    /// Withdraw the request (requester only, before it is active).
    Cancel,
    /// Certification items only: hand this level's review to `reassignTo`.
    Reassign,
    /// Comment only; changes nothing.
    #[default]
    Comment,
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
    // A plain string in the CRD, as always: the names are the operator's to extend.
    #[schemars(with = "Option<String>")]
    pub reason: Option<ReviewReason>,
    /// Human-readable explanation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the operator first judged the review (kept when the verdict changes;
    /// reviews made in the same second are replayed in this order).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_at: Option<DateTime<Utc>>,
}

/// Why a review counted or was ignored, as `AccessReview.status.reason`: a
/// request's verdict (`decide::reason::VerdictReason`) or a certification item's
/// ([`crate::api::ReviewVerdict`]), by the same names. A name this operator does
/// not know (written by another version) reads as `Unknown`.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReviewReason {
    /// Request: an approval that counts.
    Approved,
    /// Request: a force approval by a break-glass group.
    ForceApproved,
    /// A comment, recorded.
    Commented,
    /// Request: a rejection that ended the request.
    Rejected,
    /// Request: a revocation that ended the access.
    Revoked,
    /// Request: a cancellation by the requester.
    Canceled,
    /// Request: the reviewer would receive the access, or is the requester.
    SelfApproval,
    /// Request: the reviewer already approved.
    Duplicate,
    /// The reviewer may not act now.
    NotEligible,
    /// Request: no longer pending (or already ended).
    NotPending,
    /// Request: nothing to revoke yet.
    NotActive,
    /// Request: only the requester may cancel.
    NotRequester,
    /// Request: access has started; cancel no longer applies.
    AlreadyActive,
    /// The justification rule requires a comment.
    CommentRequired,
    /// The review names another object of the same name.
    UidMismatch,
    /// A decision that does not apply to this kind of object.
    NotApplicable,
    /// Item: the level decided.
    Decided,
    /// Item: the level was handed to `reassignTo`.
    Reassigned,
    /// Item: the reviewer is the subject, or a member of the subject group.
    SelfReview,
    /// Item: the reviewer already decided an earlier level.
    AlreadyDecided,
    /// Item: closed (decided or due).
    Closed,
    /// Item: reassign to the subject is refused.
    ReassignToSubject,
    /// Item: the AccessPolicy in `convertTo` would refuse the subject.
    ConversionRefused,
    /// A name this operator does not know.
    #[serde(other)]
    Unknown,
}

impl From<crate::api::ReviewVerdict> for ReviewReason {
    fn from(v: crate::api::ReviewVerdict) -> Self {
        ReviewReason::parse(v.as_str()).unwrap_or(ReviewReason::Unknown)
    }
}

crate::wire_names!(Decision, ReviewReason);
