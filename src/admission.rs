//! The admission policies Gatehouse ships (`config/admission/`), which
//! `gatehouse admission` prints.
//!
//! The YAML files are the single source: they are compiled into the binary as
//! they are, and `tests/admission.rs` evaluates the CEL in them. What they
//! guarantee, and what stays with the operator, is in `SECURITY.md`.
//!
//! - `gatehouse-requester-identity` / `gatehouse-reviewer-identity`
//!   (ValidatingAdmissionPolicy, Kubernetes >= 1.30): on create, the
//!   requester/reviewer must be the authenticated creator, unless the creator
//!   holds [`CREATE_ON_BEHALF`].
//! - `gatehouse-status-writer` (ValidatingAdmissionPolicy): a write to a
//!   `/status` subresource needs [`WRITE_STATUS`] as well as RBAC's update/patch.
//! - `gatehouse-certification-issuer` (ValidatingAdmissionPolicy): creating or
//!   changing an AccessCertification item needs [`ISSUE_ITEMS`]: only the
//!   operator issues items.
//! - `gatehouse-notification-channels` (ValidatingAdmissionPolicy): changing a
//!   NotificationChannel needs `update`; with only [`TEST_CHANNELS`] a user may
//!   set the test annotation (`kubectl gatehouse notify test`) and nothing else.
//! - `gatehouse-fill-requester` / `gatehouse-fill-reviewer`
//!   (MutatingAdmissionPolicy, Kubernetes >= 1.36, or 1.34-1.35 with the beta API
//!   turned on): fill an empty requester/reviewer from the creator. The chart
//!   installs them by default wherever the cluster serves their v1 API.

/// RBAC virtual verb that lets a creator name someone else as requester or
/// reviewer (checked with the admission policy's `authorizer`).
pub const CREATE_ON_BEHALF: &str = "create-on-behalf";

/// RBAC virtual verb, on a `/status` subresource, that the status-writer policy
/// asks of anyone writing status. Only the operator's ClusterRole has it.
pub const WRITE_STATUS: &str = "write-status";

/// RBAC virtual verb, on `accesscertifications`, that the certification-issuer
/// policy asks of anyone creating or changing a certification item. Only the
/// operator's ClusterRole has it: an item is the operator's snapshot of a run.
pub const ISSUE_ITEMS: &str = "issue";

/// RBAC virtual verb, on `notificationchannels`, that lets a user ask for a
/// channel's test message (a new `gatehouse.dev/test-requested-at` annotation)
/// without being able to change the channel: the notification-channels policy
/// asks for it. ClusterRole `gatehouse-notification-tester`.
pub const TEST_CHANNELS: &str = "test";

/// One shipped manifest: its path under the repository and its text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PolicyFile {
    /// Path relative to the repository root, e.g. `config/admission/status-writer.yaml`.
    pub path: &'static str,
    /// The YAML, exactly as committed.
    pub yaml: &'static str,
}

/// The ValidatingAdmissionPolicies and their bindings (installed by default).
pub const VALIDATING: [PolicyFile; 5] = [
    PolicyFile {
        path: "config/admission/requester-identity.yaml",
        yaml: include_str!("../config/admission/requester-identity.yaml"),
    },
    PolicyFile {
        path: "config/admission/reviewer-identity.yaml",
        yaml: include_str!("../config/admission/reviewer-identity.yaml"),
    },
    PolicyFile {
        path: "config/admission/status-writer.yaml",
        yaml: include_str!("../config/admission/status-writer.yaml"),
    },
    PolicyFile {
        path: "config/admission/certification-issuer.yaml",
        yaml: include_str!("../config/admission/certification-issuer.yaml"),
    },
    PolicyFile {
        path: "config/admission/notification-channels.yaml",
        yaml: include_str!("../config/admission/notification-channels.yaml"),
    },
];

/// The optional MutatingAdmissionPolicies and their bindings (API version v1).
pub const MUTATING: PolicyFile = PolicyFile {
    path: "config/admission/mutating/fill-identity.yaml",
    yaml: include_str!("../config/admission/mutating/fill-identity.yaml"),
};

/// Which MutatingAdmissionPolicy API to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum MutatingApi {
    /// `admissionregistration.k8s.io/v1`: Kubernetes 1.36 and later.
    #[value(name = "v1")]
    V1,
    /// `admissionregistration.k8s.io/v1beta1`: Kubernetes 1.34 and 1.35, where the
    /// API must be turned on (feature gate and runtime config).
    #[value(name = "v1beta1")]
    V1beta1,
}

const V1_API: &str = "apiVersion: admissionregistration.k8s.io/v1";

/// The mutating policies for the given API version. The v1beta1 shape is the same
/// as v1, so only `apiVersion` changes.
pub fn mutating(api: MutatingApi) -> String {
    match api {
        MutatingApi::V1 => MUTATING.yaml.to_string(),
        MutatingApi::V1beta1 => {
            let body: String = MUTATING
                .yaml
                .lines()
                .map(|line| {
                    if line == V1_API {
                        "apiVersion: admissionregistration.k8s.io/v1beta1\n".to_string()
                    } else {
                        format!("{line}\n")
                    }
                })
                .collect();
            format!("# admissionregistration.k8s.io/v1beta1 copy for Kubernetes 1.34 and 1.35.\n{body}")
        }
    }
}

/// What `gatehouse admission` prints: the validating policies, then the mutating
/// ones if asked for, as one multi-document YAML stream.
pub fn render(mutating_api: Option<MutatingApi>) -> String {
    let mut docs: Vec<String> = VALIDATING.iter().map(|f| f.yaml.to_string()).collect();
    if let Some(api) = mutating_api {
        docs.push(mutating(api));
    }
    docs.join("---\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_beta_copy_changes_only_the_api_version() {
        let v1 = mutating(MutatingApi::V1);
        let beta = mutating(MutatingApi::V1beta1);
        assert_eq!(v1, MUTATING.yaml);
        let v1_count = v1.lines().filter(|l| *l == V1_API).count();
        assert_eq!(v1_count, 4, "two policies and two bindings");
        assert!(!beta.lines().any(|l| l == V1_API));
        assert_eq!(
            beta.matches("apiVersion: admissionregistration.k8s.io/v1beta1\n")
                .count(),
            v1_count
        );
        assert_eq!(beta.lines().count(), v1.lines().count() + 1);
    }

    #[test]
    fn render_prints_the_validating_policies_and_the_mutating_ones_on_request() {
        let plain = render(None);
        for file in VALIDATING {
            assert!(plain.contains(file.yaml), "{}", file.path);
        }
        assert!(!plain.contains("kind: MutatingAdmissionPolicy"));
        assert!(render(Some(MutatingApi::V1)).ends_with(MUTATING.yaml));
    }
}
