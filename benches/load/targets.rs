//! The targets of issues 14 and 24, judged against a report. They are compass goals:
//! a miss is reported, never a failure of the run.

use crate::{
    report::{Expiry, FloorDelete, Report, Target},
    stats::human,
};

fn target(goal: &str, reached: String, met: Option<bool>) -> Target {
    Target {
        goal: goal.into(),
        reached,
        met,
    }
}

/// A burst's end: its slowest revoke (they all expire at one instant: from
/// the last `expiresAt`), and no request left ungranted; beside it the floor,
/// N raw deletes at once in the same run.
fn all_gone(goal: &str, e: &Expiry, floor: Option<&FloorDelete>) -> Target {
    let mut reached = format!("all gone within {}", human(e.lag.max));
    if let Some(f) = floor {
        reached.push_str(&format!(
            " (floor: {} raw deletes in {})",
            f.latency.n,
            human(f.all_gone_secs)
        ));
    }
    if !e.ungranted.is_empty() {
        reached.push_str(&format!(" ({} never granted)", e.ungranted.len()));
    }
    target(goal, reached, Some(e.lag.max <= 1.0 && e.ungranted.is_empty()))
}

/// Every target, met, missed or not measured.
pub fn judge(r: &Report) -> Vec<Target> {
    let mut out = Vec::new();
    out.push(match (&r.approval, &r.floor) {
        (Some(a), Some(f)) => target(
            "approval→grant p99 ≤ 2× raw create p99",
            format!("{} vs 2 × {}", human(a.latency.p99), human(f.p99)),
            Some(a.latency.p99 <= 2.0 * f.p99),
        ),
        _ => target("approval→grant p99 ≤ 2× raw create p99", "-".into(), None),
    });
    out.push(match &r.lone {
        Some(e) => target(
            "revoke lag p99 ≤ 100 ms, single expiry",
            format!("p99 {} (n={})", human(e.lag.p99), e.lag.n),
            Some(e.lag.p99 <= 0.1),
        ),
        None => target("revoke lag p99 ≤ 100 ms, single expiry", "-".into(), None),
    });
    let goal = format!(
        "all {} simultaneous expiries gone ≤ 1 s after expiresAt",
        r.sizes.expiries
    );
    out.push(match &r.burst {
        Some(e) => all_gone(&goal, e, r.floor_delete.as_ref()),
        None => target(&goal, "-".into(), None),
    });
    let lifecycle = r.live.as_ref().and_then(|l| l.lifecycle.as_ref());
    let goal = format!("the same, with {} grants live", r.sizes.live);
    out.push(match lifecycle {
        Some(e) => all_gone(&goal, e, r.floor_delete.as_ref()),
        None => target(&goal, "-".into(), None),
    });
    let goal = format!("{} live grants in < 128 MiB RSS", r.sizes.live);
    out.push(match &r.live {
        Some(l) => {
            let mib = l.memory.rss_kib as f64 / 1024.0;
            target(
                &goal,
                format!("{mib:.1} MiB ({} build)", r.machine.build),
                Some(mib < 128.0),
            )
        }
        None => target(&goal, "-".into(), None),
    });
    out.push(match &r.restart {
        Some(x) => target(
            "new approval after restart granted in < 30 s",
            format!("{} after the new process started", human(x.binding_secs)),
            Some(x.binding_secs < 30.0),
        ),
        None => target("new approval after restart granted in < 30 s", "-".into(), None),
    });
    out.push(match lifecycle {
        Some(e) => target(
            "0 API reads per reconcile",
            format!("{} reads in {} reconciles", e.cost.reads, e.cost.reconciles),
            Some(e.cost.reads == 0),
        ),
        None => target("0 API reads per reconcile", "-".into(), None),
    });
    let goal = "failover: no grant alive > 1 s past expiry";
    out.push(match &r.failover {
        Some(f) => target(
            goal,
            format!(
                "{} of {} late, max {}",
                f.late_over_1s,
                f.count,
                human(f.lateness.max)
            ),
            Some(f.late_over_1s == 0),
        ),
        None => target(goal, "-".into(), None),
    });
    let goal = "failover: new approval granted ≤ 10 s after the kill";
    out.push(match &r.failover {
        Some(f) => target(goal, human(f.new_grant_secs), Some(f.new_grant_secs <= 10.0)),
        None => target(goal, "-".into(), None),
    });
    let goal = "crash storm: 0 late (> 1 s), 0 never granted, 0 duplicates";
    out.push(match &r.storm {
        Some(s) => target(
            goal,
            format!(
                "{} late (max {}; {} real misses; {} counting restarts killed within 1 s), {} never granted ({} real misses), {} duplicates",
                s.late_over_1s,
                human(s.lateness.max),
                s.late_missed.len(),
                s.late_strict,
                s.never_granted.len(),
                s.never_granted_missed.len(),
                s.duplicates
            ),
            Some(s.late_over_1s == 0 && s.never_granted.is_empty() && s.duplicates == 0),
        ),
        None => target(goal, "-".into(), None),
    });
    out.push(match lifecycle {
        Some(e) if e.cost.transitions > 0 => {
            let per = e.cost.writes as f64 / e.cost.transitions as f64;
            target(
                "≤ 3 writes per state transition",
                format!(
                    "{per:.2} ({} writes / {} transitions)",
                    e.cost.writes, e.cost.transitions
                ),
                Some(per <= 3.0),
            )
        }
        _ => target("≤ 3 writes per state transition", "-".into(), None),
    });
    out
}
