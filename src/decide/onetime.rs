//! OneTime requests in the replay: when the job must stop, how its end ends the
//! request, the `status.job` record, and what is cleaned up afterwards.

use chrono::{DateTime, Utc};

use super::{
    job::{self, JobObservation, JobProgress, ObjectName},
    model::{Action, Input},
    reason::{EndCause, Ending},
    replay::{End, Replay},
    timestamp::rfc3339,
    window::{self, Interval},
};
use crate::api::{ApprovalRequest, ApprovalRequestStatus, JobRecord, JobState, RequestType};

/// What one evaluation knows of a OneTime request's Job: the stored record and
/// the observation, reconciled.
pub struct JobFacts<'a> {
    pub(super) target: ObjectName,
    /// The Job found in the cluster, if it is the one recorded (or none is recorded yet).
    pub(super) observed: Option<&'a JobObservation>,
    /// uid recorded in the status: the Job was created and must never be created again.
    pub(super) recorded_uid: Option<String>,
    /// When the Job was created, if it was.
    pub(super) started: Option<DateTime<Utc>>,
    /// The recorded Job no longer exists (or was replaced by another one).
    lost: bool,
    /// The deadline recorded when the job was first planned: sticky, so neither
    /// a clock difference with the API server nor a later window moves it.
    deadline: Option<DateTime<Utc>>,
}

/// Reconciles the stored job record with what the shell observed.
pub fn job_facts<'a>(input: &Input<'a>, prev: &ApprovalRequestStatus) -> JobFacts<'a> {
    let target = job::job_ref(input.request);
    let recorded = prev.job.as_ref();
    let recorded_uid = recorded.and_then(|j| j.uid.clone());
    let observed = input
        .job
        .filter(|o| o.name == target.name && recorded_uid.as_deref().is_none_or(|u| u == o.uid));
    JobFacts {
        lost: recorded_uid.is_some() && observed.is_none(),
        // A deadline planned for a job that was never created does not bind a later start.
        deadline: recorded
            .and_then(|j| j.deadline)
            .filter(|_| observed.is_some() || recorded_uid.is_some()),
        started: observed
            .map(|o| o.created)
            .or_else(|| recorded.and_then(|j| j.started_at)),
        target,
        observed,
        recorded_uid,
    }
}

impl Replay<'_> {
    /// When the job must be stopped, if it starts (or started) at `from`: the
    /// end of the access interval it runs in, so it never runs outside the time
    /// window nor past `expiresAt`.
    pub(super) fn job_deadline(&self, approved_at: DateTime<Utc>, from: DateTime<Utc>) -> DateTime<Utc> {
        let (start, expires) = self.access_span(approved_at);
        window::access_intervals(self.rules.window.as_ref(), start, expires)
            .into_iter()
            .find(|(_, e)| *e > from)
            .map_or(expires, |(_, e)| e)
    }

    /// Ends the request when its job finished, hit its deadline or was deleted,
    /// whichever came first by `t`. Returns whether the job has started (then the
    /// JIT expiry rules do not apply: the deadline is the job's).
    pub(super) fn advance_job(&mut self, approved_at: DateTime<Utc>, t: DateTime<Utc>) -> bool {
        let Some(job) = self.job.as_ref() else {
            return false;
        };
        let Some(started) = job.started else {
            return false;
        };
        let name = job.target.name.clone();
        let logs = job::logs_hint(&job.target);
        let lost = job.lost;
        let finished = job
            .observed
            .and_then(|o| o.progress.finished_at().map(|at| (at, o.progress.clone())));
        let deadline = job
            .deadline
            .unwrap_or_else(|| self.job_deadline(approved_at, started));
        let ended = |cause| Ending::Ended(cause);
        match finished {
            Some((at, progress)) if at <= t && at <= deadline => match progress {
                JobProgress::Failed {
                    deadline_exceeded: true,
                    ..
                } => self.end(
                    ended(EndCause::DeadlineExceeded),
                    at,
                    format!(
                        "job {name} was still running at its deadline {} and was stopped (activeDeadlineSeconds); logs (while the Job exists): {logs}",
                        rfc3339(deadline)
                    ),
                ),
                JobProgress::Failed { message, .. } => self.end(
                    ended(EndCause::JobFailed),
                    at,
                    format!("job {name} failed: {message}; logs: {logs}"),
                ),
                _ => self.end(
                    ended(EndCause::Executed),
                    at,
                    format!("job {name} succeeded; logs: {logs}"),
                ),
            },
            _ if deadline <= t => self.end(
                ended(EndCause::DeadlineExceeded),
                deadline,
                format!(
                    "job {name} was still running at its deadline {} and was stopped; logs (while the Job exists): {logs}",
                    rfc3339(deadline)
                ),
            ),
            _ if lost && t >= self.input.now => self.end(
                ended(EndCause::JobDeleted),
                t,
                format!("job {name} was deleted before it finished; it is not run again"),
            ),
            _ => {}
        }
        true
    }
}

/// The `status.job` of a OneTime request: kept from the stored status, updated
/// with what was observed and how the request ended.
pub fn job_record(
    r: &Replay,
    job: &JobFacts,
    current: Option<Interval>,
    prev: &ApprovalRequestStatus,
) -> Option<JobRecord> {
    let approved_at = r.approved?.at;
    let kept = prev.job.as_ref();
    if job.started.is_none() && current.is_none() && kept.is_none() {
        return None;
    }
    let deadline = match (job.deadline, job.started) {
        (Some(d), _) => Some(d),
        (None, Some(started)) => Some(r.job_deadline(approved_at, started)),
        (None, None) => current.map(|(_, e)| e),
    };
    let (state, finished_at, message) = match r.ended() {
        Some(End { ending, at, message }) => {
            let state = match ending {
                Ending::Ended(EndCause::Executed) => JobState::Succeeded,
                Ending::Ended(EndCause::JobFailed) => JobState::Failed,
                Ending::Ended(EndCause::JobDeleted) => JobState::Deleted,
                _ => JobState::Stopped,
            };
            let message = match (state, job.observed.map(|o| &o.progress)) {
                (JobState::Succeeded, _) => None,
                (JobState::Failed, Some(JobProgress::Failed { message, .. })) => Some(message.clone()),
                _ => Some(message.clone()),
            };
            (state, Some(*at), message)
        }
        None if job.observed.is_some() || job.recorded_uid.is_some() => (JobState::Running, None, None),
        None => (JobState::Starting, None, None),
    };
    Some(JobRecord {
        name: job.target.name.clone(),
        service_account: job.target.name.clone(),
        uid: job
            .observed
            .map(|o| o.uid.clone())
            .or_else(|| job.recorded_uid.clone()),
        state,
        started_at: job.started,
        deadline,
        finished_at,
        message,
        logs: job::logs_hint(&job.target),
    })
}

/// What stays to be removed once a OneTime request has ended: its ServiceAccount,
/// and its Job unless the job finished by itself (its logs are kept with it).
pub fn one_time_cleanup(req: &ApprovalRequest, status: &ApprovalRequestStatus) -> Vec<Action> {
    if req.spec.type_ != RequestType::OneTime || status.approved_at.is_none() {
        return Vec::new();
    }
    let target = job::job_ref(req);
    let mut actions = vec![Action::DeleteServiceAccount(target.clone())];
    let finished = status
        .job
        .as_ref()
        .is_some_and(|j| matches!(j.state, JobState::Succeeded | JobState::Failed));
    if !finished {
        actions.push(Action::DeleteJob(target));
    }
    actions
}
