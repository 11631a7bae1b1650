//! Scenario tests of the usage core: the reason formats Kubernetes writes, the
//! causes of unattributed requests, impersonation, the input formats, the bounds.

mod merge;
mod outbox;
mod properties;

use std::io::Write;

use chrono::{DateTime, TimeZone, Utc};
use serde_json::json;

use super::{
    attribute::{attribute, Cause, Ignored, Observation},
    book::{PairKey, Settings, UsageBook},
    decode::{read_events, Limits},
    event::AuditEvent,
    ingest,
    reason::{parse, BindingRef, ReasonError},
};
use crate::api::{BindingKind, RoleKind, Subject, SubjectKind};

/// Go's `strconv.Quote`, for building reasons as the API server does.
pub fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

pub fn crb_reason(binding: &str, role: &str, subject_kind: &str, subject: &str) -> String {
    format!(
        "RBAC: allowed by ClusterRoleBinding {} of ClusterRole {} to {subject_kind} {}",
        go_quote(binding),
        go_quote(role),
        go_quote(subject)
    )
}

pub fn at(h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 2, h, 0, 0)
        .single()
        .unwrap_or_default()
}

/// A final-stage event with the given decision and reason.
pub fn event(
    user: &str,
    groups: &[&str],
    decision: Option<&str>,
    reason: &str,
    when: DateTime<Utc>,
) -> serde_json::Value {
    let mut annotations = serde_json::Map::new();
    if let Some(d) = decision {
        annotations.insert("authorization.k8s.io/decision".into(), json!(d));
        annotations.insert("authorization.k8s.io/reason".into(), json!(reason));
    }
    json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "0a4376d5-307a-4e16-a049-24e017e3a2b4", "stage": "ResponseComplete",
        "requestURI": "/api/v1/namespaces/payments/pods?limit=500", "verb": "list",
        "user": {"username": user, "groups": groups},
        "objectRef": {"resource": "pods", "namespace": "payments", "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "requestReceivedTimestamp": when.to_rfc3339(),
        "stageTimestamp": when.to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        "annotations": annotations,
    })
}

fn typed(v: serde_json::Value) -> AuditEvent {
    serde_json::from_value(v).unwrap_or_default()
}

fn user(name: &str) -> Subject {
    Subject {
        kind: SubjectKind::User,
        name: name.into(),
        namespace: None,
    }
}

#[test]
fn the_three_reason_shapes_kubernetes_writes() {
    let c = parse(r#"RBAC: allowed by ClusterRoleBinding "ops" of ClusterRole "edit" to User "alice""#)
        .ok()
        .flatten();
    let c = c.unwrap_or_else(|| panic!("not parsed"));
    assert_eq!(
        c.binding,
        BindingRef {
            kind: BindingKind::ClusterRoleBinding,
            namespace: None,
            name: "ops".into()
        }
    );
    assert_eq!(
        (c.role.kind, c.role.name.as_str()),
        (RoleKind::ClusterRole, "edit")
    );
    assert_eq!(c.subject, user("alice"));

    let c = parse(r#"RBAC: allowed by RoleBinding "deployers/payments" of Role "deployer" to Group "ci""#)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not parsed"));
    assert_eq!(c.binding.namespace.as_deref(), Some("payments"));
    assert_eq!(c.binding.name, "deployers");
    assert_eq!(
        (c.role.kind, c.subject.kind, c.subject.name.as_str()),
        (RoleKind::Role, SubjectKind::Group, "ci")
    );

    let c = parse(r#"RBAC: allowed by RoleBinding "ci/payments" of ClusterRole "edit" to ServiceAccount "builder/tools""#)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not parsed"));
    assert_eq!(
        c.subject,
        Subject {
            kind: SubjectKind::ServiceAccount,
            name: "builder".into(),
            namespace: Some("tools".into())
        }
    );
}

#[test]
fn a_hostile_name_cannot_pose_as_another_binding_or_subject() {
    // A tenant names her binding so that, unquoted carelessly, the reason would
    // credit cluster-admin to bob.
    let name = r#"x" of ClusterRole "cluster-admin" to User "bob"#;
    let reason = format!(
        "RBAC: allowed by RoleBinding {} of Role \"r\" to User \"mallory\"",
        go_quote(&format!("{name}/tenant"))
    );
    let c = parse(&reason)
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("not parsed"));
    assert_eq!(c.binding.name, name);
    assert_eq!(c.subject, user("mallory"));
    assert_eq!(c.role.name, "r");
    // Text after the subject, or an unescaped quote, is refused, not trimmed.
    assert_eq!(
        parse(&format!("{reason} to User \"bob\"")),
        Err(ReasonError::Shape)
    );
    assert_eq!(
        parse(r#"RBAC: allowed by ClusterRoleBinding "a"b" of ClusterRole "edit" to User "alice""#),
        Err(ReasonError::Shape)
    );
    assert_eq!(
        parse(&format!(
            "RBAC: allowed by ClusterRoleBinding \"{}\"",
            "a".repeat(5000)
        )),
        Err(ReasonError::TooLong)
    );
}

#[test]
fn unattributed_requests_are_counted_by_cause() {
    let cases = [
        (
            event(
                "admin",
                &["system:masters", "system:authenticated"],
                Some("allow"),
                "",
                at(1),
            ),
            Cause::SystemMasters,
        ),
        (
            event("system:node:n1", &["system:nodes"], Some("allow"), "", at(1)),
            Cause::Node,
        ),
        (
            event(
                "carol",
                &[],
                Some("allow"),
                "allowed by the corporate webhook",
                at(1),
            ),
            Cause::OtherAuthorizer,
        ),
        (
            event(
                "carol",
                &[],
                Some("allow"),
                "RBAC: allowed by something new",
                at(1),
            ),
            Cause::UnreadableReason,
        ),
        (event("carol", &[], Some("allow"), "", at(1)), Cause::NoReason),
    ];
    for (e, cause) in cases {
        assert_eq!(attribute(&typed(e)), Ok(Observation::Unattributed(cause)));
    }
    let denied = event("carol", &[], Some("forbid"), "", at(1));
    assert_eq!(
        attribute(&typed(denied)),
        Ok(Observation::Ignored(Ignored::Denied))
    );
    let mut early = event("carol", &[], Some("allow"), "", at(1));
    early["stage"] = json!("RequestReceived");
    assert_eq!(
        attribute(&typed(early)),
        Ok(Observation::Ignored(Ignored::EarlierStage))
    );
}

#[test]
fn an_impersonated_request_is_credited_to_the_impersonated_user() {
    let mut e = event(
        "admin",
        &["system:masters"],
        Some("allow"),
        &crb_reason("alice-view", "view", "User", "alice"),
        at(3),
    );
    e["impersonatedUser"] = json!({"username": "alice", "groups": ["developers"]});
    match attribute(&typed(e)) {
        Ok(Observation::Credited(u)) => {
            assert_eq!(u.actor, "alice");
            assert_eq!(u.credit.subject, user("alice"));
            assert_eq!(u.action, "list pods");
            assert_eq!(u.at, at(3));
        }
        other => panic!("not credited: {other:?}"),
    }
}

#[test]
fn the_book_keeps_last_use_days_and_top_actions() {
    let mut book = UsageBook::new(Settings::default());
    let reason = crb_reason("ops", "edit", "Group", "sre");
    for h in [1, 2, 5] {
        ingest(
            &mut book,
            &typed(event("bob", &["sre"], Some("allow"), &reason, at(h))),
        );
    }
    let mut exec = event("bob", &["sre"], Some("allow"), &reason, at(4));
    exec["verb"] = json!("create");
    exec["objectRef"] = json!({"resource": "pods", "subresource": "exec"});
    ingest(&mut book, &typed(exec));
    ingest(
        &mut book,
        &typed(event("admin", &["system:masters"], Some("allow"), "", at(6))),
    );
    ingest(&mut book, &typed(json!({"stage": "ResponseComplete"})));
    let key = PairKey {
        binding: BindingRef {
            kind: BindingKind::ClusterRoleBinding,
            namespace: None,
            name: "ops".into(),
        },
        subject: Subject {
            kind: SubjectKind::Group,
            name: "sre".into(),
            namespace: None,
        },
    };
    let p = book.pair(&key).unwrap_or_else(|| panic!("no usage"));
    assert_eq!(p.last_used, at(5));
    assert_eq!(p.first_used, at(1));
    assert_eq!(p.requests(), 4);
    assert_eq!(
        p.actions.ranked(),
        vec![("list pods", 3), ("create pods/exec", 1)]
    );
    assert_eq!(p.actors.ranked(), vec![("bob", 4)]);
    assert_eq!(book.unattributed.get(&Cause::SystemMasters), Some(&1));
    assert_eq!(book.malformed, 1);
    assert_eq!(
        (book.observed_since, book.observed_until),
        (Some(at(1)), Some(at(6)))
    );

    // Ninety days later the use is past the retention: the pair is gone.
    book.prune(at(5) + chrono::Duration::days(91));
    assert!(book.is_empty());
}

#[test]
fn pairs_beyond_the_cap_are_counted_not_kept() {
    let mut book = UsageBook::new(Settings {
        max_pairs: 2,
        ..Settings::default()
    });
    for i in 0..5 {
        let r = crb_reason(&format!("b{i}"), "view", "User", "u");
        ingest(&mut book, &typed(event("u", &[], Some("allow"), &r, at(1))));
    }
    assert_eq!((book.len(), book.dropped), (2, 3));
}

fn decode(bytes: &[u8], limits: Limits) -> (Vec<AuditEvent>, u64) {
    let mut out = Vec::new();
    let d = read_events(bytes, limits, &mut |e| out.push(e));
    let d = d.unwrap_or_else(|e| panic!("{e}"));
    (out, d.malformed)
}

#[test]
fn json_lines_event_lists_pretty_documents_and_gzip() {
    let reason = crb_reason("ops", "edit", "User", "alice");
    let e = event("alice", &[], Some("allow"), &reason, at(1));
    let lines = format!("{e}\nnot json\n\n{{\"verb\": 5}}\n{e}\n");
    let (events, malformed) = decode(lines.as_bytes(), Limits::default());
    assert_eq!((events.len(), malformed), (2, 2));

    let list = json!({"kind": "EventList", "apiVersion": "audit.k8s.io/v1", "items": [e, {"verb": 5}, e]});
    let (events, malformed) = decode(list.to_string().as_bytes(), Limits::default());
    assert_eq!((events.len(), malformed), (2, 1));
    let pretty = serde_json::to_string_pretty(&list).unwrap_or_default();
    let (events, malformed) = decode(pretty.as_bytes(), Limits::default());
    assert_eq!((events.len(), malformed), (2, 1));

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let _ = gz.write_all(lines.as_bytes());
    let zipped = gz.finish().unwrap_or_default();
    let (events, malformed) = decode(&zipped, Limits::default());
    assert_eq!((events.len(), malformed), (2, 2));
}

#[test]
fn an_oversized_line_is_skipped_and_the_next_one_read() {
    let reason = crb_reason("ops", "edit", "User", "alice");
    let e = event("alice", &[], Some("allow"), &reason, at(1)).to_string();
    let big = format!("{{\"verb\": \"{}\"}}", "x".repeat(10_000));
    let input = format!("{e}\n{big}\n{e}\n");
    let (events, malformed) = decode(
        input.as_bytes(),
        Limits {
            max_line: 4096,
            max_document: 8192,
        },
    );
    assert_eq!((events.len(), malformed), (2, 1));
}
