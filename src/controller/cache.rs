//! What the operator knows of the cluster, in memory.
//!
//! One kube-runtime [`Store`] per kind, filled by the watch loops in
//! [`super::watch`], and two secondary indexes kept in step with them: reviews
//! by the request they name, and requests by requester. A reconcile reads only
//! from here, so its cost does not grow with the number of objects in the
//! cluster: it looks up its own reviews, its requester's other requests and its
//! own binding by key.

use std::{
    collections::{BTreeMap, HashMap, HashSet},
    hash::Hash,
    sync::{Arc, RwLock},
};

use k8s_openapi::api::{
    batch::v1::Job,
    core::v1::{Namespace, ServiceAccount},
    rbac::v1::{ClusterRoleBinding, RoleBinding},
};
use kube::{
    runtime::reflector::{store::Writer, ObjectRef, Store},
    Resource, ResourceExt,
};
use serde::de::DeserializeOwned;

use super::health::Health;
use crate::{
    api::{AccessPolicy, AccessReview, ApprovalRequest, NotificationChannel, Phase},
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

    /// Keeps the cache's secondary indexes in step with the store.
    fn index(_cache: &Cache, _change: Change<'_, Self>) {}

    /// The store of this kind in the cache.
    fn store(cache: &Cache) -> &Store<Self>;
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

/// Objects by a key taken from fields that never change (specs are immutable),
/// so an update never moves an object between keys.
pub struct Index<K: Resource<DynamicType = ()>, Key> {
    key_of: fn(&K) -> Option<Key>,
    map: RwLock<HashMap<Key, HashSet<ObjectRef<K>>>>,
}

impl<K: Resource<DynamicType = ()>, Key: Eq + Hash + Clone> Index<K, Key> {
    fn new(key_of: fn(&K) -> Option<Key>) -> Self {
        Index {
            key_of,
            map: RwLock::default(),
        }
    }

    fn apply(&self, change: Change<'_, K>) {
        let Ok(mut map) = self.map.write() else { return };
        match change {
            Change::Upsert(obj) => {
                if let Some(key) = (self.key_of)(obj) {
                    map.entry(key).or_default().insert(ObjectRef::from_obj(obj));
                }
            }
            Change::Remove(obj) => {
                if let Some(key) = (self.key_of)(obj) {
                    if let Some(set) = map.get_mut(&key) {
                        set.remove(&ObjectRef::from_obj(obj));
                        if set.is_empty() {
                            map.remove(&key);
                        }
                    }
                }
            }
            Change::Rebuild(all) => {
                map.clear();
                for obj in all {
                    if let Some(key) = (self.key_of)(obj) {
                        map.entry(key).or_default().insert(ObjectRef::from_obj(obj));
                    }
                }
            }
        }
    }

    /// The objects under `key` that the store still holds.
    fn get(&self, key: &Key, store: &Store<K>) -> Vec<Arc<K>>
    where
        K: Clone,
    {
        let refs: Vec<ObjectRef<K>> = match self.map.read() {
            Ok(map) => map
                .get(key)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        refs.iter().filter_map(|r| store.get(r)).collect()
    }
}

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
    /// RoleBindings the operator manages.
    pub role_bindings: Store<RoleBinding>,
    /// ClusterRoleBindings the operator manages.
    pub cluster_role_bindings: Store<ClusterRoleBinding>,
    /// Jobs the operator created (OneTime).
    pub jobs: Store<Job>,
    /// ServiceAccounts the operator created (OneTime).
    pub service_accounts: Store<ServiceAccount>,
    /// NotificationChannels, read by the notifier.
    pub notification_channels: Store<NotificationChannel>,
    reviews_by_request: Index<AccessReview, (String, String)>,
    requests_by_requester: Index<ApprovalRequest, String>,
    /// Whether each kind is synced and its watch healthy.
    pub health: Arc<Health>,
}

/// The write halves of the stores, one per watch loop.
#[allow(missing_docs)]
pub struct Writers {
    pub requests: Writer<ApprovalRequest>,
    pub reviews: Writer<AccessReview>,
    pub policies: Writer<AccessPolicy>,
    pub namespaces: Writer<Namespace>,
    pub role_bindings: Writer<RoleBinding>,
    pub cluster_role_bindings: Writer<ClusterRoleBinding>,
    pub jobs: Writer<Job>,
    pub service_accounts: Writer<ServiceAccount>,
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
            notification_channels: writers.notification_channels.as_reader(),
            reviews_by_request: Index::new(|r: &AccessReview| {
                // A certification review (no spec.request) belongs to no request.
                Some((r.namespace()?, r.spec.request.as_ref()?.name.clone()))
            }),
            requests_by_requester: Index::new(|r: &ApprovalRequest| Some(r.spec.requester.username.clone())),
            health: Arc::new(Health::default()),
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
            .map(|r| ObjectRef::from_obj(r.as_ref()))
            .collect()
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

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        let mut refs = vec![ObjectRef::from_obj(self)];
        // A request that extends another wakes the old one, which then ends as Superseded.
        if let (Some(old), Some(ns)) = (&self.spec.extends, self.namespace()) {
            refs.push(ObjectRef::new(old).within(&ns));
        }
        refs
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.requests_by_requester.apply(change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.requests
    }
}

impl Cached for AccessReview {
    const RESOURCE: &'static str = "accessreviews";

    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        // A certification review (no spec.request) wakes no request.
        match (self.namespace(), &self.spec.request) {
            (Some(ns), Some(q)) => vec![ObjectRef::new(&q.name).within(&ns)],
            _ => Vec::new(),
        }
    }

    fn index(cache: &Cache, change: Change<'_, Self>) {
        cache.reviews_by_request.apply(change);
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.reviews
    }
}

impl Cached for AccessPolicy {
    const RESOURCE: &'static str = "accesspolicies";

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

    /// New labels may make a policy's namespace selector match.
    fn wakes(&self, cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        cache.undecided_requests(Some(&self.name_any()))
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.namespaces
    }
}

impl Cached for NotificationChannel {
    const RESOURCE: &'static str = "notificationchannels";

    /// Channels concern the notifier only, which looks at them on its own.
    fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
        Vec::new()
    }

    fn store(cache: &Cache) -> &Store<Self> {
        &cache.notification_channels
    }
}

macro_rules! managed_kind {
    ($kind:ty, $resource:literal, $field:ident) => {
        impl Cached for $kind {
            const RESOURCE: &'static str = $resource;
            const MANAGED_ONLY: bool = true;

            fn wakes(&self, _cache: &Cache) -> Vec<ObjectRef<ApprovalRequest>> {
                owner_request(self)
            }

            fn store(cache: &Cache) -> &Store<Self> {
                &cache.$field
            }
        }
    };
}

managed_kind!(RoleBinding, "rolebindings", role_bindings);
managed_kind!(ClusterRoleBinding, "clusterrolebindings", cluster_role_bindings);
managed_kind!(Job, "jobs", jobs);
managed_kind!(ServiceAccount, "serviceaccounts", service_accounts);

/// The label selector of a kind's watch.
pub fn selector<K: Cached>() -> Option<String> {
    K::MANAGED_ONLY.then(labels::managed_selector)
}
