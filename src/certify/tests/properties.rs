//! Properties every item evaluation keeps, over random campaigns, reviews,
//! evaluation times and clusters.

use chrono::Duration;
use proptest::prelude::*;

use super::*;
use crate::{
    api::{Decision, ItemDecision, Outcome, RemediationState, ReviewVerdict},
    certify::replay::is_subject,
};

/// Reviewers: the subjects themselves (bob, a payments-devs member), owners,
/// security, the escalation group, and an outsider.
const PEOPLE: [(&str, &[&str]); 7] = [
    ("bob", &["ops-leads"]),
    ("pia", &["payments-devs", "payments-leads"]),
    ("lena", &[]),
    ("olaf", &["ops-leads", "security"]),
    ("sam", &["security"]),
    ("cleo", &["ciso"]),
    ("zed", &[]),
];

fn start() -> DateTime<Utc> {
    at("10-01 07:00")
}

prop_compose! {
    fn arb_campaign()(on_no in prop_oneof![Just("Keep"), Just("Revoke"), Just("Recommendation")],
                      justification in prop_oneof![Just("Optional"), Just("RequireForRevoke"), Just("RequireForAll")],
                      escalate in any::<bool>(), automatic in any::<bool>()) -> AccessCampaign {
        let mut spec = format!("{TWO_LEVELS}onNoDecision: {on_no}\njustification: {justification}\n");
        if escalate { spec += "escalation: {after: 96h, groups: [ciso]}\n"; }
        if automatic { spec += "remediation: Automatic\n"; }
        campaign(&spec)
    }
}

prop_compose! {
    fn arb_review()(who in 0..PEOPLE.len(),
                    decision in prop_oneof![4 => Just(Decision::Approve), 4 => Just(Decision::Revoke),
                                            1 => Just(Decision::Reassign), 1 => Just(Decision::Comment), 1 => Just(Decision::Reject)],
                    // Half-days into the run: 40 instants for up to 14 reviews, so that
                    // several reviews in the same second are common.
                    slot in 0..40i64, comment in any::<bool>(),
                    reassign_to in 0..PEOPLE.len(), convert in proptest::bool::weighted(0.1),
                    wrong_uid in proptest::bool::weighted(0.05)) -> (usize, Decision, i64, bool, usize, bool, bool) {
        (who, decision, slot * 12 * 60, comment, reassign_to, convert, wrong_uid)
    }
}

fn build(
    item: &AccessCertification,
    raw: &[(usize, Decision, i64, bool, usize, bool, bool)],
) -> Vec<AccessReview> {
    raw.iter()
        .enumerate()
        .map(|(n, (who, decision, minute, comment, to, convert, wrong_uid))| {
            let (name, groups) = PEOPLE[*who];
            let when = (start() + Duration::minutes(*minute)).to_rfc3339();
            let mut r = review(item, name, groups, *decision, &when);
            r.metadata.name = Some(format!("r{n}-{name}"));
            if *comment {
                r = commented(r, "because");
            }
            if *decision == Decision::Reassign {
                r = reassigned(r, &[PEOPLE[*to].0], &[]);
            }
            if *convert {
                r = converting(r, "payments-jit");
            }
            if *wrong_uid {
                if let Some(c) = r.spec.certification.as_mut() {
                    c.uid = "stale".into();
                }
            }
            r
        })
        .collect()
}

fn case(subject: &str, c: &AccessCampaign) -> (Inventory, AccessCertification) {
    let inv = cluster(PAYMENTS);
    let item = item_of(&launched(c, &inv), subject);
    (inv, item)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn a_subject_never_certifies_their_own_access(
        c in arb_campaign(), group in any::<bool>(),
        raw in proptest::collection::vec(arb_review(), 0..14), now in 0..(20 * 24 * 60i64),
    ) {
        let (inv, item) = case(if group { "payments-devs" } else { "bob" }, &c);
        let reviews = build(&item, &raw);
        let ev = eval(&item, &reviews, &inv, &(start() + Duration::minutes(now)).to_rfc3339());
        for rec in &ev.status.decisions {
            let who = reviews.iter().find(|x| x.name_any() == rec.review).unwrap();
            if is_subject(&item.spec.subject, &who.spec.reviewer) {
                prop_assert!(!matches!(rec.reason, ReviewVerdict::Decided | ReviewVerdict::Reassigned),
                    "{} decided on their own access: {rec:?}", who.spec.reviewer.username);
            }
        }
        for level in &ev.status.levels {
            if let Some(to) = &level.reassigned_to {
                prop_assert!(!crate::certify::replay::names_subject(&item.spec.subject, to));
            }
        }
    }

    #[test]
    fn revoked_access_is_never_remediated_before_the_last_level_decides(
        c in arb_campaign(), group in any::<bool>(),
        raw in proptest::collection::vec(arb_review(), 0..14), now in 0..(20 * 24 * 60i64),
    ) {
        let (inv, item) = case(if group { "payments-devs" } else { "bob" }, &c);
        let reviews = build(&item, &raw);
        let now = start() + Duration::minutes(now);
        let ev = eval(&item, &reviews, &inv, &now.to_rfc3339());
        let s = &ev.status;
        if s.remediation.is_some() || ev.remediate.is_some() {
            prop_assert_eq!(s.outcome, Outcome::Remove);
            let last = s.levels.last().unwrap();
            let decided_by_last = last.decision == Some(Decision::Revoke) && s.decision == ItemDecision::Revoked;
            let due = now >= item.spec.due_at && s.decision == ItemDecision::Unreviewed;
            prop_assert!(decided_by_last || due, "remediation without a final word: {s:#?}");
        }
        if s.decision == ItemDecision::Unreviewed && now < item.spec.due_at {
            prop_assert_eq!(s.outcome, Outcome::Open);
            prop_assert!(ev.remediate.is_none());
        }
    }

    #[test]
    fn nothing_is_remediated_on_a_binding_whose_uid_changed(
        c in arb_campaign(), raw in proptest::collection::vec(arb_review(), 0..14), now in 0..(20 * 24 * 60i64),
    ) {
        let (_, item) = case("bob", &c);
        let reviews = build(&item, &raw);
        let recreated = cluster(&PAYMENTS.replace("name: devs-edit, namespace", "name: devs-edit, uid: recreated, namespace"));
        let ev = eval(&item, &reviews, &recreated, &(start() + Duration::minutes(now)).to_rfc3339());
        prop_assert!(ev.remediate.is_none());
        if let Some(r) = &ev.status.remediation {
            prop_assert_eq!(r.state, RemediationState::Gone);
        }
    }

    #[test]
    fn replay_is_idempotent_and_independent_of_the_order_of_reviews(
        c in arb_campaign(), group in any::<bool>(),
        raw in proptest::collection::vec(arb_review(), 0..14), now in 0..(20 * 24 * 60i64),
        seed in any::<u64>(),
    ) {
        let (inv, item) = case(if group { "payments-devs" } else { "bob" }, &c);
        let reviews = build(&item, &raw);
        let now = (start() + Duration::minutes(now)).to_rfc3339();
        let ev = eval(&item, &reviews, &inv, &now);
        // Any order of the same reviews (same-second ones included) gives the same answer.
        let mut shuffled = reviews.clone();
        let mut state = seed | 1;
        for i in (1..shuffled.len()).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        prop_assert_eq!(&eval(&item, &shuffled, &inv, &now), &ev);
        // Evaluating again with the stored status changes nothing.
        let mut stored = item.clone();
        stored.status = Some(ev.status.clone());
        prop_assert_eq!(&eval(&stored, &reviews, &inv, &now), &ev);
    }
}
