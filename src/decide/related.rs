//! Rules that look at the requester's other requests: the live grants they hold
//! under a policy (`maxActivePerRequester`), and a newer request that took over
//! this one's access (`spec.extends`).
//!
//! The operator feeds these functions from its in-memory index of requests by
//! requester, `simulate` from its own evaluation of the manifests; both get the
//! same answer because the rule is here, and only here.

use chrono::{DateTime, Utc};
use kube::ResourceExt;

use super::{model::Supersession, naming::request_key};
use crate::api::ApprovalRequest;

/// The requester's other requests under `policy` whose grant is live at `at`:
/// approved before `at` (a request approved at the same instant counts when its
/// `namespace/name` sorts first, so of two simultaneous approvals exactly one
/// sees the other), and neither ended nor expired by then (a status not yet
/// updated for an expiry does not hold a grant). Returns their `namespace/name`, sorted.
pub fn live_grants(
    req: &ApprovalRequest,
    policy: &str,
    others: &[&ApprovalRequest],
    at: DateTime<Utc>,
) -> Vec<String> {
    let me = request_key(req);
    let mut live: Vec<String> = others
        .iter()
        .filter(|o| o.uid() != req.uid() && o.spec.requester.username == req.spec.requester.username)
        .filter_map(|o| {
            let status = o.status.as_ref()?;
            let same_policy = status.requirements.as_ref().is_some_and(|r| r.policy == policy);
            let approved = status.approved_at?;
            let key = request_key(o);
            let before = approved < at || (approved == at && key < me);
            let open = status.completed_at.is_none_or(|c| c > at) && status.expires_at.is_none_or(|e| e > at);
            (same_policy && before && open).then_some(key)
        })
        .collect();
    live.sort();
    live
}

/// The newer request of the same requester in the same namespace whose
/// `spec.extends` names this one and whose access has started.
pub fn superseded_by(req: &ApprovalRequest, others: &[&ApprovalRequest]) -> Option<Supersession> {
    let name = req.name_any();
    others
        .iter()
        .filter(|o| {
            o.namespace() == req.namespace()
                && o.spec.extends.as_deref() == Some(name.as_str())
                && o.spec.requester.username == req.spec.requester.username
        })
        .filter_map(|o| {
            let at = o.status.as_ref()?.grant.as_ref()?.granted_at?;
            Some(Supersession { by: o.name_any(), at })
        })
        .min_by(|a, b| a.at.cmp(&b.at).then_with(|| a.by.cmp(&b.by)))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;
    use crate::api::{ApprovalRequestSpec, ApprovalRequestStatus, BindingKind, GrantStatus, Requirements};

    fn at(hhmm: &str) -> DateTime<Utc> {
        format!("2026-11-23T{hhmm}:00Z").parse().unwrap()
    }

    fn req(ns: &str, name: &str, who: &str) -> ApprovalRequest {
        ApprovalRequest {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                uid: Some(format!("uid-{ns}-{name}")),
                ..Default::default()
            },
            spec: ApprovalRequestSpec {
                requester: crate::api::Identity {
                    username: who.into(),
                    groups: vec![],
                },
                ..Default::default()
            },
            status: None,
        }
    }

    fn approved(mut r: ApprovalRequest, policy: &str, at_: &str, ended: Option<&str>) -> ApprovalRequest {
        r.status = Some(ApprovalRequestStatus {
            requirements: Some(Requirements {
                policy: policy.into(),
                ..Default::default()
            }),
            approved_at: Some(at(at_)),
            completed_at: ended.map(at),
            ..Default::default()
        });
        r
    }

    #[test]
    fn live_grants_count_only_the_requesters_open_grants_under_the_policy() {
        let me = req("team", "dana-b", "dana");
        let others = [
            approved(req("team", "dana-a", "dana"), "p", "09:00", None),
            approved(req("ops", "dana-c", "dana"), "p", "09:30", Some("10:30")),
            approved(req("ops", "dana-ended", "dana"), "p", "08:00", Some("09:00")),
            approved(req("team", "dana-other-policy", "dana"), "q", "09:00", None),
            approved(req("team", "erin-a", "erin"), "p", "09:00", None),
            approved(req("team", "dana-later", "dana"), "p", "11:00", None),
            req("team", "dana-pending", "dana"),
        ];
        let refs: Vec<&ApprovalRequest> = others.iter().collect();
        assert_eq!(
            live_grants(&me, "p", &refs, at("10:00")),
            ["ops/dana-c", "team/dana-a"]
        );
        assert_eq!(live_grants(&me, "p", &refs, at("10:30")), ["team/dana-a"]);
    }

    #[test]
    fn of_two_simultaneous_approvals_exactly_one_sees_the_other() {
        let a = approved(req("team", "dana-a", "dana"), "p", "10:00", None);
        let b = approved(req("team", "dana-b", "dana"), "p", "10:00", None);
        assert_eq!(live_grants(&b, "p", &[&a], at("10:00")), ["team/dana-a"]);
        assert!(live_grants(&a, "p", &[&b], at("10:00")).is_empty());
    }

    #[test]
    fn a_request_is_superseded_once_its_extension_is_granted() {
        let old = req("team", "dana-a", "dana");
        let mut newer = req("team", "dana-b", "dana");
        newer.spec.extends = Some("dana-a".into());
        assert_eq!(superseded_by(&old, &[&newer]), None, "not granted yet");
        newer.status = Some(ApprovalRequestStatus {
            grant: Some(GrantStatus {
                kind: BindingKind::RoleBinding,
                name: "gatehouse-dana-b".into(),
                namespace: Some("team".into()),
                granted_at: Some(at("10:55")),
                expires_at: Some(at("11:55")),
                revoked_at: None,
            }),
            ..Default::default()
        });
        assert_eq!(
            superseded_by(&old, &[&newer]),
            Some(Supersession {
                by: "dana-b".into(),
                at: at("10:55")
            })
        );
        let mut foreign = newer.clone();
        foreign.spec.requester.username = "eve".into();
        assert_eq!(superseded_by(&old, &[&foreign]), None, "another requester");
        let mut elsewhere = newer.clone();
        elsewhere.metadata.namespace = Some("ops".into());
        assert_eq!(superseded_by(&old, &[&elsewhere]), None, "another namespace");
    }
}
