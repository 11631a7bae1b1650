//! Grants that start and end on a schedule: requests with a `notBefore` T (the
//! same T for a burst, T + i s for lone ones) and a duration D, approved before
//! T, so each binding should appear at its T and be gone at T + D. Measures
//! notBefore → binding and the revoke lag (binding gone − (T + D)), and the
//! operator's API requests for these whole lifecycles.

use std::time::Instant;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use gatehouse::api::Phase;

use super::{names, settle, Bench};
use crate::{
    cluster::{self, bounded},
    metrics::Cost,
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

fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// How far ahead to put the first `notBefore`: three times the time the API
/// server took for as many objects in the approval phase, at least 8 s.
fn lead_time(bench: &Bench, count: usize) -> i64 {
    let rate = bench.create_rate.unwrap_or(50.0).max(1.0);
    let estimate = (2 * count) as f64 / rate;
    (3.0 * estimate + 3.0).max(8.0).ceil() as i64
}

/// Runs one schedule in its own namespace.
pub async fn run(bench: &mut Bench, plan: Schedule) -> Result<Expiry> {
    let ns = bench.scene(plan.phase).await?;
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let names = names(plan.count);
    let lead = lead_time(bench, plan.count);
    let first =
        DateTime::from_timestamp(Utc::now().timestamp() + lead + 1, 0).context("clock out of range")?;
    let start_of = |i: usize| first + TimeDelta::seconds(plan.spacing_secs * i as i64);
    let duration = TimeDelta::seconds(plan.duration_secs);
    let client = bench.client.clone();
    let role = bench.role.clone();
    let length = format!("{}s", plan.duration_secs);

    let before = bench.scrape().await?;
    let started = Instant::now();
    let planned: Vec<(String, DateTime<Utc>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), start_of(i)))
        .collect();
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
    let until_first = (first - Utc::now()).to_std().unwrap_or_default();
    requests
        .wait_phase(&names, Phase::Approved, until_first)
        .await
        .with_context(|| {
            format!(
                "setup ran past the first notBefore ({first}, {lead} s after it began): the machine is too busy for this size"
            )
        })?;
    let setup = started.elapsed();
    bench.step(
        format!(
            "{}: {} requests created and approved before notBefore",
            plan.label, plan.count
        ),
        setup,
    );

    let last = start_of(plan.count.saturating_sub(1));
    let to_std = |t: DateTime<Utc>| (t - Utc::now()).to_std().unwrap_or_default();
    let timelines = bench
        .bindings
        .wait(&ns, &names, "created", to_std(last) + bench.bound, |t| {
            t.added.is_some()
        })
        .await?;
    let grant: Vec<f64> = timelines
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some(secs_between(start_of(i), t.added?.wall)))
        .collect();
    let early = grant.iter().filter(|g| **g < 0.0).count();
    if early > 0 {
        bail!("{early} bindings appeared before their notBefore");
    }
    let timelines = bench
        .bindings
        .wait(
            &ns,
            &names,
            "removed",
            to_std(last + duration) + bench.bound,
            |t| t.deleted.is_some(),
        )
        .await?;
    let lag: Vec<f64> = timelines
        .iter()
        .enumerate()
        .filter_map(|(i, t)| Some(secs_between(start_of(i) + duration, t.deleted?.wall)))
        .collect();
    requests.wait_phase(&names, Phase::Expired, bench.bound).await?;
    let after = settle(bench).await?;
    Ok(Expiry {
        label: plan.label,
        count: plan.count,
        duration_secs: plan.duration_secs as f64,
        setup_secs: setup.as_secs_f64(),
        grant: summarize(&grant).context("no grant measured")?,
        lag: summarize(&lag).context("no revoke measured")?,
        operator_lag: after
            .histogram("expiry_lag_seconds")
            .since(&before.histogram("expiry_lag_seconds")),
        cost: Cost::between(&before, &after),
    })
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

/// M grants that start together and end together.
pub fn burst(phase: &'static str, label: String, count: usize) -> Schedule {
    Schedule {
        phase,
        label,
        count,
        spacing_secs: 0,
        duration_secs: 20,
    }
}
