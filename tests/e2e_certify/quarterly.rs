//! Step 1: a quarterly review in two levels, from the launch to the report.

use gatehouse::api::{ApprovalRequest, Phase};
use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

use super::{ok, state, support::tools, World};

/// Step 1; returns the campaign's name.
pub(crate) async fn quarterly_review(w: &World) -> String {
    let user = |n: &str| json!({"kind": "User", "name": n, "apiGroup": "rbac.authorization.k8s.io"});
    let none = json!({});
    w.binding("q", "devs-edit", "edit", json!([user("bob"), user("carol"), {"kind": "Group", "name": "payments-devs", "apiGroup": "rbac.authorization.k8s.io"}]), none.clone()).await;
    w.binding("q", "ledger", "view", json!([user("dave")]),
        json!({"labels": {"app.kubernetes.io/managed-by": "Helm"}, "annotations": {"meta.helm.sh/release-name": "ledger", "meta.helm.sh/release-namespace": w.ns}})).await;
    w.binding("q", "shop", "view", json!([user("erin")]),
        json!({"annotations": {"argocd.argoproj.io/tracking-id": format!("shop:rbac.authorization.k8s.io/RoleBinding:{}/shop", w.ns)}})).await;
    w.binding(
        "q",
        "ci-view",
        "view",
        json!([{"kind": "ServiceAccount", "name": "old-ci", "namespace": w.ns}]),
        none.clone(),
    )
    .await;
    let rotated_uid = w
        .binding("q", "rotated", "view", json!([user("hank")]), none.clone())
        .await;
    w.binding("q", "gina-view", "view", json!([user("gina")]), none.clone())
        .await;
    let crb = format!("ops-admin-{}", w.ns);
    w.binding(
        "q",
        &crb,
        "cluster-admin",
        json!([user("frank"), user("ivan")]),
        none,
    )
    .await;
    let policy = format!("{}-gina-view", w.ns);
    w.scene
        .create_policy(
            "gina-view",
            json!({"requesters": {"users": ["gina"]}, "roles": [{"kind": "ClusterRole", "name": "view"}],
            "namespaces": {"names": [w.ns]}, "duration": {"default": "1h", "max": "2h"},
            "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;

    let campaign = w
        .campaign(
            "q",
            json!({
                "duration": "1h", "remediation": "Automatic", "justification": "RequireForRevoke",
                "reviewers": {"levels": [{"name": "owners", "namespaceOwners": true, "groups": ["ops-leads"]},
                                         {"name": "security", "groups": ["security"]}]}
            }),
        )
        .await;
    // bob, carol, payments-devs, dave, erin, old-ci, hank, gina, frank, ivan.
    let items = w.launched(&campaign, 10).await;
    let mut keys: Vec<(String, String)> = items
        .iter()
        .map(|i| (i.spec.binding.name.clone(), i.spec.subject.name.clone()))
        .collect();
    keys.dedup();
    assert_eq!(keys.len(), 10, "one item per binding and subject: {keys:?}");

    // The stale ServiceAccount binding is recommended for revocation, in words.
    let ci = w.item(&campaign, "ci-view", "old-ci").await;
    let s = ci.status.clone().unwrap();
    assert_eq!(s.recommendation_label(), "Revoke");
    assert!(
        s.reasons.iter().any(|r| r.message.contains("does not exist")),
        "{:?}",
        s.reasons
    );
    let listed = ok(
        &w.lena,
        &[
            "certify",
            "list",
            "--campaign",
            &campaign,
            "--recommendation",
            "revoke",
        ],
    );
    assert!(listed.contains(&ci.name_any()), "{listed}");

    // A revoke that removes one subject of three, decided in two levels.
    let carol = w.item(&campaign, "devs-edit", "carol").await;
    let out = ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &carol.name_any(),
            "-m",
            "left the team",
            "--timeout",
            "60s",
        ],
    );
    assert!(
        out.contains("level owners decided Revoke; level security opens"),
        "{out}"
    );
    let (code, out) = w.lena.run_args(&[
        "certify",
        "revoke",
        &carol.name_any(),
        "-m",
        "again",
        "--timeout",
        "60s",
    ]);
    assert_eq!(code, Some(4), "lena decided level one already: {out}");
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &carol.name_any(),
            "-m",
            "confirmed",
            "--timeout",
            "60s",
        ],
    );
    w.item_until(&carol.name_any(), "carol removed", |i| {
        state(i).as_deref() == Some("Done")
    })
    .await;
    let devs = w.role_bindings().get("devs-edit").await.unwrap();
    assert_eq!(
        World::subjects(&devs),
        ["bob", "payments-devs"],
        "exactly carol went"
    );

    // A reassign: lena hands bob's item to olaf, who decides it; sam keeps it.
    let bob = w.item(&campaign, "devs-edit", "bob").await;
    ok(
        &w.lena,
        &[
            "certify",
            "reassign",
            &bob.name_any(),
            "--to",
            "user:olaf",
            "-m",
            "olaf knows bob's work",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.olaf,
        &[
            "certify",
            "approve",
            &bob.name_any(),
            "-m",
            "still on the team",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &["certify", "approve", &bob.name_any(), "--timeout", "60s"],
    );
    let bob = w
        .item_until(&bob.name_any(), "bob kept", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.decision.to_string() == "Approved")
        })
        .await;
    let levels = bob.status.unwrap().levels;
    assert_eq!(levels[0].reviewed_by.as_deref(), Some("olaf"));
    assert_eq!(
        levels[0].reassigned_to.as_ref().map(|p| p.users.clone()),
        Some(vec!["olaf".to_string()])
    );

    tools_bindings_are_left_alone(w, &campaign).await;
    recreated_binding_is_not_touched(w, &campaign, &rotated_uid).await;
    cluster_admin_needs_an_admin(w, &campaign, &crb).await;
    converted_to_jit_access(w, &campaign, &policy).await;

    let (code, csv) = w.sam.run_args(&["certify", "report", &campaign, "-o", "csv"]);
    assert_eq!(code, Some(0), "{csv}");
    assert!(csv.contains("SHA-256 of the report: "), "{csv}");
    assert!(
        csv.contains("sam Revoke at level security (counted: Decided): confirmed"),
        "{csv}"
    );
    let report = w.scene.dir.join("certification-report.csv");
    std::fs::write(&report, &csv).unwrap();
    eprintln!(
        "e2e: the report of the quarterly campaign is in {}",
        report.display()
    );
    campaign
}

/// Helm's and Argo CD's bindings: revoked, left alone, named; Done when the tool drops the subject.
async fn tools_bindings_are_left_alone(w: &World, campaign: &str) {
    for (binding, subject, tool) in [
        ("ledger", "dave", "Helm ledger"),
        ("shop", "erin", "Argo CD shop"),
    ] {
        let item = w.item(campaign, binding, subject).await;
        ok(
            &w.lena,
            &[
                "certify",
                "revoke",
                &item.name_any(),
                "-m",
                "not needed",
                "--timeout",
                "60s",
            ],
        );
        ok(
            &w.sam,
            &[
                "certify",
                "revoke",
                &item.name_any(),
                "-m",
                "agreed",
                "--timeout",
                "60s",
            ],
        );
        let item = w
            .item_until(&item.name_any(), "managed externally", |i| {
                state(i).as_deref() == Some("ManagedExternally")
            })
            .await;
        let message = item.status.unwrap().remediation.unwrap().message;
        assert!(message.starts_with(&format!("managed by {tool}: ")), "{message}");
        assert!(
            message.contains(&format!("marks this Done once User {subject} is gone")),
            "{message}"
        );
        assert!(
            w.role_bindings().get(binding).await.is_ok(),
            "{binding} untouched"
        );
    }
    // The next `helm upgrade` drops dave: the item turns Done by itself.
    let drop_dave =
        json!({"subjects": [{"kind": "User", "name": "nobody", "apiGroup": "rbac.authorization.k8s.io"}]});
    w.role_bindings()
        .patch("ledger", &PatchParams::default(), &Patch::Merge(&drop_dave))
        .await
        .unwrap();
    let dave = w.item(campaign, "ledger", "dave").await;
    w.item_until(&dave.name_any(), "Done once dave is gone", |i| {
        state(i).as_deref() == Some("Done")
    })
    .await;
}

/// A binding deleted and re-created with the same name during the run is another grant.
async fn recreated_binding_is_not_touched(w: &World, campaign: &str, old_uid: &str) {
    let hank = w.item(campaign, "rotated", "hank").await;
    let old = w.role_bindings().get("rotated").await.unwrap();
    w.role_bindings()
        .delete("rotated", &DeleteParams::default())
        .await
        .unwrap();
    let mut again = old.clone();
    again.metadata = kube::api::ObjectMeta {
        name: old.metadata.name.clone(),
        labels: old.metadata.labels.clone(),
        ..Default::default()
    };
    let again = w
        .role_bindings()
        .create(&PostParams::default(), &again)
        .await
        .unwrap();
    assert_ne!(again.uid().as_deref(), Some(old_uid));
    ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &hank.name_any(),
            "-m",
            "x",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &hank.name_any(),
            "-m",
            "y",
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&hank.name_any(), "Gone", |i| state(i).as_deref() == Some("Gone"))
        .await;
    let message = item.status.unwrap().remediation.unwrap().message;
    assert!(message.contains("was re-created"), "{message}");
    assert_eq!(
        World::subjects(&w.role_bindings().get("rotated").await.unwrap()),
        ["hank"]
    );
}

/// cluster-admin: protected, so the operator never removes it itself (nor could
/// it have granted it); the command works.
async fn cluster_admin_needs_an_admin(w: &World, campaign: &str, crb: &str) {
    let frank = w.item(campaign, crb, "frank").await;
    ok(
        &w.olaf,
        &[
            "certify",
            "revoke",
            &frank.name_any(),
            "-m",
            "not on call",
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &frank.name_any(),
            "-m",
            "ok",
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&frank.name_any(), "a command for an admin", |i| {
            i.status
                .as_ref()
                .and_then(|s| s.remediation.as_ref())
                .is_some_and(|r| r.command.is_some())
        })
        .await;
    let rem = item.status.unwrap().remediation.unwrap();
    assert_eq!(rem.state.to_string(), "Pending");
    assert_eq!(
        rem.hold,
        Some(gatehouse::api::RemediationHold::ClusterAdminEquivalent)
    );
    assert!(
        rem.message
            .starts_with("protected: ClusterRole/cluster-admin grants every verb on every resource"),
        "{}",
        rem.message
    );
    let status = ok(&w.sam, &["certify", "status", &frank.name_any()]);
    assert!(
        status.contains("run: kubectl patch clusterrolebinding/"),
        "{status}"
    );
    let command = rem.command.unwrap();
    let kubeconfig = w.scene.cluster.kubeconfig.to_str().unwrap();
    let tools_bin = tools::bin_dir().to_str().unwrap().to_string();
    let ran = std::process::Command::new("bash")
        .args(["-c", &command])
        .env("KUBECONFIG", kubeconfig)
        .env(
            "PATH",
            format!("{tools_bin}:{}", std::env::var("PATH").unwrap_or_default()),
        )
        .output()
        .unwrap();
    assert!(
        ran.status.success(),
        "{command}: {}",
        String::from_utf8_lossy(&ran.stderr)
    );
    w.item_until(&frank.name_any(), "Done", |i| state(i).as_deref() == Some("Done"))
        .await;
    let left = Api::<ClusterRoleBinding>::all(w.admin()).get(crb).await.unwrap();
    let names: Vec<String> = left.subjects.iter().flatten().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["ivan"]);
}

/// Revoke with convertTo: the standing binding goes, and gina gets view just in time.
async fn converted_to_jit_access(w: &World, campaign: &str, policy: &str) {
    let gina = w.item(campaign, "gina-view", "gina").await;
    ok(
        &w.lena,
        &[
            "certify",
            "revoke",
            &gina.name_any(),
            "-m",
            "ask when needed",
            "--convert-to",
            policy,
            "--timeout",
            "60s",
        ],
    );
    ok(
        &w.sam,
        &[
            "certify",
            "revoke",
            &gina.name_any(),
            "-m",
            "agreed",
            "--convert-to",
            policy,
            "--timeout",
            "60s",
        ],
    );
    let item = w
        .item_until(&gina.name_any(), "binding deleted", |i| {
            state(i).as_deref() == Some("Done")
        })
        .await;
    assert_eq!(item.status.unwrap().converted_to.as_deref(), Some(policy));
    assert!(
        w.role_bindings().get_opt("gina-view").await.unwrap().is_none(),
        "her only subject: deleted"
    );

    let request: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "gina-view-jit", "namespace": w.ns},
        "spec": {"requester": {"username": "gina", "groups": ["developers"]}, "policy": policy,
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": "30m", "reason": "incident"}
    }))
    .unwrap();
    let gina_client = w.scene.cluster.as_user("gina", &["developers"]);
    let req = Api::<ApprovalRequest>::namespaced(gina_client, &w.ns)
        .create(&PostParams::default(), &request)
        .await
        .unwrap();
    w.scene.phase_becomes("gina-view-jit", Phase::Pending).await;
    w.scene.approve(&req).await;
    let grant = w.scene.active_grant("gina-view-jit").await;
    let rb = w.role_bindings().get(&grant).await.unwrap();
    assert_eq!(World::subjects(&rb), ["gina"]);
}
