//! The command line of `kubectl gatehouse certify` (run by [`super::certify`]).

use clap::{Args, Subcommand, ValueEnum};

/// `certify` and its subcommands.
#[derive(Args, Debug, Clone, PartialEq)]
pub struct CertifyArgs {
    /// The subcommand.
    #[command(subcommand)]
    pub command: CertifyCommand,
}

/// What `certify` does.
#[derive(Subcommand, Debug, Clone, PartialEq)]
pub enum CertifyCommand {
    /// Items waiting for your decision (or, with --all, every item), with risk and recommendation.
    List(ListItemsArgs),
    /// Keep the access of one or more items (one AccessReview each).
    Approve(DecideArgs),
    /// Remove the access of one or more items (one AccessReview each).
    Revoke(RevokeArgs),
    /// Hand your level of an item to other reviewers, with a comment for them.
    Reassign(ReassignArgs),
    /// Everything about one item: access, risk, levels, decisions, remediation.
    Status {
        /// Name of the AccessCertification.
        item: String,
    },
    /// Start a run of a campaign now (recorded on the campaign).
    Start {
        /// Name of the AccessCampaign.
        campaign: String,
    },
    /// The evidence of a run: every item, who decided what and when, with comments
    /// and remediation, as CSV or JSON (`-o csv|json`), with its SHA-256 on stderr.
    Report(ReportArgs),
}

/// Filters of `certify list`.
#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct ListItemsArgs {
    /// Every item, not only those waiting for you.
    #[arg(long)]
    pub all: bool,
    /// Items of this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// Items of this run (CAMPAIGN-YYYYMMDD-HHMM).
    #[arg(long)]
    pub run: Option<String>,
    /// Items with this decision.
    #[arg(long, value_enum)]
    pub decision: Option<DecisionArg>,
    /// Items this reviewer may decide now: `user:NAME`, `group:NAME`, or a bare user name.
    #[arg(long, value_name = "KIND:NAME")]
    pub reviewer: Option<String>,
    /// Items whose subject's name contains this text.
    #[arg(long)]
    pub subject: Option<String>,
    /// Items of bindings in this namespace.
    #[arg(long = "binding-namespace", value_name = "NAMESPACE")]
    pub binding_namespace: Option<String>,
    /// Items whose role carries this risk tag (`secrets`, `exec`, `cluster-admin`, ...), or
    /// `any` for every risky item.
    #[arg(long, value_name = "TAG")]
    pub risk: Option<String>,
    /// Items with this recommendation.
    #[arg(long, value_enum)]
    pub recommendation: Option<RecommendationArg>,
}

/// A decision, as typed on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecisionArg {
    /// Not decided by the last level.
    Unreviewed,
    /// Kept.
    Approved,
    /// Removed.
    Revoked,
}

/// A recommendation, as typed on the command line.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RecommendationArg {
    /// Nothing risky or stale.
    Accept,
    /// Something risky.
    Review,
    /// Stale.
    Revoke,
}

/// Arguments of `certify approve`.
#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct DecideArgs {
    /// Names of the AccessCertification items.
    pub items: Vec<String>,
    /// Comment recorded with each review.
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    /// Approve every item waiting for you whose recommendation is Accept (each with its own review).
    #[arg(long)]
    pub all_recommended: bool,
    /// With --all-recommended: only items of this campaign.
    #[arg(long)]
    pub campaign: Option<String>,
    /// How long to wait for each verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `certify revoke`.
#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct RevokeArgs {
    /// Names of the AccessCertification items.
    #[arg(required = true)]
    pub items: Vec<String>,
    /// Comment recorded with each review (campaigns may require one).
    #[arg(long, short = 'm')]
    pub comment: Option<String>,
    /// The subject may ask for the same role just in time under this AccessPolicy instead.
    #[arg(long = "convert-to", value_name = "POLICY")]
    pub convert_to: Option<String>,
    /// How long to wait for each verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `certify reassign`.
#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct ReassignArgs {
    /// Name of the AccessCertification item.
    pub item: String,
    /// Who reviews instead: `user:NAME` or `group:NAME` (repeatable).
    #[arg(long = "to", value_name = "KIND:NAME", required = true)]
    pub to: Vec<String>,
    /// Why, for the new reviewer (required).
    #[arg(long, short = 'm')]
    pub comment: String,
    /// How long to wait for the verdict (Go duration).
    #[arg(long, default_value = "10s")]
    pub timeout: String,
}

/// Arguments of `certify report`.
#[derive(Args, Debug, Clone, PartialEq, Default)]
pub struct ReportArgs {
    /// Name of the AccessCampaign.
    pub campaign: String,
    /// The run (default: the campaign's latest).
    #[arg(long)]
    pub run: Option<String>,
}
