//! End-to-end: the `kubectl gatehouse` plugin on a real API server, as people use
//! it. Runs when `GATEHOUSE_E2E_KUBECONFIG` names the admin kubeconfig of
//! `hack/control-plane/up.sh` (which also has contexts alice, bob and carol with
//! their own tokens); see `support::cluster` for when it skips.
//!
//! Its operator runs as the chart's ServiceAccount in `gatehouse-system`, outside
//! the e2e fence (`support::fence`), and acts in every namespace: this binary runs
//! one test, after the `e2e` binary's operators have stopped.
//!
//! It applies the chart's objects as `helm install` renders them against this
//! cluster (CRDs, admission policies, RBAC), runs `gatehouse run` outside the
//! cluster under the chart's ServiceAccount, and then, in order: people switch
//! users with `--context` and `--as`; a refused read or create is one line naming
//! the role to ask for; kubectl's own completion asks `kubectl_complete-gatehouse`; `--wait`
//! returns within a second of the grant; and the README's quick start runs as
//! written. Everything but the quick start lives in namespaces `gh-e2e-plugin-*`.

use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration as StdDuration, Instant},
};

use chrono::Utc;
use gatehouse::api::{AccessReview, ApprovalRequest, Phase};
use kube::{
    api::{Api, DeleteParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config, ResourceExt,
};
use serde_json::{json, Value};

mod support;
use support::{
    cluster::{self, eventually},
    operator::Operator,
    tools,
};

const OPERATOR_NS: &str = "gatehouse-system";

fn kubectl(kubeconfig: &str, args: &[&str], objects: Option<&[Value]>) -> tools::Run {
    let mut all = vec!["--kubeconfig", kubeconfig];
    all.extend_from_slice(args);
    let list = objects.map(|items| json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string());
    tools::run("kubectl", &all, list.as_deref())
}

/// The chart's cluster-wide objects and RBAC, rendered against this cluster (so the
/// MutatingAdmissionPolicies come with it when it serves them), applied server-side.
fn install_chart_objects(kubeconfig: &str) {
    let rendered = tools::chart_objects(
        OPERATOR_NS,
        &["--dry-run=server", "--take-ownership", "--kubeconfig", kubeconfig],
    );
    let wanted = [
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
        "MutatingAdmissionPolicy",
        "MutatingAdmissionPolicyBinding",
        "ServiceAccount",
        "ClusterRole",
        "ClusterRoleBinding",
        "Role",
        "RoleBinding",
    ];
    let objects: Vec<Value> = rendered
        .into_iter()
        .filter(|o| wanted.contains(&o["kind"].as_str().unwrap_or_default()))
        .collect();
    assert!(
        objects.iter().any(|o| o["kind"] == "MutatingAdmissionPolicy"),
        "the chart rendered against kube-apiserver 1.37 has the MutatingAdmissionPolicies"
    );
    let ns = kubectl(kubeconfig, &["create", "namespace", OPERATOR_NS], None);
    assert!(ns.ok || ns.stderr.contains("AlreadyExists"), "{}", ns.stderr);
    let out = kubectl(
        kubeconfig,
        &[
            "apply",
            "--server-side",
            "--force-conflicts",
            "--field-manager=gatehouse-e2e-plugin",
            "-f",
            "-",
        ],
        Some(&objects),
    );
    assert!(out.ok, "applying the chart's objects: {}", out.stderr);
    let out = kubectl(
        kubeconfig,
        &[
            "wait",
            "--for=condition=Established",
            "crd",
            "--all",
            "--timeout=60s",
        ],
        None,
    );
    assert!(out.ok, "{}", out.stderr);
}

/// A copy of the admin kubeconfig acting as the chart's ServiceAccount, for the operator.
fn operator_kubeconfig(admin: &str) -> PathBuf {
    let mut kc = Kubeconfig::read_from(admin).unwrap();
    for named in &mut kc.auth_infos {
        if let Some(auth) = named.auth_info.as_mut() {
            auth.impersonate = Some(format!("system:serviceaccount:{OPERATOR_NS}:gatehouse"));
            auth.impersonate_groups = Some(vec![
                "system:serviceaccounts".into(),
                format!("system:serviceaccounts:{OPERATOR_NS}"),
            ]);
        }
    }
    let path = std::env::temp_dir().join(format!(
        "gatehouse-e2e-plugin-{}-operator.kubeconfig",
        std::process::id()
    ));
    std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
    path
}

/// What a plugin run printed.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

/// `kubectl-gatehouse ARGS` with KUBECONFIG set, as a person runs it.
fn plugin(kubeconfig: &str, args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .output()
        .unwrap();
    let ran = Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    eprintln!(
        "$ kubectl gatehouse {}\n{}{}[exit {}]",
        args.join(" "),
        ran.stdout,
        ran.stderr,
        ran.code
    );
    ran
}

/// PATH with the plugin, its completion helper, kubectl and helm first.
fn path_with_tools() -> String {
    let bins = Path::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
        .parent()
        .unwrap()
        .to_owned();
    format!(
        "{}:{}:{}",
        bins.display(),
        tools::bin_dir().display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

struct Scene {
    kubeconfig: String,
    admin: Client,
    ns: String,
}

impl Scene {
    async fn request(&self, name: &str) -> ApprovalRequest {
        Api::<ApprovalRequest>::namespaced(self.admin.clone(), &self.ns)
            .get(name)
            .await
            .unwrap()
    }

    /// The request `name` exists, asked for by `user` in group `group`, and the
    /// operator has seen it (Pending).
    async fn asked_by(&self, name: &str, user: &str, group: &str) {
        let req = self.request(name).await;
        assert_eq!(req.spec.requester.username, user, "{name}");
        assert!(req.spec.requester.groups.iter().any(|g| g == group), "{name}");
        self.phase_becomes(name, Phase::Pending).await;
    }

    async fn phase_becomes(&self, name: &str, phase: Phase) -> ApprovalRequest {
        let api: Api<ApprovalRequest> = Api::namespaced(self.admin.clone(), &self.ns);
        eventually(
            &format!("{name} to become {phase}"),
            StdDuration::from_secs(20),
            || {
                let api = api.clone();
                async move {
                    api.get(name)
                        .await
                        .ok()
                        .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == phase))
                }
            },
        )
        .await
    }

    /// bob's approval, made through the API (not the plugin) so that the plugin's
    /// own `--wait` is what is timed.
    async fn approve_as_bob(&self, name: &str) {
        let req = self.request(name).await;
        let mut config = Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&self.kubeconfig).unwrap(),
            &KubeConfigOptions {
                context: Some("bob".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        config.default_namespace = self.ns.clone();
        let review: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": format!("{name}-bob"), "namespace": self.ns},
            "spec": {"request": {"name": name, "uid": req.uid().unwrap()}, "decision": "Approve",
                     "reviewer": {"username": "bob", "groups": ["sre", "system:authenticated"]}}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(Client::try_from(config).unwrap(), &self.ns)
            .create(&PostParams::default(), &review)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn the_plugin_on_a_real_api_server() {
    let Some(kubeconfig) = cluster::kubeconfig() else {
        return;
    };
    let kubeconfig = kubeconfig.to_string_lossy().into_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let admin = Client::try_from(
        Config::from_custom_kubeconfig(
            Kubeconfig::read_from(&kubeconfig).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    install_chart_objects(&kubeconfig);
    let logs = std::env::temp_dir().join(format!("gatehouse-e2e-plugin-{}", std::process::id()));
    let _operator = Operator::start(
        &operator_kubeconfig(&kubeconfig),
        "plugin-e2e",
        &["--leader-election=false"],
        &logs,
    )
    .await;

    let run = format!("{:x}", Utc::now().timestamp_millis());
    let scene = Scene {
        kubeconfig: kubeconfig.clone(),
        admin: admin.clone(),
        ns: format!("gh-e2e-plugin-{run}"),
    };
    let elsewhere = format!("gh-e2e-plugin-{run}-other");
    setup_people(&scene, &elsewhere, &run);

    switching_users(&scene).await;
    a_refusal_is_one_line(&scene, &elsewhere);
    kubectl_completes_through_the_helper(&scene);
    wait_returns_right_after_the_grant(&scene).await;
    the_readme_quick_start_runs_as_written(&kubeconfig).await;

    for ns in [scene.ns.as_str(), elsewhere.as_str()] {
        let _ = Api::<k8s_openapi::api::core::v1::Namespace>::all(admin.clone())
            .delete(ns, &DeleteParams::default())
            .await;
    }
    let _ = kubectl(
        &kubeconfig,
        &["delete", "accesspolicy", &format!("gh-e2e-plugin-{run}")],
        None,
    );
}

/// Two namespaces; in the first, developers may request and sre review (RoleBindings
/// to the chart's user roles); the second has no bindings of its own.
fn setup_people(scene: &Scene, elsewhere: &str, run: &str) {
    let ns = &scene.ns;
    let binding = |name: &str, role: &str, group: &str| {
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": name, "namespace": ns},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "Group", "name": group, "apiGroup": "rbac.authorization.k8s.io"}]})
    };
    let objects = [
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}),
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": elsewhere}}),
        binding("developers-request", "gatehouse-requester", "developers"),
        binding("sre-review", "gatehouse-reviewer", "sre"),
        json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": format!("gh-e2e-plugin-{run}")},
            "spec": {"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
                     "namespaces": {"names": [ns]}, "duration": {"default": "1h", "max": "2h"},
                     "approval": {"reviewers": {"groups": ["sre"]}}}}),
    ];
    let out = kubectl(&scene.kubeconfig, &["apply", "-f", "-"], Some(&objects));
    assert!(out.ok, "{}", out.stderr);
}

/// alice and bob use their own contexts of one kubeconfig; the admin acts as dave
/// and erin with `--as`: the identity in each object is the one the API server
/// reports for that user (SelfSubjectReview, impersonated where asked).
async fn switching_users(scene: &Scene) {
    let (kc, ns) = (scene.kubeconfig.as_str(), scene.ns.as_str());
    let ran = plugin(
        kc,
        &[
            "--context",
            "alice",
            "request",
            "view",
            "-n",
            ns,
            "--for",
            "1h",
            "--reason",
            "e2e",
            "--name",
            "alice-ctx",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    scene.asked_by("alice-ctx", "alice", "developers").await;

    let ran = plugin(kc, &["--context", "bob", "pending", "-n", ns]);
    assert!(
        ran.code == 0 && ran.stdout.contains("alice-ctx"),
        "{}",
        ran.stdout
    );
    // --user swaps only the credentials: alice's context with bob's token is bob.
    let ran = plugin(kc, &["--context", "alice", "--user", "bob", "pending", "-n", ns]);
    assert!(
        ran.code == 0 && ran.stdout.contains("alice-ctx"),
        "{}",
        ran.stdout
    );
    let ran = plugin(
        kc,
        &[
            "approve",
            "alice-ctx",
            "--context",
            "bob",
            "-n",
            ns,
            "--comment",
            "ok",
        ],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    assert!(ran.stdout.contains("Accepted by the operator"), "{}", ran.stdout);
    scene.phase_becomes("alice-ctx", Phase::Active).await;

    // The admin's own context, impersonating: dave asks, erin approves.
    let ran = plugin(
        kc,
        &[
            "request",
            "view",
            "-n",
            ns,
            "--reason",
            "e2e",
            "--name",
            "dave-as",
            "--as",
            "dave",
            "--as-group",
            "developers",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    scene.asked_by("dave-as", "dave", "developers").await;
    let ran = plugin(
        kc,
        &[
            "approve",
            "dave-as",
            "-n",
            ns,
            "--as",
            "erin",
            "--as-group",
            "sre",
        ],
    );
    assert_eq!(ran.code, 0, "{}{}", ran.stdout, ran.stderr);
    let active = scene.phase_becomes("dave-as", Phase::Active).await;
    let decisions = active.status.unwrap().decisions;
    assert!(
        decisions.iter().any(|d| d.reviewer == "erin" && d.accepted),
        "{decisions:?}"
    );
    // The admin without --as is neither a developer nor a reviewer of this policy.
    let ran = plugin(kc, &["pending", "-n", ns]);
    assert_eq!(ran.stdout, "No requests waiting for your review.\n");
}

/// frank (the admin impersonating a contractor) has no Gatehouse role anywhere:
/// one line, his name, the role to ask for. (The token users alice, bob and carol
/// may hold cluster-wide roles from other suites run on the same control plane.)
fn a_refusal_is_one_line(scene: &Scene, elsewhere: &str) {
    let frank = ["--as", "frank", "--as-group", "contractors"];
    let ran = plugin(
        &scene.kubeconfig,
        &[&frank[..], &["pending", "-n", elsewhere]].concat(),
    );
    assert_eq!(ran.code, 1);
    assert_eq!(
        ran.stderr,
        format!(
            "error: frank may not read ApprovalRequests in namespace {elsewhere}: ask for the gatehouse-reviewer role there \
             (kubectl create rolebinding frank-gatehouse-reviewer --clusterrole gatehouse-reviewer --user frank -n {elsewhere})\n"
        )
    );
    let ran = plugin(
        &scene.kubeconfig,
        &[&frank[..], &["request", "view", "-n", elsewhere, "--for", "1h"]].concat(),
    );
    assert_eq!(ran.code, 1);
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.starts_with(&format!(
            "error: frank may not create ApprovalRequests in namespace {elsewhere}: ask for the gatehouse-requester role there"
        )),
        "{}",
        ran.stderr
    );
}

/// kubectl 1.26+ completes `kubectl gatehouse ...` by running
/// `kubectl_complete-gatehouse` from PATH: names come from the cluster.
fn kubectl_completes_through_the_helper(scene: &Scene) {
    let ran = plugin(
        &scene.kubeconfig,
        &[
            "request",
            "view",
            "-n",
            &scene.ns,
            "--reason",
            "e2e",
            "--name",
            "carol-pending",
            "--as",
            "carol",
            "--as-group",
            "developers",
        ],
    );
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    let out = Command::new(tools::bin_dir().join("kubectl"))
        .args([
            "__complete",
            "gatehouse",
            "--context",
            "bob",
            "-n",
            &scene.ns,
            "approve",
            "",
        ])
        .env("KUBECONFIG", &scene.kubeconfig)
        .env("PATH", path_with_tools())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with(':'))
        .map(|l| l.split('\t').next().unwrap_or_default())
        .collect();
    // Only the request still waiting for a decision.
    assert_eq!(names, ["carol-pending"], "{stdout}");
    assert!(stdout.ends_with(":4\n"), "{stdout}");
}

/// alice waits; bob approves through the API; the operator grants; alice's
/// plugin, woken by its watch, exits within a second of the grant.
async fn wait_returns_right_after_the_grant(scene: &Scene) {
    let (kc, ns) = (scene.kubeconfig.as_str(), scene.ns.as_str());
    let mut waiting = Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
        .args([
            "--context",
            "alice",
            "request",
            "view",
            "-n",
            ns,
            "--for",
            "1h",
            "--reason",
            "e2e",
        ])
        .args(["--name", "alice-wait", "--wait", "--timeout", "60s"])
        .env("KUBECONFIG", kc)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let api: Api<ApprovalRequest> = Api::namespaced(scene.admin.clone(), ns);
    scene.phase_becomes("alice-wait", Phase::Pending).await;
    scene.approve_as_bob("alice-wait").await;
    // The grant as the admin sees it (read every 20 ms), and the plugin's return.
    let started = Instant::now();
    let mut granted: Option<(Instant, chrono::DateTime<Utc>)> = None;
    let mut done: Option<(Instant, chrono::DateTime<Utc>)> = None;
    while granted.is_none() || done.is_none() {
        assert!(
            started.elapsed() < StdDuration::from_secs(30),
            "no grant, or the plugin did not return"
        );
        if granted.is_none() {
            let r = api.get("alice-wait").await.unwrap();
            if let Some(at) = r
                .status
                .filter(|s| s.phase == Phase::Active)
                .and_then(|s| s.grant?.granted_at)
            {
                granted = Some((Instant::now(), at));
            }
        }
        if done.is_none() && waiting.try_wait().unwrap().is_some() {
            done = Some((Instant::now(), Utc::now()));
        }
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    let ((seen, granted_at), (returned, returned_at)) = (granted.unwrap(), done.unwrap());
    let out = waiting.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lag = returned.saturating_duration_since(seen);
    let since_binding = (returned_at - granted_at).num_milliseconds();
    eprintln!(
        "e2e: request --wait returned {} ms after the admin saw the grant, {since_binding} ms after grantedAt",
        lag.as_millis()
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("Access granted: ClusterRole/view"), "{stdout}");
    assert!(
        lag < StdDuration::from_secs(1),
        "--wait returned {lag:?} after the grant"
    );
    // grantedAt is the operator's decision time: this also counts the operator
    // creating the binding and writing the status, which the plugin cannot beat.
    assert!(
        since_binding < 3000,
        "--wait returned {since_binding} ms after grantedAt"
    );
}

/// The `sh` blocks of README.md's "A first request, step by step", in order.
fn readme_quick_start() -> String {
    let readme = std::fs::read_to_string(tools::repo().join("README.md")).unwrap();
    let section = readme
        .split("### A first request, step by step")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("README has the quick start");
    let blocks: Vec<&str> = section
        .split("```sh\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    assert_eq!(blocks.len(), 2, "plain YAML, then the plugin");
    blocks.join("\n")
}

/// Leftovers of an earlier run on the same control plane, which the quick start's
/// fixed names would trip over.
fn clean_quick_start(kubeconfig: &str) {
    for args in [
        &[
            "delete",
            "namespace",
            "team",
            "--ignore-not-found",
            "--wait=true",
            "--timeout=60s",
        ][..],
        &[
            "delete",
            "clusterrolebinding",
            "developers-request",
            "sre-review",
            "--ignore-not-found",
        ],
        &["delete", "accesspolicy", "team-view", "--ignore-not-found"],
    ] {
        let out = kubectl(kubeconfig, args, None);
        assert!(out.ok, "kubectl {args:?}: {}", out.stderr);
    }
}

async fn the_readme_quick_start_runs_as_written(kubeconfig: &str) {
    clean_quick_start(kubeconfig);
    let script = readme_quick_start();
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("KUBECONFIG", kubeconfig)
        .env("PATH", path_with_tools())
        .current_dir(tools::repo())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("README quick start:\n{stdout}\n{stderr}");
    assert!(out.status.success(), "the last command failed:\n{stderr}");
    assert!(!stderr.contains("rror"), "{stderr}");
    // `kubectl auth can-i` answered yes while granted, then no.
    let answers: Vec<&str> = stdout.lines().filter(|l| *l == "yes" || *l == "no").collect();
    assert_eq!(answers, ["yes", "no"], "{stdout}");
    assert!(
        stdout.contains("alice-view-2"),
        "pending shows the plugin's request:\n{stdout}"
    );
    assert!(stdout.contains("Accepted by the operator"), "{stdout}");

    let admin = Client::try_from(
        Config::from_custom_kubeconfig(
            Kubeconfig::read_from(kubeconfig).unwrap(),
            &KubeConfigOptions::default(),
        )
        .await
        .unwrap(),
    )
    .unwrap();
    let requests: Api<ApprovalRequest> = Api::namespaced(admin.clone(), "team");
    for name in ["alice-view", "alice-view-2"] {
        let r = requests.get(name).await.unwrap();
        assert_eq!(
            r.spec.requester.username, "alice",
            "{name}: filled in by the API server or the plugin"
        );
        // The binding is gone before the operator writes the request's status
        // (removals go first), so the phase may trail `can-i` by a moment.
        eventually(&format!("{name} Revoked"), StdDuration::from_secs(30), || async {
            let r = requests.get(name).await.ok()?;
            (r.status.map(|s| s.phase) == Some(Phase::Revoked)).then_some(())
        })
        .await;
    }
    let review = Api::<AccessReview>::namespaced(admin, "team")
        .get("alice-view-bob")
        .await
        .unwrap();
    assert_eq!(
        review.spec.reviewer.username, "bob",
        "filled in by the API server"
    );
    clean_quick_start(kubeconfig);
}
