//! The ClusterRoles for people.

use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};

use super::*;
use crate::admission::{CREATE_ON_BEHALF, TEST_CHANNELS};
use crate::api::GROUP;

/// ClusterRoles for people: `gatehouse-requester`, `gatehouse-reviewer`,
/// `gatehouse-create-on-behalf` and `gatehouse-notification-tester`. Bind them with RoleBindings per namespace (or a
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
