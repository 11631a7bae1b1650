//! When runs start.

use std::collections::BTreeMap;

use super::*;
use crate::certify::schedule::{due_run, latest_run, next_run_at, Schedule, ScheduleError};

const QUARTERLY: &str = "schedule: '0 9 1 1,4,7,10 *'\ntimeZone: Europe/Berlin\n";

#[test]
fn a_quarterly_schedule_runs_at_nine_in_berlin_summer_or_winter() {
    let c = campaign(&format!("{TWO_LEVELS}{QUARTERLY}"));
    let run = latest_run(&c, at("10-08 12:00")).unwrap().unwrap();
    assert_eq!(run.started_at, at("10-01 07:00"), "09:00 CEST");
    assert_eq!(run.due_at, at("10-15 07:00"), "two weeks by default");
    assert_eq!(run.name, "quarterly-20261001-0700");
    assert_eq!(run.trigger, RunTrigger::Scheduled);
    assert_eq!(
        next_run_at(&c, at("10-08 12:00")).unwrap(),
        Some(at("2027-01-01T08:00:00Z")),
        "09:00 CET"
    );
}

#[test]
fn runs_missed_while_the_operator_was_down_start_once_the_latest() {
    let c = campaign(&format!("{TWO_LEVELS}{QUARTERLY}"));
    // Down from June to mid-October: the July run is skipped, October's starts once.
    let due = due_run(&c, Some(at("2026-04-01T07:00:00Z")), at("10-20 00:00"))
        .unwrap()
        .unwrap();
    assert_eq!(due.started_at, at("10-01 07:00"));
    assert_eq!(
        due_run(&c, Some(due.started_at), at("10-20 00:00")).unwrap(),
        None
    );
    // Nothing before the campaign existed (created 2026-09-01).
    assert_eq!(latest_run(&c, at("2026-09-15T00:00:00Z")).unwrap(), None);
}

#[test]
fn without_a_schedule_a_campaign_runs_when_created_and_when_asked() {
    let mut c = campaign(&format!("{TWO_LEVELS}duration: 72h\n"));
    let first = latest_run(&c, at("10-08 12:00")).unwrap().unwrap();
    assert_eq!(
        (first.started_at, first.trigger),
        (at("2026-09-01T00:00:00Z"), RunTrigger::Created)
    );
    assert_eq!(first.due_at, at("2026-09-04T00:00:00Z"));
    assert_eq!(next_run_at(&c, at("10-08 12:00")).unwrap(), None);

    c.metadata.annotations = Some(BTreeMap::from([(
        "gatehouse.dev/run-requested-at".to_string(),
        "2026-10-05T08:30:00Z".to_string(),
    )]));
    let asked = due_run(&c, Some(first.started_at), at("10-08 12:00"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (asked.started_at, asked.trigger),
        (at("10-05 08:30"), RunTrigger::Requested)
    );
    // A request in the future is not a run yet.
    assert_eq!(
        due_run(&c, Some(first.started_at), at("10-05 08:00")).unwrap(),
        None
    );
}

#[test]
fn schedules_follow_cronjob_conventions() {
    assert!(Schedule::parse("@weekly", None).is_ok());
    assert!(Schedule::parse("0 9 * * MON-FRI", Some("America/New_York")).is_ok());
    let err = Schedule::parse("0 9 L * *", None).unwrap_err();
    assert!(matches!(err, ScheduleError::Extension { .. }), "{err}");
    assert!(Schedule::parse("0 9 * * 5#2", None).is_err());
    assert!(Schedule::parse("0 0 9 * * *", None).is_err(), "no seconds field");
    let err = Schedule::parse("0 9 * * *", Some("Berlin time")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "timeZone \"Berlin time\" is not an IANA time zone (e.g. \"Europe/Berlin\", \"UTC\")"
    );
    let err = Schedule::parse("every day", None).unwrap_err().to_string();
    assert!(
        err.starts_with("schedule \"every day\" is not a cron schedule"),
        "{err}"
    );
}

#[test]
fn a_run_at_a_time_the_clock_skips_starts_when_the_clock_resumes() {
    // 02:30 does not exist in Berlin on 2027-03-28 (02:00 → 03:00 CEST).
    let s = Schedule::parse("30 2 28 3 *", Some("Europe/Berlin")).unwrap();
    let next = s.next_after(at("2027-03-27T00:00:00Z")).unwrap();
    assert_eq!(
        next,
        at("2027-03-28T01:00:00Z"),
        "03:00 CEST, the first instant after the gap"
    );
}
