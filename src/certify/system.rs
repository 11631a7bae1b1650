//! What a campaign leaves out as the API server's own (`scope.includeSystem:
//! false`): a fixed list of Kubernetes' control-plane identities, and the
//! bootstrap bindings the API server creates (and re-creates on every start)
//! with exactly their default subjects.
//!
//! Never a name prefix: RBAC lets a tenant name her RoleBinding
//! `system:teamx-ops`, or bind a `User` called `system:serviceaccount:...`, and
//! access written that way is reviewed like any other. A bootstrap binding
//! counts as one only where a tenant cannot write (cluster scope, or
//! `kube-system`/`kube-public`), with its own role, and only for its own
//! subjects: a person added to it is reviewed. The lists come from Kubernetes'
//! bootstrap policy (plugin/pkg/auth/authorizer/rbac/bootstrappolicy);
//! docs/certification.md prints them.

use super::inventory::BindingFacts;
use crate::api::{BindingKind, RoleKind, Subject, SubjectKind};

/// Users the control plane's own components authenticate as.
pub const SYSTEM_USERS: [&str; 4] = [
    "system:apiserver",
    "system:kube-controller-manager",
    "system:kube-scheduler",
    "system:kube-proxy",
];

/// Groups that are the control plane's own: the break-glass admins, the
/// kubelets, bootstrap tokens, the API server's metrics scrapers.
pub const SYSTEM_GROUPS: [&str; 4] = [
    "system:masters",
    "system:nodes",
    "system:bootstrappers",
    "system:monitoring",
];

const AUTHENTICATED: &str = "system:authenticated";
const UNAUTHENTICATED: &str = "system:unauthenticated";

/// A default subject of a bootstrap binding.
enum Member {
    User(&'static str),
    Group(&'static str),
    /// A ServiceAccount in `kube-system`.
    KubeSystem(&'static str),
}

/// The API server's ClusterRoleBindings: name (= the ClusterRole's name) and
/// default subjects. `system:controller:NAME` bindings follow a rule of their
/// own ([`controller_binding`]).
const CLUSTER_BINDINGS: [(&str, &[Member]); 12] = [
    ("cluster-admin", &[Member::Group("system:masters")]),
    ("system:monitoring", &[Member::Group("system:monitoring")]),
    (
        "system:discovery",
        &[Member::Group(AUTHENTICATED), Member::Group(UNAUTHENTICATED)],
    ),
    (
        "system:basic-user",
        &[Member::Group(AUTHENTICATED), Member::Group(UNAUTHENTICATED)],
    ),
    (
        "system:public-info-viewer",
        &[Member::Group(AUTHENTICATED), Member::Group(UNAUTHENTICATED)],
    ),
    ("system:node-proxier", &[Member::User("system:kube-proxy")]),
    (
        "system:kube-controller-manager",
        &[Member::User("system:kube-controller-manager")],
    ),
    ("system:kube-dns", &[Member::KubeSystem("kube-dns")]),
    ("system:kube-scheduler", &[Member::User("system:kube-scheduler")]),
    (
        "system:volume-scheduler",
        &[Member::User("system:kube-scheduler")],
    ),
    ("system:node", &[Member::Group("system:nodes")]),
    (
        "system:service-account-issuer-discovery",
        &[Member::Group("system:serviceaccounts")],
    ),
];

/// The API server's RoleBindings: namespace, name, Role, default subjects.
const NAMESPACED_BINDINGS: [(&str, &str, &str, &[Member]); 7] = [
    (
        "kube-system",
        "system::extension-apiserver-authentication-reader",
        "extension-apiserver-authentication-reader",
        &[
            Member::User("system:kube-controller-manager"),
            Member::User("system:kube-scheduler"),
        ],
    ),
    (
        "kube-system",
        "system::leader-locking-kube-controller-manager",
        "system::leader-locking-kube-controller-manager",
        &[
            Member::User("system:kube-controller-manager"),
            Member::KubeSystem("kube-controller-manager"),
            Member::KubeSystem("leader-election-controller"),
        ],
    ),
    (
        "kube-system",
        "system::leader-locking-kube-scheduler",
        "system::leader-locking-kube-scheduler",
        &[
            Member::User("system:kube-scheduler"),
            Member::KubeSystem("kube-scheduler"),
        ],
    ),
    (
        "kube-system",
        "system:controller:bootstrap-signer",
        "system:controller:bootstrap-signer",
        &[Member::KubeSystem("bootstrap-signer")],
    ),
    (
        "kube-public",
        "system:controller:bootstrap-signer",
        "system:controller:bootstrap-signer",
        &[Member::KubeSystem("bootstrap-signer")],
    ),
    (
        "kube-system",
        "system:controller:cloud-provider",
        "system:controller:cloud-provider",
        &[Member::KubeSystem("cloud-provider")],
    ),
    (
        "kube-system",
        "system:controller:token-cleaner",
        "system:controller:token-cleaner",
        &[Member::KubeSystem("token-cleaner")],
    ),
];

fn is(member: &Member, s: &Subject) -> bool {
    match (member, s.kind) {
        (Member::User(n), SubjectKind::User) | (Member::Group(n), SubjectKind::Group) => s.name == *n,
        (Member::KubeSystem(n), SubjectKind::ServiceAccount) => {
            s.name == *n && s.namespace.as_deref() == Some("kube-system")
        }
        _ => false,
    }
}

/// Whether the subject is one of the control plane's own identities.
pub fn is_system_identity(s: &Subject) -> bool {
    match s.kind {
        SubjectKind::User => SYSTEM_USERS.contains(&s.name.as_str()),
        SubjectKind::Group => SYSTEM_GROUPS.contains(&s.name.as_str()),
        SubjectKind::ServiceAccount => false,
    }
}

/// `system:controller:NAME` granting ClusterRole `system:controller:NAME` to
/// the ServiceAccount `kube-system/NAME`: the bindings of the
/// kube-controller-manager's controllers.
fn controller_binding(b: &BindingFacts, s: &Subject) -> bool {
    let Some(controller) = b.name.strip_prefix("system:controller:") else {
        return false;
    };
    b.role.kind == RoleKind::ClusterRole
        && b.role.name == b.name
        && s.kind == SubjectKind::ServiceAccount
        && s.name == controller
        && s.namespace.as_deref() == Some("kube-system")
}

/// Whether `s` is a default subject of `b`, and `b` one of the API server's
/// bootstrap bindings (by kind, place, name and role).
pub fn is_bootstrap_access(b: &BindingFacts, s: &Subject) -> bool {
    match (b.kind, b.namespace.as_deref()) {
        (BindingKind::ClusterRoleBinding, _) => {
            controller_binding(b, s)
                || CLUSTER_BINDINGS.iter().any(|(name, defaults)| {
                    b.name == *name
                        && b.role.kind == RoleKind::ClusterRole
                        && b.role.name == *name
                        && defaults.iter().any(|d| is(d, s))
                })
        }
        (BindingKind::RoleBinding, Some(ns)) => {
            NAMESPACED_BINDINGS.iter().any(|(n, name, role, defaults)| {
                ns == *n
                    && b.name == *name
                    && b.role.kind == RoleKind::Role
                    && b.role.name == *role
                    && defaults.iter().any(|d| is(d, s))
            })
        }
        (BindingKind::RoleBinding, None) => false,
    }
}
