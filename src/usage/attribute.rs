//! One audit event, attributed: which binding and subject RBAC credited with
//! allowing it, or why no binding can be credited. Only the final stage of an
//! allowed request counts, so a request is counted once whatever the policy's
//! stages.

use chrono::{DateTime, Utc};

use super::{
    event::{AuditEvent, DECISION_ANNOTATION, REASON_ANNOTATION},
    reason::{self, Credit, RBAC_PREFIX},
};

/// The longest verb, resource or actor name kept; longer ones are cut.
pub const MAX_FIELD: usize = 253;
/// The longest non-resource path kept.
pub const MAX_PATH: usize = 128;

/// What one event says about usage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Observation {
    /// An allowed request credited to a binding and subject.
    Credited(Box<Use>),
    /// An allowed request no binding can be credited with, and why.
    Unattributed(Cause),
    /// Not a use: an earlier stage, a denied request, or no authorization decision.
    Ignored(Ignored),
}

/// One allowed request through one binding.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Use {
    /// The binding, role and subject RBAC credited.
    pub credit: Credit,
    /// Who acted: the impersonated user when the sender impersonated one.
    pub actor: String,
    /// What was done, e.g. `get pods` or `create pods/exec`.
    pub action: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// Why an allowed request is not credited to a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Cause {
    /// Members of `system:masters` pass before any authorizer, with no reason.
    SystemMasters,
    /// The Node authorizer (kubelets) allowed it.
    Node,
    /// Allowed with an empty reason by something else.
    NoReason,
    /// Another authorizer (a webhook, ABAC) allowed it.
    OtherAuthorizer,
    /// The reason looked like RBAC's but could not be read.
    UnreadableReason,
}

impl Cause {
    /// Every cause, in report order.
    pub const ALL: [Cause; 5] = [
        Cause::SystemMasters,
        Cause::Node,
        Cause::NoReason,
        Cause::OtherAuthorizer,
        Cause::UnreadableReason,
    ];

    /// The wire name (metrics label, status field).
    pub fn as_str(self) -> &'static str {
        match self {
            Cause::SystemMasters => "SystemMasters",
            Cause::Node => "Node",
            Cause::NoReason => "NoReason",
            Cause::OtherAuthorizer => "OtherAuthorizer",
            Cause::UnreadableReason => "UnreadableReason",
        }
    }
}

/// Why an event is not a use.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Ignored {
    /// `RequestReceived` or `ResponseStarted`: the final stage is counted instead.
    EarlierStage,
    /// The request was denied.
    Denied,
    /// No authorization decision was recorded (unauthenticated, or refused earlier).
    NoDecision,
}

/// Why an event cannot be read at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// No stage.
    #[error("no stage")]
    NoStage,
    /// No readable timestamp.
    #[error("no readable timestamp")]
    NoTime,
    /// No verb.
    #[error("no verb")]
    NoVerb,
}

/// Cuts `s` to at most `max` bytes on a character boundary, control characters
/// replaced: what is kept may end up in a terminal or a status.
pub fn clip(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in s.chars() {
        let c = if c.is_control() { '?' } else { c };
        if out.len() + c.len_utf8() > max {
            break;
        }
        out.push(c);
    }
    out
}

/// When the event happened: its stage time, else when the request was received.
pub fn timestamp(e: &AuditEvent) -> Option<DateTime<Utc>> {
    [&e.stage_timestamp, &e.request_received_timestamp]
        .into_iter()
        .flatten()
        .find_map(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// `get pods`, `create pods/exec`, `list deployments.apps`, `get /healthz`.
pub fn action(e: &AuditEvent, verb: &str) -> String {
    let what = match e
        .object_ref
        .as_ref()
        .and_then(|o| o.resource.as_deref().map(|r| (o, r)))
    {
        Some((o, resource)) => {
            let mut w = resource.to_string();
            if let Some(g) = o.api_group.as_deref().filter(|g| !g.is_empty()) {
                w = format!("{w}.{g}");
            }
            if let Some(s) = o.subresource.as_deref().filter(|s| !s.is_empty()) {
                w = format!("{w}/{s}");
            }
            clip(&w, MAX_FIELD)
        }
        None => {
            let uri = e.request_uri.as_deref().unwrap_or("/");
            let path = uri.split(['?', '#']).next().unwrap_or("/");
            clip(path, MAX_PATH)
        }
    };
    format!("{} {what}", clip(verb, 32))
}

fn in_group(e: &AuditEvent, group: &str) -> bool {
    e.effective_user()
        .and_then(|u| u.groups.as_ref())
        .is_some_and(|g| g.iter().any(|x| x == group))
}

fn unattributed_cause(e: &AuditEvent, reason: &str) -> Cause {
    if !reason.is_empty() {
        return if reason.starts_with(RBAC_PREFIX) {
            Cause::UnreadableReason
        } else {
            Cause::OtherAuthorizer
        };
    }
    let user = e
        .effective_user()
        .and_then(|u| u.username.as_deref())
        .unwrap_or_default();
    if in_group(e, "system:masters") {
        Cause::SystemMasters
    } else if user.starts_with("system:node:") || in_group(e, "system:nodes") {
        Cause::Node
    } else {
        Cause::NoReason
    }
}

/// Attributes one event.
pub fn attribute(e: &AuditEvent) -> Result<Observation, Malformed> {
    let stage = e.stage.as_deref().ok_or(Malformed::NoStage)?;
    if !matches!(stage, "ResponseComplete" | "Panic") {
        return Ok(Observation::Ignored(Ignored::EarlierStage));
    }
    let at = timestamp(e).ok_or(Malformed::NoTime)?;
    let verb = e
        .verb
        .as_deref()
        .filter(|v| !v.is_empty())
        .ok_or(Malformed::NoVerb)?;
    match e.annotation(DECISION_ANNOTATION) {
        Some("allow") => {}
        Some(_) => return Ok(Observation::Ignored(Ignored::Denied)),
        None => return Ok(Observation::Ignored(Ignored::NoDecision)),
    }
    let reason = e.annotation(REASON_ANNOTATION).unwrap_or_default();
    match reason::parse(reason) {
        Ok(Some(credit)) => {
            let actor = e
                .effective_user()
                .and_then(|u| u.username.as_deref())
                .map(|u| clip(u, MAX_FIELD))
                .unwrap_or_default();
            Ok(Observation::Credited(Box::new(Use {
                credit,
                actor,
                action: action(e, verb),
                at,
            })))
        }
        Ok(None) | Err(_) => Ok(Observation::Unattributed(unattributed_cause(e, reason))),
    }
}
