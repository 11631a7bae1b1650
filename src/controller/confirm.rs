//! No final outcome on the absence of an object from memory alone.
//!
//! Memory is filled by watches, one per kind, and a watch can be a moment
//! behind: a policy applied together with its requests may reach memory after
//! them, a Job may show as gone while its watch reconnects. A terminal phase is
//! written once and kept forever, so before the operator writes one that rests
//! on something memory does not show, it asks the API server once:
//!
//! - `Denied` for `PolicyNotFound` (the named policy), `NoMatchingPolicy` or
//!   `NamespaceNotAllowed`: the policies (the named one, or all of them) and the
//!   request's namespace (its labels, for namespace selectors);
//! - `Denied` for `InvalidExtends` when memory lacks the extended request;
//! - `Failed` for `JobDeleted`: the request's Job.
//!
//! What the read finds is handed to the core, which decides again; if it finds
//! what memory showed, the outcome stands. A failed read is an error: the
//! reconcile is retried and nothing final is written meanwhile. These reads
//! happen only on the way to such an outcome, never in steady state.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    api::{Api, ListParams},
    ResourceExt,
};

use super::{job, Context, Error};
use crate::{
    api::{AccessPolicy, ApprovalRequest},
    decide::{
        self,
        reason::{DenialReason, EndCause, Ending},
        Evaluation, Input, JobObservation,
    },
};

/// What a live read found that memory did not show.
#[derive(Default)]
pub struct Found {
    policies: Option<Vec<AccessPolicy>>,
    namespace_labels: Option<BTreeMap<String, String>>,
    extended: Option<ApprovalRequest>,
    job: Option<JobObservation>,
}

impl Found {
    /// `base` with what the read found in place of what memory showed.
    pub fn input<'a>(&'a self, base: Input<'a>) -> Input<'a> {
        Input {
            policies: self.policies.as_deref().unwrap_or(base.policies),
            namespace_labels: self.namespace_labels.as_ref().or(base.namespace_labels),
            extended: self.extended.as_ref().or(base.extended),
            job: self.job.as_ref().or(base.job),
            ..base
        }
    }
}

/// Confirms the absence a new terminal outcome of `ev` rests on: `None` if the
/// API server agrees with memory (the outcome stands), else what it found.
pub async fn absence(ctx: &Context, ev: &Evaluation, input: &Input<'_>) -> Result<Option<Found>, Error> {
    let req = input.request;
    let already_final = req.status.as_ref().is_some_and(|s| s.phase.is_terminal());
    let Some(ending) = ev.ending.filter(|_| !already_final) else {
        return Ok(None);
    };
    match ending {
        Ending::Denied(
            DenialReason::PolicyNotFound | DenialReason::NoMatchingPolicy | DenialReason::NamespaceNotAllowed,
        ) => policies(ctx, input).await,
        Ending::Denied(DenialReason::InvalidExtends) if input.extended.is_none() => {
            let Some(name) = &req.spec.extends else {
                return Ok(None);
            };
            let ns = req.namespace().unwrap_or_default();
            let api: Api<ApprovalRequest> = Api::namespaced(ctx.client.clone(), &ns);
            let extended = api.get_opt(name).await.map_err(Error::Kube)?;
            Ok(extended.map(|e| Found {
                extended: Some(e),
                ..Default::default()
            }))
        }
        Ending::Ended(EndCause::JobDeleted) => {
            let target = decide::job::job_ref(req);
            let observed = match job::read_job(&ctx.client, req, &target).await {
                Ok(found) => found.and_then(|j| decide::job::observe(&j, input.now)),
                // Another Job took the name: ours is gone indeed.
                Err(Error::JobConflict { .. }) => None,
                Err(e) => return Err(e),
            };
            Ok(observed.map(|j| Found {
                job: Some(j),
                ..Default::default()
            }))
        }
        _ => Ok(None),
    }
}

/// The policies (the named one, or all) and the namespace's labels, read live;
/// `None` if they are what memory showed.
async fn policies(ctx: &Context, input: &Input<'_>) -> Result<Option<Found>, Error> {
    let req = input.request;
    let api: Api<AccessPolicy> = Api::all(ctx.client.clone());
    let live: Vec<AccessPolicy> = match &req.spec.policy {
        Some(name) => {
            let mut known: Vec<AccessPolicy> = input
                .policies
                .iter()
                .filter(|p| p.name_any() != *name)
                .cloned()
                .collect();
            known.extend(api.get_opt(name).await.map_err(Error::Kube)?);
            known
        }
        None => api.list(&ListParams::default()).await.map_err(Error::Kube)?.items,
    };
    let mut found = Found::default();
    let versions = |ps: &[AccessPolicy]| {
        let mut v: Vec<(String, Option<String>)> =
            ps.iter().map(|p| (p.name_any(), p.resource_version())).collect();
        v.sort();
        v
    };
    if versions(&live) != versions(input.policies) {
        found.policies = Some(live);
    }
    let selects = found
        .policies
        .as_deref()
        .unwrap_or(input.policies)
        .iter()
        .any(|p| p.spec.namespaces.selector.is_some());
    if selects {
        let ns = req.namespace().unwrap_or_default();
        let namespaces: Api<Namespace> = Api::all(ctx.client.clone());
        let labels = namespaces
            .get_opt(&ns)
            .await
            .map_err(Error::Kube)?
            .map(|n| n.labels().clone());
        if labels.as_ref() != input.namespace_labels {
            found.namespace_labels = labels;
        }
    }
    let changed = found.policies.is_some() || found.namespace_labels.is_some();
    Ok(changed.then_some(found))
}
