//! End-to-end access certification: the operator binary, with exactly the
//! chart's RBAC (certification.remediation on), against a real API server.
//!
//! One scenario in one namespace (`gh-e2e-certify-RUN`, which is also the
//! campaigns' review namespace), one operator, campaigns scoped by a label on
//! the bindings they review. Steps, in order:
//!
//! 1. a quarterly review in two levels of bindings made by hand, by Helm and by
//!    Argo CD, a stale ServiceAccount binding, a binding of three subjects and a
//!    cluster-admin ClusterRoleBinding: a reassign, a revoke that removes one
//!    subject of three, tools' bindings left alone (ManagedExternally, then Done
//!    when the chart drops the subject), a binding deleted and re-created during
//!    the run left alone, cluster-admin needing an admin (the command works), a
//!    revoke converted to a JIT policy under which the same role is then granted,
//!    and the report;
//! 2. an operator killed in the middle of a launch of 400 items, and a decision
//!    made while it is down: no duplicate, no lost decision;
//! 3. an unreviewed item at the due time of a campaign with `onNoDecision: Revoke`.

use std::{path::PathBuf, time::Duration};

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview, ApprovalRequest, Phase};
use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use serde_json::{json, Value};

mod support;
use support::{
    cluster::eventually,
    operator::Operator,
    scene::{PluginUser, Scene},
    tools,
};

const WAIT: Duration = Duration::from_secs(60);
/// Reviewers: namespace owners (payments-leads) first, then security.
const OWNERS: &str = "payments-leads";

struct World {
    scene: Scene,
    ns: String,
    sa_kubeconfig: PathBuf,
    operator: Option<Operator>,
    lena: PluginUser,
    olaf: PluginUser,
    sam: PluginUser,
}

impl World {
    fn admin(&self) -> Client {
        self.scene.admin.clone()
    }

    async fn start_operator(&mut self) {
        let args = [
            "--leader-election=false",
            "--certification-remediation=true",
            // One create at a time: a launch of 400 items lasts long enough to
            // kill the operator in the middle of it.
            "--certification-launch-parallelism",
            "1",
        ];
        let operator = self
            .scene
            .start_operator(&self.sa_kubeconfig, "certify", &args)
            .await;
        self.operator = Some(operator);
    }

    /// A RoleBinding in the scenario's namespace (a ClusterRoleBinding when
    /// `cluster`), labelled for the campaign `tag`.
    async fn binding(&self, tag: &str, name: &str, role: &str, subjects: Value, meta: Value) -> String {
        let mut metadata = json!({"name": name, "labels": {"e2e-campaign": self.label(tag)}});
        for (k, v) in meta.as_object().into_iter().flatten() {
            for (kk, vv) in v.as_object().into_iter().flatten() {
                metadata[k][kk] = vv.clone();
            }
        }
        let body = json!({"metadata": metadata, "subjects": subjects,
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role}});
        if role == "cluster-admin" {
            let crb: ClusterRoleBinding = serde_json::from_value(body).unwrap();
            let made = Api::<ClusterRoleBinding>::all(self.admin())
                .create(&PostParams::default(), &crb)
                .await
                .unwrap();
            return made.uid().unwrap();
        }
        let rb: RoleBinding = serde_json::from_value(body).unwrap();
        let made = self
            .role_bindings()
            .create(&PostParams::default(), &rb)
            .await
            .unwrap();
        made.uid().unwrap()
    }

    /// The label value of the bindings of campaign `tag` in this run (bindings
    /// of earlier runs may be left on the cluster).
    fn label(&self, tag: &str) -> String {
        format!("{tag}-{}", self.ns)
    }

    fn role_bindings(&self) -> Api<RoleBinding> {
        Api::namespaced(self.admin(), &self.ns)
    }

    fn items(&self) -> Api<AccessCertification> {
        Api::namespaced(self.admin(), &self.ns)
    }

    /// A campaign without a schedule (it runs once, now), reviewing the bindings
    /// labelled `tag`, its items in the scenario's namespace.
    async fn campaign(&self, tag: &str, spec: Value) -> String {
        let name = format!("{}-{tag}", self.ns);
        let mut spec = spec;
        spec["reviewNamespace"] = json!(self.ns);
        spec["scope"] = json!({"bindingSelector": {"matchLabels": {"e2e-campaign": self.label(tag)}}});
        let c: AccessCampaign = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap();
        Api::<AccessCampaign>::all(self.admin())
            .create(&PostParams::default(), &c)
            .await
            .unwrap();
        name
    }

    async fn launched(&self, campaign: &str, items: usize) -> Vec<AccessCertification> {
        let api = Api::<AccessCampaign>::all(self.admin());
        eventually(&format!("{campaign} to launch {items} items"), WAIT, || async {
            let c = api.get(campaign).await.ok()?;
            let run = c.status?.runs.last().cloned()?;
            run.launched_at?;
            (run.items as usize == items).then_some(())
        })
        .await;
        let label = format!("gatehouse.dev/campaign={campaign}");
        let mut all = self
            .items()
            .list(&ListParams::default().labels(&label))
            .await
            .unwrap()
            .items;
        all.sort_by_key(|i| i.name_any());
        all
    }

    /// The item of `subject` through `binding`, once it has a status.
    async fn item(&self, campaign: &str, binding: &str, subject: &str) -> AccessCertification {
        let label = format!("gatehouse.dev/campaign={campaign}");
        let api = self.items();
        eventually(
            &format!("the item of {subject} through {binding}"),
            WAIT,
            || async {
                let list = api.list(&ListParams::default().labels(&label)).await.ok()?;
                list.items.into_iter().find(|i| {
                    i.spec.binding.name == binding && i.spec.subject.name == subject && i.status.is_some()
                })
            },
        )
        .await
    }

    /// Waits until the item's status satisfies `done`.
    async fn item_until(
        &self,
        name: &str,
        what: &str,
        done: impl Fn(&AccessCertification) -> bool,
    ) -> AccessCertification {
        let api = self.items();
        eventually(&format!("{name}: {what}"), WAIT, || async {
            api.get(name).await.ok().filter(|i| done(i))
        })
        .await
    }

    fn subjects(rb: &RoleBinding) -> Vec<String> {
        rb.subjects.iter().flatten().map(|s| s.name.clone()).collect()
    }
}

/// `who` runs the plugin and must succeed.
fn ok(who: &PluginUser, args: &[&str]) -> String {
    let (code, out) = who.run_args(args);
    assert_eq!(code, Some(0), "kubectl gatehouse {}: {out}", args.join(" "));
    out
}

fn state(item: &AccessCertification) -> Option<String> {
    item.status
        .as_ref()?
        .remediation
        .as_ref()
        .map(|r| r.state.to_string())
}

/// RBAC: the chart's operator RBAC, renamed for this scenario, with remediation;
/// and the reviewers' right to read items and campaigns and record reviews.
async fn install_rbac(scene: &Scene) -> Vec<(String, String)> {
    let ns = &scene.ns;
    let mut objects = tools::chart_objects(
        ns,
        &[
            "--show-only",
            "templates/rbac.yaml",
            "--set",
            "certification.remediation=true",
        ],
    );
    let unique = format!("gatehouse-operator-{ns}");
    let mut cluster_scoped = Vec::new();
    for o in &mut objects {
        if o["metadata"]["name"] == "gatehouse-operator" {
            o["metadata"]["name"] = json!(unique);
            cluster_scoped.push((o["kind"].as_str().unwrap().to_string(), unique.clone()));
        }
        if o["roleRef"]["name"] == "gatehouse-operator" {
            o["roleRef"]["name"] = json!(unique);
        }
    }
    let reviewers = format!("gatehouse-e2e-certify-reviewers-{ns}");
    objects.push(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": reviewers},
        "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["accessreviews"], "verbs": ["create", "get", "list", "watch"]},
                  {"apiGroups": ["gatehouse.dev"], "resources": ["accesscertifications", "accesscampaigns", "approvalrequests", "accesspolicies"],
                   "verbs": ["get", "list", "watch"]}]}));
    let groups: Vec<Value> = [OWNERS, "ops-leads", "security", "developers"]
        .iter()
        .map(|g| json!({"kind": "Group", "name": g, "apiGroup": "rbac.authorization.k8s.io"}))
        .collect();
    objects.push(
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
        "metadata": {"name": reviewers},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reviewers},
        "subjects": groups}),
    );
    cluster_scoped.push(("ClusterRole".into(), reviewers.clone()));
    cluster_scoped.push(("ClusterRoleBinding".into(), reviewers));
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects}).to_string();
    let kubeconfig = scene.cluster.kubeconfig.to_str().unwrap();
    let applied = tools::run(
        "kubectl",
        &["--kubeconfig", kubeconfig, "apply", "--server-side", "-f", "-"],
        Some(&list),
    );
    assert!(applied.ok, "applying RBAC: {}", applied.stderr);
    cluster_scoped
}

#[tokio::test]
async fn access_certification_on_a_real_api_server() {
    let Some(scene) = Scene::with_own_operators("certify").await else {
        return;
    };
    let ns = scene.ns.clone();
    // The namespace's owners review its bindings first.
    let owners = json!({"metadata": {"annotations": {"gatehouse.dev/owners": format!("group:{OWNERS}")}}});
    Api::<Namespace>::all(scene.admin.clone())
        .patch(&ns, &PatchParams::default(), &Patch::Merge(&owners))
        .await
        .unwrap();
    let cluster_scoped = install_rbac(&scene).await;
    let sa_user = format!("system:serviceaccount:{ns}:gatehouse");
    let sa_groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
    ];
    let mut world = World {
        sa_kubeconfig: scene.user_kubeconfig(&sa_user, &[&sa_groups[0], &sa_groups[1]]),
        lena: scene.plugin_user("lena", &[OWNERS]),
        olaf: scene.plugin_user("olaf", &["ops-leads"]),
        sam: scene.plugin_user("sam", &["security"]),
        operator: None,
        ns,
        scene,
    };
    world.start_operator().await;

    let quarterly = quarterly_review(&world).await;
    let bulk = restart_mid_launch(&mut world).await;
    let due = unreviewed_at_due_time(&world).await;

    for campaign in [quarterly, bulk, due] {
        let _ = Api::<AccessCampaign>::all(world.admin())
            .delete(&campaign, &DeleteParams::default())
            .await;
    }
    let admin = world.admin();
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete(&format!("ops-admin-{}", world.ns), &DeleteParams::default())
        .await;
    world.operator = None;
    world.scene.finish().await;
    for (kind, name) in cluster_scoped {
        let dp = DeleteParams::default();
        let _ = match kind.as_str() {
            "ClusterRole" => Api::<ClusterRole>::all(admin.clone())
                .delete(&name, &dp)
                .await
                .map(drop),
            _ => Api::<ClusterRoleBinding>::all(admin.clone())
                .delete(&name, &dp)
                .await
                .map(drop),
        };
    }
}

/// Step 1; returns the campaign's name.
async fn quarterly_review(w: &World) -> String {
    let user = |n: &str| json!({"kind": "User", "name": n, "apiGroup": "rbac.authorization.k8s.io"});
    let none = json!({});
    w.binding("q", "devs-edit", "edit", json!([user("bob"), user("carol"), {"kind": "Group", "name": "payments-devs", "apiGroup": "rbac.authorization.k8s.io"}]), none.clone()).await;
    w.binding("q", "ledger", "view", json!([user("dave")]),
        json!({"labels": {"app.kubernetes.io/managed-by": "Helm"}, "annotations": {"meta.helm.sh/release-name": "ledger"}})).await;
    w.binding("q", "shop", "view", json!([user("erin")]),
        json!({"annotations": {"argocd.argoproj.io/tracking-id": format!("shop:rbac.authorization.k8s.io/RoleBinding:{}/shop", w.ns)}})).await;
    w.binding(
        "q",
        "ci-view",
        "view",
        json!([{"kind": "ServiceAccount", "name": "old-ci", "namespace": w.ns}]),
        none.clone(),
    )
    .await;
    let rotated_uid = w
        .binding("q", "rotated", "view", json!([user("hank")]), none.clone())
        .await;
    w.binding("q", "gina-view", "view", json!([user("gina")]), none.clone())
        .await;
    let crb = format!("ops-admin-{}", w.ns);
    w.binding(
        "q",
        &crb,
        "cluster-admin",
        json!([user("frank"), user("ivan")]),
        none,
    )
    .await;
    let policy = format!("{}-gina-view", w.ns);
    w.scene
        .create_policy(
            "gina-view",
            json!({"requesters": {"users": ["gina"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
            "namespaces": {"names": [w.ns]}, "duration": {"default": "1h", "max": "2h"},
            "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;

    let campaign = w
        .campaign(
            "q",
            json!({
                "duration": "1h", "remediation": "Automatic", "justification": "RequireForRevoke",
                "reviewers": {"levels": [{"name": "owners", "namespaceOwners": true, "groups": ["ops-leads"]},
                                         {"name": "security", "groups": ["security"]}]}
            }),
        )
        .await;
    // bob, carol, payments-devs, dave, erin, old-ci, hank, gina, frank, ivan.
    let items = w.launched(&campaign, 10).await;
    let mut keys: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.spec.binding.name.clone(), i.spec.subject.name.clone()))
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 10, "one item per binding and subject: {keys:?}");

    // The stale ServiceAccount binding is recommended for revocation, in words.
    let ci = w.item(&campaign, "ci-view", "old-ci").await;
    let s = ci.status.clone().unwrap();
    assert_eq!(s.recommendation.to_string(), "Revoke");
    assert!(
        s.reasons.iter().any(|r| r.message.contains("does not exist")),
        "{:?}",
        s.reasons
    );
    let listed = ok(
        &w.lena,
        &[
            "certify",
            "list",
            "--campaign",
            &campaign,
            "--recommendation",
            "revoke",
        ],
    );
    assert!(listed.contains(&ci.name_any()), "{listed}");

    // A revoke that removes one subject of three, decided in two levels.
    let carol = w.item(&campaign, "devs-edit", "carol").await;
    let out = ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &carol.name_any(),
            "-m",
            "left the team",
            "--timeout",
            "60s",
        ],
    );
    assert!(
        out.contains("level owners decided Revoke; level security opens"),
        "{out}"
    );
    let (code, out) = w.lena.run_args(&[
        "certify",
        "revoke",
        &carol.name_any(),
        "-m",
        "again",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, Some(4), "lena decided level one already: {out}");
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &carol.name_any(),
            "-m",
            "confirmed",
            "--timeout",
            "60s",
        ],
    );
    w.item_until(&carol.name_any(), "carol removed", |i| {
        state(i).as_deref() == Some("Done")
    })
    .await;
    let devs = w.role_bindings().get("devs-edit").await.unwrap();
    assert_eq!(
        World::subjects(&devs),
        ["bob", "payments-devs"],
        "exactly carol went"
    );

    // A reassign: lena hands bob's item to olaf, who decides it; sam keeps it.
    let bob = w.item(&campaign, "devs-edit", "bob").await;
    ok(
        &w.lena,
        &[
            "certify",
            "reassign",
            &bob.name_any(),
            "--to",
            "user:olaf",
            "-m",
            "olaf knows bob's work",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.olaf,
        &[
            "certify",
            "approve",
            &bob.name_any(),
            "-m",
            "still on the team",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &["certify", "approve", &bob.name_any(), "--timeout", "60s"],
    );
    let bob = w
        .item_until(&bob.name_any(), "bob kept", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.decision.to_string() == "Approved")
        })
        .await;
    let levels = bob.status.unwrap().levels;
    assert_eq!(levels[0].reviewed_by.as_deref(), Some("olaf"));
    assert_eq!(
        levels[0].reassigned_to.as_ref().map(|p| p.users.clone()),
        Some(vec!["olaf".to_string()])
    );

    tools_bindings_are_left_alone(w, &campaign).await;
    recreated_binding_is_not_touched(w, &campaign, &rotated_uid).await;
    cluster_admin_needs_an_admin(w, &campaign, &crb).await;
    converted_to_jit_access(w, &campaign, &policy).await;

    let (code, csv) = w.sam.run_args(&["certify", "report", &campaign, "-o", "csv"]);
    assert_eq!(code, Some(0), "{csv}");
    assert!(csv.contains("SHA-256 of the report: "), "{csv}");
    assert!(
        csv.contains("sam Revoke at level security (counted: Decided): confirmed"),
        "{csv}"
    );
    let report = w.scene.dir.join("certification-report.csv");
    std::fs::write(&report, &csv).unwrap();
    eprintln!(
        "e2e: the report of the quarterly campaign is in {}",
        report.display()
    );
    campaign
}

/// Helm's and Argo CD's bindings: revoked, left alone, named; Done when the tool drops the subject.
async fn tools_bindings_are_left_alone(w: &World, campaign: &str) {
    for (binding, subject, tool) in [
        ("ledger", "dave", "Helm ledger"),
        ("shop", "erin", "Argo CD shop"),
    ] {
        let item = w.item(campaign, binding, subject).await;
        ok(
            &w.lena,
            &[
                "certify",
                "revoke",
                &item.name_any(),
                "-m",
                "not needed",
                "--timeout",
                "60s",
            ],
        );
        ok(
            &w.sam,
            &[
                "certify",
                "revoke",
                &item.name_any(),
                "-m",
                "agreed",
                "--timeout",
                "60s",
            ],
        );
        let item = w
            .item_until(&item.name_any(), "managed externally", |i| {
                state(i).as_deref() == Some("ManagedExternally")
            })
            .await;
        let message = item.status.unwrap().remediation.unwrap().message;
        assert!(message.starts_with(&format!("managed by {tool}: ")), "{message}");
        assert!(
            message.contains(&format!("marks this Done once User {subject} is gone")),
            "{message}"
        );
        assert!(
            w.role_bindings().get(binding).await.is_ok(),
            "{binding} untouched"
        );
    }
    // The next `helm upgrade` drops dave: the item turns Done by itself.
    let drop_dave =
        json!({"subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}]});
    w.role_bindings()
        .patch("ledger", &PatchParams::default(), &Patch::Merge(&drop_dave))
        .await
        .unwrap();
    let dave = w.item(campaign, "ledger", "dave").await;
    w.item_until(&dave.name_any(), "Done once dave is gone", |i| {
        state(i).as_deref() == Some("Done")
    })
    .await;
}

/// A binding deleted and re-created with the same name during the run is another grant.
async fn recreated_binding_is_not_touched(w: &World, campaign: &str, old_uid: &str) {
    let hank = w.item(campaign, "rotated", "hank").await;
    let old = w.role_bindings().get("rotated").await.unwrap();
    w.role_bindings()
        .delete("rotated", &DeleteParams::default())
        .await
        .unwrap();
    let mut again = old.clone();
    again.metadata = kube::api::ObjectMeta {
        name: old.metadata.name.clone(),
        labels: old.metadata.labels.clone(),
        ..Default::default()
    };
    let again = w
        .role_bindings()
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    assert_ne!(again.uid().as_deref(), Some(old_uid));
    ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &hank.name_any(),
            "-m",
            "x",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &hank.name_any(),
            "-m",
            "y",
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&hank.name_any(), "Gone", |i| state(i).as_deref() == Some("Gone"))
        .await;
    let message = item.status.unwrap().remediation.unwrap().message;
    assert!(message.contains("was re-created"), "{message}");
    assert_eq!(
        World::subjects(&w.role_bindings().get("rotated").await.unwrap()),
        ["hank"]
    );
}

/// cluster-admin: the operator may not bind it, so may not edit its binding; the command works.
async fn cluster_admin_needs_an_admin(w: &World, campaign: &str, crb: &str) {
    let frank = w.item(campaign, crb, "frank").await;
    ok(
        &w.olaf,
        &[
            "certify",
            "revoke",
            &frank.name_any(),
            "-m",
            "not on call",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &frank.name_any(),
            "-m",
            "ok",
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&frank.name_any(), "a command for an admin", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.remediation.as_ref())
                .is_some_and(|r| r.command.is_some())
        })
        .await;
    let rem = item.status.unwrap().remediation.unwrap();
    assert_eq!(rem.state.to_string(), "Pending");
    assert!(
        rem.message
            .contains("ClusterRole/cluster-admin is not among its grantable roles"),
        "{}",
        rem.message
    );
    let status = ok(&w.sam, &["certify", "status", &frank.name_any()]);
    assert!(
        status.contains("run: kubectl patch clusterrolebinding"),
        "{status}"
    );
    let command = rem.command.unwrap();
    let kubeconfig = w.scene.cluster.kubeconfig.to_str().unwrap();
    let tools_bin = tools::bin_dir().to_str().unwrap().to_string();
    let ran = std::process::Command::new("bash")
        .args(["-c", &command])
        .env("KUBECONFIG", kubeconfig)
        .env(
            "PATH",
            format!("{tools_bin}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    w.item_until(&frank.name_any(), "Done", |i| state(i).as_deref() == Some("Done"))
        .await;
    let left = Api::<ClusterRoleBinding>::all(w.admin()).get(crb).await.unwrap();
    let names: Vec<String> = left.subjects.iter().flatten().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["ivan"]);
}

/// Revoke with convertTo: the standing binding goes, and gina gets view just in time.
async fn converted_to_jit_access(w: &World, campaign: &str, policy: &str) {
    let gina = w.item(campaign, "gina-view", "gina").await;
    ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &gina.name_any(),
            "-m",
            "ask when needed",
            "--convert-to",
            policy,
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &gina.name_any(),
            "-m",
            "agreed",
            "--convert-to",
            policy,
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&gina.name_any(), "binding deleted", |i| {
            state(i).as_deref() == Some("Done")
        })
        .await;
    assert_eq!(item.status.unwrap().converted_to.as_deref(), Some(policy));
    assert!(
        w.role_bindings().get_opt("gina-view").await.unwrap().is_none(),
        "her only subject: deleted"
    );

    let request: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "gina-view-jit", "namespace": w.ns},
        "spec": {"requester": {"username": "gina", "groups": ["developers"]}, "policy": policy,
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": "30m", "reason": "incident"}
    }))
    .unwrap();
    let gina_client = w.scene.cluster.as_user("gina", &["developers"]);
    let req = Api::<ApprovalRequest>::namespaced(gina_client, &w.ns)
        .create(&PostParams::default(), &request)
        .await
        .unwrap();
    w.scene.phase_becomes("gina-view-jit", Phase::Pending).await;
    w.scene.approve(&req).await;
    let grant = w.scene.active_grant("gina-view-jit").await;
    let rb = w.role_bindings().get(&grant).await.unwrap();
    assert_eq!(World::subjects(&rb), ["gina"]);
}

/// Step 2; returns the campaign's name.
async fn restart_mid_launch(w: &mut World) -> String {
    const COUNT: usize = 400;
    for n in 0..COUNT {
        let subject = json!([{"kind": "User", "name": format!("user-{n:03}"), "apiGroup": "rbac.authorization.k8s.io"}]);
        w.binding("bulk", &format!("bulk-{n:03}"), "view", subject, json!({}))
            .await;
    }
    let campaign = w
        .campaign(
            "bulk",
            json!({"duration": "1h", "reviewers": {"levels": [{"name": "owners", "namespaceOwners": true}]}}),
        )
        .await;
    let label = format!("gatehouse.dev/campaign={campaign}");
    let items = w.items();
    let first = eventually("the launch to be under way", WAIT, || async {
        let list = items.list(&ListParams::default().labels(&label)).await.ok()?;
        list.items.into_iter().next()
    })
    .await;
    w.operator = None; // SIGKILL, mid-launch
    let runs = Api::<AccessCampaign>::all(w.admin())
        .get(&campaign)
        .await
        .unwrap()
        .status
        .unwrap()
        .runs;
    assert!(
        runs[0].launched_at.is_none(),
        "killed before the launch finished: {runs:?}"
    );
    let partial = items
        .list(&ListParams::default().labels(&label))
        .await
        .unwrap()
        .items
        .len();
    assert!(partial < COUNT, "{partial} of {COUNT} items when killed");

    // A decision while the operator is down.
    let review: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "lena-while-down", "namespace": w.ns},
        "spec": {"certification": {"name": first.name_any(), "uid": first.uid().unwrap()}, "decision": "Approve",
                 "reviewer": {"username": "lena", "groups": [OWNERS, "system:authenticated"]}}
    }))
    .unwrap();
    Api::<AccessReview>::namespaced(w.scene.cluster.as_user("lena", &[OWNERS]), &w.ns)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();

    w.start_operator().await;
    let all = w.launched(&campaign, COUNT).await;
    let mut keys: Vec<(String, String)> = all
        .iter()
        .map(|i| (i.spec.binding.uid.clone(), i.spec.subject.name.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (all.len(), keys.len()),
        (COUNT, COUNT),
        "no item twice after the restart"
    );
    let decided = w
        .item_until(&first.name_any(), "lena's decision counted", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.decision.to_string() == "Approved")
        })
        .await;
    assert_eq!(
        decided.status.unwrap().levels[0].reviewed_by.as_deref(),
        Some("lena")
    );
    eprintln!("e2e: killed with {partial} of {COUNT} items created; the restart created the rest once");
    campaign
}

/// Step 3; returns the campaign's name.
async fn unreviewed_at_due_time(w: &World) -> String {
    let judy = json!([{"kind": "User", "name": "judy", "apiGroup": "rbac.authorization.k8s.io"}]);
    w.binding("due", "temp-edit", "edit", judy, json!({})).await;
    let campaign = w
        .campaign(
            "due",
            json!({"duration": "20s", "onNoDecision": "Revoke", "remediation": "Automatic",
            "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]}}),
        )
        .await;
    let item = w.launched(&campaign, 1).await.remove(0);
    let closed = w
        .item_until(&item.name_any(), "revoked at the due time", |i| {
            state(i).as_deref() == Some("Done")
        })
        .await;
    let s = closed.status.unwrap();
    assert_eq!(
        (s.decision.to_string(), s.outcome.to_string()),
        ("Unreviewed".into(), "Remove".into())
    );
    assert_eq!(
        s.closed_by.map(|c| format!("{c:?}")).as_deref(),
        Some("NoDecisionRevoke")
    );
    assert!(w.role_bindings().get_opt("temp-edit").await.unwrap().is_none());
    let api = Api::<AccessCampaign>::all(w.admin());
    let run = eventually("the run to complete", WAIT, || async {
        let run = api.get(&campaign).await.ok()?.status?.runs.pop()?;
        run.completed_at.map(|_| run)
    })
    .await;
    assert_eq!((run.unreviewed, run.remediated, run.revoked), (1, 1, 0));
    campaign
}
