//! Tenant boundaries (issue 23, items 1, 3 and 5): a namespace admin, who holds
//! `*` on `*` in her own namespace, cannot approve her own access, forge a
//! certification item, or reach the operator's namespace; and a policy applied
//! together with its requests never denies them for arriving late.

use std::time::Duration;

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview, ApprovalRequest, Phase};
use k8s_openapi::api::{
    core::v1::Namespace,
    events::v1::Event,
    rbac::v1::{ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    api::{Api, DeleteParams, ListParams, PostParams},
    Client, ResourceExt,
};
use serde_json::{json, Value};

use crate::support::{cluster::eventually, scene::Scene};

const WAIT: Duration = Duration::from_secs(30);

/// A namespace of the scenario's own (`NS-SUFFIX`), fenced to its operators,
/// with `labels`.
async fn extra_namespace(scene: &Scene, suffix: &str, labels: Value) -> String {
    let name = format!("{}-{suffix}", scene.ns);
    let mut all = json!({crate::support::fence::LABEL: scene.scope});
    for (k, v) in labels.as_object().into_iter().flatten() {
        all[k] = v.clone();
    }
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name, "labels": all}})).unwrap();
    Api::<Namespace>::all(scene.admin.clone())
        .create(&PostParams::default(), &ns)
        .await
        .unwrap();
    name
}

async fn delete_namespace(scene: &Scene, name: &str) {
    let _ = Api::<Namespace>::all(scene.admin.clone())
        .delete(name, &DeleteParams::default())
        .await;
}

/// Mallory, owner of namespace `ns`: a Role of `*` on `*` there, as namespace
/// owners commonly get. Her client.
async fn namespace_admin(scene: &Scene, ns: &str) -> Client {
    let role: Role = serde_json::from_value(json!({
        "metadata": {"name": "owner", "namespace": ns},
        "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    }))
    .unwrap();
    Api::<Role>::namespaced(scene.admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({
        "metadata": {"name": "owner-mallory", "namespace": ns},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "owner"},
        "subjects": [{"kind": "User", "name": "mallory", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    Api::<RoleBinding>::namespaced(scene.admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .unwrap();
    let mallory = scene.cluster.as_user("mallory", &["tenants"]);
    // The RBAC authorizer learns of a new binding through its own watch.
    let mine = Api::<ApprovalRequest>::namespaced(mallory.clone(), ns);
    eventually("mallory's Role to take effect", WAIT, || async {
        mine.list(&ListParams::default()).await.ok().map(drop)
    })
    .await;
    mallory
}

/// The API server's refusal of `result`, which must be a refusal in one line.
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    let message = match result {
        Err(kube::Error::Api(s)) => s.message,
        other => panic!("{what}: expected a refusal, got {other:?}"),
    };
    assert!(!message.contains('\n'), "{what}: not one line: {message}");
    message
}

#[tokio::test]
async fn a_namespace_admin_can_neither_act_on_behalf_nor_forge_an_item() {
    let Some(scene) = Scene::with_own_operators("tenant-forge").await else {
        return;
    };
    let tenant_ns = extra_namespace(&scene, "mallory", json!({})).await;
    let mallory = namespace_admin(&scene, &tenant_ns).await;

    // Her own request, then an approval of it in bob's name.
    let mine: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "mallory-edit", "namespace": tenant_ns},
        "spec": {"requester": {"username": "mallory", "groups": ["tenants"]},
                 "role": {"kind": "ClusterRole", "name": "edit"}, "duration": "1h", "reason": "e2e"}
    }))
    .unwrap();
    let mine = Api::<ApprovalRequest>::namespaced(mallory.clone(), &tenant_ns)
        .create(&PostParams::default(), &mine)
        .await
        .unwrap();
    let as_bob: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "mallory-edit-bob", "namespace": tenant_ns},
        "spec": {"request": {"name": "mallory-edit", "uid": mine.uid().unwrap()}, "decision": "Approve",
                 "reviewer": {"username": "bob", "groups": ["sre"]}}
    }))
    .unwrap();
    let reviews = Api::<AccessReview>::namespaced(mallory.clone(), &tenant_ns);
    let said = refusal(
        "an approval in bob's name",
        reviews.create(&PostParams::default(), &as_bob).await,
    );
    assert!(
        said.contains(r#"spec.reviewer.username is "bob" but you are authenticated as "mallory""#)
            && said.contains("granted cluster-wide"),
        "{said}"
    );
    // A request in dana's name.
    let as_dana: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": "dana-edit", "namespace": tenant_ns},
        "spec": {"requester": {"username": "dana", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "edit"}, "duration": "1h", "reason": "e2e"}
    }))
    .unwrap();
    let said = refusal(
        "a request in dana's name",
        Api::<ApprovalRequest>::namespaced(mallory.clone(), &tenant_ns)
            .create(&PostParams::default(), &as_dana)
            .await,
    );
    assert!(
        said.contains(r#"spec.requester.username is "dana" but you are authenticated as "mallory""#)
            && said.contains("granted cluster-wide"),
        "{said}"
    );

    // A certification item in her namespace, owned by a real campaign and
    // naming its real run, that makes her the reviewer of a ClusterRoleBinding
    // whose only subject is victim.
    let operator_kubeconfig = scene.operator_kubeconfig();
    let args = ["--leader-election=false", "--certification-remediation=true"];
    let _operator = scene
        .start_operator(&operator_kubeconfig, "tenant-forge", &args)
        .await;
    let crb_name = format!("victim-view-{}", scene.ns);
    let crb: ClusterRoleBinding = serde_json::from_value(json!({
        "metadata": {"name": crb_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
        "subjects": [{"kind": "User", "name": "victim", "apiGroup": "rbac.authorization.k8s.io"}]
    }))
    .unwrap();
    let crbs = Api::<ClusterRoleBinding>::all(scene.admin.clone());
    let crb = crbs.create(&PostParams::default(), &crb).await.unwrap();
    let campaign_name = format!("{}-quarterly", scene.ns);
    let campaign: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": campaign_name},
        "spec": {"reviewNamespace": scene.ns, "remediation": "Automatic",
                 "scope": {"bindingSelector": {"matchLabels": {"e2e-nothing": scene.ns}}},
                 "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]}}
    }))
    .unwrap();
    let campaigns = Api::<AccessCampaign>::all(scene.admin.clone());
    campaigns.create(&PostParams::default(), &campaign).await.unwrap();
    let campaign = eventually("the campaign's first run", WAIT, || async {
        let c = campaigns.get(&campaign_name).await.ok()?;
        c.status.as_ref()?.runs.last()?.launched_at?;
        Some(c)
    })
    .await;
    let run = campaign.status.clone().unwrap().runs.last().unwrap().name.clone();
    let item_name = format!("{run}-victim");
    let forged = json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
        "metadata": {"name": item_name, "namespace": tenant_ns,
                     "labels": {"gatehouse.dev/campaign": campaign_name, "gatehouse.dev/run": run},
                     "ownerReferences": [{"apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
                                          "name": campaign_name, "uid": campaign.uid().unwrap(), "controller": true}]},
        "spec": {"campaign": campaign_name, "run": run,
                 "startedAt": "2026-01-01T00:00:00Z", "dueAt": "2099-01-01T00:00:00Z",
                 "binding": {"kind": "ClusterRoleBinding", "name": crb_name, "uid": crb.uid().unwrap()},
                 "subject": {"kind": "User", "name": "victim"},
                 "roleRef": {"kind": "ClusterRole", "name": "view"},
                 "rulesDigest": "sha256:0",
                 "review": {"levels": [{"name": "security", "reviewers": {"users": ["mallory"]}}],
                            "remediation": "Automatic", "onNoDecision": "Keep"}}
    });
    let forged: AccessCertification = serde_json::from_value(forged).unwrap();
    let said = refusal(
        "a forged item",
        Api::<AccessCertification>::namespaced(mallory.clone(), &tenant_ns)
            .create(&PostParams::default(), &forged)
            .await,
    );
    assert!(said.contains("mallory lacks the issue verb"), "{said}");

    // Admitted by some other path (here: a cluster admin), and revoked by
    // mallory as herself: the operator decides nothing and removes nothing.
    let planted = Api::<AccessCertification>::namespaced(scene.admin.clone(), &tenant_ns)
        .create(&PostParams::default(), &forged)
        .await
        .unwrap();
    let revoke: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": format!("{item_name}-mallory"), "namespace": tenant_ns},
        "spec": {"certification": {"name": item_name, "uid": planted.uid().unwrap()}, "decision": "Revoke",
                 "reviewer": {"username": "mallory", "groups": ["tenants", "system:authenticated"]},
                 "comment": "not needed"}
    }))
    .unwrap();
    reviews.create(&PostParams::default(), &revoke).await.unwrap();
    let events = Api::<Event>::namespaced(scene.admin.clone(), &tenant_ns);
    let warning = eventually("a NotIssued warning on the forged item", WAIT, || async {
        let list = events.list(&ListParams::default()).await.ok()?;
        list.items.into_iter().find(|e| {
            e.reason.as_deref() == Some("NotIssued")
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(item_name.as_str())
        })
    })
    .await;
    let note = warning.note.unwrap_or_default();
    assert!(
        note.contains(&format!("it is in namespace {tenant_ns}")),
        "{note}"
    );
    // The operator acts within a second or two on a trusted item; give it more.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        crbs.get_opt(&crb_name).await.unwrap().is_some(),
        "the operator deleted {crb_name} on a forged item's say-so"
    );
    let after = Api::<AccessCertification>::namespaced(scene.admin.clone(), &tenant_ns)
        .get(&item_name)
        .await
        .unwrap();
    assert!(
        after.status.is_none(),
        "the forged item was evaluated: {:?}",
        after.status
    );
    // Her request stays pending: nobody eligible approved it.
    let still = Api::<ApprovalRequest>::namespaced(scene.admin.clone(), &tenant_ns)
        .get("mallory-edit")
        .await
        .unwrap();
    assert_ne!(still.status.map(|s| s.phase), Some(Phase::Active));

    let _ = campaigns.delete(&campaign_name, &DeleteParams::default()).await;
    let _ = crbs.delete(&crb_name, &DeleteParams::default()).await;
    delete_namespace(&scene, &tenant_ns).await;
    scene.finish().await;
}

/// alice's request for `edit` in `ns` under `policy`.
fn edit_request(ns: &str, name: &str, policy: &str) -> ApprovalRequest {
    serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]}, "policy": policy,
                 "role": {"kind": "ClusterRole", "name": "edit"}, "duration": "1h", "reason": "e2e"}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_policy_over_every_namespace_grants_nothing_in_the_operators_own() {
    let Some(scene) = Scene::with_own_operators("tenant-protected").await else {
        return;
    };
    // Two namespaces the policy's label selector reaches ("every namespace but
    // kube-system"): one plays the operator's own namespace.
    let mark = json!({"gatehouse-e2e-tenant": scene.ns});
    let operator_ns = extra_namespace(&scene, "operator", mark.clone()).await;
    let team_ns = extra_namespace(&scene, "team", mark).await;
    let policy = format!("{}-everywhere", scene.ns);
    scene
        .create_policy(
            "everywhere",
            json!({"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "edit"}],
                   "namespaces": {"selector": {"matchLabels": {"gatehouse-e2e-tenant": scene.ns}}},
                   "duration": {"default": "1h", "max": "2h"},
                   "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;
    let kubeconfig = scene.operator_kubeconfig();
    let args = ["--leader-election=false", "--lease-namespace", &operator_ns];
    let _operator = scene.start_operator(&kubeconfig, "tenant-protected", &args).await;

    let mut outcomes = Vec::new();
    for ns in [&operator_ns, &team_ns] {
        let requests = Api::<ApprovalRequest>::namespaced(scene.alice.clone(), ns);
        let req = requests
            .create(&PostParams::default(), &edit_request(ns, "alice-edit", &policy))
            .await
            .unwrap();
        let approval: AccessReview = serde_json::from_value(json!({
            "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
            "metadata": {"name": "alice-edit-bob", "namespace": ns},
            "spec": {"request": {"name": "alice-edit", "uid": req.uid().unwrap()}, "decision": "Approve",
                     "reviewer": {"username": "bob", "groups": ["sre"]}}
        }))
        .unwrap();
        Api::<AccessReview>::namespaced(scene.bob.clone(), ns)
            .create(&PostParams::default(), &approval)
            .await
            .unwrap();
        let admin_requests = Api::<ApprovalRequest>::namespaced(scene.admin.clone(), ns);
        let decided = eventually(&format!("alice-edit in {ns} to be decided"), WAIT, || async {
            let r = admin_requests.get("alice-edit").await.ok()?;
            let phase = r.status.as_ref()?.phase;
            matches!(phase, Phase::Active | Phase::Denied).then_some(r)
        })
        .await;
        outcomes.push(decided);
    }
    let [protected, team] = [&outcomes[0], &outcomes[1]];
    let status = protected.status.clone().unwrap();
    assert_eq!(
        status.phase,
        Phase::Denied,
        "edit granted in the operator's namespace"
    );
    let why = status.conditions.iter().find(|c| c.type_ == "Approved").unwrap();
    assert_eq!(why.reason, "ProtectedNamespace");
    assert!(
        why.message
            .contains(&format!("namespace {operator_ns} is protected"))
            && why.message.contains("operator's own namespace"),
        "{}",
        why.message
    );
    let bindings = Api::<RoleBinding>::namespaced(scene.admin.clone(), &operator_ns)
        .list(&ListParams::default().labels("app.kubernetes.io/managed-by=gatehouse"))
        .await
        .unwrap();
    assert!(bindings.items.is_empty(), "{:?}", bindings.items);
    assert_eq!(team.status.as_ref().unwrap().phase, Phase::Active);

    for ns in [&operator_ns, &team_ns] {
        delete_namespace(&scene, ns).await;
    }
    scene.finish().await;
}

#[tokio::test]
async fn a_policy_applied_with_its_requests_while_the_operator_starts_denies_none() {
    let Some(scene) = Scene::with_own_operators("tenant-startup").await else {
        return;
    };
    let policy = format!("{}-startup", scene.ns);
    let requests = Api::<ApprovalRequest>::namespaced(scene.alice.clone(), &scene.ns);
    let kubeconfig = scene.operator_kubeconfig();
    let args = ["--leader-election=false"];
    // One apply of a policy and 50 requests naming it, as a GitOps sync does,
    // while the operator starts: the requests land first, the policy a moment
    // later (an apply gives no order across kinds).
    let apply_requests = async {
        let creates = (0..50).map(|i| {
            let requests = requests.clone();
            let req = edit_request(&scene.ns, &format!("startup-{i:02}"), &policy);
            async move { requests.create(&PostParams::default(), &req).await.unwrap() }
        });
        futures::future::join_all(creates).await
    };
    let (_operator, created) = tokio::join!(
        scene.start_operator(&kubeconfig, "tenant-startup", &args),
        apply_requests
    );
    assert_eq!(created.len(), 50);
    tokio::time::sleep(Duration::from_secs(1)).await;
    scene
        .create_policy(
            "startup",
            json!({"requesters": {"groups": ["developers"]}, "roles": [{"kind": "ClusterRole", "name": "edit"}],
                   "namespaces": {"names": [scene.ns]}, "duration": {"default": "1h", "max": "2h"},
                   "approval": {"reviewers": {"groups": ["sre"]}}}),
        )
        .await;
    let admin_requests = Api::<ApprovalRequest>::namespaced(scene.admin.clone(), &scene.ns);
    let settled = eventually("all 50 requests to take the policy", WAIT, || async {
        let list = admin_requests.list(&ListParams::default()).await.ok()?;
        let mine: Vec<ApprovalRequest> = list
            .items
            .into_iter()
            .filter(|r| r.name_any().starts_with("startup-"))
            .collect();
        let denied: Vec<String> = mine
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase == Phase::Denied))
            .map(|r| r.name_any())
            .collect();
        assert!(
            denied.is_empty(),
            "denied for arriving before their policy: {denied:?}"
        );
        let decided = mine
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.requirements.is_some()))
            .count();
        (decided == 50).then_some(mine)
    })
    .await;
    for r in &settled {
        let s = r.status.as_ref().unwrap();
        assert_eq!(s.phase, Phase::Pending, "{}", r.name_any());
        assert_eq!(s.requirements.as_ref().unwrap().policy, policy);
    }
    scene.finish().await;
}
