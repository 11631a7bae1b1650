//! From a campaign's scope and the cluster at the start of a run to the run's
//! items: one AccessCertification per binding × subject, each with a
//! deterministic name and an immutable snapshot of what is reviewed.
//!
//! What is left out rests on facts a tenant cannot write ([`super::system`],
//! [`Inventory::is_gatehouse_grant`]), never on a name she chooses. A binding ×
//! subject that cannot become an item (a name longer than an item holds) is
//! skipped with its reason, and so is everything past the campaign's item cap:
//! one binding never stops a run.

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::{Resource, ResourceExt};

use super::{
    inventory::{BindingFacts, Inventory},
    naming::item_name,
    rules::{digest, effective_rules},
    schedule::RunPlan,
    system, CAMPAIGN_LABEL, DEFAULT_REVIEW_NAMESPACE, OWNERS_ANNOTATION, RUN_LABEL,
};
use crate::{
    api::{
        AccessCampaign, AccessCertification, AccessCertificationSpec, BindingKind, BindingSnapshot,
        LevelReviewers, Principal, Principals, ReviewRules, SkipReason, SkippedItem, Subject, SubjectKind,
    },
    decide::policy::selector_matches,
    labels::{label_value, CACHED_LABELS_TRUNCATED, CACHED_SUBJECTS_TRUNCATED},
};

/// Why a binding or subject is not reviewed in a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExclusionReason {
    /// Its binding kind is not in `scope.bindingKinds`.
    BindingKind,
    /// Its namespace is not in `scope.namespaces`.
    Namespace,
    /// Its role is not in `scope.roles`.
    Role,
    /// Its labels do not match `scope.bindingSelector`.
    BindingSelector,
    /// A Gatehouse JIT grant of a request that exists
    /// (`scope.includeGatehouseGrants` is false).
    GatehouseGrant,
    /// Created after the run started.
    CreatedAfterRun,
    /// One of the control plane's own identities ([`super::system`];
    /// `scope.includeSystem` is false).
    SystemIdentity,
    /// A default subject of one of the API server's bootstrap bindings
    /// ([`super::system`]; `scope.includeSystem` is false).
    BootstrapBinding,
    /// The subject kind is not in `scope.subjectKinds`.
    SubjectKind,
    /// The binding name matches this `scope.exclude.bindings` pattern.
    BindingPattern(String),
    /// The subject name matches this `scope.exclude.subjects` pattern.
    SubjectPattern(String),
}

/// A binding (and, for subject filters, a subject) left out of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exclusion {
    /// `RoleBinding ns/name` or `ClusterRoleBinding name`.
    pub binding: String,
    /// The subject, when only this subject is left out.
    pub subject: Option<Subject>,
    /// Why.
    pub reason: ExclusionReason,
}

/// The items of a run, and what was left out.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// The items to create, sorted by name (at most the campaign's item cap).
    pub items: Vec<AccessCertification>,
    /// What the scope left out, in binding order.
    pub excluded: Vec<Exclusion>,
    /// What is in scope but cannot become an item: invalid ones in binding
    /// order, then those past the cap.
    pub skipped: Vec<SkippedItem>,
    /// The cap, when the run reached it.
    pub capped: Option<u32>,
}

/// Items one run creates at most when the campaign does not say.
pub const DEFAULT_MAX_ITEMS_PER_RUN: u32 = 10_000;
/// The longest text of a skipped item's binding or subject.
const SKIP_TEXT: usize = 300;

fn cut(text: &str) -> String {
    match text.char_indices().nth(SKIP_TEXT) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_string(),
    }
}

/// A binding × subject that did not become an item.
pub fn skipped(binding: &str, subject: Option<&Subject>, reason: SkipReason, message: String) -> SkippedItem {
    SkippedItem {
        binding: cut(binding),
        subject: subject.map(|s| cut(&s.to_string())),
        reason,
        message: cut(&message),
    }
}

/// A DNS label as the item schema's namespace pattern takes it.
fn is_dns_label(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=63).contains(&b.len())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-' || *c == b'.')
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
}

/// Why the item breaks the AccessCertification schema, if it does: RBAC accepts
/// names of any length (and a ServiceAccount subject's namespace unchecked);
/// the item holds at most 253 characters of each.
pub fn invalid(spec: &AccessCertificationSpec) -> Option<String> {
    let long = |what: &str, text: &str| {
        let n = text.chars().count();
        (n == 0 || n > 253).then(|| format!("{what} is {n} characters long; an item holds 1 to 253"))
    };
    long("the subject's name", &spec.subject.name)
        .or_else(|| long("the binding's name", &spec.binding.name))
        .or_else(|| long("the role's name", &spec.role_ref.name))
        .or_else(|| match &spec.subject.namespace {
            Some(ns) if !is_dns_label(ns) => Some(format!(
                "the ServiceAccount's namespace {:?} is not a namespace name",
                cut(ns)
            )),
            _ => None,
        })
}

/// Whether `text` matches `pattern`, where `*` matches any run of characters.
pub fn glob(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    let [first, middle @ .., last] = parts.as_slice() else {
        return pattern == text;
    };
    if parts.len() == 1 {
        return pattern == text;
    }
    let Some(mut rest) = text.strip_prefix(first) else {
        return false;
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// The subject's name as exclude patterns see it: a ServiceAccount as `namespace/name`.
pub fn pattern_name(subject: &Subject) -> String {
    match (&subject.kind, &subject.namespace) {
        (SubjectKind::ServiceAccount, Some(ns)) => format!("{ns}/{}", subject.name),
        _ => subject.name.clone(),
    }
}

/// Why the whole binding is out of scope, if it is.
fn binding_excluded(
    campaign: &AccessCampaign,
    run: &RunPlan,
    inv: &Inventory,
    b: &BindingFacts,
) -> Option<ExclusionReason> {
    let scope = &campaign.spec.scope;
    if !scope.binding_kinds.is_empty() && !scope.binding_kinds.contains(&b.kind) {
        return Some(ExclusionReason::BindingKind);
    }
    if b.created.is_some_and(|c| c > run.started_at) {
        return Some(ExclusionReason::CreatedAfterRun);
    }
    if !scope.include_gatehouse_grants && inv.is_gatehouse_grant(b) {
        return Some(ExclusionReason::GatehouseGrant);
    }
    if let Some(p) = scope.exclude.bindings.iter().find(|p| glob(p, &b.name)) {
        return Some(ExclusionReason::BindingPattern(p.clone()));
    }
    if let (Some(filter), BindingKind::RoleBinding, Some(ns)) = (&scope.namespaces, b.kind, &b.namespace) {
        let labels = inv.namespace(ns).map(|n| n.labels.clone()).unwrap_or_default();
        let by_name = filter.names.contains(ns);
        let by_label = filter
            .selector
            .as_ref()
            .is_some_and(|s| selector_matches(s, &labels));
        if !by_name && !by_label {
            return Some(ExclusionReason::Namespace);
        }
    }
    if !scope.roles.is_empty() && !scope.roles.contains(&b.role) {
        return Some(ExclusionReason::Role);
    }
    if let Some(sel) = &scope.binding_selector {
        if !selector_matches(sel, &b.labels) {
            return Some(ExclusionReason::BindingSelector);
        }
    }
    None
}

/// Why this subject of an in-scope binding is left out, if it is.
fn subject_excluded(
    campaign: &AccessCampaign,
    b: &BindingFacts,
    subject: &Subject,
) -> Option<ExclusionReason> {
    let scope = &campaign.spec.scope;
    if !scope.subject_kinds.is_empty() && !scope.subject_kinds.contains(&subject.kind) {
        return Some(ExclusionReason::SubjectKind);
    }
    let name = pattern_name(subject);
    if !scope.include_system && system::is_system_identity(subject) {
        return Some(ExclusionReason::SystemIdentity);
    }
    if !scope.include_system && system::is_bootstrap_access(b, subject) {
        return Some(ExclusionReason::BootstrapBinding);
    }
    scope
        .exclude
        .subjects
        .iter()
        .find(|p| glob(p, &name))
        .map(|p| ExclusionReason::SubjectPattern(p.clone()))
}

/// Owners from the namespace annotation: `group:NAME`, `user:NAME`, or a bare user name.
pub fn parse_owners(annotation: &str) -> Principals {
    let mut owners = Principals::default();
    for entry in annotation.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        // Anything else is taken as a user name as written.
        owners.add(Principal::parse(entry).unwrap_or_else(|| Principal::User(entry.to_string())));
    }
    owners
}

fn review_rules(campaign: &AccessCampaign, inv: &Inventory, b: &BindingFacts) -> ReviewRules {
    let owners = b
        .namespace
        .as_deref()
        .and_then(|ns| inv.namespace(ns))
        .and_then(|n| n.annotations.get(OWNERS_ANNOTATION))
        .map(|a| parse_owners(a))
        .unwrap_or_default();
    let spec = &campaign.spec;
    ReviewRules {
        levels: spec
            .reviewers
            .levels
            .iter()
            .map(|l| LevelReviewers {
                name: l.name.clone(),
                reviewers: Principals {
                    groups: l.groups.clone(),
                    users: l.users.clone(),
                },
                namespace_owners: if l.namespace_owners {
                    owners.clone()
                } else {
                    Principals::default()
                },
            })
            .collect(),
        justification: spec.justification,
        escalation: spec.escalation.clone(),
        on_no_decision: spec.on_no_decision,
        remediation: spec.remediation,
        remove_protected: spec.remove_protected.clone(),
        unused_for: spec.recommendation.as_ref().and_then(|r| r.unused_for.clone()),
    }
}

fn item(
    campaign: &AccessCampaign,
    run: &RunPlan,
    inv: &Inventory,
    b: &BindingFacts,
    subject: &Subject,
) -> AccessCertification {
    let digest = effective_rules(inv, &b.role, b.namespace.as_deref())
        .map(|r| digest(&r))
        .unwrap_or_else(|| "none".into());
    let labels = BTreeMap::from([
        (CAMPAIGN_LABEL.to_string(), label_value(&campaign.name_any())),
        (RUN_LABEL.to_string(), label_value(&run.name)),
    ]);
    AccessCertification {
        metadata: ObjectMeta {
            name: Some(item_name(&run.name, b, subject)),
            namespace: Some(
                campaign
                    .spec
                    .review_namespace
                    .clone()
                    .unwrap_or_else(|| DEFAULT_REVIEW_NAMESPACE.to_string()),
            ),
            labels: Some(labels),
            // Deleting the campaign deletes its items (a namespaced object may
            // have a cluster-scoped owner).
            owner_references: campaign.controller_owner_ref(&()).map(|o| vec![o]),
            ..Default::default()
        },
        spec: AccessCertificationSpec {
            campaign: campaign.name_any(),
            run: run.name.clone(),
            started_at: run.started_at,
            due_at: run.due_at,
            binding: BindingSnapshot {
                kind: b.kind,
                namespace: b.namespace.clone(),
                name: b.name.clone(),
                uid: b.uid.clone(),
                created_at: b.created,
            },
            subject: subject.clone(),
            role_ref: b.role.clone(),
            rules_digest: digest,
            review: review_rules(campaign, inv, b),
        },
        status: None,
    }
}

/// Why the operator's memory holds only part of the binding (it marks its copy:
/// `store::trim`), if it does. A file given to `simulate` is never cut.
pub fn held_in_part(b: &BindingFacts) -> Option<String> {
    if let Some(n) = b.annotations.get(CACHED_SUBJECTS_TRUNCATED) {
        return Some(format!(
            "it has {n} subjects, more than the {MAX_HELD_SUBJECTS} the operator holds of a binding: review it by hand"
        ));
    }
    b.annotations
        .get(CACHED_LABELS_TRUNCATED)
        .map(|n| format!("its labels are {n} bytes, more than the operator holds: review it by hand"))
}

/// Subjects of a binding the operator holds in memory (`store::trim`).
pub const MAX_HELD_SUBJECTS: usize = 256;

/// The items of a run over the inventory as it was when the run started.
pub fn launch(campaign: &AccessCampaign, run: &RunPlan, inv: &Inventory) -> Launch {
    let mut out = Launch::default();
    for b in &inv.bindings {
        if let Some(reason) = binding_excluded(campaign, run, inv, b) {
            out.excluded.push(Exclusion {
                binding: b.describe(),
                subject: None,
                reason,
            });
            continue;
        }
        if let Some(why) = held_in_part(b) {
            out.skipped
                .push(skipped(&b.describe(), None, SkipReason::TooLarge, why));
            continue;
        }
        let mut seen = Vec::new();
        for subject in &b.subjects {
            // A subject listed twice is one access: one item.
            if seen.contains(&subject) {
                continue;
            }
            seen.push(subject);
            match subject_excluded(campaign, b, subject) {
                Some(reason) => out.excluded.push(Exclusion {
                    binding: b.describe(),
                    subject: Some(subject.clone()),
                    reason,
                }),
                None => {
                    let item = item(campaign, run, inv, b, subject);
                    match invalid(&item.spec) {
                        Some(why) => {
                            out.skipped
                                .push(skipped(&b.describe(), Some(subject), SkipReason::Invalid, why))
                        }
                        None => out.items.push(item),
                    }
                }
            }
        }
    }
    out.items.sort_by_key(|i| i.name_any());
    let cap = campaign
        .spec
        .max_items_per_run
        .unwrap_or(DEFAULT_MAX_ITEMS_PER_RUN)
        .max(1);
    let keep = usize::try_from(cap).unwrap_or(usize::MAX);
    if out.items.len() > keep {
        out.capped = Some(cap);
        for over in out.items.split_off(keep) {
            let s = &over.spec;
            let binding = s.binding.to_string();
            let why = format!("the run reached spec.maxItemsPerRun ({cap})");
            out.skipped
                .push(skipped(&binding, Some(&s.subject), SkipReason::ItemCap, why));
        }
    }
    out
}
