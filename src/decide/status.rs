//! From the finished replay to the status, the actions and the next deadline:
//! one function per part of the status.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

use super::{
    eligibility::{describe, eligible_now},
    model::{Action, Binding, BindingRef, Evaluation},
    naming::{binding_ref, subject_of},
    onetime::{job_record, one_time_cleanup},
    reason::{condition::*, ApprovalKind, Progress},
    replay::{End, Recorded, Replay, State},
    tally::Tally,
    terminal::retention_deadline,
    timestamp::rfc3339,
    window::{self, Interval},
};
use crate::api::{
    ApprovalCount, ApprovalRequestStatus, Condition, ConditionStatus, DecisionRecord, GrantStatus, Phase,
    Principal, Principals, Requirements, ReviewGroupStatus, ReviewState, StageStatus, Subject, SubjectKind,
};

/// When access existed, exists and ends, as the replay left it at `now`.
struct Timeline {
    /// The end, if the request ended.
    end: Option<End>,
    /// Access start and expiry, once approved.
    span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Access intervals that started by `now`.
    past: Vec<Interval>,
    /// The interval `now` is in, while the request lives.
    current: Option<Interval>,
}

impl Timeline {
    fn of(r: &Replay) -> Self {
        let now = r.input.now;
        let end = r.ended().cloned();
        let span = r.approved.map(|a| r.access_span(a.at));
        let until = end
            .as_ref()
            .map_or(DateTime::<Utc>::MAX_UTC, |e| e.at)
            .min(span.map_or(now, |s| s.1));
        let intervals = r.intervals_until(until);
        let past = intervals.iter().filter(|(s, _)| *s <= now).copied().collect();
        let current = if end.is_none() {
            intervals.iter().find(|(s, e)| *s <= now && now < *e).copied()
        } else {
            None
        };
        Timeline {
            end,
            span,
            past,
            current,
        }
    }

    fn granted_at(&self) -> Option<DateTime<Utc>> {
        self.past.first().map(|(s, _)| *s)
    }

    /// When the binding went for good: the end of the last interval, or the end.
    fn revoked_at(&self) -> Option<DateTime<Utc>> {
        let end = self.end.as_ref()?;
        self.past.last().map(|(_, e)| (*e).min(end.at))
    }
}

/// Turns the finished replay into the status, the actions and the next deadline.
pub fn build(r: &Replay, requirements: Requirements, prev: &ApprovalRequestStatus) -> Evaluation {
    let req = r.input.request;
    let rules = r.rules;
    let tally = r.tally();
    let target = binding_ref(req);
    let t = Timeline::of(r);
    let phase = phase(r, &t);
    let open = matches!(r.state, State::Pending)
        .then(|| tally.open_stage())
        .flatten();
    let (stages, review_groups) = review_groups(r, &tally, open);
    let required = rules.required();
    let eligible = (phase == Phase::Pending).then(|| {
        let escalated = r.escalation_at().is_some_and(|e| r.input.now >= e);
        eligible_now(rules, &tally, escalated)
    });
    let conditions = vec![
        approved_condition(r, &t, &tally, open, eligible.as_ref()),
        granted_condition(r, &t, &target, phase),
        complete_condition(r, &t, phase),
    ];
    let status = ApprovalRequestStatus {
        phase,
        requirements: Some(requirements),
        approvals: Some(ApprovalCount {
            required,
            received: tally.received,
            summary: r
                .approved
                .map_or(ApprovalKind::Approved, |a| a.kind)
                .summary(tally.received, required),
        }),
        eligible_reviewers: eligible,
        review_groups,
        stages,
        decisions: r.verdicts.iter().map(record).collect(),
        grant: t.span.map(|(_, expires)| GrantStatus {
            kind: target.kind,
            name: target.name.clone(),
            namespace: target.namespace.clone(),
            granted_at: t.granted_at(),
            expires_at: Some(expires),
            revoked_at: t.revoked_at(),
        }),
        // Usage comes from audit evidence the operator adds (controller/usage.rs);
        // the decision keeps what was recorded.
        usage: prev.usage.clone(),
        approved_at: r.approved.map(|a| a.at),
        expires_at: t.span.map(|(_, e)| e),
        completed_at: t.end.as_ref().map(|e| e.at),
        job: r
            .job
            .as_ref()
            .and_then(|j| job_record(r, j, t.current, prev))
            .map(Box::new),
        conditions: settle_conditions(conditions, &prev.conditions),
        observed_generation: req.metadata.generation,
    };
    let mut actions = actions(r, &t, &target, &status);
    let next_deadline = next_deadline(r, &t, &status, &mut actions);
    Evaluation {
        status,
        actions,
        verdicts: r.verdicts.iter().map(|v| v.verdict.clone()).collect(),
        next_deadline,
        approval: r.approved.map(|a| a.kind),
        ending: t.end.map(|e| e.ending),
    }
}

fn phase(r: &Replay, t: &Timeline) -> Phase {
    match (&r.state, t.current) {
        (State::Ended(end), _) => end.ending.phase(),
        (State::Pending, _) => Phase::Pending,
        (State::Approved(_), Some(_)) if r.job.is_some() => Phase::Processing,
        (State::Approved(_), Some(_)) => Phase::Active,
        (State::Approved(_), None) => Phase::Approved,
    }
}

/// `status.stages` (when the policy declares stages) and `status.reviewGroups`:
/// one slot per listed group and user, plus escalation reviewers who counted and
/// a force approval.
fn review_groups(
    r: &Replay,
    tally: &Tally,
    open: Option<usize>,
) -> (Vec<StageStatus>, Vec<ReviewGroupStatus>) {
    let rules = r.rules;
    let rejected = matches!(&r.state, State::Ended(e) if e.ending.phase() == Phase::Rejected);
    let mut stages = Vec::new();
    let mut groups = Vec::new();
    for (i, (plan, st)) in rules.stages.iter().zip(&tally.stages).enumerate() {
        let rejected_here = rejected
            && r.rejected_by.as_ref().is_some_and(|rj| {
                plan.lists(&rj.reviewer, &rj.groups) && (open == Some(i) || open.is_none())
            });
        let state_of = |done: bool| {
            if done {
                ReviewState::Approved
            } else if rejected_here {
                ReviewState::Rejected
            } else if st.opened_at.is_some() {
                ReviewState::Pending
            } else {
                ReviewState::Waiting
            }
        };
        if rules.explicit_stages {
            stages.push(StageStatus {
                name: plan.name.clone(),
                status: state_of(st.satisfied_at.is_some()),
                required: plan.required(),
                received: st.counted.len() as u32,
                opened_at: st.opened_at,
                approved_at: st.satisfied_at,
            });
        }
        let slots = super::tally::all_slots(plan);
        let escalation_slots = st
            .counted
            .iter()
            .map(|(_, slot)| slot.clone())
            .filter(|slot| !slots.contains(slot));
        let slots = slots.iter().cloned();
        let mut seen = BTreeSet::new();
        for slot in slots.chain(escalation_slots) {
            if !seen.insert(slot.clone()) {
                continue;
            }
            let by = st
                .counted
                .iter()
                .find(|(_, l)| *l == slot)
                .map(|(k, _)| &r.approvals[*k]);
            groups.push(ReviewGroupStatus {
                // A group by its name, a user as `user:NAME`.
                group: match &slot {
                    Principal::Group(g) => g.clone(),
                    Principal::User(_) => slot.to_string(),
                },
                stage: rules.explicit_stages.then(|| plan.name.clone()),
                status: state_of(by.is_some()),
                reviewed_by: by.map(|a| a.reviewer.clone()),
                reviewed_at: by.map(|a| a.at),
                forced: false,
            });
        }
    }
    if let Some(f) = &r.forced_by {
        groups.push(ReviewGroupStatus {
            group: f.group.clone(),
            stage: None,
            status: ReviewState::Approved,
            reviewed_by: Some(f.reviewer.clone()),
            reviewed_at: Some(f.at),
            forced: true,
        });
    }
    (stages, groups)
}

/// Condition `Approved`: how the request was approved, how it ended before, or
/// what it still waits for. Transition times come from the history, never `now`.
fn approved_condition(
    r: &Replay,
    t: &Timeline,
    tally: &Tally,
    open: Option<usize>,
    eligible: Option<&Principals>,
) -> Condition {
    let rules = r.rules;
    let generation = r.input.request.metadata.generation;
    let required = rules.required();
    match (r.approved, &t.end) {
        (Some(approved), _) => {
            let message = match approved.kind {
                ApprovalKind::AutoApproved => {
                    format!("approved automatically by AccessPolicy {}", rules.policy)
                }
                ApprovalKind::ForceApproved => format!(
                    "force-approved by {}",
                    r.forced_by
                        .as_ref()
                        .map(|f| format!("{} ({})", f.reviewer, f.group))
                        .unwrap_or_default()
                ),
                ApprovalKind::Approved => format!("{} of {required} approvals", tally.received),
            };
            let status = ConditionStatus::True;
            condition(
                APPROVED,
                status,
                approved.kind.as_str(),
                message,
                approved.at,
                generation,
            )
        }
        (None, Some(end)) => condition(
            APPROVED,
            ConditionStatus::False,
            end.ending.as_str(),
            end.message.clone(),
            end.at,
            generation,
        ),
        (None, None) => {
            let stage = open
                .filter(|_| rules.explicit_stages)
                .map(|i| format!("; stage {} is open", rules.stages[i].name))
                .unwrap_or_default();
            let message = format!(
                "{} of {required} approvals{stage}; who can approve: {}",
                tally.received,
                describe(eligible.unwrap_or(&Principals::default()))
            );
            let reason = Progress::AwaitingApproval.as_str();
            condition(
                APPROVED,
                ConditionStatus::False,
                reason,
                message,
                r.created,
                generation,
            )
        }
    }
}

/// Condition `Granted`: whether the binding exists now, and why not.
fn granted_condition(r: &Replay, t: &Timeline, target: &BindingRef, phase: Phase) -> Condition {
    let generation = r.input.request.metadata.generation;
    let now = r.input.now;
    let (status, reason, message, since) = match (t.current, &t.end, t.span) {
        (Some((from, until)), _, _) => (
            ConditionStatus::True,
            Progress::BindingActive.as_str(),
            format!(
                "{} {} grants {} until {}",
                target.kind,
                target.name,
                r.input.request.spec.role,
                rfc3339(until)
            ),
            from,
        ),
        (None, Some(end), _) => (
            ConditionStatus::False,
            phase.as_str(),
            if t.granted_at().is_some() {
                "the binding was removed".into()
            } else {
                "no access was granted".into()
            },
            t.revoked_at().unwrap_or(end.at),
        ),
        (None, None, Some((start, _))) => {
            let (reason, message) = if now < start {
                (
                    Progress::NotStarted,
                    format!("access starts at {}", rfc3339(start)),
                )
            } else {
                (
                    Progress::OutsideTimeWindow,
                    "access exists only inside the policy's time window".to_string(),
                )
            };
            let since = t
                .past
                .last()
                .map(|(_, e)| *e)
                .unwrap_or(r.approved.map_or(r.created, |a| a.at));
            (ConditionStatus::False, reason.as_str(), message, since)
        }
        (None, None, None) => (
            ConditionStatus::False,
            Progress::NotApproved.as_str(),
            "waiting for approval".into(),
            r.created,
        ),
    };
    condition(GRANTED, status, reason, message, since, generation)
}

/// Condition `Complete`: how the request ended, or that it is in progress.
fn complete_condition(r: &Replay, t: &Timeline, phase: Phase) -> Condition {
    let generation = r.input.request.metadata.generation;
    match &t.end {
        Some(end) => condition(
            COMPLETE,
            ConditionStatus::True,
            end.ending.as_str(),
            end.message.clone(),
            end.at,
            generation,
        ),
        None => condition(
            COMPLETE,
            ConditionStatus::False,
            Progress::InProgress.as_str(),
            format!("the request is {phase}"),
            r.created,
            generation,
        ),
    }
}

/// What makes the cluster match the status: the binding while access is on (and
/// for a OneTime request its ServiceAccount and Job), its removal otherwise, and
/// the OneTime clean-up once the request ended.
fn actions(r: &Replay, t: &Timeline, target: &BindingRef, status: &ApprovalRequestStatus) -> Vec<Action> {
    let req = r.input.request;
    let mut actions = Vec::new();
    match (t.current, &r.job) {
        (Some((_, until)), Some(job)) => {
            // Order matters: the job must find its identity and role in place.
            let deadline = status
                .job
                .as_ref()
                .and_then(|j| j.deadline)
                .unwrap_or(until)
                .min(until);
            let sa = job.target.clone();
            actions.push(Action::EnsureServiceAccount(sa.clone()));
            actions.push(Action::EnsureBinding(Binding {
                target: target.clone(),
                role: req.spec.role.clone(),
                subject: Subject {
                    kind: SubjectKind::ServiceAccount,
                    name: sa.name.clone(),
                    namespace: Some(sa.namespace.clone()),
                },
                valid_until: deadline,
            }));
            if job.observed.is_none() && job.recorded_uid.is_none() {
                if let Some(spec) = &req.spec.job {
                    actions.push(Action::CreateJob(super::job::JobPlan {
                        target: job.target.clone(),
                        service_account: sa.name,
                        spec: spec.clone(),
                        deadline,
                    }));
                }
            }
        }
        (Some((_, until)), None) => actions.push(Action::EnsureBinding(Binding {
            target: target.clone(),
            role: req.spec.role.clone(),
            subject: subject_of(req),
            valid_until: until,
        })),
        (None, _) if t.span.is_some() => actions.push(Action::RemoveBinding(target.clone())),
        (None, _) => {}
    }
    if t.end.is_some() && r.approved.is_some() {
        actions.extend(one_time_cleanup(req, status));
    }
    actions
}

/// The next instant the answer can change: timeout and escalation while pending;
/// access start, window edges and expiry while approved; the job's deadline; the
/// end of retention once ended (when it has passed, the record is deleted now).
fn next_deadline(
    r: &Replay,
    t: &Timeline,
    status: &ApprovalRequestStatus,
    actions: &mut Vec<Action>,
) -> Option<DateTime<Utc>> {
    let now = r.input.now;
    let mut deadlines: Vec<DateTime<Utc>> = Vec::new();
    match &r.state {
        State::Pending => {
            deadlines.extend(r.timeout_at());
            deadlines.extend(r.escalation_at());
        }
        State::Approved(approved) => {
            let (start, expires) = r.access_span(approved.at);
            deadlines.push(start);
            deadlines.push(expires);
            for (s, e) in window::access_intervals(r.rules.window.as_ref(), start.max(now), expires) {
                deadlines.push(s);
                deadlines.push(e);
            }
        }
        State::Ended(_) => {
            if let Some(d) = retention_deadline(status) {
                if d <= now {
                    actions.push(Action::DeleteRecord);
                }
                deadlines.push(d);
            }
        }
    }
    if let Some(d) = status
        .job
        .as_ref()
        .and_then(|j| j.deadline)
        .filter(|_| t.end.is_none())
    {
        deadlines.push(d);
    }
    deadlines.into_iter().filter(|d| *d > now).min()
}

/// A condition following the `metav1.Condition` conventions.
pub fn condition(
    type_: &str,
    status: ConditionStatus,
    reason: &str,
    message: String,
    at: DateTime<Utc>,
    generation: Option<i64>,
) -> Condition {
    Condition {
        type_: type_.to_string(),
        status,
        reason: reason.to_string(),
        message,
        observed_generation: generation,
        last_transition_time: at,
    }
}

/// Keeps `lastTransitionTime` of conditions whose status did not change.
pub fn settle_conditions(mut next: Vec<Condition>, prev: &[Condition]) -> Vec<Condition> {
    for c in &mut next {
        if let Some(p) = prev.iter().find(|p| p.type_ == c.type_ && p.status == c.status) {
            c.last_transition_time = p.last_transition_time;
        }
    }
    next
}

/// The status record of one verdict.
pub(super) fn record(v: &Recorded) -> DecisionRecord {
    DecisionRecord {
        review: v.verdict.review.clone(),
        reviewer: v.reviewer.clone(),
        decision: v.decision,
        at: v.at,
        accepted: v.verdict.accepted,
        reason: v.verdict.reason.as_str().to_string(),
        message: v.verdict.message.clone(),
        forced: v.forced,
    }
}
