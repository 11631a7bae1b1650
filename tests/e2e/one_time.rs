//! OneTime requests on the real API server: approved → Processing with its own
//! ServiceAccount, a binding to it and exactly one Job the server accepted; then
//! stopped at the deadline (Failed, DeadlineExceeded), or ended by the real Job
//! controller as Executed or JobFailed, access removed every time.

use std::time::Duration;

use chrono::Utc;
use gatehouse::api::{ApprovalRequest, Phase};
use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Node, Pod, ServiceAccount},
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

use crate::support::{cluster::eventually, scene::Scene};

const IMAGE: &str = "registry.k8s.io/e2e-test-images/busybox:1.36.1-1";

/// alice asks to run `command` once, with `view`, for `duration`.
async fn request_job(scene: &Scene, name: &str, duration: &str, command: &[&str]) -> ApprovalRequest {
    let r: ApprovalRequest = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "ApprovalRequest",
        "metadata": {"name": name, "namespace": scene.ns},
        "spec": {"requester": {"username": "alice", "groups": ["developers"]},
                 "role": {"kind": "ClusterRole", "name": "view"}, "duration": duration, "reason": "e2e job",
                 "type": "OneTime",
                 "job": {"image": IMAGE, "command": command, "env": [{"name": "TARGET", "value": scene.ns}]}}
    }))
    .unwrap();
    scene
        .requests(&scene.alice)
        .create(&PostParams::default(), &r)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_one_time_job_is_stopped_at_its_deadline() {
    let Some(scene) = Scene::shared("job-deadline").await else {
        return;
    };
    let jobs: Api<Job> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let accounts: Api<ServiceAccount> = Api::namespaced(scene.admin.clone(), &scene.ns);

    let req = request_job(&scene, "alice-job-deadline", "15s", &["sleep", "600"]).await;
    scene.phase_becomes("alice-job-deadline", Phase::Pending).await;
    scene.approve(&req).await;
    let processing = scene.phase_becomes("alice-job-deadline", Phase::Processing).await;
    let status = processing.status.unwrap();
    let record = status.job.clone().expect("status.job while Processing");
    let mine = format!("gatehouse.dev/request-uid={}", req.uid().unwrap());
    let ours = jobs
        .list(&ListParams::default().labels(&mine))
        .await
        .unwrap()
        .items;
    assert_eq!(ours.len(), 1, "exactly one Job: {ours:#?}");
    let job = &ours[0];
    assert_eq!(job.name_any(), record.name);
    assert_eq!(job.uid(), record.uid, "status.job records the Job's uid");
    let spec = job.spec.clone().unwrap();
    assert_eq!(spec.backoff_limit, Some(0));
    assert!(
        spec.active_deadline_seconds
            .is_some_and(|s| (1..=15).contains(&s)),
        "{spec:?}"
    );
    let pod = spec.template.spec.unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        Some(record.service_account.as_str())
    );
    assert_eq!(pod.restart_policy.as_deref(), Some("Never"));
    assert_eq!(
        pod.containers[0].command,
        Some(vec!["sleep".to_string(), "600".into()])
    );
    assert!(accounts.get_opt(&record.service_account).await.unwrap().is_some());
    let grant = status.grant.unwrap();
    let rb = scene
        .binding(&grant.name)
        .await
        .expect("binding while Processing");
    let subject = &rb.subjects.unwrap()[0];
    assert_eq!(
        (subject.kind.as_str(), subject.name.as_str()),
        ("ServiceAccount", record.service_account.as_str())
    );

    // The job never finishes here: at its deadline the operator stops it.
    let deadline = record.deadline.unwrap();
    let gone_at = eventually(
        "the Job to be deleted at its deadline",
        Duration::from_secs(40),
        || async { jobs.get_opt(&record.name).await.unwrap().is_none().then(Utc::now) },
    )
    .await;
    let lag = (gone_at - deadline).num_milliseconds();
    eprintln!("e2e: OneTime Job deleted {lag} ms after its deadline");
    assert!(
        (-500..3000).contains(&lag),
        "Job deleted {lag} ms after its deadline"
    );
    let failed = scene.phase_becomes("alice-job-deadline", Phase::Failed).await;
    let status = failed.status.unwrap();
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    assert_eq!(complete.reason, "DeadlineExceeded");
    assert!(scene.binding(&grant.name).await.is_none(), "binding removed");
    assert!(
        accounts.get_opt(&record.service_account).await.unwrap().is_none(),
        "ServiceAccount removed"
    );
    assert!(jobs
        .list(&ListParams::default().labels(&mine))
        .await
        .unwrap()
        .items
        .is_empty());
    scene.finish().await;
}

#[tokio::test]
async fn a_one_time_job_that_succeeds_ends_executed() {
    let Some(scene) = Scene::shared("job-done").await else {
        return;
    };
    job_runs_to_its_end(&scene, "alice-job-done", 0, Phase::Executed).await;
    scene.finish().await;
}

#[tokio::test]
async fn a_one_time_job_that_fails_ends_job_failed() {
    let Some(scene) = Scene::shared("job-fails").await else {
        return;
    };
    job_runs_to_its_end(&scene, "alice-job-fails", 3, Phase::Failed).await;
    scene.finish().await;
}

/// A job exiting with `exit_code` ends its request in `phase` (Executed or
/// JobFailed), keeps the Job for its logs and removes access.
///
/// With a kubelet the job really runs. Without one (the test control plane has
/// no node), the test stands in for the kubelet: it binds the Job's pod to a
/// Node object and writes the pod's final status; the real Job controller turns
/// that into the Job's Complete or Failed condition, which is what the operator
/// acts on.
async fn job_runs_to_its_end(scene: &Scene, name: &str, exit_code: i32, phase: Phase) {
    let jobs: Api<Job> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let accounts: Api<ServiceAccount> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let stand_in = stand_in_node(scene).await;
    let command = format!("exit {exit_code}");
    let command = if exit_code == 0 { "echo done" } else { &command };
    let req = request_job(scene, name, "5m", &["sh", "-c", command]).await;
    scene.phase_becomes(name, Phase::Pending).await;
    scene.approve(&req).await;
    let record = scene
        .phase_becomes(name, Phase::Processing)
        .await
        .status
        .unwrap()
        .job
        .unwrap();
    if let Some(node) = &stand_in {
        finish_pod_as_kubelet(scene, &record.name, node, exit_code).await;
    }
    let done = scene.phase_within(name, phase, Duration::from_secs(180)).await;
    let status = done.status.unwrap();
    let complete = status.conditions.iter().find(|c| c.type_ == "Complete").unwrap();
    let expected = if exit_code == 0 { "Executed" } else { "JobFailed" };
    assert_eq!(complete.reason, expected, "{}", complete.message);
    assert!(
        complete.message.contains("kubectl logs -n"),
        "{}",
        complete.message
    );
    assert!(
        jobs.get_opt(&record.name).await.unwrap().is_some(),
        "kept for its logs"
    );
    assert!(
        accounts.get_opt(&record.service_account).await.unwrap().is_none(),
        "ServiceAccount removed when the job ended"
    );
    let grant = status.grant.unwrap();
    assert!(
        scene.binding(&grant.name).await.is_none(),
        "binding removed when the job ended"
    );
    if let Some(node) = &stand_in {
        Api::<Node>::all(scene.admin.clone())
            .delete(node, &DeleteParams::default())
            .await
            .unwrap();
    }
}

/// A Node object for the scenario's pods when no Ready node exists, else `None`.
async fn stand_in_node(scene: &Scene) -> Option<String> {
    let nodes = Api::<Node>::all(scene.admin.clone())
        .list(&ListParams::default())
        .await
        .unwrap();
    let ready = nodes.items.iter().any(|n| {
        n.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    });
    if ready {
        return None;
    }
    let node = format!("gatehouse-e2e-{}", scene.ns);
    eprintln!("e2e: no Ready node; node {node} stands in for a kubelet");
    let n: Node = serde_json::from_value(json!({"metadata": {"name": node}})).unwrap();
    Api::<Node>::all(scene.admin.clone())
        .create(&PostParams::default(), &n)
        .await
        .unwrap();
    Some(node)
}

/// What a kubelet would do with the Job's pod: run it on `node`, and report
/// that its container exited with `exit_code`.
async fn finish_pod_as_kubelet(scene: &Scene, job: &str, node: &str, exit_code: i32) {
    let pods: Api<Pod> = Api::namespaced(scene.admin.clone(), &scene.ns);
    let selector = format!("batch.kubernetes.io/job-name={job}");
    let pod = eventually(
        "the Job controller to create the pod",
        Duration::from_secs(30),
        || {
            let pods = pods.clone();
            let selector = selector.clone();
            async move {
                pods.list(&ListParams::default().labels(&selector))
                    .await
                    .ok()?
                    .items
                    .pop()
            }
        },
    )
    .await;
    let binding = json!({"apiVersion": "v1", "kind": "Binding",
                         "metadata": {"name": pod.name_any(), "namespace": scene.ns},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": node}});
    pods.create_subresource::<_, serde_json::Value>(
        "binding",
        &pod.name_any(),
        &PostParams::default(),
        &binding,
    )
    .await
    .unwrap();
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let status = json!({"status": {
        "phase": if exit_code == 0 { "Succeeded" } else { "Failed" },
        "startTime": now,
        "containerStatuses": [{
            "name": "job", "image": IMAGE, "imageID": "",
            "ready": false, "restartCount": 0,
            "state": {"terminated": {"exitCode": exit_code, "reason": if exit_code == 0 { "Completed" } else { "Error" },
                                     "startedAt": now, "finishedAt": now}}
        }]
    }});
    pods.patch_status(&pod.name_any(), &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();
}
