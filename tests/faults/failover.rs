//! The leader of two replicas dies (SIGKILL: no Lease release) with the
//! default lease settings: access still ends on time, although no replica
//! holds the Lease until it expires, and the standby leads within 10 s
//! (issue 24).

use std::time::Duration;

use chrono::{DateTime, Utc};
use gatehouse::api::Phase;
use k8s_openapi::api::coordination::v1::Lease;
use kube::api::Api;

use crate::{
    fault_scene, log_of,
    support::{cluster::eventually, faults::logged_at, operator::Operator, scene::Scene},
};

const LEASE: &str = "gatehouse-failover";

/// Leader election with the default settings; only the Lease's name and place
/// are set. The Lease lives where alice asks for access: that namespace is the
/// operators' own, protected unless opened with `--allow-grants-in`.
fn lease_args(scene: &Scene) -> [&str; 7] {
    [
        "--leader-election=true",
        "--lease-namespace",
        scene.ns.as_str(),
        "--allow-grants-in",
        scene.ns.as_str(),
        "--lease-name",
        LEASE,
    ]
}

async fn holder(scene: &Scene) -> Option<String> {
    let leases: Api<Lease> = Api::namespaced(scene.admin.clone(), &scene.ns);
    leases.get_opt(LEASE).await.ok()??.spec?.holder_identity
}

/// replica-a, leading, and replica-b, ready (its memory synced).
async fn two_replicas(scene: &Scene, args: &[&str]) -> (Operator, Operator) {
    let a = scene
        .start_operator(&scene.operator_kubeconfig(), "replica-a", args)
        .await;
    eventually("replica-a to lead", Duration::from_secs(30), || async {
        (holder(scene).await.as_deref() == Some("replica-a")).then_some(())
    })
    .await;
    let b = scene
        .start_operator(&scene.operator_kubeconfig(), "replica-b", args)
        .await;
    (a, b)
}

/// Grants that expire a few seconds after the leader's death are removed
/// within 1 s of their expiry by the standby, which does not hold the Lease
/// yet; once it leads, it records them Expired.
#[tokio::test]
async fn grants_expiring_after_the_leaders_death_are_removed_on_time_by_the_standby() {
    let Some((_one, scene, _control_plane)) = fault_scene("failover").await else {
        return;
    };
    // Default lease settings: only the Lease's name and place are set.
    let lease_args = lease_args(&scene);
    let (a, b) = two_replicas(&scene, &lease_args).await;

    // Three grants, granted by a, ending 1 s apart.
    let names = ["alice-first", "alice-second", "alice-third"];
    let mut requests = Vec::new();
    for (i, name) in names.iter().enumerate() {
        requests.push(scene.request(name, &format!("{}s", 25 + i)).await);
    }
    for r in &requests {
        scene.approve(r).await;
    }
    let mut grants: Vec<(String, DateTime<Utc>)> = Vec::new();
    for name in names {
        let active = scene.phase_becomes(name, Phase::Active).await;
        let grant = active.status.unwrap().grant.unwrap();
        grants.push((grant.name, grant.expires_at.unwrap()));
    }
    let first = grants.iter().map(|(_, e)| *e).min().unwrap();

    // The leader dies 2 s before the first expiry: all three are due before
    // any replica may take its Lease.
    let kill_at = first - chrono::Duration::seconds(2);
    let wait = (kill_at - Utc::now())
        .to_std()
        .unwrap_or_else(|_| panic!("granting took too long: the first grant expires at {first}"));
    tokio::time::sleep(wait).await;
    drop(a);
    let killed = Utc::now();

    let mut lateness = Vec::new();
    for (binding, expires) in &grants {
        eventually(
            &format!("{binding} to be removed"),
            Duration::from_secs(60),
            || async { scene.binding(binding).await.is_none().then_some(()) },
        )
        .await;
        // Polled every 100 ms by `eventually`.
        let late = (Utc::now() - *expires).num_milliseconds();
        lateness.push(late);
    }
    let holder_then = holder(&scene).await;
    eprintln!(
        "fault: leader killed {} ms before the first expiry; bindings removed {lateness:?} ms after their expiry; Lease holder then: {holder_then:?}",
        (first - killed).num_milliseconds()
    );
    for (late, (binding, _)) in lateness.iter().zip(&grants) {
        assert!(*late <= 1000, "{binding} removed {late} ms after its expiry");
    }
    assert_eq!(
        holder_then.as_deref(),
        Some("replica-a"),
        "the dead leader still held the Lease: the standby removed them without leading"
    );

    // Once b leads, it records the outcome as ever.
    for name in names {
        let expired = scene
            .phase_within(name, Phase::Expired, Duration::from_secs(60))
            .await;
        let grant = expired.status.unwrap().grant.unwrap();
        assert!(grant.revoked_at.is_some(), "{name}: {grant:?}");
    }
    assert_eq!(holder(&scene).await.as_deref(), Some("replica-b"));
    drop(b);
    scene.finish().await;
}

/// The leader dies; a request approved right after is granted by the standby
/// within 10 s of the death, with the default lease settings.
#[tokio::test]
async fn a_new_approval_is_granted_within_10_s_of_the_leaders_death() {
    let Some((_one, scene, _control_plane)) = fault_scene("takeover").await else {
        return;
    };
    let lease_args = lease_args(&scene);
    let (a, b) = two_replicas(&scene, &lease_args).await;
    scene.granted("alice-before").await;

    drop(a);
    let killed = std::time::Instant::now();
    let after = scene.request("alice-after", "1h").await;
    scene.approve(&after).await;
    scene
        .phase_within("alice-after", Phase::Active, Duration::from_secs(60))
        .await;
    let took = killed.elapsed();
    eprintln!("fault: leader killed; the standby granted a new approval {took:?} later");
    assert!(took <= Duration::from_secs(10), "granted {took:?} after the kill");
    assert_eq!(holder(&scene).await.as_deref(), Some("replica-b"));
    drop(b);
    scene.finish().await;
}

/// SIGTERM (a rolling update): the leader stops acting while it still holds the
/// Lease, releases it a margin later, and only then does the standby lead; a
/// request approved at the SIGTERM is granted within seconds.
#[tokio::test]
async fn on_sigterm_the_leader_stops_acting_before_it_releases_the_lease() {
    let Some((_one, scene, _control_plane)) = fault_scene("handover").await else {
        return;
    };
    let lease_args = lease_args(&scene);
    let (mut a, b) = two_replicas(&scene, &lease_args).await;
    scene.granted("alice-before").await;

    a.terminate();
    let terminated = std::time::Instant::now();
    let after = scene.request("alice-after", "1h").await;
    scene.approve(&after).await;
    scene
        .phase_within("alice-after", Phase::Active, Duration::from_secs(60))
        .await;
    let took = terminated.elapsed();
    eventually("replica-a to exit", Duration::from_secs(60), || {
        let running = a.is_running();
        async move { (!running).then_some(()) }
    })
    .await;

    let a_log = log_of(&scene, "replica-a");
    let stopped = logged_at(&a_log, "stopped acting; releasing the lease");
    let released = logged_at(&a_log, "released the lease");
    let started = logged_at(&log_of(&scene, "replica-b"), "became the leader");
    eprintln!(
        "fault: SIGTERM to the leader: stopped acting {stopped:?}, released {released:?}, the standby led {started:?}; a new approval granted {took:?} after the SIGTERM"
    );
    let text = std::fs::read_to_string(&a_log).unwrap();
    assert!(
        !text.contains("leadership lost"),
        "a SIGTERM must not cut the leader off its own work by dropping the Lease first"
    );
    let (Some(stopped), Some(released), Some(started)) = (stopped, released, started) else {
        panic!("missing log lines: stopped {stopped:?}, released {released:?}, b led {started:?}");
    };
    assert!(
        released - stopped >= chrono::Duration::milliseconds(900),
        "the Lease is released a margin after acting stopped: stopped {stopped}, released {released}"
    );
    assert!(
        started >= released,
        "b led at {started}, a released at {released}"
    );
    assert!(
        took <= Duration::from_secs(10),
        "granted {took:?} after the SIGTERM"
    );
    assert_eq!(holder(&scene).await.as_deref(), Some("replica-b"));
    drop(b);
    scene.finish().await;
}

/// While the leader lives, it removes what expires itself (one delete, its lag
/// recorded): the standby's removal waits out a grace it does not need.
#[tokio::test]
async fn while_the_leader_lives_the_standby_removes_nothing() {
    let Some((_one, scene, _control_plane)) = fault_scene("grace").await else {
        return;
    };
    let lease_args = lease_args(&scene);
    let (a, b) = two_replicas(&scene, &lease_args).await;
    for name in ["alice-one", "alice-two", "alice-three"] {
        let r = scene.request(name, "6s").await;
        scene.approve(&r).await;
    }
    for name in ["alice-one", "alice-two", "alice-three"] {
        scene
            .phase_within(name, Phase::Expired, Duration::from_secs(60))
            .await;
    }
    let leader = std::fs::read_to_string(log_of(&scene, "replica-a")).unwrap();
    let standby = std::fs::read_to_string(log_of(&scene, "replica-b")).unwrap();
    let removed = leader.matches("binding removed").count();
    assert_eq!(removed, 3, "the leader removed {removed} of the 3 expired grants");
    assert!(
        !standby.contains("standby removed"),
        "the standby deleted while the leader lived"
    );
    assert!(standby.contains("removing expired grants on time meanwhile"));
    drop((a, b));
    scene.finish().await;
}

/// A cluster-wide grant (a ClusterRoleBinding, which cannot carry an owner
/// reference to its namespaced request) expiring after the leader's death is
/// removed on time by the standby too, while the dead leader still holds the
/// Lease.
#[tokio::test]
async fn a_cluster_wide_grant_expiring_after_the_leaders_death_is_removed_on_time_by_the_standby() {
    use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
    use kube::api::PostParams;

    let Some((_one, scene, _control_plane)) = fault_scene("failover-cluster").await else {
        return;
    };
    let policy = format!("{}-cluster", scene.ns);
    scene
        .create_policy(
            "cluster",
            serde_json::json!({"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
                   "namespaces": {"names": [scene.ns], "allowClusterScope": true},
                   "duration": {"default": "1h", "max": "2h"},
                   "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;
    let lease_args = lease_args(&scene);
    let (a, b) = two_replicas(&scene, &lease_args).await;

    let request: gatehouse::api::ApprovalRequest = serde_json::from_value(serde_json::json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "alice-everywhere", "namespace": scene.ns},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "view"}, "scope": "Cluster",
                 "policy": policy, "duration": "25s", "reason": "e2e"}
    }))
    .unwrap();
    let request = scene
        .requests(&scene.alice)
        .create(&PostParams::default(), &request)
        .await
        .unwrap();
    scene.approve(&request).await;
    let active = scene.phase_becomes("alice-everywhere", Phase::Active).await;
    let grant = active.status.unwrap().grant.unwrap();
    assert_eq!(grant.kind, gatehouse::api::BindingKind::ClusterRoleBinding);
    let expires = grant.expires_at.unwrap();
    let crbs: Api<ClusterRoleBinding> = Api::all(scene.admin.clone());
    assert!(crbs.get_opt(&grant.name).await.unwrap().is_some());

    // The leader dies 2 s before the expiry: the Lease (15 s) outlives it.
    let wait = (expires - chrono::Duration::seconds(2) - Utc::now())
        .to_std()
        .unwrap_or_else(|_| panic!("granting took too long: the grant expires at {expires}"));
    tokio::time::sleep(wait).await;
    drop(a);

    eventually(
        &format!("{} to be removed", grant.name),
        Duration::from_secs(60),
        || async { crbs.get_opt(&grant.name).await.unwrap().is_none().then_some(()) },
    )
    .await;
    let late = (Utc::now() - expires).num_milliseconds();
    let holder_then = holder(&scene).await;
    eprintln!("fault: leader killed 2 s before a cluster-wide grant's expiry; ClusterRoleBinding removed {late} ms after it; Lease holder then: {holder_then:?}");
    assert!(
        late <= 1000,
        "the ClusterRoleBinding was removed {late} ms after its expiry"
    );
    assert_eq!(
        holder_then.as_deref(),
        Some("replica-a"),
        "the standby removed it only once it led"
    );
    // The standby's log line follows its delete's answer by a moment.
    let standby = log_of(&scene, "replica-b");
    eventually("the standby to log its removal", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&standby).unwrap_or_default();
        async move { text.contains("standby removed an expired grant").then_some(()) }
    })
    .await;

    // Once b leads, it records the outcome as ever.
    let expired = scene
        .phase_within("alice-everywhere", Phase::Expired, Duration::from_secs(60))
        .await;
    assert!(expired.status.unwrap().grant.unwrap().revoked_at.is_some());
    drop(b);
    scene.finish().await;
}
