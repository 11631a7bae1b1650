//! Review replay: levels, eligibility, reassignment, justification, escalation,
//! the due time and convertTo.

use super::*;
use crate::api::{
    ClosedBy, Decision::*, ItemDecision, LevelState, Outcome, RemediationAction, ReviewVerdict,
};

const LENA: (&str, &[&str]) = ("lena", &[]);
const SAM: (&str, &[&str]) = ("sam", &["security"]);

fn payments(extra_spec: &str) -> (Inventory, AccessCertification, AccessCertification) {
    let inv = cluster(PAYMENTS);
    let l = launched(&campaign(&format!("{TWO_LEVELS}{extra_spec}")), &inv);
    (inv, item_of(&l, "bob"), item_of(&l, "payments-devs"))
}

fn by(item: &AccessCertification, who: (&str, &[&str]), d: crate::api::Decision, when: &str) -> AccessReview {
    review(item, who.0, who.1, d, when)
}

#[test]
fn levels_decide_in_order_and_the_last_one_stands() {
    let (inv, bob, _) = payments("");
    let owners_keep = by(&bob, LENA, Approve, "10-02 09:00");
    let ev = eval(&bob, std::slice::from_ref(&owners_keep), &inv, "10-02 10:00");
    assert_eq!(
        ev.status.decision,
        ItemDecision::Unreviewed,
        "one level is not the final word"
    );
    assert_eq!(ev.status.outcome, Outcome::Open);
    assert_eq!(ev.status.levels[0].state, LevelState::Decided);
    assert_eq!(ev.status.levels[1].state, LevelState::Open);
    assert_eq!(ev.status.levels[1].opened_at, Some(at("10-02 09:00")));
    assert_eq!(ev.status.reviewers.as_ref().unwrap().groups, ["security"]);
    assert_eq!(ev.next_deadline, Some(at("10-15 07:00")));

    // Security sees the owners' approval and overturns it.
    let security_revokes = by(&bob, SAM, Revoke, "10-03 09:00");
    let ev = eval(
        &bob,
        &[owners_keep.clone(), security_revokes],
        &inv,
        "10-04 00:00",
    );
    assert_eq!(ev.status.decision, ItemDecision::Revoked);
    assert_eq!(ev.status.outcome, Outcome::Remove);
    assert_eq!(ev.status.closed_by, Some(ClosedBy::Reviewers));
    assert_eq!(ev.status.closed_at, Some(at("10-03 09:00")));
    assert_eq!(ev.status.levels[0].decision, Some(Approve));
    assert_eq!(ev.status.levels[1].decision, Some(Revoke));
    assert_eq!(ev.next_deadline, None);

    let security_keeps = by(&bob, SAM, Approve, "10-03 09:00");
    let ev = eval(&bob, &[owners_keep, security_keeps], &inv, "10-04 00:00");
    assert_eq!(ev.status.decision, ItemDecision::Approved);
    assert_eq!(ev.status.outcome, Outcome::Keep);
    assert!(ev.status.remediation.is_none());
}

#[test]
fn a_later_level_cannot_decide_before_its_level_opens() {
    let (inv, bob, _) = payments("");
    let early = by(&bob, SAM, Approve, "10-02 08:00");
    let owners = by(&bob, LENA, Approve, "10-02 09:00");
    let ev = eval(&bob, &[early, owners], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "sam-approve"), ReviewVerdict::NotEligible);
    assert!(ev.status.decisions[0]
        .message
        .contains("not a reviewer of level owners"));
    assert_eq!(
        ev.status.levels[1].state,
        LevelState::Open,
        "security must decide again, after the owners"
    );
}

#[test]
fn nobody_certifies_their_own_access() {
    let (inv, bob, devs) = payments("");
    // bob is in ops-leads (a level-1 group), but the item is bob's own access.
    let ev = eval(
        &bob,
        &[review(&bob, "bob", &["ops-leads"], Approve, "10-02 09:00")],
        &inv,
        "10-02 10:00",
    );
    assert_eq!(verdict(&ev, "bob-approve"), ReviewVerdict::SelfReview);
    // A member of the subject group neither.
    let member = review(
        &devs,
        "pia",
        &["payments-devs", "payments-leads"],
        Approve,
        "10-02 09:00",
    );
    let ev = eval(&devs, &[member], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "pia-approve"), ReviewVerdict::SelfReview);
    assert_eq!(ev.status.levels[0].state, LevelState::Open);
}

#[test]
fn one_person_decides_one_level_of_an_item() {
    let (inv, bob, _) = payments("");
    let first = review(&bob, "olaf", &["ops-leads", "security"], Approve, "10-02 09:00");
    let mut second = review(&bob, "olaf", &["ops-leads", "security"], Approve, "10-02 09:30");
    second.metadata.name = Some("olaf-again".into());
    let ev = eval(&bob, &[first, second], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "olaf-again"), ReviewVerdict::AlreadyDecided);
    assert_eq!(ev.status.decision, ItemDecision::Unreviewed);
}

#[test]
fn a_second_decision_in_the_same_second_is_the_one_refused() {
    let (inv, bob, _) = payments("");
    // lena's first Revoke was judged; her second, made within the same second,
    // sorts before it by name and must not take its place.
    let mut first = commented(by(&bob, LENA, Revoke, "10-02 09:00"), "left the team");
    first.metadata.name = Some("lena-revoke-x".into());
    first.status = Some(crate::api::AccessReviewStatus {
        accepted: Some(true),
        reason: Some(crate::api::ReviewReason::Approved),
        message: Some("level owners decided Revoke".into()),
        observed_at: Some(at("10-02 09:00") + chrono::Duration::milliseconds(200)),
    });
    let mut second = commented(by(&bob, LENA, Revoke, "10-02 09:00"), "again");
    second.metadata.name = Some("lena-revoke-a".into());
    let ev = eval(&bob, &[second, first], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "lena-revoke-x"), ReviewVerdict::Decided);
    assert_eq!(
        verdict(&ev, "lena-revoke-a"),
        ReviewVerdict::NotEligible,
        "level two is not hers"
    );
}

#[test]
fn reassign_hands_the_level_to_someone_else_with_a_comment() {
    let (inv, bob, _) = payments("");
    let bare = reassigned(by(&bob, LENA, Reassign, "10-02 09:00"), &["mona"], &[]);
    let ev = eval(&bob, std::slice::from_ref(&bare), &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "lena-reassign"), ReviewVerdict::CommentRequired);

    let to_bob = commented(
        reassigned(by(&bob, LENA, Reassign, "10-02 09:00"), &["bob"], &[]),
        "he knows",
    );
    let ev = eval(&bob, &[to_bob], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "lena-reassign"), ReviewVerdict::ReassignToSubject);

    let to_mona = commented(
        reassigned(by(&bob, LENA, Reassign, "10-02 09:00"), &["mona"], &[]),
        "mona runs payments now",
    );
    let lena_after = review(&bob, "lena", &[], Approve, "10-02 09:30");
    let mona = review(&bob, "mona", &[], Approve, "10-02 10:00");
    let ev = eval(&bob, &[to_mona, lena_after, mona], &inv, "10-02 11:00");
    assert_eq!(verdict(&ev, "lena-reassign"), ReviewVerdict::Reassigned);
    assert_eq!(
        verdict(&ev, "lena-approve"),
        ReviewVerdict::NotEligible,
        "the level is mona's now"
    );
    assert_eq!(verdict(&ev, "mona-approve"), ReviewVerdict::Decided);
    assert_eq!(
        ev.status.levels[0].reassigned_to.as_ref().unwrap().users,
        ["mona"]
    );
    assert_eq!(ev.status.levels[0].reviewed_by.as_deref(), Some("mona"));
}

#[test]
fn the_justification_rule_asks_for_comments() {
    let (inv, bob, _) = payments("justification: RequireForRevoke\n");
    let ev = eval(
        &bob,
        &[by(&bob, LENA, Revoke, "10-02 09:00")],
        &inv,
        "10-02 10:00",
    );
    assert_eq!(verdict(&ev, "lena-revoke"), ReviewVerdict::CommentRequired);
    let ev = eval(
        &bob,
        &[by(&bob, LENA, Approve, "10-02 09:00")],
        &inv,
        "10-02 10:00",
    );
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::Decided);

    let (inv, bob, _) = payments("justification: RequireForAll\n");
    let ev = eval(
        &bob,
        &[by(&bob, LENA, Approve, "10-02 09:00")],
        &inv,
        "10-02 10:00",
    );
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::CommentRequired);
    let ev = eval(
        &bob,
        &[commented(
            by(&bob, LENA, Approve, "10-02 09:00"),
            "still on payments",
        )],
        &inv,
        "10-02 10:00",
    );
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::Decided);
    assert_eq!(ev.status.levels[0].comment.as_deref(), Some("still on payments"));
}

#[test]
fn escalation_adds_reviewers_to_a_level_left_open() {
    let (inv, bob, _) = payments("escalation: {after: 168h, groups: [ciso]}\n");
    let too_early = review(&bob, "cleo", &["ciso"], Approve, "10-07 09:00");
    let ev = eval(&bob, std::slice::from_ref(&too_early), &inv, "10-07 10:00");
    assert_eq!(verdict(&ev, "cleo-approve"), ReviewVerdict::NotEligible);
    assert_eq!(ev.next_deadline, Some(at("10-08 07:00")), "escalation time");
    let in_time = review(&bob, "cleo", &["ciso"], Approve, "10-08 09:00");
    let ev = eval(&bob, &[in_time], &inv, "10-08 10:00");
    assert_eq!(verdict(&ev, "cleo-approve"), ReviewVerdict::Decided);
    assert_eq!(ev.status.levels[0].escalated_at, Some(at("10-08 07:00")));
    // Level 2 opened at 10-08 09:00: its escalation is a week later.
    assert_eq!(ev.next_deadline, Some(at("10-15 07:00")));
}

#[test]
fn at_the_due_time_on_no_decision_says_what_happens() {
    for (rule, outcome) in [
        ("Keep", Outcome::Keep),
        ("Revoke", Outcome::Remove),
        ("Recommendation", Outcome::Keep),
    ] {
        let (inv, bob, _) = payments(&format!("onNoDecision: {rule}\n"));
        let owners = by(&bob, LENA, Revoke, "10-02 09:00");
        let before = eval(&bob, std::slice::from_ref(&owners), &inv, "10-15 06:59");
        assert_eq!(before.status.outcome, Outcome::Open);
        assert!(
            before.status.remediation.is_none(),
            "{rule}: nothing happens before the due time"
        );
        let ev = eval(&bob, &[owners], &inv, "10-15 07:00");
        assert_eq!(ev.status.decision, ItemDecision::Unreviewed, "{rule}");
        assert_eq!(
            ev.status.outcome, outcome,
            "{rule}: bob's edit is recommended for review, not revocation"
        );
        assert_eq!(ev.status.closed_at, Some(at("10-15 07:00")));
        assert_eq!(ev.status.levels[1].state, LevelState::Expired);
        assert!(ev.status.reviewers.is_none());
    }
    // Recommendation follows a Revoke recommendation.
    let stale = format!("{PAYMENTS}---\nkind: RoleBinding\nmetadata: {{name: old, namespace: payments}}\nroleRef: {{kind: Role, name: gone}}\nsubjects: [{{kind: User, name: erin}}]\n");
    let inv = cluster(&stale);
    let erin = item_of(
        &launched(
            &campaign(&format!("{TWO_LEVELS}onNoDecision: Recommendation\n")),
            &inv,
        ),
        "erin",
    );
    let ev = eval(&erin, &[], &inv, "10-16 00:00");
    assert_eq!(ev.status.outcome, Outcome::Remove);
    assert_eq!(ev.status.closed_by, Some(ClosedBy::NoDecisionRecommendation));
    assert_eq!(
        ev.status.remediation.as_ref().unwrap().action,
        Some(RemediationAction::DeleteBinding)
    );
}

#[test]
fn reviews_after_the_due_time_or_the_final_decision_do_not_count() {
    let (inv, bob, _) = payments("");
    let late = by(&bob, LENA, Approve, "10-15 07:00");
    let ev = eval(&bob, &[late], &inv, "10-16 00:00");
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::Closed);
    let reviews = [
        by(&bob, LENA, Approve, "10-02 09:00"),
        by(&bob, SAM, Approve, "10-02 10:00"),
        review(&bob, "sue", &["security"], Revoke, "10-02 11:00"),
    ];
    let ev = eval(&bob, &reviews, &inv, "10-03 00:00");
    assert_eq!(verdict(&ev, "sue-revoke"), ReviewVerdict::Closed);
    assert_eq!(ev.status.decision, ItemDecision::Approved);
}

#[test]
fn a_review_for_an_earlier_item_of_the_same_name_does_not_count() {
    let (inv, bob, _) = payments("");
    let mut stale = by(&bob, LENA, Approve, "10-02 09:00");
    if let Some(c) = stale.spec.certification.as_mut() {
        c.uid = "uid-of-last-quarter".into();
    }
    let ev = eval(&bob, &[stale], &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::UidMismatch);
}

#[test]
fn request_decisions_do_not_apply_to_items_but_comments_are_kept() {
    let (inv, bob, _) = payments("");
    let reviews = [
        by(&bob, LENA, Reject, "10-02 09:00"),
        by(&bob, LENA, Cancel, "10-02 09:00"),
        commented(
            review(&bob, "anyone", &[], Comment, "10-02 09:00"),
            "why does bob need secrets?",
        ),
        converting(by(&bob, LENA, Approve, "10-02 09:00"), "payments-jit"),
    ];
    let ev = eval(&bob, &reviews, &inv, "10-02 10:00");
    assert_eq!(verdict(&ev, "lena-reject"), ReviewVerdict::NotApplicable);
    assert_eq!(verdict(&ev, "lena-cancel"), ReviewVerdict::NotApplicable);
    assert_eq!(verdict(&ev, "lena-approve"), ReviewVerdict::NotApplicable);
    assert_eq!(verdict(&ev, "anyone-comment"), ReviewVerdict::Commented);
    assert_eq!(ev.status.levels[0].state, LevelState::Open);
}

const JIT_POLICY: &str = r#"
requesters: {groups: [payments-devs]}
roles: [{kind: ClusterRole, name: edit}]
namespaces: {names: [payments]}
approval: {reviewers: {groups: [payments-leads]}}
"#;

fn jit_policy() -> AccessPolicy {
    let spec = serde_saphyr::from_str(JIT_POLICY).unwrap();
    AccessPolicy::new("payments-jit", spec)
}

#[test]
fn convert_to_is_accepted_only_under_a_policy_that_covers_the_access() {
    let (inv, bob, devs) = payments("");
    let policies = [jit_policy()];
    let owners = |item: &AccessCertification| by(item, LENA, Approve, "10-02 09:00");
    let convert =
        |item: &AccessCertification| converting(by(item, SAM, Revoke, "10-03 09:00"), "payments-jit");

    // payments-devs may request edit in payments: the group's binding becomes JIT access.
    let ev = eval_with(
        &devs,
        &[owners(&devs), convert(&devs)],
        &policies,
        &inv,
        "10-04 00:00",
    );
    assert_eq!(verdict(&ev, "sam-revoke"), ReviewVerdict::Decided);
    assert_eq!(ev.status.converted_to.as_deref(), Some("payments-jit"));
    assert_eq!(ev.status.outcome, Outcome::Remove);

    // bob is a User: Gatehouse cannot see his groups, and the policy names only a group.
    let ev = eval_with(
        &bob,
        &[owners(&bob), convert(&bob)],
        &policies,
        &inv,
        "10-04 00:00",
    );
    assert_eq!(verdict(&ev, "sam-revoke"), ReviewVerdict::ConversionRefused);
    let message = &ev.status.decisions[1].message;
    assert!(message.contains("does not allow user \"bob\""), "{message}");
    assert_eq!(ev.status.decision, ItemDecision::Unreviewed);

    // A policy that does not exist, or does not cover the namespace, is refused.
    let ev = eval_with(&devs, &[owners(&devs), convert(&devs)], &[], &inv, "10-04 00:00");
    assert_eq!(verdict(&ev, "sam-revoke"), ReviewVerdict::ConversionRefused);
    let mut elsewhere = jit_policy();
    elsewhere.spec.namespaces.names = vec!["checkout".into()];
    let ev = eval_with(
        &devs,
        &[owners(&devs), convert(&devs)],
        &[elsewhere],
        &inv,
        "10-04 00:00",
    );
    assert!(
        ev.status.decisions[1].message.contains("namespace payments"),
        "{:?}",
        ev.status.decisions[1]
    );
}

/// Anyone who may file a review can file thousands (a wrong uid is enough to be
/// recorded). At 10,000 with long names the status stays far below etcd's
/// 1.5 MiB object limit, keeps what decided the item, counts the rest, and the
/// reviewers still decide.
#[test]
fn ten_thousand_ignored_reviews_keep_the_status_small_and_the_item_decidable() {
    let (inv, bob, _) = payments("");
    let long = "x".repeat(230);
    let mut reviews: Vec<AccessReview> = (0..10_000)
        .map(|n| {
            let mut r = commented(
                by(&bob, ("mallory", &["developers"]), Approve, "10-02 08:00"),
                &"c".repeat(1000),
            );
            r.metadata.name = Some(format!("{long}-{n:05}"));
            r.spec.reviewer.username = format!("mallory-{long}");
            r.spec.certification.as_mut().unwrap().uid = "not-the-items-uid".into();
            r
        })
        .collect();
    reviews.push(by(&bob, LENA, Approve, "10-02 09:00"));
    reviews.push(by(&bob, SAM, Approve, "10-03 09:00"));
    let ev = eval(&bob, &reviews, &inv, "10-04 00:00");
    let s = &ev.status;
    assert_eq!(s.decision, ItemDecision::Approved, "the reviewers still decide");
    assert_eq!(s.ignored_reviews, 10_000);
    assert_eq!(s.omitted_reviews, 10_000 - 20);
    assert_eq!(
        s.decisions.len(),
        22,
        "both decisions and the 20 most recent others"
    );
    assert!(s.decisions.iter().filter(|d| d.accepted).count() == 2);
    let size = serde_json::to_vec(s).unwrap().len();
    assert!(size < 64 * 1024, "the status is {size} bytes");
    assert_eq!(ev.verdicts.len(), 10_002, "every review still gets its verdict");
}

#[test]
fn a_handful_of_reviews_are_all_listed() {
    let (inv, bob, _) = payments("");
    let mut stray = by(&bob, ("mallory", &["developers"]), Approve, "10-02 08:00");
    stray.spec.certification.as_mut().unwrap().uid = "other".into();
    let reviews = [stray, by(&bob, LENA, Approve, "10-02 09:00")];
    let s = eval(&bob, &reviews, &inv, "10-04 00:00").status;
    assert_eq!(
        (s.decisions.len(), s.ignored_reviews, s.omitted_reviews),
        (2, 1, 0)
    );
    assert_eq!(s.decisions[0].reason, ReviewVerdict::UidMismatch);
}
