//! The fault suite: what the operator does when the control plane misbehaves
//! (issue 19), on the project's own control plane (`hack/control-plane`): an
//! API server restart, the operator killed in the middle of a burst or again and
//! again while requests come and go, a watch that cannot resume, a minute-long
//! partition, and a partitioned leader.
//!
//! Each scenario asserts the outcome a user relies on: nothing granted is left
//! past its window, nothing decided is lost, nothing is granted twice, the
//! operator catches up on its own. The one timing bound that is a promise (a
//! request approved after an API server restart is granted within 5 s of the
//! API server being ready; a grant ends within 1 s of its expiry once the
//! operator is back) is asserted; the other figures are printed. Scenarios run
//! one at a time: some restart the API server under everyone.

#[path = "../support/mod.rs"]
mod support;

mod burst;
mod failover;
mod partition;
mod restart;
mod seen;
mod storm;

use std::path::PathBuf;

use support::{faults::ControlPlane, scene::Scene};
use tokio::sync::{Mutex, MutexGuard};

/// One fault at a time on the shared control plane.
static ONE_AT_A_TIME: Mutex<()> = Mutex::const_new(());

/// The scenario's scene and the control plane to break, or `None` to skip.
pub async fn fault_scene(name: &str) -> Option<(MutexGuard<'static, ()>, Scene, ControlPlane)> {
    let guard = ONE_AT_A_TIME.lock().await;
    let scene = Scene::with_own_operators(name).await?;
    let control_plane = ControlPlane::of(&scene.cluster.kubeconfig);
    let Some(control_plane) = control_plane else {
        assert!(
            std::env::var_os(support::cluster::REQUIRED_ENV).is_none(),
            "the fault suite needs the control plane of hack/control-plane/up.sh (its state next to the kubeconfig)"
        );
        eprintln!(
            "{} {name}: not a hack/control-plane cluster",
            support::cluster::SKIP_MARKER
        );
        return None;
    };
    Some((guard, scene, control_plane))
}

/// The log of the scenario's operator with this identity.
pub fn log_of(scene: &Scene, identity: &str) -> PathBuf {
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&scene.dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(&format!("-{identity}.log")))
        .collect();
    logs.sort();
    logs.pop()
        .unwrap_or_else(|| panic!("no log of {identity} in {}", scene.dir.display()))
}
