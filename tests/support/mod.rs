//! What the integration tests share, one module tree for all of them. Each test
//! binary compiles it whole and uses a part.
#![allow(dead_code)]

/// The admission-policy CEL harness (kube-cel and what it lacks).
pub mod admission;
/// The real API server of the end-to-end tests, and their skip guard.
pub mod cluster;
/// `kubectl gatehouse ui` as a subprocess, and raw HTTP to it.
pub mod desk;
/// The in-process fake API server and the controller rig around it.
pub mod fake;
/// Restarting the API server and partitioning a client (`hack/control-plane`).
pub mod faults;
/// Keeps each e2e operator to its own namespaces.
pub mod fence;
/// `gatehouse run` as a subprocess.
pub mod operator;
/// One end-to-end scenario: namespace, policy, people, operator.
pub mod scene;
/// `helm` and `kubectl` from `hack/control-plane/tools.sh`.
pub mod tools;
