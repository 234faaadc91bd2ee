//! The HA pair scene of `tests/ha.rs` (root only): two LB nodes running the whole suite under
//! their watchdogs with adverts between them, two backends behind one unicast VIP, and two
//! clients, `client1` routing the VIP through `lb1` and `client2` through `lb2`, so a request
//! through a client is answered exactly while that client's LB node serves as master. The
//! prober samples both paths every 10 ms.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::{watchdog_cfg_shipped_priorities, write_atomic};
use crate::error::LabError;
use crate::{Lab, http, procs};

pub const VIP: &str = "198.51.100.1:80";
pub const LBS: [(&str, &str, &str); 2] = [
    ("lb1", "192.0.2.10", "203.0.113.1"),
    ("lb2", "192.0.2.11", "203.0.113.2"),
];
pub const BACKENDS: [(&str, &str); 2] = [("be1", "203.0.113.11"), ("be2", "203.0.113.12")];
pub const PROBE_EVERY: Duration = Duration::from_millis(10);

pub fn seesaw_cfg(node: &str, peer: &str) -> String {
    seesaw_cfg_on(node, peer, "proxy", interval())
}

/// seesaw.cfg for one node with `[dataplane] kind = plane` and adverts every `advert`.
pub fn seesaw_cfg_on(node: &str, peer: &str, plane: &str, advert: Duration) -> String {
    format!(
        "[cluster]\nname = lab\nnode_ipv4 = {node}\npeer_ipv4 = {peer}\nanycast_enabled = false\n\n\
         use_vmac = false\ngarp_interval_sec = 1\n\n\
         [interface]\nnode = eth0\nlb = eth1\n\n[dataplane]\nkind = {plane}\n\n\
         [ha]\nadvert_interval_ms = {}\npreempt = false\n\n[ecu]\nlisten = 127.0.0.1:10257\n",
        advert.as_millis()
    )
}

/// Outage, "two masters" and how long both served, of one fault from the samples of both paths.
///
/// Outage: fault (`failover`, a requested hand-over: the old master's last answer) → the start of the new master's first
/// answered request. Two masters: the old master answered a request that *started after* the new
/// master had *completed* one — only then were both certainly serving at the same time (a request
/// is served somewhere between its start and its end, so comparing start times alone would count
/// a clean handover inside one request's duration as an overlap).
pub fn handover(
    master: usize,
    t_fault: Instant,
    s: &[Vec<Probe>; 2],
    failover: bool,
) -> (Duration, bool, Duration) {
    let new = 1 - master;
    let Some(first_new) = s[new].iter().find(|p| p.start >= t_fault && p.ok).copied() else {
        return (Duration::MAX, false, Duration::ZERO);
    };
    let last_old = s[master].iter().rfind(|p| p.ok).copied();
    let start = if failover {
        // The old master's last answer that started before the new one's first: a later one
        // (both inside one request's duration) means no gap at all.
        s[master]
            .iter()
            .rfind(|p| p.ok && p.start < first_new.start)
            .map_or(t_fault, |p| p.start)
            .max(t_fault)
    } else {
        t_fault
    };
    let outage = first_new.start.saturating_duration_since(start);
    // Both serving: the old master answered after the new one had certainly started to.
    let overlap = last_old
        .map(|p| p.start.saturating_duration_since(first_new.end))
        .unwrap_or_default();
    let two = last_old.is_some_and(|p| p.start > first_new.end);
    (outage, two, overlap)
}

/// Builds the pair's namespaces (two clients, the two LB nodes with a separate LB interface
/// `eth1`, an `attacker`, two backends running `seesaw demo-backend`) and starts each LB node's
/// suite with `[dataplane] kind = plane` and adverts every `advert`; returns the lab (not yet
/// waited on: see [`one_master`]) and each node's run directory. With the proxy plane the VIP is
/// on both nodes' `lo` (the relay binds it there); a kernel plane's VIP is the master's alone,
/// on its LB interface.
pub fn start(plane: &str, advert: Duration) -> Result<(Lab, Vec<std::path::PathBuf>), LabError> {
    let mut b = Lab::builder()
        .node("client1", &["192.0.2.101/24"])
        .route("client1", "198.51.100.0/24", LBS[0].1)
        .node("client2", &["192.0.2.102/24"])
        .route("client2", "198.51.100.0/24", LBS[1].1);
    for (name, node_ip, lb_ip) in LBS {
        b = b
            .node(name, &[&format!("{node_ip}/24"), &format!("{lb_ip}/24")])
            .link(name, "eth1", &[]);
        if plane == "proxy" {
            b = b.loopback(name, "198.51.100.1/32");
        }
    }
    b = b.node("attacker", &["192.0.2.66/24"]);
    let mut lab = b.hosts(&BACKENDS).build()?;
    for (name, ip) in BACKENDS {
        let ip: std::net::Ipv4Addr = ip.parse().map_err(|_| LabError::BadAddress {
            addr: ip.to_owned(),
            reason: "not an IPv4 address".to_owned(),
        })?;
        lab.start_demo_backend(name, SocketAddr::from((ip, 80)), name)?;
    }
    let mut run_dirs = Vec::new();
    for (i, (name, ip, _)) in LBS.iter().enumerate() {
        let config = lab.config_dir(name)?;
        write_atomic(
            &config,
            "seesaw.cfg",
            &seesaw_cfg_on(ip, LBS[1 - i].1, plane, advert),
        )?;
        write_atomic(&config, "cluster.pb", &cluster_pb())?;
        write_atomic(&config, "watchdog.cfg", &watchdog_cfg_shipped_priorities()?)?;
        lab.spawn_suite(name)?;
        run_dirs.push(lab.run_dir(name)?);
    }
    Ok((lab, run_dirs))
}

/// The advert interval: `HA_LAB_INTERVAL_MS`, 30 ms by default (the acceptance setting).
pub fn interval() -> Duration {
    Duration::from_millis(setting("HA_LAB_INTERVAL_MS", 30, 10..=10_000))
}

/// The number in environment variable `name` (a lab setting), `default` when it is unset or
/// not a number, kept within `range`.
pub fn setting(name: &str, default: u64, range: std::ops::RangeInclusive<u64>) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
        .clamp(*range.start(), *range.end())
}

pub fn cluster_pb() -> String {
    let mut s = String::from(
        "seesaw_vip: < fqdn: \"seesaw-vip.lab.\" ipv4: \"192.0.2.1/24\" status: PRODUCTION >\n",
    );
    for (name, ip, _) in LBS {
        s.push_str(&format!(
            "node: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION >\n"
        ));
    }
    s.push_str(
        "vserver: <\n  name: \"web@lab\"\n  entry_address: < fqdn: \"web.lab.\" ipv4: \"198.51.100.1/32\" status: PRODUCTION >\n  rp: \"lab@example.com\"\n  \
         vserver_entry: < protocol: TCP port: 80 scheduler: RR mode: NAT healthcheck: < type: HTTP interval: 1 timeout: 1 send: \"/\" code: 200 > >\n",
    );
    for (name, ip) in BACKENDS {
        s.push_str(&format!(
            "  backend: < host: < fqdn: \"{name}.lab.\" ipv4: \"{ip}/24\" status: PRODUCTION > weight: 1 >\n"
        ));
    }
    s.push_str(">\n");
    s
}

/// One request: when it started and ended, and whether it was answered. The node served it at
/// some instant between `start` and `end`.
#[derive(Debug, Clone, Copy)]
pub struct Probe {
    pub start: Instant,
    /// When it ended.
    pub end: Instant,
    /// Whether it was answered with 200.
    pub ok: bool,
}

/// Probes through both clients until `stop`; bounded by `max`. A new probe starts every 10 ms
/// on each client whatever the earlier ones do: a probe that meets a node which drops SYNs
/// takes its full 100 ms timeout, and a single probing thread would then sample that path only
/// every 110 ms — the resolution of every outage measured on it. So each client has
/// [`PROBE_THREADS`] threads, each starting a probe every `PROBE_THREADS × 10 ms`, staggered by
/// 10 ms.
pub struct Prober {
    stop: Arc<AtomicBool>,
    handles: Vec<(usize, std::thread::JoinHandle<Vec<Probe>>)>,
}

/// Probing threads per client: their cycle (12 × 10 ms) exceeds the probe timeout (100 ms).
pub const PROBE_THREADS: u32 = 12;

impl Prober {
    /// Starts probing; `max` bounds the run.
    pub fn start(lab: &Arc<Lab>, max: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let mut handles = Vec::new();
        let t0 = Instant::now();
        for (which, client) in ["client1", "client2"].into_iter().enumerate() {
            for k in 0..PROBE_THREADS {
                let lab = Arc::clone(lab);
                let stop = Arc::clone(&stop);
                let handle = std::thread::spawn(move || {
                    let vip: SocketAddr = VIP.parse().expect("literal");
                    let cycle = PROBE_EVERY * PROBE_THREADS;
                    lab.run_in(client, || {
                        let mut out = Vec::new();
                        let end = t0 + max;
                        let mut next = t0 + PROBE_EVERY * k;
                        let bound = max.as_millis() / cycle.as_millis() + 2;
                        for _ in 0..bound {
                            if let Some(wait) = next.checked_duration_since(Instant::now()) {
                                std::thread::sleep(wait);
                            }
                            if stop.load(Ordering::Relaxed) || Instant::now() >= end {
                                break;
                            }
                            let t = Instant::now();
                            let ok = matches!(http::get(vip, "/", Duration::from_millis(100)), Ok(r) if r.status == 200);
                            out.push(Probe { start: t, end: Instant::now(), ok });
                            next += cycle;
                        }
                        out
                    })
                    .expect("entering the client namespace")
                });
                handles.push((which, handle));
            }
        }
        Self { stop, handles }
    }

    /// Stops probing; every probe per client, by start time.
    pub fn finish(mut self) -> [Vec<Probe>; 2] {
        self.stop.store(true, Ordering::Relaxed);
        let mut out = [Vec::new(), Vec::new()];
        for (which, h) in std::mem::take(&mut self.handles) {
            out[which].extend(h.join().expect("prober"));
        }
        for list in &mut out {
            list.sort_by_key(|p| p.start);
        }
        out
    }
}

/// Also when the test fails: the probing threads hold the lab, and the lab stops its processes
/// and removes its namespaces only when the last holder lets go.
impl Drop for Prober {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for (_, h) in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Which path answers right now (one probe each, a few tries).
pub fn serving(lab: &Lab) -> [bool; 2] {
    let vip: SocketAddr = VIP.parse().expect("literal");
    let mut r = [false; 2];
    for (i, client) in ["client1", "client2"].iter().enumerate() {
        r[i] = lab
            .run_in(client, || {
                (0..3).any(|_| {
                    matches!(http::get(vip, "/", Duration::from_millis(200)), Ok(x) if x.status == 200)
                })
            })
            .expect("client ns");
    }
    r
}

/// Waits (bounded) until exactly one node serves; returns its index.
pub fn one_master(lab: &Lab, within: Duration) -> Option<usize> {
    let end = Instant::now() + within;
    while Instant::now() < end {
        match serving(lab) {
            [true, false] => return Some(0),
            [false, true] => return Some(1),
            _ => std::thread::sleep(Duration::from_millis(50)),
        }
    }
    None
}

/// The `p` quantile of sorted durations (nearest rank).
pub fn pct(sorted: &[Duration], p: f64) -> Duration {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "small counts"
    )]
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// False takeovers on a loaded machine: two threads per core spin at normal priority (the
/// daemons keep the shipped nice values) for `window` while both clients probe; returns how
/// often the answering node changed (0 expected). Prints an `HA-LAB` line.
#[allow(clippy::print_stdout, reason = "the measurement is the output")]
pub fn takeovers_under_load(lab: &Arc<Lab>, window: Duration) -> usize {
    let stop = Arc::new(AtomicBool::new(false));
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let hogs: Vec<_> = (0..cores * 2)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(
                        x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1),
                    );
                }
            })
        })
        .collect();
    let prober = Prober::start(lab, window + Duration::from_secs(1));
    std::thread::sleep(window);
    let samples = prober.finish();
    stop.store(true, Ordering::Relaxed);
    for h in hogs {
        let _ = h.join();
    }
    // The answering node over time: merge both paths' answers by start time.
    let mut answers: Vec<(Instant, usize)> = samples
        .iter()
        .enumerate()
        .flat_map(|(i, list)| list.iter().filter(|p| p.ok).map(move |p| (p.start, i)))
        .collect();
    answers.sort();
    let switches = answers.windows(2).filter(|w| w[0].1 != w[1].1).count();
    let failed = samples.iter().flatten().filter(|p| !p.ok).count();
    println!(
        "HA-LAB Load: {} spinning threads for {window:?} at {} ms adverts: the answering node changed {switches} times; {} answers, {failed} probes unanswered (the backup's path)",
        cores * 2,
        interval().as_millis(),
        answers.len()
    );
    switches
}

/// The CPU cost of HA on each node in steady state over `window`, as a share of one core: the
/// ha process (adverts, receive checks, lease renewals) and ncc (answering the renewals; it also
/// serves the engine's periodic reads). Printed as `HA-LAB CPU` lines; returns ha's share per
/// node.
#[allow(clippy::print_stdout, reason = "the measurement is the output")]
pub fn advert_cpu(run_dirs: &[std::path::PathBuf], window: Duration) -> Vec<f64> {
    let pid = |d: &std::path::PathBuf, name: &str| {
        procs::find_daemon(name, "SEESAW_RUN_DIR", &d.to_string_lossy())
            .first()
            .copied()
    };
    let watched: Vec<(Option<i32>, Option<i32>)> = run_dirs
        .iter()
        .map(|d| (pid(d, "seesaw_ha"), pid(d, "seesaw_ncc")))
        .collect();
    let read = |p: Option<i32>| p.and_then(procs::cpu_time).unwrap_or_default();
    let before: Vec<_> = watched.iter().map(|(h, n)| (read(*h), read(*n))).collect();
    let t = Instant::now();
    std::thread::sleep(window);
    let elapsed = t.elapsed().as_secs_f64();
    let mut shares = Vec::new();
    for (i, ((h, n), (h0, n0))) in watched.iter().zip(before).enumerate() {
        let ha = (read(*h).saturating_sub(h0)).as_secs_f64() / elapsed * 100.0;
        let ncc = (read(*n).saturating_sub(n0)).as_secs_f64() / elapsed * 100.0;
        println!(
            "HA-LAB CPU {} at {} ms adverts over {window:?}: ha {ha:.2}% of a core, ncc {ncc:.2}%",
            LBS[i].0,
            interval().as_millis()
        );
        shares.push(ha);
    }
    shares
}
