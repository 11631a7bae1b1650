//! The finalizer that revokes before a request is deleted, and the deletion of
//! a request whose audit retention has passed.

use kube::{
    api::{Api, DeleteParams, Patch, PatchParams},
    runtime::{controller::Action as Requeue, events::EventType},
    ResourceExt,
};
use serde_json::json;
use tracing::info;

use super::{grant, job, owned, Context, Error};
use crate::{
    api::{AccessReview, ApprovalRequest, RequestType},
    decide,
};

/// Finalizer that makes deleting a request revoke its grant first.
pub const FINALIZER: &str = "gatehouse.dev/revoke-grant";

// kube-runtime's `finalizer()` helper would do the same with a JSON-patch `test`
// of the finalizer list; the merge patch with a resourceVersion below gives the
// same protection against a concurrent edit, and works on an object that has no
// finalizer list at all (the in-process fake API refuses the `test` on a missing
// path).

/// Adds the finalizer; returns the updated request. The resourceVersion in the
/// patch makes it fail (and retry) if someone else changed the list meanwhile.
pub async fn add_finalizer(
    req: &ApprovalRequest,
    api: &Api<ApprovalRequest>,
) -> Result<ApprovalRequest, Error> {
    let mut finalizers = req.finalizers().to_vec();
    finalizers.push(FINALIZER.to_string());
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": req.resource_version()}});
    api.patch(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(Error::Kube)
}

async fn remove_finalizer(req: &ApprovalRequest, api: &Api<ApprovalRequest>) -> Result<(), Error> {
    let finalizers: Vec<String> = req
        .finalizers()
        .iter()
        .filter(|f| *f != FINALIZER)
        .cloned()
        .collect();
    let patch = json!({"metadata": {"finalizers": finalizers, "resourceVersion": req.resource_version()}});
    match api
        .patch(&req.name_any(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
    {
        Err(e) if !owned::is_status(&e, 404) => Err(Error::Kube(e)),
        _ => Ok(()),
    }
}

/// Deletion of a request: revoke its grant (and stop its job), then let the
/// deletion finish. Deletes through the API whatever memory says: this runs
/// once per request and must not miss a binding.
pub async fn finalize(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
) -> Result<Requeue, Error> {
    if !req.finalizers().iter().any(|f| f == FINALIZER) {
        return Ok(Requeue::await_change());
    }
    if req.spec.type_ == RequestType::OneTime {
        let target = decide::job::job_ref(req);
        job::delete_job(&ctx.client, &ctx.cache, req, &target).await?;
        let sa: Api<k8s_openapi::api::core::v1::ServiceAccount> =
            Api::namespaced(ctx.client.clone(), &target.namespace);
        owned::delete_if_present(&sa, &target.name, &DeleteParams::default())
            .await
            .map_err(|source| Error::Job {
                name: target.name.clone(),
                source,
            })?;
    }
    let target = decide::binding_ref(req);
    if grant::delete_binding(&ctx.client, &target).await? {
        let note = format!("request deleted: binding {} removed", target.name);
        ctx.events
            .publish(req, EventType::Normal, "GrantRevoked", "Delete", note);
    }
    remove_finalizer(req, api).await?;
    Ok(Requeue::await_change())
}

/// Retention passed: delete the reviews of the request, then the request.
pub async fn delete_record(
    req: &ApprovalRequest,
    ctx: &Context,
    api: &Api<ApprovalRequest>,
    reviews: &[AccessReview],
) -> Result<(), Error> {
    let ns = req.namespace().unwrap_or_default();
    let reviews_api: Api<AccessReview> = Api::namespaced(ctx.client.clone(), &ns);
    for r in reviews
        .iter()
        .filter(|r| r.spec.request.as_ref().map(|q| q.uid.as_str()) == req.uid().as_deref())
    {
        owned::delete_if_present(&reviews_api, &r.name_any(), &DeleteParams::default())
            .await
            .map_err(Error::Kube)?;
    }
    info!(request = %req.name_any(), namespace = %ns, "retention passed: deleting the request and its reviews");
    owned::delete_if_present(api, &req.name_any(), &DeleteParams::default())
        .await
        .map(drop)
        .map_err(Error::Kube)
}
