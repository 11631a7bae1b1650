//! Load benchmark of the operator against a real API server (issue 14).
//!
//! Needs an admin kubeconfig in GATEHOUSE_E2E_KUBECONFIG (`hack/bench.sh` starts
//! a control plane and runs this). Starts the operator binary, installs the
//! CRDs, and measures, each phase in its own `gatehouse-bench-*` namespace:
//! raw RoleBinding creates (the floor), N approvals at once, lone and M
//! simultaneous expiries, L live grants (memory, API requests idle and per
//! lifecycle), and a restart with L grants live. Prints one report with the
//! issue's targets beside the figures. Fails on errors, never on timings.
//!
//!   cargo bench --bench load -- [--requests N] [--expiries M] [--live L] [--quick] [--json FILE]

mod cluster;
mod logs;
mod metrics;
mod operator;
mod phases;
mod report;
mod stats;
mod targets;
mod watch;

use std::{path::PathBuf, process::ExitCode, time::Duration};

use anyhow::{anyhow, Context, Result};
use clap::Parser;
use phases::{approval, expiry, failover, floor, live, restart, storm, Bench};
use report::{Health, Machine, Report, Sizes};

/// Load benchmark of the Gatehouse operator against the API server of
/// GATEHOUSE_E2E_KUBECONFIG.
#[derive(Parser, Debug)]
#[command(name = "load")]
struct Args {
    /// N: requests approved at once (and raw RoleBinding creates for the floor).
    #[arg(long, default_value_t = 1000)]
    requests: usize,
    /// M: grants that expire at the same instant.
    #[arg(long, default_value_t = 1000)]
    expiries: usize,
    /// L: live grants (and reviews) for memory, idle cost and the restart.
    #[arg(long, default_value_t = 10_000)]
    live: usize,
    /// F: grants live at a leader failover (2 replicas, the leader
    /// SIGKILLed before they expire over 30 s); 0 skips it.
    #[arg(long, default_value_t = 1000)]
    failover: usize,
    /// S: requests of 5–40 s in the crash storm; 0 skips it.
    #[arg(long, default_value_t = 1000)]
    storm: usize,
    /// K: SIGKILLs of the operator during the crash storm.
    #[arg(long, default_value_t = 20)]
    kills: usize,
    /// Seed of the crash storm's schedule (durations, kill moments, restart
    /// delays), to replay a run; default: from the clock. The report prints it.
    #[arg(long)]
    seed: Option<u64>,
    /// Small sizes for CI: 200 requests, 200 expiries, 200 live, no failover
    /// and no crash storm.
    #[arg(long, conflicts_with_all = ["requests", "expiries", "live", "failover", "storm"])]
    quick: bool,
    /// Also write the report as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Directory for the operator logs (default: a new one under the temp directory).
    #[arg(long, value_name = "DIR")]
    logs: Option<PathBuf>,
    /// API calls in flight when creating many objects.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Seconds any one request may take to get (or lose) its binding before the run fails.
    #[arg(long, default_value_t = 300)]
    bound: u64,
    /// Passed by `cargo bench`; ignored.
    #[arg(long, hide = true)]
    bench: bool,
}

const KUBECONFIG_ENV: &str = "GATEHOUSE_E2E_KUBECONFIG";
/// Lone expiries measured (one second apart).
const LONE: usize = 10;

fn main() -> ExitCode {
    let args = Args::parse();
    // Test builds link two rustls crypto providers; pick one, as the operator does.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("bench: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

fn machine(server: String) -> Machine {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default().trim().to_string();
    let load = read("/proc/loadavg");
    Machine {
        date: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        host: read("/proc/sys/kernel/hostname"),
        cpus: std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_before: load.split_whitespace().take(3).collect::<Vec<_>>().join(" "),
        build: if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
        .into(),
        server,
    }
}

/// A short lowercase id for this run's names.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut n = nanos;
    (0..6)
        .map(|_| {
            let c = alphabet[(n % 36) as usize] as char;
            n /= 36;
            c
        })
        .collect()
}

async fn run(args: Args) -> ExitCode {
    let sizes = if args.quick {
        Sizes {
            requests: 200,
            expiries: 200,
            live: 200,
            failover: 0,
            storm: 0,
            kills: 0,
            seed: None,
        }
    } else {
        Sizes {
            requests: args.requests,
            expiries: args.expiries,
            live: args.live,
            failover: args.failover,
            storm: args.storm,
            kills: args.kills,
            seed: args.seed,
        }
    };
    let mut report = Report {
        machine: machine(String::new()),
        sizes,
        steps: Vec::new(),
        floor: None,
        floor_delete: None,
        approval: None,
        lone: None,
        burst: None,
        live: None,
        restart: None,
        failover: None,
        storm: None,
        health: Health::default(),
        targets: Vec::new(),
        notes: Vec::new(),
        failures: Vec::new(),
        error: None,
    };
    match setup(&args, sizes, &mut report).await {
        Ok(mut bench) => {
            let outcome = tokio::select! {
                r = measure(&mut bench, &mut report) => r,
                _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
            };
            if let Err(e) = outcome {
                report.error = Some(format!("{e:#}"));
            }
            finish(&mut bench, &mut report).await;
        }
        Err(e) => {
            eprintln!("bench: FAILED before measuring anything: {e:#}");
            return ExitCode::FAILURE;
        }
    }
    report.targets = targets::judge(&report);
    println!("{}", report.text());
    if let Some(path) = &args.json {
        let written = serde_json::to_string_pretty(&report)
            .context("encoding the report")
            .and_then(|json| std::fs::write(path, json + "\n").context("writing the JSON report"));
        if let Err(e) = written {
            eprintln!("bench: {}: {e:#}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if report.error.is_some() || !report.failures.is_empty() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// Client, CRDs, role, the binding watch and a ready operator.
async fn setup(args: &Args, sizes: Sizes, report: &mut Report) -> Result<Bench> {
    let kubeconfig = std::env::var_os(KUBECONFIG_ENV)
        .map(PathBuf::from)
        .with_context(|| {
            format!("{KUBECONFIG_ENV} is not set: point it at an admin kubeconfig (hack/bench.sh starts a control plane and sets it)")
        })?;
    let client = cluster::connect(&kubeconfig).await?;
    let version = client
        .apiserver_version()
        .await
        .context("asking the API server its version")?;
    report.machine = machine(version.git_version);
    let prefix = format!("gatehouse-bench-{}", run_id());
    let workdir = match &args.logs {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(&prefix),
    };
    std::fs::create_dir_all(&workdir).with_context(|| format!("creating {}", workdir.display()))?;

    let started = std::time::Instant::now();
    cluster::install_crds(&client).await?;
    let bindings = watch::BindingWatch::start(&client, prefix.clone()).await?;
    let log = workdir.join(format!("{prefix}-operator-1.log"));
    let mut operator = operator::Operator::start(&kubeconfig, log.clone())?;
    let ready = operator.wait_ready(Duration::from_secs(120)).await?;
    // Last, so that a failed setup leaves nothing behind but the CRDs.
    cluster::create_role(&client, &prefix).await?;
    let mut bench = Bench {
        client,
        kubeconfig,
        workdir,
        prefix: prefix.clone(),
        role: prefix,
        sizes,
        concurrency: args.concurrency,
        bound: Duration::from_secs(args.bound),
        bindings,
        operator,
        logs: vec![log],
        final_scrapes: Vec::new(),
        namespaces: Vec::new(),
        throughput: None,
        notes: Vec::new(),
        steps: Vec::new(),
    };
    bench.step(
        format!("setup: CRDs, role, watch; operator ready in {ready:.2?}"),
        started.elapsed(),
    );
    Ok(bench)
}

/// The phases, in order; each result lands in the report as soon as it exists.
async fn measure(bench: &mut Bench, report: &mut Report) -> Result<()> {
    let z = bench.sizes;
    let (created, deleted) = floor::run(bench).await?;
    report.floor = Some(created);
    report.floor_delete = Some(deleted);
    report.approval = Some(approval::run(bench).await?);
    report.lone = Some(checked(expiry::run(bench, expiry::lone(LONE)).await?, report));
    let burst = expiry::burst(bench, "burst", format!("{} at once", z.expiries), z.expiries);
    report.burst = Some(checked(expiry::run(bench, burst).await?, report));
    // The crash storm and the failover run before the L live grants, as issue
    // 24 sets them: only their own requests (and the finished ones of the
    // phases before) in memory. The failover leaves two replicas with leader
    // election running: the one that survives runs the phases after it.
    if z.storm > 0 {
        report.storm = Some(storm::run(bench, z.storm, z.kills, z.seed).await?);
    }
    if z.failover > 0 {
        report.failover = Some(failover::run(bench, z.failover).await?);
    }
    report.live = Some(live::run(bench).await?);
    let busy = expiry::burst(
        bench,
        "busy",
        format!("{} at once, {} live", z.expiries, z.live),
        z.expiries,
    );
    let lifecycle = checked(expiry::run(bench, busy).await?, report);
    let memory = bench.operator.memory()?;
    if let Some(l) = report.live.as_mut() {
        l.lifecycle = Some(lifecycle);
        l.memory_after = Some(memory);
    }
    report.restart = Some(restart::run(bench).await?);
    Ok(())
}

/// Requests never granted fail the run, but the measuring goes on.
fn checked(e: report::Expiry, report: &mut Report) -> report::Expiry {
    if let Some(first) = e.ungranted.first() {
        report.failures.push(format!(
            "{} of {} requests in {} ({}) ended without ever being granted (e.g. {first}): the operator did not get to them within their {} s",
            e.ungranted.len(),
            e.count,
            e.namespace,
            e.label,
            e.duration_secs
        ));
    }
    e
}

/// Clean-up (a second Ctrl-C abandons it), the operator's health, and stopping it.
async fn finish(bench: &mut Bench, report: &mut Report) {
    let cleaned = tokio::select! {
        r = clean_up(bench, report) => r,
        _ = tokio::signal::ctrl_c() => Err(anyhow!("interrupted")),
    };
    if let Err(e) = cleaned {
        let message = format!("clean-up failed: {e:#}; leftovers are named {}-*", bench.prefix);
        match &report.error {
            Some(_) => report.notes.push(message),
            None => report.error = Some(message),
        }
    }
    let mut scrapes = std::mem::take(&mut bench.final_scrapes);
    if let Ok(s) = bench.scrape().await {
        scrapes.push(s);
    }
    bench.operator.kill();
    report.health = health(&scrapes, &bench.logs);
    report.steps = std::mem::take(&mut bench.steps);
    report.notes.splice(0..0, std::mem::take(&mut bench.notes));
    let relists = bench.bindings.relists();
    if relists > 1 {
        report.notes.push(format!(
            "the bench's RoleBinding watch listed {relists} times (once is normal): events seen on a re-list are timed late"
        ));
    }
}

/// Deletes everything the run created, the requests while the operator still runs.
async fn clean_up(bench: &mut Bench, report: &mut Report) -> Result<()> {
    // A dead operator finalizes nothing: do not wait for it.
    let bound = match bench.operator.check_alive() {
        Ok(()) => bench.bound.max(Duration::from_secs(60)),
        Err(_) => Duration::ZERO,
    };
    let started = std::time::Instant::now();
    let (deleted, notes) =
        cluster::delete_requests(&bench.client, &bench.namespaces, bench.concurrency, bound).await?;
    report.notes.extend(notes);
    bench.step(
        format!("clean-up: {deleted} requests deleted and finalized"),
        started.elapsed(),
    );
    let started = std::time::Instant::now();
    let bound = bench.bound.max(Duration::from_secs(60));
    cluster::delete_scenes(&bench.client, &bench.namespaces, &bench.role, bound).await?;
    bench.step("clean-up: namespaces, policies and role gone", started.elapsed());
    Ok(())
}

/// The operator's health over the run, from the last scrape of each process and their logs.
fn health(scrapes: &[metrics::Scrape], logs: &[PathBuf]) -> Health {
    let mut health = Health::default();
    for s in scrapes {
        health.reconcile_errors += s.reconcile_errors();
        health.watch_restarts += s.watch_restarts();
        health.events_dropped += s.events_dropped();
    }
    for log in logs {
        let (warns, errors, problems) = logs::problems(log);
        health.warnings += warns;
        health.errors += errors;
        for p in problems {
            match health.problems.iter_mut().find(|q| q.kind == p.kind) {
                Some(q) => q.count += p.count,
                None => health.problems.push(p),
            }
        }
        health.logs.push(log.display().to_string());
    }
    health.problems.sort_by_key(|p| std::cmp::Reverse(p.count));
    health
}
