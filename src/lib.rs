//! Gatehouse: just-in-time Kubernetes RBAC access.
//!
//! - [`api`]: the wire format of the three resources (CRDs).
//! - [`decide`]: the pure decision core; every access rule lives there.
//! - [`simulate`]: offline evaluation of manifests (`gatehouse simulate`).
//! - [`crdgen`]: the CRD YAML the `gatehouse crds` command prints.

pub mod api;
pub mod crdgen;
pub mod decide;
pub mod simulate;
