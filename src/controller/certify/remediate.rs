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
//! ([`super::bindable::may_bind`], a SelfSubjectAccessReview): it removes only what it could
//! have granted. A refusal is not retried in a loop: the item stays `Pending`
//! with the reason and the command an admin can run.

use k8s_openapi::api::rbac::v1::{ClusterRoleBinding, RoleBinding, Subject as K8sSubject};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, Preconditions},
    Client,
};
use serde_json::{json, Value};

use super::inventory::{cluster_role_binding, role_binding};
use crate::{
    api::{BindingKind, BindingSnapshot, RemediationAction, Subject},
    escape::shell,
    store::Cache,
};

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

/// Whether the stored subject is the item's subject, read as the core reads it
/// (a ServiceAccount without a namespace is in the binding's namespace; a `User`
/// named `system:serviceaccount:NS:NAME` is that ServiceAccount).
fn same_subject(stored: &K8sSubject, subject: &Subject, binding_ns: Option<&str>) -> bool {
    crate::certify::inventory::subject(stored, binding_ns).as_ref() == Some(subject)
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

fn resource(kind: BindingKind) -> &'static str {
    match kind {
        BindingKind::RoleBinding => "rolebinding",
        BindingKind::ClusterRoleBinding => "clusterrolebinding",
    }
}

/// A path segment, percent-encoded: a name may hold `?`, `#` or a space, which
/// would otherwise end the path (kubectl decodes it and encodes it again).
fn segment(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' | b'@' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The API path of the binding.
fn path(b: &BindingSnapshot) -> String {
    match (&b.kind, &b.namespace) {
        (BindingKind::RoleBinding, Some(ns)) => format!(
            "/apis/rbac.authorization.k8s.io/v1/namespaces/{}/rolebindings/{}",
            segment(ns),
            segment(&b.name)
        ),
        _ => format!(
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{}",
            segment(&b.name)
        ),
    }
}

/// The arguments of the `kubectl` command that makes the same write, guarded by
/// the binding's uid (not its resourceVersion: an admin runs it later, and the
/// subject test is what keeps it exact); for a delete, also the body `kubectl`
/// reads from its input.
pub fn argv(removal: &Removal) -> (Vec<String>, Option<String>) {
    match removal {
        Removal::RemoveSubject {
            binding,
            index,
            stored,
            ..
        } => {
            // `TYPE/NAME` is one word: a name starting with `-` is never a flag.
            let mut argv = vec![
                "kubectl".to_string(),
                "patch".into(),
                format!("{}/{}", resource(binding.kind), binding.name),
            ];
            if let Some(ns) = &binding.namespace {
                argv.extend(["-n".into(), ns.clone()]);
            }
            argv.extend([
                "--type".into(),
                "json".into(),
                "-p".into(),
                patch_ops(binding, None, *index, stored).to_string(),
            ]);
            (argv, None)
        }
        Removal::DeleteBinding { binding, .. } => {
            let body = json!({
                "apiVersion": "v1", "kind": "DeleteOptions",
                "preconditions": {"uid": binding.uid}
            });
            let argv = ["kubectl", "delete", "--raw", &path(binding), "-f", "-"];
            (argv.map(String::from).to_vec(), Some(body.to_string()))
        }
    }
}

/// The command an admin runs ([`argv`]), every word quoted
/// ([`crate::escape::shell`]): no name can add a command or an argument.
pub fn command(removal: &Removal) -> String {
    match argv(removal) {
        (argv, None) => shell::join(&argv),
        (argv, Some(body)) => shell::pipeline(&[&["echo".to_string(), body][..], &argv[..]]),
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
    use crate::api::SubjectKind;

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
            r#"kubectl patch rolebinding/devs-edit -n payments --type json -p "[{\"op\":\"test\",\"path\":\"/metadata/uid\",\"value\":\"u-1\"},{\"op\":\"test\",\"path\":\"/subjects/0\",\"value\":{\"kind\":\"User\",\"name\":\"o'brien\"}},{\"op\":\"remove\",\"path\":\"/subjects/0\"}]""#
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
    fn a_hostile_binding_name_stays_one_word_and_one_path_segment() {
        let mut b = binding(BindingKind::RoleBinding);
        b.name = "gh-inj;touch${IFS}gh-pwned;true".into();
        let remove = Removal::RemoveSubject {
            binding: b.clone(),
            resource_version: None,
            index: 0,
            stored: json!({"kind": "User", "name": "bob"}),
        };
        assert!(
            command(&remove)
                .starts_with("kubectl patch 'rolebinding/gh-inj;touch${IFS}gh-pwned;true' -n payments "),
            "{}",
            command(&remove)
        );
        b.name = "a b?c#d".into();
        let delete = Removal::DeleteBinding {
            binding: b,
            resource_version: None,
        };
        assert_eq!(
            argv(&delete).0[3],
            "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/a%20b%3Fc%23d"
        );
    }

    /// What a recording `kubectl` received when bash ran `line`: its arguments
    /// and what it read from its input. The recorder is a shell function, not
    /// a script written to disk: a script written and executed while other
    /// test threads fork can fail with "Text file busy" (a forked child holds
    /// the write descriptor until it execs), which made this test flaky
    /// under CI's parallel tests.
    fn run_with_recording_kubectl(line: &str) -> (Vec<String>, String) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "gh-remediate-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let recorder =
            "kubectl() { printf '%s\\0' \"$@\" > \"$GH_RECORD/argv\"; cat > \"$GH_RECORD/stdin\"; }";
        let status = std::process::Command::new("bash")
            .arg("-c")
            .arg(format!("{recorder}\n{line}"))
            .current_dir(&dir)
            .env("GH_RECORD", &dir)
            .stdin(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "{line}");
        let argv = std::fs::read(dir.join("argv")).unwrap();
        let mut args: Vec<String> = argv
            .split(|b| *b == 0)
            .map(|a| String::from_utf8(a.to_vec()).unwrap())
            .collect();
        args.pop();
        let stdin = std::fs::read_to_string(dir.join("stdin")).unwrap();
        // Nothing else was made: no `touch` ran.
        let made: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !["argv", "stdin"].contains(&n.as_str()))
            .collect();
        assert!(made.is_empty(), "{line} made {made:?}");
        std::fs::remove_dir_all(&dir).unwrap();
        (args, stdin)
    }

    fn percent_decoded(s: &str) -> String {
        let bytes = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        String::from_utf8(out).unwrap()
    }

    use proptest::prelude::*;

    /// A name the API server accepts for an RBAC object: anything but `/` and `%`
    /// (and not `.` or `..`); no NUL, which no argument can carry.
    fn rbac_name() -> impl Strategy<Value = String> {
        "[^/%\u{0}]{1,24}".prop_filter("not . or ..", |n| n != "." && n != "..")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        /// Whatever the names, bash runs exactly the intended kubectl command.
        /// Subject names may even hold NUL (the API server takes it; the patch
        /// carries it as JSON `\u0000`).
        #[test]
        fn bash_runs_exactly_the_intended_command(
            name in rbac_name(),
            namespace in "[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?",
            subject in "(?s:.){1,24}",
            cluster in any::<bool>(),
            delete in any::<bool>(),
        ) {
            let kind = if cluster { BindingKind::ClusterRoleBinding } else { BindingKind::RoleBinding };
            let b = BindingSnapshot {
                kind,
                namespace: (!cluster).then(|| namespace.clone()),
                name: name.clone(),
                uid: "u-1".into(),
                created_at: None,
            };
            let stored = json!({"kind": "User", "name": subject, "apiGroup": "rbac.authorization.k8s.io"});
            let removal = if delete {
                Removal::DeleteBinding { binding: b.clone(), resource_version: None }
            } else {
                Removal::RemoveSubject { binding: b.clone(), resource_version: None, index: 2, stored: stored.clone() }
            };
            let line = command(&removal);
            prop_assert!(!line.chars().any(crate::escape::is_control), "{line:?}");
            let (args, stdin) = run_with_recording_kubectl(&line);
            let res = if cluster { "clusterrolebinding" } else { "rolebinding" };
            if delete {
                prop_assert_eq!(&args[..2], ["delete", "--raw"]);
                prop_assert_eq!(&args[3..], ["-f", "-"]);
                let expected = match cluster {
                    true => format!("/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/{name}"),
                    false => format!("/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings/{name}"),
                };
                // The path is one argument, and exactly the binding's once decoded.
                prop_assert_eq!(percent_decoded(&args[2]), expected);
                prop_assert!(!args[2].contains(['?', '#', ' ']));
                let body: Value = serde_json::from_str(stdin.trim_end()).unwrap();
                prop_assert_eq!(&body["preconditions"]["uid"], "u-1");
            } else {
                let mut expected = vec!["patch".to_string(), format!("{res}/{name}")];
                if !cluster {
                    expected.extend(["-n".into(), namespace.clone()]);
                }
                expected.extend(["--type".into(), "json".into(), "-p".into()]);
                prop_assert_eq!(&args[..args.len() - 1], &expected[..]);
                let patch: Value = serde_json::from_str(&args[args.len() - 1]).unwrap();
                prop_assert_eq!(patch, patch_ops(&b, None, 2, &stored));
            }
        }
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
        // The ServiceAccount's user name is the ServiceAccount.
        let as_user = K8sSubject {
            kind: "User".into(),
            name: "system:serviceaccount:payments:ci".into(),
            ..Default::default()
        };
        assert!(same_subject(&as_user, &sa, Some("other")));
    }
}
