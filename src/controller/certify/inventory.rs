//! The core's view of the cluster ([`Inventory`]): all of it, read from the API
//! server at once, for the launch of a run (a binding written just before the
//! run started is in it, however far the watches lag); and, from memory, only
//! what one item looks at for its reconcile, so that evaluating an item costs
//! the same in a cluster of any size.

use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::{runtime::reflector::ObjectRef, Client};

use crate::{
    api::{AccessCertification, ApprovalRequest, BindingKind, RoleKind, SubjectKind},
    certify::{inventory::Observed, Inventory},
    controller::watch::{read_now, WatchError},
    decide::policy::selector_matches,
    store::Cache,
};

const ALL: [Observed; 4] = [
    Observed::ClusterRoles,
    Observed::Roles,
    Observed::Namespaces,
    Observed::ServiceAccounts,
];

/// Every binding, role, namespace, ServiceAccount and request as the API
/// server held them when read ([`read`]).
pub struct Snapshot {
    role_bindings: Vec<RoleBinding>,
    cluster_role_bindings: Vec<ClusterRoleBinding>,
    roles: Vec<Role>,
    cluster_roles: Vec<ClusterRole>,
    namespaces: Vec<Namespace>,
    accounts: Vec<ServiceAccount>,
    requests: Vec<ApprovalRequest>,
}

/// Reads the whole cluster the core looks at: consistent reads, paged and
/// trimmed as memory trims ([`read_now`]). A launch happens once per run, so
/// these few lists cost little next to the watches; memory would be exact only
/// once its watches caught up with what was written before the run started,
/// and nothing tells a lagging watch apart from a cluster where nothing changed.
pub async fn read(client: &Client) -> Result<Snapshot, WatchError> {
    let (role_bindings, cluster_role_bindings, roles, cluster_roles, namespaces, accounts, requests) = tokio::try_join!(
        read_now::<RoleBinding>(client),
        read_now::<ClusterRoleBinding>(client),
        read_now::<Role>(client),
        read_now::<ClusterRole>(client),
        read_now::<Namespace>(client),
        read_now::<ServiceAccount>(client),
        read_now::<ApprovalRequest>(client),
    )?;
    Ok(Snapshot {
        role_bindings,
        cluster_role_bindings,
        roles,
        cluster_roles,
        namespaces,
        accounts,
        requests,
    })
}

impl Snapshot {
    /// The core's view of it (thousands of objects take a while: off the async
    /// workers).
    pub fn inventory(&self) -> Inventory {
        let mut inv = Inventory::observing(&ALL);
        for b in &self.role_bindings {
            inv.add_role_binding(b);
        }
        for b in &self.cluster_role_bindings {
            inv.add_cluster_role_binding(b);
        }
        for r in &self.roles {
            inv.add_role(r);
        }
        for r in &self.cluster_roles {
            inv.add_cluster_role(r);
        }
        for n in &self.namespaces {
            inv.add_namespace(n);
        }
        for sa in &self.accounts {
            inv.add_service_account(sa);
        }
        for r in &self.requests {
            inv.add_request(r);
        }
        inv
    }
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
