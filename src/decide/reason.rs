//! Every reason the core writes, as a type.
//!
//! Conditions and review verdicts carry a CamelCase `reason` string, because that
//! is the Kubernetes convention and what `kubectl` shows. Inside Gatehouse a reason
//! is one of the enums below: the core decides with them, the controller and the
//! plugin branch on them, and the string form exists only at the border (status,
//! events, output). Nothing matches on a reason string it wrote itself.

use crate::api::Phase;

/// Declares a reason enum whose variants are written as their own names (their
/// serde names, through [`crate::wire_names!`] like every enum on a wire).
macro_rules! reasons {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every reason, in declaration order.
            pub const ALL: &[$name] = &[$($name::$variant,)+];
        }

        crate::wire_names!($name);
    };
}

/// The condition types of an ApprovalRequest.
pub mod condition {
    /// The request has (or had) the approvals it needs.
    pub const APPROVED: &str = "Approved";
    /// The binding exists now.
    pub const GRANTED: &str = "Granted";
    /// The request reached a terminal phase.
    pub const COMPLETE: &str = "Complete";
}

reasons! {
    /// Why a request is refused outright (phase `Denied`).
    pub enum DenialReason {
        /// `spec.policy` names a policy that does not exist.
        PolicyNotFound,
        /// The named policy does not list the requester.
        RequesterNotAllowed,
        /// The named policy does not grant the role.
        RoleNotAllowed,
        /// The named policy does not allow cluster-wide grants.
        ClusterScopeNotAllowed,
        /// The named policy does not cover the namespace.
        NamespaceNotAllowed,
        /// No policy matches the request.
        NoMatchingPolicy,
        /// Several policies match and none is named.
        AmbiguousPolicy,
        /// The policy (or its snapshot) is invalid.
        InvalidPolicy,
        /// `spec.duration` is not a positive duration.
        InvalidDuration,
        /// The policy requires `spec.reason`.
        ReasonRequired,
        /// The policy does not let access go to `spec.subject`.
        SubjectNotAllowed,
        /// The policy does not allow OneTime requests.
        OneTimeNotAllowed,
        /// The policy does not allow the job's image.
        ImageNotAllowed,
        /// A OneTime request without `spec.job`.
        MissingJob,
        /// `spec.extends` names a request that cannot be extended.
        InvalidExtends,
        /// The requester already holds the policy's maximum of live grants.
        TooManyActiveGrants,
        /// The namespace is protected (the operator's own, `kube-system`): no
        /// grant there unless the operator is started with `--allow-grants-in`.
        ProtectedNamespace,
    }
}

reasons! {
    /// Why a review counted or was ignored (`AccessReview.status.reason`).
    pub enum VerdictReason {
        /// An approval that counts.
        Approved,
        /// A force approval by a break-glass group.
        ForceApproved,
        /// A comment, recorded.
        Commented,
        /// A rejection that ended the request.
        Rejected,
        /// A revocation that ended the access.
        Revoked,
        /// A cancellation by the requester.
        Canceled,
        /// The reviewer would receive the access, or is the requester.
        SelfApproval,
        /// The reviewer already approved.
        Duplicate,
        /// The reviewer may not act on this request now.
        NotEligible,
        /// The request is no longer pending (or already ended).
        NotPending,
        /// Nothing to revoke: the request is not approved yet.
        NotActive,
        /// Only the requester may cancel.
        NotRequester,
        /// Access has started: cancel no longer applies.
        AlreadyActive,
        /// The policy requires a comment on this decision.
        CommentRequired,
        /// The review names another request of the same name.
        UidMismatch,
        /// A decision for certification items only (`Reassign`).
        NotApplicable,
    }
}

impl From<VerdictReason> for crate::api::ReviewReason {
    fn from(v: VerdictReason) -> Self {
        crate::api::ReviewReason::parse(v.as_str()).unwrap_or(crate::api::ReviewReason::Unknown)
    }
}

impl VerdictReason {
    /// The verdict of a review that ended the request for this cause.
    pub fn ending(cause: EndCause) -> Self {
        match cause {
            EndCause::Rejected => VerdictReason::Rejected,
            EndCause::Canceled => VerdictReason::Canceled,
            _ => VerdictReason::Revoked,
        }
    }
}

reasons! {
    /// How a request reached its quorum (condition `Approved`, reason when true).
    pub enum ApprovalKind {
        /// The policy's `autoApprove` matched: no reviewer needed.
        AutoApproved,
        /// A member of a force-approval group approved (break-glass).
        ForceApproved,
        /// The stages and the minimum number of approvals were satisfied.
        Approved,
    }
}

impl ApprovalKind {
    /// The APPROVALS column: `auto`, `forced`, or `received/required`.
    pub fn summary(self, received: u32, required: u32) -> String {
        match self {
            ApprovalKind::AutoApproved => "auto".into(),
            ApprovalKind::ForceApproved => "forced".into(),
            ApprovalKind::Approved => format!("{received}/{required}"),
        }
    }
}

reasons! {
    /// Why a request ended (condition `Complete`, reason when true), other than a denial.
    pub enum EndCause {
        /// Nobody decided before the policy's timeout.
        TimedOut,
        /// The access window ended.
        Expired,
        /// A newer request extended this one.
        Superseded,
        /// A reviewer rejected it.
        Rejected,
        /// Access was revoked.
        Revoked,
        /// The requester canceled it.
        Canceled,
        /// OneTime: the job succeeded.
        Executed,
        /// OneTime: the job failed.
        JobFailed,
        /// OneTime: the job was still running at its deadline.
        DeadlineExceeded,
        /// OneTime: the job was deleted before it finished.
        JobDeleted,
    }
}

impl EndCause {
    /// The phase a request ends in for this cause.
    pub fn phase(self) -> Phase {
        match self {
            EndCause::TimedOut => Phase::TimedOut,
            EndCause::Expired => Phase::Expired,
            EndCause::Superseded => Phase::Superseded,
            EndCause::Rejected => Phase::Rejected,
            EndCause::Revoked => Phase::Revoked,
            EndCause::Canceled => Phase::Canceled,
            EndCause::Executed => Phase::Executed,
            EndCause::JobFailed | EndCause::DeadlineExceeded | EndCause::JobDeleted => Phase::Failed,
        }
    }
}

/// How a request ended: by one of the causes of its life, or denied by the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ending {
    /// Ended during its life.
    Ended(EndCause),
    /// Refused by the policy (at first evaluation, or at approval for too many grants).
    Denied(DenialReason),
}

impl Ending {
    /// The terminal phase.
    pub fn phase(self) -> Phase {
        match self {
            Ending::Ended(c) => c.phase(),
            Ending::Denied(_) => Phase::Denied,
        }
    }

    /// The CamelCase reason.
    pub fn as_str(self) -> &'static str {
        match self {
            Ending::Ended(c) => c.as_str(),
            Ending::Denied(d) => d.as_str(),
        }
    }

    /// Reads an ending back from a stored status (the reason of `Complete`).
    pub fn parse(s: &str) -> Option<Self> {
        EndCause::parse(s)
            .map(Ending::Ended)
            .or_else(|| DenialReason::parse(s).map(Ending::Denied))
    }
}

reasons! {
    /// The other condition reasons: where a request stands while it is alive.
    pub enum Progress {
        /// `Approved` is false: reviews are still needed.
        AwaitingApproval,
        /// `Granted` is true: the binding exists.
        BindingActive,
        /// `Granted` is false: approved, access starts at `notBefore`.
        NotStarted,
        /// `Granted` is false: approved, outside the policy's time window.
        OutsideTimeWindow,
        /// `Granted` is false: not approved yet.
        NotApproved,
        /// `Complete` is false.
        InProgress,
        /// `Granted` and `Complete` of a denied request.
        Denied,
    }
}

reasons! {
    /// What the operator could not do in the cluster (condition `Granted`, set by the
    /// controller, not the core, while it retries).
    pub enum Failure {
        /// The binding could not be created or restored.
        BindingFailed,
        /// The job or its ServiceAccount could not be created.
        JobFailed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_written_as_their_names() {
        assert_eq!(DenialReason::NoMatchingPolicy.as_str(), "NoMatchingPolicy");
        assert_eq!(VerdictReason::SelfApproval.to_string(), "SelfApproval");
        assert_eq!(ApprovalKind::AutoApproved.as_str(), "AutoApproved");
        assert_eq!(
            Ending::Denied(DenialReason::TooManyActiveGrants).as_str(),
            "TooManyActiveGrants"
        );
        assert_eq!(Ending::Ended(EndCause::DeadlineExceeded).phase(), Phase::Failed);
    }

    #[test]
    fn every_end_cause_ends_in_a_terminal_phase() {
        for c in [
            EndCause::TimedOut,
            EndCause::Expired,
            EndCause::Superseded,
            EndCause::Rejected,
            EndCause::Revoked,
            EndCause::Canceled,
            EndCause::Executed,
            EndCause::JobFailed,
            EndCause::DeadlineExceeded,
            EndCause::JobDeleted,
        ] {
            assert!(c.phase().is_terminal(), "{c}");
        }
    }

    /// `AccessReview.status.reason` is one enum for requests and items: every
    /// verdict of either keeps its name there, and a name from another operator
    /// version still reads.
    #[test]
    fn every_verdict_keeps_its_name_as_a_review_reason() {
        use crate::api::{ReviewReason, ReviewVerdict};
        for v in VerdictReason::ALL {
            assert_eq!(ReviewReason::from(*v).as_str(), v.as_str());
        }
        let schema = serde_json::to_value(schemars::schema_for!(ReviewVerdict)).unwrap();
        let names: Vec<String> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|o| {
                let listed = o["enum"].as_array().cloned().unwrap_or_default();
                listed.into_iter().chain(o.get("const").cloned())
            })
            .filter_map(|n| n.as_str().map(String::from))
            .collect();
        assert!(names.len() >= 12, "{names:?}");
        for name in names {
            let verdict: ReviewVerdict = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(ReviewReason::from(verdict).as_str(), name);
        }
        let read: ReviewReason = serde_json::from_value(serde_json::json!("SomethingNewer")).unwrap();
        assert_eq!(read, ReviewReason::Unknown);
    }
}
