//! What the operator knows of the cluster, in memory.
//!
//! One kube-runtime [`Store`] per kind, filled by the operator's watch loops
//! (`controller::watch`, which holds the [`Writers`]), and secondary indexes kept in step with them: reviews by
//! the request or certification item they name, requests by requester, items by
//! campaign and by what they depend on. A reconcile reads only from here, so its
//! cost does not grow with the number of objects in the cluster: it looks up its
//! own reviews, its requester's other requests and its own binding by key.
//!
//! Bindings, Roles, ClusterRoles and ServiceAccounts are held whole, not only
//! the ones the operator manages: access certification reviews every standing
//! binding. What acts on managed objects only (the sweep, the gauges, the JIT
//! grants) tells them apart by their labels ([`labels::is_managed`]).

use std::{collections::BTreeMap, sync::Arc};

use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding},
};
use kube::{
    runtime::reflector::{store::Writer, ObjectRef, Store},
    Resource, ResourceExt,
};
use serde::de::DeserializeOwned;

pub mod certify;
pub mod deadline;
pub mod health;
mod index;
pub mod removals;
pub mod trim;
pub mod wire;

use self::{
    certify::{binding_concern, concerns, items_only, Concern},
    health::Health,
    index::Index,
    wire::{WireRoleBinding, WireServiceAccount},
};
use crate::{
    api::{
        AccessCampaign, AccessCertification, AccessPolicy, AccessReview, ApprovalRequest, BindingKind,
        NotificationChannel, Phase,
    },
    labels::{self, REQUEST_NAME, REQUEST_NAMESPACE},
};

/// A kind the operator keeps in memory.
pub trait Cached:
    Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static
{
    /// Resource name, as in metrics and logs (`approvalrequests`).
    const RESOURCE: &'static str;
    /// Only objects the operator manages are watched (label selector), or all.
    const MANAGED_ONLY: bool = false;

    /// The requests to reconcile when this object appears, changes or goes.
    fn wakes(&self, cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>>;

    /// The certification items and campaigns to reconcile when this object
    /// appears, changes or goes.
    fn wakes_certification(&self, _cache: &Cache) -> CertificationWakes {
        CertificationWakes::default()
    }

    /// Keeps the cache's secondary indexes in step with the store.
    fn index(_cache: &Cache, _change: Change<'_, Self>) {}

    /// One page of a list, as it arrives, before the list is complete and
    /// stored: for the removal lane's deadline index ([`removals`]).
    fn index_listed(_cache: &Cache, _page: &[Self]) {}

    /// What the kind is listed and watched as: itself, or a type that caps
    /// its lists while parsing ([`wire`]).
    type Wire: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug + Send + Sync + 'static;

    /// The object as memory keeps it ([`trim`]), from what the API server sent.
    fn from_wire(wire: Self::Wire) -> Self;

    /// The store of this kind in the cache.
    fn store(cache: &Cache) -> &Store<Self>;
}

/// What a change means for access certification.
#[derive(Debug, Default)]
pub struct CertificationWakes {
    /// Items to evaluate again.
    pub items: Vec<ObjectRef<AccessCertification>>,
    /// Campaigns whose status (run counts) may change.
    pub campaigns: Vec<ObjectRef<AccessCampaign>>,
}

/// A change to apply to an index.
pub enum Change<'a, K> {
    /// The object was added or modified.
    Upsert(&'a K),
    /// The object was deleted.
    Remove(&'a K),
    /// A full re-list: these are all the objects now.
    Rebuild(&'a [K]),
}

// References only: a change can be applied to several indexes.
impl<K> Clone for Change<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Change<'_, K> {}

/// The in-memory view of the cluster.
pub struct Cache {
    /// ApprovalRequests, all namespaces.
    pub requests: Store<ApprovalRequest>,
    /// AccessReviews, all namespaces.
    pub reviews: Store<AccessReview>,
    /// AccessPolicies.
    pub policies: Store<AccessPolicy>,
    /// Namespaces, for policies that select them by label.
    pub namespaces: Store<Namespace>,
    /// Every RoleBinding (the operator's grants carry its labels).
    pub role_bindings: Store<RoleBinding>,
    /// Every ClusterRoleBinding (the operator's grants carry its labels).
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    /// Jobs the operator created (OneTime).
    pub jobs: Store<Job>,
    /// Every ServiceAccount (those of OneTime jobs carry the operator's labels).
    pub service_accounts: Store<ServiceAccount>,
    /// Every Role, for the risk of the bindings under review.
    pub roles: Store<Role>,
    /// Every ClusterRole, for the risk of the bindings under review.
    pub cluster_roles: Store<ClusterRole>,
    /// AccessCampaigns.
    pub campaigns: Store<AccessCampaign>,
    /// AccessCertification items, all namespaces.
    pub items: Store<AccessCertification>,
    /// NotificationChannels, read by the notifier.
    pub notification_channels: Store<NotificationChannel>,
    reviews_by_request: Index<AccessReview, (String, String)>,
    reviews_by_item: Index<AccessReview, (String, String)>,
    requests_by_requester: Index<ApprovalRequest, String>,
    requests_by_extended: Index<ApprovalRequest, (String, String)>,
    items_by_campaign: Index<AccessCertification, String>,
    items_by_concern: Index<AccessCertification, Concern>,
    /// Whether each kind is synced and its watch healthy.
    pub health: Arc<Health>,
    /// The operator's RoleBindings, ClusterRoleBindings and OneTime Jobs by the
    /// instant they must be gone, for the removal lane.
    pub removals: removals::Deadlines,
}

/// The write halves of the stores, one per watch loop (named as the stores).
pub struct Writers {
    pub requests: Writer<ApprovalRequest>,
    pub reviews: Writer<AccessReview>,
    pub policies: Writer<AccessPolicy>,
    pub namespaces: Writer<Namespace>,
    pub role_bindings: Writer<RoleBinding>,
    pub cluster_role_bindings: Writer<ClusterRoleBinding>,
    pub jobs: Writer<Job>,
    pub service_accounts: Writer<ServiceAccount>,
    pub roles: Writer<Role>,
    pub cluster_roles: Writer<ClusterRole>,
    pub campaigns: Writer<AccessCampaign>,
    pub items: Writer<AccessCertification>,
    pub notification_channels: Writer<NotificationChannel>,
}

impl Cache {
    /// An empty cache and the writers that fill it.
    pub fn new() -> (Arc<Cache>, Writers) {
        let writers = Writers {
            requests: Writer::default(),
            reviews: Writer::default(),
            policies: Writer::default(),
            namespaces: Writer::default(),
            role_bindings: Writer::default(),
            cluster_role_bindings: Writer::default(),
            jobs: Writer::default(),
            service_accounts: Writer::default(),
            roles: Writer::default(),
            cluster_roles: Writer::default(),
            campaigns: Writer::default(),
            items: Writer::default(),
            notification_channels: Writer::default(),
        };
        let cache = Cache {
            requests: writers.requests.as_reader(),
            reviews: writers.reviews.as_reader(),
            policies: writers.policies.as_reader(),
            namespaces: writers.namespaces.as_reader(),
            role_bindings: writers.role_bindings.as_reader(),
            cluster_role_bindings: writers.cluster_role_bindings.as_reader(),
            jobs: writers.jobs.as_reader(),
            service_accounts: writers.service_accounts.as_reader(),
            roles: writers.roles.as_reader(),
            cluster_roles: writers.cluster_roles.as_reader(),
            campaigns: writers.campaigns.as_reader(),
            items: writers.items.as_reader(),
            notification_channels: writers.notification_channels.as_reader(),
            reviews_by_request: Index::new(|r: &AccessReview| {
                // A certification review (no spec.request) belongs to no request.
                r.namespace()
                    .zip(r.spec.request.as_ref().map(|q| q.name.clone()))
                    .into_iter()
                    .collect()
            }),
            reviews_by_item: Index::new(|r: &AccessReview| {
                r.namespace()
                    .zip(r.spec.certification.as_ref().map(|c| c.name.clone()))
                    .into_iter()
                    .collect()
            }),
            requests_by_requester: Index::new(|r: &ApprovalRequest| vec![r.spec.requester.username.clone()]),
            requests_by_extended: Index::new(|r: &ApprovalRequest| match (r.namespace(), &r.spec.extends) {
                (Some(ns), Some(old)) => vec![(ns, old.clone())],
                _ => Vec::new(),
            }),
            items_by_campaign: Index::new(|i: &AccessCertification| vec![i.spec.campaign.clone()]),
            items_by_concern: Index::new(concerns),
            health: Arc::new(Health::default()),
            removals: Default::default(),
        };
        (Arc::new(cache), writers)
    }

    /// The request `namespace/name`.
    pub fn request(&self, namespace: &str, name: &str) -> Option<Arc<ApprovalRequest>> {
        self.requests.get(&ObjectRef::new(name).within(namespace))
    }

    /// The reviews in the request's namespace that name it.
    pub fn reviews_of(&self, req: &ApprovalRequest) -> Vec<Arc<AccessReview>> {
        let key = (req.namespace().unwrap_or_default(), req.name_any());
        self.reviews_by_request.get(&key, &self.reviews)
    }

    /// The requester's other requests, in every namespace.
    pub fn requests_of_requester(&self, req: &ApprovalRequest) -> Vec<Arc<ApprovalRequest>> {
        self.requests_by_requester
            .get(&req.spec.requester.username, &self.requests)
            .into_iter()
            .filter(|o| o.uid() != req.uid())
            .collect()
    }

    /// The requests in the request's namespace whose `spec.extends` names it:
    /// what can supersede it, found by key however many requests its requester has.
    pub fn extenders_of(&self, req: &ApprovalRequest) -> Vec<Arc<ApprovalRequest>> {
        let key = (req.namespace().unwrap_or_default(), req.name_any());
        self.requests_by_extended.get(&key, &self.requests)
    }

    /// Every policy.
    pub fn policies(&self) -> Vec<AccessPolicy> {
        self.policies.state().iter().map(|p| (**p).clone()).collect()
    }

    /// Labels of the namespace, if it exists.
    pub fn namespace_labels(&self, name: &str) -> Option<BTreeMap<String, String>> {
        self.namespaces
            .get(&ObjectRef::new(name))
            .map(|n| n.labels().clone())
    }

    /// The reviews in the item's namespace that name it.
    pub fn reviews_of_item(&self, item: &AccessCertification) -> Vec<Arc<AccessReview>> {
        let key = (item.namespace().unwrap_or_default(), item.name_any());
        self.reviews_by_item.get(&key, &self.reviews)
    }

    /// The items of a campaign, every run.
    pub fn items_of_campaign(&self, campaign: &str) -> Vec<Arc<AccessCertification>> {
        self.items_by_campaign.get(&campaign.to_string(), &self.items)
    }

    /// Keeps the item indexes in step with the item store.
    pub(crate) fn index_items(&self, change: Change<'_, AccessCertification>) {
        self.items_by_campaign.apply(change);
        self.items_by_concern.apply(change);
    }

    /// The items that depend on this object.
    pub fn items_concerned(&self, concern: &Concern) -> Vec<ObjectRef<AccessCertification>> {
        self.items_by_concern.refs(concern)
    }

    /// Requests that have not taken their policy snapshot yet (a policy or
    /// namespace change can decide them), optionally in one namespace.
    pub fn undecided_requests(&self, namespace: Option<&str>) -> Vec<ObjectRef<ApprovalRequest>> {
        self.requests
            .state()
            .iter()
            .filter(|r| namespace.is_none_or(|ns| r.namespace().as_deref() == Some(ns)))
            .filter(|r| {
                r.status
                    .as_ref()
                    .is_none_or(|s| s.phase == Phase::Pending && s.requirements.is_none())
            })
            .map(|r| key_of(r.as_ref()))
            .collect()
    }
}

/// The object's key in a store or a queue: its namespace and name. Unlike
/// [`ObjectRef::from_obj`], without its uid and resourceVersion (which no
/// lookup compares): a request's key sits in the controller's queue as long as
/// the request lives.
pub fn key_of<K: Resource<DynamicType = ()>>(obj: &K) -> ObjectRef<K> {
    let meta = obj.meta();
    let key = ObjectRef::new(meta.name.as_deref().unwrap_or_default());
    match meta.namespace.as_deref() {
        Some(ns) => key.within(ns),
        None => key,
    }
}

/// The request a managed object belongs to, from its labels.
fn owner_request<K: Resource>(obj: &K) -> Vec<ObjectRef<ApprovalRequest>> {
    let labels = obj.meta().labels.as_ref();
    match (
        labels.and_then(|l| l.get(REQUEST_NAMESPACE)),
        labels.and_then(|l| l.get(REQUEST_NAME)),
    ) {
        (Some(ns), Some(name)) => vec![ObjectRef::new(name).within(ns)],
        _ => Vec::new(),
    }
}

impl Cached for ApprovalRequest {
    const RESOURCE: &'static str = "approvalrequests";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        let mut refs = vec![key_of(self)];
        // A request that extends another wakes the old one, which then ends as Superseded.
        if let (Some(old), Some(ns)) = (&self.spec.extends, self.namespace()) {
            refs.push(ObjectRef::new(old).within(&ns));
        }
        refs
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.requests_by_requester.apply(change);
        cache.requests_by_extended.apply(change);
        cache.removals.index_request(cache, change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.requests
    }
}

impl Cached for AccessReview {
    const RESOURCE: &'static str = "accessreviews";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        // A certification review (no spec.request) wakes no request.
        match (self.namespace(), &self.spec.request) {
            (Some(ns), Some(q)) => vec![ObjectRef::new(&q.name).within(&ns)],
            _ => Vec::new(),
        }
    }

    fn wakes_certification(&self, _cache: &Cache) -> CertificationWakes {
        match (self.namespace(), &self.spec.certification) {
            (Some(ns), Some(c)) => CertificationWakes {
                items: vec![ObjectRef::new(&c.name).within(&ns)],
                campaigns: Vec::new(),
            },
            _ => CertificationWakes::default(),
        }
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.reviews_by_request.apply(change);
        cache.reviews_by_item.apply(change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.reviews
    }
}

impl Cached for AccessPolicy {
    const RESOURCE: &'static str = "accesspolicies";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    /// A new or changed policy may decide the requests still waiting for one.
    fn wakes(&self, cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        cache.undecided_requests(None)
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.policies
    }
}

impl Cached for Namespace {
    const RESOURCE: &'static str = "namespaces";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    /// New labels may make a policy's namespace selector match.
    fn wakes(&self, cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        cache.undecided_requests(Some(&self.name_any()))
    }

    /// A namespace that goes makes its bindings stale.
    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        items_only(cache.items_concerned(&Concern::Namespace(self.name_any())))
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.namespaces
    }
}

impl Cached for NotificationChannel {
    const RESOURCE: &'static str = "notificationchannels";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }

    /// Channels concern the notifier only, which looks at them on its own.
    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.notification_channels
    }
}

impl Cached for RoleBinding {
    const RESOURCE: &'static str = "rolebindings";
    type Wire = WireRoleBinding;

    fn from_wire(wire: WireRoleBinding) -> Self {
        Self::from(wire)
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        owner_request(self)
    }

    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        items_only(cache.items_concerned(&binding_concern(BindingKind::RoleBinding, self)))
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.removals.index_binding(cache, change);
    }

    fn index_listed(cache: &Cache, page: &[Self]) {
        cache.removals.listed_bindings(cache, page);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.role_bindings
    }
}

impl Cached for ClusterRoleBinding {
    const RESOURCE: &'static str = "clusterrolebindings";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::cluster_role_binding(&mut obj);
        obj
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        owner_request(self)
    }

    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        items_only(cache.items_concerned(&binding_concern(BindingKind::ClusterRoleBinding, self)))
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.removals.index_cluster_binding(cache, change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.cluster_role_bindings
    }
}

impl Cached for ServiceAccount {
    const RESOURCE: &'static str = "serviceaccounts";
    type Wire = WireServiceAccount;

    fn from_wire(wire: WireServiceAccount) -> Self {
        Self::from(wire)
    }

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        owner_request(self)
    }

    /// A ServiceAccount that goes makes its bindings stale.
    fn wakes_certification(&self, cache: &Cache) -> CertificationWakes {
        let key = Concern::ServiceAccount(self.namespace().unwrap_or_default(), self.name_any());
        items_only(cache.items_concerned(&key))
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.service_accounts
    }
}

impl Cached for Job {
    const RESOURCE: &'static str = "jobs";
    type Wire = Self;

    fn from_wire(wire: Self) -> Self {
        let mut obj = wire;
        trim::metadata(obj.meta_mut(), trim::Labels::Selectable);
        obj
    }
    const MANAGED_ONLY: bool = true;

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        owner_request(self)
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.removals.index_job(cache, change);
    }

    fn index_listed(cache: &Cache, page: &[Self]) {
        cache.removals.listed_jobs(cache, page);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.jobs
    }
}

/// The label selector of a kind's watch.
pub fn selector<K: Cached>() -> Option<String> {
    K::MANAGED_ONLY.then(labels::managed_selector)
}
