//! OneTime requests: the Job that runs once, its ServiceAccount, and their names.
//!
//! The shell reports what it sees of the Job as a [`JobObservation`]; the core
//! decides from it and from the stored `status.job` whether to create, keep or
//! stop the Job. Names are derived from the request (uid included), so a Job is
//! found again after a restart and a re-created request never adopts an old one.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use k8s_openapi::api::batch::v1::{Job, JobCondition};

use super::{naming::derived_name, timestamp::to_chrono};
use crate::api::{ApprovalRequest, JobSpec};

/// A namespaced object the operator manages for a OneTime request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectName {
    /// Namespace (the request's).
    pub namespace: String,
    /// Deterministic name.
    pub name: String,
}

/// The Job to create for a OneTime request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobPlan {
    /// Where it lives.
    pub target: ObjectName,
    /// The dedicated ServiceAccount it runs as.
    pub service_account: String,
    /// What it runs: exactly the request's `spec.job`.
    pub spec: JobSpec,
    /// When it must be stopped at the latest.
    pub deadline: DateTime<Utc>,
}

/// The request's Job as the shell found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobObservation {
    /// Name of the Job.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// When it was created.
    pub created: DateTime<Utc>,
    /// How far it got.
    pub progress: JobProgress,
}

/// Where a Job is, from its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobProgress {
    /// Not finished.
    Running,
    /// Finished successfully at `at`.
    Succeeded {
        /// When it finished.
        at: DateTime<Utc>,
    },
    /// Finished unsuccessfully at `at`.
    Failed {
        /// When it failed.
        at: DateTime<Utc>,
        /// Why, as the Job's status says.
        message: String,
        /// The Job controller stopped it at its `activeDeadlineSeconds` (condition
        /// reason `DeadlineExceeded`): the same outcome as the operator stopping it.
        deadline_exceeded: bool,
    },
}

impl JobProgress {
    /// When the job finished, if it did.
    pub fn finished_at(&self) -> Option<DateTime<Utc>> {
        match self {
            JobProgress::Running => None,
            JobProgress::Succeeded { at } | JobProgress::Failed { at, .. } => Some(*at),
        }
    }
}

/// The name of a OneTime request's Job and ServiceAccount. At most 63 characters:
/// the Job controller copies the Job's name into a label of its pods.
pub fn job_name(namespace: &str, name: &str, uid: &str) -> String {
    derived_name(name, namespace, name, uid, 63)
}

/// The Job of a request, by name.
pub fn job_ref(req: &ApprovalRequest) -> ObjectName {
    let namespace = req.namespace().unwrap_or_default();
    let name = job_name(
        &namespace,
        &req.name_any(),
        req.uid().as_deref().unwrap_or_default(),
    );
    ObjectName { namespace, name }
}

/// Where the job's output is.
pub fn logs_hint(target: &ObjectName) -> String {
    crate::escape::shell::join(&[
        "kubectl",
        "logs",
        "-n",
        &target.namespace,
        &format!("job/{}", target.name),
    ])
}

/// What the core needs to know of a Job, from its status: finished (the
/// `Complete` or `Failed` condition, or the succeeded/failed counts) or not.
pub fn observe(job: &Job, now: DateTime<Utc>) -> Option<JobObservation> {
    let created = job
        .metadata
        .creation_timestamp
        .as_ref()
        .and_then(to_chrono)
        .unwrap_or(now);
    let status = job.status.clone().unwrap_or_default();
    let condition = |t: &str| {
        status
            .conditions
            .iter()
            .flatten()
            .find(|c| c.type_ == t && c.status == "True")
            .cloned()
    };
    let finished_at = |c: Option<&JobCondition>| {
        c.and_then(|c| c.last_transition_time.as_ref())
            .or(status.completion_time.as_ref())
            .and_then(to_chrono)
            .unwrap_or(now)
    };
    let progress = if let Some(c) = condition("Complete") {
        JobProgress::Succeeded {
            at: finished_at(Some(&c)),
        }
    } else if let Some(c) = condition("Failed") {
        let message = match (c.reason.as_deref(), c.message.as_deref()) {
            (Some(r), Some(m)) if !m.is_empty() => format!("{r}: {m}"),
            (Some(r), _) => r.to_string(),
            (None, Some(m)) => m.to_string(),
            (None, None) => "the Job failed".to_string(),
        };
        JobProgress::Failed {
            at: finished_at(Some(&c)),
            message,
            deadline_exceeded: c.reason.as_deref() == Some("DeadlineExceeded"),
        }
    } else if status.succeeded.unwrap_or(0) > 0 {
        JobProgress::Succeeded {
            at: finished_at(None),
        }
    } else if status.failed.unwrap_or(0) > 0 {
        JobProgress::Failed {
            at: finished_at(None),
            message: format!("{} pod(s) failed", status.failed.unwrap_or(0)),
            deadline_exceeded: false,
        }
    } else {
        JobProgress::Running
    };
    Some(JobObservation {
        name: job.metadata.name.clone()?,
        uid: job.metadata.uid.clone()?,
        created,
        progress,
    })
}
