//! What was sent to a channel, kept across restarts and leader changes: one
//! ConfigMap per channel in the operator's namespace, owned by the channel (it
//! goes when the channel goes).
//!
//! Each entry is a delivery id ([`super::hmac::delivery_id`]) marked `sending`
//! before the first attempt and `delivered` after the endpoint accepted it (or
//! `failed` once given up). A
//! worker that finds `delivered` sends nothing; one that finds `sending` (the
//! previous leader stopped between the endpoint's answer and the write) sends
//! again, with the same delivery id. Entries expire when their event is older
//! than the catch-up window, since such an event is never derived for sending
//! again; the ledger of a busy channel therefore holds about one window's events,
//! and never more than [`MAX_ENTRIES`].

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use k8s_openapi::{api::core::v1::ConfigMap, apimachinery::pkg::apis::meta::v1::OwnerReference};
use kube::{
    api::{Api, ObjectMeta, PostParams},
    Resource, ResourceExt,
};

use crate::{api::NotificationChannel, labels};

/// Entries a ledger keeps at most (a ConfigMap holds 1 MiB; an entry is ~60 bytes).
pub const MAX_ENTRIES: usize = 8000;

/// How far a delivery got (written into the ledger ConfigMap by its serde name).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mark {
    /// An attempt may have reached the endpoint.
    Sending,
    /// Given up (refused for good, or too old): never attempted again.
    Failed,
    /// The endpoint accepted it.
    Delivered,
}

crate::wire_names!(Mark);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    mark: Mark,
    /// Unix seconds after which the entry is dropped.
    expires: i64,
}

/// The deliveries of one channel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Ledger {
    entries: BTreeMap<String, Entry>,
}

impl Ledger {
    /// How far the delivery got, if it was ever attempted.
    pub fn get(&self, id: &str) -> Option<Mark> {
        self.entries.get(id).map(|e| e.mark)
    }

    /// Records a delivery's progress; `delivered` is never taken back.
    pub fn mark(&mut self, id: &str, mark: Mark, expires: DateTime<Utc>) {
        let entry = self.entries.entry(id.to_string()).or_insert(Entry {
            mark,
            expires: expires.timestamp(),
        });
        entry.mark = entry.mark.max(mark);
        entry.expires = entry.expires.max(expires.timestamp());
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Drops expired entries, then the soonest-expiring ones above
    /// [`MAX_ENTRIES`]; returns how many went.
    pub fn prune(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.entries.len();
        let now = now.timestamp();
        self.entries.retain(|_, e| e.expires > now);
        if self.entries.len() > MAX_ENTRIES {
            let mut by_expiry: Vec<(i64, String)> =
                self.entries.iter().map(|(k, e)| (e.expires, k.clone())).collect();
            by_expiry.sort();
            let excess = self.entries.len() - MAX_ENTRIES;
            for (_, k) in by_expiry.into_iter().take(excess) {
                self.entries.remove(&k);
            }
        }
        before - self.entries.len()
    }

    /// Takes in what another copy knows (after a write conflict).
    pub fn merge(&mut self, other: &Ledger) {
        for (id, e) in &other.entries {
            let mine = self.entries.entry(id.clone()).or_insert(*e);
            mine.mark = mine.mark.max(e.mark);
            mine.expires = mine.expires.max(e.expires);
        }
    }

    /// The ConfigMap data: `id: "delivered 1764590400"`.
    pub fn to_data(&self) -> BTreeMap<String, String> {
        self.entries
            .iter()
            .map(|(k, e)| (k.clone(), format!("{} {}", e.mark.as_str(), e.expires)))
            .collect()
    }

    /// Reads ConfigMap data; malformed entries are ignored.
    pub fn from_data(data: &BTreeMap<String, String>) -> Self {
        let entries = data
            .iter()
            .filter_map(|(k, v)| {
                let (mark, expires) = v.split_once(' ')?;
                let mark = Mark::parse(mark)?;
                Some((
                    k.clone(),
                    Entry {
                        mark,
                        expires: expires.parse().ok()?,
                    },
                ))
            })
            .collect();
        Ledger { entries }
    }
}

/// Name of a channel's ledger ConfigMap.
pub fn ledger_name(channel: &str) -> String {
    let name = format!("gatehouse-ledger-{channel}");
    if name.len() <= 253 {
        name
    } else {
        format!(
            "gatehouse-ledger-{}",
            &super::hmac::delivery_id(channel, "", "")[..16]
        )
    }
}

/// Why the ledger could not be written.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The API call failed.
    #[error("{0}")]
    Kube(#[from] kube::Error),
    /// Other writers kept changing it.
    #[error("ledger {0}: conflicting writes, three times in a row")]
    Conflict(String),
}

fn is_conflict(e: &kube::Error) -> bool {
    matches!(e, kube::Error::Api(s) if s.code == 409)
}

/// Where a channel's ledger is kept.
pub struct LedgerStore {
    api: Api<ConfigMap>,
    name: String,
    owner: OwnerReference,
    version: Option<String>,
}

impl LedgerStore {
    /// The ledger of `channel`, in `namespace`.
    pub fn new(client: kube::Client, namespace: &str, channel: &NotificationChannel) -> Self {
        LedgerStore {
            api: Api::namespaced(client, namespace),
            name: ledger_name(&channel.name_any()),
            owner: OwnerReference {
                api_version: NotificationChannel::api_version(&()).into_owned(),
                kind: NotificationChannel::kind(&()).into_owned(),
                name: channel.name_any(),
                uid: channel.uid().unwrap_or_default(),
                ..Default::default()
            },
            version: None,
        }
    }

    /// Reads the ledger (empty if there is none yet).
    pub async fn load(&mut self) -> Result<Ledger, kube::Error> {
        match self.api.get_opt(&self.name).await? {
            Some(cm) => {
                self.version = cm.resource_version();
                Ok(Ledger::from_data(&cm.data.unwrap_or_default()))
            }
            None => {
                self.version = None;
                Ok(Ledger::default())
            }
        }
    }

    /// Writes the ledger. A conflict (another writer, or a stale copy) reloads,
    /// merges and writes again; the merged ledger is left in `ledger`.
    pub async fn save(&mut self, ledger: &mut Ledger, now: DateTime<Utc>) -> Result<(), LedgerError> {
        ledger.prune(now);
        for _ in 0..3 {
            let cm = ConfigMap {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    resource_version: self.version.clone(),
                    owner_references: Some(vec![self.owner.clone()]),
                    labels: Some(BTreeMap::from([(
                        labels::MANAGED_BY.0.to_string(),
                        labels::MANAGED_BY.1.to_string(),
                    )])),
                    ..Default::default()
                },
                data: Some(ledger.to_data()),
                ..Default::default()
            };
            let written = match &self.version {
                Some(_) => self.api.replace(&self.name, &PostParams::default(), &cm).await,
                None => self.api.create(&PostParams::default(), &cm).await,
            };
            match written {
                Ok(cm) => {
                    self.version = cm.resource_version();
                    return Ok(());
                }
                Err(e) if is_conflict(&e) => {
                    let theirs = self.load().await?;
                    ledger.merge(&theirs);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(LedgerError::Conflict(self.name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn t(s: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_764_590_400 + s, 0).unwrap()
    }

    #[test]
    fn delivered_is_never_taken_back() {
        let mut l = Ledger::default();
        l.mark("a", Mark::Sending, t(100));
        l.mark("a", Mark::Delivered, t(100));
        l.mark("a", Mark::Sending, t(100));
        assert_eq!(l.get("a"), Some(Mark::Delivered));
        assert_eq!(l.get("b"), None);
    }

    #[test]
    fn the_ledger_survives_its_configmap_form() {
        let mut l = Ledger::default();
        l.mark("a", Mark::Sending, t(100));
        l.mark("b", Mark::Delivered, t(200));
        let data = l.to_data();
        assert_eq!(data["b"], format!("delivered {}", t(200).timestamp()));
        assert_eq!(Ledger::from_data(&data), l);
        let mut bad = data.clone();
        bad.insert("c".into(), "lost 12".into());
        bad.insert("d".into(), "delivered soon".into());
        assert_eq!(Ledger::from_data(&bad), l, "malformed entries are ignored");
    }

    #[test]
    fn expired_entries_go_and_the_size_is_capped() {
        let mut l = Ledger::default();
        l.mark("old", Mark::Delivered, t(10));
        l.mark("new", Mark::Delivered, t(1000));
        assert_eq!(l.prune(t(100)), 1);
        assert_eq!(l.get("old"), None);
        for i in 0..(MAX_ENTRIES + 5) {
            l.mark(&format!("x{i}"), Mark::Delivered, t(2000 + i as i64));
        }
        l.prune(t(100));
        assert_eq!(l.len(), MAX_ENTRIES);
        assert_eq!(l.get("new"), None, "the soonest to expire go first");
        assert!(l.get(&format!("x{}", MAX_ENTRIES + 4)).is_some());
    }

    #[test]
    fn a_merge_keeps_the_furthest_mark() {
        let mut mine = Ledger::default();
        mine.mark("a", Mark::Sending, t(100));
        let mut theirs = Ledger::default();
        theirs.mark("a", Mark::Delivered, t(100));
        theirs.mark("b", Mark::Sending, t(100));
        mine.merge(&theirs);
        assert_eq!(mine.get("a"), Some(Mark::Delivered));
        assert_eq!(mine.get("b"), Some(Mark::Sending));
    }

    #[test]
    fn long_channel_names_still_give_a_valid_configmap_name() {
        assert_eq!(ledger_name("ops"), "gatehouse-ledger-ops");
        let long = "a".repeat(250);
        assert!(ledger_name(&long).len() <= 253);
    }
}
