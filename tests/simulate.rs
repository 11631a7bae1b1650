//! `gatehouse simulate` as users run it: the binary on files.

use std::{path::PathBuf, process::Command};

use serde_json::Value;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn gatehouse(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn json_at(now: &str) -> Value {
    let (ok, out, err) = gatehouse(&["simulate", "examples/", "--now", now, "--output", "json"]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn status<'a>(report: &'a Value, name: &str) -> &'a Value {
    let r = report["requests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name);
    &r.unwrap_or_else(|| panic!("no request {name} in {report:#}"))["status"]
}

#[test]
fn the_examples_tell_the_documented_story_at_noon() {
    let report = json_at("2026-11-23T12:00:00Z");
    assert_eq!(report["requests"].as_array().unwrap().len(), 11);
    let phase = |n: &str| status(&report, n)["phase"].as_str().unwrap().to_string();
    assert_eq!(phase("dana-view"), "Active");
    assert_eq!(
        status(&report, "dana-view")["grant"]["expiresAt"],
        "2026-11-23T13:05:00Z"
    );
    assert_eq!(phase("frank-view"), "Pending");
    assert_eq!(
        status(&report, "frank-view")["decisions"][0]["reason"],
        "SelfApproval"
    );
    assert_eq!(phase("gina-edit"), "Active");
    assert_eq!(status(&report, "gina-edit")["approvals"]["summary"], "3/3");
    assert_eq!(
        status(&report, "gina-edit")["stages"][1]["openedAt"],
        "2026-11-23T10:05:00Z"
    );
    assert_eq!(phase("kim-edit"), "Rejected");
    assert_eq!(phase("leo-edit"), "Expired");
    assert_eq!(
        status(&report, "leo-edit")["grant"]["grantedAt"],
        "2026-11-23T07:00:00Z",
        "Berlin window opened at 08:00"
    );
    assert_eq!(phase("nina-view"), "TimedOut");
    assert_eq!(phase("oscar-edit"), "Denied");
    assert_eq!(phase("pat-view"), "Active");
    assert_eq!(status(&report, "pat-view")["requirements"]["autoApproved"], true);
}

#[test]
fn one_time_jobs_show_processing_executed_and_deadline_exceeded() {
    let report = json_at("2026-11-23T12:00:00Z");
    let rosa = status(&report, "rosa-report");
    assert_eq!(rosa["phase"], "Processing");
    assert_eq!(
        rosa["job"]["state"], "Starting",
        "no Job document: the operator creates it now"
    );
    assert_eq!(rosa["job"]["deadline"], "2026-11-23T12:45:00Z");
    assert!(rosa["job"]["name"]
        .as_str()
        .unwrap()
        .starts_with("gatehouse-rosa-report-"));

    let sam = status(&report, "sam-export");
    assert_eq!(sam["phase"], "Executed");
    assert_eq!(
        sam["completedAt"], "2026-11-23T11:22:00Z",
        "when the Job completed"
    );
    assert_eq!(sam["job"]["uid"], "7c1d2e3f-0010-4a5b-9c6d-000000000010");
    assert_eq!(sam["job"]["state"], "Succeeded");
    assert_eq!(sam["grant"]["revokedAt"], "2026-11-23T11:22:00Z");

    let tom = status(&report, "tom-dump");
    assert_eq!(tom["phase"], "Failed");
    let complete = tom["conditions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "Complete")
        .unwrap();
    assert_eq!(complete["reason"], "DeadlineExceeded");
    assert_eq!(tom["job"]["state"], "Stopped");
    assert_eq!(tom["completedAt"], "2026-11-23T11:05:00Z");

    // Before the Job document says it completed, the same job is still running.
    let earlier = json_at("2026-11-23T11:20:00Z");
    let sam = status(&earlier, "sam-export");
    assert_eq!(sam["phase"], "Processing");
    assert_eq!(sam["job"]["state"], "Running");
}

#[test]
fn before_the_berlin_window_opens_the_forced_request_waits_approved() {
    let report = json_at("2026-11-23T06:45:00Z");
    let requests = report["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "only leo-edit exists at 06:45");
    assert_eq!(status(&report, "leo-edit")["phase"], "Approved");
    let groups = status(&report, "leo-edit")["reviewGroups"].as_array().unwrap();
    let forced = groups.iter().find(|g| g["forced"] == true).unwrap();
    assert_eq!(
        (forced["group"].as_str(), forced["forced"].as_bool()),
        (Some("incident-commanders"), Some(true))
    );
}

#[test]
fn json_status_is_exactly_the_crd_status_shape() {
    let report = json_at("2026-11-23T12:00:00Z");
    for r in report["requests"].as_array().unwrap() {
        let mut keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["name", "namespace", "status"]);
        let status: gatehouse::api::ApprovalRequestStatus =
            serde_json::from_value(r["status"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&status).unwrap(),
            r["status"],
            "status must round-trip through the CRD type"
        );
    }
}

#[test]
fn the_table_matches_the_documented_output() {
    for (now, file) in [
        ("2026-11-23T12:00:00Z", "at-12-00.txt"),
        ("2026-11-23T06:45:00Z", "at-06-45.txt"),
    ] {
        let (ok, out, err) = gatehouse(&["simulate", "examples/", "--now", now]);
        assert!(ok, "{err}");
        let expected = std::fs::read_to_string(repo().join("examples/expected").join(file)).unwrap();
        assert!(
            out == expected,
            "simulate at {now} changed; if intended, regenerate examples/expected/{file}:\n{out}"
        );
    }
}

fn temp_yaml(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-sim-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn invalid_input_names_the_file_the_document_and_the_field() {
    let path = temp_yaml(
        "bad-enum",
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ignored}\n---\napiVersion: gatehouse.dev/v1alpha1\nkind: ApprovalRequest\nmetadata: {name: x, namespace: ns, uid: u, creationTimestamp: '2026-11-23T10:00:00Z'}\nspec:\n  requester: {username: a}\n  role: {kind: Admin, name: view}\n",
    );
    let (ok, _, err) = gatehouse(&[
        "simulate",
        path.to_str().unwrap(),
        "--now",
        "2026-11-23T12:00:00Z",
    ]);
    assert!(!ok);
    assert!(
        err.contains("bad-enum.yaml: document 1 (ApprovalRequest ns/x): spec.role.kind"),
        "{err}"
    );
    assert!(err.contains("Admin"), "{err}");

    let path = temp_yaml(
        "no-time",
        "apiVersion: gatehouse.dev/v1alpha1\nkind: AccessReview\nmetadata: {name: r, namespace: ns}\nspec:\n  request: {name: x, uid: u}\n  decision: Approve\n  reviewer: {username: b}\n",
    );
    let (ok, _, err) = gatehouse(&["simulate", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(
        err.contains("document 0 (AccessReview r): metadata.creationTimestamp: is required"),
        "{err}"
    );

    let path = temp_yaml("broken", "kind: [unclosed\n");
    let (ok, _, err) = gatehouse(&["simulate", path.to_str().unwrap()]);
    assert!(!ok);
    assert!(err.contains("broken.yaml: not valid YAML"), "{err}");

    let (ok, _, err) = gatehouse(&["simulate", "examples/", "--now", "noon"]);
    assert!(!ok);
    assert!(err.contains("not an RFC 3339 time"), "{err}");

    let (ok, _, err) = gatehouse(&["simulate", "does-not-exist.yaml"]);
    assert!(!ok);
    assert!(err.contains("does-not-exist.yaml"), "{err}");
}

// ------------------------------------------------------------ access certification

fn certification_json(now: &str) -> Value {
    let (ok, out, err) = gatehouse(&[
        "simulate",
        "examples/certification/",
        "--now",
        now,
        "--output",
        "json",
    ]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

fn item<'a>(run: &'a Value, subject: &str) -> &'a Value {
    run["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["spec"]["subject"]["name"] == subject)
        .unwrap_or_else(|| panic!("no item for {subject}"))
}

#[test]
fn the_certification_example_matches_the_documented_output() {
    for (now, file) in [
        ("2026-10-08T12:00:00Z", "at-10-08-12-00.txt"),
        ("2026-10-16T12:00:00Z", "at-10-16-12-00.txt"),
    ] {
        let (ok, out, err) = gatehouse(&["simulate", "examples/certification/", "--now", now]);
        assert!(ok, "{err}");
        let path = repo().join("examples/certification/expected").join(file);
        let expected = std::fs::read_to_string(path).unwrap();
        assert!(
            out == expected,
            "simulate at {now} changed; if intended, regenerate examples/certification/expected/{file}:\n{out}"
        );
    }
}

#[test]
fn after_the_due_time_each_item_says_what_happens_to_the_access() {
    let report = certification_json("2026-10-16T12:00:00Z");
    let run = &report["certifications"][0];
    assert_eq!(run["run"], "quarterly-rbac-20261001-0700");
    // The binding with Gatehouse's labels but no request is reviewed too (issue 22).
    assert_eq!(run["items"].as_array().unwrap().len(), 12);
    let status = |s: &str| &item(run, s)["status"];

    // Two levels overturn: the owners kept it, security converted it to JIT access.
    let devs = status("payments-devs");
    assert_eq!(
        (devs["decision"].as_str(), devs["outcome"].as_str()),
        (Some("Revoked"), Some("Remove"))
    );
    assert_eq!(devs["convertedTo"], "payments-edit-jit");
    assert_eq!(devs["remediation"]["action"], "DeleteBinding");
    // Helm would restore it: changed in the chart, not by Gatehouse.
    let bob = status("bob@acme.io");
    assert_eq!(bob["remediation"]["state"], "ManagedExternally");
    assert_eq!(
        bob["remediation"]["managedBy"],
        serde_json::json!({"tool": "Helm", "name": "ledger"})
    );
    // Nobody decided the stale ServiceAccount's binding: the recommendation removes it.
    let migrate = status("migrate-2025");
    assert_eq!(migrate["recommendation"], "Revoke");
    assert_eq!(migrate["closedBy"], "NoDecisionRecommendation");
    assert_eq!(migrate["remediation"]["state"], "Pending");
    // dave approved his own access: ignored, and view is kept as recommended.
    let dave = status("dave@acme.io");
    assert_eq!(dave["decisions"][0]["reason"], "SelfReview");
    assert_eq!(dave["outcome"], "Keep");
    // The aggregated role reads Secrets through a ClusterRole added later.
    assert_eq!(status("sre")["risk"], serde_json::json!(["SecretsRead"]));

    for i in run["items"].as_array().unwrap() {
        let parsed: gatehouse::api::AccessCertificationStatus =
            serde_json::from_value(i["status"].clone()).unwrap();
        assert_eq!(
            serde_json::to_value(&parsed).unwrap(),
            i["status"],
            "status must round-trip through the CRD type"
        );
        assert!(i["uid"].as_str().unwrap().starts_with("sim-"));
    }
}

#[test]
fn a_cluster_export_alone_gets_a_risk_review_with_certify() {
    let args = [
        "simulate",
        "examples/certification/cluster.yaml",
        "--now",
        "2026-10-16T12:00:00Z",
    ];
    let (ok, plain, err) = gatehouse(&args);
    assert!(ok, "{err}");
    assert!(
        !plain.contains("CAMPAIGN"),
        "no campaign, no --certify: requests only\n{plain}"
    );

    let (ok, out, err) = gatehouse(&[&args[..], &["--certify"]].concat());
    assert!(ok, "{err}");
    assert!(
        out.starts_with(
            "CAMPAIGN cluster-review  RUN cluster-review-20261016-1200  STARTED 2026-10-16T12:00:00Z"
        ),
        "{out}"
    );
    assert!(
        out.contains("12 items: 12 open, 0 kept, 0 removed; 1 left out"),
        "{out}"
    );
    assert!(
        out.contains("stale: ServiceAccount checkout/migrate-2025 does not exist"),
        "{out}"
    );
    assert!(
        out.contains("risk: grants every verb on every resource (cluster-admin)"),
        "{out}"
    );
}

#[test]
fn the_request_examples_have_no_certification_part() {
    let report = json_at("2026-11-23T12:00:00Z");
    assert!(report.get("certifications").is_none(), "{report:#}");
}

// ------------------------------------------------------------ usage evidence

const USAGE_NOW: &str = "2026-03-02T12:00:00Z";

fn usage_json() -> Value {
    let (ok, out, err) = gatehouse(&[
        "simulate",
        "examples/usage/",
        "--now",
        USAGE_NOW,
        "--audit",
        "examples/usage/audit.log",
        "--output",
        "json",
    ]);
    assert!(ok, "{err}");
    serde_json::from_str(&out).unwrap()
}

#[test]
fn the_usage_example_matches_the_documented_output() {
    let (ok, out, err) = gatehouse(&[
        "simulate",
        "examples/usage/",
        "--now",
        USAGE_NOW,
        "--audit",
        "examples/usage/audit.log",
    ]);
    assert!(ok, "{err}");
    let expected =
        std::fs::read_to_string(repo().join("examples/usage/expected/at-03-02-12-00.txt")).unwrap();
    assert!(
        out == expected,
        "simulate --audit changed; if intended, regenerate examples/usage/expected/at-03-02-12-00.txt:\n{out}"
    );
    let (ok, out, err) = gatehouse(&["usage", "ingest", "examples/usage/audit.log"]);
    assert!(ok, "{err}");
    let expected = std::fs::read_to_string(repo().join("examples/usage/expected/ingest.txt")).unwrap();
    assert!(
        out == expected,
        "usage ingest changed; if intended, regenerate examples/usage/expected/ingest.txt:\n{out}"
    );
}

#[test]
fn audit_evidence_shows_last_use_and_recommends_revoking_what_is_unused() {
    let report = usage_json();
    let run = &report["certifications"][0];
    let codes = |i: &Value| -> Vec<String> {
        i["status"]["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["code"].as_str().unwrap().to_string())
            .collect()
    };
    let devs = &item(run, "payments-devs")["status"];
    assert_eq!(devs["usage"]["lastUsedAt"], "2026-03-02T10:00:00Z");
    assert_eq!(devs["usage"]["observedSince"], "2026-01-01T00:00:00Z");
    assert_eq!(devs["usage"]["requests"], 9);
    assert_eq!(devs["recommendation"], "Accept");

    // Unused since the observation began (two months, unusedFor 30 days): Revoke.
    let dave = item(run, "dave");
    assert_eq!(dave["status"]["recommendation"], "Revoke");
    assert_eq!(codes(dave)[0], "Unused");
    assert!(dave["status"]["usage"].get("lastUsedAt").is_none());
    // Last used 41 days ago: Revoke too.
    let ci = item(run, "ci-deployer");
    assert_eq!(ci["status"]["recommendation"], "Revoke");
    assert_eq!(ci["status"]["usage"]["lastUsedAt"], "2026-01-20T15:30:00Z");
    // alice's requests were credited to her group's binding: Review, not Revoke.
    let alice = item(run, "alice");
    assert_eq!(alice["status"]["recommendation"], "Review");
    assert_eq!(codes(alice)[0], "UsedThroughAnotherBinding");
    assert_eq!(
        alice["status"]["usage"]["usedThrough"],
        "RoleBinding payments/payments-devs-view (as Group payments-devs)"
    );
    // A binding made last week is too young to call unused.
    let erin = item(run, "erin");
    assert_eq!(erin["status"]["recommendation"], "Accept");
    assert_eq!(codes(erin)[0], "UnusedTooShortToJudge");
    // bob's impersonated request counts for the sre binding, as bob.
    let sre = item(run, "sre");
    assert_eq!(sre["status"]["usage"]["requests"], 1);
    let (ok, out, _) = gatehouse(&["usage", "ingest", "examples/usage/audit.log", "-o", "json"]);
    assert!(ok);
    let ingest: Value = serde_json::from_str(&out).unwrap();
    let pair = ingest["pairs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["subject"] == "Group sre")
        .unwrap();
    assert_eq!(pair["actors"], serde_json::json!(["bob"]));
    assert_eq!(ingest["malformed"], 1);
    assert_eq!(ingest["unattributed"]["SystemMasters"], 1);

    // Without evidence, no usage and no usage-based Revoke.
    let (ok, out, err) = gatehouse(&[
        "simulate",
        "examples/usage/",
        "--now",
        USAGE_NOW,
        "--output",
        "json",
    ]);
    assert!(ok, "{err}");
    let plain: Value = serde_json::from_str(&out).unwrap();
    let dave = item(&plain["certifications"][0], "dave");
    assert_eq!(dave["status"]["recommendation"], "Accept");
    assert!(dave["status"].get("usage").is_none());
}
