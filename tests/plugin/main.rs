//! `kubectl gatehouse`: command parsing, rendering, and every command against an
//! in-process fake API server (kube-fake-client, with watches added by
//! `fake_watch`). Identity is passed in, as the binary does after its
//! SelfSubjectReview, because the fake does not answer those. The operator is not
//! running: tests write its verdicts and phases themselves.
//!
//! - `parse`: command line, pure builders, rendering.
//! - `commands`: every command against the fake.
//! - `certify`: `kubectl gatehouse certify`, access certification.
//! - `flags`: kubectl's connection flags, kubeconfig rules, impersonation.
//! - `errors`: the one-line message of each common failure.
//! - `completion`: shell completion, in kubectl's plugin protocol.
//! - `krew`: the krew manifest.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use clap::Parser;
use gatehouse::{
    api::{
        AccessPolicy, AccessReview, ApprovalRequest, Decision, Identity, Phase, RoleKind, Scope, SubjectKind,
    },
    cli::{self, exit, render, Cli, CliError, Command, Env, KindArg, Output, Persona, RequestArgs},
};
use kube::{
    api::{Api, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use serde_json::json;

mod certify;
mod commands;
mod completion;
mod errors;
mod fake_watch;
mod flags;
mod krew;
mod parse;
#[path = "../support/mod.rs"]
mod support;

use support::fake::{at, create_policy, fake_api, stamp, team_policy};

fn now() -> DateTime<Utc> {
    "2026-11-23T10:30:00Z".parse().unwrap()
}

fn dana() -> Identity {
    Identity {
        username: "dana".into(),
        groups: vec!["dev".into(), "system:authenticated".into()],
    }
}

fn sam() -> Identity {
    Identity {
        username: "sam".into(),
        groups: vec!["sre".into(), "system:authenticated".into()],
    }
}

fn team_view() -> AccessPolicy {
    team_policy("team-view", "view", json!({}))
}

async fn fake() -> Client {
    let client = fake_watch::with_watch(fake_api(vec![], Default::default()).await);
    create_policy(&client, &team_view()).await;
    client
}

fn env(client: &Client, me: Identity, output: Output) -> Env {
    Env {
        client: client.clone(),
        watch_client: client.clone(),
        me,
        namespace: "team".into(),
        output,
        server: "https://fake.invalid".into(),
        persona: Persona::Requester,
        operator_grace: StdDuration::from_secs(10),
        now,
    }
}

/// Runs a command line against the fake as `env`: (exit code or error, stdout, stderr).
async fn run(env: &Env, argv: &[&str]) -> (Result<i32, CliError>, String, String) {
    let cmd = Cli::try_parse_from([&["kubectl-gatehouse"], argv].concat())
        .unwrap()
        .command;
    let (mut out, mut err) = (vec![], vec![]);
    let res = cli::run(env, &cmd, &mut out, &mut err).await;
    (res, text(out), text(err))
}

/// Stores a request with a uid (the fake assigns none) and the operator's status.
async fn seed_request(
    client: &Client,
    ns: &str,
    name: &str,
    requester: &str,
    status: serde_json::Value,
) -> ApprovalRequest {
    let api: Api<ApprovalRequest> = Api::namespaced(client.clone(), ns);
    let mut r: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "ApprovalRequest",
        "metadata": {"name": name, "namespace": ns, "uid": format!("uid-{name}")},
        "spec": {
            "requester": {"username": requester, "groups": ["dev"]},
            "role": {"kind": "ClusterRole", "name": "view"},
            "reason": "debug checkout"
        }
    }))
    .unwrap();
    r.metadata.creation_timestamp = Some(stamp(at("10:00")));
    api.create(&PostParams::default(), &r).await.unwrap();
    api.patch_status(
        name,
        &PatchParams::default(),
        &Patch::Merge(json!({ "status": status })),
    )
    .await
    .unwrap()
}

fn pending_for(groups: &[&str]) -> serde_json::Value {
    json!({"phase": "Pending", "eligibleReviewers": {"groups": groups}, "approvals": {"required": 1, "received": 0, "summary": "0/1"}})
}

fn text(buf: Vec<u8>) -> String {
    String::from_utf8(buf).unwrap()
}

fn request_args(role: &str) -> RequestArgs {
    RequestArgs {
        role: role.into(),
        kind: KindArg::ClusterRole,
        cluster_wide: false,
        duration: Some("2h".into()),
        reason: Some("debug checkout".into()),
        policy: None,
        subject: None,
        name: None,
        wait: false,
        timeout: None,
        run: None,
        env: vec![],
        command: vec![],
    }
}

fn rich_request() -> ApprovalRequest {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "ApprovalRequest",
        "metadata": {"name": "dana-view-abcde", "namespace": "team", "uid": "u1",
                     "creationTimestamp": "2026-11-23T10:00:00Z"},
        "spec": {"requester": {"username": "dana", "groups": ["dev"]},
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": "2h", "reason": "debug checkout"},
        "status": {
            "phase": "Active",
            "approvals": {"required": 2, "received": 2, "summary": "2/2"},
            "expiresAt": "2026-11-23T12:10:00Z",
            "stages": [
                {"name": "team-lead", "status": "Approved", "required": 1, "received": 1,
                 "openedAt": "2026-11-23T10:00:00Z", "approvedAt": "2026-11-23T10:05:00Z"},
                {"name": "security", "status": "Approved", "required": 1, "received": 1,
                 "openedAt": "2026-11-23T10:05:00Z", "approvedAt": "2026-11-23T10:10:00Z"}
            ],
            "reviewGroups": [
                {"group": "leads", "stage": "team-lead", "status": "Approved", "reviewedBy": "lee",
                 "reviewedAt": "2026-11-23T10:05:00Z"},
                {"group": "security", "stage": "security", "status": "Approved", "reviewedBy": "sam",
                 "reviewedAt": "2026-11-23T10:10:00Z"}
            ],
            "decisions": [
                {"review": "r2", "reviewer": "sam", "decision": "Approve", "at": "2026-11-23T10:10:00Z",
                 "accepted": true, "reason": "Counted", "message": ""},
                {"review": "r0", "reviewer": "dana", "decision": "Approve", "at": "2026-11-23T10:01:00Z",
                 "accepted": false, "reason": "SelfApproval", "message": "you cannot approve your own request"},
                {"review": "r1", "reviewer": "lee", "decision": "Approve", "at": "2026-11-23T10:05:00Z",
                 "accepted": true, "reason": "Counted", "message": ""}
            ]
        }
    }))
    .unwrap()
}
