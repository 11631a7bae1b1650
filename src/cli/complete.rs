//! Shell completion. One engine answers in the protocol kubectl uses for plugins
//! (kubectl 1.26+ runs `kubectl_complete-gatehouse ARG... PARTIAL` and reads one
//! candidate per line, `VALUE<TAB>HELP`, then `:DIRECTIVE`); the scripts of
//! `completion bash|zsh|fish` speak the same protocol through the hidden
//! `kubectl-gatehouse __complete`.
//!
//! [`position`] reads the words typed so far against the clap definition (so new
//! flags complete without changes here); [`candidates`] fills in names from the
//! cluster: requests for approve/reject/revoke/comment/cancel/status, roles and
//! policies from the AccessPolicies, namespaces, and the kubeconfig's contexts,
//! clusters and users.

use std::io::Write;

use clap::{Arg, CommandFactory, Parser};
use kube::{
    api::{Api, ListParams},
    Client, ResourceExt,
};

use super::{Cli, KubeArgs, KubeconfigNames, Shell};
use crate::api::{AccessPolicy, ApprovalRequest, Phase};

/// The hidden subcommand the scripts and `kubectl_complete-gatehouse` call.
pub const COMPLETE_COMMAND: &str = "__complete";

/// Cobra's directive bits, which kubectl passes on to the shell.
pub mod directive {
    /// Let the shell complete file names when there is no candidate.
    pub const DEFAULT: u8 = 0;
    /// Do not add a space after the candidate.
    pub const NO_SPACE: u8 = 2;
    /// Do not fall back to file names.
    pub const NO_FILE: u8 = 4;
}

/// One completion candidate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The word.
    pub value: String,
    /// What it is, shown by zsh and fish.
    pub help: String,
}

impl Candidate {
    fn new(value: impl Into<String>, help: impl Into<String>) -> Self {
        Candidate {
            value: value.into(),
            help: help.into(),
        }
    }
}

/// What the word under the cursor is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// One of these words.
    Fixed(Vec<Candidate>),
    /// The name of an ApprovalRequest the subcommand acts on.
    Requests(RequestFilter),
    /// A role named by an AccessPolicy.
    Roles,
    /// An AccessPolicy name.
    Policies,
    /// A namespace.
    Namespaces,
    /// A kubeconfig context.
    Contexts,
    /// A kubeconfig cluster.
    Clusters,
    /// A kubeconfig user.
    Users,
    /// A file name: the shell completes it.
    Files,
    /// Free text: nothing to offer.
    Nothing,
}

/// Which requests a subcommand can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestFilter {
    /// approve, reject: waiting for a decision.
    Pending,
    /// revoke: access granted now.
    Active,
    /// cancel: not ended yet.
    Open,
    /// status, comment: any.
    Any,
}

impl RequestFilter {
    fn keeps(self, phase: Option<Phase>) -> bool {
        match self {
            RequestFilter::Pending => matches!(phase, None | Some(Phase::Pending)),
            RequestFilter::Active => phase == Some(Phase::Active),
            RequestFilter::Open => phase.is_none_or(|p| !p.is_terminal()),
            RequestFilter::Any => true,
        }
    }
}

/// Where the cursor is: what to complete, the text typed of it, and the
/// connection flags typed so far (so names come from the right cluster).
#[derive(Debug, Clone, PartialEq)]
pub struct Position {
    /// The kind of word.
    pub want: Want,
    /// What is typed of it.
    pub typed: String,
    /// Put before each candidate (`--context=` when completing `--context=VALUE`).
    pub head: String,
    /// `-n`, `--context`, `--kubeconfig`, ... as typed before the cursor.
    pub kube: KubeArgs,
}

/// Only the connection flags, to read them out of an incomplete command line.
#[derive(Parser, Debug)]
#[command(no_binary_name = true)]
struct KubeOnly {
    #[command(flatten)]
    kube: KubeArgs,
}

/// Reads `words` (everything after the program name, the last being the word under
/// the cursor, maybe empty) and says what to complete.
pub fn position(words: &[String]) -> Position {
    let mut root = Cli::command();
    root.build();
    let kube_ids: Vec<String> = KubeOnly::command()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .collect();
    let (typed, done) = match words.split_last() {
        Some((last, rest)) => (last.clone(), rest),
        None => (String::new(), &[][..]),
    };
    let mut cmd = &root;
    let mut positional = 0;
    let mut after_dashes = false;
    let mut pending: Option<&Arg> = None;
    let mut kube_words: Vec<String> = Vec::new();
    let mut record = |arg: &Arg, value: Option<&str>| {
        if kube_ids.iter().any(|id| id == arg.get_id().as_str()) {
            kube_words.push(format!("--{}", arg.get_long().unwrap_or_default()));
            kube_words.extend(value.map(str::to_string));
        }
    };
    for word in done {
        if let Some(arg) = pending.take() {
            record(arg, Some(word));
            continue;
        }
        if after_dashes {
            continue;
        }
        if word == "--" {
            after_dashes = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v)));
            if let Some(arg) = cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
                match (takes_value(arg), value) {
                    (true, None) => pending = Some(arg),
                    (_, v) => record(arg, v),
                }
            }
        } else if word.len() > 1 && word.starts_with('-') {
            let mut chars = word.chars().skip(1);
            let short = chars.next();
            let rest: String = chars.collect();
            if let Some(arg) = cmd.get_arguments().find(|a| a.get_short() == short) {
                match (takes_value(arg), rest.is_empty()) {
                    (true, true) => pending = Some(arg),
                    (true, false) => record(arg, Some(rest.trim_start_matches('='))),
                    (false, _) => record(arg, None),
                }
            }
        } else if let Some(sub) = cmd.find_subcommand(word) {
            cmd = sub;
            positional = 0;
        } else {
            positional += 1;
        }
    }
    let kube = KubeOnly::try_parse_from(&kube_words)
        .map(|k| k.kube)
        .unwrap_or_default();
    let at = |want: Want, typed: &str, head: &str| Position {
        want,
        typed: typed.to_string(),
        head: head.to_string(),
        kube: kube.clone(),
    };
    if let Some(arg) = pending {
        return at(want_value(cmd, arg), &typed, "");
    }
    if after_dashes {
        return at(Want::Files, &typed, "");
    }
    if let Some((name, value)) = typed.strip_prefix("--").and_then(|t| t.split_once('=')) {
        let head = format!("--{name}=");
        return match cmd.get_arguments().find(|a| a.get_long() == Some(name)) {
            Some(arg) => at(want_value(cmd, arg), value, &head),
            None => at(Want::Nothing, value, &head),
        };
    }
    if typed.starts_with('-') {
        return at(Want::Fixed(flags(cmd, &typed)), &typed, "");
    }
    let subcommands: Vec<Candidate> = cmd
        .get_subcommands()
        .filter(|s| !s.is_hide_set())
        .map(|s| Candidate::new(s.get_name(), about(s.get_about())))
        .collect();
    if !subcommands.is_empty() {
        return at(Want::Fixed(subcommands), &typed, "");
    }
    let want = cmd
        .get_positionals()
        .filter(|a| !a.is_last_set())
        .nth(positional)
        .map_or(Want::Nothing, |arg| want_value(cmd, arg));
    at(want, &typed, "")
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

fn about(s: Option<&clap::builder::StyledStr>) -> String {
    s.map(|s| s.to_string().lines().next().unwrap_or_default().to_string())
        .unwrap_or_default()
}

/// The flags of `cmd` (its own and the global ones) matching what is typed.
fn flags(cmd: &clap::Command, typed: &str) -> Vec<Candidate> {
    let mut out = Vec::new();
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let help = about(arg.get_help());
        if let Some(long) = arg.get_long() {
            out.push(Candidate::new(format!("--{long}"), help.clone()));
        }
        if let (Some(short), false) = (arg.get_short(), typed.starts_with("--")) {
            out.push(Candidate::new(format!("-{short}"), help));
        }
    }
    out
}

/// What the value of `arg` (a flag or a positional of `cmd`) is.
fn want_value(cmd: &clap::Command, arg: &Arg) -> Want {
    let fixed: Vec<Candidate> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate::new(v.get_name(), about(v.get_help())))
        .collect();
    if !fixed.is_empty() {
        return Want::Fixed(fixed);
    }
    match (cmd.get_name(), arg.get_id().as_str()) {
        (_, "namespace") => Want::Namespaces,
        (_, "context") => Want::Contexts,
        (_, "cluster") => Want::Clusters,
        (_, "user") => Want::Users,
        (_, "kubeconfig" | "certificate_authority") => Want::Files,
        (_, "policy") => Want::Policies,
        ("request", "role") => Want::Roles,
        ("approve" | "reject", "name") => Want::Requests(RequestFilter::Pending),
        ("revoke", "name") => Want::Requests(RequestFilter::Active),
        ("cancel", "name") => Want::Requests(RequestFilter::Open),
        ("status" | "comment", "name") => Want::Requests(RequestFilter::Any),
        _ => Want::Nothing,
    }
}

/// The candidates at `pos`, asking the cluster (`client`, in `namespace`) for
/// names where needed; a failed lookup offers nothing rather than an error.
pub async fn candidates(
    pos: &Position,
    client: Option<&Client>,
    namespace: &str,
    kubeconfig: &KubeconfigNames,
) -> (Vec<Candidate>, u8) {
    let names = |list: &[String], help: &str| -> Vec<Candidate> {
        list.iter().map(|n| Candidate::new(n.clone(), help)).collect()
    };
    let found = match (&pos.want, client) {
        (Want::Files, _) => return (Vec::new(), directive::DEFAULT),
        (Want::Fixed(c), _) => c.clone(),
        (Want::Contexts, _) => names(&kubeconfig.contexts, "context"),
        (Want::Clusters, _) => names(&kubeconfig.clusters, "cluster"),
        (Want::Users, _) => names(&kubeconfig.users, "user"),
        (Want::Requests(filter), Some(c)) => requests(c, namespace, *filter).await,
        (Want::Roles, Some(c)) => roles(c).await,
        (Want::Policies, Some(c)) => policies(c).await,
        (Want::Namespaces, Some(c)) => Api::<k8s_openapi::api::core::v1::Namespace>::all(c.clone())
            .list(&ListParams::default())
            .await
            .map(|l| {
                l.items
                    .iter()
                    .map(|n| Candidate::new(n.name_any(), "namespace"))
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let mut out: Vec<Candidate> = found
        .into_iter()
        .filter(|c| c.value.starts_with(&pos.typed))
        .map(|c| Candidate {
            value: format!("{}{}", pos.head, c.value),
            help: c.help,
        })
        .collect();
    out.dedup_by(|a, b| a.value == b.value);
    (out, directive::NO_FILE)
}

async fn requests(client: &Client, namespace: &str, filter: RequestFilter) -> Vec<Candidate> {
    let api: Api<ApprovalRequest> = Api::namespaced(client.clone(), namespace);
    let Ok(mut list) = api.list(&ListParams::default()).await else {
        return Vec::new();
    };
    list.items.sort_by_key(|r| r.name_any());
    list.items
        .iter()
        .filter(|r| filter.keeps(r.status.as_ref().map(|s| s.phase)))
        .map(|r| {
            let phase = r
                .status
                .as_ref()
                .map_or("new".to_string(), |s| s.phase.to_string());
            Candidate::new(
                r.name_any(),
                format!("{} {} {phase}", r.spec.requester.username, r.spec.role),
            )
        })
        .collect()
}

async fn all_policies(client: &Client) -> Vec<AccessPolicy> {
    Api::<AccessPolicy>::all(client.clone())
        .list(&ListParams::default())
        .await
        .map(|l| l.items)
        .unwrap_or_default()
}

async fn roles(client: &Client) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = all_policies(client)
        .await
        .iter()
        .flat_map(|p| {
            p.spec
                .roles
                .iter()
                .map(move |r| Candidate::new(r.name.clone(), format!("{r} (policy {})", p.name_any())))
        })
        .collect();
    out.sort_by(|a, b| a.value.cmp(&b.value));
    out
}

async fn policies(client: &Client) -> Vec<Candidate> {
    all_policies(client)
        .await
        .iter()
        .map(|p| Candidate::new(p.name_any(), "AccessPolicy"))
        .collect()
}

/// Writes candidates the way kubectl and the scripts read them. A name from the
/// cluster with a control character is left out: the shell would put it on the
/// command line and the terminal would act on it, and nobody types it anyway.
pub fn write_candidates(out: &mut dyn Write, candidates: &[Candidate], directive: u8) -> std::io::Result<()> {
    for c in candidates
        .iter()
        .filter(|c| !c.value.chars().any(crate::escape::is_control))
    {
        if c.help.is_empty() {
            writeln!(out, "{}", c.value)?;
        } else {
            writeln!(out, "{}\t{}", c.value, crate::escape::terminal::line(&c.help))?;
        }
    }
    writeln!(out, ":{directive}")
}

/// The completion script for `shell`.
pub fn script(shell: Shell) -> &'static str {
    match shell {
        Shell::Bash => include_str!("completion/kubectl-gatehouse.bash"),
        Shell::Zsh => include_str!("completion/kubectl-gatehouse.zsh"),
        Shell::Fish => include_str!("completion/kubectl-gatehouse.fish"),
    }
}
