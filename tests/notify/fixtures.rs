//! Objects at each step of a request's life, and certification objects, built
//! from YAML-like JSON so a test reads as the status it starts from.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use gatehouse::api::{AccessCampaign, AccessCertification, ApprovalRequest, NotificationChannel};
use serde_json::{json, Value};

pub fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub const CREATED: &str = "2026-11-30T09:00:00Z";
pub const APPROVED: &str = "2026-11-30T09:05:00Z";
pub const EXPIRES: &str = "2026-11-30T11:05:00Z";

fn request_with(status: Value) -> ApprovalRequest {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "alice-view-x7k2p", "namespace": "team", "uid": "0b8c2a4e-1111-4c3b-9f00-5a1e2d3c4b5a",
                     "creationTimestamp": CREATED},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": "2h",
                 "reason": "debug checkout <!channel> & co"},
        "status": status
    }))
    .unwrap()
}

fn requirements() -> Value {
    json!({"policy": "team-view", "duration": "2h",
           "approval": {"reviewers": {"groups": ["sre"]}, "minApprovals": 1,
                        "escalation": {"after": "30m", "groups": ["managers"]}},
           "justification": "Optional", "retention": "720h"})
}

/// Waiting for the sre group.
pub fn pending() -> ApprovalRequest {
    request_with(json!({
        "phase": "Pending", "requirements": requirements(),
        "approvals": {"required": 1, "received": 0, "summary": "0/1"},
        "eligibleReviewers": {"groups": ["sre"]},
        "conditions": [{"type": "Approved", "status": "False", "reason": "AwaitingApproval",
                        "message": "waiting for 1 approval", "lastTransitionTime": CREATED}]
    }))
}

/// Approved by bob, binding in place until EXPIRES.
pub fn active() -> ApprovalRequest {
    request_with(json!({
        "phase": "Active", "requirements": requirements(),
        "approvals": {"required": 1, "received": 1, "summary": "1/1"},
        "reviewGroups": [{"group": "sre", "status": "Approved", "reviewedBy": "bob", "reviewedAt": APPROVED, "forced": false}],
        "decisions": [{"review": "alice-view-x7k2p-bob-approve", "reviewer": "bob", "decision": "Approve",
                       "at": APPROVED, "accepted": true, "reason": "Approved", "message": "counted"}],
        "grant": {"kind": "RoleBinding", "name": "gatehouse-alice-view-x7k2p", "namespace": "team",
                  "grantedAt": APPROVED, "expiresAt": EXPIRES},
        "approvedAt": APPROVED, "expiresAt": EXPIRES,
        "conditions": [
            {"type": "Approved", "status": "True", "reason": "Approved", "message": "approved by bob", "lastTransitionTime": APPROVED},
            {"type": "Granted", "status": "True", "reason": "BindingActive", "message": "RoleBinding team/gatehouse-alice-view-x7k2p", "lastTransitionTime": APPROVED}]
    }))
}

/// Ended at its expiry.
pub fn expired() -> ApprovalRequest {
    let mut r = active();
    let s = r.status.as_mut().unwrap();
    s.phase = gatehouse::api::Phase::Expired;
    s.completed_at = Some(t(EXPIRES));
    s.conditions.push(
        serde_json::from_value(json!({
        "type": "Complete", "status": "True", "reason": "Expired",
        "message": "access ended at 2026-11-30T11:05:00Z", "lastTransitionTime": EXPIRES}))
        .unwrap(),
    );
    r
}

/// Revoked by carol.
pub fn revoked() -> ApprovalRequest {
    let mut r = active();
    let s = r.status.as_mut().unwrap();
    s.phase = gatehouse::api::Phase::Revoked;
    s.completed_at = Some(t("2026-11-30T10:00:00Z"));
    s.decisions.push(
        serde_json::from_value(json!({
        "review": "alice-view-x7k2p-carol-revoke", "reviewer": "carol", "decision": "Revoke",
        "at": "2026-11-30T10:00:00Z", "accepted": true, "reason": "Revoked", "message": "revoked"}))
        .unwrap(),
    );
    s.conditions.push(
        serde_json::from_value(json!({
        "type": "Complete", "status": "True", "reason": "Revoked",
        "message": "revoked by carol: incident closed", "lastTransitionTime": "2026-11-30T10:00:00Z"}))
        .unwrap(),
    );
    r
}

pub fn item() -> AccessCertification {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
        "metadata": {"name": "q4-payments-admins-alice", "namespace": "gatehouse-system",
                     "uid": "7c1d0e2f-2222-4a5b-8c6d-9e0f1a2b3c4d", "creationTimestamp": "2026-10-01T00:00:00Z"},
        "spec": {"campaign": "quarterly", "run": "quarterly-20261001-0000",
                 "startedAt": "2026-10-01T00:00:00Z", "dueAt": "2026-10-15T00:00:00Z",
                 "binding": {"kind": "RoleBinding", "namespace": "payments", "name": "admins", "uid": "b-1"},
                 "subject": {"kind": "User", "name": "alice"},
                 "roleRef": {"kind": "ClusterRole", "name": "admin"},
                 "rulesDigest": "sha256:0",
                 "review": {"levels": [{"name": "owners", "reviewers": {"groups": ["payments-leads"]}}]}},
        "status": {"decision": "Unreviewed", "outcome": "Open",
                   "levels": [{"name": "owners", "state": "Open", "openedAt": "2026-10-01T00:00:00Z"}],
                   "reviewers": {"groups": ["payments-leads"]},
                   "recommendation": "Review", "riskSummary": "secrets, exec"}
    }))
    .unwrap()
}

pub fn campaign(approved: u32, revoked: u32) -> AccessCampaign {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": "quarterly", "uid": "5a5a5a5a-3333-4b4b-8c8c-0d0d0d0d0d0d", "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"schedule": "0 0 1 */3 *", "scope": {}, "reviewers": {"levels": [{"name": "owners", "groups": ["leads"]}]}},
        "status": {"runs": [{"name": "quarterly-20261001-0000", "startedAt": "2026-10-01T00:00:00Z",
                             "dueAt": "2026-10-15T00:00:00Z", "items": 12, "approved": approved,
                             "revoked": revoked, "unreviewed": 12 - approved - revoked, "remediated": 0}]}
    }))
    .unwrap()
}

/// A channel of `type_` reading Secret `secret`, created at CREATED.
pub fn channel(name: &str, type_: &str, secret: &str, extra: Value) -> NotificationChannel {
    let mut spec = json!({"type": type_, "secretRef": {"name": secret}});
    if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            s.insert(k.clone(), v.clone());
        }
    }
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
        "metadata": {"name": name, "uid": format!("uid-of-{name}"), "generation": 1, "creationTimestamp": "2026-11-01T00:00:00Z"},
        "spec": spec
    }))
    .unwrap()
}
