//! The outbox of results for the engine, free of I/O: it decides when a batch is due and what it
//! holds. Transitions are coalesced by id (latest wins) and flushed when `max` are queued or
//! `delay` after the first one; a full resync (every check's state) goes out every `full_every`
//! and whenever the driver asks for one. A failed send is retried after `retry`, keeping its
//! results (newer ones for the same id win). One batch is in flight at a time.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::check::{Batch, CheckId, CheckResult};

/// When batches go out.
#[derive(Debug, Clone, Copy)]
pub struct BatchPolicy {
    /// Flush as soon as this many results are queued.
    pub max: usize,
    /// Flush this long after the first result was queued.
    pub delay: Duration,
    /// Wait this long after a failed send.
    pub retry: Duration,
    /// Send a full resync this often.
    pub full_every: Duration,
}

/// Results waiting for the engine.
#[derive(Debug)]
pub struct Outbox {
    policy: BatchPolicy,
    pending: BTreeMap<CheckId, CheckResult>,
    first_queued: Option<Instant>,
    want_full: bool,
    next_full: Instant,
    retry_at: Option<Instant>,
    in_flight: bool,
}

// === impl Outbox ===

impl Outbox {
    /// An empty outbox; the first periodic resync is due `full_every` after `now`.
    pub fn new(policy: BatchPolicy, now: Instant) -> Self {
        Self {
            policy,
            pending: BTreeMap::new(),
            first_queued: None,
            want_full: false,
            next_full: now + policy.full_every,
            retry_at: None,
            in_flight: false,
        }
    }

    /// Queues a transition; a queued result for the same id is replaced.
    pub fn push(&mut self, result: CheckResult, now: Instant) {
        self.pending.insert(result.id, result);
        self.first_queued.get_or_insert(now);
    }

    /// Asks for a full resync as soon as possible (after a pending retry delay).
    pub fn request_full(&mut self) {
        self.want_full = true;
    }

    /// Number of queued results.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// When the next batch is due; `None` while one is in flight (its completion wakes the driver).
    pub fn deadline(&self, now: Instant) -> Option<Instant> {
        if self.in_flight {
            return None;
        }
        let mut due = self.next_full;
        if self.want_full || self.pending.len() >= self.policy.max {
            due = now;
        } else if let Some(first) = self.first_queued {
            due = due.min(first + self.policy.delay);
        }
        if let Some(retry) = self.retry_at {
            due = due.max(retry);
        }
        Some(due)
    }

    /// Takes the batch due at `now`, if any, and marks it in flight. `snapshot` gives every
    /// check's state and is only called for a full resync.
    pub fn take(
        &mut self,
        now: Instant,
        snapshot: impl FnOnce() -> Vec<CheckResult>,
    ) -> Option<Batch> {
        if self.deadline(now)? > now {
            return None;
        }
        self.in_flight = true;
        self.first_queued = None;
        if self.want_full || now >= self.next_full {
            self.want_full = false;
            self.next_full = now + self.policy.full_every;
            // The snapshot already holds every queued transition's outcome.
            self.pending.clear();
            return Some(Batch {
                results: snapshot(),
                full: true,
            });
        }
        let results = std::mem::take(&mut self.pending).into_values().collect();
        Some(Batch {
            results,
            full: false,
        })
    }

    /// The batch in flight was delivered.
    pub fn sent(&mut self) {
        self.in_flight = false;
        self.retry_at = None;
    }

    /// The batch in flight failed: keep its results and retry later.
    pub fn failed(&mut self, batch: Batch, now: Instant) {
        self.in_flight = false;
        self.retry_at = Some(now + self.policy.retry);
        if batch.full {
            // Resend a fresh snapshot rather than a stale one.
            self.want_full = true;
            return;
        }
        for r in batch.results {
            // A result queued while the batch was in flight is newer: it wins.
            self.pending.entry(r.id).or_insert(r);
        }
        if !self.pending.is_empty() {
            self.first_queued.get_or_insert(now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: BatchPolicy = BatchPolicy {
        max: 3,
        delay: Duration::from_millis(100),
        retry: Duration::from_secs(1),
        full_every: Duration::from_secs(15),
    };

    /// A new outbox with these results (id, healthy) pushed at `t0`.
    fn pushed(results: &[(u64, bool)], t0: Instant) -> Outbox {
        let mut o = Outbox::new(POLICY, t0);
        for &(id, healthy) in results {
            o.push(r(id, healthy), t0);
        }
        o
    }

    fn r(id: u64, healthy: bool) -> CheckResult {
        CheckResult {
            id: CheckId(id),
            healthy,
            message: format!("m{id}"),
            checked_at_ms: 0,
            stats: Default::default(),
        }
    }

    fn ids(b: &Batch) -> Vec<(u64, bool)> {
        b.results.iter().map(|r| (r.id.0, r.healthy)).collect()
    }

    fn no_snapshot() -> Vec<CheckResult> {
        panic!("snapshot not expected")
    }

    #[test]
    fn flushes_after_delay() {
        let t0 = Instant::now();
        let mut o = Outbox::new(POLICY, t0);
        assert_eq!(o.deadline(t0), Some(t0 + POLICY.full_every));
        o.push(r(1, true), t0);
        assert_eq!(o.deadline(t0), Some(t0 + POLICY.delay));
        let t1 = t0 + Duration::from_millis(50);
        o.push(r(2, false), t1);
        assert!(o.take(t1, no_snapshot).is_none());
        let b = o.take(t0 + POLICY.delay, no_snapshot).unwrap();
        assert!(!b.full);
        assert_eq!(ids(&b), [(1, true), (2, false)]);
        assert_eq!(o.deadline(t1), None, "in flight");
        o.sent();
        assert_eq!(o.pending_len(), 0);
    }

    #[test]
    fn flushes_at_max_and_coalesces_by_id() {
        let t0 = Instant::now();
        let mut o = pushed(&[(1, true), (1, false), (2, true)], t0);
        assert!(o.take(t0, no_snapshot).is_none(), "two ids only");
        o.push(r(3, true), t0);
        let b = o.take(t0, no_snapshot).unwrap();
        assert_eq!(ids(&b), [(1, false), (2, true), (3, true)]);
    }

    #[test]
    fn failed_batch_is_retried_and_newer_results_win() {
        let t0 = Instant::now();
        let mut o = pushed(&[(1, true), (2, true)], t0);
        let t1 = t0 + POLICY.delay;
        let b = o.take(t1, no_snapshot).unwrap();
        // While in flight, check 2 flips again.
        o.push(r(2, false), t1);
        o.failed(b, t1);
        assert_eq!(o.deadline(t1), Some(t1 + POLICY.retry));
        assert!(
            o.take(t1 + Duration::from_millis(999), no_snapshot)
                .is_none()
        );
        let b = o.take(t1 + POLICY.retry, no_snapshot).unwrap();
        assert_eq!(ids(&b), [(1, true), (2, false)]);
        o.sent();
        assert_eq!(o.deadline(t1), Some(t0 + POLICY.full_every));
    }

    #[test]
    fn periodic_and_requested_full_resync() {
        let t0 = Instant::now();
        let mut o = Outbox::new(POLICY, t0);
        o.request_full();
        o.push(r(9, true), t0);
        let b = o.take(t0, || vec![r(1, true), r(9, true)]).unwrap();
        assert!(b.full);
        assert_eq!(ids(&b), [(1, true), (9, true)]);
        o.sent();
        assert_eq!(
            o.pending_len(),
            0,
            "the snapshot covered the queued transition"
        );
        assert_eq!(o.deadline(t0), Some(t0 + POLICY.full_every));
        let t1 = t0 + POLICY.full_every;
        let b = o.take(t1, Vec::new).unwrap();
        assert!(b.full);
        // A failed full resync is retried with a fresh snapshot.
        o.failed(b, t1);
        let b = o.take(t1 + POLICY.retry, || vec![r(2, false)]).unwrap();
        assert!(b.full);
        assert_eq!(ids(&b), [(2, false)]);
    }
}
