//! What removing revoked access takes (an item's `status.remediation`): how far
//! it is, what holds it, and the tool that owns a binding the operator leaves alone.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::Protection;

/// What removing revoked access takes, and how far it is.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct RemediationStatus {
    /// `Pending`, `Done`, `Failed`, `ManagedExternally` (a tool owns the binding and
    /// would put it back) or `Gone` (the binding reviewed no longer exists).
    pub state: RemediationState,
    /// `RemoveSubject` from the binding, or `DeleteBinding` when it was the only subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<RemediationAction>,
    /// The tool that owns the binding, when `ManagedExternally`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_by: Option<ExternalManager>,
    /// Why the operator leaves this removal to an admin, when it does:
    /// `OperatorIdentity`, `BootstrapBinding`, `KubeSystem`,
    /// `ClusterAdminEquivalent`, `PrivilegeEscalation` (protected access),
    /// `RoleNotBindable` (it may not bind the role, so it could not have granted
    /// it), `IdentityUnknown` (it could not learn who it is).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hold: Option<RemediationHold>,
    /// What to do or what happened, in words.
    pub message: String,
    /// While `Pending` and the operator does not remove the access itself
    /// (`remediation: Manual`, remediation turned off in the operator, or a role it
    /// may not bind): the `kubectl` command that removes exactly this access, guarded
    /// by the binding's uid, for an admin to run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// How far a remediation is.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RemediationState {
    /// To be done (by the operator, or by people with `remediation: Manual`).
    Pending,
    /// The subject no longer has the access through this binding.
    Done,
    /// The operator's last attempt failed.
    Failed,
    /// Helm, Argo CD or Flux owns the binding: change it there.
    ManagedExternally,
    /// The binding reviewed no longer exists (deleted, or re-created with another uid).
    Gone,
}

/// Why the operator does not remove revoked access itself.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RemediationHold {
    /// The subject is the operator's own identity (user, ServiceAccount or one of
    /// its groups): without that access it would stop removing expired grants.
    OperatorIdentity,
    /// A bootstrap binding of the API server or kubeadm.
    BootstrapBinding,
    /// A RoleBinding in kube-system.
    KubeSystem,
    /// The role grants every verb on every resource.
    ClusterAdminEquivalent,
    /// The role grants escalate, bind or impersonate.
    PrivilegeEscalation,
    /// The operator may not bind the role: it removes only what it could have granted.
    RoleNotBindable,
    /// The operator does not know its own identity (SelfSubjectReview failed),
    /// so it cannot tell whether this is its own access.
    IdentityUnknown,
}

impl From<Protection> for RemediationHold {
    fn from(p: Protection) -> Self {
        match p {
            Protection::BootstrapBinding => RemediationHold::BootstrapBinding,
            Protection::KubeSystem => RemediationHold::KubeSystem,
            Protection::ClusterAdminEquivalent => RemediationHold::ClusterAdminEquivalent,
            Protection::PrivilegeEscalation => RemediationHold::PrivilegeEscalation,
        }
    }
}

/// The change that removes the access.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum RemediationAction {
    /// Remove the subject from the binding's subjects.
    RemoveSubject,
    /// Delete the binding: the subject is its only one.
    DeleteBinding,
}

/// A tool that owns a binding.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExternalManager {
    /// `Helm`, `ArgoCD` or `Flux`.
    pub tool: ManagerTool,
    /// The release, application or kustomization, when the labels name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Tools whose bindings Gatehouse never edits.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, JsonSchema)]
pub enum ManagerTool {
    /// A Helm release.
    Helm,
    /// An Argo CD application.
    ArgoCD,
    /// A Flux Kustomization or HelmRelease.
    Flux,
}

impl std::fmt::Display for ManagerTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            ManagerTool::Helm => "Helm",
            ManagerTool::ArgoCD => "Argo CD",
            ManagerTool::Flux => "Flux",
        })
    }
}
