//! The operator's identity and permissions: exactly what it needs, `bind` on the
//! grantable roles by name and nothing broader.

use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding, RoleRef, Subject},
};

use super::*;
use crate::admission::{ISSUE_ITEMS, WRITE_STATUS};
use crate::api::GROUP;

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
    /// Notification channels' Secrets (read, by name) and delivery ledgers
    /// (ConfigMaps), in the operator's namespace only.
    pub notifications_role: Role,
    /// Binds the notifications Role to the ServiceAccount.
    pub notifications_binding: RoleBinding,
    /// The usage summaries (`BindingUsage`), in their namespace only.
    pub usage_role: Role,
    /// Binds the usage Role to the ServiceAccount.
    pub usage_binding: RoleBinding,
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
        // whose only subject was revoked; it never creates one. A delete has no
        // escalation check, so before either the operator asks whether it may
        // bind the role (a SelfSubjectAccessReview) and learns who it is at start
        // (a SelfSubjectReview): both are open to every authenticated user
        // through the API server's own `system:basic-user`, so no rule here.
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
        &["update", "patch", WRITE_STATUS],
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
        // `get` on the channels' Secrets by name, and on no other: RBAC, not the
        // operator's good behaviour, keeps it from the namespace's other Secrets
        // (Helm release data, tokens). Without names there is no Secret rule at
        // all: an empty resourceNames would mean every Secret. Ledgers are
        // ConfigMaps it creates and replaces.
        notifications_role: Role {
            metadata: meta(NOTIFICATIONS_ROLE, Some(ns), "operator"),
            rules: Some(
                (!opts.channel_secrets.is_empty())
                    .then(|| PolicyRule {
                        resource_names: Some(opts.channel_secrets.clone()),
                        ..rule("", &["secrets"], &["get"])
                    })
                    .into_iter()
                    .chain([rule("", &["configmaps"], &["get", "create", "update"])])
                    .collect(),
            ),
        },
        notifications_binding: RoleBinding {
            metadata: meta(NOTIFICATIONS_ROLE, Some(ns), "operator"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: NOTIFICATIONS_ROLE.into(),
            },
            subjects: Some(vec![subject.clone()]),
        },
        // The persisted usage summaries, in their own namespace (the operator's
        // unless --usage-namespace): read, created and their status replaced,
        // never deleted.
        usage_role: Role {
            metadata: meta(USAGE_ROLE, Some(opts.usage_namespace()), "operator"),
            rules: Some(vec![
                rule(GROUP, &["bindingusages"], &["get", "list", "watch", "create"]),
                rule(GROUP, &["bindingusages/status"], &["update"]),
            ]),
        },
        usage_binding: RoleBinding {
            metadata: meta(USAGE_ROLE, Some(opts.usage_namespace()), "operator"),
            role_ref: RoleRef {
                api_group: RBAC_GROUP.into(),
                kind: "Role".into(),
                name: USAGE_ROLE.into(),
            },
            subjects: Some(vec![subject]),
        },
    })
}
