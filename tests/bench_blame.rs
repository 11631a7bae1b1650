//! The crash storm's accounting (benches/load/phases/blame.rs): when a grant
//! was due to be gone, and whether a late one could have been removed by any
//! process. The bench itself has no test harness; its rules are tested here.

#[path = "../benches/load/phases/blame.rs"]
#[allow(dead_code)]
mod blame;

use blame::{could_act, due, Life};
use chrono::{DateTime, TimeDelta, Utc};

fn t(s: &str) -> DateTime<Utc> {
    format!("2026-12-07T20:46:{s}Z").parse().unwrap()
}

fn life(started: &str, synced: Option<&str>, killed: Option<&str>) -> Life {
    Life {
        log: Default::default(),
        started: t(started),
        synced: synced.map(t),
        killed: killed.map(t),
    }
}

const SECOND: TimeDelta = TimeDelta::seconds(1);

/// The 21:46 storm of 2026-12-07 (seed 1796668859966761), processes 11 to 13:
/// 11 killed 250 ms after its start, 12 started and killed again before it
/// wrote a line, 13 lived.
fn storm() -> Vec<Life> {
    vec![
        life("33.690", None, Some("33.938")),
        life("34.790", None, Some("34.846")),
        life("35.933", Some("36.186"), Some("38.682")),
    ]
}

#[test]
fn a_grant_that_expires_while_a_process_runs_on_is_due_at_its_expiry() {
    let lives = [life("00.000", Some("00.100"), Some("30.000"))];
    assert_eq!(due(&lives, t("10.000"), SECOND), Some(t("10.000")));
    // Less than a second before that process is killed: the next one's start.
    let lives = [
        life("00.000", Some("00.100"), Some("10.500")),
        life("11.200", None, None),
    ];
    assert_eq!(due(&lives, t("10.000"), SECOND), Some(t("11.200")));
}

#[test]
fn a_restart_killed_within_a_second_of_its_start_is_not_the_one_the_grant_waits_for() {
    // Expired 34.000, in the outage after 11; 12 started at 34.790 and was
    // killed 56 ms later; 13 removed it at 35.990: 57 ms after 13's start.
    let due = due(&storm(), t("34.000"), SECOND).unwrap();
    assert_eq!(due, t("35.933"));
    assert!(t("35.990") - due < SECOND, "not late");
    // Counted strictly from 12's start, it was 1.2 s late, and no process
    // could have acted: none was alive and synced for a second in between.
    assert_eq!(could_act(&storm(), t("34.000"), t("35.990"), SECOND), None);
}

#[test]
fn a_process_that_had_its_second_and_did_not_remove_is_a_real_miss() {
    let lives = storm();
    // Expired 36.000 while 13 ran (synced, alive until 38.682): due then, and
    // gone only at 37.500 would be late, by 13's fault.
    let due = due(&lives, t("36.000"), SECOND).unwrap();
    assert_eq!(due, t("36.000"));
    assert!(t("37.500") - due > SECOND);
    assert_eq!(could_act(&lives, t("36.000"), t("37.500"), SECOND), Some(2));
}

#[test]
fn after_the_last_kill_no_process_is_due() {
    let lives = [life("00.000", None, Some("05.000"))];
    assert_eq!(due(&lives, t("06.000"), SECOND), None);
}
