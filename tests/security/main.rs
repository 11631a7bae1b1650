//! The security suite: each test is an attack a hostile tenant (or a careless
//! reviewer) tried on a real API server, and asserts that it fails. Every test
//! here was written first, seen failing on the code before its fix, then passing.
//!
//! Runs like the other end-to-end suites: against the API server named by
//! `GATEHOUSE_E2E_KUBECONFIG` (`hack/control-plane/up.sh`), skipping without one
//! (a failure when `GATEHOUSE_E2E_REQUIRED` is set). SECURITY.md maps each threat
//! to its test here.
//!
//! One module per area; each scenario has a namespace of its own
//! (`tests/support/scene.rs`). The flood of `memory.rs` runs in a binary of
//! its own, `tests/security_flood/`, so it slows no other attack.

#[path = "../support/mod.rs"]
mod support;

mod channels;
mod launch;
// memory.rs (the flood) runs alone: tests/security_flood/main.rs.
mod removal;
mod shell;
mod tenant;
mod ui;
mod usage;
