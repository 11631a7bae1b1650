//! The lifecycle of a grant: approved and expired, rejected, self-approved and
//! canceled, revoked, deleted while live, and a spoofed reviewer refused.

use std::time::Duration;

use chrono::{DateTime, Utc};
use gatehouse::api::{AccessReview, Phase};
use kube::{
    api::{Api, DeleteParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

use crate::support::{cluster::eventually, scene::Scene};

/// Approve: the binding appears for alice, then vanishes within 2 s of expiry.
#[tokio::test]
async fn an_approved_grant_is_removed_at_expiry() {
    let Some(scene) = Scene::shared("expiry").await else {
        return;
    };
    let req = scene.request("alice-short", "20s").await;
    scene.phase_becomes("alice-short", Phase::Pending).await;
    let review = scene.approve(&req).await;
    let active = scene.phase_becomes("alice-short", Phase::Active).await;
    let grant = active.status.as_ref().unwrap().grant.clone().unwrap();
    let rb = scene
        .binding(&grant.name)
        .await
        .expect("binding exists while active");
    assert_eq!(rb.subjects.unwrap()[0].name, "alice");
    let verdict = Api::<AccessReview>::namespaced(scene.admin.clone(), &scene.ns)
        .get(&review)
        .await
        .unwrap()
        .status
        .unwrap();
    assert_eq!(verdict.accepted, Some(true));
    let expires_at: DateTime<Utc> = grant.expires_at.unwrap();
    let gone_at = eventually(
        "the binding to be removed at expiry",
        Duration::from_secs(40),
        || async { scene.binding(&grant.name).await.is_none().then(Utc::now) },
    )
    .await;
    let lag = (gone_at - expires_at).num_milliseconds();
    eprintln!("e2e: binding removed {lag} ms after expiresAt");
    assert!(lag < 2000, "binding removed {lag} ms after expiresAt");
    assert!(lag > -500, "binding removed {lag} ms before expiresAt");
    scene.phase_becomes("alice-short", Phase::Expired).await;
    scene.finish().await;
}

/// Reject: final, nothing is granted, and the spec cannot be widened afterwards,
/// not even by an admin (CRD CEL rule).
#[tokio::test]
async fn a_rejected_request_grants_nothing_and_cannot_be_widened() {
    let Some(scene) = Scene::shared("rejected").await else {
        return;
    };
    let req = scene.request("alice-rejected", "1h").await;
    scene.review(&scene.bob, "bob", "sre", &req, "Reject").await;
    let rejected = scene.phase_becomes("alice-rejected", Phase::Rejected).await;
    assert!(rejected.status.unwrap().grant.is_none());

    let widen = json!({"spec": {"duration": "2h"}});
    let err = scene
        .requests(&scene.admin)
        .patch("alice-rejected", &PatchParams::default(), &Patch::Merge(&widen))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("spec is immutable"), "{err}");
    scene.finish().await;
}

/// Self-approval is recorded and ignored; the requester may cancel while pending.
#[tokio::test]
async fn self_approval_is_ignored_and_the_requester_may_cancel() {
    let Some(scene) = Scene::shared("self").await else {
        return;
    };
    let req = scene.request("alice-self", "1h").await;
    let own = scene.alice_decides(&req, "Approve").await;
    let reviews: Api<AccessReview> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let verdict = eventually("the self-approval verdict", Duration::from_secs(20), || {
        let reviews = reviews.clone();
        let own = own.clone();
        async move {
            reviews
                .get(&own)
                .await
                .ok()?
                .status
                .filter(|s| s.accepted.is_some())
        }
    })
    .await;
    assert_eq!(
        (verdict.accepted, verdict.reason.map(|r| r.as_str())),
        (Some(false), Some("SelfApproval"))
    );

    scene.alice_decides(&req, "Cancel").await;
    scene.phase_becomes("alice-self", Phase::Canceled).await;
    scene.finish().await;
}

/// Revoking an active grant removes its binding.
#[tokio::test]
async fn revoking_an_active_grant_removes_the_binding() {
    let Some(scene) = Scene::shared("revoked").await else {
        return;
    };
    let (req, name) = scene.granted("alice-revoked").await;
    assert!(scene.binding(&name).await.is_some());
    scene.alice_decides(&req, "Revoke").await;
    scene.phase_becomes("alice-revoked", Phase::Revoked).await;
    assert!(scene.binding(&name).await.is_none(), "binding removed on revoke");
    scene.finish().await;
}

/// Deleting a request with a live grant revokes it first (finalizer).
#[tokio::test]
async fn deleting_a_live_request_removes_its_binding_first() {
    let Some(scene) = Scene::shared("deleted").await else {
        return;
    };
    let (_, name) = scene.granted("alice-deleted").await;
    scene
        .requests(&scene.alice)
        .delete("alice-deleted", &DeleteParams::default())
        .await
        .unwrap();
    let requests = scene.requests(&scene.admin);
    eventually(
        "the deleted request to be gone",
        Duration::from_secs(20),
        || async {
            requests
                .get_opt("alice-deleted")
                .await
                .unwrap()
                .is_none()
                .then_some(())
        },
    )
    .await;
    assert!(
        scene.binding(&name).await.is_none(),
        "binding removed before the request went"
    );
    scene.finish().await;
}

/// Deleting a namespace while a grant in it is live completes: the operator
/// revokes the grant and releases its finalizer, so nothing holds the namespace.
#[tokio::test]
async fn deleting_a_namespace_with_a_live_grant_completes() {
    let Some(scene) = Scene::shared("namespace").await else {
        return;
    };
    let (_, name) = scene.granted("alice-live").await;
    assert!(scene.binding(&name).await.is_some());
    scene.finish_until_namespace_gone().await;
}

/// The admission policies refuse a spoofed reviewer: bob approving as erin.
#[tokio::test]
async fn admission_refuses_a_review_in_someone_elses_name() {
    let Some(scene) = Scene::shared("spoofed").await else {
        return;
    };
    let req = scene.request("alice-spoofed", "1h").await;
    let spoof: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "spoofed", "namespace": scene.ns},
        "spec": {"request": {"name": req.name_any(), "uid": req.uid().unwrap()}, "decision": "Approve",
                 "reviewer": {"username": "erin", "groups": ["sre"]}}
    }))
    .unwrap();
    // Policies take effect once the API server has loaded them: retry until refused.
    let as_bob: Api<AccessReview> = Api::namespaced(scene.bob.clone(), &scene.ns);
    let refusal = eventually(
        "the spoofed review to be refused",
        Duration::from_secs(20),
        || {
            let api = as_bob.clone();
            let spoof = spoof.clone();
            async move {
                match api.create(&PostParams::default(), &spoof).await {
                    Err(e) => Some(e.to_string()),
                    Ok(_) => {
                        let _ = api.delete("spoofed", &DeleteParams::default()).await;
                        None
                    }
                }
            }
        },
    )
    .await;
    assert!(
        refusal.contains("gatehouse-reviewer-identity") || refusal.contains("authenticated as"),
        "{refusal}"
    );
    assert!(
        refusal.contains("bob"),
        "the refusal names who you are: {refusal}"
    );
    let own = scene.approve(&req).await;
    assert!(!own.is_empty(), "the real reviewer is still accepted");
    scene.finish().await;
}
