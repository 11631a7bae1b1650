//! The persisted side of usage evidence, measured with the operator's own code:
//! the memory of 100,000 pairs loaded from `BindingUsage` objects (read a page
//! at a time and dropped, as the operator loads them; the metadata watch's name
//! and version per object, the stored book, the index, the transient copy while
//! the index is rebuilt), and the writes the flush (`controller::usage_flush`) makes
//! against the in-process fake API server over simulated hours of a steady
//! stream of events, two replicas each receiving half of them.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    collections::HashMap,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc,
    },
};

use chrono::{DateTime, Duration, TimeZone, Utc};
use gatehouse::{
    api::{BindingKind, BindingUsage, RoleKind, RoleRef, Subject, SubjectKind},
    audit::UsageState,
    controller::usage_flush::Flusher,
    metrics::Metrics,
    usage::{
        book::{PairKey, PairUsage, Settings, Top},
        summary::{object_name, pairs_of, spec_of, status_of},
        AuditEvent, BindingRef,
    },
};
use kube_fake_client::{interceptor::Funcs, ClientBuilder};

/// Counts the bytes live on the heap, and the peak since the last reset.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now =
                    LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed) + new_size - layout.size();
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn live() -> usize {
    LIVE.load(Ordering::Relaxed)
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

const ACTIONS: [&str; 8] = [
    "get pods",
    "list pods",
    "watch pods",
    "get pods/log",
    "create pods/exec",
    "list deployments.apps",
    "patch deployments.apps",
    "get configmaps",
];

fn day0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 12, 0, 0)
        .single()
        .unwrap_or_default()
}

/// One binding's object as the operator writes it: `subjects` users, each used
/// on `days` days up to `day0`, with 8 actions and 4 actors.
fn object(n: usize, subjects: usize, days: i64) -> BindingUsage {
    let binding = BindingRef {
        kind: BindingKind::RoleBinding,
        namespace: Some(format!("ns-{}", n % 500)),
        name: format!("team-{n}-view"),
    };
    let s = Settings::default();
    let pairs: Vec<(PairKey, PairUsage)> = (0..subjects)
        .map(|i| {
            let key = PairKey {
                binding: binding.clone(),
                subject: Subject {
                    kind: SubjectKind::User,
                    name: format!("user-{n}-{i}@example.com"),
                    namespace: None,
                },
            };
            let mut p = PairUsage::empty(
                RoleRef {
                    kind: RoleKind::ClusterRole,
                    name: "view".into(),
                },
                day0() - Duration::days(days - 1),
                day0(),
            );
            for d in 0..days {
                let day = (day0() - Duration::days(d)).date_naive();
                p.add_day(chrono::Datelike::num_days_from_ce(&day), 10 + d as u64);
            }
            p.actions = Top::from_counts(ACTIONS.iter().map(|a| (*a, 7)), s.max_actions);
            let actors: Vec<String> = (0..4).map(|a| format!("user-{n}-{i}-{a}@example.com")).collect();
            p.actors = Top::from_counts(actors.iter().map(|a| (a.as_str(), 3)), s.max_actors);
            (key, p)
        })
        .collect();
    let mut o = BindingUsage::new(&object_name(&binding), spec_of(&binding));
    let refs: Vec<(&PairKey, &PairUsage)> = pairs.iter().map(|(k, p)| (k, p)).collect();
    o.status = Some(status_of(refs, Some(day0() - Duration::days(120))));
    // As the watch delivers it: parsed from the API server's JSON.
    serde_json::from_value(serde_json::to_value(&o).unwrap_or_default()).unwrap_or(o)
}

/// 100,000 pairs (20,000 bindings × 5 subjects) loaded from their objects.
pub fn memory_of_persisted_pairs() {
    for days in [1i64, 30, 90] {
        let (bindings, subjects) = (20_000, 5);
        let base = live();
        PEAK.store(base, Ordering::Relaxed);
        // The metadata watch's map: a name and a resourceVersion per object.
        let versions: HashMap<String, String> = (0..bindings)
            .map(|n| {
                let name = object(n, 0, 1).metadata.name.unwrap_or_default();
                (name, format!("{}", 48_000_000 + n))
            })
            .collect();
        let with_versions = live();
        let state = UsageState::new(Settings::default());
        // Loaded as `Flusher::load_stored` does: a page of 500 objects at a time.
        for page in (0..bindings).collect::<Vec<_>>().chunks(500) {
            let objects: Vec<BindingUsage> = page.iter().map(|n| object(*n, subjects, days)).collect();
            for o in &objects {
                if let Some(s) = &o.status {
                    state.load(pairs_of(&o.spec, s, state.settings()), s.observed_since);
                }
            }
        }
        let load_peak = PEAK.load(Ordering::Relaxed);
        let with_book = live();
        PEAK.store(with_book, Ordering::Relaxed);
        state.refresh(day0());
        let peak = PEAK.load(Ordering::Relaxed);
        let with_index = live();
        let pairs = bindings * subjects;
        println!(
            "usage persisted: {pairs} pairs used on {days} day(s) each: names and versions (the metadata \
             watch's) {:.1} MiB, stored book {:.0} MiB, index {:.0} MiB, total {:.0} MiB ({} bytes a pair), \
             peak during the paged load {:.0} MiB, during the index rebuild {:.0} MiB; RSS {} MiB",
            mib(with_versions - base),
            mib(with_book - with_versions),
            mib(with_index.saturating_sub(with_book)),
            mib(with_index - base),
            (with_index - base) / pairs,
            mib(load_peak - base),
            mib(peak - base),
            super::rss_kib() / 1024,
        );
        std::hint::black_box((&versions, &state));
    }
}

/// One request by user `u` through binding `b` at `at`.
fn event(b: usize, u: usize, at: DateTime<Utc>) -> AuditEvent {
    let reason = format!(
        "RBAC: allowed by RoleBinding \"team-{b}-view/ns-{}\" of ClusterRole \"view\" to User \"user-{b}-{u}@example.com\"",
        b % 500
    );
    let e = serde_json::json!({
        "kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata",
        "auditID": "5d2c1f0e", "stage": "ResponseComplete", "verb": "get",
        "requestURI": format!("/api/v1/namespaces/ns-{}/pods/web", b % 500),
        "user": {"username": format!("user-{b}-{u}@example.com"), "groups": ["system:authenticated"]},
        "objectRef": {"resource": "pods", "namespace": format!("ns-{}", b % 500), "apiVersion": "v1"},
        "responseStatus": {"code": 200},
        "stageTimestamp": at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        "annotations": {"authorization.k8s.io/decision": "allow", "authorization.k8s.io/reason": reason}
    });
    serde_json::from_value(e).unwrap_or_default()
}

#[derive(Default)]
struct Calls {
    get: AtomicUsize,
    create: AtomicUsize,
    replace_status: AtomicUsize,
}

/// The flush of two replicas against the fake API server: `bindings` bindings
/// of which requests arrive at `per_minute` a minute, in rounds over the
/// bindings, each round to the other replica (as a Service spreads them),
/// flushed every 5 minutes for `hours`.
async fn steady(bindings: usize, per_minute: usize, hours: i64) {
    let calls = Arc::new(Calls::default());
    let (g, c, r) = (calls.clone(), calls.clone(), calls.clone());
    let funcs = Funcs::new()
        .get(move |_| {
            g.get.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        })
        .create(move |_| {
            c.create.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        })
        .replace_status(move |_| {
            r.replace_status.fetch_add(1, Ordering::Relaxed);
            Ok(None)
        });
    let Ok(client) = ClientBuilder::new()
        .with_resource::<BindingUsage>()
        .with_status_subresource::<BindingUsage>()
        .with_interceptor_funcs(funcs)
        .build()
        .await
    else {
        println!("usage writes: cannot build the fake API server");
        return;
    };
    let metrics = Arc::new(Metrics::default());
    let mut replicas: Vec<(Arc<UsageState>, Flusher)> = (0..2)
        .map(|i| {
            let state = Arc::new(UsageState::new(Settings::default()));
            state.load(Vec::new(), None);
            let f = Flusher::new(
                client.clone(),
                "gatehouse-system",
                state.clone(),
                metrics.clone(),
                format!("gatehouse-{i}/bench"),
            );
            (state, f)
        })
        .collect();
    let mut next = 0usize;
    let (mut written, mut conflicts, mut failed) = (0, 0, 0);
    let minutes = hours * 60;
    // The first hour fills the objects (their creates); the second is measured.
    let mut at_start = (0, 0, 0);
    for minute in 0..minutes {
        let t = day0() + Duration::minutes(minute);
        if minute == minutes - 60 {
            at_start = (
                calls.get.load(Ordering::Relaxed),
                calls.create.load(Ordering::Relaxed),
                calls.replace_status.load(Ordering::Relaxed),
            );
            (written, conflicts, failed) = (0, 0, 0);
        }
        for i in 0..per_minute {
            let (b, round) = (next % bindings, next / bindings);
            next += 1;
            let at = t + Duration::milliseconds((i * 60_000 / per_minute.max(1)) as i64);
            replicas[round % 2].0.ingest(&[event(b, next % 3, at)], 0);
        }
        if (minute + 1) % 5 == 0 {
            for (_, f) in &mut replicas {
                let d = f.flush(t + Duration::minutes(1)).await;
                written += d.written;
                conflicts += d.conflicts;
                failed += d.failed;
            }
        }
    }
    let gets = calls.get.load(Ordering::Relaxed) - at_start.0;
    let creates = calls.create.load(Ordering::Relaxed) - at_start.1;
    let replaces = calls.replace_status.load(Ordering::Relaxed) - at_start.2;
    let used = bindings.min(per_minute * 5);
    println!(
        "usage writes: {bindings} bindings, {per_minute} requests/min over 2 replicas, flush every 5m, last hour of {hours}: \
         {replaces} status writes + {creates} creates ({:.1}/min, {:.1}/h per binding used in an interval), \
         {gets} reads (one before each write), \
         flushes: {written} written, {conflicts} conflicts, {failed} failed",
        (replaces + creates) as f64 / 60.0,
        (replaces + creates) as f64 / used as f64,
    );
}

/// Writes per minute at steady state.
pub fn writes_at_steady_state() {
    let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
        return;
    };
    rt.block_on(async {
        // Every binding used in every interval, through both replicas (the
        // worst case),
        steady(1_000, 2_000, 2).await;
        // and 10,000 bindings of which 2,500 are used in an interval, each
        // through one replica.
        steady(10_000, 500, 2).await;
    });
}
