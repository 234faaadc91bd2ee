//! `seesaw_healthcheck`: runs every health check the engine asks for and reports state changes
//! back in batches. It keeps running, and keeps its checks' state, while the engine is down or
//! restarting; when the engine is back it gets a full resync.
//!
//! Layout:
//! - [`check`]: domain types (a check, a probe outcome, a reported result, a batch);
//! - [`state`]: the sans-io rise/retries threshold machine of one check;
//! - [`codec`]: the wire formats (ICMP, DNS, RADIUS, MySQL), pure and fuzzed;
//! - [`probe`]: the [`probe::Prober`] trait and the network prober of every check kind;
//! - [`scheduler`]: the one scheduler (a heap of due times, probes in one `JoinSet`);
//! - [`report`]: the sans-io outbox (batching, coalescing, full resyncs, retries);
//! - [`engine_link`]: the [`engine_link::EngineLink`] port, its gRPC adapter and a fake;
//! - this file: [`run`], the single event loop tying them together.
#![forbid(unsafe_code)]

#[cfg(all(feature = "testing", not(debug_assertions)))]
compile_error!("the `testing` feature is for tests only and must not be built in release mode");

pub mod check;
pub mod codec;
/// The DNS library whose types appear in [`check::DnsProbe`] (re-exported for the fuzz targets).
pub use hickory_proto;
pub mod engine_link;
pub mod probe;
pub mod report;
pub mod scheduler;
pub mod state;
#[cfg(test)]
mod test_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::{JoinError, JoinHandle};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::check::{Batch, CheckSpec};
use crate::engine_link::{EngineLink, EngineLinkError};
use crate::probe::{NetProber, Prober};
use crate::report::{BatchPolicy, Outbox};
use crate::scheduler::Scheduler;

/// Tunables of the process. `Default` gives the production values.
#[derive(Debug, Clone)]
pub struct Options {
    /// Every probe passes without touching the network (Seesaw's `-dry_run`).
    pub dry_run: bool,
    /// How often the check set is refetched while the engine is up.
    pub fetch_interval: Duration,
    /// How often a failed fetch or report is retried.
    pub retry_interval: Duration,
    /// How often a full resync is sent.
    pub full_resync_interval: Duration,
    /// Flush a batch once this many results are queued.
    pub batch_max: usize,
    /// Flush a batch this long after its first result was queued.
    pub batch_delay: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            // Every second: the watchdog restarts a crashed engine after at least 2 s, so a fetch
            // always fails during the gap and the new engine gets a full resync at once.
            fetch_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(1),
            full_resync_interval: Duration::from_secs(15),
            batch_max: 100,
            batch_delay: Duration::from_millis(100),
        }
    }
}

/// Runs until `shutdown` is cancelled, probing over the network. Never returns because the engine
/// is unreachable: it retries and keeps probing.
pub async fn run<L: EngineLink>(opts: Options, link: L, shutdown: CancellationToken) {
    let prober = NetProber::new(opts.dry_run);
    run_with_prober(opts, link, prober, shutdown).await;
}

/// [`run`] with an injected prober (tests use a scripted one to drive paused time).
pub async fn run_with_prober<L: EngineLink, P: Prober>(
    opts: Options,
    link: L,
    prober: P,
    shutdown: CancellationToken,
) {
    let link = Arc::new(link);
    let mut scheduler = Scheduler::new(prober);
    let policy = BatchPolicy {
        max: opts.batch_max,
        delay: opts.batch_delay,
        retry: opts.retry_interval,
        full_every: opts.full_resync_interval,
    };
    let mut outbox = Outbox::new(policy, Instant::now());
    // At most one fetch and one report in flight; each runs in its own task so a slow engine never
    // delays the probes.
    let mut fetch_task: Option<JoinHandle<Result<Vec<CheckSpec>, EngineLinkError>>> = None;
    let mut report_task: Option<JoinHandle<(Batch, Result<(), EngineLinkError>)>> = None;
    let mut next_fetch = Instant::now();
    let mut engine = EngineState::NeverReached;
    let status = Arc::new(LoopStatus::default());
    let weak = Arc::downgrade(&status);
    seesaw_common::signal::on_dump("healthcheck", move || match weak.upgrade() {
        Some(s) => s.report(),
        None => "stopped".to_owned(),
    });

    tracing::info!(dry_run = opts.dry_run, "healthcheck running");
    loop {
        status.publish(&scheduler, &outbox, engine);
        let now = Instant::now();
        if fetch_task.is_none() && next_fetch <= now {
            let link = link.clone();
            fetch_task = Some(tokio::spawn(async move { link.fetch().await }));
        }
        scheduler.launch_due(now);
        if report_task.is_none()
            && let Some(batch) = outbox.take(now, || scheduler.snapshot())
        {
            tracing::debug!(
                results = batch.results.len(),
                full = batch.full,
                "reporting"
            );
            let link = link.clone();
            report_task = Some(tokio::spawn(async move {
                let r = link.report(&batch).await;
                (batch, r)
            }));
        }

        let mut wake = now + Duration::from_secs(3600);
        if fetch_task.is_none() {
            wake = wake.min(next_fetch);
        }
        for d in [scheduler.next_deadline(), outbox.deadline(now)]
            .into_iter()
            .flatten()
        {
            wake = wake.min(d);
        }

        tokio::select! {
            () = shutdown.cancelled() => break,
            () = tokio::time::sleep_until(wake) => {}
            finished = scheduler.next_finished() => {
                let now = Instant::now();
                let mut next = Some(finished);
                // Drain every probe that is already done, bounded by what has finished.
                while let Some(f) = next {
                    if let Some(result) = scheduler.record(f) {
                        outbox.push(result, now);
                    }
                    next = scheduler.try_finished();
                }
            }
            fetched = join_opt(&mut fetch_task) => {
                fetch_task = None;
                let now = Instant::now();
                match flatten(fetched) {
                    Ok(specs) => {
                        let summary = scheduler.apply(specs, now);
                        if summary != Default::default() {
                            tracing::info!(
                                added = summary.added,
                                removed = summary.removed,
                                changed = summary.changed,
                                running = scheduler.len(),
                                "check set updated"
                            );
                        }
                        if engine != EngineState::Up {
                            tracing::info!(checks = scheduler.len(), "engine reachable; sending full state");
                            outbox.request_full();
                            engine = EngineState::Up;
                        }
                        next_fetch = now + opts.fetch_interval;
                    }
                    Err(e) => {
                        if engine != EngineState::Down {
                            tracing::warn!(error = %e, "cannot fetch checks; retrying, probes keep running");
                            engine = EngineState::Down;
                        }
                        next_fetch = now + opts.retry_interval;
                    }
                }
            }
            reported = join_opt(&mut report_task) => {
                report_task = None;
                let now = Instant::now();
                match reported {
                    Ok((batch, Ok(()))) => {
                        status.delivered(&batch);
                        outbox.sent();
                    }
                    Ok((batch, Err(e))) => {
                        if engine == EngineState::Up {
                            tracing::warn!(error = %e, "cannot report results; retrying");
                            // Probe the engine sooner, and resync once it answers again.
                            engine = EngineState::Down;
                            next_fetch = next_fetch.min(now + opts.retry_interval);
                        }
                        outbox.failed(batch, now);
                    }
                    Err(e) => {
                        // The batch is lost with the task; a full resync replaces it.
                        tracing::error!(error = %e, "report task failed");
                        outbox.sent();
                        outbox.request_full();
                    }
                }
            }
        }
    }
    if let Some(t) = fetch_task {
        t.abort();
    }
    if let Some(t) = report_task {
        t.abort();
    }
    tracing::info!(pending = outbox.pending_len(), "healthcheck stopped");
}

/// What the loop last learned about the engine; an outage ends with a full resync.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EngineState {
    NeverReached,
    Up,
    Down,
}

/// The loop's state for SIGUSR1 dumps: plain atomics the loop stores once per turn (a few
/// relaxed stores; the counts are kept incrementally by the scheduler), read by the signal task.
#[derive(Debug, Default)]
struct LoopStatus {
    checks: AtomicU64,
    unknown: AtomicU64,
    healthy: AtomicU64,
    unhealthy: AtomicU64,
    in_flight: AtomicU64,
    pending: AtomicU64,
    /// 0 never reached, 1 up, 2 down.
    engine: AtomicU64,
    batches: AtomicU64,
    /// UNIX ms of the last delivered full resync / batch (0: none yet).
    last_full_ms: AtomicU64,
    last_batch_ms: AtomicU64,
}

impl LoopStatus {
    fn publish<P: Prober>(&self, scheduler: &Scheduler<P>, outbox: &Outbox, engine: EngineState) {
        let counts = scheduler.counts();
        let n = |v: usize| u64::try_from(v).unwrap_or(u64::MAX);
        self.checks.store(n(scheduler.len()), Ordering::Relaxed);
        self.unknown.store(n(counts.unknown), Ordering::Relaxed);
        self.healthy.store(n(counts.healthy), Ordering::Relaxed);
        self.unhealthy.store(n(counts.unhealthy), Ordering::Relaxed);
        self.in_flight
            .store(n(scheduler.in_flight()), Ordering::Relaxed);
        self.pending
            .store(n(outbox.pending_len()), Ordering::Relaxed);
        let engine = match engine {
            EngineState::NeverReached => 0,
            EngineState::Up => 1,
            EngineState::Down => 2,
        };
        self.engine.store(engine, Ordering::Relaxed);
    }

    fn delivered(&self, batch: &Batch) {
        let now = u64::try_from(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis(),
        )
        .unwrap_or(u64::MAX);
        self.batches.fetch_add(1, Ordering::Relaxed);
        self.last_batch_ms.store(now, Ordering::Relaxed);
        if batch.full {
            self.last_full_ms.store(now, Ordering::Relaxed);
        }
    }

    fn report(&self) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let engine = match get(&self.engine) {
            0 => "never reached",
            1 => "up",
            _ => "down",
        };
        format!(
            "checks scheduled {}: healthy {}, unhealthy {}, unknown {}; probes in flight {}; \
             results queued {}; engine {engine}; batches delivered {}; last batch {}; \
             last full resync {}",
            get(&self.checks),
            get(&self.healthy),
            get(&self.unhealthy),
            get(&self.unknown),
            get(&self.in_flight),
            get(&self.pending),
            get(&self.batches),
            ago(get(&self.last_batch_ms)),
            ago(get(&self.last_full_ms)),
        )
    }
}

/// `"never"` or how long ago a UNIX-ms time was, e.g. `"3.2 s ago"`.
fn ago(unix_ms: u64) -> String {
    if unix_ms == 0 {
        return "never".to_owned();
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let ms = now.saturating_sub(u128::from(unix_ms));
    format!("{}.{} s ago", ms / 1000, (ms % 1000) / 100)
}

/// Awaits the task if there is one; pending forever otherwise (a disabled `select!` branch).
async fn join_opt<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(t) => t.await,
        None => std::future::pending().await,
    }
}

fn flatten<T>(r: Result<Result<T, EngineLinkError>, JoinError>) -> Result<T, String> {
    match r {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(e) => Err(format!("fetch task failed: {e}")),
    }
}

#[cfg(test)]
mod tests;
