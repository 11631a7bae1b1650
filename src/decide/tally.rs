//! Counting approvals against ordered stages.
//!
//! Approvals arrive in time order. Each one is usable by the stages whose
//! reviewers list the approver, or, for an escalation reviewer, by the stage that
//! was open when it arrived. Stages are filled in order; a person counts once in
//! total, so the same reviewer never satisfies two stages. An approval that came
//! in before its stage opened counts at the moment the stage opens.

use chrono::{DateTime, Utc};

use super::policy::{Rules, StagePlan};
use crate::api::StageOperator;

/// One accepted approval.
#[derive(Debug, Clone)]
pub struct Approval {
    /// Who approved.
    pub reviewer: String,
    /// The approver's groups.
    pub groups: Vec<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// For an escalation reviewer: the stage open when the approval arrived.
    pub escalated_to: Option<usize>,
}

/// How one stage stands.
#[derive(Debug, Clone, Default)]
pub struct StageTally {
    /// When the stage opened (None: not yet).
    pub opened_at: Option<DateTime<Utc>>,
    /// When it was satisfied (None: not yet).
    pub satisfied_at: Option<DateTime<Utc>>,
    /// Approvals counted for it: (index into the approvals, slot label: the group, `user:NAME`, or the escalation group).
    pub counted: Vec<(usize, String)>,
}

/// How all stages stand.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    /// Per stage.
    pub stages: Vec<StageTally>,
    /// Approvals counted toward the total (stages plus extra ones).
    pub received: u32,
    /// When the request reached quorum.
    pub approved_at: Option<DateTime<Utc>>,
}

impl Tally {
    /// The first stage that is not satisfied yet, if any.
    pub fn open_stage(&self) -> Option<usize> {
        self.stages.iter().position(|s| s.satisfied_at.is_none())
    }
}

fn eligible(stage: &StagePlan, index: usize, a: &Approval) -> bool {
    a.escalated_to == Some(index) || stage.lists(&a.reviewer, &a.groups)
}

/// Label of the slot an approval fills in an `Any` stage.
fn any_label(stage: &StagePlan, a: &Approval, escalation_groups: &[String]) -> String {
    if let Some(g) = a.groups.iter().find(|g| stage.groups.contains(g)) {
        return g.clone();
    }
    if stage.users.contains(&a.reviewer) {
        return format!("user:{}", a.reviewer);
    }
    a.groups
        .iter()
        .find(|g| escalation_groups.contains(g))
        .cloned()
        .unwrap_or_else(|| format!("user:{}", a.reviewer))
}

/// Slots of an `All` stage: each group, then each user.
fn all_slots(stage: &StagePlan) -> Vec<String> {
    stage
        .groups
        .iter()
        .cloned()
        .chain(stage.users.iter().map(|u| format!("user:{u}")))
        .collect()
}

fn fits(slot: &str, a: &Approval) -> bool {
    match slot.strip_prefix("user:") {
        Some(user) => a.reviewer == user,
        None => a.groups.iter().any(|g| g == slot),
    }
}

/// Kuhn's augmenting path: tries to give approval `a` a slot, moving others if needed.
fn augment(
    a: usize,
    approvals: &[&Approval],
    slots: &[String],
    owner: &mut [Option<usize>],
    seen: &mut [bool],
) -> bool {
    for (s, slot) in slots.iter().enumerate() {
        if seen[s] || !fits(slot, approvals[a]) {
            continue;
        }
        seen[s] = true;
        if owner[s].is_none_or(|other| augment(other, approvals, slots, owner, seen)) {
            owner[s] = Some(a);
            return true;
        }
    }
    false
}

/// Counts the approvals (in time order) against the rules' stages.
pub fn tally(rules: &Rules, created: DateTime<Utc>, approvals: &[Approval]) -> Tally {
    let escalation_groups: &[String] = rules
        .escalation
        .as_ref()
        .map(|(_, g)| g.as_slice())
        .unwrap_or_default();
    let mut used = vec![false; approvals.len()];
    let mut out = Tally::default();
    let mut opened = Some(created);
    for (i, stage) in rules.stages.iter().enumerate() {
        let mut st = StageTally {
            opened_at: opened,
            ..Default::default()
        };
        let pool: Vec<usize> = (0..approvals.len())
            .filter(|&k| !used[k] && eligible(stage, i, &approvals[k]))
            .collect();
        let required = stage.required() as usize;
        let mut last_time = None;
        match stage.operator {
            StageOperator::Any => {
                for &k in pool.iter().take(required) {
                    st.counted
                        .push((k, any_label(stage, &approvals[k], escalation_groups)));
                    last_time = Some(approvals[k].at);
                }
                if st.counted.len() < required {
                    last_time = None;
                }
            }
            StageOperator::All => {
                let slots = all_slots(stage);
                let refs: Vec<&Approval> = pool.iter().map(|&k| &approvals[k]).collect();
                let mut owner: Vec<Option<usize>> = vec![None; slots.len()];
                let mut extras: Vec<usize> = Vec::new();
                for p in 0..refs.len() {
                    let mut seen = vec![false; slots.len()];
                    if !augment(p, &refs, &slots, &mut owner, &mut seen) {
                        extras.push(p);
                    }
                    let matched = owner.iter().filter(|o| o.is_some()).count();
                    if matched == slots.len() && matched + extras.len() >= required {
                        last_time = Some(refs[p].at);
                        break;
                    }
                }
                let full = last_time.is_some();
                for (s, o) in owner.iter().enumerate() {
                    if let Some(p) = o {
                        st.counted.push((pool[*p], slots[s].clone()));
                    }
                }
                if full {
                    let needed_extra = required.saturating_sub(slots.len());
                    for &p in extras.iter().take(needed_extra) {
                        st.counted
                            .push((pool[p], any_label(stage, refs[p], escalation_groups)));
                    }
                }
                st.counted.sort_by_key(|(k, _)| *k);
            }
        }
        for (k, _) in &st.counted {
            used[*k] = true;
        }
        out.received += st.counted.len() as u32;
        st.satisfied_at = match (opened, last_time) {
            (Some(o), Some(t)) => Some(o.max(t)),
            _ => None,
        };
        opened = st.satisfied_at;
        out.stages.push(st);
    }
    // All stages done: the policy's overall minimum may still want more people.
    if let Some(done) = opened {
        let mut at = done;
        let mut missing = rules.min_approvals.saturating_sub(out.received);
        for (k, a) in approvals.iter().enumerate() {
            if missing == 0 {
                break;
            }
            let listed =
                rules.stages.iter().enumerate().any(|(i, s)| eligible(s, i, a)) || a.escalated_to.is_some();
            if !used[k] && listed {
                used[k] = true;
                out.received += 1;
                missing -= 1;
                at = at.max(a.at);
            }
        }
        if missing == 0 {
            out.approved_at = Some(at);
        }
    }
    out
}
