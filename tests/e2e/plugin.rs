//! The kubectl plugin as people use it, each person with a kubeconfig of their own.

use gatehouse::api::Phase;

use crate::support::scene::Scene;

/// alice requests, bob sees it pending and approves; alice's own approval does not count.
#[tokio::test]
async fn the_plugin_requests_lists_approves_and_shows_status() {
    let Some(scene) = Scene::shared("plugin").await else {
        return;
    };
    let ns = scene.ns.as_str();
    let alice = scene.plugin_user("alice", &["developers"]);
    let bob = scene.plugin_user("bob", &["sre"]);
    let (code, out) = alice.run(&format!(
        "request view -n {ns} --for 30m --reason plugin --name alice-plugin"
    ));
    assert_eq!(code, Some(0), "{out}");
    scene.phase_becomes("alice-plugin", Phase::Pending).await;
    let (code, out) = bob.run(&format!("pending -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("alice-plugin"),
        "bob sees the request he can review: {out}"
    );
    let (code, out) = bob.run(&format!("approve alice-plugin -n {ns} --comment ok"));
    assert_eq!(code, Some(0), "{out}");
    scene.phase_becomes("alice-plugin", Phase::Active).await;
    let (code, out) = alice.run(&format!("status alice-plugin -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("Active") && out.contains("bob"), "{out}");
    let (code, out) = alice.run(&format!("approve alice-plugin -n {ns}"));
    assert_eq!(code, Some(4), "a review that does not count exits 4: {out}");
    scene.finish().await;
}

/// Access for a group the policy lists as grantee: a reviewer in that group
/// would approve access for himself, so only bob's approval counts.
#[tokio::test]
async fn a_grant_to_a_group_needs_a_reviewer_outside_it() {
    let Some(scene) = Scene::shared("plugin-group").await else {
        return;
    };
    let ns = scene.ns.as_str();
    let alice = scene.plugin_user("alice", &["developers"]);
    let bob = scene.plugin_user("bob", &["sre"]);
    let dave = scene.plugin_user("dave", &["sre", "oncall"]);
    let (code, out) = alice.run(&format!(
        "request view -n {ns} --for 30m --reason incident --subject group:oncall --name alice-oncall"
    ));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("for Group oncall"), "{out}");
    let (code, out) = alice.run(&format!("request view -n {ns} --subject group:sre --reason x"));
    assert_eq!(
        code,
        Some(1),
        "a subject the policy does not list is refused up front: {out}"
    );
    assert!(out.contains("SubjectNotAllowed"), "{out}");
    scene.phase_becomes("alice-oncall", Phase::Pending).await;
    let (code, out) = dave.run(&format!("pending -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("alice-oncall"), "not dave's to review: {out}");
    let (code, out) = dave.run(&format!("approve alice-oncall -n {ns}"));
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("SelfApproval"), "{out}");
    let (code, out) = bob.run(&format!("approve alice-oncall -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    let grant = scene.active_grant("alice-oncall").await;
    let subjects = scene.binding(&grant).await.unwrap().subjects.unwrap();
    assert_eq!(
        (subjects[0].kind.as_str(), subjects[0].name.as_str()),
        ("Group", "oncall")
    );
    scene.finish().await;
}

/// A OneTime request from the plugin: the server accepts the job as typed,
/// reviewers see it in `status`, and the requester can withdraw it.
#[tokio::test]
async fn the_plugin_files_a_one_time_request_and_withdraws_it() {
    let Some(scene) = Scene::shared("plugin-job").await else {
        return;
    };
    let ns = scene.ns.as_str();
    let alice = scene.plugin_user("alice", &["developers"]);
    let bob = scene.plugin_user("bob", &["sre"]);
    let (code, out) = alice.run_args(&[
        "request",
        "view",
        "-n",
        ns,
        "--reason",
        "export",
        "--name",
        "alice-plugin-job",
        "--run",
        "registry.k8s.io/e2e-test-images/busybox:1.36.1-1",
        "--env",
        "FORMAT=csv",
        "--",
        "sh",
        "-c",
        "echo exported",
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert!(
        out.contains("OneTime job running registry.k8s.io/e2e-test-images/busybox"),
        "{out}"
    );
    scene.phase_becomes("alice-plugin-job", Phase::Pending).await;
    let (code, out) = bob.run(&format!("status alice-plugin-job -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("echo exported") && out.contains("FORMAT"), "{out}");
    let (code, out) = alice.run(&format!("cancel alice-plugin-job -n {ns}"));
    assert_eq!(code, Some(0), "{out}");
    scene.phase_becomes("alice-plugin-job", Phase::Canceled).await;
    scene.finish().await;
}
