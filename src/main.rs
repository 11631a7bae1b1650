use std::{io::Write, path::PathBuf};

use anyhow::Context;
use clap::{Parser, Subcommand};

/// Gatehouse: just-in-time Kubernetes RBAC access.
#[derive(Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
