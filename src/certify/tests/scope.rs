//! Scope → items.

use super::*;
use crate::{
    api::{AccessCampaignSpec, SubjectKind},
    certify::scope::{glob, parse_owners, ExclusionReason},
};

/// The subjects of the run's items, sorted.
fn subjects(l: &Launch) -> Vec<String> {
    let mut s: Vec<String> = l.items.iter().map(|i| i.spec.subject.name.clone()).collect();
    s.sort();
    s
}

fn reasons(l: &Launch) -> Vec<(String, ExclusionReason)> {
    l.excluded
        .iter()
        .map(|e| {
            let who = e.subject.as_ref().map_or(e.binding.clone(), |s| s.name.clone());
            (who, e.reason.clone())
        })
        .collect()
}

#[test]
fn one_item_per_binding_and_subject_with_a_name_that_does_not_change() {
    let inv = cluster(PAYMENTS);
    let c = campaign(TWO_LEVELS);
    let first = launched(&c, &inv);
    assert_eq!(subjects(&first), ["bob", "payments-devs"]);
    assert_eq!(names(&first), names(&launched(&c, &inv)), "same run, same names");
    let bob = item_of(&first, "bob");
    assert!(
        bob.name_any()
            .starts_with("quarterly-20261001-0700-devs-edit-bob-"),
        "{}",
        bob.name_any()
    );
    assert_eq!(bob.namespace().as_deref(), Some("gatehouse-system"));
    assert_eq!(bob.labels()["gatehouse.dev/run"], "quarterly-20261001-0700");
    assert_eq!(bob.spec.binding.uid, "uid-devs-edit");
    assert_eq!(bob.owner_references()[0].name, "quarterly");

    // The binding deleted and re-created under the same name is another grant: another item.
    let recreated = cluster(&PAYMENTS.replace(
        "name: devs-edit, namespace",
        "name: devs-edit, uid: new, namespace",
    ));
    assert_ne!(names(&first), names(&launched(&c, &recreated)));
}

#[test]
fn a_subject_listed_twice_in_a_binding_is_one_item() {
    let inv = cluster(&PAYMENTS.replace(
        "- {kind: User, name: bob}",
        "- {kind: User, name: bob}\n- {kind: User, name: bob}",
    ));
    assert_eq!(
        subjects(&launched(&campaign(TWO_LEVELS), &inv)),
        ["bob", "payments-devs"]
    );
}

const SYSTEM: &str = r#"
---
kind: ClusterRole
metadata: {name: cluster-admin}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}]
---
kind: ClusterRoleBinding
metadata: {name: cluster-admin}
roleRef: {kind: ClusterRole, name: cluster-admin}
subjects: [{kind: Group, name: "system:masters"}]
---
kind: ClusterRoleBinding
metadata: {name: "system:controller:job-controller"}
roleRef: {kind: ClusterRole, name: edit}
subjects: [{kind: ServiceAccount, name: job-controller, namespace: kube-system}]
"#;

#[test]
fn system_subjects_and_bindings_are_left_out_unless_the_scope_includes_them() {
    let inv = cluster(&format!("{PAYMENTS}{SYSTEM}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    assert_eq!(subjects(&l), ["bob", "payments-devs"]);
    assert_eq!(
        reasons(&l),
        [
            ("system:masters".to_string(), ExclusionReason::System),
            (
                "ClusterRoleBinding system:controller:job-controller".to_string(),
                ExclusionReason::System
            ),
        ]
    );
    let all = campaign(&format!("{TWO_LEVELS}scope: {{includeSystem: true}}"));
    assert_eq!(
        subjects(&launched(&all, &inv)),
        ["bob", "job-controller", "payments-devs", "system:masters"]
    );
}

#[test]
fn gatehouse_jit_grants_are_left_out_unless_the_scope_includes_them() {
    let jit = r#"
---
kind: RoleBinding
metadata: {name: gatehouse-dana-view-30df7350, namespace: payments, labels: {app.kubernetes.io/managed-by: gatehouse}}
roleRef: {kind: ClusterRole, name: view}
subjects: [{kind: User, name: dana}]
"#;
    let inv = cluster(&format!("{PAYMENTS}{jit}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    assert!(!subjects(&l).contains(&"dana".to_string()));
    assert_eq!(reasons(&l)[0].1, ExclusionReason::GatehouseGrant);
    let with = campaign(&format!("{TWO_LEVELS}scope: {{includeGatehouseGrants: true}}"));
    assert!(subjects(&launched(&with, &inv)).contains(&"dana".to_string()));
}

const MORE: &str = r#"
---
kind: Namespace
metadata: {name: checkout, labels: {team: checkout, tier: prod}}
---
kind: RoleBinding
metadata: {name: view-team, namespace: checkout, labels: {owner: checkout}}
roleRef: {kind: ClusterRole, name: view}
subjects: [{kind: User, name: carol}, {kind: ServiceAccount, name: ci-bot, namespace: checkout}]
---
kind: ClusterRoleBinding
metadata: {name: auditors}
roleRef: {kind: ClusterRole, name: view}
subjects: [{kind: Group, name: auditors}]
"#;

fn scoped(scope_yaml: &str) -> Vec<String> {
    let inv = cluster(&format!("{PAYMENTS}{MORE}"));
    subjects(&launched(
        &campaign(&format!("{TWO_LEVELS}scope: {scope_yaml}")),
        &inv,
    ))
}

#[test]
fn every_scope_filter_narrows_the_run() {
    assert_eq!(
        scoped("{}"),
        ["auditors", "bob", "carol", "ci-bot", "payments-devs"]
    );
    assert_eq!(scoped("{bindingKinds: [ClusterRoleBinding]}"), ["auditors"]);
    // Namespaces filter RoleBindings only; ClusterRoleBindings stay.
    assert_eq!(
        scoped("{namespaces: {names: [checkout]}}"),
        ["auditors", "carol", "ci-bot"]
    );
    assert_eq!(
        scoped("{namespaces: {selector: {matchLabels: {tier: prod}}}}"),
        ["auditors", "carol", "ci-bot"]
    );
    assert_eq!(
        scoped("{roles: [{kind: ClusterRole, name: edit}]}"),
        ["bob", "payments-devs"]
    );
    assert_eq!(
        scoped("{subjectKinds: [ServiceAccount, Group]}"),
        ["auditors", "ci-bot", "payments-devs"]
    );
    assert_eq!(
        scoped("{bindingSelector: {matchLabels: {owner: checkout}}}"),
        ["carol", "ci-bot"]
    );
    assert_eq!(
        scoped("{exclude: {subjects: ['checkout/*', 'payments-*']}}"),
        ["auditors", "bob", "carol"]
    );
    assert_eq!(
        scoped("{exclude: {bindings: ['*-team', 'audit*']}}"),
        ["bob", "payments-devs"]
    );
}

#[test]
fn bindings_created_after_the_run_started_wait_for_the_next_run() {
    let late = PAYMENTS.replace("2026-03-01T10:00:00Z", "2026-10-02T10:00:00Z");
    let l = launched(&campaign(TWO_LEVELS), &cluster(&late));
    assert!(l.items.is_empty());
    assert_eq!(l.excluded[0].reason, ExclusionReason::CreatedAfterRun);
}

#[test]
fn namespace_owners_come_from_the_namespace_annotation() {
    let l = launched(&campaign(TWO_LEVELS), &cluster(&format!("{PAYMENTS}{MORE}")));
    let bob = item_of(&l, "bob");
    let owners = &bob.spec.review.levels[0];
    assert_eq!(owners.namespace_owners.groups, ["payments-leads"]);
    assert_eq!(owners.namespace_owners.users, ["lena"]);
    assert!(
        bob.spec.review.levels[1].namespace_owners.is_empty(),
        "security has no namespaceOwners"
    );
    // checkout has no owners annotation, and a ClusterRoleBinding has no namespace.
    assert!(item_of(&l, "carol").spec.review.levels[0]
        .namespace_owners
        .is_empty());
    assert!(item_of(&l, "auditors").spec.review.levels[0]
        .namespace_owners
        .is_empty());

    let parsed = parse_owners(" group:a ,user:b, c,, group: ");
    assert_eq!(parsed.groups, ["a"]);
    assert_eq!(parsed.users, ["b", "c", "group:"]);
}

#[test]
fn the_item_snapshot_copies_the_campaign_rules_and_the_subject() {
    let c = campaign(&format!(
        "{TWO_LEVELS}justification: RequireForRevoke\nonNoDecision: Recommendation\nremediation: Automatic\nreviewNamespace: audits\nescalation: {{after: 168h, groups: [ciso]}}"
    ));
    let spec: &AccessCampaignSpec = &c.spec;
    let l = launched(&c, &cluster(&format!("{PAYMENTS}{MORE}")));
    let bot = item_of(&l, "ci-bot");
    assert_eq!(bot.namespace().as_deref(), Some("audits"));
    assert_eq!(bot.spec.subject.kind, SubjectKind::ServiceAccount);
    assert_eq!(bot.spec.subject.namespace.as_deref(), Some("checkout"));
    assert_eq!(bot.spec.review.on_no_decision, spec.on_no_decision);
    assert_eq!(bot.spec.review.escalation, spec.escalation);
    assert_eq!(bot.spec.due_at, at("10-15 07:00"));
    assert!(bot.spec.rules_digest.starts_with("fnv64:"));
}

#[test]
fn exclude_patterns_match_with_stars() {
    assert!(glob("system:*", "system:masters"));
    assert!(glob("*-team", "view-team"));
    assert!(glob("a*c*e", "abcde"));
    assert!(!glob("a*c*e", "abcd"));
    assert!(glob("exact", "exact"));
    assert!(!glob("exact", "exactly"));
    assert!(glob("*", ""));
}
