//! The effective rules of a bound role: its own rules and, for an aggregated
//! ClusterRole, the rules of every ClusterRole its `aggregationRule` selects
//! (recursively, as the clusterrole-aggregation controller would fill them in).

use std::collections::BTreeSet;

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::{inventory::Inventory, naming::fnv1a};
use crate::{
    api::{RoleKind, RoleRef},
    decide::policy::selector_matches,
};

/// The effective rules of the role a binding in `namespace` (None: a
/// ClusterRoleBinding) grants, or `None` when the role does not exist. Duplicate
/// rules appear once, in a stable order.
pub fn effective_rules(inv: &Inventory, role: &RoleRef, namespace: Option<&str>) -> Option<Vec<PolicyRule>> {
    let mut rules = Vec::new();
    match role.kind {
        RoleKind::Role => rules.extend(inv.role(namespace?, &role.name)?.rules.iter().cloned()),
        RoleKind::ClusterRole => {
            inv.cluster_role(&role.name)?;
            let mut seen = BTreeSet::new();
            collect(inv, &role.name, &mut seen, &mut rules);
        }
    }
    Some(dedup(rules))
}

fn collect(inv: &Inventory, name: &str, seen: &mut BTreeSet<String>, out: &mut Vec<PolicyRule>) {
    // A selector can match the aggregating role itself or form a cycle.
    if !seen.insert(name.to_string()) {
        return;
    }
    let Some(role) = inv.cluster_role(name) else {
        return;
    };
    out.extend(role.rules.iter().cloned());
    if role.aggregation.is_empty() {
        return;
    }
    let selected: Vec<String> = inv
        .cluster_roles()
        .filter(|(_, other)| {
            role.aggregation
                .iter()
                .any(|sel| selector_matches(sel, &other.labels))
        })
        .map(|(n, _)| n.clone())
        .collect();
    for other in selected {
        collect(inv, &other, seen, out);
    }
}

fn canonical(rule: &PolicyRule) -> String {
    let sorted = |v: &Option<Vec<String>>| {
        let mut v = v.clone().unwrap_or_default();
        v.sort();
        v.join(",")
    };
    let mut verbs = rule.verbs.clone();
    verbs.sort();
    format!(
        "groups={};resources={};names={};urls={};verbs={}",
        sorted(&rule.api_groups),
        sorted(&rule.resources),
        sorted(&rule.resource_names),
        sorted(&rule.non_resource_urls),
        verbs.join(",")
    )
}

fn dedup(rules: Vec<PolicyRule>) -> Vec<PolicyRule> {
    let mut seen = BTreeSet::new();
    let mut out: Vec<(String, PolicyRule)> = rules
        .into_iter()
        .filter_map(|r| {
            let key = canonical(&r);
            seen.insert(key.clone()).then_some((key, r))
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, r)| r).collect()
}

/// A digest of effective rules: equal for the same set of rules in any order.
pub fn digest(rules: &[PolicyRule]) -> String {
    let mut lines: Vec<String> = rules.iter().map(canonical).collect();
    lines.sort();
    format!("fnv64:{:016x}", fnv1a(&lines.join("\n")))
}
