//! Where the operator's memory goes with L live grants: the bytes each cached
//! object, each index and each store entry holds, counted by a global allocator
//! while the cache is filled the way the watch loops fill it (wire JSON parsed
//! as the kind's wire type, trimmed, indexed, stored).
//!
//! `cargo bench --bench memory` (L = 10,000), or `cargo bench --bench memory -- 2000`.
//!
//! The objects are those the load benchmark makes (`benches/load`), as the API
//! server returned them for a granted request of `hack/bench.sh`'s live phase:
//! the request (status Active), its approval (status Accepted) and the
//! RoleBinding the operator wrote, in `benches/memory/*.json`; each copy gets
//! its own name, uid and resourceVersion.
//!
//! Figures are the bytes asked of the allocator and the same rounded up to
//! jemalloc's size classes (what the operator's allocator, feature `jemalloc`,
//! really hands out), per object. They leave out what the allocator keeps
//! beyond that (free pages it has not returned, arenas); compare with the RSS
//! of `hack/bench.sh` in docs/performance.md.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    sync::atomic::{AtomicUsize, Ordering::Relaxed},
};

use gatehouse::{
    api::{AccessReview, ApprovalRequest},
    store::{Cache, Cached, Change},
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::runtime::{reflector::store::Writer, watcher::Event};

/// Counts live bytes: asked for, and rounded up to jemalloc's size classes.
struct Counting;

static ASKED: AtomicUsize = AtomicUsize::new(0);
static CLASSED: AtomicUsize = AtomicUsize::new(0);
static BLOCKS: AtomicUsize = AtomicUsize::new(0);

/// jemalloc's size class of an allocation of `size` bytes (4 classes per
/// doubling past 64; 8, 16, 32, 48, 64 below; pages past 16 KiB).
fn class(size: usize) -> usize {
    if size <= 8 {
        return 8;
    }
    if size <= 16 {
        return 16;
    }
    if size <= 64 {
        return size.div_ceil(16) * 16;
    }
    let group = usize::BITS - (size - 1).leading_zeros() - 1; // 2^group < size <= 2^(group+1)
    let step = 1usize << (group - 2);
    size.div_ceil(step) * step
}

/// The allocator underneath: the operator's (jemalloc) with `--features
/// jemalloc`, so that the resident set size printed at the end is comparable.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
static UNDER: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;
#[cfg(not(all(feature = "jemalloc", not(target_env = "msvc"))))]
static UNDER: System = System;

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ASKED.fetch_add(layout.size(), Relaxed);
        CLASSED.fetch_add(class(layout.size()), Relaxed);
        BLOCKS.fetch_add(1, Relaxed);
        unsafe { UNDER.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        ASKED.fetch_sub(layout.size(), Relaxed);
        CLASSED.fetch_sub(class(layout.size()), Relaxed);
        BLOCKS.fetch_sub(1, Relaxed);
        unsafe { UNDER.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ASKED.fetch_add(new_size, Relaxed);
        ASKED.fetch_sub(layout.size(), Relaxed);
        CLASSED.fetch_add(class(new_size), Relaxed);
        CLASSED.fetch_sub(class(layout.size()), Relaxed);
        unsafe { UNDER.realloc(ptr, layout, new_size) }
    }
}

/// This process's resident set size, MiB.
fn rss() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy)]
struct Mark {
    asked: usize,
    classed: usize,
    blocks: usize,
}

fn mark() -> Mark {
    Mark {
        asked: ASKED.load(Relaxed),
        classed: CLASSED.load(Relaxed),
        blocks: BLOCKS.load(Relaxed),
    }
}

struct Report {
    n: usize,
    rows: Vec<(String, Mark)>,
}

impl Report {
    fn row(&mut self, what: &str, from: Mark, to: Mark) {
        let d = Mark {
            asked: to.asked.wrapping_sub(from.asked),
            classed: to.classed.wrapping_sub(from.classed),
            blocks: to.blocks.wrapping_sub(from.blocks),
        };
        self.rows.push((what.to_string(), d));
    }

    fn print(&self) {
        println!(
            "{:<48} {:>10} {:>10} {:>8}",
            "per live grant", "asked B", "jemalloc B", "blocks"
        );
        for (what, d) in &self.rows {
            let per = |v: usize| v as f64 / self.n as f64;
            println!(
                "{:<48} {:>10.0} {:>10.0} {:>8.1}",
                what,
                per(d.asked),
                per(d.classed),
                per(d.blocks)
            );
        }
    }
}

/// The fixture with request `r-00000` renamed to copy `i`, every uid and
/// resourceVersion made unique.
fn copy(template: &str, i: usize) -> String {
    template
        .replace("r-00000", &format!("r-{i:05}"))
        .replace("-000000000000\"", &format!("-{i:012}\""))
        .replace(
            "\"resourceVersion\":\"1\"",
            &format!("\"resourceVersion\":\"{}\"", 1000 + i),
        )
}

/// Parses, trims, indexes and stores `n` copies of the fixture as the watch
/// loop does; reports the object, its index entries and its store entry.
fn fill<K: Cached>(report: &mut Report, cache: &Cache, writer: &mut Writer<K>, template: &str, n: usize) {
    let texts: Vec<String> = (0..n).map(|i| copy(template, i)).collect();
    let mut parsed = Vec::with_capacity(n);
    let mut copies = Vec::with_capacity(n);
    let start = mark();
    for t in &texts {
        let wire: K::Wire = match serde_json::from_str(t) {
            Ok(w) => w,
            Err(e) => panic!("{}: {e}", K::RESOURCE),
        };
        parsed.push(K::from_wire(wire));
    }
    // What the store holds is a clone (exact capacities) in an Arc.
    let cloning = mark();
    for obj in &parsed {
        copies.push(obj.clone());
    }
    let cloned = mark();
    let inline = std::mem::size_of::<K>() + 16;
    // The clones' own bytes (their fields) sit in the vector; in the store
    // they are an Arc of their own.
    let with_arc = Mark {
        asked: cloned.asked + inline * n,
        classed: cloned.classed + class(inline) * n,
        blocks: cloned.blocks + n,
    };
    report.row(
        &format!("{}: object ({} B inline in its Arc)", K::RESOURCE, inline),
        cloning,
        with_arc,
    );
    drop(copies);
    let before_index = mark();
    for obj in &parsed {
        K::index(cache, Change::Upsert(obj));
    }
    let indexed = mark();
    report.row(&format!("{}: its indexes", K::RESOURCE), before_index, indexed);
    for obj in &parsed {
        writer.apply_watcher_event(&Event::Apply(obj.clone()));
    }
    let stored = mark();
    report.row(
        &format!("{}: store entry and object", K::RESOURCE),
        indexed,
        stored,
    );
    drop(parsed);
    let _ = start;
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10_000);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/memory");
    let read = |name: &str| {
        std::fs::read_to_string(format!("{dir}/{name}"))
            .unwrap_or_else(|e| panic!("{name}: {e}"))
            .trim()
            .to_string()
    };
    let (request, review, binding) = (read("request.json"), read("review.json"), read("binding.json"));
    for (name, t) in [("request", &request), ("review", &review), ("binding", &binding)] {
        println!("{name}: {} bytes of JSON", t.len());
    }
    let mut report = Report { n, rows: Vec::new() };
    let rss_start = rss();
    let start = mark();
    let (cache, mut writers) = Cache::new();
    fill::<ApprovalRequest>(&mut report, &cache, &mut writers.requests, &request, n);
    fill::<AccessReview>(&mut report, &cache, &mut writers.reviews, &review, n);
    fill::<RoleBinding>(&mut report, &cache, &mut writers.role_bindings, &binding, n);
    report.row("the whole cache", start, mark());
    println!(
        "inline sizes: ObjectMeta {} B, ObjectRef {} B, ApprovalRequest {} B, AccessReview {} B, RoleBinding {} B",
        std::mem::size_of::<k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta>(),
        std::mem::size_of::<kube::runtime::reflector::ObjectRef<RoleBinding>>(),
        std::mem::size_of::<ApprovalRequest>(),
        std::mem::size_of::<AccessReview>(),
        std::mem::size_of::<RoleBinding>(),
    );
    {
        use gatehouse::api::*;
        use std::mem::size_of;
        println!(
            "spec {} status {} requirements {} usage {} job record {} grant {} jobspec {} principals {}",
            size_of::<ApprovalRequestSpec>(),
            size_of::<ApprovalRequestStatus>(),
            size_of::<Option<Requirements>>(),
            size_of::<Option<GrantUsage>>(),
            size_of::<Option<JobRecord>>(),
            size_of::<Option<GrantStatus>>(),
            size_of::<Option<JobSpec>>(),
            size_of::<Option<Principals>>(),
        );
    }
    println!("{n} live grants: a request, its review, its binding\n");
    report.print();
    let all = report.rows.last().map(|r| r.1.classed).unwrap_or(0);
    println!(
        "\ncache total: {:.1} MiB (jemalloc size classes), {:.2} KiB per live grant",
        all as f64 / (1024.0 * 1024.0),
        all as f64 / 1024.0 / n as f64
    );
    println!(
        "resident set: {:.1} MiB at the start, {:.1} MiB with the cache ({:.2} KiB per live grant){}",
        rss_start,
        rss(),
        (rss() - rss_start) * 1024.0 / n as f64,
        if cfg!(feature = "jemalloc") {
            ", jemalloc"
        } else {
            ", system allocator"
        }
    );
    std::hint::black_box(&cache);
}
