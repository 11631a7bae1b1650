//! What removing a revoked subject takes: remove it from the binding, or delete the
//! binding when it is the only subject; never on a binding re-created since the
//! review (another uid), and never on a binding Helm, Argo CD or Flux owns, which
//! would come back with the next sync.

use std::collections::BTreeMap;

use crate::api::{
    AccessCertificationSpec, BindingKind, ExternalManager, ManagerTool, RemediationAction, RemediationMode,
    RemediationState, RemediationStatus, Subject,
};

use super::{
    inventory::{BindingFacts, Inventory},
    protect::{protection, OperatorIdentity},
    rules::effective_rules,
};

/// The binding a remediation writes to, with the preconditions of the write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingTarget {
    /// RoleBinding or ClusterRoleBinding.
    pub kind: BindingKind,
    /// Namespace of a RoleBinding.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// uid precondition: the binding reviewed, not a re-created one.
    pub uid: String,
    /// resourceVersion precondition: the binding as it was read.
    pub resource_version: Option<String>,
}

/// The write the operator makes (`remediation: Automatic` only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemediationStep {
    /// Remove the subject from the binding's subjects.
    RemoveSubject {
        /// The binding.
        binding: BindingTarget,
        /// The subject.
        subject: Subject,
    },
    /// Delete the binding (the subject was its only one).
    DeleteBinding {
        /// The binding.
        binding: BindingTarget,
    },
}

/// The tool that owns the binding, from the complete marks each one writes; one
/// label (which a chart, a tenant or a copy-paste may set) is never enough,
/// because `ManagedExternally` means the operator leaves the access in place.
/// - Flux: both `kustomize.toolkit.fluxcd.io/name` and `/namespace` labels, or
///   both `helm.toolkit.fluxcd.io/name` and `/namespace`;
/// - Argo CD: the `argocd.argoproj.io/tracking-id` annotation
///   (`APP:GROUP/KIND:NAMESPACE/NAME`) naming this kind of object;
/// - Helm: the label `app.kubernetes.io/managed-by: Helm` and both annotations
///   `meta.helm.sh/release-name` and `meta.helm.sh/release-namespace`.
///
/// Flux and Argo CD are checked before Helm: both render Helm charts, whose marks
/// then say Helm although the tool would put the binding back.
pub fn external_manager(
    labels: &BTreeMap<String, String>,
    annotations: &BTreeMap<String, String>,
) -> Option<ExternalManager> {
    let found = |tool, name: &str| {
        Some(ExternalManager {
            tool,
            name: Some(name.to_string()),
        })
    };
    for toolkit in ["kustomize.toolkit.fluxcd.io", "helm.toolkit.fluxcd.io"] {
        let name = labels.get(&format!("{toolkit}/name"));
        let namespace = labels.get(&format!("{toolkit}/namespace"));
        if let (Some(n), Some(_)) = (name, namespace) {
            return found(ManagerTool::Flux, n);
        }
    }
    if let Some(id) = annotations.get("argocd.argoproj.io/tracking-id") {
        // `APP:GROUP/KIND:NAMESPACE/NAME`: an application and a binding kind.
        let mut parts = id.splitn(3, ':');
        if let (Some(app), Some(kind), Some(_)) = (parts.next(), parts.next(), parts.next()) {
            if !app.is_empty() && kind.ends_with("RoleBinding") {
                return found(ManagerTool::ArgoCD, app);
            }
        }
    }
    let helm = labels
        .get("app.kubernetes.io/managed-by")
        .is_some_and(|v| v == "Helm");
    match (
        helm,
        annotations.get("meta.helm.sh/release-name"),
        annotations.get("meta.helm.sh/release-namespace"),
    ) {
        (true, Some(release), Some(_)) => found(ManagerTool::Helm, release),
        _ => None,
    }
}

fn status(state: RemediationState, action: Option<RemediationAction>, message: String) -> RemediationStatus {
    RemediationStatus {
        state,
        action,
        managed_by: None,
        hold: None,
        message,
        command: None,
    }
}

fn describe_binding(b: &BindingFacts) -> String {
    b.describe()
}

/// The remediation of an item whose access is to be removed, judged against the
/// cluster now: its status, and the write to make (Automatic mode, Pending only).
/// A remediation already `Done` stays done ([`super::evaluate()`] keeps it).
/// Protected access ([`super::protect`]) is never written to: it stays
/// `Pending` with the reason, for an admin.
pub fn plan(
    spec: &AccessCertificationSpec,
    inv: &Inventory,
    operator: Option<&OperatorIdentity>,
) -> (RemediationStatus, Option<RemediationStep>) {
    let snap = &spec.binding;
    let subject = &spec.subject;
    let Some(b) = inv.binding(snap.kind, snap.namespace.as_deref(), &snap.name) else {
        let message = format!("{} {} no longer exists: nothing to remove", snap.kind, snap.name);
        return (status(RemediationState::Gone, None, message), None);
    };
    if b.uid != snap.uid {
        let message = format!(
            "{} was re-created (uid {}, reviewed {}): the new binding is another grant and is not touched",
            describe_binding(b),
            b.uid,
            snap.uid
        );
        return (status(RemediationState::Gone, None, message), None);
    }
    if !b.subjects.contains(subject) {
        if let Some(why) = super::scope::held_in_part(b) {
            // Memory holds the first subjects only: absent from them is not gone.
            let message = format!(
                "whether {subject} is still a subject of {} is not known here ({why})",
                describe_binding(b)
            );
            return (status(RemediationState::Pending, None, message), None);
        }
        let message = format!("{subject} is no longer a subject of {}", describe_binding(b));
        return (status(RemediationState::Done, None, message), None);
    }
    let only = b.subjects.iter().all(|s| s == subject);
    let action = if only {
        RemediationAction::DeleteBinding
    } else {
        RemediationAction::RemoveSubject
    };
    let what = match action {
        RemediationAction::DeleteBinding => {
            format!("delete {} (its only subject is {subject})", describe_binding(b))
        }
        RemediationAction::RemoveSubject => format!("remove {subject} from {}", describe_binding(b)),
    };
    if let Some(owner) = external_manager(&b.labels, &b.annotations) {
        let name = owner.name.as_deref().map(|n| format!(" {n}")).unwrap_or_default();
        let message = format!(
            "managed by {}{name}: {what} there; Gatehouse does not edit it (the next sync would restore it) and marks this Done once {subject} is gone",
            owner.tool
        );
        let mut s = status(RemediationState::ManagedExternally, Some(action), message);
        s.managed_by = Some(owner);
        return (s, None);
    }
    let rules = effective_rules(inv, &b.role, b.namespace.as_deref());
    if let Some(held) = protection(
        b,
        subject,
        rules.as_deref(),
        operator,
        &spec.review.remove_protected,
    ) {
        let message = format!(
            "protected: {}; the operator never removes such access itself ({}): an admin who means it can {what} with the command in `command`",
            held.why, held.hold
        );
        let mut s = status(RemediationState::Pending, Some(action), message);
        s.hold = Some(held.hold);
        return (s, None);
    }
    let target = BindingTarget {
        kind: b.kind,
        namespace: b.namespace.clone(),
        name: b.name.clone(),
        uid: b.uid.clone(),
        resource_version: b.resource_version.clone(),
    };
    match spec.review.remediation {
        RemediationMode::Manual => {
            let message = format!("to do by hand (remediation: Manual): {what}");
            (status(RemediationState::Pending, Some(action), message), None)
        }
        RemediationMode::Automatic => {
            let message = format!("the operator will {what}");
            let step = match action {
                RemediationAction::DeleteBinding => RemediationStep::DeleteBinding { binding: target },
                RemediationAction::RemoveSubject => RemediationStep::RemoveSubject {
                    binding: target,
                    subject: subject.clone(),
                },
            };
            (
                status(RemediationState::Pending, Some(action), message),
                Some(step),
            )
        }
    }
}

/// What removing the access takes, in words: `remove SUBJECT from BINDING`, or
/// `delete BINDING, whose only subject is SUBJECT`.
pub fn action_words(spec: &AccessCertificationSpec, action: RemediationAction) -> String {
    let (subject, binding) = (&spec.subject, &spec.binding);
    match action {
        RemediationAction::RemoveSubject => format!("remove {subject} from {binding}"),
        RemediationAction::DeleteBinding => format!("delete {binding}, whose only subject is {subject}"),
    }
}

/// What a done remediation says the operator did.
pub fn removed(spec: &AccessCertificationSpec, action: RemediationAction) -> String {
    let (subject, binding) = (&spec.subject, &spec.binding);
    match action {
        RemediationAction::RemoveSubject => format!("the operator removed {subject} from {binding}"),
        RemediationAction::DeleteBinding => {
            format!("the operator deleted {binding} (its only subject was {subject})")
        }
    }
}

/// What a revoked item says while remediation is turned off in the operator
/// (the chart's `certification.remediation: false`): an admin removes it.
pub fn turned_off(spec: &AccessCertificationSpec, action: RemediationAction) -> String {
    format!(
        "revoked; remediation is turned off in this operator (chart value certification.remediation: false): \
         an admin removes the access with the command in `command` ({})",
        action_words(spec, action)
    )
}
