//! Access the operator never removes by itself: the protection rules, alone and
//! through an item's evaluation, and the campaign's opt-in.

use k8s_openapi::api::rbac::v1::PolicyRule;
use proptest::prelude::*;

use super::*;
use crate::{
    api::{
        BindingKind, Protection, RemediationAction, RemediationHold, RemediationState, RoleKind, RoleRef,
        Subject, SubjectKind,
    },
    certify::{
        inventory::BindingFacts,
        protect::{protection, OperatorIdentity},
        remediation::RemediationStep,
    },
};

fn user(name: &str) -> Subject {
    Subject {
        kind: SubjectKind::User,
        name: name.into(),
        namespace: None,
    }
}

fn binding(kind: BindingKind, namespace: Option<&str>, name: &str, labels: &[(&str, &str)]) -> BindingFacts {
    BindingFacts {
        kind,
        namespace: namespace.map(str::to_string),
        name: name.into(),
        uid: format!("uid-{name}"),
        labels: labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        role: RoleRef {
            kind: RoleKind::ClusterRole,
            name: "some-role".into(),
        },
        ..Default::default()
    }
}

fn crb(name: &str) -> BindingFacts {
    binding(BindingKind::ClusterRoleBinding, None, name, &[])
}

fn rb(namespace: &str, name: &str) -> BindingFacts {
    binding(BindingKind::RoleBinding, Some(namespace), name, &[])
}

fn rule(groups: &[&str], resources: &[&str], verbs: &[&str]) -> PolicyRule {
    let list = |v: &[&str]| Some(v.iter().map(|s| s.to_string()).collect());
    PolicyRule {
        api_groups: list(groups),
        resources: list(resources),
        verbs: verbs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

fn harmless() -> Vec<PolicyRule> {
    vec![rule(&[""], &["pods"], &["get", "list"])]
}

/// The hold for `subject` through `b` granting `rules`, as the default install's operator.
fn hold(b: &BindingFacts, subject: &Subject, rules: &[PolicyRule]) -> Option<RemediationHold> {
    let me = OperatorIdentity::default_install();
    protection(b, subject, Some(rules), Some(&me), &[]).map(|h| h.hold)
}

#[test]
fn the_operators_own_identity_is_never_removed_in_any_form() {
    let me = OperatorIdentity::default_install();
    let sa = Subject {
        kind: SubjectKind::ServiceAccount,
        name: "gatehouse".into(),
        namespace: Some("gatehouse-system".into()),
    };
    let as_user = user("system:serviceaccount:gatehouse-system:gatehouse");
    let group = Subject {
        kind: SubjectKind::Group,
        name: "system:serviceaccounts:gatehouse-system".into(),
        namespace: None,
    };
    let every = [
        Protection::BootstrapBinding,
        Protection::KubeSystem,
        Protection::ClusterAdminEquivalent,
        Protection::PrivilegeEscalation,
    ];
    for s in [&sa, &as_user, &group] {
        let held = protection(
            &crb("gatehouse-operator"),
            s,
            Some(&harmless()),
            Some(&me),
            &every,
        );
        assert_eq!(
            held.map(|h| h.hold),
            Some(RemediationHold::OperatorIdentity),
            "{s}"
        );
    }
    // The same ServiceAccount name in another namespace is someone else.
    let other = Subject {
        namespace: Some("team-x".into()),
        ..sa.clone()
    };
    assert_eq!(hold(&crb("gatehouse-operator"), &other, &harmless()), None);
    // Unknown identity (simulate without one): nothing to compare with.
    assert_eq!(
        protection(&crb("x"), &sa, Some(&harmless()), None, &[]).map(|h| h.hold),
        None
    );
}

#[test]
fn bootstrap_bindings_are_known_by_facts_a_tenant_cannot_forge() {
    let bob = user("bob");
    for name in ["system:node-proxier", "kubeadm:cluster-admins"] {
        assert_eq!(
            hold(&crb(name), &bob, &harmless()),
            Some(RemediationHold::BootstrapBinding),
            "{name}"
        );
    }
    let labelled = binding(
        BindingKind::ClusterRoleBinding,
        None,
        "anything",
        &[("kubernetes.io/bootstrapping", "rbac-defaults")],
    );
    assert_eq!(
        hold(&labelled, &bob, &harmless()),
        Some(RemediationHold::BootstrapBinding)
    );
    // A tenant's RoleBinding named or labelled like one is an ordinary binding.
    assert_eq!(hold(&rb("team-x", "system:teamx-ops"), &bob, &harmless()), None);
    let forged = binding(
        BindingKind::RoleBinding,
        Some("team-x"),
        "kubeadm:x",
        &[("kubernetes.io/bootstrapping", "rbac-defaults")],
    );
    assert_eq!(hold(&forged, &bob, &harmless()), None);
    // In kube-public (admins only) they are the API server's own.
    assert_eq!(
        hold(
            &rb("kube-public", "system:controller:bootstrap-signer"),
            &bob,
            &harmless()
        ),
        Some(RemediationHold::BootstrapBinding)
    );
    assert_eq!(hold(&rb("kube-public", "team-view"), &bob, &harmless()), None);
}

#[test]
fn every_binding_in_kube_system_is_protected() {
    assert_eq!(
        hold(&rb("kube-system", "coredns-extra"), &user("bob"), &harmless()),
        Some(RemediationHold::KubeSystem)
    );
}

#[test]
fn cluster_admin_and_escalating_rules_are_protected_but_namespaced_impersonation_of_service_accounts_is_not()
{
    let bob = user("bob");
    let cases: [(Vec<PolicyRule>, Option<RemediationHold>); 7] = [
        (
            vec![rule(&["*"], &["*"], &["*"])],
            Some(RemediationHold::ClusterAdminEquivalent),
        ),
        // `*` on `*` of one API group is still every verb on every resource there.
        (
            vec![rule(&[""], &["*"], &["*"])],
            Some(RemediationHold::ClusterAdminEquivalent),
        ),
        (
            vec![rule(&["rbac.authorization.k8s.io"], &["clusterroles"], &["bind"])],
            Some(RemediationHold::PrivilegeEscalation),
        ),
        (
            vec![rule(&["rbac.authorization.k8s.io"], &["roles"], &["escalate"])],
            Some(RemediationHold::PrivilegeEscalation),
        ),
        (
            vec![rule(&[""], &["users", "groups"], &["impersonate"])],
            Some(RemediationHold::PrivilegeEscalation),
        ),
        (
            vec![rule(&["rbac.authorization.k8s.io"], &["*"], &["get", "bind"])],
            Some(RemediationHold::PrivilegeEscalation),
        ),
        (
            vec![rule(
                &["rbac.authorization.k8s.io"],
                &["rolebindings"],
                &["create"],
            )],
            None,
        ),
    ];
    for (rules, expected) in cases {
        assert_eq!(hold(&rb("team-x", "b"), &bob, &rules), expected, "{rules:?}");
    }
    // `edit` and `admin` impersonate the ServiceAccounts of their namespace.
    let edit = vec![rule(&[""], &["serviceaccounts"], &["impersonate"])];
    assert_eq!(hold(&rb("team-x", "devs-edit"), &bob, &edit), None);
    assert_eq!(
        hold(&crb("devs-edit"), &bob, &edit),
        Some(RemediationHold::PrivilegeEscalation)
    );
}

/// A cluster with a single-subject cluster-admin ClusterRoleBinding, and a
/// campaign revoking every unreviewed item at the due time.
const ROOT: &str = r#"
kind: ClusterRole
metadata: {name: cluster-admin}
rules: [{apiGroups: ["*"], resources: ["*"], verbs: ["*"]}, {nonResourceURLs: ["*"], verbs: ["*"]}]
---
kind: ClusterRoleBinding
metadata: {name: frank-root, creationTimestamp: "2026-03-01T10:00:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: User, name: frank}]
"#;

fn due_revoke(extra: &str) -> AccessCampaign {
    campaign(&format!(
        "{TWO_LEVELS}onNoDecision: Revoke\nremediation: Automatic\n{extra}"
    ))
}

#[test]
fn on_no_decision_revoke_never_deletes_a_cluster_admin_binding() {
    let inv = cluster(ROOT);
    let frank = item_of(&launched(&due_revoke(""), &inv), "frank");
    let ev = eval(&frank, &[], &inv, "10-16 00:00");
    let rem = ev.status.remediation.as_ref().unwrap();
    assert_eq!(ev.remediate, None, "nothing to write");
    assert_eq!(rem.state, RemediationState::Pending);
    assert_eq!(rem.hold, Some(RemediationHold::ClusterAdminEquivalent));
    assert_eq!(rem.action, Some(RemediationAction::DeleteBinding));
    assert!(
        rem.message
            .starts_with("protected: ClusterRole/cluster-admin grants every verb on every resource"),
        "{}",
        rem.message
    );
}

#[test]
fn a_campaign_may_opt_in_to_removing_cluster_admin_access_but_never_the_operators() {
    let inv = cluster(ROOT);
    let allowed = due_revoke("removeProtected: [ClusterAdminEquivalent]\n");
    let frank = item_of(&launched(&allowed, &inv), "frank");
    assert_eq!(
        frank.spec.review.remove_protected,
        [Protection::ClusterAdminEquivalent],
        "the opt-in is part of the item's snapshot"
    );
    let ev = eval(&frank, &[], &inv, "10-16 00:00");
    assert!(
        matches!(ev.remediate, Some(RemediationStep::DeleteBinding { .. })),
        "{:?}",
        ev.remediate
    );
    assert_eq!(ev.status.remediation.unwrap().hold, None);
}

#[test]
fn the_operators_own_binding_revoked_is_shown_as_protected() {
    let own = r#"
kind: ClusterRole
metadata: {name: gatehouse-operator}
rules: [{apiGroups: [rbac.authorization.k8s.io], resources: [rolebindings], verbs: [create, delete]}]
---
kind: ClusterRoleBinding
metadata: {name: gatehouse-operator, creationTimestamp: "2026-03-01T10:00:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: gatehouse-operator}
subjects: [{kind: ServiceAccount, name: gatehouse, namespace: gatehouse-system}]
"#;
    let inv = cluster(own);
    let c = due_revoke(
        "removeProtected: [BootstrapBinding, KubeSystem, ClusterAdminEquivalent, PrivilegeEscalation]\n",
    );
    let item = item_of(&launched(&c, &inv), "gatehouse");
    let ev = eval(&item, &[], &inv, "10-16 00:00");
    let rem = ev.status.remediation.as_ref().unwrap();
    assert_eq!(ev.remediate, None);
    assert_eq!(
        (rem.state, rem.hold),
        (RemediationState::Pending, Some(RemediationHold::OperatorIdentity))
    );
    assert!(
        rem.message.starts_with(
            "protected: ServiceAccount gatehouse-system/gatehouse is the operator's own identity"
        ),
        "{}",
        rem.message
    );
}

fn arb_subject() -> impl Strategy<Value = Subject> {
    let me = OperatorIdentity::default_install();
    prop_oneof![
        Just(Subject {
            kind: SubjectKind::ServiceAccount,
            name: "gatehouse".into(),
            namespace: Some("gatehouse-system".into()),
        }),
        Just(user(&me.username)),
        proptest::sample::select(me.groups.clone()).prop_map(|g| Subject {
            kind: SubjectKind::Group,
            name: g,
            namespace: None,
        }),
    ]
}

fn arb_protections() -> impl Strategy<Value = Vec<Protection>> {
    proptest::sample::subsequence(
        vec![
            Protection::BootstrapBinding,
            Protection::KubeSystem,
            Protection::ClusterAdminEquivalent,
            Protection::PrivilegeEscalation,
        ],
        0..=4,
    )
}

proptest! {
    /// Whatever the binding, its role and the campaign's opt-in, the operator's
    /// own access is held, and a bootstrap ClusterRoleBinding is held unless the
    /// campaign allowed exactly that.
    #[test]
    fn the_operator_and_bootstrap_bindings_are_never_planned_for_removal(
        subject in arb_subject(),
        allowed in arb_protections(),
        cluster_scoped in any::<bool>(),
        namespace in prop_oneof![Just("kube-system"), Just("kube-public"), Just("team-x")],
        name in "(system:|kubeadm:|)[a-z:-]{1,20}",
        admin in any::<bool>(),
    ) {
        let me = OperatorIdentity::default_install();
        let b = match cluster_scoped {
            true => crb(&name),
            false => rb(namespace, &name),
        };
        let rules = if admin { vec![rule(&["*"], &["*"], &["*"])] } else { harmless() };
        let held = protection(&b, &subject, Some(&rules), Some(&me), &allowed);
        prop_assert_eq!(held.map(|h| h.hold), Some(RemediationHold::OperatorIdentity));
        let bob = user("bob");
        let held = protection(&b, &bob, Some(&rules), Some(&me), &allowed).map(|h| h.hold);
        let bootstrap = cluster_scoped && (name.starts_with("system:") || name.starts_with("kubeadm:"));
        if bootstrap && !allowed.contains(&Protection::BootstrapBinding) {
            prop_assert_eq!(held, Some(RemediationHold::BootstrapBinding));
        }
        if held.is_none() {
            prop_assert!(!bootstrap || allowed.contains(&Protection::BootstrapBinding));
            prop_assert!(cluster_scoped || namespace != "kube-system" || allowed.contains(&Protection::KubeSystem));
            prop_assert!(!admin || allowed.contains(&Protection::ClusterAdminEquivalent));
        }
    }
}
