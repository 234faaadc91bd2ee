//! The unprivileged multi-process tier: the project's acceptance checks, automated, against the
//! real binaries on loopback (VIP 127.0.0.1:P, backends 127.0.0.2:P and 127.0.0.3:P, the whole
//! suite under `seesaw_watchdog`). Every wait is bounded; every test prints all daemon logs if it
//! fails. Needs `cargo build --workspace --bins` first.
#![allow(
    clippy::print_stderr,
    reason = "measured times are reported to the person running the tests"
)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_lab::http::{self, KeepAlive};
use seesaw_lab::shell_view::DestinationRow;
use seesaw_lab::{LoopbackSuite, wait_for, wait_until};

/// Health check interval (1 s) × (retries (1) + 1) + 1 s: the target for noticing a dead backend.
const DETECT_TARGET: Duration = Duration::from_secs(3);
/// How long the test polls for detection (the target plus slack for a loaded machine).
const DETECT_WITHIN: Duration = Duration::from_secs(5);

fn start() -> LoopbackSuite {
    LoopbackSuite::start().unwrap_or_else(|e| panic!("the loopback suite did not start: {e}"))
}

/// Sends `n` sequential requests through the VIP; panics on the first failure. Returns how many
/// each backend answered.
fn requests(suite: &LoopbackSuite, n: usize) -> BTreeMap<String, usize> {
    let mut answered = BTreeMap::new();
    for i in 0..n {
        let r = suite
            .get()
            .unwrap_or_else(|e| panic!("request {i} of {n} through {} failed: {e}", suite.vip()));
        assert_eq!(r.status, 200, "request {i} of {n}: {r:?}");
        *answered.entry(r.text()).or_insert(0) += 1;
    }
    answered
}

/// A client sending a request through the VIP every 20 ms until stopped: what it saw is the
/// judgement of a fault (failed requests, from outside), not the daemons' view of themselves.
struct Client {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(usize, Vec<String>)>,
}

impl Client {
    fn start(suite: &LoopbackSuite) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let vip = suite.vip();
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut ok = 0usize;
            let mut failures = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                match http::get(vip, "/", Duration::from_secs(2)) {
                    Ok(r) if r.status == 200 => ok += 1,
                    Ok(r) => failures.push(format!("status {}", r.status)),
                    Err(e) => failures.push(e.to_string()),
                }
                thread::sleep(Duration::from_millis(20));
            }
            (ok, failures)
        });
        // Let the client establish a baseline before the fault.
        thread::sleep(Duration::from_millis(200));
        Self { stop, thread }
    }

    /// Stops the client: (requests answered 200, every failure).
    fn finish(self) -> (usize, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("client thread")
    }
}

/// Whether `word` occurs in `text` as a whole identifier (so `port` does not match `report`).
fn mentions_word(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        !text[..i].chars().next_back().is_some_and(ident)
            && !text[i + word.len()..].chars().next().is_some_and(ident)
    })
}

fn row_of<'a>(
    suite: &LoopbackSuite,
    rows: &'a [DestinationRow],
    i: usize,
) -> Option<&'a DestinationRow> {
    let b = &suite.backends()[i];
    rows.iter()
        .find(|r| r.is(&b.fqdn, &b.addr.ip().to_string()))
}

#[test]
fn twenty_requests_reach_both_backends() {
    let suite = start();
    let answered = requests(&suite, 20);
    for b in suite.backends() {
        assert!(
            answered.contains_key(&b.name),
            "{} never answered: {answered:?}",
            b.name
        );
    }
    assert_eq!(answered.values().sum::<usize>(), 20, "{answered:?}");
}

#[test]
fn shell_lists_the_vserver_and_both_backends_healthy() {
    let suite = start();
    let out = suite.shell("show vservers").expect("shell runs");
    assert!(out.status.success(), "show vservers failed: {out:?}");
    assert!(
        out.stdout.contains("web@demo"),
        "vserver not listed:\n{}",
        out.combined()
    );

    let (out, rows) = suite.destinations().expect("shell runs");
    assert!(
        out.status.success(),
        "show vservers web@demo failed: {out:?}"
    );
    for (i, b) in suite.backends().iter().enumerate() {
        let row = row_of(&suite, &rows, i)
            .unwrap_or_else(|| panic!("{} missing from:\n{}", b.fqdn, out.stdout));
        assert!(
            row.enabled && row.healthy,
            "{} not enabled and healthy: {}",
            b.fqdn,
            row.line
        );
    }
}

#[test]
fn a_dead_backend_is_marked_unhealthy_and_traffic_moves_to_the_other() {
    let mut suite = start();
    suite.kill_backend(0).expect("kill be1");
    let took = wait_until("the shell to show be1 unhealthy", DETECT_WITHIN, || {
        suite
            .destinations()
            .ok()
            .and_then(|(_, rows)| row_of(&suite, &rows, 0).map(|r| !r.healthy))
            .unwrap_or(false)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "be1 shown unhealthy {took:?} after it was killed (target {DETECT_TARGET:?}{})",
        if took > DETECT_TARGET { ", MISSED" } else { "" }
    );
    let answered = requests(&suite, 20);
    assert_eq!(
        answered.get("be2"),
        Some(&20),
        "not all answered by be2: {answered:?}"
    );
}

/// A node without a peer has nothing to fail over to: its ha process dying (kill -9, restarted
/// by the watchdog) or the engine stalling past the HA report timeout (SIGSTOP 10 s) must not
/// withdraw the VIP or its service. Judged by a client sending requests all along.
/// What `service` logged since its log read `before`. The watchdog appends to the same file, or
/// (Seesaw style) points the name at a new file per start; either way only what the new instance
/// wrote counts.
fn log_since(suite: &LoopbackSuite, service: &str, before: &str) -> String {
    let now = suite.service_log(service);
    now.strip_prefix(before)
        .map_or_else(|| now.clone(), str::to_owned)
}

/// The pid of the one `seesaw_<service>` with the suite's run dir; there must be exactly one.
fn only_daemon(suite: &LoopbackSuite, service: &str) -> i32 {
    let pids = suite.daemon_pids(service);
    assert_eq!(
        pids.len(),
        1,
        "expected one seesaw_{service} with our run dir: {pids:?}"
    );
    pids[0]
}

#[test]
fn ha_death_and_an_engine_stall_on_a_node_without_peer_do_not_disturb_traffic() {
    let suite = start();
    let ha = only_daemon(&suite, "ha");
    let engine = only_daemon(&suite, "engine");
    let ncc_log_before = suite.service_log("ncc");
    let client = Client::start(&suite);

    kill(Pid::from_raw(ha), Signal::SIGKILL).expect("kill -9 the ha process");
    let killed_at = Instant::now();
    wait_for("a new seesaw_ha", Duration::from_secs(10), || {
        suite.daemon_pids("ha").into_iter().find(|&p| p != ha)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ha_back = killed_at.elapsed();
    // Well past the engine's HA report timeout (3 s) with the ha process's reports stalled.
    kill(Pid::from_raw(engine), Signal::SIGSTOP).expect("SIGSTOP the engine");
    thread::sleep(Duration::from_secs(10));
    kill(Pid::from_raw(engine), Signal::SIGCONT).expect("SIGCONT the engine");
    thread::sleep(Duration::from_secs(2));
    let (ok, failures) = client.finish();

    eprintln!("ha restarted after {ha_back:?}; engine stalled 10 s; {ok} requests ok");
    assert!(ok > 0, "the client sent no successful request");
    assert!(
        failures.is_empty(),
        "{} requests failed: {failures:?}",
        failures.len()
    );
    let fresh = log_since(&suite, "ncc", &ncc_log_before);
    let removals: Vec<&str> = fresh
        .lines()
        .filter(|l| l.contains("DeleteService") || l.contains("vip down") || l.contains("removed"))
        .collect();
    assert!(removals.is_empty(), "ncc withdrew state: {removals:#?}");
}

#[test]
fn engine_restart_does_not_disturb_traffic() {
    let suite = start();
    let old = only_daemon(&suite, "engine");
    let client = Client::start(&suite);

    let log_before = suite.service_log("engine");
    kill(Pid::from_raw(old), Signal::SIGKILL).expect("kill -9 the engine");
    let killed_at = Instant::now();
    let new = wait_for(
        "a new seesaw_engine process",
        Duration::from_secs(5),
        || suite.daemon_pids("engine").into_iter().find(|&p| p != old),
    );
    let restarted_after = killed_at.elapsed();
    let applied = wait_until(
        "the new engine to log changes=0",
        Duration::from_secs(10),
        || {
            log_since(&suite, "engine", &log_before)
                .lines()
                .any(|l| l.contains("changes=0"))
        },
    );
    // Keep the client going a little past the new engine's first apply.
    thread::sleep(Duration::from_millis(500));
    let (ok, failures) = client.finish();

    let new = new.unwrap_or_else(|e| panic!("{e}"));
    eprintln!(
        "engine {old} killed; new engine {new} seen after {restarted_after:?}; {ok} requests ok"
    );
    applied.unwrap_or_else(|e| panic!("{e}"));
    assert!(ok > 0, "the client sent no successful request");
    assert!(
        failures.is_empty(),
        "{} requests failed during the engine restart: {failures:?}",
        failures.len()
    );
}

#[test]
fn reload_changes_weight_keeps_connections_and_refuses_a_broken_file() {
    let mut suite = start();
    let mut conn =
        KeepAlive::connect(suite.vip(), Duration::from_secs(5)).expect("connect to the VIP");
    let first = conn
        .get("/")
        .expect("first request on the kept-alive connection");
    assert_eq!(first.status, 200, "{first:?}");

    let mut cluster = suite.cluster().clone();
    cluster.backends[1].1 = 3;
    suite.write_cluster(cluster).expect("write cluster.pb");
    let out = suite.shell("config reload").expect("shell runs");
    assert!(
        out.status.success(),
        "config reload failed:\n{}",
        out.combined()
    );

    let second = conn
        .get("/")
        .expect("the kept-alive connection still works after the reload");
    assert_eq!(second.status, 200, "{second:?}");

    wait_until(
        "show vservers to show be2 with weight 3",
        Duration::from_secs(3),
        || {
            suite
                .destinations()
                .ok()
                .and_then(|(_, rows)| row_of(&suite, &rows, 1).map(|r| r.weight == "3"))
                .unwrap_or(false)
        },
    )
    .unwrap_or_else(|e| {
        let shown = suite
            .destinations()
            .map(|(o, _)| o.combined())
            .unwrap_or_default();
        panic!("{e}; last output:\n{shown}")
    });

    let port = suite.vip().port();
    let valid = suite.cluster().render();
    let broken = valid.replace(
        &format!("    port: {port}\n"),
        "    port: 0\n    bogus_knob: 1\n",
    );
    assert_ne!(broken, valid, "the port line was not found in cluster.pb");
    suite
        .write_cluster_text(&broken)
        .expect("write broken cluster.pb");
    let out = suite.shell("config reload").expect("shell runs");
    let text = out.combined();
    assert!(
        !out.status.success(),
        "a broken cluster.pb was accepted:\n{text}"
    );
    assert!(
        mentions_word(&text, "port"),
        "the port error is not reported:\n{text}"
    );
    assert!(
        text.contains("bogus_knob"),
        "the unknown field is not reported:\n{text}"
    );

    let answered = requests(&suite, 20);
    assert_eq!(answered.values().sum::<usize>(), 20);
}

/// What the suite writes is not world-readable (logs can hold secrets from configs), and a
/// daemon restarted by the watchdog recreates its socket with the group and mode an operator
/// gave the old one. Group changes need root (skipped with a message otherwise).
#[test]
fn files_are_private_and_a_restarted_daemon_keeps_its_socket_group_and_mode() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let suite = start();
    let logs: Vec<_> = std::fs::read_dir(suite.log_dir())
        .expect("log dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .collect();
    assert!(!logs.is_empty());
    for p in &logs {
        let mode = std::fs::metadata(p).expect("stat").mode() & 0o777;
        assert_eq!(mode & 0o007, 0, "{} is {mode:o}", p.display());
    }
    let sock = suite.run_dir().join("engine/engine.sock");
    std::fs::set_permissions(&sock, std::fs::Permissions::from_mode(0o660)).expect("chmod");
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::chown(&sock, None, Some(4242)).expect("chgrp");
    } else {
        eprintln!("SKIPPED (group part): needs root to chgrp the socket");
    }
    let old = suite.daemon_pids("engine")[0];
    kill(Pid::from_raw(old), Signal::SIGKILL).expect("kill -9 the engine");
    wait_until(
        "a restarted engine serving its socket",
        Duration::from_secs(10),
        || {
            suite.daemon_pids("engine").iter().any(|&p| p != old)
                && std::os::unix::net::UnixStream::connect(&sock).is_ok()
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let m = std::fs::metadata(&sock).expect("stat socket");
    assert_eq!(m.mode() & 0o777, 0o660);
    if root {
        assert_eq!(m.gid(), 4242, "the socket's group survives the restart");
    }
}

/// The engine learns at once that ncc restarted (ncc's watch stream ends when it dies, and the
/// next one brings a new boot id) and sends it the desired state: on the proxy plane, whose
/// listeners die with ncc, new requests work again as soon as the watchdog has restarted ncc,
/// not at the engine's next 30 s reconcile.
#[test]
fn a_restarted_ncc_gets_the_desired_state_at_once() {
    let suite = start();
    let old = only_daemon(&suite, "ncc");
    requests(&suite, 3);
    let engine_log_before = suite.service_log("engine");
    kill(Pid::from_raw(old), Signal::SIGKILL).expect("kill -9 ncc");
    let killed_at = Instant::now();
    let new = wait_for("a new seesaw_ncc", Duration::from_secs(15), || {
        suite.daemon_pids("ncc").into_iter().find(|&p| p != old)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let ncc_back = killed_at.elapsed();
    wait_until("a request answered again", Duration::from_secs(20), || {
        matches!(http::get(suite.vip(), "/", Duration::from_millis(500)), Ok(r) if r.status == 200)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let served_again = killed_at.elapsed();
    eprintln!(
        "ncc {} killed; new ncc {new} seen after {ncc_back:?}; requests answered again after {served_again:?}",
        old
    );
    // The proxy relay kept serving through ncc's restart; the engine must still notice the new
    // ncc at once (its Watch stream) and re-send the desired state.
    let noticed = wait_until(
        "the engine to notice the restart",
        Duration::from_secs(5),
        || {
            log_since(&suite, "engine", &engine_log_before)
                .contains("ncc restarted: sending it the desired state now")
        },
    );
    let noticed_after = killed_at.elapsed();
    assert!(
        noticed.is_ok(),
        "the engine did not notice the restart:\n{}",
        suite.service_log("engine")
    );
    assert!(
        noticed_after < ncc_back + Duration::from_secs(1),
        "the engine noticed the new ncc {:?} after it started",
        noticed_after - ncc_back
    );
    assert!(
        served_again < ncc_back + Duration::from_secs(2),
        "traffic came back {:?} after ncc did",
        served_again - ncc_back
    );
}
