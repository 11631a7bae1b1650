//! Removing revoked access: the exact write, as the operator makes it and as an
//! admin can run it with `kubectl`, and what came of the operator's attempt.
//!
//! - One subject of several: a JSON patch that tests the binding's uid, its
//!   resourceVersion and the subject at its index, then removes that index. Any
//!   change in between (another subject added, the binding re-created) makes
//!   the patch fail instead of removing the wrong thing.
//! - The only subject: a delete with uid and resourceVersion preconditions.
//!
//! Kubernetes checks an *update* of a binding like its creation: the writer
//! must be allowed to `bind` its role (or hold every permission in it). A
//! *delete* needs only `delete`: no escalation check at all. So before either
//! write the operator asks the API server whether it may `bind` the role
//! ([`may_bind`], a SelfSubjectAccessReview): it removes only what it could
//! have granted. A refusal is not retried in a loop: the item stays `Pending`
//! with the reason and the command an admin can run.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::{
    authorization::v1::{ResourceAttributes, SelfSubjectAccessReview, SelfSubjectAccessReviewSpec},
    rbac::v1::{ClusterRoleBinding, RoleBinding, Subject as K8sSubject},
};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions},
    Client,
};
use serde_json::{json, Value};

use super::inventory::{cluster_role_binding, role_binding};
use crate::{
    api::{BindingKind, BindingSnapshot, RemediationAction, RoleKind, RoleRef, Subject, SubjectKind},
    controller::cache::Cache,
};

/// How long an answer to "may the operator bind this role?" is reused: RBAC
/// changes rarely, and a run falling due asks for many items of one role.
const BIND_ANSWER_TTL: Duration = Duration::from_secs(60);
/// Answers kept at most (then all are forgotten: they are cheap to ask again).
const BIND_CACHE_MAX: usize = 4096;

/// The attributes RBAC checks for writing a binding: `bind` on the role, in the
/// binding's namespace (none for a ClusterRoleBinding).
type BindKey = (Option<String>, &'static str, String);

/// Recent answers of [`may_bind`].
#[derive(Default)]
pub struct BindCache(Mutex<HashMap<BindKey, (bool, Instant)>>);

impl BindCache {
    fn get(&self, key: &BindKey) -> Option<bool> {
        let map = self.0.lock().ok()?;
        map.get(key)
            .filter(|(_, at)| at.elapsed() < BIND_ANSWER_TTL)
            .map(|(allowed, _)| *allowed)
    }

    fn put(&self, key: BindKey, allowed: bool) {
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= BIND_CACHE_MAX {
                map.clear();
            }
            map.insert(key, (allowed, Instant::now()));
        }
    }
}

/// Whether the operator may `bind` the role of the binding, as the API server
/// answers for its own identity (a SelfSubjectAccessReview, which every
/// authenticated user may make). An error is an error, never a yes.
pub async fn may_bind(
    client: &Client,
    cache: &BindCache,
    binding: &BindingSnapshot,
    role: &RoleRef,
) -> Result<bool, kube::Error> {
    let resource = match role.kind {
        RoleKind::Role => "roles",
        RoleKind::ClusterRole => "clusterroles",
    };
    let namespace = match binding.kind {
        BindingKind::RoleBinding => binding.namespace.clone(),
        BindingKind::ClusterRoleBinding => None,
    };
    let key = (namespace.clone(), resource, role.name.clone());
    if let Some(allowed) = cache.get(&key) {
        return Ok(allowed);
    }
    let review = SelfSubjectAccessReview {
        spec: SelfSubjectAccessReviewSpec {
            resource_attributes: Some(ResourceAttributes {
                group: Some("rbac.authorization.k8s.io".into()),
                resource: Some(resource.into()),
                verb: Some("bind".into()),
                name: Some(role.name.clone()),
                namespace,
                ..Default::default()
            }),
            ..Default::default()
        },
        ..Default::default()
    };
    let answer = Api::<SelfSubjectAccessReview>::all(client.clone())
        .create(&PostParams::default(), &review)
        .await?;
    let allowed = answer.status.is_some_and(|s| s.allowed && s.denied != Some(true));
    cache.put(key, allowed);
    Ok(allowed)
}

/// The write that removes one subject's access through one binding.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    /// Remove the subject at `index` of the binding's subjects.
    RemoveSubject {
        /// The binding, pinned to its uid.
        binding: BindingSnapshot,
        /// Its resourceVersion as memory holds it.
        resource_version: Option<String>,
        /// Where the subject is in `subjects`.
        index: usize,
        /// The subject exactly as stored (the patch tests it).
        stored: Value,
    },
    /// Delete the binding (the subject is its only one).
    DeleteBinding {
        /// The binding, pinned to its uid.
        binding: BindingSnapshot,
        /// Its resourceVersion as memory holds it.
        resource_version: Option<String>,
    },
}

/// Whether the stored subject is the item's subject (a ServiceAccount without a
/// namespace is in the binding's namespace).
fn same_subject(stored: &K8sSubject, subject: &Subject, binding_ns: Option<&str>) -> bool {
    let kind = match subject.kind {
        SubjectKind::User => "User",
        SubjectKind::Group => "Group",
        SubjectKind::ServiceAccount => "ServiceAccount",
    };
    if stored.kind != kind || stored.name != subject.name {
        return false;
    }
    match subject.kind {
        SubjectKind::ServiceAccount => {
            stored.namespace.as_deref().or(binding_ns) == subject.namespace.as_deref()
        }
        _ => true,
    }
}

/// The write for `action` on the item's binding as memory holds it now; `None`
/// when the binding is not the one reviewed (another uid, or gone) or the subject
/// is no longer in it.
pub fn removal(
    cache: &Cache,
    snapshot: &BindingSnapshot,
    subject: &Subject,
    action: RemediationAction,
) -> Option<Removal> {
    let (meta, subjects) = match (snapshot.kind, &snapshot.namespace) {
        (BindingKind::RoleBinding, Some(ns)) => {
            let rb = role_binding(cache, ns, &snapshot.name)?;
            (rb.metadata.clone(), rb.subjects.clone().unwrap_or_default())
        }
        (BindingKind::ClusterRoleBinding, _) => {
            let crb = cluster_role_binding(cache, &snapshot.name)?;
            (crb.metadata.clone(), crb.subjects.clone().unwrap_or_default())
        }
        (BindingKind::RoleBinding, None) => return None,
    };
    if meta.uid.as_deref() != Some(snapshot.uid.as_str()) {
        return None;
    }
    let index = subjects
        .iter()
        .position(|s| same_subject(s, subject, snapshot.namespace.as_deref()))?;
    let resource_version = meta.resource_version.clone();
    Some(match action {
        RemediationAction::DeleteBinding => Removal::DeleteBinding {
            binding: snapshot.clone(),
            resource_version,
        },
        RemediationAction::RemoveSubject => Removal::RemoveSubject {
            binding: snapshot.clone(),
            resource_version,
            index,
            stored: serde_json::to_value(&subjects[index]).unwrap_or(Value::Null),
        },
    })
}

/// The JSON patch that removes the subject: tests first, so nothing else is
/// ever removed. With `resource_version`, any change to the binding since it was
/// read also fails the patch.
pub fn patch_ops(
    binding: &BindingSnapshot,
    resource_version: Option<&str>,
    index: usize,
    stored: &Value,
) -> Value {
    let mut ops = vec![json!({"op": "test", "path": "/metadata/uid", "value": binding.uid})];
    if let Some(rv) = resource_version {
        ops.push(json!({"op": "test", "path": "/metadata/resourceVersion", "value": rv}));
    }
    ops.push(json!({"op": "test", "path": format!("/subjects/{index}"), "value": stored}));
    ops.push(json!({"op": "remove", "path": format!("/subjects/{index}")}));
    Value::Array(ops)
}

/// Quotes a word for a POSIX shell.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn resource(kind: BindingKind) -> &'static str {
    match kind {
        BindingKind::RoleBinding => "rolebinding",
        BindingKind::ClusterRoleBinding => "clusterrolebinding",
    }
}

/// The API path of the binding.
fn path(b: &BindingSnapshot) -> String {
    match (&b.kind, &b.namespace) {
        (BindingKind::RoleBinding, Some(ns)) => format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}/rolebindings/{}",
            b.name
        ),
        _ => format!(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{}",
            b.name
        ),
    }
}

/// The `kubectl` command that makes the same write, guarded by the binding's uid
/// (not its resourceVersion: an admin runs it later, and the subject test is
/// what keeps it exact).
pub fn command(removal: &Removal) -> String {
    match removal {
        Removal::RemoveSubject {
            binding,
            index,
            stored,
            ..
        } => {
            let ns = binding
                .namespace
                .as_deref()
                .map(|ns| format!(" -n {ns}"))
                .unwrap_or_default();
            format!(
                "kubectl patch {} {}{ns} --type=json -p {}",
                resource(binding.kind),
                binding.name,
                shell_quote(&patch_ops(binding, None, *index, stored).to_string())
            )
        }
        Removal::DeleteBinding { binding, .. } => {
            let body = json!({
                "apiVersion": "v1", "kind": "DeleteOptions",
                "preconditions": {"uid": binding.uid}
            });
            format!(
                "echo {} | kubectl delete --raw {} -f -",
                shell_quote(&body.to_string()),
                path(binding)
            )
        }
    }
}

/// How the operator's write ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    /// The subject was removed; the binding as the API server returned it.
    Removed(Box<BindingAfter>),
    /// The binding was deleted.
    Deleted,
    /// RBAC refused the write (403), with the API server's message.
    Forbidden(String),
    /// The binding changed since memory read it (a failed test or precondition,
    /// or it is gone): memory catches up and the next reconcile plans again.
    Stale,
    /// Anything else, with the error.
    Failed(String),
}

/// The binding after a subject was removed.
#[derive(Debug, Clone, PartialEq)]
pub enum BindingAfter {
    /// A RoleBinding.
    Role(RoleBinding),
    /// A ClusterRoleBinding.
    Cluster(ClusterRoleBinding),
}

fn classify(e: kube::Error) -> Attempt {
    match &e {
        kube::Error::Api(s) if s.code == 403 => Attempt::Forbidden(s.message.clone()),
        // 409: a precondition failed; 422: a test op failed; 404: gone.
        kube::Error::Api(s) if matches!(s.code, 404 | 409 | 422) => Attempt::Stale,
        kube::Error::Api(s) => Attempt::Failed(format!("{} (HTTP {})", s.message, s.code)),
        _ => Attempt::Failed(e.to_string()),
    }
}

/// Makes the write.
pub async fn perform(client: &Client, removal: &Removal) -> Attempt {
    match removal {
        Removal::RemoveSubject {
            binding,
            resource_version,
            index,
            stored,
        } => {
            let ops = patch_ops(binding, resource_version.as_deref(), *index, stored);
            let patch: json_patch::Patch = match serde_json::from_value(ops) {
                Ok(p) => p,
                Err(e) => return Attempt::Failed(format!("building the patch: {e}")),
            };
            let params = PatchParams::default();
            let patch = Patch::Json::<()>(patch);
            let result = match (&binding.kind, &binding.namespace) {
                (BindingKind::RoleBinding, Some(ns)) => {
                    let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
                    api.patch(&binding.name, &params, &patch)
                        .await
                        .map(BindingAfter::Role)
                }
                _ => {
                    let api: Api<ClusterRoleBinding> = Api::all(client.clone());
                    api.patch(&binding.name, &params, &patch)
                        .await
                        .map(BindingAfter::Cluster)
                }
            };
            match result {
                Ok(after) => Attempt::Removed(Box::new(after)),
                Err(e) => classify(e),
            }
        }
        Removal::DeleteBinding {
            binding,
            resource_version,
        } => {
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(binding.uid.clone()),
                    resource_version: resource_version.clone(),
                }),
                ..Default::default()
            };
            let result = match (&binding.kind, &binding.namespace) {
                (BindingKind::RoleBinding, Some(ns)) => {
                    let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
                    api.delete(&binding.name, &params).await.map(drop)
                }
                _ => {
                    let api: Api<ClusterRoleBinding> = Api::all(client.clone());
                    api.delete(&binding.name, &params).await.map(drop)
                }
            };
            match result {
                Ok(()) => Attempt::Deleted,
                Err(e) => classify(e),
            }
        }
    }
}

impl Attempt {
    /// Metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Attempt::Removed(_) => "removed",
            Attempt::Deleted => "deleted",
            Attempt::Forbidden(_) => "forbidden",
            Attempt::Stale => "conflict",
            Attempt::Failed(_) => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(kind: BindingKind) -> BindingSnapshot {
        BindingSnapshot {
            kind,
            namespace: (kind == BindingKind::RoleBinding).then(|| "payments".into()),
            name: "devs-edit".into(),
            uid: "u-1".into(),
            created_at: None,
        }
    }

    #[test]
    fn the_patch_tests_uid_version_and_subject_before_removing_it() {
        let stored = json!({"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"});
        let ops = patch_ops(&binding(BindingKind::RoleBinding), Some("42"), 1, &stored);
        assert_eq!(
            ops,
            json!([
                {"op": "test", "path": "/metadata/uid", "value": "u-1"},
                {"op": "test", "path": "/metadata/resourceVersion", "value": "42"},
                {"op": "test", "path": "/subjects/1", "value": stored},
                {"op": "remove", "path": "/subjects/1"}
            ])
        );
    }

    #[test]
    fn the_admin_command_is_the_same_write_guarded_by_uid() {
        let stored = json!({"kind": "User", "name": "o'brien"});
        let remove = Removal::RemoveSubject {
            binding: binding(BindingKind::RoleBinding),
            resource_version: Some("42".into()),
            index: 0,
            stored,
        };
        assert_eq!(
            command(&remove),
            r#"kubectl patch rolebinding devs-edit -n payments --type=json -p '[{"op":"test","path":"/metadata/uid","value":"u-1"},{"op":"test","path":"/subjects/0","value":{"kind":"User","name":"o'\''brien"}},{"op":"remove","path":"/subjects/0"}]'"#
        );
        let delete = Removal::DeleteBinding {
            binding: binding(BindingKind::ClusterRoleBinding),
            resource_version: None,
        };
        assert_eq!(
            command(&delete),
            r#"echo '{"apiVersion":"v1","kind":"DeleteOptions","preconditions":{"uid":"u-1"}}' | kubectl delete --raw /apis/rbac.authorization.k8s.io/v1/clusterrolebindings/devs-edit -f -"#
        );
    }

    #[test]
    fn a_service_account_without_namespace_is_in_the_bindings_namespace() {
        let sa = Subject {
            kind: SubjectKind::ServiceAccount,
            name: "ci".into(),
            namespace: Some("payments".into()),
        };
        let stored = K8sSubject {
            kind: "ServiceAccount".into(),
            name: "ci".into(),
            ..Default::default()
        };
        assert!(same_subject(&stored, &sa, Some("payments")));
        assert!(!same_subject(&stored, &sa, Some("other")));
        let user = K8sSubject {
            kind: "User".into(),
            name: "ci".into(),
            ..Default::default()
        };
        assert!(!same_subject(&user, &sa, Some("payments")));
    }
}
