//! Anycast over BGP in the namespace lab (root only; skips when gobgpd or bird is missing):
//! `client` → `router` (bird2, importing BGP with ECMP into its kernel table) → `lb1`/`lb2` (the
//! whole suite under its watchdog, GoBGP's `gobgpd` supervised with it) → `be1..be3`.
//!
//! Asserted, in order:
//! 1. before any backend is up, neither node announces the anycast VIP (GoBGP's RIB, sampled);
//! 2. with both nodes healthy the router holds an ECMP route for the VIP with both next hops, and
//!    client requests (a new connection each, L4 multipath hash) are carried by both nodes;
//! 3. when every service on `lb1` fails its health checks (an nft rule rejects lb1 → backends),
//!    lb1 withdraws within detection time + 1 s, no client request fails for longer than that, and
//!    lb1's RIB never holds the VIP while its services are unhealthy;
//! 4. after healing, both paths return; when lb1's whole suite is killed (SIGKILL, gobgpd with it)
//!    the session drop removes lb1's path.
//!
//! The `BGP-LAB` lines are the numbers for bench/RESULTS.md.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_lab::{Lab, anycast, bins, http, procs};

const VIP: &str = "192.168.255.1";
const ROUTER: &str = "192.0.2.254";
const LBS: [(&str, &str, &str); 2] = [
    ("lb1", "192.0.2.10", "203.0.113.1"),
    ("lb2", "192.0.2.11", "203.0.113.2"),
];
const BACKENDS: [(&str, &str); 3] = [
    ("be1", "203.0.113.11"),
    ("be2", "203.0.113.12"),
    ("be3", "203.0.113.13"),
];
/// Health check: every second, unhealthy after the first failure (`retries: 0`).
const DETECTION: Duration = Duration::from_secs(1);
const GOBGP: &str = "/usr/bin/gobgp";

fn seesaw_cfg(node: &str) -> String {
    format!(
        "[cluster]\nname = lab\nnode_ipv4 = {node}\nanycast_enabled = true\n\n\
         [interface]\nnode = eth0\nlb = eth0\n\n[dataplane]\nkind = proxy\n\n\
         [bgp]\ngobgp_api = 127.0.0.1:50051\n\n[ecu]\nlisten = 127.0.0.1:10257\n"
    )
}

fn cluster_pb() -> String {
    let mut s = String::from(
        "seesaw_vip: < fqdn: \"seesaw-vip.lab.\" ipv4: \"192.0.2.1/24\" status: PRODUCTION >\n",
    );
    for (name, ip, _) in LBS {
        s.push_str(&format!(
            "node: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION >\n"
        ));
    }
    s.push_str(&format!(
        "bgp_local_asn: 64513\nbgp_remote_asn: 64512\n\
         bgp_peer: < fqdn: \"router.lab.\" ipv4: \"{ROUTER}/24\" status: PRODUCTION >\n"
    ));
    s.push_str(&format!(
        "vserver: <\n  name: \"anycast-web@lab\"\n  entry_address: < fqdn: \"web.lab.\" ipv4: \"{VIP}/32\" status: PRODUCTION >\n  rp: \"lab@example.com\"\n  \
         vserver_entry: < protocol: TCP port: 80 scheduler: RR mode: NAT healthcheck: < type: HTTP interval: 1 timeout: 1 retries: 0 send: \"/\" code: 200 > >\n"
    ));
    for (name, ip) in BACKENDS {
        s.push_str(&format!(
            "  backend: < host: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION > weight: 1 >\n"
        ));
    }
    s.push_str(">\n");
    s
}

/// The router's next hops for the VIP (empty: no route).
fn next_hops(lab: &Lab) -> Vec<String> {
    anycast::next_hops(lab, "router", VIP)
}

/// Waits (bounded) until the router's next hops for the VIP are `want`; returns when.
fn wait_hops(lab: &Lab, want: &[&str], within: Duration) -> Option<Instant> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if next_hops(lab) == want {
            return Some(Instant::now());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Whether `node`'s GoBGP RIB holds the VIP (read with the `gobgp` client).
fn rib_has_vip(lab: &Lab, node: &str) -> Option<bool> {
    let out = lab
        .exec(
            node,
            GOBGP,
            &[
                "-u",
                "127.0.0.1",
                "-p",
                "50051",
                "global",
                "rib",
                "-a",
                "ipv4",
            ],
            &[],
            Duration::from_secs(5),
        )
        .ok()?;
    out.status
        .success()
        .then(|| out.stdout.contains(&format!("{VIP}/32")))
}

/// Samples both nodes' RIBs every 100 ms until stopped.
struct RibSampler {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<(Instant, usize, bool)>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl RibSampler {
    fn start(lab: &Arc<Lab>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (l, s, out) = (Arc::clone(lab), Arc::clone(&stop), Arc::clone(&samples));
        let handle = std::thread::spawn(move || {
            // Bounded: at most 10 minutes of samples.
            for _ in 0..6000 {
                if s.load(Ordering::Relaxed) {
                    break;
                }
                for (i, (name, _, _)) in LBS.iter().enumerate() {
                    if let Some(has) = rib_has_vip(&l, name) {
                        out.lock().expect("samples").push((Instant::now(), i, has));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            samples,
            handle: Some(handle),
        }
    }

    /// Samples of node `i` taken inside `[from, to]` that hold the VIP.
    fn announced_between(&self, i: usize, from: Instant, to: Instant) -> Vec<Instant> {
        self.samples
            .lock()
            .expect("samples")
            .iter()
            .filter(|(t, n, has)| *n == i && *has && *t >= from && *t <= to)
            .map(|(t, _, _)| *t)
            .collect()
    }

    fn count(&self, i: usize) -> usize {
        self.samples
            .lock()
            .expect("samples")
            .iter()
            .filter(|(_, n, _)| *n == i)
            .count()
    }

    fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// A thread that holds the lab, stopped (its flag set) and joined when dropped — also when the
/// test fails, so the lab's own Drop (stop every process, remove the namespaces) still runs.
struct JoinOnDrop<T> {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<T>>,
}

impl<T> JoinOnDrop<T> {
    fn new(stop: Arc<AtomicBool>, handle: std::thread::JoinHandle<T>) -> Self {
        Self {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops the thread and returns what it returned.
    fn join(&mut self) -> T {
        self.stop.store(true, Ordering::Relaxed);
        self.handle
            .take()
            .expect("joined once")
            .join()
            .expect("the thread panicked")
    }
}

impl<T> Drop for JoinOnDrop<T> {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Also when the test fails: the sampling thread holds the lab, and the lab stops its processes
/// and removes its namespaces only when the last holder lets go.
impl Drop for RibSampler {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Total connections the node's data plane carried, summed from `show vservers -o json`.
fn total_conns(lab: &Lab, run: &Path) -> u64 {
    fn sum(v: &serde_json::Value) -> u64 {
        match v {
            serde_json::Value::Object(m) => m
                .iter()
                .map(|(k, v)| match (k.as_str(), v) {
                    ("total_conns", serde_json::Value::Number(n)) => n.as_u64().unwrap_or(0),
                    _ => sum(v),
                })
                .sum(),
            serde_json::Value::Array(a) => a.iter().map(sum).sum(),
            _ => 0,
        }
    }
    let seesaw = bins::binary("seesaw").expect("checked");
    let r = run.to_string_lossy().into_owned();
    let node = if run.starts_with(lab.run_dir("lb1").expect("lb1")) {
        "lb1"
    } else {
        "lb2"
    };
    let out = lab
        .exec(
            node,
            &seesaw,
            &[
                "--run-dir",
                &r,
                "-o",
                "json",
                "-c",
                "show vservers anycast-web@lab",
            ],
            &[],
            Duration::from_secs(10),
        )
        .expect("shell");
    serde_json::from_str(&out.stdout).map_or(0, |v| sum(&v))
}

fn missing_tools() -> Option<String> {
    [anycast::GOBGPD, GOBGP, anycast::BIRD]
        .iter()
        .find(|p| !Path::new(p).exists())
        .map(|p| (*p).to_owned())
}

/// How many of `n` HTTP requests from the client to `vip` were answered with 200.
fn answered(lab: &Lab, vip: SocketAddr, n: usize) -> usize {
    lab.run_in("client", move || {
        (0..n)
            .filter(
                |_| matches!(http::get(vip, "/", Duration::from_secs(2)), Ok(r) if r.status == 200),
            )
            .count()
    })
    .expect("client ns")
}

#[test]
#[allow(
    clippy::print_stdout,
    clippy::too_many_lines,
    reason = "the measurements are the output"
)]
fn anycast_ecmp_withdraw_on_failure_and_session_drop() {
    if !seesaw_lab::require_root() {
        return;
    }
    if let Some(tool) = missing_tools() {
        println!("SKIP bgp lab: {tool} is missing (apt-get install gobgpd bird2)");
        return;
    }
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    let t_lab = Instant::now();
    let mut b = Lab::builder()
        .node("client", &["192.0.2.100/24"])
        .route("client", "192.168.255.0/24", ROUTER)
        .node("router", &[&format!("{ROUTER}/24")]);
    for (name, ip, be_side) in LBS {
        b = b
            .node(name, &[&format!("{ip}/24"), &format!("{be_side}/24")])
            .loopback(name, &format!("{VIP}/32"));
    }
    let mut lab = b
        .hosts(&BACKENDS)
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    // The router forwards with an L4 hash.
    anycast::ecmp_router(&lab, &["net.ipv4.fib_multipath_hash_policy=1"]).expect("sysctl");

    let seesaw = bins::binary("seesaw").expect("checked");
    let peers: Vec<(&str, &str)> = LBS.iter().map(|(n, ip, _)| (*n, *ip)).collect();
    anycast::start_bird(&mut lab, "router", ROUTER, &peers).expect("starting bird");

    // Backends run from the start, but each LB is cut off from them (rejected) until phase 2, so
    // every check fails first.
    for (name, ip) in BACKENDS {
        let listen = format!("{ip}:80");
        lab.spawn(
            name,
            &seesaw,
            &["demo-backend", "--listen", &listen, "--name", name],
            &[],
        )
        .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    }
    for (name, _, _) in LBS {
        nft(&lab, name, BLOCK);
    }
    let mut run_dirs = Vec::new();
    for (name, ip, _) in LBS {
        anycast::start_bgp_suite(&mut lab, name, &seesaw_cfg(ip), &cluster_pb())
            .unwrap_or_else(|e| panic!("starting the suite on {name}: {e}"));
        run_dirs.push(lab.run_dir(name).expect("lb"));
    }
    let lab = Arc::new(lab);
    let sampler = RibSampler::start(&lab);

    // 1. Sessions come up; no backend reachable yet, so nothing may be announced.
    let t_start = Instant::now();
    let established = (0..300).find_map(|_| {
        let up = LBS.iter().zip(&run_dirs).all(|((name, _, _), run)| {
            let r = run.to_string_lossy().into_owned();
            lab.exec(
                name,
                &seesaw,
                &["--run-dir", &r, "-c", "show bgp neighbors"],
                &[],
                Duration::from_secs(5),
            )
            .is_ok_and(|o| {
                o.stdout
                    .contains(&format!("BGP neighbor is {ROUTER}, remote AS 64512"))
                    && o.stdout.contains("ESTABLISHED")
            })
        });
        if up {
            Some(Instant::now())
        } else {
            std::thread::sleep(Duration::from_millis(100));
            None
        }
    });
    let established =
        established.expect("both BGP sessions established within 30 s (show bgp neighbors)");
    std::thread::sleep(Duration::from_secs(1));
    assert!(
        next_hops(&lab).is_empty(),
        "VIP routed before any backend is healthy"
    );
    let unhealthy_start = sampler.announced_between(0, t_start, Instant::now()).len()
        + sampler.announced_between(1, t_start, Instant::now()).len();
    assert_eq!(
        unhealthy_start, 0,
        "a node announced the VIP with no healthy backend"
    );
    println!(
        "BGP-LAB sessions established {:?} after start; RIB samples while unhealthy: lb1 {} lb2 {}, none announced",
        established - t_start,
        sampler.count(0),
        sampler.count(1)
    );

    // 2. Backends reachable: ECMP over both LBs, flows through both.
    for (name, _, _) in LBS {
        nft(&lab, name, UNBLOCK);
    }
    let both = [LBS[0].1, LBS[1].1];
    let t_backends = Instant::now();
    let ecmp = wait_hops(&lab, &both, Duration::from_secs(30))
        .unwrap_or_else(|| panic!("no ECMP route with both next hops: {:?}", next_hops(&lab)));
    println!(
        "BGP-LAB ECMP route via both LBs {:?} after the backends became reachable",
        ecmp - t_backends
    );
    let before = [
        total_conns(&lab, &run_dirs[0]),
        total_conns(&lab, &run_dirs[1]),
    ];
    let vip: SocketAddr = format!("{VIP}:80").parse().expect("literal");
    let ok = answered(&lab, vip, 200);
    assert_eq!(ok, 200, "requests through the ECMP route failed");
    // The engine refreshes the plane's counters every 2 s: wait (bounded) until both nodes'
    // counters account for the 200 connections.
    let deadline = Instant::now() + Duration::from_secs(8);
    let carried = loop {
        std::thread::sleep(Duration::from_millis(500));
        let c = [
            total_conns(&lab, &run_dirs[0]) - before[0],
            total_conns(&lab, &run_dirs[1]) - before[1],
        ];
        if c[0] + c[1] >= 200 || Instant::now() > deadline {
            break c;
        }
    };
    println!(
        "BGP-LAB 200 requests: lb1 carried {} connections, lb2 {}",
        carried[0], carried[1]
    );
    assert!(
        carried[0] > 0 && carried[1] > 0,
        "flows did not use both LBs: {carried:?}"
    );

    // 3. Every service on lb1 fails its checks: lb1 withdraws; requests recover within the bound.
    let stop = Arc::new(AtomicBool::new(false));
    let mut prober = JoinOnDrop::new(Arc::clone(&stop), {
        let (lab, stop) = (Arc::clone(&lab), Arc::clone(&stop));
        std::thread::spawn(move || {
            lab.run_in("client", || {
                let mut out = Vec::new();
                for _ in 0..3000 {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let t = Instant::now();
                    let ok = matches!(http::get(vip, "/", Duration::from_millis(500)), Ok(r) if r.status == 200);
                    out.push((t, Instant::now(), ok));
                    std::thread::sleep(Duration::from_millis(10).saturating_sub(t.elapsed()));
                }
                out
            })
            .expect("client ns")
        })
    });
    std::thread::sleep(Duration::from_millis(500));
    nft(&lab, "lb1", BLOCK);
    let t_fail = Instant::now();
    let withdrawn = wait_hops(&lab, &[LBS[1].1], DETECTION + Duration::from_secs(5))
        .expect("lb1's path withdrawn");
    let withdraw_after = withdrawn - t_fail;
    std::thread::sleep(Duration::from_millis(1500));
    let t_unhealthy_end = Instant::now();
    let probes = prober.join();
    let failed: Vec<&(Instant, Instant, bool)> =
        probes.iter().filter(|p| !p.2 && p.0 >= t_fail).collect();
    let fail_span = match (failed.first(), failed.last()) {
        (Some(a), Some(z)) => z.1 - a.0,
        _ => Duration::ZERO,
    };
    // lb1 is certainly unhealthy from detection time after the rule on; its RIB must not hold
    // the VIP from then until the rule goes (allowing one sample in flight at the withdrawal).
    let late =
        sampler.announced_between(0, withdrawn + Duration::from_millis(200), t_unhealthy_end);
    println!(
        "BGP-LAB lb1 unhealthy: withdrawn after {withdraw_after:?} (bound {:?}); {} of {} requests failed, failures spanned {fail_span:?}; lb1 RIB samples holding the VIP after the withdrawal: {}",
        DETECTION + Duration::from_secs(1),
        failed.len(),
        probes.iter().filter(|p| p.0 >= t_fail).count(),
        late.len()
    );
    assert!(
        withdraw_after <= DETECTION + Duration::from_secs(1),
        "withdrawal took {withdraw_after:?}"
    );
    assert!(
        fail_span <= DETECTION + Duration::from_secs(1),
        "requests failed for {fail_span:?}"
    );
    assert!(
        late.is_empty(),
        "lb1 announced the VIP while its services were unhealthy"
    );

    // 4. Heal, then kill lb1's whole suite: the session drop removes its path.
    nft(&lab, "lb1", UNBLOCK);
    wait_hops(&lab, &both, Duration::from_secs(15)).expect("lb1's path back after healing");
    let suite = procs::pids_with_env("SEESAW_RUN_DIR", &run_dirs[0].to_string_lossy());
    assert!(suite.len() >= 6, "lb1's suite: {suite:?}");
    let t_kill = Instant::now();
    for p in &suite {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    let dropped = wait_hops(&lab, &[LBS[1].1], Duration::from_secs(10))
        .expect("lb1's path removed after its suite was killed");
    println!(
        "BGP-LAB lb1 suite killed ({} processes): path removed after {:?}; lab total {:?}",
        suite.len(),
        dropped - t_kill,
        t_lab.elapsed()
    );
    let ok = answered(&lab, vip, 50);
    assert_eq!(ok, 50, "requests through lb2 alone failed");
    sampler.stop();
}

/// Cuts an LB off from every backend (health checks and proxied connections get a reset).
const BLOCK: &str = "add table inet bgplab; add chain inet bgplab out { type filter hook output priority 0; }; \
     add rule inet bgplab out ip daddr 203.0.113.0/24 tcp dport 80 reject with tcp reset";
/// Undoes [`BLOCK`].
const UNBLOCK: &str = "delete table inet bgplab";

fn nft(lab: &Lab, node: &str, script: &str) {
    let out = lab
        .exec(node, "nft", &[script], &[], Duration::from_secs(5))
        .expect("nft");
    assert!(
        out.status.success(),
        "nft in {node}: {script}: {}",
        out.combined()
    );
}
