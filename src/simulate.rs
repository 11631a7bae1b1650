//! `gatehouse simulate`: the decision core on manifests from files, no cluster.
//!
//! Every object's `metadata.creationTimestamp` is the moment it happened; objects
//! created after `now` do not exist yet. The output is what the operator would
//! write to each request's status at `now`.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use k8s_openapi::api::batch::v1::Job;
use kube::ResourceExt;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

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

/// Why manifests could not be simulated.
#[derive(Debug, Error)]
pub enum SimulateError {
    /// A file or directory could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is not valid YAML.
    #[error("{path}: not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        message: String,
    },
    /// A document is not a valid object of its kind.
    #[error("{location}: {field}: {message}")]
    Invalid {
        /// File, document index (from 0), kind and name: `a.yaml: document 2 (ApprovalRequest ns/x)`.
        location: String,
        /// Path of the offending field.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// No input files were found.
    #[error("no YAML files found in {0}")]
    NoInput(String),
}

/// The objects read from the manifests.
#[derive(Debug, Default)]
pub struct Manifests {
    /// AccessPolicies.
    pub policies: Vec<AccessPolicy>,
    /// ApprovalRequests.
    pub requests: Vec<ApprovalRequest>,
    /// AccessReviews.
    pub reviews: Vec<AccessReview>,
    /// Labels of Namespace objects, by name.
    pub namespaces: BTreeMap<String, BTreeMap<String, String>>,
    /// Jobs (`batch/v1`): what became of OneTime requests' jobs.
    pub jobs: Vec<Job>,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
}

/// Expands directories into their `.yaml`/`.yml` files, sorted.
fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, SimulateError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|source| SimulateError::Read {
                path: path.clone(),
                source,
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    if files.is_empty() {
        let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        return Err(SimulateError::NoInput(names.join(", ")));
    }
    Ok(files)
}

fn location(path: &Path, index: usize, kind: &str, name: &str) -> String {
    format!("{}: document {index} ({kind} {name})", path.display())
}

fn typed<T: serde::de::DeserializeOwned>(path: &Path, index: usize, doc: Value) -> Result<T, SimulateError> {
    let kind = doc
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_string();
    let meta = doc.get("metadata");
    let name = match (
        meta.and_then(|m| m.get("namespace")).and_then(Value::as_str),
        meta.and_then(|m| m.get("name")).and_then(Value::as_str),
    ) {
        (Some(ns), Some(n)) => format!("{ns}/{n}"),
        (None, Some(n)) => n.to_string(),
        _ => "<unnamed>".to_string(),
    };
    serde_path_to_error::deserialize(doc).map_err(|e| SimulateError::Invalid {
        location: location(path, index, &kind, &name),
        field: e.path().to_string(),
        message: e.inner().to_string(),
    })
}

fn require_meta(
    path: &Path,
    index: usize,
    kind: &str,
    obj: &impl kube::Resource,
    uid: bool,
) -> Result<(), SimulateError> {
    let meta = obj.meta();
    let fail = |field: &str, message: &str| SimulateError::Invalid {
        location: location(path, index, kind, meta.name.as_deref().unwrap_or("<unnamed>")),
        field: field.to_string(),
        message: message.to_string(),
    };
    if meta.name.as_deref().is_none_or(str::is_empty) {
        return Err(fail("metadata.name", "is required"));
    }
    if meta.creation_timestamp.is_none() {
        return Err(fail(
            "metadata.creationTimestamp",
            "is required: simulate uses it as the moment the object was created",
        ));
    }
    if uid && meta.uid.as_deref().is_none_or(str::is_empty) {
        return Err(fail("metadata.uid", "is required: reviews pin the request's uid"));
    }
    Ok(())
}

/// Reads multi-document YAML files (and directories of them).
pub fn load(paths: &[PathBuf]) -> Result<Manifests, SimulateError> {
    let mut out = Manifests::default();
    for path in expand(paths)? {
        let text = std::fs::read_to_string(&path).map_err(|source| SimulateError::Read {
            path: path.clone(),
            source,
        })?;
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).map_err(|e| SimulateError::Yaml {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for (index, doc) in docs.into_iter().enumerate() {
            if doc.is_null() {
                continue;
            }
            let api_version = doc
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let kind = doc
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            match (api_version.split('/').next().unwrap_or_default(), kind.as_str()) {
                ("gatehouse.dev", "AccessPolicy") => {
                    let p: AccessPolicy = typed(&path, index, doc)?;
                    require_meta(&path, index, &kind, &p, false)?;
                    out.policies.push(p);
                }
                ("gatehouse.dev", "ApprovalRequest") => {
                    let mut r: ApprovalRequest = typed(&path, index, doc)?;
                    require_meta(&path, index, &kind, &r, true)?;
                    r.metadata.namespace.get_or_insert_with(|| "default".into());
                    // The operator evaluates what users wrote, not a status they may have pasted.
                    r.status = None;
                    out.requests.push(r);
                }
                ("gatehouse.dev", "AccessReview") => {
                    let mut r: AccessReview = typed(&path, index, doc)?;
                    require_meta(&path, index, &kind, &r, false)?;
                    r.metadata.namespace.get_or_insert_with(|| "default".into());
                    out.reviews.push(r);
                }
                ("batch", "Job") => {
                    let j: Job = typed(&path, index, doc)?;
                    require_meta(&path, index, &kind, &j, false)?;
                    out.jobs.push(j);
                }
                ("v1", "Namespace") => {
                    let name = doc
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_string();
                    let labels: BTreeMap<String, String> = doc
                        .pointer("/metadata/labels")
                        .cloned()
                        .map(|l| serde_json::from_value(l).unwrap_or_default())
                        .unwrap_or_default();
                    out.namespaces.insert(name, labels);
                }
                ("gatehouse.dev", _) => {
                    return Err(SimulateError::Invalid {
                        location: location(&path, index, &kind, "<unnamed>"),
                        field: "kind".into(),
                        message: format!(
                            "{kind:?} is not a Gatehouse kind (AccessPolicy, ApprovalRequest, AccessReview)"
                        ),
                    })
                }
                _ => out.skipped += 1,
            }
        }
    }
    Ok(out)
}

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

/// The JSON document `--output json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One entry per request that exists at `now`.
    pub requests: Vec<RequestResult>,
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
pub fn run(m: &Manifests, now: DateTime<Utc>) -> Report {
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
    let out = requests
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
        .collect();
    Report { requests: out }
}

/// Renders the report as a table with one line per request and indented notes.
pub fn render_table(report: &Report) -> String {
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
    for r in &report.requests {
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
