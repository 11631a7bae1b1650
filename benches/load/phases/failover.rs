//! Leader failover (issue 24): two replicas with leader election, F grants
//! live that expire over the next 30 s, and a SIGKILL of the leader 2 s
//! before the first expiry. Measures how long past its `expiresAt` each
//! binding lived (the standby removes them while the dead leader's Lease runs
//! out), and how long after the kill a request approved at that moment is
//! granted (the standby takes the Lease).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, TimeDelta, Utc};
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;

use super::{names, Bench};
use crate::{
    cluster::{self, bounded},
    operator::Operator,
    report::Failover,
    stats::summarize,
    watch::RequestWatch,
};

/// Seconds over which the grants expire.
const SPREAD: i64 = 30;
/// The leader dies this long before the first expiry.
const KILL_BEFORE: i64 = 2;

fn secs_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

/// The holder of the Lease, if any.
async fn holder(leases: &Api<Lease>, name: &str) -> Option<String> {
    leases
        .get_opt(name)
        .await
        .ok()
        .flatten()
        .and_then(|l| l.spec?.holder_identity)
}

/// Runs the phase with `count` grants. The bench's operator is stopped for it
/// (two replicas with leader election replace it); the surviving replica
/// becomes `bench.operator`.
pub async fn run(bench: &mut Bench, count: usize) -> Result<Failover> {
    let ns = bench.scene("failover").await?;
    let lease_ns = bench.scene("lease").await?;
    let lease = format!("{}-leader", bench.prefix);
    let leases: Api<Lease> = Api::namespaced(bench.client.clone(), &lease_ns);
    let last = bench.scrape().await?;
    bench.final_scrapes.push(last);
    bench.operator.kill();

    let flags = [
        "--leader-election=true",
        "--lease-name",
        lease.as_str(),
        "--lease-namespace",
        lease_ns.as_str(),
    ];
    let mut replicas = Vec::new();
    for id in ["replica-a", "replica-b"] {
        let log = bench.workdir.join(format!(
            "{}-operator-{}-{id}.log",
            bench.prefix,
            bench.logs.len() + 1
        ));
        bench.logs.push(log.clone());
        replicas.push((
            id,
            Operator::start_with(&bench.kubeconfig, log, &flags, Some(id))?,
        ));
        // The first one leads.
        if id == "replica-a" {
            let start = Instant::now();
            while holder(&leases, &lease).await.is_none() {
                if start.elapsed() > Duration::from_secs(60) {
                    bail!("failover: no replica took the Lease within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    for (id, r) in &replicas {
        let start = Instant::now();
        while !r.ready().await {
            if start.elapsed() > Duration::from_secs(120) {
                bail!("failover: {id} not ready within 120 s");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    // F grants, starting over SPREAD seconds, each for the same duration: they
    // all exist at the kill and end over the SPREAD seconds after it.
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let names = names(count);
    let per_second = bench.throughput.unwrap_or(20.0).max(1.0);
    let lead = (2.0 * count as f64 / per_second + 5.0).max(10.0).ceil() as i64;
    let first =
        DateTime::from_timestamp(Utc::now().timestamp() + lead + 1, 0).context("clock out of range")?;
    // Long enough that the last to start is granted well before the kill.
    let duration = SPREAD + KILL_BEFORE + 15;
    let start_of = |i: usize| first + TimeDelta::seconds(i as i64 * SPREAD / count.max(1) as i64);
    let length = format!("{duration}s");
    let planned: Vec<(String, DateTime<Utc>)> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), start_of(i)))
        .collect();
    let (client, role) = (bench.client.clone(), bench.role.clone());
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
    let kill_at = first + TimeDelta::seconds(duration - KILL_BEFORE);
    let until_kill = (kill_at - Utc::now()).to_std().unwrap_or_default();
    bench
        .bindings
        .wait(&ns, &names, "granted", until_kill, |t| t.added.is_some())
        .await
        .context("failover: not every grant was in place before the kill")?;
    tokio::time::sleep((kill_at - Utc::now()).to_std().unwrap_or_default()).await;

    let leader = holder(&leases, &lease).await.unwrap_or_default();
    let Some(at) = replicas.iter().position(|(id, _)| *id == leader) else {
        bail!("failover: the Lease is held by {leader:?}, not by a replica of this run");
    };
    let (_, mut dead) = replicas.remove(at);
    let (survivor_id, survivor) = replicas.remove(0);
    dead.kill();
    let killed = Instant::now();
    let killed_wall = Utc::now();
    bench.operator = survivor;

    // A request approved at the moment of the kill.
    let extra = "after-kill".to_string();
    let req = cluster::request(&ns, &extra, &bench.role, "1h", None);
    let created = cluster::create_request(&bench.client, &req).await?;
    cluster::create_review(&bench.client, &cluster::approval(&created)?).await?;
    let extras = [extra];
    let granted = bench
        .bindings
        .wait(&ns, &extras, "granted after the kill", bench.bound, |t| {
            t.added.is_some()
        })
        .await?;
    let new_grant_secs = granted[0]
        .added
        .map_or(f64::NAN, |s| s.at.duration_since(killed).as_secs_f64());

    let last_expiry = start_of(count.saturating_sub(1)) + TimeDelta::seconds(duration);
    let bound = (last_expiry - Utc::now()).to_std().unwrap_or_default() + bench.bound;
    let timelines = bench
        .bindings
        .wait(&ns, &names, "removed", bound, |t| t.deleted.is_some())
        .await?;
    let late: Vec<f64> = names
        .iter()
        .enumerate()
        .zip(&timelines)
        .filter_map(|((i, _), t)| {
            let expires = t.expires.unwrap_or(start_of(i) + TimeDelta::seconds(duration));
            Some(secs_between(expires, t.deleted?.wall))
        })
        .collect();
    let new_leader = holder(&leases, &lease).await.unwrap_or_default();
    bench.step(
        format!("failover: {count} grants expiring over {SPREAD} s, leader {leader} SIGKILLed, {survivor_id} took over"),
        killed.elapsed(),
    );
    requests
        .wait_phase(&names, gatehouse::api::Phase::Expired, bench.bound)
        .await?;
    let first_expiry = first + TimeDelta::seconds(duration);
    Ok(Failover {
        count,
        killed_before_first_expiry_secs: secs_between(killed_wall, first_expiry),
        lateness: summarize(&late).context("no removal measured")?,
        late_over_1s: late.iter().filter(|l| **l > 1.0).count(),
        new_grant_secs,
        killed: leader,
        new_leader,
    })
}
