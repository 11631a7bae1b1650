//! `kubectl gatehouse`: command parsing, rendering, and every command against an
//! in-process fake API server (kube-fake-client). Identity is passed in, as the
//! binary does after its SelfSubjectReview, because the fake does not answer those.
//! The operator is not running: tests write its verdicts and phases themselves.

use std::time::Duration as StdDuration;

use chrono::{DateTime, Utc};
use clap::Parser;
use gatehouse::{
    api::{
        AccessPolicy, AccessReview, ApprovalRequest, Decision, Identity, Phase, RoleKind, Scope, SubjectKind,
    },
    cli::{self, exit, render, Cli, CliError, Command, Env, KindArg, Output, RequestArgs},
};
use kube::{
    api::{Api, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use serde_json::json;

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
    let client = fake_api(vec![], Default::default()).await;
    create_policy(&client, &team_view()).await;
    client
}

fn env(client: &Client, me: Identity, output: Output) -> Env {
    Env {
        client: client.clone(),
        me,
        namespace: "team".into(),
        output,
        poll: StdDuration::from_millis(20),
        now,
    }
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

// ---------- parsing ----------

#[test]
fn parses_request_with_every_flag() {
    let cli = Cli::try_parse_from([
        "kubectl-gatehouse",
        "request",
        "edit",
        "--kind",
        "Role",
        "-n",
        "team",
        "--for",
        "2h",
        "--reason",
        "fix prod",
        "--policy",
        "p1",
        "--name",
        "mine",
        "--wait",
    ])
    .unwrap();
    assert_eq!(cli.namespace.as_deref(), Some("team"));
    assert_eq!(cli.output, Output::Table);
    let Command::Request(a) = cli.command else {
        panic!("not a request")
    };
    assert_eq!(a.role, "edit");
    assert_eq!(a.kind, KindArg::Role);
    assert_eq!(a.duration.as_deref(), Some("2h"));
    assert_eq!(a.reason.as_deref(), Some("fix prod"));
    assert_eq!(a.policy.as_deref(), Some("p1"));
    assert_eq!(a.name.as_deref(), Some("mine"));
    assert!(a.wait && !a.cluster);
}

#[test]
fn parses_review_list_and_output_flags() {
    let cli = Cli::try_parse_from([
        "kubectl-gatehouse",
        "approve",
        "r1",
        "--comment",
        "ok",
        "-o",
        "json",
    ])
    .unwrap();
    assert_eq!(cli.output, Output::Json);
    let Command::Approve(a) = cli.command else {
        panic!("not approve")
    };
    assert_eq!(
        (a.name.as_str(), a.comment.as_deref(), a.timeout.as_str()),
        ("r1", Some("ok"), "10s")
    );

    let cli = Cli::try_parse_from(["kubectl-gatehouse", "pending", "-A", "-o", "yaml"]).unwrap();
    assert_eq!(cli.output, Output::Yaml);
    assert!(matches!(cli.command, Command::Pending(ref l) if l.all_namespaces));

    let cli = Cli::try_parse_from(["kubectl-gatehouse", "cancel", "r1", "--timeout", "3s"]).unwrap();
    assert!(matches!(cli.command, Command::Cancel(ref c) if c.timeout == "3s"));

    let cli = Cli::try_parse_from(["kubectl-gatehouse", "status", "r1"]).unwrap();
    assert_eq!(cli.command, Command::Status { name: "r1".into() });
}

#[test]
fn rejects_bad_usage_with_exit_code_2() {
    for argv in [
        vec!["kubectl-gatehouse", "list", "-o", "xml"],
        vec!["kubectl-gatehouse", "request"],
        vec!["kubectl-gatehouse", "request", "view", "--kind", "Secret"],
        vec!["kubectl-gatehouse", "approve"],
        vec!["kubectl-gatehouse", "frobnicate"],
    ] {
        let err = Cli::try_parse_from(&argv).unwrap_err();
        assert_eq!(err.exit_code(), exit::USAGE, "{argv:?}");
    }
}

// ---------- pure builders ----------

#[test]
fn generated_names_are_valid_object_names() {
    assert_eq!(cli::name_part("Alice@Example.com"), "alice-example-com");
    assert_eq!(
        cli::request_name("alice@example.com", "system:view", "x2b4c"),
        "alice-example-com-system-view-x2b4c"
    );
    assert_eq!(cli::request_name("@@", "::", "x2b4c"), "request-x2b4c");
    let long = "a".repeat(400);
    assert!(cli::request_name(&long, "view", "x2b4c").len() <= 253);
    let s = cli::random_suffix();
    assert_eq!(s.len(), 5);
    assert!(s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()));
}

fn request_args(role: &str) -> RequestArgs {
    RequestArgs {
        role: role.into(),
        kind: KindArg::ClusterRole,
        cluster: false,
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

#[test]
fn run_makes_a_one_time_request_with_the_exact_job() {
    let cli = Cli::try_parse_from([
        "kubectl-gatehouse",
        "request",
        "edit",
        "--reason",
        "migration 42",
        "--run",
        "ghcr.io/acme/migrate:1.4",
        "--env",
        "DRY_RUN=false",
        "--env",
        "NOTE=a=b",
        "--",
        "migrate",
        "up",
        "--to",
        "42",
    ])
    .unwrap();
    let Command::Request(args) = cli.command else {
        panic!("not a request")
    };
    let r = cli::build_request(&args, &dana(), "team", "abcde").unwrap();
    assert_eq!(r.spec.type_, gatehouse::api::RequestType::OneTime);
    let job = r.spec.job.unwrap();
    assert_eq!(job.image, "ghcr.io/acme/migrate:1.4");
    assert_eq!(job.command, ["migrate", "up", "--to", "42"]);
    let env: Vec<(&str, &str)> = job
        .env
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_str()))
        .collect();
    assert_eq!(env, [("DRY_RUN", "false"), ("NOTE", "a=b")]);
    assert!(r.spec.subject.is_none());

    // Without --run it stays a JIT request.
    let r = cli::build_request(&request_args("view"), &dana(), "team", "abcde").unwrap();
    assert_eq!(r.spec.type_, gatehouse::api::RequestType::Jit);
    assert!(r.spec.job.is_none());

    let mut a = request_args("edit");
    a.command = vec!["migrate".into()];
    let err = cli::build_request(&a, &dana(), "team", "abcde")
        .unwrap_err()
        .to_string();
    assert!(err.contains("needs --run IMAGE"), "{err}");
    let mut a = request_args("edit");
    a.run = Some("img".into());
    a.subject = Some("group:oncall".into());
    let err = cli::build_request(&a, &dana(), "team", "abcde")
        .unwrap_err()
        .to_string();
    assert!(err.contains("--run and --subject"), "{err}");
    let mut a = request_args("edit");
    a.run = Some("img".into());
    a.env = vec!["NOVALUE".into()];
    let err = cli::build_request(&a, &dana(), "team", "abcde")
        .unwrap_err()
        .to_string();
    assert!(err.contains("use NAME=VALUE"), "{err}");
    assert!(
        Cli::try_parse_from(["kubectl-gatehouse", "request", "edit", "--env", "A=1"]).is_err(),
        "--env needs --run"
    );
}

#[test]
fn subject_flag_names_a_user_group_or_service_account() {
    let cases = [
        ("user:erin", SubjectKind::User, "erin", None),
        ("Group:oncall", SubjectKind::Group, "oncall", None),
        (
            "serviceaccount:deployer",
            SubjectKind::ServiceAccount,
            "deployer",
            None,
        ),
        ("sa:ci/runner", SubjectKind::ServiceAccount, "runner", Some("ci")),
        // Group names may contain colons.
        ("group:system:masters", SubjectKind::Group, "system:masters", None),
    ];
    for (flag, kind, name, namespace) in cases {
        let s = cli::parse_subject(flag).unwrap();
        assert_eq!(
            (s.kind, s.name.as_str(), s.namespace.as_deref()),
            (kind, name, namespace),
            "{flag}"
        );
    }
    for bad in ["erin", "robot:r2", "user:", "sa:/runner", "sa:ci/", "sa:a/b/c"] {
        let err = cli::parse_subject(bad).unwrap_err().to_string();
        assert!(
            err.contains("use user:NAME, group:NAME or serviceaccount:[NAMESPACE/]NAME"),
            "{bad}: {err}"
        );
    }
    let cli = Cli::try_parse_from([
        "kubectl-gatehouse",
        "request",
        "view",
        "--subject",
        "group:oncall",
    ])
    .unwrap();
    let Command::Request(args) = cli.command else {
        panic!("not a request")
    };
    let r = cli::build_request(&args, &dana(), "team", "abcde").unwrap();
    let subject = r.spec.subject.unwrap();
    assert_eq!(
        (subject.kind, subject.name.as_str()),
        (SubjectKind::Group, "oncall")
    );
    assert_eq!(r.spec.requester, dana(), "the requester stays the person asking");
}

#[test]
fn build_request_fills_requester_role_and_scope() {
    let r = cli::build_request(&request_args("view"), &dana(), "team", "abcde").unwrap();
    assert_eq!(r.name_any(), "dana-view-abcde");
    assert_eq!(r.namespace().as_deref(), Some("team"));
    assert_eq!(r.spec.requester, dana());
    assert_eq!(
        (r.spec.role.kind, r.spec.role.name.as_str()),
        (RoleKind::ClusterRole, "view")
    );
    assert_eq!(r.spec.scope, Scope::Namespace);

    let mut a = request_args("view");
    a.cluster = true;
    a.kind = KindArg::Role;
    let err = cli::build_request(&a, &dana(), "team", "abcde").unwrap_err();
    assert!(err.to_string().contains("--cluster needs a ClusterRole"), "{err}");

    let mut a = request_args("view");
    a.duration = Some("two hours".into());
    let err = cli::build_request(&a, &dana(), "team", "abcde").unwrap_err();
    assert!(err.to_string().starts_with("--for:"), "{err}");
}

#[test]
fn identity_comes_from_the_self_subject_review_status() {
    use k8s_openapi::api::authentication::v1::{SelfSubjectReviewStatus, UserInfo};
    let id = cli::identity_from_review(Some(SelfSubjectReviewStatus {
        user_info: Some(UserInfo {
            username: Some("dana".into()),
            groups: Some(vec!["dev".into(), "system:authenticated".into()]),
            ..Default::default()
        }),
    }))
    .unwrap();
    assert_eq!(id, dana());
    assert!(matches!(
        cli::identity_from_review(None),
        Err(CliError::NoIdentity)
    ));
}

#[test]
fn wait_outcome_maps_phases_to_exit_codes() {
    assert_eq!(cli::wait_outcome(Phase::Active), Some(exit::OK));
    assert_eq!(cli::wait_outcome(Phase::Pending), None);
    assert_eq!(cli::wait_outcome(Phase::Approved), None);
    for p in [
        Phase::Rejected,
        Phase::Denied,
        Phase::TimedOut,
        Phase::Canceled,
        Phase::Expired,
        Phase::Failed,
    ] {
        assert_eq!(cli::wait_outcome(p), Some(exit::NOT_GRANTED), "{p}");
    }
}

// ---------- rendering ----------

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

#[test]
fn status_shows_a_one_time_requests_exact_job_and_where_its_logs_are() {
    let req: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "ApprovalRequest",
        "metadata": {"name": "migrate", "namespace": "team", "uid": "u1",
                     "creationTimestamp": "2026-11-23T10:00:00Z"},
        "spec": {"requester": {"username": "dana", "groups": ["dev"]},
                 "role": {"kind": "ClusterRole", "name": "edit"}, "type": "OneTime",
                 "job": {"image": "ghcr.io/acme/migrate:1.4", "command": ["migrate"], "args": ["up", "--to", "42"],
                         "env": [{"name": "DRY_RUN", "value": "false"}]}},
        "status": {"phase": "Processing",
                   "job": {"name": "gatehouse-migrate-1a2b3c4d", "serviceAccount": "gatehouse-migrate-1a2b3c4d",
                           "uid": "j1", "state": "Running", "deadline": "2026-11-23T11:05:00Z",
                           "logs": "kubectl logs -n team job/gatehouse-migrate-1a2b3c4d"}}
    }))
    .unwrap();
    let out = render::status(&req, now());
    assert!(out.contains("Job image:  ghcr.io/acme/migrate:1.4"), "{out}");
    assert!(
        out.contains(r#"Job runs:   ["migrate", "up", "--to", "42"]"#),
        "{out}"
    );
    assert!(out.contains(r#"Job env:    DRY_RUN="false""#), "{out}");
    assert!(
        out.contains("gatehouse-migrate-1a2b3c4d (Running, stopped at 2026-11-23T11:05:00Z"),
        "{out}"
    );
    assert!(
        out.contains("Job logs:   kubectl logs -n team job/gatehouse-migrate-1a2b3c4d"),
        "{out}"
    );
}

#[test]
fn status_renders_stages_approvers_time_left_and_history() {
    let out = render::status(&rich_request(), now());
    assert!(out.contains("Phase:      Active"), "{out}");
    assert!(out.contains("Approvals:  2/2"), "{out}");
    assert!(out.contains("2026-11-23T12:10:00Z (1h40m left)"), "{out}");
    assert!(out.contains("team-lead") && out.contains("security"), "{out}");
    assert!(out.contains("lee") && out.contains("sam"), "{out}");
    assert!(out.contains("SelfApproval"), "{out}");
    // History is in time order, whatever order the status holds it in.
    let (r0, r1, r2) = (
        out.find("SelfApproval").unwrap(),
        out.find("10:05:00Z   lee").unwrap(),
        out.find("10:10:00Z   sam").unwrap(),
    );
    assert!(r0 < r1 && r1 < r2, "{out}");

    let s = render::summary(&rich_request(), now());
    assert_eq!(s.time_left.as_deref(), Some("1h40m"));
    assert_eq!(s.decisions.first().map(|d| d.review.as_str()), Some("r0"));
    let later: DateTime<Utc> = "2026-11-23T13:00:00Z".parse().unwrap();
    assert_eq!(
        render::time_left(&rich_request(), later).as_deref(),
        Some("expired")
    );
    // Revoked access has no time left, whatever its original expiry said.
    let mut revoked = rich_request();
    if let Some(st) = revoked.status.as_mut() {
        st.phase = gatehouse::api::Phase::Revoked;
    }
    assert_eq!(render::time_left(&revoked, now()), None);
}

#[test]
fn table_aligns_columns_and_durations_are_short() {
    let t = render::table(&["A", "LONGER"], &[vec!["xxxxx".into(), "y".into()]]);
    assert_eq!(t, "A       LONGER\nxxxxx   y\n");
    assert_eq!(render::short_duration(chrono::Duration::seconds(45)), "45s");
    assert_eq!(render::short_duration(chrono::Duration::minutes(12)), "12m");
    assert_eq!(render::short_duration(chrono::Duration::minutes(200)), "3h20m");
    assert_eq!(render::short_duration(chrono::Duration::hours(52)), "2d4h");
    let list = render::request_table(&[rich_request()], true, now());
    assert!(list.starts_with("NAMESPACE   NAME"), "{list}");
    assert!(
        list.contains("ClusterRole/view") && list.contains("1h40m") && list.contains("30m"),
        "{list}"
    );
}

// ---------- commands against the fake API server ----------

#[tokio::test]
async fn request_creates_the_right_object() {
    let client = fake().await;
    let mut out = vec![];
    let (created, code) = cli::request(
        &env(&client, dana(), Output::Table),
        &request_args("view"),
        &mut out,
    )
    .await
    .unwrap();
    assert_eq!(code, exit::OK);
    let stored = Api::<ApprovalRequest>::namespaced(client.clone(), "team")
        .get(&created.name_any())
        .await
        .unwrap();
    assert!(
        stored.name_any().starts_with("dana-view-"),
        "{}",
        stored.name_any()
    );
    assert_eq!(stored.spec.requester, dana(), "all groups are kept");
    assert_eq!(stored.spec.role.to_string(), "ClusterRole/view");
    assert_eq!(stored.spec.duration.as_deref(), Some("2h"));
    assert_eq!(stored.spec.reason.as_deref(), Some("debug checkout"));
    assert_eq!(stored.spec.scope, Scope::Namespace);
    let out = text(out);
    assert!(out.contains("created in namespace team"), "{out}");
}

#[tokio::test]
async fn request_without_a_matching_policy_says_which_policies_grant_the_role() {
    let client = fake().await;
    let mut e = env(&client, dana(), Output::Table);
    e.namespace = "prod".into();
    let err = cli::request(&e, &request_args("view"), &mut vec![])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CliError::NoPolicy(_)), "{msg}");
    assert!(
        msg.contains("no AccessPolicy lets dana request ClusterRole/view in namespace prod"),
        "{msg}"
    );
    assert!(
        msg.contains("policies that grant ClusterRole/view: team-view"),
        "{msg}"
    );
    // Nothing was created.
    let left = Api::<ApprovalRequest>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test]
async fn request_for_someone_else_needs_a_policy_that_lists_them() {
    let client = fake().await;
    let e = env(&client, dana(), Output::Table);
    let mut args = request_args("view");
    args.subject = Some("group:oncall".into());
    let err = cli::request(&e, &args, &mut vec![]).await.unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CliError::NoPolicy(_)), "{msg}");
    assert!(
        msg.contains("AccessPolicy team-view does not let requests grant access to Group oncall")
            && msg.contains("(SubjectNotAllowed)"),
        "{msg}"
    );
    assert!(Api::<ApprovalRequest>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    let mut policy = team_view();
    policy.metadata.name = Some("oncall-view".into());
    policy.spec.requesters.groups = vec!["dev".into()];
    policy.spec.grantees.groups = vec!["oncall".into()];
    create_policy(&client, &policy).await;
    args.policy = Some("oncall-view".into());
    let mut out = vec![];
    let (created, code) = cli::request(&e, &args, &mut out).await.unwrap();
    assert_eq!(code, exit::OK);
    assert_eq!(
        created.spec.subject.as_ref().map(|s| (s.kind, s.name.as_str())),
        Some((SubjectKind::Group, "oncall"))
    );
    let out = text(out);
    assert!(out.contains("ClusterRole/view for Group oncall"), "{out}");
}

#[tokio::test]
async fn request_wait_follows_the_request_to_its_end() {
    for (phase, code) in [("Active", exit::OK), ("Rejected", exit::NOT_GRANTED)] {
        let client = fake().await;
        let mut args = request_args("view");
        args.name = Some("waiting".into());
        args.wait = true;
        let operator = {
            let client = client.clone();
            async move {
                tokio::time::sleep(StdDuration::from_millis(100)).await;
                Api::<ApprovalRequest>::namespaced(client, "team")
                    .patch_status(
                        "waiting",
                        &PatchParams::default(),
                        &Patch::Merge(json!({"status": {"phase": phase,
                            "expiresAt": "2026-11-23T12:30:00Z"}})),
                    )
                    .await
                    .unwrap();
            }
        };
        let e = env(&client, dana(), Output::Table);
        let mut out = vec![];
        let (res, ()) = tokio::join!(cli::request(&e, &args, &mut out), operator);
        let (req, got) = res.unwrap();
        assert_eq!(got, code, "{phase}");
        assert_eq!(req.status.map(|s| s.phase.to_string()).as_deref(), Some(phase));
        let out = text(out);
        if phase == "Active" {
            assert!(
                out.contains("Access granted: ClusterRole/view in namespace team, 2h left"),
                "{out}"
            );
        } else {
            assert!(out.contains("waiting ended Rejected"), "{out}");
        }
    }
}

#[tokio::test]
async fn request_wait_gives_up_after_its_timeout() {
    let client = fake().await;
    let mut args = request_args("view");
    args.wait = true;
    args.timeout = Some("200ms".into());
    let mut out = vec![];
    let (_, code) = cli::request(&env(&client, dana(), Output::Table), &args, &mut out)
        .await
        .unwrap();
    assert_eq!(code, exit::TIMEOUT);
    assert!(text(out).contains("stopped waiting"));
}

/// Plays the operator: writes a verdict on every review of the namespace that has none.
async fn write_verdicts(client: Client, accepted: bool, reason: &str) {
    let api: Api<AccessReview> = Api::namespaced(client, "team");
    for _ in 0..100 {
        let list = api.list(&ListParams::default()).await.unwrap();
        if let Some(r) = list.items.iter().find(|r| r.status.is_none()) {
            api.patch_status(
                &r.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"accepted": accepted, "reason": reason,
                    "message": format!("verdict {reason}")}})),
            )
            .await
            .unwrap();
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("no review appeared");
}

#[tokio::test]
async fn approve_pins_the_uid_and_reviewer_and_reports_the_verdict() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, sam(), Output::Table);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "approve", "dana-view", "--comment", "lgtm"])
        .unwrap()
        .command;
    let mut out = vec![];
    let (code, ()) = tokio::join!(
        cli::run(&e, &cmd, &mut out),
        write_verdicts(client.clone(), true, "Accepted")
    );
    assert_eq!(code.unwrap(), exit::OK);
    let reviews = Api::<AccessReview>::namespaced(client, "team")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    assert!(r.name_any().starts_with("dana-view-approve-"), "{}", r.name_any());
    let request = r.spec.request.as_ref().unwrap();
    assert_eq!(request.name, "dana-view");
    assert_eq!(request.uid, "uid-dana-view");
    assert_eq!(r.spec.reviewer, sam());
    assert_eq!(r.spec.decision, Decision::Approve);
    assert_eq!(r.spec.comment.as_deref(), Some("lgtm"));
    let out = text(out);
    assert!(out.contains("Accepted by the operator"), "{out}");
}

#[tokio::test]
async fn a_refused_review_exits_4_with_the_reason() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, dana(), Output::Json);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "approve", "dana-view"])
        .unwrap()
        .command;
    let mut out = vec![];
    let (code, ()) = tokio::join!(
        cli::run(&e, &cmd, &mut out),
        write_verdicts(client.clone(), false, "SelfApproval")
    );
    assert_eq!(code.unwrap(), exit::NOT_ACCEPTED);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["decision"], "Approve");
    assert_eq!(v["verdict"]["accepted"], false);
    assert_eq!(v["verdict"]["reason"], "SelfApproval");
}

#[tokio::test]
async fn verdict_wait_times_out_cleanly_without_an_operator() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, dana(), Output::Table);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "cancel", "dana-view", "--timeout", "200ms"])
        .unwrap()
        .command;
    let started = std::time::Instant::now();
    let mut out = vec![];
    let code = cli::run(&e, &cmd, &mut out).await.unwrap();
    assert_eq!(code, exit::TIMEOUT);
    assert!(started.elapsed() < StdDuration::from_secs(3));
    let out = text(out);
    assert!(out.contains("No verdict from the operator yet"), "{out}");
    // The review was still created, signed by the requester.
    let reviews = Api::<AccessReview>::namespaced(client, "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(reviews.items[0].spec.decision, Decision::Cancel);
    assert_eq!(reviews.items[0].spec.reviewer, dana());
}

#[tokio::test]
async fn verdict_already_written_is_reported_at_once() {
    let client = fake().await;
    let api: Api<AccessReview> = Api::namespaced(client.clone(), "team");
    let review: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "r1", "namespace": "team"},
        "spec": {"request": {"name": "x", "uid": "u"}, "decision": "Reject",
                 "reviewer": {"username": "sam"}, "comment": "no"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &review).await.unwrap();
    api.patch_status(
        "r1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"accepted": false, "reason": "NotEligible", "message": "sam is not a reviewer"}})),
    )
    .await
    .unwrap();
    let v = cli::wait_verdict(&api, "r1", StdDuration::from_secs(5), StdDuration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (v.accepted, v.reason.as_deref()),
        (Some(false), Some("NotEligible"))
    );
}

#[tokio::test]
async fn review_of_a_missing_request_says_where_it_looked() {
    let client = fake().await;
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "approve", "nope"])
        .unwrap()
        .command;
    let err = cli::run(&env(&client, sam(), Output::Table), &cmd, &mut vec![])
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("reading ApprovalRequest nope in namespace team"),
        "{err}"
    );
}

#[tokio::test]
async fn pending_shows_only_requests_i_can_review_and_not_my_own() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    seed_request(&client, "team", "sam-view", "sam", pending_for(&["sre"])).await;
    seed_request(&client, "team", "lee-view", "lee", pending_for(&["security"])).await;
    seed_request(
        &client,
        "team",
        "kim-view",
        "kim",
        json!({"phase": "Active", "eligibleReviewers": {"groups": ["sre"]}}),
    )
    .await;
    seed_request(
        &client,
        "other",
        "ann-view",
        "ann",
        json!({"phase": "Pending", "eligibleReviewers": {"users": ["sam"]}}),
    )
    .await;

    // Access for sam himself: his approval would not count, so it is not his to review.
    let for_sam = seed_request(&client, "team", "dana-for-sam", "dana", pending_for(&["sre"])).await;
    Api::<ApprovalRequest>::namespaced(client.clone(), "team")
        .patch(
            &for_sam.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": {"kind": "User", "name": "sam"}}})),
        )
        .await
        .unwrap();

    let e = env(&client, sam(), Output::Json);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending"])
        .unwrap()
        .command;
    let mut out = vec![];
    assert_eq!(cli::run(&e, &cmd, &mut out).await.unwrap(), exit::OK);
    let v: Vec<ApprovalRequest> = serde_json::from_slice(&out).unwrap();
    let names: Vec<String> = v.iter().map(|r| r.name_any()).collect();
    assert_eq!(names, ["dana-view"]);

    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending", "-A"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, sam(), Output::Table), &cmd, &mut out)
        .await
        .unwrap();
    let out = text(out);
    assert!(out.contains("dana-view") && out.contains("ann-view"), "{out}");
    assert!(
        !out.contains("sam-view") && !out.contains("lee-view") && !out.contains("kim-view"),
        "{out}"
    );
    assert!(out.starts_with("NAMESPACE"), "{out}");

    let mut out = vec![];
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending"])
        .unwrap()
        .command;
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out)
        .await
        .unwrap();
    assert_eq!(text(out), "No requests waiting for your review.\n");
}

#[tokio::test]
async fn list_shows_only_my_requests() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    seed_request(&client, "team", "sam-view", "sam", pending_for(&["sre"])).await;
    seed_request(
        &client,
        "other",
        "dana-other",
        "dana",
        json!({"phase": "Expired"}),
    )
    .await;
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "list", "-A", "-o", "yaml"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Yaml), &cmd, &mut out)
        .await
        .unwrap();
    let v: Vec<ApprovalRequest> = serde_saphyr::from_str(&text(out)).unwrap();
    let mut names: Vec<String> = v.iter().map(|r| r.name_any()).collect();
    names.sort();
    assert_eq!(names, ["dana-other", "dana-view"]);

    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "list"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out)
        .await
        .unwrap();
    let out = text(out);
    assert!(
        out.contains("dana-view") && !out.contains("dana-other") && !out.contains("sam-view"),
        "{out}"
    );
}

#[tokio::test]
async fn status_command_renders_the_stored_request() {
    let client = fake().await;
    let rich = rich_request();
    seed_request(
        &client,
        "team",
        "dana-view-abcde",
        "dana",
        serde_json::to_value(rich.status.unwrap()).unwrap(),
    )
    .await;
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "status", "dana-view-abcde"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out)
        .await
        .unwrap();
    let out = text(out);
    assert!(
        out.contains("Phase:      Active") && out.contains("1h40m left"),
        "{out}"
    );
    assert!(out.contains("team-lead") && out.contains("SelfApproval"), "{out}");

    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Json), &cmd, &mut out)
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["phase"], "Active");
    assert_eq!(v["timeLeft"], "1h40m");
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["reviewGroups"][1]["reviewedBy"], "sam");
}
