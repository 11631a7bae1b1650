//! Leader election on a `coordination.k8s.io` Lease, with fencing.
//!
//! One replica acts; the others wait, with their caches warm, to take over. The
//! holder renews the Lease every `retry` period. Fencing: the holder considers
//! itself leader only until `renew_deadline` after the start of its last
//! successful renewal, measured on its own monotonic clock; a candidate takes an
//! unrenewed Lease only `lease_duration` after it last saw the Lease change, on
//! its own monotonic clock. With `renew_deadline < lease_duration`, a holder cut
//! off from the API server (a partition, a paused process resumed later) stops
//! acting before anyone else can start: two replicas never act at once. No
//! instant written in the Lease is compared across machines, so clock skew
//! between nodes does not matter.
//!
//! Takeover after a crash: a candidate tries again exactly when the lease
//! duration since it last saw the Lease change runs out (not at its next
//! retry tick), so with the default 8 s lease and 1 s retry a standby takes a
//! dead leader's Lease at most 9 s after the leader's last renewal. The fencing
//! margin (lease duration minus renew deadline: 2.7 s by default) is what
//! keeps a cut-off holder's last in-flight requests from landing after the new
//! leader starts. On shutdown the holder releases the Lease only once the
//! caller has stopped acting (see [`elect`]) and [`RELEASE_MARGIN`] has passed.

use std::time::Duration;

use k8s_openapi::{
    api::coordination::v1::{Lease, LeaseSpec},
    apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta},
    jiff::Timestamp,
};
use kube::{
    api::{Api, PostParams},
    Client,
};
use tokio::{sync::watch, time::Instant};
use tracing::{info, warn};

use super::owned::is_status;

/// How the election is timed.
#[derive(Debug, Clone)]
pub struct LeaseSettings {
    /// Name of the Lease.
    pub name: String,
    /// Namespace of the Lease.
    pub namespace: String,
    /// This replica's identity (the pod name).
    pub identity: String,
    /// How long a Lease nobody renews stays taken.
    pub lease_duration: Duration,
    /// The holder stops acting this long after its last successful renewal began.
    pub renew_deadline: Duration,
    /// Pause between renewals, and between attempts to take the Lease.
    pub retry: Duration,
}

/// The lease duration of `gatehouse run` unless `--lease-duration` says otherwise.
pub const DEFAULT_LEASE_DURATION: Duration = Duration::from_secs(8);

/// After it stopped acting, a holder that shuts down waits this long before it
/// releases the Lease: a request it had sent and then given up on lands first.
pub const RELEASE_MARGIN: Duration = Duration::from_secs(1);

impl LeaseSettings {
    /// The defaults: an 8 s lease, so a standby takes a dead leader's Lease
    /// within 9 s.
    pub fn new(name: &str, namespace: &str, identity: &str) -> Self {
        Self::with_duration(name, namespace, identity, DEFAULT_LEASE_DURATION)
    }

    /// A lease of `lease_duration`: the holder stops acting after two thirds of
    /// it without a successful renewal (the last third is the fencing margin),
    /// and renews (or a candidate retries) every eighth of it, 250 ms at least.
    pub fn with_duration(name: &str, namespace: &str, identity: &str, lease_duration: Duration) -> Self {
        LeaseSettings {
            name: name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration,
            renew_deadline: lease_duration * 2 / 3,
            retry: (lease_duration / 8).max(Duration::from_millis(250)),
        }
    }
}

/// Takes part in the election until `stop` turns true; `leading` says, at every
/// moment, whether this replica may act. Releases the Lease on the way out so a
/// standby takes over at once: turn `stop` true only once nothing acts any more
/// (the release waits [`RELEASE_MARGIN`] more).
pub async fn elect(
    client: Client,
    s: LeaseSettings,
    leading: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let api: Api<Lease> = Api::namespaced(client, &s.namespace);
    let mut seen: Option<(String, Instant)> = None;
    loop {
        if *stop.borrow() {
            break;
        }
        let attempt = Instant::now();
        match try_acquire(&api, &s, &mut seen).await {
            Ok(true) => {
                info!(identity = %s.identity, lease = %s.name, "became the leader");
                let _ = leading.send(true);
                hold(&api, &s, &mut stop, attempt + s.renew_deadline).await;
                let _ = leading.send(false);
                seen = None;
                if *stop.borrow() {
                    tokio::time::sleep(RELEASE_MARGIN).await;
                    release(&api, &s).await;
                    break;
                }
                warn!(identity = %s.identity, "stopped leading: the lease could not be renewed in time");
            }
            Ok(false) => {}
            Err(e) => warn!(error = %e, lease = %s.name, "leader election: cannot read or take the lease"),
        }
        // Try again after a retry period, or exactly when the Lease we saw
        // unchanged lapses, whichever comes first.
        let lapses = seen
            .as_ref()
            .map(|(_, at)| (*at + s.lease_duration).saturating_duration_since(Instant::now()));
        let pause = lapses.map_or(s.retry, |l| {
            s.retry
                .min(l + Duration::from_millis(1))
                .max(Duration::from_millis(50))
        });
        tokio::select! {
            _ = tokio::time::sleep(pause) => {}
            _ = stop.changed() => {}
        }
    }
}

fn now_micro() -> MicroTime {
    MicroTime(Timestamp::now())
}

/// Takes the Lease if it is free, ours, or has gone unrenewed for a whole lease
/// duration since this replica last saw it change.
async fn try_acquire(
    api: &Api<Lease>,
    s: &LeaseSettings,
    seen: &mut Option<(String, Instant)>,
) -> Result<bool, kube::Error> {
    let timeout = s.retry.max(Duration::from_secs(1));
    let current = match tokio::time::timeout(timeout, api.get_opt(&s.name)).await {
        Ok(r) => r?,
        Err(_) => return Ok(false),
    };
    let Some(mut lease) = current else {
        let lease = Lease {
            metadata: ObjectMeta {
                name: Some(s.name.clone()),
                namespace: Some(s.namespace.clone()),
                ..Default::default()
            },
            spec: Some(spec_for(s, None)),
        };
        return match api.create(&PostParams::default(), &lease).await {
            Ok(_) => Ok(true),
            Err(e) if is_status(&e, 409) => Ok(false),
            Err(e) => Err(e),
        };
    };
    let spec = lease.spec.clone().unwrap_or_default();
    let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
    let version = lease.metadata.resource_version.clone().unwrap_or_default();
    let free = match &holder {
        None => true,
        Some(h) if *h == s.identity => true,
        Some(_) => {
            // The Lease changed since we last looked: the holder is alive.
            let changed = seen.as_ref().is_none_or(|(v, _)| *v != version);
            if changed {
                *seen = Some((version, Instant::now()));
                false
            } else {
                seen.as_ref()
                    .is_some_and(|(_, at)| at.elapsed() >= s.lease_duration)
            }
        }
    };
    if !free {
        return Ok(false);
    }
    lease.spec = Some(spec_for(s, Some(&spec)));
    write(api, s, &lease).await
}

/// The Lease spec when this replica takes it.
fn spec_for(s: &LeaseSettings, previous: Option<&LeaseSpec>) -> LeaseSpec {
    let ours = previous.and_then(|p| p.holder_identity.as_deref()) == Some(s.identity.as_str());
    let transitions = previous.and_then(|p| p.lease_transitions).unwrap_or(0);
    LeaseSpec {
        holder_identity: Some(s.identity.clone()),
        lease_duration_seconds: Some(i32::try_from(s.lease_duration.as_secs()).unwrap_or(15)),
        acquire_time: if ours {
            previous.and_then(|p| p.acquire_time.clone())
        } else {
            Some(now_micro())
        },
        renew_time: Some(now_micro()),
        lease_transitions: Some(if ours { transitions } else { transitions + 1 }),
        ..Default::default()
    }
}

/// Renews the Lease while this replica holds it; returns when it must stop
/// acting: the renew deadline passed without a successful renewal, someone
/// else holds the Lease, or `stop` turned true.
async fn hold(
    api: &Api<Lease>,
    s: &LeaseSettings,
    stop: &mut watch::Receiver<bool>,
    mut valid_until: Instant,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(s.retry) => {}
            _ = stop.changed() => return,
            _ = tokio::time::sleep_until(valid_until) => return,
        }
        let started = Instant::now();
        let renewal = tokio::time::timeout(valid_until.saturating_duration_since(started), renew(api, s));
        tokio::select! {
            result = renewal => match result {
                Ok(Ok(true)) => valid_until = started + s.renew_deadline,
                Ok(Ok(false)) => return,
                Ok(Err(e)) => warn!(error = %e, "could not renew the lease; retrying"),
                Err(_) => return,
            },
            _ = stop.changed() => return,
        }
        if Instant::now() >= valid_until {
            return;
        }
    }
}

/// One renewal; `false` when the Lease is no longer ours.
async fn renew(api: &Api<Lease>, s: &LeaseSettings) -> Result<bool, kube::Error> {
    let Some(mut lease) = api.get_opt(&s.name).await? else {
        return Ok(false);
    };
    let spec = lease.spec.clone().unwrap_or_default();
    if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
        return Ok(false);
    }
    lease.spec = Some(spec_for(s, Some(&spec)));
    write(api, s, &lease).await
}

/// Writes the Lease back; `false` when someone else changed it since it was read
/// (its resourceVersion makes a concurrent takeover or renewal fail here).
async fn write(api: &Api<Lease>, s: &LeaseSettings, lease: &Lease) -> Result<bool, kube::Error> {
    match api.replace(&s.name, &PostParams::default(), lease).await {
        Ok(_) => Ok(true),
        Err(e) if is_status(&e, 409) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Gives the Lease up (no holder) so a standby takes it at once.
async fn release(api: &Api<Lease>, s: &LeaseSettings) {
    let result = async {
        let Some(mut lease) = api.get_opt(&s.name).await? else {
            return Ok(());
        };
        let mut spec = lease.spec.clone().unwrap_or_default();
        if spec.holder_identity.as_deref() != Some(s.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = Some(now_micro());
        lease.spec = Some(spec);
        api.replace(&s.name, &PostParams::default(), &lease)
            .await
            .map(drop)
    };
    match tokio::time::timeout(s.retry, result).await {
        Ok(Ok(())) => info!(identity = %s.identity, "released the lease"),
        Ok(Err(e)) => warn!(error = %e, "could not release the lease; it expires by itself"),
        Err(_) => warn!("could not release the lease in time; it expires by itself"),
    }
}
