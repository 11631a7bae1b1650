//! Every command against the fake API server.

use super::*;

#[tokio::test]
async fn request_creates_the_right_object() {
    let client = fake().await;
    let mut out = vec![];
    let (created, code) = cli::request(
        &env(&client, dana(), Output::Table),
        &request_args("view"),
        &mut out,
        &mut vec![],
    )
    .await
    .unwrap();
    assert_eq!(code, exit::OK);
    let stored = Api::<ApprovalRequest>::namespaced(client.clone(), "team")
        .get(&created.name_any())
        .await
        .unwrap();
    assert!(
        stored.name_any().starts_with("dana-view-"),
        "{}",
        stored.name_any()
    );
    assert_eq!(stored.spec.requester, dana(), "all groups are kept");
    assert_eq!(stored.spec.role.to_string(), "ClusterRole/view");
    assert_eq!(stored.spec.duration.as_deref(), Some("2h"));
    assert_eq!(stored.spec.reason.as_deref(), Some("debug checkout"));
    assert_eq!(stored.spec.scope, Scope::Namespace);
    let out = text(out);
    assert!(out.contains("created in namespace team"), "{out}");
}

#[tokio::test]
async fn request_without_a_matching_policy_says_which_policies_grant_the_role() {
    let client = fake().await;
    let mut e = env(&client, dana(), Output::Table);
    e.namespace = "prod".into();
    let err = cli::request(&e, &request_args("view"), &mut vec![], &mut vec![])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CliError::NoPolicy(_)), "{msg}");
    assert!(
        msg.contains("no AccessPolicy lets dana request ClusterRole/view in namespace prod"),
        "{msg}"
    );
    assert!(
        msg.contains("policies that grant ClusterRole/view: team-view"),
        "{msg}"
    );
    // Nothing was created.
    let left = Api::<ApprovalRequest>::all(client)
        .list(&ListParams::default())
        .await
        .unwrap();
    assert!(left.items.is_empty());
}

#[tokio::test]
async fn request_for_someone_else_needs_a_policy_that_lists_them() {
    let client = fake().await;
    let e = env(&client, dana(), Output::Table);
    let mut args = request_args("view");
    args.subject = Some("group:oncall".into());
    let err = cli::request(&e, &args, &mut vec![], &mut vec![])
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, CliError::NoPolicy(_)), "{msg}");
    assert!(
        msg.contains("AccessPolicy team-view does not let requests grant access to Group oncall")
            && msg.contains("(SubjectNotAllowed)"),
        "{msg}"
    );
    assert!(Api::<ApprovalRequest>::all(client.clone())
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .is_empty());

    let mut policy = team_view();
    policy.metadata.name = Some("oncall-view".into());
    policy.spec.requesters.groups = vec!["dev".into()];
    policy.spec.grantees.groups = vec!["oncall".into()];
    create_policy(&client, &policy).await;
    args.policy = Some("oncall-view".into());
    let mut out = vec![];
    let (created, code) = cli::request(&e, &args, &mut out, &mut vec![]).await.unwrap();
    assert_eq!(code, exit::OK);
    assert_eq!(
        created.spec.subject.as_ref().map(|s| (s.kind, s.name.as_str())),
        Some((SubjectKind::Group, "oncall"))
    );
    let out = text(out);
    assert!(out.contains("ClusterRole/view for Group oncall"), "{out}");
}

#[tokio::test]
async fn request_wait_follows_the_request_to_its_end() {
    for (phase, code) in [("Active", exit::OK), ("Rejected", exit::NOT_GRANTED)] {
        let client = fake().await;
        let mut args = request_args("view");
        args.name = Some("waiting".into());
        args.wait = true;
        let operator = operator_writes(
            &client,
            "waiting",
            100,
            json!({"status": {"phase": phase, "expiresAt": "2026-11-23T12:30:00Z"}}),
        );
        let e = env(&client, dana(), Output::Table);
        let mut out = vec![];
        let mut err = vec![];
        let (res, ()) = tokio::join!(cli::request(&e, &args, &mut out, &mut err), operator);
        let (req, got) = res.unwrap();
        assert_eq!(got, code, "{phase}");
        assert_eq!(req.status.map(|s| s.phase.to_string()).as_deref(), Some(phase));
        let out = text(out);
        if phase == "Active" {
            assert!(
                out.contains("Access granted: ClusterRole/view in namespace team, 2h left"),
                "{out}"
            );
        } else {
            assert!(out.contains("waiting ended Rejected"), "{out}");
        }
    }
}

#[tokio::test]
async fn waiting_is_one_watch_on_the_request_not_polling() {
    let front = super::fake_watch::Front::default();
    let client = front.client(fake_api(vec![], Default::default()).await);
    create_policy(&client, &team_view()).await;
    let mut args = request_args("view");
    args.name = Some("watched".into());
    args.wait = true;
    let operator = operator_writes(&client, "watched", 400, json!({"status": {"phase": "Active"}}));
    let e = env(&client, dana(), Output::Table);
    let mut out = vec![];
    let mut err = vec![];
    let (res, ()) = tokio::join!(cli::request(&e, &args, &mut out, &mut err), operator);
    assert_eq!(res.unwrap().1, exit::OK);
    // What the plugin asked about requests (the test's own patch is a PATCH).
    let asked: Vec<String> = front
        .requests()
        .into_iter()
        .filter(|r| r.contains("/approvalrequests") && !r.starts_with("PATCH"))
        .collect();
    assert_eq!(asked.len(), 3, "{asked:#?}");
    assert!(asked[0].starts_with("POST "), "{asked:#?}");
    assert!(
        asked[1].starts_with("GET ") && asked[1].contains("fieldSelector=metadata.name%3Dwatched"),
        "a list of this one request: {asked:#?}"
    );
    assert!(
        asked[2].contains("watch=true") && asked[2].contains("fieldSelector=metadata.name%3Dwatched"),
        "then a watch of it: {asked:#?}"
    );
}

#[tokio::test]
async fn request_wait_gives_up_after_its_timeout_saying_what_it_last_saw() {
    let client = fake().await;
    let mut args = request_args("view");
    args.name = Some("slow".into());
    args.wait = true;
    args.timeout = Some("300ms".into());
    // The operator marks it Pending, and nobody reviews it.
    let operator = operator_writes(&client, "slow", 50, json!({"status": {"phase": "Pending"}}));
    let e = env(&client, dana(), Output::Table);
    let mut out = vec![];
    let mut err = vec![];
    let started = std::time::Instant::now();
    let (res, ()) = tokio::join!(cli::request(&e, &args, &mut out, &mut err), operator);
    let err = res.unwrap_err();
    assert!(started.elapsed() < StdDuration::from_secs(2));
    assert_eq!(err.exit_code(), exit::TIMEOUT);
    assert_eq!(
        err.to_string(),
        "timed out after 300ms: slow is still Pending; follow it with `kubectl gatehouse status slow -n team`"
    );
    assert!(text(out).contains("slow: Pending"));
}

/// Plays the operator: writes a verdict on every review of the namespace that has none.
async fn write_verdicts(client: Client, accepted: bool, reason: &str) {
    let api: Api<AccessReview> = Api::namespaced(client, "team");
    for _ in 0..100 {
        let list = api.list(&ListParams::default()).await.unwrap();
        if let Some(r) = list.items.iter().find(|r| r.status.is_none()) {
            api.patch_status(
                &r.name_any(),
                &PatchParams::default(),
                &Patch::Merge(json!({"status": {"accepted": accepted, "reason": reason,
                    "message": format!("verdict {reason}")}})),
            )
            .await
            .unwrap();
            return;
        }
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    panic!("no review appeared");
}

#[tokio::test]
async fn approve_pins_the_uid_and_reviewer_and_reports_the_verdict() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, sam(), Output::Table);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "approve", "dana-view", "--comment", "lgtm"])
        .unwrap()
        .command;
    let mut out = vec![];
    let mut err = vec![];
    let (code, ()) = tokio::join!(
        cli::run(&e, &cmd, &mut out, &mut err),
        write_verdicts(client.clone(), true, "Accepted")
    );
    assert_eq!(code.unwrap(), exit::OK);
    let reviews = Api::<AccessReview>::namespaced(client, "team")
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(reviews.len(), 1);
    let r = &reviews[0];
    assert!(r.name_any().starts_with("dana-view-approve-"), "{}", r.name_any());
    let request = r.spec.request.as_ref().unwrap();
    assert_eq!(request.name, "dana-view");
    assert_eq!(request.uid, "uid-dana-view");
    assert_eq!(r.spec.reviewer, sam());
    assert_eq!(r.spec.decision, Decision::Approve);
    assert_eq!(r.spec.comment.as_deref(), Some("lgtm"));
    let out = text(out);
    assert!(out.contains("Accepted by the operator"), "{out}");
}

#[tokio::test]
async fn a_refused_review_exits_4_with_the_reason() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, dana(), Output::Json);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "approve", "dana-view"])
        .unwrap()
        .command;
    let mut out = vec![];
    let mut err = vec![];
    let (code, ()) = tokio::join!(
        cli::run(&e, &cmd, &mut out, &mut err),
        write_verdicts(client.clone(), false, "SelfApproval")
    );
    assert_eq!(code.unwrap(), exit::NOT_ACCEPTED);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["decision"], "Approve");
    assert_eq!(v["verdict"]["accepted"], false);
    assert_eq!(v["verdict"]["reason"], "SelfApproval");
}

#[tokio::test]
async fn verdict_wait_times_out_cleanly_without_an_operator() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    let e = env(&client, dana(), Output::Table);
    let started = std::time::Instant::now();
    let (res, out, _) = run(&e, &["cancel", "dana-view", "--timeout", "200ms"]).await;
    let err = res.unwrap_err();
    assert_eq!(err.exit_code(), exit::TIMEOUT);
    assert!(started.elapsed() < StdDuration::from_secs(3));
    let msg = err.to_string();
    assert!(
        msg.starts_with("no verdict on accessreview/dana-view-cancel-")
            && msg.contains("within 200ms: is the Gatehouse operator running? (kubectl get pods -A -l app.kubernetes.io/name=gatehouse)"),
        "{msg}"
    );
    assert!(out.starts_with("accessreview/dana-view-cancel-"), "{out}");
    // The review was still created, signed by the requester.
    let reviews = Api::<AccessReview>::namespaced(client, "team")
        .list(&ListParams::default())
        .await
        .unwrap();
    assert_eq!(reviews.items[0].spec.decision, Decision::Cancel);
    assert_eq!(reviews.items[0].spec.reviewer, dana());
}

#[tokio::test]
async fn verdict_already_written_is_reported_at_once() {
    let client = fake().await;
    let api: Api<AccessReview> = Api::namespaced(client.clone(), "team");
    let review: AccessReview = serde_json::from_value(json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "r1", "namespace": "team"},
        "spec": {"request": {"name": "x", "uid": "u"}, "decision": "Reject",
                 "reviewer": {"username": "sam"}, "comment": "no"}
    }))
    .unwrap();
    api.create(&PostParams::default(), &review).await.unwrap();
    api.patch_status(
        "r1",
        &PatchParams::default(),
        &Patch::Merge(json!({"status": {"accepted": false, "reason": "NotEligible", "message": "sam is not a reviewer"}})),
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let e = env(&client, sam(), Output::Table);
    let v = cli::wait_verdict(&e, "r1", StdDuration::from_secs(5))
        .await
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < StdDuration::from_secs(1));
    assert_eq!(
        (v.accepted, v.reason.map(|r| r.as_str())),
        (Some(false), Some("NotEligible"))
    );
}

#[tokio::test]
async fn pending_shows_only_requests_i_can_review_and_not_my_own() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    seed_request(&client, "team", "sam-view", "sam", pending_for(&["sre"])).await;
    seed_request(&client, "team", "lee-view", "lee", pending_for(&["security"])).await;
    seed_request(
        &client,
        "team",
        "kim-view",
        "kim",
        json!({"phase": "Active", "eligibleReviewers": {"groups": ["sre"]}}),
    )
    .await;
    seed_request(
        &client,
        "other",
        "ann-view",
        "ann",
        json!({"phase": "Pending", "eligibleReviewers": {"users": ["sam"]}}),
    )
    .await;

    // Access for sam himself: his approval would not count, so it is not his to review.
    seed_access_for(&client, "dana-for-sam", "sam", pending_for(&["sre"])).await;

    let e = env(&client, sam(), Output::Json);
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending"])
        .unwrap()
        .command;
    let mut out = vec![];
    assert_eq!(cli::run(&e, &cmd, &mut out, &mut vec![]).await.unwrap(), exit::OK);
    let v: Vec<ApprovalRequest> = serde_json::from_slice(&out).unwrap();
    let names: Vec<String> = v.iter().map(|r| r.name_any()).collect();
    assert_eq!(names, ["dana-view"]);

    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending", "-A"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, sam(), Output::Table), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    let out = text(out);
    assert!(out.contains("dana-view") && out.contains("ann-view"), "{out}");
    assert!(
        !out.contains("sam-view") && !out.contains("lee-view") && !out.contains("kim-view"),
        "{out}"
    );
    assert!(out.starts_with("NAMESPACE"), "{out}");

    let mut out = vec![];
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending"])
        .unwrap()
        .command;
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    assert_eq!(text(out), "No requests waiting for your review.\n");
}

/// A request of dana's in `team` for the user `subject`.
async fn seed_access_for(client: &Client, name: &str, subject: &str, status: serde_json::Value) {
    seed_request(client, "team", name, "dana", status).await;
    Api::<ApprovalRequest>::namespaced(client.clone(), "team")
        .patch(
            name,
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"subject": {"kind": "User", "name": subject}}})),
        )
        .await
        .unwrap();
}

/// Under `allowSelfApproval` the core counts the approval of whoever would
/// receive the access: `pending` must list such a request for them, as it lists
/// any other request they may approve.
#[tokio::test]
async fn pending_shows_access_for_me_when_the_policy_allows_self_approval() {
    let client = fake().await;
    let mut status = pending_for(&["sre"]);
    status["requirements"] = json!({
        "policy": "lax", "duration": "1h", "justification": "Optional", "retention": "720h",
        "approval": {"reviewers": {"groups": ["sre"]}, "allowSelfApproval": true}
    });
    seed_access_for(&client, "dana-for-sam", "sam", status.clone()).await;
    seed_request(&client, "team", "sam-view", "sam", status).await;

    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "pending"])
        .unwrap()
        .command;
    let mut out = vec![];
    let e = env(&client, sam(), Output::Json);
    assert_eq!(cli::run(&e, &cmd, &mut out, &mut vec![]).await.unwrap(), exit::OK);
    let v: Vec<ApprovalRequest> = serde_json::from_slice(&out).unwrap();
    let mut names: Vec<String> = v.iter().map(|r| r.name_any()).collect();
    names.sort();
    assert_eq!(names, ["dana-for-sam", "sam-view"]);
}

#[tokio::test]
async fn list_shows_only_my_requests() {
    let client = fake().await;
    seed_request(&client, "team", "dana-view", "dana", pending_for(&["sre"])).await;
    seed_request(&client, "team", "sam-view", "sam", pending_for(&["sre"])).await;
    seed_request(
        &client,
        "other",
        "dana-other",
        "dana",
        json!({"phase": "Expired"}),
    )
    .await;
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "list", "-A", "-o", "yaml"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Yaml), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    let v: Vec<ApprovalRequest> = serde_saphyr::from_str(&text(out)).unwrap();
    let mut names: Vec<String> = v.iter().map(|r| r.name_any()).collect();
    names.sort();
    assert_eq!(names, ["dana-other", "dana-view"]);

    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "list"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    let out = text(out);
    assert!(
        out.contains("dana-view") && !out.contains("dana-other") && !out.contains("sam-view"),
        "{out}"
    );
}

#[tokio::test]
async fn status_command_renders_the_stored_request() {
    let client = fake().await;
    let rich = rich_request();
    seed_request(
        &client,
        "team",
        "dana-view-abcde",
        "dana",
        serde_json::to_value(rich.status.unwrap()).unwrap(),
    )
    .await;
    let cmd = Cli::try_parse_from(["kubectl-gatehouse", "status", "dana-view-abcde"])
        .unwrap()
        .command;
    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Table), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    let out = text(out);
    assert!(
        out.contains("Phase:      Active") && out.contains("1h40m left"),
        "{out}"
    );
    assert!(out.contains("team-lead") && out.contains("SelfApproval"), "{out}");

    let mut out = vec![];
    cli::run(&env(&client, dana(), Output::Json), &cmd, &mut out, &mut vec![])
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["phase"], "Active");
    assert_eq!(v["timeLeft"], "1h40m");
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(2));
    assert_eq!(v["reviewGroups"][1]["reviewedBy"], "sam");
}

/// Plays the operator: after `millis`, merges `status` into the request `name`.
async fn operator_writes(client: &Client, name: &str, millis: u64, status: serde_json::Value) {
    tokio::time::sleep(StdDuration::from_millis(millis)).await;
    Api::<ApprovalRequest>::namespaced(client.clone(), "team")
        .patch_status(name, &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap();
}
