//! The deadline index: every operator-made RoleBinding, ClusterRoleBinding and
//! OneTime Job that memory holds, by the instant it must be gone. Kept in step with memory by
//! the watch loops (the cache's index hooks), so the removal lane
//! (`controller::removal::lane`) finds what is
//! due with one look at the head of a `BTreeMap`, whatever the number of live
//! grants, instead of scanning every binding at each wake.
//!
//! Each entry is one version of one object (uid and resourceVersion, the
//! preconditions of its delete) and where it stands: waiting for its deadline,
//! being deleted, or settled (gone, or changed since: a new version gets an
//! entry of its own from the watch).
//!
//! RoleBindings and Jobs are indexed page by page while they are listed
//! ([`Deadlines::listed_bindings`]), so that after a restart the lane removes
//! what expired meanwhile from the first page on, not once every binding of
//! the cluster is listed; a binding's own annotation and owner reference are
//! enough to judge it, and its request, listed later, can only make its
//! deadline earlier. A ClusterRoleBinding is indexed only once its request is
//! in memory ([`super::deadline::made_for`]).

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::{
        atomic::{AtomicBool, Ordering},
        Mutex,
    },
    time::Duration as StdDuration,
};

use chrono::{DateTime, Utc};
use k8s_openapi::{
    api::{
        batch::v1::Job,
        rbac::v1::{ClusterRoleBinding, RoleBinding},
    },
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{runtime::reflector::ObjectRef, ResourceExt};
use tokio::sync::Notify;

use super::{
    deadline::{
        binding_deadline, cluster_binding_claim, cluster_binding_deadline, considered, controller_request,
        job_deadline, made_for,
    },
    Cache, Change,
};
use crate::{
    api::{ApprovalRequest, BindingKind},
    decide::naming::binding_ref,
};

mod owners;

use self::owners::{
    cluster_key, cluster_owner_in, key_of, owner_by_reference, owner_key, same_uid, set_binding,
    set_cluster_binding, set_job,
};

/// What kind of object grants the access.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A RoleBinding (JIT grant in a namespace).
    RoleBinding,
    /// A ClusterRoleBinding (cluster-wide JIT grant).
    ClusterRoleBinding,
    /// A OneTime Job.
    Job,
}

impl Kind {
    /// The kind's name, as in logs and metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::RoleBinding => "RoleBinding",
            Kind::ClusterRoleBinding => "ClusterRoleBinding",
            Kind::Job => "Job",
        }
    }
}

/// An object that grants access: by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// What it is.
    pub kind: Kind,
    /// Its namespace (that of its request too: an owner reference never
    /// crosses namespaces); empty for a ClusterRoleBinding.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Key {
    /// Its namespace, if it has one (for logs: a ClusterRoleBinding has none).
    pub fn namespace(&self) -> Option<&str> {
        (!self.namespace.is_empty()).then_some(self.namespace.as_str())
    }
}

/// One version of an object to delete: exactly this one.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Doomed {
    /// Which object.
    pub key: Key,
    /// Its uid (delete precondition).
    pub uid: String,
    /// Its resourceVersion (delete precondition).
    pub version: String,
    /// When it had to be gone.
    pub deadline: DateTime<Utc>,
}

/// How a delete ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Deleted, or already gone (404): that grant is over.
    Gone,
    /// Changed since (409): nothing to do with this version; the watch brings
    /// the new one, which is judged again.
    Changed,
    /// Any other error: tried again.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Waiting,
    InFlight,
    Settled(Outcome),
}

#[derive(Debug)]
struct Entry {
    owner: String,
    doomed: Option<Doomed>,
    state: State,
    /// Its place in the queue while it waits: the deadline, or a later retry.
    queued: Option<DateTime<Utc>>,
    /// Failed deletes of this version.
    failures: u32,
}

/// The wait before retrying a delete that failed `failures` times: 250 ms,
/// doubling, at most 30 s. A delete that keeps failing is not in flight
/// meanwhile, so it holds up no status write.
fn retry_after(failures: u32) -> chrono::Duration {
    let ms = 250u64.saturating_mul(1 << failures.saturating_sub(1).min(7));
    chrono::Duration::milliseconds(ms.min(30_000) as i64)
}

#[derive(Default)]
struct Inner {
    /// Every object considered (labelled and controlled by a request).
    entries: HashMap<Key, Entry>,
    /// Entries waiting for their deadline, earliest first.
    queue: BTreeSet<(DateTime<Utc>, Key)>,
    /// The objects each request controls, by `namespace/name` of the request.
    by_owner: HashMap<String, HashSet<Key>>,
    /// Deletes under way.
    in_flight: usize,
}

/// What the reconcile of an expired request may leave to the lane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The lane removed it (or found it gone).
    Gone,
    /// The lane does not have it in hand: the reconcile removes it.
    No,
}

/// The index, shared by the watch loops (writers), the removal lane and the
/// reconciles.
#[derive(Default)]
pub struct Deadlines {
    inner: Mutex<Inner>,
    /// An entry became the earliest waiting one: the lane looks again.
    pub changed: Notify,
    /// A delete ended.
    settled: Notify,
    /// Whether a removal lane runs in this process.
    running: AtomicBool,
}

impl Inner {
    fn unqueue(&mut self, key: &Key) {
        if let Some(at) = self.entries.get_mut(key).and_then(|e| e.queued.take()) {
            self.queue.remove(&(at, key.clone()));
        }
    }

    fn forget(&mut self, key: &Key) {
        self.unqueue(key);
        if let Some(e) = self.entries.remove(key) {
            if let Some(set) = self.by_owner.get_mut(&e.owner) {
                set.remove(key);
                if set.is_empty() {
                    self.by_owner.remove(&e.owner);
                }
            }
        }
    }

    /// A RoleBinding or Job: its owner from its owner reference.
    fn set(&mut self, meta: &ObjectMeta, kind: Kind, deadline: Option<DateTime<Utc>>) -> bool {
        let Some(key) = key_of(meta, kind) else {
            return false;
        };
        self.set_owned(key, meta, owner_by_reference(meta), deadline)
    }

    /// Records the object's version and deadline under its request `owner`
    /// (`None`: not for the lane, forgotten); returns whether it became the
    /// earliest waiting entry.
    fn set_owned(
        &mut self,
        key: Key,
        meta: &ObjectMeta,
        owner: Option<String>,
        deadline: Option<DateTime<Utc>>,
    ) -> bool {
        let Some(owner) = owner else {
            self.forget(&key);
            return false;
        };
        let doomed = deadline.and_then(|deadline| {
            Some(Doomed {
                key: key.clone(),
                uid: meta.uid.clone()?,
                version: meta.resource_version.clone()?,
                deadline,
            })
        });
        let old = self.entries.get(&key);
        let same_version = old.is_some_and(|o| {
            o.doomed.as_ref().map(|d| (&d.uid, &d.version)) == doomed.as_ref().map(|d| (&d.uid, &d.version))
        });
        // A version in hand (being deleted, or settled) keeps its state; a new
        // version, or a new deadline for a waiting one, waits.
        let (state, failures) = match old {
            Some(o) if same_version && o.state != State::Waiting => (o.state, o.failures),
            Some(o) if same_version => (State::Waiting, o.failures),
            _ => (State::Waiting, 0),
        };
        // A version waiting out a retry keeps its place.
        let retry = old
            .filter(|o| same_version && o.failures > 0)
            .and_then(|o| o.queued);
        if old.is_some_and(|o| o.owner != owner) {
            self.forget(&key);
        } else {
            self.unqueue(&key);
        }
        let mut earliest = false;
        let mut queued = None;
        if let (State::Waiting, Some(d)) = (state, &doomed) {
            let at = retry.map_or(d.deadline, |r| r.max(d.deadline));
            earliest = self.queue.first().is_none_or(|(first, _)| at < *first);
            self.queue.insert((at, key.clone()));
            queued = Some(at);
        }
        self.by_owner
            .entry(owner.clone())
            .or_default()
            .insert(key.clone());
        self.entries.insert(
            key,
            Entry {
                owner,
                doomed,
                state,
                queued,
                failures,
            },
        );
        earliest
    }
}

impl Deadlines {
    fn with<T>(&self, f: impl FnOnce(&mut Inner) -> T) -> Option<T> {
        self.inner.lock().ok().map(|mut i| f(&mut i))
    }

    fn wake_lane(&self, earliest: bool) {
        if earliest {
            self.changed.notify_one();
        }
    }

    /// Applies a change of one kind of object to the index; `set` judges one
    /// object (its version, its deadline) and says whether it became the
    /// earliest waiting entry.
    fn apply<K>(
        &self,
        kind: Kind,
        change: Change<'_, K>,
        meta: fn(&K) -> &ObjectMeta,
        set: impl Fn(&mut Inner, &K) -> bool,
    ) {
        let earliest = self.with(|i| match change {
            Change::Upsert(obj) => set(i, obj),
            Change::Remove(obj) => {
                if let Some(k) = key_of(meta(obj), kind) {
                    i.forget(&k);
                }
                false
            }
            Change::Rebuild(all) => {
                let old: Vec<Key> = i.entries.keys().filter(|k| k.kind == kind).cloned().collect();
                let new: HashSet<Key> = all.iter().filter_map(|o| key_of(meta(o), kind)).collect();
                for k in old.iter().filter(|k| !new.contains(k)) {
                    i.forget(k);
                }
                all.iter().fold(false, |earliest, o| set(i, o) | earliest)
            }
        });
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// A RoleBinding changed in memory (before the store holds the change).
    pub fn index_binding(&self, cache: &Cache, change: Change<'_, RoleBinding>) {
        self.apply(
            Kind::RoleBinding,
            change,
            |rb| &rb.metadata,
            |i, rb| set_binding(i, cache, rb),
        );
    }

    /// A Job changed in memory (before the store holds the change).
    pub fn index_job(&self, cache: &Cache, change: Change<'_, Job>) {
        self.apply(Kind::Job, change, |j| &j.metadata, |i, j| set_job(i, cache, j));
    }

    /// A ClusterRoleBinding changed in memory (before the store holds the
    /// change). Indexed only while its request is in memory and it is the
    /// binding made for that request ([`super::deadline::made_for`]).
    pub fn index_cluster_binding(&self, cache: &Cache, change: Change<'_, ClusterRoleBinding>) {
        self.apply(
            Kind::ClusterRoleBinding,
            change,
            |crb| &crb.metadata,
            |i, crb| {
                let owner = cluster_owner_in(cache, &crb.metadata);
                set_cluster_binding(i, &crb.metadata, owner.as_deref())
            },
        );
    }

    /// One page of a list of RoleBindings, as it arrives: indexed at once,
    /// before the rest of the list (which ends with a rebuild, see
    /// [`Change::Rebuild`]). What expired while no operator ran is removed
    /// from the first page on.
    pub fn listed_bindings(&self, cache: &Cache, page: &[RoleBinding]) {
        let earliest = self.with(|i| page.iter().fold(false, |e, rb| set_binding(i, cache, rb) | e));
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// One page of a list of Jobs, as it arrives (see [`Self::listed_bindings`]).
    pub fn listed_jobs(&self, cache: &Cache, page: &[Job]) {
        let earliest = self.with(|i| page.iter().fold(false, |e, j| set_job(i, cache, j) | e));
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// A request changed in memory (before the store holds the change): the
    /// deadlines of the objects it controls follow its grant and Job record.
    pub fn index_request(&self, cache: &Cache, change: Change<'_, ApprovalRequest>) {
        let judge = |i: &mut Inner, key: &Key, owner: Option<&ApprovalRequest>| -> bool {
            match key.kind {
                // The owner reference names the request by uid as well.
                Kind::Job => {
                    let r = ObjectRef::new(&key.name).within(&key.namespace);
                    let Some(job) = cache.jobs.get(&r) else {
                        return false;
                    };
                    let owner = owner.filter(|o| same_uid(&job.metadata, o));
                    i.set(&job.metadata, Kind::Job, job_deadline(&job, owner))
                }
                Kind::RoleBinding => {
                    let r = ObjectRef::new(&key.name).within(&key.namespace);
                    let Some(rb) = cache.role_bindings.get(&r) else {
                        return false;
                    };
                    let owner = owner.filter(|o| same_uid(&rb.metadata, o));
                    i.set(
                        &rb.metadata,
                        Kind::RoleBinding,
                        binding_deadline(&rb.metadata, owner),
                    )
                }
                Kind::ClusterRoleBinding => {
                    let Some(crb) = cache.cluster_role_bindings.get(&ObjectRef::new(&key.name)) else {
                        return false;
                    };
                    set_cluster_binding(i, &crb.metadata, owner)
                }
            }
        };
        let earliest = self.with(|i| match change {
            Change::Upsert(req) | Change::Remove(req) => {
                let removed = matches!(change, Change::Remove(_));
                let owner = owner_key(&req.namespace().unwrap_or_default(), &req.name_any());
                let mut keys: Vec<Key> = i.by_owner.get(&owner).into_iter().flatten().cloned().collect();
                // Its ClusterRoleBinding, listed before it, is found by name.
                if let Some(k) = cluster_key(req).filter(|k| !removed && !keys.contains(k)) {
                    keys.push(k);
                }
                let mut earliest = false;
                for k in keys {
                    earliest |= judge(i, &k, (!removed).then_some(req));
                }
                earliest
            }
            Change::Rebuild(all) => {
                let by_key: HashMap<String, &ApprovalRequest> = all
                    .iter()
                    .map(|r| (owner_key(&r.namespace().unwrap_or_default(), &r.name_any()), r))
                    .collect();
                let keys: Vec<(Key, String)> = i
                    .entries
                    .iter()
                    .map(|(k, e)| (k.clone(), e.owner.clone()))
                    .collect();
                let mut earliest = false;
                let mut judged = HashSet::new();
                for (k, owner) in keys {
                    earliest |= judge(i, &k, by_key.get(&owner).copied());
                    judged.insert(k);
                }
                for req in all {
                    if let Some(k) = cluster_key(req).filter(|k| !judged.contains(k)) {
                        earliest |= judge(i, &k, Some(req));
                    }
                }
                earliest
            }
        });
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// Takes what is due by `now` (`grace` after its deadline) into hand, at
    /// most `limit`, earliest first.
    pub fn take_due(&self, now: DateTime<Utc>, grace: chrono::Duration, limit: usize) -> Vec<Doomed> {
        self.with(|i| {
            let mut due = Vec::new();
            while let Some((deadline, key)) = i.queue.first().cloned() {
                if due.len() >= limit {
                    break;
                }
                if deadline + grace > now {
                    break;
                }
                i.queue.pop_first();
                if let Some(e) = i.entries.get_mut(&key) {
                    e.queued = None;
                    if let Some(d) = &e.doomed {
                        e.state = State::InFlight;
                        due.push(d.clone());
                    }
                }
            }
            i.in_flight += due.len();
            due
        })
        .unwrap_or_default()
    }

    /// A delete taken by [`Self::take_due`] ended. A failure waits again, and
    /// is retried after a back-off from `now`.
    pub fn finish(&self, doomed: &Doomed, outcome: Outcome, now: DateTime<Utc>) {
        self.with(|i| {
            i.in_flight = i.in_flight.saturating_sub(1);
            let Some(e) = i.entries.get_mut(&doomed.key) else {
                return;
            };
            if e.doomed.as_ref() != Some(doomed) || e.state != State::InFlight {
                // A newer version arrived meanwhile and has its own entry.
                return;
            }
            if outcome == Outcome::Failed {
                e.state = State::Waiting;
                e.failures = e.failures.saturating_add(1);
                let at = (now + retry_after(e.failures)).max(doomed.deadline);
                e.queued = Some(at);
                i.queue.insert((at, doomed.key.clone()));
            } else {
                e.state = State::Settled(outcome);
            }
        });
        self.settled.notify_waiters();
    }

    /// The earliest deadline waiting.
    pub fn next(&self) -> Option<DateTime<Utc>> {
        self.with(|i| i.queue.first().map(|(d, _)| *d)).flatten()
    }

    /// How many objects are indexed, and how many of them wait for a deadline.
    pub fn len(&self) -> (usize, usize) {
        self.with(|i| (i.entries.len(), i.queue.len()))
            .unwrap_or_default()
    }

    /// Whether removals are due or under way (the lane's work comes first).
    fn busy(&self, now: DateTime<Utc>) -> bool {
        self.with(|i| i.in_flight > 0 || i.queue.first().is_some_and(|(d, _)| *d <= now))
            .unwrap_or(false)
    }

    /// The removal lane starts (`true`) or stops.
    pub fn set_running(&self, running: bool) {
        self.running.store(running, Ordering::SeqCst);
        self.settled.notify_waiters();
    }

    /// Whether a removal lane runs in this process.
    pub fn running(&self) -> bool {
        self.running.load(Ordering::SeqCst)
    }

    /// Removals first: waits (`at_most`) while removals are due or under way,
    /// so that status writes and Events go after the deletes that end access.
    /// Returns at once when no lane runs.
    pub async fn removals_first(&self, now: impl Fn() -> DateTime<Utc>, at_most: StdDuration) {
        let until = tokio::time::Instant::now() + at_most;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if !self.running() || !self.busy(now()) {
                return;
            }
            // Deletes are checked again every 50 ms too: a deadline passing
            // with no delete ending wakes nobody.
            let wake = (tokio::time::Instant::now() + StdDuration::from_millis(50)).min(until);
            if tokio::time::timeout_at(wake, settled).await.is_err() && tokio::time::Instant::now() >= until {
                return;
            }
        }
    }

    /// For the reconcile of an expired request: whether the lane has removed
    /// this RoleBinding or Job, waiting (`at_most`) for a delete that is due
    /// or under way. [`Handled::No`]: the reconcile removes it itself.
    pub async fn removed_by_lane(
        &self,
        key: &Key,
        now: impl Fn() -> DateTime<Utc>,
        at_most: StdDuration,
    ) -> Handled {
        let until = tokio::time::Instant::now() + at_most;
        loop {
            let settled = self.settled.notified();
            tokio::pin!(settled);
            settled.as_mut().enable();
            if !self.running() {
                return Handled::No;
            }
            let t = now();
            let state = self.with(|i| {
                let e = i.entries.get(key)?;
                // Due and not waiting out a retry: the lane is about to take it.
                let due = e.queued.is_some_and(|q| q <= t);
                Some((e.state, due))
            });
            match state.flatten() {
                Some((State::Settled(Outcome::Gone), _)) => return Handled::Gone,
                Some((State::InFlight, _)) | Some((State::Waiting, true)) => {}
                _ => return Handled::No,
            }
            let wake = (tokio::time::Instant::now() + StdDuration::from_millis(50)).min(until);
            if tokio::time::timeout_at(wake, settled).await.is_err() && tokio::time::Instant::now() >= until {
                return Handled::No;
            }
        }
    }
}

#[cfg(test)]
mod cluster_tests;
#[cfg(test)]
mod listed_tests;
#[cfg(test)]
mod tests;
