//! Access certification resources: the campaign example, the items simulate
//! derives from it, and certification reviews, against the CRD schemas and CEL.

use gatehouse::api::{AccessCampaign, AccessCertification, AccessReview, Decision};
use k8s_openapi::api::{
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::CustomResourceExt;
use serde_json::{json, Value};

use super::{assert_refused, assert_subset, create_errors, kind, patched, repo, round_trip};

/// Every object under `examples/certification/`, `kind: List` items one by one.
fn documents() -> Vec<(String, Value)> {
    let dir = repo().join("examples/certification");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in serde_saphyr::from_multiple::<Value>(&text)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            match doc["kind"].as_str() {
                Some("List") => {
                    for (j, item) in doc["items"].as_array().unwrap().iter().enumerate() {
                        docs.push((format!("{name}#{i}.{j}"), item.clone()));
                    }
                }
                _ => docs.push((format!("{name}#{i}"), doc)),
            }
        }
    }
    docs
}

fn named(name: &str) -> Value {
    documents()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no example named {name}"))
}

#[test]
fn the_certification_example_round_trips_and_the_api_server_accepts_it() {
    let docs = documents();
    for k in [
        "AccessCampaign",
        "AccessReview",
        "RoleBinding",
        "ClusterRoleBinding",
        "ClusterRole",
    ] {
        assert!(docs.iter().any(|(_, d)| kind(d) == k), "the example needs a {k}");
    }
    for (name, doc) in docs {
        let back = match kind(&doc) {
            "AccessCampaign" => round_trip::<AccessCampaign>(&doc),
            "AccessReview" => round_trip::<AccessReview>(&doc),
            "AccessPolicy" => round_trip::<gatehouse::api::AccessPolicy>(&doc),
            "Namespace" => round_trip::<Namespace>(&doc),
            "ServiceAccount" => round_trip::<ServiceAccount>(&doc),
            "Role" => round_trip::<Role>(&doc),
            "ClusterRole" => round_trip::<ClusterRole>(&doc),
            "RoleBinding" => round_trip::<RoleBinding>(&doc),
            "ClusterRoleBinding" => round_trip::<ClusterRoleBinding>(&doc),
            other => panic!("{name}: unexpected kind {other}"),
        };
        assert_subset(&doc, &back, &name);
        if kind(&doc).starts_with("Access") {
            let errors = create_errors(&doc);
            assert!(errors.is_empty(), "{name} would be refused: {errors:#?}");
        }
    }
}

#[test]
fn bad_campaigns_are_refused_with_a_readable_message() {
    let base = named("quarterly-rbac");
    assert_refused(
        patched(&base, json!({"spec": {"reviewers": {"levels": []}}})),
        "/spec/reviewers/levels",
    );
    assert_refused(
        patched(&base, json!({"spec": {"reviewers": {"levels": [{"name": "a"}]}}})),
        "a level must name groups, users or namespaceOwners",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"reviewers": {"levels": [{"name": "a", "users": ["x"]}, {"name": "a", "groups": ["y"]}]}}}),
        ),
        "level names must be unique",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"schedule": "CRON_TZ=Europe/Berlin 0 9 1 * *"}}),
        ),
        "put the time zone in spec.timeZone",
    );
    assert_refused(
        patched(&base, json!({"spec": {"schedule": null}})),
        "timeZone needs a schedule",
    );
    assert_refused(
        patched(&base, json!({"spec": {"timeZone": "Berlin time"}})),
        "/spec/timeZone",
    );
    assert_refused(
        patched(&base, json!({"spec": {"duration": "14d"}})),
        "/spec/duration",
    );
    assert_refused(
        patched(&base, json!({"spec": {"duration": "0s"}})),
        "reviewers need time",
    );
    assert_refused(
        patched(&base, json!({"spec": {"removeProtected": ["OperatorIdentity"]}})),
        "\"OperatorIdentity\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"onNoDecision": "Panic"}})),
        "\"Panic\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"remediation": "Sometimes"}})),
        "\"Sometimes\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"scope": {"bindingKinds": ["Binding"]}}})),
        "\"Binding\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"scope": {"subjectKinds": ["Robot"]}}})),
        "\"Robot\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"reviewNamespace": "Not A Name"}})),
        "/spec/reviewNamespace",
    );
}

#[test]
fn a_certification_review_names_exactly_one_thing_and_decides_what_items_allow() {
    let base = named("payments-devs-security");
    let cert = base["spec"]["certification"].clone();
    let request = json!({"name": "dana-view", "uid": "u"});
    assert_refused(
        patched(&base, json!({"spec": {"request": request}})),
        "name exactly one of spec.request (an ApprovalRequest) and spec.certification",
    );
    assert_refused(
        patched(&base, json!({"spec": {"certification": null, "convertTo": null}})),
        "name exactly one of spec.request",
    );
    assert_refused(
        patched(&base, json!({"spec": {"decision": "Reject", "convertTo": null}})),
        "a certification review decides Approve, Revoke, Reassign or Comment",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"certification": null, "request": request, "decision": "Reassign", "convertTo": null, "reassignTo": {"users": ["x"]}}}),
        ),
        "Reassign applies to certification items only",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"decision": "Reassign", "convertTo": null}}),
        ),
        "Reassign needs spec.reassignTo with at least one user or group",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"decision": "Reassign", "convertTo": null, "reassignTo": {"users": []}}}),
        ),
        "Reassign needs spec.reassignTo",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"decision": "Reassign", "convertTo": null, "comment": null, "reassignTo": {"users": ["x"]}}}),
        ),
        "Reassign needs a comment",
    );
    assert_refused(
        patched(&base, json!({"spec": {"reassignTo": {"users": ["x"]}}})),
        "spec.reassignTo is only allowed with decision Reassign",
    );
    assert_refused(
        patched(&base, json!({"spec": {"decision": "Approve"}})),
        "spec.convertTo goes with decision Revoke on a certification item",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"certification": {"name": cert["name"], "uid": null}}}),
        ),
        "\"uid\" is a required property",
    );
    let reassign = named("prometheus-reassign");
    assert_eq!(create_errors(&reassign), Vec::<String>::new());

    let review: AccessReview = serde_json::from_value(base).unwrap();
    let mut flipped = review.clone();
    flipped.spec.decision = Decision::Approve;
    let err = flipped.validate_cel_update(&review).unwrap_err().to_string();
    assert!(err.contains("an AccessReview is a permanent record"), "{err}");
}

/// The items simulate derives from the example, as the operator would create them.
fn items() -> Vec<AccessCertification> {
    let m = gatehouse::simulate::load(&[repo().join("examples/certification")]).unwrap();
    let now = "2026-10-16T12:00:00Z".parse().unwrap();
    let report = gatehouse::simulate::run(&m, now, false);
    report.certifications[0]
        .items
        .iter()
        .map(|i| {
            let mut item = AccessCertification::new(&i.name, i.spec.clone());
            item.metadata.namespace = Some(i.namespace.clone());
            item.status = Some(i.status.clone());
            item
        })
        .collect()
}

#[test]
fn items_are_valid_objects_with_an_immutable_spec() {
    let all = items();
    assert_eq!(
        all.len(),
        12,
        "the example run (issue 22: a labelled binding without a request is reviewed)"
    );
    for item in &all {
        let doc = serde_json::to_value(item).unwrap();
        let errors = create_errors(&doc);
        assert!(
            errors.is_empty(),
            "{}: {errors:#?}",
            item.metadata.name.as_deref().unwrap_or_default()
        );
        assert_subset(&doc, &round_trip::<AccessCertification>(&doc), "item");
    }
    let item = &all[0];
    let mut other = item.clone();
    other.spec.binding.uid = "another".into();
    let err = other.validate_cel_update(item).unwrap_err().to_string();
    assert!(
        err.contains("spec is immutable: an AccessCertification is the snapshot a run reviews"),
        "{err}"
    );
    let mut status_only = item.clone();
    status_only.status = None;
    status_only.validate_cel_update(item).unwrap();
}

#[test]
fn the_certification_crds_have_the_documented_names_and_columns() {
    let item = AccessCertification::crd();
    assert_eq!(item.spec.scope, "Namespaced");
    assert_eq!(item.spec.names.categories, Some(vec!["reviews".to_string()]));
    assert_eq!(
        item.spec.names.short_names,
        Some(vec!["acert".to_string(), "certitem".to_string()])
    );
    let v = &item.spec.versions[0];
    let cols: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        cols,
        [
            "Subject",
            "Role",
            "Binding",
            "Risk",
            "Recommendation",
            "Decision",
            "Due",
            "Remediation"
        ]
    );
    assert!(v.subresources.as_ref().unwrap().status.is_some());

    let campaign = AccessCampaign::crd();
    assert_eq!(campaign.spec.scope, "Cluster");
    assert_eq!(campaign.spec.names.short_names, Some(vec!["acamp".to_string()]));
    assert!(campaign.spec.versions[0]
        .subresources
        .as_ref()
        .unwrap()
        .status
        .is_some());
}
