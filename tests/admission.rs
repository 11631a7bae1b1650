//! The admission policies in `config/admission/`, evaluated as the API server
//! would: the very CEL in the shipped YAML runs in kube-cel's `VapEvaluator`
//! against admission-request fixtures (who creates what, with which groups, and
//! what the RBAC authorizer would answer).
//!
//! kube-cel cannot do everything the API server does; this file bridges the gaps
//! explicitly (see also SECURITY.md, "How the admission CEL is tested"):
//!
//! - `variables` are not supported by `VapEvaluator`: each `variables.NAME` is
//!   replaced by the variable's own expression in parentheses (CEL expressions
//!   have no side effects, so inlining is exact).
//! - `authorizer` is not available: the shipped policies call it only inside a
//!   variable, never in a validation. Such a variable is parsed (group, resource,
//!   subresource, namespace, verb) and answered from the fixture's RBAC grants,
//!   then inlined as the literal `true` or `false`. A call this model does not know
//!   fails the test rather than guessing.
//! - Typed object construction (`JSONPatch{..}`, `Object.spec.requester{..}` in the
//!   MutatingAdmissionPolicy) is not implemented by the `cel` crate (its interpreter
//!   reaches `todo!("Support structs!")`): the test rewrites those literals into
//!   map literals with the same fields, which is what the API server turns them
//!   into (JSON), evaluates that and applies the resulting JSON patch.

use std::path::PathBuf;

use gatehouse::admission::{CREATE_ON_BEHALF, ISSUE_ITEMS, MUTATING, VALIDATING, WRITE_STATUS};
use gatehouse::api::{AccessReview, ApprovalRequest};
use k8s_openapi::api::admissionregistration::{
    v1::{ValidatingAdmissionPolicy, ValidatingAdmissionPolicyBinding},
    v1beta1::{MutatingAdmissionPolicy, MutatingAdmissionPolicyBinding},
};
use kube::core::cel::{
    cel, AdmissionRequest, GroupVersionKind, GroupVersionResource, KubeCelExt, VapEvaluator, VapExpression,
};
use serde_json::{json, Value};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text).unwrap()
}

/// Every document of the shipped admission manifests, read from disk.
fn shipped() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in VALIDATING.iter().chain([&MUTATING]) {
        docs.extend(yaml_docs(
            &std::fs::read_to_string(repo().join(file.path)).unwrap(),
        ));
    }
    docs
}

fn doc(kind: &str, name: &str) -> Value {
    shipped()
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in config/admission"))
}

fn vap(name: &str) -> Value {
    doc("ValidatingAdmissionPolicy", name)
}

fn example(file: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(file)).unwrap();
    yaml_docs(&text)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in examples/{file}"))
}

// ---------------------------------------------------------------------------
// The authorizer, modelled: the RBAC grants of the user in a fixture.

/// One permission of the fixture user, like an RBAC rule bound to them.
#[derive(Clone, Debug)]
struct Grant {
    verb: String,
    group: String,
    /// `resource` or `resource/subresource`; `*` for any.
    resource: String,
    /// `None`: granted cluster-wide (ClusterRoleBinding).
    namespace: Option<String>,
}

/// What the API server's authorizer would answer for the fixture user.
#[derive(Clone, Debug, Default)]
struct Authz(Vec<Grant>);

impl Authz {
    fn none() -> Self {
        Authz::default()
    }

    /// Cluster admin: `*` verbs on `*` resources everywhere (as the `cluster-admin` ClusterRole).
    fn cluster_admin() -> Self {
        Authz(vec![Grant {
            verb: "*".into(),
            group: "*".into(),
            resource: "*".into(),
            namespace: None,
        }])
    }

    fn grant(mut self, verb: &str, resource: &str, namespace: Option<&str>) -> Self {
        self.0.push(Grant {
            verb: verb.into(),
            group: "gatehouse.dev".into(),
            resource: resource.into(),
            namespace: namespace.map(str::to_string),
        });
        self
    }

    fn allows(&self, c: &AuthzCheck) -> bool {
        let resource = if c.subresource.is_empty() {
            c.resource.clone()
        } else {
            format!("{}/{}", c.resource, c.subresource)
        };
        self.0.iter().any(|g| {
            (g.verb == "*" || g.verb == c.verb)
                && (g.group == "*" || g.group == c.group)
                && (g.resource == "*" || g.resource == resource)
                && g.namespace.as_ref().is_none_or(|ns| *ns == c.namespace)
        })
    }
}

/// One `authorizer.group(..).resource(..)...check(verb).allowed()` call.
#[derive(Debug, Default, PartialEq)]
struct AuthzCheck {
    group: String,
    resource: String,
    subresource: String,
    namespace: String,
    verb: String,
}

/// Parses an authorizer chain as the shipped policies write it. Arguments are
/// string literals or fields of `request`. Anything else fails the test: the model
/// must be extended before a policy may rely on it.
fn parse_authorizer(expr: &str, adm: &Admission) -> AuthzCheck {
    let expr: String = expr.split_whitespace().collect();
    let mut rest = expr.strip_prefix("authorizer").unwrap_or_else(|| {
        panic!("an authorizer variable must be exactly one authorizer call chain: {expr}")
    });
    let mut check = AuthzCheck::default();
    let mut allowed = false;
    while !rest.is_empty() {
        let call = rest
            .strip_prefix('.')
            .unwrap_or_else(|| panic!("unexpected {rest:?} in {expr}"));
        let open = call.find('(').unwrap_or_else(|| panic!("no call in {call:?}"));
        let close = call
            .find(')')
            .unwrap_or_else(|| panic!("unclosed call in {call:?}"));
        let (method, arg) = (&call[..open], &call[open + 1..close]);
        let value = || -> String {
            if let Some(lit) = arg.strip_prefix('\'').and_then(|a| a.strip_suffix('\'')) {
                lit.to_string()
            } else {
                match arg {
                    "request.namespace" => adm.namespace.clone(),
                    "request.resource.resource" => adm.resource.clone(),
                    "request.name" => adm.name.clone(),
                    other => panic!("the authorizer model does not know the argument {other:?}"),
                }
            }
        };
        match method {
            "group" => check.group = value(),
            "resource" => check.resource = value(),
            "subresource" => check.subresource = value(),
            "namespace" => check.namespace = value(),
            "check" => check.verb = value(),
            "allowed" if arg.is_empty() => allowed = true,
            other => panic!("the authorizer model does not know .{other}({arg})"),
        }
        rest = &call[close + 1..];
    }
    assert!(
        allowed && !check.verb.is_empty(),
        "the chain must end in .check(verb).allowed(): {expr}"
    );
    check
}

// ---------------------------------------------------------------------------
// Admission requests and the evaluation of a policy against one.

/// One admission request, as the API server would present it to the policies.
#[derive(Clone, Debug)]
struct Admission {
    operation: String,
    username: String,
    groups: Vec<String>,
    /// Plural resource, e.g. `approvalrequests`.
    resource: String,
    /// `status` for a status write, else empty.
    subresource: String,
    namespace: String,
    name: String,
    kind: String,
    object: Value,
    old_object: Option<Value>,
    authz: Authz,
}

impl Admission {
    /// `user` (in `groups`) creates `object`.
    fn create(user: &str, groups: &[&str], object: Value) -> Self {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let resource = match kind.as_str() {
            "ApprovalRequest" => "approvalrequests",
            "AccessReview" => "accessreviews",
            "AccessPolicy" => "accesspolicies",
            "AccessCertification" => "accesscertifications",
            "AccessCampaign" => "accesscampaigns",
            other => panic!("not a Gatehouse kind: {other}"),
        };
        Admission {
            operation: "CREATE".into(),
            username: user.into(),
            // The API server adds system:authenticated to every authenticated user.
            groups: groups
                .iter()
                .map(|g| g.to_string())
                .chain(["system:authenticated".to_string()])
                .collect(),
            resource: resource.into(),
            subresource: String::new(),
            namespace: object["metadata"]["namespace"]
                .as_str()
                .unwrap_or_default()
                .into(),
            name: object["metadata"]["name"].as_str().unwrap_or_default().into(),
            kind,
            object,
            old_object: None,
            authz: Authz::none(),
        }
    }

    /// `user` writes the status of `object`.
    fn write_status(user: &str, groups: &[&str], object: Value) -> Self {
        let mut adm = Admission::create(user, groups, object.clone());
        adm.operation = "UPDATE".into();
        adm.subresource = "status".into();
        adm.old_object = Some(object);
        adm
    }

    fn with_authz(mut self, authz: Authz) -> Self {
        self.authz = authz;
        self
    }

    fn evaluator(&self) -> VapEvaluator {
        let mut builder = VapEvaluator::builder()
            .object(self.object.clone())
            .request(AdmissionRequest {
                operation: self.operation.clone(),
                username: self.username.clone(),
                uid: format!("uid-of-{}", self.username),
                groups: self.groups.clone(),
                name: self.name.clone(),
                namespace: self.namespace.clone(),
                dry_run: false,
                kind: GroupVersionKind {
                    group: "gatehouse.dev".into(),
                    version: "v1alpha1".into(),
                    kind: self.kind.clone(),
                },
                resource: GroupVersionResource {
                    group: "gatehouse.dev".into(),
                    version: "v1alpha1".into(),
                    resource: self.resource.clone(),
                },
            });
        if let Some(old) = &self.old_object {
            builder = builder.old_object(old.clone());
        }
        builder.build()
    }

    /// The `request` variable as a JSON value (for direct `cel` evaluation), in the
    /// shape kube-cel gives it.
    fn request_json(&self) -> Value {
        json!({
            "operation": self.operation,
            "name": self.name,
            "namespace": self.namespace,
            "dryRun": false,
            "kind": {"group": "gatehouse.dev", "version": "v1alpha1", "kind": self.kind},
            "resource": {"group": "gatehouse.dev", "version": "v1alpha1", "resource": self.resource},
            "userInfo": {
                "username": self.username,
                "uid": format!("uid-of-{}", self.username),
                "groups": self.groups,
            },
        })
    }
}

/// What a policy does with an admission request.
#[derive(Debug, PartialEq)]
enum Outcome {
    /// The policy does not apply to this request.
    NotMatched,
    /// Every validation holds.
    Allowed,
    /// The messages of the validations that failed.
    Denied(Vec<String>),
}

impl Outcome {
    fn denial(&self) -> String {
        match self {
            Outcome::Denied(messages) => messages.join(" | "),
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

/// Whether the policy's `matchConstraints.resourceRules` select the request, with
/// the API server's rules: `resources: [x]` matches x but not its subresources,
/// `x/status` only that subresource, `*` every resource, `*/*` everything.
fn rules_match(policy: &Value, adm: &Admission) -> bool {
    let rules = policy["spec"]["matchConstraints"]["resourceRules"]
        .as_array()
        .unwrap();
    let has = |list: &Value, item: &str| list.as_array().unwrap().iter().any(|v| v == item || v == "*");
    rules.iter().any(|r| {
        let resource_ok = r["resources"].as_array().unwrap().iter().any(|v| {
            let v = v.as_str().unwrap();
            let (res, sub) = v.split_once('/').unwrap_or((v, ""));
            (res == "*" || res == adm.resource)
                && (sub == adm.subresource || (sub == "*" && !adm.subresource.is_empty()))
        });
        has(&r["apiGroups"], "gatehouse.dev") && has(&r["operations"], &adm.operation) && resource_ok
    })
}

/// Replaces `variables.NAME` (as a whole identifier) with `value`.
fn substitute(expr: &str, name: &str, value: &str) -> String {
    let needle = format!("variables.{name}");
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(&needle) {
        let after = &rest[at + needle.len()..];
        let whole = !after.starts_with(|c: char| c.is_alphanumeric() || c == '_');
        out.push_str(&rest[..at]);
        out.push_str(if whole { value } else { &needle });
        rest = after;
    }
    out.push_str(rest);
    out
}

/// The policy's variables, each as the text that replaces `variables.NAME`:
/// its expression in parentheses, or `true`/`false` for an authorizer check.
fn variable_values(policy: &Value, adm: &Admission) -> Vec<(String, String)> {
    let mut values: Vec<(String, String)> = Vec::new();
    for var in policy["spec"]["variables"].as_array().into_iter().flatten() {
        let name = var["name"].as_str().unwrap().to_string();
        let expr = var["expression"].as_str().unwrap();
        let value = if expr.contains("authorizer") {
            adm.authz.allows(&parse_authorizer(expr, adm)).to_string()
        } else {
            format!("({})", inline(expr, &values))
        };
        values.push((name, value));
    }
    values
}

fn inline(expr: &str, values: &[(String, String)]) -> String {
    let out = values
        .iter()
        .fold(expr.to_string(), |e, (name, value)| substitute(&e, name, value));
    assert!(!out.contains("variables."), "unknown variable in {expr}");
    out
}

/// Evaluates a ValidatingAdmissionPolicy against an admission request.
fn validate(policy: &Value, adm: &Admission) -> Outcome {
    assert_eq!(policy["kind"], "ValidatingAdmissionPolicy");
    if !rules_match(policy, adm) {
        return Outcome::NotMatched;
    }
    let values = variable_values(policy, adm);
    let expressions: Vec<VapExpression> = policy["spec"]["validations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let text = |key: &str| v[key].as_str().map(str::to_string);
            for key in ["expression", "messageExpression"] {
                assert!(
                    !text(key).unwrap_or_default().contains("authorizer"),
                    "call the authorizer only in a variable, so that the test can model it: {v}"
                );
            }
            VapExpression {
                expression: inline(&text("expression").unwrap(), &values),
                message: text("message"),
                message_expression: text("messageExpression").map(|m| inline(&m, &values)),
            }
        })
        .collect();
    let failed: Vec<String> = adm
        .evaluator()
        .evaluate(&expressions)
        .into_iter()
        .filter(|r| !r.passed)
        .map(|r| r.message.unwrap_or_default())
        .collect();
    if failed.is_empty() {
        Outcome::Allowed
    } else {
        Outcome::Denied(failed)
    }
}

// ---------------------------------------------------------------------------
// Fixtures.

/// Dana's request from the examples: `requester: {username: dana, groups: [developers]}`.
fn dana_view() -> Value {
    example("requests.yaml", "dana-view")
}

/// Erin's approval of it: `reviewer: {username: erin, groups: [sre]}`.
fn erin_approves() -> Value {
    example("reviews.yaml", "dana-view-erin")
}

fn with_identity(mut object: Value, field: &str, identity: Value) -> Value {
    if identity.is_null() {
        object["spec"].as_object_mut().unwrap().remove(field);
    } else {
        object["spec"][field] = identity;
    }
    object
}

const REQUESTER: &str = "gatehouse-requester-identity";
const REVIEWER: &str = "gatehouse-reviewer-identity";
const STATUS: &str = "gatehouse-status-writer";

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
            "accesscertifications/status"
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

/// Rewrites typed object literals (`Object.spec{requester: x}`, `JSONPatch{op: ..}`)
/// into map literals (`{'requester': x}`): same fields, same JSON, evaluable by the
/// `cel` crate.
fn struct_literals_as_maps(expr: &str) -> String {
    #[derive(PartialEq)]
    enum Open {
        Struct,
        Other,
    }
    let chars: Vec<char> = expr.chars().collect();
    let mut out = String::new();
    let mut stack: Vec<Open> = Vec::new();
    let mut field_next = false;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' || c == '"' {
            // Copy a string literal through unchanged.
            let quote = c;
            out.push(c);
            i += 1;
            while i < chars.len() && chars[i] != quote {
                if chars[i] == '\\' {
                    out.push(chars[i]);
                    i += 1;
                }
                out.push(chars[i]);
                i += 1;
            }
            out.push(quote);
            i += 1;
            field_next = false;
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut j = i;
            while j < chars.len() && chars[j].is_whitespace() {
                j += 1;
            }
            let next = chars.get(j).copied();
            if (word == "Object" || word.starts_with("Object.") || word == "JSONPatch") && next == Some('{') {
                // A typed literal: drop the type name, keep the braces.
                stack.push(Open::Struct);
                out.push('{');
                i = j + 1;
                field_next = true;
            } else if field_next && next == Some(':') {
                out.push_str(&format!("'{word}'"));
                field_next = false;
            } else {
                out.push_str(&word);
                field_next = false;
            }
            continue;
        }
        match c {
            '{' | '[' | '(' => stack.push(Open::Other),
            '}' | ']' | ')' => {
                stack.pop();
            }
            ',' => field_next = stack.last() == Some(&Open::Struct),
            _ => {}
        }
        if !c.is_whitespace() && c != ',' {
            field_next = false;
        }
        out.push(c);
        i += 1;
    }
    out
}

fn cel_to_json(v: &cel::Value) -> Value {
    use cel::objects::Key;
    match v {
        cel::Value::Null => Value::Null,
        cel::Value::Bool(b) => json!(b),
        cel::Value::Int(i) => json!(i),
        cel::Value::UInt(u) => json!(u),
        cel::Value::Float(f) => json!(f),
        cel::Value::String(s) => json!(s.as_str()),
        cel::Value::List(items) => Value::Array(items.iter().map(cel_to_json).collect()),
        cel::Value::Map(m) => Value::Object(
            m.map
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Key::String(s) => s.to_string(),
                        other => panic!("non-string key {other:?}"),
                    };
                    (key, cel_to_json(v))
                })
                .collect(),
        ),
        other => panic!("unexpected CEL value {other:?}"),
    }
}

/// Applies RFC 6902 operations as the API server does for a `JSONPatch`
/// mutation. Only what the shipped policies use (`add`, `replace`) is modelled.
fn json_patch(target: &mut Value, ops: &Value) -> Result<(), String> {
    for op in ops.as_array().ok_or("a JSON patch is a list")? {
        let path = op["path"].as_str().ok_or("op without path")?;
        let mut keys: Vec<String> = path
            .split('/')
            .skip(1)
            .map(|k| k.replace("~1", "/").replace("~0", "~"))
            .collect();
        let last = keys.pop().ok_or("empty path")?;
        let mut parent = &mut *target;
        for key in &keys {
            parent = parent
                .get_mut(key.as_str())
                .ok_or_else(|| format!("{path}: no {key}"))?;
        }
        let parent = parent
            .as_object_mut()
            .ok_or_else(|| format!("{path}: parent is not an object"))?;
        match op["op"].as_str() {
            // `add` creates or replaces the member; `replace` needs it to exist.
            Some("add") => {
                parent.insert(last, op["value"].clone());
            }
            Some("replace") if parent.contains_key(&last) => {
                parent.insert(last, op["value"].clone());
            }
            other => return Err(format!("{path}: op {other:?} is not modelled")),
        }
    }
    Ok(())
}

/// Runs a MutatingAdmissionPolicy on the request: `None` if its match conditions
/// leave the object alone, else the mutated object.
fn mutate(policy: &Value, adm: &Admission) -> Option<Value> {
    assert_eq!(policy["kind"], "MutatingAdmissionPolicy");
    let spec = &policy["spec"];
    assert!(
        spec["variables"].is_null(),
        "inline variables here as in validate()"
    );
    let conditions: Vec<VapExpression> = spec["matchConditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| VapExpression {
            expression: c["expression"].as_str().unwrap().into(),
            message: None,
            message_expression: None,
        })
        .collect();
    let results = adm.evaluator().evaluate(&conditions);
    for r in &results {
        assert!(
            r.passed || r.message.as_deref().is_some_and(|m| !m.contains("error")),
            "a match condition failed to evaluate: {r:?}"
        );
    }
    if !results.iter().all(|r| r.passed) {
        return None;
    }
    let mut object = adm.object.clone();
    for mutation in spec["mutations"].as_array().unwrap() {
        assert_eq!(mutation["patchType"], "JSONPatch");
        let expr = struct_literals_as_maps(mutation["jsonPatch"]["expression"].as_str().unwrap());
        let program = cel::Program::compile(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut ctx = cel::Context::default().with_all();
        ctx.add_variable_from_value("object", cel::to_value(&adm.object).unwrap());
        ctx.add_variable_from_value("oldObject", cel::Value::Null);
        ctx.add_variable_from_value("request", cel::to_value(adm.request_json()).unwrap());
        let ops = cel_to_json(&program.execute(&ctx).unwrap_or_else(|e| panic!("{expr}: {e}")));
        json_patch(&mut object, &ops).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
    Some(object)
}

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
        4
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
    assert_eq!(verbs, [CREATE_ON_BEHALF, ISSUE_ITEMS, WRITE_STATUS]);
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
        let k = yaml_docs(&std::fs::read_to_string(repo().join(dir).join("Kustomization")).unwrap());
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
    let beta = yaml_docs(&gatehouse::admission::mutating(MutatingApi::V1beta1));
    let v1 = yaml_docs(MUTATING.yaml);
    assert_eq!(beta.len(), v1.len());
    for (b, v) in beta.iter().zip(&v1) {
        assert_eq!(b["apiVersion"], "admissionregistration.k8s.io/v1beta1");
        assert_eq!(b["spec"], v["spec"]);
    }
}
