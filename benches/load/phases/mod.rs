//! The phases of a run, each in its own namespace, sharing one context: the
//! admin client, the binding watch, the operator process.

pub mod approval;
pub mod blame;
pub mod expiry;
pub mod failover;
pub mod floor;
pub mod live;
pub mod restart;
pub mod storm;

use std::{path::PathBuf, time::Duration};

use anyhow::Result;
use kube::Client;

use crate::{
    cluster,
    metrics::Scrape,
    operator::Operator,
    report::{Sizes, Step},
    watch::BindingWatch,
};

/// Everything a phase needs.
pub struct Bench {
    /// Admin client.
    pub client: Client,
    /// The admin kubeconfig (the operator runs with it too).
    pub kubeconfig: PathBuf,
    /// Where logs go.
    pub workdir: PathBuf,
    /// Prefix of every name the run creates: `gatehouse-bench-<id>`.
    pub prefix: String,
    /// The ClusterRole the grants bind.
    pub role: String,
    /// N, M, L.
    pub sizes: Sizes,
    /// Calls in flight when creating many objects.
    pub concurrency: usize,
    /// How long any one request may take to get (or lose) its binding.
    pub bound: Duration,
    /// The watch on managed RoleBindings.
    pub bindings: BindingWatch,
    /// The operator process (replaced by the restart phase).
    pub operator: Operator,
    /// Log files of every operator process started.
    pub logs: Vec<PathBuf>,
    /// Scrapes of processes that are gone, last one each, for the totals.
    pub final_scrapes: Vec<Scrape>,
    /// Namespaces created (and to delete).
    pub namespaces: Vec<String>,
    /// Requests per second the operator took from creation to Active in the approval phase.
    pub throughput: Option<f64>,
    /// Things the reader of the report should know.
    pub notes: Vec<String>,
    /// Timed steps, in order.
    pub steps: Vec<Step>,
}

impl Bench {
    /// The namespace and policy of a phase, remembered for the clean-up.
    pub async fn scene(&mut self, phase: &str) -> Result<String> {
        let ns = format!("{}-{phase}", self.prefix);
        self.namespaces.push(ns.clone());
        cluster::create_scene(&self.client, &ns, &self.role).await?;
        Ok(ns)
    }

    /// Records a timed step for the report.
    pub fn step(&mut self, what: impl Into<String>, took: Duration) {
        let what = what.into();
        eprintln!("bench: {what}: {:.2} s", took.as_secs_f64());
        self.steps.push(Step {
            what,
            secs: took.as_secs_f64(),
        });
    }

    /// A scrape of the running operator, after checking it still runs.
    pub async fn scrape(&mut self) -> Result<Scrape> {
        self.operator.check_alive()?;
        self.operator.scrape().await
    }
}

/// Request names `r-00000`, `r-00001`, ...
pub fn names(count: usize) -> Vec<String> {
    (0..count).map(|i| format!("r-{i:05}")).collect()
}

/// Waits until the operator's API counters stop moving (its Events are sent off
/// the reconcile path, a little after the state change the bench saw), at most
/// 15 s; returns the last scrape.
pub async fn settle(bench: &mut Bench) -> Result<Scrape> {
    let start = std::time::Instant::now();
    let mut last = bench.scrape().await?;
    loop {
        tokio::time::sleep(Duration::from_millis(750)).await;
        let now = bench.scrape().await?;
        let moved = crate::metrics::Cost::between(&last, &now);
        let quiet = moved.reads + moved.writes == 0;
        last = now;
        if quiet || start.elapsed() > Duration::from_secs(15) {
            return Ok(last);
        }
    }
}

/// Seconds from `from` to `to`, negative if `to` came first.
pub fn signed_secs(from: std::time::Instant, to: std::time::Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64(),
        None => -from.duration_since(to).as_secs_f64(),
    }
}
