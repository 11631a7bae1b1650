//! The RBAC `gatehouse rbac` generates, read as the API server's RBAC authorizer
//! would: what the operator and users may do, and above all what they may not.

use std::path::PathBuf;
use std::process::Command;

use gatehouse::admission::{CREATE_ON_BEHALF, ISSUE_ITEMS, TEST_CHANNELS, WRITE_STATUS};
use gatehouse::rbac::{
    operator_rbac, render_all, render_files, user_roles, GrantableRole, RbacOptions,
    NOTIFICATION_TESTER_ROLE, ON_BEHALF_ROLE, REQUESTER_ROLE, REVIEWER_ROLE,
};
use k8s_openapi::api::{
    core::v1::ServiceAccount,
    rbac::v1::{ClusterRole, ClusterRoleBinding, PolicyRule, Role, RoleBinding},
};
use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// RBAC's rule matching: a rule allows the request if verb, API group and
/// resource match (`*` matches anything) and, when the rule lists resourceNames,
/// the request names one of them. `resource` may be `resource/subresource`.
fn allows(rules: &[PolicyRule], verb: &str, group: &str, resource: &str, name: Option<&str>) -> bool {
    rules.iter().any(|r| {
        r.verbs.iter().any(|v| v == verb || v == "*")
            && r.api_groups.iter().flatten().any(|g| g == group || g == "*")
            && r.resources.iter().flatten().any(|x| x == resource || x == "*")
            && match (&r.resource_names, name) {
                (None, _) => true,
                (Some(names), _) if names.is_empty() => true,
                (Some(names), Some(n)) => names.iter().any(|x| x == n),
                (Some(_), None) => false,
            }
    })
}

fn operator_rules(opts: &RbacOptions) -> Vec<PolicyRule> {
    operator_rbac(opts).unwrap().cluster_role.rules.unwrap()
}

fn user_role(name: &str) -> Vec<PolicyRule> {
    user_roles()
        .into_iter()
        .find(|r| r.metadata.name.as_deref() == Some(name))
        .unwrap_or_else(|| panic!("no user role {name}"))
        .rules
        .unwrap()
}

const RBAC: &str = "rbac.authorization.k8s.io";
const GH: &str = "gatehouse.dev";

fn variants() -> Vec<RbacOptions> {
    vec![
        RbacOptions::default(),
        RbacOptions {
            grantable_roles: vec![
                GrantableRole::ClusterRole("view".into()),
                GrantableRole::Role("deployer".into()),
                GrantableRole::ClusterRole("cluster-admin".into()),
            ],
            cluster_scope: true,
            namespace: "security".into(),
            service_account: "jit".into(),
            certification_remediation: true,
            channel_secrets: vec!["slack-sre".into(), "audit-hook".into()],
            usage_namespace: Some("usage-evidence".into()),
        },
    ]
}

#[test]
fn committed_rbac_matches_the_binary_output() {
    let dir = repo().join("config/rbac");
    let hint = "regenerate with: cargo run -- rbac --out-dir config/rbac";
    let rendered = render_files(&RbacOptions::default()).unwrap();
    let mut expected: Vec<String> = rendered.iter().map(|f| f.file_name.clone()).collect();
    expected.sort();
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("config/rbac: {e}; {hint}"))
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    committed.sort();
    assert_eq!(
        committed, expected,
        "config/rbac holds other files than `gatehouse rbac` writes; {hint}"
    );
    for file in rendered {
        let on_disk = std::fs::read_to_string(dir.join(&file.file_name)).unwrap();
        assert!(
            on_disk == file.yaml,
            "config/rbac/{} is out of date; {hint}",
            file.file_name
        );
    }
}

#[test]
fn the_operator_may_bind_only_the_grantable_roles() {
    let rules = operator_rules(&RbacOptions::default());
    for role in ["view", "edit"] {
        assert!(allows(&rules, "bind", RBAC, "clusterroles", Some(role)), "{role}");
    }
    for role in ["admin", "cluster-admin", "system:controller:namespace-controller"] {
        assert!(
            !allows(&rules, "bind", RBAC, "clusterroles", Some(role)),
            "{role}"
        );
    }
    // No Role is grantable by default.
    assert!(!allows(&rules, "bind", RBAC, "roles", Some("view")));

    // A Role is grantable by name, in whichever namespace (RBAC cannot scope a
    // ClusterRole's rule to some namespaces).
    let rules = operator_rules(&RbacOptions {
        grantable_roles: vec![GrantableRole::Role("deployer".into())],
        ..Default::default()
    });
    assert!(allows(&rules, "bind", RBAC, "roles", Some("deployer")));
    assert!(!allows(&rules, "bind", RBAC, "roles", Some("admin")));
    assert!(!allows(&rules, "bind", RBAC, "clusterroles", Some("deployer")));

    // Repeating a role does not repeat it in the rule.
    let rules = operator_rules(&RbacOptions {
        grantable_roles: vec![
            GrantableRole::ClusterRole("view".into()),
            GrantableRole::ClusterRole("view".into()),
        ],
        ..Default::default()
    });
    assert_eq!(rules[0].resource_names, Some(vec!["view".to_string()]));
}

#[test]
fn the_operator_never_escalates_impersonates_or_uses_wildcards() {
    for opts in variants() {
        let o = operator_rbac(&opts).unwrap();
        let all: Vec<&PolicyRule> = o
            .cluster_role
            .rules
            .iter()
            .flatten()
            .chain(o.leader_election_role.rules.iter().flatten())
            .chain(o.usage_role.rules.iter().flatten())
            .collect();
        for r in &all {
            for verb in &r.verbs {
                assert!(
                    !["*", "escalate", "impersonate"].contains(&verb.as_str()),
                    "{r:?}"
                );
            }
            for field in [&r.api_groups, &r.resources, &r.resource_names] {
                assert!(!field.iter().flatten().any(|x| x.contains('*')), "{r:?}");
            }
            assert!(r.non_resource_urls.is_none(), "{r:?}");
            // `bind` only ever with names.
            if r.verbs.iter().any(|v| v == "bind") {
                assert!(r.resource_names.as_ref().is_some_and(|n| !n.is_empty()), "{r:?}");
                assert_eq!(r.verbs, ["bind"], "{r:?}");
            }
        }
        let owned: Vec<PolicyRule> = all.into_iter().cloned().collect();
        // Nothing that could widen its own power or read secrets.
        for (verb, group, resource) in [
            ("escalate", RBAC, "clusterroles"),
            ("update", RBAC, "clusterroles"),
            ("create", RBAC, "roles"),
            ("impersonate", "", "users"),
            ("impersonate", "", "serviceaccounts"),
            ("get", "", "secrets"),
            ("create", "", "serviceaccounts/token"),
            ("create", "", "pods"),
        ] {
            assert!(
                !allows(&owned, verb, group, resource, Some("x")),
                "{verb} {group}/{resource}"
            );
        }
    }
}

#[test]
fn cluster_role_bindings_are_written_only_with_cluster_scope() {
    let namespaced = operator_rules(&RbacOptions::default());
    let cluster = operator_rules(&RbacOptions {
        cluster_scope: true,
        ..Default::default()
    });
    for verb in ["create", "get", "list", "watch", "patch", "update", "delete"] {
        assert!(allows(&namespaced, verb, RBAC, "rolebindings", None), "{verb}");
        assert!(
            allows(&cluster, verb, RBAC, "clusterrolebindings", None),
            "{verb}"
        );
    }
    // Without cluster scope it may only read them (the watch and the expiry sweep).
    for verb in ["create", "patch", "update", "delete"] {
        assert!(
            !allows(&namespaced, verb, RBAC, "clusterrolebindings", None),
            "{verb}"
        );
    }
    for verb in ["get", "list", "watch"] {
        assert!(
            allows(&namespaced, verb, RBAC, "clusterrolebindings", None),
            "{verb}"
        );
    }
}

#[test]
fn certification_reads_every_binding_and_role_and_only_the_operator_issues_items() {
    let rules = operator_rules(&RbacOptions::default());
    for resource in ["rolebindings", "clusterrolebindings", "roles", "clusterroles"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows(&rules, verb, RBAC, resource, None), "{verb} {resource}");
        }
    }
    // Reading roles never becomes changing them: no escalate, no bind beyond the grantable roles.
    for verb in ["create", "update", "patch", "delete", "escalate"] {
        assert!(!allows(&rules, verb, RBAC, "clusterroles", None), "{verb}");
        assert!(!allows(&rules, verb, RBAC, "roles", None), "{verb}");
    }
    assert!(!allows(
        &rules,
        "bind",
        RBAC,
        "clusterroles",
        Some("cluster-admin")
    ));
    for resource in ["accesscampaigns", "accesscertifications"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows(&rules, verb, GH, resource, None), "{verb} {resource}");
        }
        for verb in ["update", "patch", WRITE_STATUS] {
            assert!(
                allows(&rules, verb, GH, &format!("{resource}/status"), None),
                "{verb} {resource}/status"
            );
        }
    }
    // Runs create their items and retention deletes them; the spec is a snapshot, never rewritten.
    for verb in ["create", "delete", ISSUE_ITEMS] {
        assert!(allows(&rules, verb, GH, "accesscertifications", None), "{verb}");
    }
    assert!(!allows(&rules, "update", GH, "accesscertifications", None));
    // Campaigns are the admins': the operator writes only their status.
    for verb in ["create", "update", "patch", "delete"] {
        assert!(!allows(&rules, verb, GH, "accesscampaigns", None), "{verb}");
    }
    // Nobody else issues items or writes their status.
    for name in [REQUESTER_ROLE, REVIEWER_ROLE, ON_BEHALF_ROLE] {
        let user = user_role(name);
        for verb in ["create", "update", "patch", "delete", ISSUE_ITEMS] {
            assert!(
                !allows(&user, verb, GH, "accesscertifications", None),
                "{name}: {verb}"
            );
        }
        assert!(!allows(&user, "patch", GH, "accesscampaigns", None), "{name}");
    }
    // Reviewers see the items they decide, and their campaigns.
    let reviewer = user_role(REVIEWER_ROLE);
    assert!(allows(&reviewer, "list", GH, "accesscertifications", None));
    assert!(allows(&reviewer, "get", GH, "accesscampaigns", None));
}

#[test]
fn certification_remediation_may_patch_and_delete_cluster_role_bindings_never_create_them() {
    let off = operator_rules(&RbacOptions::default());
    let on = operator_rules(&RbacOptions {
        certification_remediation: true,
        ..Default::default()
    });
    for verb in ["patch", "delete"] {
        assert!(!allows(&off, verb, RBAC, "clusterrolebindings", None), "{verb}");
        assert!(allows(&on, verb, RBAC, "clusterrolebindings", None), "{verb}");
    }
    for verb in ["create", "update"] {
        assert!(!allows(&on, verb, RBAC, "clusterrolebindings", None), "{verb}");
    }
    // It binds nothing more: removing a subject from a binding of a role it may
    // not bind stays refused by the API server's escalation check.
    let binds = |rules: &[PolicyRule]| {
        rules
            .iter()
            .filter(|r| r.verbs.iter().any(|v| v == "bind"))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(binds(&on), binds(&off));
    assert!(RbacOptions {
        certification_remediation: true,
        ..Default::default()
    }
    .command_line()
    .contains(" --certification-remediation"));
}

#[test]
fn one_time_jobs_are_created_and_stopped_never_rewritten() {
    let rules = operator_rules(&RbacOptions::default());
    for verb in ["get", "list", "watch", "create", "delete"] {
        assert!(allows(&rules, verb, "batch", "jobs", None), "{verb} jobs");
    }
    // What reviewers approved is what runs: a Job is never changed after creation.
    for verb in ["update", "patch"] {
        assert!(!allows(&rules, verb, "batch", "jobs", None), "{verb} jobs");
    }
    for verb in ["get", "list", "watch", "create", "patch", "delete"] {
        assert!(
            allows(&rules, verb, "", "serviceaccounts", None),
            "{verb} serviceaccounts"
        );
    }
    // No tokens minted, no pods started or entered directly.
    assert!(!allows(&rules, "create", "", "serviceaccounts/token", None));
    for verb in ["create", "delete"] {
        assert!(!allows(&rules, verb, "", "pods", None), "{verb} pods");
    }
    assert!(!allows(&rules, "create", "", "pods/exec", None));
}

#[test]
fn the_operator_reads_records_writes_status_and_deletes_only_for_retention() {
    let rules = operator_rules(&RbacOptions::default());
    for resource in ["approvalrequests", "accessreviews", "accesspolicies"] {
        for verb in ["get", "list", "watch"] {
            assert!(allows(&rules, verb, GH, resource, None), "{verb} {resource}");
        }
        for verb in ["update", "patch", WRITE_STATUS] {
            assert!(
                allows(&rules, verb, GH, &format!("{resource}/status"), None),
                "{verb} {resource}/status"
            );
        }
        // It never creates records nor replaces them: people do the creating.
        assert!(!allows(&rules, "create", GH, resource, None), "{resource}");
        assert!(!allows(&rules, "update", GH, resource, None), "{resource}");
    }
    // Retention deletes terminal requests and their reviews; policies belong to admins.
    assert!(allows(&rules, "delete", GH, "approvalrequests", None));
    assert!(allows(&rules, "delete", GH, "accessreviews", None));
    assert!(!allows(&rules, "delete", GH, "accesspolicies", None));
    assert!(!allows(&rules, "patch", GH, "accesspolicies", None));
    // The finalizer is patched into a request's metadata; owner references need /finalizers.
    assert!(allows(&rules, "patch", GH, "approvalrequests", None));
    assert!(allows(&rules, "update", GH, "approvalrequests/finalizers", None));
    // Namespaces are read for label selectors, never changed.
    for verb in ["get", "list", "watch"] {
        assert!(allows(&rules, verb, "", "namespaces", None));
    }
    assert!(!allows(&rules, "update", "", "namespaces", None));
    for verb in ["create", "patch"] {
        assert!(allows(&rules, verb, "events.k8s.io", "events", None));
    }
    assert!(!allows(&rules, "delete", "events.k8s.io", "events", None));
}

#[test]
fn notifications_read_only_named_secrets_in_the_operator_namespace() {
    for opts in variants() {
        let o = operator_rbac(&opts).unwrap();
        let role = &o.notifications_role;
        assert_eq!(role.metadata.namespace.as_deref(), Some(opts.namespace.as_str()));
        let rules = role.rules.clone().unwrap();
        // The channels' Secrets by name, and no other: not Helm's release data,
        // not a token (it was every Secret of the namespace before).
        for secret in &opts.channel_secrets {
            assert!(allows(&rules, "get", "", "secrets", Some(secret)), "{secret}");
        }
        for other in ["sh.helm.release.v1.gatehouse.v1", "gatehouse-token", "other"] {
            assert!(!allows(&rules, "get", "", "secrets", Some(other)), "{other}");
        }
        assert!(!allows(&rules, "get", "", "secrets", None));
        assert!(rules.iter().all(|r| r.verbs.iter().all(|v| v != "*")
            && r.resources.iter().flatten().all(|x| x != "*")
            && r.resource_names.as_ref().is_none_or(|n| !n.is_empty())));
        // Never list or watch: that would read every Secret of the namespace.
        for verb in ["list", "watch", "create", "update", "delete"] {
            assert!(!allows(&rules, verb, "", "secrets", None), "{verb}");
            assert!(!allows(&rules, verb, "", "secrets", Some("slack-sre")), "{verb}");
        }
        for verb in ["get", "create", "update"] {
            assert!(allows(&rules, verb, "", "configmaps", None), "{verb}");
        }
        // No Secret anywhere else.
        let cluster = o.cluster_role.rules.unwrap();
        assert!(!allows(&cluster, "get", "", "secrets", None));
        assert!(allows(
            &cluster,
            "watch",
            "gatehouse.dev",
            "notificationchannels",
            None
        ));
        assert!(allows(
            &cluster,
            "patch",
            "gatehouse.dev",
            "notificationchannels/status",
            None
        ));
        assert!(!allows(
            &cluster,
            "update",
            "gatehouse.dev",
            "notificationchannels",
            None
        ));
        let subjects = o.notifications_binding.subjects.unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].name, opts.service_account);
    }
}

#[test]
fn leader_election_is_confined_to_the_operator_namespace() {
    for opts in variants() {
        let o = operator_rbac(&opts).unwrap();
        let role = &o.leader_election_role;
        assert_eq!(role.metadata.namespace.as_deref(), Some(opts.namespace.as_str()));
        let rules = role.rules.clone().unwrap();
        for verb in ["get", "create", "update"] {
            assert!(
                allows(&rules, verb, "coordination.k8s.io", "leases", None),
                "{verb}"
            );
        }
        assert!(!allows(&rules, "delete", "coordination.k8s.io", "leases", None));
        // Not in the ClusterRole: leases elsewhere are none of its business.
        let cluster = o.cluster_role.rules.unwrap();
        assert!(!allows(&cluster, "update", "coordination.k8s.io", "leases", None));
        // Both bindings name exactly the operator's ServiceAccount.
        for subjects in [
            &o.cluster_role_binding.subjects,
            &o.leader_election_binding.subjects,
        ] {
            let subjects = subjects.clone().unwrap();
            assert_eq!(subjects.len(), 1);
            assert_eq!(subjects[0].kind, "ServiceAccount");
            assert_eq!(subjects[0].name, opts.service_account);
            assert_eq!(subjects[0].namespace.as_deref(), Some(opts.namespace.as_str()));
        }
        assert_eq!(o.leader_election_binding.role_ref.kind, "Role");
        assert_eq!(o.cluster_role_binding.role_ref.kind, "ClusterRole");
        assert_eq!(
            o.service_account.metadata.namespace.as_deref(),
            Some(opts.namespace.as_str())
        );
    }
}

#[test]
fn usage_summaries_have_their_own_role_in_their_namespace() {
    for opts in variants() {
        let o = operator_rbac(&opts).unwrap();
        let ns = opts.usage_namespace.clone().unwrap_or(opts.namespace.clone());
        assert_eq!(o.usage_role.metadata.namespace.as_deref(), Some(ns.as_str()));
        assert_eq!(o.usage_binding.metadata.namespace.as_deref(), Some(ns.as_str()));
        let rules = o.usage_role.rules.clone().unwrap();
        for verb in ["get", "list", "watch", "create"] {
            assert!(allows(&rules, verb, GH, "bindingusages", None), "{verb}");
        }
        assert!(allows(&rules, "update", GH, "bindingusages/status", None));
        // Never deleted, and the spec (which binding) never changed.
        assert!(!allows(&rules, "delete", GH, "bindingusages", None));
        assert!(!allows(&rules, "update", GH, "bindingusages", None));
        // Nowhere else: not in the leader-election Role, not cluster-wide.
        let elsewhere: Vec<PolicyRule> = o
            .leader_election_role
            .rules
            .clone()
            .into_iter()
            .flatten()
            .chain(o.cluster_role.rules.clone().into_iter().flatten())
            .collect();
        assert!(!allows(&elsewhere, "create", GH, "bindingusages", None));
        let subjects = o.usage_binding.subjects.clone().unwrap();
        assert_eq!(subjects.len(), 1);
        assert_eq!(subjects[0].name, opts.service_account);
        assert_eq!(subjects[0].namespace.as_deref(), Some(opts.namespace.as_str()));
    }
}

#[test]
fn user_roles_never_reach_status_or_change_records() {
    for name in [REQUESTER_ROLE, REVIEWER_ROLE, ON_BEHALF_ROLE] {
        let rules = user_role(name);
        for resource in ["approvalrequests", "accessreviews", "accesspolicies"] {
            for verb in ["update", "patch", "delete", "deletecollection", WRITE_STATUS] {
                assert!(
                    !allows(&rules, verb, GH, resource, None),
                    "{name}: {verb} {resource}"
                );
                assert!(
                    !allows(&rules, verb, GH, &format!("{resource}/status"), None),
                    "{name}: {verb} {resource}/status"
                );
            }
            // Only admins write policies.
            assert!(!allows(&rules, "create", GH, "accesspolicies", None), "{name}");
        }
        for r in &rules {
            assert!(
                r.resources.iter().flatten().all(|x| !x.contains('/') && x != "*"),
                "{name}: {r:?}"
            );
            assert!(!r.verbs.iter().any(|v| v == "*"), "{name}: {r:?}");
        }
    }
    let requester = user_role(REQUESTER_ROLE);
    for verb in ["create", "get", "list", "watch"] {
        assert!(allows(&requester, verb, GH, "approvalrequests", None), "{verb}");
        // Cancel and Revoke are reviews the requester writes.
        assert!(allows(&requester, verb, GH, "accessreviews", None), "{verb}");
    }
    assert!(allows(&requester, "list", GH, "accesspolicies", None));
    let reviewer = user_role(REVIEWER_ROLE);
    assert!(allows(&reviewer, "create", GH, "accessreviews", None));
    assert!(!allows(&reviewer, "create", GH, "approvalrequests", None));
    assert!(allows(&reviewer, "watch", GH, "approvalrequests", None));
    // Acting for others is its own role, off unless bound, and it alone carries the verb.
    let on_behalf = user_role(ON_BEHALF_ROLE);
    for resource in ["approvalrequests", "accessreviews"] {
        assert!(allows(&on_behalf, CREATE_ON_BEHALF, GH, resource, None));
        assert!(!allows(&requester, CREATE_ON_BEHALF, GH, resource, None));
        assert!(!allows(&reviewer, CREATE_ON_BEHALF, GH, resource, None));
        assert!(!allows(&on_behalf, "create", GH, resource, None));
    }
}

#[test]
fn the_virtual_verbs_are_the_ones_the_admission_policies_check() {
    // tests/admission.rs parses every authorizer call; here, the text the policies
    // hold and the verbs the roles grant are tied to the same constants.
    let admission = |file: &str| std::fs::read_to_string(repo().join("config/admission").join(file)).unwrap();
    assert!(admission("requester-identity.yaml").contains(&format!(".check('{CREATE_ON_BEHALF}')")));
    assert!(admission("reviewer-identity.yaml").contains(&format!(".check('{CREATE_ON_BEHALF}')")));
    assert!(admission("status-writer.yaml").contains(&format!(".check('{WRITE_STATUS}')")));
    assert!(admission("certification-issuer.yaml").contains(&format!(".check('{ISSUE_ITEMS}')")));
    assert!(admission("notification-channels.yaml").contains(&format!(".check('{TEST_CHANNELS}')")));
    // The operator itself has no business acting on behalf of anyone.
    let rules = operator_rules(&RbacOptions::default());
    assert!(!allows(&rules, CREATE_ON_BEHALF, GH, "approvalrequests", None));
}

#[test]
fn the_output_is_yaml_of_the_expected_objects() {
    for opts in variants() {
        let text = render_all(&opts).unwrap();
        assert!(text.starts_with(&format!(
            "# Gatehouse operator RBAC. Generated by: {}\n",
            opts.command_line()
        )));
        let docs = serde_saphyr::from_multiple::<Value>(&text).unwrap();
        let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
        assert_eq!(
            kinds,
            [
                "ServiceAccount",
                "ClusterRole",
                "ClusterRoleBinding",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding",
                "Role",
                "RoleBinding",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole",
                "ClusterRole"
            ]
        );
        // Every document is the typed object it claims to be, and nothing was lost.
        let o = operator_rbac(&opts).unwrap();
        let parsed_sa: ServiceAccount = serde_json::from_value(docs[0].clone()).unwrap();
        assert_eq!(parsed_sa, o.service_account);
        let parsed: ClusterRole = serde_json::from_value(docs[1].clone()).unwrap();
        assert_eq!(parsed, o.cluster_role);
        let parsed: ClusterRoleBinding = serde_json::from_value(docs[2].clone()).unwrap();
        assert_eq!(parsed, o.cluster_role_binding);
        let parsed: Role = serde_json::from_value(docs[3].clone()).unwrap();
        assert_eq!(parsed, o.leader_election_role);
        let parsed: RoleBinding = serde_json::from_value(docs[4].clone()).unwrap();
        assert_eq!(parsed, o.leader_election_binding);
        let parsed: Role = serde_json::from_value(docs[5].clone()).unwrap();
        assert_eq!(parsed, o.notifications_role);
        let parsed: RoleBinding = serde_json::from_value(docs[6].clone()).unwrap();
        assert_eq!(parsed, o.notifications_binding);
        let parsed: Role = serde_json::from_value(docs[7].clone()).unwrap();
        assert_eq!(parsed, o.usage_role);
        let parsed: RoleBinding = serde_json::from_value(docs[8].clone()).unwrap();
        assert_eq!(parsed, o.usage_binding);
        for (doc, role) in docs[9..].iter().zip(user_roles()) {
            let parsed: ClusterRole = serde_json::from_value(doc.clone()).unwrap();
            assert_eq!(parsed, role);
        }
    }
}

#[test]
fn the_rbac_command_prints_the_same_and_refuses_a_wildcard() {
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    let out = Command::new(bin).arg("rbac").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        render_all(&RbacOptions::default()).unwrap()
    );

    let out = Command::new(bin)
        .args([
            "rbac",
            "--grantable-role",
            "view",
            "--grantable-role",
            "Role/deployer",
            "--cluster-scope",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("--grantable-role view --grantable-role Role/deployer --cluster-scope"),
        "{text}"
    );
    assert!(text.contains("clusterrolebindings"));

    let out = Command::new(bin)
        .args(["rbac", "--grantable-role", "*"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("a wildcard would let the operator bind every role"),
        "{err}"
    );
}

#[test]
fn acting_on_behalf_is_bound_cluster_wide_only() {
    // The admission policies ask for create-on-behalf at cluster scope, so the
    // only binding `gatehouse rbac` makes for it is a ClusterRoleBinding.
    let subjects: Vec<_> = [
        "ServiceAccount/argocd/argocd-application-controller",
        "Group/gitops-bots",
    ]
    .iter()
    .map(|s| gatehouse::rbac::parse_subject(s).unwrap())
    .collect();
    let binding = gatehouse::rbac::on_behalf_binding(&subjects).unwrap();
    assert_eq!(binding.role_ref.kind, "ClusterRole");
    assert_eq!(binding.role_ref.name, ON_BEHALF_ROLE);
    assert_eq!(
        binding.subjects.as_ref().unwrap()[0].namespace.as_deref(),
        Some("argocd")
    );
    assert!(gatehouse::rbac::on_behalf_binding(&[]).is_none());
    for bad in [
        "argocd",
        "User/",
        "ServiceAccount/argocd",
        "ServiceAccount/Arg ocd/x",
        "Role/x",
    ] {
        let err = gatehouse::rbac::parse_subject(bad).unwrap_err().to_string();
        assert!(err.contains("ServiceAccount/NAMESPACE/NAME"), "{bad}: {err}");
    }
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    let out = Command::new(bin)
        .args([
            "rbac",
            "--on-behalf",
            "ServiceAccount/argocd/argocd-application-controller",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs = serde_saphyr::from_multiple::<Value>(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let last: ClusterRoleBinding = serde_json::from_value(docs.last().unwrap().clone()).unwrap();
    assert_eq!(last, binding_for_argocd());
    // Without the flag, nothing binds it.
    let plain = Command::new(bin).arg("rbac").output().unwrap();
    let docs = serde_saphyr::from_multiple::<Value>(&String::from_utf8(plain.stdout).unwrap()).unwrap();
    assert!(docs
        .iter()
        .all(|d| !(d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == ON_BEHALF_ROLE)));
}

fn binding_for_argocd() -> ClusterRoleBinding {
    let subject =
        gatehouse::rbac::parse_subject("ServiceAccount/argocd/argocd-application-controller").unwrap();
    gatehouse::rbac::on_behalf_binding(&[subject]).unwrap()
}

#[test]
fn a_notification_tester_may_ask_for_tests_and_nothing_else() {
    // tests/security/channels.rs binds exactly these rules on a real API server.
    let rules = user_role(NOTIFICATION_TESTER_ROLE);
    let channels = "notificationchannels";
    for verb in ["get", "list", "watch", "patch", TEST_CHANNELS] {
        assert!(allows(&rules, verb, GH, channels, Some("slack-sre")), "{verb}");
    }
    // `patch` only reaches admission: the notification-channels policy lets the
    // test annotation through and nothing else without `update`.
    for verb in ["create", "update", "delete", "deletecollection"] {
        assert!(!allows(&rules, verb, GH, channels, None), "{verb}");
    }
    assert!(!allows(&rules, "patch", GH, "notificationchannels/status", None));
    assert!(!allows(&rules, "get", "", "secrets", None));
    // No other role carries the verb; the operator does not need it.
    for role in user_roles() {
        let name = role.metadata.name.clone().unwrap();
        if name != NOTIFICATION_TESTER_ROLE {
            assert!(
                !allows(&role.rules.unwrap(), TEST_CHANNELS, GH, channels, None),
                "{name}"
            );
        }
    }
    assert!(!allows(
        &operator_rules(&RbacOptions::default()),
        TEST_CHANNELS,
        GH,
        channels,
        None
    ));
}

#[test]
fn notification_testers_are_bound_cluster_wide_to_the_tester_role_only() {
    // The channel policy asks for the `test` verb at cluster scope: what
    // `gatehouse rbac --notification-tester` prints is a ClusterRoleBinding of
    // the tester role, which carries no update of channels.
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    let out = Command::new(bin)
        .args([
            "rbac",
            "--notification-tester",
            "Group/oncall",
            "--on-behalf",
            "Group/gitops-bots",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let docs = serde_saphyr::from_multiple::<Value>(&String::from_utf8(out.stdout).unwrap()).unwrap();
    let testers: ClusterRoleBinding = docs
        .iter()
        .find(|d| {
            d["kind"] == "ClusterRoleBinding" && d["metadata"]["name"] == "gatehouse-notification-tester"
        })
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .expect("a ClusterRoleBinding of the tester role");
    assert_eq!(testers.role_ref.kind, "ClusterRole");
    assert_eq!(testers.role_ref.name, "gatehouse-notification-tester");
    let subjects = testers.subjects.unwrap();
    assert_eq!(
        (subjects[0].kind.as_str(), subjects[0].name.as_str()),
        ("Group", "oncall")
    );
    let role: ClusterRole = docs
        .iter()
        .find(|d| d["kind"] == "ClusterRole" && d["metadata"]["name"] == "gatehouse-notification-tester")
        .map(|d| serde_json::from_value(d.clone()).unwrap())
        .expect("the tester role");
    for rule in role.rules.unwrap_or_default() {
        assert!(
            !rule.verbs.iter().any(|v| v == "update" || v == "*"),
            "the tester role may not rewrite channels: {rule:?}"
        );
    }
    // Without the flag, nobody is bound to it.
    let plain = Command::new(bin).arg("rbac").output().unwrap();
    let docs = serde_saphyr::from_multiple::<Value>(&String::from_utf8(plain.stdout).unwrap()).unwrap();
    assert!(docs
        .iter()
        .all(|d| !(d["kind"] == "ClusterRoleBinding"
            && d["metadata"]["name"] == "gatehouse-notification-tester")));
}
