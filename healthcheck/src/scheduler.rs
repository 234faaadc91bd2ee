//! The one scheduler of every check: a min-heap of due times, probes spawned into one `JoinSet`,
//! and each check's threshold machine. It has no loop of its own: the driver in `lib.rs` asks it
//! when it next needs waking (`next_deadline`), lets it start what is due (`launch_due`), and feeds
//! finished probes back (`next_finished` → `record`). There is no task per check.
//!
//! Check sets are applied in place (`apply`): new ids start (staggered), removed ids stop, and an id
//! whose configuration changed takes the new configuration but keeps its state.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::{Id as TaskId, JoinError, JoinSet};
use tokio::time::Instant;

use crate::check::{CheckId, CheckResult, CheckSpec, ProbeOutcome, ProbeSpec, ProbeStats};
use crate::probe::Prober;
use crate::state::{CheckState, Health};

/// New checks are spread evenly over their interval, and never start closer together than this
/// (at most 20 000 new starts a second), so a large new set does not open its connections in one
/// burst. (Seesaw starts one check per 50 ms tick, which takes over 16 minutes for 20 000 checks,
/// all of them Unknown and so unhealthy meanwhile; the even spread starts them in one interval.)
pub const MIN_STAGGER: Duration = Duration::from_micros(50);

/// A probe that finished (or timed out), on its way back to the scheduler.
#[derive(Debug)]
pub struct Finished {
    id: CheckId,
    /// Which incarnation of the id ran it: a result for a check that was removed (and maybe
    /// re-added) since is dropped.
    incarnation: u64,
    outcome: ProbeOutcome,
    checked_at_ms: i64,
    /// How long the probe took (its timeout when it timed out).
    latency: Duration,
}

/// What `apply` changed, for logs and tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ApplySummary {
    /// Ids that started.
    pub added: usize,
    /// Ids that stopped.
    pub removed: usize,
    /// Ids whose configuration changed (state kept).
    pub changed: usize,
}

/// How many running checks are in each state.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct HealthCounts {
    /// No verdict yet.
    pub unknown: usize,
    /// Healthy.
    pub healthy: usize,
    /// Unhealthy.
    pub unhealthy: usize,
}

impl HealthCounts {
    fn slot(&mut self, h: Health) -> &mut usize {
        match h {
            Health::Unknown => &mut self.unknown,
            Health::Healthy => &mut self.healthy,
            Health::Unhealthy => &mut self.unhealthy,
        }
    }
}

/// Every running check and its timer.
pub struct Scheduler<P> {
    prober: Arc<P>,
    checks: HashMap<CheckId, Entry>,
    /// Due times. Entries are never removed in place: an entry whose token no longer matches its
    /// check's (rescheduled or removed) is skipped when popped.
    timers: BinaryHeap<Reverse<(Instant, u64, CheckId)>>,
    probes: JoinSet<Finished>,
    /// Which check each running probe task belongs to, to recover from a panicking probe.
    running: HashMap<TaskId, CheckId>,
    next_token: u64,
    /// Start time given to the most recently added check (staggering cursor).
    last_start: Option<Instant>,
    /// Checks per state, kept up to date on every change (read by the SIGUSR1 dump).
    counts: HealthCounts,
}

struct Entry {
    spec: Arc<CheckSpec>,
    state: CheckState,
    /// Message and time of the latest probe.
    last: Option<(String, i64)>,
    due: Instant,
    token: u64,
    incarnation: u64,
    in_flight: bool,
    /// Cumulative probe statistics, reported with every result.
    stats: ProbeStats,
}

// === impl Scheduler ===

impl<P: Prober> Scheduler<P> {
    /// An empty scheduler.
    pub fn new(prober: P) -> Self {
        Self {
            prober: Arc::new(prober),
            checks: HashMap::new(),
            timers: BinaryHeap::new(),
            probes: JoinSet::new(),
            running: HashMap::new(),
            next_token: 0,
            last_start: None,
            counts: HealthCounts::default(),
        }
    }

    /// How many running checks are in each state.
    pub fn counts(&self) -> HealthCounts {
        self.counts
    }

    /// Probes running now.
    pub fn in_flight(&self) -> usize {
        self.probes.len()
    }

    /// Number of running checks.
    pub fn len(&self) -> usize {
        self.checks.len()
    }

    /// Whether no check runs.
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }

    /// The current verdict of `id`, if it runs.
    pub fn health(&self, id: CheckId) -> Option<Health> {
        self.checks.get(&id).map(|e| e.state.health())
    }

    /// Replaces the running set with `specs`, in place (see the module doc). Duplicate ids: the
    /// last one wins.
    pub fn apply(&mut self, specs: Vec<CheckSpec>, now: Instant) -> ApplySummary {
        let mut wanted: HashMap<CheckId, CheckSpec> = HashMap::with_capacity(specs.len());
        let mut order = Vec::with_capacity(specs.len());
        for s in specs {
            if wanted.insert(s.id, s.clone()).is_none() {
                order.push(s.id);
            }
        }
        let mut summary = ApplySummary::default();

        let before = self.checks.len();
        let counts = &mut self.counts;
        self.checks.retain(|id, e| {
            let keep = wanted.contains_key(id);
            if !keep {
                tracing::debug!(id = %id, check = %e.spec.description, "check removed");
                *counts.slot(e.state.health()) -= 1;
            }
            keep
        });
        summary.removed = before - self.checks.len();

        let new_ids: Vec<CheckId> = order
            .into_iter()
            .filter(|id| !self.checks.contains_key(id))
            .collect();
        for (id, spec) in wanted.iter() {
            let Some(entry) = self.checks.get_mut(id) else {
                continue;
            };
            if *entry.spec == *spec {
                continue;
            }
            summary.changed += 1;
            if entry.spec.probe != spec.probe {
                warn_if_never_healthy(spec);
            }
            if entry.spec.interval != spec.interval {
                // Never push a check further out than its new interval.
                let due = entry.due.min(now + spec.interval);
                entry.due = due;
                entry.token = self.next_token;
                self.timers.push(Reverse((due, self.next_token, *id)));
                self.next_token += 1;
            }
            entry.spec = Arc::new(spec.clone());
        }

        let n = u32::try_from(new_ids.len()).unwrap_or(u32::MAX);
        for (i, id) in new_ids.into_iter().enumerate() {
            let spec = wanted
                .remove(&id)
                .expect("new ids come from the wanted set");
            warn_if_never_healthy(&spec);
            // Spread the new checks over their interval, at least MIN_STAGGER apart.
            let i = u32::try_from(i).unwrap_or(u32::MAX);
            let mut start = now + spec.interval / n * i;
            if let Some(last) = self.last_start {
                start = start.max(last + MIN_STAGGER);
            }
            self.last_start = Some(start);
            let token = self.next_token;
            self.next_token += 1;
            self.timers.push(Reverse((start, token, id)));
            self.checks.insert(
                id,
                Entry {
                    spec: Arc::new(spec),
                    state: CheckState::new(),
                    last: None,
                    due: start,
                    token,
                    incarnation: token,
                    in_flight: false,
                    stats: ProbeStats::default(),
                },
            );
            self.counts.unknown += 1;
            summary.added += 1;
        }
        summary
    }

    /// When the earliest timer fires, if any check runs.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((due, _, _))| *due)
    }

    /// Starts every probe due at `now` and schedules each check's next round.
    pub fn launch_due(&mut self, now: Instant) {
        while let Some(Reverse((due, token, id))) = self.timers.peek().copied() {
            if due > now {
                break;
            }
            self.timers.pop();
            let Some(entry) = self.checks.get_mut(&id) else {
                continue;
            };
            if entry.token != token {
                continue;
            }
            // Fixed rate, but never try to catch up on rounds missed while the loop was busy.
            let mut next = due + entry.spec.interval;
            if next <= now {
                next = now + entry.spec.interval;
            }
            entry.due = next;
            entry.token = self.next_token;
            self.timers.push(Reverse((next, self.next_token, id)));
            self.next_token += 1;

            if entry.in_flight {
                // The timeout is longer than the interval: skip a round rather than stack probes.
                tracing::debug!(id = %id, "previous probe still running, skipping a round");
                continue;
            }
            entry.in_flight = true;
            let spec = entry.spec.clone();
            let incarnation = entry.incarnation;
            let prober = self.prober.clone();
            let handle = self.probes.spawn(async move {
                let started = Instant::now();
                let outcome =
                    match tokio::time::timeout(spec.timeout, prober.probe(&spec.probe)).await {
                        Ok(o) => o,
                        Err(_) => ProbeOutcome::fail(format!(
                            "{}: timed out after {} ms",
                            spec.probe.label(),
                            spec.timeout.as_millis()
                        )),
                    };
                Finished {
                    id: spec.id,
                    incarnation,
                    outcome,
                    checked_at_ms: unix_ms(),
                    latency: started.elapsed(),
                }
            });
            self.running.insert(handle.id(), id);
        }
    }

    /// Waits for the next probe to finish. Pending forever while none runs, so it can sit in a
    /// `select!` next to the timers.
    pub async fn next_finished(&mut self) -> Finished {
        loop {
            match self.probes.join_next_with_id().await {
                None => std::future::pending::<()>().await,
                Some(joined) => {
                    if let Some(f) = self.joined(joined) {
                        return f;
                    }
                }
            }
        }
    }

    /// A probe that has already finished, if any, without waiting. The driver drains these after
    /// each wake-up: at thousands of probes a second, taking one per loop turn would leave
    /// finished checks marked in flight (and skip their next round).
    pub fn try_finished(&mut self) -> Option<Finished> {
        while let Some(joined) = self.probes.try_join_next_with_id() {
            if let Some(f) = self.joined(joined) {
                return Some(f);
            }
        }
        None
    }

    fn joined(&mut self, joined: Result<(TaskId, Finished), JoinError>) -> Option<Finished> {
        match joined {
            Ok((task, f)) => {
                self.running.remove(&task);
                Some(f)
            }
            Err(e) => {
                // Only a panicking probe gets here (the set is never aborted while we run).
                let id = self.running.remove(&e.id())?;
                tracing::error!(id = %id, error = %e, "probe task failed");
                let entry = self.checks.get(&id)?;
                Some(Finished {
                    id,
                    incarnation: entry.incarnation,
                    outcome: ProbeOutcome::fail("probe failed unexpectedly"),
                    checked_at_ms: unix_ms(),
                    // Unknown: the task died; count the probe, not a made-up duration.
                    latency: Duration::ZERO,
                })
            }
        }
    }

    /// Applies a finished probe to its check. Returns the result to report if the state changed.
    pub fn record(&mut self, f: Finished) -> Option<CheckResult> {
        let entry = self.checks.get_mut(&f.id)?;
        if entry.incarnation != f.incarnation {
            return None;
        }
        entry.in_flight = false;
        entry.last = Some((f.outcome.message.clone(), f.checked_at_ms));
        entry.stats.observe(f.outcome.success, f.latency);
        let before = entry.state.health();
        let health = entry
            .state
            .observe(f.outcome.success, entry.spec.thresholds)?;
        *self.counts.slot(before) -= 1;
        *self.counts.slot(health) += 1;
        let healthy = health == Health::Healthy;
        tracing::info!(
            id = %f.id,
            check = %entry.spec.description,
            healthy,
            message = %f.outcome.message,
            "check state changed"
        );
        Some(CheckResult {
            id: f.id,
            healthy,
            message: f.outcome.message,
            checked_at_ms: f.checked_at_ms,
            stats: entry.stats,
        })
    }

    /// The state of every check that has one (Unknown is skipped), ordered by id.
    pub fn snapshot(&self) -> Vec<CheckResult> {
        let mut out: Vec<CheckResult> = self
            .checks
            .iter()
            .filter_map(|(id, e)| {
                let healthy = match e.state.health() {
                    Health::Unknown => return None,
                    h => h == Health::Healthy,
                };
                let (message, checked_at_ms) = e.last.clone().unwrap_or_default();
                Some(CheckResult {
                    id: *id,
                    healthy,
                    message,
                    checked_at_ms,
                    stats: e.stats,
                })
            })
            .collect();
        out.sort_by_key(|r| r.id);
        out
    }
}

/// Checks that can never pass are said so once, when they start or change, not every round.
fn warn_if_never_healthy(spec: &CheckSpec) {
    if let ProbeSpec::Invalid { reason } = &spec.probe {
        tracing::warn!(
            id = %spec.id,
            check = %spec.description,
            "invalid check ({reason}); reporting it unhealthy"
        );
    }
}

/// Wall-clock UNIX milliseconds, for `checked_at_ms` (not for timers).
fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
