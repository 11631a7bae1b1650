use std::{io::Write, path::PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

/// Gatehouse: just-in-time Kubernetes RBAC access.
#[derive(Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Evaluate AccessPolicies, ApprovalRequests and AccessReviews from YAML files, without a cluster.
    ///
    /// Each object's metadata.creationTimestamp is when it happened; objects created after --now do
    /// not exist yet. Prints, per request, the phase, approvals, grant, expiry and ignored reviews.
    Simulate {
        /// YAML files (multi-document) or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Evaluation time, RFC 3339 (default: the current time).
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
    /// Print the CustomResourceDefinitions as YAML (or write one file each into --out-dir).
    Crds {
        /// Write `<crd-name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Crds { out_dir } => crds(out_dir),
        Command::Simulate { paths, now, output } => simulate(&paths, now.unwrap_or_else(Utc::now), output),
    }
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    match out_dir {
        None => {
            let all = gatehouse::crdgen::render_all()?;
            std::io::stdout()
                .write_all(all.as_bytes())
                .context("writing to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in gatehouse::crdgen::render_crds()? {
                let path = dir.join(&crd.file_name);
                std::fs::write(&path, crd.yaml).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// A table with one line per request and notes below it.
    Table,
    /// `{"requests":[{"namespace","name","status"}]}`; `status` is what the operator writes.
    Json,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-23T12:00:00Z: {e}"))
}

fn simulate(paths: &[PathBuf], now: DateTime<Utc>, output: Output) -> anyhow::Result<()> {
    let manifests = gatehouse::simulate::load(paths)?;
    let report = gatehouse::simulate::run(&manifests, now);
    let text = match output {
        Output::Table => gatehouse::simulate::render_table(&report),
        Output::Json => serde_json::to_string_pretty(&report).context("rendering JSON")? + "\n",
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}
