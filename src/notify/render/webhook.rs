//! Generic webhooks: the event as structured JSON, for receivers that act on it
//! (a ticket, a pager, an audit log). The body is signed (`X-Gatehouse-Signature`,
//! see [`crate::notify::hmac`]) and carries its delivery id, so a receiver can
//! check where it came from and drop a repeat.

use serde_json::{json, Value};

use super::Envelope;
use crate::{decide::timestamp::rfc3339, notify::events::Details};

/// `apiVersion` of the payload: its shape only changes with a new version.
pub const PAYLOAD_VERSION: &str = "gatehouse.dev/v1alpha1";

/// The message as a webhook payload.
pub fn render(e: &Envelope<'_>) -> Value {
    let m = e.message;
    json!({
        "apiVersion": PAYLOAD_VERSION,
        "kind": "Notification",
        "delivery": e.delivery,
        "channel": e.channel,
        "event": e.event,
        "occurrence": e.occurrence,
        "at": rfc3339(e.at),
        "object": e.object.map(|o| json!({
            "apiVersion": PAYLOAD_VERSION,
            "kind": o.kind,
            "namespace": o.namespace,
            "name": o.name,
            "uid": o.uid,
        })),
        "tone": m.tone.as_str(),
        "title": m.title,
        "text": m.text,
        "fields": m.fields.iter().map(|(k, v)| json!({"name": k, "value": v})).collect::<Vec<_>>(),
        "commands": m.commands,
        "details": e.details.map(details),
    })
}

fn details(d: &Details) -> Value {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(rfc3339);
    match d {
        Details::Request(f) => json!({
            "requester": f.requester,
            "subject": f.subject,
            "role": f.role,
            "namespace": f.namespace,
            "duration": f.duration,
            "reason": f.reason,
            "policy": f.policy,
            "reviewers": {"groups": f.reviewers.groups, "users": f.reviewers.users},
            "stage": f.stage,
            "approvers": f.approvers,
            "approval": f.approval.map(|a| a.as_str()),
            "expiresAt": time(f.expires_at),
            "ending": f.ending.map(|e| e.as_str()),
            "endedBy": f.ended_by,
            "why": f.why,
            "jobImage": f.job_image,
        }),
        Details::Item(f) => json!({
            "campaign": f.campaign,
            "run": f.run,
            "subject": f.subject,
            "role": f.role,
            "binding": f.binding,
            "dueAt": rfc3339(f.due_at),
            "level": f.level,
            "reviewers": {"groups": f.reviewers.groups, "users": f.reviewers.users},
            "recommendation": f.recommendation.map(|r| r.as_str()),
            "risk": f.risk,
            "closedBy": f.closed_by.map(|c| c.as_str()),
            "outcome": f.outcome.as_str(),
        }),
        Details::Run(f) => json!({
            "campaign": f.campaign,
            "run": f.run,
            "startedAt": rfc3339(f.started_at),
            "dueAt": rfc3339(f.due_at),
            "items": f.items,
            "approved": f.approved,
            "revoked": f.revoked,
            "unreviewed": f.unreviewed,
        }),
    }
}
