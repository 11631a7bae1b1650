//! The core's view of the cluster ([`Inventory`]), built from memory: all of it
//! for the launch of a run, and only what one item looks at for its reconcile,
//! so that evaluating an item costs the same in a cluster of any size.

use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::runtime::reflector::ObjectRef;

use crate::{
    api::{AccessCertification, BindingKind, RoleKind, SubjectKind},
    certify::{inventory::Observed, Inventory},
    decide::policy::selector_matches,
    store::Cache,
};

const ALL: [Observed; 4] = [
    Observed::ClusterRoles,
    Observed::Roles,
    Observed::Namespaces,
    Observed::ServiceAccounts,
];

/// Every binding, role, namespace, ServiceAccount and request in memory.
pub fn whole(cache: &Cache) -> Inventory {
    let mut inv = Inventory::observing(&ALL);
    for b in cache.role_bindings.state() {
        inv.add_role_binding(&b);
    }
    for b in cache.cluster_role_bindings.state() {
        inv.add_cluster_role_binding(&b);
    }
    for r in cache.roles.state() {
        inv.add_role(&r);
    }
    for r in cache.cluster_roles.state() {
        inv.add_cluster_role(&r);
    }
    for n in cache.namespaces.state() {
        inv.add_namespace(&n);
    }
    for sa in cache.service_accounts.state() {
        inv.add_service_account(&sa);
    }
    for r in cache.requests.state() {
        inv.add_request(&r);
    }
    inv
}

/// The RoleBinding `namespace/name` in memory.
pub fn role_binding(cache: &Cache, namespace: &str, name: &str) -> Option<std::sync::Arc<RoleBinding>> {
    cache.role_bindings.get(&ObjectRef::new(name).within(namespace))
}

/// The ClusterRoleBinding `name` in memory.
pub fn cluster_role_binding(cache: &Cache, name: &str) -> Option<std::sync::Arc<ClusterRoleBinding>> {
    cache.cluster_role_bindings.get(&ObjectRef::new(name))
}

/// Adds the ClusterRole and, when it aggregates others, those its selectors
/// match, recursively (cycles and repeats are skipped): the rules the
/// aggregation controller fills in, and nothing more.
fn add_aggregated(cache: &Cache, inv: &mut Inventory, role: &ClusterRole) {
    let mut pending = vec![role.clone()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(r) = pending.pop() {
        let name = r.metadata.name.clone().unwrap_or_default();
        if !seen.insert(name) {
            continue;
        }
        inv.add_cluster_role(&r);
        let selectors = r
            .aggregation_rule
            .as_ref()
            .and_then(|a| a.cluster_role_selectors.clone())
            .unwrap_or_default();
        if selectors.is_empty() {
            continue;
        }
        let none = std::collections::BTreeMap::new();
        for other in cache.cluster_roles.state() {
            let labels = other.metadata.labels.as_ref().unwrap_or(&none);
            if selectors.iter().any(|s| selector_matches(s, labels)) {
                pending.push((*other).clone());
            }
        }
    }
}

/// What evaluating `item` looks at: its binding (by name, whatever its uid), the
/// role it grants (and the ClusterRoles it aggregates), the
/// namespaces of the binding and of a ServiceAccount subject, and that
/// ServiceAccount. Every kind counts as observed: memory holds all of each.
pub fn for_item(cache: &Cache, item: &AccessCertification) -> Inventory {
    let mut inv = Inventory::observing(&ALL);
    let spec = &item.spec;
    let b = &spec.binding;
    match (b.kind, &b.namespace) {
        (BindingKind::RoleBinding, Some(ns)) => {
            if let Some(rb) = role_binding(cache, ns, &b.name) {
                inv.add_role_binding(&rb);
            }
        }
        (BindingKind::ClusterRoleBinding, _) => {
            if let Some(crb) = cluster_role_binding(cache, &b.name) {
                inv.add_cluster_role_binding(&crb);
            }
        }
        (BindingKind::RoleBinding, None) => {}
    }
    match (spec.role_ref.kind, &b.namespace) {
        (RoleKind::Role, Some(ns)) => {
            let found: Option<std::sync::Arc<Role>> =
                cache.roles.get(&ObjectRef::new(&spec.role_ref.name).within(ns));
            if let Some(r) = found {
                inv.add_role(&r);
            }
        }
        (RoleKind::Role, None) => {}
        (RoleKind::ClusterRole, _) => {
            let found: Option<std::sync::Arc<ClusterRole>> =
                cache.cluster_roles.get(&ObjectRef::new(&spec.role_ref.name));
            if let Some(r) = found {
                add_aggregated(cache, &mut inv, &r);
            }
        }
    }
    let mut namespaces: Vec<&str> = b.namespace.iter().map(String::as_str).collect();
    if let (SubjectKind::ServiceAccount, Some(ns)) = (spec.subject.kind, &spec.subject.namespace) {
        namespaces.push(ns);
        let found: Option<std::sync::Arc<ServiceAccount>> = cache
            .service_accounts
            .get(&ObjectRef::new(&spec.subject.name).within(ns));
        if let Some(sa) = found {
            inv.add_service_account(&sa);
        }
    }
    for ns in namespaces {
        let found: Option<std::sync::Arc<Namespace>> = cache.namespaces.get(&ObjectRef::new(ns));
        if let Some(n) = found {
            inv.add_namespace(&n);
        }
    }
    inv
}
