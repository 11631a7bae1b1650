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
subjects: [{kind: Group, name: "system:masters"}, {kind: User, name: mallory}]
---
kind: ClusterRoleBinding
metadata: {name: "system:controller:job-controller"}
roleRef: {kind: ClusterRole, name: "system:controller:job-controller"}
subjects: [{kind: ServiceAccount, name: job-controller, namespace: kube-system}]
---
kind: ClusterRoleBinding
metadata: {name: "system:basic-user"}
roleRef: {kind: ClusterRole, name: "system:basic-user"}
subjects: [{kind: Group, name: "system:authenticated"}]
"#;

#[test]
fn system_identities_and_bootstrap_bindings_are_left_out_unless_the_scope_includes_them() {
    let inv = cluster(&format!("{PAYMENTS}{SYSTEM}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    // A person added to a bootstrap binding is reviewed.
    assert_eq!(subjects(&l), ["bob", "mallory", "payments-devs"]);
    assert_eq!(
        reasons(&l),
        [
            ("system:masters".to_string(), ExclusionReason::SystemIdentity),
            ("job-controller".to_string(), ExclusionReason::BootstrapBinding),
            (
                "system:authenticated".to_string(),
                ExclusionReason::BootstrapBinding
            ),
        ]
    );
    let all = campaign(&format!("{TWO_LEVELS}scope: {{includeSystem: true}}"));
    assert_eq!(
        subjects(&launched(&all, &inv)),
        [
            "bob",
            "job-controller",
            "mallory",
            "payments-devs",
            "system:authenticated",
            "system:masters"
        ]
    );
}

/// What a tenant can write in her own namespace is reviewed, whatever it is
/// named: `system:` names, the API server's group names in a binding of hers, a
/// bootstrap binding's name in a namespace that is not kube-system, a
/// controller's binding name with another role.
#[test]
fn names_a_tenant_chooses_do_not_make_access_system() {
    let tenant = r#"
---
kind: RoleBinding
metadata: {name: "system:teamx-ops", namespace: payments}
roleRef: {kind: ClusterRole, name: edit}
subjects: [{kind: User, name: carl}, {kind: Group, name: "system:authenticated"}, {kind: Group, name: "system:serviceaccounts:payments"}]
---
kind: RoleBinding
metadata: {name: "system::leader-locking-kube-scheduler", namespace: payments}
roleRef: {kind: Role, name: "system::leader-locking-kube-scheduler"}
subjects: [{kind: ServiceAccount, name: kube-scheduler, namespace: kube-system}]
---
kind: ClusterRoleBinding
metadata: {name: "system:controller:job-controller"}
roleRef: {kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: job-controller, namespace: kube-system}]
"#;
    let inv = cluster(&format!("{PAYMENTS}{tenant}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    assert!(l.excluded.is_empty(), "{:?}", l.excluded);
    assert_eq!(
        subjects(&l),
        [
            "bob",
            "carl",
            "job-controller",
            "kube-scheduler",
            "payments-devs",
            "system:authenticated",
            "system:serviceaccounts:payments"
        ]
    );
}

#[test]
fn a_service_account_written_as_a_user_is_reviewed_as_that_service_account() {
    let as_user = r#"
---
kind: RoleBinding
metadata: {name: builder-edit, namespace: payments}
roleRef: {kind: ClusterRole, name: edit}
subjects: [{kind: User, name: "system:serviceaccount:payments:builder"}, {kind: ServiceAccount, name: builder}]
"#;
    let l = launched(&campaign(TWO_LEVELS), &cluster(&format!("{PAYMENTS}{as_user}")));
    let builder: Vec<_> = l
        .items
        .iter()
        .filter(|i| i.spec.binding.name == "builder-edit")
        .collect();
    assert_eq!(builder.len(), 1, "one identity, one item");
    let s = &builder[0].spec.subject;
    assert_eq!(
        (s.kind, s.name.as_str(), s.namespace.as_deref()),
        (SubjectKind::ServiceAccount, "builder", Some("payments"))
    );
}

const JIT_REQUEST: &str = r#"
---
kind: ApprovalRequest
apiVersion: gatehouse.dev/v1alpha1
metadata: {name: dana-view, namespace: payments, uid: uid-dana-view}
spec: {requester: {username: dana}, role: {kind: ClusterRole, name: view}}
"#;

#[test]
fn gatehouse_jit_grants_are_left_out_unless_the_scope_includes_them() {
    let jit = r#"
---
kind: RoleBinding
metadata:
  name: gatehouse-dana-view-30df7350
  namespace: payments
  labels: {app.kubernetes.io/managed-by: gatehouse}
  ownerReferences: [{apiVersion: gatehouse.dev/v1alpha1, kind: ApprovalRequest, name: dana-view, uid: uid-dana-view, controller: true}]
roleRef: {kind: ClusterRole, name: view}
subjects: [{kind: User, name: dana}]
"#;
    let inv = cluster(&format!("{PAYMENTS}{jit}{JIT_REQUEST}"));
    let l = launched(&campaign(TWO_LEVELS), &inv);
    assert!(!subjects(&l).contains(&"dana".to_string()));
    assert_eq!(reasons(&l)[0].1, ExclusionReason::GatehouseGrant);
    let with = campaign(&format!("{TWO_LEVELS}scope: {{includeGatehouseGrants: true}}"));
    assert!(subjects(&launched(&with, &inv)).contains(&"dana".to_string()));

    // Without its request, or with Gatehouse's labels only, it is an ordinary binding.
    let orphan = cluster(&format!("{PAYMENTS}{jit}"));
    assert!(subjects(&launched(&campaign(TWO_LEVELS), &orphan)).contains(&"dana".to_string()));
    let labels_only = jit.replace("  ownerReferences:", "  ownerRefs_gone:");
    let labels_only = labels_only
        .lines()
        .filter(|l| !l.contains("ownerRefs_gone"))
        .collect::<Vec<_>>()
        .join("\n");
    let copied = cluster(&format!("{PAYMENTS}{labels_only}{JIT_REQUEST}"));
    assert!(subjects(&launched(&campaign(TWO_LEVELS), &copied)).contains(&"dana".to_string()));
}

/// RBAC takes names of any length; the item schema holds 253 characters. Such
/// a binding is skipped with its reason, and the rest of the run launches.
#[test]
fn a_subject_an_item_cannot_hold_is_skipped_with_its_reason() {
    let long = format!(
        r#"
---
kind: RoleBinding
metadata: {{name: long-subject, namespace: payments}}
roleRef: {{kind: ClusterRole, name: view}}
subjects: [{{kind: User, name: "{}"}}, {{kind: User, name: carol}}]
"#,
        "x".repeat(300)
    );
    let l = launched(&campaign(TWO_LEVELS), &cluster(&format!("{PAYMENTS}{long}")));
    assert_eq!(subjects(&l), ["bob", "carol", "payments-devs"]);
    assert_eq!(l.skipped.len(), 1);
    let s = &l.skipped[0];
    assert_eq!(s.reason, crate::api::SkipReason::Invalid);
    assert_eq!(s.binding, "RoleBinding payments/long-subject");
    assert!(s.message.contains("300 characters"), "{}", s.message);
    assert!(s.subject.as_ref().unwrap().len() < 310, "the subject is cut");
}

#[test]
fn a_run_creates_at_most_the_item_cap_and_lists_the_rest() {
    let c = campaign(&format!("{TWO_LEVELS}maxItemsPerRun: 1"));
    let l = launched(&c, &cluster(PAYMENTS));
    assert_eq!(l.items.len(), 1);
    assert_eq!(l.capped, Some(1));
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].reason, crate::api::SkipReason::ItemCap);
    // The same items every time: the first in name order.
    assert_eq!(names(&l), names(&launched(&c, &cluster(PAYMENTS))));
    assert_eq!(launched(&campaign(TWO_LEVELS), &cluster(PAYMENTS)).capped, None);
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

/// Item names end in 64 bits of SHA-256 over the whole key, and the key's parts
/// cannot slide into each other.
#[test]
fn item_names_end_in_sixty_four_bits_of_sha256_over_the_whole_key() {
    use crate::certify::naming::key_hash;
    let l = launched(&campaign(TWO_LEVELS), &cluster(PAYMENTS));
    for name in names(&l) {
        let hash = name.rsplit('-').next().unwrap();
        assert_eq!(hash.len(), 16, "{name}");
        assert!(hash.bytes().all(|c| c.is_ascii_hexdigit()), "{name}");
        assert!(name.len() <= 253);
    }
    assert_ne!(key_hash(&["a/b", "c"]), key_hash(&["a", "b/c"]));
    assert_ne!(key_hash(&["ab", ""]), key_hash(&["a", "b"]));
    // SHA-256("") starts e3b0c44298fc1c14: the parts are hashed, not a checksum of them.
    assert_eq!(key_hash(&[]), "e3b0c44298fc1c14");
}

#[test]
fn a_binding_memory_holds_only_in_part_is_skipped_whole_and_never_judged_gone() {
    // The operator's copy of a binding of 15,000 subjects (store::trim):
    // its first subjects and the mark saying how many it has.
    let marked = PAYMENTS.replace(
        "name: devs-edit, namespace: payments,",
        "name: devs-edit, namespace: payments, annotations: {gatehouse.dev/cached-subjects-truncated-from: \"15000\"},",
    );
    let inv = cluster(&marked);
    let l = launched(&campaign(TWO_LEVELS), &inv);
    assert!(
        l.items.is_empty(),
        "part of a binding is never reviewed as if it were all"
    );
    assert_eq!(l.skipped.len(), 1);
    assert_eq!(l.skipped[0].reason, crate::api::SkipReason::TooLarge);
    assert!(
        l.skipped[0].message.contains("15000 subjects"),
        "{}",
        l.skipped[0].message
    );

    // An item of an earlier run whose subject is past what memory holds: not
    // known to be gone, so not Done, and nothing is written.
    let earlier = item_of(&launched(&campaign(TWO_LEVELS), &cluster(PAYMENTS)), "bob");
    let without_bob = marked.replace("- {kind: User, name: bob}\n", "");
    let (status, step) = crate::certify::remediation::plan(&earlier.spec, &cluster(&without_bob), None);
    assert_eq!(
        status.state,
        crate::api::RemediationState::Pending,
        "{}",
        status.message
    );
    assert!(step.is_none());
}
