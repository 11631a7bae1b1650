//! ClusterRoleBindings in the deadline index: only the one made for a
//! request in memory, and never by a request of another namespace.

use std::collections::BTreeMap;

use k8s_openapi::api::rbac::v1::ClusterRoleBinding;
use kube::runtime::watcher::Event;

use super::*;
use crate::{
    api::{ApprovalRequestStatus, GrantStatus, RoleKind, Scope},
    decide::naming::binding_name,
    labels::EXPIRES_AT,
};

fn at(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const LATER: &str = "2026-12-07T12:00:09Z";
const NOW: &str = "2026-12-07T12:00:05Z";

/// A cluster-wide request `ns/name` (uid `ns-name-uid`) whose recorded
/// grant is `grant` (kind ClusterRoleBinding) expiring at `expires`.
fn request(ns: &str, name: &str, grant: Option<(&str, &str)>) -> ApprovalRequest {
    let mut r = ApprovalRequest::new(name, Default::default());
    r.metadata.namespace = Some(ns.into());
    r.metadata.uid = Some(format!("{ns}-{name}-uid"));
    r.spec.role.kind = RoleKind::ClusterRole;
    r.spec.role.name = "view".into();
    r.spec.scope = Scope::Cluster;
    r.status = grant.map(|(binding, expires)| ApprovalRequestStatus {
        grant: Some(GrantStatus {
            kind: BindingKind::ClusterRoleBinding,
            name: binding.into(),
            namespace: None,
            granted_at: None,
            expires_at: Some(at(expires)),
            revoked_at: None,
        }),
        ..Default::default()
    });
    r
}

fn crb_name(req: &ApprovalRequest) -> String {
    binding_name(
        req.metadata.namespace.as_deref().unwrap(),
        req.metadata.name.as_deref().unwrap(),
        req.metadata.uid.as_deref().unwrap(),
        BindingKind::ClusterRoleBinding,
    )
}

/// The ClusterRoleBinding the operator makes for `req`, annotated to
/// expire at `expires`.
fn made_for(req: &ApprovalRequest, expires: &str) -> ClusterRoleBinding {
    let mut meta = crate::labels::owned_metadata(
        req,
        &crb_name(req),
        None,
        BTreeMap::from([(EXPIRES_AT.to_string(), expires.to_string())]),
    );
    meta.uid = Some("crb-uid".into());
    meta.resource_version = Some("1".into());
    ClusterRoleBinding {
        metadata: meta,
        ..Default::default()
    }
}

struct Memory {
    cache: std::sync::Arc<Cache>,
    writers: super::super::Writers,
}

impl Memory {
    fn new() -> Self {
        let (cache, writers) = Cache::new();
        Memory { cache, writers }
    }

    fn binding(&mut self, crb: &ClusterRoleBinding) {
        self.cache
            .removals
            .index_cluster_binding(&self.cache, Change::Upsert(crb));
        self.writers
            .cluster_role_bindings
            .apply_watcher_event(&Event::Apply(crb.clone()));
    }

    fn request(&mut self, req: &ApprovalRequest) {
        self.cache
            .removals
            .index_request(&self.cache, Change::Upsert(req));
        self.writers
            .requests
            .apply_watcher_event(&Event::Apply(req.clone()));
    }

    fn due(&self) -> Vec<String> {
        self.cache
            .removals
            .take_due(at(NOW), chrono::Duration::zero(), 100)
            .into_iter()
            .map(|d| d.key.name)
            .collect()
    }
}

#[test]
fn a_cluster_binding_is_due_once_its_request_is_in_memory_at_the_earlier_expiry() {
    let granted = request("team", "wide", None);
    let name = crb_name(&granted);
    let granted = request("team", "wide", Some((&name, "2026-12-07T12:00:01Z")));
    // Listed before its request (a restart): not for the lane yet.
    let mut memory = Memory::new();
    memory.binding(&made_for(&granted, LATER));
    assert_eq!(memory.cache.removals.len(), (0, 0));
    // Its request arrives: due at the recorded expiry, earlier than the annotation.
    memory.request(&granted);
    assert_eq!(memory.cache.removals.next(), Some(at("2026-12-07T12:00:01Z")));
    assert_eq!(memory.due(), std::slice::from_ref(&name));

    // The other way round: the request first, then its binding.
    let mut memory = Memory::new();
    memory.request(&granted);
    memory.binding(&made_for(&granted, LATER));
    assert_eq!(memory.due(), [name]);
}

#[test]
fn a_forged_request_cannot_make_the_lane_delete_a_cluster_binding_made_for_another() {
    // The victim's grant, in namespace `payments`, valid until LATER.
    let victim = request("payments", "oncall", None);
    let victim_crb = crb_name(&victim);
    let victim = request("payments", "oncall", Some((&victim_crb, LATER)));
    let crb = made_for(&victim, LATER);

    // Mallory, with `*` in her namespace `tenant`, writes requests (labels,
    // even status if she can) naming the victim's binding as her grant,
    // expired long ago.
    let mut named = request("tenant", "oncall", Some((&victim_crb, "2026-12-07T00:00:00Z")));
    named.labels_mut().extend(crate::labels::request_labels(&victim));
    // A request of the same name in her namespace, and one claiming the
    // victim's uid.
    let mut same_uid = request("tenant", "steal", Some((&victim_crb, "2026-12-07T00:00:00Z")));
    same_uid.metadata.uid = victim.metadata.uid.clone();
    // A request whose name spells the victim's namespace and name.
    let spelled = request(
        "tenant",
        "payments.oncall",
        Some((&victim_crb, "2026-12-07T00:00:00Z")),
    );
    let forged = [named, same_uid, spelled];

    for order in [true, false] {
        let mut memory = Memory::new();
        if order {
            memory.binding(&crb);
        }
        for f in &forged {
            memory.request(f);
        }
        if !order {
            memory.binding(&crb);
        }
        assert!(memory.due().is_empty(), "removed the victim's binding");
        assert_eq!(memory.cache.removals.len(), (0, 0));
        // The victim's own request counts: its own deadline, not the forged one.
        memory.request(&victim);
        assert!(memory.due().is_empty());
        assert_eq!(memory.cache.removals.next(), Some(at(LATER)));
        // Forged requests changing again move nothing.
        for f in &forged {
            memory.request(f);
        }
        assert_eq!(memory.cache.removals.next(), Some(at(LATER)));
    }
}

#[test]
fn only_a_binding_with_the_operators_marks_and_derived_name_is_considered() {
    let granted = request("team", "wide", None);
    let name = crb_name(&granted);
    let granted = request("team", "wide", Some((&name, "2026-12-07T12:00:01Z")));
    let good = made_for(&granted, LATER);
    let mut unlabelled = good.clone();
    unlabelled
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .remove(crate::labels::MANAGED_BY.0);
    let mut other_uid = good.clone();
    other_uid
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert(crate::labels::REQUEST_UID.into(), "another".into());
    // An admin's binding labelled for the request but not named for it
    // (the recorded grant names it, the name is not derived from it).
    let mut renamed = good.clone();
    renamed.metadata.name = Some("cluster-admin-for-everyone".into());
    let renamed_grant = request(
        "team",
        "wide",
        Some(("cluster-admin-for-everyone", "2026-12-07T12:00:01Z")),
    );
    // The request's grant names another binding.
    let elsewhere = request("team", "wide", Some(("gatehouse-other", "2026-12-07T12:00:01Z")));
    for (what, crb, req) in [
        ("unlabelled", &unlabelled, &granted),
        ("another uid", &other_uid, &granted),
        ("not the derived name", &renamed, &renamed_grant),
        ("grant names another", &good, &elsewhere),
    ] {
        let mut memory = Memory::new();
        memory.binding(crb);
        memory.request(req);
        assert!(memory.due().is_empty(), "{what}");
    }
    // The request goes: so does the binding's entry.
    let mut memory = Memory::new();
    memory.binding(&good);
    memory.request(&granted);
    memory
        .cache
        .removals
        .index_request(&memory.cache, Change::Remove(&granted));
    assert_eq!(memory.cache.removals.len(), (0, 0));
}
