//! Access the operator never removes by itself, whatever reviewers decide.
//!
//! Removing access is as dangerous as granting it: a revoke of the operator's
//! own binding leaves every live JIT grant in place for good, and a revoke of a
//! bootstrap binding can break the API server's own controllers. Kubernetes runs
//! no escalation check on DELETE, so the operator's RBAC alone does not stop it.
//! These rules rest on facts a tenant cannot forge:
//!
//! - the operator's own identity, learnt from the API server when it starts
//!   (SelfSubjectReview): a subject that *is* the operator is never removed;
//! - bootstrap bindings: cluster-scoped (a tenant cannot create a
//!   ClusterRoleBinding), named `system:*` / `kubeadm:*` or labelled
//!   `kubernetes.io/bootstrapping=rbac-defaults`; a tenant's RoleBinding named
//!   `system:x` is an ordinary binding;
//! - the namespace kube-system (and bootstrap RoleBindings in kube-public);
//! - the role's effective rules: every verb on every resource, or `escalate`,
//!   `bind`, `impersonate`.
//!
//! Protected items are still reviewed and listed; only the removal waits for an
//! admin, who gets the exact command. A campaign may allow removing all but the
//! operator's own access (`removeProtected`); the controller then still checks
//! that it may `bind` the role ([`crate::api::RemediationHold::RoleNotBindable`]).

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::inventory::BindingFacts;
use crate::api::{BindingKind, Protection, RemediationHold, Subject, SubjectKind};

/// Label the API server puts on its default RBAC objects.
pub const BOOTSTRAP_LABEL: (&str, &str) = ("kubernetes.io/bootstrapping", "rbac-defaults");
/// Name prefixes of the API server's and kubeadm's bindings.
pub const BOOTSTRAP_PREFIXES: [&str; 2] = ["system:", "kubeadm:"];

/// Who the operator is, as the API server authenticates it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OperatorIdentity {
    /// User name, e.g. `system:serviceaccount:gatehouse-system:gatehouse`.
    pub username: String,
    /// Groups, e.g. `system:serviceaccounts`, `system:authenticated`.
    pub groups: Vec<String>,
}

impl OperatorIdentity {
    /// The identity the chart, the kustomize base and `gatehouse rbac` install the
    /// operator as by default (what `gatehouse simulate` assumes).
    pub fn default_install() -> Self {
        let (ns, sa) = ("gatehouse-system", "gatehouse");
        OperatorIdentity {
            username: crate::decide::naming::service_account_username(ns, sa),
            groups: vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{ns}"),
                "system:authenticated".into(),
            ],
        }
    }

    /// Whether access given to `subject` is access of the operator.
    pub fn is(&self, subject: &Subject) -> bool {
        // A ServiceAccount subject without a namespace names no account at all.
        let named = subject.kind != SubjectKind::ServiceAccount || subject.namespace.is_some();
        named && crate::decide::naming::is_subject_user(subject, &self.username, &self.groups)
    }
}

/// Why a removal is held, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The typed reason.
    pub hold: RemediationHold,
    /// What makes it protected.
    pub why: String,
}

fn bootstrap_marked(b: &BindingFacts) -> bool {
    BOOTSTRAP_PREFIXES.iter().any(|p| b.name.starts_with(p))
        || b.labels
            .get(BOOTSTRAP_LABEL.0)
            .is_some_and(|v| v == BOOTSTRAP_LABEL.1)
}

/// The protection of the binding itself (kind, name, namespace, labels).
fn binding_protection(b: &BindingFacts) -> Option<(Protection, String)> {
    match (b.kind, b.namespace.as_deref()) {
        (BindingKind::ClusterRoleBinding, _) if bootstrap_marked(b) => Some((
            Protection::BootstrapBinding,
            format!(
                "{} is a bootstrap binding of the API server or kubeadm",
                b.describe()
            ),
        )),
        (BindingKind::RoleBinding, Some("kube-system")) => Some((
            Protection::KubeSystem,
            format!("{} is in kube-system", b.describe()),
        )),
        (BindingKind::RoleBinding, Some("kube-public")) if bootstrap_marked(b) => Some((
            Protection::BootstrapBinding,
            format!("{} is a bootstrap binding in kube-public", b.describe()),
        )),
        _ => None,
    }
}

/// Whether the list names one of `wanted`, or `*`.
fn has(list: &[String], wanted: &[&str]) -> bool {
    list.iter().any(|v| v == "*" || wanted.contains(&v.as_str()))
}

fn of(list: &Option<Vec<String>>) -> &[String] {
    list.as_deref().unwrap_or_default()
}

/// The protection the role's rules give, with the rule in words.
fn rules_protection(b: &BindingFacts, rules: &[PolicyRule]) -> Option<(Protection, String)> {
    let star = |list: &[String]| list.iter().any(|v| v == "*");
    if let Some(r) = rules.iter().find(|r| star(&r.verbs) && star(of(&r.resources))) {
        return Some((
            Protection::ClusterAdminEquivalent,
            format!(
                "{} grants every verb on every resource ({})",
                b.role,
                super::risk::describe_rule(r)
            ),
        ));
    }
    let rbac = |r: &PolicyRule| has(of(&r.api_groups), &["rbac.authorization.k8s.io"]);
    let identity_groups = |r: &PolicyRule| has(of(&r.api_groups), &["", "authentication.k8s.io"]);
    // Impersonating ServiceAccounts of one namespace adds nothing to a role bound
    // there (`edit` and `admin` grant it); across the cluster it is any
    // controller's power.
    let mut people = vec!["users", "groups", "uids", "userextras"];
    if b.kind == BindingKind::ClusterRoleBinding {
        people.push("serviceaccounts");
    }
    let found = rules.iter().find(|r| {
        (rbac(r) && has(of(&r.resources), &["roles", "clusterroles"]) && has(&r.verbs, &["escalate", "bind"]))
            || (identity_groups(r) && has(of(&r.resources), &people) && has(&r.verbs, &["impersonate"]))
    })?;
    Some((
        Protection::PrivilegeEscalation,
        format!(
            "{} grants escalate, bind or impersonate ({})",
            b.role,
            super::risk::describe_rule(found)
        ),
    ))
}

/// Why the operator must not remove `subject`'s access through `b` itself, if
/// it must not: the first protection that applies and that the campaign did
/// not allow (`allowed`). `rules` are the role's effective rules (`None`:
/// unknown); `operator` is who the operator is (`None`: not known here, as in
/// a `simulate` without it).
pub fn protection(
    b: &BindingFacts,
    subject: &Subject,
    rules: Option<&[PolicyRule]>,
    operator: Option<&OperatorIdentity>,
    allowed: &[Protection],
) -> Option<Held> {
    if operator.is_some_and(|o| o.is(subject)) {
        return Some(Held {
            hold: RemediationHold::OperatorIdentity,
            why: format!("{subject} is the operator's own identity"),
        });
    }
    let found = [binding_protection(b), rules.and_then(|r| rules_protection(b, r))];
    found
        .into_iter()
        .flatten()
        .find(|(p, _)| !allowed.contains(p))
        .map(|(p, why)| Held { hold: p.into(), why })
}
