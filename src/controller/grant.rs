//! The bindings that carry grants: build, compare with memory, apply, remove.

use std::collections::BTreeMap;

use k8s_openapi::{
    api::rbac::v1::{ClusterRoleBinding, RoleBinding, RoleRef as K8sRoleRef, Subject as K8sSubject},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    api::{Api, DeleteParams},
    runtime::reflector::ObjectRef,
    Client,
};

use super::{owned, Error};
use crate::{
    api::{ApprovalRequest, BindingKind, SubjectKind},
    decide::{timestamp::rfc3339, Binding, BindingRef},
    labels::EXPIRES_AT,
    store::{Cache, Cached},
};

/// The binding exactly as the operator writes it.
#[derive(Debug, Clone, PartialEq)]
enum Desired {
    Namespaced(RoleBinding),
    Cluster(ClusterRoleBinding),
}

fn desired(req: &ApprovalRequest, b: &Binding) -> Desired {
    let annotations = BTreeMap::from([(EXPIRES_AT.to_string(), rfc3339(b.valid_until))]);
    let metadata =
        crate::labels::owned_metadata(req, &b.target.name, b.target.namespace.as_deref(), annotations);
    let role_ref = K8sRoleRef {
        api_group: "rbac.authorization.k8s.io".into(),
        kind: b.role.kind.to_string(),
        name: b.role.name.clone(),
    };
    // ServiceAccounts are in the core group; users and groups in RBAC's.
    let subject = K8sSubject {
        kind: b.subject.kind.as_str().into(),
        api_group: (b.subject.kind != SubjectKind::ServiceAccount)
            .then(|| "rbac.authorization.k8s.io".to_string()),
        name: b.subject.name.clone(),
        namespace: b.subject.namespace.clone(),
    };
    match b.target.kind {
        BindingKind::RoleBinding => Desired::Namespaced(RoleBinding {
            metadata,
            role_ref,
            subjects: Some(vec![subject]),
        }),
        BindingKind::ClusterRoleBinding => Desired::Cluster(ClusterRoleBinding {
            metadata,
            role_ref,
            subjects: Some(vec![subject]),
        }),
    }
}

/// Whether the object in memory already is what the operator would write: same
/// role, same single subject, our labels, annotations and owner reference.
fn in_place(
    found: &ObjectMeta,
    role_ref: &K8sRoleRef,
    subjects: &Option<Vec<K8sSubject>>,
    want: &Desired,
) -> bool {
    let (meta, want_role, want_subjects) = match want {
        Desired::Namespaced(rb) => (&rb.metadata, &rb.role_ref, &rb.subjects),
        Desired::Cluster(crb) => (&crb.metadata, &crb.role_ref, &crb.subjects),
    };
    let contains = |have: &Option<BTreeMap<String, String>>, want: &Option<BTreeMap<String, String>>| {
        let have = have.as_ref();
        want.iter()
            .flatten()
            .all(|(k, v)| have.and_then(|h| h.get(k)) == Some(v))
    };
    let owners = meta.owner_references.iter().flatten().all(|o| {
        found
            .owner_references
            .iter()
            .flatten()
            .any(|f| f.uid == o.uid && f.controller == o.controller)
    });
    role_ref == want_role
        && subjects == want_subjects
        && contains(&found.labels, &meta.labels)
        && contains(&found.annotations, &meta.annotations)
        && owners
        && found.deletion_timestamp.is_none()
}

/// Creates or restores the binding (see [`owned::apply`]) unless memory shows it
/// in place already; returns whether it wrote. A binding edited by hand is put
/// back; one whose roleRef was changed is created again.
pub async fn ensure_binding(
    client: &Client,
    cache: &Cache,
    req: &ApprovalRequest,
    b: &Binding,
) -> Result<bool, Error> {
    let name = &b.target.name;
    let want = desired(req, b);
    let trusted = cache.health.trusted(<RoleBinding as Cached>::RESOURCE)
        && cache.health.trusted(<ClusterRoleBinding as Cached>::RESOURCE);
    let result = match &want {
        Desired::Namespaced(rb) => {
            let ns = b.target.namespace.as_deref().unwrap_or_default();
            let found = cache.role_bindings.get(&ObjectRef::new(name).within(ns));
            if trusted && found.is_some_and(|f| in_place(&f.metadata, &f.role_ref, &f.subjects, &want)) {
                return Ok(false);
            }
            owned::apply(&Api::namespaced(client.clone(), ns), name, rb)
                .await
                .map(drop)
        }
        Desired::Cluster(crb) => {
            let found = cache.cluster_role_bindings.get(&ObjectRef::new(name));
            if trusted && found.is_some_and(|f| in_place(&f.metadata, &f.role_ref, &f.subjects, &want)) {
                return Ok(false);
            }
            owned::apply(&Api::all(client.clone()), name, crb).await.map(drop)
        }
    };
    result.map(|()| true).map_err(|source| Error::Binding {
        name: name.clone(),
        source,
    })
}

/// Deletes the binding unless memory (while its watch is healthy) shows it is
/// gone already; returns whether it deleted one.
pub async fn remove_binding(client: &Client, cache: &Cache, target: &BindingRef) -> Result<bool, Error> {
    let known_absent = |resource| {
        cache.health.trusted(resource)
            && match target.kind {
                BindingKind::RoleBinding => cache
                    .role_bindings
                    .get(
                        &ObjectRef::new(&target.name).within(target.namespace.as_deref().unwrap_or_default()),
                    )
                    .is_none(),
                BindingKind::ClusterRoleBinding => cache
                    .cluster_role_bindings
                    .get(&ObjectRef::new(&target.name))
                    .is_none(),
            }
    };
    let resource = match target.kind {
        BindingKind::RoleBinding => <RoleBinding as Cached>::RESOURCE,
        BindingKind::ClusterRoleBinding => <ClusterRoleBinding as Cached>::RESOURCE,
    };
    if known_absent(resource) {
        return Ok(false);
    }
    delete_binding(client, target).await
}

/// Deletes the binding through the API; absent is fine.
pub async fn delete_binding(client: &Client, target: &BindingRef) -> Result<bool, Error> {
    let dp = DeleteParams::default();
    let result = match target.kind {
        BindingKind::RoleBinding => {
            let ns = target.namespace.as_deref().unwrap_or_default();
            let api: Api<RoleBinding> = Api::namespaced(client.clone(), ns);
            owned::delete_if_present(&api, &target.name, &dp).await
        }
        BindingKind::ClusterRoleBinding => {
            let api: Api<ClusterRoleBinding> = Api::all(client.clone());
            owned::delete_if_present(&api, &target.name, &dp).await
        }
    };
    result.map_err(|source| Error::Binding {
        name: target.name.clone(),
        source,
    })
}

/// The binding a managed object in memory stands for.
pub fn binding_ref_of<K: kube::Resource>(obj: &K, kind: BindingKind) -> BindingRef {
    BindingRef {
        kind,
        name: obj.meta().name.clone().unwrap_or_default(),
        namespace: obj.meta().namespace.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RoleKind, RoleRef, Subject};

    fn binding() -> Binding {
        Binding {
            target: BindingRef {
                kind: BindingKind::RoleBinding,
                name: "gatehouse-dana-view-1234abcd".into(),
                namespace: Some("team".into()),
            },
            role: RoleRef {
                kind: RoleKind::ClusterRole,
                name: "view".into(),
            },
            subject: Subject {
                kind: SubjectKind::User,
                name: "dana".into(),
                namespace: None,
            },
            valid_until: "2026-11-23T11:00:00Z".parse().unwrap(),
        }
    }

    fn request() -> ApprovalRequest {
        let mut r = ApprovalRequest::new("dana-view", Default::default());
        r.metadata.namespace = Some("team".into());
        r.metadata.uid = Some("uid-1".into());
        r
    }

    fn found(want: &Desired) -> RoleBinding {
        match want {
            Desired::Namespaced(rb) => rb.clone(),
            Desired::Cluster(_) => unreachable!(),
        }
    }

    #[test]
    fn a_binding_in_memory_as_written_needs_no_write() {
        let want = desired(&request(), &binding());
        let mut rb = found(&want);
        // The API server adds its own fields; they do not count as a difference.
        rb.metadata.resource_version = Some("42".into());
        rb.metadata
            .labels
            .get_or_insert_with(Default::default)
            .insert("team".into(), "payments".into());
        assert!(in_place(&rb.metadata, &rb.role_ref, &rb.subjects, &want));
    }

    #[test]
    fn any_difference_that_matters_means_a_write() {
        let want = desired(&request(), &binding());
        let base = found(&want);

        let mut other_role = base.clone();
        other_role.role_ref.name = "admin".into();
        let mut extra_subject = base.clone();
        extra_subject
            .subjects
            .get_or_insert_with(Vec::new)
            .push(K8sSubject {
                kind: "User".into(),
                name: "mallory".into(),
                ..Default::default()
            });
        let mut later_expiry = base.clone();
        later_expiry
            .metadata
            .annotations
            .get_or_insert_with(Default::default)
            .insert(EXPIRES_AT.into(), "2026-11-23T12:00:00Z".into());
        let mut no_labels = base.clone();
        no_labels.metadata.labels = None;
        let mut no_owner = base.clone();
        no_owner.metadata.owner_references = None;
        for (what, rb) in [
            ("role", other_role),
            ("subjects", extra_subject),
            ("expiry", later_expiry),
            ("labels", no_labels),
            ("owner", no_owner),
        ] {
            assert!(
                !in_place(&rb.metadata, &rb.role_ref, &rb.subjects, &want),
                "{what}"
            );
        }
    }
}
