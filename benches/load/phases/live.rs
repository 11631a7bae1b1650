//! L live grants (long duration, one approval each): what they cost to set up,
//! the operator's memory with them, and its API requests while idle. The run
//! then measures M whole lifecycles on top of them (see `expiry`).

use std::time::{Duration, Instant};

use anyhow::Result;
use gatehouse::api::Phase;

use super::{names, settle, Bench};
use crate::{
    cluster::{self, bounded},
    metrics::Cost,
    report::Live,
    watch::RequestWatch,
};

/// How long the operator is watched doing nothing.
const IDLE: Duration = Duration::from_secs(30);

/// Runs the phase; the L grants stay for the restart phase.
pub async fn run(bench: &mut Bench) -> Result<Live> {
    let ns = bench.scene("live").await?;
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let names = names(bench.sizes.live);
    let client = bench.client.clone();
    let role = bench.role.clone();

    let before = bench.scrape().await?;
    let memory_before = bench.operator.memory()?;
    let started = Instant::now();
    bounded(names.clone(), bench.concurrency, |name| {
        let req = cluster::request(&ns, &name, &role, "8h", None);
        let client = client.clone();
        async move {
            let created = cluster::create_request(&client, &req).await?;
            cluster::create_review(&client, &cluster::approval(&created)?).await?;
            Ok(())
        }
    })
    .await?;
    bench.step(
        format!("live: {} requests and approvals created", names.len()),
        started.elapsed(),
    );
    bench
        .bindings
        .wait(&ns, &names, "created", bench.bound, |t| t.added.is_some())
        .await?;
    requests.wait_phase(&names, Phase::Active, bench.bound).await?;
    drop(requests);
    let after = settle(bench).await?;
    let setup = started.elapsed();
    bench.step(format!("live: {} grants Active", names.len()), setup);
    let memory = bench.operator.memory()?;

    let quiet = bench.scrape().await?;
    tokio::time::sleep(IDLE).await;
    let idle = Cost::between(&quiet, &bench.scrape().await?);
    Ok(Live {
        count: names.len(),
        setup_secs: setup.as_secs_f64(),
        setup_cost: Cost::between(&before, &after),
        memory,
        memory_before,
        idle_secs: IDLE.as_secs_f64(),
        idle,
        lifecycle: None,
        memory_after: None,
    })
}
