//! Effective rules, risk tags, staleness and the recommendation.

use k8s_openapi::api::rbac::v1::PolicyRule;

use super::*;
use crate::{
    api::{FindingCode, Recommendation, RiskTag, RoleKind, RoleRef},
    certify::{
        assess::{assess, Assessment},
        risk::risk_tags,
        rules::{digest, effective_rules},
    },
};

fn rule(yaml: &str) -> PolicyRule {
    serde_saphyr::from_str(yaml).unwrap()
}

fn tags(yaml_rules: &[&str]) -> Vec<RiskTag> {
    let rules: Vec<PolicyRule> = yaml_rules.iter().map(|r| rule(r)).collect();
    risk_tags(&rules).into_iter().map(|(t, _)| t).collect()
}

#[test]
fn each_risky_permission_has_its_tag() {
    use RiskTag::*;
    let cases: [(&str, RiskTag); 25] = [
        ("{apiGroups: [''], resources: [secrets], verbs: [list]}", SecretsRead),
        ("{apiGroups: [''], resources: [pods/exec], verbs: [create]}", PodExec),
        ("{apiGroups: [''], resources: [pods/portforward], verbs: [get]}", PodExec),
        ("{apiGroups: [''], resources: [pods/attach], verbs: [create]}", PodExec),
        ("{apiGroups: [''], resources: [pods], verbs: [create]}", CreateWorkloads),
        ("{apiGroups: [batch], resources: [cronjobs], verbs: [patch]}", CreateWorkloads),
        ("{apiGroups: [rbac.authorization.k8s.io], resources: [clusterroles], verbs: [escalate]}", Escalate),
        ("{apiGroups: [rbac.authorization.k8s.io], resources: [roles], verbs: [bind]}", Bind),
        ("{apiGroups: [''], resources: [users, groups], verbs: [impersonate]}", Impersonate),
        ("{apiGroups: [''], resources: [serviceaccounts/token], verbs: [create]}", ServiceAccountTokens),
        ("{apiGroups: [''], resources: [nodes/proxy], verbs: [get]}", NodesProxy),
        (
            "{apiGroups: [admissionregistration.k8s.io], resources: [validatingwebhookconfigurations], verbs: [update]}",
            AdmissionWebhooks,
        ),
        (
            "{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/approval], verbs: [update]}",
            CsrApproval,
        ),
        ("{apiGroups: [certificates.k8s.io], resources: [signers], verbs: [approve]}", CsrApproval),
        // Exec- and credential-equivalents that are easy to miss.
        ("{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [update]}", PodExec),
        ("{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [patch]}", PodExec),
        ("{apiGroups: [''], resources: [pods/exec], verbs: [get]}", PodExec),
        ("{apiGroups: [''], resources: [secrets], verbs: [create]}", ServiceAccountTokens),
        ("{apiGroups: [''], resources: [pods/proxy], verbs: [get]}", Proxy),
        ("{apiGroups: [''], resources: [services/proxy], verbs: [create]}", Proxy),
        ("{apiGroups: [''], resources: [nodes/proxy], verbs: [create]}", NodesProxy),
        ("{apiGroups: [authentication.k8s.io], resources: [userextras/scopes], verbs: [impersonate]}", Impersonate),
        ("{apiGroups: [certificates.k8s.io], resources: [signers], verbs: [sign]}", CsrApproval),
        (
            "{apiGroups: [certificates.k8s.io], resources: [certificatesigningrequests/nodeclient], verbs: [create]}",
            CsrApproval,
        ),
        ("{apiGroups: [''], resources: [pods], verbs: [patch]}", CreateWorkloads),
    ];
    for (r, tag) in cases {
        assert_eq!(tags(&[r]), [tag], "{r}");
    }
    // Read-only access to ordinary objects, and reading pods' logs, are not risky.
    assert!(tags(&[
        "{apiGroups: ['', apps], resources: [pods, pods/log, deployments], verbs: [get, list, watch]}"
    ])
    .is_empty());
    // The verb matters: deleting secrets is not reading them, reading an
    // ephemeral container's spec is not running one.
    assert!(tags(&["{apiGroups: [''], resources: [secrets], verbs: [delete]}"]).is_empty());
    assert!(tags(&["{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [get]}"]).is_empty());
    // Asking the API server whether a token is valid mints nothing.
    assert!(
        tags(&["{apiGroups: [authentication.k8s.io], resources: [tokenreviews], verbs: [create]}"])
            .is_empty()
    );
}

#[test]
fn wildcards_are_tagged_and_match_what_they_cover() {
    // `*` covers subresources too: get on pods/exec and nodes/proxy opens streams.
    assert_eq!(
        tags(&["{apiGroups: [''], resources: ['*'], verbs: [get]}"]),
        [
            RiskTag::Wildcard,
            RiskTag::SecretsRead,
            RiskTag::PodExec,
            RiskTag::NodesProxy,
            RiskTag::Proxy
        ]
    );
    assert_eq!(
        tags(&["{apiGroups: [''], resources: ['pods/*'], verbs: [create]}"]),
        [RiskTag::Wildcard, RiskTag::PodExec, RiskTag::Proxy]
    );
    assert_eq!(
        tags(&["{apiGroups: [''], resources: ['pods/*'], verbs: [patch]}"]),
        [RiskTag::Wildcard, RiskTag::PodExec, RiskTag::Proxy]
    );
    // Everything on everything is cluster-admin, said once.
    assert_eq!(
        tags(&[
            "{apiGroups: ['*'], resources: ['*'], verbs: ['*']}",
            "{nonResourceURLs: ['*'], verbs: ['*']}"
        ]),
        [RiskTag::ClusterAdmin]
    );
}

const AGGREGATED: &str = r#"
kind: ClusterRole
metadata: {name: monitoring}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {acme.io/aggregate-to-monitoring: "true"}}]
rules: []
---
kind: ClusterRole
metadata: {name: monitoring-pods, labels: {acme.io/aggregate-to-monitoring: "true"}}
rules: [{apiGroups: [""], resources: [pods], verbs: [get, list]}]
---
kind: ClusterRole
metadata: {name: monitoring-secrets, labels: {acme.io/aggregate-to-monitoring: "true", acme.io/nested: "true"}}
aggregationRule:
  clusterRoleSelectors: [{matchLabels: {acme.io/aggregate-to-monitoring: "true"}}]
rules: [{apiGroups: [""], resources: [secrets], verbs: [get]}]
---
kind: ClusterRole
metadata: {name: unrelated, labels: {acme.io/aggregate-to-other: "true"}}
rules: [{apiGroups: [""], resources: [nodes/proxy], verbs: [get]}]
"#;

#[test]
fn aggregated_cluster_roles_take_the_rules_of_the_roles_their_selectors_match() {
    let inv = cluster(AGGREGATED);
    let role = RoleRef {
        kind: RoleKind::ClusterRole,
        name: "monitoring".into(),
    };
    let rules = effective_rules(&inv, &role, None).unwrap();
    assert_eq!(
        rules.len(),
        2,
        "pods and secrets, each once despite the cycle: {rules:#?}"
    );
    assert_eq!(risk_tags(&rules)[0].0, RiskTag::SecretsRead);
    assert!(risk_tags(&rules)[0]
        .1
        .contains("reads Secrets: get on secrets (core)"));
    // The digest does not depend on rule order.
    let mut reversed = rules.clone();
    reversed.reverse();
    assert_eq!(digest(&rules), digest(&reversed));
    assert!(effective_rules(
        &inv,
        &RoleRef {
            kind: RoleKind::ClusterRole,
            name: "nope".into()
        },
        None
    )
    .is_none());
}

fn assessed(extra: &str, subject: &str) -> Assessment {
    let inv = cluster(&format!("{PAYMENTS}{extra}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    let item = item_of(&l, subject);
    let b = inv
        .binding(
            item.spec.binding.kind,
            item.spec.binding.namespace.as_deref(),
            &item.spec.binding.name,
        )
        .unwrap();
    assess(&inv, b, &item.spec.subject, None)
}

fn codes(a: &Assessment) -> Vec<FindingCode> {
    a.findings.iter().map(|f| f.code).collect()
}

#[test]
fn risky_roles_are_recommended_for_review_with_the_rules_in_words() {
    let a = assessed("", "bob");
    assert_eq!(a.recommendation, Recommendation::Review);
    assert_eq!(a.risk, [RiskTag::SecretsRead, RiskTag::CreateWorkloads]);
    assert_eq!(a.findings[0].message, "reads Secrets: get,list on secrets (core)");
}

#[test]
fn harmless_roles_are_recommended_for_acceptance_saying_so() {
    let view = "\n---\nkind: RoleBinding\nmetadata: {name: v, namespace: payments}\nroleRef: {kind: ClusterRole, name: view}\nsubjects: [{kind: User, name: carol}]\n";
    let a = assessed(view, "carol");
    assert_eq!(a.recommendation, Recommendation::Accept);
    assert_eq!(codes(&a), [FindingCode::NothingRisky]);
    assert_eq!(
        a.findings[0].message,
        "ClusterRole/view grants 1 rule(s), none of them risky"
    );
}

#[test]
fn exec_by_an_ephemeral_container_is_never_recommended_for_acceptance() {
    let debug = "\n---\nkind: Role\nmetadata: {name: debug, namespace: payments}\nrules: [{apiGroups: [''], resources: [pods/ephemeralcontainers], verbs: [update]}]\n---\nkind: RoleBinding\nmetadata: {name: d, namespace: payments}\nroleRef: {kind: Role, name: debug}\nsubjects: [{kind: User, name: carol}]\n";
    let a = assessed(debug, "carol");
    assert_eq!(a.recommendation, Recommendation::Review);
    assert_eq!(a.risk, [RiskTag::PodExec]);
    assert!(
        a.findings[0].message.contains("ephemeral container"),
        "{:?}",
        a.findings
    );
}

#[test]
fn stale_bindings_are_recommended_for_revocation() {
    let missing_role = "\n---\nkind: RoleBinding\nmetadata: {name: old, namespace: payments}\nroleRef: {kind: Role, name: reports}\nsubjects: [{kind: User, name: erin}]\n";
    let a = assessed(missing_role, "erin");
    assert_eq!(a.recommendation, Recommendation::Revoke);
    assert_eq!(codes(&a), [FindingCode::RoleMissing]);
    assert!(a.findings[0]
        .message
        .starts_with("Role/reports does not exist in namespace payments"));

    let missing_sa = "\n---\nkind: RoleBinding\nmetadata: {name: migrate, namespace: payments}\nroleRef: {kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: migrate-2025}]\n";
    let a = assessed(missing_sa, "migrate-2025");
    assert_eq!(a.recommendation, Recommendation::Revoke);
    assert_eq!(codes(&a), [FindingCode::ServiceAccountMissing]);
    assert!(a.findings[0]
        .message
        .contains("ServiceAccount payments/migrate-2025 does not exist"));

    let present = format!(
        "{missing_sa}---\nkind: ServiceAccount\nmetadata: {{name: migrate-2025, namespace: payments}}\n"
    );
    assert_eq!(
        assessed(&present, "migrate-2025").recommendation,
        Recommendation::Accept
    );

    let gone_ns = "\n---\nkind: ClusterRoleBinding\nmetadata: {name: ci}\nroleRef: {kind: ClusterRole, name: view}\nsubjects: [{kind: ServiceAccount, name: bot, namespace: ci}]\n";
    let a = assessed(gone_ns, "bot");
    assert_eq!(codes(&a), [FindingCode::NamespaceGone]);
    assert_eq!(a.recommendation, Recommendation::Revoke);
}

#[test]
fn a_partial_export_never_makes_objects_look_missing() {
    // Only bindings: nothing is known about roles, namespaces or ServiceAccounts.
    let mut inv = Inventory::default();
    let rb: RoleBinding = serde_saphyr::from_str(
        "metadata: {name: migrate, namespace: ci, uid: u1}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}\nsubjects: [{kind: ServiceAccount, name: bot}]",
    )
    .unwrap();
    inv.add_role_binding(&rb);
    let b = &inv.bindings[0];
    let a = assess(&inv, b, &b.subjects[0], None);
    assert_eq!(codes(&a), [FindingCode::RoleNotSeen]);
    assert_eq!(a.recommendation, Recommendation::Review);
}

#[test]
fn a_role_changed_under_review_is_reviewed_again() {
    let inv = cluster(PAYMENTS);
    let l = launched(&campaign(TWO_LEVELS), &inv);
    let mut item = item_of(&l, "bob");
    let now = eval(&item, &[], &inv, "10-02 12:00");
    assert!(!now
        .status
        .reasons
        .iter()
        .any(|f| f.code == FindingCode::RulesChanged));
    item.spec.rules_digest = "fnv64:0000000000000000".into();
    let changed = eval(&item, &[], &inv, "10-02 12:00");
    assert_eq!(changed.status.reasons[0].code, FindingCode::RulesChanged);
    assert_eq!(changed.status.recommendation, Some(Recommendation::Review));
    assert_eq!(changed.status.risk_summary.as_deref(), Some("secrets,workloads"));
}
