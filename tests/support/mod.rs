//! What the integration tests share, one module tree for all of them. Each test
//! binary compiles it whole and uses a part.
#![allow(dead_code)]

/// The admission-policy CEL harness (kube-cel and what it lacks).
pub mod admission;
/// The in-process fake API server and the controller rig around it.
pub mod fake;
/// `helm` and `kubectl` from `hack/control-plane/tools.sh`.
pub mod tools;
