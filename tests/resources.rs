//! The resource model: the committed CRDs, the examples, and the validation the
//! API server performs (structural schema and CEL rules) before Gatehouse ever
//! sees an object.

use std::path::PathBuf;

use gatehouse::api::{AccessCampaign, AccessCertification, AccessPolicy, AccessReview, ApprovalRequest};
use kube::CustomResourceExt;
use serde_json::{json, Value};

// Campaigns, certification items and certification reviews: examples/certification/.
#[path = "resources/certification.rs"]
mod certification;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every YAML document under `examples/`, with the file it came from.
fn example_documents() -> Vec<(String, Value)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    let mut docs = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (i, doc) in serde_saphyr::from_multiple::<Value>(&text)
            .unwrap()
            .into_iter()
            .enumerate()
        {
            docs.push((
                format!("{}#{}", file.file_name().unwrap().to_string_lossy(), i),
                doc,
            ));
        }
    }
    docs
}

fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap()
}

/// The openAPIV3Schema of a CRD, tightened like `kubectl apply`'s strict field
/// validation: unknown fields are errors, not silently pruned.
fn strict_schema<K: CustomResourceExt>() -> Value {
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .unwrap()
        .open_api_v3_schema
        .as_ref()
        .unwrap();
    let mut schema = serde_json::to_value(schema).unwrap();
    // The API server adds these to every CRD schema itself.
    let props = schema["properties"].as_object_mut().unwrap();
    props.insert("apiVersion".into(), json!({"type": "string"}));
    props.insert("kind".into(), json!({"type": "string"}));
    props.insert("metadata".into(), json!({"type": "object"}));
    forbid_unknown_fields(&mut schema);
    schema
}

fn forbid_unknown_fields(schema: &mut Value) {
    if let Value::Object(map) = schema {
        if map.contains_key("properties") && !map.contains_key("additionalProperties") {
            map.insert("additionalProperties".into(), Value::Bool(false));
        }
        for (_, v) in map.iter_mut() {
            forbid_unknown_fields(v);
        }
    } else if let Value::Array(items) = schema {
        items.iter_mut().for_each(forbid_unknown_fields);
    }
}

/// What the API server would say about creating `doc`: structural-schema errors
/// and CEL rule failures, as text.
fn create_errors(doc: &Value) -> Vec<String> {
    let schema = match kind(doc) {
        "AccessPolicy" => strict_schema::<AccessPolicy>(),
        "ApprovalRequest" => strict_schema::<ApprovalRequest>(),
        "AccessReview" => strict_schema::<AccessReview>(),
        "AccessCampaign" => strict_schema::<AccessCampaign>(),
        "AccessCertification" => strict_schema::<AccessCertification>(),
        other => panic!("unexpected kind {other}"),
    };
    let validator = jsonschema::draft4::new(&schema).unwrap();
    let mut errors: Vec<String> = validator
        .iter_errors(doc)
        .map(|e| format!("{}: {}", e.instance_path(), e))
        .collect();
    if !errors.is_empty() {
        return errors;
    }
    let cel = match kind(doc) {
        "AccessPolicy" => serde_json::from_value::<AccessPolicy>(doc.clone())
            .unwrap()
            .validate_cel(),
        "ApprovalRequest" => serde_json::from_value::<ApprovalRequest>(doc.clone())
            .unwrap()
            .validate_cel(),
        "AccessCampaign" => serde_json::from_value::<AccessCampaign>(doc.clone())
            .unwrap()
            .validate_cel(),
        "AccessCertification" => serde_json::from_value::<AccessCertification>(doc.clone())
            .unwrap()
            .validate_cel(),
        _ => serde_json::from_value::<AccessReview>(doc.clone())
            .unwrap()
            .validate_cel(),
    };
    if let Err(e) = cel {
        errors.push(e.to_string());
    }
    errors
}

/// Every leaf of `small` is present, with the same value, in `big`.
fn assert_subset(small: &Value, big: &Value, path: &str) {
    match (small, big) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in a {
                let Some(w) = b.get(k) else {
                    panic!("field {path}.{k} was lost in the round trip")
                };
                assert_subset(v, w, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            assert_eq!(a.len(), b.len(), "list {path} changed length");
            for (i, (v, w)) in a.iter().zip(b).enumerate() {
                assert_subset(v, w, &format!("{path}[{i}]"));
            }
        }
        _ => assert_eq!(small, big, "value at {path} changed"),
    }
}

fn round_trip<K>(doc: &Value) -> Value
where
    K: serde::de::DeserializeOwned + serde::Serialize + PartialEq + std::fmt::Debug,
{
    let typed: K = serde_json::from_value(doc.clone()).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    let again: K = serde_json::from_value(back.clone()).unwrap();
    assert_eq!(typed, again);
    back
}

#[test]
fn examples_cover_every_kind() {
    let docs = example_documents();
    for k in ["AccessPolicy", "ApprovalRequest", "AccessReview"] {
        assert!(
            docs.iter().filter(|(_, d)| kind(d) == k).count() >= 2,
            "examples need at least two {k}"
        );
    }
}

#[test]
fn examples_round_trip_without_losing_fields() {
    for (name, doc) in example_documents() {
        let back = match kind(&doc) {
            "AccessPolicy" => round_trip::<AccessPolicy>(&doc),
            "ApprovalRequest" => round_trip::<ApprovalRequest>(&doc),
            "AccessReview" => round_trip::<AccessReview>(&doc),
            // What a OneTime request's Job reported, for simulate.
            "Job" => round_trip::<k8s_openapi::api::batch::v1::Job>(&doc),
            other => panic!("{name}: unexpected kind {other}"),
        };
        let yaml = serde_saphyr::to_string(&back).unwrap();
        let reparsed: Value = serde_saphyr::from_str(&yaml).unwrap();
        assert_eq!(reparsed, back, "{name}: YAML round trip changed the object");
        assert_subset(&doc, &back, &name);
    }
}

#[test]
fn api_server_accepts_every_example() {
    // Job documents are what the cluster reported, not something users create.
    for (name, doc) in example_documents().into_iter().filter(|(_, d)| kind(d) != "Job") {
        let errors = create_errors(&doc);
        assert!(errors.is_empty(), "{name} would be refused: {errors:#?}");
    }
}

fn example(name: &str) -> Value {
    example_documents()
        .into_iter()
        .map(|(_, d)| d)
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no example named {name}"))
}

/// Applies a JSON merge patch (RFC 7386) to a copy of `base`.
fn patched(base: &Value, patch: Value) -> Value {
    fn merge(target: &mut Value, patch: Value) {
        match patch {
            Value::Object(p) => {
                if !target.is_object() {
                    *target = json!({});
                }
                let t = target.as_object_mut().unwrap();
                for (k, v) in p {
                    if v.is_null() {
                        t.remove(&k);
                    } else {
                        merge(t.entry(k).or_insert(Value::Null), v);
                    }
                }
            }
            other => *target = other,
        }
    }
    let mut out = base.clone();
    merge(&mut out, patch);
    out
}

#[track_caller]
fn assert_refused(doc: Value, expected: &str) {
    let errors = create_errors(&doc);
    assert!(
        errors.iter().any(|e| e.contains(expected)),
        "expected an error containing {expected:?}, got {errors:#?}"
    );
}

#[test]
fn bad_policies_are_refused_with_a_readable_message() {
    let base = example("payments-edit");
    assert_refused(
        patched(&base, json!({"spec": {"roles": null}})),
        "\"roles\" is a required property",
    );
    assert_refused(patched(&base, json!({"spec": {"roles": []}})), "/spec/roles");
    assert_refused(
        patched(
            &base,
            json!({"spec": {"roles": [{"kind": "Group", "name": "x"}]}}),
        ),
        "\"Group\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"requesters": {"groups": []}}})),
        "requesters must name at least one group or user",
    );
    assert_refused(
        patched(&base, json!({"spec": {"duration": {"max": "2 hours"}}})),
        "/spec/duration/max",
    );
    assert_refused(
        patched(&base, json!({"spec": {"duration": {"max": "-1h"}}})),
        "/spec/duration/max",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"duration": {"default": "3h", "max": "2h"}}}),
        ),
        "duration.default must not be longer than duration.max",
    );
    assert_refused(
        patched(&base, json!({"spec": {"approval": {"minApprovals": 0}}})),
        "/spec/approval/minApprovals",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"approval": {"stages": [{"name": "a", "groups": ["x"]}, {"name": "a", "users": ["y"]}]}}}),
        ),
        "stage names must be unique",
    );
    assert_refused(
        patched(&base, json!({"spec": {"approval": {"stages": [{"name": "a"}]}}})),
        "a stage must name at least one group or user",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"approval": {"stages": [{"name": "a", "groups": ["x"], "operator": "Most"}]}}}),
        ),
        "\"Most\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"approval": {"timeout": "forever"}}})),
        "/spec/approval/timeout",
    );
    assert_refused(
        patched(&base, json!({"spec": {"justification": "Sometimes"}})),
        "\"Sometimes\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"timeWindow": {"start": "9:00"}}})),
        "/spec/timeWindow/start",
    );
    assert_refused(
        patched(&base, json!({"spec": {"timeWindow": {"end": "24:30"}}})),
        "/spec/timeWindow/end",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"timeWindow": {"timezone": "Berlin time"}}}),
        ),
        "/spec/timeWindow/timezone",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"timeWindow": {"days": ["Mon", "Funday"]}}}),
        ),
        "\"Funday\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"timeWindow": {"days": ["Mon", "Mon"]}}})),
        "timeWindow.days must not repeat a day",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"timeWindow": {"start": "09:00", "end": "09:00"}}}),
        ),
        "timeWindow.start and timeWindow.end must differ",
    );
    assert_refused(
        patched(&base, json!({"spec": {"maxActivePerRequester": 0}})),
        "/spec/maxActivePerRequester",
    );
    assert_refused(
        patched(&base, json!({"spec": {"retention": "30d"}})),
        "/spec/retention",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"autoApprove": {"subjects": {"groups": ["x"]}, "roles": []}}}),
        ),
        "/spec/autoApprove/roles",
    );
    assert_refused(
        patched(&base, json!({"spec": {"approvals": {"minApprovals": 2}}})),
        "Additional properties are not allowed",
    );
}

#[test]
fn bad_requests_are_refused_with_a_readable_message() {
    let base = example("gina-edit");
    assert_refused(
        patched(&base, json!({"spec": {"requester": null}})),
        "\"requester\" is a required property",
    );
    assert_refused(
        patched(&base, json!({"spec": {"requester": {"username": ""}}})),
        "/spec/requester/username",
    );
    assert_refused(
        patched(&base, json!({"spec": {"role": {"kind": "Admin"}}})),
        "\"Admin\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"role": {"name": "a/b"}}})),
        "/spec/role/name",
    );
    assert_refused(
        patched(&base, json!({"spec": {"scope": "Galaxy"}})),
        "\"Galaxy\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"type": "Forever"}})),
        "\"Forever\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"duration": "1 day"}})),
        "/spec/duration",
    );
    assert_refused(
        patched(&base, json!({"spec": {"reason": "x".repeat(2049)}})),
        "/spec/reason",
    );
    assert_refused(
        patched(&base, json!({"spec": {"notBefore": 12}})),
        "/spec/notBefore",
    );
    assert_refused(
        patched(&base, json!({"spec": {"type": "OneTime"}})),
        "type OneTime needs spec.job",
    );
    assert_refused(
        patched(&base, json!({"spec": {"job": {"image": "busybox"}}})),
        "spec.job is only allowed with type OneTime",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"scope": "Cluster", "role": {"kind": "Role"}}}),
        ),
        "scope Cluster needs role.kind ClusterRole",
    );
    assert_refused(
        patched(
            &base,
            json!({"spec": {"subject": {"kind": "Robot", "name": "r2"}}}),
        ),
        "\"Robot\" is not one of",
    );
}

#[test]
fn bad_reviews_are_refused_with_a_readable_message() {
    let base = example("gina-edit-hank");
    assert_refused(
        patched(&base, json!({"spec": {"request": {"uid": null}}})),
        "\"uid\" is a required property",
    );
    assert_refused(
        patched(&base, json!({"spec": {"decision": "Maybe"}})),
        "\"Maybe\" is not one of",
    );
    assert_refused(
        patched(&base, json!({"spec": {"reviewer": null}})),
        "\"reviewer\" is a required property",
    );
    assert_refused(
        patched(&base, json!({"spec": {"comment": "x".repeat(2049)}})),
        "/spec/comment",
    );
}

#[test]
fn one_time_request_with_a_job_is_accepted() {
    let doc = patched(
        &example("gina-edit"),
        json!({"spec": {"type": "OneTime", "job": {"image": "ghcr.io/acme/migrate:1.4", "command": ["migrate", "up"]}}}),
    );
    assert_eq!(create_errors(&doc), Vec::<String>::new());
}

#[test]
fn request_and_review_specs_are_immutable_but_status_is_not() {
    let req: ApprovalRequest = serde_json::from_value(example("gina-edit")).unwrap();
    let mut longer = req.clone();
    longer.spec.duration = Some("8h".into());
    let err = longer.validate_cel_update(&req).unwrap_err().to_string();
    assert!(err.contains("spec is immutable"), "{err}");
    let mut other_role = req.clone();
    other_role.spec.role.name = "admin".into();
    assert!(other_role.validate_cel_update(&req).is_err());

    let mut with_status = req.clone();
    with_status.status = Some(Default::default());
    with_status.metadata.labels = Some([("team".to_string(), "payments".to_string())].into());
    with_status.validate_cel_update(&req).unwrap();

    let review: AccessReview = serde_json::from_value(example("gina-edit-hank")).unwrap();
    let mut flipped = review.clone();
    flipped.spec.decision = gatehouse::api::Decision::Reject;
    let err = flipped.validate_cel_update(&review).unwrap_err().to_string();
    assert!(err.contains("an AccessReview is a permanent record"), "{err}");
    review.validate_cel_update(&review).unwrap();
}

#[test]
fn crds_have_the_documented_names_columns_and_selectors() {
    let req = ApprovalRequest::crd();
    assert_eq!(req.spec.scope, "Namespaced");
    assert_eq!(req.spec.names.categories, Some(vec!["reviews".to_string()]));
    let v = &req.spec.versions[0];
    let cols: Vec<_> = v
        .additional_printer_columns
        .as_ref()
        .unwrap()
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        cols,
        ["Requester", "Role", "Phase", "Approvals", "Expires", "Age"]
    );
    let fields: Vec<_> = v
        .selectable_fields
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.json_path.as_str())
        .collect();
    assert!(fields.contains(&".spec.requester.username"));
    assert!(v.subresources.as_ref().unwrap().status.is_some());

    let review = AccessReview::crd();
    assert_eq!(review.spec.names.categories, Some(vec!["reviews".to_string()]));
    let v = &review.spec.versions[0];
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
            "Request",
            "Certification",
            "Decision",
            "Reviewer",
            "Accepted",
            "Age"
        ]
    );
    let fields: Vec<_> = v
        .selectable_fields
        .as_ref()
        .unwrap()
        .iter()
        .map(|f| f.json_path.as_str())
        .collect();
    assert!(fields.contains(&".spec.request.name"));
    assert!(fields.contains(&".spec.certification.name"));
    assert!(v.subresources.as_ref().unwrap().status.is_some());

    let policy = AccessPolicy::crd();
    assert_eq!(policy.spec.scope, "Cluster");
    assert!(policy.spec.versions[0]
        .subresources
        .as_ref()
        .unwrap()
        .status
        .is_some());
    for crd in [req, review, policy] {
        assert_eq!(crd.spec.group, "gatehouse.dev");
        assert_eq!(crd.spec.versions[0].name, "v1alpha1");
        assert!(crd.spec.names.short_names.as_ref().is_some_and(|s| !s.is_empty()));
    }
}

/// `kubectl get reviews` is what a reviewer runs to see what waits on them:
/// requests, their reviews and certification items. Channels and campaigns are
/// admins' configuration, not something to review.
#[test]
fn kubectl_get_reviews_lists_only_what_people_review() {
    let crds = [
        AccessPolicy::crd(),
        ApprovalRequest::crd(),
        AccessReview::crd(),
        AccessCampaign::crd(),
        AccessCertification::crd(),
        gatehouse::api::NotificationChannel::crd(),
    ];
    let reviews: Vec<&str> = crds
        .iter()
        .filter(|c| c.spec.names.categories.iter().flatten().any(|c| c == "reviews"))
        .map(|c| c.spec.names.kind.as_str())
        .collect();
    assert_eq!(
        reviews,
        ["ApprovalRequest", "AccessReview", "AccessCertification"]
    );
}

#[test]
fn committed_crds_match_the_binary_output() {
    let dir = repo().join("crds");
    let rendered = gatehouse::crdgen::render_crds().unwrap();
    let mut expected_files: Vec<String> = rendered.iter().map(|c| c.file_name.clone()).collect();
    expected_files.sort();
    let mut committed: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    committed.sort();
    let hint = "regenerate with: cargo run -- crds --out-dir crds";
    assert_eq!(
        committed, expected_files,
        "crds/ holds other files than `gatehouse crds` renders; {hint}"
    );
    for crd in rendered {
        let on_disk = std::fs::read_to_string(dir.join(&crd.file_name)).unwrap();
        assert!(
            on_disk == crd.yaml,
            "crds/{} is out of date; {hint}",
            crd.file_name
        );
    }
}

#[test]
fn the_config_samples_are_valid_and_the_kustomization_applies_the_policy() {
    let dir = repo().join("config/samples");
    let mut kinds = Vec::new();
    for name in ["accesspolicy.yaml", "approvalrequest.yaml", "accessreview.yaml"] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let doc: Value = serde_saphyr::from_str(&text).unwrap();
        let errors = create_errors(&doc);
        assert!(
            errors.is_empty(),
            "config/samples/{name} would be refused: {errors:#?}"
        );
        kinds.push(kind(&doc).to_string());
    }
    assert_eq!(kinds, ["AccessPolicy", "ApprovalRequest", "AccessReview"]);
    let kustomization: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(dir.join("Kustomization")).unwrap()).unwrap();
    assert_eq!(
        kustomization["resources"],
        serde_json::json!(["accesspolicy.yaml"])
    );
}
