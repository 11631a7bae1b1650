//! The controller shell: read, call the decision core, act, record.
//!
//! `reconcile` is the whole contract: load what the core needs, evaluate, apply
//! the actions (server-side apply of the binding, deletes), write the request's
//! status only when it changed, write each review's verdict, publish an Event on
//! a phase change, and requeue at the core's next deadline.

pub mod grant;
pub mod job;
pub mod metrics;
pub mod owned;
pub mod run;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration as StdDuration,
};

use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Namespace;
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    runtime::{
        controller::Action as Requeue,
        events::{Event, EventType, Recorder, Reporter},
    },
    Client, Resource, ResourceExt,
};
use serde_json::json;
use thiserror::Error;
use tracing::{debug, info, warn};

use crate::{
    api::{AccessPolicy, AccessReview, AccessReviewStatus, ApprovalRequest, ConditionStatus, Phase},
    decide::{
        self,
        reason::{ApprovalKind, Failure},
        Action, Evaluation, Input,
    },
};

/// Finalizer that makes deleting a request revoke its grant first.
pub const FINALIZER: &str = "gatehouse.dev/revoke-grant";

/// What can fail in a reconcile. Every variant ends in a retry with backoff.
#[derive(Debug, Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("Kubernetes API: {0}")]
    Kube(#[source] kube::Error),
    /// Applying or deleting a binding failed (e.g. the operator may not bind that role).
    #[error("binding {name}: {source}")]
    Binding {
        /// Name of the binding.
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// Creating, reading or deleting a OneTime request's Job or ServiceAccount failed.
    #[error("job {name}: {source}")]
    Job {
        /// Name of the Job (and of its ServiceAccount).
        name: String,
        /// The API error.
        #[source]
        source: kube::Error,
    },
    /// A Job with the request's deterministic name exists but was not made for it.
    #[error(
        "a Job named {name} exists that was not created for this request; it is neither adopted nor replaced"
    )]
    JobConflict {
        /// Name of the Job.
        name: String,
    },
    /// The request has no namespace or name (never from a real API server).
    #[error("object is missing {0}")]
    MissingField(&'static str),
}

impl Error {
    /// Metric label of the variant.
    pub fn label(&self) -> &'static str {
        match self {
            Error::Kube(_) => "kube",
            Error::Binding { .. } => "binding",
            Error::Job { .. } => "job",
            Error::JobConflict { .. } => "job_conflict",
            Error::MissingField(_) => "missing_field",
        }
    }
}

/// Everything a reconcile needs; no globals.
pub struct Context {
    /// Client of the API server.
    pub client: Client,
    /// Publishes Events on requests.
    pub recorder: Recorder,
    /// Prometheus metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// The clock: `Utc::now` in production, a controllable one in tests.
    pub clock: Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>,
    /// Consecutive failed reconciles per request (`namespace/name`), for backoff.
    pub failures: Mutex<HashMap<String, u32>>,
}

impl Context {
    /// A context on the real clock.
    pub fn new(client: Client, metrics: Arc<metrics::Metrics>) -> Self {
        let reporter = Reporter {
            controller: "gatehouse".into(),
            instance: std::env::var("POD_NAME").ok(),
        };
        Context {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            metrics,
            clock: Arc::new(Utc::now),
            failures: Mutex::default(),
        }
    }
}

/// Reconciles one ApprovalRequest.
pub async fn reconcile(req: Arc<ApprovalRequest>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    let started = std::time::Instant::now();
    let result = reconcile_inner(&req, &ctx).await;
    if result.is_ok() {
        if let Ok(mut failures) = ctx.failures.lock() {
            failures.remove(&object_key(&req));
        }
    }
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    result
}

async fn reconcile_inner(req: &ApprovalRequest, ctx: &Context) -> Result<Requeue, Error> {
    let ns = req.namespace().ok_or(Error::MissingField("metadata.namespace"))?;
    let name = req.name_any();
    let requests: Api<ApprovalRequest> = Api::namespaced(ctx.client.clone(), &ns);

    if req.meta().deletion_timestamp.is_some() {
        return finalize(req, ctx, &requests).await;
    }
    let with_finalizer;
    let req = if req.finalizers().iter().any(|f| f == FINALIZER) {
        req
    } else {
        with_finalizer = add_finalizer(req, &requests).await?;
        &with_finalizer
    };

    let now = (ctx.clock)();
    let loaded = match load(req, ctx, &ns, now).await {
        Ok(l) => l,
        Err(e @ Error::JobConflict { .. }) => {
            record_failure(req, ctx, &requests, &e, Failure::JobFailed, "run the job").await;
            return Err(e);
        }
        Err(e) => return Err(e),
    };
    let requester_requests: Vec<&ApprovalRequest> = loaded.requester_requests.iter().collect();
    let input = Input {
        request: req,
        policies: &loaded.policies,
        reviews: &loaded.reviews,
        namespace_labels: loaded.namespace_labels.as_ref(),
        requester_requests: &requester_requests,
        extended: loaded.extended.as_ref(),
        job: loaded.job.as_ref(),
        now,
    };
    let mut ev = decide::evaluate(&input);

    let mut created_job = None;
    for action in &ev.actions {
        match action {
            Action::EnsureBinding(b) => {
                if let Err(e) = grant::ensure_binding(&ctx.client, req, b).await {
                    record_failure(
                        req,
                        ctx,
                        &requests,
                        &e,
                        Failure::BindingFailed,
                        "create the binding",
                    )
                    .await;
                    return Err(e);
                }
            }
            Action::EnsureServiceAccount(sa) => {
                if let Err(e) = job::ensure_service_account(&ctx.client, req, sa).await {
                    record_failure(
                        req,
                        ctx,
                        &requests,
                        &e,
                        Failure::JobFailed,
                        "create the job's ServiceAccount",
                    )
                    .await;
                    return Err(e);
                }
            }
            Action::CreateJob(plan) => match job::create_job(&ctx.client, req, plan, now).await {
                Ok(created) => {
                    info!(request = %name, namespace = %ns, job = %plan.target.name, "job created");
                    created_job = decide::job::observe(&created, now);
                }
                Err(e) => {
                    record_failure(req, ctx, &requests, &e, Failure::JobFailed, "create the job").await;
                    return Err(e);
                }
            },
            Action::DeleteJob(target) => {
                if job::delete_job(&ctx.client, req, target).await? {
                    info!(request = %name, namespace = %ns, job = %target.name, "job stopped and deleted");
                }
            }
            Action::DeleteServiceAccount(target) => {
                job::delete_service_account(&ctx.client, target).await?;
            }
            Action::RemoveBinding(target) => {
                if grant::remove_binding(&ctx.client, target).await? {
                    let lag = ev
                        .status
                        .grant
                        .as_ref()
                        .and_then(|g| g.expires_at)
                        .map(|e| (now - e).num_milliseconds());
                    if let (Some(lag), Some(Phase::Expired)) = (lag, Some(ev.status.phase)) {
                        ctx.metrics.expiry_lag.observe(lag.max(0) as f64 / 1000.0);
                    }
                    info!(request = %name, namespace = %ns, binding = %target.name, "binding removed");
                }
            }
            Action::DeleteRecord => {
                delete_record(req, ctx, &requests, &loaded.reviews).await?;
                return Ok(Requeue::await_change());
            }
        }
    }

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

/// Requeue exactly at the next deadline (plus a hair, so the core sees it passed).
fn requeue_at(deadline: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Requeue {
    match deadline {
        Some(d) => {
            let wait = (d - now).to_std().unwrap_or_default() + StdDuration::from_millis(50);
            Requeue::requeue(wait)
        }
        None => Requeue::await_change(),
    }
}

/// What the core needs besides the request.
struct Loaded {
    policies: Vec<AccessPolicy>,
    reviews: Vec<AccessReview>,
    namespace_labels: Option<BTreeMap<String, String>>,
    requester_requests: Vec<ApprovalRequest>,
    extended: Option<ApprovalRequest>,
    job: Option<decide::JobObservation>,
}

async fn load(req: &ApprovalRequest, ctx: &Context, ns: &str, now: DateTime<Utc>) -> Result<Loaded, Error> {
    let name = req.name_any();
    let status = req.status.clone().unwrap_or_default();
    let terminal = req.status.is_some() && status.phase.is_terminal();
    let reviews_api: Api<AccessReview> = Api::namespaced(ctx.client.clone(), ns);
    let reviews: Vec<AccessReview> = reviews_api
        .list(&ListParams::default())
        .await
        .map_err(Error::Kube)?
        .items
        .into_iter()
        .filter(|r| r.spec.request.as_ref().is_some_and(|q| q.name == name))
        .collect();
    if terminal {
        // The core only records late reviews and watches the retention clock.
        return Ok(Loaded {
            policies: Vec::new(),
            reviews,
            namespace_labels: None,
            requester_requests: Vec::new(),
            extended: None,
            job: None,
        });
    }
    let first_evaluation = status.requirements.is_none();
    // Policies matter only until the snapshot is taken; after that the core
    // works from status.requirements, so the list call is saved.
    let policies = if first_evaluation {
        Api::<AccessPolicy>::all(ctx.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(Error::Kube)?
            .items
    } else {
        Vec::new()
    };
    let namespace_labels =
        if first_evaluation && policies.iter().any(|p| p.spec.namespaces.selector.is_some()) {
            Api::<Namespace>::all(ctx.client.clone())
                .get_opt(ns)
                .await
                .map_err(Error::Kube)?
                .map(|n| n.labels().clone())
        } else {
            None
        };
    let requests: Api<ApprovalRequest> = Api::namespaced(ctx.client.clone(), ns);
    let extended = match (&req.spec.extends, first_evaluation) {
        (Some(e), true) => requests.get_opt(e).await.map_err(Error::Kube)?,
        _ => None,
    };
    // The requester's other requests: for maxActivePerRequester before approval,
    // and for a newer request that supersedes this one after.
    let max_active = status
        .requirements
        .as_ref()
        .and_then(|r| r.max_active_per_requester)
        .is_some()
        || (first_evaluation && policies.iter().any(|p| p.spec.max_active_per_requester.is_some()));
    let requester_requests = if status.approved_at.is_some() || max_active {
        Api::<ApprovalRequest>::all(ctx.client.clone())
            .list(&ListParams::default())
            .await
            .map_err(Error::Kube)?
            .items
            .into_iter()
            .filter(|o| o.uid() != req.uid() && o.spec.requester.username == req.spec.requester.username)
            .collect()
    } else {
        Vec::new()
    };
    let job = if req.spec.type_ == crate::api::RequestType::OneTime {
        let target = decide::job::job_ref(req);
        let recorded = status.job.as_ref().is_some_and(|j| j.uid.is_some());
        match job::read_job(&ctx.client, req, &target).await {
            Ok(found) => found.and_then(|j| decide::job::observe(&j, now)),
            // Our Job was created and is gone; another one took its name: the core
            // ends the request (JobDeleted) instead of waiting on a Job it cannot use.
            Err(Error::JobConflict { .. }) if recorded => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    Ok(Loaded {
        policies,
        reviews,
        namespace_labels,
        requester_requests,
        extended,
        job,
    })
}

/// Adds the finalizer; returns the updated request. The resourceVersion in the
/// patch makes it fail (and retry) if someone else changed the list meanwhile.
async fn add_finalizer(req: &ApprovalRequest, api: &Api<ApprovalRequest>) -> Result<ApprovalRequest, Error> {
    let mut finalizers = req.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": req.resource_version()}});
    api.patch(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Kube)
}

async fn remove_finalizer(req: &ApprovalRequest, api: &Api<ApprovalRequest>) -> Result<(), Error> {
    let finalizers: Vec<String> = req
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": req.resource_version()}});
    match api
        .patch(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(e) if !owned::is_status(&e, 404) => Err(Error::Kube(e)),
        _ => Ok(()),
    }
}

/// Deletion of a request: revoke its grant, then let the deletion finish.
async fn finalize(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
) -> Result<Requeue, Error> {
    if !req.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    let target = decide::binding_ref(req);
    if req.spec.type_ == crate::api::RequestType::OneTime {
        let target = decide::job::job_ref(req);
        job::delete_job(&ctx.client, req, &target).await?;
        job::delete_service_account(&ctx.client, &target).await?;
    }
    if grant::remove_binding(&ctx.client, &target).await? {
        publish(
            ctx,
            req,
            EventType::Normal,
            "GrantRevoked",
            "Delete",
            format!("request deleted: binding {} removed", target.name),
        )
        .await;
    }
    remove_finalizer(req, api).await?;
    Ok(Requeue::await_change())
}

/// Retention passed: delete the reviews of the request, then the request.
async fn delete_record(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    reviews: &[AccessReview],
) -> Result<(), Error> {
    let ns = req.namespace().unwrap_or_default();
    let reviews_api: Api<AccessReview> = Api::namespaced(ctx.client.clone(), &ns);
    for r in reviews
        .iter()
        .filter(|r| r.spec.request.as_ref().map(|q| q.uid.as_str()) == req.uid().as_deref())
    {
        owned::delete_if_present(&reviews_api, &r.name_any(), &DeleteParams::default())
            .await
            .map_err(Error::Kube)?;
    }
    info!(request = %req.name_any(), namespace = %ns, "retention passed: deleting the request and its reviews");
    owned::delete_if_present(api, &req.name_any(), &DeleteParams::default())
        .await
        .map(drop)
        .map_err(Error::Kube)
}

/// Writes each review's verdict to its status, only when it changed.
async fn record_reviews(
    ctx: &Context,
    ns: &str,
    reviews: &[AccessReview],
    ev: &Evaluation,
    now: DateTime<Utc>,
) -> Result<(), Error> {
    let api: Api<AccessReview> = Api::namespaced(ctx.client.clone(), ns);
    for v in &ev.verdicts {
        let Some(review) = reviews.iter().find(|r| r.name_any() == v.review) else {
            continue;
        };
        let current = review.status.clone().unwrap_or_default();
        if current.accepted == Some(v.accepted)
            && current.reason.as_deref() == Some(v.reason.as_str())
            && current.message.as_deref() == Some(v.message.as_str())
        {
            continue;
        }
        let status = AccessReviewStatus {
            accepted: Some(v.accepted),
            reason: Some(v.reason.as_str().to_string()),
            message: Some(v.message.clone()),
            observed_at: Some(now),
        };
        let patch = json!({"status": status});
        match api
            .patch_status(&v.review, &PatchParams::default(), &Patch::Merge(&patch))
            .await
        {
            Err(e) if !owned::is_status(&e, 404) => return Err(Error::Kube(e)),
            _ => {}
        }
    }
    Ok(())
}

/// Writes the request's status when it changed, and announces a phase change.
async fn record_status(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    ev: &Evaluation,
) -> Result<(), Error> {
    if req.status.as_ref() == Some(&ev.status) {
        debug!(request = %req.name_any(), "status unchanged");
        return Ok(());
    }
    // Replace, not merge: fields that disappear (eligibleReviewers after approval)
    // must disappear; the resourceVersion makes a stale write fail and retry.
    let mut updated = req.clone();
    updated.status = Some(ev.status.clone());
    api.replace_status(&req.name_any(), &PostParams::default(), &updated)
        .await
        .map_err(Error::Kube)?;
    let before = req.status.as_ref().map(|s| s.phase);
    if before != Some(ev.status.phase) {
        announce(req, ctx, before, ev).await;
    }
    Ok(())
}

async fn announce(req: &ApprovalRequest, ctx: &Context, before: Option<Phase>, ev: &Evaluation) {
    let s = &ev.status;
    let phase = s.phase;
    ctx.metrics
        .transitions
        .get_or_create(&metrics::PhaseLabel {
            phase: phase.as_str().to_string(),
        })
        .inc();
    let message = |t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| c.message.clone())
            .unwrap_or_default()
    };
    let forced = ev.approval == Some(ApprovalKind::ForceApproved);
    if phase == Phase::Active && before.is_none_or(|b| b == Phase::Pending) {
        if let (Some(approved), Some(granted)) = (s.approved_at, s.grant.as_ref().and_then(|g| g.granted_at))
        {
            let latency = (((ctx.clock)()) - approved.max(granted))
                .num_milliseconds()
                .max(0);
            ctx.metrics.approval_to_grant.observe(latency as f64 / 1000.0);
        }
    }
    let (type_, reason, note) = match phase {
        Phase::Active if forced && before.is_none_or(|b| b == Phase::Pending) => (
            EventType::Warning,
            ApprovalKind::ForceApproved.as_str(),
            message(decide::APPROVED),
        ),
        Phase::Denied | Phase::Rejected | Phase::Failed | Phase::TimedOut => {
            let approved_false = s
                .conditions
                .iter()
                .any(|c| c.type_ == decide::APPROVED && c.status == ConditionStatus::False);
            let note = if approved_false {
                message(decide::APPROVED)
            } else {
                message(decide::COMPLETE)
            };
            (EventType::Warning, phase.as_str(), note)
        }
        Phase::Approved if forced => (
            EventType::Warning,
            ApprovalKind::ForceApproved.as_str(),
            message(decide::APPROVED),
        ),
        Phase::Active | Phase::Approved | Phase::Processing => {
            (EventType::Normal, phase.as_str(), message(decide::GRANTED))
        }
        _ => (EventType::Normal, phase.as_str(), message(decide::COMPLETE)),
    };
    info!(request = %req.name_any(), namespace = ?req.namespace(), from = ?before, to = %phase, "phase changed");
    publish(ctx, req, type_, reason, "Evaluate", note).await;
}

async fn publish(
    ctx: &Context,
    req: &ApprovalRequest,
    type_: EventType,
    reason: &str,
    action: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note.chars().take(1000).collect()),
        action: action.to_string(),
        secondary: None,
    };
    // Events are informational: failing to publish one must not fail the reconcile.
    if let Err(e) = ctx.recorder.publish(&event, &req.object_ref(&())).await {
        warn!(request = %req.name_any(), error = %e, "could not publish event");
    }
}

/// A binding, ServiceAccount or Job could not be created: say so in the status,
/// where users look.
async fn record_failure(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    err: &Error,
    failure: Failure,
    what: &str,
) {
    let reason = failure.as_str();
    let now = (ctx.clock)();
    let mut status = req.status.clone().unwrap_or_default();
    let message = format!("could not {what}: {err}; retrying");
    let existing = status.conditions.iter_mut().find(|c| c.type_ == decide::GRANTED);
    match existing {
        Some(c) if c.reason == reason && c.message == message => return,
        Some(c) => {
            if c.status != ConditionStatus::False {
                c.last_transition_time = now;
            }
            c.status = ConditionStatus::False;
            c.reason = reason.into();
            c.message = message.clone();
        }
        None => status.conditions.push(crate::api::Condition {
            type_: decide::GRANTED.into(),
            status: ConditionStatus::False,
            reason: reason.into(),
            message: message.clone(),
            observed_generation: req.metadata.generation,
            last_transition_time: now,
        }),
    }
    let patch = json!({"status": {"conditions": status.conditions}});
    if let Err(e) = api
        .patch_status(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        warn!(request = %req.name_any(), error = %e, "could not record the binding failure");
    }
    publish(ctx, req, EventType::Warning, reason, "Grant", message).await;
}

/// After an error: retry with backoff, never crash.
pub fn error_policy(req: Arc<ApprovalRequest>, err: &Error, ctx: Arc<Context>) -> Requeue {
    ctx.metrics
        .reconcile_errors
        .get_or_create(&metrics::ErrorLabel {
            error: err.label().to_string(),
        })
        .inc();
    warn!(request = %req.name_any(), namespace = ?req.namespace(), error = %err, "reconcile failed; retrying");
    // Conflicts resolve on the next read; other errors back off exponentially
    // per request (1 s, 2 s, 4 s, ... up to 5 min), so a role the operator may
    // not bind does not hammer the API server.
    let conflict = matches!(err, Error::Kube(kube::Error::Api(s)) if s.code == 409);
    if conflict {
        return Requeue::requeue(StdDuration::from_millis(200));
    }
    let attempt = match ctx.failures.lock() {
        Ok(mut failures) => {
            let n = failures.entry(object_key(&req)).or_insert(0);
            *n = n.saturating_add(1);
            *n
        }
        Err(_) => 1,
    };
    Requeue::requeue(backoff(attempt))
}

/// Delay before retry number `attempt` (from 1): doubling from 1 s, capped at 5 min.
pub fn backoff(attempt: u32) -> StdDuration {
    let secs = 1u64.checked_shl(attempt.saturating_sub(1)).unwrap_or(u64::MAX);
    StdDuration::from_secs(secs.min(300))
}

fn object_key(req: &ApprovalRequest) -> String {
    format!("{}/{}", req.namespace().unwrap_or_default(), req.name_any())
}
