//! Steps 2 to 4: an operator killed in the middle of a launch, an item nobody
//! decided at the due time, and a run past its retention.

use gatehouse::api::{AccessCampaign, AccessReview};
use kube::{
    api::{Api, ListParams, PostParams},
    ResourceExt,
};
use serde_json::json;

use super::{state, support::cluster::eventually, World, OWNERS, WAIT};

/// Step 2; returns the campaign's name.
pub(crate) async fn restart_mid_launch(w: &mut World) -> String {
    const COUNT: usize = 400;
    for n in 0..COUNT {
        let subject = json!([{"kind": "User", "name": format!("user-{n:03}"), "apiGroup": "rbac.authorization.k8s.io"}]);
        w.binding("bulk", &format!("bulk-{n:03}"), "view", subject, json!({}))
            .await;
    }
    let campaign = w
        .campaign(
            "bulk",
            json!({"duration": "1h", "reviewers": {"levels": [{"name": "owners", "namespaceOwners": true}]}}),
        )
        .await;
    let label = format!("gatehouse.dev/campaign={campaign}");
    let items = w.items();
    let first = eventually("the launch to be under way", WAIT, || async {
        let list = items.list(&ListParams::default().labels(&label)).await.ok()?;
        list.items.into_iter().next()
    })
    .await;
    w.operator = None; // SIGKILL, mid-launch
    let runs = Api::<AccessCampaign>::all(w.admin())
        .get(&campaign)
        .await
        .unwrap()
        .status
        .unwrap()
        .runs;
    assert!(
        runs[0].launched_at.is_none(),
        "killed before the launch finished: {runs:?}"
    );
    let partial = items
        .list(&ListParams::default().labels(&label))
        .await
        .unwrap()
        .items
        .len();
    assert!(partial < COUNT, "{partial} of {COUNT} items when killed");

    // A decision while the operator is down.
    let review: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "lena-while-down", "namespace": w.ns},
        "spec": {"certification": {"name": first.name_any(), "uid": first.uid().unwrap()}, "decision": "Approve",
                 "reviewer": {"username": "lena", "groups": [OWNERS, "system:authenticated"]}}
    }))
    .unwrap();
    Api::<AccessReview>::namespaced(w.scene.cluster.as_user("lena", &[OWNERS]), &w.ns)
        .create(&PostParams::default(), &review)
        .await
        .unwrap();

    w.start_operator().await;
    let all = w.launched(&campaign, COUNT).await;
    let mut keys: Vec<(String, String)> = all
        .iter()
        .map(|i| (i.spec.binding.uid.clone(), i.spec.subject.name.clone()))
        .collect();
    keys.sort();
    keys.dedup();
    assert_eq!(
        (all.len(), keys.len()),
        (COUNT, COUNT),
        "no item twice after the restart"
    );
    let decided = w
        .item_until(&first.name_any(), "lena's decision counted", |i| {
            i.status
                .as_ref()
                .is_some_and(|s| s.decision.to_string() == "Approved")
        })
        .await;
    assert_eq!(
        decided.status.unwrap().levels[0].reviewed_by.as_deref(),
        Some("lena")
    );
    eprintln!("e2e: killed with {partial} of {COUNT} items created; the restart created the rest once");
    campaign
}

/// Step 3; returns the campaign's name.
pub(crate) async fn unreviewed_at_due_time(w: &World) -> String {
    let judy = json!([{"kind": "User", "name": "judy", "apiGroup": "rbac.authorization.k8s.io"}]);
    w.binding("due", "temp-edit", "edit", judy, json!({})).await;
    let campaign = w
        .campaign(
            "due",
            json!({"duration": "20s", "onNoDecision": "Revoke", "remediation": "Automatic",
            "reviewers": {"levels": [{"name": "security", "groups": ["security"]}]}}),
        )
        .await;
    let item = w.launched(&campaign, 1).await.remove(0);
    let closed = w
        .item_until(&item.name_any(), "revoked at the due time", |i| {
            state(i).as_deref() == Some("Done")
        })
        .await;
    let s = closed.status.unwrap();
    assert_eq!(
        (s.decision.to_string(), s.outcome.to_string()),
        ("Unreviewed".into(), "Remove".into())
    );
    assert_eq!(
        s.closed_by.map(|c| format!("{c:?}")).as_deref(),
        Some("NoDecisionRevoke")
    );
    assert!(w.role_bindings().get_opt("temp-edit").await.unwrap().is_none());
    let api = Api::<AccessCampaign>::all(w.admin());
    let run = eventually("the run to complete", WAIT, || async {
        let run = api.get(&campaign).await.ok()?.status?.runs.pop()?;
        run.completed_at.map(|_| run)
    })
    .await;
    assert_eq!((run.unreviewed, run.remediated, run.revoked), (1, 1, 0));
    campaign
}

/// Step 4: a run past its retention leaves nothing behind (its items, their
/// reviews, its entry in `status.runs`) and is not started again.
pub(crate) async fn retention_ends(w: &World) -> String {
    let kim = json!([{"kind": "User", "name": "kim", "apiGroup": "rbac.authorization.k8s.io"}]);
    w.binding("kept", "kim-view", "view", kim, json!({})).await;
    let campaign = w
        .campaign(
            "kept",
            json!({"duration": "5s", "retention": "5s",
                   "reviewers": {"levels": [{"name": "owners", "namespaceOwners": true}]}}),
        )
        .await;
    let item = w.launched(&campaign, 1).await.remove(0);
    super::ok(
        &w.lena,
        &[
            "certify",
            "approve",
            &item.name_any(),
            "-m",
            "kim stays",
            "--timeout",
            "60s",
        ],
    );
    let reviews: Api<AccessReview> = Api::namespaced(w.admin(), &w.ns);
    let of_item = |list: Vec<AccessReview>| {
        list.into_iter()
            .filter(|r| {
                r.spec
                    .certification
                    .as_ref()
                    .is_some_and(|c| c.name == item.name_any())
            })
            .count()
    };
    assert_eq!(
        of_item(reviews.list(&ListParams::default()).await.unwrap().items),
        1
    );
    let api = Api::<AccessCampaign>::all(w.admin());
    let label = format!("gatehouse.dev/campaign={campaign}");
    let items = w.items();
    let status = eventually("the run to leave at the end of its retention", WAIT, || async {
        let status = api.get(&campaign).await.ok()?.status?;
        let left = items
            .list(&ListParams::default().labels(&label))
            .await
            .ok()?
            .items;
        (status.runs.is_empty() && left.is_empty()).then_some(status)
    })
    .await;
    assert_eq!(
        of_item(reviews.list(&ListParams::default()).await.unwrap().items),
        0,
        "its review went too"
    );
    assert!(
        status.last_run_started_at.is_some(),
        "the start is remembered: {status:?}"
    );
    // Not started again: the campaign has no schedule and ran once.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let left = items
        .list(&ListParams::default().labels(&label))
        .await
        .unwrap()
        .items;
    assert!(
        left.is_empty(),
        "no second run: {:?}",
        left.iter().map(|i| i.name_any()).collect::<Vec<_>>()
    );
    campaign
}
