//! Gatehouse: just-in-time Kubernetes RBAC access.
//!
//! - [`api`]: the wire format of the resources (CRDs).
//! - [`decide`]: the pure decision core; every access rule lives there.
//! - [`audit`]: the audit webhook receiver feeding usage evidence (`gatehouse run --audit-webhook-addr`).
//! - [`certify`]: the pure core of access certification (campaigns, items, risk, reviews).
//! - [`store`]: what the operator knows of the cluster, in memory (kept bounded per object).
//! - [`metrics`]: the operator's Prometheus metrics.
//! - [`controller`]: the operator shell (`gatehouse run`).
//! - [`simulate`]: offline evaluation of manifests (`gatehouse simulate`).
//! - [`crdgen`]: the CRD YAML the `gatehouse crds` command prints.
//! - [`admission`]: the admission policies `gatehouse admission` prints.
//! - [`rbac`]: least-privilege RBAC for the operator and users (`gatehouse rbac`).
//! - [`install`]: the kustomize bases and the chart's generated templates (`gatehouse manifests`).
//! - [`cli`]: the `kubectl gatehouse` plugin for requesters and reviewers.
//! - [`labels`]: the labels and annotations on what the operator writes.
//! - [`notify`]: notifications to Slack, Teams and webhooks (`NotificationChannel`).
//! - [`table`]: plain-text tables for the plugin and `simulate`.
//! - [`escape`]: escaping at every border: shell commands, terminals, CSV, chat Markdown.
//! - [`ingest`]: `gatehouse usage ingest` and `simulate --audit`: audit files into a usage book.
//! - [`usage`]: usage evidence from audit events: which binding allowed each request.

pub mod admission;
pub mod api;
pub mod audit;
pub mod certify;
pub mod cli;
pub mod controller;
pub mod crdgen;
pub mod decide;
pub mod digest;
pub mod escape;
pub mod ingest;
pub mod install;
pub mod labels;
pub mod metrics;
pub mod notify;
pub mod rbac;
pub mod simulate;
pub mod store;
pub mod table;
pub mod usage;
