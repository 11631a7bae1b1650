//! Rendering of the plugin's output. Pure functions of the objects and the clock,
//! so every table is unit-tested without a cluster.

use chrono::{DateTime, Duration, Utc};
use kube::{Resource, ResourceExt};
use serde::Serialize;

use super::ReviewOutcome;
use crate::api::{
    ApprovalRequest, DecisionRecord, GrantStatus, Identity, Phase, ReviewGroupStatus, StageStatus,
};
use crate::escape::terminal;

/// Lays out rows under headers, columns separated by three spaces, like kubectl.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut t = crate::table::Table::new(headers);
    for row in rows {
        t.row(row.clone());
    }
    t.render()
}

/// A short, kubectl-style age or remaining time ("45s", "12m", "3h20m", "2d4h").
pub fn short_duration(d: Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        _ => match (s % 86400) / 3600 {
            0 => format!("{}d", s / 86400),
            h => format!("{}d{h}h", s / 86400),
        },
    }
}

/// Time left until the request's access ends: "1h59m", "expired", or `None` when it
/// has no expiry (not granted yet) or ended otherwise (revoked, superseded, ...).
pub fn time_left(req: &ApprovalRequest, now: DateTime<Utc>) -> Option<String> {
    let status = req.status.as_ref()?;
    let expires = status.expires_at?;
    if status.phase.is_terminal() && status.phase != crate::api::Phase::Expired {
        return None;
    }
    Some(if expires > now {
        short_duration(expires - now)
    } else {
        "expired".to_string()
    })
}

fn phase(req: &ApprovalRequest) -> String {
    req.status
        .as_ref()
        .map_or("<new>".to_string(), |s| s.phase.to_string())
}

fn approvals(req: &ApprovalRequest) -> String {
    req.status
        .as_ref()
        .and_then(|s| s.approvals.as_ref())
        .map_or("-".to_string(), |a| a.summary.clone())
}

fn scope(req: &ApprovalRequest) -> &'static str {
    match req.spec.scope {
        crate::api::Scope::Namespace => "Namespace",
        crate::api::Scope::Cluster => "Cluster",
    }
}

fn age(req: &ApprovalRequest, now: DateTime<Utc>) -> String {
    req.meta()
        .creation_timestamp
        .as_ref()
        .and_then(crate::decide::to_chrono)
        .map_or("-".to_string(), |t| short_duration(now - t))
}

fn when(t: Option<DateTime<Utc>>) -> String {
    crate::decide::timestamp::rfc3339_or_dash(t)
}

fn who(id: &Identity) -> String {
    if id.groups.is_empty() {
        id.username.clone()
    } else {
        format!("{} (groups: {})", id.username, id.groups.join(", "))
    }
}

/// The table of `list` and `pending`.
pub fn request_table(reqs: &[ApprovalRequest], with_namespace: bool, now: DateTime<Utc>) -> String {
    let mut headers = vec![];
    if with_namespace {
        headers.push("NAMESPACE");
    }
    headers.extend([
        "NAME",
        "REQUESTER",
        "ROLE",
        "SCOPE",
        "PHASE",
        "APPROVALS",
        "TIME LEFT",
        "AGE",
        "REASON",
    ]);
    let rows: Vec<Vec<String>> = reqs
        .iter()
        .map(|r| {
            let mut row = vec![];
            if with_namespace {
                row.push(r.namespace().unwrap_or_default());
            }
            row.extend([
                r.name_any(),
                r.spec.requester.username.clone(),
                r.spec.role.to_string(),
                scope(r).to_string(),
                phase(r),
                approvals(r),
                time_left(r, now).unwrap_or_else(|| "-".into()),
                age(r, now),
                r.spec.reason.clone().unwrap_or_default(),
            ]);
            row
        })
        .collect();
    table(&headers, &rows)
}

/// The structured summary `status -o json|yaml` prints.
#[derive(Serialize, Debug, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct StatusSummary {
    /// Name of the request.
    pub name: String,
    /// Namespace of the request.
    pub namespace: String,
    /// Who asked.
    pub requester: Identity,
    /// Who receives the access: `User alice`, `Group oncall`, `ServiceAccount ci/deployer`.
    pub subject: String,
    /// Role requested, as `Kind/name`.
    pub role: String,
    /// `Namespace` or `Cluster`.
    pub scope: String,
    /// Current phase; `None` before the operator has seen the request.
    pub phase: Option<Phase>,
    /// Policy the request is evaluated under.
    pub policy: Option<String>,
    /// "received/required".
    pub approvals: Option<String>,
    /// When access ends.
    pub expires_at: Option<DateTime<Utc>>,
    /// Time left until then ("1h59m", "expired").
    pub time_left: Option<String>,
    /// Progress of each stage.
    pub stages: Vec<StageStatus>,
    /// Who approved (or rejected) per reviewer group.
    pub review_groups: Vec<ReviewGroupStatus>,
    /// Every review seen, in order.
    pub decisions: Vec<DecisionRecord>,
    /// The binding that carries the access.
    pub grant: Option<GrantStatus>,
    /// What the grant was used for (`used 14 times: get pods`), from audit evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub usage: Option<String>,
    /// Why the request is where it is: the message of its latest condition.
    pub message: Option<String>,
}

/// The summary of a request's status.
pub fn summary(req: &ApprovalRequest, now: DateTime<Utc>) -> StatusSummary {
    let st = req.status.clone().unwrap_or_default();
    let mut decisions = st.decisions.clone();
    decisions.sort_by_key(|d| d.at);
    StatusSummary {
        name: req.name_any(),
        namespace: req.namespace().unwrap_or_default(),
        requester: req.spec.requester.clone(),
        subject: subject(req),
        role: req.spec.role.to_string(),
        scope: scope(req).to_string(),
        phase: req.status.as_ref().map(|s| s.phase),
        policy: st
            .requirements
            .as_ref()
            .map(|r| r.policy.clone())
            .or_else(|| req.spec.policy.clone()),
        approvals: st.approvals.as_ref().map(|a| a.summary.clone()),
        expires_at: st.expires_at,
        time_left: time_left(req, now),
        stages: st.stages,
        review_groups: st.review_groups,
        decisions,
        usage: st.usage.as_ref().map(|u| u.summary.clone()),
        grant: st.grant,
        message: latest_message(req),
    }
}

/// Who receives the access, as `Kind name` (`Kind namespace/name` for a ServiceAccount).
pub fn subject(req: &ApprovalRequest) -> String {
    crate::decide::subject_of(req).to_string()
}

fn latest_message(req: &ApprovalRequest) -> Option<String> {
    req.status
        .as_ref()?
        .conditions
        .iter()
        .filter(|c| !c.message.is_empty())
        .max_by_key(|c| c.last_transition_time)
        .map(|c| c.message.clone())
}

/// The human-readable `status` view.
pub fn status(req: &ApprovalRequest, now: DateTime<Utc>) -> String {
    let s = summary(req, now);
    status_fields(req, &s) + &status_tables(&s)
}

/// The header of `status`: one `Field: value` line each.
fn status_fields(req: &ApprovalRequest, s: &StatusSummary) -> String {
    let mut out = String::new();
    // One line per field, whatever the value holds (a reason with a newline
    // could otherwise forge a `Phase:` line).
    let mut field =
        |k: &str, v: String| out.push_str(&format!("{:<12}{}\n", format!("{k}:"), terminal::line(&v)));
    field("Name", s.name.clone());
    field("Namespace", s.namespace.clone());
    field("Requester", who(&s.requester));
    if req.spec.subject.is_some() {
        field("Subject", s.subject.clone());
    }
    field("Role", format!("{} ({} scope)", s.role, s.scope));
    if let Some(d) = &req.spec.duration {
        field("Duration", d.clone());
    }
    if let Some(r) = &req.spec.reason {
        field("Reason", r.clone());
    }
    field("Policy", s.policy.clone().unwrap_or_else(|| "-".into()));
    field(
        "Phase",
        s.phase
            .map_or("<not seen by the operator yet>".to_string(), |p| p.to_string()),
    );
    field("Approvals", s.approvals.clone().unwrap_or_else(|| "-".into()));
    field(
        "Expires",
        match (&s.expires_at, &s.time_left) {
            (Some(t), Some(left)) if left == "expired" => format!("{} (expired)", when(Some(*t))),
            (Some(t), Some(left)) => format!("{} ({left} left)", when(Some(*t))),
            _ => "-".into(),
        },
    );
    if let Some(g) = &s.grant {
        let place = g
            .namespace
            .as_deref()
            .map_or(String::new(), |n| format!(" in {n}"));
        field("Grant", format!("{}/{}{place}", g.kind, g.name));
    }
    if let Some(u) = &s.usage {
        field("Usage", format!("{u} (RBAC credits the first matching binding)"));
    }
    // A OneTime request: what reviewers approve is exactly this, so show all of it.
    if let Some(j) = &req.spec.job {
        let line: Vec<&str> = j.command.iter().chain(&j.args).map(String::as_str).collect();
        field("Job image", j.image.clone());
        if !line.is_empty() {
            // As a shell would read it back: one unambiguous word per argument.
            field("Job runs", crate::escape::shell::join(&line));
        }
        for e in &j.env {
            field(
                "Job env",
                format!("{}={}", e.name, crate::escape::shell::quote(&e.value)),
            );
        }
    }
    if let Some(j) = req.status.as_ref().and_then(|st| st.job.as_ref()) {
        let deadline = j.deadline.map_or(String::new(), |d| {
            format!(", stopped at {} at the latest", when(Some(d)))
        });
        field("Job", format!("{} ({}{deadline})", j.name, j.state));
        field("Job logs", j.logs.clone());
    }
    if let Some(m) = &s.message {
        field("Message", m.clone());
    }
    if let Some(p) = req.status.as_ref().and_then(|st| st.eligible_reviewers.as_ref()) {
        if !p.is_empty() && s.phase == Some(Phase::Pending) {
            let mut names: Vec<String> = p.groups.iter().map(|g| format!("group {g}")).collect();
            names.extend(p.users.iter().map(|u| format!("user {u}")));
            field("Reviewers", names.join(", "));
        }
    }
    out
}

/// The tables of `status`: stages, review groups, decisions.
fn status_tables(s: &StatusSummary) -> String {
    let mut out = String::new();
    if !s.stages.is_empty() {
        out.push_str("\nStages:\n");
        let rows: Vec<Vec<String>> = s
            .stages
            .iter()
            .map(|st| {
                vec![
                    st.name.clone(),
                    st.status.to_string(),
                    format!("{}/{}", st.received, st.required),
                    when(st.opened_at),
                    when(st.approved_at),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["STAGE", "STATUS", "APPROVALS", "OPENED", "APPROVED"],
            &rows,
        )));
    }
    if !s.review_groups.is_empty() {
        out.push_str("\nReview groups:\n");
        let rows: Vec<Vec<String>> = s
            .review_groups
            .iter()
            .map(|g| {
                vec![
                    g.group.clone(),
                    g.stage.clone().unwrap_or_else(|| "-".into()),
                    g.status.to_string(),
                    g.reviewed_by.clone().unwrap_or_else(|| "-".into()),
                    when(g.reviewed_at),
                    if g.forced { "forced".into() } else { String::new() },
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["GROUP", "STAGE", "STATUS", "BY", "AT", "FORCED"],
            &rows,
        )));
    }
    out.push_str("\nDecisions:\n");
    if s.decisions.is_empty() {
        out.push_str("  (none yet)\n");
    } else {
        let rows: Vec<Vec<String>> = s
            .decisions
            .iter()
            .map(|d| {
                vec![
                    when(Some(d.at)),
                    d.reviewer.clone(),
                    d.decision.to_string() + if d.forced { " (forced)" } else { "" },
                    if d.accepted { "yes".into() } else { "no".into() },
                    d.reason.clone(),
                    d.message.clone(),
                ]
            })
            .collect();
        out.push_str(&indent(&table(
            &["AT", "REVIEWER", "DECISION", "ACCEPTED", "REASON", "MESSAGE"],
            &rows,
        )));
    }
    out
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("  {l}\n")).collect()
}

/// The last lines of `request --wait`.
pub fn wait_result(req: &ApprovalRequest, now: DateTime<Utc>) -> String {
    let name = req.name_any();
    let s = summary(req, now);
    let why = s
        .message
        .map_or(String::new(), |m| format!(": {}", terminal::line(&m)));
    match s.phase {
        Some(Phase::Active) => format!(
            "Access granted: {} in {}{}\n",
            s.role,
            if req.spec.scope == crate::api::Scope::Cluster {
                "the whole cluster".to_string()
            } else {
                format!("namespace {}", s.namespace)
            },
            s.time_left.map_or(String::new(), |l| format!(", {l} left")),
        ),
        Some(p) => format!("{name} ended {p}{why}\n"),
        None => format!("{name} has no status yet\n"),
    }
}

/// The line a review command prints.
pub fn review_outcome(o: &ReviewOutcome) -> String {
    let head = format!(
        "accessreview/{} created: {} {}",
        o.review,
        o.decision.to_string().to_lowercase(),
        o.request
    );
    match &o.verdict {
        // The command then fails with the timeout, on stderr.
        None => format!("{head}\n"),
        Some(v) if v.accepted == Some(true) => format!("{head}\nAccepted by the operator.\n"),
        Some(v) => format!(
            "{head}\nNot accepted: {}{}\n",
            v.reason.map_or("Unknown", |r| r.as_str()),
            v.message
                .as_deref()
                .map_or(String::new(), |m| format!(" ({})", terminal::line(m)))
        ),
    }
}
