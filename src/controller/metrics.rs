//! Prometheus metrics of the operator, served on `/metrics`.

use prometheus_client::{
    encoding::{text::encode, EncodeLabelSet},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Label: a request phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// Phase name.
    pub phase: String,
}

/// Label: an error variant.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabel {
    /// `Error::label()`.
    pub error: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Requests per phase, counted by the periodic sweep.
    pub requests: Family<PhaseLabel, Gauge>,
    /// Bindings managed by the operator, counted by the periodic sweep.
    pub active_grants: Gauge,
    /// Phase transitions the operator recorded.
    pub transitions: Family<PhaseLabel, Counter>,
    /// Reconcile duration in seconds.
    pub reconcile_duration: Histogram,
    /// Failed reconciles by error.
    pub reconcile_errors: Family<ErrorLabel, Counter>,
    /// Seconds from the approval (or window opening) to the binding being in place.
    pub approval_to_grant: Histogram,
    /// Seconds between `expiresAt` and the binding's removal.
    pub expiry_lag: Histogram,
    /// Bindings removed by the sweep.
    pub swept: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        let buckets = || Histogram::new([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0]);
        let mut m = Metrics {
            registry: Registry::with_prefix("gatehouse"),
            requests: Family::default(),
            active_grants: Gauge::default(),
            transitions: Family::default(),
            reconcile_duration: buckets(),
            reconcile_errors: Family::default(),
            approval_to_grant: buckets(),
            expiry_lag: buckets(),
            swept: Counter::default(),
        };
        let r = &mut m.registry;
        r.register(
            "requests",
            "ApprovalRequests by phase (refreshed by the sweep)",
            m.requests.clone(),
        );
        r.register(
            "active_grants",
            "Bindings managed by Gatehouse (refreshed by the sweep)",
            m.active_grants.clone(),
        );
        r.register(
            "phase_transitions",
            "Phase transitions recorded",
            m.transitions.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            m.reconcile_duration.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed reconciles by error",
            m.reconcile_errors.clone(),
        );
        r.register(
            "approval_to_grant_seconds",
            "Time from approval to the binding being in place",
            m.approval_to_grant.clone(),
        );
        r.register(
            "expiry_lag_seconds",
            "Time from expiresAt to the binding's removal",
            m.expiry_lag.clone(),
        );
        r.register(
            "swept_bindings",
            "Expired or orphaned bindings removed by the sweep",
            m.swept.clone(),
        );
        m
    }
}

impl Metrics {
    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
