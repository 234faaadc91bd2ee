//! Detection latency benchmark (not shipped): `bench/healthcheck.sh detect` runs it. Starts the
//! whole suite on loopback (lab's `LoopbackSuite`: watchdog, engine, ncc with the proxy plane,
//! healthcheck; HTTP check every 1 s, timeout 1 s, retries 0), kills backend `be1`, and measures
//! from the kill until
//! - `shell_unhealthy_ms`: `show vservers` reports be1 unhealthy (the engine has the verdict and
//!   removes the destination from the plane in the same step), polled every 100 ms;
//! - `data_plane_ms`: the last request through the VIP (one every 10 ms) that was not answered by
//!   `be2`, i.e. the window in which clients saw the dead backend (0 when none did: the proxy plane
//!   retries another backend when a connect fails).
//!
//! Needs the debug daemons: `cargo build --workspace --bins` first.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark tool prints its results"
)]

use std::time::{Duration, Instant};

use seesaw_lab::loopback::LoopbackSuite;

/// How long one run watches after the kill.
const WATCH: Duration = Duration::from_secs(6);

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3);
    let mut plane = Vec::new();
    let mut shell = Vec::new();
    for run in 1..=runs {
        let mut suite =
            LoopbackSuite::start().unwrap_or_else(|e| panic!("suite did not start: {e}"));
        let be1 = suite.backends()[0].clone();
        // Warm up: both backends answer.
        for _ in 0..10 {
            let _ = suite.get();
        }
        let t0 = Instant::now();
        suite.kill_backend(0).expect("kill be1");
        let mut last_bad: Option<Duration> = None;
        let mut shell_at: Option<Duration> = None;
        let mut next_shell = Instant::now();
        let mut requests = 0u32;
        while t0.elapsed() < WATCH {
            requests += 1;
            let ok = suite
                .get()
                .is_ok_and(|r| r.status == 200 && r.text() == "be2");
            if !ok {
                last_bad = Some(t0.elapsed());
            }
            if shell_at.is_none() && Instant::now() >= next_shell {
                next_shell = Instant::now() + Duration::from_millis(100);
                let unhealthy = suite.destinations().ok().is_some_and(|(_, rows)| {
                    rows.iter()
                        .any(|r| r.is(&be1.fqdn, &be1.addr.ip().to_string()) && !r.healthy)
                });
                if unhealthy {
                    shell_at = Some(t0.elapsed());
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let plane_ms = last_bad.map_or(0, |d| d.as_millis());
        println!(
            "{{\"run\":{run},\"requests\":{requests},\"data_plane_ms\":{plane_ms},\"shell_unhealthy_ms\":{}}}",
            shell_at.map_or(-1, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        );
        plane.push(plane_ms);
        if let Some(s) = shell_at {
            shell.push(s.as_millis());
        }
    }
    plane.sort_unstable();
    shell.sort_unstable();
    let median = |v: &[u128]| v.get(v.len() / 2).copied().unwrap_or(0);
    println!(
        "{{\"runs\":{runs},\"data_plane_ms_median\":{},\"data_plane_ms_max\":{},\"shell_unhealthy_ms_median\":{}}}",
        median(&plane),
        plane.last().copied().unwrap_or(0),
        median(&shell)
    );
}
