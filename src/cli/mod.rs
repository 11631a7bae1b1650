//! `kubectl gatehouse`: the kubectl plugin for requesters and reviewers.
//!
//! The binary (`src/bin/kubectl-gatehouse.rs`) only parses arguments, builds a
//! client from the kubeconfig and resolves who the user is; everything else lives
//! here so it can be tested against a fake API server. Identity is an argument of
//! every command (resolved once with [`whoami`]) because the fake API server does not
//! answer SelfSubjectReviews.
//!
//! Exit codes (see [`exit`]): 0 ok, 1 error, 2 usage, 3 a waited-for request ended
//! without access, 4 a review was not accepted, 5 no outcome before the timeout.

pub mod render;

use std::{collections::BTreeMap, io::Write, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use k8s_openapi::api::{
    authentication::v1::{SelfSubjectReview, SelfSubjectReviewStatus},
    core::v1::Namespace,
};
use kube::{
    api::{Api, ListParams, PostParams},
    Client, ResourceExt,
};
use serde::Serialize;
use thiserror::Error;

use crate::api::{
    AccessPolicy, AccessReview, AccessReviewSpec, AccessReviewStatus, ApprovalRequest, ApprovalRequestSpec,
    Decision, EnvVar, Identity, JobSpec, Phase, RequestRef, RequestType, RoleKind, RoleRef, Scope, Subject,
    SubjectKind,
};
use crate::decide::reason::DenialReason;

/// Exit codes scripts can rely on.
pub mod exit {
    /// The command did what was asked.
    pub const OK: i32 = 0;
    /// An error: the API call failed, an object was missing, no policy fits.
    pub const ERROR: i32 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// `request --wait`: the request ended without access (Rejected, Denied, TimedOut, ...).
    pub const NOT_GRANTED: i32 = 3;
    /// A review was not accepted by the operator (not eligible, self-approval, ...).
    pub const NOT_ACCEPTED: i32 = 4;
    /// No verdict or outcome arrived before the timeout.
    pub const TIMEOUT: i32 = 5;
}

/// Errors of the plugin, each saying what to do about it.
#[derive(Debug, Error)]
pub enum CliError {
    /// A Kubernetes API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What the plugin was doing.
        action: String,
        /// The API error.
        // Boxed: kube::Error is large and every Result of the plugin carries it.
        #[source]
        source: Box<kube::Error>,
    },
    /// The API server did not say who the user is.
    #[error("the API server did not return a user for SelfSubjectReview; check your kubeconfig credentials (`kubectl auth whoami`)")]
    NoIdentity,
    /// A request has no uid to pin a review to.
    #[error("ApprovalRequest {0} has no metadata.uid; is it stored by a real API server?")]
    NoUid(String),
    /// No AccessPolicy would accept the request.
    #[error("{0}")]
    NoPolicy(String),
    /// The user gave a value the plugin cannot use.
    #[error("{0}")]
    Invalid(String),
    /// Output could not be written or encoded.
    #[error("writing output: {0}")]
    Output(String),
}

impl CliError {
    fn kube(action: impl Into<String>) -> impl FnOnce(kube::Error) -> CliError {
        let action = action.into();
        move |source| CliError::Kube {
            action,
            source: Box::new(source),
        }
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> Self {
        CliError::Output(e.to_string())
    }
}

/// `kubectl gatehouse`: request, review and follow just-in-time access.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "kubectl-gatehouse",
    bin_name = "kubectl gatehouse",
    version,
    about = "Request, review and follow just-in-time RBAC access (Gatehouse)"
)]
pub struct Cli {
    /// Namespace of the requests (default: the kubeconfig context's namespace).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Human-readable table.
    #[default]
    Table,
    /// JSON: the objects, or a structured summary.
    Json,
    /// YAML: same content as JSON.
    Yaml,
}

/// The subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask for temporary access to a role (creates an ApprovalRequest).
    Request(RequestArgs),
    /// Approve a request (creates an AccessReview).
    Approve(ReviewArgs),
    /// Reject a request.
    Reject(ReviewArgs),
    /// End an active grant early.
    Revoke(ReviewArgs),
    /// Comment on a request without deciding.
    Comment(ReviewArgs),
    /// Withdraw your own request.
    Cancel(CancelArgs),
    /// Requests you can review now.
    Pending(ListArgs),
    /// Your own requests.
    List(ListArgs),
    /// Phase, stages, approvals, time left and decision history of a request.
    Status {
        /// Name of the ApprovalRequest.
        name: String,
    },
}

/// Arguments of `request`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct RequestArgs {
    /// Name of the role.
    pub role: String,
    /// Kind of the role.
    #[arg(long, value_enum, default_value_t = KindArg::ClusterRole)]
    pub kind: KindArg,
    /// Grant cluster-wide (a ClusterRoleBinding; ClusterRole only).
    #[arg(long)]
    pub cluster: bool,
    /// How long access should last (Go duration: 30m, 1h30m); the policy caps it.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Why you need access.
    #[arg(long)]
    pub reason: Option<String>,
    /// AccessPolicy to request under (default: the one that matches).
    #[arg(long)]
    pub policy: Option<String>,
    /// Grant the access to someone else, if the policy lists them in `grantees`:
    /// `user:NAME`, `group:NAME` or `serviceaccount:[NAMESPACE/]NAME` (default: you).
    #[arg(long, value_name = "KIND:NAME")]
    pub subject: Option<String>,
    /// Name of the ApprovalRequest (default: USER-ROLE-xxxxx).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait until access is granted or the request ends.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (Go duration; default: wait forever).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// A OneTime request: run this image once with the role, instead of access for
    /// you. The command follows `--`: `--run IMAGE -- COMMAND ARG...`.
    #[arg(long, value_name = "IMAGE")]
    pub run: Option<String>,
    /// With --run: an environment variable of the job, NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", requires = "run")]
    pub env: Vec<String>,
    /// With --run: the job's command and arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Kind of role, as typed on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    /// A ClusterRole.
    #[value(name = "ClusterRole", alias = "clusterrole")]
    ClusterRole,
    /// A Role in the request's namespace.
    #[value(name = "Role", alias = "role")]
    Role,
}

/// Arguments of `approve`, `reject`, `revoke` and `comment`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ReviewArgs {
    /// Name of the ApprovalRequest.
    pub name: String,
    /// Comment recorded with the review (required for reject/revoke by some policies).
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    /// How long to wait for the operator's verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `cancel`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CancelArgs {
    /// Name of the ApprovalRequest.
    pub name: String,
    /// How long to wait for the operator's verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `pending` and `list`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ListArgs {
    /// Look in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}

/// Everything a command needs besides its arguments.
#[derive(Clone)]
pub struct Env {
    /// Client of the user's kubeconfig (or a fake one in tests).
    pub client: Client,
    /// The user, as the API server authenticates them.
    pub me: Identity,
    /// Namespace to work in.
    pub namespace: String,
    /// Output format.
    pub output: Output,
    /// How often to poll while waiting; one second in the binary, shorter in tests.
    pub poll: StdDuration,
    /// The clock, for "time left".
    pub now: fn() -> DateTime<Utc>,
}

/// Asks the API server who the kubeconfig's credentials belong to (`kubectl auth whoami`).
pub async fn whoami(client: &Client) -> Result<Identity, CliError> {
    let api: Api<SelfSubjectReview> = Api::all(client.clone());
    let created = api
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(CliError::kube(
            "asking the API server who you are (SelfSubjectReview)",
        ))?;
    identity_from_review(created.status)
}

/// The identity in a SelfSubjectReview's status. All groups are kept: the admission
/// policy accepts any subset of the authenticated ones.
pub fn identity_from_review(status: Option<SelfSubjectReviewStatus>) -> Result<Identity, CliError> {
    let info = status.and_then(|s| s.user_info).ok_or(CliError::NoIdentity)?;
    let username = info
        .username
        .filter(|u| !u.is_empty())
        .ok_or(CliError::NoIdentity)?;
    Ok(Identity {
        username,
        groups: info.groups.unwrap_or_default(),
    })
}

/// Five random lowercase letters and digits, like `generateName` uses. The std
/// hasher's per-process random keys are random enough for a name suffix.
pub fn random_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128);
    let mut n = h.finish();
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    (0..5)
        .map(|_| {
            let c = ALPHABET[(n % ALPHABET.len() as u64) as usize] as char;
            n /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// Turns any text into something usable inside an object name: lowercase
/// alphanumerics and dashes ("alice@example.com" -> "alice-example-com").
pub fn name_part(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars().flat_map(char::to_lowercase) {
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    out.trim_matches('-').to_string()
}

/// The generated request name `<user>-<role>-<suffix>`, kept within the 253 characters
/// of an object name.
pub fn request_name(user: &str, role: &str, suffix: &str) -> String {
    let mut head = [name_part(user), name_part(role)]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("-");
    head.truncate(240);
    let head = head.trim_end_matches('-');
    if head.is_empty() {
        format!("request-{suffix}")
    } else {
        format!("{head}-{suffix}")
    }
}

/// Builds the ApprovalRequest of `request`. Pure, so the object is unit-tested.
pub fn build_request(
    args: &RequestArgs,
    me: &Identity,
    namespace: &str,
    suffix: &str,
) -> Result<ApprovalRequest, CliError> {
    if args.cluster && args.kind == KindArg::Role {
        return Err(CliError::Invalid(
            "--cluster needs a ClusterRole: a Role exists only in its namespace (drop --kind Role or --cluster)"
                .into(),
        ));
    }
    for d in args.duration.iter() {
        crate::decide::duration::parse(d).map_err(|e| CliError::Invalid(format!("--for: {e}")))?;
    }
    let subject = args.subject.as_deref().map(parse_subject).transpose()?;
    let job = one_time_job(args)?;
    if job.is_some() && subject.is_some() {
        return Err(CliError::Invalid(
            "--run and --subject do not go together: a OneTime job runs as its own ServiceAccount".into(),
        ));
    }
    let name = match &args.name {
        Some(n) => n.clone(),
        None => request_name(&me.username, &args.role, suffix),
    };
    let mut req = ApprovalRequest::new(
        &name,
        ApprovalRequestSpec {
            requester: me.clone(),
            role: RoleRef {
                kind: match args.kind {
                    KindArg::ClusterRole => RoleKind::ClusterRole,
                    KindArg::Role => RoleKind::Role,
                },
                name: args.role.clone(),
            },
            scope: if args.cluster {
                Scope::Cluster
            } else {
                Scope::Namespace
            },
            duration: args.duration.clone(),
            reason: args.reason.clone(),
            policy: args.policy.clone(),
            subject,
            type_: if job.is_some() {
                RequestType::OneTime
            } else {
                RequestType::Jit
            },
            job,
            ..Default::default()
        },
    );
    req.metadata.namespace = Some(namespace.to_string());
    Ok(req)
}

/// The job of `--run IMAGE [--env N=V] -- COMMAND...`, if any.
fn one_time_job(args: &RequestArgs) -> Result<Option<JobSpec>, CliError> {
    let Some(image) = &args.run else {
        if !args.command.is_empty() {
            return Err(CliError::Invalid(format!(
                "a command ({}) needs --run IMAGE: it is the job of a OneTime request",
                args.command.join(" ")
            )));
        }
        return Ok(None);
    };
    if image.trim().is_empty() {
        return Err(CliError::Invalid("--run needs an image".into()));
    }
    let env = args
        .env
        .iter()
        .map(|e| match e.split_once('=') {
            Some((name, value)) if !name.is_empty() => Ok(EnvVar {
                name: name.to_string(),
                value: value.to_string(),
            }),
            _ => Err(CliError::Invalid(format!("--env {e:?}: use NAME=VALUE"))),
        })
        .collect::<Result<Vec<_>, _>>()?;
    // All of it as the command (the image's entrypoint is replaced): reviewers
    // see exactly what runs.
    Ok(Some(JobSpec {
        image: image.clone(),
        command: args.command.clone(),
        args: Vec::new(),
        env,
    }))
}

/// Parses `--subject`: `user:NAME`, `group:NAME` or `serviceaccount:[NAMESPACE/]NAME`
/// (kinds are case-insensitive; `sa` is short for `serviceaccount`).
pub fn parse_subject(s: &str) -> Result<Subject, CliError> {
    let invalid = |why: &str| {
        CliError::Invalid(format!(
            "--subject {s:?}: {why}; use user:NAME, group:NAME or serviceaccount:[NAMESPACE/]NAME"
        ))
    };
    let (kind, name) = s.split_once(':').ok_or_else(|| invalid("no kind"))?;
    if name.trim().is_empty() {
        return Err(invalid("no name"));
    }
    let subject = |kind, name: &str, namespace: Option<&str>| Subject {
        kind,
        name: name.to_string(),
        namespace: namespace.map(str::to_string),
    };
    match kind.to_ascii_lowercase().as_str() {
        "user" => Ok(subject(SubjectKind::User, name, None)),
        "group" => Ok(subject(SubjectKind::Group, name, None)),
        "serviceaccount" | "sa" => match name.split_once('/') {
            Some((ns, n)) if ns.is_empty() || n.is_empty() || n.contains('/') => {
                Err(invalid("a ServiceAccount is NAMESPACE/NAME or NAME"))
            }
            Some((ns, n)) => Ok(subject(SubjectKind::ServiceAccount, n, Some(ns))),
            None => Ok(subject(SubjectKind::ServiceAccount, name, None)),
        },
        other => Err(invalid(&format!("unknown kind {other:?}"))),
    }
}

/// Builds an AccessReview of `request`, pinned to its uid, signed by `me`.
pub fn build_review(
    request: &ApprovalRequest,
    decision: Decision,
    me: &Identity,
    comment: Option<String>,
    suffix: &str,
) -> Result<AccessReview, CliError> {
    let req_name = request.name_any();
    let uid = request.uid().ok_or_else(|| CliError::NoUid(req_name.clone()))?;
    let mut head = format!("{req_name}-{}", decision.to_string().to_lowercase());
    head.truncate(246);
    let mut review = AccessReview::new(
        &format!("{}-{suffix}", head.trim_end_matches(['-', '.'])),
        AccessReviewSpec {
            request: Some(RequestRef { name: req_name, uid }),
            decision,
            reviewer: me.clone(),
            comment,
            ..Default::default()
        },
    );
    review.metadata.namespace = request.namespace();
    Ok(review)
}

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

/// Checks the request against the policies the user can read, as the operator would.
/// `Ok` when one matches, or when the answer depends on namespace labels the user cannot
/// read; the error message names the policies that grant the role.
pub fn precheck_policy(
    req: &ApprovalRequest,
    policies: &[AccessPolicy],
    ns_labels: Option<&BTreeMap<String, String>>,
) -> Result<(), CliError> {
    let admitted = crate::decide::admit::select(req, policies, ns_labels)
        .and_then(|p| crate::decide::admit::admit(req, p));
    match admitted {
        Ok(_) => Ok(()),
        // A selector-based policy may match labels we could not read: let the operator decide.
        Err(d)
            if d.reason == DenialReason::NoMatchingPolicy
                && ns_labels.is_none()
                && policies.iter().any(|p| p.spec.namespaces.selector.is_some()) =>
        {
            Ok(())
        }
        Err(d) => Err(CliError::NoPolicy(format!(
            "{} ({}); ask an admin for access, or pick a policy with --policy",
            d.message,
            d.reason.as_str()
        ))),
    }
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

/// Runs a parsed command and writes its output; returns the exit code.
pub async fn run(env: &Env, command: &Command, out: &mut dyn Write) -> Result<i32, CliError> {
    match command {
        Command::Request(args) => Ok(request(env, args, out).await?.1),
        Command::Approve(a) => {
            review_cmd(
                env,
                &a.name,
                Decision::Approve,
                a.comment.clone(),
                &a.timeout,
                out,
            )
            .await
        }
        Command::Reject(a) => {
            review_cmd(env, &a.name, Decision::Reject, a.comment.clone(), &a.timeout, out).await
        }
        Command::Revoke(a) => {
            review_cmd(env, &a.name, Decision::Revoke, a.comment.clone(), &a.timeout, out).await
        }
        Command::Comment(a) => {
            review_cmd(
                env,
                &a.name,
                Decision::Comment,
                a.comment.clone(),
                &a.timeout,
                out,
            )
            .await
        }
        Command::Cancel(a) => review_cmd(env, &a.name, Decision::Cancel, None, &a.timeout, out).await,
        Command::Pending(a) => {
            let reqs = list_requests(env, a.all_namespaces).await?;
            let mine: Vec<_> = reqs.into_iter().filter(|r| can_review(r, &env.me)).collect();
            if mine.is_empty() && env.output == Output::Table {
                writeln!(out, "No requests waiting for your review.")?;
                return Ok(exit::OK);
            }
            emit_list(env, &mine, a.all_namespaces, out)?;
            Ok(exit::OK)
        }
        Command::List(a) => {
            let reqs = list_requests(env, a.all_namespaces).await?;
            let mine: Vec<_> = reqs.into_iter().filter(|r| is_mine(r, &env.me)).collect();
            if mine.is_empty() && env.output == Output::Table {
                writeln!(
                    out,
                    "You have no requests here; create one with `kubectl gatehouse request ROLE`."
                )?;
                return Ok(exit::OK);
            }
            emit_list(env, &mine, a.all_namespaces, out)?;
            Ok(exit::OK)
        }
        Command::Status { name } => {
            let req = get_request(env, name).await?;
            let now = (env.now)();
            match env.output {
                Output::Table => out.write_all(render::status(&req, now).as_bytes())?,
                fmt => emit(fmt, &render::summary(&req, now), out)?,
            }
            Ok(exit::OK)
        }
    }
}

fn requests_api(env: &Env) -> Api<ApprovalRequest> {
    Api::namespaced(env.client.clone(), &env.namespace)
}

async fn get_request(env: &Env, name: &str) -> Result<ApprovalRequest, CliError> {
    requests_api(env).get(name).await.map_err(CliError::kube(format!(
        "reading ApprovalRequest {name} in namespace {} (see `kubectl gatehouse list` or pass -n)",
        env.namespace
    )))
}

async fn list_requests(env: &Env, all: bool) -> Result<Vec<ApprovalRequest>, CliError> {
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

fn emit_list(env: &Env, reqs: &[ApprovalRequest], all: bool, out: &mut dyn Write) -> Result<(), CliError> {
    match env.output {
        Output::Table => out.write_all(render::request_table(reqs, all, (env.now)()).as_bytes())?,
        fmt => emit(fmt, &reqs, out)?,
    }
    Ok(())
}

/// Writes a value as JSON or YAML.
pub fn emit<T: Serialize>(fmt: Output, value: &T, out: &mut dyn Write) -> Result<(), CliError> {
    let text = match fmt {
        Output::Yaml => serde_saphyr::to_string(value).map_err(|e| CliError::Output(e.to_string()))?,
        _ => {
            let mut s = serde_json::to_string_pretty(value).map_err(|e| CliError::Output(e.to_string()))?;
            s.push('\n');
            s
        }
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

fn parse_timeout(flag: &str, value: &str) -> Result<StdDuration, CliError> {
    crate::decide::duration::parse(value)
        .map_err(|e| CliError::Invalid(format!("--{flag}: {e}")))?
        .to_std()
        .map_err(|e| CliError::Invalid(format!("--{flag}: {e}")))
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

async fn review_cmd(
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
