//! Laying a [`Message`] out for each kind of endpoint. Pure: the same notice
//! always gives the same bytes (the golden files in `tests/golden/notify/` show
//! every layout, and double as the sample payloads of docs/notifications.md).

pub mod msteams;
pub mod slack;
pub mod webhook;

use chrono::{DateTime, Utc};

use super::{
    events::{Details, Notice, ObjectId},
    message::Message,
};
use crate::api::ChannelType;

/// Everything one payload is made of.
pub struct Envelope<'a> {
    /// The event's name (`Granted`, or `Test` for `notify test`).
    pub event: &'a str,
    /// Which occurrence (a stage, level or run), or empty.
    pub occurrence: &'a str,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// What it is about (none for a test message).
    pub object: Option<&'a ObjectId>,
    /// The facts (none for a test message).
    pub details: Option<&'a Details>,
    /// What it says.
    pub message: &'a Message,
    /// The delivery id (`X-Gatehouse-Delivery`).
    pub delivery: &'a str,
    /// The channel's name.
    pub channel: &'a str,
}

impl<'a> Envelope<'a> {
    /// The envelope of a notice.
    pub fn of(notice: &'a Notice, message: &'a Message, delivery: &'a str, channel: &'a str) -> Self {
        Envelope {
            event: notice.event.as_str(),
            occurrence: &notice.occurrence,
            at: notice.at,
            object: Some(&notice.object),
            details: Some(&notice.details),
            message,
            delivery,
            channel,
        }
    }

    /// `Event · Kind namespace/name · delivery id`, the footer of chat messages.
    pub fn footer(&self) -> String {
        match self.object {
            Some(o) => format!(
                "Gatehouse · {} · {} {} · delivery {}",
                self.event,
                o.kind,
                o.path(),
                self.delivery
            ),
            None => format!(
                "Gatehouse · {} · channel {} · delivery {}",
                self.event, self.channel, self.delivery
            ),
        }
    }
}

/// The JSON body for a channel of this type.
pub fn render(type_: ChannelType, e: &Envelope<'_>) -> serde_json::Value {
    match type_ {
        ChannelType::Slack => slack::render(e),
        ChannelType::MsTeams => msteams::render(e),
        ChannelType::Webhook => webhook::render(e),
    }
}
