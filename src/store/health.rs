//! Whether the operator can be trusted right now: what `/readyz` and `/healthz`
//! answer.
//!
//! Ready: every watched kind has been listed into memory, and no watch has been
//! failing for longer than the threshold (the operator would decide on stale
//! facts). Live: every watch loop has gone round recently (none is stuck on a
//! call that never returns), and, while this replica leads, the controller has
//! processed a probe recently (its queue and workers are moving). An API server
//! that is down makes the operator not ready, never not live: restarting the
//! operator would not bring the API server back.

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{Duration, Instant},
};

/// The health of one watched kind.
#[derive(Debug, Clone, Default)]
pub struct KindHealth {
    /// Listed into memory at least once.
    pub synced: bool,
    /// When the current run of failures began (None: healthy).
    pub failing_since: Option<Instant>,
    /// The last error, for the endpoints and logs.
    pub last_error: Option<String>,
    /// When the loop last went round (an attempt, an event, a bookmark, a re-watch).
    pub last_turn: Option<Instant>,
}

/// Health of the watches and the controller.
#[derive(Debug, Default)]
pub struct Health {
    kinds: Mutex<BTreeMap<&'static str, KindHealth>>,
    /// While leading: when the controller last processed a liveness probe.
    controller: Mutex<Option<Instant>>,
}

/// The thresholds the endpoints judge by.
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    /// Not ready once a watch has failed for this long.
    pub watch_failure: Duration,
    /// Not live once a watch loop has not turned for this long.
    pub watch_stall: Duration,
    /// Not live once the controller has not processed a probe for this long.
    pub controller_stall: Duration,
}

/// A verdict, with the reasons when it is negative.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// Healthy (or ready).
    pub ok: bool,
    /// One line per problem.
    pub problems: Vec<String>,
}

impl Health {
    fn with_kind(&self, kind: &'static str, f: impl FnOnce(&mut KindHealth)) {
        if let Ok(mut kinds) = self.kinds.lock() {
            f(kinds.entry(kind).or_default());
        }
    }

    /// A kind is known to the operator: it must sync before the operator is ready.
    pub fn register(&self, kind: &'static str) {
        self.with_kind(kind, |_| {});
    }

    /// The kind's loop went round without news (an attempt starts, a re-watch).
    pub fn turned(&self, kind: &'static str, now: Instant) {
        self.with_kind(kind, |k| k.last_turn = Some(now));
    }

    /// The kind was listed into memory, or its watch delivered something: healthy.
    pub fn alive(&self, kind: &'static str, now: Instant, listed: bool) {
        self.with_kind(kind, |k| {
            k.synced |= listed;
            k.failing_since = None;
            k.last_error = None;
            k.last_turn = Some(now);
        });
    }

    /// A list or watch of the kind failed.
    pub fn failed(&self, kind: &'static str, now: Instant, error: String) {
        self.with_kind(kind, |k| {
            k.failing_since.get_or_insert(now);
            k.last_error = Some(error);
            k.last_turn = Some(now);
        });
    }

    /// The controller processed a liveness probe.
    pub fn controller_progressed(&self, now: Instant) {
        if let Ok(mut c) = self.controller.lock() {
            *c = Some(now);
        }
    }

    /// This replica stopped leading (or started): the controller clock starts over.
    pub fn controller_reset(&self, now: Option<Instant>) {
        if let Ok(mut c) = self.controller.lock() {
            *c = now;
        }
    }

    /// A copy of every kind's health.
    pub fn kinds(&self) -> BTreeMap<&'static str, KindHealth> {
        self.kinds.lock().map(|k| k.clone()).unwrap_or_default()
    }

    /// Whether memory of the kind can be trusted to say an object is absent: listed,
    /// and its watch not failing.
    pub fn trusted(&self, kind: &str) -> bool {
        self.kinds
            .lock()
            .ok()
            .and_then(|k| k.get(kind).map(|k| k.synced && k.failing_since.is_none()))
            .unwrap_or(false)
    }

    /// Whether every kind is in memory.
    pub fn synced(&self) -> bool {
        self.kinds().values().all(|k| k.synced)
    }

    /// `/readyz`.
    pub fn readiness(&self, now: Instant, t: &Thresholds) -> Verdict {
        let mut problems = Vec::new();
        for (kind, k) in self.kinds() {
            if !k.synced {
                problems.push(format!("{kind}: not listed yet"));
            }
            if let Some(since) = k
                .failing_since
                .filter(|s| now.duration_since(*s) >= t.watch_failure)
            {
                problems.push(format!(
                    "{kind}: watch failing for {}s: {}",
                    now.duration_since(since).as_secs(),
                    k.last_error.as_deref().unwrap_or("unknown error")
                ));
            }
        }
        Verdict {
            ok: problems.is_empty(),
            problems,
        }
    }

    /// `/healthz`.
    pub fn liveness(&self, now: Instant, t: &Thresholds) -> Verdict {
        let mut problems = Vec::new();
        for (kind, k) in self.kinds() {
            if let Some(last) = k.last_turn.filter(|l| now.duration_since(*l) >= t.watch_stall) {
                problems.push(format!(
                    "{kind}: watch loop stalled for {}s",
                    now.duration_since(last).as_secs()
                ));
            }
        }
        if let Ok(Some(last)) = self.controller.lock().map(|c| *c) {
            if now.duration_since(last) >= t.controller_stall {
                problems.push(format!(
                    "controller: no progress for {}s",
                    now.duration_since(last).as_secs()
                ));
            }
        }
        Verdict {
            ok: problems.is_empty(),
            problems,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Thresholds = Thresholds {
        watch_failure: Duration::from_secs(30),
        watch_stall: Duration::from_secs(120),
        controller_stall: Duration::from_secs(60),
    };

    #[test]
    fn ready_once_every_kind_is_listed_and_while_no_watch_fails_too_long() {
        let h = Health::default();
        let t0 = Instant::now();
        h.register("approvalrequests");
        h.register("accessreviews");
        assert!(!h.readiness(t0, &T).ok, "nothing listed yet");
        h.alive("approvalrequests", t0, true);
        assert!(!h.readiness(t0, &T).ok, "reviews not listed yet");
        h.alive("accessreviews", t0, true);
        assert!(h.readiness(t0, &T).ok);

        h.failed("accessreviews", t0, "connection refused".into());
        let v = h.readiness(t0 + Duration::from_secs(29), &T);
        assert!(v.ok, "a short failure is tolerated: {v:?}");
        h.failed(
            "accessreviews",
            t0 + Duration::from_secs(20),
            "connection refused".into(),
        );
        let v = h.readiness(t0 + Duration::from_secs(31), &T);
        assert!(!v.ok);
        assert!(
            v.problems[0].contains("accessreviews: watch failing for 31s: connection refused"),
            "{v:?}"
        );

        h.alive("accessreviews", t0 + Duration::from_secs(40), true);
        assert!(h.readiness(t0 + Duration::from_secs(41), &T).ok, "recovered");
    }

    #[test]
    fn a_down_api_server_is_not_a_reason_to_restart() {
        let h = Health::default();
        let t0 = Instant::now();
        h.alive("approvalrequests", t0, true);
        // Failing every few seconds for ten minutes: not ready, but live.
        for s in (0..600).step_by(5) {
            h.failed("approvalrequests", t0 + Duration::from_secs(s), "refused".into());
        }
        let now = t0 + Duration::from_secs(600);
        assert!(!h.readiness(now, &T).ok);
        assert!(h.liveness(now, &T).ok);
    }

    #[test]
    fn a_stuck_loop_or_controller_is_not_live() {
        let h = Health::default();
        let t0 = Instant::now();
        h.alive("approvalrequests", t0, true);
        assert!(h.liveness(t0 + Duration::from_secs(119), &T).ok);
        let v = h.liveness(t0 + Duration::from_secs(121), &T);
        assert!(!v.ok && v.problems[0].contains("stalled"), "{v:?}");

        let h = Health::default();
        h.controller_reset(Some(t0));
        assert!(h.liveness(t0 + Duration::from_secs(59), &T).ok);
        h.controller_progressed(t0 + Duration::from_secs(59));
        assert!(h.liveness(t0 + Duration::from_secs(100), &T).ok);
        assert!(!h.liveness(t0 + Duration::from_secs(120), &T).ok);
        h.controller_reset(None);
        assert!(
            h.liveness(t0 + Duration::from_secs(500), &T).ok,
            "a standby is live"
        );
    }
}
