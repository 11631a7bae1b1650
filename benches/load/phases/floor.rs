//! The floor: how long the API server takes to create a RoleBinding at all,
//! N of them with the bench's concurrency, and to delete them again (all N at
//! once, as M simultaneous expiries need). Nothing the operator does can be
//! faster than this.

use std::time::Instant;

use anyhow::{Context, Result};
use k8s_openapi::{
    api::rbac::v1::{RoleBinding, RoleRef, Subject},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::api::{Api, DeleteParams, PostParams};

use super::Bench;
use crate::{
    cluster::{bounded, REQUESTER},
    report::FloorDelete,
    stats::{summarize, Summary},
};

/// Creates N plain RoleBindings (not managed by Gatehouse), then deletes them
/// all at once: the latencies of both, and how long until the last delete
/// was answered.
pub async fn run(bench: &mut Bench) -> Result<(Summary, FloorDelete)> {
    let ns = bench.scene("floor").await?;
    let api: Api<RoleBinding> = Api::namespaced(bench.client.clone(), &ns);
    let role = bench.role.clone();
    let started = Instant::now();
    let latencies = bounded((0..bench.sizes.requests).collect(), bench.concurrency, |i| {
        let api = api.clone();
        let binding = RoleBinding {
            metadata: ObjectMeta {
                name: Some(format!("floor-{i:05}")),
                ..ObjectMeta::default()
            },
            role_ref: RoleRef {
                api_group: "rbac.authorization.k8s.io".into(),
                kind: "ClusterRole".into(),
                name: role.clone(),
            },
            subjects: Some(vec![Subject {
                kind: "User".into(),
                api_group: Some("rbac.authorization.k8s.io".into()),
                name: REQUESTER.0.into(),
                namespace: None,
            }]),
        };
        async move {
            let t = Instant::now();
            api.create(&PostParams::default(), &binding)
                .await
                .with_context(|| format!("creating the RoleBinding floor-{i:05}"))?;
            Ok(t.elapsed().as_secs_f64())
        }
    })
    .await?;
    bench.step(
        format!("floor: {} raw RoleBinding creates", latencies.len()),
        started.elapsed(),
    );
    let created = summarize(&latencies).context("no RoleBinding was created (--requests 0?)")?;
    let started = Instant::now();
    let deletes = bounded((0..bench.sizes.requests).collect(), bench.concurrency, |i| {
        let api = api.clone();
        async move {
            let t = Instant::now();
            api.delete(&format!("floor-{i:05}"), &DeleteParams::default())
                .await
                .with_context(|| format!("deleting the RoleBinding floor-{i:05}"))?;
            Ok(t.elapsed().as_secs_f64())
        }
    })
    .await?;
    let all_gone = started.elapsed();
    bench.step(
        format!("floor: {} raw RoleBinding deletes", deletes.len()),
        all_gone,
    );
    let latency = summarize(&deletes).context("no RoleBinding was deleted")?;
    Ok((
        created,
        FloorDelete {
            latency,
            all_gone_secs: all_gone.as_secs_f64(),
        },
    ))
}
