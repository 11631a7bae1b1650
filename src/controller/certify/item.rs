//! One certification item: load from memory, evaluate (the pure core), remove
//! revoked access when the operator may, record, requeue at the next deadline.

use std::{sync::Arc, time::Duration as StdDuration};

use chrono::{DateTime, Utc};
use kube::{
    runtime::{controller::Action as Requeue, events::EventType, reflector::ObjectRef},
    ResourceExt,
};
use tracing::info;

use super::{
    bindable, bounded, inventory,
    record::{self, on_binding, on_item},
    remediate::{self, Attempt, BindingAfter, Removal},
    requeue, retry_after, sooner, until, Context, Error,
};
use crate::{
    api::{
        AccessCampaign, AccessCertification, AccessCertificationStatus, AccessReview, ClosedBy,
        ConditionStatus, RemediationAction, RemediationHold, RemediationState,
    },
    certify::{
        evaluate,
        evaluate::REMEDIATED,
        issue::{issued, Issuance},
        remediation, ItemEvaluation, ItemInput,
    },
};

/// A removal the operator may not make is tried again this often (RBAC may
/// have been widened meanwhile).
const FORBIDDEN_RETRY: StdDuration = StdDuration::from_secs(600);

fn key(item: &AccessCertification) -> String {
    format!("{}/{}", item.namespace().unwrap_or_default(), item.name_any())
}

/// Failed removals back off on their own count: the reconcile that records
/// the failure succeeds.
fn removal_key(item: &AccessCertification) -> String {
    format!("remove {}", key(item))
}

/// Reconciles one AccessCertification item.
pub async fn reconcile_item(item: Arc<AccessCertification>, ctx: Arc<Context>) -> Result<Requeue, Error> {
    bounded(&ctx, &key(&item), reconcile_inner(&item, &ctx)).await
}

/// After an error: retry with backoff, never crash.
pub fn item_error_policy(item: Arc<AccessCertification>, err: &Error, ctx: Arc<Context>) -> Requeue {
    retry_after(&ctx, "AccessCertification", key(&item), err)
}

async fn reconcile_inner(item: &AccessCertification, ctx: &Context) -> Result<Requeue, Error> {
    let ns = item
        .namespace()
        .ok_or(Error::MissingField("metadata.namespace"))?;
    let now = ctx.now();
    let campaign = ctx
        .cache
        .campaigns
        .get(&ObjectRef::<AccessCampaign>::new(&item.spec.campaign));
    match issued(item, campaign.as_deref(), now) {
        Issuance::Issued => {}
        Issuance::Awaiting => return Ok(Requeue::requeue(StdDuration::from_secs(2))),
        Issuance::NotIssued(why) => {
            // A forged item decides nothing and removes nothing.
            let note = format!("ignored: {why}");
            tracing::warn!(item = %key(item), "{note}");
            on_item(ctx, item, EventType::Warning, "NotIssued", note);
            return Ok(Requeue::await_change());
        }
    }
    let reviews: Vec<AccessReview> = ctx
        .cache
        .reviews_of_item(item)
        .iter()
        .map(|r| (**r).clone())
        .collect();
    // Policies matter only to a review that converts to JIT access.
    let policies = if reviews.iter().any(|r| r.spec.convert_to.is_some()) {
        ctx.cache.policies()
    } else {
        Vec::new()
    };
    let mut inv = inventory::for_item(&ctx.cache, item);
    inv.usage = ctx.usage.as_ref().and_then(|(u, _)| u.index());
    let input = ItemInput {
        item,
        reviews: &reviews,
        policies: &policies,
        inventory: &inv,
        now,
        operator: ctx.identity.as_ref(),
    };
    let mut ev = evaluate(&input);
    let removal = pending_removal(ctx, item, &ev.status);
    let mut retry = None;
    let mut outcome = None;
    match (&removal, ev.remediate.is_some(), ctx.settings.remediation) {
        (Some(r), true, true) => match clearance(ctx, item, r).await {
            Ok(None) => {
                let (attempt, wait) =
                    remove_access(ctx, item, r, &mut ev, (&reviews, &policies, &mut inv), now).await;
                retry = wait;
                outcome = Some(attempt);
            }
            Ok(Some((hold, text))) => {
                let command = Some(remediate::command(r));
                overlay(
                    &mut ev.status,
                    RemediationState::Pending,
                    text,
                    command,
                    Some(hold),
                );
                retry = Some(FORBIDDEN_RETRY);
            }
            Err(text) => {
                let command = Some(remediate::command(r));
                overlay(&mut ev.status, RemediationState::Failed, text, command, None);
                retry = Some(ctx.failed(&removal_key(item)));
            }
        },
        (Some(r), true, false) => {
            let text = remediation::turned_off(&item.spec, action_of(r));
            overlay(
                &mut ev.status,
                RemediationState::Pending,
                text,
                Some(remediate::command(r)),
                None,
            );
        }
        (Some(r), false, _) => {
            // remediation: Manual: the core's message says what to do; add how.
            if let Some(rem) = ev.status.remediation.as_mut() {
                rem.command = Some(remediate::command(r));
            }
        }
        (None, _, _) => {}
    }
    record::verdicts(ctx, &ns, &reviews, &ev.verdicts, now).await?;
    if record::item_status(ctx, item, &ev.status).await? {
        announce(ctx, item, &ev.status, outcome.as_ref());
    }
    // With usage evidence, an open item is looked at again once per refresh, so
    // its last use shows within one flush interval.
    let usage_refresh = ctx
        .usage
        .as_ref()
        .filter(|_| ev.status.outcome == crate::api::Outcome::Open)
        .map(|(_, every)| *every);
    Ok(requeue(sooner(
        sooner(ev.next_deadline.map(|d| until(d, now)), retry),
        usage_refresh,
    )))
}

/// Makes the removal, puts what came of it into the evaluation, and says when
/// to try again if it did not work.
async fn remove_access(
    ctx: &Context,
    item: &AccessCertification,
    r: &Removal,
    ev: &mut ItemEvaluation,
    (reviews, policies, inv): (
        &[AccessReview],
        &[crate::api::AccessPolicy],
        &mut crate::certify::Inventory,
    ),
    now: DateTime<Utc>,
) -> (Attempt, Option<StdDuration>) {
    let attempt = remediate::perform(&ctx.client, r).await;
    ctx.metrics
        .certification_remediations
        .get_or_create(&crate::metrics::ResultLabel {
            result: attempt.label().into(),
        })
        .inc();
    let retry = match &attempt {
        Attempt::Removed(_) | Attempt::Deleted => {
            ctx.succeeded(&removal_key(item));
            let after = match &attempt {
                Attempt::Removed(a) => Some(a.as_ref()),
                _ => None,
            };
            replace_binding(inv, item, after);
            *ev = done(item, ev, reviews, policies, inv, now, removed_message(item, r));
            None
        }
        Attempt::Forbidden(message) => {
            // The API server's first line says who was refused what.
            let said = message.lines().next().unwrap_or_default().trim_end_matches(':');
            let text = format!(
                "revoked; the operator may not {}: Kubernetes lets it edit a binding only for a role \
                 it may bind, and {} is not among its grantable roles (the API server said: {said}); an \
                 admin removes the access with the command in `command`",
                action_words(item, r),
                item.spec.role_ref
            );
            overlay(
                &mut ev.status,
                RemediationState::Pending,
                text,
                Some(remediate::command(r)),
                None,
            );
            Some(FORBIDDEN_RETRY)
        }
        Attempt::Failed(message) => {
            let text = format!("could not remove the access: {message}; retrying");
            overlay(
                &mut ev.status,
                RemediationState::Failed,
                text,
                Some(remediate::command(r)),
                None,
            );
            Some(ctx.failed(&removal_key(item)))
        }
        // Memory catches up within moments; plan again then.
        Attempt::Stale => Some(ctx.failed(&removal_key(item))),
    };
    (attempt, retry)
}

/// What keeps the operator from making the removal itself, checked just before
/// it: it must know who it is (the core never removes its own access), and it
/// removes only what it could have granted, a role it may `bind`. Kubernetes
/// checks that for a patch but not for a delete, so the operator asks first.
/// `Err`: the question could not be answered; nothing is removed.
async fn clearance(
    ctx: &Context,
    item: &AccessCertification,
    r: &Removal,
) -> Result<Option<(RemediationHold, String)>, String> {
    let spec = &item.spec;
    if ctx.identity.is_none() {
        let text = format!(
            "revoked; the operator does not know its own identity (SelfSubjectReview failed when it started), \
             so it cannot tell whether this is its own access and removes nothing itself: an admin can {} \
             with the command in `command`",
            action_words(item, r)
        );
        return Ok(Some((RemediationHold::IdentityUnknown, text)));
    }
    match bindable::may_bind(&ctx.client, &ctx.bindable, &spec.binding, &spec.role_ref).await {
        Ok(true) => Ok(None),
        Ok(false) => Ok(Some((
            RemediationHold::RoleNotBindable,
            format!(
                "revoked; the operator may not bind {}, so it could not have granted this access and does not \
                 remove it (it removes only what it could have granted): an admin can {} with the command in `command`",
                spec.role_ref,
                action_words(item, r)
            ),
        ))),
        Err(e) => Err(format!(
            "could not ask the API server whether the operator may bind {} ({e}); nothing is removed without \
             an answer; retrying",
            spec.role_ref
        )),
    }
}

/// The removal still to make, if the item's access is to go and memory shows
/// the reviewed binding with the subject in it.
fn pending_removal(
    ctx: &Context,
    item: &AccessCertification,
    status: &AccessCertificationStatus,
) -> Option<Removal> {
    let rem = status.remediation.as_ref()?;
    if rem.state != RemediationState::Pending {
        return None;
    }
    remediate::removal(&ctx.cache, &item.spec.binding, &item.spec.subject, rem.action?)
}

fn action_words(item: &AccessCertification, r: &Removal) -> String {
    remediation::action_words(&item.spec, action_of(r))
}

fn removed_message(item: &AccessCertification, r: &Removal) -> String {
    remediation::removed(&item.spec, action_of(r))
}

fn action_of(r: &Removal) -> RemediationAction {
    match r {
        Removal::RemoveSubject { .. } => RemediationAction::RemoveSubject,
        Removal::DeleteBinding { .. } => RemediationAction::DeleteBinding,
    }
}

/// Memory with the binding as the write left it (`None`: deleted).
fn replace_binding(
    inv: &mut crate::certify::Inventory,
    item: &AccessCertification,
    after: Option<&BindingAfter>,
) {
    let b = &item.spec.binding;
    inv.bindings
        .retain(|f| !(f.kind == b.kind && f.namespace == b.namespace && f.name == b.name));
    match after {
        Some(BindingAfter::Role(rb)) => inv.add_role_binding(rb),
        Some(BindingAfter::Cluster(crb)) => inv.add_cluster_role_binding(crb),
        None => {}
    }
}

/// Evaluates again after a successful removal, with the remediation recorded
/// as done (the core keeps a done remediation done).
fn done(
    item: &AccessCertification,
    ev: &ItemEvaluation,
    reviews: &[AccessReview],
    policies: &[crate::api::AccessPolicy],
    inv: &crate::certify::Inventory,
    now: DateTime<Utc>,
    message: String,
) -> ItemEvaluation {
    let mut planned = item.clone();
    let mut status = ev.status.clone();
    if let Some(rem) = status.remediation.as_mut() {
        rem.state = RemediationState::Done;
        rem.message = message;
        rem.command = None;
    }
    planned.status = Some(status);
    evaluate(&ItemInput {
        item: &planned,
        reviews,
        policies,
        inventory: inv,
        now,
        // A done remediation stays done: who the operator is no longer matters.
        operator: None,
    })
}

/// Puts what the operator found into the remediation status and its condition.
fn overlay(
    status: &mut AccessCertificationStatus,
    state: RemediationState,
    message: String,
    command: Option<String>,
    hold: Option<RemediationHold>,
) {
    if let Some(rem) = status.remediation.as_mut() {
        rem.state = state;
        rem.message = message.clone();
        rem.command = command;
        rem.hold = hold;
    }
    if let Some(c) = status.conditions.iter_mut().find(|c| c.type_ == REMEDIATED) {
        c.status = ConditionStatus::False;
        c.reason = state.to_string();
        c.message = message;
    }
}

/// Events for what changed: the item closed, the access was removed, or
/// removing it needs someone.
fn announce(
    ctx: &Context,
    item: &AccessCertification,
    status: &AccessCertificationStatus,
    attempt: Option<&Attempt>,
) {
    let before = item.status.clone().unwrap_or_default();
    let spec = &item.spec;
    if before.closed_at.is_none() && status.closed_by == Some(ClosedBy::Reviewers) {
        let by = status
            .levels
            .last()
            .and_then(|l| l.reviewed_by.clone())
            .unwrap_or_default();
        let note = format!(
            "{} of {} through {}: {} by {by}",
            spec.subject, spec.role_ref, spec.binding.name, status.decision
        );
        info!(item = %key(item), decision = %status.decision, "item decided");
        on_item(ctx, item, EventType::Normal, "Decided", note);
    }
    let Some(rem) = status.remediation.as_ref() else {
        return;
    };
    let unchanged = before
        .remediation
        .as_ref()
        .is_some_and(|b| b.state == rem.state && b.message == rem.message);
    if unchanged {
        return;
    }
    let origin = format!(
        "certification item {}/{} (campaign {}, run {})",
        item.namespace().unwrap_or_default(),
        item.name_any(),
        spec.campaign,
        spec.run
    );
    match (rem.state, attempt) {
        (RemediationState::Done, Some(Attempt::Removed(_) | Attempt::Deleted)) => {
            info!(item = %key(item), "{}", rem.message);
            on_item(ctx, item, EventType::Normal, "AccessRemoved", rem.message.clone());
            let what = match rem.action {
                Some(RemediationAction::DeleteBinding) => "deleted this binding",
                _ => "removed a subject from this binding",
            };
            let note = format!("Gatehouse {what}: {} was revoked in {origin}", spec.subject);
            on_binding(ctx, &spec.binding, EventType::Normal, "AccessRemoved", note);
        }
        (RemediationState::Done | RemediationState::Gone, _) => {
            on_item(ctx, item, EventType::Normal, "Remediated", rem.message.clone());
        }
        (RemediationState::ManagedExternally | RemediationState::Pending, _) => {
            let (type_, reason) = match rem.state {
                RemediationState::ManagedExternally => (EventType::Warning, "ManagedExternally"),
                _ if rem.command.is_some() => (EventType::Warning, "RemediationNeedsAdmin"),
                _ => (EventType::Normal, "RemediationPending"),
            };
            on_item(ctx, item, type_, reason, rem.message.clone());
            let note = format!("{} was revoked in {origin}: {}", spec.subject, rem.message);
            on_binding(ctx, &spec.binding, type_, "AccessRevoked", note);
        }
        (RemediationState::Failed, _) => {
            on_item(
                ctx,
                item,
                EventType::Warning,
                "RemediationFailed",
                rem.message.clone(),
            );
        }
    }
}
