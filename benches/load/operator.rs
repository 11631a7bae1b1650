//! The operator under test: `gatehouse run` as a child process, its /readyz and
//! /metrics, and its memory. Killed when dropped, so no error path leaves it running.

use std::{
    fs::File,
    os::unix::process::CommandExt,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::{logs::tail, metrics::Scrape};

/// A running `gatehouse run`.
pub struct Operator {
    child: Child,
    port: u16,
    /// When the process was spawned.
    pub started: Instant,
    /// Where its output goes.
    pub log: PathBuf,
}

/// Memory of the process, from /proc/PID/status.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Memory {
    /// Resident set size now, KiB (VmRSS).
    pub rss_kib: u64,
    /// Peak resident set size, KiB (VmHWM).
    pub peak_kib: u64,
}

fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

impl Operator {
    /// Starts the operator binary against the cluster of `kubeconfig`, logging to `log`.
    pub fn start(kubeconfig: &Path, log: PathBuf) -> Result<Operator> {
        Self::start_with(kubeconfig, log, &["--leader-election=false"], None)
    }

    /// The same with these flags, and `POD_NAME` (its Lease identity) if given.
    pub fn start_with(
        kubeconfig: &Path,
        log: PathBuf,
        flags: &[&str],
        identity: Option<&str>,
    ) -> Result<Operator> {
        let port = free_port()?;
        let stdout = File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let stderr = stdout.try_clone().context("sharing the log file")?;
        let started = Instant::now();
        // Another build of the operator (an older commit, to compare like for
        // like with the same bench), or the one built with the bench.
        let binary = std::env::var_os("GATEHOUSE_BENCH_OPERATOR")
            .map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_gatehouse")), PathBuf::from);
        let mut command = Command::new(binary);
        if let Some(id) = identity {
            command.env("POD_NAME", id);
        }
        let child = command
            .arg("run")
            .args(flags)
            .arg("--http-addr")
            .arg(format!("127.0.0.1:{port}"))
            .env("KUBECONFIG", kubeconfig)
            // The operator's default filter (info, kube's own crates at warn), no colours.
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            // The operator logs to stdout.
            .stdout(stdout)
            .stderr(stderr)
            // Its own process group: a Ctrl-C in the terminal stops the bench, which
            // then cleans up while the operator still finalizes requests.
            .process_group(0)
            .spawn()
            .context("starting the operator binary")?;
        Ok(Operator {
            child,
            port,
            started,
            log,
        })
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails if the process has exited, with the end of its log.
    pub fn check_alive(&mut self) -> Result<()> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => bail!(
                "the operator exited ({status}); last lines of {}:\n{}",
                self.log.display(),
                tail(&self.log, 20)
            ),
            Err(e) => Err(anyhow!("cannot check the operator process: {e}")),
        }
    }

    /// SIGKILL, and reap.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// GET a path of its HTTP server: (status code, body).
    async fn get(&self, path: &str) -> Result<(u16, String)> {
        let exchange = async {
            let mut stream = TcpStream::connect(("127.0.0.1", self.port)).await?;
            let request = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
            stream.write_all(request.as_bytes()).await?;
            let mut raw = Vec::new();
            stream.read_to_end(&mut raw).await?;
            Ok::<_, std::io::Error>(raw)
        };
        let raw = tokio::time::timeout(Duration::from_secs(10), exchange)
            .await
            .map_err(|_| anyhow!("GET {path}: no answer within 10 s"))??;
        parse_response(&raw).with_context(|| format!("GET {path}"))
    }

    /// Whether /readyz answers 200 (connection refused counts as not ready).
    pub async fn ready(&self) -> bool {
        matches!(self.get("/readyz").await, Ok((200, _)))
    }

    /// Waits until /readyz answers 200; returns the time since the process started.
    pub async fn wait_ready(&mut self, bound: Duration) -> Result<Duration> {
        loop {
            if self.ready().await {
                return Ok(self.started.elapsed());
            }
            self.check_alive()?;
            if self.started.elapsed() > bound {
                bail!(
                    "the operator was not ready within {bound:?}; last lines of {}:\n{}",
                    self.log.display(),
                    tail(&self.log, 20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One scrape of /metrics.
    pub async fn scrape(&self) -> Result<Scrape> {
        let (code, body) = self.get("/metrics").await?;
        if code != 200 {
            bail!("GET /metrics answered {code}");
        }
        Scrape::parse(&body)
    }

    /// VmRSS and VmHWM from /proc.
    pub fn memory(&self) -> Result<Memory> {
        let path = format!("/proc/{}/status", self.pid());
        let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        let field = |name: &str| -> Result<u64> {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| anyhow!("{path} has no {name}"))
        };
        Ok(Memory {
            rss_kib: field("VmRSS:")?,
            peak_kib: field("VmHWM:")?,
        })
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Status code and body of an HTTP/1.1 response (plain or chunked body).
fn parse_response(raw: &[u8]) -> Result<(u16, String)> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| anyhow!("response without a header end"))?;
    let code = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| anyhow!("response without a status code"))?;
    let chunked = head
        .lines()
        .any(|l| l.to_ascii_lowercase().starts_with("transfer-encoding:") && l.contains("chunked"));
    if !chunked {
        return Ok((code, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    while let Some((size, after)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).context("bad chunk size")?;
        if size == 0 {
            break;
        }
        let chunk = after.get(..size).ok_or_else(|| anyhow!("truncated chunk"))?;
        out.push_str(chunk);
        rest = after.get(size..).unwrap_or_default().trim_start_matches("\r\n");
    }
    Ok((code, out))
}
