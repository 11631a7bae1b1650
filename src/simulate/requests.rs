//! The request part of `gatehouse simulate`: every ApprovalRequest through the
//! decision core, as the operator would see it at `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde::Serialize;

use super::Manifests;
use crate::{
    api::{AccessPolicy, AccessReview, ApprovalRequest, ApprovalRequestStatus, Phase, RequestType},
    decide::{
        self,
        job::observe,
        naming::request_key,
        timestamp::{created_at, rfc3339_or_dash},
        Evaluation, Input, JobObservation, JobProgress,
    },
    labels::REQUEST_UID,
    table::Table,
};

/// One request's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct RequestResult {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// Exactly the status the operator would write.
    pub status: ApprovalRequestStatus,
    /// When the status can next change.
    #[serde(skip)]
    pub next_change: Option<DateTime<Utc>>,
}

/// The Job of a OneTime request as the operator would see it at `now`: found by
/// its deterministic name, its request-uid label or its owner reference; a
/// finish recorded after `now` has not happened yet.
fn job_at(jobs: &[Job], r: &ApprovalRequest, now: DateTime<Utc>) -> Option<JobObservation> {
    if r.spec.type_ != RequestType::OneTime {
        return None;
    }
    let target = decide::job::job_ref(r);
    let uid = r.uid();
    let job = jobs.iter().find(|j| {
        j.namespace().as_deref() == Some(target.namespace.as_str())
            && created_at(*j).is_some_and(|c| c <= now)
            && (j.name_any() == target.name
                || (uid.is_some() && j.labels().get(REQUEST_UID) == uid.as_ref())
                || j.owner_references().iter().any(|o| Some(&o.uid) == uid.as_ref()))
    })?;
    let mut seen = observe(job, now)?;
    // The operator knows the Job by its deterministic name.
    seen.name = target.name;
    if seen.progress.finished_at().is_some_and(|at| at > now) {
        seen.progress = JobProgress::Running;
    }
    Some(seen)
}

/// Evaluates every request that exists at `now`.
///
/// Two passes: first each request on its own, to learn when each was approved,
/// granted and ended; then each again with the others as the operator would see
/// them (their statuses from the first pass), for the rules that look at the
/// requester's other requests (`maxActivePerRequester`, supersession).
pub fn run(m: &Manifests, now: DateTime<Utc>) -> Vec<RequestResult> {
    let existing = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t <= now);
    let policies: Vec<AccessPolicy> = m
        .policies
        .iter()
        .filter(|p| existing(created_at(*p)))
        .cloned()
        .collect();
    let reviews: Vec<AccessReview> = m
        .reviews
        .iter()
        .filter(|r| existing(created_at(*r)))
        .cloned()
        .collect();
    let mut requests: Vec<&ApprovalRequest> =
        m.requests.iter().filter(|r| existing(created_at(*r))).collect();
    requests.sort_by_key(|r| (r.namespace(), r.name_any()));

    // As an operator in its default namespace would: nothing granted there or in kube-system.
    let protected =
        decide::protected::protected_namespaces(decide::protected::DEFAULT_OPERATOR_NAMESPACE, &[]);
    // `seen`: the requests evaluated so far, with their status; `related`: whether
    // this pass shows the requester's other requests to the core.
    let eval = |r: &ApprovalRequest, seen: &BTreeMap<String, ApprovalRequest>, related: bool| {
        let ns = r.namespace().unwrap_or_default();
        let mine: Vec<AccessReview> = reviews
            .iter()
            .filter(|v| {
                v.namespace().as_deref() == Some(ns.as_str())
                    && v.spec.request.as_ref().is_some_and(|q| q.name == r.name_any())
            })
            .cloned()
            .collect();
        let others: Vec<&ApprovalRequest> = seen
            .values()
            .filter(|o| {
                related && o.uid() != r.uid() && o.spec.requester.username == r.spec.requester.username
            })
            .collect();
        // The extended request as the operator would see it: with its status.
        let extended = r
            .spec
            .extends
            .as_ref()
            .and_then(|e| seen.get(&format!("{ns}/{e}")));
        let job = job_at(&m.jobs, r, now);
        decide::evaluate(&Input {
            request: r,
            policies: &policies,
            reviews: &mine,
            namespace_labels: m.namespaces.get(&ns),
            requester_requests: &others,
            extended,
            job: job.as_ref(),
            protected_namespaces: &protected,
            now,
        })
    };

    let as_stored = |r: &ApprovalRequest, ev: &Evaluation| {
        let mut stored = r.clone();
        stored.status = Some(ev.status.clone());
        (request_key(r), stored)
    };
    let mut seen: BTreeMap<String, ApprovalRequest> = BTreeMap::new();
    for r in &requests {
        let ev = eval(r, &seen, false);
        let (key, stored) = as_stored(r, &ev);
        seen.insert(key, stored);
    }
    requests
        .iter()
        .map(|r| {
            let ev = eval(r, &seen, true);
            RequestResult {
                namespace: r.namespace().unwrap_or_default(),
                name: r.name_any(),
                status: ev.status,
                next_change: ev.next_deadline,
            }
        })
        .collect()
}

/// The requests as a table with one line per request and indented notes.
pub fn render(requests: &[RequestResult]) -> String {
    let ts = rfc3339_or_dash;
    let mut table = Table::new(&[
        "REQUEST",
        "PHASE",
        "APPROVALS",
        "GRANT",
        "GRANTED",
        "EXPIRES",
        "NEXT CHANGE",
    ])
    .gap(2);
    for r in requests {
        let s = &r.status;
        let grant = s.grant.as_ref();
        table.row(vec![
            format!("{}/{}", r.namespace, r.name),
            s.phase.to_string(),
            s.approvals
                .as_ref()
                .map(|a| a.summary.clone())
                .unwrap_or_else(|| "-".into()),
            grant
                .map(|g| format!("{}/{}", g.kind, g.name))
                .unwrap_or_else(|| "-".into()),
            ts(grant.and_then(|g| g.granted_at)),
            ts(s.expires_at),
            if s.phase.is_terminal() {
                "-".into()
            } else {
                ts(r.next_change)
            },
        ]);
        for note in notes(r) {
            table.note(note);
        }
    }
    table.render()
}

/// The lines under a request: why it waits, what its job does, how it ended,
/// how long it is kept, and the reviews that did not count.
fn notes(r: &RequestResult) -> Vec<String> {
    let s = &r.status;
    let mut n = Vec::new();
    let why = |t: &str| {
        s.conditions
            .iter()
            .find(|c| c.type_ == t)
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    match s.phase {
        Phase::Pending => {
            if let Some((_, msg)) = why(decide::APPROVED) {
                n.push(format!("waiting: {msg}"));
            }
        }
        Phase::Approved => {
            if let Some((_, msg)) = why(decide::GRANTED) {
                n.push(format!("not active: {msg}"));
            }
        }
        Phase::Processing => {
            if let Some(job) = &s.job {
                let verb = match job.state {
                    crate::api::JobState::Starting => "creates",
                    _ => "runs",
                };
                n.push(format!(
                    "job: the operator {verb} Job {} as ServiceAccount {}, stopped at {} at the latest; logs: {}",
                    job.name,
                    job.service_account,
                    rfc3339_or_dash(job.deadline),
                    job.logs
                ));
            }
        }
        Phase::Denied => {
            if let Some((reason, msg)) = why(decide::APPROVED) {
                n.push(format!("denied: {reason}: {msg}"));
            }
        }
        Phase::Failed => {
            if let Some((reason, msg)) = why(decide::COMPLETE) {
                n.push(format!("failed: {reason}: {msg}"));
            }
        }
        p if p.is_terminal() => {
            if let Some((_, msg)) = why(decide::COMPLETE) {
                n.push(format!("{}: {msg}", p.as_str().to_lowercase()));
            }
        }
        _ => {}
    }
    if s.phase.is_terminal() {
        if let Some(until) = r.next_change {
            n.push(format!(
                "kept as the audit record until {}",
                rfc3339_or_dash(Some(until))
            ));
        }
    }
    for d in s.decisions.iter().filter(|d| !d.accepted) {
        n.push(format!(
            "ignored {} ({} by {}): {}: {}",
            d.review, d.decision, d.reviewer, d.reason, d.message
        ));
    }
    n
}
