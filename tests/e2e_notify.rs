//! End-to-end notifications: the operator binary against a real API server
//! (`GATEHOUSE_E2E_KUBECONFIG`, see hack/control-plane/up.sh; skipped without
//! it, a failure when `GATEHOUSE_E2E_REQUIRED` is set), a webhook channel, and a
//! local HTTP receiver on 127.0.0.1 started by the test.
//!
//! - A full request lifecycle (waiting, approved, granted, expiring soon,
//!   expired) and a rejected request, with an operator restart (SIGKILL) in the
//!   middle: the receiver gets exactly one message per event.
//! - A receiver that takes 5 s over every message while a grant expires: the
//!   binding is still removed on time.

#[path = "notify/receiver.rs"]
mod receiver;
mod support;

use support::{
    cluster::{self, eventually},
    tools,
};

use std::{
    collections::BTreeMap,
    process::{Child, Command, Stdio},
    time::Duration,
};

use chrono::Utc;
use gatehouse::{
    api::{AccessReview, ApprovalRequest, NotificationChannel, Phase},
    notify::hmac,
};
use k8s_openapi::{
    api::{
        core::v1::{Namespace, Secret},
        rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    ByteString,
};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config, ResourceExt,
};
use receiver::Receiver;
use serde_json::json;

const KEY: &str = "e2e-hmac-key";

struct Operator(Child);

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_operator(kubeconfig: &str, namespace: &str) -> Operator {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Operator(
        Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .args([
                "run",
                "--http-addr",
                &format!("127.0.0.1:{port}"),
                "--leader-election=false",
            ])
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAMESPACE", namespace)
            .env("RUST_LOG", "info,gatehouse::notify=debug")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap(),
    )
}

fn as_user(admin: &Config, user: &str, groups: &[&str]) -> Client {
    let mut c = admin.clone();
    c.auth_info.impersonate = Some(user.to_string());
    c.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    Client::try_from(c).unwrap()
}

fn apply<K: serde::Serialize>(obj: &K) -> Patch<&K> {
    Patch::Apply(obj)
}

/// The chart's CRDs, applied as `helm install` would create them.
async fn install_crds(admin: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let pp = PatchParams::apply("gatehouse-e2e-notify").force();
    for doc in tools::chart_objects("gatehouse-system", &[]) {
        if doc["kind"] != "CustomResourceDefinition" {
            continue;
        }
        let crd: CustomResourceDefinition = serde_json::from_value(doc).unwrap();
        let name = crd.name_any();
        api.patch(&name, &pp, &apply(&crd)).await.unwrap();
        eventually(&format!("CRD {name}"), Duration::from_secs(30), || {
            let api = api.clone();
            let name = name.clone();
            async move {
                let c = api.get(&name).await.ok()?.status?.conditions?;
                c.iter()
                    .any(|c| c.type_ == "Established" && c.status == "True")
                    .then_some(())
            }
        })
        .await;
    }
}

struct Scene {
    admin: Client,
    alice: Client,
    bob: Client,
    ns: String,
}

impl Scene {
    async fn request(&self, name: &str, duration: &str) -> ApprovalRequest {
        let r: ApprovalRequest = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                     "role": {"kind": "ClusterRole", "name": "view"}, "duration": duration, "reason": "e2e notify"}
        }))
        .unwrap();
        Api::<ApprovalRequest>::namespaced(self.alice.clone(), &self.ns)
            .create(&PostParams::default(), &r)
            .await
            .unwrap()
    }

    async fn review(&self, req: &ApprovalRequest, decision: &str) {
        let r: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": format!("{}-bob-{}", req.name_any(), decision.to_lowercase()), "namespace": self.ns},
            "spec": {"request": {"name": req.name_any(), "uid": req.uid().unwrap()}, "decision": decision,
                     "reviewer": {"username": "bob", "groups": ["sre"]}, "comment": "e2e"}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(self.bob.clone(), &self.ns)
            .create(&PostParams::default(), &r)
            .await
            .unwrap();
    }

    async fn phase_becomes(&self, name: &str, phase: Phase) -> ApprovalRequest {
        let api: Api<ApprovalRequest> = Api::namespaced(self.admin.clone(), &self.ns);
        eventually(
            &format!("{name} to become {phase}"),
            Duration::from_secs(30),
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
}

/// (request, event) of every message received, in arrival order.
fn story(rx: &Receiver) -> Vec<(String, String)> {
    rx.received()
        .iter()
        .filter(|m| m.event != "Test")
        .map(|m| {
            let j = m.json();
            (
                j["object"]["name"].as_str().unwrap_or_default().to_string(),
                m.event.clone(),
            )
        })
        .collect()
}

async fn wait_for_message(rx: &Receiver, request: &str, event: &str, timeout: Duration) {
    eventually(&format!("{event} of {request}"), timeout, || {
        let found = story(rx).iter().any(|(r, e)| r == request && e == event);
        async move { found.then_some(()) }
    })
    .await;
}

#[tokio::test]
async fn notifications_on_a_real_api_server() {
    // The one skip guard of the server-side tests (fails instead when required).
    let Some(path) = cluster::kubeconfig() else {
        return;
    };
    let path = path.to_string_lossy().into_owned();
    let _ = rustls::crypto::ring::default_provider().install_default();
    let kc = Kubeconfig::read_from(&path).unwrap();
    let admin_config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    let admin = Client::try_from(admin_config.clone()).unwrap();
    install_crds(&admin).await;

    let run = format!("{:x}", Utc::now().timestamp_millis());
    let ns = format!("gh-e2e-notify-{run}");
    let sys = format!("gh-e2e-notify-sys-{run}");
    let pp = PatchParams::apply("gatehouse-e2e-notify").force();
    for n in [&ns, &sys] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    // alice may request and bob may review (and nothing else).
    let people = format!("gh-e2e-notify-{run}");
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": people},
        "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["approvalrequests", "accessreviews"], "verbs": ["create", "get", "list", "watch"]}]
    }))
    .unwrap();
    Api::<ClusterRole>::all(admin.clone())
        .patch(&people, &pp, &apply(&role))
        .await
        .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": people},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": people},
        "subjects": [{"kind": "Group", "name": "developers", "apiGroup": "rbac.authorization.k8s.io"},
                     {"kind": "Group", "name": "sre", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<ClusterRoleBinding>::all(admin.clone())
        .patch(&people, &pp, &apply(&binding))
        .await
        .unwrap();
    let policy = json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessPolicy",
        "metadata": {"name": format!("gh-e2e-notify-{run}")},
        "spec": {"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
                 "namespaces": {"names": [ns]}, "duration": {"default": "1h", "max": "2h"},
                 "approval": {"reviewers": {"groups": ["sre"]}}}
    });
    let policy: gatehouse::api::AccessPolicy = serde_json::from_value(policy).unwrap();
    Api::<gatehouse::api::AccessPolicy>::all(admin.clone())
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();

    // The receiver, its Secret in the operator's namespace, and the channel.
    let rx = Receiver::default();
    let url = rx.serve("127.0.0.1:0".parse().unwrap()).await;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("hook".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("address".to_string(), ByteString(url.into_bytes())),
            ("token".to_string(), ByteString(KEY.as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), &sys)
        .create(&PostParams::default(), &secret)
        .await
        .unwrap();
    let channel_name = format!("gh-e2e-notify-{run}");
    let channel: NotificationChannel = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
        "metadata": {"name": channel_name},
        "spec": {"type": "webhook", "secretRef": {"name": "hook"}, "namespaces": [ns], "expiringSoonBefore": "10s"}
    }))
    .unwrap();
    let channels: Api<NotificationChannel> = Api::all(admin.clone());
    channels.create(&PostParams::default(), &channel).await.unwrap();

    let scene = Scene {
        admin: admin.clone(),
        alice: as_user(&admin_config, "alice", &["developers"]),
        bob: as_user(&admin_config, "bob", &["sre"]),
        ns: ns.clone(),
    };
    let mut operator = start_operator(&path, &sys);
    // The channel is Ready once the operator found its Secret.
    eventually("the channel to be Ready", Duration::from_secs(30), || {
        let channels = channels.clone();
        let name = channel_name.clone();
        async move {
            let c = channels.get(&name).await.ok()?;
            c.status?
                .conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == gatehouse::api::ConditionStatus::True)
                .then_some(())
        }
    })
    .await;

    // `kubectl gatehouse notify test`: the operator sends, the plugin prints the answer.
    // Off the test's thread: the receiver answers on it meanwhile.
    let (kubeconfig, name) = (path.clone(), channel_name.clone());
    let plugin = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
            .args(["notify", "test", &name])
            .env("KUBECONFIG", &kubeconfig)
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let printed = String::from_utf8_lossy(&plugin.stdout);
    assert!(
        plugin.status.success(),
        "{printed}{}",
        String::from_utf8_lossy(&plugin.stderr)
    );
    assert!(
        printed.contains("The endpoint answered HTTP 200:\nok"),
        "{printed}"
    );
    let test = rx
        .received()
        .into_iter()
        .find(|m| m.event == "Test")
        .expect("the test message arrived");
    assert!(hmac::verify(
        KEY.as_bytes(),
        &test.body,
        test.signature.as_deref().unwrap()
    ));

    // A full lifecycle, with a restart of the operator in the middle.
    let short = scene.request("alice-short", "30s").await;
    wait_for_message(&rx, "alice-short", "ReviewRequired", Duration::from_secs(20)).await;
    scene.review(&short, "Approve").await;
    wait_for_message(&rx, "alice-short", "Granted", Duration::from_secs(20)).await;
    let rejected = scene.request("alice-rejected", "1h").await;
    wait_for_message(&rx, "alice-rejected", "ReviewRequired", Duration::from_secs(20)).await;
    // Let the ledger write that follows the last answer land, then kill the
    // operator without warning and start another one (a crash between the
    // answer and the write is tests/notify_delivery.rs's business).
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(operator);
    scene.review(&rejected, "Reject").await;
    operator = start_operator(&path, &sys);
    wait_for_message(&rx, "alice-rejected", "Rejected", Duration::from_secs(30)).await;
    wait_for_message(&rx, "alice-short", "ExpiringSoon", Duration::from_secs(40)).await;
    wait_for_message(&rx, "alice-short", "Expired", Duration::from_secs(40)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let got = story(&rx);
    let want: Vec<(String, String)> = [
        ("alice-short", "ReviewRequired"),
        ("alice-short", "Approved"),
        ("alice-short", "Granted"),
        ("alice-rejected", "ReviewRequired"),
        ("alice-rejected", "Rejected"),
        ("alice-short", "ExpiringSoon"),
        ("alice-short", "Expired"),
    ]
    .iter()
    .map(|(r, e)| (r.to_string(), e.to_string()))
    .collect();
    let mut sorted_got = got.clone();
    sorted_got.sort();
    let mut sorted_want = want.clone();
    sorted_want.sort();
    assert_eq!(
        sorted_got, sorted_want,
        "exactly one message per event; received in order: {got:?}"
    );
    for m in rx.received() {
        let sig = m.signature.as_deref().unwrap();
        assert!(
            hmac::verify(KEY.as_bytes(), &m.body, sig),
            "every message is signed"
        );
    }
    eprintln!(
        "e2e notify: {} messages, one per event, across an operator restart",
        got.len()
    );

    // A receiver that takes 5 s over each message while a grant expires.
    rx.delay(Duration::from_secs(5));
    let slow = scene.request("alice-slow", "20s").await;
    scene.phase_becomes("alice-slow", Phase::Pending).await;
    scene.review(&slow, "Approve").await;
    let active = scene.phase_becomes("alice-slow", Phase::Active).await;
    let grant = active.status.as_ref().unwrap().grant.clone().unwrap();
    let expires_at = grant.expires_at.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin.clone(), &ns);
    let gone_at = eventually("the binding to go at expiry", Duration::from_secs(40), || {
        let bindings = bindings.clone();
        let name = grant.name.clone();
        async move { bindings.get_opt(&name).await.ok()?.is_none().then(Utc::now) }
    })
    .await;
    let lag = (gone_at - expires_at).num_milliseconds();
    eprintln!(
        "e2e notify: with a receiver taking 5 s per message, the binding was removed {lag} ms after expiresAt"
    );
    assert!(lag < 2000, "binding removed {lag} ms after expiresAt");
    assert!(lag > -500, "binding removed {lag} ms before expiresAt");
    // The slow receiver still gets every message, in the end.
    wait_for_message(&rx, "alice-slow", "Expired", Duration::from_secs(60)).await;

    drop(operator);
    let _ = channels.delete(&channel_name, &DeleteParams::default()).await;
    for n in [&ns, &sys] {
        let _ = Api::<Namespace>::all(admin.clone())
            .delete(n, &DeleteParams::default())
            .await;
    }
    let _ = Api::<gatehouse::api::AccessPolicy>::all(admin.clone())
        .delete(&format!("gh-e2e-notify-{run}"), &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(&people, &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(admin.clone())
        .delete(&people, &DeleteParams::default())
        .await;
}
