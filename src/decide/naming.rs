//! Names the core derives from a request: its binding, its subject, and who
//! would benefit from it.

use kube::ResourceExt;

use super::model::BindingRef;
use crate::api::{ApprovalRequest, BindingKind, Identity, Subject, SubjectKind};

/// The deterministic name of the binding of a request. Includes a hash of the
/// request's uid, so a deleted and re-created request never adopts an old binding.
pub fn binding_name(namespace: &str, name: &str, uid: &str, kind: BindingKind) -> String {
    let body = match kind {
        BindingKind::RoleBinding => name.to_string(),
        BindingKind::ClusterRoleBinding => format!("{namespace}.{name}"),
    };
    derived_name(&body, namespace, name, uid, 253)
}

/// `gatehouse-BODY-HASH`, at most `max` characters, the hash taken over the
/// request's namespace, name and uid.
pub fn derived_name(body: &str, namespace: &str, name: &str, uid: &str, max: usize) -> String {
    // FNV-1a: stable across releases and platforms, unlike std's hasher.
    let hash = format!("{namespace}/{name}/{uid}")
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    let body: String = body.chars().take(max - "gatehouse-".len() - 9).collect();
    format!(
        "gatehouse-{}-{:08x}",
        body.trim_end_matches(['-', '.']),
        hash as u32
    )
}

/// Where the request's binding lives (kind, deterministic name, namespace).
pub fn binding_ref(req: &ApprovalRequest) -> BindingRef {
    let namespace = req.namespace().unwrap_or_default();
    let kind = req.spec.role.kind.binding_kind(req.spec.scope);
    let name = binding_name(
        &namespace,
        &req.name_any(),
        req.uid().as_deref().unwrap_or_default(),
        kind,
    );
    BindingRef {
        kind,
        name,
        namespace: (kind == BindingKind::RoleBinding).then_some(namespace),
    }
}

/// Whether `who` would receive the access the request grants: the subject user, a
/// member of the subject group, or the subject ServiceAccount itself. Such a
/// person's approval does not count, as for the requester's own.
pub fn benefits(req: &ApprovalRequest, who: &Identity) -> bool {
    is_subject(&subject_of(req), who)
}

/// Whether `who` is the subject: the user, a member of the group, or the
/// ServiceAccount itself. The one rule for "this is access of theirs", used by
/// requests (self-approval), certification items (a subject does not certify
/// their own access) and the plugin.
pub fn is_subject(subject: &Subject, who: &Identity) -> bool {
    is_subject_user(subject, &who.username, &who.groups)
}

/// [`is_subject`] for a user name and its groups.
pub fn is_subject_user(subject: &Subject, username: &str, groups: &[String]) -> bool {
    match subject.kind {
        SubjectKind::User => subject.name == username,
        SubjectKind::Group => groups.contains(&subject.name),
        SubjectKind::ServiceAccount => {
            username
                == service_account_username(subject.namespace.as_deref().unwrap_or_default(), &subject.name)
        }
    }
}

/// The user name a ServiceAccount authenticates as: `system:serviceaccount:NS:NAME`.
pub fn service_account_username(namespace: &str, name: &str) -> String {
    format!("system:serviceaccount:{namespace}:{name}")
}

/// Who receives access: `spec.subject`, with a ServiceAccount's namespace
/// defaulted to the request's, or the requester's user.
pub fn subject_of(req: &ApprovalRequest) -> Subject {
    match &req.spec.subject {
        Some(s) => Subject {
            namespace: match s.kind {
                SubjectKind::ServiceAccount => s.namespace.clone().or_else(|| req.namespace()),
                _ => None,
            },
            ..s.clone()
        },
        None => Subject {
            kind: SubjectKind::User,
            name: req.spec.requester.username.clone(),
            namespace: None,
        },
    }
}

/// `namespace/name` of a request, as messages and maps name it.
pub fn request_key(req: &ApprovalRequest) -> String {
    format!("{}/{}", req.namespace().unwrap_or_default(), req.name_any())
}
