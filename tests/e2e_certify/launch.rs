//! Steps 2 and 3: an operator killed in the middle of a launch, and an item
//! nobody decided at the due time.

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
