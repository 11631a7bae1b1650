//! N requests approved at once: create N pending requests, then N approvals as
//! fast as the API server takes them; latency = the bench's watch sees the
//! binding − the bench's create of that approval returned.

use std::{collections::HashMap, time::Instant};

use anyhow::{Context, Result};
use gatehouse::api::Phase;
use kube::ResourceExt;

use super::{names, settle, signed_secs, Bench};
use crate::{
    cluster::{self, bounded},
    metrics::Cost,
    report::Approval,
    stats::summarize,
    watch::RequestWatch,
};

/// Runs the phase.
pub async fn run(bench: &mut Bench) -> Result<Approval> {
    let ns = bench.scene("approval").await?;
    let requests = RequestWatch::start(&bench.client, &ns).await?;
    let names = names(bench.sizes.requests);
    let client = bench.client.clone();
    let role = bench.role.clone();

    let started = Instant::now();
    let created = bounded(names.clone(), bench.concurrency, |name| {
        let req = cluster::request(&ns, &name, &role, "1h", None);
        let client = client.clone();
        async move { cluster::create_request(&client, &req).await }
    })
    .await?;
    requests.wait_phase(&names, Phase::Pending, bench.bound).await?;
    let setup = started.elapsed();
    bench.step(
        format!("approval: {} requests created and Pending", names.len()),
        setup,
    );

    let before = bench.scrape().await?;
    let approving = Instant::now();
    let approved = bounded(created, bench.concurrency, |req| {
        let client = client.clone();
        async move {
            let review = cluster::approval(&req)?;
            cluster::create_review(&client, &review).await?;
            Ok((req.name_any(), Instant::now()))
        }
    })
    .await?;
    let approve_secs = approving.elapsed().as_secs_f64();
    bench.step(
        format!("approval: {} approvals created", approved.len()),
        approving.elapsed(),
    );
    let returned: HashMap<String, Instant> = approved.into_iter().collect();

    let timelines = bench
        .bindings
        .wait(&ns, &names, "created", bench.bound, |t| t.added.is_some())
        .await?;
    let latencies: Vec<f64> = names
        .iter()
        .zip(&timelines)
        .filter_map(|(n, t)| Some(signed_secs(*returned.get(n)?, t.added?.at)))
        .collect();
    requests.wait_phase(&names, Phase::Active, bench.bound).await?;
    bench.throughput = Some(names.len() as f64 / started.elapsed().as_secs_f64().max(0.001));
    let after = settle(bench).await?;
    Ok(Approval {
        latency: summarize(&latencies).context("no approval latency measured")?,
        setup_secs: setup.as_secs_f64(),
        approve_secs,
        operator: after
            .histogram("approval_to_grant_seconds")
            .since(&before.histogram("approval_to_grant_seconds")),
        cost: Cost::between(&before, &after),
    })
}
