//! Usage as evidence for a recommendation: what the audit events say about one
//! item's access, and the rule that turns "unused for `recommendation.unusedFor`,
//! observed at least that long" into `Revoke`.
//!
//! The index is built once from a [`UsageBook`] (or from the persisted summaries)
//! and looked up per item. A subject whose requests were all credited to another
//! binding is not "unused": RBAC credits the first binding that matches, so this
//! binding may be what keeps the access once the other goes. That is `Review`,
//! with the other binding named.

use std::collections::HashMap;

use chrono::{DateTime, Duration, SubsecRound, Utc};

use super::assess::Assessment;
use crate::{
    api::{
        BindingSnapshot, Finding, FindingCode, GrantUsage, ItemUsage, Recommendation, Subject, SubjectKind,
    },
    usage::{BindingRef, PairKey, UsageBook},
};

/// What is known of one pair.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PairFacts {
    /// The last request credited.
    pub last_used: DateTime<Utc>,
    /// Requests within the retention.
    pub requests: u64,
    /// Most frequent actions first.
    pub top_actions: Vec<String>,
}

/// A use of a subject (or a user, as an actor) through some binding.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Elsewhere {
    binding: BindingRef,
    /// The binding's subject that matched, when it is not the item's subject
    /// (a user acting through a group's binding).
    via: Option<Subject>,
    last_used: DateTime<Utc>,
}

/// Usage evidence, indexed for items.
#[derive(Clone, Debug, Default)]
pub struct UsageIndex {
    /// Since when usage is known.
    pub observed_since: Option<DateTime<Utc>>,
    pairs: HashMap<PairKey, PairFacts>,
    /// Per subject, the binding it was used through most recently.
    by_subject: HashMap<Subject, Elsewhere>,
    /// Per user name, the binding the user acted through most recently.
    by_actor: HashMap<String, Elsewhere>,
    /// Per binding, all its subjects together (what a JIT grant was used for).
    by_binding: HashMap<BindingRef, BindingUse>,
}

/// A binding's use, all subjects together.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct BindingUse {
    requests: u64,
    last_used: Option<DateTime<Utc>>,
    /// (action, weight): the pairs' ranks, merged.
    actions: Vec<(String, u64)>,
}

fn keep_latest<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Elsewhere>, key: K, e: Elsewhere) {
    use std::collections::hash_map::Entry;
    match map.entry(key) {
        Entry::Occupied(mut o) => {
            let cur = o.get();
            if (e.last_used, &e.binding) > (cur.last_used, &cur.binding) {
                o.insert(e);
            }
        }
        Entry::Vacant(v) => {
            v.insert(e);
        }
    }
}

impl UsageIndex {
    /// An empty index of evidence observed since `since`.
    pub fn observing(since: DateTime<Utc>) -> Self {
        UsageIndex {
            observed_since: Some(since),
            ..Default::default()
        }
    }

    /// The index of everything in `book`.
    pub fn from_book(book: &UsageBook) -> Self {
        let mut idx = UsageIndex {
            observed_since: book.observed_since,
            ..Default::default()
        };
        for (key, p) in book.pairs() {
            idx.add(
                key.clone(),
                PairFacts {
                    last_used: p.last_used,
                    requests: p.requests(),
                    top_actions: p
                        .actions
                        .ranked()
                        .into_iter()
                        .map(|(a, _)| a.to_string())
                        .collect(),
                },
                p.actors.ranked().into_iter().map(|(a, _)| a),
            );
        }
        idx
    }

    /// Adds one pair and the users who acted through it.
    pub fn add<'a>(&mut self, key: PairKey, facts: PairFacts, actors: impl IntoIterator<Item = &'a str>) {
        let e = Elsewhere {
            binding: key.binding.clone(),
            via: None,
            last_used: facts.last_used,
        };
        keep_latest(&mut self.by_subject, key.subject.clone(), e.clone());
        let b = self.by_binding.entry(key.binding.clone()).or_default();
        b.requests = b.requests.saturating_add(facts.requests);
        b.last_used = b.last_used.max(Some(facts.last_used));
        // Actions are ranked per pair; weigh each by the pair's requests and rank.
        let n = facts.top_actions.len() as u64;
        for (i, a) in facts.top_actions.iter().enumerate() {
            let w = facts.requests.saturating_mul(n - i as u64);
            match b.actions.iter_mut().find(|(x, _)| x == a) {
                Some(e) => e.1 = e.1.saturating_add(w),
                None => b.actions.push((a.clone(), w)),
            }
        }
        b.actions.sort_by(|x, y| y.1.cmp(&x.1).then(x.0.cmp(&y.0)));
        b.actions.truncate(8);
        for actor in actors {
            let via = (key.subject.kind != SubjectKind::User || key.subject.name != actor)
                .then(|| key.subject.clone());
            keep_latest(
                &mut self.by_actor,
                actor.to_string(),
                Elsewhere { via, ..e.clone() },
            );
        }
        self.pairs.insert(key, facts);
    }

    /// What a JIT grant's binding was used for; `None` without evidence of it.
    pub fn grant(&self, binding: &BindingRef) -> Option<GrantUsage> {
        let b = self.by_binding.get(binding)?;
        let top_actions: Vec<String> = b.actions.iter().map(|(a, _)| a.clone()).collect();
        Some(GrantUsage {
            requests: b.requests,
            last_used_at: b.last_used.map(|t| t.trunc_subsecs(0)),
            summary: grant_summary(b.requests, &top_actions),
            top_actions,
        })
    }

    /// What the evidence says of `subject`'s access through `binding` at `now`.
    pub fn judge(
        &self,
        binding: &BindingSnapshot,
        subject: &Subject,
        unused_for: Option<Duration>,
        now: DateTime<Utc>,
    ) -> Option<UsageJudgement> {
        let observed_since = self.observed_since?;
        let key = PairKey {
            binding: BindingRef {
                kind: binding.kind,
                namespace: binding.namespace.clone(),
                name: binding.name.clone(),
            },
            subject: subject.clone(),
        };
        let mut usage = ItemUsage {
            observed_since: observed_since.trunc_subsecs(0),
            ..Default::default()
        };
        if let Some(p) = self.pairs.get(&key) {
            // Whole seconds, as every other time in the status.
            usage.last_used_at = Some(p.last_used.trunc_subsecs(0));
            usage.requests = p.requests;
            usage.top_actions = p.top_actions.clone();
            let mut findings = Vec::new();
            if let Some(limit) = unused_for.filter(|l| now - p.last_used >= *l) {
                findings.push(Finding {
                    code: FindingCode::Unused,
                    risk: None,
                    message: format!(
                        "last used at {}, {} or longer ago (recommendation.unusedFor)",
                        p.last_used.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        describe(limit)
                    ),
                });
                return Some(UsageJudgement {
                    usage,
                    findings,
                    recommendation: Some(Recommendation::Revoke),
                });
            }
            return Some(UsageJudgement {
                usage,
                findings,
                recommendation: None,
            });
        }
        let elsewhere = self.by_subject.get(subject).or_else(|| match subject.kind {
            SubjectKind::User => self.by_actor.get(&subject.name),
            _ => None,
        });
        if let Some(e) = elsewhere.filter(|e| e.binding != key.binding) {
            let via = e.via.as_ref().map(|v| format!(" (as {v})")).unwrap_or_default();
            usage.used_through = Some(format!("{}{via}", e.binding));
            return Some(UsageJudgement {
                usage,
                findings: vec![Finding {
                    code: FindingCode::UsedThroughAnotherBinding,
                    risk: None,
                    message: format!(
                        "no request credited to this binding since {}, but {subject} used access through {}{via}, last at {}: RBAC credits the first binding that matches, so this one may be redundant or may be what keeps the access once the other goes",
                        observed_since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                        e.binding,
                        e.last_used.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    ),
                }],
                recommendation: Some(Recommendation::Review),
            });
        }
        let Some(limit) = unused_for else {
            return Some(UsageJudgement {
                usage,
                findings: Vec::new(),
                recommendation: None,
            });
        };
        // Evidence counts from when both the observation and the binding existed.
        let since = binding
            .created_at
            .map_or(observed_since, |c| c.max(observed_since));
        let since_text = since.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let (code, message, recommendation) = if now - since >= limit {
            (
                FindingCode::Unused,
                format!(
                    "no request credited since {since_text} (the later of the observation start and the binding's creation), {} or longer (recommendation.unusedFor)",
                    describe(limit)
                ),
                Some(Recommendation::Revoke),
            )
        } else {
            (
                FindingCode::UnusedTooShortToJudge,
                format!(
                    "no request credited since {since_text} (the later of the observation start and the binding's creation), less than {}: too short to judge (recommendation.unusedFor)",
                    describe(limit)
                ),
                None,
            )
        };
        Some(UsageJudgement {
            usage,
            findings: vec![Finding {
                code,
                risk: None,
                message,
            }],
            recommendation,
        })
    }
}

/// `used 14 times: get pods, create pods/exec` (the three most frequent actions).
pub fn grant_summary(requests: u64, top_actions: &[String]) -> String {
    let times = crate::usage::times(requests);
    match top_actions {
        [] => times,
        _ => format!(
            "{times}: {}",
            top_actions.iter().take(3).cloned().collect::<Vec<_>>().join(", ")
        ),
    }
}

/// `90d`, `36h`, `15m`, `40s`.
fn describe(d: Duration) -> String {
    let s = d.num_seconds();
    if s % 86_400 == 0 && s >= 86_400 {
        format!("{}d", s / 86_400)
    } else if s % 3600 == 0 && s >= 3600 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 && s >= 60 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

/// What usage adds to an item.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsageJudgement {
    /// The item's `status.usage`.
    pub usage: ItemUsage,
    /// Findings (unused, used elsewhere, too short to judge).
    pub findings: Vec<Finding>,
    /// The recommendation usage alone asks for, if any.
    pub recommendation: Option<Recommendation>,
}

fn rank(r: Recommendation) -> u8 {
    match r {
        Recommendation::Accept => 0,
        Recommendation::Review => 1,
        Recommendation::Revoke => 2,
    }
}

/// The assessment with usage weighed in: the stronger recommendation wins, and
/// usage findings come first (they are why); `NothingRisky` stays as the role's
/// own verdict.
pub fn weigh(mut a: Assessment, j: Option<&UsageJudgement>) -> Assessment {
    let Some(j) = j else { return a };
    if let Some(r) = j.recommendation.filter(|r| rank(*r) > rank(a.recommendation)) {
        a.recommendation = r;
    }
    let mut findings = j.findings.clone();
    findings.append(&mut a.findings);
    a.findings = findings;
    a
}
