//! The review desk with a big run: how long the queue's first page takes to
//! render in headless Chromium when 5,000 certification items wait for the
//! reviewer. A measurement, not a test: it prints figures and fails only on
//! errors.
//!
//! ```sh
//! eval "$(hack/control-plane/up.sh /tmp/cp)"   # GATEHOUSE_E2E_KUBECONFIG
//! cargo bench --bench ui -- [ITEMS]            # default 5000
//! ```
//!
//! The items are written by the admin straight into a namespace of their own
//! (spec, then status), Open at one level whose reviewer is bob, so no operator
//! and no campaign launch is measured: only the desk (bob's watch lists the
//! items once when the desk starts; each call picks the items waiting for bob
//! from memory and builds the first page's rows) and the browser (parse, draw
//! the first 100 rows).

#[path = "../../tests/support/mod.rs"]
mod support;

#[path = "../../tests/ui/webdriver.rs"]
mod webdriver;

use std::time::{Duration, Instant};

use futures::{stream, StreamExt};
use gatehouse::api::AccessCertification;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use serde_json::json;

use support::{cluster::eventually, desk::Desk, scene::Scene};
use webdriver::Browser;

fn main() {
    let items: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000);
    let _ = rustls::crypto::ring::default_provider().install_default();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(bench(items));
}

async fn bench(n: usize) {
    let Some(scene) = Scene::with_own_operators("ui-bench").await else {
        eprintln!("set GATEHOUSE_E2E_KUBECONFIG (hack/control-plane/up.sh)");
        return;
    };
    let Some(browser) = Browser::start(&scene.dir.join("chromium")).await else {
        return;
    };
    let ns = scene.ns.clone();
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "item-reader"},
        "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["accesscertifications"], "verbs": ["get", "list", "watch"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(scene.admin.clone(), &ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let rb: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "bob-item-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "item-reader"},
        "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(scene.admin.clone(), &ns)
        .create(&PostParams::default(), &rb)
        .await
        .unwrap();

    let api = Api::<AccessCertification>::namespaced(scene.admin.clone(), &ns);
    let campaign = format!("{ns}-big");
    let run = format!("{campaign}-20260101-0000");
    let started = Instant::now();
    stream::iter(0..n)
        .for_each_concurrent(32, |i| {
            let api = api.clone();
            let (campaign, run, ns) = (campaign.clone(), run.clone(), ns.clone());
            async move {
                let name = format!("{run}-{i:05}");
                let item: AccessCertification = serde_json::from_value(json!({
                    "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
                    "metadata": {"name": name, "namespace": ns,
                                 "labels": {"gatehouse.dev/campaign": campaign, "gatehouse.dev/run": run}},
                    "spec": {"campaign": campaign, "run": run,
                             "startedAt": "2026-01-01T00:00:00Z", "dueAt": "2099-01-01T00:00:00Z",
                             "binding": {"kind": "RoleBinding", "namespace": ns, "name": format!("team-{:03}", i % 500), "uid": format!("uid-{i}")},
                             "subject": {"kind": "User", "name": format!("user-{i:05}")},
                             "roleRef": {"kind": "ClusterRole", "name": "view"},
                             "rulesDigest": "sha256:0",
                             "review": {"levels": [{"name": "security", "reviewers": {"users": ["bob"]}}],
                                        "remediation": "Manual", "onNoDecision": "Keep"}}
                }))
                .unwrap();
                api.create(&PostParams::default(), &item).await.unwrap();
                let status = json!({"status": {
                    "decision": "Unreviewed", "outcome": "Open", "recommendation": if i % 7 == 0 { "Review" } else { "Accept" },
                    "reviewers": {"users": ["bob"]},
                    "levels": [{"name": "security", "state": "Open"}],
                    "reasons": [{"code": "NothingRisky", "message": "ClusterRole/view grants 12 rule(s), none of them risky"}]
                }});
                api.patch_status(&name, &PatchParams::default(), &Patch::Merge(&status))
                    .await
                    .unwrap();
            }
        })
        .await;
    eprintln!("{n} items written in {:.1}s", started.elapsed().as_secs_f64());
    let bob_items = Api::<AccessCertification>::namespaced(scene.bob.clone(), &ns);
    eventually("bob's Role to take effect", Duration::from_secs(30), || async {
        bob_items
            .list(&ListParams::default().limit(1))
            .await
            .ok()
            .map(drop)
    })
    .await;

    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &ns);
    // The first call after the start waits for the desk's watches to list once.
    let t = Instant::now();
    let a = bob.get("/api/queue").await;
    assert_eq!(a.status, 200, "{}", &a.body[..a.body.len().min(300)]);
    assert_eq!(a.json()["itemsTotal"], json!(n), "every item waits for bob");
    let first_ms = t.elapsed().as_secs_f64() * 1000.0;
    let mut api_ms = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let a = bob.get("/api/queue").await;
        assert_eq!(a.status, 200, "{}", &a.body[..a.body.len().min(300)]);
        api_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let mut page_ms = Vec::new();
    for _ in 0..5 {
        browser.goto("about:blank").await;
        browser.goto(&bob.url).await;
        browser.wait_text("#items-title", &format!("({n})")).await;
        let ms = browser
            .js(
                "return Number(document.querySelector('main').dataset.rendered) - performance.timeOrigin;",
                json!([]),
            )
            .await;
        let rows = browser
            .js(
                "return document.querySelectorAll('tr[data-item]').length;",
                json!([]),
            )
            .await;
        assert_eq!(rows, json!(100), "the first page has 100 rows");
        page_ms.push(ms.as_f64().unwrap());
    }
    let show = |v: &mut Vec<f64>| {
        v.sort_by(|a, b| a.total_cmp(b));
        format!(
            "min {:.0} ms, median {:.0} ms, max {:.0} ms",
            v[0],
            v[v.len() / 2],
            v[v.len() - 1]
        )
    };
    println!("review desk, {n} items waiting for the reviewer (5 runs each):");
    println!("  first GET /api/queue after the start (the watches' first list): {first_ms:.0} ms");
    println!(
        "  GET /api/queue (from the desk's memory, first page of rows, JSON): {}",
        show(&mut api_ms)
    );
    println!(
        "  queue's first page rendered in Chromium, from navigation: {}",
        show(&mut page_ms)
    );
    drop(browser);
    drop(bob);
    scene.finish().await;
}
