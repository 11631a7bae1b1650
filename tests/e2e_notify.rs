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

use support::{cluster::eventually, scene::Scene};

use std::{collections::BTreeMap, process::Command, time::Duration};

use chrono::Utc;
use gatehouse::{
    api::{AccessCampaign, AccessCertification, AccessReview, NotificationChannel, Phase},
    notify::hmac,
};
use k8s_openapi::{
    api::{
        core::v1::{Namespace, Secret},
        rbac::v1::RoleBinding,
    },
    ByteString,
};
use kube::{
    api::{Api, DeleteParams, PostParams},
    Client, ResourceExt,
};
use receiver::Receiver;
use serde_json::json;

const KEY: &str = "e2e-hmac-key";

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
    // The scenario's namespace, policy (alice asks, bob in sre approves) and
    // people; the operator here runs with the admin's rights, since it must act
    // in three namespaces (the channels' Secrets live in `sys`, the operator's).
    let Some(scene) = Scene::with_own_operators("notify").await else {
        return;
    };
    let admin = scene.admin.clone();
    let path = scene.cluster.kubeconfig.clone();
    let run = scene.cluster.run.clone();
    let ns = scene.ns.clone();
    let sys = format!("{ns}-sys");
    // Certification items and the bindings they review: out of the first
    // channel's namespace.
    let cert = format!("{ns}-cert");
    for n in [&sys, &cert] {
        let namespace: Namespace = serde_json::from_value(json!({"metadata": {"name": n}})).unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
    }
    // The certification run falls due within the test (one hour by default).
    let operator_args = [
        "--leader-election=false",
        "--lease-namespace",
        sys.as_str(),
        "--certification-min-review-window=10s",
    ];

    // The receiver, its Secret in the operator's namespace, and the channel.
    let rx = Receiver::default();
    let url = rx.serve("127.0.0.1:0".parse().unwrap()).await;
    let channel_name = format!("gh-e2e-notify-{run}");
    let spec = json!({"namespaces": [ns], "expiringSoonBefore": "10s"});
    channel(&admin, &sys, &channel_name, "hook", url, spec).await;
    let channels: Api<NotificationChannel> = Api::all(admin.clone());

    let mut operator = scene.start_operator(&path, "notify", &operator_args).await;
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
        printed.contains("The endpoint answered HTTP 200 in "),
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
    scene.approve(&short).await;
    wait_for_message(&rx, "alice-short", "Granted", Duration::from_secs(20)).await;
    let rejected = scene.request("alice-rejected", "1h").await;
    wait_for_message(&rx, "alice-rejected", "ReviewRequired", Duration::from_secs(20)).await;
    // Let the ledger write that follows the last answer land, then kill the
    // operator without warning and start another one (a crash between the
    // answer and the write is tests/notify_delivery.rs's business).
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(operator);
    scene.review(&scene.bob, "bob", "sre", &rejected, "Reject").await;
    operator = scene.start_operator(&path, "notify", &operator_args).await;
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
    scene.approve(&slow).await;
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
    for n in [&sys, &cert] {
        let _ = Api::<Namespace>::all(admin.clone())
            .delete(n, &DeleteParams::default())
            .await;
    }
    scene.finish().await;
}
