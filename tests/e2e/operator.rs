//! The operator process itself: health and metrics, two replicas under leader
//! election, and the operator with exactly the chart's RBAC.

use std::time::Duration;

use gatehouse::api::{ApprovalRequest, Phase};
use k8s_openapi::api::{
    coordination::v1::Lease,
    rbac::v1::{ClusterRole, ClusterRoleBinding, RoleBinding},
};
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::support::{cluster::eventually, scene::Scene, tools};

#[tokio::test]
async fn the_operator_reports_health_and_metrics() {
    let Some(scene) = Scene::shared("metrics").await else {
        return;
    };
    // A transition to Active, so that its counter exists whatever ran before.
    scene.granted("alice-metrics").await;
    let health = scene.operator_get("/healthz").await;
    assert_eq!(health, "ok");
    let metrics = scene.operator_get("/metrics").await;
    for family in [
        "gatehouse_reconcile_duration_seconds",
        "gatehouse_phase_transitions_total",
        "gatehouse_expiry_lag_seconds",
    ] {
        assert!(metrics.contains(family), "/metrics lacks {family}:\n{metrics}");
    }
    assert!(
        metrics.contains("gatehouse_phase_transitions_total{phase=\"Active\"}"),
        "{metrics}"
    );
    scene.finish().await;
}

/// Two replicas with leader election: one holds the Lease and acts; when it
/// dies the other takes over and the work goes on.
#[tokio::test]
async fn when_the_leader_dies_the_other_replica_takes_over() {
    let Some(scene) = Scene::with_own_operators("failover").await else {
        return;
    };
    let kubeconfig = scene.operator_kubeconfig();
    // The scenario's namespace is both the operators' own (their Lease) and
    // where alice asks for access: a protected namespace, opened with the flag.
    let lease_args = [
        "--leader-election=true",
        "--lease-namespace",
        scene.ns.as_str(),
        "--allow-grants-in",
        scene.ns.as_str(),
        "--lease-name",
        "gatehouse-e2e",
    ];
    let mut replicas = Vec::new();
    for name in ["replica-a", "replica-b"] {
        replicas.push(scene.start_operator(&kubeconfig, name, &lease_args).await);
    }
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let holder = |other_than: Option<String>| {
        let leases = leases.clone();
        async move {
            let lease = leases.get_opt("gatehouse-e2e").await.ok()??;
            let holder = lease.spec?.holder_identity?;
            (Some(&holder) != other_than.as_ref()).then_some(holder)
        }
    };
    let leader = eventually("a replica to take the lease", Duration::from_secs(30), || {
        holder(None)
    })
    .await;
    scene.granted("alice-led").await;
    let position = replicas
        .iter()
        .position(|r| r.identity == leader)
        .expect("the holder is one of the replicas");
    let killed = std::time::Instant::now();
    drop(replicas.remove(position)); // SIGKILL: no release, the lease has to lapse
    let successor = eventually("the other replica to take over", Duration::from_secs(45), || {
        holder(Some(leader.clone()))
    })
    .await;
    assert_eq!(successor, replicas[0].identity);
    scene.granted("alice-after-failover").await;
    eprintln!(
        "e2e: leader killed; the other replica granted a new approval {:?} later",
        killed.elapsed()
    );
    drop(replicas);
    scene.finish().await;
}

/// The operator with exactly the chart's RBAC (its ServiceAccount,
/// impersonated): enough to grant and revoke, and no role beyond
/// grantableRoles (view, edit), so a policy naming `admin` gets a readable
/// failure instead of a wider operator.
#[tokio::test]
async fn with_the_charts_rbac_the_operator_grants_only_grantable_roles() {
    let Some(scene) = Scene::with_own_operators("chart-rbac").await else {
        return;
    };
    let ns = scene.ns.as_str();
    let rbac = tools::chart_objects(ns, &["--show-only", "templates/rbac.yaml"]);
    let list = json!({"apiVersion": "v1", "kind": "List", "items": rbac}).to_string();
    let admin_kubeconfig = scene.cluster.kubeconfig.to_str().unwrap();
    let applied = tools::run(
        "kubectl",
        &[
            "--kubeconfig",
            admin_kubeconfig,
            "apply",
            "--server-side",
            "-f",
            "-",
        ],
        Some(&list),
    );
    assert!(applied.ok, "applying the chart's RBAC: {}", applied.stderr);
    let sa_user = format!("system:serviceaccount:{ns}:gatehouse");
    let sa_groups = [
        "system:serviceaccounts".to_string(),
        format!("system:serviceaccounts:{ns}"),
    ];
    let sa_kubeconfig = scene.user_kubeconfig(&sa_user, &[&sa_groups[0], &sa_groups[1]]);
    let least = scene
        .start_operator(
            &sa_kubeconfig,
            "chart-rbac",
            // Its own namespace (the chart's, with its Role for Leases) is
            // where alice asks: protected unless opened with the flag.
            &[
                "--leader-election=true",
                "--lease-namespace",
                ns,
                "--allow-grants-in",
                ns,
            ],
        )
        .await;

    let (req, name) = scene.granted("alice-chart-rbac").await;
    assert!(scene.binding(&name).await.is_some());
    scene.alice_decides(&req, "Revoke").await;
    scene.phase_becomes("alice-chart-rbac", Phase::Revoked).await;
    assert!(scene.binding(&name).await.is_none(), "binding removed on revoke");

    scene
        .create_policy(
            "admin",
            json!({"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "admin"}],
                   "namespaces": {"names": [ns]}, "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;
    let wide: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "alice-admin", "namespace": ns},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "admin"}, "duration": "1h", "reason": "e2e"}
    }))
    .unwrap();
    let wide = scene
        .requests(&scene.alice)
        .create(&PostParams::default(), &wide)
        .await
        .unwrap();
    scene.phase_becomes("alice-admin", Phase::Pending).await;
    scene.approve(&wide).await;
    let requests = scene.requests(&scene.admin);
    let refused = eventually(
        "the admin grant to fail readably",
        Duration::from_secs(20),
        || {
            let requests = requests.clone();
            async move {
                let status = requests.get("alice-admin").await.ok()?.status?;
                status
                    .conditions
                    .into_iter()
                    .find(|c| c.type_ == "Granted" && c.reason == "BindingFailed")
            }
        },
    )
    .await;
    assert!(refused.message.contains("forbidden"), "{}", refused.message);
    let bindings = Api::<RoleBinding>::namespaced(scene.admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        bindings.items.iter().all(|b| b.role_ref.name != "admin"),
        "nothing binds admin"
    );

    drop(least);
    let admin = scene.admin.clone();
    scene.finish().await;
    // The chart's cluster-wide operator RBAC, applied above.
    let _ = Api::<ClusterRoleBinding>::all(admin.clone())
        .delete("gatehouse-operator", &DeleteParams::default())
        .await;
    let _ = Api::<ClusterRole>::all(admin)
        .delete("gatehouse-operator", &DeleteParams::default())
        .await;
}
