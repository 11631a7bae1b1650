//! The admission policies of `config/admission/`, evaluated as the API server
//! would: the very CEL in the shipped YAML runs in kube-cel's `VapEvaluator`
//! against admission-request fixtures (who creates what, with which groups, and
//! what the RBAC authorizer would answer).
//!
//! kube-cel cannot do everything the API server does; this harness bridges the
//! gaps explicitly (see also SECURITY.md, "How the admission CEL is tested"):
//!
//! - `variables` are not supported by `VapEvaluator`: each `variables.NAME` is
//!   replaced by the variable's own expression in parentheses (CEL expressions
//!   have no side effects, so inlining is exact).
//! - `authorizer` is not available: the shipped policies call it only inside a
//!   variable, never in a validation. Such a variable is parsed (group, resource,
//!   subresource, namespace, verb) and answered from the fixture's RBAC grants,
//!   then inlined as the literal `true` or `false` ([`authorizer`]). A call this
//!   model does not know fails the test rather than guessing.
//! - Typed object construction (`JSONPatch{..}`, `Object.spec.requester{..}` in the
//!   MutatingAdmissionPolicy) is not implemented by the `cel` crate (its interpreter
//!   reaches `todo!("Support structs!")`): the harness rewrites those literals into
//!   map literals with the same fields, which is what the API server turns them
//!   into (JSON), evaluates that and applies the resulting JSON patch ([`cel`]).

pub mod authorizer;
pub mod cel;
pub mod fixtures;

use kube::core::cel::{
    cel as cel_lang, AdmissionRequest, GroupVersionKind, GroupVersionResource, KubeCelExt, VapEvaluator,
    VapExpression,
};
use serde_json::{json, Value};

use authorizer::{parse_authorizer, Authz};
use cel::{cel_to_json, json_patch, struct_literals_as_maps};

/// One admission request, as the API server would present it to the policies.
#[derive(Clone, Debug)]
pub struct Admission {
    pub operation: String,
    pub username: String,
    pub groups: Vec<String>,
    /// Plural resource, e.g. `approvalrequests`.
    pub resource: String,
    /// `status` for a status write, else empty.
    pub subresource: String,
    pub namespace: String,
    pub name: String,
    pub kind: String,
    pub object: Value,
    pub old_object: Option<Value>,
    pub authz: Authz,
}

impl Admission {
    /// `user` (in `groups`) creates `object`.
    pub fn create(user: &str, groups: &[&str], object: Value) -> Self {
        let kind = object["kind"].as_str().unwrap_or_default().to_string();
        let resource = match kind.as_str() {
            "ApprovalRequest" => "approvalrequests",
            "AccessReview" => "accessreviews",
            "AccessPolicy" => "accesspolicies",
            "AccessCertification" => "accesscertifications",
            "AccessCampaign" => "accesscampaigns",
            "NotificationChannel" => "notificationchannels",
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
    pub fn write_status(user: &str, groups: &[&str], object: Value) -> Self {
        let mut adm = Admission::create(user, groups, object.clone());
        adm.operation = "UPDATE".into();
        adm.subresource = "status".into();
        adm.old_object = Some(object);
        adm
    }

    pub fn with_authz(mut self, authz: Authz) -> Self {
        self.authz = authz;
        self
    }

    pub fn evaluator(&self) -> VapEvaluator {
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
    pub fn request_json(&self) -> Value {
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
pub enum Outcome {
    /// The policy does not apply to this request.
    NotMatched,
    /// Every validation holds.
    Allowed,
    /// The messages of the validations that failed.
    Denied(Vec<String>),
}

impl Outcome {
    pub fn denial(&self) -> String {
        match self {
            Outcome::Denied(messages) => messages.join(" | "),
            other => panic!("expected a denial, got {other:?}"),
        }
    }
}

/// Whether the policy's `matchConstraints.resourceRules` select the request, with
/// the API server's rules: `resources: [x]` matches x but not its subresources,
/// `x/status` only that subresource, `*` every resource, `*/*` everything.
pub fn rules_match(policy: &Value, adm: &Admission) -> bool {
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
pub fn substitute(expr: &str, name: &str, value: &str) -> String {
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
pub fn variable_values(policy: &Value, adm: &Admission) -> Vec<(String, String)> {
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

pub fn inline(expr: &str, values: &[(String, String)]) -> String {
    let out = values
        .iter()
        .fold(expr.to_string(), |e, (name, value)| substitute(&e, name, value));
    assert!(!out.contains("variables."), "unknown variable in {expr}");
    out
}

/// Evaluates a ValidatingAdmissionPolicy against an admission request.
pub fn validate(policy: &Value, adm: &Admission) -> Outcome {
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

/// Runs a MutatingAdmissionPolicy on the request: `None` if its match conditions
/// leave the object alone, else the mutated object.
pub fn mutate(policy: &Value, adm: &Admission) -> Option<Value> {
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
        let program = cel_lang::Program::compile(&expr).unwrap_or_else(|e| panic!("{expr}: {e}"));
        let mut ctx = cel_lang::Context::default().with_all();
        ctx.add_variable_from_value("object", cel_lang::to_value(&adm.object).unwrap());
        ctx.add_variable_from_value("oldObject", cel_lang::Value::Null);
        ctx.add_variable_from_value("request", cel_lang::to_value(adm.request_json()).unwrap());
        let ops = cel_to_json(&program.execute(&ctx).unwrap_or_else(|e| panic!("{expr}: {e}")));
        json_patch(&mut object, &ops).unwrap_or_else(|e| panic!("{expr}: {e}"));
    }
    Some(object)
}
