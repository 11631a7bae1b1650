//! The campaign's own status: validity, retention, run counts.

use super::*;
use crate::{
    api::Decision::*,
    certify::campaign::{launched_condition, problems, record_skips, retention_until, run_summary},
};

#[test]
fn a_valid_campaign_has_no_problems_and_an_invalid_one_names_the_field() {
    assert!(problems(&campaign(&format!(
        "{TWO_LEVELS}schedule: '@monthly'\ntimeZone: Europe/Berlin\n"
    )))
    .is_empty());
    // What the CRD's patterns let through, but no cluster could run.
    let bad = campaign(&format!(
        "{TWO_LEVELS}schedule: '0 25 * * *'\ntimeZone: Mars/Olympus\nduration: 0s\nescalation: {{after: 1x, groups: [a]}}\nretention: forever\n"
    ));
    let p = problems(&bad);
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(
        p[0].starts_with("timeZone \"Mars/Olympus\" is not an IANA time zone"),
        "{p:#?}"
    );
    assert_eq!(p[1], "spec.duration: must be longer than zero");
    assert!(
        p[2].starts_with("spec.escalation.after: \"1x\" is not a duration"),
        "{p:#?}"
    );
    assert!(p[3].starts_with("spec.retention:"), "{p:#?}");
    let hour = campaign(&format!("{TWO_LEVELS}schedule: '0 25 * * *'\n"));
    assert!(problems(&hour)[0].starts_with("schedule \"0 25 * * *\" is not a cron schedule"));
}

#[test]
fn a_runs_items_are_kept_a_year_after_it_is_due_unless_the_campaign_says_otherwise() {
    assert_eq!(
        retention_until(&campaign(TWO_LEVELS), &run()).unwrap(),
        at("2027-10-15T07:00:00Z")
    );
    let short = campaign(&format!("{TWO_LEVELS}retention: 720h\n"));
    assert_eq!(retention_until(&short, &run()).unwrap(), at("11-14 07:00"));
}

#[test]
fn the_run_summary_counts_decisions_and_finished_remediations() {
    let inv = cluster(PAYMENTS);
    let l = launched(&campaign(&format!("{TWO_LEVELS}remediation: Automatic\n")), &inv);
    let (bob, devs) = (item_of(&l, "bob"), item_of(&l, "payments-devs"));
    let revoked = [
        review(&bob, "olaf", &["ops-leads"], Revoke, "10-02 09:00"),
        review(&bob, "sam", &["security"], Revoke, "10-03 09:00"),
    ];
    let removed = cluster(&PAYMENTS.replace("- {kind: User, name: bob}\n", ""));
    let bob_done = eval(&bob, &revoked, &removed, "10-04 00:00").status;
    let devs_open = eval(&devs, &[], &inv, "10-04 00:00").status;
    let summary = run_summary(&run(), &[&bob_done, &devs_open]);
    assert_eq!(summary.name, "quarterly-20261001-0700");
    assert_eq!(
        (
            summary.items,
            summary.approved,
            summary.revoked,
            summary.unreviewed,
            summary.remediated
        ),
        (2, 0, 1, 1, 1)
    );
    assert_eq!((summary.failed, summary.managed_externally), (0, 0));
    assert_eq!(summary.trigger, Some(crate::api::RunTrigger::Scheduled));

    // A binding Helm owns is counted apart: it is changed in the chart.
    let helm = PAYMENTS.replace(
        "namespace: payments, creationTimestamp",
        "namespace: payments, labels: {app.kubernetes.io/managed-by: Helm}, annotations: {meta.helm.sh/release-name: ledger, meta.helm.sh/release-namespace: payments}, creationTimestamp",
    );
    let helm_inv = cluster(&helm);
    let l = launched(
        &campaign(&format!("{TWO_LEVELS}remediation: Automatic\n")),
        &helm_inv,
    );
    let bob = item_of(&l, "bob");
    let revoked = [
        review(&bob, "olaf", &["ops-leads"], Revoke, "10-02 09:00"),
        review(&bob, "sam", &["security"], Revoke, "10-03 09:00"),
    ];
    let external = eval(&bob, &revoked, &helm_inv, "10-04 00:00").status;
    let summary = run_summary(&run(), &[&external]);
    assert_eq!((summary.remediated, summary.managed_externally), (0, 1));
}

#[test]
fn a_review_window_below_the_minimum_is_refused_and_a_late_run_still_gets_it() {
    use crate::certify::campaign::{due_at, review_window, ReviewWindowTooShort};
    let hour = chrono::Duration::hours(1);
    let short = campaign(&format!("{TWO_LEVELS}duration: 30m\nonNoDecision: Revoke\n"));
    assert_eq!(
        review_window(&short, hour),
        Err(ReviewWindowTooShort {
            window: "30m".into(),
            minimum: "1h".into()
        })
    );
    assert!(review_window(&short, hour)
        .unwrap_err()
        .to_string()
        .starts_with("spec.duration: the review window 30m is shorter than this operator's minimum of 1h"));
    // The default (two weeks) and exactly the minimum are fine.
    assert_eq!(review_window(&campaign(TWO_LEVELS), hour), Ok(()));
    let exact = campaign(&format!("{TWO_LEVELS}duration: 1h\n"));
    assert_eq!(review_window(&exact, hour), Ok(()));
    // A run started (by the operator) long after its planned start: due no
    // sooner than the minimum after it actually starts.
    let planned = run().due_at;
    let late = planned + chrono::Duration::days(3);
    assert_eq!(due_at(planned, late, hour), late + hour);
    assert_eq!(due_at(planned, run().started_at, hour), planned);
}

/// A launch always ends, and says how: the skipped are counted, the first
/// listed (those a person can act on before those past the cap), the cap named.
#[test]
fn a_launch_ends_in_a_condition_that_says_what_was_skipped() {
    use crate::api::{CampaignRun, ConditionStatus, SkipReason};
    use crate::certify::scope::skipped;
    let mut run = CampaignRun {
        name: "quarterly-20261001-0700".into(),
        ..Default::default()
    };
    let now = at("10-01 07:01");
    let c = launched_condition(&run, Some(1), now);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::False, "Launching")
    );

    run.launched_at = Some(now);
    run.items = 3;
    assert_eq!(launched_condition(&run, Some(1), now).reason, "AllItemsCreated");

    let mut skips: Vec<_> = (0..30)
        .map(|n| {
            skipped(
                &format!("RoleBinding p/b{n}"),
                None,
                SkipReason::ItemCap,
                "cap".into(),
            )
        })
        .collect();
    skips.push(skipped(
        "RoleBinding p/long",
        None,
        SkipReason::Invalid,
        "too long".into(),
    ));
    record_skips(&mut run, &skips, None);
    assert_eq!(run.skipped, 31);
    assert_eq!(run.skipped_items.len(), 20);
    assert_eq!(
        run.skipped_items[0].reason,
        SkipReason::Invalid,
        "what a person can fix comes first"
    );
    let c = launched_condition(&run, Some(1), now);
    assert_eq!(
        (c.status, c.reason.as_str()),
        (ConditionStatus::True, "ItemsSkipped")
    );

    record_skips(&mut run, &skips, Some(3));
    let c = launched_condition(&run, Some(1), now);
    assert_eq!(c.reason, "ItemCapReached");
    assert!(c.message.contains("maxItemsPerRun (3)"), "{}", c.message);
}
