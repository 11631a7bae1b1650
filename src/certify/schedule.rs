//! When campaign runs start, with CronJob conventions: five cron fields or an
//! `@`-macro, the time zone in its own field, and after a pause (operator down)
//! only the most recent missed run is started, once.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use croner::{
    parser::{CronParser, Seconds, Year},
    Cron,
};
use kube::ResourceExt;
use thiserror::Error;

use super::{naming::run_name, DEFAULT_DURATION, RUN_REQUESTED_AT};
pub use crate::api::RunTrigger;
use crate::{
    api::AccessCampaign,
    decide::{duration, to_chrono},
};

/// Why a campaign's timing is invalid.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ScheduleError {
    /// The schedule does not parse.
    #[error("schedule {schedule:?} is not a cron schedule: {message} (five fields: minute hour day-of-month month day-of-week, or @daily, @weekly, @monthly, @yearly, @hourly)")]
    Cron {
        /// The schedule.
        schedule: String,
        /// What the parser said.
        message: String,
    },
    /// The schedule uses an extension CronJobs do not accept.
    #[error("schedule {schedule:?} uses {what}, which CronJob schedules do not support")]
    Extension {
        /// The schedule.
        schedule: String,
        /// The extension found.
        what: &'static str,
    },
    /// The time zone does not exist.
    #[error("timeZone {0:?} is not an IANA time zone (e.g. \"Europe/Berlin\", \"UTC\")")]
    TimeZone(String),
    /// A duration does not parse.
    #[error("{field}: {message}")]
    Duration {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// A parsed schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// croner understands Quartz-style `L`, `W` and `#`; a CronJob would refuse them,
/// and a campaign follows CronJob conventions.
fn check_extensions(schedule: &str) -> Result<(), ScheduleError> {
    for field in schedule.split_whitespace().filter(|f| !f.starts_with('@')) {
        let mut bare = field.to_uppercase();
        for name in MONTHS.iter().chain(DAYS.iter()) {
            bare = bare.replace(name, "");
        }
        for (mark, what) in [
            ("#", "'#' (nth weekday)"),
            ("L", "'L' (last)"),
            ("W", "'W' (weekday)"),
        ] {
            if bare.contains(mark) {
                return Err(ScheduleError::Extension {
                    schedule: schedule.to_string(),
                    what,
                });
            }
        }
    }
    Ok(())
}

impl Schedule {
    /// Parses a schedule and its time zone (default UTC).
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Self, ScheduleError> {
        let zone = time_zone.unwrap_or("UTC");
        let tz: Tz = zone
            .parse()
            .map_err(|_| ScheduleError::TimeZone(zone.to_string()))?;
        check_extensions(schedule)?;
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .build()
            .parse(schedule)
            .map_err(|e| ScheduleError::Cron {
                schedule: schedule.to_string(),
                message: e.to_string(),
            })?;
        Ok(Schedule { cron, tz })
    }

    /// The first start strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_next_occurrence(&t.with_timezone(&self.tz), false)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// The last start at or before `t`.
    pub fn latest_at_or_before(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }
}

/// One run of a campaign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunPlan {
    /// The campaign.
    pub campaign: String,
    /// Deterministic name, from the campaign and the start.
    pub name: String,
    /// The scheduled or requested start (not when an operator got to it).
    pub started_at: DateTime<Utc>,
    /// `started_at` + the campaign's duration.
    pub due_at: DateTime<Utc>,
    /// What started it.
    pub trigger: RunTrigger,
}

/// How long reviewers have in this campaign.
pub fn review_period(campaign: &AccessCampaign) -> Result<Duration, ScheduleError> {
    let text = campaign.spec.duration.as_deref().unwrap_or(DEFAULT_DURATION);
    duration::parse(text).map_err(|e| ScheduleError::Duration {
        field: "spec.duration",
        message: e.to_string(),
    })
}

fn schedule_of(campaign: &AccessCampaign) -> Result<Option<Schedule>, ScheduleError> {
    campaign
        .spec
        .schedule
        .as_deref()
        .map(|s| Schedule::parse(s, campaign.spec.time_zone.as_deref()))
        .transpose()
}

/// The on-demand request on the campaign, if its annotation holds a valid time.
pub fn requested_at(campaign: &AccessCampaign) -> Option<DateTime<Utc>> {
    campaign
        .annotations()
        .get(RUN_REQUESTED_AT)
        .and_then(|v| DateTime::parse_from_rfc3339(v.trim()).ok())
        .map(|t| t.with_timezone(&Utc))
}

/// The most recent run that has started by `now`: the latest scheduled start (not
/// before the campaign was created), the creation itself for a campaign without a
/// schedule, or the latest on-demand request; `None` before the first one.
pub fn latest_run(campaign: &AccessCampaign, now: DateTime<Utc>) -> Result<Option<RunPlan>, ScheduleError> {
    let created = campaign.metadata.creation_timestamp.as_ref().and_then(to_chrono);
    let period = review_period(campaign)?;
    let not_before_creation = |t: &DateTime<Utc>| created.is_none_or(|c| *t >= c);
    let mut candidates: Vec<(DateTime<Utc>, RunTrigger)> = Vec::new();
    match schedule_of(campaign)? {
        Some(schedule) => candidates.extend(
            schedule
                .latest_at_or_before(now)
                .filter(not_before_creation)
                .map(|t| (t, RunTrigger::Scheduled)),
        ),
        None => candidates.extend(created.filter(|c| *c <= now).map(|c| (c, RunTrigger::Created))),
    }
    candidates.extend(
        requested_at(campaign)
            .filter(|t| *t <= now && not_before_creation(t))
            .map(|t| (t, RunTrigger::Requested)),
    );
    let name = campaign.name_any();
    Ok(candidates
        .into_iter()
        .max_by_key(|(t, _)| *t)
        .map(|(t, trigger)| RunPlan {
            name: run_name(&name, t),
            campaign: name.clone(),
            started_at: t,
            due_at: t + period,
            trigger,
        }))
}

/// The run to start now, if one is due: the latest run, unless a run at or after
/// its start was already started (`last_started`). Runs missed while the operator
/// was down collapse into the latest one, as for CronJobs.
pub fn due_run(
    campaign: &AccessCampaign,
    last_started: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Result<Option<RunPlan>, ScheduleError> {
    Ok(latest_run(campaign, now)?.filter(|r| last_started.is_none_or(|l| r.started_at > l)))
}

/// When the next scheduled run starts; `None` for a campaign without a schedule.
pub fn next_run_at(
    campaign: &AccessCampaign,
    now: DateTime<Utc>,
) -> Result<Option<DateTime<Utc>>, ScheduleError> {
    Ok(schedule_of(campaign)?.and_then(|s| s.next_after(now)))
}
