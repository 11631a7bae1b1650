//! Crash storm (issue 24): one replica SIGKILLed K times at random moments
//! while S requests of 5–40 s come and go, each time started again after
//! 0–2 s. Counts grants alive more than 1 s past their expiry (or past the
//! start of the process that followed it, if none ran at the expiry for a
//! second: [`due`](super::blame::due)), approved requests never granted, and
//! requests granted twice. The strict count, where a process SIGKILLed within
//! a second of its start counts as a restart too, is reported beside it.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use chrono::{DateTime, TimeDelta, Utc};

use super::{
    blame::{self, could_act, synced_at, Life},
    names, Bench,
};
use crate::{
    cluster::{self, bounded},
    operator::Operator,
    report::Storm,
    stats::summarize,
    watch::RequestWatch,
};

/// Seconds over which the requests are created and approved.
const ARRIVALS: u64 = 60;

/// A small deterministic generator (xorshift), seeded from `--seed` or the
/// clock: no dependency, and the seed is in the report to replay a run's
/// schedule (`--seed`, with the same `--storm` and `--kills`).
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[lo, hi]` milliseconds.
    fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        Duration::from_millis(lo + self.next() % (hi - lo + 1))
    }
}

/// When no operator ran: (killed, next process started).
type Outage = (DateTime<Utc>, DateTime<Utc>);

/// The strict instant a grant expiring at `t` had to be gone by: its expiry,
/// or the start of the next process if it expired while none ran, however
/// soon that one was killed again.
fn due_strict(t: DateTime<Utc>, outages: &[Outage]) -> DateTime<Utc> {
    outages
        .iter()
        .find(|(down, up)| *down <= t && t < *up)
        .map_or(t, |(_, up)| *up)
}

/// Runs the phase; the last process started stays as `bench.operator`.
pub async fn run(bench: &mut Bench, count: usize, kills: usize, seed: Option<u64>) -> Result<Storm> {
    let ns = bench.scene("storm").await?;
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let seed = seed.unwrap_or_else(|| Utc::now().timestamp_micros().unsigned_abs() | 1);
    let mut dice = Dice(seed.max(1));
    let names = names(count);
    let durations: Vec<u64> = names.iter().map(|_| 5 + dice.next() % 36).collect();
    let started = Instant::now();

    // The arrivals, spread evenly over ARRIVALS seconds, in their own task.
    let (client, role, concurrency) = (bench.client.clone(), bench.role.clone(), bench.concurrency);
    let spacing = Duration::from_secs(ARRIVALS) / count.max(1) as u32;
    let plan: Vec<(usize, String, u64)> = names
        .iter()
        .cloned()
        .zip(durations.iter().copied())
        .enumerate()
        .map(|(i, (n, d))| (i, n, d))
        .collect();
    let arrivals_ns = ns.clone();
    let arrivals = tokio::spawn(async move {
        let t0 = tokio::time::Instant::now();
        bounded(plan, concurrency, |(i, name, secs)| {
            let req = cluster::request(&arrivals_ns, &name, &role, &format!("{secs}s"), None);
            let client = client.clone();
            async move {
                tokio::time::sleep_until(t0 + spacing * i as u32).await;
                let created = cluster::create_request(&client, &req).await?;
                cluster::create_review(&client, &cluster::approval(&created)?).await?;
                Ok((i, Utc::now()))
            }
        })
        .await
    });

    // The kills, at random moments over the arrivals and the 40 s after.
    let window = ARRIVALS * 1000 + 40_000;
    let mut moments: Vec<Duration> = (0..kills).map(|_| dice.millis(0, window)).collect();
    moments.sort();
    let mut outages: Vec<Outage> = Vec::new();
    let mut lives: Vec<Life> = Vec::new();
    let mut current = bench.logs.last().cloned().unwrap_or_default();
    let mut current_started = Utc::now();
    for at in moments {
        tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
        let last = bench.scrape().await.ok();
        bench.final_scrapes.extend(last);
        bench.operator.kill();
        let down = Utc::now();
        lives.push(Life {
            log: current,
            started: current_started,
            killed: Some(down),
            synced: None,
        });
        tokio::time::sleep(dice.millis(0, 2000)).await;
        let log = bench
            .workdir
            .join(format!("{}-operator-{}.log", bench.prefix, bench.logs.len() + 1));
        bench.logs.push(log.clone());
        current = log.clone();
        bench.operator = Operator::start(&bench.kubeconfig, log)?;
        current_started = Utc::now();
        outages.push((down, current_started));
    }
    lives.push(Life {
        log: current,
        started: current_started,
        killed: None,
        synced: None,
    });
    let mut approved: Vec<Option<DateTime<Utc>>> = vec![None; count];
    for (i, at) in arrivals.await.context("the arrivals task")?? {
        approved[i] = Some(at);
    }
    // Every request ends (Expired, or another end if it never got its grant).
    let bound = Duration::from_secs(40) + bench.bound;
    let waiting = Instant::now();
    while requests.ended(&names).len() < names.len() {
        anyhow::ensure!(
            waiting.elapsed() < bound,
            "storm: {} of {count} requests had not ended {bound:?} after the last kill",
            count - requests.ended(&names).len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The binding watch sees the last removals a moment later.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let timelines = bench.bindings.timelines(&ns, &names);
    for life in &mut lives {
        life.synced = synced_at(&life.log);
    }
    let second = TimeDelta::seconds(1);
    let mut late = Vec::new();
    let mut late_strict = 0;
    let (mut late_missed, mut late_no_process) = (Vec::new(), 0);
    let mut never_granted = Vec::new();
    let (mut never_missed, mut never_no_process) = (Vec::new(), 0);
    let mut duplicates = 0;
    for (i, (name, t)) in names.iter().zip(&timelines).enumerate() {
        if t.added.is_none() {
            never_granted.push(name.clone());
            // Its window: from the approval to approval + duration.
            let from = approved[i].unwrap_or_else(Utc::now);
            let until = from + TimeDelta::seconds(durations[i] as i64);
            match could_act(&lives, from, until, second) {
                Some(p) => never_missed.push(format!("{name} (approved {from}, process {})", p + 1)),
                None => never_no_process += 1,
            }
            continue;
        }
        if t.bindings > 1 {
            duplicates += 1;
        }
        if let (Some(expires), Some(gone)) = (t.expires, t.deleted) {
            let strict = gone.wall - due_strict(expires, &outages);
            if strict > second {
                late_strict += 1;
            }
            let due = blame::due(&lives, expires, second).unwrap_or(expires);
            let lateness = (gone.wall - due).num_milliseconds() as f64 / 1000.0;
            late.push(lateness);
            if lateness > 1.0 {
                match could_act(&lives, expires, gone.wall, second) {
                    Some(p) => late_missed.push(format!(
                        "{name} (expired {expires}, gone {}, process {})",
                        gone.wall,
                        p + 1
                    )),
                    None => late_no_process += 1,
                }
            }
        }
    }
    bench.step(
        format!("storm: {count} requests of 5–40 s, {kills} SIGKILLs of the operator"),
        started.elapsed(),
    );
    let outage: Vec<f64> = outages
        .iter()
        .map(|(down, up)| (*up - *down).num_milliseconds() as f64 / 1000.0)
        .collect();
    Ok(Storm {
        count,
        kills,
        seed,
        lateness: summarize(&late).context("no removal measured")?,
        late_over_1s: late.iter().filter(|l| **l > 1.0).count(),
        late_strict,
        never_granted,
        late_no_process,
        late_missed,
        never_granted_no_process: never_no_process,
        never_granted_missed: never_missed,
        processes: lives
            .iter()
            .map(|l| {
                format!(
                    "{}: started {}, synced {}, killed {}",
                    l.log.file_name().map_or("?".into(), |f| f.to_string_lossy()),
                    l.started,
                    l.synced.map_or("never".into(), |t| t.to_string()),
                    l.killed.map_or("-".into(), |t| t.to_string())
                )
            })
            .collect(),
        duplicates,
        outage: summarize(&outage),
        ended_without_removal: timelines
            .iter()
            .filter(|t| t.added.is_some() && t.deleted.is_none())
            .count(),
    })
}
