//! `gatehouse run` as a subprocess of the end-to-end tests.
//!
//! An operator must never outlive the test binary: a leftover one would keep
//! granting and revoking on the control plane under the next run. Dropping an
//! [`Operator`] kills it (also while a failing test unwinds), and on Linux every
//! operator is started with `PR_SET_PDEATHSIG`, so the kernel kills it when the
//! test binary ends in any way, `SIGKILL` included. The shared operator lives in
//! a static that is never dropped, so for it the second mechanism is the one
//! that counts.
//!
//! The kernel sends the parent-death signal when the *thread* that forked the
//! child ends, and libtest runs each test on a thread of its own. Operators are
//! therefore spawned by one thread that lives as long as the process.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::{
        atomic::{AtomicUsize, Ordering},
        mpsc, Mutex, OnceLock,
    },
    time::Duration,
};

use super::cluster::eventually;

/// A running `gatehouse run`, killed (SIGKILL: no lease release) when dropped.
pub struct Operator {
    child: Child,
    /// Its /metrics, /healthz and /readyz port on 127.0.0.1.
    pub port: u16,
    /// Its `POD_NAME`, the identity it holds a Lease under.
    pub identity: String,
    /// Where its log goes.
    pub log: PathBuf,
}

impl Operator {
    /// Starts the operator with `kubeconfig` as identity `identity` (its
    /// `POD_NAME`) and `args` after the HTTP and sweep settings, and waits until
    /// it is ready (it reached the API server). Its log goes to a file in `logs`.
    pub async fn start(kubeconfig: &Path, identity: &str, args: &[&str], logs: &Path) -> Operator {
        // A free port is free when asked, not necessarily when the operator binds
        // it (another test may take it in between): try again on another.
        for _ in 0..3 {
            let mut operator = Operator::spawn(kubeconfig, identity, args, logs);
            if operator.wait_ready().await {
                return operator;
            }
        }
        panic!(
            "the operator {identity} did not start (logs in {})",
            logs.display()
        );
    }

    fn spawn(kubeconfig: &Path, identity: &str, args: &[&str], logs: &Path) -> Operator {
        let port = free_port();
        std::fs::create_dir_all(logs).unwrap();
        // Numbered in start order: the logs of a run list in the order they began.
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let n = STARTED.fetch_add(1, Ordering::Relaxed);
        let log = logs.join(format!("operator-{n:02}-{identity}.log"));
        let mut command = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
        command
            .args(["run", "--http-addr", &format!("127.0.0.1:{port}")])
            .args(["--sweep-interval", "5s"])
            .args(args)
            .env("KUBECONFIG", kubeconfig)
            .env("POD_NAME", identity)
            .env("RUST_LOG", "info,gatehouse=debug")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        // It logs to stdout; panics and clap errors go to stderr.
        let file = File::create(&log).unwrap();
        command.stdout(file.try_clone().unwrap()).stderr(file);
        let child = spawn_bound_to_this_process(command);
        eprintln!("operator {identity} on port {port}, log {}", log.display());
        Operator {
            child,
            port,
            identity: identity.to_string(),
            log,
        }
    }

    /// Whether /readyz answered "ok" before the process ended or 30 s passed.
    async fn wait_ready(&mut self) -> bool {
        let port = self.port;
        let child = &mut self.child;
        let ready = eventually("the operator to answer /readyz", Duration::from_secs(30), || {
            let exited = matches!(child.try_wait(), Ok(Some(_)));
            async move {
                if exited {
                    return Some(false);
                }
                (http_get(port, "/readyz").await.as_deref() == Some("ok")).then_some(true)
            }
        })
        .await;
        if !ready {
            eprintln!(
                "the operator {} exited early:\n{}",
                self.identity,
                tail(&self.log, 20)
            );
        }
        ready
    }

    /// GET `path` on the operator's HTTP port: the response body.
    pub async fn get(&self, path: &str) -> String {
        http_get(self.port, path)
            .await
            .unwrap_or_else(|| panic!("GET {path} on the operator {}", self.identity))
    }

    /// Sends SIGTERM (a rolling update, a node drain): it stops gracefully.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args(["-TERM", &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
    }

    /// Resident memory now and its peak (VmRSS, VmHWM), in KiB.
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Whether the process still runs.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The last `n` lines of a log file.
pub fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A GET on 127.0.0.1:`port` without an HTTP client dependency: the body, or
/// `None` if nothing answered.
pub async fn http_get(port: u16, path: &str) -> Option<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").as_bytes())
        .await
        .ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out.split("\r\n\r\n").nth(1).unwrap_or_default().to_string())
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

type SpawnRequest = (Command, mpsc::Sender<std::io::Result<Child>>);

/// Spawns `command` from a thread that lives as long as the test binary, with
/// the parent-death signal set (see the module documentation).
pub fn spawn_bound_to_this_process(mut command: Command) -> Child {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnRequest>>> = OnceLock::new();
    die_with_parent(&mut command);
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnRequest>();
        std::thread::Builder::new()
            .name("operator-spawner".into())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .unwrap();
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .unwrap();
    answer.recv().unwrap().unwrap()
}

#[cfg(target_os = "linux")]
fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: between fork and exec the closure calls only prctl and getppid,
    // which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent may have died before prctl: then no signal would come.
            if libc::getppid() != parent {
                return Err(std::io::Error::other("the test binary is gone"));
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}
