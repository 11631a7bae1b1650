//! The ClusterRoles for people.

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, RoleRef, Subject};

use super::*;
use crate::admission::{CREATE_ON_BEHALF, TEST_CHANNELS};
use crate::api::GROUP;

/// ClusterRoles for people: `gatehouse-requester`, `gatehouse-reviewer`,
/// `gatehouse-create-on-behalf` and `gatehouse-notification-tester`. Bind the
/// first two with RoleBindings per namespace (or a ClusterRoleBinding:
/// AccessPolicies are cluster-scoped, so reading them takes one).
/// `gatehouse-create-on-behalf` works only through a ClusterRoleBinding
/// ([`on_behalf_binding`]): the admission policies ask for its verb at cluster
/// scope, so that a namespace admin's `*` Role never counts.
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
        // `kubectl gatehouse notify test`: a patch of the channel's test annotation,
        // which the gatehouse-notification-channels admission policy lets through
        // with the `test` verb while everything else stays as it was (changing a
        // channel needs `update`). Channels are cluster-scoped: bind it with a
        // ClusterRoleBinding (chart value `notifications.testers`).
        user_role(
            NOTIFICATION_TESTER_ROLE,
            vec![rule(
                GROUP,
                &["notificationchannels"],
                &["get", "list", "watch", "patch", TEST_CHANNELS],
            )],
        ),
    ]
}

/// One subject of `gatehouse rbac --on-behalf`: `User/NAME`, `Group/NAME` or
/// `ServiceAccount/NAMESPACE/NAME`.
pub fn parse_subject(s: &str) -> Result<Subject, RbacError> {
    let invalid = || RbacError::InvalidSubject(s.to_string());
    let user_or_group = |kind: &str, name: &str| Subject {
        kind: kind.to_string(),
        name: name.to_string(),
        api_group: Some(RBAC_GROUP.to_string()),
        ..Default::default()
    };
    let subject = match s.split_once('/') {
        Some(("User", name)) if !name.is_empty() => user_or_group("User", name),
        Some(("Group", name)) if !name.is_empty() => user_or_group("Group", name),
        Some(("ServiceAccount", rest)) => {
            let (ns, name) = rest.split_once('/').ok_or_else(invalid)?;
            if !is_dns_label(ns) || !is_dns_subdomain(name) {
                return Err(invalid());
            }
            Subject {
                kind: "ServiceAccount".into(),
                name: name.to_string(),
                namespace: Some(ns.to_string()),
                ..Default::default()
            }
        }
        _ => return Err(invalid()),
    };
    Ok(subject)
}

/// The ClusterRoleBinding of `gatehouse-create-on-behalf` to `subjects` (a GitOps
/// controller's ServiceAccount), or `None` without subjects. Cluster-wide on
/// purpose: the admission policies ask for `create-on-behalf` at cluster scope,
/// which no RoleBinding satisfies.
pub fn on_behalf_binding(subjects: &[Subject]) -> Option<ClusterRoleBinding> {
    cluster_binding(ON_BEHALF_ROLE, subjects)
}

/// The ClusterRoleBinding of `gatehouse-notification-tester` to these subjects
/// (`notify test` only; the channel policy asks for the `test` verb cluster-wide).
pub fn notification_tester_binding(subjects: &[Subject]) -> Option<ClusterRoleBinding> {
    cluster_binding(NOTIFICATION_TESTER_ROLE, subjects)
}

/// A ClusterRoleBinding of the user role `role` to `subjects`, if any.
fn cluster_binding(role: &str, subjects: &[Subject]) -> Option<ClusterRoleBinding> {
    if subjects.is_empty() {
        return None;
    }
    Some(ClusterRoleBinding {
        metadata: meta(role, None, "users"),
        role_ref: RoleRef {
            api_group: RBAC_GROUP.into(),
            kind: "ClusterRole".into(),
            name: role.into(),
        },
        subjects: Some(subjects.to_vec()),
    })
}
