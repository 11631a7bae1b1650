//! Choosing the policy of a request, checking the request against it, and the
//! validated form of the requirements the rest of the core works with.

use std::collections::BTreeMap;

use chrono::Duration;
use kube::ResourceExt;

use super::{duration, window::Window, Denial};
use crate::api::{
    AccessPolicy, AccessPolicySpec, ApprovalRequest, ApprovalRules, Justification, RequestType, Requirements,
    Scope, StageOperator, SubjectKind,
};

/// Duration when neither the request nor the policy names one.
pub const DEFAULT_DURATION: &str = "1h";
/// Cap when the policy names none.
pub const DEFAULT_MAX_DURATION: &str = "8h";
/// How long terminal requests are kept when the policy names no retention.
pub const DEFAULT_RETENTION: &str = "720h";

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

fn allows_requester(p: &AccessPolicySpec, req: &ApprovalRequest) -> bool {
    p.requesters.matches(&req.spec.requester)
}

fn allows_role(p: &AccessPolicySpec, req: &ApprovalRequest) -> bool {
    p.roles.contains(&req.spec.role)
}

fn allows_scope(
    p: &AccessPolicySpec,
    req: &ApprovalRequest,
    ns_labels: Option<&BTreeMap<String, String>>,
) -> bool {
    match req.spec.scope {
        Scope::Cluster => p.namespaces.allow_cluster_scope || p.allow_cluster_scope == Some(true),
        Scope::Namespace => {
            let ns = req.namespace().unwrap_or_default();
            p.namespaces.names.contains(&ns)
                || match (&p.namespaces.selector, ns_labels) {
                    (Some(sel), Some(labels)) => selector_matches(sel, labels),
                    _ => false,
                }
        }
    }
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

/// Picks the policy for a request: the named one, or the only one that matches.
pub fn select<'a>(
    req: &ApprovalRequest,
    policies: &'a [AccessPolicy],
    ns_labels: Option<&BTreeMap<String, String>>,
) -> Result<&'a AccessPolicy, Denial> {
    let ns = req.namespace().unwrap_or_default();
    let role = &req.spec.role;
    if let Some(name) = &req.spec.policy {
        let Some(p) = policies.iter().find(|p| p.name_any() == *name) else {
            return Err(Denial::new(
                "PolicyNotFound",
                format!("spec.policy names AccessPolicy {name:?}, which does not exist"),
            ));
        };
        if !allows_requester(&p.spec, req) {
            return Err(Denial::new(
                "RequesterNotAllowed",
                format!(
                    "AccessPolicy {name} does not allow user {:?} (groups {:?}) to request access",
                    req.spec.requester.username, req.spec.requester.groups
                ),
            ));
        }
        if !allows_role(&p.spec, req) {
            return Err(Denial::new(
                "RoleNotAllowed",
                format!("AccessPolicy {name} does not grant {role}"),
            ));
        }
        if !allows_scope(&p.spec, req, ns_labels) {
            return Err(match req.spec.scope {
                Scope::Cluster => Denial::new(
                    "ClusterScopeNotAllowed",
                    format!("AccessPolicy {name} does not allow cluster-wide grants (namespaces.allowClusterScope)"),
                ),
                Scope::Namespace => Denial::new(
                    "NamespaceNotAllowed",
                    format!("AccessPolicy {name} does not grant access in namespace {ns}"),
                ),
            });
        }
        return Ok(p);
    }
    let mut candidates: Vec<&AccessPolicy> = policies
        .iter()
        .filter(|p| {
            allows_requester(&p.spec, req)
                && allows_role(&p.spec, req)
                && allows_scope(&p.spec, req, ns_labels)
        })
        .collect();
    candidates.sort_by_key(|p| p.name_any());
    match candidates.as_slice() {
        [one] => Ok(one),
        [] => {
            let granting: Vec<String> = policies
                .iter()
                .filter(|p| allows_role(&p.spec, req))
                .map(|p| p.name_any())
                .collect();
            let where_ = match req.spec.scope {
                Scope::Cluster => "cluster-wide".to_string(),
                Scope::Namespace => format!("in namespace {ns}"),
            };
            let hint = if granting.is_empty() {
                format!("no policy grants {role}")
            } else {
                format!("policies that grant {role}: {}", granting.join(", "))
            };
            Err(Denial::new(
                "NoMatchingPolicy",
                format!(
                    "no AccessPolicy lets {} request {role} {where_}; {hint}",
                    req.spec.requester.username
                ),
            ))
        }
        many => {
            let names: Vec<String> = many.iter().map(|p| p.name_any()).collect();
            Err(Denial::new(
                "AmbiguousPolicy",
                format!(
                    "several AccessPolicies match ({}); name one in spec.policy",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Checks the request against the chosen policy and takes the snapshot.
pub fn admit(req: &ApprovalRequest, policy: &AccessPolicy) -> Result<Requirements, Denial> {
    let spec = &policy.spec;
    let name = policy.name_any();
    let problems = policy_problems(spec);
    if !problems.is_empty() {
        return Err(Denial::new(
            "InvalidPolicy",
            format!("AccessPolicy {name} is invalid: {}", problems.join("; ")),
        ));
    }
    let parse = |v: &str| {
        duration::parse(v).map_err(|e| Denial::new("InvalidPolicy", format!("AccessPolicy {name}: {e}")))
    };
    let max = parse(spec.duration.max.as_deref().unwrap_or(DEFAULT_MAX_DURATION))?;
    let default = match &spec.duration.default {
        Some(d) => parse(d)?,
        None => parse(DEFAULT_DURATION)?.min(max),
    };
    let duration = match &req.spec.duration {
        Some(d) => {
            let asked = duration::parse(d)
                .map_err(|e| Denial::new("InvalidDuration", format!("spec.duration: {e}")))?;
            if asked <= Duration::zero() {
                return Err(Denial::new(
                    "InvalidDuration",
                    "spec.duration must be longer than zero",
                ));
            }
            // Capped, not refused: the reviewer sees the effective duration in the status.
            asked.min(max)
        }
        None => default,
    };
    if spec.justification == Justification::RequireForAll
        && req.spec.reason.as_deref().is_none_or(|r| r.trim().is_empty())
    {
        return Err(Denial::new(
            "ReasonRequired",
            format!("AccessPolicy {name} requires a justification: set spec.reason"),
        ));
    }
    check_one_time(req, spec, &name)?;
    let for_someone_else = check_subject(req, spec, &name)?;
    // autoApprove names requesters; access for someone else always goes to
    // reviewers, and so does a job: its point is that someone read it.
    let auto_approved = !for_someone_else
        && req.spec.type_ != RequestType::OneTime
        && spec
            .auto_approve
            .as_ref()
            .is_some_and(|a| a.subjects.matches(&req.spec.requester) && a.roles.contains(&req.spec.role));
    let approval: ApprovalRules = spec.approval.clone();
    Ok(Requirements {
        policy: name,
        policy_generation: policy.metadata.generation,
        duration: duration::format(duration),
        approval,
        justification: spec.justification,
        time_window: spec.time_window.clone(),
        auto_approved,
        max_active_per_requester: spec.max_active_per_requester,
        retention: spec
            .retention
            .clone()
            .unwrap_or_else(|| DEFAULT_RETENTION.to_string()),
    })
}

/// Checks `spec.subject` against the policy's `grantees`. Returns whether access goes
/// to someone other than the requester. Reviewers approve access for the subject the
/// request names; without this rule an approved or auto-approved requester could hand
/// access to a user, group or ServiceAccount nobody agreed to.
fn check_subject(req: &ApprovalRequest, spec: &AccessPolicySpec, policy: &str) -> Result<bool, Denial> {
    let Some(asked) = &req.spec.subject else {
        return Ok(false);
    };
    if asked.kind == SubjectKind::User && asked.name == req.spec.requester.username {
        return Ok(false);
    }
    let subject = super::subject_of(req);
    let namespace = req.namespace().unwrap_or_default();
    let grantees = &spec.grantees;
    let allowed = match subject.kind {
        SubjectKind::User => grantees.users.contains(&subject.name),
        SubjectKind::Group => grantees.groups.contains(&subject.name),
        SubjectKind::ServiceAccount => grantees.service_accounts.iter().any(|sa| {
            sa.name == subject.name
                && sa.namespace.as_deref().unwrap_or(&namespace)
                    == subject.namespace.as_deref().unwrap_or_default()
        }),
    };
    if allowed {
        return Ok(true);
    }
    let mut listed: Vec<String> = Vec::new();
    listed.extend(grantees.users.iter().map(|u| format!("User {u}")));
    listed.extend(grantees.groups.iter().map(|g| format!("Group {g}")));
    listed.extend(grantees.service_accounts.iter().map(|sa| {
        format!(
            "ServiceAccount {}/{}",
            sa.namespace.as_deref().unwrap_or(&namespace),
            sa.name
        )
    }));
    let allows = if listed.is_empty() {
        format!(
            "it grants access to the requester only: omit spec.subject or set it to User {}",
            req.spec.requester.username
        )
    } else {
        format!(
            "besides the requester it allows: {} (spec.grantees)",
            listed.join(", ")
        )
    };
    Err(Denial::new(
        "SubjectNotAllowed",
        format!("AccessPolicy {policy} does not let requests grant access to {subject}; {allows}"),
    ))
}

/// A OneTime request runs a job as a new ServiceAccount in the namespace, which
/// is more than access to a role: the policy must allow it, and may limit images.
fn check_one_time(req: &ApprovalRequest, spec: &AccessPolicySpec, policy: &str) -> Result<(), Denial> {
    if req.spec.type_ != RequestType::OneTime {
        return Ok(());
    }
    let Some(rules) = &spec.one_time else {
        return Err(Denial::new(
            "OneTimeNotAllowed",
            format!("AccessPolicy {policy} does not allow OneTime requests (spec.oneTime); request JIT access or use a policy that allows jobs"),
        ));
    };
    let image = req
        .spec
        .job
        .as_ref()
        .map(|j| j.image.as_str())
        .unwrap_or_default();
    if !rules.allows_image(image) {
        return Err(Denial::new(
            "ImageNotAllowed",
            format!(
                "AccessPolicy {policy} does not allow image {image}; allowed: {}",
                rules.images.join(", ")
            ),
        ));
    }
    Ok(())
}
