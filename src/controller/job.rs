//! OneTime requests in the cluster: the dedicated ServiceAccount and the Job.
//!
//! The Job is created with a plain create (never apply): with its deterministic
//! name, the API server itself guarantees at most one Job per request, whatever
//! the operator's restarts or lost watches. Once the Job's uid is in the request's
//! status the core never asks for it again.

use std::{collections::BTreeMap, sync::Arc};

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        batch::v1::{Job, JobSpec as K8sJobSpec},
        core::v1::{
            Capabilities, Container, EnvVar as K8sEnvVar, PodSpec, PodTemplateSpec, SeccompProfile,
            SecurityContext, ServiceAccount,
        },
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    api::{Api, DeleteParams, PostParams, Preconditions},
    runtime::reflector::ObjectRef,
    Client, ResourceExt,
};
use tracing::warn;

use super::{owned, Error};
use crate::{
    api::ApprovalRequest,
    decide::{JobPlan, ObjectName},
    labels::{request_labels, REQUEST_UID},
    store::{Cache, Cached},
};

/// Name of the container that runs the request's job.
pub const CONTAINER: &str = "job";

fn metadata(req: &ApprovalRequest, target: &ObjectName) -> ObjectMeta {
    // The request owns both: deleting it (retention) takes them along.
    crate::labels::owned_metadata(req, &target.name, Some(&target.namespace), BTreeMap::new())
}

fn job_error(target: &ObjectName) -> impl FnOnce(kube::Error) -> Error + '_ {
    move |source| Error::Job {
        name: target.name.clone(),
        source,
    }
}

fn key<K: Cached>(target: &ObjectName) -> ObjectRef<K> {
    ObjectRef::new(&target.name).within(&target.namespace)
}

/// Creates or restores the job's ServiceAccount with server-side apply, unless
/// memory shows it in place already.
pub async fn ensure_service_account(
    client: &Client,
    cache: &Cache,
    req: &ApprovalRequest,
    target: &ObjectName,
) -> Result<(), Error> {
    let found = cache.service_accounts.get(&key(target));
    if cache.health.trusted(ServiceAccount::RESOURCE)
        && found.is_some_and(|sa| is_ours(sa.as_ref(), req) && sa.metadata.deletion_timestamp.is_none())
    {
        return Ok(());
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &target.namespace);
    let sa = ServiceAccount {
        metadata: metadata(req, target),
        ..Default::default()
    };
    owned::apply(&api, &target.name, &sa)
        .await
        .map(drop)
        .map_err(job_error(target))
}

/// Deletes the job's ServiceAccount unless memory shows it gone; returns
/// whether it existed.
pub async fn delete_service_account(
    client: &Client,
    cache: &Cache,
    target: &ObjectName,
) -> Result<bool, Error> {
    // Memory holds every ServiceAccount: one of this name the operator does not
    // manage is someone else's, and is left alone like one that is absent.
    let found = cache.service_accounts.get(&key(target));
    if cache.health.trusted(ServiceAccount::RESOURCE)
        && found.is_none_or(|sa| !crate::labels::is_managed(&sa.metadata))
    {
        return Ok(false);
    }
    let api: Api<ServiceAccount> = Api::namespaced(client.clone(), &target.namespace);
    owned::delete_if_present(&api, &target.name, &DeleteParams::default())
        .await
        .map_err(job_error(target))
}

/// The Job exactly as the operator creates it: the reviewed image, command,
/// arguments and environment, run once as the dedicated ServiceAccount.
pub fn build_job(req: &ApprovalRequest, plan: &JobPlan, now: DateTime<Utc>) -> Job {
    // Belt and braces: the kubelet stops the job at its deadline even if the
    // operator is down then. Counted from the job's start, so at most a little late.
    // Rounded up: the Job controller counts from the Job's start, a moment after
    // now, so the operator's own deadline comes first and names the outcome.
    let millis = (plan.deadline - now).num_milliseconds().max(1);
    let seconds = (millis + 999) / 1000;
    let container = Container {
        name: CONTAINER.into(),
        image: Some(plan.spec.image.clone()),
        command: (!plan.spec.command.is_empty()).then(|| plan.spec.command.clone()),
        args: (!plan.spec.args.is_empty()).then(|| plan.spec.args.clone()),
        env: (!plan.spec.env.is_empty()).then(|| {
            plan.spec
                .env
                .iter()
                .map(|e| K8sEnvVar {
                    name: e.name.clone(),
                    value: Some(e.value.clone()),
                    value_from: None,
                })
                .collect()
        }),
        security_context: Some(SecurityContext {
            allow_privilege_escalation: Some(false),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".into()]),
                add: None,
            }),
            seccomp_profile: Some(SeccompProfile {
                type_: "RuntimeDefault".into(),
                localhost_profile: None,
            }),
            ..Default::default()
        }),
        ..Default::default()
    };
    Job {
        metadata: metadata(req, &plan.target),
        spec: Some(K8sJobSpec {
            // Run once: no retry, no second pod.
            backoff_limit: Some(0),
            active_deadline_seconds: Some(seconds),
            // No ttlSecondsAfterFinished: the Job (and its logs) stays until the
            // request's retention deletes the request, and the Job with it.
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(request_labels(req)),
                    ..Default::default()
                }),
                spec: Some(PodSpec {
                    restart_policy: Some("Never".into()),
                    service_account_name: Some(plan.service_account.clone()),
                    automount_service_account_token: Some(true),
                    containers: vec![container],
                    ..Default::default()
                }),
            },
            ..Default::default()
        }),
        status: None,
    }
}

/// Whether an object was made by the operator for this very request.
fn is_ours<K: kube::Resource>(obj: &K, req: &ApprovalRequest) -> bool {
    let uid = req.uid();
    uid.is_some() && obj.labels().get(REQUEST_UID) == uid.as_ref()
}

/// The request's Job as memory holds it (by its deterministic name). A Job of
/// that name that was not made for this request is an error, never adopted.
// The controller's one Error type carries kube errors whole; boxing them for the
// two synchronous functions that return it would only move the cost.
#[allow(clippy::result_large_err)]
pub fn cached_job(
    cache: &Cache,
    req: &ApprovalRequest,
    target: &ObjectName,
) -> Result<Option<Arc<Job>>, Error> {
    match cache.jobs.get(&key(target)) {
        Some(job) if is_ours(job.as_ref(), req) => Ok(Some(job)),
        Some(_) => Err(Error::JobConflict {
            name: target.name.clone(),
        }),
        None => Ok(None),
    }
}

/// Reads the request's Job by its deterministic name. A Job of that name that
/// was not made for this request is an error, never adopted.
pub async fn read_job(
    client: &Client,
    req: &ApprovalRequest,
    target: &ObjectName,
) -> Result<Option<Job>, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), &target.namespace);
    match api.get_opt(&target.name).await.map_err(Error::Kube)? {
        Some(job) if is_ours(&job, req) => Ok(Some(job)),
        Some(_) => Err(Error::JobConflict {
            name: target.name.clone(),
        }),
        None => Ok(None),
    }
}

/// Creates the Job (create, not apply). If it already exists because an earlier
/// attempt got through before a crash, that Job is the one: it is returned.
pub async fn create_job(
    client: &Client,
    req: &ApprovalRequest,
    plan: &JobPlan,
    now: DateTime<Utc>,
) -> Result<Job, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), &plan.target.namespace);
    let job = build_job(req, plan, now);
    match api.create(&PostParams::default(), &job).await {
        Ok(created) => Ok(created),
        Err(e) if owned::is_status(&e, 409) => read_job(client, req, &plan.target)
            .await?
            .ok_or_else(|| job_error(&plan.target)(e)),
        Err(e) => Err(job_error(&plan.target)(e)),
    }
}

/// Stops the Job: deletes it, its pods in the background. Absent is fine; a Job
/// of that name not made for this request is left alone. Memory says which Job
/// it is while its watch is healthy; otherwise the API is asked.
pub async fn delete_job(
    client: &Client,
    cache: &Cache,
    req: &ApprovalRequest,
    target: &ObjectName,
) -> Result<bool, Error> {
    let api: Api<Job> = Api::namespaced(client.clone(), &target.namespace);
    let found = if cache.health.trusted(Job::RESOURCE) {
        cache.jobs.get(&key(target)).map(|j| (*j).clone())
    } else {
        api.get_opt(&target.name).await.map_err(Error::Kube)?
    };
    let Some(job) = found else {
        return Ok(false);
    };
    if !is_ours(&job, req) {
        warn!(job = %target.name, "a Job of this name was not created for the request; not deleting it");
        return Ok(false);
    }
    // The uid precondition: delete exactly the Job that was looked at.
    let dp = DeleteParams {
        preconditions: Some(Preconditions {
            uid: job.uid(),
            resource_version: None,
        }),
        ..DeleteParams::background()
    };
    owned::delete_if_present(&api, &target.name, &dp)
        .await
        .map_err(job_error(target))
}
