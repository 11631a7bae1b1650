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
        denial(&eval(&[simple_policy()], &req, &[], "10:01")).0,
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
