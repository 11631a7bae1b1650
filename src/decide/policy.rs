//! The validated form of a policy's requirements the rest of the core works
//! with, and the checks of a policy on its own.

use std::collections::BTreeMap;

use chrono::Duration;

use super::{duration, window::Window};
use crate::api::{AccessPolicySpec, Justification, Requirements, StageOperator};

/// Duration when neither the request nor the policy names one.
pub const DEFAULT_DURATION: &str = "1h";
/// Cap when the policy names none.
pub const DEFAULT_MAX_DURATION: &str = "8h";
/// How long terminal requests are kept when the policy names no retention (720h).
pub const DEFAULT_RETENTION: Duration = Duration::hours(720);

/// One review stage, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct StagePlan {
    /// Stage name (`default` for a single-stage policy).
    pub name: String,
    /// Reviewer groups.
    pub groups: Vec<String>,
    /// Reviewer users.
    pub users: Vec<String>,
    /// All or Any.
    pub operator: StageOperator,
    /// Distinct approvals needed.
    pub min_approvals: u32,
}

impl StagePlan {
    /// Whether the reviewer (by name and groups) is a listed reviewer of this stage.
    pub fn lists(&self, username: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == username) || groups.iter().any(|g| self.groups.contains(g))
    }

    /// Approvals this stage needs before the next one opens.
    pub fn required(&self) -> u32 {
        match self.operator {
            StageOperator::Any => self.min_approvals,
            StageOperator::All => {
                (self.groups.len() + self.users.len()).max(self.min_approvals as usize) as u32
            }
        }
    }
}

/// The requirements a request is held to, parsed and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct Rules {
    /// Policy name.
    pub policy: String,
    /// Granted duration.
    pub duration: Duration,
    /// Stages in order; a single implicit stage for policies without stages.
    pub stages: Vec<StagePlan>,
    /// Whether the policy declared its stages (status shows `stages[]` only then).
    pub explicit_stages: bool,
    /// Distinct approvals needed in total.
    pub min_approvals: u32,
    /// Break-glass groups.
    pub force_groups: Vec<String>,
    /// Whether self-approval counts.
    pub allow_self_approval: bool,
    /// Pending longer than this: TimedOut.
    pub timeout: Option<Duration>,
    /// After this delay these groups may review the open stage.
    pub escalation: Option<(Duration, Vec<String>)>,
    /// Justification rule.
    pub justification: Justification,
    /// Time window.
    pub window: Option<Window>,
    /// Approved without review.
    pub auto_approved: bool,
    /// Live grants per requester.
    pub max_active: Option<u32>,
    /// Audit retention.
    pub retention: Duration,
}

impl Rules {
    /// Distinct approvals needed in total.
    pub fn required(&self) -> u32 {
        let staged: u32 = self.stages.iter().map(StagePlan::required).sum();
        staged.max(self.min_approvals)
    }
}

/// Parses a snapshot into rules; an error names the field that is wrong.
pub fn rules_from_snapshot(req: &Requirements) -> Result<Rules, String> {
    let parse = |field: &str, value: &str| duration::parse(value).map_err(|e| format!("{field}: {e}"));
    let a = &req.approval;
    let stages = if a.stages.is_empty() {
        vec![StagePlan {
            name: "default".into(),
            groups: a.reviewers.groups.clone(),
            users: a.reviewers.users.clone(),
            operator: StageOperator::Any,
            min_approvals: a.min_approvals.max(1),
        }]
    } else {
        a.stages
            .iter()
            .map(|s| StagePlan {
                name: s.name.clone(),
                groups: s.groups.clone(),
                users: s.users.clone(),
                operator: s.operator,
                min_approvals: s.min_approvals.max(1),
            })
            .collect()
    };
    Ok(Rules {
        policy: req.policy.clone(),
        duration: parse("duration", &req.duration)?,
        explicit_stages: !a.stages.is_empty(),
        stages,
        min_approvals: a.min_approvals.max(1),
        force_groups: a.force_approval_groups.clone(),
        allow_self_approval: a.allow_self_approval,
        timeout: a
            .timeout
            .as_deref()
            .map(|t| parse("approval.timeout", t))
            .transpose()?,
        escalation: match &a.escalation {
            Some(e) => Some((parse("approval.escalation.after", &e.after)?, e.groups.clone())),
            None => None,
        },
        justification: req.justification,
        window: req
            .time_window
            .as_ref()
            .map(Window::try_from)
            .transpose()
            .map_err(|e| e.to_string())?,
        auto_approved: req.auto_approved,
        max_active: req.max_active_per_requester,
        retention: parse("retention", &req.retention)?,
    })
}

/// Problems with a policy itself, independent of any request; empty when valid.
pub fn policy_problems(spec: &AccessPolicySpec) -> Vec<String> {
    let mut problems = Vec::new();
    let mut check = |field: &str, value: Option<&String>| {
        if let Some(v) = value {
            if let Err(e) = duration::parse(v) {
                problems.push(format!("{field}: {e}"));
            }
        }
    };
    check("duration.default", spec.duration.default.as_ref());
    check("duration.max", spec.duration.max.as_ref());
    check("approval.timeout", spec.approval.timeout.as_ref());
    check(
        "approval.escalation.after",
        spec.approval.escalation.as_ref().map(|e| &e.after),
    );
    check("retention", spec.retention.as_ref());
    if let (Some(d), Some(m)) = (&spec.duration.default, &spec.duration.max) {
        if let (Ok(d), Ok(m)) = (duration::parse(d), duration::parse(m)) {
            if d > m {
                problems.push("duration.default is longer than duration.max".into());
            }
        }
    }
    if let Some(w) = &spec.time_window {
        if let Err(e) = Window::try_from(w) {
            problems.push(e.to_string());
        }
    }
    let a = &spec.approval;
    if a.stages.is_empty()
        && a.reviewers.is_empty()
        && a.force_approval_groups.is_empty()
        && a.escalation.is_none()
        && spec.auto_approve.is_none()
    {
        problems.push(
            "nobody can approve: set approval.reviewers, approval.stages, approval.forceApprovalGroups or autoApprove"
                .into(),
        );
    }
    problems
}

/// Whether a label selector matches the labels. An empty selector matches everything,
/// as in Kubernetes; an unknown operator matches nothing.
pub fn selector_matches(
    sel: &k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    labels: &BTreeMap<String, String>,
) -> bool {
    let by_label = sel
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    let by_expr = sel.match_expressions.iter().flatten().all(|e| {
        let values = e.values.as_deref().unwrap_or_default();
        match e.operator.as_str() {
            "In" => labels.get(&e.key).is_some_and(|v| values.contains(v)),
            "NotIn" => labels.get(&e.key).is_none_or(|v| !values.contains(v)),
            "Exists" => labels.contains_key(&e.key),
            "DoesNotExist" => !labels.contains_key(&e.key),
            _ => false,
        }
    });
    by_label && by_expr
}
