//! The cluster's standing access as plain data: bindings, roles, namespaces and
//! ServiceAccounts, converted once from the Kubernetes objects. Whether a kind was
//! observed at all is kept, so that a partial export (no ServiceAccounts in it)
//! never makes every ServiceAccount look missing.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        core::v1::{Namespace, ServiceAccount},
        rbac::v1::{
            ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef as K8sRoleRef,
            Subject as K8sSubject,
        },
    },
    apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta},
};

use crate::{
    api::{ApprovalRequest, BindingKind, RoleKind, RoleRef, Subject, SubjectKind},
    decide::to_chrono,
    labels::{MANAGED_BY, REQUEST_NAMESPACE, REQUEST_UID},
};

/// A RoleBinding or ClusterRoleBinding.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BindingFacts {
    /// RoleBinding or ClusterRoleBinding.
    pub kind: BindingKind,
    /// Namespace of a RoleBinding.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// uid.
    pub uid: String,
    /// resourceVersion, the precondition of a remediation write.
    pub resource_version: Option<String>,
    /// When it was created.
    pub created: Option<DateTime<Utc>>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    pub annotations: BTreeMap<String, String>,
    /// The role it grants.
    pub role: RoleRef,
    /// Its subjects (ServiceAccounts with their namespace filled in, and a
    /// ServiceAccount's user name read as that ServiceAccount), in order;
    /// subjects of unknown kinds are left out.
    pub subjects: Vec<Subject>,
    /// Its owner references: `(kind, uid)`.
    pub owners: Vec<(String, String)>,
}

impl BindingFacts {
    /// `RoleBinding ns/name` or `ClusterRoleBinding name`.
    pub fn describe(&self) -> String {
        crate::api::describe_binding(self.kind, self.namespace.as_deref(), &self.name)
    }
}

/// A Role or ClusterRole.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RoleFacts {
    /// Labels (aggregation selects ClusterRoles by label).
    pub labels: BTreeMap<String, String>,
    /// The role's own rules.
    pub rules: Vec<PolicyRule>,
    /// ClusterRoles only: the aggregation selectors.
    pub aggregation: Vec<LabelSelector>,
}

/// A Namespace.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NamespaceFacts {
    /// Labels (campaign scopes select namespaces by label).
    pub labels: BTreeMap<String, String>,
    /// Annotations (`gatehouse.dev/owners`).
    pub annotations: BTreeMap<String, String>,
    /// Being deleted (`deletionTimestamp` set, or phase Terminating).
    pub terminating: bool,
}

/// What one evaluation knows of the cluster.
#[derive(Debug, Clone, Default)]
pub struct Inventory {
    /// Bindings, in the order given.
    pub bindings: Vec<BindingFacts>,
    cluster_roles: BTreeMap<String, RoleFacts>,
    roles: BTreeMap<(String, String), RoleFacts>,
    namespaces: BTreeMap<String, NamespaceFacts>,
    service_accounts: BTreeSet<(String, String)>,
    /// ApprovalRequests by `(namespace, uid)`.
    requests: BTreeSet<(String, String)>,
    observed: BTreeSet<Observed>,
    /// Usage evidence from audit events, when there is any.
    pub usage: Option<std::sync::Arc<super::usage::UsageIndex>>,
}

/// Kinds of object an inventory may have observed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Observed {
    /// ClusterRoles.
    ClusterRoles,
    /// Roles.
    Roles,
    /// Namespaces.
    Namespaces,
    /// ServiceAccounts.
    ServiceAccounts,
}

fn map(m: &Option<BTreeMap<String, String>>) -> BTreeMap<String, String> {
    m.clone().unwrap_or_default()
}

fn created(meta: &ObjectMeta) -> Option<DateTime<Utc>> {
    meta.creation_timestamp.as_ref().and_then(to_chrono)
}

/// The ServiceAccount whose user name this is (`system:serviceaccount:NS:NAME`,
/// as the API server's ServiceAccount authenticator splits it).
fn service_account_user(name: &str) -> Option<(&str, &str)> {
    let (ns, sa) = name.strip_prefix("system:serviceaccount:")?.split_once(':')?;
    let part = |p: &str| {
        !p.is_empty()
            && p.len() <= 253
            && p.bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.')
    };
    (part(ns) && part(sa)).then_some((ns, sa))
}

/// A subject as the core works with it; `None` for kinds RBAC does not know. A
/// `User` named like a ServiceAccount is that ServiceAccount: the same identity,
/// reviewed (and excluded) as such.
pub fn subject(s: &K8sSubject, binding_namespace: Option<&str>) -> Option<Subject> {
    if s.kind == "User" {
        if let Some((ns, name)) = service_account_user(&s.name) {
            return Some(Subject {
                kind: SubjectKind::ServiceAccount,
                name: name.to_string(),
                namespace: Some(ns.to_string()),
            });
        }
    }
    let kind = match s.kind.as_str() {
        "User" => SubjectKind::User,
        "Group" => SubjectKind::Group,
        "ServiceAccount" => SubjectKind::ServiceAccount,
        _ => return None,
    };
    let namespace = match kind {
        SubjectKind::ServiceAccount => s
            .namespace
            .clone()
            .or_else(|| binding_namespace.map(str::to_string)),
        _ => None,
    };
    Some(Subject {
        kind,
        name: s.name.clone(),
        namespace,
    })
}

fn role_ref(kind: &str, name: &str) -> RoleRef {
    RoleRef {
        kind: if kind == "Role" {
            RoleKind::Role
        } else {
            RoleKind::ClusterRole
        },
        name: name.to_string(),
    }
}

impl Inventory {
    /// An inventory that has observed the given kinds (possibly none of each).
    pub fn observing(kinds: &[Observed]) -> Self {
        Inventory {
            observed: kinds.iter().copied().collect(),
            ..Default::default()
        }
    }

    /// Whether the inventory saw objects of this kind at all.
    pub fn has_observed(&self, kind: Observed) -> bool {
        self.observed.contains(&kind)
    }

    fn add_binding(
        &mut self,
        kind: BindingKind,
        meta: &ObjectMeta,
        role: &K8sRoleRef,
        subjects: &Option<Vec<K8sSubject>>,
    ) {
        let ns = meta
            .namespace
            .clone()
            .filter(|_| kind == BindingKind::RoleBinding);
        self.bindings.push(BindingFacts {
            kind,
            namespace: ns.clone(),
            name: meta.name.clone().unwrap_or_default(),
            uid: meta.uid.clone().unwrap_or_default(),
            resource_version: meta.resource_version.clone(),
            created: created(meta),
            labels: map(&meta.labels),
            annotations: map(&meta.annotations),
            role: role_ref(&role.kind, &role.name),
            subjects: subjects
                .iter()
                .flatten()
                .filter_map(|s| subject(s, ns.as_deref()))
                .collect(),
            owners: meta
                .owner_references
                .iter()
                .flatten()
                .map(|o| (o.kind.clone(), o.uid.clone()))
                .collect(),
        });
    }

    /// Adds a RoleBinding.
    pub fn add_role_binding(&mut self, b: &RoleBinding) {
        self.add_binding(BindingKind::RoleBinding, &b.metadata, &b.role_ref, &b.subjects);
    }

    /// Adds a ClusterRoleBinding.
    pub fn add_cluster_role_binding(&mut self, b: &ClusterRoleBinding) {
        self.add_binding(
            BindingKind::ClusterRoleBinding,
            &b.metadata,
            &b.role_ref,
            &b.subjects,
        );
    }

    /// Adds a Role.
    pub fn add_role(&mut self, r: &Role) {
        self.observed.insert(Observed::Roles);
        let key = (
            r.metadata.namespace.clone().unwrap_or_default(),
            r.metadata.name.clone().unwrap_or_default(),
        );
        self.roles.insert(
            key,
            RoleFacts {
                labels: map(&r.metadata.labels),
                rules: r.rules.clone().unwrap_or_default(),
                aggregation: Vec::new(),
            },
        );
    }

    /// Adds a ClusterRole.
    pub fn add_cluster_role(&mut self, r: &ClusterRole) {
        self.observed.insert(Observed::ClusterRoles);
        self.cluster_roles.insert(
            r.metadata.name.clone().unwrap_or_default(),
            RoleFacts {
                labels: map(&r.metadata.labels),
                rules: r.rules.clone().unwrap_or_default(),
                aggregation: r
                    .aggregation_rule
                    .as_ref()
                    .and_then(|a| a.cluster_role_selectors.clone())
                    .unwrap_or_default(),
            },
        );
    }

    /// Adds a Namespace.
    pub fn add_namespace(&mut self, n: &Namespace) {
        self.observed.insert(Observed::Namespaces);
        let terminating = n.metadata.deletion_timestamp.is_some()
            || n.status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .is_some_and(|p| p == "Terminating");
        self.namespaces.insert(
            n.metadata.name.clone().unwrap_or_default(),
            NamespaceFacts {
                labels: map(&n.metadata.labels),
                annotations: map(&n.metadata.annotations),
                terminating,
            },
        );
    }

    /// Adds a ServiceAccount.
    pub fn add_service_account(&mut self, sa: &ServiceAccount) {
        self.observed.insert(Observed::ServiceAccounts);
        self.service_accounts.insert((
            sa.metadata.namespace.clone().unwrap_or_default(),
            sa.metadata.name.clone().unwrap_or_default(),
        ));
    }

    /// Adds an ApprovalRequest (only its namespace and uid matter here).
    pub fn add_request(&mut self, r: &ApprovalRequest) {
        if let (Some(ns), Some(uid)) = (&r.metadata.namespace, &r.metadata.uid) {
            self.requests.insert((ns.clone(), uid.clone()));
        }
    }

    /// Whether the binding is a grant Gatehouse made for a request that exists:
    /// labelled as one, and a RoleBinding owned by that request (by uid), or a
    /// ClusterRoleBinding (which only cluster admins and the operator can write,
    /// and which cannot have a namespaced owner) whose labels name it by
    /// namespace and uid. Labels alone, which a tenant can copy, are not enough.
    pub fn is_gatehouse_grant(&self, b: &BindingFacts) -> bool {
        if b.labels.get(MANAGED_BY.0).map(String::as_str) != Some(MANAGED_BY.1) {
            return false;
        }
        let exists = |ns: &str, uid: &str| self.requests.contains(&(ns.to_string(), uid.to_string()));
        match (b.kind, &b.namespace) {
            (BindingKind::RoleBinding, Some(ns)) => b
                .owners
                .iter()
                .any(|(kind, uid)| kind == "ApprovalRequest" && exists(ns, uid)),
            (BindingKind::ClusterRoleBinding, _) => {
                match (b.labels.get(REQUEST_NAMESPACE), b.labels.get(REQUEST_UID)) {
                    (Some(ns), Some(uid)) => exists(ns, uid),
                    _ => false,
                }
            }
            (BindingKind::RoleBinding, None) => false,
        }
    }

    /// A ClusterRole by name.
    pub fn cluster_role(&self, name: &str) -> Option<&RoleFacts> {
        self.cluster_roles.get(name)
    }

    /// Every ClusterRole, by name.
    pub fn cluster_roles(&self) -> impl Iterator<Item = (&String, &RoleFacts)> {
        self.cluster_roles.iter()
    }

    /// A Role by namespace and name.
    pub fn role(&self, namespace: &str, name: &str) -> Option<&RoleFacts> {
        self.roles.get(&(namespace.to_string(), name.to_string()))
    }

    /// A Namespace by name.
    pub fn namespace(&self, name: &str) -> Option<&NamespaceFacts> {
        self.namespaces.get(name)
    }

    /// Whether the ServiceAccount exists.
    pub fn has_service_account(&self, namespace: &str, name: &str) -> bool {
        self.service_accounts
            .contains(&(namespace.to_string(), name.to_string()))
    }

    /// The binding of this kind, namespace and name, if it exists (whatever its uid).
    pub fn binding(&self, kind: BindingKind, namespace: Option<&str>, name: &str) -> Option<&BindingFacts> {
        self.bindings
            .iter()
            .find(|b| b.kind == kind && b.namespace.as_deref() == namespace && b.name == name)
    }
}
