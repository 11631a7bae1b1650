//! One end-to-end scenario's world: a namespace of its own (`gh-e2e-NAME-RUN`),
//! a policy for it, clients for the people in it, and an operator serving it.
//!
//! Scenarios run in parallel in one test binary. Most share one operator
//! process, started on first use; a scenario about the operator itself (leader
//! election, restricted RBAC) starts its own. Each operator acts only in the
//! namespaces of its scope ([`super::fence`]), so they never compete.

use std::{
    cell::RefCell,
    path::{Path, PathBuf},
    process::Command,
    time::Duration,
};

use gatehouse::api::{AccessPolicy, AccessReview, ApprovalRequest, Phase};
use k8s_openapi::api::{core::v1::Namespace, rbac::v1::RoleBinding};
use kube::{
    api::{Api, DeleteParams, ListParams, PostParams},
    Client, ResourceExt,
};
use serde_json::{json, Value};
use tokio::sync::Mutex;

use super::{
    cluster::{eventually, Cluster},
    fence,
    operator::{http_get, tail, Operator},
};

/// The operator of the shared scenarios, started by the first of them.
static SHARED: Mutex<Option<Operator>> = Mutex::const_new(None);

enum Served {
    /// By the shared operator.
    Shared { port: u16, log: PathBuf },
    /// By operators the scenario starts ([`Scene::start_operator`]).
    Own { logs: RefCell<Vec<PathBuf>> },
}

pub struct Scene {
    pub cluster: &'static Cluster,
    pub ns: String,
    pub admin: Client,
    /// alice, in group developers: the requester.
    pub alice: Client,
    /// bob, in group sre: the reviewer.
    pub bob: Client,
    /// This scenario's kubeconfigs and operator logs.
    pub dir: PathBuf,
    /// The scope of the operators that may act here ([`super::fence`]).
    pub scope: String,
    policies: RefCell<Vec<String>>,
    served: Served,
}

impl Scene {
    /// A scenario served by the shared operator, or `None` to skip (no cluster).
    pub async fn shared(name: &str) -> Option<Scene> {
        let cluster = Cluster::get().await?;
        let scope = format!("shared-{}", cluster.run);
        let (port, log) = {
            let mut slot = SHARED.lock().await;
            if let Some(running) = slot.as_mut() {
                assert!(
                    running.is_running(),
                    "the shared operator died; its log ends with:\n{}",
                    tail(&running.log, 40)
                );
            } else {
                let kubeconfig = cluster.operator_kubeconfig(&cluster.dir, &scope);
                // No notifications: channels are cluster-wide, and a scenario about
                // them runs an operator of its own.
                let args = ["--leader-election=false", "--notifications=false"];
                *slot = Some(Operator::start(&kubeconfig, "shared", &args, &cluster.dir).await);
            }
            let operator = slot.as_ref().unwrap();
            (operator.port, operator.log.clone())
        };
        let served = Served::Shared { port, log };
        Some(Scene::new(cluster, name, Some(scope), served).await)
    }

    /// A scenario that starts its own operators ([`Scene::start_operator`]), or
    /// `None` to skip (no cluster). Their scope is the scenario's namespace.
    pub async fn with_own_operators(name: &str) -> Option<Scene> {
        let cluster = Cluster::get().await?;
        let served = Served::Own {
            logs: RefCell::default(),
        };
        Some(Scene::new(cluster, name, None, served).await)
    }

    async fn new(cluster: &'static Cluster, name: &str, scope: Option<String>, served: Served) -> Scene {
        let ns = format!("gh-e2e-{name}-{}", cluster.run);
        let scope = scope.unwrap_or_else(|| ns.clone());
        let admin = cluster.admin();
        let namespace: Namespace = serde_json::from_value(json!({
            "metadata": {"name": ns, "labels": {fence::LABEL: scope}}
        }))
        .unwrap();
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap();
        let scene = Scene {
            cluster,
            dir: cluster.dir.join(&ns),
            alice: cluster.as_user("alice", &["developers"]),
            bob: cluster.as_user("bob", &["sre"]),
            admin,
            ns,
            scope,
            policies: RefCell::default(),
            served,
        };
        scene
            .create_policy(
                "",
                json!({"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
                       "namespaces": {"names": [scene.ns]}, "duration": {"default": "1h", "max": "2h"},
                       "approval": {"reviewers": {"groups": ["sre"]}}, "grantees": {"groups": ["oncall"]},
                       "oneTime": {"images": ["registry.k8s.io/e2e-test-images/"]}}),
            )
            .await;
        scene
    }

    /// Creates the policy `NS` (or `NS-SUFFIX`) with `spec`; [`Scene::finish`] deletes it.
    pub async fn create_policy(&self, suffix: &str, spec: Value) {
        let name = if suffix.is_empty() {
            self.ns.clone()
        } else {
            format!("{}-{suffix}", self.ns)
        };
        let policy: AccessPolicy = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessPolicy",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        Api::<AccessPolicy>::all(self.admin.clone())
            .create(&PostParams::default(), &policy)
            .await
            .unwrap();
        self.policies.borrow_mut().push(name);
    }

    /// A kubeconfig for an operator of this scenario: admin rights, fenced to
    /// the scenario's namespace.
    pub fn operator_kubeconfig(&self) -> PathBuf {
        self.cluster.operator_kubeconfig(&self.dir, &self.scope)
    }

    /// Starts an operator for this scenario (see [`Operator::start`]).
    pub async fn start_operator(&self, kubeconfig: &Path, identity: &str, args: &[&str]) -> Operator {
        let Served::Own { logs, .. } = &self.served else {
            panic!("a shared scenario runs no operator of its own: use Scene::with_own_operators");
        };
        let operator = Operator::start(kubeconfig, identity, args, &self.dir).await;
        logs.borrow_mut().push(operator.log.clone());
        operator
    }

    /// GET `path` on the shared operator's HTTP port: the response body.
    pub async fn operator_get(&self, path: &str) -> String {
        let Served::Shared { port, .. } = &self.served else {
            panic!("no shared operator serves this scenario");
        };
        http_get(*port, path)
            .await
            .unwrap_or_else(|| panic!("GET {path}: the shared operator does not answer"))
    }

    /// A kubeconfig acting as `user` in `groups` (see [`Cluster::user_kubeconfig`]).
    pub fn user_kubeconfig(&self, user: &str, groups: &[&str]) -> PathBuf {
        self.cluster.user_kubeconfig(&self.dir, user, groups)
    }

    /// `user` in `groups` with the kubectl plugin.
    pub fn plugin_user(&self, user: &str, groups: &[&str]) -> PluginUser {
        PluginUser {
            kubeconfig: self.user_kubeconfig(user, groups),
        }
    }

    pub fn requests(&self, who: &Client) -> Api<ApprovalRequest> {
        Api::namespaced(who.clone(), &self.ns)
    }

    /// alice asks for `view` in the scenario's namespace for `duration`.
    pub async fn request(&self, name: &str, duration: &str) -> ApprovalRequest {
        let r: ApprovalRequest = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                     "role": {"kind": "ClusterRole", "name": "view"}, "duration": duration, "reason": "e2e"}
        }))
        .unwrap();
        self.requests(&self.alice)
            .create(&PostParams::default(), &r)
            .await
            .unwrap()
    }

    /// `user` (in `group`, acting through `who`) records `decision` on `req`;
    /// returns the review's name.
    pub async fn review(
        &self,
        who: &Client,
        user: &str,
        group: &str,
        req: &ApprovalRequest,
        decision: &str,
    ) -> String {
        let name = format!("{}-{}-{}", req.name_any(), user, decision.to_lowercase());
        let r: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {"request": {"name": req.name_any(), "uid": req.uid().unwrap()}, "decision": decision,
                     "reviewer": {"username": user, "groups": [group]}, "comment": "e2e"}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(who.clone(), &self.ns)
            .create(&PostParams::default(), &r)
            .await
            .unwrap();
        name
    }

    /// bob (sre) approves `req`.
    pub async fn approve(&self, req: &ApprovalRequest) -> String {
        self.review(&self.bob, "bob", "sre", req, "Approve").await
    }

    /// alice records `decision` (Cancel, Revoke, or her own Approve) on her request.
    pub async fn alice_decides(&self, req: &ApprovalRequest, decision: &str) -> String {
        self.review(&self.alice, "alice", "developers", req, decision)
            .await
    }

    /// The request once it is in `phase` (within 20 s).
    pub async fn phase_becomes(&self, name: &str, phase: Phase) -> ApprovalRequest {
        self.phase_within(name, phase, Duration::from_secs(20)).await
    }

    pub async fn phase_within(&self, name: &str, phase: Phase, timeout: Duration) -> ApprovalRequest {
        let api = self.requests(&self.admin);
        eventually(&format!("{name} to become {phase}"), timeout, || {
            let api = api.clone();
            async move {
                api.get(name)
                    .await
                    .ok()
                    .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == phase))
            }
        })
        .await
    }

    /// alice's request `name` for an hour, approved by bob, once Active: the
    /// request and the name of its binding.
    pub async fn granted(&self, name: &str) -> (ApprovalRequest, String) {
        let req = self.request(name, "1h").await;
        self.approve(&req).await;
        (req, self.active_grant(name).await)
    }

    /// The request's binding name, once it is Active.
    pub async fn active_grant(&self, name: &str) -> String {
        let active = self.phase_becomes(name, Phase::Active).await;
        active.status.unwrap().grant.unwrap().name
    }

    pub async fn binding(&self, name: &str) -> Option<RoleBinding> {
        Api::<RoleBinding>::namespaced(self.admin.clone(), &self.ns)
            .get_opt(name)
            .await
            .unwrap()
    }

    /// Deletes the namespace and the policies, and waits until the requests in
    /// it are gone: an operator still runs, so its finalizers on them are
    /// released. What remains is the namespace controller's business (about
    /// 5 s even for an empty namespace); [`Scene::finish_until_namespace_gone`]
    /// waits for that too.
    pub async fn finish(self) {
        self.end(false).await;
    }

    /// [`Scene::finish`], then waits until the namespace itself is gone.
    pub async fn finish_until_namespace_gone(self) {
        self.end(true).await;
    }

    async fn end(self, until_namespace_gone: bool) {
        // The scenario's own operators are gone by now; one more releases the
        // finalizers (the namespace may hold the Role an elected one renews its
        // Lease with, and no other operator may act here).
        let cleanup = match &self.served {
            Served::Own { .. } => {
                let args = ["--leader-election=false"];
                let identity = format!("{}-cleanup", self.ns);
                let kubeconfig = self.operator_kubeconfig();
                Some(self.start_operator(&kubeconfig, &identity, &args).await)
            }
            Served::Shared { .. } => None,
        };
        Api::<Namespace>::all(self.admin.clone())
            .delete(&self.ns, &DeleteParams::default())
            .await
            .unwrap();
        let policies = self.policies.borrow().clone();
        for policy in &policies {
            Api::<AccessPolicy>::all(self.admin.clone())
                .delete(policy, &DeleteParams::default())
                .await
                .unwrap();
        }
        let requests = self.requests(&self.admin);
        // The namespace controller does this (and after a fault it may first be
        // catching up with the API server itself): generous.
        eventually(
            "the requests of the deleted namespace to be gone",
            Duration::from_secs(120),
            || async {
                let left = requests.list(&ListParams::default()).await.ok()?;
                left.items.is_empty().then_some(())
            },
        )
        .await;
        if until_namespace_gone {
            let namespaces: Api<Namespace> = Api::all(self.admin.clone());
            eventually(
                "the test namespace to be deleted",
                Duration::from_secs(60),
                || async { namespaces.get_opt(&self.ns).await.ok()?.is_none().then_some(()) },
            )
            .await;
        }
        drop(cleanup);
    }
}

impl Drop for Scene {
    /// A failing scenario shows what the operator said about its namespace.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        let logs = match &self.served {
            Served::Shared { log, .. } => vec![log.clone()],
            Served::Own { logs, .. } => logs.borrow().clone(),
        };
        for log in logs {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let ours: Vec<&str> = text.lines().filter(|l| l.contains(&self.ns)).collect();
            let last = &ours[ours.len().saturating_sub(40)..];
            eprintln!(
                "--- {} (lines naming {}):\n{}",
                log.display(),
                self.ns,
                last.join("\n")
            );
        }
    }
}

/// Someone using `kubectl gatehouse` with a kubeconfig of their own.
pub struct PluginUser {
    kubeconfig: PathBuf,
}

impl PluginUser {
    /// Runs `kubectl-gatehouse` with `line` split at whitespace: its exit code
    /// and everything it printed.
    pub fn run(&self, line: &str) -> (Option<i32>, String) {
        self.run_args(&line.split_whitespace().collect::<Vec<_>>())
    }

    /// Runs `kubectl-gatehouse ARGS`: its exit code and everything it printed.
    pub fn run_args(&self, args: &[&str]) -> (Option<i32>, String) {
        let out = Command::new(env!("CARGO_BIN_EXE_kubectl-gatehouse"))
            .args(args)
            .env("KUBECONFIG", &self.kubeconfig)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        (out.status.code(), text)
    }
}
