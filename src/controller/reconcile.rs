//! One reconcile: load from memory, decide (the pure core), act, record, and
//! requeue at the exact next deadline. No API read in steady state; a write
//! only where the cluster differs from the decision.

use std::{collections::BTreeMap, sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use kube::{api::Api, runtime::controller::Action as Requeue, Resource, ResourceExt};
use tracing::info;

use super::{
    confirm,
    finalize::{self, FINALIZER},
    grant, job,
    record::{record_failure, record_reviews, record_status},
    removal, Context, Error,
};
use crate::{
    api::{AccessPolicy, AccessReview, ApprovalRequest, BindingKind, Phase, RequestType},
    decide::{self, reason::Failure, Action, Evaluation, Input, JobObservation},
    store::Cached,
};

/// How long a reconcile waits at most for the removal lane: for the delete of
/// its own expired binding, or for the removals due before its status write.
const LANE_WAIT: StdDuration = StdDuration::from_secs(2);

/// Reconciles one ApprovalRequest.
pub async fn reconcile(req: Arc<ApprovalRequest>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let key = decide::naming::request_key(&req);
    ctx.bounded(&key, &ctx.metrics.reconcile_duration, reconcile_inner(&req, &ctx))
        .await
}

async fn reconcile_inner(req: &ApprovalRequest, ctx: &Context) -> Result<Requeue, Error> {
    let ns = req.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let requests: Api<ApprovalRequest> = Api::namespaced(ctx.client.clone(), &ns);
    // Memory still shows a version this operator wrote over: deciding now would
    // repeat that write and conflict. The watch event of the write wakes the
    // request within milliseconds; the requeue is the fallback. Only while the
    // watch is healthy: otherwise that event may not come, and a write that
    // conflicts is better than a grant left in place.
    let key = decide::naming::request_key(req);
    let version = req.resource_version().unwrap_or_default();
    if ctx.cache.health.trusted(<ApprovalRequest as Cached>::RESOURCE)
        && ctx.superseded.behind(&key, &version)
    {
        return Ok(Requeue::requeue(StdDuration::from_secs(1)));
    }

    if req.meta().deletion_timestamp.is_some() {
        return finalize::finalize(req, ctx, &requests).await;
    }
    let with_finalizer;
    let req = if req.finalizers().iter().any(|f| f == FINALIZER) {
        req
    } else {
        with_finalizer = finalize::add_finalizer(req, &requests).await?;
        let made = with_finalizer.resource_version().unwrap_or_default();
        ctx.superseded.wrote(&key, version, made);
        &with_finalizer
    };

    let now = (ctx.clock)();
    let loaded = match load(req, ctx, &ns, now) {
        Ok(l) => l,
        Err(e @ Error::JobConflict { .. }) => {
            record_failure(req, ctx, &requests, &e, Failure::JobFailed, "run the job").await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let requester_requests: Vec<&ApprovalRequest> =
        loaded.requester_requests.iter().map(AsRef::as_ref).collect();
    let input = Input {
        request: req,
        policies: &loaded.policies,
        reviews: &loaded.reviews,
        namespace_labels: loaded.namespace_labels.as_ref(),
        requester_requests: &requester_requests,
        extended: loaded.extended.as_deref(),
        job: loaded.job.as_ref(),
        protected_namespaces: &ctx.protected_namespaces,
        now,
    };
    let first = decide::evaluate(&input);
    // A final outcome that rests on something memory does not show is confirmed
    // with one live read first; what the read finds is decided on instead.
    let live = confirm::absence(ctx, &first, &input).await?;
    let input = match &live {
        Some(found) => found.input(input),
        None => input,
    };
    let mut ev = if live.is_some() {
        decide::evaluate(&input)
    } else {
        first
    };
    if let Ok(mut deadlines) = ctx.deadlines.lock() {
        match ev.next_deadline {
            Some(d) => deadlines.insert(key.clone(), d),
            None => deadlines.remove(&key),
        };
    }

    let created_job = match act(req, ctx, &requests, &ev, &loaded, now).await? {
        Acted::Deleted => return Ok(Requeue::await_change()),
        Acted::Done { created_job } => created_job,
    };
    if let Some(observed) = &created_job {
        // Record the new Job's uid in this same status write: from then on the
        // core knows the job started and never asks for it again, even if the
        // Job is deleted before the next reconcile.
        let mut planned = req.clone();
        planned.status = Some(ev.status.clone());
        ev = decide::evaluate(&Input {
            request: &planned,
            job: Some(observed),
            ..input
        });
    }

    super::usage::overlay(ctx, req, &mut ev.status);
    // Removals first: status writes wait while removals are due or under way.
    if req.status.as_ref() != Some(&ev.status) {
        let clock = || (ctx.clock)();
        ctx.cache.removals.removals_first(clock, LANE_WAIT).await;
    }
    record_reviews(ctx, &ns, &loaded.reviews, &ev, now).await?;
    record_status(req, ctx, &requests, &ev).await?;
    let mut requeue = requeue_at(ev.next_deadline, now);
    if ev.status.phase == Phase::Processing {
        // The Job watch wakes the request when the job ends; a lost watch event
        // still gets noticed within a minute.
        requeue = match ev.next_deadline {
            Some(d) if d - now <= chrono::Duration::seconds(60) => requeue,
            _ => Requeue::requeue(StdDuration::from_secs(60)),
        };
    }
    Ok(requeue)
}

enum Acted {
    /// The request was deleted (retention): nothing more to do.
    Deleted,
    /// The actions were applied; a Job was created if one is observed here.
    Done { created_job: Option<JobObservation> },
}

/// Applies the core's actions, in order; writes only what memory shows missing
/// or different.
async fn act(
    req: &ApprovalRequest,
    ctx: &Context,
    requests: &Api<ApprovalRequest>,
    ev: &Evaluation,
    loaded: &Loaded,
    now: DateTime<Utc>,
) -> Result<Acted, Error> {
    let name = req.name_any();
    let ns = req.namespace().unwrap_or_default();
    let mut created_job = None;
    for action in &ev.actions {
        match action {
            Action::EnsureBinding(b) => {
                if let Err(e) = grant::ensure_binding(&ctx.client, &ctx.cache, req, b).await {
                    record_failure(
                        req,
                        ctx,
                        requests,
                        &e,
                        Failure::BindingFailed,
                        "create the binding",
                    )
                    .await;
                    return Err(e);
                }
            }
            Action::EnsureServiceAccount(sa) => {
                if let Err(e) = job::ensure_service_account(&ctx.client, &ctx.cache, req, sa).await {
                    let what = "create the job's ServiceAccount";
                    record_failure(req, ctx, requests, &e, Failure::JobFailed, what).await;
                    return Err(e);
                }
            }
            Action::CreateJob(plan) => match job::create_job(&ctx.client, req, plan, now).await {
                Ok(created) => {
                    info!(request = %name, namespace = %ns, job = %plan.target.name, "job created");
                    created_job = decide::job::observe(&created, now);
                }
                Err(e) => {
                    record_failure(req, ctx, requests, &e, Failure::JobFailed, "create the job").await;
                    return Err(e);
                }
            },
            Action::DeleteJob(target) => {
                if job::delete_job(&ctx.client, &ctx.cache, req, target).await? {
                    info!(request = %name, namespace = %ns, job = %target.name, "job stopped and deleted");
                }
            }
            Action::DeleteServiceAccount(target) => {
                job::delete_service_account(&ctx.client, &ctx.cache, target).await?;
            }
            Action::RemoveBinding(target) => {
                // An expiry is the removal lane's: it deleted the binding at
                // its deadline (or is deleting it); only the status is left.
                if ev.status.phase == Phase::Expired {
                    let key = removal::Key {
                        kind: match target.kind {
                            BindingKind::RoleBinding => removal::Kind::RoleBinding,
                            BindingKind::ClusterRoleBinding => removal::Kind::ClusterRoleBinding,
                        },
                        namespace: target.namespace.clone().unwrap_or_default(),
                        name: target.name.clone(),
                    };
                    let clock = || (ctx.clock)();
                    if ctx.cache.removals.removed_by_lane(&key, clock, LANE_WAIT).await
                        == removal::Handled::Gone
                    {
                        continue;
                    }
                }
                if grant::remove_binding(&ctx.client, &ctx.cache, target).await? {
                    if ev.status.phase == Phase::Expired {
                        if let Some(expired) = ev.status.grant.as_ref().and_then(|g| g.expires_at) {
                            let lag = (now - expired).num_milliseconds().max(0);
                            ctx.metrics.expiry_lag.observe(lag as f64 / 1000.0);
                        }
                    }
                    info!(request = %name, namespace = %ns, binding = %target.name, "binding removed");
                }
            }
            Action::DeleteRecord => {
                finalize::delete_record(req, ctx, requests, &loaded.reviews).await?;
                return Ok(Acted::Deleted);
            }
        }
    }
    Ok(Acted::Done { created_job })
}

/// Requeue exactly at the next deadline (plus a hair, so the core sees it passed).
fn requeue_at(deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Requeue {
    match deadline {
        Some(d) => {
            let wait = (d - now).to_std().unwrap_or_default() + StdDuration::from_millis(10);
            Requeue::requeue(wait)
        }
        None => Requeue::await_change(),
    }
}

/// What the core needs besides the request, from memory.
struct Loaded {
    policies: Vec<AccessPolicy>,
    reviews: Vec<AccessReview>,
    namespace_labels: Option<BTreeMap<String, String>>,
    requester_requests: Vec<Arc<ApprovalRequest>>,
    extended: Option<Arc<ApprovalRequest>>,
    job: Option<JobObservation>,
}

#[allow(clippy::result_large_err)] // see job::cached_job
fn load(req: &ApprovalRequest, ctx: &Context, ns: &str, now: DateTime<Utc>) -> Result<Loaded, Error> {
    let cache = &ctx.cache;
    let status = req.status.clone().unwrap_or_default();
    let reviews: Vec<AccessReview> = cache.reviews_of(req).iter().map(|r| (**r).clone()).collect();
    let mut loaded = Loaded {
        policies: Vec::new(),
        reviews,
        namespace_labels: None,
        requester_requests: Vec::new(),
        extended: None,
        job: None,
    };
    if req.status.is_some() && status.phase.is_terminal() {
        // The core only records late reviews and watches the retention clock.
        return Ok(loaded);
    }
    // Policies matter only until the snapshot is taken; after that the core
    // works from status.requirements.
    let first_evaluation = status.requirements.is_none();
    if first_evaluation {
        loaded.policies = cache.policies();
        if loaded
            .policies
            .iter()
            .any(|p| p.spec.namespaces.selector.is_some())
        {
            loaded.namespace_labels = cache.namespace_labels(ns);
        }
        loaded.extended = req.spec.extends.as_ref().and_then(|e| cache.request(ns, e));
    }
    // The requester's other requests: for maxActivePerRequester before approval,
    // and for a newer request that supersedes this one after.
    let max_active = status
        .requirements
        .as_ref()
        .and_then(|r| r.max_active_per_requester)
        .is_some()
        || loaded
            .policies
            .iter()
            .any(|p| p.spec.max_active_per_requester.is_some());
    // The newer requests that extend this one (by key, cheap), and, only while a
    // maxActivePerRequester policy may still refuse the approval, every other
    // request of the requester (a requester with thousands of requests, a bot,
    // pays this only until approval).
    loaded.requester_requests = cache.extenders_of(req);
    if status.approved_at.is_none() && max_active {
        loaded.requester_requests = cache.requests_of_requester(req);
    }
    if req.spec.type_ == RequestType::OneTime {
        let target = decide::job::job_ref(req);
        let recorded = status.job.as_ref().is_some_and(|j| j.uid.is_some());
        loaded.job = match job::cached_job(cache, req, &target) {
            Ok(found) => found.and_then(|j| decide::job::observe(&j, now)),
            // Our Job was created and is gone; another one took its name: the core
            // ends the request (JobDeleted) instead of waiting on a Job it cannot use.
            Err(Error::JobConflict { .. }) if recorded => None,
            Err(e) => return Err(e),
        };
    }
    Ok(loaded)
}

/// After an error: retry (see [`super::shell::Failures::retry_after`]), never crash.
pub fn error_policy(req: Arc<ApprovalRequest>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.retry_after("ApprovalRequest", &decide::naming::request_key(&req), err)
}
