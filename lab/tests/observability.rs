//! Observability end to end, on the loopback suite (real binaries under the real watchdog):
//! probe latency and results travel healthcheck → engine → ECU `/metrics`; the watchdog's status
//! file gives `seesaw_process_up` / `seesaw_process_restarts_total`, and a SIGKILLed engine is
//! counted as a restart; SIGUSR1 to the watchdog makes every process log its real state.
//! Needs `cargo build --workspace --bins` first (the suite says so otherwise).
#![allow(
    clippy::print_stderr,
    reason = "measured times are reported to the person running the tests"
)]

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_lab::{LoopbackSuite, wait_for};

fn start() -> LoopbackSuite {
    LoopbackSuite::start().unwrap_or_else(|e| panic!("the loopback suite did not start: {e}"))
}

/// The monitor address from the suite's seesaw.cfg.
fn monitor(suite: &LoopbackSuite) -> SocketAddr {
    let cfg = std::fs::read_to_string(suite.config_dir().join("seesaw.cfg")).expect("seesaw.cfg");
    cfg.lines()
        .skip_while(|l| l.trim() != "[ecu]")
        .find_map(|l| l.trim().strip_prefix("listen = "))
        .and_then(|a| a.parse().ok())
        .expect("[ecu] listen in seesaw.cfg")
}

fn scrape(addr: SocketAddr) -> Option<String> {
    let r = seesaw_lab::http::get(addr, "/metrics", Duration::from_secs(2)).ok()?;
    Some(String::from_utf8_lossy(&r.body).into_owned())
}

/// The value of the first sample whose line starts with `prefix` (name and labels).
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse().ok())
}

#[test]
fn metrics_carry_probe_latency_and_count_a_killed_engines_restart() {
    let suite = start();
    let ecu = monitor(&suite);
    // Both demo checks probe every second; their statistics reach the engine with the
    // transition batch or, at the latest, the 15 s full resync.
    let text = wait_for(
        "probe statistics in /metrics",
        Duration::from_secs(30),
        || {
            let text = scrape(ecu)?;
            let ok = sample(&text, "seesaw_check_probes_total{").is_some_and(|v| v >= 1.0)
                && text.contains(r#"seesaw_process_up{process="engine"} 1"#);
            ok.then_some(text)
        },
    )
    .expect("metrics with probe statistics");
    let count = sample(&text, "seesaw_check_duration_seconds_count{").expect("a histogram");
    let inf = text
        .lines()
        .find(|l| l.starts_with("seesaw_check_duration_seconds_bucket{le=\"+Inf\""))
        .and_then(|l| l.rsplit_once(' '))
        .and_then(|(_, v)| v.parse::<f64>().ok())
        .expect("a +Inf bucket");
    assert!(
        count >= 1.0 && inf == count,
        "count {count}, +Inf {inf}:\n{text}"
    );
    // Loopback HTTP probes: a few milliseconds at most, far below the 1 s timeout.
    let last = sample(&text, "seesaw_check_last_duration_seconds{").expect("last duration");
    assert!(
        last > 0.0 && last < 0.5,
        "last probe took {last} s:\n{text}"
    );
    assert!(
        text.contains(r#",result="failure"} 0"#),
        "healthy backends never failed a probe:\n{text}"
    );
    for p in ["ncc", "engine", "ha", "healthcheck", "ecu"] {
        assert!(
            text.contains(&format!("seesaw_process_up{{process=\"{p}\"}} 1")),
            "{p} not up:\n{text}"
        );
        assert!(
            text.contains(&format!(
                "seesaw_process_restarts_total{{process=\"{p}\"}} 0"
            )),
            "{p} restarted:\n{text}"
        );
    }

    // SIGKILL the engine: the ECU (which keeps running) reports it down, then back with one
    // restart, and the probe statistics return with the healthcheck's resync.
    let engine = suite.daemon_pids("engine");
    assert_eq!(engine.len(), 1, "one engine: {engine:?}");
    kill(Pid::from_raw(engine[0]), Signal::SIGKILL).expect("kill the engine");
    let text = wait_for(
        "the engine's restart in /metrics",
        Duration::from_secs(30),
        || {
            let text = scrape(ecu)?;
            let ok = text.contains(r#"seesaw_process_restarts_total{process="engine"} 1"#)
                && text.contains(r#"seesaw_process_up{process="engine"} 1"#)
                && sample(&text, "seesaw_check_probes_total{").is_some_and(|v| v >= 1.0);
            ok.then_some(text)
        },
    )
    .expect("restart counted");
    for p in ["ncc", "ha", "healthcheck", "ecu"] {
        assert!(
            text.contains(&format!(
                "seesaw_process_restarts_total{{process=\"{p}\"}} 0"
            )),
            "{p} restarted too:\n{text}"
        );
    }
}

#[test]
fn sigusr1_to_the_watchdog_makes_every_process_log_its_state() {
    let suite = start();
    let ecu = monitor(&suite);
    // Wait until the healthcheck has a verdict, so its counts are not all "unknown".
    wait_for("a healthy check", Duration::from_secs(15), || {
        scrape(ecu)?.contains("seesaw_check_healthy{").then_some(())
    })
    .expect("checks reported");
    let watchdog = suite.daemon_pids("watchdog");
    assert_eq!(watchdog.len(), 1, "one watchdog: {watchdog:?}");
    kill(Pid::from_raw(watchdog[0]), Signal::SIGUSR1).expect("SIGUSR1 to the watchdog");

    // Each process logs its own state in its own log; every line below is real state.
    let expect: &[(&str, &[&str])] = &[
        (
            "engine",
            &[
                "config generation 1",
                "data plane proxy",
                "last apply",
                "1 vservers: web@demo enabled: services 1/1 healthy (1 active), destinations 2/2 healthy",
                "0 overrides",
            ],
        ),
        (
            "healthcheck",
            &[
                "checks scheduled 2: healthy 2, unhealthy 0, unknown 0",
                "engine up",
                "last full resync",
            ],
        ),
        ("ha", &["state LEADER since", "no peer (single node)"]),
        (
            "ncc",
            &[
                "data plane proxy: 1 services, 2 destinations, VIPs served 1: 127.0.0.1",
                // Held on lo when the suite runs as root, "not managed" otherwise.
                "ncc vips",
                "no BGP",
            ],
        ),
        ("ecu", &["monitor http://"]),
    ];
    for (service, lines) in expect {
        let took = seesaw_lab::wait_until(
            &format!("{service}'s state dump"),
            Duration::from_secs(10),
            || {
                let log = suite.service_log(service);
                log.contains("SIGUSR1: state dump") && lines.iter().all(|l| log.contains(l))
            },
        )
        .unwrap_or_else(|e| {
            panic!(
                "{e}; wanted {lines:?} in seesaw_{service}.log:\n{}",
                suite.service_log(service)
            )
        });
        eprintln!("{service} dumped its state within {took:?}");
    }
    // The watchdog logs each service it supervises, with its restart count, in its own output
    // (captured by the harness as `procs/<n>-watchdog.stderr`).
    let wd = std::fs::read_dir(suite.dir().join("procs"))
        .expect("procs dir")
        .filter_map(Result::ok)
        .find(|e| {
            e.file_name()
                .to_string_lossy()
                .ends_with("-watchdog.stderr")
        })
        .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
        .expect("the watchdog's output");
    for service in ["ncc", "engine", "ha", "healthcheck", "ecu"] {
        assert!(
            wd.lines().any(|l| l.contains("state")
                && l.contains(&format!("service={service}"))
                && l.contains("restarts=0")),
            "no state line for {service} in the watchdog's output:\n{wd}"
        );
    }
}
