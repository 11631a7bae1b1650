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

/// Labels: an API request the operator made.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiRequestLabel {
    /// `get`, `list`, `watch`, `create`, `update`, `patch`, `delete`.
    pub verb: String,
    /// Resource, with `/status` for the status subresource (`approvalrequests/status`).
    pub resource: String,
}

/// Label: a watched kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// Resource name (`approvalrequests`).
    pub kind: String,
}

/// Label: how a remediation attempt ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `removed`, `deleted`, `forbidden`, `conflict`, `failed`.
    pub result: String,
}

/// Label: how a write of a usage summary (`BindingUsage`) ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `written`, `conflict` (changed meanwhile: merged again and retried),
    /// `failed` (kept for the next flush).
    pub outcome: String,
}

/// Label: a notification channel.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelLabel {
    /// Name of the NotificationChannel.
    pub channel: String,
}

/// Labels: a notification channel and an event or failure.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ChannelOutcomeLabel {
    /// Name of the NotificationChannel.
    pub channel: String,
    /// The event delivered (`Granted`), or why an attempt failed (`connect`, `timeout`, `status_5xx`, ...).
    pub what: String,
}

/// Label: the removal lane of a leader or of a standby.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneLabel {
    /// `leader` or `standby`.
    pub lane: String,
}

/// Labels: the removal lane and what it removed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LaneKindLabel {
    /// `leader` or `standby`.
    pub lane: String,
    /// `RoleBinding`, `ClusterRoleBinding` or `Job`.
    pub kind: String,
}

/// A histogram per label set, with the common buckets.
pub type Histograms<L> = Family<L, Histogram, fn() -> Histogram>;

fn buckets() -> Histogram {
    Histogram::new([0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0])
}

/// Label: why something was refused or how it was counted.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CauseLabel {
    /// The cause, CamelCase (`Unauthenticated`, `Handshake`, `TooLarge`, `Read`, `Malformed`).
    pub cause: String,
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
    /// Bindings and Jobs the removal lane deleted at their deadline, by
    /// lane (`leader`, `standby`) and kind.
    pub removals: Family<LaneKindLabel, Counter>,
    /// Seconds from an object's deadline to the lane's delete, by lane.
    pub removal_lateness: Histograms<LaneLabel>,
    /// API requests the operator made, by verb and resource.
    pub api_requests: Family<ApiRequestLabel, Counter>,
    /// Watch loops that failed and started over, by kind.
    pub watch_restarts: Family<KindLabel, Counter>,
    /// Unix time of the last complete list of each kind into memory.
    pub last_sync: Family<KindLabel, Gauge>,
    /// Kubernetes Events not published because the queue was full.
    pub events_dropped: Counter,
    /// Requests woken by the watchdog: their deadline passed without a reconcile.
    pub watchdog_wakes: Counter,
    /// Duration of one certification reconcile (campaign or item), in seconds.
    pub certification_reconcile_duration: Histogram,
    /// AccessCertification items created by campaign runs.
    pub certification_items_created: Counter,
    /// Remediation writes (subject removed, binding deleted) and how they ended.
    pub certification_remediations: Family<ResultLabel, Counter>,
    /// Notifications an endpoint accepted, by channel and event.
    pub notifications_delivered: Family<ChannelOutcomeLabel, Counter>,
    /// Failed delivery attempts, by channel and cause.
    pub notification_failures: Family<ChannelOutcomeLabel, Counter>,
    /// Notifications waiting in a channel's queue.
    pub notification_queue: Family<ChannelLabel, Gauge>,
    /// Seconds from an event to its acceptance by the endpoint (retries included).
    pub notification_latency: Histogram,
    /// Notices not queued because a queue was full (the next resync queues them again).
    pub notifications_dropped: Counter,
    /// Posts to the audit webhook receiver refused, by cause.
    pub audit_refused: Family<CauseLabel, Counter>,
    /// Audit events received, `Read` or `Malformed`.
    pub audit_events: Family<CauseLabel, Counter>,
    /// Writes of usage summaries, by outcome.
    pub usage_flush_writes: Family<OutcomeLabel, Counter>,
    /// Bindings with usage counts not yet written.
    pub usage_unwritten_bindings: Gauge,
    /// Unix time of the last flush in which every write succeeded.
    pub usage_last_flush: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
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
            removals: Family::default(),
            removal_lateness: Family::new_with_constructor(buckets),
            api_requests: Family::default(),
            watch_restarts: Family::default(),
            last_sync: Family::default(),
            events_dropped: Counter::default(),
            watchdog_wakes: Counter::default(),
            certification_reconcile_duration: buckets(),
            certification_items_created: Counter::default(),
            certification_remediations: Family::default(),
            notifications_delivered: Family::default(),
            notification_failures: Family::default(),
            notification_queue: Family::default(),
            notification_latency: buckets(),
            notifications_dropped: Counter::default(),
            audit_refused: Family::default(),
            audit_events: Family::default(),
            usage_flush_writes: Family::default(),
            usage_unwritten_bindings: Gauge::default(),
            usage_last_flush: Gauge::default(),
        };
        m.register_requests();
        m.register_certification();
        m.register_notifications();
        m.registry.register(
            "audit_webhook_refused",
            "Posts to the audit webhook receiver refused, by cause (Unauthenticated, Handshake, TooLarge)",
            m.audit_refused.clone(),
        );
        m.registry.register(
            "audit_events",
            "Audit events received by the webhook receiver: Read, or Malformed (skipped)",
            m.audit_events.clone(),
        );
        m.register_usage();
        m
    }
}

impl Metrics {
    /// Requests, grants, the controller's memory and its API calls.
    fn register_requests(&mut self) {
        let r = &mut self.registry;
        r.register(
            "requests",
            "ApprovalRequests by phase (refreshed by the sweep)",
            self.requests.clone(),
        );
        r.register(
            "active_grants",
            "Bindings managed by Gatehouse (refreshed by the sweep)",
            self.active_grants.clone(),
        );
        r.register(
            "phase_transitions",
            "Phase transitions recorded",
            self.transitions.clone(),
        );
        r.register(
            "reconcile_duration_seconds",
            "Duration of one reconcile",
            self.reconcile_duration.clone(),
        );
        r.register(
            "reconcile_errors",
            "Failed reconciles by error",
            self.reconcile_errors.clone(),
        );
        r.register(
            "approval_to_grant_seconds",
            "Time from approval to the binding being in place",
            self.approval_to_grant.clone(),
        );
        r.register(
            "expiry_lag_seconds",
            "Time from expiresAt to the binding's removal",
            self.expiry_lag.clone(),
        );
        r.register(
            "removals",
            "Bindings and Jobs the removal lane deleted at their deadline, by lane (leader, standby) and kind",
            self.removals.clone(),
        );
        r.register(
            "removal_lateness_seconds",
            "Time from an object's deadline to its delete by the removal lane, by lane",
            self.removal_lateness.clone(),
        );
        r.register(
            "swept_bindings",
            "Expired or orphaned bindings removed by the sweep",
            self.swept.clone(),
        );
        r.register(
            "api_requests",
            "API requests the operator made, by verb and resource",
            self.api_requests.clone(),
        );
        r.register(
            "watch_restarts",
            "Watch loops that failed and listed again, by kind",
            self.watch_restarts.clone(),
        );
        r.register(
            "last_sync_timestamp_seconds",
            "Unix time of the last complete list of a kind into memory",
            self.last_sync.clone(),
        );
        r.register(
            "watchdog_wakes",
            "Requests woken because their deadline passed without a reconcile",
            self.watchdog_wakes.clone(),
        );
        r.register(
            "events_dropped",
            "Kubernetes Events dropped because the publishing queue was full",
            self.events_dropped.clone(),
        );
    }

    /// Certification campaigns and items.
    fn register_certification(&mut self) {
        let r = &mut self.registry;
        r.register(
            "certification_reconcile_duration_seconds",
            "Duration of one certification reconcile (campaign or item)",
            self.certification_reconcile_duration.clone(),
        );
        r.register(
            "certification_items_created",
            "AccessCertification items created by campaign runs",
            self.certification_items_created.clone(),
        );
        r.register(
            "certification_remediations",
            "Writes that remove revoked access, by result",
            self.certification_remediations.clone(),
        );
    }

    /// Notification delivery.
    fn register_notifications(&mut self) {
        let r = &mut self.registry;
        r.register(
            "notifications_delivered",
            "Notifications an endpoint accepted, by channel and event (label what)",
            self.notifications_delivered.clone(),
        );
        r.register(
            "notification_failures",
            "Failed notification attempts, by channel and cause (label what)",
            self.notification_failures.clone(),
        );
        r.register(
            "notification_queue_depth",
            "Notifications waiting in a channel's queue",
            self.notification_queue.clone(),
        );
        r.register(
            "notification_delivery_seconds",
            "Time from an event to its acceptance by the endpoint, retries included",
            self.notification_latency.clone(),
        );
        r.register(
            "notifications_dropped",
            "Notices not queued because a queue was full (queued again at the next resync)",
            self.notifications_dropped.clone(),
        );
    }

    /// The flush of usage summaries.
    fn register_usage(&mut self) {
        let r = &mut self.registry;
        r.register(
            "usage_flush_writes",
            "Writes of usage summaries (BindingUsage), by outcome: written, conflict (merged again and retried), failed (kept for the next flush)",
            self.usage_flush_writes.clone(),
        );
        r.register(
            "usage_unwritten_bindings",
            "Bindings whose usage counts are not written yet (after the last flush)",
            self.usage_unwritten_bindings.clone(),
        );
        r.register(
            "usage_last_flush_timestamp_seconds",
            "Unix time of the last flush in which every usage summary write succeeded",
            self.usage_last_flush.clone(),
        );
    }

    /// A write of a usage summary ended with `outcome`.
    pub fn usage_write(&self, outcome: &str) {
        self.usage_flush_writes
            .get_or_create(&OutcomeLabel {
                outcome: outcome.into(),
            })
            .inc();
    }

    /// A watch loop of `kind` failed and starts over.
    pub fn watch_restarted(&self, kind: &str) {
        self.watch_restarts
            .get_or_create(&KindLabel { kind: kind.into() })
            .inc();
    }

    /// `kind` was listed into memory.
    pub fn listed(&self, kind: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last_sync
            .get_or_create(&KindLabel { kind: kind.into() })
            .set(i64::try_from(now).unwrap_or(i64::MAX));
    }

    /// The operator made an API request.
    pub fn api_request(&self, verb: &str, resource: &str) {
        self.api_requests
            .get_or_create(&ApiRequestLabel {
                verb: verb.into(),
                resource: resource.into(),
            })
            .inc();
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
