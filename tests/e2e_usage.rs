//! Usage evidence end to end: a real API server sends its audit events (batch
//! webhook, `hack/control-plane/up.sh` with `GATEHOUSE_AUDIT_WEBHOOK=auto`) to the
//! operator's receiver, and certification items show what was used.
//!
//! Needs the `GATEHOUSE_E2E_AUDIT_*` exports of that up.sh; skips without them
//! (a failure when `GATEHOUSE_E2E_REQUIRED` is set, as for the other e2e suites).

use std::time::{Duration, Instant};

use gatehouse::api::{AccessCampaign, AccessCertification, BindingKind, BindingUsage, Phase};
use k8s_openapi::api::{core::v1::Pod, rbac::v1::RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

#[path = "support/mod.rs"]
mod support;

use support::{cluster::eventually, scene::Scene};

/// The flush interval the operator runs with here.
const FLUSH: Duration = Duration::from_secs(4);

/// The receiver's address is the control plane's one: one test at a time
/// serves it.
static RECEIVER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// `gatehouse_audit_events_total{cause="Read"}` of an operator.
async fn events_read(operator: &support::operator::Operator) -> f64 {
    operator
        .get("/metrics")
        .await
        .lines()
        .find(|l| l.starts_with("gatehouse_audit_events_total{cause=\"Read\"}"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|n| n.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// The flags of an operator that receives the API server's audit webhook
/// (`audit`: [`audit_env`]) and writes its usage summaries to `namespace`
/// every `flush`.
fn usage_flags(namespace: &str, audit: &[String; 5], flush: &str) -> Vec<String> {
    let [addr, cert, key, ca, token] = audit;
    [
        "--usage-namespace",
        namespace,
        "--leader-election=false",
        "--notifications=false",
        "--audit-webhook-addr",
        addr,
        "--audit-tls-cert",
        cert,
        "--audit-tls-key",
        key,
        "--audit-client-ca",
        ca,
        "--audit-token-file",
        token,
        "--usage-flush-interval",
        flush,
    ]
    .map(String::from)
    .to_vec()
}

fn audit_env() -> Option<[String; 5]> {
    let get = |k: &str| std::env::var(k).ok();
    let all = [
        get("GATEHOUSE_E2E_AUDIT_ADDR"),
        get("GATEHOUSE_E2E_AUDIT_CERT"),
        get("GATEHOUSE_E2E_AUDIT_KEY"),
        get("GATEHOUSE_E2E_AUDIT_CLIENT_CA"),
        get("GATEHOUSE_E2E_AUDIT_TOKEN_FILE"),
    ];
    if all.iter().any(Option::is_none) {
        assert!(
            std::env::var_os("GATEHOUSE_E2E_REQUIRED").is_none(),
            "GATEHOUSE_E2E_REQUIRED is set but the control plane sends no audit events (up.sh with GATEHOUSE_AUDIT_WEBHOOK=auto)"
        );
        eprintln!("skipping: no GATEHOUSE_E2E_AUDIT_* (up.sh with GATEHOUSE_AUDIT_WEBHOOK=auto)");
        return None;
    }
    Some(all.map(Option::unwrap_or_default))
}

async fn role_binding(scene: &Scene, name: &str, user: &str) {
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": name, "labels": {"e2e-usage": scene.ns}},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}],
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(scene.admin.clone(), &scene.ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();
}

async fn item_of(scene: &Scene, user: &str) -> Option<AccessCertification> {
    let items = Api::<AccessCertification>::namespaced(scene.admin.clone(), &scene.ns);
    let list = items.list(&ListParams::default()).await.ok()?;
    list.items.into_iter().find(|i| i.spec.subject.name == user)
}

#[tokio::test]
async fn audit_events_show_on_grants_and_items_unused_access_is_revoke_and_impersonation_counts() {
    let Some(audit) = audit_env() else {
        return;
    };
    let Some(scene) = Scene::with_own_operators("usage").await else {
        return;
    };
    let _receiver = RECEIVER.lock().await;
    // erin's and dave's bindings exist before the operator starts, so the run
    // it launches at its start reviews them.
    role_binding(&scene, "erin-view", "erin").await;
    role_binding(&scene, "dave-view", "dave").await;
    let flags = usage_flags(&scene.ns, &audit, &format!("{}s", FLUSH.as_secs()));
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = scene
        .start_operator(&scene.operator_kubeconfig(), "usage", &args)
        .await;

    // The API server's webhook backend backs off while nobody listens: wait until
    // events flow again (the operator's own requests are audited too).
    eventually(
        "audit events to reach the operator",
        Duration::from_secs(60),
        || async { Some(events_read(&operator).await).filter(|n| *n > 0.0) },
    )
    .await;

    // A JIT grant shows what it was used for: alice lists pods through it (her
    // only binding here), and once it expires its request says so.
    let req = scene.request("jit", "20s").await;
    scene.approve(&req).await;
    scene.phase_becomes("jit", Phase::Active).await;
    Api::<Pod>::namespaced(scene.alice.clone(), &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let expired = scene
        .phase_within("jit", Phase::Expired, Duration::from_secs(60))
        .await;
    let usage = expired
        .status
        .and_then(|s| s.usage)
        .expect("the expired request shows its usage");
    assert_eq!(usage.summary, "used once: list pods");
    let (code, out) = scene
        .plugin_user("alice", &["developers"])
        .run(&format!("status jit -n {}", scene.ns));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Usage:      used once: list pods"), "{out}");

    let campaign = format!("{}-usage", scene.ns);
    let c: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": campaign},
        "spec": {"duration": "1h", "reviewNamespace": scene.ns,
                 "scope": {"bindingSelector": {"matchLabels": {"e2e-usage": scene.ns}}},
                 "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]},
                 "recommendation": {"unusedFor": "20s"}}
    }))
    .unwrap();
    Api::<AccessCampaign>::all(scene.admin.clone())
        .create(&PostParams::default(), &c)
        .await
        .unwrap();
    eventually("both items", Duration::from_secs(60), || async {
        (item_of(&scene, "erin").await.is_some() && item_of(&scene, "dave").await.is_some()).then_some(())
    })
    .await;

    // erin lists pods through her binding; the test's client impersonates her
    // (the request comes from the admin): it counts for erin.
    let acted = Instant::now();
    let erin = scene.cluster.as_user("erin", &[]);
    Api::<Pod>::namespaced(erin, &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let erin = eventually("erin's item to show her request", FLUSH * 4, || async {
        item_of(&scene, "erin").await.filter(|i| {
            i.status
                .as_ref()
                .and_then(|s| s.usage.as_ref())
                .and_then(|u| u.last_used_at)
                .is_some()
        })
    })
    .await;
    let lag = acted.elapsed();
    eprintln!("lastUsedAt showed {lag:?} after the request (flush interval {FLUSH:?})");
    let usage = erin.status.as_ref().and_then(|s| s.usage.clone()).unwrap();
    assert!(usage.requests >= 1);
    assert!(usage.top_actions.iter().any(|a| a == "list pods"), "{usage:?}");
    // Plus the API server's batching (up to 1 s) and the status write.
    assert!(
        lag <= FLUSH + Duration::from_secs(2),
        "took {lag:?}, more than one flush interval"
    );

    // The summary reaches erin's binding's BindingUsage within a flush interval
    // (plus the API server's batching).
    let name = gatehouse::usage::summary::object_name(&gatehouse::usage::BindingRef {
        kind: BindingKind::RoleBinding,
        namespace: Some(scene.ns.clone()),
        name: "erin-view".into(),
    });
    let summaries = Api::<BindingUsage>::namespaced(scene.admin.clone(), &scene.ns);
    let stored = eventually("erin's BindingUsage", FLUSH * 4, || async {
        summaries.get_opt(&name).await.ok().flatten().filter(|o| {
            o.status
                .as_ref()
                .is_some_and(|s| s.subjects.iter().any(|u| u.name == "erin"))
        })
    })
    .await;
    let lag = acted.elapsed();
    eprintln!("BindingUsage written {lag:?} after the request");
    assert!(lag <= FLUSH + Duration::from_secs(3), "took {lag:?}");
    assert_eq!(stored.spec.name, "erin-view");
    let summary = stored.status.clone().unwrap();
    let erin_used = &summary.subjects[0];
    assert_eq!(erin_used.name, "erin");
    assert!(erin_used.requests >= 1, "{summary:?}");
    assert!(
        erin_used.top_actions.iter().any(|a| a.name == "list pods"),
        "{summary:?}"
    );
    assert_eq!(summary.last_used_at, Some(erin_used.last_used_at));
    assert!(summary
        .observed_since
        .is_some_and(|s| s <= erin_used.last_used_at));

    // dave never acts: once observed for 20 s (and his binding is that old), Revoke.
    let dave = eventually(
        "dave's item to be recommended for revocation",
        Duration::from_secs(60),
        || async {
            item_of(&scene, "dave").await.filter(|i| {
                i.status
                    .as_ref()
                    .is_some_and(|s| s.recommendation == Some(gatehouse::api::Recommendation::Revoke))
            })
        },
    )
    .await;
    let status = dave.status.unwrap();
    assert_eq!(
        status.reasons[0].code,
        gatehouse::api::FindingCode::Unused,
        "{:?}",
        status.reasons
    );
    assert!(status.usage.is_some_and(|u| u.last_used_at.is_none()));

    // A restart keeps what was observed: the new operator loads the stored
    // summaries, so erin's item keeps her last use and the observation start
    // (an operator starting over would move observedSince past the restart
    // and find no use of erin's).
    let before = erin.status.as_ref().and_then(|s| s.usage.clone()).unwrap();
    drop(operator);
    let restarted_at = chrono::Utc::now();
    let operator = scene
        .start_operator(&scene.operator_kubeconfig(), "usage-2", &args)
        .await;
    eventually(
        "the restarted operator to evaluate items",
        Duration::from_secs(60),
        || async { Some(events_read(&operator).await).filter(|n| *n > 0.0) },
    )
    .await;
    // Several refreshes of the index, each of which looks at open items again.
    tokio::time::sleep(FLUSH * 3).await;
    let after = item_of(&scene, "erin")
        .await
        .and_then(|i| i.status)
        .and_then(|s| s.usage)
        .expect("erin's item still shows usage");
    assert_eq!(after.last_used_at, before.last_used_at, "{after:?}");
    assert_eq!(after.observed_since, before.observed_since, "{after:?}");
    assert!(after.observed_since < restarted_at, "{after:?}");
    let dave = item_of(&scene, "dave").await.and_then(|i| i.status).unwrap();
    assert_eq!(dave.recommendation, Some(gatehouse::api::Recommendation::Revoke));
    let kept = summaries.get(&name).await.unwrap().status.unwrap();
    assert_eq!(kept.observed_since, summary.observed_since);
    assert!(kept.last_used_at >= summary.last_used_at);
    drop(operator);
    let _ = Api::<AccessCampaign>::all(scene.admin.clone())
        .delete(&campaign, &Default::default())
        .await;
    scene.finish().await;
}

#[tokio::test]
async fn counts_since_the_last_flush_are_written_when_the_operator_is_terminated() {
    let Some(audit) = audit_env() else {
        return;
    };
    let Some(scene) = Scene::with_own_operators("usage-term").await else {
        return;
    };
    let _receiver = RECEIVER.lock().await;
    role_binding(&scene, "frank-view", "frank").await;
    // A flush interval no test waits for: only the shutdown can write.
    let flags = usage_flags(&scene.ns, &audit, "1h");
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut operator = scene
        .start_operator(&scene.operator_kubeconfig(), "usage-term", &args)
        .await;
    eventually(
        "audit events to reach the operator",
        Duration::from_secs(60),
        || async { Some(events_read(&operator).await).filter(|n| *n > 0.0) },
    )
    .await;
    let before = events_read(&operator).await;
    Api::<Pod>::namespaced(scene.cluster.as_user("frank", &[]), &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    // The API server sends a batch at least every second (up.sh); the event
    // of frank's request is in one of the next batches.
    eventually("frank's request to be sent", Duration::from_secs(30), || async {
        Some(events_read(&operator).await).filter(|n| *n > before)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    operator.terminate();
    eventually("the operator to stop", Duration::from_secs(30), || {
        let running = operator.is_running();
        async move { (!running).then_some(()) }
    })
    .await;
    let name = gatehouse::usage::summary::object_name(&gatehouse::usage::BindingRef {
        kind: BindingKind::RoleBinding,
        namespace: Some(scene.ns.clone()),
        name: "frank-view".into(),
    });
    let stored = Api::<BindingUsage>::namespaced(scene.admin.clone(), &scene.ns)
        .get_opt(&name)
        .await
        .unwrap()
        .expect("the BindingUsage written at shutdown");
    let status = stored.status.unwrap();
    let frank = status.subjects.iter().find(|u| u.name == "frank").unwrap();
    assert!(frank.requests >= 1, "{status:?}");
    assert!(
        frank.top_actions.iter().any(|a| a.name == "list pods"),
        "{status:?}"
    );
    assert_eq!(status.writers.len(), 1, "{status:?}");
    drop(operator);
    scene.finish().await;
}
