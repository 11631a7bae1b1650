//! Counting approvals against ordered stages.
//!
//! Approvals arrive in time order. Each one is usable by the stages whose
//! reviewers list the approver, or, for an escalation reviewer, by the stage that
//! was open when it arrived. Stages are filled in order; a person counts once in
//! total, so the same reviewer never satisfies two stages. An approval that came
//! in before its stage opened counts at the moment the stage opens.

use chrono::{DateTime, Utc};

use super::policy::{Rules, StagePlan};
use crate::api::{Principal, StageOperator};

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
    /// Approvals counted for it: (index into the approvals, the slot it fills: a
    /// group or user of the stage, or the escalation group).
    pub counted: Vec<(usize, Principal)>,
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

/// The slot an approval fills in an `Any` stage.
fn any_label(stage: &StagePlan, a: &Approval, escalation_groups: &[String]) -> Principal {
    if let Some(g) = a.groups.iter().find(|g| stage.groups.contains(g)) {
        return Principal::Group(g.clone());
    }
    if stage.users.contains(&a.reviewer) {
        return Principal::User(a.reviewer.clone());
    }
    a.groups
        .iter()
        .find(|g| escalation_groups.contains(g))
        .map(|g| Principal::Group(g.clone()))
        .unwrap_or_else(|| Principal::User(a.reviewer.clone()))
}

/// Slots of an `All` stage: each group, then each user.
pub(super) fn all_slots(stage: &StagePlan) -> Vec<Principal> {
    let groups = stage.groups.iter().cloned().map(Principal::Group);
    groups
        .chain(stage.users.iter().cloned().map(Principal::User))
        .collect()
}

fn fits(slot: &Principal, a: &Approval) -> bool {
    match slot {
        Principal::User(user) => &a.reviewer == user,
        Principal::Group(group) => a.groups.contains(group),
    }
}

/// Kuhn's augmenting path: tries to give approval `a` a slot, moving others if needed.
fn augment(
    a: usize,
    approvals: &[&Approval],
    slots: &[Principal],
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

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;

    fn t(min: i64) -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse::<DateTime<Utc>>().unwrap() + Duration::minutes(min)
    }

    fn stage(name: &str, groups: &[&str], users: &[&str], operator: StageOperator, min: u32) -> StagePlan {
        StagePlan {
            name: name.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            users: users.iter().map(|u| u.to_string()).collect(),
            operator,
            min_approvals: min,
        }
    }

    fn rules(stages: Vec<StagePlan>, min_approvals: u32) -> Rules {
        Rules {
            policy: "p".into(),
            duration: Duration::hours(1),
            explicit_stages: stages.len() > 1,
            stages,
            min_approvals,
            force_groups: vec![],
            allow_self_approval: false,
            timeout: None,
            escalation: None,
            justification: crate::api::Justification::Optional,
            window: None,
            auto_approved: false,
            max_active: None,
            retention: Duration::hours(720),
        }
    }

    fn by(who: &str, groups: &[&str], min: i64) -> Approval {
        Approval {
            reviewer: who.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            at: t(min),
            escalated_to: None,
        }
    }

    #[test]
    fn an_any_stage_is_satisfied_by_its_nth_eligible_approval() {
        let r = rules(vec![stage("default", &["sre"], &[], StageOperator::Any, 2)], 1);
        let approvals = [
            by("erin", &["sre"], 1),
            by("mia", &["dev"], 2),
            by("hank", &["sre"], 3),
        ];
        let tally = tally(&r, t(0), &approvals);
        assert_eq!(tally.received, 2, "mia is not a reviewer");
        assert_eq!(tally.stages[0].satisfied_at, Some(t(3)));
        assert_eq!(tally.approved_at, Some(t(3)));
        assert_eq!(tally.open_stage(), None);
    }

    #[test]
    fn an_all_stage_needs_every_group_and_one_person_fills_one_slot() {
        let r = rules(
            vec![stage("default", &["sre", "security"], &[], StageOperator::All, 1)],
            1,
        );
        // erin is in both groups: she fills one slot only, so security still waits.
        let partial = [by("erin", &["sre", "security"], 1)];
        let tally1 = tally(&r, t(0), &partial);
        assert_eq!(tally1.approved_at, None);
        assert_eq!(tally1.open_stage(), Some(0));
        // A second person of either group completes it; the matching moves erin if needed.
        let done = [by("erin", &["sre", "security"], 1), by("carol", &["sre"], 4)];
        let tally2 = tally(&r, t(0), &done);
        assert_eq!(tally2.approved_at, Some(t(4)));
        let mut labels: Vec<String> = tally2.stages[0]
            .counted
            .iter()
            .map(|(_, l)| l.to_string())
            .collect();
        labels.sort();
        assert_eq!(labels, ["group:security", "group:sre"]);
    }

    #[test]
    fn a_later_stage_opens_when_the_earlier_is_satisfied_and_early_approvals_count_then() {
        let r = rules(
            vec![
                stage("team", &["leads"], &[], StageOperator::Any, 1),
                stage("security", &["security"], &[], StageOperator::Any, 1),
            ],
            1,
        );
        // carol (security) approves at 10:01, before the team lead at 10:05.
        let approvals = [by("carol", &["security"], 1), by("ivan", &["leads"], 5)];
        let tally = tally(&r, t(0), &approvals);
        assert_eq!(tally.stages[0].satisfied_at, Some(t(5)));
        assert_eq!(tally.stages[1].opened_at, Some(t(5)));
        assert_eq!(
            tally.stages[1].satisfied_at,
            Some(t(5)),
            "carol's approval counts when the stage opens"
        );
        assert_eq!(tally.approved_at, Some(t(5)));
    }

    #[test]
    fn one_person_counts_for_one_stage_only() {
        let r = rules(
            vec![
                stage("first", &["sre"], &[], StageOperator::Any, 1),
                stage("second", &["sre"], &[], StageOperator::Any, 1),
            ],
            1,
        );
        let one = [by("erin", &["sre"], 1)];
        assert_eq!(tally(&r, t(0), &one).approved_at, None);
        let two = [by("erin", &["sre"], 1), by("hank", &["sre"], 2)];
        assert_eq!(tally(&r, t(0), &two).approved_at, Some(t(2)));
    }

    #[test]
    fn the_overall_minimum_asks_for_more_people_after_the_stages() {
        let r = rules(
            vec![stage("default", &["sre"], &["mia"], StageOperator::Any, 1)],
            3,
        );
        let approvals = [by("erin", &["sre"], 1), by("mia", &[], 2)];
        let tally1 = tally(&r, t(0), &approvals);
        assert_eq!((tally1.received, tally1.approved_at), (2, None));
        let more = [
            by("erin", &["sre"], 1),
            by("mia", &[], 2),
            by("hank", &["sre"], 7),
        ];
        let tally2 = tally(&r, t(0), &more);
        assert_eq!((tally2.received, tally2.approved_at), (3, Some(t(7))));
    }

    #[test]
    fn an_escalation_reviewer_counts_for_the_stage_open_when_they_approved() {
        let mut r = rules(vec![stage("default", &["sre"], &[], StageOperator::Any, 1)], 1);
        r.escalation = Some((Duration::minutes(30), vec!["managers".into()]));
        let mut boss = by("olga", &["managers"], 40);
        assert_eq!(
            tally(&r, t(0), std::slice::from_ref(&boss)).approved_at,
            None,
            "not escalated to a stage"
        );
        boss.escalated_to = Some(0);
        let tally = tally(&r, t(0), &[boss]);
        assert_eq!(tally.approved_at, Some(t(40)));
        assert_eq!(tally.stages[0].counted[0].1, Principal::Group("managers".into()));
    }
}
