//! What the notifier writes on a channel's status: `Ready`, the last delivery,
//! the last error, the answer to a test. Merge patches of the fields concerned
//! only, so two writers (a delivery and a test) never undo each other.

use chrono::{DateTime, Utc};
use kube::{
    api::{Api, Patch, PatchParams},
    Client, ResourceExt,
};
use serde_json::json;
use tracing::warn;

use crate::api::{
    Condition, ConditionStatus, DeliveryError, DeliveryRecord, NotificationChannel, TestRecord,
};

/// The annotation `kubectl gatehouse notify test` sets (any new value asks for a
/// test message; the plugin writes the current time).
pub const TEST_ANNOTATION: &str = "gatehouse.dev/test-requested-at";

/// Why a channel is or is not ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    /// Ready or not.
    pub ready: bool,
    /// CamelCase reason.
    pub reason: &'static str,
    /// For people.
    pub message: String,
}

/// The Ready condition for `r`, keeping the transition time when the status did not flip.
pub fn ready_condition(ch: &NotificationChannel, r: &Readiness, now: DateTime<Utc>) -> Condition {
    let status = if r.ready {
        ConditionStatus::True
    } else {
        ConditionStatus::False
    };
    let old = ch
        .status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready"));
    Condition {
        type_: "Ready".into(),
        status,
        reason: r.reason.into(),
        message: r.message.clone(),
        observed_generation: ch.metadata.generation,
        last_transition_time: match old {
            Some(c) if c.status == status => c.last_transition_time,
            _ => now,
        },
    }
}

/// Whether the stored Ready condition already says `r` for this generation.
pub fn ready_is_current(ch: &NotificationChannel, r: &Readiness) -> bool {
    ch.status.as_ref().is_some_and(|s| {
        s.observed_generation == ch.metadata.generation
            && s.conditions.iter().any(|c| {
                c.type_ == "Ready"
                    && (c.status == ConditionStatus::True) == r.ready
                    && c.reason == r.reason
                    && c.message == r.message
            })
    })
}

async fn patch(client: &Client, name: &str, body: serde_json::Value) {
    let api: Api<NotificationChannel> = Api::all(client.clone());
    // A channel deleted meanwhile: nothing to record.
    if let Err(e) = api
        .patch_status(name, &PatchParams::default(), &Patch::Merge(&body))
        .await
    {
        warn!(channel = %name, error = %e, "could not write the channel's status");
    }
}

/// Writes the Ready condition.
pub async fn write_ready(client: &Client, ch: &NotificationChannel, r: &Readiness, now: DateTime<Utc>) {
    let cond = ready_condition(ch, r, now);
    let body = json!({"status": {"conditions": [cond], "observedGeneration": ch.metadata.generation}});
    patch(client, &ch.name_any(), body).await;
}

/// Records an accepted delivery.
pub async fn write_delivery(client: &Client, channel: &str, record: &DeliveryRecord) {
    patch(client, channel, json!({"status": {"lastDelivery": record}})).await;
}

/// Records a failed attempt.
pub async fn write_error(client: &Client, channel: &str, error: &DeliveryError) {
    patch(client, channel, json!({"status": {"lastError": error}})).await;
}

/// Records the answer to a test.
pub async fn write_test(client: &Client, channel: &str, test: &TestRecord) {
    patch(client, channel, json!({"status": {"lastTest": test}})).await;
}
