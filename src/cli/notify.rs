//! `kubectl gatehouse notify test CHANNEL`: asks the operator to send a test
//! message to a NotificationChannel and prints what the endpoint answered.
//!
//! The plugin never reads the channel's Secret (people who may test a channel
//! need not read Secrets): it sets the `gatehouse.dev/test-requested-at`
//! annotation on the channel, the operator's leader sends the message from where
//! real notifications are sent (its network, its Secret), and records the
//! endpoint's status code and timing (never its body) in `status.lastTest`,
//! which the plugin waits for.
//!
//! The patch carries that annotation and nothing else, so a user with only the
//! `test` verb (ClusterRole `gatehouse-notification-tester`) may send it: the
//! `gatehouse-notification-channels` admission policy lets exactly that change
//! through and keeps every other change to those who may `update` channels.

use std::io::Write;

use chrono::SecondsFormat;
use clap::{Args, Subcommand};
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::{
    emit, exit,
    operation::{Op, Place, Resource, Verb},
    parse_timeout, wait, CliError, Env, Output,
};
use crate::{
    api::{NotificationChannel, TestRecord},
    notify::status::TEST_ANNOTATION,
};

/// `notify` subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum NotifyCommand {
    /// Send a test message to a NotificationChannel and print the endpoint's status code and timing.
    Test(NotifyTestArgs),
}

/// Arguments of `notify test`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct NotifyTestArgs {
    /// Name of the NotificationChannel.
    pub channel: String,
    /// How long to wait for the operator to send it and record the answer (Go duration).
    #[arg(long, default_value = "30s")]
    pub timeout: String,
}

/// Runs a `notify` subcommand.
pub async fn notify(env: &Env, command: &NotifyCommand, out: &mut dyn Write) -> Result<i32, CliError> {
    match command {
        NotifyCommand::Test(args) => test(env, args, out).await,
    }
}

async fn test(env: &Env, args: &NotifyTestArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let timeout = parse_timeout("timeout", &args.timeout)?;
    let api: Api<NotificationChannel> = Api::all(env.client.clone());
    let op = |verb| Op {
        verb,
        resource: Resource::NotificationChannels,
        place: Place::Cluster,
        name: Some(args.channel.clone()),
    };
    // Any new value asks for a test; the time (to the microsecond) is new every time.
    let asked = (env.now)().to_rfc3339_opts(SecondsFormat::Micros, true);
    let patch = json!({"metadata": {"annotations": {TEST_ANNOTATION: asked}}});
    let channel = api
        .patch(&args.channel, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(env.fail(op(Verb::Patch)))?;
    let type_ = channel.spec.type_.as_str();
    let answered = |ch: &NotificationChannel| {
        ch.status
            .as_ref()
            .and_then(|s| s.last_test.clone())
            .filter(|t| t.requested == asked)
    };
    // The operator records the answer in the channel's status: watch for it.
    let waited = wait::watch_one(
        Api::<NotificationChannel>::all(env.watch_client.clone()),
        &args.channel,
        Some(timeout),
        |ch: &NotificationChannel| Ok(answered(ch).is_some()),
        None::<wait::NoNudge<NotificationChannel>>,
        env.fail(op(Verb::Watch)),
    )
    .await?;
    let record = match waited {
        wait::Waited::Done(ch) => answered(&ch),
        wait::Waited::TimedOut(_) | wait::Waited::Gone => None,
    };
    let Some(record) = record else {
        writeln!(
            out,
            "No answer from the operator within {}: is it running, and is this replica the leader? \
             ({} shows status.lastTest)",
            args.timeout,
            crate::escape::shell::join(&[
                "kubectl",
                "get",
                "notificationchannel",
                &args.channel,
                "-o",
                "yaml"
            ])
        )?;
        return Ok(exit::TIMEOUT);
    };
    let accepted = record.status_code.is_some_and(|c| (200..300).contains(&c));
    if env.output != Output::Table {
        emit(env.output, &record, out)?;
    } else {
        write_answer(out, &args.channel, type_, &record)?;
    }
    Ok(if accepted { exit::OK } else { exit::NOT_ACCEPTED })
}

fn write_answer(out: &mut dyn Write, channel: &str, type_: &str, r: &TestRecord) -> Result<(), CliError> {
    writeln!(
        out,
        "Sent a test message to NotificationChannel {channel} ({type_})."
    )?;
    match r.status_code {
        Some(code) => writeln!(
            out,
            "The endpoint answered HTTP {code}{}.",
            r.elapsed
                .as_deref()
                .map(|e| format!(" in {e}"))
                .unwrap_or_default()
        )?,
        None => writeln!(
            out,
            "The message could not be sent: {}",
            r.error.as_deref().unwrap_or("no reason recorded")
        )?,
    }
    Ok(())
}
