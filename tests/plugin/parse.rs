//! The command line, the pure builders and the rendering.

use super::*;

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
    assert_eq!(cli.kube.namespace.as_deref(), Some("team"));
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
    assert!(a.wait && !a.cluster_wide);
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
    a.cluster_wide = true;
    a.kind = KindArg::Role;
    let err = cli::build_request(&a, &dana(), "team", "abcde").unwrap_err();
    assert!(
        err.to_string().contains("--cluster-wide needs a ClusterRole"),
        "{err}"
    );

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
    assert!(out.contains("Job runs:   migrate up --to 42"), "{out}");
    assert!(out.contains("Job env:    DRY_RUN=false"), "{out}");
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
fn status_shows_each_job_argument_as_one_unambiguous_word() {
    // What reviewers approve is the exact argv: an argument with a space, a
    // quote or a newline must not read as two, or as another command.
    let req: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1",
        "kind": "ApprovalRequest",
        "metadata": {"name": "migrate", "namespace": "team", "uid": "u1",
                     "creationTimestamp": "2026-11-23T10:00:00Z"},
        "spec": {"requester": {"username": "dana", "groups": ["dev"]},
                 "role": {"kind": "ClusterRole", "name": "edit"}, "type": "OneTime",
                 "job": {"image": "busybox", "command": ["sh", "-c"], "args": ["echo 'a b'\nrm -rf /"],
                         "env": [{"name": "MODE", "value": "x y"}]}}
    }))
    .unwrap();
    let out = render::status(&req, now());
    assert!(
        out.contains(r"Job runs:   sh -c $'echo \x27a b\x27\x0arm -rf /'"),
        "{out}"
    );
    assert!(out.contains("Job env:    MODE='x y'"), "{out}");
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
