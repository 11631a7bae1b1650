//! The desk's JSON API. Each handler does what a plugin command does, with the
//! plugin's functions and the user's own client: the API server authenticates
//! the person at the keyboard, RBAC and the admission policies judge each write,
//! and the operator judges each review as it judges the CLI's.

use std::{collections::BTreeMap, sync::Arc, time::Duration as StdDuration};

use axum::{
    extract::{Path, Query, State},
    http::{header, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use kube::{
    api::{Api, ListParams},
    ResourceExt,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{
    super::{
        build_request, certify, certify_report, file_request, random_suffix, render, review, CliError, Env,
        KindArg, Output, RequestArgs, ReviewOutcome,
    },
    view::{self, ItemRow, RequestRow},
    Desk,
};
use crate::api::{AccessCertification, ApprovalRequest, Decision, RoleKind, Scope};

/// How long a decision waits for the operator's verdict.
const VERDICT_WAIT: StdDuration = StdDuration::from_secs(10);

/// A failure, as the page shows it: one line (the plugin's own wording).
pub struct ApiError(StatusCode, String);

impl From<CliError> for ApiError {
    fn from(e: CliError) -> Self {
        let status = match &e {
            CliError::Forbidden { .. } | CliError::Unauthorized { .. } => StatusCode::FORBIDDEN,
            CliError::NotFound { .. } | CliError::NoNamespace { .. } | CliError::Deleted { .. } => {
                StatusCode::NOT_FOUND
            }
            CliError::Invalid(_) | CliError::NoPolicy(_) => StatusCode::BAD_REQUEST,
            CliError::Refused { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            _ => StatusCode::BAD_GATEWAY,
        };
        ApiError(status, crate::escape::terminal::line(&e.to_string()).into_owned())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.0, Json(json!({ "error": self.1 }))).into_response()
    }
}

type Answer<T> = Result<Json<T>, ApiError>;

/// The env acting in namespace `ns`.
fn in_ns(env: &Env, ns: &str) -> Env {
    Env {
        namespace: ns.to_string(),
        ..env.clone()
    }
}

/// Every request the user may list: everywhere, else in the desk's namespace.
async fn visible_requests(env: &Env) -> Result<Vec<ApprovalRequest>, CliError> {
    match super::super::list_requests(env, true).await {
        Err(CliError::Forbidden { .. }) => super::super::list_requests(env, false).await,
        other => other,
    }
}

/// `GET /api/me`: who the desk acts as.
pub async fn me(State(desk): State<Arc<Desk>>) -> Json<serde_json::Value> {
    let env = &desk.env;
    Json(json!({
        "username": env.me.username,
        "groups": env.me.groups,
        "namespace": env.namespace,
        "server": env.server,
    }))
}

/// How many items one page of My queue shows.
pub const PAGE: usize = 100;

/// My queue: what the user may decide now.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Queue {
    requests: Vec<RequestRow>,
    /// One page of the items waiting for the user (with the recommendation asked for).
    items: Vec<ItemRow>,
    /// How many items wait for the user (with the recommendation asked for).
    items_total: usize,
    /// The page shown (the last one if the one asked for is past the end).
    page: usize,
    /// Items per page.
    page_size: usize,
    /// What the user may not list, in one line each (a requester cannot read items).
    notes: Vec<String>,
}

/// `?page=N&rec=Accept|Review|Revoke`.
#[derive(Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    page: usize,
    rec: Option<String>,
}

/// `GET /api/queue?page=N&rec=R`: requests (`kubectl gatehouse pending -A`) and
/// one page of the certification items (`certify list`) waiting for the user,
/// with how many there are. Built from the desk's watches when they are in sync
/// ([`super::feed`]), else listed as the user; what RBAC does not let the user
/// list is left out, with a note.
pub async fn queue(State(desk): State<Arc<Desk>>, Query(q): Query<QueueQuery>) -> Answer<Queue> {
    let env = &desk.env;
    let now = (env.now)();
    let mut notes = Vec::new();
    let (requests, items) = futures::join!(queue_requests(&desk), queue_items(&desk));
    let requests = match requests {
        Ok(list) => list
            .iter()
            .map(|r| view::request_row(r, &env.me, now))
            .filter(|r| r.can_review)
            .collect(),
        Err(e @ CliError::Forbidden { .. }) => {
            notes.push(ApiError::from(e).1);
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let waiting: Vec<Arc<AccessCertification>> = match items {
        Ok(list) => list
            .into_iter()
            .filter(|i| certify::waits_for(i, &env.me))
            .filter(|i| match q.rec.as_deref() {
                None | Some("any") => true,
                Some(rec) => i
                    .status
                    .as_ref()
                    .and_then(|s| s.recommendation)
                    .is_some_and(|r| r.to_string() == rec),
            })
            .collect(),
        Err(e @ CliError::Forbidden { .. }) => {
            notes.push(ApiError::from(e).1);
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let items_total = waiting.len();
    let page = q.page.min(items_total.saturating_sub(1) / PAGE);
    let items = waiting
        .iter()
        .skip(page * PAGE)
        .take(PAGE)
        .map(|i| view::item_row(i, &env.me, now))
        .collect();
    Ok(Json(Queue {
        requests,
        items,
        items_total,
        page,
        page_size: PAGE,
        notes,
    }))
}

/// The requests the user may see: from memory, else listed.
async fn queue_requests(desk: &Desk) -> Result<Vec<Arc<ApprovalRequest>>, CliError> {
    match desk.feeds.requests.snapshot().await {
        Some(mut list) => {
            list.sort_by_key(|r| (r.namespace(), r.creation_timestamp(), r.name_any()));
            Ok(list)
        }
        None => Ok(visible_requests(&desk.env)
            .await?
            .into_iter()
            .map(Arc::new)
            .collect()),
    }
}

/// The items the user may see, by run and name: from memory, else listed.
async fn queue_items(desk: &Desk) -> Result<Vec<Arc<AccessCertification>>, CliError> {
    match desk.feeds.items.snapshot().await {
        Some(mut list) => {
            list.sort_by(|a, b| (&a.spec.run, &a.metadata.name).cmp(&(&b.spec.run, &b.metadata.name)));
            Ok(list)
        }
        None => Ok(certify::all_items(&desk.env, &ListParams::default())
            .await?
            .into_iter()
            .map(Arc::new)
            .collect()),
    }
}

/// `GET /api/mine`: the user's own requests (`kubectl gatehouse list -A`), newest first.
pub async fn mine(State(desk): State<Arc<Desk>>) -> Answer<Vec<RequestRow>> {
    let env = &desk.env;
    let now = (env.now)();
    let mut rows: Vec<RequestRow> = visible_requests(env)
        .await?
        .iter()
        .map(|r| view::request_row(r, &env.me, now))
        .filter(|r| r.mine)
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.created_at));
    Ok(Json(rows))
}

/// `GET /api/request/{ns}/{name}`: one request (`kubectl gatehouse status`).
pub async fn request(
    State(desk): State<Arc<Desk>>,
    Path((ns, name)): Path<(String, String)>,
) -> Answer<RequestRow> {
    let env = in_ns(&desk.env, &ns);
    let req = super::super::get_request(&env, &name).await?;
    Ok(Json(view::request_row(&req, &env.me, (env.now)())))
}

/// A run the user can see items of.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RunRef {
    campaign: String,
    run: String,
    items: usize,
    waiting_for_me: usize,
}

/// `GET /api/runs`: the campaign runs with items the user can see.
pub async fn runs(State(desk): State<Arc<Desk>>) -> Answer<Vec<RunRef>> {
    let env = &desk.env;
    let mut runs: BTreeMap<(String, String), RunRef> = BTreeMap::new();
    for item in queue_items(&desk).await? {
        let key = (item.spec.campaign.clone(), item.spec.run.clone());
        let run = runs.entry(key).or_insert_with(|| RunRef {
            campaign: item.spec.campaign.clone(),
            run: item.spec.run.clone(),
            items: 0,
            waiting_for_me: 0,
        });
        run.items += 1;
        run.waiting_for_me += usize::from(certify::waits_for(&item, &env.me));
    }
    // Newest run first.
    Ok(Json(runs.into_values().rev().collect()))
}

/// A run: its progress and its items.
#[derive(Serialize)]
pub struct RunView {
    campaign: String,
    run: String,
    progress: view::Progress,
    items: Vec<ItemRow>,
}

/// The run's items the user may see: from memory, else listed.
async fn run_items(
    desk: &Desk,
    campaign: &str,
    run: &str,
) -> Result<Vec<Arc<AccessCertification>>, CliError> {
    if let Some(all) = desk.feeds.items.snapshot().await {
        let mut items: Vec<_> = all
            .into_iter()
            .filter(|i| i.spec.campaign == campaign && i.spec.run == run)
            .collect();
        items.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        return Ok(items);
    }
    let env = &desk.env;
    let params = ListParams::default().labels(&format!(
        "{}={},{}={}",
        crate::certify::CAMPAIGN_LABEL,
        crate::labels::label_value(campaign),
        crate::certify::RUN_LABEL,
        crate::labels::label_value(run)
    ));
    Ok(certify::all_items(env, &params)
        .await?
        .into_iter()
        // Labels are cut to 63 characters: the spec says for sure.
        .filter(|i| i.spec.campaign == campaign && i.spec.run == run)
        .map(Arc::new)
        .collect())
}

/// `GET /api/run/{campaign}/{run}`: every item of the run the user can see.
pub async fn run(
    State(desk): State<Arc<Desk>>,
    Path((campaign, run)): Path<(String, String)>,
) -> Answer<RunView> {
    let env = &desk.env;
    let now = (env.now)();
    let items = run_items(&desk, &campaign, &run).await?;
    Ok(Json(RunView {
        progress: view::progress(&items),
        items: items.iter().map(|i| view::item_row(i, &env.me, now)).collect(),
        campaign,
        run,
    }))
}

/// `?format=csv|json`.
#[derive(Deserialize)]
pub struct ReportQuery {
    format: Option<String>,
}

/// `GET /api/report/{campaign}/{run}?format=csv|json`: the bytes `kubectl
/// gatehouse certify report` prints, with their SHA-256 in `X-Report-SHA256`.
pub async fn report(
    State(desk): State<Arc<Desk>>,
    Path((campaign, run)): Path<(String, String)>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, ApiError> {
    let (format, kind) = match q.format.as_deref() {
        None | Some("csv") => (Output::Csv, "text/csv; charset=utf-8"),
        Some("json") => (Output::Json, "application/json"),
        Some(other) => {
            return Err(ApiError(
                StatusCode::BAD_REQUEST,
                format!("format {:?}: csv or json", crate::escape::terminal::line(other)),
            ))
        }
    };
    let text = certify::report_text(&desk.env, &campaign, Some(run), format).await?;
    let digest = certify_report::sha256(text.as_bytes());
    let mut response = text.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    if let Ok(v) = HeaderValue::from_str(&digest) {
        headers.insert("x-report-sha256", v);
    }
    Ok(response)
}

/// A decision on a request.
#[derive(Deserialize)]
pub struct ReviewBody {
    namespace: String,
    name: String,
    decision: Decision,
    comment: Option<String>,
}

/// What a review did: the outcome and the line the plugin prints.
#[derive(Serialize)]
pub struct ReviewAnswer {
    #[serde(flatten)]
    outcome: ReviewOutcome,
    line: String,
}

/// `POST /api/review`: approve, reject, revoke, comment or cancel, as
/// `kubectl gatehouse approve NAME` does; waits for the operator's verdict.
pub async fn post_review(State(desk): State<Arc<Desk>>, Json(b): Json<ReviewBody>) -> Answer<ReviewAnswer> {
    if b.decision == Decision::Reassign {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "Reassign is for certification items".into(),
        ));
    }
    let env = in_ns(&desk.env, &b.namespace);
    let outcome = review(&env, &b.name, b.decision, b.comment, VERDICT_WAIT).await?;
    // The verdict's line of what the CLI prints ("Accepted by the operator.",
    // "Not accepted: SelfApproval (...)"), or the review's when no verdict came.
    let printed = render::review_outcome(&outcome);
    let line = crate::escape::terminal::line(printed.lines().last().unwrap_or_default()).into_owned();
    Ok(Json(ReviewAnswer { outcome, line }))
}

/// An item named by namespace and name.
#[derive(Deserialize)]
pub struct ItemRef {
    namespace: String,
    name: String,
}

/// Decisions on certification items.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertifyBody {
    items: Vec<ItemRef>,
    decision: Decision,
    comment: Option<String>,
    #[serde(default)]
    reassign_to: Vec<String>,
}

/// `POST /api/certify`: approve, revoke or reassign items, as `kubectl gatehouse
/// certify approve|revoke|reassign` does.
pub async fn post_certify(
    State(desk): State<Arc<Desk>>,
    Json(b): Json<CertifyBody>,
) -> Answer<Vec<certify_report::ItemOutcome>> {
    let env = &desk.env;
    if !matches!(
        b.decision,
        Decision::Approve | Decision::Revoke | Decision::Reassign
    ) {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "items are approved, revoked or reassigned".into(),
        ));
    }
    let mut items = Vec::new();
    for r in &b.items {
        let api: Api<AccessCertification> = Api::namespaced(env.client.clone(), &r.namespace);
        let op = super::super::Op::namespaced(
            super::super::Verb::Get,
            super::super::Resource::AccessCertifications,
            &r.namespace,
            Some(&r.name),
        );
        items.push(api.get(&r.name).await.map_err(env.fail(op))?);
    }
    let reassign_to = match b.decision {
        Decision::Reassign => {
            let to = certify::principals(&b.reassign_to)?;
            if to.is_empty() {
                return Err(ApiError(
                    StatusCode::BAD_REQUEST,
                    "name whom to reassign to".into(),
                ));
            }
            Some(to)
        }
        _ => None,
    };
    let plan = certify::Plan {
        decision: b.decision,
        comment: b.comment,
        reassign_to,
        convert_to: None,
    };
    Ok(Json(
        certify::decide_items(env, &items, &plan, VERDICT_WAIT).await?,
    ))
}

/// Approve every recommended item of a run.
#[derive(Deserialize)]
pub struct RecommendedBody {
    campaign: String,
    run: String,
    comment: Option<String>,
}

/// `POST /api/certify/recommended`: `certify approve --all-recommended`, in one run.
pub async fn post_recommended(
    State(desk): State<Arc<Desk>>,
    Json(b): Json<RecommendedBody>,
) -> Answer<Vec<certify_report::ItemOutcome>> {
    let env = &desk.env;
    let items: Vec<AccessCertification> = certify::recommended(env, Some(b.campaign.clone()))
        .await?
        .into_iter()
        .filter(|i| i.spec.run == b.run)
        .collect();
    let plan = certify::Plan {
        decision: Decision::Approve,
        comment: b.comment,
        reassign_to: None,
        convert_to: None,
    };
    Ok(Json(
        certify::decide_items(env, &items, &plan, VERDICT_WAIT).await?,
    ))
}

/// Request the same access again, or extend an Active request.
#[derive(Deserialize)]
pub struct AgainBody {
    namespace: String,
    name: String,
    #[serde(default)]
    extend: bool,
}

/// `POST /api/request-again`: a new request of the user's for the same role,
/// scope, subject, duration, reason and policy (`spec.extends` the old one with
/// `extend`), checked and created as `kubectl gatehouse request` does.
pub async fn post_again(State(desk): State<Arc<Desk>>, Json(b): Json<AgainBody>) -> Answer<RequestRow> {
    let env = in_ns(&desk.env, &b.namespace);
    let old = super::super::get_request(&env, &b.name).await?;
    if old.spec.job.is_some() {
        return Err(ApiError(
            StatusCode::BAD_REQUEST,
            "a OneTime request runs its job once: file a new one with `kubectl gatehouse request --run`"
                .into(),
        ));
    }
    let args = RequestArgs {
        role: old.spec.role.name.clone(),
        kind: match old.spec.role.kind {
            RoleKind::ClusterRole => KindArg::ClusterRole,
            RoleKind::Role => KindArg::Role,
        },
        cluster_wide: old.spec.scope == Scope::Cluster,
        duration: old.spec.duration.clone(),
        reason: old.spec.reason.clone(),
        policy: old.spec.policy.clone(),
        subject: None,
        name: None,
        wait: false,
        timeout: None,
        run: None,
        env: Vec::new(),
        command: Vec::new(),
    };
    let mut req = build_request(&args, &env.me, &env.namespace, &random_suffix())?;
    req.spec.subject = old.spec.subject.clone();
    if b.extend {
        req.spec.extends = Some(old.name_any());
    }
    let created = file_request(&env, req).await?;
    Ok(Json(view::request_row(&created, &env.me, (env.now)())))
}
