//! What notifications say and when: notices derived from stored status, channel
//! filters, and the exact payload of each channel type (golden files in
//! tests/golden/notify/, rewritten with `UPDATE_GOLDEN=1`: plain JSON a reviewer
//! reads in the diff, and the sample payloads docs/notifications.md shows).

#[path = "notify/fixtures.rs"]
mod fixtures;

use std::path::PathBuf;

use chrono::Duration;
use fixtures::*;
use gatehouse::{
    api::{ChannelType, NotificationEvent as E},
    notify::{
        certification::{item_notices, run_notices},
        channel::Channel,
        events::{request_notices, Leads, Notice},
        hmac,
        message::message,
        render::{render, Envelope},
    },
};
use serde_json::json;

fn events(notices: &[Notice]) -> Vec<String> {
    notices.iter().map(Notice::key).collect()
}

#[test]
fn a_request_tells_its_story_one_event_at_a_time() {
    let leads = Leads::default();
    // Waiting: reviewers are asked; not yet escalated.
    let n = request_notices(&pending(), t("2026-11-30T09:10:00Z"), leads);
    assert_eq!(events(&n), ["ReviewRequired"]);
    // Past the escalation delay (30m after creation): escalated too.
    let n = request_notices(&pending(), t("2026-11-30T09:31:00Z"), leads);
    assert_eq!(events(&n), ["ReviewRequired", "Escalated"]);
    assert_eq!(n[1].at, t("2026-11-30T09:30:00Z"));
    // Approved and granted: the review request is over, and is not sent again.
    let n = request_notices(&active(), t("2026-11-30T09:06:00Z"), leads);
    assert_eq!(events(&n), ["Approved", "Granted"]);
    // Ten minutes before expiry.
    let n = request_notices(&active(), t("2026-11-30T10:55:00Z"), leads);
    assert_eq!(events(&n), ["Approved", "Granted", "ExpiringSoon"]);
    assert_eq!(n[2].at, t("2026-11-30T10:55:00Z"));
    let n = request_notices(&active(), t("2026-11-30T10:54:59Z"), leads);
    assert_eq!(events(&n), ["Approved", "Granted"], "not a second early");
    // Expired: the warning is moot, the end is told.
    let n = request_notices(&expired(), t("2026-11-30T11:05:01Z"), leads);
    assert_eq!(events(&n), ["Approved", "Granted", "Expired"]);
    let n = request_notices(&revoked(), t("2026-11-30T10:00:01Z"), leads);
    assert_eq!(events(&n).last().unwrap(), "Revoked");
}

#[test]
fn a_grant_shorter_than_the_lead_gets_no_expiry_warning() {
    let leads = Leads {
        expiring_soon: Duration::hours(3),
        ..Leads::default()
    };
    let n = request_notices(&active(), t("2026-11-30T11:00:00Z"), leads);
    assert_eq!(events(&n), ["Approved", "Granted"]);
}

#[test]
fn the_same_status_always_gives_the_same_keys_and_delivery_ids() {
    let a = request_notices(&active(), t("2026-11-30T10:56:00Z"), Leads::default());
    let b = request_notices(&active(), t("2026-11-30T10:59:00Z"), Leads::default());
    assert_eq!(a, b, "derived from status, not from when it is looked at");
    let id = |n: &Notice| hmac::delivery_id(&n.object.uid, &n.key(), "ops");
    assert_eq!(
        a.iter().map(id).collect::<Vec<_>>(),
        b.iter().map(id).collect::<Vec<_>>()
    );
}

#[test]
fn certification_items_and_runs_have_their_events() {
    let leads = Leads::default();
    let n = item_notices(&item(), t("2026-10-02T00:00:00Z"), leads);
    assert_eq!(events(&n), ["CertificationItemWaiting/owners"]);
    let n = item_notices(&item(), t("2026-10-14T01:00:00Z"), leads);
    assert_eq!(
        events(&n),
        ["CertificationItemWaiting/owners", "CertificationReminder"]
    );
    let mut overdue = item();
    let s = overdue.status.as_mut().unwrap();
    s.levels[0].state = gatehouse::api::LevelState::Expired;
    s.closed_by = Some(gatehouse::api::ClosedBy::NoDecisionRevoke);
    s.closed_at = Some(t("2026-10-15T00:00:00Z"));
    let n = item_notices(&overdue, t("2026-10-15T00:00:05Z"), leads);
    assert_eq!(events(&n), ["CertificationOverdue"]);

    let n = run_notices(&campaign(3, 1), t("2026-10-02T00:00:00Z"));
    assert_eq!(events(&n), ["CertificationRunStarted/quarterly-20261001-0000"]);
    let n = run_notices(&campaign(10, 2), t("2026-10-05T00:00:00Z"));
    assert_eq!(
        events(&n),
        ["CertificationRunCompleted/quarterly-20261001-0000"],
        "all decided"
    );
    let n = run_notices(&campaign(8, 1), t("2026-10-15T00:00:01Z"));
    assert_eq!(
        events(&n),
        ["CertificationRunCompleted/quarterly-20261001-0000"],
        "due"
    );
}

fn config(extra: serde_json::Value) -> Channel {
    Channel::try_from(&channel("ops", "slack", "ops-webhook", extra)).unwrap()
}

#[test]
fn channels_take_what_their_filters_name() {
    let now = t("2026-11-30T09:31:00Z");
    let waiting = request_notices(&pending(), now, Leads::default());
    let granted = request_notices(&active(), t("2026-11-30T09:06:00Z"), Leads::default());
    let run = run_notices(&campaign(3, 1), t("2026-10-02T00:00:00Z"));
    let all = config(json!({}));
    assert!(waiting.iter().chain(&granted).chain(&run).all(|n| all.wants(n)));

    let sre = config(json!({"reviewerGroups": ["sre"], "events": ["ReviewRequired", "Granted"]}));
    assert!(sre.wants(&waiting[0]));
    assert!(!sre.wants(&waiting[1]), "Escalated is not among its events");
    assert!(
        sre.wants(&granted[1]),
        "reviewerGroups filters review events only"
    );
    let managers = config(json!({"reviewerGroups": ["managers"]}));
    assert!(!managers.wants(&waiting[0]), "sre reviews it, not managers");

    let other_ns = config(json!({"namespaces": ["payments"]}));
    assert!(!other_ns.wants(&granted[1]));
    assert!(!other_ns.wants(&run[0]), "a run is in no namespace");
    let team = config(json!({"namespaces": ["team"], "policies": ["team-view"]}));
    assert!(team.wants(&granted[1]));
    let other_policy = config(json!({"policies": ["prod-admin"]}));
    assert!(!other_policy.wants(&granted[1]));
    assert!(other_policy.wants(&run[0]), "policies filter request events only");
    assert!(!config(json!({"campaigns": ["yearly"]})).wants(&run[0]));

    assert!(Channel::try_from(&channel("x", "slack", "s", json!({"expiringSoonBefore": "0s"}))).is_err());
}

#[test]
fn nothing_older_than_the_channel_or_the_catch_up_window_is_sent() {
    let ch = config(json!({}));
    let granted = request_notices(&active(), t("2026-11-30T09:06:00Z"), Leads::default());
    let n = &granted[1];
    assert!(ch.in_window(n, t("2026-11-30T09:06:00Z"), Duration::hours(1)));
    assert!(!ch.in_window(n, t("2026-11-30T10:06:01Z"), Duration::hours(1)));
    let mut newer = channel("late", "slack", "s", json!({}));
    newer.metadata.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
        "2026-11-30T10:00:00Z".parse().unwrap(),
    ));
    let late = Channel::try_from(&newer).unwrap();
    assert!(!late.in_window(n, t("2026-11-30T10:00:05Z"), Duration::hours(1)));
}

#[test]
fn messages_say_who_what_where_how_long_why_and_the_command() {
    let n = &request_notices(&pending(), t("2026-11-30T09:10:00Z"), Leads::default())[0];
    let m = message(n);
    let field = |k: &str| m.fields.iter().find(|(l, _)| *l == k).map(|(_, v)| v.clone());
    assert_eq!(field("Requester").as_deref(), Some("alice"));
    assert_eq!(field("Role").as_deref(), Some("ClusterRole/view"));
    assert_eq!(field("Where").as_deref(), Some("namespace team"));
    assert_eq!(field("Duration").as_deref(), Some("2h"));
    assert_eq!(field("Reason").as_deref(), Some("debug checkout <!channel> & co"));
    assert_eq!(field("Reviewers").as_deref(), Some("group sre"));
    assert!(m
        .commands
        .contains(&"kubectl gatehouse approve alice-view-x7k2p -n team --comment '<why>'".to_string()));
    let n = &request_notices(&active(), t("2026-11-30T10:56:00Z"), Leads::default())[2];
    let m = message(n);
    assert_eq!(
        m.commands[0],
        "kubectl gatehouse request view -n team --for 2h --reason '<why>'"
    );
    let n = request_notices(&revoked(), t("2026-11-30T10:00:01Z"), Leads::default());
    let m = message(n.last().unwrap());
    assert!(m.text.contains("was revoked by carol"), "{}", m.text);
}

fn golden(name: &str, value: &serde_json::Value) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden/notify")
        .join(name);
    let text = serde_json::to_string_pretty(value).unwrap() + "\n";
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &text).unwrap();
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 writes it)", path.display()));
    assert_eq!(
        text, want,
        "{name} differs from its golden file (UPDATE_GOLDEN=1 rewrites it)"
    );
}

fn payload(type_: ChannelType, n: &Notice) -> serde_json::Value {
    let m = message(n);
    let id = hmac::delivery_id(&n.object.uid, &n.key(), "ops");
    render(type_, &Envelope::of(n, &m, &id, "ops"))
}

#[test]
fn payloads_match_their_golden_files() {
    let waiting = &request_notices(&pending(), t("2026-11-30T09:10:00Z"), Leads::default())[0];
    let granted = &request_notices(&active(), t("2026-11-30T09:06:00Z"), Leads::default())[1];
    let expired = request_notices(&expired(), t("2026-11-30T11:05:01Z"), Leads::default());
    let expired = expired.last().unwrap();
    let item = &item_notices(&item(), t("2026-10-02T00:00:00Z"), Leads::default())[0];
    let run = &run_notices(&campaign(9, 2), t("2026-10-15T00:00:01Z"))[0];
    for (type_, tag) in [
        (ChannelType::Slack, "slack"),
        (ChannelType::MsTeams, "msteams"),
        (ChannelType::Webhook, "webhook"),
    ] {
        golden(&format!("{tag}-review-required.json"), &payload(type_, waiting));
        golden(&format!("{tag}-granted.json"), &payload(type_, granted));
    }
    golden("webhook-expired.json", &payload(ChannelType::Webhook, expired));
    golden(
        "slack-certification-item-waiting.json",
        &payload(ChannelType::Slack, item),
    );
    golden(
        "webhook-certification-run-completed.json",
        &payload(ChannelType::Webhook, run),
    );
}

#[test]
fn chat_payloads_cannot_be_used_to_ping_or_disguise_links() {
    let waiting = &request_notices(&pending(), t("2026-11-30T09:10:00Z"), Leads::default())[0];
    let text = payload(ChannelType::Slack, waiting).to_string();
    assert!(!text.contains("<!channel>"), "{text}");
    assert!(text.contains("&lt;!channel&gt; &amp; co"));
    // Teams reads Markdown in every text of a card: the same reason is shown
    // as written, its markup escaped.
    let teams = payload(ChannelType::MsTeams, waiting);
    let facts = &teams["attachments"][0]["content"]["body"][2]["facts"];
    let reason = facts
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["title"] == "Reason")
        .unwrap();
    assert_eq!(reason["value"], "debug checkout \\<!channel\\> & co");
}

#[test]
fn the_webhook_payload_is_typed_and_complete() {
    let granted = &request_notices(&active(), t("2026-11-30T09:06:00Z"), Leads::default())[1];
    let p = payload(ChannelType::Webhook, granted);
    assert_eq!(p["event"], "Granted");
    assert_eq!(p["object"]["uid"], "0b8c2a4e-1111-4c3b-9f00-5a1e2d3c4b5a");
    assert_eq!(p["details"]["expiresAt"], "2026-11-30T11:05:00Z");
    assert_eq!(p["details"]["approvers"], json!(["bob"]));
    assert_eq!(
        p["delivery"],
        hmac::delivery_id(&granted.object.uid, "Granted", "ops")
    );
    for e in E::ALL {
        assert!(!e.as_str().is_empty());
    }
}

#[test]
fn the_expired_message_says_what_the_grant_was_used_for() {
    let mut req = expired();
    if let Some(s) = req.status.as_mut() {
        s.usage = Some(gatehouse::api::GrantUsage {
            requests: 14,
            last_used_at: None,
            top_actions: vec!["get pods".into(), "create pods/exec".into()],
            summary: "used 14 times: get pods, create pods/exec".into(),
        });
    }
    let n = request_notices(&req, t("2026-11-30T11:05:01Z"), Leads::default());
    let m = message(n.iter().find(|n| n.key() == "Expired").unwrap());
    assert!(
        m.fields
            .iter()
            .any(|(k, v)| *k == "Usage" && v == "used 14 times: get pods, create pods/exec"),
        "{m:?}"
    );
    // Without evidence there is no such line.
    let n = request_notices(&expired(), t("2026-11-30T11:05:01Z"), Leads::default());
    let m = message(n.iter().find(|n| n.key() == "Expired").unwrap());
    assert!(m.fields.iter().all(|(k, _)| *k != "Usage"));
}

/// The webhook payload is a public contract (docs/notifications.md): the manual
/// shows the golden schema, its enums are the operator's wire names, and every
/// payload the operator renders validates against it.
#[test]
fn the_webhook_payload_keeps_its_versioned_schema() {
    use serde_json::Value;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let read = |p: &str| std::fs::read_to_string(root.join(p)).unwrap();
    let schema: Value =
        serde_json::from_str(&read("tests/golden/notify/webhook-payload.schema.json")).unwrap();
    let doc = read("docs/notifications.md");
    let shown = doc
        .split("<!-- webhook-payload-schema -->")
        .nth(1)
        .and_then(|s| s.split("```json").nth(1))
        .and_then(|s| s.split("```").next())
        .expect("docs/notifications.md shows the schema after <!-- webhook-payload-schema -->");
    assert_eq!(
        serde_json::from_str::<Value>(shown).unwrap(),
        schema,
        "docs/notifications.md shows another schema than tests/golden/notify/webhook-payload.schema.json"
    );

    // The string values an enum allows, whether listed (`enum`) or one by one
    // with their descriptions (`oneOf` of `const`s, as schemars writes them).
    fn names(v: &Value) -> Vec<String> {
        let listed = v["enum"].as_array().into_iter().flatten();
        let one_by_one = v["oneOf"].as_array().into_iter().flatten();
        let mut n: Vec<String> = listed
            .chain(one_by_one.flat_map(|o| {
                o["const"]
                    .as_str()
                    .map(|_| &o["const"])
                    .into_iter()
                    .chain(o["enum"].as_array().into_iter().flatten())
            }))
            .filter_map(|x| x.as_str().map(String::from))
            .collect();
        n.sort();
        assert!(!n.is_empty(), "no names in {v:#}");
        n
    }
    let mut events: Vec<String> = E::ALL
        .iter()
        .map(|e| e.to_string())
        .chain(["Test".into()])
        .collect();
    events.sort();
    assert_eq!(names(&schema["properties"]["event"]), events);
    let facts = &schema["properties"]["details"]["oneOf"][2]["properties"];
    let crd = |s: schemars::Schema| names(&serde_json::to_value(s).unwrap());
    use gatehouse::api::{ClosedBy, Outcome, Recommendation};
    assert_eq!(
        names(&facts["recommendation"]),
        crd(schemars::schema_for!(Recommendation))
    );
    assert_eq!(names(&facts["outcome"]), crd(schemars::schema_for!(Outcome)));
    assert_eq!(names(&facts["closedBy"]), crd(schemars::schema_for!(ClosedBy)));

    let validator = jsonschema::draft202012::new(&schema).unwrap();
    let mut notices = Vec::new();
    for (req, at) in [
        (pending(), "2026-11-30T09:10:00Z"),
        (pending(), "2026-12-30T09:10:00Z"),
        (active(), "2026-11-30T09:06:00Z"),
        (active(), "2026-11-30T11:00:00Z"),
        (expired(), "2026-11-30T11:05:01Z"),
        (revoked(), "2026-11-30T10:00:01Z"),
    ] {
        notices.extend(request_notices(&req, t(at), Leads::default()));
    }
    for at in [
        "2026-10-02T00:00:00Z",
        "2026-10-14T00:00:00Z",
        "2026-10-16T00:00:00Z",
    ] {
        notices.extend(item_notices(&item(), t(at), Leads::default()));
    }
    notices.extend(run_notices(&campaign(9, 2), t("2026-10-15T00:00:01Z")));
    assert!(notices.len() >= 8, "{}", notices.len());
    for n in &notices {
        let body = payload(ChannelType::Webhook, n);
        let errors: Vec<String> = validator.iter_errors(&body).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{}: {errors:#?}\n{body:#}", n.key());
    }
}
