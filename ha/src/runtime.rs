//! The ha runtime: drives a [`Node`] with tokio time and executes its actions against an
//! [`EngineLink`], until the shutdown token fires; then reports SHUTDOWN once, best effort.

use std::collections::VecDeque;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::link::{EngineLink, HaReport};
use crate::node::{Action, Event, Node, Status, Timers};

/// Runtime settings. The defaults are what `seesaw_ha` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// When to fetch and push.
    pub timers: Timers,
    /// How long the final SHUTDOWN report may take.
    pub shutdown_deadline: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            timers: Timers::default(),
            shutdown_deadline: Duration::from_secs(1),
        }
    }
}

/// Runs the HA node until `shutdown` is cancelled. Engine failures are retried forever (the
/// watchdog may restart the engine), so this never fails.
pub async fn run<L: EngineLink>(config: RunConfig, mut link: L, shutdown: CancellationToken) {
    let clock = Clock::start();
    let mut node = Node::new(config.timers, Instant::now());
    seesaw_common::ready::notify_ready();
    tracing::info!("ha running (single-node mode; the peer protocol is not in this build)");

    'outer: while let Some(deadline) = node.next_deadline() {
        tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            () = sleep_until(deadline) => {}
        }
        let mut queue = VecDeque::from(node.handle(Event::Tick, Instant::now()));
        while let Some(action) = queue.pop_front() {
            // A call stuck until its timeout must not delay shutdown.
            let event = tokio::select! {
                biased;
                () = shutdown.cancelled() => break 'outer,
                event = execute(&mut link, &node, &clock, action) => event,
            };
            if let Some(event) = event {
                queue.extend(node.handle(event, Instant::now()));
            }
        }
    }

    for action in node.handle(Event::Shutdown, Instant::now()) {
        if let Action::PushStatus(status) = action {
            match timeout(
                config.shutdown_deadline,
                link.ha_update(clock.report(&status)),
            )
            .await
            {
                Ok(Ok(())) => tracing::info!("reported SHUTDOWN to the engine"),
                Ok(Err(e)) => tracing::warn!(error = %e, "could not report SHUTDOWN"),
                Err(_) => tracing::warn!("reporting SHUTDOWN timed out"),
            }
        }
    }
    seesaw_common::ready::notify_stopping();
}

/// Executes one action; returns the event that reports its outcome, if any.
async fn execute<L: EngineLink>(
    link: &mut L,
    node: &Node,
    clock: &Clock,
    action: Action,
) -> Option<Event> {
    let result = match action {
        Action::FetchConfig => match link.ha_config().await {
            Ok(config) => return Some(Event::ConfigReceived(config)),
            Err(e) => e,
        },
        Action::PushStatus(status) => match link.ha_update(clock.report(&status)).await {
            Ok(()) => return None,
            Err(e) => e,
        },
    };
    // Warn on the first failure only; the retries every second would flood the log.
    if node.engine_reachable() {
        tracing::warn!(error = %result, "engine unreachable; retrying every second");
    } else {
        tracing::debug!(error = %result, "engine still unreachable");
    }
    Some(Event::EngineUnreachable)
}

/// Maps tokio instants to UNIX milliseconds. Anchored once at start, so it follows tokio's clock
/// (pausable in tests) and never jumps backwards when the wall clock is stepped.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
    origin_unix_ms: i64,
}

impl Clock {
    fn start() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            origin: Instant::now(),
            origin_unix_ms: i64::try_from(unix.as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn unix_ms(&self, t: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if t >= self.origin {
            self.origin_unix_ms.saturating_add(ms(t - self.origin))
        } else {
            self.origin_unix_ms.saturating_sub(ms(self.origin - t))
        }
    }

    fn report(&self, s: &Status) -> HaReport {
        HaReport {
            state: s.state,
            since_ms: self.unix_ms(s.since),
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
        }
    }
}

#[cfg(test)]
mod tests;
