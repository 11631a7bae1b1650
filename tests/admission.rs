//! The admission policies in `config/admission/`, evaluated as the API server
//! would, scenario by scenario: who may file, review and write status, and what
//! the optional mutating policies fill in. The harness that runs the shipped CEL
//! (and bridges what kube-cel cannot do) is `tests/support/admission/`.

use gatehouse::admission::{
    CREATE_ON_BEHALF, ISSUE_ITEMS, MUTATING, TEST_CHANNELS, VALIDATING, WRITE_STATUS,
};
use gatehouse::api::{AccessReview, ApprovalRequest};
use k8s_openapi::api::admissionregistration::{
    v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    v1beta1::{MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding},
};
use kube::core::cel::VapExpression;
use serde_json::{json, Value};

mod support;
use support::{
    admission::{
        authorizer::{parse_authorizer, Authz, Grant},
        cel::{json_patch, struct_literals_as_maps},
        fixtures::{dana_view, doc, erin_approves, shipped, vap, with_identity, REQUESTER, REVIEWER, STATUS},
        mutate, validate, Admission, Outcome,
    },
    tools::{documents, repo},
};

// ---------------------------------------------------------------------------
// Identity of requesters.

#[test]
fn the_authenticated_creator_may_file_a_request_for_themselves() {
    let policy = vap(REQUESTER);
    let adm = Admission::create("dana", &["developers"], dana_view());
    assert_eq!(validate(&policy, &adm), Outcome::Allowed);
    // Claiming fewer groups than one has is fine; so is claiming none.
    let adm = Admission::create("dana", &["developers", "payments-oncall"], dana_view());
    assert_eq!(validate(&policy, &adm), Outcome::Allowed);
    let no_groups = with_identity(dana_view(), "requester", json!({"username": "dana"}));
    assert_eq!(
        validate(&policy, &Admission::create("dana", &["developers"], no_groups)),
        Outcome::Allowed
    );
    let empty_groups = with_identity(
        dana_view(),
        "requester",
        json!({"username": "dana", "groups": []}),
    );
    assert_eq!(
        validate(&policy, &Admission::create("dana", &[], empty_groups)),
        Outcome::Allowed
    );
}

#[test]
fn a_request_naming_another_user_is_refused_with_what_to_fix() {
    let policy = vap(REQUESTER);
    // Mallory is in the same group but files the request as Dana.
    let adm = Admission::create("mallory", &["developers"], dana_view());
    let denial = validate(&policy, &adm).denial();
    assert!(
        denial.contains(r#"spec.requester.username is "dana" but you are authenticated as "mallory""#),
        "{denial}"
    );
    assert!(
        denial.contains(r#"set spec.requester.username to "mallory""#),
        "{denial}"
    );
    assert!(
        denial.contains("create-on-behalf verb on approvalrequests in namespace payments"),
        "{denial}"
    );
    // Case and whitespace matter: usernames are compared exactly.
    for spoof in ["Dana", "dana ", "system:serviceaccount:payments:dana"] {
        let obj = with_identity(
            dana_view(),
            "requester",
            json!({"username": spoof, "groups": ["developers"]}),
        );
        let outcome = validate(&policy, &Admission::create("dana", &["developers"], obj));
        assert!(matches!(outcome, Outcome::Denied(_)), "{spoof:?}: {outcome:?}");
    }
}

#[test]
fn claiming_a_group_one_is_not_in_is_refused() {
    let policy = vap(REQUESTER);
    // Dana claims sre to be eligible under the SRE policy.
    let obj = with_identity(
        dana_view(),
        "requester",
        json!({"username": "dana", "groups": ["developers", "sre", "incident-commanders"]}),
    );
    let denial = validate(&policy, &Admission::create("dana", &["developers"], obj)).denial();
    assert!(
        denial
            .contains("spec.requester.groups lists sre, incident-commanders, which dana is not a member of"),
        "{denial}"
    );
    // Exactly one validation failed: the username is right.
    assert!(!denial.contains("spec.requester.username"), "{denial}");
}

#[test]
fn a_request_without_a_requester_is_refused() {
    let policy = vap(REQUESTER);
    for identity in [
        Value::Null,
        json!({}),
        json!({"username": ""}),
        json!({"groups": ["developers"]}),
    ] {
        let obj = with_identity(dana_view(), "requester", identity.clone());
        let denial = validate(&policy, &Admission::create("dana", &["developers"], obj)).denial();
        assert!(
            denial.starts_with("spec.requester.username is missing"),
            "{identity}: {denial}"
        );
        // The other checks step aside rather than fail with evaluation errors.
        assert!(!denial.contains("evaluation error"), "{identity}: {denial}");
    }
}

#[test]
fn filing_on_behalf_of_someone_needs_the_create_on_behalf_verb() {
    let policy = vap(REQUESTER);
    let gitops = "system:serviceaccount:argocd:argocd-application-controller";
    let sa_groups = ["system:serviceaccounts", "system:serviceaccounts:argocd"];
    let attempt = |authz: Authz| {
        validate(
            &policy,
            &Admission::create(gitops, &sa_groups, dana_view()).with_authz(authz),
        )
    };

    // Without the verb: refused, like anyone else naming Dana.
    assert!(matches!(attempt(Authz::none()), Outcome::Denied(_)));
    // Plain `create` on approvalrequests is what it needs to create at all; it is not enough.
    assert!(matches!(
        attempt(Authz::none().grant("create", "approvalrequests", None)),
        Outcome::Denied(_)
    ));
    // The verb on the other resource, or in another namespace, does not count.
    assert!(matches!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "accessreviews", None)),
        Outcome::Denied(_)
    ));
    assert!(matches!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "approvalrequests", Some("checkout"))),
        Outcome::Denied(_)
    ));
    // Granted in the request's namespace, or cluster-wide: it may name Dana and her groups.
    assert_eq!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "approvalrequests", Some("payments"))),
        Outcome::Allowed
    );
    assert_eq!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "approvalrequests", None)),
        Outcome::Allowed
    );
    // Cluster admins hold every verb, virtual ones included.
    assert_eq!(attempt(Authz::cluster_admin()), Outcome::Allowed);
    // The verb does not excuse a missing requester.
    let empty = with_identity(dana_view(), "requester", Value::Null);
    let adm = Admission::create(gitops, &sa_groups, empty).with_authz(Authz::cluster_admin());
    assert!(validate(&policy, &adm)
        .denial()
        .starts_with("spec.requester.username is missing"));
}

#[test]
fn a_matching_identity_never_asks_the_authorizer() {
    // The API server evaluates variables lazily and `||` left to right, so the
    // authorizer is only consulted for someone naming another person. Check that
    // the shipped validations put the authorizer variable last in each `||`.
    for name in [REQUESTER, REVIEWER] {
        let policy = vap(name);
        for v in policy["spec"]["validations"].as_array().unwrap() {
            let expr = v["expression"].as_str().unwrap();
            if expr.contains("variables.onBehalf") {
                assert!(
                    expr.trim_end().ends_with("|| variables.onBehalf"),
                    "{name}: {expr}"
                );
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Identity of reviewers.

#[test]
fn the_authenticated_reviewer_may_record_their_own_decision() {
    let policy = vap(REVIEWER);
    assert_eq!(
        validate(&policy, &Admission::create("erin", &["sre"], erin_approves())),
        Outcome::Allowed
    );
}

#[test]
fn a_review_naming_another_reviewer_or_a_foreign_group_is_refused() {
    let policy = vap(REVIEWER);
    // Dana approves her own request while posing as Erin.
    let denial = validate(
        &policy,
        &Admission::create("dana", &["developers"], erin_approves()),
    )
    .denial();
    assert!(
        denial.contains(r#"spec.reviewer.username is "erin" but you are authenticated as "dana""#),
        "{denial}"
    );
    assert!(
        denial.contains("spec.reviewer.groups lists sre, which dana is not a member of"),
        "{denial}"
    );
    // Erin, but claiming the force-approval group she is not in.
    let forced = with_identity(
        erin_approves(),
        "reviewer",
        json!({"username": "erin", "groups": ["sre", "incident-commanders"]}),
    );
    let denial = validate(&policy, &Admission::create("erin", &["sre"], forced)).denial();
    assert!(denial.contains("incident-commanders"), "{denial}");
    // No reviewer at all.
    let missing = with_identity(erin_approves(), "reviewer", Value::Null);
    let denial = validate(&policy, &Admission::create("erin", &["sre"], missing)).denial();
    assert!(
        denial.starts_with("spec.reviewer.username is missing"),
        "{denial}"
    );
}

#[test]
fn recording_a_review_on_behalf_needs_the_verb_on_accessreviews() {
    let policy = vap(REVIEWER);
    let bot = "system:serviceaccount:flux-system:kustomize-controller";
    let attempt = |authz: Authz| {
        validate(
            &policy,
            &Admission::create(bot, &[], erin_approves()).with_authz(authz),
        )
    };
    assert!(matches!(attempt(Authz::none()), Outcome::Denied(_)));
    // The verb for requests does not cover reviews.
    assert!(matches!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "approvalrequests", None)),
        Outcome::Denied(_)
    ));
    assert_eq!(
        attempt(Authz::none().grant(CREATE_ON_BEHALF, "accessreviews", Some("payments"))),
        Outcome::Allowed
    );
}

// ---------------------------------------------------------------------------
// Which requests the policies see.

#[test]
fn identity_policies_judge_creates_only_and_each_its_own_resource() {
    let requester = vap(REQUESTER);
    let reviewer = vap(REVIEWER);
    // Updates are left to the CRD, which makes spec immutable (tests/resources.rs:
    // request_and_review_specs_are_immutable_but_status_is_not).
    let mut update = Admission::create("mallory", &[], dana_view());
    update.operation = "UPDATE".into();
    update.old_object = Some(dana_view());
    assert_eq!(validate(&requester, &update), Outcome::NotMatched);
    // The requester policy does not judge reviews, nor the reviewer policy requests.
    assert_eq!(
        validate(&requester, &Admission::create("mallory", &[], erin_approves())),
        Outcome::NotMatched
    );
    assert_eq!(
        validate(&reviewer, &Admission::create("mallory", &[], dana_view())),
        Outcome::NotMatched
    );
    // A status write is a subresource: the identity policies do not see it (the
    // status-writer policy does).
    let status = Admission::write_status("mallory", &[], dana_view());
    assert_eq!(validate(&requester, &status), Outcome::NotMatched);
    assert_ne!(validate(&vap(STATUS), &status), Outcome::NotMatched);
}

// ---------------------------------------------------------------------------
// Status writes.

#[test]
fn only_holders_of_write_status_may_write_status() {
    let policy = vap(STATUS);
    let mut forged = dana_view();
    forged["status"] = json!({"phase": "Approved", "requirements": {"autoApproved": true}});
    let attempt = |user: &str, authz: Authz| {
        let mut adm = Admission::write_status(user, &["developers"], dana_view()).with_authz(authz);
        adm.object = forged.clone();
        validate(&policy, &adm)
    };
    // Someone who was given update on every resource in the namespace, by mistake.
    let too_broad = Authz(vec![Grant {
        verb: "update".into(),
        group: "*".into(),
        resource: "*".into(),
        namespace: Some("payments".into()),
    }]);
    let denial = attempt("dana", too_broad).denial();
    assert!(
        denial.contains(
            "only the Gatehouse operator writes approvalrequests/status: dana lacks the write-status verb"
        ),
        "{denial}"
    );
    // The operator (its ClusterRole has the verb on the status subresources) and cluster admins may.
    let operator = "system:serviceaccount:gatehouse-system:gatehouse";
    let granted = Authz::none().grant(WRITE_STATUS, "approvalrequests/status", None);
    assert_eq!(attempt(operator, granted.clone()), Outcome::Allowed);
    assert_eq!(attempt("admin", Authz::cluster_admin()), Outcome::Allowed);
    // The verb on the main resource is not the verb on the subresource.
    let main_only = Authz::none().grant(WRITE_STATUS, "approvalrequests", None);
    assert!(matches!(attempt(operator, main_only), Outcome::Denied(_)));

    // Reviews and policies are guarded the same way; creates and main-resource updates are not its business.
    let review = Admission::write_status("erin", &["sre"], erin_approves());
    assert!(matches!(validate(&policy, &review), Outcome::Denied(_)));
    let review = review.with_authz(Authz::none().grant(WRITE_STATUS, "accessreviews/status", None));
    assert_eq!(validate(&policy, &review), Outcome::Allowed);
    let resources = policy["spec"]["matchConstraints"]["resourceRules"][0]["resources"].clone();
    assert_eq!(
        resources,
        json!([
            "approvalrequests/status",
            "accessreviews/status",
            "accesspolicies/status",
            "accesscampaigns/status",
            "accesscertifications/status",
            "notificationchannels/status"
        ])
    );
    assert_eq!(
        validate(&policy, &Admission::create("dana", &[], dana_view())),
        Outcome::NotMatched
    );
}

// ---------------------------------------------------------------------------
// Access certification: reviews of items, and the items themselves.

const ISSUER: &str = "gatehouse-certification-issuer";

/// Sam, of security, revokes an item (a review with spec.certification).
fn sam_revokes_item(groups: &[&str]) -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessReview",
        "metadata": {"name": "devs-edit-sam", "namespace": "gatehouse-system"},
        "spec": {"certification": {"name": "quarterly-20261001-0700-devs-edit-payments-devs-1a2b3c4d", "uid": "u-item"},
                 "decision": "Revoke", "reviewer": {"username": "sam", "groups": groups},
                 "comment": "nobody in payments-devs needs edit"}
    })
}

/// An item as the operator creates it, owned by its campaign.
fn item() -> Value {
    json!({
        "apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCertification",
        "metadata": {"name": "quarterly-20261001-0700-devs-edit-bob-0c0ffee0", "namespace": "gatehouse-system",
                     "labels": {"gatehouse.dev/campaign": "quarterly", "gatehouse.dev/run": "quarterly-20261001-0700"},
                     "ownerReferences": [{"apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
                                          "name": "quarterly", "uid": "u-campaign", "controller": true}]},
        "spec": {"campaign": "quarterly", "run": "quarterly-20261001-0700"}
    })
}

#[test]
fn a_certification_review_lists_every_group_of_its_reviewer() {
    let policy = vap(REVIEWER);
    // Sam is in security and in payments-devs, the subject group of the item:
    // leaving payments-devs out would hide a self-certification from the operator.
    let sams_groups = ["security", "payments-devs"];
    let hiding = Admission::create("sam", &sams_groups, sam_revokes_item(&["security"]));
    let denial = validate(&policy, &hiding).denial();
    assert!(
        denial.contains("a review of a certification item must list every group sam is in; spec.reviewer.groups leaves out payments-devs, system:authenticated"),
        "{denial}"
    );
    let complete = sam_revokes_item(&["security", "payments-devs", "system:authenticated"]);
    assert_eq!(
        validate(&policy, &Admission::create("sam", &sams_groups, complete)),
        Outcome::Allowed
    );
    // No groups listed at all is hiding them all.
    let mut bare = sam_revokes_item(&[]);
    bare["spec"]["reviewer"] = json!({"username": "sam"});
    assert!(matches!(
        validate(&policy, &Admission::create("sam", &sams_groups, bare)),
        Outcome::Denied(_)
    ));
    // A GitOps controller recording a signed-off review needs the on-behalf verb, as for requests.
    let bot = "system:serviceaccount:flux-system:kustomize-controller";
    let on_behalf = Admission::create(bot, &[], sam_revokes_item(&["security"]))
        .with_authz(Authz::none().grant(CREATE_ON_BEHALF, "accessreviews", None));
    assert_eq!(validate(&policy, &on_behalf), Outcome::Allowed);
    // Reviews of requests keep the subset rule: fewer groups than one has is fine.
    assert_eq!(
        validate(
            &policy,
            &Admission::create("erin", &["sre", "oncall"], erin_approves())
        ),
        Outcome::Allowed
    );
}

#[test]
fn only_the_operator_issues_or_changes_certification_items() {
    let policy = vap(ISSUER);
    let operator = "system:serviceaccount:gatehouse-system:gatehouse";
    let issue = Authz::none().grant(ISSUE_ITEMS, "accesscertifications", None);
    // A forged item: someone with create on items (granted too broadly) names
    // themselves reviewer of a binding they want gone.
    let denial = validate(&policy, &Admission::create("mallory", &["developers"], item())).denial();
    assert!(
        denial.contains("only the Gatehouse operator creates or changes AccessCertification items: mallory lacks the issue verb"),
        "{denial}"
    );
    assert_eq!(
        validate(
            &policy,
            &Admission::create(operator, &[], item()).with_authz(issue.clone())
        ),
        Outcome::Allowed
    );
    assert_eq!(
        validate(
            &policy,
            &Admission::create("admin", &[], item()).with_authz(Authz::cluster_admin())
        ),
        Outcome::Allowed
    );
    let update = |user: &str, change: &dyn Fn(&mut Value)| {
        let mut adm = Admission::create(user, &[], item());
        adm.operation = "UPDATE".into();
        adm.old_object = Some(item());
        change(&mut adm.object);
        adm
    };
    // Moving an item to another run by label, or cutting it from its campaign: refused.
    let relabel = update("mallory", &|o| {
        o["metadata"]["labels"]["gatehouse.dev/run"] = json!("other")
    });
    assert!(matches!(validate(&policy, &relabel), Outcome::Denied(_)));
    let orphan = update("mallory", &|o| {
        o["metadata"].as_object_mut().unwrap().remove("ownerReferences");
    });
    assert!(matches!(validate(&policy, &orphan), Outcome::Denied(_)));
    // The garbage collector's finalizer bookkeeping needs no verb.
    let gc = update(
        "system:serviceaccount:kube-system:generic-garbage-collector",
        &|o| o["metadata"]["finalizers"] = json!(["foregroundDeletion"]),
    );
    assert_eq!(validate(&policy, &gc), Outcome::Allowed);
    // Deletes are left to RBAC (deleting a campaign deletes its items); status to the status writer.
    let mut delete = Admission::create("mallory", &[], item());
    delete.operation = "DELETE".into();
    assert_eq!(validate(&policy, &delete), Outcome::NotMatched);
    let status = Admission::write_status("sam", &["security"], item());
    assert_eq!(validate(&policy, &status), Outcome::NotMatched);
    let denial = validate(&vap(STATUS), &status).denial();
    assert!(
        denial.contains("only the Gatehouse operator writes accesscertifications/status"),
        "{denial}"
    );
    let granted = Authz::none().grant(WRITE_STATUS, "accesscertifications/status", None);
    let operator_status = Admission::write_status(operator, &[], item()).with_authz(granted);
    assert_eq!(validate(&vap(STATUS), &operator_status), Outcome::Allowed);
}

#[test]
fn the_status_writer_check_works_for_cluster_scoped_objects() {
    // The API server gives a request for a cluster-scoped object (a campaign's
    // status) no `namespace` at all: an expression reading request.namespace fails
    // there, and with failurePolicy Fail every campaign status write was refused
    // (seen on a real API server). The verb is checked cluster-wide instead.
    let policy = vap(STATUS);
    let var = &policy["spec"]["variables"][0]["expression"];
    assert!(!var.as_str().unwrap().contains("request.namespace"), "{var}");
    let campaign = json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "AccessCampaign",
                          "metadata": {"name": "quarterly"}, "spec": {}});
    let operator = "system:serviceaccount:gatehouse-system:gatehouse";
    let granted = Authz::none().grant(WRITE_STATUS, "accesscampaigns/status", None);
    let adm = Admission::write_status(operator, &[], campaign.clone()).with_authz(granted);
    assert_eq!(validate(&policy, &adm), Outcome::Allowed);
    // A grant bound in one namespace does not reach it.
    let narrow = Authz::none().grant(WRITE_STATUS, "accesscampaigns/status", Some("payments"));
    let adm = Admission::write_status("dana", &[], campaign).with_authz(narrow);
    assert!(matches!(validate(&policy, &adm), Outcome::Denied(_)));
}

// ---------------------------------------------------------------------------
// The optional MutatingAdmissionPolicies.

#[test]
fn typed_literals_are_rewritten_field_by_field() {
    assert_eq!(
        struct_literals_as_maps("Object{spec: Object.spec{a: f(x, 'b: c'), list: [1, {'k': v}]}}"),
        "{'spec': {'a': f(x, 'b: c'), 'list': [1, {'k': v}]}}"
    );
    assert_eq!(
        struct_literals_as_maps(r#"[JSONPatch{op: "add", path: "/a", value: Object.a{b: c ? d : e}}]"#),
        r#"[{'op': "add", 'path': "/a", 'value': {'b': c ? d : e}}]"#
    );
    // The JSON patch model refuses what the API server refuses.
    let mut obj = json!({"spec": {}});
    assert!(json_patch(&mut obj, &json!([{"op": "add", "path": "/status/x", "value": 1}])).is_err());
    assert!(json_patch(
        &mut obj,
        &json!([{"op": "replace", "path": "/spec/x", "value": 1}])
    )
    .is_err());
    json_patch(&mut obj, &json!([{"op": "add", "path": "/spec/x", "value": 1}])).unwrap();
    assert_eq!(obj, json!({"spec": {"x": 1}}));
}

#[test]
fn the_mutating_policy_fills_an_empty_requester_with_the_creator() {
    let policy = doc("MutatingAdmissionPolicy", "gatehouse-fill-requester");
    let plain = with_identity(dana_view(), "requester", Value::Null);
    let adm = Admission::create("dana", &["developers"], plain.clone());
    let filled = mutate(&policy, &adm).expect("an empty requester is filled");
    assert_eq!(
        filled["spec"]["requester"],
        json!({"username": "dana", "groups": ["developers", "system:authenticated"]})
    );
    // Only the requester changed, and the result is a well-formed ApprovalRequest...
    let mut expected = plain;
    expected["spec"]["requester"] = filled["spec"]["requester"].clone();
    assert_eq!(filled, expected);
    let typed: ApprovalRequest = serde_json::from_value(filled.clone()).unwrap();
    assert_eq!(typed.spec.requester.username, "dana");
    typed.validate_cel().unwrap();
    // ...that the validating policy then accepts.
    let mut after = adm.clone();
    after.object = filled;
    assert_eq!(validate(&vap(REQUESTER), &after), Outcome::Allowed);

    // An empty requester, or one without a username, is treated as left out, and
    // replaced whole: claimed groups do not survive.
    for partial in [json!({}), json!({"username": ""}), json!({"groups": ["sre"]})] {
        let obj = with_identity(dana_view(), "requester", partial.clone());
        let filled = mutate(&policy, &Admission::create("erin", &["oncall"], obj)).unwrap();
        assert_eq!(
            filled["spec"]["requester"],
            json!({"username": "erin", "groups": ["oncall", "system:authenticated"]}),
            "{partial}"
        );
    }
    // Without a spec there is nothing to fill in; the CRD schema refuses the object.
    let mut no_spec = dana_view();
    no_spec.as_object_mut().unwrap().remove("spec");
    assert_eq!(mutate(&policy, &Admission::create("dana", &[], no_spec)), None);
}

#[test]
fn the_mutating_policy_leaves_a_named_identity_to_the_validating_policy() {
    let policy = doc("MutatingAdmissionPolicy", "gatehouse-fill-requester");
    // Mallory names Dana: nothing is filled over it, and validation refuses it.
    let adm = Admission::create("mallory", &["developers"], dana_view());
    assert_eq!(mutate(&policy, &adm), None);
    assert!(matches!(validate(&vap(REQUESTER), &adm), Outcome::Denied(_)));
}

#[test]
fn the_mutating_policy_fills_an_empty_reviewer_with_the_creator() {
    let policy = doc("MutatingAdmissionPolicy", "gatehouse-fill-reviewer");
    let plain = with_identity(erin_approves(), "reviewer", Value::Null);
    let adm = Admission::create("erin", &["sre"], plain);
    let filled = mutate(&policy, &adm).unwrap();
    assert_eq!(
        filled["spec"]["reviewer"],
        json!({"username": "erin", "groups": ["sre", "system:authenticated"]})
    );
    let typed: AccessReview = serde_json::from_value(filled.clone()).unwrap();
    typed.validate_cel().unwrap();
    let mut after = adm;
    after.object = filled;
    assert_eq!(validate(&vap(REVIEWER), &after), Outcome::Allowed);
    // A named reviewer is left alone.
    assert_eq!(
        mutate(&policy, &Admission::create("dana", &[], erin_approves())),
        None
    );
}

// ---------------------------------------------------------------------------
// The manifests themselves.

#[test]
fn manifests_are_well_formed_admissionregistration_objects() {
    // Round-tripping through the k8s-openapi types drops any field they do not
    // know, so a typo (`validation:` for `validations:`) shows up as a difference.
    fn round_trips<T: serde::de::DeserializeOwned + serde::Serialize>(doc: &Value) {
        let typed: T = serde_json::from_value(doc.clone()).unwrap_or_else(|e| panic!("{e}: {doc}"));
        assert_eq!(&serde_json::to_value(typed).unwrap(), doc);
    }
    let docs = shipped();
    let mut kinds: Vec<&str> = Vec::new();
    for d in &docs {
        let kind = d["kind"].as_str().unwrap();
        kinds.push(kind);
        match kind {
            "ValidatingAdmissionPolicy" => {
                round_trips::<ValidatingAdmissionPolicy>(d);
                // Fail closed: an error (a missing field, the authorizer down) denies.
                assert_eq!(d["spec"]["failurePolicy"], "Fail", "{d}");
            }
            "ValidatingAdmissionPolicyBinding" => {
                round_trips::<ValidatingAdmissionPolicyBinding>(d);
                assert_eq!(d["spec"]["validationActions"], json!(["Deny"]));
                assert_eq!(d["spec"]["policyName"], d["metadata"]["name"]);
                vap(d["spec"]["policyName"].as_str().unwrap());
            }
            // k8s-openapi has MutatingAdmissionPolicy as v1beta1 only for v1_34; v1
            // has the same shape, so its types check the v1 manifests' fields.
            "MutatingAdmissionPolicy" => {
                let mut beta = d.clone();
                beta["apiVersion"] = json!("admissionregistration.k8s.io/v1beta1");
                round_trips::<MutatingAdmissionPolicy>(&beta);
                assert_eq!(d["apiVersion"], "admissionregistration.k8s.io/v1");
                assert_eq!(d["spec"]["failurePolicy"], "Fail");
            }
            "MutatingAdmissionPolicyBinding" => {
                let mut beta = d.clone();
                beta["apiVersion"] = json!("admissionregistration.k8s.io/v1beta1");
                round_trips::<MutatingAdmissionPolicyBinding>(&beta);
                assert_eq!(d["spec"]["policyName"], d["metadata"]["name"]);
                doc(
                    "MutatingAdmissionPolicy",
                    d["spec"]["policyName"].as_str().unwrap(),
                );
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == "ValidatingAdmissionPolicy")
            .count(),
        5
    );
    assert_eq!(
        kinds.iter().filter(|k| **k == "MutatingAdmissionPolicy").count(),
        2
    );
}

#[test]
fn every_authorizer_check_asks_for_a_gatehouse_virtual_verb() {
    // The verbs the policies ask for are the ones `gatehouse rbac` grants
    // (tests/rbac.rs checks the other side).
    let adm = Admission::create("anyone", &[], dana_view());
    let mut verbs = Vec::new();
    for d in shipped() {
        for var in d["spec"]["variables"].as_array().into_iter().flatten() {
            let expr = var["expression"].as_str().unwrap();
            if expr.contains("authorizer") {
                let check = parse_authorizer(expr, &adm);
                assert_eq!(check.group, "gatehouse.dev", "{expr}");
                verbs.push(check.verb);
            }
        }
    }
    verbs.sort();
    verbs.dedup();
    // `update` too: changing a NotificationChannel is what RBAC's update allows,
    // asked again because `patch` (which a tester holds) reaches admission as well.
    assert_eq!(
        verbs,
        [
            CREATE_ON_BEHALF,
            ISSUE_ITEMS,
            TEST_CHANNELS,
            "update",
            WRITE_STATUS
        ]
    );
}

#[test]
fn kube_cel_cannot_call_the_authorizer_so_the_test_models_it() {
    // Pins the limitation this file works around: if kube-cel learns `authorizer`,
    // this fails and the model above can go.
    let adm = Admission::create("dana", &["developers"], dana_view());
    let policy = vap(REQUESTER);
    let raw = policy["spec"]["variables"][1]["expression"].as_str().unwrap();
    let results = adm.evaluator().evaluate(&[VapExpression {
        expression: raw.into(),
        message: None,
        message_expression: None,
    }]);
    assert!(!results[0].passed, "{results:?}");
    assert!(
        results[0]
            .message
            .as_deref()
            .unwrap_or_default()
            .contains("error"),
        "{results:?}"
    );
}

#[test]
fn the_binary_prints_the_committed_manifests() {
    let printed = gatehouse::admission::render(Some(gatehouse::admission::MutatingApi::V1));
    let mut expected = Vec::new();
    for file in VALIDATING.iter().chain([&MUTATING]) {
        expected.push(std::fs::read_to_string(repo().join(file.path)).unwrap());
    }
    assert_eq!(printed, expected.join("---\n"));
    // Every YAML file in config/admission is shipped (nothing forgotten in the binary).
    let mut on_disk: Vec<String> = Vec::new();
    for dir in ["config/admission", "config/admission/mutating"] {
        for entry in std::fs::read_dir(repo().join(dir)).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".yaml") {
                on_disk.push(format!("{dir}/{name}"));
            }
        }
    }
    on_disk.sort();
    let mut shipped: Vec<String> = VALIDATING
        .iter()
        .chain([&MUTATING])
        .map(|f| f.path.to_string())
        .collect();
    shipped.sort();
    assert_eq!(on_disk, shipped);
    // And the kustomizations list the same files.
    for (dir, files) in [
        ("config/admission", VALIDATING.iter().collect::<Vec<_>>()),
        ("config/admission/mutating", vec![&MUTATING]),
    ] {
        let k = documents(&std::fs::read_to_string(repo().join(dir).join("Kustomization")).unwrap());
        let listed: Vec<String> = k[0]["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{dir}/{}", r.as_str().unwrap()))
            .collect();
        let files: Vec<String> = files.iter().map(|f| f.path.to_string()).collect();
        assert_eq!(listed, files);
    }
}

#[test]
fn the_admission_command_prints_the_policies_and_the_beta_copy_on_request() {
    use gatehouse::admission::{render, MutatingApi};
    let bin = env!("CARGO_BIN_EXE_gatehouse");
    for (args, expected) in [
        (vec!["admission"], render(None)),
        (
            vec!["admission", "--mutating", "v1"],
            render(Some(MutatingApi::V1)),
        ),
        (
            vec!["admission", "--mutating", "v1beta1"],
            render(Some(MutatingApi::V1beta1)),
        ),
    ] {
        let out = std::process::Command::new(bin).args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8(out.stdout).unwrap(), expected, "{args:?}");
    }
    // The beta copy is the same policies under admissionregistration.k8s.io/v1beta1.
    let beta = documents(&gatehouse::admission::mutating(MutatingApi::V1beta1));
    let v1 = documents(MUTATING.yaml);
    assert_eq!(beta.len(), v1.len());
    for (b, v) in beta.iter().zip(&v1) {
        assert_eq!(b["apiVersion"], "admissionregistration.k8s.io/v1beta1");
        assert_eq!(b["spec"], v["spec"]);
    }
}

// ---------------------------------------------------------------------------
// NotificationChannels: who may change one, and who may only ask for a test.

const CHANNELS: &str = "gatehouse-notification-channels";

fn channel() -> Value {
    json!({"apiVersion": "gatehouse.dev/v1alpha1", "kind": "NotificationChannel",
           "metadata": {"name": "slack-sre", "labels": {"team": "sre"},
                        "annotations": {"gatehouse.dev/test-requested-at": "2026-12-01T09:00:00.000000Z",
                                        "note": "pager"}},
           "spec": {"type": "slack", "secretRef": {"name": "slack-sre"}, "events": ["ReviewRequired"]}})
}

const TEST_ANNOTATION: &str = "gatehouse.dev/test-requested-at";
/// How kube-cel hands that key to a comprehension: it escapes map keys as if they
/// were schema property names (the API server does not, for a map such as
/// `metadata.annotations`).
const TEST_ANNOTATION_IN_KUBE_CEL: &str = "gatehouse__dot__dev__slash__test__dash__requested__dash__at";

/// The shipped policy with the annotation key written the way kube-cel iterates
/// it ([`TEST_ANNOTATION_IN_KUBE_CEL`]); nothing else changes.
fn channels_policy() -> Value {
    let mut policy = vap(CHANNELS);
    for var in policy["spec"]["variables"].as_array_mut().unwrap() {
        let expr = var["expression"].as_str().unwrap().to_string();
        var["expression"] = json!(expr.replace(
            &format!("'{TEST_ANNOTATION}'"),
            &format!("'{TEST_ANNOTATION_IN_KUBE_CEL}'")
        ));
    }
    policy
}

#[test]
fn kube_cel_escapes_map_keys_so_the_channel_test_rewrites_one_literal() {
    // Pins the kube-cel behaviour `channels_policy` works around: if this fails,
    // kube-cel iterates keys as they are and the rewrite can go.
    let adm = channel_update("tess", Authz::none(), &|_| {});
    let results = adm.evaluator().evaluate(&[VapExpression {
        expression: format!("object.metadata.annotations.exists(k, k == '{TEST_ANNOTATION_IN_KUBE_CEL}')"),
        message: None,
        message_expression: None,
    }]);
    assert!(results[0].passed, "{results:?}");
    assert!(vap(CHANNELS)
        .to_string()
        .contains(&format!("'{TEST_ANNOTATION}'")));
}

fn channel_update(user: &str, authz: Authz, change: &dyn Fn(&mut Value)) -> Admission {
    let mut adm = Admission::create(user, &["testers"], channel()).with_authz(authz);
    adm.operation = "UPDATE".into();
    adm.old_object = Some(channel());
    change(&mut adm.object);
    adm
}

#[test]
fn a_tester_may_ask_for_a_test_and_change_nothing_else() {
    let policy = channels_policy();
    let tester = || Authz::none().grant(TEST_CHANNELS, "notificationchannels", None);
    let ask =
        |o: &mut Value| o["metadata"]["annotations"][TEST_ANNOTATION] = json!("2026-12-01T10:00:00.000000Z");
    assert_eq!(
        validate(&policy, &channel_update("tess", tester(), &ask)),
        Outcome::Allowed
    );
    // The first test of a channel without annotations.
    let mut first = channel_update("tess", tester(), &ask);
    first.old_object.as_mut().unwrap()["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("annotations");
    first.object["metadata"]["annotations"]
        .as_object_mut()
        .unwrap()
        .remove("note");
    assert_eq!(validate(&policy, &first), Outcome::Allowed);

    type Change<'a> = (&'a str, &'a dyn Fn(&mut Value));
    let changes: [Change; 7] = [
        ("suspend", &|o| o["spec"]["suspend"] = json!(true)),
        ("events", &|o| o["spec"]["events"] = json!([])),
        ("secretRef", &|o| {
            o["spec"]["secretRef"]["name"] = json!("mallory-hook")
        }),
        ("a label", &|o| o["metadata"]["labels"]["team"] = json!("none")),
        ("another annotation", &|o| {
            o["metadata"]["annotations"]["note"] = json!("x")
        }),
        ("a removed annotation", &|o| {
            o["metadata"]["annotations"]
                .as_object_mut()
                .unwrap()
                .remove("note");
        }),
        ("a finalizer", &|o| {
            o["metadata"]["finalizers"] = json!(["example.com/hold"])
        }),
    ];
    for (what, change) in changes {
        let both = |o: &mut Value| {
            ask(o);
            change(o);
        };
        let denial = validate(&policy, &channel_update("tess", tester(), &both)).denial();
        assert_eq!(
            denial,
            "tess may not change NotificationChannel slack-sre: that needs the update verb on \
             notificationchannels; the test verb allows only a new gatehouse.dev/test-requested-at \
             annotation (kubectl gatehouse notify test)",
            "{what}"
        );
        // Whoever may update changes what they like.
        let editor = Authz::none().grant("update", "notificationchannels", None);
        assert_eq!(
            validate(&policy, &channel_update("erin", editor, &both)),
            Outcome::Allowed,
            "{what}"
        );
        assert_eq!(
            validate(&policy, &channel_update("root", Authz::cluster_admin(), &both)),
            Outcome::Allowed,
            "{what}"
        );
    }
    // `patch` alone (no test verb) does not even ask for a test.
    let patcher = Authz::none().grant("patch", "notificationchannels", None);
    let denial = validate(&policy, &channel_update("pat", patcher, &ask)).denial();
    assert!(
        denial.starts_with(
            "pat may not request a test message from NotificationChannel slack-sre: that needs the test verb"
        ),
        "{denial}"
    );
    // The verb bound in one namespace is no verb at all here (channels are cluster-scoped).
    let namespaced = Authz::none().grant(TEST_CHANNELS, "notificationchannels", Some("team-a"));
    assert!(matches!(
        validate(&policy, &channel_update("nina", namespaced, &ask)),
        Outcome::Denied(_)
    ));
    // Creating and deleting are RBAC's alone; status is the operator's.
    assert_eq!(
        validate(&policy, &Admission::create("erin", &[], channel())),
        Outcome::NotMatched
    );
    let status = Admission::write_status("tess", &[], channel());
    assert_eq!(validate(&policy, &status), Outcome::NotMatched);
    // A forged test result (say a 200 from an endpoint that is down) needs write-status.
    let denial = validate(&vap(STATUS), &status).denial();
    assert!(
        denial.contains("only the Gatehouse operator writes notificationchannels/status"),
        "{denial}"
    );
}
