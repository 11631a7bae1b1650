//! `kubectl gatehouse`: the kubectl plugin for requesters and reviewers.
//!
//! The binary (`src/bin/kubectl-gatehouse.rs`) only parses arguments, connects by
//! kubectl's rules ([`connect`]) and resolves who the user is; everything else lives
//! here so it can be tested against a fake API server. Identity is an argument of
//! every command (resolved once with [`whoami`]) because the fake API server does not
//! answer SelfSubjectReviews.
//!
//! Every failure is one line saying what failed and what to do ([`CliError`]), with
//! the API server's full answer behind `-v`. Waits use watches ([`wait`]).
//!
//! Exit codes (see [`exit`]): 0 ok, 1 error, 2 usage, 3 a waited-for request ended
//! without access, 4 a review was not accepted, 5 no outcome before the timeout.

mod args;
mod build;
pub mod certify;
mod certify_args;
pub mod certify_render;
pub mod certify_report;
mod classify;
mod commands;
pub mod complete;
mod connect;
mod error;
pub mod notify;
mod operation;
pub mod render;
pub mod ui;
pub mod wait;

use std::{io::Write, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use kube::Client;
use serde::Serialize;

use crate::{
    api::{Decision, Identity},
    escape::terminal,
};

pub use self::{args::*, build::*, classify::*, commands::*, connect::*, error::*, operation::*};

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

/// Everything a command needs besides its arguments.
#[derive(Clone)]
pub struct Env {
    /// Client for single API calls (bounded by `--request-timeout`), or a fake one in tests.
    pub client: Client,
    /// Client for watches, which last as long as a wait.
    pub watch_client: Client,
    /// The user, as the API server authenticates them (impersonated with `--as`).
    pub me: Identity,
    /// Namespace to work in.
    pub namespace: String,
    /// Output format.
    pub output: Output,
    /// The API server's address, for messages.
    pub server: String,
    /// Whom the running command serves, so a refusal names the role that fits.
    pub persona: Persona,
    /// `request --wait`: how long without any status before saying the operator
    /// may not be running.
    pub operator_grace: StdDuration,
    /// The clock, for "time left".
    pub now: fn() -> DateTime<Utc>,
}

impl Env {
    /// Turns the failure of `op` into the one-line error for this user and command.
    pub fn fail(&self, op: Op) -> impl FnOnce(kube::Error) -> CliError + '_ {
        move |e| self.blame().error(op, e)
    }

    fn blame(&self) -> Blame<'_> {
        Blame {
            me: Some(&self.me),
            persona: self.persona,
            server: &self.server,
        }
    }
}

/// Whom a command serves: reviewers approve, reject, comment and look at pending
/// requests; revoking is for both but mostly reviewers; the rest is for requesters.
pub fn persona(command: &Command) -> Persona {
    match command {
        Command::Approve(_)
        | Command::Reject(_)
        | Command::Revoke(_)
        | Command::Comment(_)
        | Command::Pending(_)
        | Command::Certify(_)
        | Command::Ui(_) => Persona::Reviewer,
        _ => Persona::Requester,
    }
}

/// Runs a parsed command, writing its output to `out` and warnings to `err`;
/// returns the exit code. Text for people (tables, `status`, warnings) passes
/// through [`terminal::Guard`]: names, reasons and comments come from the
/// cluster and reach no terminal with their control characters. JSON, YAML and
/// the CSV report are written as they are, for programs.
pub async fn run(
    env: &Env,
    command: &Command,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    let mut err = terminal::Guard::new(err);
    let err: &mut dyn Write = &mut err;
    let mut guarded;
    let out: &mut dyn Write = if env.output == Output::Table {
        guarded = terminal::Guard::new(out);
        &mut guarded
    } else {
        out
    };
    let env = &Env {
        persona: persona(command),
        ..env.clone()
    };
    if env.output == Output::Csv && !matches!(command, Command::Certify(_)) {
        return Err(CliError::Invalid(
            "-o csv is for `certify report`; use -o json or yaml".into(),
        ));
    }
    match command {
        Command::Certify(args) => certify::run(env, args, out, err).await,
        Command::Request(args) => Ok(request(env, args, out, err).await?.1),
        Command::Notify { command } => notify::notify(env, command, out).await,
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
        Command::Ui(a) => ui::serve(env, a, out).await,
        Command::Completion { shell } => {
            out.write_all(complete::script(*shell).as_bytes())?;
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
