//! `kubectl gatehouse`: a thin shell around [`gatehouse::cli`]. It parses the
//! command line, builds a client from the user's kubeconfig and current context,
//! asks the API server who the user is, and maps the outcome to an exit code.

use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gatehouse::cli::{self, exit, Cli, Env};

fn main() {
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let args = Cli::parse();
    let code = match real_main(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::ERROR
        }
    };
    std::process::exit(code);
}

fn real_main(args: Cli) -> anyhow::Result<i32> {
    // Pick the TLS crypto provider explicitly: with more than one compiled in, rustls refuses to choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(async {
        let client = kube::Client::try_default().await.context(
            "loading the kubeconfig (set KUBECONFIG or pick a context with `kubectl config use-context`)",
        )?;
        let namespace = args
            .namespace
            .clone()
            .unwrap_or_else(|| client.default_namespace().to_string());
        let me = cli::whoami(&client).await?;
        let env = Env {
            client,
            me,
            namespace,
            output: args.output,
            poll: Duration::from_secs(1),
            now: chrono::Utc::now,
        };
        let mut stdout = std::io::stdout().lock();
        Ok(cli::run(&env, &args.command, &mut stdout).await?)
    })
}
