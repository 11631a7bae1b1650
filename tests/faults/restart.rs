//! The API server restarts under the operator (a cluster upgrade, a certificate
//! rotation): the grant that expired meanwhile goes as soon as the API answers,
//! and a request approved right after is granted at once.

use std::time::{Duration, SystemTime};

use gatehouse::api::Phase;

use crate::{
    fault_scene,
    support::{cluster::eventually, operator::http_get},
};

fn since(t: SystemTime) -> Duration {
    SystemTime::now().duration_since(t).unwrap_or_default()
}

#[tokio::test]
async fn after_an_api_server_restart_nothing_is_late_and_nothing_is_stuck() {
    let Some((_one, scene, control_plane)) = fault_scene("restart").await else {
        return;
    };
    let operator = scene
        .start_operator(&scene.operator_kubeconfig(), "op", &["--leader-election=false"])
        .await;
    // A grant that ends while the API server is down.
    let short = scene.request("alice-short", "12s").await;
    scene.approve(&short).await;
    let binding = scene.active_grant("alice-short").await;

    // A crash: 15 s without an API server, then the same flags and data.
    let restart = control_plane
        .restart_apiserver(Duration::from_secs(15), "KILL")
        .await;
    eprintln!(
        "fault: API server down {:?}",
        restart.ready.duration_since(restart.stopped).unwrap_or_default()
    );

    // At once: a new request, approved; meanwhile, watch the expired grant go.
    let granted = async {
        let after = scene.request("alice-after", "1h").await;
        scene.approve(&after).await;
        scene
            .phase_within("alice-after", Phase::Active, Duration::from_secs(30))
            .await;
        since(restart.ready)
    };
    let removed = async {
        eventually("the expired grant to be removed", Duration::from_secs(30), || {
            let scene = &scene;
            let binding = binding.clone();
            async move { scene.binding(&binding).await.is_none().then_some(()) }
        })
        .await;
        since(restart.ready)
    };
    let (granted, removed) = tokio::join!(granted, removed);
    eprintln!("fault: request approved after the restart granted {granted:?} after the API server was ready");
    eprintln!(
        "fault: grant that expired during the outage removed {removed:?} after the API server was ready"
    );
    assert!(
        granted <= Duration::from_secs(5),
        "granted {granted:?} after ready"
    );
    assert!(
        removed <= Duration::from_secs(5),
        "removed {removed:?} after ready"
    );
    assert_eq!(
        scene
            .phase_becomes("alice-short", Phase::Expired)
            .await
            .status
            .unwrap()
            .phase,
        Phase::Expired
    );

    // Health tells the truth again: ready and live.
    let ready = eventually("/readyz to answer ok", Duration::from_secs(30), || async {
        (http_get(operator.port, "/readyz").await.as_deref() == Some("ok")).then_some(())
    });
    ready.await;
    assert_eq!(operator.get("/healthz").await, "ok");
    let metrics = operator.get("/metrics").await;
    assert!(
        metrics.contains("gatehouse_watch_restarts_total{kind=\"approvalrequests\"}"),
        "the restart shows in the metrics:\n{metrics}"
    );
    drop(operator);
    scene.finish().await;
}
