//! What one run measured, the targets beside it, as a plain-text table
//! for people and JSON for machines.

use std::fmt::Write as _;

use serde::Serialize;

use crate::{
    logs::Problem,
    metrics::{Cost, OperatorView},
    operator::Memory,
    stats::{human, Summary},
};

/// Where and how the run happened.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Machine {
    /// UTC start of the run, RFC 3339.
    pub date: String,
    /// Host name.
    pub host: String,
    /// CPUs the bench could use.
    pub cpus: usize,
    /// /proc/loadavg when the run started.
    pub load_before: String,
    /// `release` (cargo bench) or `debug` (cargo test).
    pub build: String,
    /// The API server's version.
    pub server: String,
}

/// A timed step of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// What was done.
    pub what: String,
    /// Wall-clock seconds it took.
    pub secs: f64,
}

/// The sizes of the run.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Sizes {
    /// N: requests approved at once; raw creates of the floor.
    pub requests: usize,
    /// M: simultaneous expiries.
    pub expiries: usize,
    /// L: live grants (and reviews) held for the cost, idle and restart phases.
    pub live: usize,
    /// F: grants live at the leader failover (0: skipped).
    pub failover: usize,
    /// S: requests in the crash storm (0: skipped).
    pub storm: usize,
    /// K: SIGKILLs in the crash storm.
    pub kills: usize,
    /// The storm's seed, if given (`--seed`).
    pub seed: Option<u64>,
}

/// N requests approved at once.
#[derive(Debug, Clone, Serialize)]
pub struct Approval {
    /// Review created (call returned) → binding seen by the bench's watch.
    pub latency: Summary,
    /// Seconds to create the N requests and see them Pending.
    pub setup_secs: f64,
    /// Seconds to create the N approvals.
    pub approve_secs: f64,
    /// The operator's own `gatehouse_approval_to_grant_seconds` over the phase.
    pub operator: Option<OperatorView>,
    /// The operator's API requests over the phase (from the approvals on).
    pub cost: Cost,
}

/// N raw RoleBinding deletes, all at once with the bench's concurrency.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct FloorDelete {
    /// Latency of each delete.
    pub latency: Summary,
    /// From the first delete sent to the last one answered.
    pub all_gone_secs: f64,
}

/// Grants that start at a shared `notBefore` and end `duration` later.
#[derive(Debug, Clone, Serialize)]
pub struct Expiry {
    /// What ran (e.g. "1 at a time").
    pub label: String,
    /// Requests.
    pub count: usize,
    /// Their duration, seconds.
    pub duration_secs: f64,
    /// Seconds to create and approve them (before `notBefore`).
    pub setup_secs: f64,
    /// `notBefore` → binding seen.
    pub grant: Summary,
    /// `notBefore + duration` → binding seen gone.
    pub lag: Summary,
    /// Requests that ended without ever being granted (the run fails on them).
    pub ungranted: Vec<String>,
    /// Where they ran.
    pub namespace: String,
    /// The operator's own `gatehouse_expiry_lag_seconds` over the phase.
    pub operator_lag: Option<OperatorView>,
    /// The operator's API requests for the whole lifecycle of these requests.
    pub cost: Cost,
}

/// The phase with L live grants.
#[derive(Debug, Clone, Serialize)]
pub struct Live {
    /// L.
    pub count: usize,
    /// Seconds to create L requests and approvals and see every binding and Active status.
    pub setup_secs: f64,
    /// The operator's API requests for those L requests (create → Active).
    pub setup_cost: Cost,
    /// Memory once L grants are live and settled.
    pub memory: Memory,
    /// Memory just before the L requests were created.
    pub memory_before: Memory,
    /// Seconds of the idle window.
    pub idle_secs: f64,
    /// The operator's API requests during the idle window.
    pub idle: Cost,
    /// M full lifecycles (create → Active → Expired) with L grants live.
    pub lifecycle: Option<Expiry>,
    /// Memory after the lifecycles.
    pub memory_after: Option<Memory>,
}

/// SIGKILL and a new process, with L grants live.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    /// New process start → /readyz 200.
    pub ready_secs: f64,
    /// New process start → the binding of a request created and approved right after it.
    pub binding_secs: f64,
    /// Memory of the new process once the binding exists.
    pub memory: Memory,
    /// Its memory once its start-up settled (every request reconciled once).
    pub settled: Memory,
    /// The new process's API requests until then (its initial lists included).
    pub cost: Cost,
}

/// Leader failover with F grants expiring over 30 s (issue 24).
#[derive(Debug, Clone, Serialize)]
pub struct Failover {
    /// F.
    pub count: usize,
    /// Seconds from the kill to the first expiry.
    pub killed_before_first_expiry_secs: f64,
    /// `expiresAt` → binding seen gone.
    pub lateness: Summary,
    /// Bindings gone more than 1 s after their `expiresAt`.
    pub late_over_1s: usize,
    /// Kill → binding of a request created and approved at the kill.
    pub new_grant_secs: f64,
    /// The replica killed (the Lease holder).
    pub killed: String,
    /// The Lease holder at the end.
    pub new_leader: String,
}

/// One replica SIGKILLed K times during S requests of 5–40 s (issue 24).
#[derive(Debug, Clone, Serialize)]
pub struct Storm {
    /// S.
    pub count: usize,
    /// K.
    pub kills: usize,
    /// Seed of the schedule (durations, kill moments, restart delays).
    pub seed: u64,
    /// Expiry (or the first restart after it that lived 1 s) → binding seen gone.
    pub lateness: Summary,
    /// Bindings gone more than 1 s after that.
    pub late_over_1s: usize,
    /// Bindings gone more than 1 s after their expiry or the first start after
    /// it, counting a process SIGKILLed within 1 s of its start as a restart.
    pub late_strict: usize,
    /// Approved requests whose binding never appeared.
    pub never_granted: Vec<String>,
    /// Of the late: no process was alive and synced for 1 s between the
    /// expiry and the removal (none could act).
    pub late_no_process: usize,
    /// Of the late: some process was synced and alive for 1 s in between and
    /// did not remove (a real miss): name, expiry, removal, that process.
    pub late_missed: Vec<String>,
    /// Of the never granted: no process synced and alive for 1 s within the
    /// request's window (approval to approval + duration).
    pub never_granted_no_process: usize,
    /// Of the never granted: a process had 1 s within the window (a real miss).
    pub never_granted_missed: Vec<String>,
    /// Each process of the storm: its log, when it was started, when it logged
    /// `memory synced`, when it was killed.
    pub processes: Vec<String>,
    /// Requests with more than one binding (by uid) over their life.
    pub duplicates: usize,
    /// Seconds without an operator, per kill.
    pub outage: Option<Summary>,
    /// Bindings seen but never seen removed once every request had ended.
    pub ended_without_removal: usize,
}

/// What the operator said about itself over the whole run.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Health {
    /// WARN lines in its logs.
    pub warnings: usize,
    /// ERROR lines in its logs.
    pub errors: usize,
    /// Those lines by kind, most frequent first (all logs).
    pub problems: Vec<Problem>,
    /// Failed reconciles (`gatehouse_reconcile_errors_total`), all processes.
    pub reconcile_errors: u64,
    /// Watch loops restarted (`gatehouse_watch_restarts_total`), all processes.
    pub watch_restarts: u64,
    /// Events dropped (`gatehouse_events_dropped_total`), all processes.
    pub events_dropped: u64,
    /// Log files.
    pub logs: Vec<String>,
}

/// One of the targets.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The goal, as the issue states it.
    pub goal: String,
    /// The figure reached.
    pub reached: String,
    /// Met, missed, or not measured (None).
    pub met: Option<bool>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Where and how.
    pub machine: Machine,
    /// N, M, L.
    pub sizes: Sizes,
    /// Setup steps and their seconds, in order.
    pub steps: Vec<Step>,
    /// Raw RoleBinding creates, 64 at a time (the floor).
    pub floor: Option<Summary>,
    /// The same RoleBindings deleted, all at once (the floor of M expiries).
    pub floor_delete: Option<FloorDelete>,
    /// N approved at once.
    pub approval: Option<Approval>,
    /// Expiries one at a time.
    pub lone: Option<Expiry>,
    /// M simultaneous expiries.
    pub burst: Option<Expiry>,
    /// L live grants.
    pub live: Option<Live>,
    /// Restart with L live grants.
    pub restart: Option<Restart>,
    /// Leader failover.
    pub failover: Option<Failover>,
    /// Crash storm.
    pub storm: Option<Storm>,
    /// The operator's own view of its health.
    pub health: Health,
    /// The targets.
    pub targets: Vec<Target>,
    /// Things the reader should know (forced clean-up, watch re-lists).
    pub notes: Vec<String>,
    /// Operator misbehaviour that fails the run, found while measuring went on.
    pub failures: Vec<String>,
    /// Why the run stopped early, if it did.
    pub error: Option<String>,
}

fn row(out: &mut String, what: &str, s: Option<&Summary>) {
    match s {
        Some(s) => {
            let _ = writeln!(
                out,
                "  {what:<44} {:>6} {:>9} {:>9} {:>9}",
                s.n,
                human(s.p50),
                human(s.p99),
                human(s.max)
            );
        }
        None => {
            let _ = writeln!(out, "  {what:<44} {:>6}", "-");
        }
    }
}

fn cost_row(out: &mut String, what: &str, c: &Cost, per: usize) {
    let per = per.max(1) as f64;
    let per_transition = if c.transitions > 0 {
        format!("{:.2}", c.writes as f64 / c.transitions as f64)
    } else {
        "-".into()
    };
    let _ = writeln!(
        out,
        "  {what:<44} {:>7} {:>7} {:>9.2} {:>9.2} {:>11} {:>10}",
        c.reads,
        c.writes,
        c.reads as f64 / per,
        c.writes as f64 / per,
        c.transitions,
        per_transition
    );
    let _ = writeln!(out, "      {}", c.breakdown());
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl Report {
    /// The plain-text report.
    pub fn text(&self) -> String {
        let m = &self.machine;
        let z = &self.sizes;
        let mut out = String::new();
        let _ = writeln!(out, "Gatehouse load benchmark");
        let _ = writeln!(
            out,
            "  {} · host {} · {} CPUs · load before {} · {} build · API server {}",
            m.date, m.host, m.cpus, m.load_before, m.build, m.server
        );
        let _ = writeln!(
            out,
            "  sizes: --requests {} --expiries {} --live {} --failover {} --storm {} --kills {}",
            z.requests, z.expiries, z.live, z.failover, z.storm, z.kills
        );
        let _ = writeln!(
            out,
            "\nlatency (seen by the bench's own watch)           n       p50       p99       max"
        );
        row(
            &mut out,
            "raw RoleBinding create, 64 in flight (floor)",
            self.floor.as_ref(),
        );
        row(
            &mut out,
            "raw RoleBinding delete, 64 in flight (floor)",
            self.floor_delete.as_ref().map(|f| &f.latency),
        );
        if let Some(f) = &self.floor_delete {
            let _ = writeln!(
                out,
                "  {:<44} {:>6} {:>9}",
                "  all N raw deletes answered within",
                "",
                human(f.all_gone_secs)
            );
        }
        row(
            &mut out,
            "approval → binding, N at once",
            self.approval.as_ref().map(|a| &a.latency),
        );
        for e in [&self.lone, &self.burst].into_iter().flatten() {
            row(
                &mut out,
                &format!("notBefore → binding, {}", e.label),
                Some(&e.grant),
            );
            row(&mut out, &format!("revoke lag, {}", e.label), Some(&e.lag));
        }
        if let Some(e) = self.live.as_ref().and_then(|l| l.lifecycle.as_ref()) {
            row(
                &mut out,
                &format!("notBefore → binding, {}", e.label),
                Some(&e.grant),
            );
            row(&mut out, &format!("revoke lag, {}", e.label), Some(&e.lag));
        }
        self.operator_views(&mut out);
        self.costs(&mut out);
        self.resources(&mut out);
        let _ = writeln!(
            out,
            "\ntargets (issues 14 and 24; compass goals, never a failure)"
        );
        for t in &self.targets {
            let verdict = match t.met {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "not measured",
            };
            let _ = writeln!(out, "  [{verdict:^12}] {:<58} {}", t.goal, t.reached);
        }
        let h = &self.health;
        let _ = writeln!(
            out,
            "\noperator: {} WARN / {} ERROR log lines, {} failed reconciles, {} watch restarts, {} events dropped",
            h.warnings, h.errors, h.reconcile_errors, h.watch_restarts, h.events_dropped
        );
        for p in h.problems.iter().take(8) {
            let _ = writeln!(out, "  {:>6}× {}", p.count, p.kind);
        }
        let _ = writeln!(out, "  logs: {}", h.logs.join(", "));
        let _ = writeln!(out, "\nsteps (wall time)");
        for Step { what, secs } in &self.steps {
            let _ = writeln!(out, "  {what:<74} {}", human(*secs));
        }
        for n in &self.notes {
            let _ = writeln!(out, "note: {n}");
        }
        for f in &self.failures {
            let _ = writeln!(out, "\nFAILED: {f}");
        }
        if let Some(e) = &self.error {
            let _ = writeln!(out, "\nFAILED: {e}");
        }
        out
    }

    fn operator_views(&self, out: &mut String) {
        let mut views = Vec::new();
        if let Some(v) = self.approval.as_ref().and_then(|a| a.operator) {
            views.push(("approval_to_grant_seconds, N at once".to_string(), v));
        }
        let live = self.live.as_ref().and_then(|l| l.lifecycle.as_ref());
        for e in [self.lone.as_ref(), self.burst.as_ref(), live]
            .into_iter()
            .flatten()
        {
            if let Some(v) = e.operator_lag {
                views.push((format!("expiry_lag_seconds, {}", e.label), v));
            }
        }
        if views.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\nthe operator's own histograms (gatehouse_*)        n      mean  p99 at most"
        );
        for (what, v) in views {
            let _ = writeln!(
                out,
                "  {what:<44} {:>6} {:>9} {:>9}",
                v.n,
                human(v.mean),
                human(v.p99_at_most)
            );
        }
    }

    fn costs(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\noperator API requests (no watches)             reads  writes reads/req writes/req transitions writes/tr."
        );
        if let Some(a) = &self.approval {
            cost_row(out, "N approvals (Pending → Active)", &a.cost, a.latency.n);
        }
        for e in [&self.lone, &self.burst].into_iter().flatten() {
            cost_row(out, &format!("lifecycle, {}", e.label), &e.cost, e.count);
        }
        if let Some(l) = &self.live {
            cost_row(out, "L live: create → Active", &l.setup_cost, l.count);
            if let Some(e) = &l.lifecycle {
                cost_row(out, &format!("lifecycle, {}", e.label), &e.cost, e.count);
            }
            cost_row(
                out,
                &format!("idle {:.0} s with L live (totals)", l.idle_secs),
                &l.idle,
                1,
            );
        }
        if let Some(r) = &self.restart {
            cost_row(out, "restart until the new binding (totals)", &r.cost, 1);
        }
    }

    fn resources(&self, out: &mut String) {
        if let Some(l) = &self.live {
            let _ = writeln!(
                out,
                "\nmemory with L={} live grants and reviews: RSS {} (peak {})",
                l.count,
                mib(l.memory.rss_kib),
                mib(l.memory.peak_kib)
            );
            let grown = l.memory.rss_kib.saturating_sub(l.memory_before.rss_kib);
            let _ = writeln!(
                out,
                "  RSS before the L requests {}: {:.2} KiB more per live grant (its request, review and binding in memory)",
                mib(l.memory_before.rss_kib),
                grown as f64 / l.count.max(1) as f64
            );
            if let Some(m) = l.memory_after {
                let _ = writeln!(
                    out,
                    "  after the lifecycles: RSS {} (peak {})",
                    mib(m.rss_kib),
                    mib(m.peak_kib)
                );
            }
        }
        if let Some(r) = &self.restart {
            let _ = writeln!(
                out,
                "restart (SIGKILL, new process): /readyz 200 after {}, new approval granted after {}, RSS {} (peak {}); once its start-up settled, RSS {}",
                human(r.ready_secs),
                human(r.binding_secs),
                mib(r.memory.rss_kib),
                mib(r.memory.peak_kib),
                mib(r.settled.rss_kib)
            );
        }
        if let Some(f) = &self.failover {
            let _ = writeln!(
                out,
                "failover (2 replicas, leader {} SIGKILLed {} before the first of {} expiries over 30 s; {} leads now):\n  expiresAt → gone p50 {} p99 {} max {}, {} gone > 1 s late; a request approved at the kill granted {} after it",
                f.killed,
                human(f.killed_before_first_expiry_secs),
                f.count,
                f.new_leader,
                human(f.lateness.p50),
                human(f.lateness.p99),
                human(f.lateness.max),
                f.late_over_1s,
                human(f.new_grant_secs)
            );
        }
        if let Some(s) = &self.storm {
            let _ = writeln!(
                out,
                "crash storm ({} SIGKILLs during {} requests of 5–40 s, seed {}, outages p50 {} max {}):\n  expiry (or the first restart after it that lived 1 s) → gone p50 {} p99 {} max {}, {} gone > 1 s late ({} counting restarts killed within 1 s of their start); {} approved never granted; {} granted twice; {} never seen removed",
                s.kills,
                s.count,
                s.seed,
                s.outage.map_or("-".into(), |o| human(o.p50)),
                s.outage.map_or("-".into(), |o| human(o.max)),
                human(s.lateness.p50),
                human(s.lateness.p99),
                human(s.lateness.max),
                s.late_over_1s,
                s.late_strict,
                s.never_granted.len(),
                s.duplicates,
                s.ended_without_removal
            );
            let _ = writeln!(
                out,
                "  of the {} late: {} with no process alive and synced for 1 s after the expiry (none could act), {} real misses; of the {} never granted: {} with no process synced for 1 s in their window, {} real misses",
                s.late_over_1s,
                s.late_no_process,
                s.late_missed.len(),
                s.never_granted.len(),
                s.never_granted_no_process,
                s.never_granted_missed.len()
            );
            for m in s.late_missed.iter().chain(&s.never_granted_missed).take(20) {
                let _ = writeln!(out, "    real miss: {m}");
            }
        }
    }
}
