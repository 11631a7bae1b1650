//! End-to-end: the operator binary against a real API server.
//!
//! Runs when `GATEHOUSE_E2E_KUBECONFIG` names an admin kubeconfig (see
//! `hack/control-plane/up.sh`); without it every scenario skips (and fails if
//! `GATEHOUSE_E2E_REQUIRED` is set). The CRDs and admission policies come from
//! the Helm chart (`helm template`, with helm from `hack/control-plane/tools.sh`),
//! installed once; each scenario then runs in a namespace of its own
//! (`gh-e2e-NAME-RUN`, deleted at its end), acts as different users through
//! impersonation, and is served by one `gatehouse run` subprocess shared by all
//! scenarios, unless it needs operators of its own (`tests/support/scene.rs`).

#[path = "../support/mod.rs"]
mod support;

mod grants;
mod one_time;
mod operator;
mod plugin;
