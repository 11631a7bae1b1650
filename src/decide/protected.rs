//! Namespaces where Gatehouse grants nothing, whatever a policy says.
//!
//! The operator's own namespace holds its ServiceAccount (whose token may create
//! bindings and Jobs) and the notification channels' Secrets; `kube-system`
//! holds the control plane's own identities. An `edit` grant in either reaches
//! further than the namespace: a policy that selects "every namespace but
//! kube-system" by label would hand out the operator's power. So no request is
//! granted (nor a OneTime job run) in these namespaces unless the operator is
//! started with `--allow-grants-in NAMESPACE`, and the refusal says why.

use super::{model::Denial, reason::DenialReason};

/// The namespace that is always protected besides the operator's own.
pub const KUBE_SYSTEM: &str = "kube-system";
/// The operator's namespace when it is told none (`--lease-namespace`, `POD_NAMESPACE`).
pub const DEFAULT_OPERATOR_NAMESPACE: &str = "gatehouse-system";

/// The protected namespaces of an operator running in `operator_namespace`,
/// minus those `allowed` names (`--allow-grants-in`).
pub fn protected_namespaces(operator_namespace: &str, allowed: &[String]) -> Vec<String> {
    let mut protected = vec![operator_namespace.to_string()];
    if operator_namespace != KUBE_SYSTEM {
        protected.push(KUBE_SYSTEM.to_string());
    }
    protected.retain(|ns| !allowed.contains(ns));
    protected
}

/// The refusal of a grant in `namespace`, if it is protected.
pub fn refusal(namespace: &str, protected: &[String]) -> Option<Denial> {
    if !protected.iter().any(|p| p == namespace) {
        return None;
    }
    let what = if namespace == KUBE_SYSTEM {
        "the control plane's namespace"
    } else {
        "the Gatehouse operator's own namespace (its ServiceAccount and the notification Secrets live there)"
    };
    Some(Denial::new(
        DenialReason::ProtectedNamespace,
        format!(
            "namespace {namespace} is protected: it is {what}, and Gatehouse grants nothing there \
             whatever a policy says, unless the operator is started with --allow-grants-in {namespace}"
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_operators_namespace_and_kube_system_are_protected_unless_allowed() {
        assert_eq!(
            protected_namespaces("gatehouse-system", &[]),
            ["gatehouse-system", "kube-system"]
        );
        assert_eq!(protected_namespaces("kube-system", &[]), ["kube-system"]);
        assert_eq!(protected_namespaces("ops", &["kube-system".to_string()]), ["ops"]);
        let p = protected_namespaces("ops", &[]);
        let denial = refusal("ops", &p).unwrap();
        assert_eq!(denial.reason, DenialReason::ProtectedNamespace);
        assert!(
            denial.message.contains("operator's own namespace"),
            "{}",
            denial.message
        );
        assert!(
            denial.message.contains("--allow-grants-in ops"),
            "{}",
            denial.message
        );
        assert!(refusal("kube-system", &p)
            .unwrap()
            .message
            .contains("control plane"));
        assert!(refusal("team-a", &p).is_none());
    }
}
