//! Scheduler tests on paused time with a scripted prober: staggering, the probe rate, timeouts,
//! transitions, and in-place updates of the check set.

use std::time::Duration;

use tokio::time::{Instant, sleep_until};

use super::*;
use crate::engine_link::check_from_proto;
use crate::test_support::{Behaviour, ScriptedProber, addr, tcp_check};

fn specs(checks: &[seesaw_proto::engine::Check]) -> Vec<CheckSpec> {
    checks.iter().map(check_from_proto).collect()
}

/// A scheduler over a scripted prober, and the prober.
fn scheduler() -> (ScriptedProber, Scheduler<ScriptedProber>) {
    let p = ScriptedProber::default();
    let s = Scheduler::new(p.clone());
    (p, s)
}

/// A scheduler over a prober on which address 1 hangs, and check 1 (of address 1, every
/// second) that gives up after `timeout_ms`.
fn hanging(
    timeout_ms: u32,
) -> (
    ScriptedProber,
    Scheduler<ScriptedProber>,
    seesaw_proto::engine::Check,
) {
    let (p, s) = scheduler();
    p.set(addr(1), Behaviour::Hang);
    let mut c = tcp_check(1, 1, 1000, 1, 0);
    c.timeout_ms = timeout_ms;
    (p, s, c)
}

/// Drives the scheduler like the real loop does, for `d`; returns the transitions.
async fn run_for<P: Prober>(s: &mut Scheduler<P>, d: Duration) -> Vec<CheckResult> {
    let end = Instant::now() + d;
    let mut out = Vec::new();
    loop {
        s.launch_due(Instant::now());
        let wake = s.next_deadline().map_or(end, |t| t.min(end));
        tokio::select! {
            biased;
            f = s.next_finished() => out.extend(s.record(f)),
            () = sleep_until(wake) => {
                if Instant::now() >= end {
                    break;
                }
            }
        }
    }
    out
}

fn summary(r: &[CheckResult]) -> Vec<(u64, bool)> {
    r.iter().map(|r| (r.id.0, r.healthy)).collect()
}

#[tokio::test(start_paused = true)]
async fn new_checks_are_staggered_over_their_interval() {
    let (p, mut s) = scheduler();
    let t0 = Instant::now();
    let checks: Vec<_> = (1..=4).map(|i| tcp_check(i, i as u8, 1000, 1, 0)).collect();
    assert_eq!(
        s.apply(specs(&checks), t0),
        ApplySummary {
            added: 4,
            removed: 0,
            changed: 0
        }
    );
    run_for(&mut s, Duration::from_millis(900)).await;
    let starts: Vec<Duration> = p.calls().iter().map(|(t, _)| *t - t0).collect();
    assert_eq!(starts, [0, 250, 500, 750].map(Duration::from_millis));
}

#[tokio::test(start_paused = true)]
async fn stagger_has_a_floor() {
    let (p, mut s) = scheduler();
    let t0 = Instant::now();
    // 100 checks with a 1 ms interval would be 10 µs apart; the floor spreads them to 50 µs.
    let checks: Vec<_> = (1..=100).map(|i| tcp_check(i, i as u8, 1, 1, 0)).collect();
    s.apply(specs(&checks), t0);
    // Without the floor all 100 would start within 1 ms. Timers fire on whole milliseconds, so
    // each check starts within 1 ms after its staggered slot.
    run_for(&mut s, Duration::from_millis(6)).await;
    for i in 0..100u32 {
        let first = p.calls_to(addr(u8::try_from(i + 1).unwrap()))[0] - t0;
        let slot = MIN_STAGGER * i;
        assert!(
            first >= slot && first < slot + Duration::from_millis(1),
            "check {} started at {first:?}, slot {slot:?}",
            i + 1
        );
    }
}

#[tokio::test(start_paused = true)]
async fn probes_once_per_interval_and_reports_transitions() {
    let p = ScriptedProber::default();
    p.set(addr(1), Behaviour::Up);
    let mut s = Scheduler::new(p.clone());
    s.apply(specs(&[tcp_check(1, 1, 1000, 2, 1)]), Instant::now());

    // Probes at 0 s and 1 s: rise 2 reached at the second.
    let r = run_for(&mut s, Duration::from_millis(1500)).await;
    assert_eq!(summary(&r), [(1, true)]);
    assert_eq!(r[0].message, format!("up {}", addr(1)));
    assert!(r[0].checked_at_ms > 0);
    assert_eq!(p.calls_to(addr(1)).len(), 2);

    // Down: retries 1 tolerates the probe at 2 s, the one at 3 s flips it.
    p.set(addr(1), Behaviour::Down);
    let r = run_for(&mut s, Duration::from_millis(2000)).await;
    assert_eq!(summary(&r), [(1, false)]);
    assert_eq!(p.calls_to(addr(1)).len(), 4);
    assert_eq!(s.health(CheckId(1)), Some(Health::Unhealthy));
}

#[tokio::test(start_paused = true)]
async fn a_hanging_probe_times_out_and_does_not_stack() {
    let (p, mut s, c) = hanging(2500);
    s.apply(specs(&[c]), Instant::now());
    let r = run_for(&mut s, Duration::from_millis(2600)).await;
    assert_eq!(summary(&r), [(1, false)]);
    assert_eq!(
        r[0].message,
        format!("tcp {}: timed out after 2500 ms", addr(1))
    );
    // Rounds at 1 s and 2 s were skipped while the first probe ran.
    assert_eq!(p.calls_to(addr(1)).len(), 1);
}

#[tokio::test(start_paused = true)]
async fn refetch_updates_in_place() {
    let p = ScriptedProber::default();
    for n in 1..=3 {
        p.set(addr(n), Behaviour::Up);
    }
    let mut s = Scheduler::new(p.clone());
    s.apply(
        specs(&[tcp_check(1, 1, 1000, 1, 0), tcp_check(2, 2, 1000, 1, 0)]),
        Instant::now(),
    );
    let r = run_for(&mut s, Duration::from_millis(1100)).await;
    assert_eq!(summary(&r), [(1, true), (2, true)]);

    // Check 1 changes interval and rise, check 2 goes away, check 3 is new.
    let t1 = Instant::now();
    let summary_ = s.apply(
        specs(&[tcp_check(1, 1, 500, 5, 0), tcp_check(3, 3, 1000, 1, 0)]),
        t1,
    );
    assert_eq!(
        summary_,
        ApplySummary {
            added: 1,
            removed: 1,
            changed: 1
        }
    );
    assert_eq!(s.health(CheckId(1)), Some(Health::Healthy), "state kept");
    assert_eq!(s.health(CheckId(2)), None);
    let before_2 = p.calls_to(addr(2)).len();
    let r = run_for(&mut s, Duration::from_millis(2100)).await;
    // Only the new check reports; check 1 stays Healthy (rise 5 does not reset it).
    assert_eq!(summary(&r), [(3, true)]);
    assert_eq!(p.calls_to(addr(2)).len(), before_2, "removed check stopped");
    // The new interval applies: 500 ms instead of 1 s.
    let after: Vec<_> = p
        .calls_to(addr(1))
        .into_iter()
        .filter(|t| *t > t1)
        .collect();
    assert!(after.len() >= 4, "{after:?}");
    assert_eq!(
        s.snapshot()
            .iter()
            .map(|r| (r.id.0, r.healthy))
            .collect::<Vec<_>>(),
        [(1, true), (3, true)]
    );
}

#[tokio::test(start_paused = true)]
async fn duplicate_ids_run_once_and_the_last_config_wins() {
    let p = ScriptedProber::default();
    p.set(addr(2), Behaviour::Up);
    let mut s = Scheduler::new(p.clone());
    // The engine dedups by id, but the process must not run one id twice if it is sent twice.
    let summary_ = s.apply(
        specs(&[tcp_check(7, 1, 1000, 1, 0), tcp_check(7, 2, 1000, 1, 0)]),
        Instant::now(),
    );
    assert_eq!(summary_.added, 1);
    assert_eq!(s.len(), 1);
    let r = run_for(&mut s, Duration::from_millis(3100)).await;
    assert_eq!(summary(&r), [(7, true)]);
    assert!(
        p.calls_to(addr(1)).is_empty(),
        "the first config was replaced"
    );
    assert_eq!(
        p.calls_to(addr(2)).len(),
        4,
        "one probe per interval, not two"
    );
}

#[tokio::test(start_paused = true)]
async fn a_result_for_a_removed_check_is_dropped() {
    let (p, mut s, c) = hanging(300);
    s.apply(specs(std::slice::from_ref(&c)), Instant::now());
    s.launch_due(Instant::now());
    // Removed and re-added while its probe runs: the old probe's timeout must not count.
    s.apply(Vec::new(), Instant::now());
    s.apply(specs(&[c]), Instant::now());
    p.set(addr(1), Behaviour::Up);
    let r = run_for(&mut s, Duration::from_millis(400)).await;
    assert_eq!(summary(&r), [(1, true)]);
}

#[tokio::test(start_paused = true)]
async fn unknown_checks_are_not_in_the_snapshot() {
    let p = ScriptedProber::default();
    p.set(addr(1), Behaviour::Up);
    let mut s = Scheduler::new(p.clone());
    s.apply(
        specs(&[tcp_check(1, 1, 1000, 3, 0), tcp_check(2, 2, 1000, 1, 0)]),
        Instant::now(),
    );
    run_for(&mut s, Duration::from_millis(1100)).await;
    // Check 1 is rising (Unknown), check 2 failed.
    let snap = s.snapshot();
    assert_eq!(summary(&snap), [(2, false)]);
    assert_eq!(snap[0].message, format!("down {}", addr(2)));
}

#[tokio::test(start_paused = true)]
async fn probe_latency_and_results_are_counted_per_check() {
    let p = ScriptedProber::default();
    p.set(addr(1), Behaviour::Up);
    p.set(addr(2), Behaviour::Hang);
    let mut s = Scheduler::new(p.clone());
    // Interval 1 s, timeout 500 ms; check 2 hangs until its timeout.
    s.apply(
        specs(&[tcp_check(1, 1, 1000, 1, 0), tcp_check(2, 2, 1000, 1, 0)]),
        Instant::now(),
    );
    assert_eq!(
        s.counts(),
        HealthCounts {
            unknown: 2,
            healthy: 0,
            unhealthy: 0
        }
    );
    run_for(&mut s, Duration::from_millis(3200)).await;
    let snap = s.snapshot();
    let up = snap[0].stats;
    let hung = snap[1].stats;
    assert_eq!((up.successes, up.failures), (4, 0), "{up:?}");
    // The scripted prober answers at once (paused time): every probe in the first bucket.
    assert_eq!(up.latency_counts[0], 4);
    assert_eq!(up.latency_sum_us, 0);
    // Check 2 started 500 ms later (staggered): probes at 0.5, 1.5, 2.5 s, each timing out.
    assert_eq!((hung.successes, hung.failures), (0, 3), "{hung:?}");
    assert!(
        (500_000..=501_000).contains(&hung.last_latency_us),
        "{hung:?}"
    );
    assert_eq!(hung.latency_counts.iter().sum::<u64>(), 3);
    let slow = hung.latency_counts[9] + hung.latency_counts[10];
    assert_eq!(slow, 3, "le 0.5 s or le 1 s: {hung:?}");
    assert_eq!(
        s.counts(),
        HealthCounts {
            unknown: 0,
            healthy: 1,
            unhealthy: 1
        }
    );
    // A removed check leaves the counts.
    s.apply(specs(&[tcp_check(1, 1, 1000, 1, 0)]), Instant::now());
    assert_eq!(s.counts().unhealthy, 0);
    assert_eq!(s.counts().healthy, 1);
}
