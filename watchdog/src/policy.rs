//! The watchdog's decisions as pure data: the restart backoff (with injected time) and the
//! dependency order services start in. No I/O here, so every rule is unit-tested.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The pause after every exit, before any failure penalty.
pub const RESTART_DELAY: Duration = Duration::from_secs(2);
/// Extra pause per consecutive failed run before the one that just ended.
pub const FAILURE_PENALTY: Duration = Duration::from_secs(5);
/// The longest pause between two runs.
pub const MAX_RESTART_DELAY: Duration = Duration::from_secs(60);
/// A run at least this long counts as healthy and forgives earlier failures.
pub const HEALTHY_RUN: Duration = Duration::from_secs(30);

/// Restart backoff for one service.
///
/// Seesaw waits `2s + failures × 5s` (capped) and only forgets failures after a clean exit; we
/// also forget them after a run of [`HEALTHY_RUN`], so a service that crashes once a day is not
/// punished for last week's crash loop.
#[derive(Debug, Default, Clone)]
pub struct RestartPolicy {
    /// Consecutive failed runs (non-zero exit, signal, or spawn failure).
    failures: u32,
    /// When the current run started; `None` between runs.
    started: Option<Instant>,
}

impl RestartPolicy {
    /// Records that a run started at `now`.
    pub fn started(&mut self, now: Instant) {
        self.started = Some(now);
    }

    /// Records that the current run ended at `now` (`success` = exit status 0) and returns how
    /// long to wait before the next start. A spawn failure is a failed run of length zero.
    pub fn ended(&mut self, now: Instant, success: bool) -> Duration {
        let ran_for = self
            .started
            .take()
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s));
        if ran_for >= HEALTHY_RUN {
            self.failures = 0;
        }
        let delay = RESTART_DELAY
            .saturating_add(FAILURE_PENALTY.saturating_mul(self.failures))
            .min(MAX_RESTART_DELAY);
        self.failures = if success {
            0
        } else {
            self.failures.saturating_add(1)
        };
        delay
    }

    /// Consecutive failed runs so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

/// A dependency cycle, as the services along it (the first one is not repeated).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cycle(pub Vec<String>);

impl fmt::Display for Cycle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for name in &self.0 {
            write!(f, "{name} -> ")?;
        }
        write!(f, "{}", self.0.first().map_or("", String::as_str))
    }
}

/// Orders services so each comes after its dependency, keeping file order otherwise.
///
/// `services` holds `(name, dependency)`; a dependency naming no listed service is ignored here
/// (the config validator reports it). Returns every cycle found if there is any.
pub fn start_order<'a>(
    services: &[(&'a str, Option<&'a str>)],
) -> Result<Vec<&'a str>, Vec<Cycle>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        Unvisited,
        OnChain,
        Done,
    }
    let deps: HashMap<&str, Option<&str>> = services.iter().copied().collect();
    let mut marks: HashMap<&str, Mark> = services
        .iter()
        .map(|(n, _)| (*n, Mark::Unvisited))
        .collect();
    let mut order = Vec::with_capacity(services.len());
    let mut cycles = Vec::new();
    for (start, _) in services {
        // Each service has at most one dependency, so the graph walk is a chain walk. Only the
        // current chain is ever marked OnChain: every earlier chain ends fully Done.
        let mut chain: Vec<&str> = Vec::new();
        let mut cur = Some(*start);
        while let Some(name) = cur {
            match marks[name] {
                Mark::Done => break,
                Mark::OnChain => {
                    let pos = chain
                        .iter()
                        .position(|n| *n == name)
                        .expect("an OnChain service is on the current chain");
                    cycles.push(Cycle(
                        chain[pos..].iter().map(|s| (*s).to_owned()).collect(),
                    ));
                    break;
                }
                Mark::Unvisited => {
                    marks.insert(name, Mark::OnChain);
                    chain.push(name);
                    cur = deps[name].filter(|d| deps.contains_key(d));
                }
            }
        }
        for name in chain.into_iter().rev() {
            marks.insert(name, Mark::Done);
            order.push(name);
        }
    }
    if cycles.is_empty() {
        Ok(order)
    } else {
        Err(cycles)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn crash_loop_backs_off_and_caps() {
        let t0 = Instant::now();
        let mut p = RestartPolicy::default();
        let mut delays = Vec::new();
        let mut now = t0;
        for _ in 0..15 {
            p.started(now);
            now += secs(1);
            delays.push(p.ended(now, false));
        }
        let want: Vec<Duration> = [2, 7, 12, 17, 22, 27, 32, 37, 42, 47, 52, 57, 60, 60, 60]
            .into_iter()
            .map(secs)
            .collect();
        assert_eq!(delays, want);
        assert_eq!(p.failures(), 15);
    }

    #[test]
    fn clean_exit_waits_for_earlier_failures_then_resets() {
        let t0 = Instant::now();
        let mut p = RestartPolicy::default();
        p.started(t0);
        assert_eq!(p.ended(t0 + secs(1), false), secs(2));
        p.started(t0 + secs(3));
        assert_eq!(p.ended(t0 + secs(4), false), secs(7));
        // The penalty counts the failures before this run, even though this one succeeded.
        p.started(t0 + secs(11));
        assert_eq!(p.ended(t0 + secs(12), true), secs(12));
        assert_eq!(p.failures(), 0);
        p.started(t0 + secs(30));
        assert_eq!(p.ended(t0 + secs(31), false), secs(2));
    }

    #[test]
    fn healthy_run_forgives_earlier_failures() {
        let t0 = Instant::now();
        let mut p = RestartPolicy::default();
        for i in 0..4 {
            p.started(t0 + secs(i));
            p.ended(t0 + secs(i), false);
        }
        assert_eq!(p.failures(), 4);
        p.started(t0 + secs(100));
        // Exactly HEALTHY_RUN counts as healthy: the first crash after it restarts after 2s.
        assert_eq!(p.ended(t0 + secs(130), false), secs(2));
        assert_eq!(p.failures(), 1);
        p.started(t0 + secs(200));
        assert_eq!(p.ended(t0 + secs(229), false), secs(7));
    }

    #[test]
    fn spawn_failure_counts_as_failed_run() {
        let mut p = RestartPolicy::default();
        let now = Instant::now();
        assert_eq!(p.ended(now, false), secs(2));
        assert_eq!(p.ended(now, false), secs(7));
        assert_eq!(p.failures(), 2);
    }

    #[test]
    fn order_puts_dependencies_first_and_keeps_file_order() {
        let svcs = [
            ("ecu", Some("engine")),
            ("engine", Some("ncc")),
            ("ha", Some("engine")),
            ("healthcheck", Some("engine")),
            ("ncc", None),
        ];
        assert_eq!(
            start_order(&svcs).expect("acyclic"),
            ["ncc", "engine", "ecu", "ha", "healthcheck"]
        );
    }

    #[test]
    fn unknown_dependency_is_ignored_by_ordering() {
        let svcs = [("a", Some("ghost")), ("b", Some("a"))];
        assert_eq!(start_order(&svcs).expect("acyclic"), ["a", "b"]);
    }

    #[test]
    fn cycles_are_all_reported() {
        let svcs = [
            ("a", Some("b")),
            ("b", Some("c")),
            ("c", Some("a")),
            ("d", Some("a")),
            ("self", Some("self")),
            ("free", None),
        ];
        let cycles = start_order(&svcs).expect_err("cyclic");
        assert_eq!(cycles.len(), 2);
        assert_eq!(cycles[0].to_string(), "a -> b -> c -> a");
        assert_eq!(cycles[1].to_string(), "self -> self");
    }
}
