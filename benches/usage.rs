//! Usage evidence: audit events of about 1 KiB ingested per second on one core
//! (decode + attribute + book), the memory of a book of 100,000 binding × subject
//! pairs, and the index certification reads built from it; the memory of 100,000
//! pairs loaded from persisted summaries (`BindingUsage`), as an operator holds
//! them after a restart; and the writes the real flush makes against the
//! in-process fake API server under a steady stream of events.
//!
//! `cargo bench --bench usage`; the memory and write figures are printed before
//! the timings (bytes allocated, counted by this binary's allocator, and the
//! resident set size of this process).

#[path = "usage/persisted.rs"]
mod persisted;

use std::hint::black_box;

use chrono::{Duration, TimeZone, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gatehouse::{
    certify::usage::UsageIndex,
    usage::{self, decode::Limits, read_events, Settings, UsageBook},
};

/// One event as the API server writes it at level Metadata: about 1 KiB.
fn event(i: usize, pairs: usize) -> String {
    let n = i % pairs;
    let at = Utc
        .with_ymd_and_hms(2026, 3, 1, 0, 0, 0)
        .single()
        .unwrap_or_default()
        + Duration::seconds(i as i64);
    let reason = format!(
        "RBAC: allowed by RoleBinding \\\"team-{n}-view/ns-{}\\\" of ClusterRole \\\"view\\\" to User \\\"user-{n}@example.com\\\"",
        n % 500
    );
    format!(
        concat!(
            r#"{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"5d2c1f0e-1c3b-4f7a-9a55-{i:012}","#,
            r#""stage":"ResponseComplete","requestURI":"/api/v1/namespaces/ns-{ns}/pods?limit=500&resourceVersion=0","verb":"list","#,
            r#""user":{{"username":"user-{n}@example.com","uid":"6f1c2d3e-aaaa-bbbb-cccc-{n:012}","groups":["team-{n}","system:authenticated"],"extra":{{"authentication.kubernetes.io/credential-id":["JTI=0b0e8f9a-1234-5678-9abc-def012345678"]}}}},"#,
            r#""sourceIPs":["10.20.30.40"],"userAgent":"kubectl/v1.37.2 (linux/amd64) kubernetes/abcdef0","#,
            r#""objectRef":{{"resource":"pods","namespace":"ns-{ns}","apiVersion":"v1"}},"responseStatus":{{"metadata":{{}},"code":200}},"#,
            r#""requestReceivedTimestamp":"{t}","stageTimestamp":"{t}","#,
            r#""annotations":{{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"{reason}"}}}}"#
        ),
        i = i,
        n = n,
        ns = n % 500,
        t = at.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        reason = reason,
    )
}

fn log(events: usize, pairs: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..events {
        out += &event(i, pairs);
        out.push('\n');
    }
    out.into_bytes()
}

fn ingest(bytes: &[u8], book: &mut UsageBook) {
    let d = read_events(bytes, Limits::default(), &mut |e| usage::ingest(book, &e));
    book.add_malformed(d.map_or(1, |d| d.malformed));
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn memory_at_100k_pairs() {
    let pairs = 100_000;
    let bytes = log(pairs, pairs);
    let before = rss_kib();
    let mut book = UsageBook::new(Settings::default());
    ingest(&bytes, &mut book);
    let with_book = rss_kib();
    let index = UsageIndex::from_book(&book);
    let with_index = rss_kib();
    println!(
        "usage memory: {} pairs, book {} MiB, index {} MiB more (RSS, KiB: {before} -> {with_book} -> {with_index})",
        book.len(),
        with_book.saturating_sub(before) / 1024,
        with_index.saturating_sub(with_book) / 1024,
    );
    black_box((book, index));
}

fn bench(c: &mut Criterion) {
    memory_at_100k_pairs();
    persisted::memory_of_persisted_pairs();
    persisted::writes_at_steady_state();
    let n = 10_000;
    let bytes = log(n, 2_000);
    println!("usage events: {} bytes each on average", bytes.len() / n);
    let mut g = c.benchmark_group("usage");
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("ingest_10k_events_1KiB", |b| {
        b.iter(|| {
            let mut book = UsageBook::new(Settings::default());
            ingest(black_box(&bytes), &mut book);
            black_box(book.len())
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
