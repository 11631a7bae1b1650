//! The shipped admission manifests and the example objects the scenarios start from.

use gatehouse::admission::{MUTATING, VALIDATING};
use serde_json::Value;

use crate::support::tools::{documents, repo};

/// Every document of the shipped admission manifests, read from disk.
pub fn shipped() -> Vec<Value> {
    let mut docs = Vec::new();
    for file in VALIDATING.iter().chain([&MUTATING]) {
        docs.extend(documents(
            &std::fs::read_to_string(repo().join(file.path)).unwrap(),
        ));
    }
    docs
}

pub fn doc(kind: &str, name: &str) -> Value {
    shipped()
        .into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in config/admission"))
}

pub fn vap(name: &str) -> Value {
    doc("ValidatingAdmissionPolicy", name)
}

pub fn example(file: &str, name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join("examples").join(file)).unwrap();
    documents(&text)
        .into_iter()
        .find(|d| d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in examples/{file}"))
}

/// Dana's request from the examples: `requester: {username: dana, groups: [developers]}`.
pub fn dana_view() -> Value {
    example("requests.yaml", "dana-view")
}

/// Erin's approval of it: `reviewer: {username: erin, groups: [sre]}`.
pub fn erin_approves() -> Value {
    example("reviews.yaml", "dana-view-erin")
}

/// `object` with `spec.FIELD` (requester or reviewer) set to `identity`, or removed if it is null.
pub fn with_identity(mut object: Value, field: &str, identity: Value) -> Value {
    if identity.is_null() {
        object["spec"].as_object_mut().unwrap().remove(field);
    } else {
        object["spec"][field] = identity;
    }
    object
}

/// The names of the three ValidatingAdmissionPolicies.
pub const REQUESTER: &str = "gatehouse-requester-identity";
pub const REVIEWER: &str = "gatehouse-reviewer-identity";
pub const STATUS: &str = "gatehouse-status-writer";
