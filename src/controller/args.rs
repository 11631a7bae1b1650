//! The flags of `gatehouse run` (each with its environment variable).

use std::net::SocketAddr;

/// Settings of `gatehouse run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Address of the HTTP server for /metrics, /healthz and /readyz.
    #[arg(long, env = "GATEHOUSE_HTTP_ADDR", default_value = "0.0.0.0:8080")]
    pub http_addr: SocketAddr,
    /// How often to delete expired or orphaned bindings and refresh the gauges (Go duration).
    #[arg(long, env = "GATEHOUSE_SWEEP_INTERVAL", default_value = "2m")]
    pub sweep_interval: String,
    /// Elect a leader with a Lease so only one replica acts; `false` for a single replica.
    #[arg(long, env = "GATEHOUSE_LEADER_ELECTION", default_value_t = true, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "GATEHOUSE_LEASE_NAME", default_value = "gatehouse-leader")]
    pub lease_name: String,
    /// The operator's own namespace: where its Lease and its notification
    /// Secrets live, and a namespace where nothing is granted (see
    /// --allow-grants-in). In a pod, POD_NAMESPACE from the downward API.
    #[arg(long, env = "POD_NAMESPACE", default_value = "gatehouse-system")]
    pub lease_namespace: String,
    /// Grant access in this protected namespace after all (the operator's own
    /// namespace and kube-system are protected: no request is granted there,
    /// whatever a policy says). Repeat, or separate with commas.
    #[arg(
        long = "allow-grants-in",
        env = "GATEHOUSE_ALLOW_GRANTS_IN",
        value_name = "NAMESPACE",
        value_delimiter = ','
    )]
    pub allow_grants_in: Vec<String>,
    /// How long a Lease nobody renews stays taken (Go duration); the holder stops
    /// acting after two thirds of it without a successful renewal, and a standby
    /// takes a dead leader's Lease within this plus an eighth of it.
    #[arg(long, env = "GATEHOUSE_LEASE_DURATION", default_value = "8s")]
    pub lease_duration: String,
    /// Requests reconciled in parallel.
    #[arg(long, env = "GATEHOUSE_CONCURRENCY", default_value_t = 64)]
    pub concurrency: u16,
    /// Remove revoked access in campaigns with `remediation: Automatic` (needs
    /// patch and delete on bindings: chart value `certification.remediation`).
    /// Off: every removal waits for an admin, with the exact command in the item.
    #[arg(long, env = "GATEHOUSE_CERTIFICATION_REMEDIATION", default_value_t = false, action = clap::ArgAction::Set)]
    pub certification_remediation: bool,
    /// The shortest review window (a campaign's `duration`) this operator
    /// accepts (Go duration): a campaign with a shorter one is not Ready and
    /// starts no run, and a run started late still gives reviewers this long.
    #[arg(long, env = "GATEHOUSE_CERTIFICATION_MIN_REVIEW_WINDOW", default_value = crate::certify::MIN_REVIEW_WINDOW)]
    pub certification_min_review_window: String,
    /// Certification items reconciled in parallel (their own workers, apart from
    /// requests').
    #[arg(long, env = "GATEHOUSE_CERTIFICATION_CONCURRENCY", default_value_t = 8)]
    pub certification_concurrency: u16,
    /// Items a campaign run creates at once while it launches: more launches
    /// faster, fewer leaves more of the API server to grants and revokes.
    #[arg(long, env = "GATEHOUSE_CERTIFICATION_LAUNCH_PARALLELISM", default_value_t = 8)]
    pub certification_launch_parallelism: u16,
    /// Send notifications to NotificationChannels (the leader only).
    #[arg(long, env = "GATEHOUSE_NOTIFICATIONS", default_value_t = true, action = clap::ArgAction::Set)]
    pub notifications: bool,
    /// Events older than this are not sent (after an outage, or to a channel
    /// created later); delivery records are kept this long (Go duration).
    #[arg(long, env = "GATEHOUSE_NOTIFY_CATCH_UP", default_value = "1h")]
    pub notify_catch_up: String,
    /// Let channels send to private addresses (10/8, 172.16/12, 192.168/16,
    /// 100.64/10, fc00::/7): an in-cluster receiver. Link-local and metadata
    /// addresses stay refused, and http stays loopback-only.
    #[arg(long, env = "GATEHOUSE_NOTIFY_ALLOW_PRIVATE_DESTINATIONS", default_value_t = false, action = clap::ArgAction::Set)]
    pub notify_allow_private_destinations: bool,
    /// Serve the kube-apiserver's audit webhook backend (batch mode) on this
    /// address, with TLS, as usage evidence for certification (docs/usage.md).
    /// Needs --audit-tls-cert, --audit-tls-key and --audit-client-ca or
    /// --audit-token-file. Off unless set.
    #[arg(long, env = "GATEHOUSE_AUDIT_WEBHOOK_ADDR")]
    pub audit_webhook_addr: Option<SocketAddr>,
    /// The receiver's serving certificate (PEM).
    #[arg(long, env = "GATEHOUSE_AUDIT_TLS_CERT", requires = "audit_webhook_addr")]
    pub audit_tls_cert: Option<std::path::PathBuf>,
    /// The receiver's key (PEM).
    #[arg(long, env = "GATEHOUSE_AUDIT_TLS_KEY", requires = "audit_webhook_addr")]
    pub audit_tls_key: Option<std::path::PathBuf>,
    /// CA of the API server's client certificate (the webhook kubeconfig's
    /// client-certificate): a client certificate from it is the API server.
    #[arg(long, env = "GATEHOUSE_AUDIT_CLIENT_CA", requires = "audit_webhook_addr")]
    pub audit_client_ca: Option<std::path::PathBuf>,
    /// A file holding the bearer token of the webhook kubeconfig.
    #[arg(long, env = "GATEHOUSE_AUDIT_TOKEN_FILE", requires = "audit_webhook_addr")]
    pub audit_token_file: Option<std::path::PathBuf>,
    /// How often usage evidence is folded into what certification reads (Go duration).
    #[arg(long, env = "GATEHOUSE_USAGE_FLUSH_INTERVAL", default_value = "5m")]
    pub usage_flush_interval: String,
    /// Days of usage evidence kept.
    #[arg(long, env = "GATEHOUSE_USAGE_RETENTION_DAYS", default_value_t = 90)]
    pub usage_retention_days: u32,
    /// The most binding × subject pairs kept in memory (uses of further pairs
    /// are counted, not kept): the bound of the evidence's memory (docs/usage.md).
    #[arg(long, env = "GATEHOUSE_USAGE_MAX_PAIRS", default_value_t = 200_000)]
    pub usage_max_pairs: usize,
    /// Namespace of the persisted usage summaries (`BindingUsage`, one per
    /// binding). Default: --lease-namespace, the operator's own.
    #[arg(long, env = "GATEHOUSE_USAGE_NAMESPACE")]
    pub usage_namespace: Option<String>,
}
