//! What `kubectl gatehouse certify` prints: the table of items, one item in
//! full, and the outcome of decisions. Pure functions of the objects and the
//! clock.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{
    certify_report::ItemOutcome,
    render::{short_duration, table},
};
use crate::{
    api::{recommendation_words, AccessCertification, AccessReview, LevelState, Principals},
    decide::{eligibility::describe, timestamp::rfc3339_or_dash},
    escape::terminal,
};

/// The binding as `namespace/name` (a ClusterRoleBinding: its name).
pub fn binding(item: &AccessCertification) -> String {
    let b = &item.spec.binding;
    match &b.namespace {
        Some(ns) => format!("{ns}/{}", b.name),
        None => b.name.clone(),
    }
}

/// Time until the item is due ("3d4h"), or "due".
pub fn due(item: &AccessCertification, now: DateTime<Utc>) -> String {
    let due = item.spec.due_at;
    if due > now {
        short_duration(due - now)
    } else {
        "due".into()
    }
}

/// The level that can decide now, or "-".
pub fn open_level(item: &AccessCertification) -> String {
    item.status
        .as_ref()
        .and_then(|s| s.levels.iter().find(|l| l.state == LevelState::Open))
        .map_or("-".into(), |l| l.name.clone())
}

/// The table of `certify list`.
pub fn item_table(items: &[AccessCertification], now: DateTime<Utc>) -> String {
    let headers = [
        "ITEM",
        "SUBJECT",
        "ROLE",
        "BINDING",
        "RISK",
        "RECOMMENDATION",
        "LEVEL",
        "DECISION",
        "DUE IN",
        "REMEDIATION",
    ];
    let rows: Vec<Vec<String>> = items
        .iter()
        .map(|i| {
            let s = i.status.clone().unwrap_or_default();
            vec![
                i.name_any(),
                i.spec.subject.to_string(),
                i.spec.role_ref.to_string(),
                binding(i),
                s.risk_summary.clone().unwrap_or_else(|| "-".into()),
                s.recommendation_label(),
                open_level(i),
                s.decision.to_string(),
                due(i, now),
                s.remediation.as_ref().map_or("-".into(), |r| r.state.to_string()),
            ]
        })
        .collect();
    table(&headers, &rows)
}

/// One line of output: whatever names, comments and messages hold, it stays one
/// line and carries no control character ([`terminal::line`]).
fn put(out: &mut String, text: String) {
    out.push_str(&terminal::line(&text));
    out.push('\n');
}

fn people(p: &Option<Principals>) -> String {
    p.as_ref().map_or("-".into(), describe)
}

/// `certify status ITEM`.
pub fn status(item: &AccessCertification, reviews: &[AccessReview], now: DateTime<Utc>) -> String {
    let spec = &item.spec;
    let s = item.status.clone().unwrap_or_default();
    let mut out = String::new();
    put(
        &mut out,
        format!(
            "Item:            {}/{}",
            item.namespace().unwrap_or_default(),
            item.name_any()
        ),
    );
    put(
        &mut out,
        format!("Campaign:        {} (run {})", spec.campaign, spec.run),
    );
    put(
        &mut out,
        format!(
            "Access:          {} has {} through {}",
            spec.subject, spec.role_ref, spec.binding
        ),
    );
    put(
        &mut out,
        format!(
            "Due:             {} ({})",
            rfc3339_or_dash(Some(spec.due_at)),
            due(item, now)
        ),
    );
    put(
        &mut out,
        format!("Recommendation:  {}", recommendation_words(s.recommendation)),
    );
    for r in &s.reasons {
        put(&mut out, format!("  - {}", r.message));
    }
    put(
        &mut out,
        format!("Decision:        {} (access: {})", s.decision, s.outcome),
    );
    if let Some(by) = s.closed_by {
        put(
            &mut out,
            format!("Closed:          {} by {by}", rfc3339_or_dash(s.closed_at)),
        );
    }
    put(&mut out, format!("Reviewers now:   {}", people(&s.reviewers)));
    put(&mut out, "Levels:".into());
    for l in &s.levels {
        let mut line = format!("  {:<12} {}", l.name, l.state);
        if let (Some(d), Some(by)) = (&l.decision, &l.reviewed_by) {
            let _ = write!(line, ": {d} by {by} at {}", rfc3339_or_dash(l.reviewed_at));
        }
        if let Some(c) = &l.comment {
            let _ = write!(line, " \"{c}\"");
        }
        if let Some(to) = &l.reassigned_to {
            let _ = write!(line, " (reassigned to {})", describe(to));
        }
        put(&mut out, line);
    }
    if let Some(rem) = &s.remediation {
        put(
            &mut out,
            format!("Remediation:     {}: {}", rem.state, rem.message),
        );
        if let Some(cmd) = &rem.command {
            put(&mut out, format!("  run: {cmd}"));
        }
    }
    if let Some(policy) = &s.converted_to {
        put(
            &mut out,
            format!("Converted to:    AccessPolicy {policy} (request the role just in time)"),
        );
    }
    if !s.decisions.is_empty() {
        put(&mut out, "Reviews:".into());
        for d in &s.decisions {
            let comment = reviews
                .iter()
                .find(|r| r.name_any() == d.review)
                .and_then(|r| r.spec.comment.clone())
                .map(|c| format!(" \"{c}\""))
                .unwrap_or_default();
            put(
                &mut out,
                format!(
                    "  {} {} {} ({}: {}){comment}",
                    rfc3339_or_dash(Some(d.at)),
                    d.reviewer,
                    d.decision,
                    if d.accepted { "counted" } else { "ignored" },
                    d.message
                ),
            );
        }
    }
    out
}

/// The outcome of `approve`, `revoke` or `reassign`, one line per item.
pub fn outcomes(outcomes: &[ItemOutcome]) -> String {
    let mut out = String::new();
    for o in outcomes {
        let verdict = match &o.verdict {
            None => "no verdict from the operator yet (is it running?)".to_string(),
            Some(v) => format!(
                "{}: {}",
                if v.accepted == Some(true) {
                    "accepted"
                } else {
                    "NOT accepted"
                },
                v.message.clone().unwrap_or_default()
            ),
        };
        put(
            &mut out,
            format!("{} {} (accessreview/{}): {verdict}", o.decision, o.item, o.review),
        );
    }
    out
}
