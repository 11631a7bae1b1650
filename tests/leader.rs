//! Leader election against the in-process fake API, on tokio's paused clock:
//! one replica acts, a released Lease is taken at once, a dead leader's Lease
//! within 10 s, and a leader cut off from the API server stops acting before
//! anyone else can start.

use std::{
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use gatehouse::controller::leader::{elect, LeaseSettings};
use kube::Client;
use tokio::{sync::watch, time::Instant};

/// A fake API server where the Lease writes of holder `a` fail while `cut` is set.
async fn api(cut: Arc<AtomicBool>) -> Client {
    let funcs = kube_fake_client::interceptor::Funcs::new().replace(move |ctx| {
        if cut.load(Ordering::SeqCst) && ctx.object["spec"]["holderIdentity"] == "a" {
            return Err(kube_fake_client::Error::Internal(
                "connection reset by peer".into(),
            ));
        }
        Ok(None)
    });
    kube_fake_client::ClientBuilder::new()
        .with_interceptor_funcs(funcs)
        .build()
        .await
        .unwrap()
}

struct Replica {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

fn replica(client: &Client, identity: &str) -> Replica {
    let (leading_tx, leading) = watch::channel(false);
    let (stop, stop_rx) = watch::channel(false);
    let settings = LeaseSettings::new("gatehouse-leader", "gatehouse-system", identity);
    let task = tokio::spawn(elect(client.clone(), settings, leading_tx, stop_rx));
    Replica { leading, stop, task }
}

/// Records every instant at which both replicas believed they lead.
fn overlap_monitor(a: &Replica, b: &Replica) -> Arc<Mutex<Vec<Instant>>> {
    let both = Arc::new(Mutex::new(Vec::new()));
    let (mut la, mut lb, seen) = (a.leading.clone(), b.leading.clone(), both.clone());
    tokio::spawn(async move {
        loop {
            if *la.borrow() && *lb.borrow() {
                seen.lock().unwrap().push(Instant::now());
            }
            tokio::select! {
                r = la.changed() => if r.is_err() { break },
                r = lb.changed() => if r.is_err() { break },
            }
        }
    });
    both
}

async fn until_leading(r: &mut watch::Receiver<bool>, value: bool) -> Instant {
    r.wait_for(|v| *v == value).await.unwrap();
    Instant::now()
}

#[tokio::test(start_paused = true)]
async fn one_replica_leads_and_a_released_lease_passes_on_at_once() {
    let client = api(Arc::new(AtomicBool::new(false))).await;
    let mut a = replica(&client, "a");
    until_leading(&mut a.leading, true).await;
    let mut b = replica(&client, "b");
    let overlaps = overlap_monitor(&a, &b);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(
        *a.leading.borrow() && !*b.leading.borrow(),
        "a keeps the lease by renewing it"
    );

    // a shuts down: it releases the Lease, and b takes it within one retry period.
    let stopped = Instant::now();
    a.stop.send(true).unwrap();
    a.task.await.unwrap();
    let took = until_leading(&mut b.leading, true).await;
    assert!(took - stopped <= Duration::from_secs(3), "{:?}", took - stopped);
    assert!(overlaps.lock().unwrap().is_empty());
    b.stop.send(true).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_leader_cut_off_stops_acting_before_the_lease_can_be_taken() {
    let cut = Arc::new(AtomicBool::new(false));
    let client = api(cut.clone()).await;
    let mut a = replica(&client, "a");
    until_leading(&mut a.leading, true).await;
    let mut b = replica(&client, "b");
    let overlaps = overlap_monitor(&a, &b);
    tokio::time::sleep(Duration::from_secs(30)).await;

    // From now on a cannot renew (a partition); its last renewal began at most one
    // retry period (2 s) ago.
    let cut_at = Instant::now();
    cut.store(true, Ordering::SeqCst);
    let a_stopped = until_leading(&mut a.leading, false).await;
    let b_started = until_leading(&mut b.leading, true).await;
    assert!(
        a_stopped - cut_at <= Duration::from_secs(10),
        "a stops within the renew deadline: {:?}",
        a_stopped - cut_at
    );
    // The fencing margin: b takes the Lease a whole lease duration after it saw
    // a's last renewal, a stopped two thirds of one after that renewal began.
    let s = LeaseSettings::new("gatehouse-leader", "gatehouse-system", "b");
    assert!(
        b_started - a_stopped >= s.lease_duration - s.renew_deadline,
        "b starts only after the lease duration: a stopped {:?} before",
        b_started - a_stopped
    );
    assert!(
        b_started - cut_at <= s.lease_duration + s.retry * 2,
        "failover takes at most a lease duration plus a retry: {:?}",
        b_started - cut_at
    );
    assert!(overlaps.lock().unwrap().is_empty(), "two leaders at once");

    // The partition heals: a sees b's Lease and stays a standby.
    cut.store(false, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(60)).await;
    assert!(!*a.leading.borrow() && *b.leading.borrow());
    assert!(overlaps.lock().unwrap().is_empty());
}

/// A leader killed (no release: the Lease has to lapse) at any moment of its
/// renewal period: with the default settings the standby leads within 10 s.
#[tokio::test(start_paused = true)]
async fn with_the_default_settings_a_dead_leaders_lease_is_taken_within_10_s() {
    let settings = LeaseSettings::new("gatehouse-leader", "gatehouse-system", "a");
    for step in 0..8u32 {
        let client = api(Arc::new(AtomicBool::new(false))).await;
        let mut a = replica(&client, "a");
        until_leading(&mut a.leading, true).await;
        let mut b = replica(&client, "b");
        // Kill a at a different point of its renewal period each time.
        tokio::time::sleep(Duration::from_secs(20) + settings.retry * step / 8).await;
        assert!(*a.leading.borrow() && !*b.leading.borrow());
        let killed = Instant::now();
        a.task.abort();
        let took = until_leading(&mut b.leading, true).await - killed;
        eprintln!("leader killed at step {step}: the standby led {took:?} later");
        assert!(
            took <= Duration::from_secs(10),
            "killed at step {step}: b led {took:?} later"
        );
        b.stop.send(true).unwrap();
        b.task.await.unwrap();
    }
}
