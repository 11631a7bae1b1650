//! The recommendation of an item: `Revoke` when the binding is stale, `Review` when
//! the role grants something risky, `Accept` otherwise, with every finding in words.

use crate::api::{
    BindingKind, Finding, FindingCode, Recommendation, RiskTag, RoleKind, Subject, SubjectKind,
};

use super::{
    inventory::{BindingFacts, Inventory, Observed},
    risk::risk_tags,
    rules::{digest, effective_rules},
};

/// What the core found about one subject's access through one binding.
#[derive(Debug, Clone, PartialEq)]
pub struct Assessment {
    /// Accept, Review or Revoke.
    pub recommendation: Recommendation,
    /// The findings, staleness first, then risk in tag order.
    pub findings: Vec<Finding>,
    /// The risk tags alone.
    pub risk: Vec<RiskTag>,
    /// Digest of the effective rules; `None` when the role is missing.
    pub digest: Option<String>,
}

fn finding(code: FindingCode, message: String) -> Finding {
    Finding {
        code,
        risk: None,
        message,
    }
}

/// Staleness of the binding for this subject: what no longer exists.
fn staleness(inv: &Inventory, binding: &BindingFacts, subject: &Subject, role_found: bool) -> Vec<Finding> {
    let mut out = Vec::new();
    let role_kind = match binding.role.kind {
        RoleKind::Role => Observed::Roles,
        RoleKind::ClusterRole => Observed::ClusterRoles,
    };
    if !role_found && inv.has_observed(role_kind) {
        let place = match (&binding.role.kind, &binding.namespace) {
            (RoleKind::Role, Some(ns)) => format!(" in namespace {ns}"),
            _ => String::new(),
        };
        out.push(finding(
            FindingCode::RoleMissing,
            format!("{} does not exist{place}: the binding grants nothing and would grant whatever is created under that name", binding.role),
        ));
    }
    let namespace_gone =
        |ns: &str| inv.has_observed(Observed::Namespaces) && inv.namespace(ns).is_none_or(|n| n.terminating);
    if let (BindingKind::RoleBinding, Some(ns)) = (binding.kind, &binding.namespace) {
        if namespace_gone(ns) {
            out.push(finding(
                FindingCode::NamespaceGone,
                format!("namespace {ns} of the binding does not exist or is being deleted"),
            ));
        }
    }
    if subject.kind == SubjectKind::ServiceAccount {
        let ns = subject.namespace.as_deref().unwrap_or_default();
        if namespace_gone(ns) && binding.namespace.as_deref() != Some(ns) {
            out.push(finding(
                FindingCode::NamespaceGone,
                format!(
                    "namespace {ns} of ServiceAccount {} does not exist or is being deleted",
                    subject.name
                ),
            ));
        } else if inv.has_observed(Observed::ServiceAccounts) && !inv.has_service_account(ns, &subject.name) {
            out.push(finding(
                FindingCode::ServiceAccountMissing,
                format!(
                    "ServiceAccount {ns}/{} does not exist: whoever creates it gets this access",
                    subject.name
                ),
            ));
        }
    }
    out
}

/// Assesses one subject's access through one binding. `launched_digest` is the
/// digest recorded when the run started (None at launch): a different one now
/// means the role changed under review.
pub fn assess(
    inv: &Inventory,
    binding: &BindingFacts,
    subject: &Subject,
    launched_digest: Option<&str>,
) -> Assessment {
    let rules = effective_rules(inv, &binding.role, binding.namespace.as_deref());
    let mut findings = staleness(inv, binding, subject, rules.is_some());
    let stale = !findings.is_empty();
    let tags = rules.as_deref().map(risk_tags).unwrap_or_default();
    let digest = rules.as_deref().map(digest);
    if let (Some(then), Some(now)) = (launched_digest, &digest) {
        if then != now {
            findings.push(finding(
                FindingCode::RulesChanged,
                format!("the rules of {} changed since the run started", binding.role),
            ));
        }
    }
    if rules.is_none() && !stale {
        findings.push(finding(
            FindingCode::RoleNotSeen,
            format!(
                "{} is not among the objects given: its rules are unknown",
                binding.role
            ),
        ));
    }
    let changed = findings
        .iter()
        .any(|f| matches!(f.code, FindingCode::RulesChanged | FindingCode::RoleNotSeen));
    for (tag, message) in &tags {
        findings.push(Finding {
            code: FindingCode::Risk,
            risk: Some(*tag),
            message: message.clone(),
        });
    }
    let recommendation = if stale {
        Recommendation::Revoke
    } else if !tags.is_empty() || changed {
        Recommendation::Review
    } else {
        let n = rules.as_ref().map_or(0, Vec::len);
        findings.push(finding(
            FindingCode::NothingRisky,
            format!("{} grants {n} rule(s), none of them risky", binding.role),
        ));
        Recommendation::Accept
    };
    Assessment {
        recommendation,
        findings,
        risk: tags.into_iter().map(|(t, _)| t).collect(),
        digest,
    }
}
