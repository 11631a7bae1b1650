//! The evidence of a campaign run, as an auditor asks for it: every item, who
//! decided what and when with their comments, and what remediation did; as CSV
//! (one row per item) or JSON, with a SHA-256 of the exact bytes. Pure functions
//! of the objects, so the report is tested without a cluster.

use chrono::{DateTime, SecondsFormat, Utc};
use kube::ResourceExt;
use serde::Serialize;

use super::{exit, CliError};
use crate::api::{
    AccessCampaign, AccessCertification, AccessReview, AccessReviewStatus, CampaignRun, Decision, Principals,
};
use crate::escape::csv::field;

/// Outcome of one decision command on one item.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemOutcome {
    /// The item.
    pub item: String,
    /// Its namespace.
    pub namespace: String,
    /// The AccessReview created.
    pub review: String,
    /// The decision.
    pub decision: Decision,
    /// The operator's verdict; `None` if it did not arrive in time.
    pub verdict: Option<AccessReviewStatus>,
}

impl ItemOutcome {
    /// The exit code the outcome maps to.
    pub fn exit_code(&self) -> i32 {
        match &self.verdict {
            None => exit::TIMEOUT,
            Some(v) if v.accepted == Some(true) => exit::OK,
            Some(_) => exit::NOT_ACCEPTED,
        }
    }
}

/// The report of one run.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The campaign.
    pub campaign: String,
    /// The run.
    pub run: String,
    /// When the report was made.
    pub generated_at: DateTime<Utc>,
    /// The run's entry in the campaign's status (start, due, counts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summary: Option<CampaignRun>,
    /// One row per item, by name.
    pub items: Vec<ItemRow>,
}

/// One item of the report.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ItemRow {
    /// Name of the AccessCertification.
    pub item: String,
    /// `RoleBinding` or `ClusterRoleBinding`.
    pub binding_kind: String,
    /// Namespace of a RoleBinding.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub binding_namespace: Option<String>,
    /// Name of the binding.
    pub binding: String,
    /// uid of the binding reviewed.
    pub binding_uid: String,
    /// `User`, `Group` or `ServiceAccount`.
    pub subject_kind: String,
    /// The subject (`namespace/name` for a ServiceAccount).
    pub subject: String,
    /// The role, `Kind/name`.
    pub role: String,
    /// Risk tags.
    pub risk: Vec<String>,
    /// `Accept`, `Review` or `Revoke`.
    pub recommendation: String,
    /// Why, in words.
    pub reasons: Vec<String>,
    /// `Unreviewed`, `Approved` or `Revoked`.
    pub decision: String,
    /// What happened to the access: `Open`, `Keep` or `Remove`.
    pub outcome: String,
    /// Why the item closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_by: Option<String>,
    /// When the item closed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
    /// Every review, in the order the operator replayed them.
    pub reviews: Vec<ReviewRow>,
    /// The remediation's state (`Pending`, `Done`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation: Option<String>,
    /// What the remediation did or needs, in words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remediation_message: Option<String>,
    /// The JIT policy that replaces the access, when the revoke converted it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub converted_to: Option<String>,
}

/// One review of an item.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ReviewRow {
    /// Name of the AccessReview.
    pub review: String,
    /// Who.
    pub reviewer: String,
    /// What.
    pub decision: String,
    /// When (the review's creation).
    pub at: DateTime<Utc>,
    /// The level it counted at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub level: Option<String>,
    /// Whether it counted.
    pub accepted: bool,
    /// How it counted or why not.
    pub reason: String,
    /// The reviewer's comment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// Reassign: to whom.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reassigned_to: Option<String>,
}

fn principals(p: &Principals) -> String {
    p.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(" ")
}

fn row(item: &AccessCertification, reviews: &[AccessReview]) -> ItemRow {
    let spec = &item.spec;
    let status = item.status.clone().unwrap_or_default();
    let subject = match &spec.subject.namespace {
        Some(ns) => format!("{ns}/{}", spec.subject.name),
        None => spec.subject.name.clone(),
    };
    let review_rows = status
        .decisions
        .iter()
        .map(|d| {
            let review = reviews.iter().find(|r| r.name_any() == d.review);
            ReviewRow {
                review: d.review.clone(),
                reviewer: d.reviewer.clone(),
                decision: d.decision.to_string(),
                at: d.at,
                level: d.level.clone(),
                accepted: d.accepted,
                reason: d.reason.to_string(),
                comment: review.and_then(|r| r.spec.comment.clone()),
                reassigned_to: review.and_then(|r| r.spec.reassign_to.as_deref()).map(principals),
            }
        })
        .collect();
    ItemRow {
        item: item.name_any(),
        binding_kind: spec.binding.kind.to_string(),
        binding_namespace: spec.binding.namespace.clone(),
        binding: spec.binding.name.clone(),
        binding_uid: spec.binding.uid.clone(),
        subject_kind: spec.subject.kind.as_str().to_string(),
        subject,
        role: format!("{}/{}", spec.role_ref.kind, spec.role_ref.name),
        risk: status.risk.iter().map(|t| t.label().to_string()).collect(),
        recommendation: status.recommendation_label(),
        reasons: status.reasons.iter().map(|r| r.message.clone()).collect(),
        decision: status.decision.to_string(),
        outcome: status.outcome.to_string(),
        closed_by: status.closed_by.map(|c| c.to_string()),
        closed_at: status.closed_at,
        reviews: review_rows,
        remediation: status.remediation.as_ref().map(|r| r.state.to_string()),
        remediation_message: status.remediation.as_ref().map(|r| r.message.clone()),
        converted_to: status.converted_to.clone(),
    }
}

/// The report of `run` from its items and the reviews in their namespaces.
pub fn build(
    campaign: &AccessCampaign,
    run: &str,
    summary: Option<CampaignRun>,
    items: &[AccessCertification],
    reviews: &[AccessReview],
    now: DateTime<Utc>,
) -> Report {
    let mut rows: Vec<ItemRow> = items
        .iter()
        .filter(|i| i.spec.run == run)
        .map(|i| {
            let own: Vec<AccessReview> = reviews
                .iter()
                .filter(|r| {
                    r.namespace() == i.namespace()
                        && r.spec
                            .certification
                            .as_ref()
                            .is_some_and(|c| c.name == i.name_any())
                })
                .cloned()
                .collect();
            row(i, &own)
        })
        .collect();
    rows.sort_by(|a, b| a.item.cmp(&b.item));
    Report {
        campaign: campaign.name_any(),
        run: run.to_string(),
        generated_at: now,
        summary,
        items: rows,
    }
}

/// The report as pretty JSON, ending in a newline.
pub fn json(report: &Report) -> Result<String, CliError> {
    let mut text = serde_json::to_string_pretty(report).map_err(|e| CliError::Output(e.to_string()))?;
    text.push('\n');
    Ok(text)
}

const COLUMNS: [&str; 20] = [
    "campaign",
    "run",
    "item",
    "binding_kind",
    "binding_namespace",
    "binding",
    "binding_uid",
    "subject_kind",
    "subject",
    "role",
    "risk",
    "recommendation",
    "decision",
    "outcome",
    "closed_by",
    "closed_at",
    "reviews",
    "remediation",
    "remediation_message",
    "converted_to",
];

fn time(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// One review as a line of the `reviews` column: when, who, what, at which
/// level, whether it counted, and the comment.
fn review_text(r: &ReviewRow) -> String {
    let mut s = format!("{} {} {}", time(&r.at), r.reviewer, r.decision);
    if let Some(to) = &r.reassigned_to {
        s.push_str(&format!(" to {to}"));
    }
    if let Some(level) = &r.level {
        s.push_str(&format!(" at level {level}"));
    }
    s.push_str(if r.accepted { " (counted" } else { " (ignored" });
    s.push_str(&format!(": {})", r.reason));
    if let Some(c) = &r.comment {
        s.push_str(&format!(": {c}"));
    }
    s
}

/// The report as CSV: a header, then one row per item; reviews one per line
/// within their cell. A cell a spreadsheet would read as a formula (a binding
/// named `=HYPERLINK(...)`) starts with `'` ([`crate::escape::csv`]); the
/// digest is of these bytes, as written.
pub fn csv(report: &Report) -> String {
    let mut out = COLUMNS.join(",");
    out.push_str("\r\n");
    for r in &report.items {
        let cells = [
            report.campaign.clone(),
            report.run.clone(),
            r.item.clone(),
            r.binding_kind.clone(),
            r.binding_namespace.clone().unwrap_or_default(),
            r.binding.clone(),
            r.binding_uid.clone(),
            r.subject_kind.clone(),
            r.subject.clone(),
            r.role.clone(),
            r.risk.join(" "),
            r.recommendation.clone(),
            r.decision.clone(),
            r.outcome.clone(),
            r.closed_by.clone().unwrap_or_default(),
            r.closed_at.as_ref().map(time).unwrap_or_default(),
            r.reviews.iter().map(review_text).collect::<Vec<_>>().join("\n"),
            r.remediation.clone().unwrap_or_default(),
            r.remediation_message.clone().unwrap_or_default(),
            r.converted_to.clone().unwrap_or_default(),
        ];
        let line: Vec<String> = cells.iter().map(|c| field(c)).collect();
        out.push_str(&line.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Lowercase hex SHA-256 of the bytes, as `sha256sum` prints it.
pub fn sha256(bytes: &[u8]) -> String {
    crate::digest::sha256_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_with_commas_quotes_or_line_breaks_are_quoted_and_formulas_neutralised() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a, b"), "\"a, b\"");
        assert_eq!(field("say \"no\""), "\"say \"\"no\"\"\"");
        assert_eq!(field("one\ntwo"), "\"one\ntwo\"");
        assert_eq!(field("=cmd|' /C calc'!A0"), "'=cmd|' /C calc'!A0");
        assert_eq!(field("@SUM(1,2)"), "\"'@SUM(1,2)\"");
    }

    #[test]
    fn the_digest_is_sha256_sum_of_the_bytes() {
        // sha256sum of the empty input and of "abc".
        assert_eq!(
            sha256(b""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(
            sha256(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
