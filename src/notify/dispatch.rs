//! The notifier's loop, in the leader only: it turns observations, timers and
//! periodic resyncs into jobs for the channel workers, and keeps the workers in
//! step with the `NotificationChannel` objects (created, changed, deleted, a test
//! requested).
//!
//! Every path derives notices from an object's stored status
//! ([`super::events`]); the worker's ledger drops what was sent already. So an
//! observation lost to a full queue, a crash or a leader change costs at most a
//! resync period of delay, never a message.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    sync::Arc,
};

use chrono::{DateTime, Utc};
use kube::{runtime::reflector::ObjectRef, ResourceExt};
use tokio::{
    sync::{mpsc, watch},
    task::{AbortHandle, JoinSet},
};
use tracing::{info, warn};

use super::{
    certification::{item_notices, reminder_at, run_notices},
    channel::Channel,
    deliver::{self, Job, Shared},
    endpoint,
    events::{expiring_soon_at, request_notices, Notice},
    status::{self, Readiness, TEST_ANNOTATION},
    Observation,
};
use crate::{
    api::{AccessCampaign, AccessCertification, ApprovalRequest, NotificationChannel},
    store::Cache,
};

/// Something to derive again at a given time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    /// A request, by `namespace/name`.
    Request(String, String),
    /// A certification item, by `namespace/name`.
    Item(String, String),
}

struct Worker {
    uid: String,
    config: watch::Sender<Channel>,
    tx: mpsc::Sender<Job>,
    abort: AbortHandle,
}

/// The loop's state.
pub struct Dispatcher {
    shared: Arc<Shared>,
    cache: Arc<Cache>,
    rx: mpsc::Receiver<Observation>,
    workers: HashMap<String, Worker>,
    tasks: JoinSet<()>,
    timers: BTreeSet<(DateTime<Utc>, Due)>,
    /// Certification objects as last observed (they are not in the cache yet).
    items: HashMap<(String, String), AccessCertification>,
    campaigns: HashMap<String, AccessCampaign>,
    /// (uid, generation) whose readiness was checked.
    checked: HashMap<String, (String, i64)>,
    /// Test requests being answered, by channel.
    testing: HashSet<(String, String)>,
}

impl Dispatcher {
    /// A dispatcher fed by `rx`.
    pub fn new(shared: Arc<Shared>, cache: Arc<Cache>, rx: mpsc::Receiver<Observation>) -> Self {
        Dispatcher {
            shared,
            cache,
            rx,
            workers: HashMap::new(),
            tasks: JoinSet::new(),
            timers: BTreeSet::new(),
            items: HashMap::new(),
            campaigns: HashMap::new(),
            checked: HashMap::new(),
            testing: HashSet::new(),
        }
    }

    /// Runs until the task is aborted (then the workers go with it: they live in
    /// its JoinSet).
    pub async fn run(mut self) {
        let mut poll = tokio::time::interval(self.shared.settings.channel_poll);
        let mut resync = tokio::time::interval(self.shared.settings.resync);
        resync.tick().await;
        self.sync_channels().await;
        self.resync_all();
        loop {
            let next = self.timers.first().map(|(t, _)| *t);
            let sleep = match next {
                Some(t) => (t - (self.shared.clock)()).to_std().unwrap_or_default(),
                None => std::time::Duration::from_secs(3600),
            };
            tokio::select! {
                o = self.rx.recv() => match o {
                    Some(o) => self.observe(o),
                    None => return,
                },
                _ = tokio::time::sleep(sleep), if next.is_some() => self.fire_timers(),
                _ = poll.tick() => self.sync_channels().await,
                _ = resync.tick() => {
                    self.checked.clear();
                    self.resync_all();
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    fn observe(&mut self, o: Observation) {
        match o {
            Observation::Request(r) => self.request(&r, None),
            Observation::Certification(i) => self.item(*i, None),
            Observation::Campaign(c) => self.campaign(*c, None),
        }
    }

    /// Every object again, for every channel (or only `only`).
    fn resync_all(&mut self) {
        self.resync(None);
    }

    fn resync(&mut self, only: Option<&str>) {
        for r in self.cache.requests.state() {
            self.request(&r, only);
        }
        // Items and campaigns as memory holds them (what was observed last is
        // only a fallback for a cache without them).
        let mut items: Vec<AccessCertification> =
            self.cache.items.state().iter().map(|i| (**i).clone()).collect();
        if items.is_empty() {
            items = self.items.values().cloned().collect();
        }
        for i in items {
            self.item(i, only);
        }
        let mut campaigns: Vec<AccessCampaign> = self
            .cache
            .campaigns
            .state()
            .iter()
            .map(|c| (**c).clone())
            .collect();
        if campaigns.is_empty() {
            campaigns = self.campaigns.values().cloned().collect();
        }
        for c in campaigns {
            self.campaign(c, only);
        }
    }

    fn fire_timers(&mut self) {
        let now = (self.shared.clock)();
        while let Some((t, due)) = self.timers.first().cloned() {
            if t > now {
                break;
            }
            self.timers.remove(&(t, due.clone()));
            match due {
                Due::Request(ns, name) => {
                    if let Some(r) = self.cache.requests.get(&ObjectRef::new(&name).within(&ns)) {
                        self.request(&r, None);
                    }
                }
                Due::Item(ns, name) => {
                    let item = self
                        .cache
                        .items
                        .get(&ObjectRef::new(&name).within(&ns))
                        .map(|i| (*i).clone())
                        .or_else(|| self.items.get(&(ns, name)).cloned());
                    if let Some(i) = item {
                        self.item(i, None);
                    }
                }
            }
        }
    }

    /// Queues the notices of `derive` for each channel that wants them.
    fn queue(&self, only: Option<&str>, derive: impl Fn(&Channel, DateTime<Utc>) -> Vec<Notice>) {
        let now = (self.shared.clock)();
        let catch_up = self.shared.settings.catch_up;
        for (name, w) in &self.workers {
            if only.is_some_and(|o| o != name) {
                continue;
            }
            let ch = w.config.borrow().clone();
            if ch.suspend {
                continue;
            }
            for n in derive(&ch, now) {
                if ch.wants(&n)
                    && ch.in_window(&n, now, catch_up)
                    && w.tx.try_send(Job::new(n, name)).is_err()
                {
                    self.shared.metrics.notifications_dropped.inc();
                }
            }
        }
    }

    fn leads(&self) -> Vec<super::events::Leads> {
        self.workers.values().map(|w| w.config.borrow().leads).collect()
    }

    fn request(&mut self, req: &ApprovalRequest, only: Option<&str>) {
        self.queue(only, |ch, now| request_notices(req, now, ch.leads));
        let now = (self.shared.clock)();
        for leads in self.leads() {
            if let Some(due) = expiring_soon_at(req, leads.expiring_soon).filter(|d| *d > now) {
                let key = Due::Request(req.namespace().unwrap_or_default(), req.name_any());
                self.timers.insert((due, key));
            }
        }
    }

    fn item(&mut self, item: AccessCertification, only: Option<&str>) {
        self.queue(only, |ch, now| item_notices(&item, now, ch.leads));
        let now = (self.shared.clock)();
        let key = (item.namespace().unwrap_or_default(), item.name_any());
        let mut open = false;
        for leads in self.leads() {
            if let Some(due) = reminder_at(&item, leads) {
                open = true;
                if due > now {
                    self.timers.insert((due, Due::Item(key.0.clone(), key.1.clone())));
                }
            }
        }
        // Closed items need no reminder: forget them.
        if open {
            self.items.insert(key, item);
        } else {
            self.items.remove(&key);
        }
    }

    fn campaign(&mut self, campaign: AccessCampaign, only: Option<&str>) {
        self.queue(only, |_, now| run_notices(&campaign, now));
        self.campaigns.insert(campaign.name_any(), campaign);
    }

    /// Starts, updates and stops workers to match the channels; checks readiness
    /// of new or changed channels; answers test requests.
    async fn sync_channels(&mut self) {
        let channels = self.cache.notification_channels.state();
        let names: HashSet<String> = channels.iter().map(|c| c.name_any()).collect();
        self.workers.retain(|name, w| {
            let keep = names.contains(name);
            if !keep {
                w.abort.abort();
            }
            keep
        });
        let mut new = Vec::new();
        for obj in channels {
            let name = obj.name_any();
            let uid = obj.uid().unwrap_or_default();
            let config = Channel::try_from(obj.as_ref());
            self.check(&obj, config.as_ref().err()).await;
            let Ok(config) = config else {
                if let Some(w) = self.workers.remove(&name) {
                    w.abort.abort();
                }
                continue;
            };
            match self.workers.get(&name) {
                Some(w) if w.uid == uid => {
                    w.config.send_if_modified(|c| {
                        let changed = *c != config;
                        *c = config.clone();
                        changed
                    });
                }
                _ => {
                    if let Some(w) = self.workers.remove(&name) {
                        w.abort.abort();
                    }
                    let (tx, rx) = mpsc::channel(deliver::QUEUE);
                    let (config_tx, config_rx) = watch::channel(config);
                    let abort = self.tasks.spawn(deliver::run(
                        self.shared.clone(),
                        obj.as_ref().clone(),
                        config_rx,
                        rx,
                    ));
                    info!(channel = %name, "notification channel started");
                    self.workers.insert(
                        name.clone(),
                        Worker {
                            uid,
                            config: config_tx,
                            tx,
                            abort,
                        },
                    );
                    new.push(name.clone());
                }
            }
            self.test_if_asked(&obj);
        }
        // What happened since the channel appeared and before its worker did.
        for name in new {
            self.resync(Some(&name));
        }
    }

    /// Writes `Ready` for a channel whose spec is new or changed (or at resync).
    async fn check(&mut self, ch: &NotificationChannel, invalid: Option<&super::channel::ChannelError>) {
        let name = ch.name_any();
        let stamp = (
            ch.uid().unwrap_or_default(),
            ch.metadata.generation.unwrap_or_default(),
        );
        if self.checked.get(&name) == Some(&stamp) {
            return;
        }
        let readiness = match invalid {
            Some(e) => Readiness {
                ready: false,
                reason: "InvalidSpec",
                message: e.to_string(),
            },
            None if ch.spec.suspend => Readiness {
                ready: false,
                reason: "Suspended",
                message: "spec.suspend is true: nothing is sent".into(),
            },
            None => {
                let s = &self.shared;
                let found = tokio::time::timeout(
                    s.settings.attempt_timeout,
                    endpoint::endpoint(
                        &s.client,
                        &s.settings.namespace,
                        &ch.spec.secret_ref.name,
                        ch.spec.type_,
                        s.settings.destinations,
                    ),
                )
                .await;
                match found {
                    Ok(Ok(_)) => Readiness {
                        ready: true,
                        reason: "SecretFound",
                        message: format!(
                            "Secret {}/{} holds what a {} channel needs, at an allowed address",
                            s.settings.namespace,
                            ch.spec.secret_ref.name,
                            ch.spec.type_.as_str()
                        ),
                    },
                    Ok(Err(e)) => Readiness {
                        ready: false,
                        reason: e.reason(),
                        message: e.to_string(),
                    },
                    Err(_) => {
                        warn!(channel = %name, "reading the channel's Secret timed out");
                        return;
                    }
                }
            }
        };
        if !status::ready_is_current(ch, &readiness) {
            status::write_ready(&self.shared.client, ch, &readiness, (self.shared.clock)()).await;
        }
        self.checked.insert(name, stamp);
    }

    fn test_if_asked(&mut self, ch: &Arc<NotificationChannel>) {
        let Some(asked) = ch.annotations().get(TEST_ANNOTATION).cloned() else {
            return;
        };
        let answered = ch
            .status
            .as_ref()
            .and_then(|s| s.last_test.as_ref())
            .is_some_and(|t| t.requested == asked);
        let key = (ch.name_any(), asked.clone());
        if answered || self.testing.contains(&key) {
            return;
        }
        self.testing.insert(key);
        self.tasks.spawn(super::deliver::send_test(
            self.shared.clone(),
            ch.as_ref().clone(),
            asked,
        ));
    }
}
