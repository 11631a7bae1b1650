//! When an object that grants access must be gone, from memory alone: the
//! deadline of an operator-made RoleBinding, ClusterRoleBinding or OneTime Job.
//! Pure: no I/O, no clock. Used by the removal lane
//! (`controller::removal::lane`) through the deadline index
//! ([`super::removals`]).
//!
//! A RoleBinding or Job names its request by owner reference (same namespace,
//! same uid). A ClusterRoleBinding cannot carry an owner reference to a
//! namespaced request, so it is matched to its request by what only the
//! operator (or a cluster admin) can have written and what a tenant cannot
//! choose: see [`made_for`].

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::batch::v1::Job,
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::Resource;

use crate::{
    api::{ApprovalRequest, BindingKind},
    decide::naming::binding_name,
    labels::{self, EXPIRES_AT, REQUEST_NAME, REQUEST_NAMESPACE, REQUEST_UID},
};

/// The ApprovalRequest that controls the object, if any.
pub fn controller_request(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let api_version = ApprovalRequest::api_version(&());
    let kind = ApprovalRequest::kind(&());
    meta.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true) && o.kind == kind.as_ref() && o.api_version == api_version.as_ref()
    })
}

/// Whether a standby may consider the object at all: labelled as the
/// operator's, controlled by an ApprovalRequest, not being deleted.
pub fn considered(meta: &ObjectMeta) -> bool {
    labels::is_managed(meta) && controller_request(meta).is_some() && meta.deletion_timestamp.is_none()
}

/// The instant the binding must be gone, if memory can tell: the earlier of
/// its `expires-at` annotation and its request's grant expiry (`owner`: the
/// request its owner reference names, same uid). `None`: not for a standby.
pub fn binding_deadline(meta: &ObjectMeta, owner: Option<&ApprovalRequest>) -> Option<DateTime<Utc>> {
    if !considered(meta) {
        return None;
    }
    let granted = owner
        .and_then(|r| r.status.as_ref()?.grant.as_ref())
        .filter(|g| Some(&g.name) == meta.name.as_ref() && g.namespace == meta.namespace)
        .and_then(|g| g.expires_at);
    [annotated(meta), granted].into_iter().flatten().min()
}

/// The binding's own `expires-at` annotation.
fn annotated(meta: &ObjectMeta) -> Option<DateTime<Utc>> {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The request a ClusterRoleBinding says it was made for, to look up in
/// memory: its namespace and the names it may have (the name label, cut to 63
/// characters, and the name read back from the binding's own name). Only a
/// hint: [`made_for`] decides.
pub fn cluster_binding_claim(meta: &ObjectMeta) -> Option<(String, Vec<String>)> {
    if !labels::is_managed(meta) || meta.deletion_timestamp.is_some() {
        return None;
    }
    let labels = meta.labels.as_ref()?;
    let namespace = labels.get(REQUEST_NAMESPACE)?.clone();
    let mut names: Vec<String> = labels.get(REQUEST_NAME).cloned().into_iter().collect();
    // `gatehouse-NAMESPACE.NAME-HASH8` (naming::binding_name), unless cut.
    let read_back = meta
        .name
        .as_deref()
        .and_then(|n| n.strip_prefix("gatehouse-"))
        .and_then(|n| n.get(..n.len().checked_sub(9)?))
        .and_then(|n| n.strip_prefix(namespace.as_str()))
        .and_then(|n| n.strip_prefix('.'));
    if let Some(name) = read_back.filter(|n| !n.is_empty() && !names.iter().any(|m| m == n)) {
        names.push(name.to_string());
    }
    Some((namespace, names))
}

/// Whether the ClusterRoleBinding is the one the operator made for this
/// request's grant. All of these must hold:
///
/// - the binding is labelled as the operator's, with the request's namespace,
///   name and uid (labels on a ClusterRoleBinding: only the operator and cluster
///   admins write those);
/// - its name is the one the operator derives from that namespace, name and
///   uid (`gatehouse-NS.NAME-HASH`, [`binding_name`]), which no other request
///   yields: the name begins with the request's namespace, and namespaces
///   have no dots;
/// - the request's recorded grant names it (kind ClusterRoleBinding, same
///   name).
///
/// A tenant controls her own requests entirely (names, labels, even status if
/// the status-writer admission policy is not installed), but not the labels
/// or the name of a ClusterRoleBinding: a request in namespace A matches only
/// a binding made for that very request (same uid), so the worst a forged
/// request can do is end its own grant early, which deleting the request does
/// anyway.
pub fn made_for(meta: &ObjectMeta, req: &ApprovalRequest) -> bool {
    let (Some(ns), Some(name), Some(uid)) = (
        req.metadata.namespace.as_deref(),
        req.metadata.name.as_deref(),
        req.metadata.uid.as_deref().filter(|u| !u.is_empty()),
    ) else {
        return false;
    };
    let Some(labels) = meta.labels.as_ref() else {
        return false;
    };
    let label = |k: &str| labels.get(k).map(String::as_str);
    let derived = binding_name(ns, name, uid, BindingKind::ClusterRoleBinding);
    let recorded = req
        .status
        .as_ref()
        .and_then(|s| s.grant.as_ref())
        .is_some_and(|g| {
            g.kind == BindingKind::ClusterRoleBinding
                && g.namespace.is_none()
                && Some(&g.name) == meta.name.as_ref()
        });
    labels::is_managed(meta)
        && meta.deletion_timestamp.is_none()
        && meta.namespace.is_none()
        && label(REQUEST_NAMESPACE) == Some(ns)
        && label(REQUEST_UID) == Some(uid)
        && label(REQUEST_NAME) == Some(labels::label_value(name).as_str())
        && meta.name.as_deref() == Some(derived.as_str())
        && recorded
}

/// The instant the ClusterRoleBinding must be gone, if memory can tell: the
/// earlier of its `expires-at` annotation and its request's recorded expiry,
/// only when `owner` is the request it was made for ([`made_for`]). `None`:
/// not for the lane (the leader's reconcile and the sweep remove it).
pub fn cluster_binding_deadline(meta: &ObjectMeta, owner: Option<&ApprovalRequest>) -> Option<DateTime<Utc>> {
    let owner = owner.filter(|r| made_for(meta, r))?;
    let recorded = owner.status.as_ref()?.grant.as_ref()?.expires_at;
    [annotated(meta), recorded].into_iter().flatten().min()
}

/// The instant the Job must be stopped, if memory can tell: its request's
/// recorded job deadline. A finished Job is left alone (it holds no access,
/// and its logs are the request's record).
pub fn job_deadline(job: &Job, owner: Option<&ApprovalRequest>) -> Option<DateTime<Utc>> {
    if !considered(&job.metadata) || finished(job) {
        return None;
    }
    let record = owner?.status.as_ref()?.job.as_ref()?;
    let same = Some(&record.name) == job.metadata.name.as_ref()
        && record
            .uid
            .as_ref()
            .is_none_or(|u| Some(u) == job.metadata.uid.as_ref());
    same.then_some(record.deadline).flatten()
}

fn finished(job: &Job) -> bool {
    job.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .into_iter()
        .flatten()
        .any(|c| (c.type_ == "Complete" || c.type_ == "Failed") && c.status == "True")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::batch::v1::{JobCondition, JobStatus};

    use super::*;
    use crate::api::{ApprovalRequestStatus, BindingKind, GrantStatus, JobRecord};

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn request() -> ApprovalRequest {
        let mut r = ApprovalRequest::new("dana-view", Default::default());
        r.metadata.namespace = Some("team".into());
        r.metadata.uid = Some("req-uid".into());
        r
    }

    fn managed(name: &str, expires: Option<&str>) -> ObjectMeta {
        let mut meta = crate::labels::owned_metadata(
            &request(),
            name,
            Some("team"),
            expires
                .map(|e| BTreeMap::from([(EXPIRES_AT.to_string(), e.to_string())]))
                .unwrap_or_default(),
        );
        meta.uid = Some("b-uid".into());
        meta.resource_version = Some("7".into());
        meta
    }

    fn granted(name: &str, expires: &str) -> ApprovalRequest {
        let mut r = request();
        r.status = Some(ApprovalRequestStatus {
            grant: Some(GrantStatus {
                kind: BindingKind::RoleBinding,
                name: name.into(),
                namespace: Some("team".into()),
                granted_at: None,
                expires_at: Some(at(expires)),
                revoked_at: None,
            }),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_binding_is_due_at_its_annotation_or_its_requests_expiry_whichever_is_earlier() {
        let meta = managed("b", Some("2026-12-07T12:00:00Z"));
        assert_eq!(binding_deadline(&meta, None), Some(at("2026-12-07T12:00:00Z")));
        // An annotation moved later by hand does not outlive the request's expiry.
        let owner = granted("b", "2026-12-07T11:00:00Z");
        assert_eq!(
            binding_deadline(&meta, Some(&owner)),
            Some(at("2026-12-07T11:00:00Z"))
        );
        // The request's grant names another binding: only the annotation counts.
        let other = granted("c", "2026-12-07T11:00:00Z");
        assert_eq!(
            binding_deadline(&meta, Some(&other)),
            Some(at("2026-12-07T12:00:00Z"))
        );
        // Nothing known: not for a standby.
        assert_eq!(binding_deadline(&managed("b", Some("soon")), None), None);
    }

    #[test]
    fn only_the_operators_bindings_controlled_by_a_request_are_considered() {
        let base = managed("b", Some("2026-12-07T12:00:00Z"));
        let mut unlabelled = base.clone();
        unlabelled.labels = None;
        let mut unowned = base.clone();
        unowned.owner_references = None;
        let mut owned_by_other_kind = base.clone();
        if let Some(o) = owned_by_other_kind.owner_references.as_mut() {
            o[0].kind = "ConfigMap".into();
        }
        let mut not_controller = base.clone();
        if let Some(o) = not_controller.owner_references.as_mut() {
            o[0].controller = None;
        }
        let mut going = base.clone();
        going.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
            "2026-12-07T10:00:00Z".parse().unwrap(),
        ));
        for (what, meta) in [
            ("unlabelled", unlabelled),
            ("no owner", unowned),
            ("other owner kind", owned_by_other_kind),
            ("not the controller", not_controller),
            ("being deleted", going),
        ] {
            assert_eq!(binding_deadline(&meta, None), None, "{what}");
        }
    }

    fn job(uid: &str, finished: Option<&str>) -> Job {
        Job {
            metadata: ObjectMeta {
                uid: Some(uid.into()),
                ..managed("dana-view-job", None)
            },
            status: finished.map(|t| JobStatus {
                conditions: Some(vec![JobCondition {
                    type_: t.into(),
                    status: "True".into(),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_job(uid: Option<&str>, deadline: &str) -> ApprovalRequest {
        let mut r = request();
        r.status = Some(ApprovalRequestStatus {
            job: Some(Box::new(JobRecord {
                name: "dana-view-job".into(),
                uid: uid.map(Into::into),
                deadline: Some(at(deadline)),
                ..Default::default()
            })),
            ..Default::default()
        });
        r
    }

    #[test]
    fn a_running_job_is_due_at_its_recorded_deadline_and_a_finished_one_never() {
        let d = "2026-12-07T12:00:00Z";
        let owner = with_job(Some("j1"), d);
        assert_eq!(job_deadline(&job("j1", None), Some(&owner)), Some(at(d)));
        assert_eq!(
            job_deadline(&job("j1", None), Some(&with_job(None, d))),
            Some(at(d))
        );
        // Another Job of that name, a finished one, or no request in memory.
        assert_eq!(job_deadline(&job("j2", None), Some(&owner)), None);
        assert_eq!(job_deadline(&job("j1", Some("Complete")), Some(&owner)), None);
        assert_eq!(job_deadline(&job("j1", Some("Failed")), Some(&owner)), None);
        assert_eq!(job_deadline(&job("j1", None), None), None);
    }
}
