//! The review desk in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, which `.ci/run` installs) driven through WebDriver, against
//! `kubectl gatehouse ui` and a real API server with the operator.
//!
//! Skips like the other end-to-end suites without `GATEHOUSE_E2E_KUBECONFIG`, and
//! without Chromium; under `GATEHOUSE_E2E_REQUIRED` both are failures.
//! `GATEHOUSE_UI_SCREENSHOTS=docs/ui` also saves a screenshot of each page
//! (docs/ui.md shows them).

#[path = "../support/mod.rs"]
mod support;

mod webdriver;

use std::time::Duration;

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview, Phase};
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use kube::api::{Api, ListParams, PostParams};
use serde_json::json;

use support::{cluster::eventually, desk::Desk, scene::Scene};
use webdriver::Browser;

/// Ready for a scenario: the scene and a browser, or `None` to skip.
async fn browser_for(scene: &Scene) -> Option<Browser> {
    Browser::start(&scene.dir.join("chromium")).await
}

/// Opens the desk's address, then the page `route` (`#/queue`, ...).
async fn open(browser: &Browser, desk: &Desk, route: &str) {
    browser.goto(&desk.url).await;
    browser.wait_for("main[data-page]").await;
    if route != "#/queue" {
        browser.js("location.hash = arguments[0];", json!([route])).await;
        let page = route
            .trim_start_matches("#/")
            .split('/')
            .next()
            .unwrap()
            .to_string();
        browser.wait_for(&format!("main[data-page=\"{page}\"]")).await;
    }
}

/// True while the page has not been reloaded since `mark`.
async fn same_document(browser: &Browser) -> bool {
    browser
        .js("return window.__sameDocument === true;", json!([]))
        .await
        == json!(true)
}

async fn mark(browser: &Browser) {
    browser.js("window.__sameDocument = true;", json!([])).await;
}

#[tokio::test]
async fn a_reviewer_approves_from_the_queue_and_sees_the_grant_appear_without_reload() {
    let Some(scene) = Scene::shared("ui-queue").await else {
        return;
    };
    let Some(browser) = browser_for(&scene).await else {
        return;
    };
    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &scene.ns);
    open(&browser, &bob, "#/queue").await;
    browser.wait_for("#requests-title").await;
    mark(&browser).await;

    // alice files a request with the plugin; bob's open queue shows it by itself.
    let alice = scene.plugin_user("alice", &["developers"]);
    let (code, out) = alice.run_args(&[
        "request",
        "view",
        "-n",
        &scene.ns,
        "--name",
        "ui-view",
        "--for",
        "1h",
        "--reason",
        "deploy the fix for INC-42",
    ]);
    assert_eq!(code, Some(0), "{out}");
    let row = format!("tr[data-request=\"{}/ui-view\"]", scene.ns);
    browser.wait_for(&row).await;
    browser.wait_text(&row, "deploy the fix for INC-42").await;
    browser.screenshot("queue").await;

    // Without a mouse: `/` to filter, the name, Escape, and `a` approves the row.
    browser
        .js(
            "document.activeElement && document.activeElement.blur();",
            json!([]),
        )
        .await;
    browser.press("/").await;
    // Its namespace is this run's own (earlier runs may leave requests named alike).
    for c in scene.ns.chars() {
        browser.press(&c.to_string()).await;
    }
    browser.wait_text("#requests-title", "(1)").await;
    browser.press("\u{E00C}").await;
    browser.press("a").await;
    browser.wait_for("dialog#ask[open]").await;
    browser.type_into("#ask-comment", "ok for today").await;
    browser.click("#ask-ok").await;
    let said = browser.wait_text("#notice", "Accepted by the operator").await;
    assert!(!said.contains('\n'), "{said}");
    browser.wait_gone(&row).await;

    // The request page shows the grant and its countdown, still the same document.
    browser
        .js(
            "location.hash = arguments[0];",
            json!([format!("#/request/{}/ui-view", scene.ns)]),
        )
        .await;
    let grant = browser.wait_text("#grant-binding", "RoleBinding").await;
    assert!(grant.contains("left"), "{grant}");
    browser.wait_text("#phase", "Active").await;
    browser.wait_text("#decisions", "bob").await;
    browser.screenshot("request").await;
    assert!(same_document(&browser).await, "the page was reloaded");
    let active = scene.phase_becomes("ui-view", Phase::Active).await;
    assert!(active.status.unwrap().grant.is_some());
    drop(browser);
    drop(bob);
    scene.finish().await;
}

#[tokio::test]
async fn a_self_approval_shows_the_one_line_refusal_and_my_requests_offer_extend() {
    let Some(scene) = Scene::shared("ui-self").await else {
        return;
    };
    let Some(browser) = browser_for(&scene).await else {
        return;
    };
    scene.request("ui-mine", "1h").await;
    scene.phase_becomes("ui-mine", Phase::Pending).await;
    let alice = Desk::start(&scene.user_kubeconfig("alice", &["developers"]), &scene.ns);
    // A requester may not list certification items: her queue says so (no error).
    let queue = alice.get("/api/queue").await;
    assert_eq!(queue.status, 200, "{queue:?}");
    let queue = queue.json();
    assert_eq!(queue["items"], json!([]), "{queue}");
    assert!(
        queue["notes"][0]
            .as_str()
            .is_some_and(|n| n.contains("may not read AccessCertifications")),
        "{queue}"
    );
    open(&browser, &alice, &format!("#/request/{}/ui-mine", scene.ns)).await;
    browser.wait_text("#phase", "Pending").await;
    browser.click("#approve").await;
    browser.wait_for("dialog#ask[open]").await;
    browser.click("#ask-ok").await;
    let said = browser.wait_text("#notice", "Not accepted").await;
    assert!(said.contains("SelfApproval"), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    browser.screenshot("self-approval").await;
    let reviews = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(reviews.items.iter().all(|r| r.spec.reviewer.username == "alice"));

    // Once bob approves, her requests page offers to extend it.
    let req = scene.requests(&scene.admin).get("ui-mine").await.unwrap();
    scene.approve(&req).await;
    scene.phase_becomes("ui-mine", Phase::Active).await;
    browser.js("location.hash = '#/mine';", json!([])).await;
    let row = format!("tr[data-request=\"{}/ui-mine\"]", scene.ns);
    browser.wait_text(&row, "Active").await;
    browser.click("button[aria-label=\"extend ui-mine\"]").await;
    let said = browser.wait_text("#notice", "Extension").await;
    assert!(said.contains("filed"), "{said}");
    browser.screenshot("my-requests").await;
    let requests = scene
        .requests(&scene.admin)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(
        requests
            .items
            .iter()
            .any(|r| r.spec.extends.as_deref() == Some("ui-mine")),
        "no request extends ui-mine"
    );
    drop(browser);
    drop(alice);
    scene.finish().await;
}

#[tokio::test]
async fn another_origin_or_a_page_without_the_secret_gets_nothing() {
    let Some(scene) = Scene::shared("ui-origin").await else {
        return;
    };
    let Some(browser) = browser_for(&scene).await else {
        return;
    };
    scene.request("ui-secret", "1h").await;
    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &scene.ns);
    // A page of another origin, even one that knows the secret.
    browser.goto("about:blank").await;
    for headers in [json!({}), json!({"X-Gatehouse-Secret": bob.secret})] {
        let script = format!(
            "const done = arguments[arguments.length - 1];
             fetch({:?}, {{headers: {headers}}}).then(r => r.text()).then(t => done('read ' + t), e => done('error ' + e));",
            format!("{}/api/queue", bob.base())
        );
        let got = browser.js_async(&script).await;
        let got = got.as_str().unwrap_or_default();
        assert!(got.starts_with("error"), "{headers}: {got}");
        assert!(!got.contains("ui-secret"), "{got}");
    }
    // The desk's own page, opened without the address that carries the secret.
    browser.goto(&bob.base()).await;
    let said = browser.wait_text("main", "needs the address").await;
    assert!(!said.contains("ui-secret"), "{said}");
    drop(browser);
    drop(bob);
    scene.finish().await;
}

/// 50 RoleBindings of `view` (users u01..u50) in the scene's namespace, a
/// campaign over them reviewed by bob, and bob's right to read its items.
async fn fifty_items(scene: &Scene) -> String {
    let label = format!("ui-{}", scene.ns);
    let bindings = Api::<RoleBinding>::namespaced(scene.admin.clone(), &scene.ns);
    for n in 1..=50 {
        let rb: RoleBinding = serde_json::from_value(json!({
            "metadata": {"name": format!("b-{n:02}"), "labels": {"e2e-ui": label}},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"kind": "User", "name": format!("u{n:02}"), "apiGroup": "rbac.authorization.k8s.io"}]
        }))
        .unwrap();
        bindings.create(&PostParams::default(), &rb).await.unwrap();
    }
    // What gatehouse-reviewer gives on items (config/rbac/users.yaml), here only.
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "item-reader"},
        "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["accesscertifications"], "verbs": ["get", "list", "watch"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(scene.admin.clone(), &scene.ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let reviewer: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "bob-item-reader"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "item-reader"},
        "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    bindings.create(&PostParams::default(), &reviewer).await.unwrap();
    let name = format!("{}-quarterly", scene.ns);
    let campaign: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": name},
        "spec": {"reviewNamespace": scene.ns, "duration": "1h", "justification": "RequireForRevoke",
                 "remediation": "Manual",
                 "scope": {"bindingSelector": {"matchLabels": {"e2e-ui": label}}},
                 "reviewers": {"levels": [{"name": "security", "users": ["bob"]}]}}
    }))
    .unwrap();
    Api::<AccessCampaign>::all(scene.admin.clone())
        .create(&PostParams::default(), &campaign)
        .await
        .unwrap();
    let theirs = Api::<AccessCertification>::namespaced(scene.bob.clone(), &scene.ns);
    eventually("bob's Role to take effect", Duration::from_secs(30), || async {
        theirs.list(&ListParams::default()).await.ok().map(drop)
    })
    .await;
    let items = Api::<AccessCertification>::namespaced(scene.admin.clone(), &scene.ns);
    eventually("50 items, each assessed", Duration::from_secs(90), || async {
        let list = items.list(&ListParams::default()).await.ok()?;
        (list.items.len() == 50 && list.items.iter().all(|i| i.status.is_some())).then_some(())
    })
    .await;
    name
}

#[tokio::test]
async fn a_reviewer_decides_fifty_items_with_bulk_approve_and_one_revoke_with_a_comment() {
    let Some(scene) = Scene::with_own_operators("ui-certify").await else {
        return;
    };
    let Some(browser) = browser_for(&scene).await else {
        return;
    };
    let kubeconfig = scene.operator_kubeconfig();
    let _operator = scene
        .start_operator(&kubeconfig, "ui-certify", &["--leader-election=false"])
        .await;
    let campaign = fifty_items(&scene).await;
    let items = Api::<AccessCertification>::namespaced(scene.admin.clone(), &scene.ns);
    let run = items.list(&ListParams::default()).await.unwrap().items[0]
        .spec
        .run
        .clone();
    let bob = Desk::start(&scene.user_kubeconfig("bob", &["sre"]), &scene.ns);

    let queue = bob.get("/api/queue").await.json();
    let waiting = queue["items"].as_array().map(Vec::len);
    assert_eq!(
        waiting,
        Some(50),
        "{}",
        &queue.to_string()[..2000.min(queue.to_string().len())]
    );
    assert_eq!(queue["itemsTotal"], json!(50), "{queue}");
    // The desk filters by recommendation and pages (100 a page; past the end is the last page).
    let review = bob.get("/api/queue?rec=Review").await.json();
    assert_eq!(
        (&review["items"], &review["itemsTotal"]),
        (&json!([]), &json!(0)),
        "{review}"
    );
    let past = bob.get("/api/queue?rec=Accept&page=7").await.json();
    assert_eq!(
        (past["page"].as_u64(), past["items"].as_array().map(Vec::len)),
        (Some(0), Some(50)),
        "{past}"
    );
    // The queue lists them with their recommendation; the run page groups them.
    open(&browser, &bob, "#/queue").await;
    browser.wait_text("#items-title", "(50)").await;
    open(&browser, &bob, "#/runs").await;
    browser.wait_text("main", &run).await;
    browser.screenshot("campaigns").await;
    browser
        .js(
            "location.hash = arguments[0];",
            json!([format!("#/run/{campaign}/{run}")]),
        )
        .await;
    browser
        .wait_text("main", "50 items, 0 approved, 0 revoked, 50 not decided")
        .await;
    mark(&browser).await;
    let rows = browser
        .js(
            "return document.querySelectorAll('tr[data-item]').length;",
            json!([]),
        )
        .await;
    assert_eq!(rows, json!(50));
    browser.screenshot("run").await;

    // One revoke: the campaign wants a comment, and the dialog says so first.
    browser
        .click(&format!(
            "button[aria-label=\"revoke User u07 {}/b-07\"]",
            scene.ns
        ))
        .await;
    browser.wait_for("dialog#ask[open]").await;
    browser.click("#ask-ok").await;
    browser.wait_text("#ask-error", "comment is required").await;
    browser.type_into("#ask-comment", "u07 left the team").await;
    browser.click("#ask-ok").await;
    browser.wait_text("#notice", "1 of 1 decisions accepted").await;

    // Then every recommended item at once.
    browser.click("#approve-recommended").await;
    browser.wait_for("dialog#ask[open]").await;
    browser
        .type_into("#ask-comment", "quarterly review: still needed")
        .await;
    browser.click("#ask-ok").await;
    browser.wait_text("#notice", "49 of 49 decisions accepted").await;
    browser
        .wait_text("main", "50 items, 49 approved, 1 revoked, 0 not decided")
        .await;
    assert!(same_document(&browser).await, "the page was reloaded");
    browser.screenshot("run-decided").await;
    // The desk's memory follows the decisions: nothing waits for bob any more.
    eventually("bob's queue to empty", Duration::from_secs(10), || async {
        let q = bob.get("/api/queue").await.json();
        (q["itemsTotal"] == json!(0)).then_some(())
    })
    .await;

    let all = items.list(&ListParams::default()).await.unwrap().items;
    let decided: Vec<(String, String)> = all
        .iter()
        .map(|i| {
            (
                i.spec.subject.name.clone(),
                i.status.clone().unwrap().decision.to_string(),
            )
        })
        .collect();
    assert_eq!(
        decided.iter().filter(|(_, d)| d == "Approved").count(),
        49,
        "{decided:?}"
    );
    assert!(decided.contains(&("u07".into(), "Revoked".into())), "{decided:?}");
    let reviews = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .list(&ListParams::default())
        .await
        .unwrap();
    let revoke = reviews
        .items
        .iter()
        .find(|r| r.spec.decision.to_string() == "Revoke")
        .unwrap();
    assert_eq!(revoke.spec.comment.as_deref(), Some("u07 left the team"));
    assert!(reviews.items.iter().all(|r| r.spec.reviewer.username == "bob"));

    // The report: the CLI's bytes and digest. Reading the campaign needs what
    // gatehouse-reviewer gives cluster-wide.
    let reader = format!("{}-campaign-reader", scene.ns);
    let role: ClusterRole = serde_json::from_value(json!({
        "metadata": {"name": reader},
        "rules": [{"apiGroups": ["gatehouse.dev"], "resources": ["accesscampaigns"], "verbs": ["get", "list"]}]
    }))
    .unwrap();
    let binding: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": reader},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": reader},
        "subjects": [{"kind": "User", "name": "bob", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    let roles = Api::<ClusterRole>::all(scene.admin.clone());
    let bindings = Api::<ClusterRoleBinding>::all(scene.admin.clone());
    roles.create(&PostParams::default(), &role).await.unwrap();
    bindings.create(&PostParams::default(), &binding).await.unwrap();
    let campaigns = Api::<AccessCampaign>::all(scene.bob.clone());
    eventually(
        "bob's ClusterRole to take effect",
        Duration::from_secs(30),
        || async { campaigns.get(&campaign).await.ok().map(drop) },
    )
    .await;
    browser.click("#report-csv").await;
    let sha = browser.wait_text("#report-sha", "SHA-256").await;
    let body = bob.get(&format!("/api/report/{campaign}/{run}?format=csv")).await;
    let digest = body.header("x-report-sha256").unwrap().to_string();
    assert!(sha.contains(&digest), "{sha} vs {digest}");
    let (code, cli) = scene.plugin_user("bob", &["sre"]).run_args(&[
        "certify", "report", &campaign, "--run", &run, "-o", "csv", "-n", &scene.ns,
    ]);
    assert_eq!(code, Some(0), "{cli}");
    assert!(cli.contains(&digest), "the CLI's digest differs: {cli}");
    let _ = bindings.delete(&reader, &Default::default()).await;
    let _ = roles.delete(&reader, &Default::default()).await;
    drop(browser);
    drop(bob);
    scene.finish().await;
}
