//! Admission of a request, at its first evaluation: choosing its policy,
//! checking the request against it, and taking the snapshot of its requirements.

use std::collections::BTreeMap;

use chrono::Duration;
use kube::ResourceExt;

use super::{
    duration,
    model::{Denial, Input},
    naming::subject_of,
    policy::{policy_problems, selector_matches, DEFAULT_DURATION, DEFAULT_MAX_DURATION, DEFAULT_RETENTION},
    protected,
    reason::DenialReason,
};
use crate::api::{
    AccessPolicy, AccessPolicySpec, ApprovalRequest, ApprovalRules, Justification, Phase, RequestType,
    Requirements, Scope, SubjectKind,
};

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
                DenialReason::PolicyNotFound,
                format!("spec.policy names AccessPolicy {name:?}, which does not exist"),
            ));
        };
        if !allows_requester(&p.spec, req) {
            return Err(Denial::new(
                DenialReason::RequesterNotAllowed,
                format!(
                    "AccessPolicy {name} does not allow user {:?} (groups {:?}) to request access",
                    req.spec.requester.username, req.spec.requester.groups
                ),
            ));
        }
        if !allows_role(&p.spec, req) {
            return Err(Denial::new(
                DenialReason::RoleNotAllowed,
                format!("AccessPolicy {name} does not grant {role}"),
            ));
        }
        if !allows_scope(&p.spec, req, ns_labels) {
            return Err(match req.spec.scope {
                Scope::Cluster => Denial::new(
                    DenialReason::ClusterScopeNotAllowed,
                    format!("AccessPolicy {name} does not allow cluster-wide grants (namespaces.allowClusterScope)"),
                ),
                Scope::Namespace => Denial::new(
                    DenialReason::NamespaceNotAllowed,
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
                DenialReason::NoMatchingPolicy,
                format!(
                    "no AccessPolicy lets {} request {role} {where_}; {hint}",
                    req.spec.requester.username
                ),
            ))
        }
        many => {
            let names: Vec<String> = many.iter().map(|p| p.name_any()).collect();
            Err(Denial::new(
                DenialReason::AmbiguousPolicy,
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
            DenialReason::InvalidPolicy,
            format!("AccessPolicy {name} is invalid: {}", problems.join("; ")),
        ));
    }
    let parse = |v: &str| {
        duration::parse(v)
            .map_err(|e| Denial::new(DenialReason::InvalidPolicy, format!("AccessPolicy {name}: {e}")))
    };
    let max = parse(spec.duration.max.as_deref().unwrap_or(DEFAULT_MAX_DURATION))?;
    let default = match &spec.duration.default {
        Some(d) => parse(d)?,
        None => parse(DEFAULT_DURATION)?.min(max),
    };
    let duration = match &req.spec.duration {
        Some(d) => {
            let asked = duration::parse(d)
                .map_err(|e| Denial::new(DenialReason::InvalidDuration, format!("spec.duration: {e}")))?;
            if asked <= Duration::zero() {
                return Err(Denial::new(
                    DenialReason::InvalidDuration,
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
            DenialReason::ReasonRequired,
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
            .unwrap_or_else(|| duration::format(DEFAULT_RETENTION)),
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
    let subject = subject_of(req);
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
        DenialReason::SubjectNotAllowed,
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
            DenialReason::OneTimeNotAllowed,
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
            DenialReason::ImageNotAllowed,
            format!(
                "AccessPolicy {policy} does not allow image {image}; allowed: {}",
                rules.images.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Policy selection and the checks made once, when a request is first seen.
pub fn first_admission(input: &Input) -> Result<Requirements, Denial> {
    let req = input.request;
    if req.spec.type_ == RequestType::OneTime {
        if req.spec.job.is_none() {
            return Err(Denial::new(
                DenialReason::MissingJob,
                "a OneTime request needs spec.job: the job to run once",
            ));
        }
        // The job's identity is its own ServiceAccount, created for this request:
        // a subject would hand the role to someone the reviewers did not see run.
        if req.spec.subject.is_some() {
            return Err(Denial::new(
                DenialReason::SubjectNotAllowed,
                "a OneTime job runs as a ServiceAccount created for this request: omit spec.subject",
            ));
        }
        if req.spec.extends.is_some() {
            return Err(Denial::new(
                DenialReason::InvalidExtends,
                "a OneTime request runs its job once and cannot extend another request: omit spec.extends",
            ));
        }
    }
    if let Some(name) = &req.spec.extends {
        let Some(old) = input.extended else {
            return Err(Denial::new(
                DenialReason::InvalidExtends,
                format!("spec.extends names request {name}, which does not exist in this namespace"),
            ));
        };
        let same = old.spec.requester.username == req.spec.requester.username
            && old.spec.role == req.spec.role
            && old.spec.scope == req.spec.scope
            && subject_of(old) == subject_of(req);
        if !same {
            return Err(Denial::new(
                DenialReason::InvalidExtends,
                format!("request {name} is for another requester, subject, role or scope; only your own request for the same access can be extended"),
            ));
        }
        let phase = old.status.as_ref().map(|s| s.phase).unwrap_or_default();
        if !matches!(phase, Phase::Active | Phase::Approved | Phase::Superseded) {
            return Err(Denial::new(
                DenialReason::InvalidExtends,
                format!("request {name} is {phase}; only an Active request can be extended"),
            ));
        }
    }
    // Before any policy: a protected namespace is refused whichever policy
    // matches it (a label selector reaches it as easily as any other).
    if req.spec.scope == Scope::Namespace {
        if let Some(denial) =
            protected::refusal(&req.namespace().unwrap_or_default(), input.protected_namespaces)
        {
            return Err(denial);
        }
    }
    let chosen = select(req, input.policies, input.namespace_labels)?;
    admit(req, chosen)
}
