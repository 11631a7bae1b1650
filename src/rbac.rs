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
//! Users get three ClusterRoles to bind as they see fit: `gatehouse-requester`,
//! `gatehouse-reviewer` and `gatehouse-create-on-behalf` (for GitOps controllers).
//! None of them reaches a `/status` subresource: only the operator writes status.

use std::{fmt, str::FromStr};

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject},
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;
use thiserror::Error;

use crate::admission::{CREATE_ON_BEHALF, ISSUE_ITEMS, WRITE_STATUS};
use crate::api::GROUP;

/// Name of the operator's ClusterRole and ClusterRoleBinding.
pub const OPERATOR_ROLE: &str = "gatehouse-operator";
/// Name of the operator's Role and RoleBinding for leader election, in its namespace.
pub const LEADER_ELECTION_ROLE: &str = "gatehouse-leader-election";
/// Name of the operator's Role and RoleBinding for notifications (channel Secrets
/// and delivery ledgers), in its namespace.
pub const NOTIFICATIONS_ROLE: &str = "gatehouse-notifications";
/// ClusterRole for people who ask for access.
pub const REQUESTER_ROLE: &str = "gatehouse-requester";
/// ClusterRole for people who decide on requests.
pub const REVIEWER_ROLE: &str = "gatehouse-reviewer";
/// ClusterRole holding the `create-on-behalf` virtual verb (GitOps controllers).
pub const ON_BEHALF_ROLE: &str = "gatehouse-create-on-behalf";

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
    /// The service account name is not a DNS-1123 subdomain.
    #[error(
        "service account {0:?} is not a valid name (lowercase letters, digits, '-' and '.', at most 253)"
    )]
    InvalidServiceAccount(String),
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
        cmd.push_str(&format!(
            " --namespace {} --service-account {}",
            self.namespace, self.service_account
        ));
        cmd
    }

    fn validate(&self) -> Result<(), RbacError> {
        if self.grantable_roles.is_empty() {
            return Err(RbacError::NoGrantableRoles);
        }
        if !is_dns_label(&self.namespace) {
            return Err(RbacError::InvalidNamespace(self.namespace.clone()));
        }
        if !is_dns_subdomain(&self.service_account) {
            return Err(RbacError::InvalidServiceAccount(self.service_account.clone()));
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

/// The operator's identity and permissions.
#[derive(Clone, Debug, PartialEq)]
pub struct OperatorRbac {
    /// The ServiceAccount the operator runs as.
    pub service_account: ServiceAccount,
    /// Cluster-wide permissions (`gatehouse-operator`).
    pub cluster_role: ClusterRole,
    /// Binds the ClusterRole to the ServiceAccount.
    pub cluster_role_binding: ClusterRoleBinding,
    /// Leader-election Leases, in the operator's namespace only.
    pub leader_election_role: Role,
    /// Binds the leader-election Role to the ServiceAccount.
    pub leader_election_binding: RoleBinding,
    /// Notification channels' Secrets (read) and delivery ledgers (ConfigMaps),
    /// in the operator's namespace only.
    pub notifications_role: Role,
    /// Binds the notifications Role to the ServiceAccount.
    pub notifications_binding: RoleBinding,
}

fn meta(name: &str, namespace: Option<&str>, component: &str) -> ObjectMeta {
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

fn rule(group: &str, resources: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.to_string()]),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..Default::default()
    }
}

fn bind_rule(resource: &str, names: Vec<String>) -> PolicyRule {
    PolicyRule {
        resource_names: Some(names),
        ..rule(RBAC_GROUP, &[resource], &["bind"])
    }
}

/// Names of the grantable roles of one kind, first occurrence kept.
fn names_of(roles: &[GrantableRole], cluster: bool) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    for role in roles {
        let wanted = matches!(role, GrantableRole::ClusterRole(_)) == cluster;
        if wanted && !names.iter().any(|n| n == role.name()) {
            names.push(role.name().to_string());
        }
    }
    names
}

/// The rules of the operator's ClusterRole.
pub fn operator_rules(opts: &RbacOptions) -> Vec<PolicyRule> {
    let mut rules = Vec::new();
    // `bind` by name: the only way the operator may hand out a role it does not hold.
    let cluster_roles = names_of(&opts.grantable_roles, true);
    if !cluster_roles.is_empty() {
        rules.push(bind_rule("clusterroles", cluster_roles));
    }
    let roles = names_of(&opts.grantable_roles, false);
    if !roles.is_empty() {
        rules.push(bind_rule("roles", roles));
    }
    rules.push(rule(RBAC_GROUP, &["rolebindings"], &BINDING_VERBS));
    if opts.cluster_scope {
        rules.push(rule(RBAC_GROUP, &["clusterrolebindings"], &BINDING_VERBS));
    } else if opts.certification_remediation {
        // Certification removes a revoked subject from any ClusterRoleBinding (an
        // update RBAC allows only for a role the operator may bind) or deletes one
        // whose only subject was revoked; it never creates one.
        rules.push(rule(
            RBAC_GROUP,
            &["clusterrolebindings"],
            &["get", "list", "watch", "patch", "delete"],
        ));
    } else {
        // Without cluster scope the operator still watches and sweeps ClusterRoleBindings
        // carrying its labels (one left from when cluster scope was on must still expire),
        // and certification reviews them all, so it may read them, but never create,
        // change or delete one.
        rules.push(rule(RBAC_GROUP, &["clusterrolebindings"], &READ));
    }
    // Certification reviews every binding and judges the risk of the role it grants.
    rules.push(rule(RBAC_GROUP, &["roles", "clusterroles"], &READ));
    rules.push(rule(
        GROUP,
        &[
            "approvalrequests",
            "accessreviews",
            "accesspolicies",
            "accesscampaigns",
            "accesscertifications",
        ],
        &READ,
    ));
    // Campaign runs create their items, and delete them (with their reviews) at
    // the end of their retention. `issue` is the virtual verb the
    // gatehouse-certification-issuer admission policy asks of whoever creates
    // or changes an item: only the operator holds it.
    rules.push(rule(
        GROUP,
        &["accesscertifications"],
        &["create", "delete", ISSUE_ITEMS],
    ));
    // Retention: terminal requests and their reviews are deleted once kept long enough.
    rules.push(rule(GROUP, &["approvalrequests", "accessreviews"], &["delete"]));
    // The finalizer that revokes before a request goes away lives in the request's
    // metadata, which is written through the main resource (spec stays immutable by
    // the CRD's own rule). Patch only: the operator never replaces a request.
    rules.push(rule(GROUP, &["approvalrequests"], &["patch"]));
    // Status carries every decision; `write-status` is the virtual verb the
    // gatehouse-status-writer admission policy asks for.
    rules.push(rule(
        GROUP,
        &[
            "approvalrequests/status",
            "accessreviews/status",
            "accesspolicies/status",
            "accesscampaigns/status",
            "accesscertifications/status",
        ],
        &["update", "patch", WRITE_STATUS],
    ));
    // Bindings (and reviews) point at their request with an owner reference;
    // OwnerReferencesPermissionEnforcement asks for this to set blockOwnerDeletion.
    rules.push(rule(
        GROUP,
        &["approvalrequests/finalizers"],
        &["update", "patch"],
    ));
    // OneTime requests: a dedicated ServiceAccount per request, bound (like any
    // grant) only to a grantable role, and the approved Job that runs as it.
    rules.push(rule(
        "",
        &["serviceaccounts"],
        &["get", "list", "watch", "create", "patch", "delete"],
    ));
    rules.push(rule(
        "batch",
        &["jobs"],
        &["get", "list", "watch", "create", "delete"],
    ));
    // Policies select namespaces by label.
    rules.push(rule("", &["namespaces"], &READ));
    // An Event on every transition, in the namespace of the object it is about.
    rules.push(rule("events.k8s.io", &["events"], &["create", "patch"]));
    // Notification channels: read, and their status (ready, last delivery, tests).
    rules.push(rule(GROUP, &["notificationchannels"], &READ));
    rules.push(rule(
        GROUP,
        &["notificationchannels/status"],
        &["update", "patch"],
    ));
    rules
}

/// The operator's ServiceAccount, ClusterRole, ClusterRoleBinding and leader-election Role.
pub fn operator_rbac(opts: &RbacOptions) -> Result<OperatorRbac, RbacError> {
    opts.validate()?;
    let ns = opts.namespace.as_str();
    let subject = Subject {
        kind: "ServiceAccount".into(),
        name: opts.service_account.clone(),
        namespace: Some(ns.to_string()),
        ..Default::default()
    };
    Ok(OperatorRbac {
        service_account: ServiceAccount {
            metadata: meta(&opts.service_account, Some(ns), "operator"),
            ..Default::default()
        },
        cluster_role: ClusterRole {
            metadata: meta(OPERATOR_ROLE, None, "operator"),
            rules: Some(operator_rules(opts)),
            ..Default::default()
        },
        cluster_role_binding: ClusterRoleBinding {
            metadata: meta(OPERATOR_ROLE, None, "operator"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "ClusterRole".into(),
                name: OPERATOR_ROLE.into(),
            },
            subjects: Some(vec![subject.clone()]),
        },
        // Leases only in the operator's own namespace: a Role, not the ClusterRole.
        // `patch` as well as `update` because lease managers renew with patches.
        leader_election_role: Role {
            metadata: meta(LEADER_ELECTION_ROLE, Some(ns), "operator"),
            rules: Some(vec![rule(
                "coordination.k8s.io",
                &["leases"],
                &["get", "create", "update", "patch"],
            )]),
        },
        leader_election_binding: RoleBinding {
            metadata: meta(LEADER_ELECTION_ROLE, Some(ns), "operator"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: LEADER_ELECTION_ROLE.into(),
            },
            subjects: Some(vec![subject.clone()]),
        },
        // `get` only on Secrets: a channel's Secret is read by name when a message
        // is sent; never listed or watched, so no other Secret of the namespace is
        // ever read. Ledgers are ConfigMaps it creates and replaces.
        notifications_role: Role {
            metadata: meta(NOTIFICATIONS_ROLE, Some(ns), "operator"),
            rules: Some(vec![
                rule("", &["secrets"], &["get"]),
                rule("", &["configmaps"], &["get", "create", "update"]),
            ]),
        },
        notifications_binding: RoleBinding {
            metadata: meta(NOTIFICATIONS_ROLE, Some(ns), "operator"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: NOTIFICATIONS_ROLE.into(),
            },
            subjects: Some(vec![subject]),
        },
    })
}

/// ClusterRoles for people: `gatehouse-requester`, `gatehouse-reviewer` and
/// `gatehouse-create-on-behalf`. Bind them with RoleBindings per namespace (or a
/// ClusterRoleBinding: AccessPolicies are cluster-scoped, so reading them takes one).
/// None grants update, delete or any `/status`.
pub fn user_roles() -> Vec<ClusterRole> {
    let user_role = |name: &str, rules: Vec<PolicyRule>| ClusterRole {
        metadata: meta(name, None, "users"),
        rules: Some(rules),
        ..Default::default()
    };
    vec![
        // Requesters file requests and their own Cancel/Revoke reviews, and read
        // policies to see what they may ask for.
        user_role(
            REQUESTER_ROLE,
            vec![
                rule(
                    GROUP,
                    &["approvalrequests", "accessreviews"],
                    &["create", "get", "list", "watch"],
                ),
                rule(GROUP, &["accesspolicies"], &READ),
            ],
        ),
        // Reviewers record decisions and read what they decide on: requests, and
        // the certification items of campaigns.
        user_role(
            REVIEWER_ROLE,
            vec![
                rule(GROUP, &["accessreviews"], &["create", "get", "list", "watch"]),
                rule(
                    GROUP,
                    &[
                        "approvalrequests",
                        "accesspolicies",
                        "accesscertifications",
                        "accesscampaigns",
                    ],
                    &READ,
                ),
            ],
        ),
        // For a GitOps controller applying requests and reviews written by people:
        // the admission policies let it name someone else. Add `create` from one of
        // the roles above.
        user_role(
            ON_BEHALF_ROLE,
            vec![rule(
                GROUP,
                &["approvalrequests", "accessreviews"],
                &[CREATE_ON_BEHALF],
            )],
        ),
    ]
}

/// One generated file of `config/rbac/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderedFile {
    /// File name, e.g. `operator.yaml`.
    pub file_name: String,
    /// Contents.
    pub yaml: String,
}

fn to_yaml<T: Serialize>(obj: &T, kind: &'static str, name: &str) -> Result<String, RbacError> {
    serde_saphyr::to_string(obj).map_err(|source| RbacError::Serialize {
        kind,
        name: name.to_string(),
        source,
    })
}

/// The operator's RBAC as one multi-document YAML stream, with a header naming
/// the command that made it.
pub fn render_operator(opts: &RbacOptions) -> Result<String, RbacError> {
    let o = operator_rbac(opts)?;
    let docs = [
        to_yaml(&o.service_account, "ServiceAccount", &opts.service_account)?,
        to_yaml(&o.cluster_role, "ClusterRole", OPERATOR_ROLE)?,
        to_yaml(&o.cluster_role_binding, "ClusterRoleBinding", OPERATOR_ROLE)?,
        to_yaml(&o.leader_election_role, "Role", LEADER_ELECTION_ROLE)?,
        to_yaml(&o.leader_election_binding, "RoleBinding", LEADER_ELECTION_ROLE)?,
        to_yaml(&o.notifications_role, "Role", NOTIFICATIONS_ROLE)?,
        to_yaml(&o.notifications_binding, "RoleBinding", NOTIFICATIONS_ROLE)?,
    ];
    Ok(format!(
        "# Gatehouse operator RBAC. Generated by: {}\n# The operator may bind only: {}.\n{}",
        opts.command_line(),
        opts.grantable_roles
            .iter()
            .map(|r| match r {
                GrantableRole::ClusterRole(n) => format!("ClusterRole {n}"),
                GrantableRole::Role(n) => format!("Role {n} (any namespace)"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        docs.join("---\n")
    ))
}

/// The user ClusterRoles as one multi-document YAML stream.
pub fn render_users() -> Result<String, RbacError> {
    let docs = user_roles()
        .iter()
        .map(|role| {
            to_yaml(
                role,
                "ClusterRole",
                role.metadata.name.as_deref().unwrap_or_default(),
            )
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(format!(
        "# ClusterRoles for Gatehouse users. Bind per namespace (RoleBinding) or cluster-wide; reading the\n\
         # cluster-scoped AccessPolicies takes a ClusterRoleBinding. Generated by: gatehouse rbac\n{}",
        docs.join("---\n")
    ))
}

/// Everything `gatehouse rbac` prints: the operator's RBAC, then the user roles.
pub fn render_all(opts: &RbacOptions) -> Result<String, RbacError> {
    Ok(format!("{}---\n{}", render_operator(opts)?, render_users()?))
}

/// The files of `config/rbac/`: `operator.yaml`, `users.yaml` and a `Kustomization`
/// (no extension, so that `kubectl apply -f config/rbac/` skips it).
pub fn render_files(opts: &RbacOptions) -> Result<Vec<RenderedFile>, RbacError> {
    let kustomization = format!(
        "# kustomize entry point: kubectl apply -k config/rbac. Generated by: {}\n\
         apiVersion: kustomize.config.k8s.io/v1beta1\n\
         kind: Kustomization\n\
         resources:\n  - operator.yaml\n  - users.yaml\n",
        opts.command_line()
    );
    Ok(vec![
        RenderedFile {
            file_name: "operator.yaml".into(),
            yaml: render_operator(opts)?,
        },
        RenderedFile {
            file_name: "users.yaml".into(),
            yaml: render_users()?,
        },
        RenderedFile {
            file_name: "Kustomization".into(),
            yaml: kustomization,
        },
    ])
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
