//! The deadline index: every operator-made RoleBinding and OneTime Job that
//! memory holds, by the instant it must be gone. Kept in step with memory by
//! the watch loops (the cache's index hooks), so the removal lane
//! (`controller::removal::lane`) finds what is
//! due with one look at the head of a `BTreeMap`, whatever the number of live
//! grants, instead of scanning every binding at each wake.
//!
//! Each entry is one version of one object (uid and resourceVersion, the
//! preconditions of its delete) and where it stands: waiting for its deadline,
//! being deleted, or settled (gone, or changed since: a new version gets an
//! entry of its own from the watch).

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
    api::{batch::v1::Job, rbac::v1::RoleBinding},
    apimachinery::pkg::apis::meta::v1::ObjectMeta,
};
use kube::{runtime::reflector::ObjectRef, ResourceExt};
use tokio::sync::Notify;

use super::{
    deadline::{binding_deadline, considered, controller_request, job_deadline},
    Cache, Change,
};
use crate::api::ApprovalRequest;

/// An object that grants access: a RoleBinding or a Job, by namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    /// A OneTime Job (else a RoleBinding).
    pub job: bool,
    /// Its namespace (that of its request too: an owner reference never
    /// crosses namespaces).
    pub namespace: String,
    /// Its name.
    pub name: String,
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

fn owner_key(namespace: &str, name: &str) -> String {
    format!("{namespace}/{name}")
}

fn key_of(meta: &ObjectMeta, job: bool) -> Option<Key> {
    Some(Key {
        job,
        namespace: meta.namespace.clone()?,
        name: meta.name.clone()?,
    })
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

    /// Records the object's version and deadline; returns whether it became
    /// the earliest waiting entry.
    fn set(&mut self, meta: &ObjectMeta, job: bool, deadline: Option<DateTime<Utc>>) -> bool {
        let Some(key) = key_of(meta, job) else {
            return false;
        };
        let owner = match (considered(meta), controller_request(meta)) {
            (true, Some(o)) => owner_key(&key.namespace, &o.name),
            _ => {
                self.forget(&key);
                return false;
            }
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

    /// A RoleBinding changed in memory (before the store holds the change).
    pub fn index_binding(&self, cache: &Cache, change: Change<'_, RoleBinding>) {
        let earliest = self.with(|i| match change {
            Change::Upsert(rb) => {
                let owner = owner_in(cache, &rb.metadata);
                i.set(
                    &rb.metadata,
                    false,
                    binding_deadline(&rb.metadata, owner.as_deref()),
                )
            }
            Change::Remove(rb) => {
                if let Some(k) = key_of(&rb.metadata, false) {
                    i.forget(&k);
                }
                false
            }
            Change::Rebuild(all) => {
                let old: Vec<Key> = i.entries.keys().filter(|k| !k.job).cloned().collect();
                let new: HashSet<Key> = all.iter().filter_map(|rb| key_of(&rb.metadata, false)).collect();
                for k in old.iter().filter(|k| !new.contains(k)) {
                    i.forget(k);
                }
                let mut earliest = false;
                for rb in all {
                    let owner = owner_in(cache, &rb.metadata);
                    earliest |= i.set(
                        &rb.metadata,
                        false,
                        binding_deadline(&rb.metadata, owner.as_deref()),
                    );
                }
                earliest
            }
        });
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// A Job changed in memory (before the store holds the change).
    pub fn index_job(&self, cache: &Cache, change: Change<'_, Job>) {
        let earliest = self.with(|i| match change {
            Change::Upsert(job) => {
                let owner = owner_in(cache, &job.metadata);
                i.set(&job.metadata, true, job_deadline(job, owner.as_deref()))
            }
            Change::Remove(job) => {
                if let Some(k) = key_of(&job.metadata, true) {
                    i.forget(&k);
                }
                false
            }
            Change::Rebuild(all) => {
                let old: Vec<Key> = i.entries.keys().filter(|k| k.job).cloned().collect();
                let new: HashSet<Key> = all.iter().filter_map(|j| key_of(&j.metadata, true)).collect();
                for k in old.iter().filter(|k| !new.contains(k)) {
                    i.forget(k);
                }
                let mut earliest = false;
                for job in all {
                    let owner = owner_in(cache, &job.metadata);
                    earliest |= i.set(&job.metadata, true, job_deadline(job, owner.as_deref()));
                }
                earliest
            }
        });
        self.wake_lane(earliest.unwrap_or(false));
    }

    /// A request changed in memory (before the store holds the change): the
    /// deadlines of the objects it controls follow its grant and Job record.
    pub fn index_request(&self, cache: &Cache, change: Change<'_, ApprovalRequest>) {
        let judge = |i: &mut Inner, key: &Key, owner: Option<&ApprovalRequest>| -> bool {
            // The owner reference names the request by uid as well.
            if key.job {
                let r = ObjectRef::new(&key.name).within(&key.namespace);
                let Some(job) = cache.jobs.get(&r) else {
                    return false;
                };
                let owner = owner.filter(|o| same_uid(&job.metadata, o));
                i.set(&job.metadata, true, job_deadline(&job, owner))
            } else {
                let r = ObjectRef::new(&key.name).within(&key.namespace);
                let Some(rb) = cache.role_bindings.get(&r) else {
                    return false;
                };
                let owner = owner.filter(|o| same_uid(&rb.metadata, o));
                i.set(&rb.metadata, false, binding_deadline(&rb.metadata, owner))
            }
        };
        let earliest = self.with(|i| match change {
            Change::Upsert(req) | Change::Remove(req) => {
                let removed = matches!(change, Change::Remove(_));
                let owner = owner_key(&req.namespace().unwrap_or_default(), &req.name_any());
                let keys: Vec<Key> = i.by_owner.get(&owner).into_iter().flatten().cloned().collect();
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
                for (k, owner) in keys {
                    earliest |= judge(i, &k, by_key.get(&owner).copied());
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

fn same_uid(meta: &ObjectMeta, owner: &ApprovalRequest) -> bool {
    controller_request(meta).is_some_and(|o| owner.metadata.uid.as_deref() == Some(o.uid.as_str()))
}

/// The request the owner reference names, if memory holds it with that uid.
pub fn owner_in(cache: &Cache, meta: &ObjectMeta) -> Option<std::sync::Arc<ApprovalRequest>> {
    let o = controller_request(meta)?;
    let r = cache.request(meta.namespace.as_deref()?, &o.name)?;
    same_uid(meta, &r).then_some(r)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::labels::EXPIRES_AT;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn request(name: &str) -> ApprovalRequest {
        let mut r = ApprovalRequest::new(name, Default::default());
        r.metadata.namespace = Some("team".into());
        r.metadata.uid = Some(format!("{name}-uid"));
        r
    }

    fn binding(name: &str, version: &str, expires: &str) -> RoleBinding {
        let mut meta = crate::labels::owned_metadata(
            &request(name),
            name,
            Some("team"),
            BTreeMap::from([(EXPIRES_AT.to_string(), expires.to_string())]),
        );
        meta.uid = Some(format!("{name}-b"));
        meta.resource_version = Some(version.into());
        RoleBinding {
            metadata: meta,
            ..Default::default()
        }
    }

    #[test]
    fn the_earliest_deadline_comes_first_and_each_version_is_taken_once() {
        let (cache, _writers) = Cache::new();
        let d = &cache.removals;
        d.index_binding(&cache, Change::Upsert(&binding("b", "1", "2026-12-07T12:00:02Z")));
        d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
        d.index_binding(&cache, Change::Upsert(&binding("c", "1", "2026-12-07T12:00:09Z")));
        assert_eq!(d.next(), Some(at("2026-12-07T12:00:01Z")));
        let zero = chrono::Duration::zero();
        assert!(d.take_due(at("2026-12-07T12:00:00Z"), zero, 10).is_empty());
        let due = d.take_due(at("2026-12-07T12:00:05Z"), zero, 10);
        let names: Vec<&str> = due.iter().map(|x| x.key.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        // In hand: not taken again, even when the watch repeats that version.
        d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
        assert!(d.take_due(at("2026-12-07T12:00:05Z"), zero, 10).is_empty());
        // A failure waits again; a conflict settles that version until a new one comes.
        d.finish(&due[0], Outcome::Failed, at("2026-12-07T12:00:05Z"));
        d.finish(&due[1], Outcome::Changed, at("2026-12-07T12:00:05Z"));
        // The failure is retried after a back-off, not at once.
        assert!(d.take_due(at("2026-12-07T12:00:05.100Z"), zero, 10).is_empty());
        assert_eq!(
            d.take_due(at("2026-12-07T12:00:05.250Z"), zero, 10),
            vec![due[0].clone()]
        );
        d.finish(&due[0], Outcome::Failed, at("2026-12-07T12:00:05.250Z"));
        assert!(d.take_due(at("2026-12-07T12:00:05.700Z"), zero, 10).is_empty());
        assert_eq!(d.take_due(at("2026-12-07T12:00:05.750Z"), zero, 10).len(), 1);
        d.index_binding(&cache, Change::Upsert(&binding("b", "2", "2026-12-07T12:00:02Z")));
        let again = d.take_due(at("2026-12-07T12:00:05Z"), zero, 10);
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].version, "2");
        // Gone from memory: gone from the index.
        d.index_binding(&cache, Change::Remove(&binding("c", "1", "2026-12-07T12:00:09Z")));
        assert_eq!(d.len(), (2, 0));
        assert_eq!(d.next(), None);
    }

    #[test]
    fn a_grace_delays_what_is_due() {
        let (cache, _writers) = Cache::new();
        let d = &cache.removals;
        d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
        let grace = chrono::Duration::milliseconds(250);
        assert!(d.take_due(at("2026-12-07T12:00:01.200Z"), grace, 10).is_empty());
        assert_eq!(d.take_due(at("2026-12-07T12:00:01.250Z"), grace, 10).len(), 1);
    }

    #[test]
    fn a_rebuild_forgets_what_the_list_no_longer_holds() {
        let (cache, _writers) = Cache::new();
        let d = &cache.removals;
        d.index_binding(&cache, Change::Upsert(&binding("a", "1", "2026-12-07T12:00:01Z")));
        d.index_binding(&cache, Change::Upsert(&binding("b", "1", "2026-12-07T12:00:02Z")));
        d.index_binding(
            &cache,
            Change::Rebuild(&[binding("b", "1", "2026-12-07T12:00:02Z")]),
        );
        assert_eq!(d.len(), (1, 1));
        assert_eq!(d.next(), Some(at("2026-12-07T12:00:02Z")));
    }

    #[test]
    fn the_requests_earlier_expiry_moves_its_bindings_deadline() {
        use crate::api::{ApprovalRequestStatus, BindingKind, GrantStatus};
        let (cache, mut writers) = Cache::new();
        let d = &cache.removals;
        let rb = binding("a", "1", "2026-12-07T12:00:09Z");
        d.index_binding(&cache, Change::Upsert(&rb));
        writers
            .role_bindings
            .apply_watcher_event(&kube::runtime::watcher::Event::Apply(rb));
        let mut req = request("a");
        req.status = Some(ApprovalRequestStatus {
            grant: Some(GrantStatus {
                kind: BindingKind::RoleBinding,
                name: "a".into(),
                namespace: Some("team".into()),
                granted_at: None,
                expires_at: Some(at("2026-12-07T12:00:01Z")),
                revoked_at: None,
            }),
            ..Default::default()
        });
        d.index_request(&cache, Change::Upsert(&req));
        assert_eq!(d.next(), Some(at("2026-12-07T12:00:01Z")));
        // The request goes: the annotation alone counts again.
        d.index_request(&cache, Change::Remove(&req));
        assert_eq!(d.next(), Some(at("2026-12-07T12:00:09Z")));
        // Another request of that name (another uid) does not move it.
        req.metadata.uid = Some("other".into());
        d.index_request(&cache, Change::Upsert(&req));
        assert_eq!(d.next(), Some(at("2026-12-07T12:00:09Z")));
    }
}
