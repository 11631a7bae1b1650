//! Access certification: the pure core behind AccessCampaign and AccessCertification.
//!
//! A campaign run takes a snapshot of the cluster's standing access (an
//! [`Inventory`] of bindings, roles, namespaces and ServiceAccounts) and turns it
//! into items, one per binding × subject ([`scope`]). Each item carries a
//! recommendation computed from the role's effective rules and the binding's
//! staleness ([`rules`], [`risk`], [`assess`]). Reviewers decide with AccessReviews;
//! [`replay`] replays them level by level, [`remediation`] says what removing a
//! revoked subject takes, and [`protect`] what the operator never removes by
//! itself. [`schedule`] says when runs start, [`campaign`] what the campaign's own
//! status says ([`campaign::evaluate()`]: one campaign reconcile, pure). [`evaluate()`] puts it together into the status the
//! operator writes. [`convert`] checks `convertTo` against the request admission code.
//! [`issue`] says which items the operator issued (the only ones it trusts).
//! [`usage`] weighs usage evidence (audit events) into the recommendation.
//!
//! Like [`crate::decide`], nothing here reads the clock or the cluster: `now` and
//! every object are parameters, and the same inputs always give the same answer.

pub mod assess;
pub mod campaign;
pub mod convert;
pub mod evaluate;
pub mod inventory;
pub mod issue;
pub mod naming;
pub mod protect;
pub mod remediation;
pub mod replay;
pub mod risk;
pub mod rules;
pub mod schedule;
pub mod scope;
pub mod system;
pub mod usage;

pub use self::{
    evaluate::{evaluate, ItemEvaluation, ItemInput, Verdict},
    inventory::{BindingFacts, Inventory},
    protect::OperatorIdentity,
    remediation::RemediationStep,
    schedule::{RunPlan, RunTrigger, Schedule, ScheduleError},
    scope::{launch, Exclusion, ExclusionReason, Launch},
};

/// Annotation on a Namespace naming its owners: comma-separated `group:NAME` or
/// `user:NAME` (a bare name is a user). Owners review the namespace's bindings at
/// the levels with `namespaceOwners: true`.
pub const OWNERS_ANNOTATION: &str = "gatehouse.dev/owners";
/// Annotation on an AccessCampaign asking for a run now: an RFC 3339 time, honoured
/// once per new value.
pub const RUN_REQUESTED_AT: &str = "gatehouse.dev/run-requested-at";
/// Label on every item: the campaign it belongs to.
pub const CAMPAIGN_LABEL: &str = "gatehouse.dev/campaign";
/// Label on every item: the run it belongs to.
pub const RUN_LABEL: &str = "gatehouse.dev/run";
/// Review namespace when a campaign names none.
pub const DEFAULT_REVIEW_NAMESPACE: &str = "gatehouse-system";
/// How long reviewers have when a campaign names no duration.
pub const DEFAULT_DURATION: &str = "336h";
/// The shortest review window the operator accepts unless its installer set
/// another (`--certification-min-review-window`).
pub const MIN_REVIEW_WINDOW: &str = "1h";
/// How long items are kept after their run when a campaign names no retention.
pub const DEFAULT_RETENTION: &str = "8760h";

#[cfg(test)]
mod tests;
