//! The removal lane: one task in every replica, leader or not, that deletes
//! the operator's RoleBindings and ClusterRoleBindings (and OneTime Jobs) at
//! their deadline, taken
//! from the deadline index (`store::removals`), with a lane of API calls of its
//! own. It does nothing else: no grant, no status write, no Event; the
//! leader's reconcile records the outcome after the delete (and leaves the
//! delete to the lane), and status writes and Events wait while removals are
//! due or under way ([`super::Deadlines::removals_first`]): under a burst, the
//! writes that end access go first.
//!
//! On a replica that does not lead it removes what a dead or cut-off leader
//! would have removed, [`GRACE`] after the deadline (a live leader's lane got
//! there first and the standby sees the binding gone). This is safe without the
//! Lease because a removal only narrows access, and because every delete
//! carries preconditions (uid and resourceVersion): it removes exactly the
//! object memory judged expired, never one re-created or changed since. Two
//! replicas deleting the same object is idempotent: 404 (gone) and 409
//! (changed since) both mean there is nothing left to do with that version.
//! Only objects labelled as the operator's AND controlled by an ApprovalRequest
//! (owner reference) are considered. ClusterRoleBindings cannot carry an owner
//! reference to a namespaced request: one is considered only while memory
//! holds the request it was made for, matched by what a tenant cannot write
//! (the binding's labels and its name, derived from the request's namespace,
//! name and uid; see `store::deadline::made_for`), and whose recorded grant
//! names it; its deadline is the earlier of its annotation and that grant's
//! expiry. A request in one namespace can never make the lane delete a
//! binding made for another request.
//!
//! After a (re)start the lane runs before anything else waits (the client
//! is built, the watches and the lane start; the Lease, the operator's
//! identity and the rest come after), and RoleBindings and Jobs are indexed
//! page by page as they are listed: the first removal of what expired while no
//! operator ran follows the first page of RoleBindings.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use futures::{stream::FuturesUnordered, StreamExt};
use k8s_openapi::api::{
    batch::v1::Job,
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    api::{Api, DeleteParams, Preconditions},
    Client,
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    controller::owned::is_status,
    metrics::{LaneKindLabel, LaneLabel, Metrics},
    store::{
        removals::{Doomed, Kind, Outcome},
        Cache,
    },
};

/// Deletes at once, at most.
const PARALLEL: usize = 64;
/// Look again at least this often (a lost wake-up).
const AT_LEAST_EVERY: StdDuration = StdDuration::from_secs(1);
/// A standby removes an object this long after its deadline: a live leader
/// removes it within milliseconds, and its watch event reaches the standby
/// first, so the API server gets one delete, not two. A dead or slow leader's
/// removals are still done well within a second.
pub const GRACE: chrono::Duration = chrono::Duration::milliseconds(250);

/// Deletes exactly this version; `true` with [`Outcome::Gone`] if this call
/// deleted it (not found gone).
async fn delete(client: &Client, d: &Doomed) -> Result<(Outcome, bool), kube::Error> {
    let preconditions = Some(Preconditions {
        uid: Some(d.uid.clone()),
        resource_version: Some(d.version.clone()),
    });
    let (ns, name) = (&d.key.namespace, &d.key.name);
    let dp = DeleteParams {
        preconditions,
        ..DeleteParams::default()
    };
    let result = match d.key.kind {
        Kind::Job => {
            let dp = DeleteParams {
                propagation_policy: DeleteParams::background().propagation_policy,
                ..dp
            };
            Api::<Job>::namespaced(client.clone(), ns)
                .delete(name, &dp)
                .await
                .map(drop)
        }
        Kind::RoleBinding => Api::<RoleBinding>::namespaced(client.clone(), ns)
            .delete(name, &dp)
            .await
            .map(drop),
        Kind::ClusterRoleBinding => Api::<ClusterRoleBinding>::all(client.clone())
            .delete(name, &dp)
            .await
            .map(drop),
    };
    match result {
        Ok(()) => Ok((Outcome::Gone, true)),
        Err(e) if is_status(&e, 404) => Ok((Outcome::Gone, false)),
        Err(e) if is_status(&e, 409) => Ok((Outcome::Changed, false)),
        Err(e) => Err(e),
    }
}

fn lane_name(leading: bool) -> &'static str {
    if leading {
        "leader"
    } else {
        "standby"
    }
}

/// Marks the lane as running for as long as it lives.
struct Running<'a>(&'a super::Deadlines);

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.0.set_running(false);
    }
}

/// Removes what is due, at each deadline, until the task is dropped.
/// `leading`: whether this replica leads (a
/// standby waits [`GRACE`] past each deadline); `clock` is the wall clock
/// (deadlines are wall-clock instants).
pub async fn run(
    client: Client,
    cache: Arc<Cache>,
    metrics: Arc<Metrics>,
    mut leading: watch::Receiver<bool>,
    clock: fn() -> DateTime<Utc>,
) {
    // No waiting for the rest of memory: the index holds a binding only once
    // the list of RoleBindings is in, and its deadline is then known from its
    // own annotation (its request, listed later or not, can only make it
    // earlier). A restarted operator removes what expired while it was down
    // as soon as it has listed the bindings, before the other kinds.
    let index = &cache.removals;
    index.set_running(true);
    let _running = Running(index);
    let mut leads = *leading.borrow();
    let mut leading_open = true;
    if !leads {
        info!("not the leader: removing expired grants on time meanwhile");
    }
    let mut flying = FuturesUnordered::new();
    let mut first = true;
    loop {
        let grace = if leads { chrono::Duration::zero() } else { GRACE };
        let room = PARALLEL.saturating_sub(flying.len());
        for d in index.take_due(clock(), grace, room) {
            let client = client.clone();
            flying.push(async move {
                let r = delete(&client, &d).await;
                (d, r)
            });
        }
        let wait = index
            .next()
            .and_then(|n| (n + grace - clock()).to_std().ok())
            .map_or(AT_LEAST_EVERY, |w| {
                (w + StdDuration::from_millis(1)).min(AT_LEAST_EVERY)
            });
        tokio::select! {
            Some((d, result)) = flying.next(), if !flying.is_empty() => {
                let lane = lane_name(leads);
                let kind = d.key.kind.as_str();
                match result {
                    Ok((outcome, deleted)) => {
                        index.finish(&d, outcome, clock());
                        if deleted && std::mem::take(&mut first) {
                            info!(kind, name = %d.key.name, since_start_ms = crate::controller::run::started().elapsed().as_millis() as u64, "first removal since the process started");
                        }
                        if deleted {
                            let late = (clock() - d.deadline).num_milliseconds().max(0) as f64 / 1000.0;
                            metrics.removals.get_or_create(&LaneKindLabel { lane: lane.into(), kind: kind.into() }).inc();
                            metrics.removal_lateness.get_or_create(&LaneLabel { lane: lane.into() }).observe(late);
                            let job = d.key.kind == Kind::Job;
                            if !job && leads {
                                metrics.expiry_lag.observe(late);
                            }
                            if leads && job {
                                info!(kind, name = %d.key.name, namespace = d.key.namespace(), late_s = late, "job stopped and deleted by the removal lane");
                            } else if leads {
                                info!(kind, name = %d.key.name, namespace = d.key.namespace(), late_s = late, "binding removed by the removal lane");
                            } else {
                                info!(kind, name = %d.key.name, namespace = d.key.namespace(), late_s = late, "standby removed an expired grant");
                            }
                        }
                    }
                    Err(e) => {
                        warn!(kind, lane, name = %d.key.name, namespace = d.key.namespace(), error = %e, "could not remove an expired grant; retrying");
                        index.finish(&d, Outcome::Failed, clock());
                    }
                }
            }
            _ = tokio::time::sleep(wait) => {}
            _ = index.changed.notified() => {}
            changed = leading.changed(), if leading_open => {
                match changed {
                    Ok(()) => {
                        leads = *leading.borrow_and_update();
                        if !leads {
                            info!("not the leader: removing expired grants on time meanwhile");
                        }
                    }
                    Err(_) => leading_open = false,
                }
            }
        }
    }
}
