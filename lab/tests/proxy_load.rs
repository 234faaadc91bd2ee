//! Hot reconfiguration under load, end to end: `seesaw_ncc` (proxy plane, unprivileged, relaying
//! through `seesaw_proxy`) driven
//! directly over its gRPC socket takes 1,000 applies — weight changes and a spare backend added
//! and removed on a TCP and a UDP service, and scheduler changes on a TCP service whose backends
//! never change — while keep-alive TCP connections, fresh TCP connections and UDP flows run
//! through every service on loopback. Asserted, with counts in the messages: every apply
//! succeeds, no connection fails, no established connection is reset or answered wrongly, no
//! UDP request goes unanswered and no UDP flow moves to another backend. Bounded: 1,000 applies
//! within [`APPLY_WITHIN`], traffic loops stop right after, every socket has a timeout.
//! Needs `cargo build --workspace --bins` first (as every lab test; `cargo test --workspace`
//! builds them).
#![allow(
    clippy::print_stderr,
    reason = "apply latencies and traffic counts are reported to the person running the tests"
)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use seesaw_proto::ncc as pb;

/// Applies made under load.
const APPLIES: usize = 1_000;
/// The applies must be done within this (debug build on a loaded 2-core machine).
const APPLY_WITHIN: Duration = Duration::from_secs(40);
/// Every client socket read or write gives up after this.
const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the built binary `name` on config dir `cfg` and run dir `run`, its stderr to `log`.
fn spawn_daemon(name: &str, cfg: &Path, run: &Path, log: &Path) -> Child {
    let bin = seesaw_lab::bins::binary(name)
        .unwrap_or_else(|e| panic!("{e} (run `cargo build --workspace --bins`)"));
    Command::new(bin)
        .arg("--config-dir")
        .arg(cfg)
        .arg("--run-dir")
        .arg(run)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log file"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {name}: {e}"))
}

/// The ncc process; killed on drop, its log printed if the test is failing.
struct Ncc {
    child: Child,
    relay: Child,
    log: PathBuf,
    relay_log: PathBuf,
    sock: PathBuf,
    _dir: tempfile::TempDir,
}

impl Ncc {
    fn start() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let cfg = dir.path().join("cfg");
        let run = dir.path().join("run");
        std::fs::create_dir_all(&cfg).expect("config dir");
        std::fs::write(
            cfg.join("seesaw.cfg"),
            "[cluster]\nname = load\n[dataplane]\nkind = proxy\n",
        )
        .expect("seesaw.cfg");
        let relay_log = dir.path().join("proxy.log");
        let relay = spawn_daemon("seesaw_proxy", &cfg, &run, &relay_log);
        let log = dir.path().join("ncc.log");
        let child = spawn_daemon("seesaw_ncc", &cfg, &run, &log);
        let sock = run.join("ncc/ncc.sock");
        let ncc = Self {
            child,
            relay,
            log,
            relay_log,
            sock,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ncc.sock.exists() {
            assert!(
                Instant::now() < deadline,
                "the ncc socket never appeared at {}",
                ncc.sock.display()
            );
            thread::sleep(Duration::from_millis(20));
        }
        ncc
    }
}

impl Drop for Ncc {
    fn drop(&mut self) {
        for c in [&mut self.child, &mut self.relay] {
            let _ = c.kill();
            let _ = c.wait();
        }
        if thread::panicking() {
            eprintln!(
                "--- seesaw_ncc log ---\n{}\n--- seesaw_proxy log ---\n{}",
                std::fs::read_to_string(&self.log).unwrap_or_default(),
                std::fs::read_to_string(&self.relay_log).unwrap_or_default()
            );
        }
    }
}

/// A TCP backend on 127.0.0.1 that answers every line with its name.
fn tcp_backend(name: &'static str, stop: Arc<AtomicBool>) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a TCP backend");
    let addr = l.local_addr().expect("local addr");
    l.set_nonblocking(true).expect("nonblocking");
    thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            match l.accept() {
                Ok((s, _)) => {
                    thread::spawn(move || serve_lines(s, name));
                }
                Err(_) => thread::sleep(Duration::from_millis(1)),
            }
        }
    });
    addr
}

fn serve_lines(s: TcpStream, name: &str) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(mut w) = s.try_clone() else { return };
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                if w.write_all(format!("{name}\n").as_bytes()).is_err() {
                    return;
                }
            }
        }
    }
}

/// A UDP backend on 127.0.0.1 that answers every datagram with its name.
fn udp_backend(name: &'static str, stop: Arc<AtomicBool>) -> SocketAddr {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP backend");
    let addr = s.local_addr().expect("local addr");
    s.set_read_timeout(Some(Duration::from_millis(50)))
        .expect("timeout");
    thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while !stop.load(Ordering::Relaxed) {
            if let Ok((_, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(name.as_bytes(), from);
            }
        }
    });
    addr
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn dest(a: SocketAddr, weight: u32) -> pb::Destination {
    pb::Destination {
        address: a.ip().to_string(),
        port: u32::from(a.port()),
        weight,
        ..Default::default()
    }
}

fn service(
    vip: SocketAddr,
    proto: pb::Protocol,
    sched: pb::Scheduler,
    dests: Vec<pb::Destination>,
) -> pb::Service {
    pb::Service {
        address: vip.ip().to_string(),
        protocol: proto as i32,
        port: u32::from(vip.port()),
        scheduler: sched as i32,
        mode: pb::ForwardMode::Nat as i32,
        destinations: dests,
        ..Default::default()
    }
}

/// The backends and VIPs of the test.
struct Topology {
    /// TCP service with weight changes and a spare: VIP, two fixed backends, the spare.
    t_vip: SocketAddr,
    t: [SocketAddr; 3],
    /// UDP service with weight changes and a spare.
    u_vip: SocketAddr,
    u: [SocketAddr; 3],
    /// TCP service whose scheduler changes and whose backends never do.
    q_vip: SocketAddr,
    q: [SocketAddr; 2],
}

/// Desired state number `i`: every one differs from the one before.
fn desired(top: &Topology, i: usize) -> pb::DesiredState {
    let w1 = 1 + (i % 3) as u32;
    let w2 = 1 + ((i / 3) % 3) as u32;
    let spare = i % 4 < 2;
    let with_spare = |fixed: &[SocketAddr], spare_addr: SocketAddr| {
        let mut v = vec![dest(fixed[0], w1), dest(fixed[1], w2)];
        if spare {
            v.push(dest(spare_addr, 1));
        }
        v
    };
    let scheds = [
        pb::Scheduler::Rr,
        pb::Scheduler::Wrr,
        pb::Scheduler::Lc,
        pb::Scheduler::Wlc,
        pb::Scheduler::Mh,
        pb::Scheduler::P2c,
    ];
    pb::DesiredState {
        services: vec![
            service(
                top.t_vip,
                pb::Protocol::Tcp,
                pb::Scheduler::Wrr,
                with_spare(&top.t[..2], top.t[2]),
            ),
            service(
                top.u_vip,
                pb::Protocol::Udp,
                pb::Scheduler::Wrr,
                with_spare(&top.u[..2], top.u[2]),
            ),
            service(
                top.q_vip,
                pb::Protocol::Tcp,
                scheds[i % scheds.len()],
                vec![dest(top.q[0], 1), dest(top.q[1], 1)],
            ),
        ],
        ..Default::default()
    }
}

/// What the traffic threads saw.
#[derive(Default)]
struct Tally {
    /// Requests answered on keep-alive connections.
    keepalive_ok: AtomicU64,
    /// Keep-alive connections that ended early (reset, EOF, timeout, wrong answer), by backend.
    resets: Mutex<BTreeMap<String, u64>>,
    /// Fresh connections answered.
    fresh_ok: AtomicU64,
    /// Fresh connections that failed (connect, send, or no answer), with the first errors.
    fresh_failed: Mutex<Vec<String>>,
    /// UDP requests answered.
    udp_ok: AtomicU64,
    /// UDP requests not answered within the timeout.
    udp_lost: AtomicU64,
    /// UDP flows answered by another backend than before.
    udp_moved: AtomicU64,
}

fn note_reset(t: &Tally, backend: &str) {
    *t.resets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(backend.to_owned())
        .or_default() += 1;
}

/// Keep-alive client: one connection, request after request; a broken connection is counted
/// and replaced.
fn keepalive(vip: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let Ok(s) = TcpStream::connect_timeout(&vip, IO_TIMEOUT) else {
            tally
                .fresh_failed
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(format!("keep-alive connect to {vip} failed"));
            thread::sleep(Duration::from_millis(10));
            continue;
        };
        let _ = s.set_read_timeout(Some(IO_TIMEOUT));
        let _ = s.set_write_timeout(Some(IO_TIMEOUT));
        let _ = s.set_nodelay(true);
        let Ok(mut w) = s.try_clone() else { continue };
        let mut r = BufReader::new(s);
        let mut backend: Option<String> = None;
        let mut line = String::new();
        while !stop.load(Ordering::Relaxed) {
            line.clear();
            let ok =
                w.write_all(b"ping\n").is_ok() && matches!(r.read_line(&mut line), Ok(n) if n > 0);
            let name = line.trim().to_owned();
            match (&backend, ok) {
                (_, false) => {
                    note_reset(
                        &tally,
                        backend.as_deref().unwrap_or("(before the first answer)"),
                    );
                    break;
                }
                (None, true) => backend = Some(name),
                (Some(b), true) if *b != name => {
                    note_reset(&tally, &format!("{b} (then answered by {name})"));
                    break;
                }
                (Some(_), true) => {}
            }
            tally.keepalive_ok.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Fresh-connection client: connect, one request, close; at most one per millisecond.
fn fresh(vip: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    while !stop.load(Ordering::Relaxed) {
        let r = (|| -> Result<String, String> {
            let s = TcpStream::connect_timeout(&vip, IO_TIMEOUT)
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(IO_TIMEOUT))
                .map_err(|e| e.to_string())?;
            let mut w = s.try_clone().map_err(|e| e.to_string())?;
            w.write_all(b"ping\n").map_err(|e| format!("send: {e}"))?;
            let mut line = String::new();
            match BufReader::new(s).read_line(&mut line) {
                Ok(0) => Err("closed before the answer".into()),
                Ok(_) => Ok(line),
                Err(e) => Err(format!("receive: {e}")),
            }
        })();
        match r {
            Ok(_) => {
                tally.fresh_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                let mut f = tally.fresh_failed.lock().unwrap_or_else(|e| e.into_inner());
                f.push(format!("{vip}: {e}"));
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
}

/// UDP client: one socket (one flow), request after request; the flow must keep its backend.
fn udp_client(vip: SocketAddr, stop: Arc<AtomicBool>, tally: Arc<Tally>) {
    let s = UdpSocket::bind("127.0.0.1:0").expect("bind a UDP client");
    s.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    let mut backend: Option<Vec<u8>> = None;
    let mut buf = [0u8; 256];
    while !stop.load(Ordering::Relaxed) {
        if s.send_to(b"ping", vip).is_err() {
            tally.udp_lost.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        match s.recv(&mut buf) {
            Ok(n) => {
                let name = buf[..n].to_vec();
                match &backend {
                    None => backend = Some(name),
                    Some(b) if *b != name => {
                        tally.udp_moved.fetch_add(1, Ordering::Relaxed);
                        backend = Some(name);
                    }
                    Some(_) => {}
                }
                tally.udp_ok.fetch_add(1, Ordering::Relaxed);
            }
            Err(_) => {
                tally.udp_lost.fetch_add(1, Ordering::Relaxed);
            }
        }
        thread::sleep(Duration::from_millis(1));
    }
}

fn apply(
    rt: &tokio::runtime::Runtime,
    sock: &Path,
    d: pb::DesiredState,
) -> Result<Vec<String>, String> {
    rt.block_on(async {
        let mut c = pb::ncc_client::NccClient::new(seesaw_common::uds::channel(
            sock,
            Duration::from_secs(10),
        ));
        c.apply(d)
            .await
            .map(|r| r.into_inner().changes)
            .map_err(|s| format!("{}: {}", s.code(), s.message()))
    })
}

#[test]
fn thousand_applies_under_tcp_and_udp_load_break_nothing() {
    let ncc = Ncc::start();
    let stop_backends = Arc::new(AtomicBool::new(false));
    let b = |n| tcp_backend(n, stop_backends.clone());
    let ub = |n| udp_backend(n, stop_backends.clone());
    let top = Topology {
        t_vip: SocketAddr::from(([127, 0, 0, 1], free_port())),
        t: [b("t1"), b("t2"), b("t-spare")],
        u_vip: SocketAddr::from(([127, 0, 0, 1], free_port())),
        u: [ub("u1"), ub("u2"), ub("u-spare")],
        q_vip: SocketAddr::from(([127, 0, 0, 1], free_port())),
        q: [b("q1"), b("q2")],
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One client channel for every apply, as the engine keeps one.
    let client = rt.block_on(async {
        pb::ncc_client::NccClient::new(seesaw_common::uds::channel(
            &ncc.sock,
            Duration::from_secs(10),
        ))
    });
    let first =
        apply(&rt, &ncc.sock, desired(&top, 0)).unwrap_or_else(|e| panic!("first apply: {e}"));
    assert!(!first.is_empty(), "the first apply changed nothing");

    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let mut traffic: Vec<JoinHandle<()>> = Vec::new();
    let spawn =
        |f: fn(SocketAddr, Arc<AtomicBool>, Arc<Tally>), vip, v: &mut Vec<JoinHandle<()>>| {
            let (stop, tally) = (stop.clone(), tally.clone());
            v.push(thread::spawn(move || f(vip, stop, tally)));
        };
    for _ in 0..3 {
        spawn(keepalive, top.t_vip, &mut traffic);
    }
    spawn(keepalive, top.q_vip, &mut traffic);
    spawn(fresh, top.t_vip, &mut traffic);
    spawn(fresh, top.q_vip, &mut traffic);
    spawn(udp_client, top.u_vip, &mut traffic);
    spawn(udp_client, top.u_vip, &mut traffic);
    // Let every client establish its connection or flow before the churn starts.
    thread::sleep(Duration::from_millis(300));

    let started = Instant::now();
    let mut latencies = Vec::with_capacity(APPLIES);
    let mut failed_applies = Vec::new();
    let mut empty_applies = 0;
    for i in 1..=APPLIES {
        assert!(
            started.elapsed() < APPLY_WITHIN,
            "only {} of {APPLIES} applies within {APPLY_WITHIN:?}",
            i - 1
        );
        let t = Instant::now();
        let r = rt.block_on({
            let mut c = client.clone();
            let d = desired(&top, i);
            async move { c.apply(d).await }
        });
        latencies.push(t.elapsed());
        match r {
            Ok(r) if r.get_ref().changes.is_empty() => empty_applies += 1,
            Ok(_) => {}
            Err(s) => failed_applies.push(format!("apply {i}: {}: {}", s.code(), s.message())),
        }
    }
    let churn = started.elapsed();
    // A little traffic after the last apply, then stop every loop.
    thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for t in traffic {
        t.join().expect("a traffic thread panicked");
    }
    stop_backends.store(true, Ordering::Relaxed);

    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    let resets = tally
        .resets
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let fresh_failed = tally
        .fresh_failed
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (ka, fr, uok, lost, moved) = (
        tally.keepalive_ok.load(Ordering::Relaxed),
        tally.fresh_ok.load(Ordering::Relaxed),
        tally.udp_ok.load(Ordering::Relaxed),
        tally.udp_lost.load(Ordering::Relaxed),
        tally.udp_moved.load(Ordering::Relaxed),
    );
    eprintln!(
        "PROXY-LOAD: {APPLIES} applies in {churn:?} (p50 {:?}, p99 {p99:?}, max {:?}); \
         keep-alive requests {ka}, fresh connections {fr}, UDP answered {uok}; \
         resets {resets:?}, failed connections {}, UDP lost {lost}, UDP moved {moved}",
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1],
        fresh_failed.len(),
    );
    assert!(
        failed_applies.is_empty(),
        "{} of {APPLIES} applies failed: {:?}",
        failed_applies.len(),
        &failed_applies[..failed_applies.len().min(5)]
    );
    assert_eq!(
        empty_applies, 0,
        "every desired state differs from the one before"
    );
    assert!(
        fresh_failed.is_empty(),
        "{} failed connections (of {} fresh ones): {:?}",
        fresh_failed.len(),
        fr + fresh_failed.len() as u64,
        &fresh_failed[..fresh_failed.len().min(5)]
    );
    assert!(
        resets.is_empty(),
        "established connections reset during {APPLIES} applies ({ka} keep-alive requests answered): {resets:?}"
    );
    assert_eq!(lost, 0, "UDP requests unanswered ({uok} answered)");
    assert_eq!(
        moved, 0,
        "UDP flows moved to another backend ({uok} answered)"
    );
    // The load was real: every kind of traffic ran throughout the churn.
    assert!(
        ka >= 1_000,
        "only {ka} keep-alive requests during the churn"
    );
    assert!(fr >= 100, "only {fr} fresh connections during the churn");
    assert!(
        uok >= 100,
        "only {uok} UDP requests answered during the churn"
    );
}

#[test]
fn shipped_payload_rules_example_loads() {
    // etc/examples/udp-kcp: KCP conv affinity and version routing with default deny.
    let dir = seesaw_lab::bins::workspace_dir().join("etc/examples/udp-kcp");
    let loaded = seesaw_engine::config::load_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e:#?}", dir.display()));
    assert!(
        loaded.local_node().is_some(),
        "seesaw.cfg node_ipv4 names a node of cluster.pb"
    );
    assert_eq!(
        loaded.settings.dataplane,
        seesaw_engine::config::DataplaneKind::Proxy
    );
    let entry = |vs: &str| {
        let v = loaded
            .cluster
            .vservers
            .get(vs)
            .unwrap_or_else(|| panic!("no vserver {vs}"));
        assert!(v.warnings.is_empty(), "{vs}: {:?}", v.warnings);
        let e = v.entries.values().next().expect("one entry");
        (v, e.proxy.clone())
    };
    let (_, kcp) = entry("kcp@example");
    assert_eq!(kcp.hash_key, Some((0, 4)), "KCP conv is bytes 0:4");
    assert_eq!(kcp.rules.len(), 1);
    assert_eq!(kcp.default_group, None, "short datagrams are denied");
    let (api, opts) = entry("api@example");
    let groups: Vec<Option<String>> = opts.rules.iter().map(|r| r.group.clone()).collect();
    assert_eq!(groups, [Some("v1".to_owned()), Some("v2".to_owned())]);
    assert_eq!(opts.default_group, None, "other versions are denied");
    assert_eq!(opts.rules[1].conds[0].values.len(), 2, "version 2 or 3");
    let backups: Vec<&str> = api
        .backends
        .values()
        .filter(|b| b.backup)
        .map(|b| b.group.as_str())
        .collect();
    assert_eq!(backups, ["v2"]);
}
