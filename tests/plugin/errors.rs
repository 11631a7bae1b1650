//! Each common failure is one line that says what failed and what to do, with the
//! API server's full answer behind `-v`. The API server's refusals are given by the
//! fake's front, worded as kube-apiserver words them; the binary is run for the
//! failures before any API call (kubeconfig) or of the connection itself.

use std::process::Command as Process;

use http::Method;

use super::{fake_watch::Front, *};

const REQUESTS: &str = "/apis/gatehouse.dev/v1alpha1/namespaces/team/approvalrequests";
const REVIEWS: &str = "/apis/gatehouse.dev/v1alpha1/namespaces/team/accessreviews";

/// The fake behind a front, with the team-view policy.
async fn fronted() -> (Client, Front) {
    let front = Front::default();
    let client = front.client(fake_api(vec![], Default::default()).await);
    create_policy(&client, &team_view()).await;
    (client, front)
}

fn rbac_refusal(user: &str, verb: &str, resource: &str, namespace: Option<&str>) -> String {
    format!(
        "{resource}.gatehouse.dev is forbidden: User \"{user}\" cannot {verb} resource \"{resource}\" in API group \"gatehouse.dev\"{}",
        namespace.map_or(" at the cluster scope".to_string(), |n| format!(" in the namespace \"{n}\""))
    )
}

fn one_line(err: &CliError) -> String {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "more than one line: {msg}");
    assert!(!msg.contains("Status {"), "a debug dump: {msg}");
    msg
}

#[tokio::test]
async fn a_forbidden_read_names_the_user_the_place_and_the_role_to_ask_for() {
    let (client, front) = fronted().await;
    front.refuse(
        Method::GET,
        REQUESTS,
        403,
        "Forbidden",
        &rbac_refusal("sam", "list", "approvalrequests", Some("team")),
    );
    let (res, _, _) = run(&env(&client, sam(), Output::Table), &["pending"]).await;
    let err = res.unwrap_err();
    assert_eq!(
        one_line(&err),
        "sam may not read ApprovalRequests in namespace team: ask for the gatehouse-reviewer role there \
         (kubectl create rolebinding sam-gatehouse-reviewer --clusterrole gatehouse-reviewer --user sam -n team)"
    );
    assert_eq!(err.exit_code(), exit::ERROR);
    // -v: the API server's own answer.
    let details = err.details().join("\n");
    assert!(
        details.contains("API server answer:") && details.contains("\"code\":403"),
        "{details}"
    );

    // The same refusal for a requester's command names the requester role.
    let (res, _, _) = run(&env(&client, dana(), Output::Table), &["list"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "dana may not read ApprovalRequests in namespace team: ask for the gatehouse-requester role there \
         (kubectl create rolebinding dana-gatehouse-requester --clusterrole gatehouse-requester --user dana -n team)"
    );

    // Every namespace needs a ClusterRoleBinding.
    front.refuse(
        Method::GET,
        "/apis/gatehouse.dev/v1alpha1/approvalrequests",
        403,
        "Forbidden",
        &rbac_refusal("sam", "list", "approvalrequests", None),
    );
    let (res, _, _) = run(&env(&client, sam(), Output::Table), &["pending", "-A"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "sam may not read ApprovalRequests in all namespaces: ask for the gatehouse-reviewer role cluster-wide \
         (kubectl create clusterrolebinding sam-gatehouse-reviewer --clusterrole gatehouse-reviewer --user sam)"
    );
}

#[tokio::test]
async fn a_forbidden_review_names_the_reviewer_role_and_a_service_account_as_such() {
    let (client, front) = fronted().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    front.refuse(
        Method::POST,
        REVIEWS,
        403,
        "Forbidden",
        &rbac_refusal(
            "system:serviceaccount:ci:bot",
            "create",
            "accessreviews",
            Some("team"),
        ),
    );
    let bot = Identity {
        username: "system:serviceaccount:ci:bot".into(),
        groups: vec![],
    };
    let (res, _, _) = run(&env(&client, bot, Output::Table), &["approve", "dana-view"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "system:serviceaccount:ci:bot may not create AccessReviews in namespace team: ask for the gatehouse-reviewer role there \
         (kubectl create rolebinding system-serviceaccount-ci-bot-gatehouse-reviewer --clusterrole gatehouse-reviewer --serviceaccount ci:bot -n team)"
    );
}

#[tokio::test]
async fn a_missing_request_says_where_it_looked_and_where_to_look() {
    let client = fake().await;
    let (res, _, _) = run(&env(&client, sam(), Output::Table), &["approve", "nope"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "ApprovalRequest nope not found in namespace team: check the name with `kubectl gatehouse list -n team` (yours) \
         or `kubectl gatehouse pending -A`, or pass -n NAMESPACE"
    );
}

#[tokio::test]
async fn a_missing_namespace_a_missing_crd_and_an_admission_refusal_say_what_to_fix() {
    let (client, front) = fronted().await;
    front.refuse(
        Method::POST,
        REQUESTS,
        404,
        "NotFound",
        "namespaces \"team\" not found",
    );
    let (res, _, _) = run(&env(&client, dana(), Output::Table), &["request", "view"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "namespace team does not exist: check -n or the context's namespace (kubectl get namespaces)"
    );

    let (client, front) = fronted().await;
    front.refuse(
        Method::GET,
        &format!("{REQUESTS}/dana-view"),
        404,
        "NotFound",
        "the server could not find the requested resource",
    );
    let (res, _, _) = run(&env(&client, dana(), Output::Table), &["status", "dana-view"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "the API server does not serve approvalrequests: is Gatehouse installed? (kubectl get crd approvalrequests.gatehouse.dev)"
    );

    let (client, front) = fronted().await;
    front.refuse(
        Method::POST,
        REQUESTS,
        403,
        "Forbidden",
        "approvalrequests.gatehouse.dev \"x\" is forbidden: ValidatingAdmissionPolicy 'gatehouse-requester-identity' \
         with binding 'gatehouse-requester-identity' denied request: spec.requester.username is \"dana\" but you are \
         authenticated as \"mallory\": set spec.requester.username to \"mallory\" (kubectl auth whoami)",
    );
    let (res, _, _) = run(&env(&client, dana(), Output::Table), &["request", "view"]).await;
    assert_eq!(
        one_line(&res.unwrap_err()),
        "the API server refused to create ApprovalRequests in namespace team: spec.requester.username is \"dana\" but you \
         are authenticated as \"mallory\": set spec.requester.username to \"mallory\" (kubectl auth whoami)"
    );
}

#[tokio::test]
async fn no_policy_fits_in_one_line() {
    let client = fake().await;
    let (res, _, _) = run(
        &env(&client, dana(), Output::Table),
        &["request", "edit", "--for", "2h"],
    )
    .await;
    let msg = one_line(&res.unwrap_err());
    assert!(
        msg.starts_with("no AccessPolicy lets dana request ClusterRole/edit in namespace team")
            && msg.ends_with("ask an admin for access, or pick a policy with --policy"),
        "{msg}"
    );
}

#[tokio::test]
async fn without_an_operator_a_waited_request_says_so_and_times_out() {
    let client = fake().await;
    let mut e = env(&client, dana(), Output::Table);
    e.operator_grace = StdDuration::from_millis(100);
    let (res, out, err) = run(
        &e,
        &[
            "request",
            "view",
            "--name",
            "lonely",
            "--wait",
            "--timeout",
            "400ms",
        ],
    )
    .await;
    let res = res.unwrap_err();
    assert_eq!(res.exit_code(), exit::TIMEOUT);
    assert_eq!(
        one_line(&res),
        "timed out after 400ms: lonely has no status yet; is the Gatehouse operator running? \
         (kubectl get pods -A -l app.kubernetes.io/name=gatehouse)"
    );
    // Said once while waiting, on stderr, before giving up.
    assert_eq!(
        err,
        "warning: lonely has no status after 100ms: is the Gatehouse operator running? \
         (kubectl get pods -A -l app.kubernetes.io/name=gatehouse); still waiting\n"
    );
    assert!(out.starts_with("approvalrequest/lonely created"), "{out}");
}

// ---------- the binary: connection and kubeconfig failures ----------

/// Runs `kubectl-gatehouse ARGS` with KUBECONFIG and HOME as given: (exit code, stderr).
fn plugin(kubeconfig: Option<&std::path::Path>, home: &std::path::Path, args: &[&str]) -> (i32, String) {
    let mut cmd = Process::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"));
    cmd.args(args).env("HOME", home).env_remove("KUBECONFIG");
    if let Some(k) = kubeconfig {
        cmd.env("KUBECONFIG", k);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
    // dropped here: nothing listens on it any more
}

#[test]
fn an_unreachable_api_server_is_one_line_naming_it() {
    let files = super::flags::Files::new("unreachable");
    let port = closed_port();
    let kc = files.path("closed");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: c\nclusters: [{{name: c, cluster: {{server: \"https://127.0.0.1:{port}\"}}}}]\n\
             contexts: [{{name: c, context: {{cluster: c, user: u}}}}]\nusers: [{{name: u, user: {{token: t}}}}]\n"
        ),
    )
    .unwrap();
    let (code, stderr) = plugin(Some(&kc), &files.dir, &["list"]);
    assert_eq!(code, exit::ERROR);
    assert_eq!(
        stderr,
        format!(
            "error: cannot reach the API server at https://127.0.0.1:{port}/: connection refused; check that the cluster \
             is up and that --context/--server point at it (kubectl cluster-info)\n"
        )
    );
    // -v adds the causes, indented under the one line.
    let (_, verbose) = plugin(Some(&kc), &files.dir, &["list", "-v"]);
    let mut lines = verbose.lines();
    assert!(
        lines.next().unwrap().starts_with("error: cannot reach"),
        "{verbose}"
    );
    assert!(
        lines.clone().count() >= 1 && lines.all(|l| l.starts_with("  caused by: ")),
        "{verbose}"
    );
}

#[test]
fn a_bad_kubeconfig_is_one_line_saying_what_to_fix() {
    let files = super::flags::Files::new("bad");
    let garbage = files.path("garbage");
    std::fs::write(&garbage, "clusters: [this is: not: a kubeconfig\n").unwrap();
    let first = files.path("first");
    let missing = files.path("missing");
    for (kubeconfig, args, want) in [
        (
            Some(garbage.as_path()),
            vec!["list"],
            format!("error: the kubeconfig {} is not a valid kubeconfig (", garbage.display()),
        ),
        (
            Some(first.as_path()),
            vec!["list", "--context", "nobody"],
            format!(
                "error: the kubeconfig {} has no context \"nobody\": pick one that exists (kubectl config get-contexts)\n",
                first.display()
            ),
        ),
        (
            None,
            vec!["list", "--kubeconfig", missing.to_str().unwrap()],
            format!(
                "error: cannot read the kubeconfig {}: No such file or directory (os error 2): check --kubeconfig or KUBECONFIG\n",
                missing.display()
            ),
        ),
        (
            None,
            vec!["list"],
            "error: no kubeconfig found (KUBECONFIG is unset or names no file, and ~/.kube/config does not exist): \
             pass --kubeconfig PATH or set KUBECONFIG\n"
                .to_string(),
        ),
    ] {
        let (code, stderr) = plugin(kubeconfig, &files.dir, &args);
        assert_eq!(code, exit::ERROR, "{args:?}: {stderr}");
        assert!(stderr.starts_with(&want), "{args:?}:\n{stderr}\nwanted:\n{want}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}
