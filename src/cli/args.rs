//! The plugin's command line.

use std::path::PathBuf;

use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

/// `kubectl gatehouse`: request, review and follow just-in-time access.
#[derive(Parser, Debug, Clone, PartialEq)]
#[command(
    name = "kubectl-gatehouse",
    bin_name = "kubectl gatehouse",
    version,
    about = "Request, review and follow just-in-time RBAC access (Gatehouse)"
)]
pub struct Cli {
    /// kubectl's connection flags.
    #[command(flatten)]
    pub kube: KubeArgs,
    /// Output format.
    #[arg(short = 'o', long, global = true, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    /// More detail on errors (-v: the API server's full answer; -vv: also every API call).
    #[arg(short = 'v', long = "verbose", global = true, action = ArgAction::Count)]
    pub verbosity: u8,
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// The flags every kubectl command takes, with kubectl's meanings: which kubeconfig,
/// context, cluster and user; whom to impersonate; and overrides of the server and its
/// credentials. A flag wins over the kubeconfig, as in kubectl.
#[derive(Args, Debug, Clone, Default, PartialEq)]
pub struct KubeArgs {
    /// Namespace of the requests (default: the context's namespace, else `default`).
    #[arg(short = 'n', long, global = true)]
    pub namespace: Option<String>,
    /// Path to the kubeconfig file (default: KUBECONFIG, a list of files merged, else ~/.kube/config).
    #[arg(long, global = true, value_name = "PATH")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current-context).
    #[arg(long, global = true)]
    pub context: Option<String>,
    /// The kubeconfig cluster to use, instead of the context's.
    #[arg(long, global = true)]
    pub cluster: Option<String>,
    /// The kubeconfig user to use, instead of the context's.
    #[arg(long, global = true)]
    pub user: Option<String>,
    /// Act as this user (impersonation); requests and reviews then carry this user's identity.
    #[arg(long = "as", global = true, value_name = "USER")]
    pub as_user: Option<String>,
    /// Act in this group too (repeatable); needs --as.
    #[arg(long = "as-group", global = true, value_name = "GROUP", requires = "as_user")]
    pub as_groups: Vec<String>,
    /// The UID of the user to act as; needs --as.
    #[arg(long = "as-uid", global = true, value_name = "UID", requires = "as_user")]
    pub as_uid: Option<String>,
    /// Give up on each API call after this long (1s, 2m; 0: never). Waits use --timeout.
    #[arg(
        long = "request-timeout",
        global = true,
        value_name = "DURATION",
        default_value = "0"
    )]
    pub request_timeout: String,
    /// The address of the API server, instead of the cluster's.
    #[arg(short = 's', long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// Bearer token for the API server, instead of the user's credentials.
    #[arg(long, global = true)]
    pub token: Option<String>,
    /// Path to a CA certificate file for the API server's certificate.
    #[arg(long = "certificate-authority", global = true, value_name = "PATH")]
    pub certificate_authority: Option<PathBuf>,
    /// Do not check the API server's certificate (insecure).
    #[arg(long = "insecure-skip-tls-verify", global = true)]
    pub insecure_skip_tls_verify: bool,
}

/// Output format.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Output {
    /// Human-readable table.
    #[default]
    Table,
    /// JSON: the objects, or a structured summary.
    Json,
    /// YAML: same content as JSON.
    Yaml,
    /// CSV: `certify report` only.
    Csv,
}

/// The subcommands.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum Command {
    /// Ask for temporary access to a role (creates an ApprovalRequest).
    Request(RequestArgs),
    /// Approve a request (creates an AccessReview).
    Approve(ReviewArgs),
    /// Reject a request.
    Reject(ReviewArgs),
    /// End an active grant early.
    Revoke(ReviewArgs),
    /// Comment on a request without deciding.
    Comment(ReviewArgs),
    /// Withdraw your own request.
    Cancel(CancelArgs),
    /// Requests you can review now.
    Pending(ListArgs),
    /// Your own requests.
    List(ListArgs),
    /// Phase, stages, approvals, time left and decision history of a request.
    Status {
        /// Name of the ApprovalRequest.
        name: String,
    },
    /// Access certification: review standing access in campaign runs.
    Certify(super::certify::CertifyArgs),
    /// Print a completion script for `kubectl-gatehouse` (for `kubectl gatehouse`,
    /// kubectl asks `kubectl_complete-gatehouse`; see docs/plugin.md).
    Completion {
        /// The shell.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// The review desk in your browser: a local page acting as you (`ui --no-open`
    /// prints its address instead of opening it).
    Ui(UiArgs),
    /// Notification channels (`notify test CHANNEL`).
    Notify {
        /// The subcommand.
        #[command(subcommand)]
        command: super::notify::NotifyCommand,
    },
}

/// Arguments of `ui`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct UiArgs {
    /// Print the address instead of opening a browser.
    #[arg(long = "no-open")]
    pub no_open: bool,
    /// Port on 127.0.0.1 (default: a random free one).
    #[arg(long, default_value_t = 0)]
    pub port: u16,
}

/// Shells with a completion script.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shell {
    /// bash 4+ (`source <(kubectl-gatehouse completion bash)`).
    Bash,
    /// zsh (`source <(kubectl-gatehouse completion zsh)`).
    Zsh,
    /// fish (`kubectl-gatehouse completion fish | source`).
    Fish,
}

/// Arguments of `request`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct RequestArgs {
    /// Name of the role.
    pub role: String,
    /// Kind of the role.
    #[arg(long, value_enum, default_value_t = KindArg::ClusterRole)]
    pub kind: KindArg,
    /// Grant cluster-wide (a ClusterRoleBinding; ClusterRole only).
    #[arg(long = "cluster-wide")]
    pub cluster_wide: bool,
    /// How long access should last (Go duration: 30m, 1h30m); the policy caps it.
    #[arg(long = "for", value_name = "DURATION")]
    pub duration: Option<String>,
    /// Why you need access.
    #[arg(long)]
    pub reason: Option<String>,
    /// AccessPolicy to request under (default: the one that matches).
    #[arg(long)]
    pub policy: Option<String>,
    /// Grant the access to someone else, if the policy lists them in `grantees`:
    /// `user:NAME`, `group:NAME` or `serviceaccount:[NAMESPACE/]NAME` (default: you).
    #[arg(long, value_name = "KIND:NAME")]
    pub subject: Option<String>,
    /// Name of the ApprovalRequest (default: USER-ROLE-xxxxx).
    #[arg(long)]
    pub name: Option<String>,
    /// Wait until access is granted or the request ends.
    #[arg(long)]
    pub wait: bool,
    /// With --wait: give up after this long (Go duration; default: wait forever).
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// A OneTime request: run this image once with the role, instead of access for
    /// you. The command follows `--`: `--run IMAGE -- COMMAND ARG...`.
    #[arg(long, value_name = "IMAGE")]
    pub run: Option<String>,
    /// With --run: an environment variable of the job, NAME=VALUE (repeatable).
    #[arg(long = "env", value_name = "NAME=VALUE", requires = "run")]
    pub env: Vec<String>,
    /// With --run: the job's command and arguments, after `--`.
    #[arg(last = true, value_name = "COMMAND")]
    pub command: Vec<String>,
}

/// Kind of role, as typed on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindArg {
    /// A ClusterRole.
    #[value(name = "ClusterRole", alias = "clusterrole")]
    ClusterRole,
    /// A Role in the request's namespace.
    #[value(name = "Role", alias = "role")]
    Role,
}

/// Arguments of `approve`, `reject`, `revoke` and `comment`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ReviewArgs {
    /// Name of the ApprovalRequest.
    pub name: String,
    /// Comment recorded with the review (required for reject/revoke by some policies).
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    /// How long to wait for the operator's verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `cancel`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CancelArgs {
    /// Name of the ApprovalRequest.
    pub name: String,
    /// How long to wait for the operator's verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `pending` and `list`.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct ListArgs {
    /// Look in every namespace.
    #[arg(short = 'A', long)]
    pub all_namespaces: bool,
}
