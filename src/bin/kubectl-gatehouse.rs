//! `kubectl gatehouse`: a thin shell around [`gatehouse::cli`]. It parses the
//! command line, connects by kubectl's rules (kubeconfig, context, flags), asks the
//! API server who the user is (the impersonated user with `--as`), runs the command,
//! and prints any failure as one line (`-v` adds the details).

use std::{ffi::OsString, io::Write, path::PathBuf, time::Duration};

use clap::Parser;
use gatehouse::{
    cli::{self, complete, exit, Cli, CliError, Command, Env},
    escape::terminal,
};

fn main() {
    let argv: Vec<OsString> = std::env::args_os().collect();
    // kubectl_complete-gatehouse and the shell scripts call `__complete WORD...`;
    // it is not a clap subcommand so that the words are never parsed as flags.
    if argv.get(1).is_some_and(|a| a == complete::COMPLETE_COMMAND) {
        std::process::exit(complete_main(&argv[2..]));
    }
    // clap exits with 2 on usage errors and 0 for --help/--version.
    let args = Cli::parse();
    init_logging(args.verbosity);
    let code = match real_main(&args) {
        Ok(code) => code,
        Err(e) => {
            // The message may quote the API server and names from the cluster.
            eprintln!("error: {}", terminal::line(&e.to_string()));
            if args.verbosity > 0 {
                for line in e.details() {
                    eprintln!("  {}", terminal::line(&line));
                }
            }
            e.exit_code()
        }
    };
    std::process::exit(code);
}

/// `-vv`: kube's and the plugin's debug logs (each API call, watch events) on stderr.
fn init_logging(verbosity: u8) {
    let filter = match verbosity {
        0 | 1 => return,
        2 => "kube=debug,gatehouse=debug",
        _ => "kube=trace,gatehouse=trace",
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .try_init();
}

fn home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    // Pick the TLS crypto provider explicitly: with more than one compiled in, rustls refuses to choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::Output(format!("cannot start the async runtime: {e}")))
}

fn real_main(args: &Cli) -> Result<i32, CliError> {
    if let Command::Completion { shell } = args.command {
        std::io::stdout().write_all(complete::script(shell).as_bytes())?;
        return Ok(exit::OK);
    }
    runtime()?.block_on(async {
        let conn = cli::connect(&args.kube, std::env::var_os("KUBECONFIG"), home()).await?;
        let client = conn.client()?;
        let me = cli::whoami(&client, &conn.server()).await?;
        let env = Env {
            watch_client: conn.watch_client()?,
            client,
            me,
            namespace: conn.namespace.clone(),
            output: args.output,
            server: conn.server(),
            persona: cli::persona(&args.command),
            operator_grace: Duration::from_secs(10),
            now: chrono::Utc::now,
        };
        let mut stdout = std::io::stdout().lock();
        let mut stderr = std::io::stderr();
        cli::run(&env, &args.command, &mut stdout, &mut stderr).await
    })
}

/// Prints completion candidates for `words` (the last one is under the cursor).
/// Never fails loudly: a shell completing a word has nowhere to show an error.
fn complete_main(words: &[OsString]) -> i32 {
    let words: Vec<String> = words.iter().map(|w| w.to_string_lossy().into_owned()).collect();
    let pos = complete::position(&words);
    let kubeconfig_env = std::env::var_os("KUBECONFIG");
    let names = cli::kubeconfig_names(&pos.kube, kubeconfig_env.clone(), home());
    let needs_cluster = matches!(
        pos.want,
        complete::Want::Requests(_)
            | complete::Want::Roles
            | complete::Want::Policies
            | complete::Want::Namespaces
    );
    let Ok(rt) = runtime() else {
        return exit::ERROR;
    };
    let (candidates, directive) = rt.block_on(async {
        let mut kube = pos.kube.clone();
        // A shell waits for the answer: never longer than a few seconds.
        if cli::request_timeout(&kube.request_timeout)
            .ok()
            .flatten()
            .is_none()
        {
            kube.request_timeout = "3s".into();
        }
        let conn = match needs_cluster {
            true => cli::connect(&kube, kubeconfig_env, home()).await.ok(),
            false => None,
        };
        let client = conn.as_ref().and_then(|c| c.client().ok());
        let namespace = conn.map(|c| c.namespace).unwrap_or_default();
        complete::candidates(&pos, client.as_ref(), &namespace, &names).await
    });
    let mut stdout = std::io::stdout().lock();
    match complete::write_candidates(&mut stdout, &candidates, directive) {
        Ok(()) => exit::OK,
        Err(_) => exit::ERROR,
    }
}
