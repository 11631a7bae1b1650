//! The operator is cut off from the API server (a network partition: nothing
//! refused, nothing answered): for a minute, across an API server restart, and
//! as the leader of two replicas.

use std::time::{Duration, SystemTime};

use gatehouse::api::Phase;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::{
    fault_scene, log_of,
    support::{cluster::eventually, faults::logged_at},
};

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

/// A minute without the API server: the grant that expired meanwhile and the
/// request approved meanwhile are both dealt with once the partition heals.
#[tokio::test]
async fn after_a_minute_long_partition_the_operator_catches_up() {
    let Some((_one, scene, control_plane)) = fault_scene("partition").await else {
        return;
    };
    let proxy = control_plane.proxy("partition-op", &scene.operator_kubeconfig());
    let operator = scene
        .start_operator(&proxy.kubeconfig, "op", &["--leader-election=false"])
        .await;
    let short = scene.request("alice-short", "20s").await;
    scene.approve(&short).await;
    let binding = scene.active_grant("alice-short").await;

    proxy.partition();
    let during = scene.request("alice-during", "1h").await;
    scene.approve(&during).await;
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        scene.binding(&binding).await.is_some(),
        "nobody removed it during the partition"
    );
    proxy.heal();
    let healed = SystemTime::now();

    let granted = async {
        scene
            .phase_within("alice-during", Phase::Active, Duration::from_secs(60))
            .await;
        since(healed)
    };
    let removed = async {
        eventually("the expired grant to be removed", Duration::from_secs(60), || {
            let scene = &scene;
            let binding = binding.clone();
            async move { scene.binding(&binding).await.is_none().then_some(()) }
        })
        .await;
        since(healed)
    };
    let (granted, removed) = tokio::join!(granted, removed);
    eprintln!("fault: after a 60 s partition: approval granted {granted:?}, expired grant removed {removed:?} after it healed");
    assert!(granted <= Duration::from_secs(15), "{granted:?}");
    assert!(removed <= Duration::from_secs(15), "{removed:?}");
    assert_eq!(operator.get("/healthz").await, "ok");
    drop(operator);
    drop(proxy);
    scene.finish().await;
}

/// While the operator is cut off, the API server restarts: every watch the
/// operator had is gone or expired (410) when it comes back, and it lists again.
#[tokio::test]
async fn watches_lost_in_a_partition_and_an_api_server_restart_are_listed_again() {
    let Some((_one, scene, control_plane)) = fault_scene("relist").await else {
        return;
    };
    let proxy = control_plane.proxy("relist-op", &scene.operator_kubeconfig());
    let operator = scene
        .start_operator(&proxy.kubeconfig, "op", &["--leader-election=false"])
        .await;
    scene.granted("alice-before").await;
    let restarts_before = restarts(&operator.get("/metrics").await);

    proxy.partition();
    // Reset what the operator holds first: a killed API server whose sockets
    // still hold unread bytes for the operator keeps its port (FIN_WAIT1) and
    // could not start again.
    proxy.drop_connections();
    control_plane
        .restart_apiserver(Duration::from_secs(0), "KILL")
        .await;
    let after = scene.request("alice-after", "1h").await;
    scene.approve(&after).await;
    proxy.heal();
    let healed = SystemTime::now();
    scene
        .phase_within("alice-after", Phase::Active, Duration::from_secs(60))
        .await;
    eprintln!(
        "fault: request approved during a partition across an API server restart granted {:?} after it healed",
        since(healed)
    );
    assert!(since(healed) <= Duration::from_secs(15));
    let restarts_after = restarts(&operator.get("/metrics").await);
    assert!(
        restarts_after > restarts_before,
        "the watches started over ({restarts_before} -> {restarts_after})"
    );
    drop(operator);
    drop(proxy);
    scene.finish().await;
}

/// The sum of `gatehouse_watch_restarts_total` over every kind.
fn restarts(metrics: &str) -> u64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("gatehouse_watch_restarts_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Two replicas; the leader is cut off. It stops acting before the standby
/// takes the Lease, and the standby grants the requests that keep coming.
#[tokio::test]
async fn a_partitioned_leader_stops_before_the_standby_takes_over() {
    let Some((_one, scene, control_plane)) = fault_scene("fence").await else {
        return;
    };
    // The Lease lives where alice asks for access: that namespace is the
    // operators' own, protected unless opened with the flag.
    let lease_args = [
        "--leader-election=true",
        "--lease-namespace",
        scene.ns.as_str(),
        "--allow-grants-in",
        scene.ns.as_str(),
        "--lease-name",
        "gatehouse-fault",
    ];
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let holder = || {
        let leases = leases.clone();
        async move {
            leases
                .get_opt("gatehouse-fault")
                .await
                .ok()??
                .spec?
                .holder_identity
        }
    };
    let proxy = control_plane.proxy("fence-a", &scene.operator_kubeconfig());
    let a = scene
        .start_operator(&proxy.kubeconfig, "replica-a", &lease_args)
        .await;
    eventually("replica-a to lead", Duration::from_secs(30), || async {
        (holder().await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = scene
        .start_operator(&scene.operator_kubeconfig(), "replica-b", &lease_args)
        .await;
    scene.granted("alice-led-by-a").await;

    proxy.partition();
    let cut = SystemTime::now();
    let during = scene.request("alice-during", "1h").await;
    scene.approve(&during).await;
    scene
        .phase_within("alice-during", Phase::Active, Duration::from_secs(60))
        .await;
    eprintln!(
        "fault: leader cut off; the standby granted a new approval {:?} later",
        since(cut)
    );
    assert_eq!(holder().await.as_deref(), Some("replica-b"));

    // From their logs: a stopped acting before b started.
    let stopped = logged_at(&log_of(&scene, "replica-a"), "stopped acting");
    let started = logged_at(&log_of(&scene, "replica-b"), "became the leader");
    let (Some(stopped), Some(started)) = (stopped, started) else {
        panic!("missing log lines: a stopped {stopped:?}, b started {started:?}");
    };
    eprintln!(
        "fault: replica-a stopped acting {} ms before replica-b started",
        (started - stopped).num_milliseconds()
    );
    assert!(
        stopped < started,
        "a stopped at {stopped}, b started at {started}"
    );

    // Healed, a finds the Lease taken and stays a standby.
    proxy.heal();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert_eq!(holder().await.as_deref(), Some("replica-b"));
    drop((a, b, proxy));
    scene.finish().await;
}
