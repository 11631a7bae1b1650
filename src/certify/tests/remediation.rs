//! Remediation of revoked access.

use std::collections::BTreeMap;

use super::*;
use crate::{
    api::{Decision::*, ManagerTool, RemediationAction, RemediationState},
    certify::remediation::{external_manager, RemediationStep},
};

fn revoked(cluster_yaml: &str, subject: &str, mode: &str) -> (AccessCertification, Vec<AccessReview>) {
    let inv = cluster(cluster_yaml);
    let l = launched(&campaign(&format!("{TWO_LEVELS}remediation: {mode}\n")), &inv);
    let item = item_of(&l, subject);
    let reviews = vec![
        review(&item, "olaf", &["ops-leads"], Revoke, "10-02 09:00"),
        review(&item, "sam", &["security"], Revoke, "10-03 09:00"),
    ];
    (item, reviews)
}

#[test]
fn a_revoked_subject_is_removed_from_a_shared_binding() {
    let inv = cluster(PAYMENTS);
    let (bob, reviews) = revoked(PAYMENTS, "bob", "Automatic");
    let ev = eval(&bob, &reviews, &inv, "10-04 00:00");
    let rem = ev.status.remediation.as_ref().unwrap();
    assert_eq!(rem.state, RemediationState::Pending);
    assert_eq!(rem.action, Some(RemediationAction::RemoveSubject));
    assert_eq!(
        rem.message,
        "the operator will remove User bob from RoleBinding payments/devs-edit"
    );
    let Some(RemediationStep::RemoveSubject { binding, subject }) = &ev.remediate else {
        panic!("expected RemoveSubject: {:?}", ev.remediate)
    };
    assert_eq!(
        (binding.name.as_str(), binding.uid.as_str()),
        ("devs-edit", "uid-devs-edit")
    );
    assert_eq!(subject.name, "bob");

    // Before the last level decides, nothing is removed.
    let ev = eval(&bob, &reviews[..1], &inv, "10-04 00:00");
    assert!(ev.status.remediation.is_none() && ev.remediate.is_none());
}

#[test]
fn the_only_subject_goes_with_its_binding() {
    let only_bob = PAYMENTS.replace("- {kind: Group, name: payments-devs}\n", "");
    let inv = cluster(&only_bob);
    let (bob, reviews) = revoked(&only_bob, "bob", "Automatic");
    let ev = eval(&bob, &reviews, &inv, "10-04 00:00");
    assert_eq!(
        ev.status.remediation.as_ref().unwrap().action,
        Some(RemediationAction::DeleteBinding)
    );
    assert!(matches!(
        ev.remediate,
        Some(RemediationStep::DeleteBinding { .. })
    ));
}

#[test]
fn manual_remediation_says_what_to_do_and_turns_done_when_it_is_done() {
    let inv = cluster(PAYMENTS);
    let (bob, reviews) = revoked(PAYMENTS, "bob", "Manual");
    let ev = eval(&bob, &reviews, &inv, "10-04 00:00");
    let rem = ev.status.remediation.as_ref().unwrap();
    assert_eq!(rem.state, RemediationState::Pending);
    assert!(rem
        .message
        .starts_with("to do by hand (remediation: Manual): remove User bob"));
    assert!(
        ev.remediate.is_none(),
        "the operator writes nothing in Manual mode"
    );

    let removed = cluster(&PAYMENTS.replace("- {kind: User, name: bob}\n", ""));
    let ev = eval(&bob, &reviews, &removed, "10-05 00:00");
    assert_eq!(
        ev.status.remediation.as_ref().unwrap().state,
        RemediationState::Done
    );
}

#[test]
fn access_removed_stays_removed_when_the_binding_goes_afterwards() {
    // The operator deleted bob's binding (he was its only subject), or removed
    // bob and someone deleted the rest later: the item stays Done, not Gone.
    let (mut bob, reviews) = revoked(PAYMENTS, "bob", "Automatic");
    let removed = cluster(&PAYMENTS.replace("- {kind: User, name: bob}\n", ""));
    bob.status = Some(eval(&bob, &reviews, &removed, "10-04 00:00").status);
    assert_eq!(
        bob.status.as_ref().unwrap().remediation.as_ref().unwrap().state,
        RemediationState::Done
    );
    let deleted = cluster(&PAYMENTS[..PAYMENTS.find("kind: RoleBinding").unwrap()]);
    let later = eval(&bob, &reviews, &deleted, "10-05 00:00");
    let rem = later.status.remediation.as_ref().unwrap();
    assert_eq!(rem.state, RemediationState::Done, "{}", rem.message);
    assert!(later.remediate.is_none());
}

#[test]
fn a_binding_re_created_or_deleted_since_the_review_is_never_touched() {
    let (bob, reviews) = revoked(PAYMENTS, "bob", "Automatic");
    let recreated = cluster(&PAYMENTS.replace(
        "name: devs-edit, namespace",
        "name: devs-edit, uid: other, namespace",
    ));
    let ev = eval(&bob, &reviews, &recreated, "10-04 00:00");
    let rem = ev.status.remediation.as_ref().unwrap();
    assert_eq!(rem.state, RemediationState::Gone);
    assert!(
        rem.message
            .contains("re-created (uid other, reviewed uid-devs-edit)"),
        "{}",
        rem.message
    );
    assert!(ev.remediate.is_none());

    let deleted = cluster(&PAYMENTS[..PAYMENTS.find("kind: RoleBinding").unwrap()]);
    let ev = eval(&bob, &reviews, &deleted, "10-04 00:00");
    assert_eq!(
        ev.status.remediation.as_ref().unwrap().state,
        RemediationState::Gone
    );
    assert!(ev.remediate.is_none());
}

#[test]
fn bindings_owned_by_helm_argo_cd_or_flux_are_changed_there() {
    for (meta, tool, name) in [
        (
            "labels: {app.kubernetes.io/managed-by: Helm}, annotations: {meta.helm.sh/release-name: ledger, meta.helm.sh/release-namespace: payments}",
            ManagerTool::Helm,
            "ledger",
        ),
        (
            "annotations: {argocd.argoproj.io/tracking-id: 'payments:rbac.authorization.k8s.io/RoleBinding:payments/devs-edit'}",
            ManagerTool::ArgoCD,
            "payments",
        ),
        (
            "labels: {kustomize.toolkit.fluxcd.io/name: apps, kustomize.toolkit.fluxcd.io/namespace: flux-system}",
            ManagerTool::Flux,
            "apps",
        ),
    ] {
        let owned = PAYMENTS.replace("namespace: payments, creationTimestamp", &format!("namespace: payments, {meta}, creationTimestamp"));
        let inv = cluster(&owned);
        let (bob, reviews) = revoked(&owned, "bob", "Automatic");
        let ev = eval(&bob, &reviews, &inv, "10-04 00:00");
        let rem = ev.status.remediation.as_ref().unwrap();
        assert_eq!(rem.state, RemediationState::ManagedExternally, "{tool}");
        let by = rem.managed_by.as_ref().unwrap();
        assert_eq!((by.tool, by.name.as_deref()), (tool, Some(name)));
        assert!(rem.message.starts_with(&format!("managed by {tool} {name}: remove User bob")), "{}", rem.message);
        assert!(ev.remediate.is_none(), "{tool}: the next sync would restore it");
    }
}

#[test]
fn the_owner_is_read_from_the_full_marks_each_tool_leaves() {
    let m = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let none = m(&[]);
    let helm_labels = m(&[
        ("app.kubernetes.io/managed-by", "Helm"),
        ("app.kubernetes.io/instance", "ledger"),
    ]);
    let release = m(&[
        ("meta.helm.sh/release-name", "ledger"),
        ("meta.helm.sh/release-namespace", "payments"),
    ]);
    let helm = external_manager(&helm_labels, &release).unwrap();
    assert_eq!(
        (helm.tool, helm.name.as_deref()),
        (ManagerTool::Helm, Some("ledger"))
    );
    // Argo CD rendering a Helm chart: Argo CD owns it, whatever the chart's marks say.
    let mut tracked = release.clone();
    tracked.insert(
        "argocd.argoproj.io/tracking-id".into(),
        "shop:rbac.authorization.k8s.io/RoleBinding:payments/x".into(),
    );
    assert_eq!(
        external_manager(&helm_labels, &tracked).unwrap().tool,
        ManagerTool::ArgoCD
    );
    let flux_helm = m(&[
        ("helm.toolkit.fluxcd.io/name", "redis"),
        ("helm.toolkit.fluxcd.io/namespace", "flux-system"),
        ("app.kubernetes.io/managed-by", "Helm"),
    ]);
    assert_eq!(
        external_manager(&flux_helm, &release).unwrap().tool,
        ManagerTool::Flux
    );

    // One mark a chart, a copy-paste or a tenant may leave is not a tool's ownership.
    for (labels, annotations) in [
        (m(&[("app.kubernetes.io/instance", "shop")]), none.clone()),
        (m(&[("argocd.argoproj.io/instance", "shop")]), none.clone()),
        (m(&[("app.kubernetes.io/managed-by", "Helm")]), none.clone()),
        (
            m(&[("app.kubernetes.io/managed-by", "Helm")]),
            m(&[("meta.helm.sh/release-name", "ledger")]),
        ),
        (none.clone(), release.clone()),
        (m(&[("kustomize.toolkit.fluxcd.io/name", "apps")]), none.clone()),
        (m(&[("helm.toolkit.fluxcd.io/name", "redis")]), none.clone()),
        (none.clone(), m(&[("argocd.argoproj.io/tracking-id", "garbage")])),
        (m(&[("team", "payments")]), none.clone()),
    ] {
        assert!(
            external_manager(&labels, &annotations).is_none(),
            "{labels:?} {annotations:?}"
        );
    }
}

#[test]
fn with_remediation_turned_off_an_item_says_what_an_admin_removes() {
    use crate::certify::remediation::{removed, turned_off};
    let (bob, _) = revoked(PAYMENTS, "bob", "Automatic");
    let off = turned_off(&bob.spec, RemediationAction::RemoveSubject);
    assert_eq!(
        off,
        "revoked; remediation is turned off in this operator (chart value certification.remediation: false): \
         an admin removes the access with the command in `command` (remove User bob from RoleBinding payments/devs-edit)"
    );
    assert_eq!(
        removed(&bob.spec, RemediationAction::DeleteBinding),
        "the operator deleted RoleBinding payments/devs-edit (its only subject was User bob)"
    );
}
