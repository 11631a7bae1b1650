//! Notification channels (issue 23, item 4): what a channel's endpoint, a
//! tester and the operator's own identity can and cannot do.
//!
//! Every endpoint here listens on 127.0.0.1 and counts the TCP connections it
//! accepts. Addresses that must be refused are literals: the checks that refuse
//! them run before any connection, and the only refused address a connection
//! could reach, `0.0.0.0`, reaches this host (so the endpoint would count it).
//! Addresses off this host are only ever judged by the Ready condition first:
//! the test stops there unless the operator refused them.
//!
//! Channels are cluster-scoped and every operator reads them all: each carries
//! the scenario's fence label, so that only the scenario's operator writes its
//! status (`support::fence`).

use std::{
    collections::BTreeMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
    time::Duration,
};

use gatehouse::api::NotificationChannel;
use k8s_openapi::{
    api::{
        authorization::v1::SubjectAccessReview,
        core::v1::Secret,
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
    ByteString,
};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    Client,
};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::{
    cluster::{apply, eventually},
    fence,
    operator::Operator,
    scene::{PluginUser, Scene},
    tools,
};

/// What a hostile endpoint answers: it looks like a cloud credential.
const LOOT: &str = "AKIAIOSFODNN7EXAMPLE wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

/// A loopback HTTP endpoint that counts connections and answers `test_status`
/// to test messages and `event_status` to the others, always with [`LOOT`].
struct Endpoint {
    port: u16,
    connections: Arc<AtomicUsize>,
}

impl Endpoint {
    async fn start(test_status: u16, event_status: u16) -> Endpoint {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let seen = connections.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                seen.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut got = Vec::new();
                    let mut buf = [0u8; 8192];
                    // Headers, then as much body as they announce.
                    loop {
                        let Ok(n) = s.read(&mut buf).await else { return };
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let length = text
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if got.len() >= end + 4 + length {
                                break;
                            }
                        }
                    }
                    let text = String::from_utf8_lossy(&got).to_lowercase();
                    let status = if text.contains("x-gatehouse-event: test\r\n") {
                        test_status
                    } else {
                        event_status
                    };
                    let answer = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{LOOT}",
                        LOOT.len()
                    );
                    let _ = s.write_all(answer.as_bytes()).await;
                });
            }
        });
        Endpoint { port, connections }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

/// The Secret `name` in the scenario's namespace (the operator's) with `address`.
async fn secret(scene: &Scene, name: &str, address: &str) {
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("address".to_string(), ByteString(address.as_bytes().to_vec())),
            ("token".to_string(), ByteString(b"k".to_vec())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(scene.admin.clone(), &scene.ns)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
}

/// A webhook channel `NS-suffix` over `secret_name`, with `spec` merged in, in
/// the scenario's fence scope; returns its name.
async fn channel(scene: &Scene, suffix: &str, secret_name: &str, spec: Value) -> String {
    let name = format!("{}-{suffix}", scene.ns);
    let mut body = json!({"type": "webhook", "secretRef": {"name": secret_name}});
    for (k, v) in spec.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let ch: NotificationChannel = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
        "metadata": {"name": name, "labels": {fence::LABEL: scene.scope}}, "spec": body
    }))
    .unwrap();
    channels(&scene.admin)
        .create(&PostParams::default(), &ch)
        .await
        .unwrap();
    name
}

/// A filter no event of these tests matches: nothing is sent but test messages.
fn never() -> Value {
    json!({"events": ["CertificationRunCompleted"], "campaigns": ["no-such-campaign"]})
}

fn channels(c: &Client) -> Api<NotificationChannel> {
    Api::all(c.clone())
}

/// The channel's status as JSON.
async fn status(scene: &Scene, name: &str) -> Value {
    let ch = channels(&scene.admin).get(name).await.unwrap();
    serde_json::to_value(ch.status).unwrap()
}

/// The channel's Ready condition (status, reason, message) once its reason is `reason`.
async fn ready_reason(scene: &Scene, name: &str, reason: &str) -> (String, String) {
    let api = channels(&scene.admin);
    let mut last = Value::Null;
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            if let Ok(ch) = api.get(name).await {
                let s = serde_json::to_value(ch.status).unwrap();
                let ready = s["conditions"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|c| c["type"] == "Ready")
                    .cloned();
                if let Some(c) = ready {
                    if c["reason"] == reason {
                        return (
                            c["status"].as_str().unwrap().to_string(),
                            c["message"].as_str().unwrap().to_string(),
                        );
                    }
                    last = c;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    found.unwrap_or_else(|_| panic!("channel {name}: Ready never had reason {reason}; last: {last}"))
}

/// `kubectl gatehouse ARGS` as `who`, off the test's thread (the endpoint answers on it).
async fn plugin(who: PluginUser, args: &[&str]) -> (Option<i32>, String) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        who.run_args(&args)
    })
    .await
    .unwrap()
}

/// The scenario's operator: admin rights fenced to the scenario, channels'
/// Secrets and ledgers in its namespace.
async fn operator(scene: &Scene, identity: &str) -> Operator {
    let kubeconfig = scene.operator_kubeconfig();
    let args = ["--leader-election=false", "--lease-namespace", scene.ns.as_str()];
    scene.start_operator(&kubeconfig, identity, &args).await
}

async fn delete_channels(scene: &Scene, names: &[&str]) {
    for name in names {
        let _ = channels(&scene.admin)
            .delete(name, &DeleteParams::default())
            .await;
    }
}

/// An endpoint that answers with something secret-looking gets it recorded
/// nowhere: `status.lastTest` holds the status code and the time it took, a
/// failed delivery's `status.lastError` the status code; the plugin prints no
/// body either. Before: 1 KiB of the answer in `lastTest.answer` (and 200
/// characters in `lastError.message`): a request forger with read-back.
#[tokio::test]
async fn a_channel_test_records_the_status_code_and_timing_never_the_body() {
    let Some(scene) = Scene::with_own_operators("ch-body").await else {
        return;
    };
    let endpoint = Endpoint::start(200, 500).await;
    secret(&scene, "hook-body", &endpoint.url()).await;
    let name = channel(
        &scene,
        "body",
        "hook-body",
        json!({"namespaces": [scene.ns], "events": ["ReviewRequired"]}),
    )
    .await;
    let op = operator(&scene, "ch-body").await;
    ready_reason(&scene, &name, "SecretFound").await;

    let admin = scene.plugin_user("channel-admin", &["system:masters"]);
    let (code, printed) = plugin(admin, &["notify", "test", &name]).await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("answered HTTP 200"), "{printed}");
    assert!(
        !printed.contains("AKIA"),
        "the plugin printed the endpoint's body:\n{printed}"
    );

    // A real event, which the endpoint answers with 500 and the same body.
    scene.request("alice-body", "1h").await;
    let errored = eventually(
        "a failed delivery on the channel",
        Duration::from_secs(30),
        || async {
            let s = status(&scene, &name).await;
            s["lastError"].is_object().then_some(s)
        },
    )
    .await;
    assert_eq!(errored["lastError"]["message"], "HTTP 500", "{errored}");
    let s = status(&scene, &name).await;
    let text = s.to_string();
    assert!(
        !text.contains("AKIA") && !text.contains("EXAMPLEKEY"),
        "the body is in the status: {text}"
    );
    assert_eq!(s["lastTest"]["statusCode"], 200, "{s}");
    let elapsed = s["lastTest"]["elapsed"].as_str().unwrap_or_default();
    assert!(elapsed.ends_with("ms"), "the test's timing: {s}");

    drop(op);
    delete_channels(&scene, &[&name]).await;
    scene.finish().await;
}

/// Someone allowed only to ask for tests (the `test` verb, with `patch` to
/// reach admission: ClusterRole gatehouse-notification-tester) runs `notify
/// test`, and cannot silence a channel, narrow its events or point it at
/// another Secret, not even in the same patch as a test request. A namespace
/// admin (`*` on `*` in her namespace) can neither create a channel nor ask for
/// a test. Each refusal is one line. Before: `notify test` needed `patch`, and
/// `patch` rewrote anything.
#[tokio::test]
async fn a_tester_can_ask_for_a_test_but_not_change_the_channel() {
    let Some(scene) = Scene::with_own_operators("ch-tester").await else {
        return;
    };
    let ns = scene.ns.clone();
    let endpoint = Endpoint::start(200, 200).await;
    secret(&scene, "hook-tester", &endpoint.url()).await;
    let name = channel(&scene, "tester", "hook-tester", never()).await;
    let op = operator(&scene, "ch-tester").await;
    ready_reason(&scene, &name, "SecretFound").await;

    // tess: the tester's rules (those of the shipped gatehouse-notification-tester,
    // which tests/rbac.rs pins), bound cluster-wide as the chart binds them.
    let tester_role = format!("gatehouse-e2e-tester-{ns}");
    apply::<ClusterRole>(
        &scene.admin,
        &json!({"metadata": {"name": tester_role},
                "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["notificationchannels"],
                           "verbs": ["get", "list", "watch", "patch", "test"]}]}),
    )
    .await;
    apply::<ClusterRoleBinding>(
        &scene.admin,
        &json!({"metadata": {"name": tester_role},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": tester_role},
                "subjects": [{"kind": "User", "name": "tess", "apiGroup": "rbac.authorization.k8s.io"}]}),
    )
    .await;
    // nina: a namespace admin.
    let admin_role = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
        "metadata": {"name": "namespace-admin", "namespace": ns},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]});
    let admin_binding = json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "namespace-admin", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "namespace-admin"},
        "subjects": [{"kind": "User", "name": "nina", "apiGroup": "rbac.authorization.k8s.io"}]});
    let list = json!({"apiVersion": "v1", "kind": "List", "items": [admin_role, admin_binding]}).to_string();
    let kubeconfig = scene.cluster.kubeconfig.to_str().unwrap().to_string();
    let applied = tools::run(
        "kubectl",
        &["--kubeconfig", &kubeconfig, "apply", "--server-side", "-f", "-"],
        Some(&list),
    );
    assert!(applied.ok, "{}", applied.stderr);
    let tess = scene.cluster.as_user("tess", &["testers"]);
    eventually("tess's role to be in force", Duration::from_secs(10), || async {
        channels(&tess).get(&name).await.ok()
    })
    .await;

    let (code, printed) = plugin(
        scene.plugin_user("tess", &["testers"]),
        &["notify", "test", &name],
    )
    .await;
    assert_eq!(code, Some(0), "{printed}");
    assert!(printed.contains("answered HTTP 200"), "{printed}");
    assert_eq!(endpoint.connections(), 1);

    let before = channels(&scene.admin).get(&name).await.unwrap().spec;
    let asked = "2026-12-07T00:00:00.000000Z";
    let changes = [
        ("suspend", json!({"spec": {"suspend": true}})),
        ("events", json!({"spec": {"events": ["Granted"]}})),
        ("secretRef", json!({"spec": {"secretRef": {"name": "elsewhere"}}})),
        (
            "suspend with a test",
            json!({"metadata": {"annotations": {"gatehouse.dev/test-requested-at": asked}},
                   "spec": {"suspend": true}}),
        ),
        ("a label", json!({"metadata": {"labels": {"team": "none"}}})),
    ];
    for (what, patch) in changes {
        let refused = channels(&tess)
            .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .expect_err(&format!("tess changed {what}"));
        let message = refused.to_string();
        assert!(
            message.contains(&format!("tess may not change NotificationChannel {name}"))
                && message.contains("needs the update verb"),
            "{what}: {message}"
        );
        assert!(!message.contains('\n'), "{what}: {message}");
    }
    assert_eq!(channels(&scene.admin).get(&name).await.unwrap().spec, before);

    // Neither tess nor a namespace admin creates a channel; nina cannot ask for a test.
    let forged: NotificationChannel = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
        "metadata": {"name": format!("{ns}-forged")},
        "spec": {"type": "webhook", "secretRef": {"name": "hook-tester"}}
    }))
    .unwrap();
    for (who, client) in [
        ("tess", tess.clone()),
        ("nina", scene.cluster.as_user("nina", &["tenants"])),
    ] {
        let refused = channels(&client)
            .create(&PostParams::default(), &forged)
            .await
            .map(|_| ())
            .expect_err(&format!("{who} created a channel"));
        let message = refused.to_string();
        assert!(
            message.contains("forbidden") && !message.contains('\n'),
            "{who}: {message}"
        );
    }
    let (code, printed) = plugin(
        scene.plugin_user("nina", &["tenants"]),
        &["notify", "test", &name],
    )
    .await;
    assert_ne!(code, Some(0), "{printed}");
    assert_eq!(printed.trim_end().lines().count(), 1, "{printed}");
    assert!(
        printed.contains("forbidden") || printed.contains("may not"),
        "{printed}"
    );

    drop(op);
    delete_channels(&scene, &[&name]).await;
    let _ = Api::<ClusterRoleBinding>::all(scene.admin.clone())
        .delete(&tester_role, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(scene.admin.clone())
        .delete(&tester_role, &DeleteParams::default())
        .await;
    scene.finish().await;
}

/// Addresses the operator must not send to: a cloud metadata address, the
/// unspecified address (which reaches the operator's own host), plain http off
/// loopback, a private range without the operator's flag. Each channel says
/// why it is not Ready; a test message to the first two is refused with that
/// reason and no connection is made. Before: all four were Ready.
#[tokio::test]
async fn metadata_private_and_plain_http_addresses_are_refused_before_any_connection() {
    let Some(scene) = Scene::with_own_operators("ch-address").await else {
        return;
    };
    let endpoint = Endpoint::start(200, 200).await;
    let port = endpoint.port;
    let cases = [
        (
            "metadata",
            "http://169.254.169.254/latest/meta-data/iam/security-credentials/".to_string(),
            "ForbiddenAddress",
            "169.254.169.254 is a link-local or cloud metadata address",
        ),
        (
            "unspecified",
            format!("https://0.0.0.0:{port}/hook"),
            "ForbiddenAddress",
            "0.0.0.0 is not a unicast destination address",
        ),
        (
            "plain",
            "http://192.0.2.10/hook".to_string(),
            "InsecureAddress",
            "plain http is allowed only to loopback",
        ),
        (
            "private",
            "https://10.0.0.1/hook".to_string(),
            "PrivateAddress",
            "--notify-allow-private-destinations",
        ),
    ];
    let mut names = Vec::new();
    for (suffix, address, _, _) in &cases {
        let secret_name = format!("hook-{suffix}");
        secret(&scene, &secret_name, address).await;
        names.push(channel(&scene, suffix, &secret_name, never()).await);
    }
    let op = operator(&scene, "ch-address").await;
    for ((_, _, reason, why), name) in cases.iter().zip(&names) {
        let (ready, message) = ready_reason(&scene, name, reason).await;
        assert_eq!(ready, "False", "{name}");
        assert!(message.contains(why), "{name}: {message}");
    }

    // Only now, with the operator refusing them, ask for test messages to the two
    // addresses a connection would reach (0.0.0.0 is this host).
    for ((_, _, _, why), name) in cases.iter().zip(&names).take(2) {
        let admin = scene.plugin_user("channel-admin", &["system:masters"]);
        let (code, printed) = plugin(admin, &["notify", "test", name]).await;
        assert_eq!(code, Some(4), "{printed}");
        assert!(
            printed.contains("could not be sent:") && printed.contains(why),
            "{printed}"
        );
        let s = status(&scene, name).await;
        assert!(s["lastTest"]["statusCode"].is_null(), "{s}");
        assert!(
            s["lastTest"]["error"].as_str().unwrap_or_default().contains(why),
            "{s}"
        );
    }
    assert_eq!(endpoint.connections(), 0, "a refused address was connected to");

    drop(op);
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    delete_channels(&scene, &refs).await;
    scene.finish().await;
}

/// Whether the operator's ServiceAccount in `ns` may `verb` the Secret `name` there.
async fn operator_may(admin: &Client, ns: &str, verb: &str, name: Option<&str>) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": format!("system:serviceaccount:{ns}:gatehouse"),
                 "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{ns}"), "system:authenticated"],
                 "resourceAttributes": {"namespace": ns, "verb": verb, "resource": "secrets", "name": name}}
    }))
    .unwrap();
    let answer = Api::<SubjectAccessReview>::all(admin.clone())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    answer.status.is_some_and(|s| s.allowed)
}

/// The chart's operator RBAC for `ns`, its ClusterRole renamed for the
/// scenario, with `set` (helm flags); returns the renamed ClusterRole's name.
fn apply_chart_rbac(scene: &Scene, set: &[&str]) -> String {
    let ns = &scene.ns;
    let mut args = vec!["--show-only", "templates/rbac.yaml"];
    args.extend_from_slice(set);
    let mut objects = tools::chart_objects(ns, &args);
    let unique = format!("gatehouse-operator-{ns}");
    for o in &mut objects {
        if o["metadata"]["name"] == "gatehouse-operator" {
            o["metadata"]["name"] = json!(unique);
        }
        if o["roleRef"]["name"] == "gatehouse-operator" {
            o["roleRef"]["name"] = json!(unique);
        }
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string();
    let kubeconfig = scene.cluster.kubeconfig.to_str().unwrap().to_string();
    let applied = tools::run(
        "kubectl",
        &[
            "--kubeconfig",
            &kubeconfig,
            "apply",
            "--server-side",
            "--force-conflicts",
            "-f",
            "-",
        ],
        Some(&list),
    );
    assert!(applied.ok, "applying the chart's RBAC: {}", applied.stderr);
    unique
}

/// The operator, with exactly the chart's RBAC, reads the Secrets its channels
/// name in the chart (notifications.secretNames) and no other Secret of its
/// namespace; a channel over an unlisted Secret says so. Before: `get` on every
/// Secret of the namespace (Helm release data, tokens).
#[tokio::test]
async fn the_operator_reads_only_the_channels_secrets() {
    let Some(scene) = Scene::with_own_operators("ch-secrets").await else {
        return;
    };
    let ns = scene.ns.clone();
    let admin = scene.admin.clone();
    // The chart as installed by default: no channel Secrets listed, none readable.
    let cluster_role = apply_chart_rbac(&scene, &[]);
    for secret_name in ["hook-listed", "other", "sh.helm.release.v1.gatehouse.v1"] {
        assert!(
            !operator_may(&admin, &ns, "get", Some(secret_name)).await,
            "the operator may read Secret {secret_name}"
        );
    }
    assert!(!operator_may(&admin, &ns, "list", None).await);

    // Listed: that one Secret, by name, and still no other.
    apply_chart_rbac(
        &scene,
        &["--set-json", r#"notifications.secretNames=["hook-listed"]"#],
    );
    assert!(operator_may(&admin, &ns, "get", Some("hook-listed")).await);
    assert!(!operator_may(&admin, &ns, "get", Some("other")).await);
    assert!(!operator_may(&admin, &ns, "list", None).await);

    let endpoint = Endpoint::start(200, 200).await;
    secret(&scene, "hook-listed", &endpoint.url()).await;
    secret(&scene, "other", &endpoint.url()).await;
    let listed = channel(&scene, "listed", "hook-listed", never()).await;
    let unlisted = channel(&scene, "unlisted", "other", never()).await;
    let sa_user = format!("system:serviceaccount:{ns}:gatehouse");
    let groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
    ];
    let kubeconfig = scene.user_kubeconfig(&sa_user, &[&groups[0], &groups[1]]);
    let op = scene
        .start_operator(
            &kubeconfig,
            "ch-secrets",
            &["--leader-election=true", "--lease-namespace", &ns],
        )
        .await;
    ready_reason(&scene, &listed, "SecretFound").await;
    let (ready, message) = ready_reason(&scene, &unlisted, "SecretNotPermitted").await;
    assert_eq!(ready, "False");
    assert!(message.contains("notifications.secretNames"), "{message}");

    drop(op);
    delete_channels(&scene, &[&listed, &unlisted]).await;
    scene.finish().await;
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(&cluster_role, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(admin)
        .delete(&cluster_role, &DeleteParams::default())
        .await;
}
