//! The real API server the end-to-end tests run against, and the one rule for
//! when they skip.
//!
//! `GATEHOUSE_E2E_KUBECONFIG` names an admin kubeconfig (`hack/control-plane/up.sh`
//! prints it). Without it every server-side test skips, unless
//! `GATEHOUSE_E2E_REQUIRED` is set (CI sets it): then it fails. A skip prints a
//! marker line past libtest's output capture, so CI can also fail on a skip it
//! would otherwise see as "ok".

use std::{
    future::Future,
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use k8s_openapi::{
    api::{
        admissionregistration::v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
        rbac::v1::{ClusterRole, ClusterRoleBinding},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    api::{Api, Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config, Resource, ResourceExt,
};
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use super::{fence, tools};

pub const KUBECONFIG_ENV: &str = "GATEHOUSE_E2E_KUBECONFIG";
pub const REQUIRED_ENV: &str = "GATEHOUSE_E2E_REQUIRED";
/// Printed (unless captured) when a server-side test skips; `.ci/run` fails on it.
pub const SKIP_MARKER: &str = "gatehouse-e2e: SKIPPED";

/// The skip guard of every server-side test: the admin kubeconfig of the test
/// control plane, or `None` if the test should skip. Panics instead of skipping
/// when `GATEHOUSE_E2E_REQUIRED` is set.
pub fn kubeconfig() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(KUBECONFIG_ENV).filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(path));
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    assert!(
        std::env::var_os(REQUIRED_ENV).is_none(),
        "{REQUIRED_ENV} is set but {KUBECONFIG_ENV} is not: {test} cannot run"
    );
    // Straight to the process's stderr: libtest shows captured output only for
    // failed tests, and this line is for the CI log.
    let _ = writeln!(
        std::io::stderr(),
        "{SKIP_MARKER} {test}: {KUBECONFIG_ENV} is not set (see hack/control-plane/up.sh)"
    );
    None
}

/// The test control plane with Gatehouse's CRDs, admission policies and the
/// people's RBAC installed, once per test binary.
pub struct Cluster {
    /// The admin kubeconfig.
    pub kubeconfig: PathBuf,
    admin: Config,
    /// Tells this test binary's run apart from earlier ones on the same cluster.
    pub run: String,
    /// Operator logs and per-user kubeconfigs of this run.
    pub dir: PathBuf,
}

impl Cluster {
    /// The prepared cluster, or `None` to skip (see [`kubeconfig`]).
    pub async fn get() -> Option<&'static Cluster> {
        static CLUSTER: OnceCell<Cluster> = OnceCell::const_new();
        let kubeconfig = kubeconfig()?;
        Some(CLUSTER.get_or_init(|| Cluster::prepare(kubeconfig)).await)
    }

    async fn prepare(kubeconfig: PathBuf) -> Cluster {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let kc = Kubeconfig::read_from(&kubeconfig)
            .unwrap_or_else(|e| panic!("{KUBECONFIG_ENV}={}: {e}", kubeconfig.display()));
        let admin = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
            .await
            .unwrap();
        let run = format!("{:x}", chrono::Utc::now().timestamp_millis());
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("gatehouse-e2e");
        // Only the last run's logs are kept.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let cluster = Cluster {
            kubeconfig,
            admin,
            run,
            dir,
        };
        let client = cluster.admin();
        let chart = chart_install_objects();
        install_crds(&client, &chart).await;
        install_admission_policies(&client, &chart).await;
        grant_people_access(&client).await;
        let probe = cluster.as_user(&fence::operator_user("probe"), &fence::OPERATOR_GROUPS);
        fence::install(&client, probe).await;
        cluster
    }

    /// A client with the admin's rights. Clients are made per test: each test
    /// has a runtime of its own, and a client does not outlive its runtime.
    pub fn admin(&self) -> Client {
        Client::try_from(self.admin.clone()).unwrap()
    }

    /// A client acting as `user` in `groups`, through the admin's impersonation right.
    pub fn as_user(&self, user: &str, groups: &[&str]) -> Client {
        let mut c = self.admin.clone();
        c.auth_info.impersonate = Some(user.to_string());
        c.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
        Client::try_from(c).unwrap()
    }

    /// A copy of the admin kubeconfig that impersonates `user` in `groups`, in
    /// `dir`, so that a program (the plugin, an operator) runs as that user
    /// without knowing it is impersonation.
    pub fn user_kubeconfig(&self, dir: &Path, user: &str, groups: &[&str]) -> PathBuf {
        let mut kc = Kubeconfig::read_from(&self.kubeconfig).unwrap();
        for named in &mut kc.auth_infos {
            if let Some(auth) = named.auth_info.as_mut() {
                auth.impersonate = Some(user.to_string());
                auth.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
            }
        }
        std::fs::create_dir_all(dir).unwrap();
        // KUBECONFIG is a ':'-separated list: no ':' from a ServiceAccount's user name in the path.
        let path = dir.join(format!("{}.kubeconfig", user.replace(':', "_")));
        std::fs::write(&path, serde_json::to_string(&kc).unwrap()).unwrap();
        path
    }
}

impl Cluster {
    /// A kubeconfig (in `dir`) for an operator of `scope`: admin rights,
    /// fenced to the namespaces of that scope ([`fence`]).
    pub fn operator_kubeconfig(&self, dir: &Path, scope: &str) -> PathBuf {
        self.user_kubeconfig(dir, &fence::operator_user(scope), &fence::OPERATOR_GROUPS)
    }
}

/// Polls `f` every 100 ms until it yields a value; fails the test after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(
            start.elapsed() < timeout,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The chart's CRDs and admission policies, as `helm install` with default
/// values would create them: rendered with `helm template` (so the e2e suite
/// runs against what users install), then applied with server-side apply.
fn chart_install_objects() -> Vec<Value> {
    let objects = tools::chart_objects("gatehouse-system", &[]);
    let wanted = [
        "CustomResourceDefinition",
        "ValidatingAdmissionPolicy",
        "ValidatingAdmissionPolicyBinding",
    ];
    let picked: Vec<Value> = objects
        .into_iter()
        .filter(|o| wanted.contains(&o["kind"].as_str().unwrap_or_default()))
        .collect();
    for kind in wanted {
        assert!(
            picked.iter().any(|o| o["kind"] == kind),
            "the chart rendered no {kind}"
        );
    }
    picked
}

fn apply_params() -> PatchParams {
    PatchParams::apply("gatehouse-e2e").force()
}

async fn install_crds(admin: &Client, objects: &[Value]) {
    let api: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for doc in objects.iter().filter(|o| o["kind"] == "CustomResourceDefinition") {
        let crd: CustomResourceDefinition = serde_json::from_value(doc.clone()).unwrap();
        let name = crd.name_any();
        api.patch(&name, &apply_params(), &Patch::Apply(&crd))
            .await
            .unwrap();
        eventually(
            &format!("CRD {name} established"),
            Duration::from_secs(30),
            || {
                let api = api.clone();
                let name = name.clone();
                async move {
                    let crd = api.get(&name).await.ok()?;
                    let established = crd
                        .status?
                        .conditions?
                        .iter()
                        .any(|c| c.type_ == "Established" && c.status == "True");
                    established.then_some(())
                }
            },
        )
        .await;
    }
}

/// The chart's admission policies (copies of config/admission/*.yaml).
async fn install_admission_policies(admin: &Client, objects: &[Value]) {
    for doc in objects {
        match doc["kind"].as_str() {
            Some("ValidatingAdmissionPolicy") => apply::<ValidatingAdmissionPolicy>(admin, doc).await,
            Some("ValidatingAdmissionPolicyBinding") => {
                apply::<ValidatingAdmissionPolicyBinding>(admin, doc).await
            }
            _ => {}
        }
    }
}

/// Server-side apply of the cluster-scoped object `doc`, typed as `K`.
pub async fn apply<K>(admin: &Client, doc: &Value)
where
    K: Resource<Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::Serialize
        + serde::de::DeserializeOwned,
    K::DynamicType: Default,
{
    let object: K = serde_json::from_value(doc.clone()).unwrap();
    Api::<K>::all(admin.clone())
        .patch(&object.name_any(), &apply_params(), &Patch::Apply(&object))
        .await
        .unwrap();
}

/// RBAC for the impersonated people: request and review, nothing else.
async fn grant_people_access(admin: &Client) {
    let role = json!({
        "metadata": {"name": "gatehouse-e2e-people"},
        "rules": [
            {"apiGroups": ["gatehouse.dev"], "resources": ["approvalrequests", "accessreviews"], "verbs": ["create", "get", "list", "watch", "delete"]},
            {"apiGroups": ["gatehouse.dev"], "resources": ["accesspolicies"], "verbs": ["get", "list", "watch"]}
        ]
    });
    let subjects: Vec<Value> = ["developers", "sre", "security"]
        .iter()
        .map(|g| json!({"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"}))
        .collect();
    let binding = json!({
        "metadata": {"name": "gatehouse-e2e-people"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "gatehouse-e2e-people"},
        "subjects": subjects
    });
    apply::<ClusterRole>(admin, &role).await;
    apply::<ClusterRoleBinding>(admin, &binding).await;
}
