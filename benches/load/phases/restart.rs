//! A crash with L grants live: SIGKILL the operator, start a new one, and at
//! once create a request and its approval. How long until the new process
//! grants it, and until it says it is ready; and its memory then, and once
//! its start-up settled (every request reconciled once).

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::Bench;
use crate::{
    cluster,
    metrics::{Cost, Scrape},
    operator::{Memory, Operator},
    report::Restart,
};

/// Runs the phase; the new process stays as `bench.operator`.
pub async fn run(bench: &mut Bench) -> Result<Restart> {
    let ns = bench.scene("restart").await?;
    let last = bench.scrape().await?;
    bench.final_scrapes.push(last);
    bench.operator.kill();
    let log = (bench.workdir).join(format!("{}-operator-{}.log", bench.prefix, bench.logs.len() + 1));
    bench.logs.push(log.clone());
    bench.operator = Operator::start(&bench.kubeconfig, log)?;
    let started = bench.operator.started;

    let name = "r-00000".to_string();
    let req = cluster::request(&ns, &name, &bench.role, "1h", None);
    let created = cluster::create_request(&bench.client, &req).await?;
    cluster::create_review(&bench.client, &cluster::approval(&created)?).await?;

    let (mut ready, mut granted): (Option<Duration>, Option<Duration>) = (None, None);
    let names = [name];
    while ready.is_none() || granted.is_none() {
        if ready.is_none() && bench.operator.ready().await {
            ready = Some(started.elapsed());
        }
        if granted.is_none() {
            granted = bench.bindings.timelines(&ns, &names)[0]
                .added
                .map(|seen| seen.at.duration_since(started));
        }
        bench.operator.check_alive()?;
        if started.elapsed() > bench.bound {
            bail!(
                "after a restart, the new operator was {} and had {} the new request within {:?}",
                if ready.is_some() { "ready" } else { "not ready" },
                if granted.is_some() {
                    "granted"
                } else {
                    "not granted"
                },
                bench.bound
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let now = bench.scrape().await?;
    let memory = bench.operator.memory()?;
    let waited = Instant::now().duration_since(started);
    bench.step("restart: new process until ready and granted", waited);
    let settled = settle(bench).await?;
    Ok(Restart {
        ready_secs: ready.unwrap_or_default().as_secs_f64(),
        binding_secs: granted.unwrap_or_default().as_secs_f64(),
        memory,
        settled,
        cost: Cost::between(&Scrape::default(), &now),
    })
}

/// The new process's memory once its start-up is over: its reconcile count
/// unchanged for 2 s (every request it found was reconciled once), or after
/// 60 s at most.
async fn settle(bench: &mut Bench) -> Result<Memory> {
    let from = Instant::now();
    let mut last = bench.scrape().await?.reconciles();
    while from.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let now = bench.scrape().await?.reconciles();
        if now == last {
            break;
        }
        last = now;
    }
    bench.step("restart: start-up settled", from.elapsed());
    bench.operator.memory()
}
