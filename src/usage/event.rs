//! The audit event as the API server writes it (`audit.k8s.io/v1` `Event`), reduced
//! to the fields attribution reads. Every field is optional: an event is attacker
//! data until proven otherwise, and what is missing is decided on in
//! [`super::attribute`], never by a failed parse of the whole batch.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Annotation the authorizer's decision is recorded under: `allow` or `forbid`.
pub const DECISION_ANNOTATION: &str = "authorization.k8s.io/decision";
/// Annotation the authorizer's reason is recorded under.
pub const REASON_ANNOTATION: &str = "authorization.k8s.io/reason";

/// One audit event.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct AuditEvent {
    /// `Event`, or `EventList` for a batch (then `items` holds the events).
    pub kind: Option<String>,
    /// The events of an `EventList`; an item that is not a readable event is kept
    /// as [`ListItem::Unreadable`] so one bad item does not lose the batch.
    pub items: Option<Vec<ListItem>>,
    /// `RequestReceived`, `ResponseStarted`, `ResponseComplete` or `Panic`.
    pub stage: Option<String>,
    /// The unique id of the request (shared by its stages).
    #[serde(rename = "auditID")]
    pub audit_id: Option<String>,
    /// The API verb (`get`, `list`, `create`, ...).
    pub verb: Option<String>,
    /// The request path, for non-resource requests.
    #[serde(rename = "requestURI")]
    pub request_uri: Option<String>,
    /// Who sent the request.
    pub user: Option<UserInfo>,
    /// Whom the sender impersonated: the identity the request was authorized as.
    pub impersonated_user: Option<UserInfo>,
    /// What the request was about, for resource requests.
    pub object_ref: Option<ObjectRef>,
    /// When the stage was reached (RFC 3339 with microseconds).
    pub stage_timestamp: Option<String>,
    /// When the request was received.
    pub request_received_timestamp: Option<String>,
    /// Annotations, among them the authorizer's decision and reason.
    pub annotations: Option<BTreeMap<String, String>>,
}

/// One item of an `EventList`.
#[derive(Deserialize, Debug, Clone, PartialEq)]
#[serde(untagged)]
pub enum ListItem {
    /// A readable event.
    Event(Box<AuditEvent>),
    /// Anything else (counted as malformed).
    Unreadable(serde::de::IgnoredAny),
}

/// An identity as the API server authenticated it.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(default)]
pub struct UserInfo {
    /// The user name.
    pub username: Option<String>,
    /// The groups.
    pub groups: Option<Vec<String>>,
}

/// The object a resource request was about.
#[derive(Deserialize, Debug, Default, Clone, PartialEq)]
#[serde(rename_all = "camelCase", default)]
pub struct ObjectRef {
    /// The resource (plural, lower case).
    pub resource: Option<String>,
    /// The subresource (`exec`, `status`, ...).
    pub subresource: Option<String>,
    /// The API group; empty for the core group.
    pub api_group: Option<String>,
    /// The namespace.
    pub namespace: Option<String>,
}

impl AuditEvent {
    /// One annotation.
    pub fn annotation(&self, key: &str) -> Option<&str> {
        self.annotations.as_ref()?.get(key).map(String::as_str)
    }

    /// The identity the request was authorized as: the impersonated user if the
    /// sender impersonated someone, the sender otherwise.
    pub fn effective_user(&self) -> Option<&UserInfo> {
        self.impersonated_user.as_ref().or(self.user.as_ref())
    }
}
