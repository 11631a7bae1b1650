//! Scenarios of access certification: given this cluster and this campaign, the
//! run has these items; given these reviews at these times, an item stands here.
//! The quarterly run starts on Thursday 2026-10-01 at 07:00 UTC and is due two
//! weeks later, on 2026-10-15 at 07:00 UTC.

mod campaign;
mod campaign_reconcile;
mod properties;
mod protect;
mod remediation;
mod replay;
mod risk;
mod schedule;
mod scope;
mod usage;

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        core::v1::{Namespace, ServiceAccount},
        rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
    },
    apimachinery::pkg::apis::meta::v1::Time,
};
use kube::ResourceExt;
use serde_json::Value;

use super::{
    evaluate::{evaluate, ItemEvaluation, ItemInput},
    inventory::{Inventory, Observed},
    schedule::{RunPlan, RunTrigger},
    scope::{launch, Launch},
};
use crate::api::{
    AccessCampaign, AccessCampaignSpec, AccessCertification, AccessPolicy, AccessReview, AccessReviewSpec,
    CertificationRef, ConvertTo, Decision, Identity, Principals,
};

/// "10-03 12:00" → 2026-10-03T12:00:00Z; a full RFC 3339 string is taken as is.
pub(super) fn at(s: &str) -> DateTime<Utc> {
    if s.len() == 11 {
        format!("2026-{}T{}:00Z", &s[..5], &s[6..]).parse().unwrap()
    } else {
        s.parse().unwrap()
    }
}

pub(super) fn k8s_time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32).unwrap())
}

/// The cluster from YAML documents of RBAC objects, Namespaces and ServiceAccounts.
/// Missing uids default to `uid-NAME`; every kind is observed even when absent.
pub(super) fn cluster(yaml: &str) -> Inventory {
    let mut inv = Inventory::observing(&[
        Observed::ClusterRoles,
        Observed::Roles,
        Observed::Namespaces,
        Observed::ServiceAccounts,
    ]);
    for mut doc in serde_saphyr::from_multiple::<Value>(yaml).unwrap() {
        if doc.is_null() {
            continue;
        }
        let name = doc["metadata"]["name"].as_str().unwrap().to_string();
        if doc["metadata"]["uid"].is_null() {
            doc["metadata"]["uid"] = Value::String(format!("uid-{name}"));
        }
        match doc["kind"].as_str().unwrap() {
            "RoleBinding" => inv.add_role_binding(&serde_json::from_value::<RoleBinding>(doc).unwrap()),
            "ClusterRoleBinding" => {
                inv.add_cluster_role_binding(&serde_json::from_value::<ClusterRoleBinding>(doc).unwrap())
            }
            "Role" => inv.add_role(&serde_json::from_value::<Role>(doc).unwrap()),
            "ClusterRole" => inv.add_cluster_role(&serde_json::from_value::<ClusterRole>(doc).unwrap()),
            "Namespace" => inv.add_namespace(&serde_json::from_value::<Namespace>(doc).unwrap()),
            "ServiceAccount" => {
                inv.add_service_account(&serde_json::from_value::<ServiceAccount>(doc).unwrap())
            }
            "ApprovalRequest" => {
                inv.add_request(&serde_json::from_value::<crate::api::ApprovalRequest>(doc).unwrap())
            }
            other => panic!("unexpected kind {other}"),
        }
    }
    inv
}

/// The usual cluster: namespace `payments` owned by group payments-leads, a
/// harmless `view`, a risky `edit`, and one RoleBinding of `edit` to two people.
pub(super) const PAYMENTS: &str = r#"
kind: Namespace
metadata: {name: payments, labels: {team: payments}, annotations: {gatehouse.dev/owners: "group:payments-leads, user:lena"}}
---
kind: ClusterRole
metadata: {name: view}
rules: [{apiGroups: [""], resources: [pods, services, configmaps], verbs: [get, list, watch]}]
---
kind: ClusterRole
metadata: {name: edit}
rules:
- {apiGroups: [""], resources: [secrets], verbs: [get, list]}
- {apiGroups: [apps], resources: [deployments], verbs: [create, update, patch]}
---
kind: RoleBinding
metadata: {name: devs-edit, namespace: payments, creationTimestamp: "2026-03-01T10:00:00Z"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: edit}
subjects:
- {kind: User, name: bob}
- {kind: Group, name: payments-devs}
"#;

/// A campaign named `quarterly` from its spec in YAML.
pub(super) fn campaign(spec_yaml: &str) -> AccessCampaign {
    let spec: AccessCampaignSpec = serde_saphyr::from_str(spec_yaml).unwrap();
    let mut c = AccessCampaign::new("quarterly", spec);
    c.metadata.creation_timestamp = Some(k8s_time(at("2026-09-01T00:00:00Z")));
    c.metadata.uid = Some("uid-campaign".into());
    c
}

/// Two levels: the namespace owners (or ops-leads for cluster bindings), then security.
pub(super) const TWO_LEVELS: &str = r#"
reviewers:
  levels:
  - {name: owners, namespaceOwners: true, groups: [ops-leads]}
  - {name: security, groups: [security]}
"#;

pub(super) fn run() -> RunPlan {
    RunPlan {
        campaign: "quarterly".into(),
        name: "quarterly-20261001-0700".into(),
        started_at: at("10-01 07:00"),
        due_at: at("10-15 07:00"),
        trigger: RunTrigger::Scheduled,
    }
}

pub(super) fn launched(c: &AccessCampaign, inv: &Inventory) -> Launch {
    launch(c, &run(), inv)
}

/// The run's item for this subject name, with a uid as the API server would give it.
pub(super) fn item_of(l: &Launch, subject: &str) -> AccessCertification {
    let mut item = l
        .items
        .iter()
        .find(|i| i.spec.subject.name == subject)
        .unwrap_or_else(|| panic!("no item for {subject}: {:#?}", names(l)))
        .clone();
    item.metadata.uid = Some(format!("uid-item-{subject}"));
    item.metadata.generation = Some(1);
    item
}

pub(super) fn names(l: &Launch) -> Vec<String> {
    l.items.iter().map(|i| i.name_any()).collect()
}

/// `who` (in `groups`) decides on the item at `when`.
pub(super) fn review(
    item: &AccessCertification,
    who: &str,
    groups: &[&str],
    decision: Decision,
    when: &str,
) -> AccessReview {
    let mut r = AccessReview::new(
        &format!("{who}-{}", decision.to_string().to_lowercase()),
        AccessReviewSpec {
            certification: Some(CertificationRef {
                name: item.name_any(),
                uid: item.metadata.uid.clone().unwrap_or_default(),
            }),
            decision,
            reviewer: Identity {
                username: who.into(),
                groups: groups.iter().map(|g| g.to_string()).collect(),
            },
            ..Default::default()
        },
    );
    r.metadata.namespace = item.namespace();
    r.metadata.creation_timestamp = Some(k8s_time(at(when)));
    r
}

pub(super) fn commented(mut r: AccessReview, text: &str) -> AccessReview {
    r.spec.comment = Some(text.into());
    r
}

pub(super) fn reassigned(mut r: AccessReview, users: &[&str], groups: &[&str]) -> AccessReview {
    r.spec.reassign_to = Some(Box::new(Principals {
        users: users.iter().map(|u| u.to_string()).collect(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
    }));
    r
}

pub(super) fn converting(mut r: AccessReview, policy: &str) -> AccessReview {
    r.spec.convert_to = Some(ConvertTo {
        policy: policy.into(),
    });
    r
}

pub(super) fn eval_with(
    item: &AccessCertification,
    reviews: &[AccessReview],
    policies: &[AccessPolicy],
    inv: &Inventory,
    now: &str,
) -> ItemEvaluation {
    // As the operator installed by default.
    let me = super::protect::OperatorIdentity::default_install();
    evaluate(&ItemInput {
        item,
        reviews,
        policies,
        inventory: inv,
        now: at(now),
        operator: Some(&me),
    })
}

pub(super) fn eval(
    item: &AccessCertification,
    reviews: &[AccessReview],
    inv: &Inventory,
    now: &str,
) -> ItemEvaluation {
    eval_with(item, reviews, &[], inv, now)
}

/// The verdict reason of the named review.
pub(super) fn verdict(ev: &ItemEvaluation, review: &str) -> crate::api::ReviewVerdict {
    ev.verdicts
        .iter()
        .find(|v| v.review == review)
        .unwrap_or_else(|| panic!("no verdict for {review}: {:#?}", ev.verdicts))
        .reason
}
