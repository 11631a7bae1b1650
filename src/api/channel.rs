// kube-derive takes one `printcolumn(...)` per column; clippy reads the repeated keys as duplicates.
#![allow(clippy::duplicated_attributes)]

use chrono::{DateTime, Utc};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::{Condition, DURATION_PATTERN, NAME_PATTERN};

/// Where people are told that something needs them: a Slack or Microsoft Teams
/// webhook, or any HTTP endpoint that takes signed JSON. The address and keys live
/// in a Secret in the operator's namespace, never in this object. Messages say what
/// happened and the exact `kubectl gatehouse` command to act; they carry no approve
/// button (a click in a chat is not an authenticated Kubernetes identity).
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[kube(
    group = "gatehouse.dev",
    version = "v1alpha1",
    kind = "NotificationChannel",
    plural = "notificationchannels",
    shortname = "nch",
    status = "NotificationChannelStatus",
    derive = "Default",
    derive = "PartialEq",
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(
        name = "Last delivery",
        type_ = "string",
        json_path = ".status.lastDelivery.at"
    ),
    printcolumn(
        name = "Last error",
        type_ = "string",
        json_path = ".status.lastError.message",
        priority = 1
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct NotificationChannelSpec {
    /// `slack` (an incoming webhook), `msteams` (a Teams workflow webhook) or
    /// `webhook` (JSON POSTed to any HTTPS endpoint, signed with HMAC-SHA256).
    #[serde(rename = "type")]
    pub type_: ChannelType,
    /// The Secret, in the operator's namespace, holding `address` (the URL to POST
    /// to: https, or http to loopback only) and, for `webhook`, `token` (the
    /// HMAC-SHA256 key). The operator may read only the Secrets its Role names
    /// (chart value `notifications.secretNames`, `gatehouse rbac --channel-secret`).
    pub secret_ref: SecretRef,
    /// Which events to send. Empty: every event.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 32))]
    pub events: Vec<NotificationEvent>,
    /// Only requests evaluated under these AccessPolicies. Empty: every policy.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub policies: Vec<String>,
    /// Only requests (and certification items) in these namespaces. Empty: every namespace.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 63), regex(pattern = NAME_PATTERN)))]
    pub namespaces: Vec<String>,
    /// Only certification events of these AccessCampaigns. Empty: every campaign.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 256), inner(length(min = 1, max = 253), regex(pattern = NAME_PATTERN)))]
    pub campaigns: Vec<String>,
    /// Only review events (a request or certification item waiting, escalated,
    /// reminded, overdue) whose eligible reviewers include one of these groups: the
    /// channel of a reviewer team. Empty: review events whoever reviews them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(min = 1, max = 253)))]
    pub reviewer_groups: Vec<String>,
    /// How long before a grant expires the `ExpiringSoon` message is sent (Go
    /// duration). Default 10m. A grant shorter than this gets none: its `Granted`
    /// message already says when it ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub expiring_soon_before: Option<String>,
    /// How long before a certification run is due the `CertificationReminder`
    /// message is sent for each undecided item (Go duration). Default 24h.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = DURATION_PATTERN), length(max = 64))]
    pub remind_before: Option<String>,
    /// Stop sending (events meanwhile are not sent later). Default false.
    #[serde(default)]
    pub suspend: bool,
}

/// The kind of endpoint.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum ChannelType {
    /// A Slack incoming webhook (`https://hooks.slack.com/services/...`).
    #[default]
    #[serde(rename = "slack")]
    Slack,
    /// A Microsoft Teams workflow webhook ("Post to a channel when a webhook request
    /// is received"), which takes an Adaptive Card.
    #[serde(rename = "msteams")]
    MsTeams,
    /// Any HTTP endpoint: the event as JSON, signed in `X-Gatehouse-Signature`.
    #[serde(rename = "webhook")]
    Webhook,
}

/// A Secret in the operator's namespace.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    /// Name of the Secret.
    #[schemars(length(min = 1, max = 253), regex(pattern = NAME_PATTERN))]
    pub name: String,
}

/// Something that happened which a person may need to know or act on.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, JsonSchema)]
pub enum NotificationEvent {
    /// A request waits for a review (sent for each stage as it opens).
    ReviewRequired,
    /// A pending request reached its escalation delay: more reviewers may decide.
    Escalated,
    /// A request was approved (by reviewers, a force approval, or automatically).
    Approved,
    /// A reviewer rejected a request.
    Rejected,
    /// Access was granted: the binding exists.
    Granted,
    /// A grant ends within `expiringSoonBefore`.
    ExpiringSoon,
    /// A grant ended at its expiry.
    Expired,
    /// A grant was ended early.
    Revoked,
    /// The policy refused a request.
    Denied,
    /// Nobody decided before the policy's timeout.
    TimedOut,
    /// The requester withdrew a request.
    Canceled,
    /// A OneTime request's job succeeded.
    Executed,
    /// A OneTime request's job failed, ran past its deadline or was deleted.
    ExecutionFailed,
    /// A certification run started.
    CertificationRunStarted,
    /// A certification item waits for a level's reviewers.
    CertificationItemWaiting,
    /// A certification item is still undecided shortly before it is due.
    CertificationReminder,
    /// A certification item's escalation reviewers may now decide.
    CertificationEscalated,
    /// A certification item fell due without a decision.
    CertificationOverdue,
    /// A certification run is complete, with its counts.
    CertificationRunCompleted,
}

impl NotificationEvent {
    /// Every event, in the order above.
    pub const ALL: [NotificationEvent; 19] = [
        NotificationEvent::ReviewRequired,
        NotificationEvent::Escalated,
        NotificationEvent::Approved,
        NotificationEvent::Rejected,
        NotificationEvent::Granted,
        NotificationEvent::ExpiringSoon,
        NotificationEvent::Expired,
        NotificationEvent::Revoked,
        NotificationEvent::Denied,
        NotificationEvent::TimedOut,
        NotificationEvent::Canceled,
        NotificationEvent::Executed,
        NotificationEvent::ExecutionFailed,
        NotificationEvent::CertificationRunStarted,
        NotificationEvent::CertificationItemWaiting,
        NotificationEvent::CertificationReminder,
        NotificationEvent::CertificationEscalated,
        NotificationEvent::CertificationOverdue,
        NotificationEvent::CertificationRunCompleted,
    ];

    /// Whether the event asks a reviewer to act (filtered by `reviewerGroups`).
    pub fn is_review(self) -> bool {
        matches!(
            self,
            NotificationEvent::ReviewRequired
                | NotificationEvent::Escalated
                | NotificationEvent::CertificationItemWaiting
                | NotificationEvent::CertificationReminder
                | NotificationEvent::CertificationEscalated
                | NotificationEvent::CertificationOverdue
        )
    }
}

/// Observed state of a channel, written only by the operator.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NotificationChannelStatus {
    /// `Ready`: the Secret exists, the operator may read it, it holds what the
    /// type needs, and its address is one the operator sends to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub conditions: Vec<Condition>,
    /// The last message the endpoint accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_delivery: Option<DeliveryRecord>,
    /// The last failed attempt (cleared by nothing: compare its time with lastDelivery).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<DeliveryError>,
    /// The answer to the last `kubectl gatehouse notify test`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_test: Option<TestRecord>,
    /// Generation the Ready condition was computed from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// A message the endpoint accepted.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryRecord {
    /// When the endpoint answered.
    pub at: DateTime<Utc>,
    /// The event sent.
    pub event: String,
    /// `namespace/name` (or name) of the object the event is about.
    pub object: String,
    /// The delivery id (`X-Gatehouse-Delivery`).
    pub delivery: String,
}

/// A failed attempt.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryError {
    /// When the attempt failed.
    pub at: DateTime<Utc>,
    /// The event.
    #[serde(default)]
    pub event: String,
    /// What went wrong: the HTTP status, a refused address, the Secret, or the
    /// network error. Never the endpoint's body.
    pub message: String,
}

/// The outcome of a test message: the endpoint's status code and how long it
/// took, never what it answered (an endpoint's body is not read).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TestRecord {
    /// The value of the `gatehouse.dev/test-requested-at` annotation this answers.
    pub requested: String,
    /// When the endpoint answered (or the attempt failed).
    pub at: DateTime<Utc>,
    /// HTTP status code, if the endpoint answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "int32"))]
    pub status_code: Option<u16>,
    /// How long the endpoint took to answer (Go duration, e.g. `153ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 64))]
    pub elapsed: Option<String>,
    /// Why no answer came: the Secret, a refused address, the network. Never
    /// the endpoint's body.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 1024))]
    pub error: Option<String>,
}

crate::wire_names!(ChannelType, NotificationEvent);
