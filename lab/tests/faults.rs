//! The fault campaign: every Seesaw process, on the proxy plane (loopback suite), on the
//! nftables plane (namespace lab, root) and on the IPVS plane (the same namespace lab inside the
//! kernel lab, `seesaw_lab::vm`: this host's kernel has no IPVS), is killed with -9 and,
//! separately, stopped for 10 s with SIGSTOP, under load: two threads of new connections (≥ 200
//! per second together; ≥ 80 in the emulated VM) and eight keep-alive connections. Judged from
//! the client's side: failed requests, broken established connections, and the data plane's
//! state (nftables: `nft list ruleset` without counters; IPVS: `ipvsadm -Ln` without connection
//! counts, plus the ruleset; proxy: the relay's services and destinations) before and after.
//!
//! Targets: 0 failed, 0 broken, state unchanged, for every process but the proxy relay
//! (`seesaw_proxy`), which *is* the proxy plane's data path: its own death or stall may break its
//! connections, and new requests must work again within 1 s of the fault's end. A killed
//! watchdog is started again (as systemd does) and must adopt the running children.
//!
//! Prints the table that `bench/RESULTS.md` records. Run it with
//! `cargo test -p seesaw-lab --test faults -- --nocapture`; the nftables half needs root and
//! `nft`, the IPVS half root, QEMU and the kernel lab's packages, and each says why it skips
//! otherwise.
#![allow(
    clippy::print_stderr,
    reason = "the campaign's table is reported to the person running the tests"
)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_lab::http::{self, KeepAlive};
use seesaw_lab::nat_lab::NatLab;
use seesaw_lab::{Lab, LoopbackSuite, ProcId, procs, vm, wait_for};
use seesaw_proto::ncc as pb;

/// Every process, in the order the campaign hits them.
const PROCESSES: [&str; 7] = [
    "healthcheck",
    "ecu",
    "ha",
    "engine",
    "ncc",
    "proxy",
    "watchdog",
];
/// How long a SIGSTOP lasts.
const STALL: Duration = Duration::from_secs(10);
/// Traffic watched after a fault ends, before the row is closed.
const SETTLE: Duration = Duration::from_secs(2);
/// Every client request gives up after this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Keep-alive connections.
const KEEP_ALIVE: usize = 8;
/// The relay's allowance: new requests work again this soon after its fault ends.
const RELAY_BACK_WITHIN: Duration = Duration::from_secs(1);

// === load ===

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    /// Of `ok`, requests on new connections.
    new_ok: AtomicU64,
    /// New connections (or requests on them) that failed.
    failed: AtomicU64,
    /// Requests on an established keep-alive connection that failed.
    broken: AtomicU64,
    /// When requests failed, and why (bounded).
    failures: Mutex<Vec<(Instant, String)>>,
    /// When a new-connection request last succeeded.
    last_ok: Mutex<Option<Instant>>,
}

impl Counts {
    fn fail(&self, broken: bool, why: String) {
        if broken {
            self.broken.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
        let mut f = self.failures.lock().expect("failures lock");
        if f.len() < 10_000 {
            f.push((Instant::now(), why));
        }
    }

    fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.broken.load(Ordering::Relaxed),
        )
    }
}

/// The client: new connections from two threads, keep-alive connections from a third, each
/// thread inside `netns` when given. Bounded: stops when told, or after a million requests.
struct Load {
    stop: Arc<AtomicBool>,
    counts: Arc<Counts>,
    threads: Vec<thread::JoinHandle<()>>,
    started: Instant,
}

fn enter(netns: Option<&str>) {
    if let Some(ns) = netns {
        seesaw_lab::netns::enter(ns).expect("entering the client namespace");
    }
}

impl Load {
    fn start(vip: SocketAddr, netns: Option<String>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let counts = Arc::new(Counts::default());
        let mut threads = Vec::new();
        for _ in 0..2 {
            let (stop, counts, ns) = (stop.clone(), counts.clone(), netns.clone());
            threads.push(thread::spawn(move || {
                enter(ns.as_deref());
                for _ in 0..1_000_000 {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    match http::get(vip, "/", REQUEST_TIMEOUT) {
                        Ok(r) if r.status == 200 => {
                            counts.ok.fetch_add(1, Ordering::Relaxed);
                            counts.new_ok.fetch_add(1, Ordering::Relaxed);
                            *counts.last_ok.lock().expect("lock") = Some(Instant::now());
                        }
                        Ok(r) => counts.fail(false, format!("new: status {}", r.status)),
                        Err(e) => counts.fail(false, format!("new: {e}")),
                    }
                    thread::sleep(Duration::from_millis(4));
                }
            }));
        }
        let (stop2, counts2) = (stop.clone(), counts.clone());
        threads.push(thread::spawn(move || {
            enter(netns.as_deref());
            let mut conns: Vec<Option<KeepAlive>> = (0..KEEP_ALIVE).map(|_| None).collect();
            for _ in 0..1_000_000 {
                if stop2.load(Ordering::Relaxed) {
                    return;
                }
                for c in &mut conns {
                    let established = c.is_some();
                    if c.is_none() {
                        match KeepAlive::connect(vip, REQUEST_TIMEOUT) {
                            Ok(k) => *c = Some(k),
                            Err(e) => {
                                counts2.fail(false, format!("keep-alive connect: {e}"));
                                continue;
                            }
                        }
                    }
                    let Some(k) = c.as_mut() else { continue };
                    match k.get("/") {
                        Ok(r) if r.status == 200 => {
                            counts2.ok.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(r) => {
                            counts2.fail(established, format!("keep-alive: status {}", r.status));
                            *c = None;
                        }
                        Err(e) => {
                            counts2.fail(established, format!("keep-alive: {e}"));
                            *c = None;
                        }
                    }
                }
                thread::sleep(Duration::from_millis(20));
            }
        }));
        // A baseline before the first fault.
        thread::sleep(Duration::from_millis(500));
        Self {
            stop,
            counts,
            threads,
            started: Instant::now(),
        }
    }

    /// Stops the load: (requests answered, of them on new connections, over how long).
    fn finish(self) -> (u64, u64, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        (
            self.counts.ok.load(Ordering::Relaxed),
            self.counts.new_ok.load(Ordering::Relaxed),
            self.started.elapsed(),
        )
    }
}

// === targets ===

/// A running suite the campaign can hit.
trait Target {
    fn plane(&self) -> &'static str;
    /// The least new-connection rate that makes a run worth judging.
    fn min_rate(&self) -> f64 {
        200.0
    }
    fn vip(&self) -> SocketAddr;
    fn netns(&self) -> Option<String>;
    fn pids(&self, process: &str) -> Vec<i32>;
    fn kill_watchdog(&mut self);
    fn restart_watchdog(&mut self);
    fn run_dir(&self) -> PathBuf;
    /// The data plane's state, without counters.
    fn state(&self) -> String;
}

struct Loopback(LoopbackSuite);

impl Target for Loopback {
    fn plane(&self) -> &'static str {
        "proxy"
    }
    fn vip(&self) -> SocketAddr {
        self.0.vip()
    }
    fn netns(&self) -> Option<String> {
        None
    }
    fn pids(&self, process: &str) -> Vec<i32> {
        if process == "watchdog" {
            return self
                .0
                .watchdog_pid()
                .and_then(|p| i32::try_from(p).ok())
                .into_iter()
                .collect();
        }
        self.0.daemon_pids(process)
    }
    fn kill_watchdog(&mut self) {
        self.0.kill_watchdog().expect("kill -9 the watchdog");
    }
    fn restart_watchdog(&mut self) {
        self.0.restart_watchdog().expect("start a new watchdog");
    }
    fn run_dir(&self) -> PathBuf {
        self.0.run_dir()
    }
    fn state(&self) -> String {
        relay_state(&self.0.run_dir())
    }
}

/// The relay's services and destinations, as text (`GetState` on its socket).
fn relay_state(run: &std::path::Path) -> String {
    let sock = seesaw_common::paths::proxy_socket(run);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let mut c = pb::ncc_client::NccClient::new(seesaw_common::uds::channel(
            &sock,
            Duration::from_secs(5),
        ));
        match c.get_state(pb::Empty {}).await {
            Ok(r) => {
                let mut lines: Vec<String> = r
                    .into_inner()
                    .services
                    .iter()
                    .map(|s| {
                        let mut d: Vec<String> = s
                            .destinations
                            .iter()
                            .map(|d| format!("{}:{} w{}", d.address, d.port, d.weight))
                            .collect();
                        d.sort();
                        format!("{}:{} {:?}", s.address, s.port, d)
                    })
                    .collect();
                lines.sort();
                lines.join("\n")
            }
            Err(e) => format!("relay unreadable: {}", e.message()),
        }
    })
}

struct Netns {
    lab: Lab,
    watchdog: ProcId,
    /// `nftables`, or `ipvs` (inside the kernel lab).
    plane: &'static str,
}

impl Target for Netns {
    fn plane(&self) -> &'static str {
        self.plane
    }
    fn min_rate(&self) -> f64 {
        // The kernel lab is an emulated machine (QEMU TCG): everything runs several times
        // slower than on the host, the client included.
        if self.plane == "ipvs" { 80.0 } else { 200.0 }
    }
    fn vip(&self) -> SocketAddr {
        seesaw_lab::nat_lab::vip()
    }
    fn netns(&self) -> Option<String> {
        Some(self.lab.ns("client").expect("client").to_owned())
    }
    fn pids(&self, process: &str) -> Vec<i32> {
        if process == "watchdog" {
            return i32::try_from(self.lab.pid(self.watchdog))
                .ok()
                .into_iter()
                .collect();
        }
        procs::find_daemon(
            &format!("seesaw_{process}"),
            seesaw_lab::netns::MARKER_VAR,
            self.lab.id(),
        )
    }
    fn kill_watchdog(&mut self) {
        self.lab.kill(self.watchdog).expect("kill -9 the watchdog");
    }
    fn restart_watchdog(&mut self) {
        self.watchdog = self
            .lab
            .spawn_suite("lb1")
            .unwrap_or_else(|e| panic!("starting a new watchdog: {e}"));
    }
    fn run_dir(&self) -> PathBuf {
        self.lab.run_dir("lb1").expect("lb1")
    }
    fn state(&self) -> String {
        let out = self
            .lab
            .exec(
                "lb1",
                "nft",
                &["list", "ruleset"],
                &[],
                Duration::from_secs(20),
            )
            .expect("nft list ruleset");
        let nft = without_counters(&out.stdout);
        if self.plane != "ipvs" {
            return nft;
        }
        let out = self
            .lab
            .exec("lb1", "ipvsadm", &["-Ln"], &[], Duration::from_secs(20))
            .expect("ipvsadm -Ln");
        assert!(out.status.success(), "ipvsadm -Ln: {}", out.combined());
        format!("{}\n{nft}", without_conn_counts(&out.stdout))
    }
}

/// `ipvsadm -Ln` without the per-destination connection counts (services, destinations,
/// forwarding methods and weights stay).
fn without_conn_counts(text: &str) -> String {
    text.lines()
        .map(|l| {
            let t: Vec<&str> = l.split_whitespace().collect();
            if t.first() == Some(&"->") {
                t.iter().take(4).copied().collect::<Vec<_>>().join(" ")
            } else {
                t.join(" ")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// `nft list ruleset` text without counter values.
fn without_counters(text: &str) -> String {
    let mut out = Vec::new();
    let mut skip = false;
    for tok in text.split_whitespace() {
        if skip {
            skip = false;
            continue;
        }
        if tok == "packets" || tok == "bytes" {
            skip = true;
            continue;
        }
        out.push(tok);
    }
    out.join(" ")
}

// === the campaign ===

struct Row {
    process: &'static str,
    fault: &'static str,
    plane: &'static str,
    failed: u64,
    broken: u64,
    /// kill -9: until a new process (watchdog: the new watchdog adopted every child); relay:
    /// until new requests worked again.
    restart: Option<Duration>,
    state_same: bool,
    note: String,
}

fn signal(pid: i32, sig: Signal) {
    kill(Pid::from_raw(pid), sig).unwrap_or_else(|e| panic!("{sig} to {pid}: {e}"));
}

/// Every service's pid, from the watchdog's status file, once every one runs and is ready.
fn adopted_pids(run: &std::path::Path) -> Option<Vec<(String, i64)>> {
    let text = std::fs::read_to_string(run.join("watchdog/status.json")).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let services = v["services"].as_array()?;
    services
        .iter()
        .map(|s| {
            (s["ready"] == true).then(|| {
                (
                    s["name"].as_str().unwrap_or_default().to_owned(),
                    s["pid"].as_i64().unwrap_or(0),
                )
            })
        })
        .collect()
}

fn hit(t: &mut dyn Target, load: &Load, process: &'static str, fault: &'static str) -> Row {
    let before_state = t.state();
    let pids = t.pids(process);
    assert_eq!(
        pids.len(),
        1,
        "{}: expected one {process}: {pids:?}",
        t.plane()
    );
    let pid = pids[0];
    let all_before: Vec<(&str, Vec<i32>)> = PROCESSES.iter().map(|p| (*p, t.pids(p))).collect();
    let (_, failed0, broken0) = load.counts.snapshot();
    let at = Instant::now();
    let mut restart = None;
    let mut note = String::new();
    match fault {
        "kill -9" if process == "watchdog" => {
            t.kill_watchdog();
            // systemd's RestartSec.
            thread::sleep(Duration::from_millis(500));
            t.restart_watchdog();
            let run = t.run_dir();
            let _ = std::fs::remove_file(run.join("watchdog/status.json"));
            wait_for(
                "the new watchdog to report every service ready",
                Duration::from_secs(30),
                || adopted_pids(&run),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            restart = Some(at.elapsed());
            let after: Vec<(&str, Vec<i32>)> = PROCESSES
                .iter()
                .filter(|p| **p != "watchdog")
                .map(|p| (*p, t.pids(p)))
                .collect();
            let before: Vec<(&str, Vec<i32>)> = all_before
                .iter()
                .filter(|(p, _)| *p != "watchdog")
                .cloned()
                .collect();
            if after == before {
                note = "children adopted".to_owned();
            } else {
                note = format!("children changed: {before:?} -> {after:?}");
            }
        }
        "kill -9" => {
            signal(pid, Signal::SIGKILL);
            let new = wait_for(
                &format!("a new seesaw_{process}"),
                Duration::from_secs(30),
                || t.pids(process).into_iter().find(|&p| p != pid),
            )
            .unwrap_or_else(|e| panic!("{e}"));
            restart = Some(at.elapsed());
            let _ = new;
        }
        _ => {
            signal(pid, Signal::SIGSTOP);
            thread::sleep(STALL);
            signal(pid, Signal::SIGCONT);
        }
    }
    let fault_end = Instant::now();
    thread::sleep(SETTLE);
    if process == "proxy" && t.plane() == "proxy" {
        // The relay's allowance: when did new requests work again?
        let last_fail = load
            .counts
            .failures
            .lock()
            .expect("lock")
            .iter()
            .filter(|(when, why)| *when >= at && why.starts_with("new"))
            .map(|(when, _)| *when)
            .max();
        // kill -9: from the kill (the restart is part of the outage); SIGSTOP: from SIGCONT.
        let from = if fault == "kill -9" { at } else { fault_end };
        restart = Some(last_fail.map_or(Duration::ZERO, |w| w.saturating_duration_since(from)));
        note = "the relay is the data path: connections may break".to_owned();
    }
    let (_, failed1, broken1) = load.counts.snapshot();
    let after_state = t.state();
    let state_same = after_state == before_state;
    if !state_same && note.is_empty() {
        note = "state changed".to_owned();
    }
    let row = Row {
        process,
        fault,
        plane: t.plane(),
        failed: failed1 - failed0,
        broken: broken1 - broken0,
        restart,
        state_same,
        note,
    };
    if !state_same {
        eprintln!("--- state before ---\n{before_state}\n--- after ---\n{after_state}");
    }
    if row.failed + row.broken > 0 {
        let f = load.counts.failures.lock().expect("lock");
        let recent: Vec<&String> = f
            .iter()
            .filter(|(w, _)| *w >= at)
            .map(|(_, why)| why)
            .take(5)
            .collect();
        eprintln!(
            "{} {} on {}: first failures {recent:?}",
            row.fault, row.process, row.plane
        );
    }
    eprintln!(
        "| {} | {} | {} | {} | {} | {} | {} |",
        row.fault,
        row.process,
        row.plane,
        row.failed,
        row.broken,
        row.restart
            .map_or_else(|| "-".to_owned(), |d| format!("{} ms", d.as_millis())),
        row.note
    );
    row
}

/// The two campaigns take turns: each one's load and timing must not share the machine.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn campaign(t: &mut dyn Target) -> Vec<Row> {
    let load = Load::start(t.vip(), t.netns());
    let mut rows = Vec::new();
    eprintln!("| fault | process | plane | failed | broken | restart | note |");
    eprintln!("|---|---|---|---|---|---|---|");
    for process in PROCESSES {
        for fault in ["kill -9", "SIGSTOP 10 s"] {
            rows.push(hit(t, &load, process, fault));
        }
    }
    let (ok, new_ok, took) = load.finish();
    let new_rate = new_ok as f64 / took.as_secs_f64();
    eprintln!(
        "{}: {ok} requests answered in {:.0} s, {new_ok} of them on new connections \
         ({new_rate:.0} new connections/s)",
        t.plane(),
        took.as_secs_f64()
    );
    assert!(
        new_rate >= t.min_rate(),
        "the load was too light to judge: {new_rate:.0} new connections/s (at least {} wanted)",
        t.min_rate()
    );
    rows
}

fn judge(rows: &[Row]) {
    let mut bad = Vec::new();
    for r in rows {
        let relay_on_proxy = r.process == "proxy" && r.plane == "proxy";
        if relay_on_proxy {
            if r.restart.is_some_and(|d| d > RELAY_BACK_WITHIN) || !r.state_same {
                bad.push(format!(
                    "{} {} on {}: new requests back after {:?}, state same {}",
                    r.fault, r.process, r.plane, r.restart, r.state_same
                ));
            }
            continue;
        }
        if r.failed > 0 || r.broken > 0 || !r.state_same || r.note.contains("changed") {
            bad.push(format!(
                "{} {} on {}: {} failed, {} broken, state same {}, {}",
                r.fault, r.process, r.plane, r.failed, r.broken, r.state_same, r.note
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "faults that touched traffic:\n{}",
        bad.join("\n")
    );
}

#[test]
fn every_process_killed_or_stalled_on_the_proxy_plane() {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let suite =
        LoopbackSuite::start().unwrap_or_else(|e| panic!("the loopback suite did not start: {e}"));
    let mut t = Loopback(suite);
    let rows = campaign(&mut t);
    judge(&rows);
}

fn can_run_nftables() -> bool {
    seesaw_lab::require_nft("the nftables fault campaign")
}

#[test]
fn every_process_killed_or_stalled_on_the_nftables_plane() {
    if !can_run_nftables() {
        return;
    }
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let nat = NatLab::start("nftables").unwrap_or_else(|e| panic!("starting the lab: {e}"));
    let mut t = Netns {
        lab: nat.lab,
        watchdog: nat.watchdog,
        plane: "nftables",
    };
    let rows = campaign(&mut t);
    judge(&rows);
}

/// The IPVS half runs inside the kernel lab (this host's kernel has no IPVS): one boot runs
/// `guest_every_process_killed_or_stalled_on_the_ipvs_plane` there.
#[test]
fn every_process_killed_or_stalled_on_the_ipvs_plane() {
    if !vm::host_can_boot() {
        return;
    }
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    vm::run_guest_tests(
        "guest_every_process_killed_or_stalled_on_the_ipvs_plane",
        Duration::from_secs(1500),
    );
}

#[test]
#[ignore = "runs inside the kernel lab (every_process_killed_or_stalled_on_the_ipvs_plane boots it)"]
fn guest_every_process_killed_or_stalled_on_the_ipvs_plane() {
    if !(vm::in_guest() && vm::ipvs_here()) {
        eprintln!("skipping: runs inside the kernel lab only");
        return;
    }
    let nat = NatLab::start("ipvs").unwrap_or_else(|e| panic!("starting the lab: {e}"));
    let mut t = Netns {
        lab: nat.lab,
        watchdog: nat.watchdog,
        plane: "ipvs",
    };
    // The state compared is real: the service with its Masq destinations in IPVS, and the
    // firewall table's NAT source rule.
    let state = t.state();
    assert!(
        state.contains("TCP 198.51.100.1:80 rr")
            && state.matches("Masq 1").count() == 2
            && state.contains("table inet seesaw_ipvs")
            && state.contains("masquerade"),
        "{state}"
    );
    let rows = campaign(&mut t);
    judge(&rows);
}
