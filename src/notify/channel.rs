//! A channel as the notifier uses it: the `NotificationChannel` object,
//! validated once at the border, and which notices it wants.

use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};
use kube::ResourceExt;
use thiserror::Error;

use super::events::{Details, Leads, Notice};
use crate::{
    api::{ChannelType, NotificationChannel, NotificationEvent},
    decide::{created_at, duration},
};

/// A channel spec the notifier cannot use.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ChannelError {
    /// A duration field is not a positive Go duration.
    #[error("spec.{field}: {value:?} is not a positive Go duration")]
    Duration {
        /// The field.
        field: &'static str,
        /// Its value.
        value: String,
    },
}

/// A validated channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Channel {
    /// Name of the NotificationChannel.
    pub name: String,
    /// Its uid.
    pub uid: String,
    /// Its generation (spec changes).
    pub generation: i64,
    /// Kind of endpoint.
    pub type_: ChannelType,
    /// The Secret with `address` (and `token`).
    pub secret: String,
    /// Events sent; empty: all.
    pub events: BTreeSet<NotificationEvent>,
    /// Request events only under these policies; empty: all.
    pub policies: Vec<String>,
    /// Only objects in these namespaces; empty: all.
    pub namespaces: Vec<String>,
    /// Certification events only of these campaigns; empty: all.
    pub campaigns: Vec<String>,
    /// Review events only for these reviewer groups; empty: all.
    pub reviewer_groups: Vec<String>,
    /// Lead times.
    pub leads: Leads,
    /// Sends nothing.
    pub suspend: bool,
    /// When the channel was created: nothing that happened before is sent.
    pub created: Option<DateTime<Utc>>,
}

fn lead(field: &'static str, value: Option<&String>, default: Duration) -> Result<Duration, ChannelError> {
    match value {
        None => Ok(default),
        Some(v) => duration::parse(v)
            .ok()
            .filter(|d| *d > Duration::zero())
            .ok_or_else(|| ChannelError::Duration {
                field,
                value: v.clone(),
            }),
    }
}

impl TryFrom<&NotificationChannel> for Channel {
    type Error = ChannelError;

    fn try_from(c: &NotificationChannel) -> Result<Self, Self::Error> {
        let defaults = Leads::default();
        let s = &c.spec;
        Ok(Channel {
            name: c.name_any(),
            uid: c.uid().unwrap_or_default(),
            generation: c.metadata.generation.unwrap_or_default(),
            type_: s.type_,
            secret: s.secret_ref.name.clone(),
            events: s.events.iter().copied().collect(),
            policies: s.policies.clone(),
            namespaces: s.namespaces.clone(),
            campaigns: s.campaigns.clone(),
            reviewer_groups: s.reviewer_groups.clone(),
            leads: Leads {
                expiring_soon: lead(
                    "expiringSoonBefore",
                    s.expiring_soon_before.as_ref(),
                    defaults.expiring_soon,
                )?,
                remind: lead("remindBefore", s.remind_before.as_ref(), defaults.remind)?,
            },
            suspend: s.suspend,
            created: created_at(c),
        })
    }
}

impl Channel {
    /// Whether the channel wants this notice. Each filter applies to the events it
    /// can describe: `policies` to request events, `campaigns` to certification
    /// events, `namespaces` to namespaced objects (a campaign run has none, so a
    /// channel that names namespaces gets no run events), `reviewerGroups` to
    /// events that ask a reviewer to act.
    pub fn wants(&self, n: &Notice) -> bool {
        if !self.events.is_empty() && !self.events.contains(&n.event) {
            return false;
        }
        if !self.namespaces.is_empty()
            && !n
                .object
                .namespace
                .as_ref()
                .is_some_and(|ns| self.namespaces.contains(ns))
        {
            return false;
        }
        let (policy, campaign, reviewers) = match &n.details {
            Details::Request(f) => (f.policy.as_ref(), None, Some(&f.reviewers)),
            Details::Item(f) => (None, Some(&f.campaign), Some(&f.reviewers)),
            Details::Run(f) => (None, Some(&f.campaign), None),
        };
        if !self.policies.is_empty()
            && matches!(n.details, Details::Request(_))
            && !policy.is_some_and(|p| self.policies.contains(p))
        {
            return false;
        }
        if !self.campaigns.is_empty() && campaign.is_some_and(|c| !self.campaigns.contains(c)) {
            return false;
        }
        if !self.reviewer_groups.is_empty() && n.event.is_review() {
            let listed = reviewers.is_some_and(|r| r.groups.iter().any(|g| self.reviewer_groups.contains(g)));
            if !listed {
                return false;
            }
        }
        true
    }

    /// Whether a notice is recent enough to send: it happened after the channel
    /// existed (a new channel gets no history) and within the catch-up window.
    pub fn in_window(&self, n: &Notice, now: DateTime<Utc>, catch_up: Duration) -> bool {
        // Creation timestamps have one-second resolution.
        let born = self.created.is_none_or(|c| n.at + Duration::seconds(1) >= c);
        born && now - n.at <= catch_up
    }
}
