//! Least-privilege RBAC for the operator and its users: what `gatehouse rbac`
//! prints and `config/rbac/` holds.
//!
//! The operator can grant exactly the roles listed here, because RBAC lets it
//! create a binding to a role only if it holds the role's permissions itself or
//! the `bind` verb on that role. It gets `bind` by name and nothing broader: no
//! `escalate` (it never edits roles), no `impersonate`, no wildcard. A request for
//! any other role fails at binding time with a clear status, not by widening the
//! operator's own power.
//!
//! Users get ClusterRoles: `gatehouse-requester` and `gatehouse-reviewer` to
//! bind as they see fit, `gatehouse-create-on-behalf` (for GitOps controllers),
//! which counts only through a ClusterRoleBinding (`--on-behalf SUBJECT` prints
//! one), and `gatehouse-notification-tester` (`notify test`, nothing else).
//! None of them reaches a `/status` subresource: only the operator writes status.
//!
//! - [`operator`]: the operator's ServiceAccount, roles and bindings;
//! - [`users`]: the ClusterRoles for people;
//! - [`render`]: both as the YAML of `config/rbac/`.

mod operator;
mod render;
mod users;

use std::{fmt, str::FromStr};

use k8s_openapi::api::rbac::v1::PolicyRule;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use thiserror::Error;

pub use self::{
    operator::{operator_rbac, operator_rules, OperatorRbac},
    render::{
        render_all, render_files, render_notification_testers, render_on_behalf, render_operator,
        render_users, RenderedFile,
    },
    users::{notification_tester_binding, on_behalf_binding, parse_subject, user_roles},
};

/// Name of the operator's ClusterRole and ClusterRoleBinding.
pub const OPERATOR_ROLE: &str = "gatehouse-operator";
/// Name of the operator's Role and RoleBinding for leader election, in its namespace.
pub const LEADER_ELECTION_ROLE: &str = "gatehouse-leader-election";
/// Name of the operator's Role and RoleBinding for notifications (channel Secrets
/// and delivery ledgers), in its namespace.
pub const NOTIFICATIONS_ROLE: &str = "gatehouse-notifications";
/// Name of the operator's Role and RoleBinding for the usage summaries
/// (`BindingUsage`), in their namespace.
pub const USAGE_ROLE: &str = "gatehouse-usage";
/// ClusterRole for people who ask for access.
pub const REQUESTER_ROLE: &str = "gatehouse-requester";
/// ClusterRole for people who decide on requests.
pub const REVIEWER_ROLE: &str = "gatehouse-reviewer";
/// ClusterRole holding the `create-on-behalf` virtual verb (GitOps controllers).
pub const ON_BEHALF_ROLE: &str = "gatehouse-create-on-behalf";
/// ClusterRole of people who may ask for a channel's test message and nothing
/// else (the `test` virtual verb); bound with a ClusterRoleBinding.
pub const NOTIFICATION_TESTER_ROLE: &str = "gatehouse-notification-tester";

const RBAC_GROUP: &str = "rbac.authorization.k8s.io";
/// Verbs on the bindings the operator manages: it creates, watches, repairs
/// (update/patch) and removes them.
const BINDING_VERBS: [&str; 7] = ["create", "get", "list", "watch", "patch", "update", "delete"];
const READ: [&str; 3] = ["get", "list", "watch"];

/// Why RBAC could not be generated.
#[derive(Debug, Error)]
pub enum RbacError {
    /// A grantable role is not a usable role name.
    #[error("grantable role {role:?}: {reason}")]
    InvalidRole {
        /// The role as given.
        role: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// No grantable role: the operator could grant nothing.
    #[error("at least one grantable role is needed (--grantable-role NAME)")]
    NoGrantableRoles,
    /// The namespace is not a DNS-1123 label.
    #[error("namespace {0:?} is not a valid namespace name (lowercase letters, digits and '-', at most 63)")]
    InvalidNamespace(String),
    /// A channel Secret name is not a DNS-1123 subdomain.
    #[error("channel Secret {0:?} is not a valid Secret name (lowercase letters, digits, '-' and '.', at most 253)")]
    InvalidSecretName(String),
    /// The service account name is not a DNS-1123 subdomain.
    #[error(
        "service account {0:?} is not a valid name (lowercase letters, digits, '-' and '.', at most 253)"
    )]
    InvalidServiceAccount(String),
    /// An `--on-behalf` subject is not `User/NAME`, `Group/NAME` or `ServiceAccount/NAMESPACE/NAME`.
    #[error("subject {0:?}: use User/NAME, Group/NAME or ServiceAccount/NAMESPACE/NAME")]
    InvalidSubject(String),
    /// An object could not be serialized.
    #[error("cannot serialize {kind} {name}: {source}")]
    Serialize {
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
        /// Underlying error.
        source: serde_saphyr::ser::Error,
    },
}

/// A role the operator may bind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GrantableRole {
    /// A ClusterRole (granted through RoleBindings, or ClusterRoleBindings with cluster scope).
    ClusterRole(String),
    /// Every namespaced Role with this name, in whichever namespace a request is
    /// granted: RBAC's `bind` on `roles` by name cannot be limited to one namespace
    /// from a ClusterRole. A namespace admin who creates a Role of this name makes
    /// it grantable in their namespace (they can only put into it what they hold).
    Role(String),
}

impl GrantableRole {
    /// The role's name.
    pub fn name(&self) -> &str {
        match self {
            GrantableRole::ClusterRole(n) | GrantableRole::Role(n) => n,
        }
    }
}

impl FromStr for GrantableRole {
    type Err = RbacError;

    /// `NAME` or `ClusterRole/NAME` is a ClusterRole, `Role/NAME` a Role.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (role, name) = match s.split_once('/') {
            Some(("ClusterRole", name)) => (GrantableRole::ClusterRole(name.to_string()), name),
            Some(("Role", name)) => (GrantableRole::Role(name.to_string()), name),
            Some(_) => {
                return Err(RbacError::InvalidRole {
                    role: s.to_string(),
                    reason: "use NAME, ClusterRole/NAME or Role/NAME",
                })
            }
            None => (GrantableRole::ClusterRole(s.to_string()), s),
        };
        let invalid = |reason| RbacError::InvalidRole {
            role: s.to_string(),
            reason,
        };
        // RBAC names are path segments (apimachinery's IsValidPathSegmentName).
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        if name == "*" {
            return Err(invalid("a wildcard would let the operator bind every role"));
        }
        if name == "." || name == ".." || name.contains('/') || name.contains('%') {
            return Err(invalid("not a valid RBAC name (no '/', '%', '.' or '..')"));
        }
        Ok(role)
    }
}

impl fmt::Display for GrantableRole {
    /// The form `--grantable-role` takes: a bare name for a ClusterRole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GrantableRole::ClusterRole(n) => f.write_str(n),
            GrantableRole::Role(n) => write!(f, "Role/{n}"),
        }
    }
}

/// What `gatehouse rbac` generates RBAC for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RbacOptions {
    /// Roles the operator may bind.
    pub grantable_roles: Vec<GrantableRole>,
    /// Whether policies may allow cluster scope (the operator then manages ClusterRoleBindings).
    pub cluster_scope: bool,
    /// Namespace the operator runs in.
    pub namespace: String,
    /// Name of the operator's ServiceAccount.
    pub service_account: String,
    /// The operator removes revoked access found by certification campaigns
    /// (`remediation: Automatic`): it may then also patch and delete
    /// ClusterRoleBindings (RoleBindings it may change already, for grants).
    pub certification_remediation: bool,
    /// The Secrets (in the operator's namespace) that notification channels
    /// use: the only Secrets the operator may read. Empty: none.
    pub channel_secrets: Vec<String>,
    /// Where the persisted usage summaries (`BindingUsage`) live
    /// (`gatehouse run --usage-namespace`); `None`: the operator's namespace.
    pub usage_namespace: Option<String>,
}

impl Default for RbacOptions {
    /// The defaults `config/rbac/` is generated with.
    fn default() -> Self {
        RbacOptions {
            grantable_roles: vec![
                GrantableRole::ClusterRole("view".into()),
                GrantableRole::ClusterRole("edit".into()),
            ],
            cluster_scope: false,
            namespace: "gatehouse-system".into(),
            service_account: "gatehouse".into(),
            certification_remediation: false,
            channel_secrets: Vec::new(),
            usage_namespace: None,
        }
    }
}

impl RbacOptions {
    /// The `gatehouse rbac` command line that reproduces these options.
    pub fn command_line(&self) -> String {
        let mut cmd = String::from("gatehouse rbac");
        for role in &self.grantable_roles {
            cmd.push_str(&format!(" --grantable-role {role}"));
        }
        if self.cluster_scope {
            cmd.push_str(" --cluster-scope");
        }
        if self.certification_remediation {
            cmd.push_str(" --certification-remediation");
        }
        for secret in &self.channel_secrets {
            cmd.push_str(&format!(" --channel-secret {secret}"));
        }
        cmd.push_str(&format!(
            " --namespace {} --service-account {}",
            self.namespace, self.service_account
        ));
        if let Some(ns) = &self.usage_namespace {
            cmd.push_str(&format!(" --usage-namespace {ns}"));
        }
        cmd
    }

    /// The namespace of the usage summaries.
    pub fn usage_namespace(&self) -> &str {
        self.usage_namespace.as_deref().unwrap_or(&self.namespace)
    }

    fn validate(&self) -> Result<(), RbacError> {
        if self.grantable_roles.is_empty() {
            return Err(RbacError::NoGrantableRoles);
        }
        for ns in [Some(&self.namespace), self.usage_namespace.as_ref()]
            .into_iter()
            .flatten()
        {
            if !is_dns_label(ns) {
                return Err(RbacError::InvalidNamespace(ns.clone()));
            }
        }
        if !is_dns_subdomain(&self.service_account) {
            return Err(RbacError::InvalidServiceAccount(self.service_account.clone()));
        }
        if let Some(bad) = self.channel_secrets.iter().find(|s| !is_dns_subdomain(s)) {
            return Err(RbacError::InvalidSecretName(bad.clone()));
        }
        Ok(())
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

fn is_dns_subdomain(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|part| {
            !part.is_empty()
                && part
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !part.starts_with('-')
                && !part.ends_with('-')
        })
}

pub(crate) fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_string()),
        namespace: namespace.map(str::to_string),
        labels: Some(
            [
                ("app.kubernetes.io/name".to_string(), "gatehouse".to_string()),
                ("app.kubernetes.io/component".to_string(), component.to_string()),
            ]
            .into(),
        ),
        ..Default::default()
    }
}

pub(crate) fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grantable_roles_parse_with_or_without_a_kind() {
        assert_eq!(
            "view".parse::<GrantableRole>().unwrap(),
            GrantableRole::ClusterRole("view".into())
        );
        assert_eq!(
            "ClusterRole/system:aggregate-to-view"
                .parse::<GrantableRole>()
                .unwrap(),
            GrantableRole::ClusterRole("system:aggregate-to-view".into())
        );
        assert_eq!(
            "Role/deployer".parse::<GrantableRole>().unwrap(),
            GrantableRole::Role("deployer".into())
        );
        for bad in ["", "*", "Role/*", "ClusterRole/", "..", "Group/x", "a/b/c", "50%"] {
            let err = bad.parse::<GrantableRole>().unwrap_err().to_string();
            assert!(err.starts_with("grantable role"), "{bad}: {err}");
        }
        for role in ["view", "Role/deployer"] {
            assert_eq!(role.parse::<GrantableRole>().unwrap().to_string(), role);
        }
    }

    #[test]
    fn names_are_checked_before_anything_is_generated() {
        let bad_ns = RbacOptions {
            namespace: "Gatehouse".into(),
            ..Default::default()
        };
        assert!(matches!(
            operator_rbac(&bad_ns),
            Err(RbacError::InvalidNamespace(_))
        ));
        let bad_sa = RbacOptions {
            service_account: "gate house".into(),
            ..Default::default()
        };
        assert!(matches!(
            operator_rbac(&bad_sa),
            Err(RbacError::InvalidServiceAccount(_))
        ));
        let none = RbacOptions {
            grantable_roles: vec![],
            ..Default::default()
        };
        assert!(matches!(operator_rbac(&none), Err(RbacError::NoGrantableRoles)));
        let bad_secret = RbacOptions {
            channel_secrets: vec!["".into()],
            ..Default::default()
        };
        assert!(matches!(
            operator_rbac(&bad_secret),
            Err(RbacError::InvalidSecretName(_))
        ));
        assert!(is_dns_subdomain("gatehouse.operator-1"));
        assert!(!is_dns_subdomain("gatehouse..x"));
        assert!(!is_dns_label("-x"));
    }

    #[test]
    fn the_command_line_reproduces_the_options() {
        let opts = RbacOptions {
            grantable_roles: vec![
                GrantableRole::ClusterRole("view".into()),
                GrantableRole::Role("deployer".into()),
            ],
            cluster_scope: true,
            ..Default::default()
        };
        assert_eq!(
            opts.command_line(),
            "gatehouse rbac --grantable-role view --grantable-role Role/deployer --cluster-scope \
             --namespace gatehouse-system --service-account gatehouse"
        );
    }
}
