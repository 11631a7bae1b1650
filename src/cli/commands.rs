//! The commands: request (and wait for the outcome), review (and wait for the
//! verdict), and the lookups they share.

use std::{io::Write, time::Duration as StdDuration};

use k8s_openapi::api::core::v1::Namespace;
use kube::{
    api::{Api, ListParams, PostParams},
    ResourceExt,
};
use serde::Serialize;

use crate::api::{
    AccessPolicy, AccessReview, AccessReviewStatus, ApprovalRequest, Decision, Identity, Phase,
};

use super::*;

/// Whether `me` can act on the request's open stage now: it is Pending, names me (or a
/// group of mine) among the eligible reviewers, and is neither my own request nor one
/// that would give me access (my approval would not count).
pub fn can_review(req: &ApprovalRequest, me: &Identity) -> bool {
    let Some(status) = &req.status else { return false };
    status.phase == Phase::Pending
        && req.spec.requester.username != me.username
        && !crate::decide::benefits(req, me)
        && status.eligible_reviewers.as_ref().is_some_and(|p| p.matches(me))
}

/// Whether the request is mine.
pub fn is_mine(req: &ApprovalRequest, me: &Identity) -> bool {
    req.spec.requester.username == me.username
}

/// Outcome of a review command.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewOutcome {
    /// Name of the AccessReview created.
    pub review: String,
    /// Namespace of the review and request.
    pub namespace: String,
    /// The request reviewed.
    pub request: String,
    /// The decision.
    pub decision: Decision,
    /// The operator's verdict; `None` if it did not arrive in time.
    pub verdict: Option<AccessReviewStatus>,
}

impl ReviewOutcome {
    /// The exit code the outcome maps to.
    pub fn exit_code(&self) -> i32 {
        match &self.verdict {
            None => exit::TIMEOUT,
            Some(v) if v.accepted == Some(true) => exit::OK,
            Some(_) => exit::NOT_ACCEPTED,
        }
    }
}

pub(super) fn requests_api(env: &Env) -> Api<ApprovalRequest> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

pub(super) async fn get_request(env: &Env, name: &str) -> Result<ApprovalRequest, CliError> {
    requests_api(env).get(name).await.map_err(CliError::kube(format!(
        "reading ApprovalRequest {name} in namespace {} (see `kubectl gatehouse list` or pass -n)",
        env.namespace
    )))
}

pub(super) async fn list_requests(env: &Env, all: bool) -> Result<Vec<ApprovalRequest>, CliError> {
    let api: Api<ApprovalRequest> = if all {
        Api::all(env.client.clone())
    } else {
        requests_api(env)
    };
    let mut items = api
        .list(&ListParams::default())
        .await
        .map_err(CliError::kube("listing ApprovalRequests"))?
        .items;
    items.sort_by_key(|r| (r.namespace(), r.creation_timestamp(), r.name_any()));
    Ok(items)
}

pub(super) fn emit_list(
    env: &Env,
    reqs: &[ApprovalRequest],
    all: bool,
    out: &mut dyn Write,
) -> Result<(), CliError> {
    match env.output {
        Output::Table => out.write_all(render::request_table(reqs, all, (env.now)()).as_bytes())?,
        fmt => emit(fmt, &reqs, out)?,
    }
    Ok(())
}

/// `request`: checks the policies the user can read, creates the request, and with
/// `--wait` follows it. Returns the created (or last seen) request and the exit code.
pub async fn request(
    env: &Env,
    args: &RequestArgs,
    out: &mut dyn Write,
) -> Result<(ApprovalRequest, i32), CliError> {
    let req = build_request(args, &env.me, &env.namespace, &random_suffix())?;
    let wait_for = args
        .timeout
        .as_deref()
        .map(|t| parse_timeout("timeout", t))
        .transpose()?;
    // Listing policies may be forbidden to requesters; then the operator decides alone.
    let policies: Api<AccessPolicy> = Api::all(env.client.clone());
    if let Ok(list) = policies.list(&ListParams::default()).await {
        let labels = Api::<Namespace>::all(env.client.clone())
            .get(&env.namespace)
            .await
            .ok()
            .map(|ns| ns.labels().clone());
        precheck_policy(&req, &list.items, labels.as_ref())?;
    }
    let created = requests_api(env)
        .create(&PostParams::default(), &req)
        .await
        .map_err(CliError::kube(format!(
            "creating ApprovalRequest {} in namespace {}",
            req.name_any(),
            env.namespace
        )))?;
    if env.output == Output::Table {
        writeln!(
            out,
            "approvalrequest/{} created in namespace {}: {} for {}",
            created.name_any(),
            env.namespace,
            created.spec.role,
            match (&created.spec.job, &created.spec.subject) {
                (Some(job), _) => format!("a OneTime job running {} once", job.image),
                (None, Some(_)) => render::subject(&created),
                (None, None) => created.spec.requester.username.clone(),
            }
        )?;
    }
    if !args.wait {
        if env.output != Output::Table {
            emit(env.output, &created, out)?;
        }
        return Ok((created, exit::OK));
    }
    let name = created.name_any();
    let started = std::time::Instant::now();
    let mut last_phase: Option<Phase> = None;
    loop {
        let current = get_request(env, &name).await?;
        let phase = current.status.as_ref().map(|s| s.phase);
        if phase != last_phase && env.output == Output::Table {
            if let Some(p) = phase {
                writeln!(out, "{name}: {p}")?;
            }
            last_phase = phase;
        }
        if let Some(code) = phase.and_then(wait_outcome) {
            if env.output == Output::Table {
                out.write_all(render::wait_result(&current, (env.now)()).as_bytes())?;
            } else {
                emit(env.output, &current, out)?;
            }
            return Ok((current, code));
        }
        if wait_for.is_some_and(|w| started.elapsed() >= w) {
            if env.output == Output::Table {
                writeln!(
                    out,
                    "{name} is still {}; stopped waiting (follow it with `kubectl gatehouse status {name}`)",
                    phase.map_or("waiting for the operator", Phase::as_str)
                )?;
            } else {
                emit(env.output, &current, out)?;
            }
            return Ok((current, exit::TIMEOUT));
        }
        tokio::time::sleep(env.poll).await;
    }
}

/// Whether `--wait` stops at this phase, and with which exit code.
pub fn wait_outcome(phase: Phase) -> Option<i32> {
    match phase {
        Phase::Active | Phase::Executed => Some(exit::OK),
        Phase::Rejected
        | Phase::Denied
        | Phase::TimedOut
        | Phase::Canceled
        | Phase::Expired
        | Phase::Failed
        | Phase::Revoked
        | Phase::Superseded => Some(exit::NOT_GRANTED),
        Phase::Pending | Phase::Approved | Phase::Processing => None,
    }
}

/// A review command: pins the request's uid, creates the review, waits for the verdict.
pub async fn review(
    env: &Env,
    name: &str,
    decision: Decision,
    comment: Option<String>,
    timeout: StdDuration,
) -> Result<ReviewOutcome, CliError> {
    let req = get_request(env, name).await?;
    let review = build_review(&req, decision, &env.me, comment, &random_suffix())?;
    let api: Api<AccessReview> = Api::namespaced(env.client.clone(), &env.namespace);
    let created = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(CliError::kube(format!(
            "creating the {decision} AccessReview of {name} in namespace {}",
            env.namespace
        )))?;
    let verdict = wait_verdict(&api, &created.name_any(), timeout, env.poll).await?;
    Ok(ReviewOutcome {
        review: created.name_any(),
        namespace: env.namespace.clone(),
        request: name.to_string(),
        decision,
        verdict,
    })
}

/// Polls a review until the operator writes `status.accepted`, or the timeout passes.
pub async fn wait_verdict(
    api: &Api<AccessReview>,
    name: &str,
    timeout: StdDuration,
    poll: StdDuration,
) -> Result<Option<AccessReviewStatus>, CliError> {
    let started = std::time::Instant::now();
    loop {
        let review = api
            .get(name)
            .await
            .map_err(CliError::kube(format!("reading AccessReview {name}")))?;
        if let Some(status) = review.status.filter(|s| s.accepted.is_some()) {
            return Ok(Some(status));
        }
        if started.elapsed() >= timeout {
            return Ok(None);
        }
        tokio::time::sleep(
            poll.min(timeout.saturating_sub(started.elapsed()))
                .max(StdDuration::from_millis(1)),
        )
        .await;
    }
}

pub(super) async fn review_cmd(
    env: &Env,
    name: &str,
    decision: Decision,
    comment: Option<String>,
    timeout: &str,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let timeout = parse_timeout("timeout", timeout)?;
    let outcome = review(env, name, decision, comment, timeout).await?;
    match env.output {
        Output::Table => out.write_all(render::review_outcome(&outcome).as_bytes())?,
        fmt => emit(fmt, &outcome, out)?,
    }
    Ok(outcome.exit_code())
}
