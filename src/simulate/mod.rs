//! `gatehouse simulate`: the decision cores on manifests from files, no cluster.
//!
//! Every object's `metadata.creationTimestamp` is the moment it happened; objects
//! created after `now` do not exist yet. The output is what the operator would
//! write at `now`: each request's status ([`requests`]) and, for access
//! certification, each campaign run's items ([`certify`]). Input may be
//! `kubectl get ... -o yaml` output: a `kind: List` is read item by item.

pub mod certify;
pub mod requests;

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use chrono::{DateTime, Utc};
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

pub use self::{certify::RunResult, requests::RequestResult};
use crate::api::{AccessCampaign, AccessPolicy, AccessReview, ApprovalRequest};

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
    /// AccessCampaigns.
    pub campaigns: Vec<AccessCampaign>,
    /// The cluster's standing access and what it refers to, for certification.
    pub cluster: ClusterObjects,
    /// Usage evidence from audit events (`--audit`), for certification.
    pub usage: Option<std::sync::Arc<crate::certify::usage::UsageIndex>>,
    /// Documents of other kinds, skipped.
    pub skipped: usize,
}

/// RBAC objects, Namespaces and ServiceAccounts, as `kubectl get -o yaml` gives them.
#[derive(Debug, Default)]
pub struct ClusterObjects {
    /// RoleBindings.
    pub role_bindings: Vec<RoleBinding>,
    /// ClusterRoleBindings.
    pub cluster_role_bindings: Vec<ClusterRoleBinding>,
    /// Roles.
    pub roles: Vec<Role>,
    /// ClusterRoles.
    pub cluster_roles: Vec<ClusterRole>,
    /// Namespaces.
    pub namespaces: Vec<Namespace>,
    /// ServiceAccounts.
    pub service_accounts: Vec<ServiceAccount>,
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

fn location(path: &Path, index: &str, kind: &str, name: &str) -> String {
    format!("{}: document {index} ({kind} {name})", path.display())
}

fn typed<T: serde::de::DeserializeOwned>(path: &Path, index: &str, doc: Value) -> Result<T, SimulateError> {
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
    index: &str,
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
            out.ingest(&path, &index.to_string(), doc)?;
        }
    }
    Ok(out)
}

fn str_at<'a>(doc: &'a Value, key: &str) -> &'a str {
    doc.get(key).and_then(Value::as_str).unwrap_or_default()
}

impl Manifests {
    /// Takes one document (`index` names it in errors: `3`, or `3 item 12` inside a List).
    fn ingest(&mut self, path: &Path, index: &str, doc: Value) -> Result<(), SimulateError> {
        if doc.is_null() {
            return Ok(());
        }
        let group = str_at(&doc, "apiVersion")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let kind = str_at(&doc, "kind").to_string();
        match (group.as_str(), kind.as_str()) {
            ("v1", "List") => {
                let items = doc.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
                for (i, item) in items.into_iter().enumerate() {
                    self.ingest(path, &format!("{index} item {i}"), item)?;
                }
            }
            ("gatehouse.dev", "AccessPolicy") => {
                let p: AccessPolicy = typed(path, index, doc)?;
                require_meta(path, index, &kind, &p, false)?;
                self.policies.push(p);
            }
            ("gatehouse.dev", "ApprovalRequest") => {
                let mut r: ApprovalRequest = typed(path, index, doc)?;
                require_meta(path, index, &kind, &r, true)?;
                r.metadata.namespace.get_or_insert_with(|| "default".into());
                // The operator evaluates what users wrote, not a status they may have pasted.
                r.status = None;
                self.requests.push(r);
            }
            ("gatehouse.dev", "AccessReview") => {
                let mut r: AccessReview = typed(path, index, doc)?;
                require_meta(path, index, &kind, &r, false)?;
                r.metadata.namespace.get_or_insert_with(|| "default".into());
                self.reviews.push(r);
            }
            ("gatehouse.dev", "AccessCampaign") => {
                let mut c: AccessCampaign = typed(path, index, doc)?;
                require_meta(path, index, &kind, &c, false)?;
                c.status = None;
                self.campaigns.push(c);
            }
            // Items are what simulate derives from campaigns; pasted ones are not input.
            ("gatehouse.dev", "AccessCertification") => self.skipped += 1,
            ("batch", "Job") => {
                let j: Job = typed(path, index, doc)?;
                require_meta(path, index, &kind, &j, false)?;
                self.jobs.push(j);
            }
            ("v1", "Namespace") => {
                let n: Namespace = typed(path, index, doc)?;
                let name = n.metadata.name.clone().unwrap_or_default();
                self.namespaces
                    .insert(name, n.metadata.labels.clone().unwrap_or_default());
                self.cluster.namespaces.push(n);
            }
            ("v1", "ServiceAccount") => self.cluster.service_accounts.push(typed(path, index, doc)?),
            ("rbac.authorization.k8s.io", "RoleBinding") => self.cluster.role_bindings.push(typed(path, index, doc)?),
            ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
                self.cluster.cluster_role_bindings.push(typed(path, index, doc)?)
            }
            ("rbac.authorization.k8s.io", "Role") => self.cluster.roles.push(typed(path, index, doc)?),
            ("rbac.authorization.k8s.io", "ClusterRole") => self.cluster.cluster_roles.push(typed(path, index, doc)?),
            ("gatehouse.dev", _) => {
                return Err(SimulateError::Invalid {
                    location: location(path, index, &kind, "<unnamed>"),
                    field: "kind".into(),
                    message: format!(
                        "{kind:?} is not a Gatehouse kind (AccessPolicy, ApprovalRequest, AccessReview, AccessCampaign)"
                    ),
                })
            }
            _ => self.skipped += 1,
        }
        Ok(())
    }
}

/// The JSON document `--output json` prints.
#[derive(Debug, Serialize)]
pub struct Report {
    /// One entry per request that exists at `now`.
    pub requests: Vec<RequestResult>,
    /// One entry per campaign run at `now`, with its items (absent when none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certifications: Vec<RunResult>,
}

/// Evaluates every request, and every campaign's latest run, at `now`. With
/// `certify` and no campaign in the input, an implicit campaign reviews every binding.
pub fn run(m: &Manifests, now: DateTime<Utc>, certify: bool) -> Report {
    Report {
        requests: requests::run(m, now),
        certifications: certify::run(m, now, certify),
    }
}

/// Renders the report as tables: requests first, then each campaign run.
pub fn render_table(report: &Report) -> String {
    let mut out = String::new();
    if !report.requests.is_empty() || report.certifications.is_empty() {
        out += &requests::render(&report.requests);
    }
    for run in &report.certifications {
        if !out.is_empty() {
            out += "\n";
        }
        out += &certify::render(run);
    }
    out
}
