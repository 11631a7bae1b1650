//! Scenarios: policy selection.

use super::*;

#[test]
fn the_only_matching_policy_is_chosen() {
    let other = policy(
        "other",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: edit}]\nnamespaces: {names: [team]}\napproval: {reviewers: {groups: [sre]}}",
    );
    let ev = eval(&[other, simple_policy()], &dana_view(), &[], "10:01");
    assert_eq!(ev.status.phase, Phase::Pending);
    assert_eq!(ev.status.requirements.as_ref().unwrap().policy, "simple");
}

#[test]
fn no_matching_policy_is_denied_naming_the_policies_that_grant_the_role() {
    let mut req = dana_view();
    req.spec.requester.groups = vec!["marketing".into()];
    let (reason, message) = denial(&eval(&[simple_policy()], &req, &[], "10:01"));
    assert_eq!(reason, "NoMatchingPolicy");
    assert!(
        message.contains("policies that grant ClusterRole/view: simple"),
        "{message}"
    );
    let mut req = dana_view();
    req.spec.role.name = "cluster-admin".into();
    let (_, message) = denial(&eval(&[simple_policy()], &req, &[], "10:01"));
    assert!(
        message.contains("no policy grants ClusterRole/cluster-admin"),
        "{message}"
    );
}

#[test]
fn two_matching_policies_without_a_name_are_ambiguous() {
    let mut twin = simple_policy();
    twin.metadata.name = Some("twin".into());
    let (reason, message) = denial(&eval(
        &[twin.clone(), simple_policy()],
        &dana_view(),
        &[],
        "10:01",
    ));
    assert_eq!(reason, "AmbiguousPolicy");
    assert!(
        message.contains("simple, twin") && message.contains("spec.policy"),
        "{message}"
    );
    let mut named = dana_view();
    named.spec.policy = Some("twin".into());
    let ev = eval(&[twin, simple_policy()], &named, &[], "10:01");
    assert_eq!(ev.status.requirements.unwrap().policy, "twin");
}

#[test]
fn a_named_policy_must_exist_and_allow_the_request() {
    let mut req = dana_view();
    req.spec.policy = Some("nope".into());
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:06")).0,
        "PolicyNotFound"
    );

    req.spec.policy = Some("simple".into());
    req.spec.requester.groups = vec!["ops".into()];
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "RequesterNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.spec.role.name = "edit".into();
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "RoleNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.metadata.namespace = Some("prod".into());
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "NamespaceNotAllowed"
    );

    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    req.spec.scope = crate::api::Scope::Cluster;
    assert_eq!(
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
        "ClusterScopeNotAllowed"
    );
}

#[test]
fn cluster_scope_needs_the_policy_to_allow_it_and_uses_a_cluster_role_binding() {
    let p = policy(
        "cluster",
        "requesters: {users: [dana]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {allowClusterScope: true}\napproval: {reviewers: {users: [erin]}}",
    );
    let mut req = dana_view();
    req.spec.scope = crate::api::Scope::Cluster;
    let ev = eval(&[p], &req, &[approve("erin", &[], "10:05")], "10:06");
    let b = binding(&ev);
    assert_eq!(b.target.kind, BindingKind::ClusterRoleBinding);
    assert_eq!(b.target.namespace, None);
    assert!(
        b.target.name.starts_with("gatehouse-team.dana-view-"),
        "{}",
        b.target.name
    );
}

#[test]
fn namespaces_can_be_selected_by_label() {
    let p = policy(
        "labelled",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {selector: {matchLabels: {tier: prod}}}\napproval: {reviewers: {groups: [sre]}}",
    );
    let prod: BTreeMap<String, String> = [("tier".to_string(), "prod".to_string())].into();
    let ev = eval_with(std::slice::from_ref(&p), &dana_view(), &[], "10:01", |i| {
        i.namespace_labels = Some(&prod)
    });
    assert_eq!(ev.status.phase, Phase::Pending);
    let dev: BTreeMap<String, String> = [("tier".to_string(), "dev".to_string())].into();
    let ev = eval_with(std::slice::from_ref(&p), &dana_view(), &[], "10:01", |i| {
        i.namespace_labels = Some(&dev)
    });
    assert_eq!(denial(&ev).0, "NoMatchingPolicy");
    // Labels unknown: a selector cannot match.
    assert_eq!(
        denial(&eval(&[p], &dana_view(), &[], "10:01")).0,
        "NoMatchingPolicy"
    );
}

#[test]
fn an_invalid_policy_denies_with_the_field_named() {
    let p = policy(
        "broken",
        "requesters: {groups: [dev]}\nroles: [{kind: ClusterRole, name: view}]\nnamespaces: {names: [team]}\napproval: {reviewers: {groups: [sre]}}\ntimeWindow: {timezone: Mars/Olympus, start: '08:00', end: '18:00'}",
    );
    let (reason, message) = denial(&eval(&[p], &dana_view(), &[], "10:01"));
    assert_eq!(reason, "InvalidPolicy");
    assert!(message.contains("Mars/Olympus"), "{message}");
}

#[test]
fn a_named_policy_is_waited_for_before_the_request_is_denied() {
    // A GitOps sync applies the policy and the request together; the operator
    // may see the request first. It stays Pending, says why, and is evaluated
    // again when the wait ends (or sooner, when the policy appears).
    let mut req = dana_view();
    req.spec.policy = Some("simple".into());
    let waiting = eval(&[], &req, &[approve("bob", &["sre"], "10:02")], "10:03");
    assert_eq!(waiting.status.phase, Phase::Pending);
    assert!(waiting.status.requirements.is_none());
    assert!(waiting.actions.is_empty() && waiting.verdicts.is_empty());
    let c = cond(&waiting, APPROVED);
    assert_eq!(c.reason, "PolicyNotFound");
    assert!(
        c.message.contains("waits for it until 2026-11-23T10:05:00Z"),
        "{}",
        c.message
    );
    assert_eq!(waiting.next_deadline, Some(at("10:05")));
    assert_eq!(waiting.ending, None);
    // The policy appears within the wait: decided as if it had always been there.
    let decided = eval(
        &[simple_policy()],
        &req,
        &[approve("bob", &["sre"], "10:02")],
        "10:04",
    );
    assert_eq!(decided.status.phase, Phase::Active);
    // It never does: denied when the wait ends, not before.
    let denied = eval(&[], &req, &[], "10:05");
    assert_eq!(denial(&denied).0, "PolicyNotFound");
    assert_eq!(denied.status.completed_at, Some(at("10:05")));
}

#[test]
fn nothing_is_granted_in_a_protected_namespace_whatever_the_policy() {
    // The policy covers the namespace (here by name; a label selector reaches
    // it as easily), but it is the operator's own.
    let protected = vec!["team".to_string(), "kube-system".to_string()];
    let ev = eval_with(&[simple_policy()], &dana_view(), &[], "10:01", |i| {
        i.protected_namespaces = &protected
    });
    let (reason, message) = denial(&ev);
    assert_eq!(reason, "ProtectedNamespace");
    assert!(message.contains("namespace team is protected"), "{message}");
    assert!(message.contains("--allow-grants-in team"), "{message}");
    // Even naming the policy.
    let mut named = dana_view();
    named.spec.policy = Some("simple".into());
    let ev = eval_with(&[simple_policy()], &named, &[], "10:01", |i| {
        i.protected_namespaces = &protected
    });
    assert_eq!(denial(&ev).0, "ProtectedNamespace");
    // Another namespace is not affected.
    let elsewhere = vec!["gatehouse-system".to_string()];
    let ev = eval_with(&[simple_policy()], &dana_view(), &[], "10:01", |i| {
        i.protected_namespaces = &elsewhere
    });
    assert_eq!(ev.status.phase, Phase::Pending);
    assert!(ev.status.requirements.is_some());
}
