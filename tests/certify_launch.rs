//! A run's launch against an in-process fake API server: its items come from
//! the cluster as the API server holds it when the run starts, not from the
//! operator's watched copy, which can lag a busy API server by seconds. A
//! campaign applied right after its bindings (GitOps applies a directory at
//! once) reviews every one of them. (Launches end to end are in
//! tests/e2e_certify, on a real API server.)

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};
use gatehouse::{
    api::{AccessCampaign, AccessCertification},
    certify::OperatorIdentity,
    controller::certify::{self, reconcile_campaign, Settings},
    metrics::Metrics,
    store::Cache,
};
use http::{Request, Response};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::{api::Api, client::Body, runtime::watcher::Event, Client};
use kube_fake_client::interceptor::Funcs;
use serde_json::{json, Value};

mod support;
use support::fake::{fake_api, stamp};

const NS: &str = "payments";

fn binding(name: &str, user: &str) -> Value {
    json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
           "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"), "resourceVersion": "7",
                        "creationTimestamp": "2026-10-01T06:59:58Z"},
           "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "edit"},
           "subjects": [{"kind": "User", "name": user, "apiGroup": "rbac.authorization.k8s.io"}]})
}

/// The fake cannot route `GET /api/v1/namespaces` (it reads `namespaces` as
/// the start of a namespaced path): this front answers that one list with
/// `namespaces`, and passes everything else to the fake.
fn with_namespace_list(fake: Client, namespaces: Vec<Value>) -> Client {
    let list = json!({"apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "1"},
                      "items": namespaces});
    let service = tower::service_fn(move |req: Request<Body>| {
        let (fake, list) = (fake.clone(), list.clone());
        async move {
            if req.method() == http::Method::GET && req.uri().path() == "/api/v1/namespaces" {
                let body = Body::from(serde_json::to_vec(&list).unwrap());
                return Ok::<_, kube::Error>(Response::new(body));
            }
            fake.send(req).await
        }
    });
    Client::new(service, "default")
}

/// A campaign without a schedule, just created: a run starts at once.
fn campaign(now: DateTime<Utc>) -> AccessCampaign {
    let mut c: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
        "metadata": {"name": "quarterly", "uid": "uid-campaign", "generation": 1},
        "spec": {"reviewNamespace": NS,
                 "reviewers": {"levels": [{"name": "owners", "groups": ["owners"]}]}}
    }))
    .unwrap();
    c.metadata.creation_timestamp = Some(stamp(now));
    c
}

#[tokio::test]
async fn a_binding_applied_just_before_its_campaign_is_in_the_run_though_memory_has_not_seen_it() {
    let start: DateTime<Utc> = "2026-10-01T07:00:00Z".parse().unwrap();
    let objects = vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "edit"},
               "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]}),
        binding("devs-edit", "alice"),
        // Applied a moment before the campaign: the API server has it, the
        // operator's RoleBinding watch has not delivered it yet.
        binding("ops-edit", "bob"),
    ];
    // The fake cannot store a cluster-scoped custom resource: the campaign's
    // status writes are kept here, and fed back as the next reconcile's read.
    let written: Arc<Mutex<Option<Value>>> = Arc::default();
    let keep = written.clone();
    let funcs = Funcs::new().replace_status(move |c| {
        if c.object["kind"] != "AccessCampaign" {
            return Ok(None);
        }
        *keep.lock().unwrap() = Some(c.object.clone());
        Ok(Some(c.object.clone()))
    });
    let namespace = json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}});
    let client = with_namespace_list(fake_api(objects, funcs).await, vec![namespace]);
    let (cache, mut writers) = Cache::new();
    let seen: RoleBinding = serde_json::from_value(binding("devs-edit", "alice")).unwrap();
    writers.role_bindings.apply_watcher_event(&Event::Apply(seen));
    let mut current = campaign(start);
    writers
        .campaigns
        .apply_watcher_event(&Event::Apply(current.clone()));
    let clock = Arc::new(Mutex::new(start));
    let now = clock.clone();
    let mut ctx = certify::Context::new(
        client.clone(),
        cache.clone(),
        Arc::new(Metrics::default()),
        Arc::new(move || *now.lock().unwrap()),
        Settings::default(),
    );
    ctx.identity = Some(OperatorIdentity::default_install());
    let ctx = Arc::new(ctx);

    // Reconcile as the controller would, a few seconds apart, until the run is
    // launched (memory still without `ops-edit` all along).
    let mut launched = None;
    for _ in 0..5 {
        reconcile_campaign(Arc::new(current.clone()), ctx.clone())
            .await
            .unwrap();
        if let Some(status) = written.lock().unwrap().clone() {
            current = serde_json::from_value(status).unwrap();
        }
        let status = current.status.clone().unwrap_or_default();
        if let Some(run) = status.runs.last().filter(|r| r.launched_at.is_some()) {
            launched = Some(run.clone());
            break;
        }
        *clock.lock().unwrap() += Duration::seconds(5);
    }
    let run = launched.expect("the run was launched");

    let items: Api<AccessCertification> = Api::namespaced(client, NS);
    let mut reviewed: Vec<String> = items
        .list(&Default::default())
        .await
        .unwrap()
        .items
        .iter()
        .map(|i| format!("{} {}", i.spec.binding.name, i.spec.subject))
        .collect();
    reviewed.sort();
    assert_eq!(
        reviewed,
        ["devs-edit User alice", "ops-edit User bob"],
        "every binding the API server held when the run started is reviewed"
    );
    assert_eq!(run.items, 2, "run {} counts both items", run.name);
}
