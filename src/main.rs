use std::{io::Write, path::PathBuf};

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand, ValueEnum};

/// Gatehouse: just-in-time Kubernetes RBAC access.
#[derive(Parser)]
#[command(name = "gatehouse", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

// Parsed once at start: the size of the largest variant (the operator's flags)
// costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Run the operator against the cluster of the kubeconfig (or in-cluster config).
    Run {
        #[command(flatten)]
        settings: gatehouse::controller::run::RunArgs,
        /// Log format.
        #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
        log_format: LogFormat,
    },
    /// Evaluate AccessPolicies, ApprovalRequests, AccessReviews and AccessCampaigns from YAML files,
    /// without a cluster.
    ///
    /// Each object's metadata.creationTimestamp is when it happened; objects created after --now do
    /// not exist yet. Prints, per request, the phase, approvals, grant, expiry and ignored reviews;
    /// per campaign run, each item (binding x subject) with its risk, recommendation, decision by
    /// level and remediation. RBAC objects, Namespaces and ServiceAccounts (also inside a
    /// `kind: List`, as `kubectl get -o yaml` prints them) are the cluster the campaigns review.
    Simulate {
        /// YAML files (multi-document) or directories of them.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Evaluation time, RFC 3339 (default: the current time).
        #[arg(long, value_parser = parse_time)]
        now: Option<DateTime<Utc>>,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
        /// Without an AccessCampaign in the input, review every binding in it anyway (an
        /// implicit campaign starting at --now): risk tags and recommendations of a cluster
        /// export, e.g. `kubectl get clusterroles,roles,clusterrolebindings,rolebindings,namespaces,serviceaccounts -A -o yaml`.
        #[arg(long)]
        certify: bool,
        /// Audit events (JSON lines or EventList, gzip too; `-` for standard input) as usage
        /// evidence for certification: items show when they were last used, and a campaign's
        /// `recommendation.unusedFor` applies. Events after --now are left out. Repeat for more
        /// files.
        #[arg(long = "audit", value_name = "FILE")]
        audit: Vec<PathBuf>,
    },
    /// Usage evidence from the API server's audit events.
    Usage {
        #[command(subcommand)]
        command: UsageCommand,
    },
    /// Print the CustomResourceDefinitions as YAML (or write one file each into --out-dir).
    Crds {
        /// Write `<crd-name>.yaml` files into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print least-privilege RBAC: the operator's ServiceAccount, ClusterRole (bind only on the
    /// grantable roles), bindings and leader-election Role, and the user ClusterRoles
    /// gatehouse-requester, gatehouse-reviewer and gatehouse-create-on-behalf.
    Rbac {
        /// A role the operator may grant: NAME or ClusterRole/NAME for a ClusterRole, Role/NAME for
        /// the Role of that name in any namespace. Repeat for each role.
        #[arg(long = "grantable-role", value_name = "ROLE", default_values = ["view", "edit"],
              value_parser = |s: &str| s.parse::<gatehouse::rbac::GrantableRole>().map_err(|e| e.to_string()))]
        grantable_roles: Vec<gatehouse::rbac::GrantableRole>,
        /// Let the operator manage ClusterRoleBindings (for policies with allowClusterScope).
        #[arg(long)]
        cluster_scope: bool,
        /// Let the operator remove access revoked by certification campaigns (patch and
        /// delete ClusterRoleBindings too); pair with `gatehouse run --certification-remediation`.
        #[arg(long)]
        certification_remediation: bool,
        /// A Secret (in the operator's namespace) a NotificationChannel uses: the operator may
        /// read only these Secrets. Repeat for each channel Secret.
        #[arg(long = "channel-secret", value_name = "NAME")]
        channel_secrets: Vec<String>,
        /// Namespace the operator runs in.
        #[arg(long, default_value = "gatehouse-system")]
        namespace: String,
        /// Namespace of the usage summaries (BindingUsage), when not the operator's
        /// (`gatehouse run --usage-namespace`).
        #[arg(long)]
        usage_namespace: Option<String>,
        /// Bind gatehouse-create-on-behalf to this subject with a ClusterRoleBinding (the
        /// admission policies ask for the verb cluster-wide): User/NAME, Group/NAME or
        /// ServiceAccount/NAMESPACE/NAME, e.g. a GitOps controller. Repeat for each subject.
        #[arg(long = "on-behalf", value_name = "SUBJECT",
              value_parser = |s: &str| gatehouse::rbac::parse_subject(s).map_err(|e| e.to_string()))]
        on_behalf: Vec<k8s_openapi::api::rbac::v1::Subject>,
        /// Bind gatehouse-notification-tester (`kubectl gatehouse notify test`, nothing else) to
        /// this subject with a ClusterRoleBinding: User/NAME, Group/NAME or
        /// ServiceAccount/NAMESPACE/NAME. Repeat for each subject.
        #[arg(long = "notification-tester", value_name = "SUBJECT",
              value_parser = |s: &str| gatehouse::rbac::parse_subject(s).map_err(|e| e.to_string()))]
        notification_testers: Vec<k8s_openapi::api::rbac::v1::Subject>,
        /// ServiceAccount the operator runs as.
        #[arg(long, default_value = "gatehouse")]
        service_account: String,
        /// Write operator.yaml, users.yaml and a Kustomization into this directory instead of printing.
        #[arg(long)]
        out_dir: Option<PathBuf>,
    },
    /// Print the admission policies: ValidatingAdmissionPolicies (and bindings) that check the
    /// requester/reviewer against the authenticated creator and guard status writes.
    Admission {
        /// Also print the optional MutatingAdmissionPolicies that fill an empty requester/reviewer:
        /// v1 (Kubernetes >= 1.36) or v1beta1 (1.34-1.35 with the beta API turned on).
        #[arg(long, value_enum, value_name = "API")]
        mutating: Option<gatehouse::admission::MutatingApi>,
    },
    /// Write every generated install file under ROOT (the repository): crds/, the kustomize bases
    /// config/crd, config/rbac, config/manager and config/default, and the chart templates that
    /// come from the code (charts/gatehouse/templates/crds.yaml, admission.yaml, user-roles.yaml).
    Manifests {
        /// The repository root.
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
}

#[derive(Subcommand)]
enum UsageCommand {
    /// Read audit events (JSON lines as the log backend writes them, or an EventList; gzip
    /// too) and print, per binding and subject, when it was last used, how often and for what.
    /// Allowed requests RBAC did not authorise are counted by cause; unreadable events are
    /// counted and skipped.
    Ingest {
        /// Files of audit events; `-` (the default) reads standard input.
        #[arg(default_value = "-")]
        paths: Vec<PathBuf>,
        /// Days of daily counts kept; a pair unused for longer is dropped.
        #[arg(long, default_value_t = 90)]
        retention_days: u32,
        /// Output format.
        #[arg(long, short, value_enum, default_value_t = Output::Table)]
        output: Output,
    },
}

// jemalloc instead of the system allocator (feature `jemalloc`, on in the image):
// glibc's malloc keeps per-thread arenas whose freed memory is rarely returned,
// and the operator holds tens of thousands of small cached objects that watches
// replace all day (docs/performance.md).
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings (docs/performance.md, "memory"): two arenas, not four
/// per CPU (the operator's threads mostly wait; each arena keeps its own
/// partly used pages); freed pages returned within a second by a background
/// thread, not kept for ten seconds and only when something else allocates (an
/// idle operator kept what its last re-list freed). `_RJEM_MALLOC_CONF`
/// overrides them at start.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
static malloc_conf: Option<&'static std::ffi::c_char> = Some(unsafe { &*JEMALLOC_CONF.as_ptr() });

#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
const JEMALLOC_CONF: &std::ffi::CStr =
    c"background_thread:true,narenas:2,dirty_decay_ms:1000,muzzy_decay_ms:0";

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { settings, log_format } => run(settings, log_format),
        Command::Crds { out_dir } => crds(out_dir),
        Command::Rbac {
            grantable_roles,
            cluster_scope,
            certification_remediation,
            channel_secrets,
            namespace,
            usage_namespace,
            on_behalf,
            notification_testers,
            service_account,
            out_dir,
        } => rbac(
            &gatehouse::rbac::RbacOptions {
                grantable_roles,
                cluster_scope,
                namespace,
                service_account,
                certification_remediation,
                channel_secrets,
                usage_namespace,
            },
            &on_behalf,
            &notification_testers,
            out_dir,
        ),
        Command::Admission { mutating } => std::io::stdout()
            .write_all(gatehouse::admission::render(mutating).as_bytes())
            .context("writing to stdout"),
        Command::Manifests { root } => manifests(&root),
        Command::Simulate {
            paths,
            now,
            output,
            certify,
            audit,
        } => simulate(&paths, now.unwrap_or_else(Utc::now), output, certify, &audit),
        Command::Usage {
            command:
                UsageCommand::Ingest {
                    paths,
                    retention_days,
                    output,
                },
        } => usage_ingest(&paths, retention_days, output),
    }
}

fn crds(out_dir: Option<PathBuf>) -> anyhow::Result<()> {
    match out_dir {
        None => {
            let all = gatehouse::crdgen::render_all()?;
            std::io::stdout()
                .write_all(all.as_bytes())
                .context("writing to stdout")?;
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for crd in gatehouse::crdgen::render_crds()? {
                let path = dir.join(&crd.file_name);
                std::fs::write(&path, crd.yaml).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn rbac(
    opts: &gatehouse::rbac::RbacOptions,
    on_behalf: &[k8s_openapi::api::rbac::v1::Subject],
    testers: &[k8s_openapi::api::rbac::v1::Subject],
    out_dir: Option<PathBuf>,
) -> anyhow::Result<()> {
    let on_behalf = gatehouse::rbac::render_on_behalf(on_behalf)?;
    let testers = gatehouse::rbac::render_notification_testers(testers)?;
    match out_dir {
        None => {
            let mut all = gatehouse::rbac::render_all(opts)?;
            for extra in [&on_behalf, &testers].into_iter().filter(|e| !e.is_empty()) {
                all.push_str("---\n");
                all.push_str(extra);
            }
            std::io::stdout()
                .write_all(all.as_bytes())
                .context("writing to stdout")?
        }
        Some(dir) => {
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            for file in gatehouse::rbac::render_files(opts)? {
                let path = dir.join(&file.file_name);
                std::fs::write(&path, file.yaml).with_context(|| format!("writing {}", path.display()))?;
            }
            if !on_behalf.is_empty() {
                // Apart from the Kustomization's list: applied with `kubectl apply -f DIR`.
                let path = dir.join("on-behalf.yaml");
                std::fs::write(&path, on_behalf).with_context(|| format!("writing {}", path.display()))?;
            }
            if !testers.is_empty() {
                let path = dir.join("notification-testers.yaml");
                std::fs::write(&path, testers).with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(())
}

fn manifests(root: &std::path::Path) -> anyhow::Result<()> {
    for file in gatehouse::install::generated_files()? {
        let path = root.join(&file.path);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        std::fs::write(&path, file.contents).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum Output {
    /// A table with one line per request and notes below it.
    Table,
    /// `{"requests":[{"namespace","name","status"}]}`; `status` is what the operator writes.
    Json,
}

fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{s:?} is not an RFC 3339 time such as 2026-11-23T12:00:00Z: {e}"))
}

fn usage_ingest(paths: &[PathBuf], retention_days: u32, output: Output) -> anyhow::Result<()> {
    let settings = gatehouse::usage::Settings {
        retention_days,
        ..Default::default()
    };
    let book = gatehouse::ingest::ingest_paths(paths, settings, None)?;
    let report = gatehouse::ingest::report(&book);
    let text = match output {
        // Audit events carry names anyone could choose: nothing reaches the terminal raw.
        Output::Table => gatehouse::escape::terminal::text(&gatehouse::ingest::render(&report)).into_owned(),
        Output::Json => serde_json::to_string_pretty(&report).context("rendering JSON")? + "\n",
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}

fn simulate(
    paths: &[PathBuf],
    now: DateTime<Utc>,
    output: Output,
    certify: bool,
    audit: &[PathBuf],
) -> anyhow::Result<()> {
    let mut manifests = gatehouse::simulate::load(paths)?;
    if !audit.is_empty() {
        let book = gatehouse::ingest::ingest_paths(audit, gatehouse::usage::Settings::default(), Some(now))?;
        manifests.usage = Some(std::sync::Arc::new(
            gatehouse::certify::usage::UsageIndex::from_book(&book),
        ));
    }
    let report = gatehouse::simulate::run(&manifests, now, certify);
    let text = match output {
        // Exports of a cluster hold names tenants chose: no control character
        // reaches the terminal.
        Output::Table => {
            gatehouse::escape::terminal::text(&gatehouse::simulate::render_table(&report)).into_owned()
        }
        Output::Json => serde_json::to_string_pretty(&report).context("rendering JSON")? + "\n",
    };
    std::io::stdout()
        .write_all(text.as_bytes())
        .context("writing to stdout")?;
    Ok(())
}

#[derive(Clone, Copy, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

fn run(args: gatehouse::controller::run::RunArgs, log_format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,kube_runtime=warn,kube_client=warn"));
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().init(),
    }
    // Pick the TLS crypto provider explicitly: with more than one compiled in
    // (test builds pull a second one), rustls refuses to choose.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let runtime = tokio::runtime::Runtime::new().context("starting the async runtime")?;
    runtime.block_on(gatehouse::controller::run::run(args))?;
    Ok(())
}
