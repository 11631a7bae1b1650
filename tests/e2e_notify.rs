//! End-to-end notifications: the operator binary against a real API server
//! (`GATEHOUSE_E2E_KUBECONFIG`, see hack/control-plane/up.sh; skipped without
//! it, a failure when `GATEHOUSE_E2E_REQUIRED` is set), a webhook channel, and a
//! local HTTP receiver on 127.0.0.1 started by the test.
//!
//! - A full request lifecycle (waiting, approved, granted, expiring soon,
//!   expired) and a rejected request, with an operator restart (SIGKILL) in the
//!   middle: the receiver gets exactly one message per event.
//! - A certification run (two items, one decided, one left to its due time) on
//!   a second channel, across the same restart: exactly one message per event
//!   (run started, item waiting, reminder, overdue, run completed).
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
    api::{AccessCampaign, AccessCertification, AccessReview, ApprovalRequest, NotificationChannel, Phase},
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

/// A webhook channel named `name` over the Secret `secret` (in the operator's
/// namespace `sys`, holding the receiver's address and the HMAC key), with `spec`
/// merged in; returns once the operator has found its Secret.
async fn channel(admin: &Client, sys: &str, name: &str, secret: &str, url: String, spec: serde_json::Value) {
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(secret.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("address".to_string(), ByteString(url.into_bytes())),
            ("token".to_string(), ByteString(KEY.as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    Api::<Secret>::namespaced(admin.clone(), sys)
        .create(&PostParams::default(), &s)
        .await
        .unwrap();
    let mut body = json!({"type": "webhook", "secretRef": {"name": secret}});
    for (k, v) in spec.as_object().into_iter().flatten() {
        body[k] = v.clone();
    }
    let channel: NotificationChannel = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
        "metadata": {"name": name}, "spec": body
    }))
    .unwrap();
    Api::<NotificationChannel>::all(admin.clone())
        .create(&PostParams::default(), &channel)
        .await
        .unwrap();
}

async fn channel_ready(admin: &Client, name: &str) {
    let channels: Api<NotificationChannel> = Api::all(admin.clone());
    eventually(
        &format!("the channel {name} to be Ready"),
        Duration::from_secs(30),
        || {
            let channels = channels.clone();
            async move {
                let c = channels.get(name).await.ok()?;
                c.status?
                    .conditions
                    .iter()
                    .any(|c| c.type_ == "Ready" && c.status == gatehouse::api::ConditionStatus::True)
                    .then_some(())
            }
        },
    )
    .await;
}

/// The certification scene: two RoleBindings (carol's and dave's `view`) in
/// `ns`, and a campaign over them due in `due`, reviewed by bob; returns the
/// campaign's name and the two items once launched.
async fn certification(
    admin: &Client,
    ns: &str,
    run: &str,
    due: &str,
) -> (String, AccessCertification, AccessCertification) {
    let label = format!("e2e-notify-{run}");
    for who in ["carol", "dave"] {
        let rb: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": format!("standing-{who}"), "labels": {"e2e-notify-cert": label}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": who, "apiGroup": "rbac.authorization.k8s.io"}]
        }))
        .unwrap();
        Api::<RoleBinding>::namespaced(admin.clone(), ns)
            .create(&PostParams::default(), &rb)
            .await
            .unwrap();
    }
    let name = format!("gh-e2e-notify-{run}");
    let campaign: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": name},
        "spec": {"duration": due, "reviewNamespace": ns,
                 "scope": {"bindingSelector": {"matchLabels": {"e2e-notify-cert": label}}},
                 "reviewers": {"levels": [{"name": "owners", "users": ["bob"]}]}}
    }))
    .unwrap();
    Api::<AccessCampaign>::all(admin.clone())
        .create(&PostParams::default(), &campaign)
        .await
        .unwrap();
    let items: Api<AccessCertification> = Api::namespaced(admin.clone(), ns);
    let of = |list: &[AccessCertification], who: &str| {
        list.iter()
            .find(|i| i.spec.subject.name == who && i.status.is_some())
            .cloned()
    };
    let (carol, dave) = eventually("the campaign's two items", Duration::from_secs(30), || {
        let items = items.clone();
        async move {
            let list = items.list(&Default::default()).await.ok()?.items;
            Some((of(&list, "carol")?, of(&list, "dave")?))
        }
    })
    .await;
    (name, carol, dave)
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
    // Certification items and the bindings they review: out of the first
    // channel's namespace.
    let cert = format!("gh-e2e-notify-cert-{run}");
    let pp = PatchParams::apply("gatehouse-e2e-notify").force();
    for n in [&ns, &sys, &cert] {
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
    let channel_name = format!("gh-e2e-notify-{run}");
    let spec = json!({"namespaces": [ns], "expiringSoonBefore": "10s"});
    channel(&admin, &sys, &channel_name, "hook", url, spec).await;
    let channels: Api<NotificationChannel> = Api::all(admin.clone());

    let scene = Scene {
        admin: admin.clone(),
        alice: as_user(&admin_config, "alice", &["developers"]),
        bob: as_user(&admin_config, "bob", &["sre"]),
        ns: ns.clone(),
    };
    let mut operator = start_operator(&path, &sys);
    // The channel is Ready once the operator found its Secret.
    channel_ready(&admin, &channel_name).await;

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

    // A certification run, on a channel of its own (its campaign's events only),
    // due in 40 s with a reminder 20 s before; bob keeps carol's access at once
    // and leaves dave's undecided. The restart below falls in the middle of it.
    let rx_cert = Receiver::default();
    let cert_url = rx_cert.serve("127.0.0.1:0".parse().unwrap()).await;
    let cert_channel = format!("gh-e2e-notify-{run}-cert");
    let certification_events = [
        "CertificationRunStarted",
        "CertificationItemWaiting",
        "CertificationReminder",
        "CertificationEscalated",
        "CertificationOverdue",
        "CertificationRunCompleted",
    ];
    let spec = json!({"campaigns": [format!("gh-e2e-notify-{run}")], "events": certification_events,
                      "remindBefore": "20s"});
    channel(&admin, &sys, &cert_channel, "hook-cert", cert_url, spec).await;
    channel_ready(&admin, &cert_channel).await;
    let (campaign, carol, dave) = certification(&admin, &cert, &run, "40s").await;
    let (carol, dave) = (carol.name_any(), dave.name_any());
    let waiting = Duration::from_secs(20);
    wait_for_message(&rx_cert, &campaign, "CertificationRunStarted", waiting).await;
    wait_for_message(&rx_cert, &carol, "CertificationItemWaiting", waiting).await;
    wait_for_message(&rx_cert, &dave, "CertificationItemWaiting", waiting).await;
    let carol_item = Api::<AccessCertification>::namespaced(admin.clone(), &cert)
        .get(&carol)
        .await
        .unwrap();
    // Every group bob is in, as the admission policy for certification reviews
    // asks where it is installed (the other suites install it on this cluster).
    let keep: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": format!("{carol}-bob"), "namespace": cert},
        "spec": {"certification": {"name": carol, "uid": carol_item.uid().unwrap()}, "decision": "Approve",
                 "reviewer": {"username": "bob", "groups": ["sre", "system:authenticated"]}, "comment": "still on call"}
    }))
    .unwrap();
    Api::<AccessReview>::namespaced(scene.bob.clone(), &cert)
        .create(&PostParams::default(), &keep)
        .await
        .unwrap();
    let items: Api<AccessCertification> = Api::namespaced(admin.clone(), &cert);
    eventually("carol's item to be Approved", Duration::from_secs(20), || {
        let items = items.clone();
        let carol = carol.clone();
        async move {
            let decision = items.get(&carol).await.ok()?.status?.decision;
            (decision == gatehouse::api::ItemDecision::Approved).then_some(())
        }
    })
    .await;

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

    // The certification run, to its due time: dave's item is reminded, then
    // overdue (kept, `onNoDecision: Keep`), and the run completes; carol's
    // decided item gets neither.
    let due = Duration::from_secs(60);
    wait_for_message(&rx_cert, &dave, "CertificationReminder", due).await;
    wait_for_message(&rx_cert, &dave, "CertificationOverdue", due).await;
    wait_for_message(&rx_cert, &campaign, "CertificationRunCompleted", due).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut got = story(&rx_cert);
    let order = got.clone();
    got.sort();
    let mut want: Vec<(String, String)> = [
        (&campaign, "CertificationRunStarted"),
        (&carol, "CertificationItemWaiting"),
        (&dave, "CertificationItemWaiting"),
        (&dave, "CertificationReminder"),
        (&dave, "CertificationOverdue"),
        (&campaign, "CertificationRunCompleted"),
    ]
    .iter()
    .map(|(o, e)| (o.to_string(), e.to_string()))
    .collect();
    want.sort();
    assert_eq!(
        got, want,
        "exactly one message per certification event; received in order: {order:?}"
    );
    for m in rx_cert.received() {
        assert!(
            hmac::verify(KEY.as_bytes(), &m.body, m.signature.as_deref().unwrap()),
            "every message is signed"
        );
    }
    eprintln!(
        "e2e notify: certification run, {} messages, one per event, across an operator restart",
        order.len()
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
    let _ = channels.delete(&cert_channel, &DeleteParams::default()).await;
    let _ = Api::<AccessCampaign>::all(admin.clone())
        .delete(&campaign, &DeleteParams::default())
        .await;
    for n in [&ns, &sys, &cert] {
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
