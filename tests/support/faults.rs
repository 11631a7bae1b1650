//! Faults on the project's own control plane (`hack/control-plane`): restart
//! the API server, cut one client off with the fault proxy. Only the fault suite
//! uses these; they need the control plane's state directory, which `up.sh`
//! keeps next to the kubeconfig it prints.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use kube::config::Kubeconfig;

/// The state directory of a `hack/control-plane` control plane.
pub struct ControlPlane {
    dir: PathBuf,
    scripts: PathBuf,
}

/// When a restart stopped and brought back the API server.
#[derive(Debug, Clone, Copy)]
pub struct Restart {
    /// The old process had exited.
    pub stopped: SystemTime,
    /// `/readyz` of the new one answered.
    pub ready: SystemTime,
}

fn run(script: &Path, args: &[&str]) -> String {
    let out = Command::new(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} {args:?} failed:\n{}",
        script.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `1796142501.073`: Unix seconds with milliseconds, as the scripts print them.
fn unix_time(value: &str) -> SystemTime {
    let secs: f64 = value
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("not a Unix time: {value:?}"));
    UNIX_EPOCH + Duration::from_secs_f64(secs)
}

impl ControlPlane {
    /// The control plane whose admin kubeconfig this is, if `up.sh` made it.
    pub fn of(kubeconfig: &Path) -> Option<ControlPlane> {
        let dir = kubeconfig.parent()?.to_path_buf();
        let ours = dir.join("env").is_file() && dir.join("pids").is_file();
        let scripts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("hack/control-plane");
        ours.then_some(ControlPlane { dir, scripts })
    }

    /// Kills the API server (`signal` KILL: a crash; TERM: a graceful stop), keeps
    /// it down `downtime`, starts it again with the same flags and data, and
    /// returns once it is ready.
    pub async fn restart_apiserver(&self, downtime: Duration, signal: &str) -> Restart {
        let script = self.scripts.join("restart-apiserver.sh");
        let dir = self.dir.clone();
        let signal = signal.to_string();
        let secs = downtime.as_secs().to_string();
        let out = tokio::task::spawn_blocking(move || {
            let out = Command::new(&script)
                .arg(&dir)
                .arg(&secs)
                .env("GATEHOUSE_RESTART_SIGNAL", &signal)
                .output()
                .unwrap_or_else(|e| panic!("{}: {e}", script.display()));
            assert!(
                out.status.success(),
                "restart-apiserver.sh failed:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
            String::from_utf8_lossy(&out.stdout).into_owned()
        })
        .await
        .unwrap();
        let value = |key: &str| {
            out.lines()
                .find_map(|l| l.trim_start_matches("export ").strip_prefix(&format!("{key}=")))
                .map(|v| v.trim_matches('"').to_string())
                .unwrap_or_else(|| panic!("restart-apiserver.sh printed no {key}:\n{out}"))
        };
        Restart {
            stopped: unix_time(&value("GATEHOUSE_APISERVER_STOPPED_AT")),
            ready: unix_time(&value("GATEHOUSE_APISERVER_READY_AT")),
        }
    }

    /// Starts a fault proxy `name` between one client and the API server, and
    /// writes `kubeconfig` with its server pointed through the proxy (identity
    /// and credentials kept), next to it.
    pub fn proxy(&self, name: &str, kubeconfig: &Path) -> Proxy {
        let script = self.scripts.join("fault-proxy.sh");
        let dir = self.dir.to_string_lossy().into_owned();
        let proxied = run(&script, &[&dir, "start", name]);
        let proxied = Kubeconfig::read_from(proxied.trim()).expect("the proxy's kubeconfig");
        let server = proxied.clusters[0]
            .cluster
            .as_ref()
            .and_then(|c| c.server.clone())
            .expect("the proxy's address");
        let mut kc = Kubeconfig::read_from(kubeconfig).expect("the client's kubeconfig");
        for named in &mut kc.clusters {
            if let Some(c) = named.cluster.as_mut() {
                c.server = Some(server.clone());
            }
        }
        let path = kubeconfig.with_extension(format!("via-{name}.kubeconfig"));
        std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
        Proxy {
            script,
            dir,
            name: name.to_string(),
            kubeconfig: path,
        }
    }
}

/// A client's own path to the API server, which can be cut and restored.
pub struct Proxy {
    script: PathBuf,
    dir: String,
    name: String,
    /// The client's kubeconfig through the proxy.
    pub kubeconfig: PathBuf,
}

impl Proxy {
    fn control(&self, command: &str) {
        run(&self.script, &[&self.dir, command, &self.name]);
    }

    /// The API server goes silent for this client: nothing refused, nothing answered.
    pub fn partition(&self) {
        self.control("partition");
    }

    /// Every open connection of the client is reset (as when a load balancer
    /// forgets it); new ones behave as the proxy's state says.
    pub fn drop_connections(&self) {
        self.control("drop");
    }

    /// The partition ends: held bytes and connections go through.
    pub fn heal(&self) {
        self.control("heal");
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = Command::new(&self.script)
            .args([self.dir.as_str(), "stop", self.name.as_str()])
            .output();
    }
}

/// The instant of the first line of an operator log (text format) that contains
/// `needle`: its leading RFC 3339 timestamp.
pub fn logged_at(log: &Path, needle: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    let text = std::fs::read_to_string(log).ok()?;
    text.lines()
        .find(|l| l.contains(needle))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|t| t.parse().ok())
}
