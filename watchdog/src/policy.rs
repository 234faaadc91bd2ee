//! The watchdog's decisions as pure data: the restart backoff (with injected time) and the
//! dependency order services start in. No I/O here, so every rule is unit-tested.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The pause after every exit, before any failure penalty. Short, because a single crash of a
/// data-plane process (the proxy relay above all) is an outage until it is back; a crash loop
/// still backs off by [`FAILURE_PENALTY`] per failure. (Seesaw waits 2 s.)
pub const RESTART_DELAY: Duration = Duration::from_millis(200);
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

    /// The delay after a failed run that followed `n` consecutive failures.
    fn after(n: u32) -> Duration {
        RESTART_DELAY + FAILURE_PENALTY * n
    }

    /// Runs from `t0 + start` to `t0 + end` seconds, each ending cleanly or not: the restart
    /// delay `p` gives after each.
    fn runs(p: &mut RestartPolicy, t0: Instant, runs: &[(u64, u64, bool)]) -> Vec<Duration> {
        runs.iter()
            .map(|&(start, end, clean)| {
                p.started(t0 + secs(start));
                p.ended(t0 + secs(end), clean)
            })
            .collect()
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
        let want: Vec<Duration> = (0..15).map(|n| after(n).min(secs(60))).collect();
        assert_eq!(want[11], Duration::from_millis(55_200));
        assert_eq!(want[12], secs(60));
        assert_eq!(delays, want);
        assert_eq!(p.failures(), 15);
    }

    #[test]
    fn clean_exit_waits_for_earlier_failures_then_resets() {
        let t0 = Instant::now();
        let mut p = RestartPolicy::default();
        // The third run's penalty counts the failures before it, even though it succeeded.
        assert_eq!(
            runs(&mut p, t0, &[(0, 1, false), (3, 4, false), (11, 12, true)]),
            [after(0), after(1), after(2)]
        );
        assert_eq!(p.failures(), 0);
        assert_eq!(runs(&mut p, t0, &[(30, 31, false)]), [after(0)]);
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
        // Exactly HEALTHY_RUN counts as healthy: the first crash after it restarts after RESTART_DELAY.
        assert_eq!(runs(&mut p, t0, &[(100, 130, false)]), [after(0)]);
        assert_eq!(p.failures(), 1);
        assert_eq!(runs(&mut p, t0, &[(200, 229, false)]), [after(1)]);
    }

    #[test]
    fn spawn_failure_counts_as_failed_run() {
        let mut p = RestartPolicy::default();
        let now = Instant::now();
        assert_eq!(p.ended(now, false), after(0));
        assert_eq!(p.ended(now, false), after(1));
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
