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
//! 3. an unreviewed item at the due time of a campaign with `onNoDecision: Revoke`;
//! 4. a run past its retention: its items and their reviews deleted, the run
//!    gone from `status.runs`, and not started again.

use std::{path::PathBuf, time::Duration};

use gatehouse::api::{AccessCampaign, AccessCertification};
use k8s_openapi::api::{
    core::v1::Namespace,
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    Client, ResourceExt,
};
use serde_json::{json, Value};

#[path = "../support/mod.rs"]
mod support;

mod launch;
mod quarterly;

use launch::{restart_mid_launch, retention_ends, unreviewed_at_due_time};
use quarterly::quarterly_review;
use support::{
    cluster::eventually,
    operator::Operator,
    scene::{PluginUser, Scene},
    tools,
};

pub(crate) const WAIT: Duration = Duration::from_secs(60);
/// Reviewers: namespace owners (payments-leads) first, then security.
pub(crate) const OWNERS: &str = "payments-leads";

pub(crate) struct World {
    pub(crate) scene: Scene,
    pub(crate) ns: String,
    pub(crate) sa_kubeconfig: PathBuf,
    pub(crate) operator: Option<Operator>,
    pub(crate) lena: PluginUser,
    pub(crate) olaf: PluginUser,
    pub(crate) sam: PluginUser,
}

impl World {
    pub(crate) fn admin(&self) -> Client {
        self.scene.admin.clone()
    }

    pub(crate) async fn start_operator(&mut self) {
        let args = [
            "--leader-election=false",
            "--certification-remediation=true",
            // Steps 3 and 4 fall due within seconds (one hour by default).
            "--certification-min-review-window=5s",
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
    pub(crate) async fn binding(
        &self,
        tag: &str,
        name: &str,
        role: &str,
        subjects: Value,
        meta: Value,
    ) -> String {
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
    pub(crate) fn label(&self, tag: &str) -> String {
        format!("{tag}-{}", self.ns)
    }

    pub(crate) fn role_bindings(&self) -> Api<RoleBinding> {
        Api::namespaced(self.admin(), &self.ns)
    }

    pub(crate) fn items(&self) -> Api<AccessCertification> {
        Api::namespaced(self.admin(), &self.ns)
    }

    /// A campaign without a schedule (it runs once, now), reviewing the bindings
    /// labelled `tag`, its items in the scenario's namespace.
    pub(crate) async fn campaign(&self, tag: &str, spec: Value) -> String {
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

    pub(crate) async fn launched(&self, campaign: &str, items: usize) -> Vec<AccessCertification> {
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
    pub(crate) async fn item(&self, campaign: &str, binding: &str, subject: &str) -> AccessCertification {
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
    pub(crate) async fn item_until(
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

    pub(crate) fn subjects(rb: &RoleBinding) -> Vec<String> {
        rb.subjects.iter().flatten().map(|s| s.name.clone()).collect()
    }
}

/// `who` runs the plugin and must succeed.
pub(crate) fn ok(who: &PluginUser, args: &[&str]) -> String {
    let (code, out) = who.run_args(args);
    assert_eq!(code, Some(0), "kubectl gatehouse {}: {out}", args.join(" "));
    out
}

pub(crate) fn state(item: &AccessCertification) -> Option<String> {
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
    let kept = retention_ends(&world).await;

    for campaign in [quarterly, bulk, due, kept] {
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
