//! `kubectl gatehouse certify`: access certification for reviewers and admins.
//!
//! Items live in their campaign's review namespace; the commands find them in
//! every namespace the user may list (or in `-n` when listing everywhere is not
//! allowed). Every decision is an AccessReview of its own, carrying the user's
//! identity (all their groups: the admission policy requires them for
//! certification reviews) and pinned to the item's uid.

use std::{io::Write, time::Duration as StdDuration};

use kube::{
    api::{Api, ListParams, Patch, PatchParams, PostParams},
    ResourceExt,
};
use serde_json::json;

pub use super::certify_args::*;
use super::{
    certify_render as render, certify_report as report, emit, parse_timeout, random_suffix, wait_verdict,
    CliError, Env, Op, Output, Place, Resource, Verb,
};
use crate::{
    api::{
        AccessCampaign, AccessCertification, AccessReview, AccessReviewSpec, CertificationRef, ConvertTo,
        Decision, ItemDecision, Outcome, Principal, Principals, Recommendation,
    },
    certify::{naming::run_name, replay::is_subject, CAMPAIGN_LABEL, RUN_LABEL, RUN_REQUESTED_AT},
    escape::shell,
    labels::label_value,
};

/// Runs a `certify` subcommand; returns the exit code.
pub async fn run(
    env: &Env,
    args: &CertifyArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    if env.output == Output::Csv && !matches!(args.command, CertifyCommand::Report(_)) {
        return Err(CliError::Invalid(
            "-o csv is for `certify report`; use -o json or yaml".into(),
        ));
    }
    match &args.command {
        CertifyCommand::List(a) => list(env, a, out).await,
        CertifyCommand::Approve(a) => approve(env, a, out).await,
        CertifyCommand::Revoke(a) => {
            let convert = a.convert_to.clone().map(|policy| ConvertTo { policy });
            let plan = Plan {
                decision: Decision::Revoke,
                comment: a.comment.clone(),
                reassign_to: None,
                convert_to: convert,
            };
            decide_all(env, &a.items, &plan, &a.timeout, out).await
        }
        CertifyCommand::Reassign(a) => {
            let plan = Plan {
                decision: Decision::Reassign,
                comment: Some(a.comment.clone()),
                reassign_to: Some(principals(&a.to)?),
                convert_to: None,
            };
            decide_all(env, std::slice::from_ref(&a.item), &plan, &a.timeout, out).await
        }
        CertifyCommand::Status { item } => {
            let item = find_item(env, item).await?;
            let reviews = reviews_of(env, &item).await?;
            match env.output {
                Output::Table => out.write_all(render::status(&item, &reviews, (env.now)()).as_bytes())?,
                fmt => emit(fmt, &item, out)?,
            }
            Ok(super::exit::OK)
        }
        CertifyCommand::Start { campaign } => start(env, campaign, out).await,
        CertifyCommand::Report(a) => report_cmd(env, a, out, err).await,
    }
}

/// `user:NAME`, `group:NAME`, or a bare user name.
pub fn principals(specs: &[String]) -> Result<Principals, CliError> {
    let mut p = Principals::default();
    for s in specs {
        let one = Principal::parse(s)
            .ok_or_else(|| CliError::Invalid(format!("{s:?}: use user:NAME or group:NAME")))?;
        p.add(one);
    }
    Ok(p)
}

/// Every item the user may list: in all namespaces, or in `-n` when listing
/// everywhere is forbidden.
pub async fn all_items(env: &Env, params: &ListParams) -> Result<Vec<AccessCertification>, CliError> {
    let everywhere: Api<AccessCertification> = Api::all(env.client.clone());
    let (list, op) = match everywhere.list(params).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {
            let here: Api<AccessCertification> = Api::namespaced(env.client.clone(), &env.namespace);
            let op = Op::namespaced(Verb::List, Resource::AccessCertifications, &env.namespace, None);
            (here.list(params).await, op)
        }
        other => (
            other,
            Op::cluster(Verb::List, Resource::AccessCertifications, Place::AllNamespaces),
        ),
    };
    let mut items = list.map_err(env.fail(op))?.items;
    items.sort_by_key(|i| (i.spec.run.clone(), i.name_any()));
    Ok(items)
}

async fn find_item(env: &Env, name: &str) -> Result<AccessCertification, CliError> {
    let params = ListParams::default().fields(&format!("metadata.name={name}"));
    let mut found = all_items(env, &params).await?;
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(CliError::Invalid(format!(
            "no AccessCertification named {name} that you can see (`kubectl gatehouse certify list --all`)"
        ))),
        _ => Err(CliError::Invalid(format!(
            "several AccessCertification items are named {name}; pass -n NAMESPACE"
        ))),
    }
}

async fn reviews_of(env: &Env, item: &AccessCertification) -> Result<Vec<AccessReview>, CliError> {
    let ns = item.namespace().unwrap_or_default();
    let api: Api<AccessReview> = Api::namespaced(env.client.clone(), &ns);
    let params = ListParams::default().fields(&format!("spec.certification.name={}", item.name_any()));
    Ok(api
        .list(&params)
        .await
        .map_err(env.fail(Op::namespaced(Verb::List, Resource::AccessReviews, &ns, None)))?
        .items)
}

/// Whether `me` may decide the item now: open, `me` among its reviewers, and not
/// the subject (nor in the subject group).
pub fn waits_for(item: &AccessCertification, me: &crate::api::Identity) -> bool {
    let Some(s) = &item.status else { return false };
    s.outcome == Outcome::Open
        && s.reviewers.as_ref().is_some_and(|r| r.matches(me))
        && !is_subject(&item.spec.subject, me)
}

/// Whether the item passes the filters of `certify list`.
pub fn matches(item: &AccessCertification, f: &ListItemsArgs) -> bool {
    let status = item.status.clone().unwrap_or_default();
    let decision = match f.decision {
        None => true,
        Some(DecisionArg::Unreviewed) => status.decision == ItemDecision::Unreviewed,
        Some(DecisionArg::Approved) => status.decision == ItemDecision::Approved,
        Some(DecisionArg::Revoked) => status.decision == ItemDecision::Revoked,
    };
    let reviewer = f.reviewer.as_deref().is_none_or(|r| {
        let reviewers = status.reviewers.clone().unwrap_or_default();
        reviewers.names(&Principal::parse(r).unwrap_or_else(|| Principal::User(r.to_string())))
    });
    let risk = f.risk.as_deref().is_none_or(|t| match t {
        "any" => !status.risk.is_empty(),
        tag => status.risk.iter().any(|r| r.label() == tag),
    });
    let recommendation = f.recommendation.is_none_or(|r| {
        status.recommendation
            == Some(match r {
                RecommendationArg::Accept => Recommendation::Accept,
                RecommendationArg::Review => Recommendation::Review,
                RecommendationArg::Revoke => Recommendation::Revoke,
            })
    });
    decision
        && reviewer
        && risk
        && recommendation
        && f.campaign.as_ref().is_none_or(|c| *c == item.spec.campaign)
        && f.run.as_ref().is_none_or(|r| *r == item.spec.run)
        && f.subject
            .as_ref()
            .is_none_or(|s| item.spec.subject.name.contains(s.as_str()))
        && f.binding_namespace
            .as_ref()
            .is_none_or(|ns| item.spec.binding.namespace.as_ref() == Some(ns))
}

async fn list(env: &Env, f: &ListItemsArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let mut params = ListParams::default();
    if let Some(c) = &f.campaign {
        params = params.labels(&format!("{CAMPAIGN_LABEL}={}", label_value(c)));
    }
    let items: Vec<AccessCertification> = all_items(env, &params)
        .await?
        .into_iter()
        .filter(|i| f.all || waits_for(i, &env.me))
        .filter(|i| matches(i, f))
        .collect();
    match env.output {
        Output::Table if items.is_empty() && !f.all => {
            writeln!(out, "No certification items waiting for your decision.")?
        }
        Output::Table => out.write_all(render::item_table(&items, (env.now)()).as_bytes())?,
        fmt => emit(fmt, &items, out)?,
    }
    Ok(super::exit::OK)
}

/// What one decision command writes on each item.
pub struct Plan {
    /// The decision.
    pub decision: Decision,
    /// The comment recorded with it.
    pub comment: Option<String>,
    /// Reassign: to whom.
    pub reassign_to: Option<Principals>,
    /// Revoke: convert to a JIT policy.
    pub convert_to: Option<ConvertTo>,
}

/// The AccessReview of `me` deciding `item`.
pub fn build_item_review(
    item: &AccessCertification,
    me: &crate::api::Identity,
    decision: Decision,
    comment: Option<String>,
    suffix: &str,
) -> Result<AccessReview, CliError> {
    let uid = item
        .uid()
        .ok_or_else(|| CliError::Invalid(format!("{} has no uid", item.name_any())))?;
    // ITEM-USER-DECISION-SUFFIX, the item cut so that the name stays a valid one.
    let tail = format!(
        "{}-{}-{}",
        super::name_part(&me.username),
        decision.to_string().to_lowercase(),
        suffix
    );
    let tail: String = tail
        .chars()
        .rev()
        .take(90)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let head: String = item.name_any().chars().take(250 - tail.len()).collect();
    let name = format!(
        "{}-{}",
        head.trim_end_matches(['-', '.']),
        tail.trim_start_matches('-')
    );
    let mut review = AccessReview::new(
        &name,
        AccessReviewSpec {
            certification: Some(CertificationRef {
                name: item.name_any(),
                uid,
            }),
            decision,
            reviewer: me.clone(),
            comment: comment.filter(|c| !c.trim().is_empty()),
            ..Default::default()
        },
    );
    review.metadata.namespace = item.namespace();
    Ok(review)
}

async fn decide_all(
    env: &Env,
    names: &[String],
    plan: &Plan,
    timeout: &str,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let timeout = parse_timeout("timeout", timeout)?;
    let mut items = Vec::new();
    for name in names {
        items.push(find_item(env, name).await?);
    }
    decide(env, &items, plan, timeout, out).await
}

async fn decide(
    env: &Env,
    items: &[AccessCertification],
    plan: &Plan,
    timeout: StdDuration,
    out: &mut dyn Write,
) -> Result<i32, CliError> {
    let outcomes = decide_items(env, items, plan, timeout).await?;
    match env.output {
        Output::Table => out.write_all(render::outcomes(&outcomes).as_bytes())?,
        fmt => emit(fmt, &outcomes, out)?,
    }
    Ok(outcomes
        .iter()
        .map(report::ItemOutcome::exit_code)
        .max()
        .unwrap_or(super::exit::OK))
}

/// Records `plan` on each item (one AccessReview each, beside its item), then
/// waits for the operator's verdicts, all at once: the outcomes in item order.
pub async fn decide_items(
    env: &Env,
    items: &[AccessCertification],
    plan: &Plan,
    timeout: StdDuration,
) -> Result<Vec<report::ItemOutcome>, CliError> {
    let mut created = Vec::new();
    for item in items {
        let mut review = build_item_review(
            item,
            &env.me,
            plan.decision,
            plan.comment.clone(),
            &random_suffix(),
        )?;
        review.spec.reassign_to = plan.reassign_to.clone().map(Box::new);
        review.spec.convert_to = plan.convert_to.clone();
        let ns = item.namespace().unwrap_or_default();
        let api: Api<AccessReview> = Api::namespaced(env.client.clone(), &ns);
        let review = api
            .create(&PostParams::default(), &review)
            .await
            .map_err(env.fail(Op::namespaced(
                Verb::Create,
                Resource::AccessReviews,
                &ns,
                Some(&review.name_any()),
            )))?;
        created.push((item.name_any(), ns, review.name_any()));
    }
    let mut verdicts = Vec::new();
    for (_, ns, review) in &created {
        // The review lives beside its item, wherever that is.
        let there = Env {
            namespace: ns.clone(),
            ..env.clone()
        };
        verdicts.push(futures::FutureExt::boxed(async move {
            wait_verdict(&there, review, timeout).await
        }));
    }
    let verdicts = futures::future::join_all(verdicts).await;
    created
        .into_iter()
        .zip(verdicts)
        .map(|((item, namespace, review), verdict)| {
            Ok(report::ItemOutcome {
                item,
                namespace,
                review,
                decision: plan.decision,
                verdict: verdict?,
            })
        })
        .collect()
}

/// The items recommended Accept that wait for `me` (in `campaign`, if named):
/// what `certify approve --all-recommended` approves.
pub async fn recommended(env: &Env, campaign: Option<String>) -> Result<Vec<AccessCertification>, CliError> {
    let filter = ListItemsArgs {
        campaign,
        recommendation: Some(RecommendationArg::Accept),
        ..Default::default()
    };
    Ok(all_items(env, &ListParams::default())
        .await?
        .into_iter()
        .filter(|i| waits_for(i, &env.me) && matches(i, &filter))
        .collect())
}

async fn approve(env: &Env, a: &DecideArgs, out: &mut dyn Write) -> Result<i32, CliError> {
    let timeout = parse_timeout("timeout", &a.timeout)?;
    let plan = Plan {
        decision: Decision::Approve,
        comment: a.comment.clone(),
        reassign_to: None,
        convert_to: None,
    };
    if !a.all_recommended {
        if a.items.is_empty() {
            return Err(CliError::Invalid(
                "name the items to approve, or pass --all-recommended".into(),
            ));
        }
        return decide_all(env, &a.items, &plan, &a.timeout, out).await;
    }
    if !a.items.is_empty() {
        return Err(CliError::Invalid(
            "--all-recommended approves every item recommended Accept; name no items with it".into(),
        ));
    }
    let items = recommended(env, a.campaign.clone()).await?;
    if items.is_empty() {
        if env.output == Output::Table {
            writeln!(out, "No item recommended Accept is waiting for your decision.")?;
        }
        return Ok(super::exit::OK);
    }
    decide(env, &items, &plan, timeout, out).await
}

async fn start(env: &Env, name: &str, out: &mut dyn Write) -> Result<i32, CliError> {
    let api: Api<AccessCampaign> = Api::all(env.client.clone());
    let campaign = api
        .get(name)
        .await
        .map_err(env.fail(campaign_op(Verb::Get, name)))?;
    let now = (env.now)();
    let run = run_name(name, now);
    let taken = campaign
        .status
        .as_ref()
        .is_some_and(|s| s.runs.iter().any(|r| r.name == run));
    if taken {
        return Err(CliError::Invalid(format!(
            "run {run} already started this minute (runs are named by the minute they start in); try again in a minute"
        )));
    }
    let at = now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let patch = json!({"metadata": {"annotations": {RUN_REQUESTED_AT: at}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(env.fail(campaign_op(Verb::Patch, name)))?;
    match env.output {
        Output::Table => writeln!(
            out,
            "accesscampaign/{name}: run {run} requested at {at}; follow it with `{}` and `{}`",
            shell::join(&["kubectl", "get", "accesscampaign", name]),
            shell::join(&[
                "kubectl",
                "gatehouse",
                "certify",
                "list",
                "--campaign",
                name,
                "--run",
                &run,
                "--all"
            ])
        )?,
        fmt => emit(
            fmt,
            &json!({"campaign": name, "run": run, "requestedAt": at}),
            out,
        )?,
    }
    Ok(super::exit::OK)
}

/// A get or patch of one campaign (cluster-scoped).
fn campaign_op(verb: Verb, name: &str) -> Op {
    Op {
        verb,
        resource: Resource::AccessCampaigns,
        place: Place::Cluster,
        name: Some(name.to_string()),
    }
}

async fn report_cmd(
    env: &Env,
    a: &ReportArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<i32, CliError> {
    let text = report_text(env, &a.campaign, a.run.clone(), env.output).await?;
    out.write_all(text.as_bytes())?;
    // The digest goes to stderr, so stdout is exactly the bytes it is the digest of.
    writeln!(
        err,
        "SHA-256 of the report: {}  (check: sha256sum FILE)",
        report::sha256(text.as_bytes())
    )?;
    Ok(super::exit::OK)
}

/// The report of a campaign's run (default: its last) in `format` (CSV, JSON or
/// YAML), exactly the bytes `certify report` prints.
pub async fn report_text(
    env: &Env,
    campaign_name: &str,
    run: Option<String>,
    format: Output,
) -> Result<String, CliError> {
    let api: Api<AccessCampaign> = Api::all(env.client.clone());
    let campaign = api
        .get(campaign_name)
        .await
        .map_err(env.fail(campaign_op(Verb::Get, campaign_name)))?;
    let status = campaign.status.clone().unwrap_or_default();
    let run = run
        .or(status.last_run.clone())
        .ok_or_else(|| CliError::Invalid(format!("campaign {campaign_name} has no run yet")))?;
    let params = ListParams::default().labels(&format!(
        "{CAMPAIGN_LABEL}={},{RUN_LABEL}={}",
        label_value(campaign_name),
        label_value(&run)
    ));
    let items: Vec<AccessCertification> = all_items(env, &params)
        .await?
        .into_iter()
        // Labels are cut to 63 characters: the spec says for sure.
        .filter(|i| i.spec.campaign == campaign_name && i.spec.run == run)
        .collect();
    let mut reviews = Vec::new();
    let mut namespaces: Vec<String> = items.iter().filter_map(|i| i.namespace()).collect();
    namespaces.dedup();
    for ns in namespaces {
        let api: Api<AccessReview> = Api::namespaced(env.client.clone(), &ns);
        let list = api
            .list(&ListParams::default())
            .await
            .map_err(env.fail(Op::namespaced(Verb::List, Resource::AccessReviews, &ns, None)))?;
        reviews.extend(list.items.into_iter().filter(|r| r.spec.certification.is_some()));
    }
    let summary = status.runs.iter().find(|r| r.name == run).cloned();
    let built = report::build(&campaign, &run, summary, &items, &reviews, (env.now)());
    Ok(match format {
        Output::Csv => report::csv(&built),
        Output::Yaml => serde_saphyr::to_string(&built).map_err(|e| CliError::Output(e.to_string()))?,
        Output::Json => report::json(&built)?,
        Output::Table => {
            return Err(CliError::Invalid(
                "choose the report's format: -o csv or -o json".into(),
            ))
        }
    })
}
