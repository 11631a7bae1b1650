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
use crate::escape::shell;

/// Whether `me` can act on the request's open stage now: it is Pending, names me (or a
/// group of mine) among the eligible reviewers, and my approval would count (the core's
/// rule: not my own request nor access for me, unless the rules in force allow
/// self-approval).
pub fn can_review(req: &ApprovalRequest, me: &Identity) -> bool {
    let Some(status) = &req.status else { return false };
    let allow_self = status
        .requirements
        .as_ref()
        .is_some_and(|r| r.approval.allow_self_approval);
    status.phase == Phase::Pending
        && !crate::decide::self_approval_barred(req, me, allow_self)
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
    let op = Op::namespaced(Verb::Get, Resource::ApprovalRequests, &env.namespace, Some(name));
    requests_api(env).get(name).await.map_err(env.fail(op))
}

pub(super) async fn list_requests(env: &Env, all: bool) -> Result<Vec<ApprovalRequest>, CliError> {
    let (api, op): (Api<ApprovalRequest>, _) = if all {
        (
            Api::all(env.client.clone()),
            Op::cluster(Verb::List, Resource::ApprovalRequests, Place::AllNamespaces),
        )
    } else {
        (
            requests_api(env),
            Op::namespaced(Verb::List, Resource::ApprovalRequests, &env.namespace, None),
        )
    };
    let mut items = api
        .list(&ListParams::default())
        .await
        .map_err(env.fail(op))?
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

/// Where to look when the operator does not seem to act.
const OPERATOR_CHECK: &str =
    "is the Gatehouse operator running? (kubectl get pods -A -l app.kubernetes.io/name=gatehouse)";

/// `request`: checks the policies the user can read, creates the request, and with
/// `--wait` follows it through a watch. Returns the created (or last seen) request
/// and the exit code; warnings (the operator seems absent) go to `err`.
pub async fn request(
    env: &Env,
    args: &RequestArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(ApprovalRequest, i32), CliError> {
    let req = build_request(args, &env.me, &env.namespace, &random_suffix())?;
    let wait_for = args
        .timeout
        .as_deref()
        .map(|t| parse_timeout("timeout", t))
        .transpose()?;
    let created = file_request(env, req).await?;
    let name = created.name_any();
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
    follow_request(
        env,
        &name,
        wait_for.map(|d| (d, args.timeout.as_deref().unwrap_or_default())),
        out,
        err,
    )
    .await
}

/// Checks `req` against the policies the user can read (when they may list them)
/// and creates it in `env.namespace`: the request as the API server stored it.
pub async fn file_request(env: &Env, req: ApprovalRequest) -> Result<ApprovalRequest, CliError> {
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
    let name = req.name_any();
    let op = Op::namespaced(
        Verb::Create,
        Resource::ApprovalRequests,
        &env.namespace,
        Some(&name),
    );
    requests_api(env)
        .create(&PostParams::default(), &req)
        .await
        .map_err(env.fail(op))
}

/// `request --wait`: prints each phase as the operator writes it and stops at an
/// outcome, the timeout (`(duration, as typed)`), or the request's deletion.
async fn follow_request(
    env: &Env,
    name: &str,
    timeout: Option<(StdDuration, &str)>,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(ApprovalRequest, i32), CliError> {
    let table = env.output == Output::Table;
    let mut last_phase: Option<Phase> = None;
    let mut nudge = |last: Option<&ApprovalRequest>| -> Result<(), CliError> {
        if last.is_none_or(|r| r.status.is_none()) {
            writeln!(
                err,
                "warning: {name} has no status after {}: {OPERATOR_CHECK}; still waiting",
                short(env.operator_grace)
            )?;
        }
        Ok(())
    };
    let watch = Op::namespaced(
        Verb::Watch,
        Resource::ApprovalRequests,
        &env.namespace,
        Some(name),
    );
    let waited = wait::watch_one(
        Api::<ApprovalRequest>::namespaced(env.watch_client.clone(), &env.namespace),
        name,
        timeout.map(|t| t.0),
        |r: &ApprovalRequest| {
            let phase = r.status.as_ref().map(|s| s.phase);
            if phase != last_phase && table {
                if let Some(p) = phase {
                    writeln!(out, "{name}: {p}")?;
                }
            }
            last_phase = phase;
            Ok(phase.and_then(wait_outcome).is_some())
        },
        Some(wait::Quiet {
            after: env.operator_grace,
            nudge: &mut nudge,
        }),
        env.fail(watch),
    )
    .await?;
    match waited {
        wait::Waited::Done(current) => {
            let code = current
                .status
                .as_ref()
                .and_then(|s| wait_outcome(s.phase))
                .unwrap_or(exit::ERROR);
            if table {
                out.write_all(render::wait_result(&current, (env.now)()).as_bytes())?;
            } else {
                emit(env.output, &current, out)?;
            }
            Ok((current, code))
        }
        wait::Waited::TimedOut(last) => {
            if let (false, Some(r)) = (table, &last) {
                emit(env.output, r, out)?;
            }
            let typed = timeout.map_or("", |t| t.1);
            let phase = last.as_ref().and_then(|r| r.status.as_ref()).map(|s| s.phase);
            Err(CliError::TimedOut(match phase {
                None => format!("timed out after {typed}: {name} has no status yet; {OPERATOR_CHECK}"),
                Some(p) => format!(
                    "timed out after {typed}: {name} is still {p}; follow it with `{}`",
                    shell::join(&["kubectl", "gatehouse", "status", name, "-n", &env.namespace])
                ),
            }))
        }
        wait::Waited::Gone => Err(CliError::Deleted {
            kind: "ApprovalRequest",
            name: name.to_string(),
            namespace: env.namespace.clone(),
        }),
    }
}

/// "10s", or "250ms" below a second.
fn short(d: StdDuration) -> String {
    match d.as_secs() {
        0 => format!("{}ms", d.as_millis()),
        s => format!("{s}s"),
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
    let op = Op::namespaced(
        Verb::Create,
        Resource::AccessReviews,
        &env.namespace,
        Some(&review.name_any()),
    );
    let created = api
        .create(&PostParams::default(), &review)
        .await
        .map_err(env.fail(op))?;
    let verdict = wait_verdict(env, &created.name_any(), timeout).await?;
    Ok(ReviewOutcome {
        review: created.name_any(),
        namespace: env.namespace.clone(),
        request: name.to_string(),
        decision,
        verdict,
    })
}

/// Watches a review until the operator writes `status.accepted`; `None` when the
/// timeout passes first.
pub async fn wait_verdict(
    env: &Env,
    name: &str,
    timeout: StdDuration,
) -> Result<Option<AccessReviewStatus>, CliError> {
    let api: Api<AccessReview> = Api::namespaced(env.watch_client.clone(), &env.namespace);
    let op = Op::namespaced(Verb::Watch, Resource::AccessReviews, &env.namespace, Some(name));
    let waited = wait::watch_one(
        api,
        name,
        Some(timeout),
        |r: &AccessReview| Ok(r.status.as_ref().is_some_and(|s| s.accepted.is_some())),
        None::<wait::NoNudge<AccessReview>>,
        env.fail(op),
    )
    .await?;
    match waited {
        wait::Waited::Done(r) => Ok(r.status),
        wait::Waited::TimedOut(_) => Ok(None),
        wait::Waited::Gone => Err(CliError::Deleted {
            kind: "AccessReview",
            name: name.to_string(),
            namespace: env.namespace.clone(),
        }),
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
    let wait_for = parse_timeout("timeout", timeout)?;
    let outcome = review(env, name, decision, comment, wait_for).await?;
    match env.output {
        Output::Table => out.write_all(render::review_outcome(&outcome).as_bytes())?,
        fmt => emit(fmt, &outcome, out)?,
    }
    if outcome.verdict.is_none() {
        return Err(CliError::TimedOut(format!(
            "no verdict on accessreview/{} within {timeout}: {OPERATOR_CHECK}; the review is recorded, see `{}` later",
            outcome.review,
            shell::join(&["kubectl", "gatehouse", "status", name, "-n", &env.namespace])
        )));
    }
    Ok(outcome.exit_code())
}
