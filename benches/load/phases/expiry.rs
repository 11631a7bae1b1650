//! Grants that start and end on a schedule: requests with a `notBefore` T (the
//! same T for a burst, T + i s for lone ones) and a duration D, approved before
//! T, so each binding should appear at its T and be gone at T + D. Measures
//! notBefore → binding and the revoke lag (binding gone − (T + D)), and the
//! operator's API requests for these whole lifecycles.

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse::api::Phase;

use super::{names, settle, Bench};
use crate::{
    cluster::{self, bounded},
    metrics::{Cost, Scrape},
    report::Expiry,
    stats::summarize,
    watch::RequestWatch,
};

/// A schedule of grants.
pub struct Schedule {
    /// Phase name (its namespace's suffix).
    pub phase: &'static str,
    /// How the report names it.
    pub label: String,
    /// Requests.
    pub count: usize,
    /// Seconds between one request's `notBefore` and the next (0: all at once).
    pub spacing_secs: i64,
    /// Duration of each grant, seconds.
    pub duration_secs: i64,
}

/// The lone expiries: `count` grants one second apart, each alone at its end.
pub fn lone(count: usize) -> Schedule {
    Schedule {
        phase: "lone",
        label: "1 at a time".into(),
        count,
        spacing_secs: 1,
        // Longer than the spread of starts, so no grant starts while one ends.
        duration_secs: count as i64 + 5,
    }
}

/// M grants that start together and end together. They last three times what
/// the operator took for as many requests in the approval phase (at least
/// 20 s), so that all of them are granted before the first one ends and the
/// end is a true burst.
pub fn burst(bench: &Bench, phase: &'static str, label: String, count: usize) -> Schedule {
    let per_second = bench.throughput.unwrap_or(20.0).max(1.0);
    Schedule {
        phase,
        label,
        count,
        spacing_secs: 0,
        duration_secs: (3.0 * count as f64 / per_second).max(20.0).ceil() as i64,
    }
}

/// Setup attempts before the phase fails: each doubles the lead time.
const ATTEMPTS: u32 = 3;

fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// How far ahead to put the first `notBefore`: twice what the operator took
/// for as many requests in the approval phase, plus 5 s, at least 10 s.
fn lead_secs(bench: &Bench, count: usize, factor: u32) -> i64 {
    let per_second = bench.throughput.unwrap_or(20.0).max(1.0);
    let estimate = 2.0 * count as f64 / per_second + 5.0;
    (f64::from(factor) * estimate.max(10.0)).ceil() as i64
}

/// One attempt's requests, created and approved before their first `notBefore`.
struct Prepared {
    ns: String,
    names: Vec<String>,
    requests: RequestWatch,
    first: DateTime<Utc>,
    before: Scrape,
    setup: Duration,
}

/// Runs one schedule; if setting it up runs past `notBefore` (a busy
/// machine), waits for that attempt to end and tries again with twice the lead.
pub async fn run(bench: &mut Bench, plan: Schedule) -> Result<Expiry> {
    for attempt in 1..=ATTEMPTS {
        let factor = 1 << (attempt - 1);
        match prepare(bench, &plan, attempt, factor).await? {
            Ok(prepared) => return measure(bench, &plan, prepared).await,
            Err(Overran {
                requests,
                names,
                lead,
            }) => {
                let note = format!(
                    "{}: attempt {attempt} was not approved within its {lead} s lead before notBefore; it was discarded",
                    plan.label
                );
                eprintln!("bench: {note}");
                bench.notes.push(note);
                // Its grants must be over before the next attempt is measured.
                let bound = Duration::from_secs(plan.duration_secs as u64 + lead as u64) + bench.bound;
                requests.wait_phase(&names, Phase::Expired, bound).await?;
            }
        }
    }
    bail!(
        "{}: setup ran past notBefore {ATTEMPTS} times: the machine is too busy for this size",
        plan.label
    )
}

/// An attempt whose requests were not all Approved before the first `notBefore`.
struct Overran {
    requests: RequestWatch,
    names: Vec<String>,
    lead: i64,
}

/// Creates and approves the requests.
async fn prepare(
    bench: &mut Bench,
    plan: &Schedule,
    attempt: u32,
    factor: u32,
) -> Result<std::result::Result<Prepared, Overran>> {
    let phase = match attempt {
        1 => plan.phase.to_string(),
        n => format!("{}-{n}", plan.phase),
    };
    let ns = bench.scene(&phase).await?;
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let names = names(plan.count);
    let lead = lead_secs(bench, plan.count, factor);
    let first =
        DateTime::from_timestamp(Utc::now().timestamp() + lead + 1, 0).context("clock out of range")?;
    let client = bench.client.clone();
    let role = bench.role.clone();
    let length = format!("{}s", plan.duration_secs);
    let planned: Vec<(String, DateTime<Utc>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            (
                n.clone(),
                first + TimeDelta::seconds(plan.spacing_secs * i as i64),
            )
        })
        .collect();

    let before = bench.scrape().await?;
    let started = Instant::now();
    bounded(planned, bench.concurrency, |(name, not_before)| {
        let req = cluster::request(&ns, &name, &role, &length, Some(not_before));
        let client = client.clone();
        async move {
            let created = cluster::create_request(&client, &req).await?;
            cluster::create_review(&client, &cluster::approval(&created)?).await?;
            Ok(())
        }
    })
    .await?;
    loop {
        if requests.off_phase(&names, Phase::Approved).is_empty() {
            break;
        }
        if Utc::now() >= first - TimeDelta::milliseconds(200) {
            return Ok(Err(Overran {
                requests,
                names,
                lead,
            }));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let setup = started.elapsed();
    bench.step(
        format!(
            "{}: {} requests created and approved ({lead} s before notBefore, for {} s)",
            plan.label, plan.count, plan.duration_secs
        ),
        setup,
    );
    Ok(Ok(Prepared {
        ns,
        names,
        requests,
        first,
        before,
        setup,
    }))
}

/// Waits for the grants to start and end; the figures. Requests that end
/// without ever being granted are counted, not measured (the run fails on them).
async fn measure(bench: &mut Bench, plan: &Schedule, p: Prepared) -> Result<Expiry> {
    let start_of = |i: usize| p.first + TimeDelta::seconds(plan.spacing_secs * i as i64);
    let duration = TimeDelta::seconds(plan.duration_secs);
    let last = start_of(plan.count.saturating_sub(1));
    let until = |t: DateTime<Utc>| (t - Utc::now()).to_std().unwrap_or_default() + bench.bound;
    let ungranted = granted(bench, &p, until(last)).await?;
    // (name, notBefore) of the requests that were granted.
    let starts: Vec<(String, DateTime<Utc>)> = p
        .names
        .iter()
        .enumerate()
        .filter(|(_, n)| !ungranted.contains(n))
        .map(|(i, n)| (n.clone(), start_of(i)))
        .collect();
    let names: Vec<String> = starts.iter().map(|(n, _)| n.clone()).collect();
    let timelines = bench.bindings.timelines(&p.ns, &names);
    let grant: Vec<f64> = starts
        .iter()
        .zip(&timelines)
        .filter_map(|((_, t0), t)| Some(secs_between(*t0, t.added?.wall)))
        .collect();
    let early = grant.iter().filter(|g| **g < 0.0).count();
    if early > 0 {
        bail!("{early} bindings in {} appeared before their notBefore", p.ns);
    }
    let timelines = bench
        .bindings
        .wait(&p.ns, &names, "removed", until(last + duration), |t| {
            t.deleted.is_some()
        })
        .await?;
    let lag: Vec<f64> = starts
        .iter()
        .zip(&timelines)
        .filter_map(|((_, t0), t)| Some(secs_between(*t0 + duration, t.deleted?.wall)))
        .collect();
    p.requests
        .wait_phase(&p.names, Phase::Expired, bench.bound)
        .await?;
    let after = settle(bench).await?;
    Ok(Expiry {
        label: plan.label.clone(),
        count: plan.count,
        duration_secs: plan.duration_secs as f64,
        setup_secs: p.setup.as_secs_f64(),
        grant: summarize(&grant).context("no request was granted")?,
        lag: summarize(&lag).context("no revoke measured")?,
        ungranted,
        namespace: p.ns.clone(),
        operator_lag: after
            .histogram("expiry_lag_seconds")
            .since(&p.before.histogram("expiry_lag_seconds")),
        cost: Cost::between(&p.before, &after),
    })
}

/// Waits until every request's binding has appeared or the request has ended
/// without one (its access window passed before the operator got to it);
/// returns the latter. Fails after `bound`.
async fn granted(bench: &Bench, p: &Prepared, bound: Duration) -> Result<Vec<String>> {
    let start = Instant::now();
    loop {
        let waiting = bench.bindings.waiting(&p.ns, &p.names, |t| t.added.is_some());
        let ended = p.requests.ended(&waiting);
        if ended.len() == waiting.len() {
            return Ok(ended);
        }
        if start.elapsed() > bound {
            bail!(
                "{} of {} requests in {} had no binding after {bound:?} (e.g. {})",
                waiting.len() - ended.len(),
                p.names.len(),
                p.ns,
                waiting[0]
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
