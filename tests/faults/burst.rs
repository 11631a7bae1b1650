//! The operator is killed (SIGKILL: no clean-up) in the middle of a burst of a
//! hundred approvals, and a new one takes over: every approval still counts,
//! every request is granted once, and every grant ends on time.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, SystemTime},
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gatehouse::{
    api::{AccessReview, ApprovalRequest, Phase},
    labels::managed_selector,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{
    api::{Api, ListParams},
    ResourceExt,
};

use crate::{fault_scene, support::cluster::eventually};

const REQUESTS: usize = 100;

#[tokio::test]
async fn killing_the_operator_in_a_burst_loses_nothing_and_grants_nothing_twice() {
    let Some((_one, scene, _control_plane)) = fault_scene("burst").await else {
        return;
    };
    let bindings: Api<RoleBinding> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let (seen, recorder) = crate::seen::record(&scene);

    let kubeconfig = scene.operator_kubeconfig();
    let first = scene
        .start_operator(&kubeconfig, "first", &["--leader-election=false"])
        .await;
    let names: Vec<String> = (0..REQUESTS).map(|i| format!("burst-{i:03}")).collect();
    let requests: Vec<ApprovalRequest> = futures::stream::iter(&names)
        .map(|n| scene.request(n, "30s"))
        .buffer_unordered(16)
        .collect()
        .await;
    futures::stream::iter(&requests)
        .map(|r| scene.approve(r))
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;

    // Killed once some, not all, are granted.
    let api = scene.requests(&scene.admin);
    let phases = |phase: Phase| {
        let api = api.clone();
        async move {
            let list = api.list(&ListParams::default()).await.ok()?;
            Some(
                list.items
                    .iter()
                    .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == phase))
                    .count(),
            )
        }
    };
    eventually("some grants before the kill", Duration::from_secs(60), || async {
        phases(Phase::Active).await.filter(|n| *n >= 10)
    })
    .await;
    drop(first);
    let active_at_kill = phases(Phase::Active).await.unwrap_or_default();
    eprintln!("fault: operator killed with {active_at_kill} of {REQUESTS} granted");
    tokio::time::sleep(Duration::from_secs(3)).await;
    let second = scene
        .start_operator(&kubeconfig, "second", &["--leader-election=false"])
        .await;
    let back = SystemTime::now();

    eventually("every request to expire", Duration::from_secs(180), || async {
        phases(Phase::Expired).await.filter(|n| *n == REQUESTS)
    })
    .await;
    eventually("every binding to be gone", Duration::from_secs(10), || {
        let bindings = bindings.clone();
        async move {
            let left = bindings
                .list(&ListParams::default().labels(&managed_selector()))
                .await
                .ok()?;
            left.items.is_empty().then_some(())
        }
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    recorder.abort();
    drop(second);

    // No decision lost: every approval counted and every request was granted.
    let reviews: Api<AccessReview> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let reviews = reviews.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(reviews.len(), REQUESTS);
    for r in &reviews {
        let status = r.status.clone().unwrap_or_default();
        assert_eq!(
            (status.accepted, status.reason.map(|r| r.as_str())),
            (Some(true), Some("Approved")),
            "{}",
            r.name_any()
        );
    }
    for r in api.list(&ListParams::default()).await.unwrap() {
        let grant = r.status.and_then(|s| s.grant).expect("a grant on every request");
        assert!(
            grant.granted_at.is_some() && grant.revoked_at.is_some(),
            "{grant:?}"
        );
    }

    // Nothing granted twice: one binding name per request, ever.
    let seen = seen.lock().unwrap().clone();
    let mut per_request: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.added) {
        per_request.entry(&s.request).or_default().insert(&s.binding);
    }
    assert_eq!(per_request.len(), REQUESTS, "every request had its binding");
    for (request, names) in &per_request {
        assert_eq!(names.len(), 1, "{request} had bindings {names:?}");
    }

    // Every grant ended on time once the operator was back.
    let mut lags: Vec<i64> = seen
        .iter()
        .filter(|s| !s.added)
        .filter_map(|s| {
            let expires = s.expires?;
            let gone: DateTime<Utc> = s.at.into();
            (SystemTime::from(expires) >= back).then(|| (gone - expires).num_milliseconds())
        })
        .collect();
    lags.sort();
    assert_eq!(
        lags.len(),
        REQUESTS,
        "every grant expired after the operator was back"
    );
    let pick = |q: f64| lags[((lags.len() - 1) as f64 * q).round() as usize];
    eprintln!(
        "fault: revoke lag over {} grants: p50 {} ms, p99 {} ms, max {} ms",
        lags.len(),
        pick(0.5),
        pick(0.99),
        pick(1.0)
    );
    assert!(
        pick(1.0) <= 1000,
        "a grant lived {} ms past its expiry",
        pick(1.0)
    );
    scene.finish().await;
}
