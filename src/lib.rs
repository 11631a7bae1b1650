//! Gatehouse: just-in-time Kubernetes RBAC access.
//!
//! - [`api`]: the wire format of the three resources (CRDs).
//! - [`crdgen`]: the CRD YAML the `gatehouse crds` command prints.

pub mod api;
pub mod crdgen;
