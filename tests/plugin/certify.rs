//! `kubectl gatehouse certify` against the fake API server: which items
//! wait for whom, decisions as AccessReviews (one per item, pinned to its uid,
//! with every group of the reviewer), on-demand runs, and the audit report. The
//! operator is not running: tests write the item statuses it would.

use gatehouse::{
    api::{AccessCampaign, AccessCertification},
    cli::certify_report,
};
use serde_json::Value;

use super::*;

const NS: &str = "gatehouse-system";
const RUN: &str = "quarterly-20261001-0700";

fn now() -> DateTime<Utc> {
    "2026-10-03T10:30:00Z".parse().unwrap()
}

/// Sam reviews at the security level.
fn sam() -> Identity {
    Identity {
        username: "sam".into(),
        groups: vec!["security".into(), "system:authenticated".into()],
    }
}

/// Lena owns the payments namespace, and is in payments-devs herself.
fn lena() -> Identity {
    Identity {
        username: "lena".into(),
        groups: vec![
            "payments-leads".into(),
            "payments-devs".into(),
            "system:authenticated".into(),
        ],
    }
}

fn env(client: &Client, me: Identity, output: Output) -> Env {
    Env {
        client: client.clone(),
        watch_client: client.clone(),
        me,
        namespace: "default".into(),
        output,
        server: "https://fake.invalid".into(),
        persona: Persona::Reviewer,
        operator_grace: StdDuration::from_secs(10),
        now,
    }
}

/// An item of the quarterly run, with the status the operator would write:
/// open at `level`, reviewable by `reviewers`.
fn item(name: &str, subject: Value, recommendation: &str, risk: &[&str], reviewers: Value) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
        "metadata": {"name": name, "namespace": NS, "uid": format!("uid-{name}"),
                     "labels": {"gatehouse.dev/campaign": "quarterly", "gatehouse.dev/run": RUN}},
        "spec": {
            "campaign": "quarterly", "run": RUN,
            "startedAt": "2026-10-01T07:00:00Z", "dueAt": "2026-10-15T07:00:00Z",
            "binding": {"kind": "RoleBinding", "namespace": "payments", "name": "devs-edit", "uid": "uid-devs-edit"},
            "subject": subject,
            "roleRef": {"kind": "ClusterRole", "name": "edit"},
            "rulesDigest": "fnv64:0", "review": {"levels": [{"name": "owners"}, {"name": "security"}]}
        },
        "status": {
            "decision": "Unreviewed", "outcome": "Open", "recommendation": recommendation,
            "risk": risk.iter().map(|r| match *r {"secrets" => "SecretsRead", other => other}).collect::<Vec<_>>(),
            "riskSummary": risk.join(","),
            "reviewers": reviewers,
            "levels": [{"name": "owners", "state": "Decided", "decision": "Approve", "reviewedBy": "lena"},
                       {"name": "security", "state": "Open"}]
        }
    })
}

fn user(name: &str) -> Value {
    json!({"kind": "User", "name": name})
}

async fn seed(client: &Client, objects: Vec<Value>) {
    let api: Api<AccessCertification> = Api::namespaced(client.clone(), NS);
    for o in objects {
        let mut typed: AccessCertification = serde_json::from_value(o.clone()).unwrap();
        let status = typed.status.take();
        api.create(&PostParams::default(), &typed).await.unwrap();
        api.patch_status(
            &typed.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"status": status})),
        )
        .await
        .unwrap();
    }
}

/// Three items waiting for security: bob (risky), the ci ServiceAccount (stale,
/// recommended Revoke) and dana (harmless, recommended Accept); and one for the
/// payments-devs group, which lena is in.
async fn cluster() -> Client {
    let client = fake_watch::with_watch(fake_api(vec![], Default::default()).await);
    let security = json!({"groups": ["security"]});
    seed(
        &client,
        vec![
            item(
                "q-devs-edit-bob",
                user("bob"),
                "Review",
                &["secrets"],
                security.clone(),
            ),
            item(
                "q-ci-view-ci",
                json!({"kind": "ServiceAccount", "name": "ci", "namespace": "payments"}),
                "Revoke",
                &[],
                security.clone(),
            ),
            item("q-devs-edit-dana", user("dana"), "Accept", &[], security),
            item(
                "q-devs-edit-payments-devs",
                json!({"kind": "Group", "name": "payments-devs"}),
                "Review",
                &["secrets"],
                json!({"groups": ["payments-leads"]}),
            ),
        ],
    )
    .await;
    client
}

fn parse(args: &[&str]) -> Command {
    let mut all = vec!["kubectl-gatehouse"];
    all.extend_from_slice(args);
    Cli::try_parse_from(all).unwrap().command
}

async fn run(
    client: &Client,
    me: Identity,
    output: Output,
    args: &[&str],
) -> (Result<i32, CliError>, String) {
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let result = cli::run(&env(client, me, output), &parse(args), &mut out, &mut err).await;
    (result, String::from_utf8(out).unwrap())
}

/// sam approves every item of the quarterly campaign recommended Accept,
/// without waiting for the operator (JSON outcomes).
async fn approve_all_recommended(client: &Client) -> (Result<i32, CliError>, String) {
    run(
        client,
        sam(),
        Output::Json,
        &[
            "certify",
            "approve",
            "--all-recommended",
            "--campaign",
            "quarterly",
            "--timeout",
            "0s",
        ],
    )
    .await
}

async fn reviews(client: &Client) -> Vec<AccessReview> {
    let api: Api<AccessReview> = Api::namespaced(client.clone(), NS);
    let mut all = api.list(&ListParams::default()).await.unwrap().items;
    all.sort_by_key(|r| r.spec.certification.as_ref().map(|c| c.name.clone()));
    all
}

#[tokio::test]
async fn list_shows_what_waits_for_me_with_risk_and_recommendation() {
    let client = cluster().await;
    let (code, out) = run(&client, sam(), Output::Table, &["certify", "list"]).await;
    assert_eq!(code.unwrap(), exit::OK);
    assert!(out.starts_with("ITEM "), "{out}");
    for name in ["q-devs-edit-bob", "q-ci-view-ci", "q-devs-edit-dana"] {
        assert!(out.contains(name), "{name}: {out}");
    }
    assert!(
        !out.contains("q-devs-edit-payments-devs"),
        "not sam's level: {out}"
    );
    let bob = out.lines().find(|l| l.starts_with("q-devs-edit-bob")).unwrap();
    for cell in [
        "User bob",
        "ClusterRole/edit",
        "payments/devs-edit",
        "secrets",
        "Review",
        "security",
        "11d20h",
    ] {
        assert!(bob.contains(cell), "{cell}: {bob}");
    }

    // Lena reviews for payments-leads, but she is in payments-devs: the group's own
    // access is not hers to certify, so it is not listed for her.
    let (_, out) = run(&client, lena(), Output::Table, &["certify", "list"]).await;
    assert_eq!(out, "No certification items waiting for your decision.\n");

    // Filters, as in Okta's: risk, recommendation, subject, decision; --all for everything.
    let names = |out: &str| -> Vec<String> {
        out.lines()
            .skip(1)
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let (_, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--risk", "secrets"],
    )
    .await;
    assert_eq!(names(&out), ["q-devs-edit-bob"]);
    let (_, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--recommendation", "revoke"],
    )
    .await;
    assert_eq!(names(&out), ["q-ci-view-ci"]);
    let (_, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--all", "--subject", "payments"],
    )
    .await;
    assert_eq!(names(&out), ["q-devs-edit-payments-devs"]);
    let (_, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--all", "--reviewer", "group:payments-leads"],
    )
    .await;
    assert_eq!(names(&out), ["q-devs-edit-payments-devs"]);
    let (_, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--all", "--decision", "approved"],
    )
    .await;
    assert_eq!(out.lines().count(), 1, "only the header: {out}");
    let (_, out) = run(
        &client,
        sam(),
        Output::Json,
        &["certify", "list", "--campaign", "quarterly"],
    )
    .await;
    let listed: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.len(), 3);
}

#[tokio::test]
async fn each_decision_is_a_review_of_its_own_pinned_to_the_item_with_every_group() {
    let client = cluster().await;
    let (code, out) = run(
        &client,
        sam(),
        Output::Table,
        &[
            "certify",
            "revoke",
            "q-devs-edit-bob",
            "q-ci-view-ci",
            "-m",
            "not needed",
            "--timeout",
            "0s",
        ],
    )
    .await;
    // Nobody writes verdicts here: the plugin says so and exits 5.
    assert_eq!(code.unwrap(), exit::TIMEOUT);
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("no verdict from the operator yet"), "{out}");
    let made = reviews(&client).await;
    assert_eq!(made.len(), 2);
    for r in &made {
        let c = r.spec.certification.as_ref().unwrap();
        assert_eq!(c.uid, format!("uid-{}", c.name), "pinned to the item's uid");
        assert_eq!(r.spec.decision, Decision::Revoke);
        assert_eq!(r.spec.reviewer, sam(), "every group, as admission requires");
        assert_eq!(r.spec.comment.as_deref(), Some("not needed"));
        assert!(
            r.name_any().starts_with(&format!("{}-sam-revoke-", c.name)),
            "{}",
            r.name_any()
        );
        assert!(r.spec.request.is_none());
    }

    // Reassign hands the level over, with the comment and who to.
    let (code, _) = run(
        &client,
        sam(),
        Output::Table,
        &[
            "certify",
            "reassign",
            "q-devs-edit-dana",
            "--to",
            "user:olaf",
            "--to",
            "group:ops-leads",
            "-m",
            "olaf knows dana's work",
            "--timeout",
            "0s",
        ],
    )
    .await;
    assert_eq!(code.unwrap(), exit::TIMEOUT);
    let reassign = reviews(&client)
        .await
        .into_iter()
        .find(|r| r.spec.decision == Decision::Reassign)
        .unwrap();
    let to = reassign.spec.reassign_to.unwrap();
    assert_eq!(
        (to.users, to.groups),
        (vec!["olaf".to_string()], vec!["ops-leads".to_string()])
    );
    assert!(
        Cli::try_parse_from([
            "kubectl-gatehouse",
            "certify",
            "reassign",
            "x",
            "--to",
            "user:olaf"
        ])
        .is_err(),
        "a reassignment needs a comment"
    );

    // A verdict that arrives counts: exit 0 for accepted, 4 for refused.
    let api: Api<AccessReview> = Api::namespaced(client.clone(), NS);
    let writer = {
        let api = api.clone();
        tokio::spawn(async move {
            for _ in 0..200 {
                tokio::time::sleep(StdDuration::from_millis(10)).await;
                let pending = api.list(&ListParams::default()).await.unwrap().items;
                let approval = pending
                    .iter()
                    .find(|r| r.spec.decision == Decision::Approve && r.status.is_none());
                if let Some(r) = approval {
                    let status = json!({"status": {"accepted": false, "reason": "SelfReview", "message": "dana holds this access"}});
                    api.patch_status(&r.name_any(), &PatchParams::default(), &Patch::Merge(status))
                        .await
                        .unwrap();
                    return;
                }
            }
        })
    };
    let (code, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "approve", "q-devs-edit-dana", "--timeout", "5s"],
    )
    .await;
    writer.await.unwrap();
    assert_eq!(code.unwrap(), exit::NOT_ACCEPTED, "{out}");
    assert!(out.contains("NOT accepted: dana holds this access"), "{out}");
}

#[tokio::test]
async fn all_recommended_approves_each_accept_item_waiting_for_me() {
    let client = cluster().await;
    let (code, out) = approve_all_recommended(&client).await;
    assert_eq!(code.unwrap(), exit::TIMEOUT);
    let outcomes: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(outcomes.len(), 1, "{out}");
    assert_eq!(outcomes[0]["item"], "q-devs-edit-dana");
    let made = reviews(&client).await;
    assert_eq!(made.len(), 1);
    assert_eq!(made[0].spec.decision, Decision::Approve);
    // Naming items with it is a mistake, not a wider approval.
    let (result, _) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "approve", "--all-recommended", "q-devs-edit-bob"],
    )
    .await;
    assert!(matches!(result, Err(CliError::Invalid(_))));
    let (result, _) = run(&client, sam(), Output::Table, &["certify", "approve"]).await;
    assert!(matches!(result, Err(CliError::Invalid(_))));
}

/// A status that says nothing about the risk (not assessed yet, or written
/// without it) must never read as "recommended Accept": bulk approval would
/// approve a binding nobody looked at.
#[tokio::test]
async fn an_item_without_a_recommendation_is_never_approved_as_recommended() {
    let client = cluster().await;
    let mut unassessed = item(
        "q-admins-root",
        user("root"),
        "Accept",
        &[],
        json!({"groups": ["security"]}),
    );
    unassessed["status"]
        .as_object_mut()
        .unwrap()
        .remove("recommendation");
    seed(&client, vec![unassessed]).await;

    let (code, out) = run(
        &client,
        sam(),
        Output::Table,
        &["certify", "list", "--recommendation", "accept"],
    )
    .await;
    assert_eq!(code.unwrap(), exit::OK);
    assert!(out.contains("q-devs-edit-dana"), "{out}");
    assert!(!out.contains("q-admins-root"), "not assessed, not Accept: {out}");
    let (_, all) = run(&client, sam(), Output::Table, &["certify", "list"]).await;
    let root = all.lines().find(|l| l.starts_with("q-admins-root")).unwrap();
    assert!(!root.contains("Accept"), "{root}");

    let (code, out) = approve_all_recommended(&client).await;
    assert_eq!(code.unwrap(), exit::TIMEOUT);
    let outcomes: Vec<Value> = serde_json::from_str(&out).unwrap();
    let approved: Vec<&Value> = outcomes.iter().map(|o| &o["item"]).collect();
    assert_eq!(approved, [&json!("q-devs-edit-dana")], "{out}");
}

#[tokio::test]
async fn csv_is_for_the_report_only() {
    let client = cluster().await;
    let (result, _) = run(&client, sam(), Output::Csv, &["certify", "list"]).await;
    assert!(matches!(result, Err(CliError::Invalid(m)) if m.contains("-o csv is for `certify report`")));
    let (result, _) = run(&client, sam(), Output::Csv, &["pending"]).await;
    assert!(matches!(result, Err(CliError::Invalid(_))));
}

#[test]
fn the_report_is_the_evidence_of_a_run_with_its_digest() {
    // The report command lists the run's items and their reviews; this is what it
    // makes of them (the e2e suite runs the command itself on a real cluster).
    let mut bob: AccessCertification = serde_json::from_value(item(
        "q-devs-edit-bob",
        user("bob"),
        "Review",
        &["secrets"],
        json!(null),
    ))
    .unwrap();
    let dana: AccessCertification = serde_json::from_value(item(
        "q-devs-edit-dana",
        user("dana"),
        "Accept",
        &[],
        json!({"groups": ["security"]}),
    ))
    .unwrap();
    // Bob's item, decided at both levels, the access removed.
    bob.status = Some(
        serde_json::from_value(json!({
            "decision": "Revoked", "outcome": "Remove", "closedBy": "Reviewers", "closedAt": "2026-10-03T09:00:00Z",
            "recommendation": "Review", "risk": ["SecretsRead"],
            "decisions": [
                {"review": "bob-lena", "reviewer": "lena", "decision": "Revoke", "at": "2026-10-02T09:00:00Z",
                 "level": "owners", "accepted": true, "reason": "Decided", "message": "level owners decided Revoke; level security opens"},
                {"review": "bob-sam", "reviewer": "sam", "decision": "Revoke", "at": "2026-10-03T09:00:00Z",
                 "level": "security", "accepted": true, "reason": "Decided", "message": "level security decided Revoke: final"}],
            "remediation": {"state": "Done", "action": "RemoveSubject", "message": "the operator removed User bob from RoleBinding payments/devs-edit"}
        }))
        .unwrap(),
    );
    let reviews: Vec<AccessReview> = [("bob-lena", "lena", "left the team, says \"bye\""), ("bob-sam", "sam", "agreed")]
        .iter()
        .map(|(name, who, comment)| {
            serde_json::from_value(json!({
                "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
                "metadata": {"name": name, "namespace": NS},
                "spec": {"certification": {"name": "q-devs-edit-bob", "uid": "uid-q-devs-edit-bob"}, "decision": "Revoke",
                         "reviewer": {"username": who}, "comment": comment}
            }))
            .unwrap()
        })
        .collect();
    let campaign: AccessCampaign = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign", "metadata": {"name": "quarterly"},
        "spec": {"reviewers": {"levels": [{"name": "owners", "namespaceOwners": true}]}}
    }))
    .unwrap();
    let report = certify_report::build(&campaign, RUN, None, &[dana, bob], &reviews, now());

    let csv = certify_report::csv(&report);
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert!(lines[0].starts_with("campaign,run,item,binding_kind,binding_namespace,binding,binding_uid,subject_kind,subject,role,risk,recommendation,decision,outcome,closed_by,closed_at,reviews,remediation"), "{}", lines[0]);
    assert_eq!(csv.matches(RUN).count(), 2, "one row per item, by name: {csv}");
    assert!(
        lines[1].starts_with("quarterly,quarterly-20261001-0700,q-devs-edit-bob,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].contains("ClusterRole/edit,secrets,Review,Revoked,Remove,Reviewers,2026-10-03T09:00:00Z,"),
        "{}",
        lines[1]
    );
    // The reviews cell: who, what, when, at which level, and the comment, quotes doubled.
    assert!(csv.contains("\"2026-10-02T09:00:00Z lena Revoke at level owners (counted: Decided): left the team, says \"\"bye\"\"\n2026-10-03T09:00:00Z sam Revoke at level security (counted: Decided): agreed\""), "{csv}");
    assert!(
        csv.contains(",Done,the operator removed User bob from RoleBinding payments/devs-edit,\r\n"),
        "{csv}"
    );

    let json_text = certify_report::json(&report).unwrap();
    let parsed: Value = serde_json::from_str(&json_text).unwrap();
    assert_eq!(parsed["run"], RUN);
    assert_eq!(parsed["items"][0]["item"], "q-devs-edit-bob");
    assert_eq!(
        parsed["items"][0]["reviews"][0]["comment"],
        "left the team, says \"bye\""
    );
    assert_eq!(parsed["items"][0]["remediation"], "Done");
    assert_eq!(parsed["items"][1]["decision"], "Unreviewed");
    // The digest is sha256sum's, of exactly the bytes printed.
    assert_eq!(certify_report::sha256(json_text.as_bytes()).len(), 64);
    assert_ne!(
        certify_report::sha256(json_text.as_bytes()),
        certify_report::sha256(csv.as_bytes())
    );
}
