//! Delivery against an in-process fake API server and a local HTTP receiver:
//! signed messages, retries on 5xx and on a refused connection, nothing twice
//! after a restart, and the crash between sending and recording.

#[path = "notify/fixtures.rs"]
mod fixtures;
#[path = "notify/receiver.rs"]
mod receiver;

use std::{collections::BTreeMap, sync::Arc, time::Duration};

use chrono::{DateTime, Utc};
use fixtures::*;
use gatehouse::{
    api::{AccessCampaign, AccessCertification, ApprovalRequest, NotificationChannel},
    controller::watch::load_once,
    metrics::Metrics,
    notify::{hmac, ledger::ledger_name, Notifier, Settings},
    store::Cache,
};
use k8s_openapi::{
    api::core::v1::{ConfigMap, Secret},
    ByteString,
};
use kube::{
    api::{Api, PostParams},
    core::{ApiResource, DynamicObject},
    Client, ResourceExt,
};
use kube_fake_client::ClientBuilder;
use receiver::Receiver;
use serde_json::json;

const NS: &str = "gatehouse-system";
const KEY: &str = "hmac-key-of-the-test";

fn secret(name: &str, address: &str) -> serde_json::Value {
    let s = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(name.into()),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            ("address".to_string(), ByteString(address.as_bytes().to_vec())),
            ("token".to_string(), ByteString(KEY.as_bytes().to_vec())),
        ])),
        ..Default::default()
    };
    let mut v = serde_json::to_value(s).unwrap();
    v["apiVersion"] = json!("v1");
    v["kind"] = json!("Secret");
    v
}

async fn fake(objects: Vec<serde_json::Value>) -> Client {
    ClientBuilder::new()
        .with_resource::<ApprovalRequest>()
        .with_resource::<NotificationChannel>()
        .with_status_subresource::<ApprovalRequest>()
        .with_status_subresource::<NotificationChannel>()
        .with_runtime_objects(objects)
        .build()
        .await
        .unwrap()
}

/// The fake stores custom resources as namespaced: the (cluster-scoped) channel
/// goes under a placeholder namespace; listing across namespaces finds it.
async fn create_channel(client: &Client, ch: &NotificationChannel) {
    let resource = ApiResource::erase::<NotificationChannel>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "fake-cluster-scope", &resource);
    let obj: DynamicObject = serde_json::from_value(serde_json::to_value(ch).unwrap()).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

fn settings() -> Settings {
    let mut s = Settings::new(NS);
    s.backoff_min = Duration::from_millis(50);
    s.backoff_max = Duration::from_millis(200);
    s.channel_poll = Duration::from_millis(50);
    s.attempt_timeout = Duration::from_secs(2);
    s
}

/// An operator's notifier (fresh memory, as after a restart) on the fake, with
/// its clock at `now`. It stops when its handle is dropped or its task aborted.
async fn start(client: &Client, now: DateTime<Utc>) -> (Notifier, tokio::task::JoinHandle<()>, Arc<Metrics>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cache, mut writers) = Cache::new();
    load_once(client, &cache, &mut writers.notification_channels)
        .await
        .unwrap();
    load_once(client, &cache, &mut writers.requests).await.unwrap();
    let metrics = Arc::new(Metrics::default());
    let (n, task) = Notifier::start(
        client.clone(),
        cache,
        metrics.clone(),
        settings(),
        Arc::new(move || now),
    )
    .unwrap();
    (n, task, metrics)
}

async fn eventually(what: &str, f: impl Fn() -> bool) {
    for _ in 0..100 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out waiting for {what}");
}

/// Long enough for a wrongly repeated message to arrive.
async fn quiet() {
    tokio::time::sleep(Duration::from_millis(600)).await;
}

async fn scene(channel_extra: serde_json::Value) -> (Client, Receiver, String) {
    let rx = Receiver::default();
    let url = rx.serve("127.0.0.1:0".parse().unwrap()).await;
    let client = fake(vec![secret("hook", &url)]).await;
    create_channel(&client, &channel("ops", "webhook", "hook", channel_extra)).await;
    (client, rx, url)
}

#[tokio::test]
async fn a_webhook_gets_one_signed_message_per_event() {
    let (client, rx, _) = scene(json!({})).await;
    let (notifier, task, metrics) = start(&client, t("2026-11-30T09:06:00Z")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    notifier.observe_request(&active());
    eventually("Approved and Granted", || rx.received().len() == 2).await;
    // The same status observed again (a second reconcile, a re-list) sends nothing.
    notifier.observe_request(&active());
    quiet().await;
    let got = rx.received();
    assert_eq!(got.len(), 2);
    let uid = "0b8c2a4e-1111-4c3b-9f00-5a1e2d3c4b5a";
    for (m, event) in got.iter().zip(["Approved", "Granted"]) {
        assert_eq!(m.event, event);
        assert_eq!(m.delivery, hmac::delivery_id(uid, event, "ops"));
        assert_eq!(m.json()["delivery"], m.delivery);
        let sig = m.signature.as_deref().expect("webhook messages are signed");
        assert!(
            hmac::verify(KEY.as_bytes(), &m.body, sig),
            "the signature verifies"
        );
        assert!(!hmac::verify(b"another key", &m.body, sig));
    }
    assert!(metrics
        .render()
        .contains("gatehouse_notifications_delivered_total{channel=\"ops\",what=\"Granted\"} 1"));
    task.abort();
}

#[tokio::test]
async fn server_errors_are_retried_with_the_same_delivery_id() {
    let (client, rx, _) = scene(json!({"events": ["Granted"]})).await;
    rx.fail_first(3);
    let (notifier, task, metrics) = start(&client, t("2026-11-30T09:06:00Z")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    notifier.observe_request(&active());
    eventually("the Granted message after three 503s", || {
        rx.received().len() == 1
    })
    .await;
    quiet().await;
    assert_eq!(rx.attempts(), 4, "three refusals, then one success, then nothing");
    assert_eq!(rx.received().len(), 1);
    let failures = metrics.render();
    assert!(
        failures.contains("gatehouse_notification_failures_total{channel=\"ops\",what=\"status_5xx\"} 3"),
        "{failures}"
    );
    task.abort();
}

#[tokio::test]
async fn a_refused_connection_is_retried_until_the_endpoint_is_up() {
    // A port nobody listens on (yet).
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let url = format!("http://{addr}/hook");
    let client = fake(vec![secret("hook", &url)]).await;
    create_channel(
        &client,
        &channel("ops", "webhook", "hook", json!({"events": ["Granted"]})),
    )
    .await;
    let (notifier, task, metrics) = start(&client, t("2026-11-30T09:06:00Z")).await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    notifier.observe_request(&active());
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        metrics.render().contains("what=\"connect\""),
        "attempts were refused"
    );
    let rx = Receiver::default();
    rx.serve(addr).await;
    eventually("the message once the endpoint listens", || {
        rx.received().len() == 1
    })
    .await;
    quiet().await;
    assert_eq!(rx.received().len(), 1);
    task.abort();
}

async fn request_in_api(client: &Client, req: &ApprovalRequest) {
    let api: Api<ApprovalRequest> = Api::namespaced(client.clone(), "team");
    let mut r = req.clone();
    r.metadata.resource_version = None;
    let created = api.create(&PostParams::default(), &r).await.unwrap();
    let mut with_status = created.clone();
    with_status.status = req.status.clone();
    api.replace_status("alice-view-x7k2p", &PostParams::default(), &with_status)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_restart_sends_nothing_twice() {
    let (client, rx, _) = scene(json!({})).await;
    request_in_api(&client, &active()).await;
    // The first operator finds the request in memory at start-up and delivers.
    let (_first_handle, first, _) = start(&client, t("2026-11-30T09:06:00Z")).await;
    eventually("Approved and Granted", || rx.received().len() == 2).await;
    first.abort();
    // A new operator (or a new leader) derives the same events and sends nothing.
    let (_second_handle, second, _) = start(&client, t("2026-11-30T09:07:00Z")).await;
    quiet().await;
    assert_eq!(rx.received().len(), 2);
    second.abort();
    // Later, the expiry warning is new: exactly that one is sent.
    let (_third_handle, third, _) = start(&client, t("2026-11-30T10:56:00Z")).await;
    eventually("ExpiringSoon", || rx.received().len() == 3).await;
    quiet().await;
    let events: Vec<String> = rx.received().iter().map(|m| m.event.clone()).collect();
    assert_eq!(events, ["Approved", "Granted", "ExpiringSoon"]);
    third.abort();
}

#[tokio::test]
async fn a_crash_between_send_and_record_resends_once_with_the_same_id() {
    let (client, rx, _) = scene(json!({})).await;
    request_in_api(&client, &active()).await;
    // The previous leader recorded Approved as delivered, and was stopped after
    // sending Granted but before recording it: the ledger says `sending`.
    let uid = "0b8c2a4e-1111-4c3b-9f00-5a1e2d3c4b5a";
    let approved = hmac::delivery_id(uid, "Approved", "ops");
    let granted = hmac::delivery_id(uid, "Granted", "ops");
    let ledger = ConfigMap {
        metadata: kube::api::ObjectMeta {
            name: Some(ledger_name("ops")),
            namespace: Some(NS.into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([
            (approved.clone(), "delivered 1900000000".to_string()),
            (granted.clone(), "sending 1900000000".to_string()),
        ])),
        ..Default::default()
    };
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), NS);
    cms.create(&PostParams::default(), &ledger).await.unwrap();

    let (_handle, task, _) = start(&client, t("2026-11-30T09:07:00Z")).await;
    eventually("Granted sent again", || rx.received().len() == 1).await;
    quiet().await;
    let got = rx.received();
    assert_eq!(got.len(), 1, "Approved is not repeated");
    assert_eq!(got[0].event, "Granted");
    assert_eq!(
        got[0].delivery, granted,
        "the repeat carries the same id, so a receiver can drop it"
    );
    let data = cms.get(&ledger_name("ops")).await.unwrap().data.unwrap();
    assert!(data[&granted].starts_with("delivered "), "{data:?}");
    task.abort();

    // And after that, a further restart sends nothing.
    let (_again_handle, again, _) = start(&client, t("2026-11-30T09:08:00Z")).await;
    quiet().await;
    assert_eq!(rx.received().len(), 1);
    again.abort();
}

#[tokio::test]
async fn an_endpoint_that_keeps_failing_is_retried_by_the_next_leader() {
    let (client, rx, _) = scene(json!({"events": ["Granted"]})).await;
    rx.fail_first(usize::MAX);
    request_in_api(&client, &active()).await;
    let (_first_handle, first, metrics) = start(&client, t("2026-11-30T09:06:00Z")).await;
    eventually("attempts", || rx.attempts() >= 2).await;
    first.abort();
    assert!(metrics.render().contains("status_5xx"));
    // 503 is retried; nothing was accepted, so a new leader tries again (at least once).
    let before = rx.attempts();
    let (_second_handle, second, _) = start(&client, t("2026-11-30T09:07:00Z")).await;
    eventually("retried by the next leader", || rx.attempts() > before).await;
    second.abort();
    assert!(rx.received().is_empty());
}

/// Puts an item and its campaign in the fake, with their statuses.
async fn certification_in_api(client: &Client) {
    let items: Api<AccessCertification> = Api::namespaced(client.clone(), NS);
    let mut i = item();
    let status = i.status.take();
    let created = items.create(&PostParams::default(), &i).await.unwrap();
    let mut with_status = created.clone();
    with_status.status = status;
    items
        .replace_status(&created.name_any(), &PostParams::default(), &with_status)
        .await
        .unwrap();
    // The fake keeps cluster-scoped custom resources under a placeholder namespace.
    let resource = ApiResource::erase::<AccessCampaign>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "fake-cluster-scope", &resource);
    let obj: DynamicObject = serde_json::from_value(serde_json::to_value(campaign(0, 0)).unwrap()).unwrap();
    api.create(&PostParams::default(), &obj).await.unwrap();
}

/// A notifier whose memory holds the certification items and campaigns too.
async fn start_with_certification(
    client: &Client,
    now: DateTime<Utc>,
) -> (Notifier, tokio::task::JoinHandle<()>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let (cache, mut writers) = Cache::new();
    load_once(client, &cache, &mut writers.notification_channels)
        .await
        .unwrap();
    load_once(client, &cache, &mut writers.items).await.unwrap();
    load_once(client, &cache, &mut writers.campaigns).await.unwrap();
    // The handle must outlive the test's use: dropping the last one stops the notifier.
    Notifier::start(
        client.clone(),
        cache,
        Arc::new(Metrics::default()),
        settings(),
        Arc::new(move || now),
    )
    .unwrap()
}

#[tokio::test]
async fn certification_events_from_memory_are_sent_once_across_a_restart() {
    let rx = Receiver::default();
    let url = rx.serve("127.0.0.1:0".parse().unwrap()).await;
    let client = ClientBuilder::new()
        .with_resource::<NotificationChannel>()
        .with_resource::<AccessCertification>()
        .with_resource::<AccessCampaign>()
        .with_status_subresource::<NotificationChannel>()
        .with_status_subresource::<AccessCertification>()
        .with_status_subresource::<AccessCampaign>()
        .with_runtime_objects(vec![secret("hook", &url)])
        .build()
        .await
        .unwrap();
    // A channel older than the run (a channel hears nothing from before it existed).
    let mut ops = channel("ops", "webhook", "hook", json!({}));
    ops.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        k8s_openapi::jiff::Timestamp::from_second(t("2026-09-01T00:00:00Z").timestamp()).unwrap(),
    ));
    create_channel(&client, &ops).await;
    certification_in_api(&client).await;
    // The leader finds the open item and the run in memory at start-up.
    let (_first_handle, first) = start_with_certification(&client, t("2026-10-01T00:05:00Z")).await;
    eventually("the run start and the waiting item", || rx.received().len() == 2).await;
    first.abort();
    let mut events: Vec<String> = rx.received().iter().map(|m| m.event.clone()).collect();
    events.sort();
    // A new leader derives the same notices and sends none of them again.
    let (_second_handle, second) = start_with_certification(&client, t("2026-10-01T00:06:00Z")).await;
    quiet().await;
    assert_eq!(rx.received().len(), 2, "{:?}", rx.received());
    second.abort();
    // A day before it is due, the reminder is new: exactly that one goes out.
    let (_third_handle, third) = start_with_certification(&client, t("2026-10-14T00:30:00Z")).await;
    eventually("the reminder", || rx.received().len() == 3).await;
    quiet().await;
    assert_eq!(rx.received().len(), 3);
    third.abort();
    assert_eq!(events, ["CertificationItemWaiting", "CertificationRunStarted"]);
    assert_eq!(rx.received()[2].event, "CertificationReminder");
}
