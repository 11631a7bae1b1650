//! The cluster side of the bench: the admin client, the CRDs, one namespace
//! and policy per phase, the objects people would create, bounded concurrency,
//! and the clean-up.

use std::{
    future::Future,
    path::Path,
    time::{Duration, Instant},
};

use anyhow::{bail, Context, Result};
use chrono::{DateTime, Utc};
use futures::{StreamExt, TryStreamExt};
use gatehouse::api::{
    self, AccessPolicy, AccessPolicySpec, AccessReview, AccessReviewSpec, ApprovalRequest,
    ApprovalRequestSpec, ApprovalRules, Decision, DurationLimits, Identity, NamespaceScope, Principals,
    RequestRef, RoleKind, RoleRef,
};
use k8s_openapi::{
    api::{
        core::v1::Namespace,
        rbac::v1::{ClusterRole, PolicyRule},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{
    api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
    Client, Config, ResourceExt,
};
use serde_json::json;

/// Field manager of the bench's server-side applies.
const MANAGER: &str = "gatehouse-bench";
/// Who asks for access.
pub const REQUESTER: (&str, &str) = ("dana", "dev");
/// Who approves.
pub const REVIEWER: (&str, &str) = ("erin", "sre");

/// An admin client from the kubeconfig file.
pub async fn connect(kubeconfig: &Path) -> Result<Client> {
    let kc = Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading the kubeconfig {}", kubeconfig.display()))?;
    let config = Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .context("configuring a client from the kubeconfig")?;
    Client::try_from(config).context("building the Kubernetes client")
}

/// Installs the CRDs from the code (server-side apply) and waits until they are served.
pub async fn install_crds(client: &Client) -> Result<()> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let pp = PatchParams::apply(MANAGER).force();
    for crd in api::crds() {
        let name = crd.name_any();
        api.patch(&name, &pp, &Patch::Apply(&crd))
            .await
            .with_context(|| format!("applying the CRD {name}"))?;
        let start = Instant::now();
        loop {
            let got = api
                .get(&name)
                .await
                .with_context(|| format!("reading the CRD {name}"))?;
            let established = got
                .status
                .and_then(|s| s.conditions)
                .unwrap_or_default()
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            if established {
                break;
            }
            if start.elapsed() > Duration::from_secs(60) {
                bail!("the CRD {name} was not established within 60 s");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// The ClusterRole the bench's grants bind: reading ConfigMaps, nothing more.
pub async fn create_role(client: &Client, name: &str) -> Result<()> {
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec![String::new()]),
            resources: Some(vec!["configmaps".into()]),
            verbs: vec!["get".into()],
            ..PolicyRule::default()
        }]),
        ..ClusterRole::default()
    };
    Api::<ClusterRole>::all(client.clone())
        .patch(name, &PatchParams::apply(MANAGER).force(), &Patch::Apply(&role))
        .await
        .with_context(|| format!("applying the ClusterRole {name}"))?;
    Ok(())
}

/// A phase's namespace, and a policy of the same name for it: dana (dev) may
/// ask for `role` there for up to 8 h; one approval from sre.
pub async fn create_scene(client: &Client, ns: &str, role: &str) -> Result<()> {
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(ns.to_string()),
            labels: Some([("app.kubernetes.io/part-of".to_string(), MANAGER.to_string())].into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &namespace)
        .await
        .with_context(|| format!("creating the namespace {ns}"))?;
    let policy = AccessPolicy::new(
        ns,
        AccessPolicySpec {
            requesters: Principals {
                groups: vec![REQUESTER.1.into()],
                users: Vec::new(),
            },
            roles: vec![role_ref(role)],
            namespaces: NamespaceScope {
                names: vec![ns.to_string()],
                ..NamespaceScope::default()
            },
            duration: DurationLimits {
                default: Some("1h".into()),
                max: Some("8h".into()),
            },
            approval: ApprovalRules {
                reviewers: Principals {
                    groups: vec![REVIEWER.1.into()],
                    users: Vec::new(),
                },
                ..ApprovalRules::default()
            },
            ..AccessPolicySpec::default()
        },
    );
    Api::<AccessPolicy>::all(client.clone())
        .create(&PostParams::default(), &policy)
        .await
        .with_context(|| format!("creating the AccessPolicy {ns}"))?;
    Ok(())
}

fn role_ref(role: &str) -> RoleRef {
    RoleRef {
        kind: RoleKind::ClusterRole,
        name: role.to_string(),
    }
}

/// dana's request for `role` in `ns` under the namespace's policy.
pub fn request(
    ns: &str,
    name: &str,
    role: &str,
    duration: &str,
    not_before: Option<DateTime<Utc>>,
) -> ApprovalRequest {
    let mut r = ApprovalRequest::new(
        name,
        ApprovalRequestSpec {
            requester: Identity {
                username: REQUESTER.0.into(),
                groups: vec![REQUESTER.1.into()],
            },
            role: role_ref(role),
            duration: Some(duration.into()),
            policy: Some(ns.into()),
            not_before,
            ..ApprovalRequestSpec::default()
        },
    );
    r.metadata.namespace = Some(ns.into());
    r
}

/// erin's approval of a created request.
pub fn approval(created: &ApprovalRequest) -> Result<AccessReview> {
    let name = created.name_any();
    let uid = created
        .uid()
        .with_context(|| format!("the API server returned the request {name} without a uid"))?;
    let mut review = AccessReview::new(
        &format!("{name}-approve"),
        AccessReviewSpec {
            request: Some(RequestRef { name, uid }),
            decision: Decision::Approve,
            reviewer: Identity {
                username: REVIEWER.0.into(),
                groups: vec![REVIEWER.1.into()],
            },
            comment: None,
            ..Default::default()
        },
    );
    review.metadata.namespace = created.namespace();
    Ok(review)
}

/// Creates a request; the error names it.
pub async fn create_request(client: &Client, req: &ApprovalRequest) -> Result<ApprovalRequest> {
    let ns = req.namespace().unwrap_or_default();
    create_once(&Api::<ApprovalRequest>::namespaced(client.clone(), &ns), req)
        .await
        .with_context(|| format!("creating the ApprovalRequest {ns}/{}", req.name_any()))
}

/// Creates `obj`, retrying a few times when the connection failed under the
/// request (a keep-alive connection the API server closed as it was reused):
/// the bench measures the operator, not its own client's luck. A retry that
/// finds the object already there (the first attempt got through) reads it.
async fn create_once<K>(api: &Api<K>, obj: &K) -> kube::Result<K>
where
    K: kube::Resource + Clone + serde::Serialize + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        match api.create(&PostParams::default(), obj).await {
            Err(kube::Error::Api(s)) if s.code == 409 && attempt > 1 => {
                return api.get(&obj.name_any()).await;
            }
            Err(e @ (kube::Error::Service(_) | kube::Error::HyperError(_))) if attempt < 4 => {
                tracing::debug!(error = %e, attempt, "create failed on the connection; retrying");
                tokio::time::sleep(std::time::Duration::from_millis(100 * attempt)).await;
            }
            result => return result,
        }
    }
}

/// Creates a review; the error names it.
pub async fn create_review(client: &Client, review: &AccessReview) -> Result<AccessReview> {
    let ns = review.namespace().unwrap_or_default();
    create_once(&Api::<AccessReview>::namespaced(client.clone(), &ns), review)
        .await
        .with_context(|| format!("creating the AccessReview {ns}/{}", review.name_any()))
}

/// Runs `f` on every item with at most `limit` in flight; the first error stops it.
pub async fn bounded<T, R, F, Fut>(items: Vec<T>, limit: usize, f: F) -> Result<Vec<R>>
where
    F: Fn(T) -> Fut,
    Fut: Future<Output = Result<R>>,
{
    futures::stream::iter(items)
        .map(f)
        .buffer_unordered(limit.max(1))
        .try_collect()
        .await
}

/// Deletes the bench's requests while the operator runs, so it revokes and
/// drops its finalizer; a request it leaves behind after `bound` has its
/// finalizer removed here. One delete per request, `concurrency` at a time (a
/// deletecollection is done one object at a time by the API server). Returns
/// how many were deleted, and notes on anything that needed forcing.
pub async fn delete_requests(
    client: &Client,
    namespaces: &[String],
    concurrency: usize,
    bound: Duration,
) -> Result<(usize, Vec<String>)> {
    let mut notes = Vec::new();
    let mut deleted = 0;
    for ns in namespaces {
        let requests: Api<ApprovalRequest> = Api::namespaced(client.clone(), ns);
        let listed = requests
            .list_metadata(&ListParams::default())
            .await
            .with_context(|| format!("listing the requests of {ns}"))?;
        let names: Vec<String> = listed.items.iter().map(|r| r.name_any()).collect();
        deleted += names.len();
        bounded(names, concurrency, |name| {
            let requests = requests.clone();
            async move {
                gone_is_fine(requests.delete(&name, &DeleteParams::default()).await)
                    .with_context(|| format!("deleting the request {ns}/{name}"))
            }
        })
        .await?;
    }
    let start = Instant::now();
    for ns in namespaces {
        let requests: Api<ApprovalRequest> = Api::namespaced(client.clone(), ns);
        loop {
            let left = requests
                .list_metadata(&ListParams::default())
                .await
                .with_context(|| format!("listing the requests left in {ns}"))?;
            if left.items.is_empty() {
                break;
            }
            if start.elapsed() > bound {
                notes.push(format!(
                    "the operator had not finalized {} deleted requests of {ns} after {bound:?}; their finalizers were removed by the bench",
                    left.items.len()
                ));
                let patch = json!({"metadata": {"finalizers": null}});
                for r in &left.items {
                    let name = r.name_any();
                    let _ = requests
                        .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                        .await;
                }
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok((deleted, notes))
}

/// Deletes the namespaces (the namespace controller of kube-controller-manager
/// empties them), the policies and the role, and waits until the namespaces are gone.
pub async fn delete_scenes(
    client: &Client,
    namespaces: &[String],
    role: &str,
    bound: Duration,
) -> Result<()> {
    let ns_api: Api<Namespace> = Api::all(client.clone());
    let policies: Api<AccessPolicy> = Api::all(client.clone());
    let dp = DeleteParams::default();
    for ns in namespaces {
        gone_is_fine(ns_api.delete(ns, &dp).await).with_context(|| format!("deleting the namespace {ns}"))?;
        gone_is_fine(policies.delete(ns, &dp).await)
            .with_context(|| format!("deleting the AccessPolicy {ns}"))?;
    }
    gone_is_fine(Api::<ClusterRole>::all(client.clone()).delete(role, &dp).await)
        .with_context(|| format!("deleting the ClusterRole {role}"))?;
    let start = Instant::now();
    for ns in namespaces {
        while ns_api
            .get_opt(ns)
            .await
            .with_context(|| format!("reading the namespace {ns}"))?
            .is_some()
        {
            if start.elapsed() > bound {
                bail!(
                    "the namespace {ns} was still there {bound:?} after its deletion: is kube-controller-manager (namespace controller) running?"
                );
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(())
}

/// A delete of something that is not there (a phase that never created it) is done.
fn gone_is_fine<T>(result: kube::Result<T>) -> kube::Result<()> {
    match result {
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        other => other.map(drop),
    }
}
