//! A campaign's reconcile, evaluated: a run is recorded before its items, launched
//! at once, counted, completed, and dropped after its retention.
//! The quarterly campaign runs at 07:00 UTC on the first of each quarter.

use chrono::{Duration, TimeDelta};
use proptest::prelude::*;

use super::*;
use crate::{
    api::{
        AccessCampaignStatus, AccessCertificationStatus, CampaignRun, ConditionStatus, SkipReason,
        SkippedItem,
    },
    certify::campaign::{
        evaluate, CampaignEvaluation, CampaignInput, LaunchOutcome, NoteKind, RunItem, READY,
    },
};

const QUARTERLY: &str = "schedule: '0 7 1 1,4,7,10 *'\n";
const RUN: &str = "quarterly-20261001-0700";

fn quarterly() -> AccessCampaign {
    campaign(&format!("{TWO_LEVELS}{QUARTERLY}"))
}

fn with_status(mut c: AccessCampaign, status: AccessCampaignStatus) -> AccessCampaign {
    c.status = Some(status);
    c
}

/// The quarterly run as recorded: launched (or not) with `items` items.
fn recorded(launched: Option<&str>, items: u32) -> AccessCampaignStatus {
    AccessCampaignStatus {
        last_run: Some(RUN.into()),
        last_run_started_at: Some(at("10-01 07:00")),
        runs: vec![CampaignRun {
            name: RUN.into(),
            started_at: at("10-01 07:00"),
            due_at: at("10-15 07:00"),
            trigger: Some(RunTrigger::Scheduled),
            launched_at: launched.map(at),
            items,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn item(closed: bool) -> RunItem {
    RunItem {
        run: RUN.into(),
        status: AccessCertificationStatus {
            closed_at: closed.then(|| at("10-10 09:00")),
            ..Default::default()
        },
    }
}

fn eval(
    c: &AccessCampaign,
    items: &[RunItem],
    launched: Option<&LaunchOutcome>,
    now: &str,
) -> CampaignEvaluation {
    let read = c
        .status
        .as_ref()
        .map(|s| s.conditions.clone())
        .unwrap_or_default();
    evaluate(&CampaignInput {
        campaign: c,
        conditions_read: &read,
        items,
        launched,
        min_review_window: Duration::hours(1),
        now: at(now),
    })
}

fn kinds(ev: &CampaignEvaluation) -> Vec<NoteKind> {
    ev.notes.iter().map(|n| n.kind).collect()
}

#[test]
fn a_run_is_recorded_before_its_items_and_launched_at_once() {
    // At its start: the run is written first, then launched in the same
    // reconcile (the shell reads the cluster for its items: nothing to wait for).
    let ev = eval(&quarterly(), &[], None, "2026-10-01T07:00:00Z");
    let first = ev.record_first.as_ref().expect("the run is recorded first");
    assert_eq!(first.started.as_ref().map(|p| p.name.as_str()), Some(RUN));
    assert_eq!(first.note.kind, NoteKind::RunStarted);
    assert_eq!(first.status.runs.len(), 1);
    assert_eq!(first.status.runs[0].launched_at, None);
    assert_eq!(first.status.last_run.as_deref(), Some(RUN));
    assert_eq!(ev.launch.as_ref().map(|p| p.name.as_str()), Some(RUN));
    assert_eq!(ev.wait, None);

    // Evaluated again before the launch ended (a restart): launch it, and
    // decide the rest once the launch says how it went.
    let c = with_status(quarterly(), first.status.clone());
    let ev = eval(&c, &[], None, "2026-10-01T07:00:05Z");
    assert_eq!(ev.record_first, None, "a run is started once");
    assert_eq!(ev.launch.as_ref().map(|p| p.name.as_str()), Some(RUN));
    assert!(ev.notes.is_empty() && ev.expire.is_empty() && ev.wait.is_none());

    // Not finished: go on in a moment.
    let partial = LaunchOutcome {
        at: at("2026-10-01T07:00:06Z"),
        complete: false,
        total: 0,
        skipped: vec![],
        capped: None,
    };
    let ev = eval(&c, &[item(false)], Some(&partial), "2026-10-01T07:00:05Z");
    assert_eq!(ev.launch, None);
    assert_eq!(ev.status.runs[0].launched_at, None);
    assert_eq!(
        ev.status.runs[0].items, 1,
        "while launching: the items memory holds"
    );
    assert_eq!(ev.wait, Some(TimeDelta::milliseconds(100)));

    // Finished, one binding × subject skipped: say so, and wait for the due time.
    let skip = SkippedItem {
        binding: "RoleBinding payments/devs-edit".into(),
        subject: Some("User bob".into()),
        reason: SkipReason::NameConflict,
        message: "exists".into(),
    };
    let done = LaunchOutcome {
        complete: true,
        total: 2,
        skipped: vec![skip],
        ..partial
    };
    let ev = eval(&c, &[item(false)], Some(&done), "2026-10-01T07:00:05Z");
    let run = &ev.status.runs[0];
    assert_eq!(run.launched_at, Some(at("2026-10-01T07:00:06Z")));
    assert_eq!((run.items, run.skipped), (2, 1));
    assert_eq!(kinds(&ev), [NoteKind::RunLaunched, NoteKind::ItemsSkipped]);
    let launched = ev
        .status
        .conditions
        .iter()
        .find(|c| c.type_ == "Launched")
        .unwrap();
    assert_eq!(
        (launched.status, launched.reason.as_str()),
        (ConditionStatus::True, "ItemsSkipped")
    );
    assert_eq!(
        ev.wait,
        Some(at("10-15 07:00") - at("2026-10-01T07:00:05Z") + TimeDelta::milliseconds(50))
    );
}

#[test]
fn a_second_request_in_the_same_minute_is_the_same_run() {
    let mut c = with_status(quarterly(), recorded(Some("10-01 07:01"), 2));
    c.metadata.annotations = Some(
        [(
            crate::certify::RUN_REQUESTED_AT.to_string(),
            "2026-10-01T07:00:30Z".to_string(),
        )]
        .into(),
    );
    let ev = eval(&c, &[item(false), item(false)], None, "10-01 08:00");
    let first = ev.record_first.expect("the request is recorded as honoured");
    assert_eq!(first.note.kind, NoteKind::RunExists);
    assert!(
        first.note.message.contains("ask again in the next minute"),
        "{}",
        first.note.message
    );
    assert_eq!(first.started, None);
    assert_eq!(first.status.runs.len(), 1, "no second run");
    assert_eq!(first.status.last_requested_at, Some(at("2026-10-01T07:00:30Z")));
    assert_eq!(ev.launch, None);
}

#[test]
fn a_run_completes_once_it_is_due_and_every_item_is_closed() {
    let c = with_status(quarterly(), recorded(Some("10-01 07:01"), 2));
    let open = eval(&c, &[item(true), item(false)], None, "10-16 00:00");
    assert_eq!(open.status.runs[0].completed_at, None);
    assert!(open.notes.is_empty());
    let before_due = eval(&c, &[item(true), item(true)], None, "10-14 00:00");
    assert_eq!(before_due.status.runs[0].completed_at, None);

    let ev = eval(&c, &[item(true), item(true)], None, "10-16 00:00");
    assert_eq!(ev.status.runs[0].completed_at, Some(at("10-16 00:00")));
    assert_eq!(kinds(&ev), [NoteKind::RunCompleted]);
    // Said once: the next reconcile finds it completed.
    let again = eval(
        &with_status(quarterly(), ev.status),
        &[item(true), item(true)],
        None,
        "10-17 00:00",
    );
    assert_eq!(again.status.runs[0].completed_at, Some(at("10-16 00:00")));
    assert!(again.notes.is_empty());
}

#[test]
fn after_its_retention_a_runs_items_are_deleted_then_the_run_leaves_the_status() {
    let c = with_status(
        campaign(&format!("{TWO_LEVELS}{QUARTERLY}retention: 720h\n")),
        recorded(Some("10-01 07:01"), 2),
    );
    // Retention ends 30 days after the due time: 11-14 07:00.
    let kept = eval(&c, &[item(true)], None, "11-14 06:00");
    assert!(kept.expire.is_empty());
    assert_eq!(kept.status.runs.len(), 1);
    assert_eq!(kept.wait, Some(TimeDelta::hours(1) + TimeDelta::milliseconds(50)));

    let expired = eval(&c, &[item(true)], None, "11-14 08:00");
    assert_eq!(expired.expire, [RUN]);
    assert_eq!(expired.status.runs.len(), 1, "kept until its items are gone");
    assert_eq!(expired.wait, Some(TimeDelta::seconds(1)));

    let gone = eval(&c, &[], None, "11-14 08:01");
    assert!(gone.expire.is_empty());
    assert!(gone.status.runs.is_empty());
    assert_eq!(
        gone.status.last_run.as_deref(),
        Some(RUN),
        "the last start is remembered"
    );
}

#[test]
fn an_invalid_campaign_says_why_and_waits_for_a_change() {
    let c = campaign(&format!("{TWO_LEVELS}schedule: '0 25 * * *'\n"));
    let ev = eval(&c, &[], None, "10-01 07:00");
    assert!(!ev.valid);
    let ready = &ev.status.conditions[0];
    assert_eq!(
        (ready.type_.as_str(), ready.status, ready.reason.as_str()),
        (READY, ConditionStatus::False, "Invalid")
    );
    assert_eq!(
        (ev.record_first, ev.launch, ev.wait, ev.status.next_run_at),
        (None, None, None, None)
    );

    let short = campaign(&format!("{TWO_LEVELS}{QUARTERLY}duration: 30m\n"));
    let ev = eval(&short, &[], None, "10-01 07:00");
    assert_eq!(ev.status.conditions[0].reason, "ReviewWindowTooShort");
}

proptest! {
    /// Whenever it is evaluated, a campaign whose run is launched starts no
    /// second run before the next scheduled start, and always wakes up again by
    /// then (a schedule is never missed by sleeping through it).
    #[test]
    fn a_launched_run_is_never_started_again_and_the_next_start_is_never_slept_through(
        minutes in 2i64..(60 * 24 * 91),
        closed in proptest::collection::vec(any::<bool>(), 0..4),
    ) {
        let c = with_status(quarterly(), recorded(Some("10-01 07:01"), closed.len() as u32));
        let now = at("10-01 07:00") + TimeDelta::minutes(minutes);
        let items: Vec<RunItem> = closed.iter().map(|c| item(*c)).collect();
        let read = c.status.as_ref().unwrap().conditions.clone();
        let ev = evaluate(&CampaignInput {
            campaign: &c,
            conditions_read: &read,
            items: &items,
            launched: None,
            min_review_window: Duration::hours(1),
            now,
        });
        prop_assert!(ev.valid);
        prop_assert!(ev.record_first.is_none() && ev.launch.is_none());
        prop_assert_eq!(ev.status.runs.len(), 1);
        let next = at("2027-01-01T07:00:00Z");
        prop_assert_eq!(ev.status.next_run_at, Some(next));
        let wait = ev.wait.expect("a scheduled campaign always wakes up");
        prop_assert!(now + wait <= next + TimeDelta::milliseconds(50));
        prop_assert!(wait > TimeDelta::zero());
    }
}
