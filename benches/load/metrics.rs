//! The operator's /metrics, parsed: API requests by verb and resource, phase
//! transitions, reconciles, and its own latency histograms, and the
//! difference between two scrapes.

use std::collections::BTreeMap;

use anyhow::{anyhow, Context, Result};
use serde::Serialize;

/// One sample line: `name{labels} value`.
#[derive(Debug, Clone)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// One scrape of /metrics.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    samples: Vec<Sample>,
}

/// Parses `{a="x",b="y"}` (values without escaped quotes, as ours are).
fn parse_labels(s: &str) -> Result<BTreeMap<String, String>> {
    let mut labels = BTreeMap::new();
    for pair in s.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("label without '=': {pair:?}"))?;
        labels.insert(k.trim().to_string(), v.trim().trim_matches('"').to_string());
    }
    Ok(labels)
}

impl Scrape {
    /// Parses the Prometheus/OpenMetrics text format.
    pub fn parse(text: &str) -> Result<Scrape> {
        let mut samples = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .ok_or_else(|| anyhow!("metrics line without a value: {line:?}"))?;
            let value: f64 = value
                .parse()
                .with_context(|| format!("metrics line with a bad value: {line:?}"))?;
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, parse_labels(rest.trim_end_matches('}'))?),
                None => (series, BTreeMap::new()),
            };
            samples.push(Sample {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Ok(Scrape { samples })
    }

    /// Sum of the samples named `name` whose labels pass `keep`.
    fn sum(&self, name: &str, keep: impl Fn(&BTreeMap<String, String>) -> bool) -> f64 {
        self.samples
            .iter()
            .filter(|s| s.name == name && keep(&s.labels))
            .map(|s| s.value)
            .sum()
    }

    /// `gatehouse_api_requests_total` by (verb, resource).
    pub fn api_requests(&self) -> BTreeMap<(String, String), u64> {
        let mut out = BTreeMap::new();
        for s in self
            .samples
            .iter()
            .filter(|s| s.name == "gatehouse_api_requests_total")
        {
            let verb = s.labels.get("verb").cloned().unwrap_or_default();
            let resource = s.labels.get("resource").cloned().unwrap_or_default();
            *out.entry((verb, resource)).or_insert(0) += s.value as u64;
        }
        out
    }

    /// Phase transitions recorded, all phases.
    pub fn transitions(&self) -> u64 {
        self.sum("gatehouse_phase_transitions_total", |_| true) as u64
    }

    /// Reconciles run (the count of the duration histogram).
    pub fn reconciles(&self) -> u64 {
        self.sum("gatehouse_reconcile_duration_seconds_count", |_| true) as u64
    }

    /// Failed reconciles, all errors.
    pub fn reconcile_errors(&self) -> u64 {
        self.sum("gatehouse_reconcile_errors_total", |_| true) as u64
    }

    /// Watch loops that failed and listed again, all kinds.
    pub fn watch_restarts(&self) -> u64 {
        self.sum("gatehouse_watch_restarts_total", |_| true) as u64
    }

    /// Kubernetes Events dropped because the queue was full.
    pub fn events_dropped(&self) -> u64 {
        self.sum("gatehouse_events_dropped_total", |_| true) as u64
    }

    /// A histogram of the operator's (`gatehouse_<name>`): count, sum, buckets.
    pub fn histogram(&self, name: &str) -> Histogram {
        let full = format!("gatehouse_{name}");
        let mut buckets: Vec<(f64, f64)> = self
            .samples
            .iter()
            .filter(|s| s.name == format!("{full}_bucket"))
            .filter_map(|s| {
                let le = s.labels.get("le")?;
                let bound = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((bound, s.value))
            })
            .collect();
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Histogram {
            count: self.sum(&format!("{full}_count"), |_| true),
            sum: self.sum(&format!("{full}_sum"), |_| true),
            buckets,
        }
    }
}

/// A cumulative histogram as scraped.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    count: f64,
    sum: f64,
    /// (upper bound, cumulative count), ascending.
    buckets: Vec<(f64, f64)>,
}

/// What the operator itself observed over a phase, from one of its histograms.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct OperatorView {
    /// Observations.
    pub n: u64,
    /// Mean, seconds.
    pub mean: f64,
    /// Upper bound of the bucket holding the 99th percentile, seconds (`inf` past the last bucket).
    pub p99_at_most: f64,
}

impl Histogram {
    /// Observations between `before` and `self`.
    pub fn since(&self, before: &Histogram) -> Option<OperatorView> {
        let n = self.count - before.count;
        if n < 1.0 {
            return None;
        }
        let earlier = |bound: f64| {
            before
                .buckets
                .iter()
                .find(|(b, _)| *b == bound)
                .map_or(0.0, |(_, c)| *c)
        };
        let p99_at_most = self
            .buckets
            .iter()
            .find(|(bound, c)| c - earlier(*bound) >= 0.99 * n)
            .map_or(f64::INFINITY, |(bound, _)| *bound);
        Some(OperatorView {
            n: n as u64,
            mean: (self.sum - before.sum) / n,
            p99_at_most,
        })
    }
}

/// Verbs that read; `watch` is neither a read nor a write here.
const READS: [&str; 2] = ["get", "list"];
/// Verbs that write.
const WRITES: [&str; 5] = ["create", "update", "patch", "delete", "deletecollection"];

/// The operator's work between two scrapes.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Cost {
    /// API reads (get, list).
    pub reads: u64,
    /// API writes (create, update, patch, delete).
    pub writes: u64,
    /// Phase transitions recorded.
    pub transitions: u64,
    /// Reconciles run.
    pub reconciles: u64,
    /// Failed reconciles.
    pub reconcile_errors: u64,
    /// Every non-watch request, as "verb resource" → count.
    pub by_request: BTreeMap<String, u64>,
}

impl Cost {
    /// What happened between `before` and `after`.
    pub fn between(before: &Scrape, after: &Scrape) -> Cost {
        let old = before.api_requests();
        let mut cost = Cost {
            transitions: after.transitions().saturating_sub(before.transitions()),
            reconciles: after.reconciles().saturating_sub(before.reconciles()),
            reconcile_errors: after.reconcile_errors().saturating_sub(before.reconcile_errors()),
            ..Cost::default()
        };
        for ((verb, resource), n) in after.api_requests() {
            let d = n.saturating_sub(old.get(&(verb.clone(), resource.clone())).copied().unwrap_or(0));
            if d == 0 || verb == "watch" {
                continue;
            }
            if READS.contains(&verb.as_str()) {
                cost.reads += d;
            } else if WRITES.contains(&verb.as_str()) {
                cost.writes += d;
            }
            cost.by_request.insert(format!("{verb} {resource}"), d);
        }
        cost
    }

    /// The requests, most frequent first, as "n× verb resource" (for the text report).
    pub fn breakdown(&self) -> String {
        let mut items: Vec<(&String, &u64)> = self.by_request.iter().collect();
        items.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        let mut parts: Vec<String> = items.iter().map(|(k, n)| format!("{n}× {k}")).collect();
        if parts.is_empty() {
            parts.push("no API requests".into());
        }
        if self.reconcile_errors > 0 {
            parts.push(format!("({} reconciles failed)", self.reconcile_errors));
        }
        parts.join(", ")
    }
}
