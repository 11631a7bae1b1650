//! Issue #23, item 2: a tenant cannot exhaust the operator's memory, nor delay
//! a revoke, by writing huge objects in her own namespace.
//!
//! Observed before the fix: 100 RoleBindings of ~1 MB (15,000 subjects each)
//! took the operator from 106 to 380 MiB RSS (the chart's limit is 256 MiB:
//! an OOM kill in a pod), and a grant that expired meanwhile was removed 30.6 s
//! late.

use std::time::Duration;

use futures::StreamExt;
use gatehouse::api::{AccessCampaign, SkipReason};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use crate::support::{cluster::eventually, faults::logged_at, scene::Scene};

/// The chart's memory limit for the operator.
const CHART_LIMIT_MIB: u64 = 256;
const BINDINGS: usize = 100;
const SUBJECTS: usize = 15_000;

/// Label on the scenario's big bindings: its campaign selects them by it.
const LABEL: &str = "gh-security-memory";

fn big_binding(ns: &str, i: usize) -> RoleBinding {
    let subjects: Vec<_> = (0..SUBJECTS)
        .map(|s| json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": format!("padding-user-{i:03}-{s:05}")}))
        .collect();
    serde_json::from_value(json!({
        "metadata": {"name": format!("big-{i:03}"), "labels": {LABEL: ns}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": subjects,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn megabyte_bindings_neither_exhaust_the_operator_nor_delay_a_revoke() {
    let Some(scene) = Scene::with_own_operators("sec-memory").await else {
        return;
    };
    let kubeconfig = scene.operator_kubeconfig();
    let mut operator = scene
        .start_operator(&kubeconfig, "memory", &["--leader-election=false"])
        .await;

    // A grant that expires while the tenant writes.
    let req = scene.request("expires-under-load", "25s").await;
    scene.approve(&req).await;
    let grant = scene.active_grant("expires-under-load").await;
    let active = scene
        .requests(&scene.admin)
        .get("expires-under-load")
        .await
        .unwrap();
    let expires_at = active.status.and_then(|s| s.expires_at).expect("an expiry");

    // The tenant (alice holds `*` in her namespace; the admin writes for her
    // here) creates 100 bindings of ~1 MB, a few at a time.
    let api: Api<RoleBinding> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let flood = futures::stream::iter(0..BINDINGS)
        .map(|i| {
            let api = api.clone();
            let binding = big_binding(&scene.ns, i);
            async move {
                api.create(&PostParams::default(), &binding)
                    .await
                    .map(drop)
                    .unwrap_or_else(|e| panic!("creating big-{i:03}: {e}"))
            }
        })
        .buffer_unordered(4)
        .collect::<Vec<()>>();
    let watch_grant = async {
        eventually(
            "the expired grant to be removed",
            Duration::from_secs(120),
            || async { scene.binding(&grant).await.is_none().then_some(()) },
        )
        .await
    };
    tokio::join!(flood, watch_grant);
    // When the operator's delete succeeded, from its log: under the flood the
    // API server answers a test's GET or watch seconds late, not the operator.
    // The removal lane deletes at the deadline; the request's reconcile removes
    // it only if the lane has not (whichever logged first did it).
    let by_lane = logged_at(
        &operator.log,
        "removal lane kind=\"RoleBinding\" name=gatehouse-expires-under-load",
    );
    let by_reconcile = logged_at(&operator.log, "binding removed request=expires-under-load");
    let gone_at = by_lane
        .into_iter()
        .chain(by_reconcile)
        .min()
        .expect("the operator logs the removal");
    let late = (gone_at - expires_at).num_milliseconds();
    eprintln!("grant expired at {expires_at}, gone at {gone_at}: {late} ms late");

    // Let the operator take in everything that was written.
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(operator.is_running(), "the operator died under the flood");
    let (rss, peak) = operator.memory_kib();
    eprintln!(
        "operator memory after {BINDINGS} bindings of {SUBJECTS} subjects: RSS {} MiB, peak {} MiB",
        rss / 1024,
        peak / 1024
    );
    assert!(
        peak / 1024 < CHART_LIMIT_MIB,
        "peak RSS {} MiB is over the chart's limit of {CHART_LIMIT_MIB} MiB",
        peak / 1024
    );
    assert!(late <= 1_000, "the grant was removed {late} ms after its expiry");

    // A restarted operator lists all of it at once: the same bound.
    drop(operator);
    let restarted = scene
        .start_operator(&kubeconfig, "memory-restarted", &["--leader-election=false"])
        .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (rss, peak) = restarted.memory_kib();
    eprintln!(
        "restarted operator after listing them: RSS {} MiB, peak {} MiB",
        rss / 1024,
        peak / 1024
    );
    assert!(
        peak / 1024 < CHART_LIMIT_MIB,
        "peak RSS {} MiB of the restarted operator is over the chart's limit of {CHART_LIMIT_MIB} MiB",
        peak / 1024
    );

    // Certification never reviews part of a binding memory holds in part: the
    // run lists each one as skipped (TooLarge) and makes no item of its first
    // subjects.
    let name = format!("{}-c", scene.ns);
    let campaign: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": name},
        "spec": {"duration": "1h", "reviewNamespace": scene.ns,
                 "scope": {"bindingSelector": {"matchLabels": {LABEL: scene.ns}}},
                 "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]}}
    }))
    .unwrap();
    let campaigns = Api::<AccessCampaign>::all(scene.admin.clone());
    campaigns.create(&PostParams::default(), &campaign).await.unwrap();
    let run = eventually(
        "the campaign's run to launch",
        Duration::from_secs(60),
        || async {
            let run = campaigns.get(&name).await.ok()?.status?.runs.last().cloned()?;
            run.launched_at.is_some().then_some(run)
        },
    )
    .await;
    assert_eq!(run.items, 0, "no item of part of a binding: {run:?}");
    assert_eq!(
        run.skipped as usize, BINDINGS,
        "every big binding listed as skipped: {run:?}"
    );
    let first = &run.skipped_items[0];
    assert_eq!(first.reason, SkipReason::TooLarge, "{first:?}");
    assert!(first.message.contains("15000 subjects"), "{}", first.message);
    campaigns.delete(&name, &DeleteParams::default()).await.unwrap();

    // Still serving: a new approval is granted.
    let again = scene.request("after-the-flood", "1h").await;
    scene.approve(&again).await;
    scene.active_grant("after-the-flood").await;
    drop(restarted);
    scene.finish().await;
}
