//! The flood scenario of the security suite (`tests/security/memory.rs`), in a
//! binary of its own: 100 MB of bindings written at once make the API server
//! answer everyone seconds late, and an operator starting meanwhile lists all
//! of it. Run beside the other attacks, it slowed them past their deadlines;
//! binaries run one after another, so here it runs alone.
//!
//! Runs like the security suite: against `GATEHOUSE_E2E_KUBECONFIG`, skipping
//! without one (a failure when `GATEHOUSE_E2E_REQUIRED` is set).

#[path = "../support/mod.rs"]
mod support;

#[path = "../security/memory.rs"]
mod memory;
