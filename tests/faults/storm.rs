//! A crash storm, small enough for CI (the full one is in `hack/bench.sh`):
//! the only replica is SIGKILLed again and again while requests of 5–20 s
//! arrive, are approved and expire, and is started again after 0–2 s each
//! time. Every approved request is granted, once, and every grant ends within
//! 1 s of its expiry, or of the restart that followed it if no operator ran
//! at the expiry.

use std::{
    collections::{BTreeMap, BTreeSet},
    time::{Duration, Instant, SystemTime},
};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use gatehouse::api::Phase;
use kube::api::ListParams;

use crate::{fault_scene, support::cluster::eventually};

const REQUESTS: usize = 40;
const KILLS: usize = 5;
/// One request arrives every this often.
const ARRIVAL: Duration = Duration::from_millis(500);

/// A fixed schedule (the same every run): durations of 5–20 s, kills over the
/// arrivals and the expiries, restarts 0–2 s later.
fn schedule() -> (Vec<u64>, Vec<(Duration, Duration)>) {
    let durations = (0..REQUESTS as u64).map(|i| 5 + (i * 7) % 16).collect();
    let kills = (0..KILLS as u64)
        .map(|k| {
            let at = Duration::from_millis(3_000 + k * 7_300 + (k * 1_337) % 900);
            let down = Duration::from_millis((k * 613) % 2_001);
            (at, down)
        })
        .collect();
    (durations, kills)
}

/// The instant a grant expiring at `t` had to be gone by.
fn due(t: SystemTime, outages: &[(SystemTime, SystemTime)]) -> SystemTime {
    outages
        .iter()
        .find(|(down, up)| *down <= t && t < *up)
        .map_or(t, |(_, up)| *up)
}

#[tokio::test]
async fn killed_again_and_again_the_operator_grants_each_approval_once_and_ends_each_on_time() {
    let Some((_one, scene, _control_plane)) = fault_scene("storm").await else {
        return;
    };
    let (seen, recorder) = crate::seen::record(&scene);
    let kubeconfig = scene.operator_kubeconfig();
    let flags = ["--leader-election=false"];
    let mut operator = scene.start_operator(&kubeconfig, "storm-0", &flags).await;
    let (durations, kills) = schedule();
    let names: Vec<String> = (0..REQUESTS).map(|i| format!("storm-{i:02}")).collect();

    let started = Instant::now();
    let arrivals = {
        let scene = &scene;
        futures::stream::iter(names.iter().zip(&durations).enumerate())
            .map(move |(i, (name, secs))| async move {
                tokio::time::sleep((ARRIVAL * i as u32).saturating_sub(started.elapsed())).await;
                let req = scene.request(name, &format!("{secs}s")).await;
                scene.approve(&req).await;
            })
            .buffer_unordered(REQUESTS)
            .collect::<Vec<()>>()
    };
    let (scene_ref, kubeconfig_ref, kills_ref) = (&scene, &kubeconfig, &kills);
    let storm = async move {
        let (scene, kubeconfig, kills) = (scene_ref, kubeconfig_ref, kills_ref);
        let mut outages = Vec::new();
        for (i, (at, down)) in kills.iter().enumerate() {
            tokio::time::sleep(at.saturating_sub(started.elapsed())).await;
            drop(operator);
            let killed = SystemTime::now();
            tokio::time::sleep(*down).await;
            let up = SystemTime::now();
            operator = scene
                .start_operator(kubeconfig, &format!("storm-{}", i + 1), &flags)
                .await;
            outages.push((killed, up));
        }
        (operator, outages)
    };
    let ((), (last, outages)) = futures::join!(
        async {
            arrivals.await;
        },
        storm
    );

    let api = scene.requests(&scene.admin);
    eventually("every request to end", Duration::from_secs(120), || async {
        let list = api.list(&ListParams::default()).await.ok()?;
        let ended = list
            .items
            .iter()
            .filter(|r| r.status.as_ref().is_some_and(|s| s.phase.is_terminal()))
            .count();
        (ended == REQUESTS).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    recorder.abort();
    let phases: BTreeSet<String> = api
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter_map(|r| r.status.as_ref().map(|s| s.phase.to_string()))
        .collect();
    drop(last);

    let seen = seen.lock().unwrap().clone();
    // Every approved request was granted, by one binding (one uid), ever.
    let mut per_request: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for s in seen.iter().filter(|s| s.added) {
        per_request.entry(&s.request).or_default().insert(&s.uid);
    }
    let never: Vec<&String> = names
        .iter()
        .filter(|n| !per_request.contains_key(n.as_str()))
        .collect();
    assert!(
        never.is_empty(),
        "approved, never granted: {never:?} (phases: {phases:?})"
    );
    for (request, uids) in &per_request {
        assert_eq!(uids.len(), 1, "{request} was granted {} times", uids.len());
    }
    assert_eq!(phases, BTreeSet::from([Phase::Expired.to_string()]));

    // Every grant ended within 1 s of its expiry, or of the restart after it.
    let mut late: Vec<(i64, &str)> = seen
        .iter()
        .filter(|s| !s.added)
        .filter_map(|s| {
            let due = due(SystemTime::from(s.expires?), &outages);
            let gone: DateTime<Utc> = s.at.into();
            Some((
                (gone - DateTime::<Utc>::from(due)).num_milliseconds(),
                s.request.as_str(),
            ))
        })
        .collect();
    late.sort();
    assert_eq!(late.len(), REQUESTS, "every grant was seen removed");
    let outage_ms: Vec<u128> = outages
        .iter()
        .map(|(down, up)| up.duration_since(*down).unwrap_or_default().as_millis())
        .collect();
    eprintln!(
        "fault: {KILLS} SIGKILLs (down {outage_ms:?} ms) during {REQUESTS} requests: removals after expiry or restart p50 {} ms, max {} ms ({})",
        late[late.len() / 2].0,
        late[late.len() - 1].0,
        late[late.len() - 1].1
    );
    let (worst, request) = late[late.len() - 1];
    assert!(
        worst <= 1000,
        "{request}'s grant lived {worst} ms past its expiry or the restart after it"
    );
    scene.finish().await;
}
