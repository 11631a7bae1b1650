//! Percentiles of latency samples.

use serde::Serialize;

/// p50/p99/max of a set of samples, in seconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Number of samples.
    pub n: usize,
    /// Median.
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Largest sample.
    pub max: f64,
}

/// Nearest-rank percentile of sorted samples: the smallest sample with at
/// least `q` of all samples at or below it.
fn nearest_rank(sorted: &[f64], q: f64) -> f64 {
    let rank = (q * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The summary of the samples (seconds); `None` when there are none.
pub fn summarize(samples: &[f64]) -> Option<Summary> {
    if samples.is_empty() {
        return None;
    }
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    Some(Summary {
        n: sorted.len(),
        p50: nearest_rank(&sorted, 0.50),
        p99: nearest_rank(&sorted, 0.99),
        max: sorted[sorted.len() - 1],
    })
}

/// A duration in seconds, printed in the unit that reads best.
pub fn human(secs: f64) -> String {
    let abs = secs.abs();
    if abs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if abs < 100.0 {
        format!("{secs:.2} s")
    } else {
        format!("{secs:.0} s")
    }
}
