//! Certification events, derived from an item's or a campaign's stored status the
//! same way request events are (see [`super::events`]): run started, item waiting
//! for a level, reminder before due, escalated, overdue, run completed with counts.
//!
//! The certification controller calls [`super::Notifier::observe_certification`]
//! and [`super::Notifier::observe_campaign`] after each status write; these
//! functions decide what that status means.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::events::{Details, Leads, Notice, ObjectId};
use crate::api::{
    AccessCampaign, AccessCertification, ClosedBy, LevelState, NotificationEvent, Outcome, Principals,
    Recommendation,
};

/// What a message about a certification item says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ItemFacts {
    /// The campaign.
    pub campaign: String,
    /// The run.
    pub run: String,
    /// Who holds the access (`User alice`).
    pub subject: String,
    /// The role (`ClusterRole/admin`).
    pub role: String,
    /// The binding reviewed (`RoleBinding team/admins`).
    pub binding: String,
    /// When reviewers must have decided.
    pub due_at: DateTime<Utc>,
    /// The open level.
    pub level: Option<String>,
    /// Who can decide now.
    pub reviewers: Principals,
    /// The operator's recommendation (`None`: not assessed yet).
    pub recommendation: Option<Recommendation>,
    /// Risk, in words (`cluster-admin, secrets`).
    pub risk: Option<String>,
    /// How it closed without a decision, if it did.
    pub closed_by: Option<ClosedBy>,
    /// What happens to the access.
    pub outcome: Outcome,
}

/// What a message about a campaign run says.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunFacts {
    /// The campaign.
    pub campaign: String,
    /// The run.
    pub run: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it is due.
    pub due_at: DateTime<Utc>,
    /// Items in the run.
    pub items: u32,
    /// Items kept.
    pub approved: u32,
    /// Items revoked.
    pub revoked: u32,
    /// Items nobody finished deciding.
    pub unreviewed: u32,
}

/// Every notice the item's stored status shows has happened by `now`.
pub fn item_notices(item: &AccessCertification, now: DateTime<Utc>, leads: Leads) -> Vec<Notice> {
    let (Some(status), Some(uid)) = (item.status.as_ref(), item.uid()) else {
        return Vec::new();
    };
    let spec = &item.spec;
    let open = status.levels.iter().find(|l| l.state == LevelState::Open);
    let b = &spec.binding;
    let facts = ItemFacts {
        campaign: spec.campaign.clone(),
        run: spec.run.clone(),
        subject: spec.subject.to_string(),
        role: spec.role_ref.to_string(),
        binding: b.to_string(),
        due_at: spec.due_at,
        level: open.map(|l| l.name.clone()),
        reviewers: status.reviewers.clone().unwrap_or_default(),
        recommendation: status.recommendation,
        risk: status.risk_summary.clone(),
        closed_by: status.closed_by,
        outcome: status.outcome,
    };
    let object = ObjectId {
        kind: "AccessCertification",
        namespace: item.namespace(),
        name: item.name_any(),
        uid,
    };
    let notice = |event, occurrence: &str, at| Notice {
        event,
        occurrence: occurrence.to_string(),
        at,
        object: object.clone(),
        details: Details::Item(facts.clone()),
    };
    let mut out = Vec::new();
    if let Some(level) = open {
        // Only while the level can still decide.
        let opened = level.opened_at.unwrap_or(spec.started_at);
        out.push(notice(
            NotificationEvent::CertificationItemWaiting,
            &level.name,
            opened,
        ));
        if let Some(at) = level.escalated_at {
            out.push(notice(NotificationEvent::CertificationEscalated, &level.name, at));
        }
        let remind = spec.due_at - leads.remind;
        if now >= remind && now < spec.due_at && spec.started_at < remind {
            out.push(notice(NotificationEvent::CertificationReminder, "", remind));
        }
    }
    let overdue = matches!(
        status.closed_by,
        Some(ClosedBy::NoDecisionKeep | ClosedBy::NoDecisionRevoke | ClosedBy::NoDecisionRecommendation)
    );
    if overdue {
        let at = status.closed_at.unwrap_or(spec.due_at);
        out.push(notice(NotificationEvent::CertificationOverdue, "", at));
    }
    out
}

/// When an item's reminder is due, with this lead; `None` when no level is open
/// or the run is shorter than the lead.
pub fn reminder_at(item: &AccessCertification, leads: Leads) -> Option<DateTime<Utc>> {
    let status = item.status.as_ref()?;
    status.levels.iter().find(|l| l.state == LevelState::Open)?;
    let remind = item.spec.due_at - leads.remind;
    (item.spec.started_at < remind).then_some(remind)
}

/// Every notice the campaign's runs show by `now`: started while under way,
/// completed once the review is over (`certify::campaign::review_over`).
pub fn run_notices(campaign: &AccessCampaign, now: DateTime<Utc>) -> Vec<Notice> {
    let (Some(status), Some(uid)) = (campaign.status.as_ref(), campaign.uid()) else {
        return Vec::new();
    };
    let object = ObjectId {
        kind: "AccessCampaign",
        namespace: None,
        name: campaign.name_any(),
        uid,
    };
    let mut out = Vec::new();
    for run in &status.runs {
        let facts = RunFacts {
            campaign: campaign.name_any(),
            run: run.name.clone(),
            started_at: run.started_at,
            due_at: run.due_at,
            items: run.items,
            approved: run.approved,
            revoked: run.revoked,
            unreviewed: run.unreviewed,
        };
        let notice = |event, at| Notice {
            event,
            occurrence: run.name.clone(),
            at,
            object: object.clone(),
            details: Details::Run(facts.clone()),
        };
        if !crate::certify::campaign::review_over(run, now) {
            out.push(notice(NotificationEvent::CertificationRunStarted, run.started_at));
        } else {
            out.push(notice(
                NotificationEvent::CertificationRunCompleted,
                run.due_at.min(now),
            ));
        }
    }
    out
}
