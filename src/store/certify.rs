//! What certification keeps in memory beside the operator's other kinds
//! ([`super`]): Roles, ClusterRoles, campaigns and items, and what
//! each item depends on, so that a change wakes exactly the items it concerns.

use k8s_openapi::api::rbac::v1::{ClusterRole, Role};
use kube::{
    runtime::reflector::{ObjectRef, Store},
    Resource, ResourceExt,
};

use crate::{
    api::{AccessCampaign, AccessCertification, ApprovalRequest, BindingKind, RoleKind, SubjectKind},
    store::{trim, wire::WireRole, Cache, Cached, CertificationWakes, Change},
};

/// What an item's evaluation depends on besides its reviews: a change to any of
/// these wakes the item (remediation progress, staleness, risk).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Concern {
    /// The binding under review, by kind, namespace and name (whatever its uid).
    Binding(BindingKind, Option<String>, String),
    /// The ClusterRole it grants.
    ClusterRole(String),
    /// The Role it grants, by namespace and name.
    Role(String, String),
    /// The ServiceAccount subject, by namespace and name.
    ServiceAccount(String, String),
    /// The binding's namespace, or the ServiceAccount subject's.
    Namespace(String),
}

/// What the item depends on (see [`Concern`]).
pub fn concerns(item: &AccessCertification) -> Vec<Concern> {
    let spec = &item.spec;
    let b = &spec.binding;
    let mut out = vec![Concern::Binding(b.kind, b.namespace.clone(), b.name.clone())];
    match (spec.role_ref.kind, &b.namespace) {
        (RoleKind::ClusterRole, _) => out.push(Concern::ClusterRole(spec.role_ref.name.clone())),
        (RoleKind::Role, Some(ns)) => out.push(Concern::Role(ns.clone(), spec.role_ref.name.clone())),
        (RoleKind::Role, None) => {}
    }
    if let Some(ns) = &b.namespace {
        out.push(Concern::Namespace(ns.clone()));
    }
    if let (SubjectKind::ServiceAccount, Some(ns)) = (spec.subject.kind, &spec.subject.namespace) {
        out.push(Concern::ServiceAccount(ns.clone(), spec.subject.name.clone()));
        if b.namespace.as_ref() != Some(ns) {
            out.push(Concern::Namespace(ns.clone()));
        }
    }
    out
}

pub(crate) fn items_only(items: Vec<ObjectRef<AccessCertification>>) -> CertificationWakes {
    CertificationWakes {
        items,
        campaigns: Vec::new(),
    }
}

/// Who reviews a binding: the items of every run that snapshotted it.
pub(crate) fn binding_concern<K: Resource>(kind: BindingKind, obj: &K) -> Concern {
    let ns = match kind {
        BindingKind::RoleBinding => obj.meta().namespace.clone(),
        BindingKind::ClusterRoleBinding => None,
    };
    Concern::Binding(kind, ns, obj.meta().name.clone().unwrap_or_default())
}

impl Cached for Role {
    const RESOURCE: &'static str = "roles";

    type Wire = WireRole;

    fn from_wire(wire: WireRole) -> Self {
        Self::from(wire)
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    /// Changed rules change the risk of the bindings that grant the role.
    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        let key = Concern::Role(self.namespace().unwrap_or_default(), self.name_any());
        items_only(cache.items_concerned(&key))
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.roles
    }
}

impl Cached for ClusterRole {
    const RESOURCE: &'static str = "clusterroles";

    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut role = wire;
        trim::cluster_role(&mut role);
        role
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    /// Changed rules change the risk of the bindings that grant the role (an
    /// aggregated role changes too, when the aggregation controller fills it in).
    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        items_only(cache.items_concerned(&Concern::ClusterRole(self.name_any())))
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.cluster_roles
    }
}

impl Cached for AccessCampaign {
    const RESOURCE: &'static str = "accesscampaigns";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    fn wakes_certification(&self, _cache: &Cache) -> CertificationWakes {
        CertificationWakes {
            items: Vec::new(),
            campaigns: vec![ObjectRef::from_obj(self)],
        }
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.campaigns
    }
}

impl Cached for AccessCertification {
    const RESOURCE: &'static str = "accesscertifications";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    /// The item itself, and its campaign, whose run counts it feeds.
    fn wakes_certification(&self, _cache: &Cache) -> CertificationWakes {
        CertificationWakes {
            items: vec![ObjectRef::from_obj(self)],
            campaigns: vec![ObjectRef::new(&self.spec.campaign)],
        }
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.index_items(change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.items
    }
}
