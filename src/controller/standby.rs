//! Removals without leadership: a replica that does not lead deletes the
//! operator's bindings (and OneTime Jobs) whose deadline has passed, so access
//! ends on time while the Lease of a dead leader runs out.
//!
//! It does nothing else: no grant, no status write, no Event; the leader
//! records the outcome as ever (a binding already gone is what it wants). This
//! is safe without the Lease because a removal only narrows access, and
//! because every delete carries preconditions (uid and resourceVersion): it
//! removes exactly the object memory judged expired, never one re-created or
//! changed since. Two replicas deleting the same object is idempotent: 404
//! (gone) and 409 (changed since) both mean there is nothing left to do with
//! that version. Only objects labelled as the operator's AND controlled by an
//! ApprovalRequest (owner reference) are considered; ClusterRoleBindings cannot
//! carry an owner reference to a namespaced request, so they wait for the leader.

use std::{collections::HashSet, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use k8s_openapi::{
    api::{batch::v1::Job, rbac::v1::RoleBinding},
    apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference},
};
use kube::{
    api::{Api, DeleteParams, Preconditions},
    Client, Resource,
};
use tracing::{info, warn};

use super::{owned::is_status, watch::Triggers};
use crate::{
    api::ApprovalRequest,
    labels::{self, EXPIRES_AT},
    store::Cache,
};

/// Deletes at once, at most.
const PARALLEL: usize = 32;
/// After a change, wait this long for more before looking again (a burst of
/// changes costs one look at memory, not thousands).
const SETTLE: StdDuration = StdDuration::from_millis(50);
/// Look again at least this often (a lost wake-up, an error to retry).
const AT_LEAST_EVERY: StdDuration = StdDuration::from_secs(1);
/// A standby removes an object this long after its deadline: a live leader
/// removes it within milliseconds (and records the lag), and its watch event
/// reaches the standby first, so the API server gets one delete, not two. A
/// dead or slow leader's removals are still done well within a second.
pub const GRACE: chrono::Duration = chrono::Duration::milliseconds(250);

/// The ApprovalRequest that controls the object, if any.
fn controller_request(meta: &ObjectMeta) -> Option<&OwnerReference> {
    let api_version = ApprovalRequest::api_version(&());
    let kind = ApprovalRequest::kind(&());
    meta.owner_references.iter().flatten().find(|o| {
        o.controller == Some(true) && o.kind == kind.as_ref() && o.api_version == api_version.as_ref()
    })
}

/// Whether a standby may consider the object at all: labelled as the
/// operator's, controlled by an ApprovalRequest, not being deleted.
fn considered(meta: &ObjectMeta) -> bool {
    labels::is_managed(meta) && controller_request(meta).is_some() && meta.deletion_timestamp.is_none()
}

/// The instant the binding must be gone, if memory can tell: the earlier of
/// its `expires-at` annotation and its request's grant expiry (`owner`: the
/// request its owner reference names, same uid). `None`: not for a standby.
pub fn binding_deadline(meta: &ObjectMeta, owner: Option<&ApprovalRequest>) -> Option<DateTime<Utc>> {
    if !considered(meta) {
        return None;
    }
    let annotated = meta
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPIRES_AT))
        .and_then(|v| DateTime::parse_from_rfc3339(v).ok())
        .map(|t| t.with_timezone(&Utc));
    let granted = owner
        .and_then(|r| r.status.as_ref()?.grant.as_ref())
        .filter(|g| Some(&g.name) == meta.name.as_ref() && g.namespace == meta.namespace)
        .and_then(|g| g.expires_at);
    [annotated, granted].into_iter().flatten().min()
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

/// The request the owner reference names, if memory holds it with that uid.
fn owner_in(cache: &Cache, meta: &ObjectMeta) -> Option<Arc<ApprovalRequest>> {
    let o = controller_request(meta)?;
    let r = cache.request(meta.namespace.as_deref()?, &o.name)?;
    (r.metadata.uid.as_deref() == Some(o.uid.as_str())).then_some(r)
}

/// An object to delete: exactly this version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Doomed {
    job: bool,
    namespace: String,
    name: String,
    uid: String,
    version: String,
}

impl Doomed {
    fn of(meta: &ObjectMeta, job: bool) -> Option<Doomed> {
        Some(Doomed {
            job,
            namespace: meta.namespace.clone()?,
            name: meta.name.clone()?,
            uid: meta.uid.clone()?,
            version: meta.resource_version.clone()?,
        })
    }
}

/// What memory holds that is due by `now` ([`GRACE`] after its deadline), and
/// when the next one falls due.
fn due(cache: &Cache, now: DateTime<Utc>) -> (Vec<Doomed>, Option<DateTime<Utc>>) {
    let mut doomed = Vec::new();
    let mut next: Option<DateTime<Utc>> = None;
    let mut consider =
        |deadline: Option<DateTime<Utc>>, meta: &ObjectMeta, job: bool| match deadline.map(|d| d + GRACE) {
            Some(d) if d <= now => doomed.extend(Doomed::of(meta, job)),
            Some(d) => next = Some(next.map_or(d, |n| n.min(d))),
            None => {}
        };
    for rb in cache.role_bindings.state() {
        let meta = &rb.metadata;
        if considered(meta) {
            consider(
                binding_deadline(meta, owner_in(cache, meta).as_deref()),
                meta,
                false,
            );
        }
    }
    for job in cache.jobs.state() {
        if considered(&job.metadata) {
            let owner = owner_in(cache, &job.metadata);
            consider(job_deadline(&job, owner.as_deref()), &job.metadata, true);
        }
    }
    (doomed, next)
}

/// Deletes exactly this version; `Ok(true)` if it deleted it, `Ok(false)` if it
/// was gone or changed since (nothing to do with this version).
async fn delete(client: &Client, d: &Doomed) -> Result<bool, kube::Error> {
    let preconditions = Some(Preconditions {
        uid: Some(d.uid.clone()),
        resource_version: Some(d.version.clone()),
    });
    let result = if d.job {
        let dp = DeleteParams {
            preconditions,
            ..DeleteParams::background()
        };
        Api::<Job>::namespaced(client.clone(), &d.namespace)
            .delete(&d.name, &dp)
            .await
            .map(drop)
    } else {
        let dp = DeleteParams {
            preconditions,
            ..DeleteParams::default()
        };
        Api::<RoleBinding>::namespaced(client.clone(), &d.namespace)
            .delete(&d.name, &dp)
            .await
            .map(drop)
    };
    match result {
        Ok(()) => Ok(true),
        Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Removes what is due, at each deadline, until dropped (when this replica
/// becomes the leader) or until a controller takes over `wakes`. Waits for
/// memory to be synced first. `clock` is the wall clock (deadlines are
/// wall-clock instants).
pub async fn remove_expired(
    client: Client,
    cache: Arc<Cache>,
    wakes: &Triggers<ApprovalRequest>,
    clock: fn() -> DateTime<Utc>,
) {
    while !cache.health.synced() {
        tokio::time::sleep(StdDuration::from_millis(100)).await;
    }
    // Every change to a request, its binding or its Job arrives here.
    let mut changes = wakes.connect();
    info!("not the leader: removing expired grants on time meanwhile");
    // Versions already deleted (or found gone): not again while memory lags.
    let mut done: HashSet<Doomed> = HashSet::new();
    loop {
        let now = clock();
        let (doomed, next) = due(&cache, now);
        done.retain(|d| doomed.contains(d));
        let todo: Vec<Doomed> = doomed.into_iter().filter(|d| !done.contains(d)).collect();
        let mut failed = false;
        let results: Vec<(Doomed, Result<bool, kube::Error>)> = futures::stream::iter(todo)
            .map(|d| {
                let client = client.clone();
                async move {
                    let r = delete(&client, &d).await;
                    (d, r)
                }
            })
            .buffer_unordered(PARALLEL)
            .collect()
            .await;
        for (d, result) in results {
            let kind = if d.job { "Job" } else { "RoleBinding" };
            match result {
                Ok(deleted) => {
                    if deleted {
                        info!(kind, name = %d.name, namespace = %d.namespace, "standby removed an expired grant");
                    }
                    done.insert(d);
                }
                Err(e) => {
                    warn!(kind, name = %d.name, namespace = %d.namespace, error = %e, "standby could not remove an expired grant; retrying");
                    failed = true;
                }
            }
        }
        // Sleep until the next deadline (a hair past it), a change, or the
        // periodic look; after an error, retry soon.
        let mut wait = next
            .and_then(|n| (n - clock()).to_std().ok())
            .map_or(AT_LEAST_EVERY, |w| {
                (w + StdDuration::from_millis(5)).min(AT_LEAST_EVERY)
            });
        if failed {
            wait = wait.min(StdDuration::from_millis(250));
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            change = changes.recv() => {
                if change.is_none() {
                    // A controller connected: this replica leads now.
                    return;
                }
                tokio::time::sleep(SETTLE.min(wait)).await;
                while changes.try_recv().is_ok() {}
            }
        }
    }
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
        let mut meta = super::super::owned::metadata(
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
            job: Some(JobRecord {
                name: "dana-view-job".into(),
                uid: uid.map(Into::into),
                deadline: Some(at(deadline)),
                ..Default::default()
            }),
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
