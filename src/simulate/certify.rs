//! The certification part of `gatehouse simulate`: each campaign's latest run at
//! `now`, its items as the operator would create them, and their statuses.
//!
//! Items get a simulated uid (`sim-` and a hash of the item name), so that
//! reviews written for simulate can name them; `--output json` shows it.

use chrono::{DateTime, Utc};
use kube::ResourceExt;
use serde::Serialize;

use super::Manifests;
use crate::{
    api::{
        AccessCampaign, AccessCampaignSpec, AccessCertificationSpec, AccessCertificationStatus, AccessPolicy,
        AccessReview, CampaignReviewers, ClosedBy, FindingCode, ItemUsage, LevelState, LevelStatus, Outcome,
        ReviewLevel, SkippedItem,
    },
    certify::{
        campaign,
        evaluate::{evaluate, ItemInput},
        inventory::{Inventory, Observed},
        naming::fnv1a,
        protect::OperatorIdentity,
        schedule::{latest_run, RunPlan},
        scope::{launch, Exclusion, ExclusionReason},
    },
    decide::{
        eligibility::describe,
        timestamp::{created_at, rfc3339, rfc3339_or_dash},
    },
    table::Table,
};

/// The operator's default minimum review window: `simulate` refuses what an
/// operator installed with defaults would.
fn min_review_window() -> chrono::Duration {
    crate::decide::duration::parse(crate::certify::MIN_REVIEW_WINDOW).unwrap_or(chrono::Duration::hours(1))
}

/// Name of the campaign `simulate --certify` makes up when the input has none.
pub const IMPLICIT_CAMPAIGN: &str = "cluster-review";

/// One item of a run.
#[derive(Debug, Clone, Serialize)]
pub struct ItemResult {
    /// Namespace (the campaign's review namespace).
    pub namespace: String,
    /// Deterministic name.
    pub name: String,
    /// The simulated uid reviews must name.
    pub uid: String,
    /// The snapshot the operator would create.
    pub spec: AccessCertificationSpec,
    /// Exactly the status the operator would write.
    pub status: AccessCertificationStatus,
}

/// One campaign run at `now`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunResult {
    /// The campaign.
    pub campaign: String,
    /// The run, when one has started by `now`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<String>,
    /// When it started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<DateTime<Utc>>,
    /// When it is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub due_at: Option<DateTime<Utc>>,
    /// Why the campaign could not run (invalid schedule, time zone, duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    /// What the scope left out, in words.
    pub excluded: Vec<String>,
    /// What is in scope but cannot become an item, with why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedItem>,
    /// The items, by name.
    pub items: Vec<ItemResult>,
}

/// The uid simulate gives an item: stable, and visibly not from an API server.
pub fn simulated_uid(item_name: &str) -> String {
    format!("sim-{:016x}", fnv1a(item_name))
}

/// The cluster at `now`: objects created later do not exist yet.
fn inventory(m: &Manifests, now: DateTime<Utc>) -> Inventory {
    let c = &m.cluster;
    let mut observed = Vec::new();
    if !c.cluster_roles.is_empty() {
        observed.push(Observed::ClusterRoles);
    }
    if !c.roles.is_empty() {
        observed.push(Observed::Roles);
    }
    if !c.namespaces.is_empty() {
        observed.push(Observed::Namespaces);
    }
    if !c.service_accounts.is_empty() {
        observed.push(Observed::ServiceAccounts);
    }
    let mut inv = Inventory::observing(&observed);
    let exists = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t <= now);
    c.role_bindings
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_role_binding(o));
    c.cluster_role_bindings
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_cluster_role_binding(o));
    c.roles
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_role(o));
    c.cluster_roles
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_cluster_role(o));
    c.namespaces
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_namespace(o));
    c.service_accounts
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_service_account(o));
    m.requests
        .iter()
        .filter(|o| exists(created_at(*o)))
        .for_each(|o| inv.add_request(o));
    inv.usage = m.usage.clone();
    inv
}

/// The campaign `--certify` runs over a cluster export: every binding, reviewed by
/// the namespaces' owners, starting at `now`.
fn implicit_campaign(now: DateTime<Utc>) -> AccessCampaign {
    let mut c = AccessCampaign::new(
        IMPLICIT_CAMPAIGN,
        AccessCampaignSpec {
            reviewers: CampaignReviewers {
                levels: vec![ReviewLevel {
                    name: "owners".into(),
                    namespace_owners: true,
                    ..Default::default()
                }],
            },
            ..Default::default()
        },
    );
    // Nanoseconds are always below one second, so the conversion cannot fail.
    c.metadata.creation_timestamp = k8s_openapi::jiff::Timestamp::new(now.timestamp(), 0)
        .ok()
        .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time);
    c
}

fn exclusion(e: &Exclusion) -> String {
    let what = match &e.subject {
        Some(s) => format!("{s} in {}", e.binding),
        None => e.binding.clone(),
    };
    let why = match &e.reason {
        ExclusionReason::BindingKind => "binding kind not in scope".to_string(),
        ExclusionReason::Namespace => "namespace not in scope".to_string(),
        ExclusionReason::Role => "role not in scope".to_string(),
        ExclusionReason::BindingSelector => "binding labels do not match".to_string(),
        ExclusionReason::GatehouseGrant => "a Gatehouse JIT grant of an existing request".to_string(),
        ExclusionReason::CreatedAfterRun => "created after the run started".to_string(),
        ExclusionReason::SystemIdentity => "a Kubernetes system identity".to_string(),
        ExclusionReason::BootstrapBinding => "the API server's own binding".to_string(),
        ExclusionReason::SubjectKind => "subject kind not in scope".to_string(),
        ExclusionReason::BindingPattern(p) => format!("binding matches {p}"),
        ExclusionReason::SubjectPattern(p) => format!("subject matches {p}"),
    };
    format!("{what} ({why})")
}

fn run_campaign(
    c: &AccessCampaign,
    plan: &RunPlan,
    inv: &Inventory,
    policies: &[AccessPolicy],
    reviews: &[AccessReview],
    now: DateTime<Utc>,
) -> RunResult {
    let launched = launch(c, plan, inv);
    // The operator as the chart and `gatehouse rbac` install it by default.
    let operator = OperatorIdentity::default_install();
    let items = launched
        .items
        .into_iter()
        .map(|mut item| {
            let name = item.name_any();
            item.metadata.uid = Some(simulated_uid(&name));
            let namespace = item.namespace().unwrap_or_default();
            let mine: Vec<AccessReview> = reviews
                .iter()
                .filter(|r| r.namespace().as_deref() == Some(namespace.as_str()))
                .cloned()
                .collect();
            let ev = evaluate(&ItemInput {
                item: &item,
                reviews: &mine,
                policies,
                inventory: inv,
                now,
                operator: Some(&operator),
            });
            ItemResult {
                uid: simulated_uid(&name),
                namespace,
                name,
                spec: item.spec,
                status: ev.status,
            }
        })
        .collect();
    RunResult {
        campaign: c.name_any(),
        run: Some(plan.name.clone()),
        started_at: Some(plan.started_at),
        due_at: Some(plan.due_at),
        problem: None,
        excluded: launched.excluded.iter().map(exclusion).collect(),
        skipped: launched.skipped,
        items,
    }
}

/// Every campaign's latest run at `now` (or the implicit one, see [`IMPLICIT_CAMPAIGN`]).
pub fn run(m: &Manifests, now: DateTime<Utc>, implicit: bool) -> Vec<RunResult> {
    let exists = |t: Option<DateTime<Utc>>| t.is_none_or(|t| t <= now);
    let mut campaigns: Vec<AccessCampaign> = m
        .campaigns
        .iter()
        .filter(|c| exists(created_at(*c)))
        .cloned()
        .collect();
    if campaigns.is_empty() && implicit {
        campaigns.push(implicit_campaign(now));
    }
    campaigns.sort_by_key(|c| c.name_any());
    let inv = inventory(m, now);
    let policies: Vec<AccessPolicy> = m
        .policies
        .iter()
        .filter(|p| exists(created_at(*p)))
        .cloned()
        .collect();
    campaigns
        .iter()
        .map(|c| {
            match latest_run(c, now).map_err(|e| e.to_string()).and_then(|run| {
                let mut problems = campaign::problems(c);
                if let Err(e) = campaign::review_window(c, min_review_window()) {
                    problems.push(e.to_string());
                }
                if problems.is_empty() {
                    Ok(run)
                } else {
                    Err(problems.join("; "))
                }
            }) {
                Ok(Some(plan)) => run_campaign(c, &plan, &inv, &policies, &m.reviews, now),
                Ok(None) => RunResult {
                    campaign: c.name_any(),
                    run: None,
                    started_at: None,
                    due_at: None,
                    problem: None,
                    excluded: Vec::new(),
                    skipped: Vec::new(),
                    items: Vec::new(),
                },
                Err(e) => RunResult {
                    campaign: c.name_any(),
                    run: None,
                    started_at: None,
                    due_at: None,
                    problem: Some(e),
                    excluded: Vec::new(),
                    skipped: Vec::new(),
                    items: Vec::new(),
                },
            }
        })
        .collect()
}

fn level_note(l: &LevelStatus) -> String {
    let reassigned = l
        .reassigned_to
        .as_ref()
        .map(|to| format!(" (reassigned to {})", describe(to)))
        .unwrap_or_default();
    let escalated = l
        .escalated_at
        .map(|t| format!(" (escalated at {})", rfc3339(t)))
        .unwrap_or_default();
    match l.state {
        LevelState::Decided => format!(
            "level {}: {} by {} at {}{}{reassigned}{escalated}",
            l.name,
            l.decision.map(|d| d.to_string()).unwrap_or_default(),
            l.reviewed_by.as_deref().unwrap_or_default(),
            rfc3339_or_dash(l.reviewed_at),
            l.comment.as_deref().map(|c| format!(": {c}")).unwrap_or_default(),
        ),
        LevelState::Open => format!("level {}: open{reassigned}{escalated}", l.name),
        LevelState::Waiting => format!("level {}: waiting for the level before", l.name),
        LevelState::Expired => format!(
            "level {}: no decision by the due time{reassigned}{escalated}",
            l.name
        ),
    }
}

/// `used 14 times since ..., last at ...: get pods, create pods/exec`.
fn usage_note(u: &ItemUsage) -> String {
    let since = rfc3339(u.observed_since);
    match (u.last_used_at, &u.used_through) {
        (Some(last), _) => format!(
            "usage: {} since {since}, last at {}: {} (RBAC credits the first matching binding)",
            crate::usage::times(u.requests),
            rfc3339(last),
            u.top_actions.join(", ")
        ),
        (None, Some(other)) => {
            format!("usage: not used through this binding since {since}; used through {other}")
        }
        (None, None) => format!("usage: not used since {since} (RBAC credits the first matching binding)"),
    }
}

/// The lines under an item: why the recommendation, each level, how it closed,
/// the remediation, and the reviews that did not count.
fn notes(item: &ItemResult) -> Vec<String> {
    let s = &item.status;
    let mut n: Vec<String> = s
        .reasons
        .iter()
        .map(|f| {
            let kind = match f.code {
                FindingCode::Risk => "risk",
                FindingCode::RoleMissing
                | FindingCode::ServiceAccountMissing
                | FindingCode::NamespaceGone => "stale",
                FindingCode::RulesChanged => "changed",
                FindingCode::RoleNotSeen => "unknown",
                FindingCode::NothingRisky => "no risk",
                FindingCode::Unused
                | FindingCode::UsedThroughAnotherBinding
                | FindingCode::UnusedTooShortToJudge => "evidence",
            };
            format!("{kind}: {}", f.message)
        })
        .collect();
    if let Some(u) = &s.usage {
        n.push(usage_note(u));
    }
    n.extend(s.levels.iter().map(level_note));
    if let Some(who) = &s.reviewers {
        n.push(format!("who can decide now: {}", describe(who)));
    }
    let access = match s.outcome {
        Outcome::Keep => "the access stays",
        Outcome::Remove => "the access goes",
        Outcome::Open => "",
    };
    match s.closed_by {
        Some(ClosedBy::NoDecisionKeep) => n.push(format!(
            "due without a final decision, onNoDecision Keep: {access}"
        )),
        Some(ClosedBy::NoDecisionRevoke) => n.push(format!(
            "due without a final decision, onNoDecision Revoke: {access}"
        )),
        Some(ClosedBy::NoDecisionRecommendation) => n.push(format!(
            "due without a final decision, onNoDecision Recommendation ({}): {access}",
            s.recommendation_label()
        )),
        Some(ClosedBy::Reviewers) | None => {}
    }
    if let Some(policy) = &s.converted_to {
        n.push(format!(
            "converted to just-in-time access: the subject can request the role under AccessPolicy {policy}"
        ));
    }
    if let Some(r) = &s.remediation {
        n.push(format!("remediation: {}", r.message));
    }
    for d in s.decisions.iter().filter(|d| !d.accepted) {
        n.push(format!(
            "ignored {} ({} by {}): {}: {}",
            d.review, d.decision, d.reviewer, d.reason, d.message
        ));
    }
    n
}

/// One run as a heading and a table with one line per item and indented notes.
pub fn render(run: &RunResult) -> String {
    let Some(name) = &run.run else {
        return match &run.problem {
            Some(p) => format!("CAMPAIGN {}: cannot run: {p}\n", run.campaign),
            None => format!("CAMPAIGN {}: no run has started yet\n", run.campaign),
        };
    };
    let count =
        |f: &dyn Fn(&AccessCertificationStatus) -> bool| run.items.iter().filter(|i| f(&i.status)).count();
    let mut out = format!(
        "CAMPAIGN {}  RUN {name}  STARTED {}  DUE {}\n{} items: {} open, {} kept, {} removed; {} left out\n",
        run.campaign,
        rfc3339_or_dash(run.started_at),
        rfc3339_or_dash(run.due_at),
        run.items.len(),
        count(&|s| s.outcome == Outcome::Open),
        count(&|s| s.outcome == Outcome::Keep),
        count(&|s| s.outcome == Outcome::Remove),
        run.excluded.len(),
    );
    for e in &run.excluded {
        out += &format!("    left out: {e}\n");
    }
    for s in &run.skipped {
        let subject = s
            .subject
            .as_deref()
            .map(|s| format!("{s} in "))
            .unwrap_or_default();
        out += &format!(
            "    skipped: {subject}{} ({}: {})\n",
            s.binding, s.reason, s.message
        );
    }
    let mut table = Table::new(&[
        "SUBJECT",
        "ROLE",
        "BINDING",
        "RISK",
        "RECOMMENDATION",
        "DECISION",
        "DUE",
        "REMEDIATION",
    ])
    .gap(2);
    for item in &run.items {
        let (spec, s) = (&item.spec, &item.status);
        let binding = spec.binding.to_string();
        table.row(vec![
            spec.subject.to_string(),
            spec.role_ref.to_string(),
            binding,
            s.risk_summary.clone().unwrap_or_else(|| "-".into()),
            s.recommendation_label(),
            s.decision.to_string(),
            rfc3339(spec.due_at),
            s.remediation
                .as_ref()
                .map(|r| r.state.to_string())
                .unwrap_or_else(|| "-".into()),
        ]);
        for note in notes(item) {
            table.note(note);
        }
    }
    out + &table.render()
}
