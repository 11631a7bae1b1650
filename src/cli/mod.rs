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

mod args;
mod build;
pub mod certify;
pub mod certify_render;
pub mod certify_report;
mod commands;
pub mod render;

use std::{io::Write, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use kube::Client;
use serde::Serialize;
use thiserror::Error;

use crate::api::{Decision, Identity};

pub use self::{args::*, build::*, commands::*};

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

/// Runs a parsed command and writes its output; returns the exit code.
pub async fn run(env: &Env, command: &Command, out: &mut dyn Write) -> Result<i32, CliError> {
    if env.output == Output::Csv && !matches!(command, Command::Certify(_)) {
        return Err(CliError::Invalid(
            "-o csv is for `certify report`; use -o json or yaml".into(),
        ));
    }
    match command {
        Command::Certify(args) => certify::run(env, args, out).await,
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

pub(super) fn parse_timeout(flag: &str, value: &str) -> Result<StdDuration, CliError> {
    crate::decide::duration::parse(value)
        .map_err(|e| CliError::Invalid(format!("--{flag}: {e}")))?
        .to_std()
        .map_err(|e| CliError::Invalid(format!("--{flag}: {e}")))
}
