//! `convertTo`: a revoked standing binding replaced by just-in-time access. Accepted
//! only if the named AccessPolicy would let the subject request that very role in
//! that namespace, checked by the request admission code on a synthesized request.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::{
    api::{
        AccessCertificationSpec, AccessPolicy, ApprovalRequest, ApprovalRequestSpec, BindingKind, Identity,
        Scope, SubjectKind,
    },
    decide::admit::{admit, select},
};

/// Who would ask for the access. Gatehouse cannot see a user's groups, so a User
/// counts as authenticated only; a Group's member shows the group; a
/// ServiceAccount has the groups the API server always gives it.
fn requester(spec: &AccessCertificationSpec) -> Identity {
    let s = &spec.subject;
    let authenticated = "system:authenticated".to_string();
    match s.kind {
        SubjectKind::User => Identity {
            username: s.name.clone(),
            groups: vec![authenticated],
        },
        SubjectKind::Group => Identity {
            username: format!("a member of group {}", s.name),
            groups: vec![s.name.clone(), authenticated],
        },
        SubjectKind::ServiceAccount => {
            let ns = s.namespace.clone().unwrap_or_default();
            Identity {
                username: crate::decide::naming::service_account_username(&ns, &s.name),
                groups: vec![
                    "system:serviceaccounts".into(),
                    format!("system:serviceaccounts:{ns}"),
                    authenticated,
                ],
            }
        }
    }
}

/// The request the subject would make for the same access under `policy`.
pub fn synthesized_request(spec: &AccessCertificationSpec, policy: &str) -> ApprovalRequest {
    let b = &spec.binding;
    ApprovalRequest {
        metadata: ObjectMeta {
            name: Some(format!("convert-{}", b.name)),
            namespace: Some(b.namespace.clone().unwrap_or_else(|| "default".into())),
            ..Default::default()
        },
        spec: ApprovalRequestSpec {
            requester: requester(spec),
            role: spec.role_ref.clone(),
            scope: match b.kind {
                BindingKind::RoleBinding => Scope::Namespace,
                BindingKind::ClusterRoleBinding => Scope::Cluster,
            },
            reason: Some(format!(
                "replaces {} {} reviewed in run {}",
                b.kind, b.name, spec.run
            )),
            policy: Some(policy.to_string()),
            ..Default::default()
        },
        status: None,
    }
}

/// `Ok` when the policy covers the subject, role and namespace of the item;
/// otherwise the admission code's explanation.
pub fn check(
    spec: &AccessCertificationSpec,
    policy: &str,
    policies: &[AccessPolicy],
    namespace_labels: Option<&BTreeMap<String, String>>,
) -> Result<(), String> {
    let req = synthesized_request(spec, policy);
    let chosen = select(&req, policies, namespace_labels).map_err(|d| d.message)?;
    admit(&req, chosen).map(|_| ()).map_err(|d| d.message)
}
