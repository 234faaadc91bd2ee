//! The HA pair in the namespace lab (root only; skips otherwise): the scene of
//! `seesaw_lab::ha_pair` — `lb1` and `lb2` each run the whole suite under its watchdog, adverts
//! every 30 ms (`HA_LAB_INTERVAL_MS`), two backends behind one unicast VIP, and two clients:
//! `client1` routes the VIP through `lb1`, `client2` through `lb2`, so a request through a client
//! is answered exactly while its node serves as master. Each LB node has a node interface
//! (`eth0`: node address, adverts) and an LB interface (`eth1`), both on the lab bridge, as
//! Seesaw wants; the VIP is also on `lo` of both so the proxy can bind it at any time. A probe
//! starts every 10 ms on each client.
//!
//! The LB interface follows mastership (`use_vmac = false`, `garp_interval_sec = 1`): on the
//! master `eth1` is up with the cluster VIP and the VIP, the policy rules and table 2 routes; on
//! the backup it is down and the table is empty; after a `failover` the two swap; `client1`
//! hears periodic gratuitous ARPs from the master's `eth1` only (5 ± 1 over 5 s).
//!
//! Measured, 5 runs per fault by default (`HA_LAB_RUNS=20` for bench/RESULTS.md; `HA_LAB_FAULTS`
//! narrows: kill, stop, failover, engine, ncc, ha, link): kill -9 of the master's `seesaw_ha`,
//! SIGSTOP of every process on the master, the shell's `failover` (on the master in even runs, on
//! the backup in odd ones), SIGSTOP of the master's engine, ncc or ha alone for
//! `HA_LAB_STALL_SECS` (10), and the master's `eth0` down for 2 s. Outage: fault → the first
//! request the new master answers (`failover`: from the old master's last answer); for the stalls,
//! the longest time in which no client got an answer, over the stall and 2 s after it. Two
//! masters: the old master answered a request that started after the other had completed one.
//! Then the CPU cost of adverts per node (`HA-LAB CPU`), a forged-advert flood from a third host
//! without and with `auth_key_file`, and a partition (nftables drops protocol 112 in `lb1`) and
//! its healing. One `HA-LAB` line per scenario for bench/RESULTS.md.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_lab::config::write_atomic;
use seesaw_lab::ha_pair::{
    LBS, Probe, Prober, advert_cpu, handover, interval, one_master, pct, seesaw_cfg, serving,
    takeovers_under_load,
};
use seesaw_lab::{Lab, bins, ha_pair, procs};

/// `ip args` in `node`; its output.
fn ip_in(lab: &Lab, node: &str, args: &[&str]) -> String {
    lab.stdout_of(node, "ip", args, Duration::from_secs(5))
        .unwrap_or_else(|e| panic!("{e}"))
}

fn link_up(lab: &Lab, node: &str) -> bool {
    let l = ip_in(lab, node, &["-o", "link", "show", "eth1"]);
    l.split(['<', '>'])
        .nth(1)
        .unwrap_or_default()
        .split(',')
        .any(|f| f == "UP")
}

fn lb_mac(lab: &Lab, node: &str) -> [u8; 6] {
    let l = ip_in(lab, node, &["-o", "link", "show", "eth1"]);
    let hex = l
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {l}"));
    let mut mac = [0u8; 6];
    for (m, h) in mac.iter_mut().zip(hex.split(':')) {
        *m = u8::from_str_radix(h, 16).expect("hex MAC");
    }
    mac
}

/// On the master: `eth1` up with the cluster VIP and the VIP, the policy rules, the table-2
/// routes. On the backup: `eth1` down, no VIP rule, an empty table (bounded wait: the engine
/// applies within a second of the HA report).
fn lb_interfaces_follow(lab: &Lab, master: usize) {
    let (m, b) = (LBS[master].0, LBS[1 - master].0);
    let settled = (0..100).any(|_| {
        let ok = link_up(lab, m) && !link_up(lab, b);
        if !ok {
            std::thread::sleep(Duration::from_millis(100));
        }
        ok
    });
    assert!(settled, "{m}'s eth1 should be up and {b}'s down");
    let addrs = ip_in(lab, m, &["-o", "addr", "show", "dev", "eth1"]);
    assert!(
        addrs.contains("192.0.2.1/24"),
        "cluster VIP on {m}: {addrs}"
    );
    assert!(addrs.contains("198.51.100.1/32"), "VIP on {m}: {addrs}");
    let rules = ip_in(lab, m, &["rule", "show"]);
    for r in [
        "to 192.0.2.1 lookup 2",
        "from 192.0.2.1 lookup 2",
        "from 198.51.100.1 lookup 2",
    ] {
        assert!(rules.contains(r), "{m}: rule {r:?} missing: {rules}");
    }
    let table = ip_in(lab, m, &["route", "show", "table", "2"]);
    assert!(
        table.contains("192.0.2.0/24 dev eth1"),
        "{m} table 2: {table}"
    );
    let rules = ip_in(lab, b, &["rule", "show"]);
    assert!(
        !rules.contains("198.51.100.1"),
        "{b} keeps the VIP's rule: {rules}"
    );
    assert!(
        rules.contains("from 192.0.2.1 lookup 2"),
        "the cluster VIP's rules stay on {b}: {rules}"
    );
    let table = ip_in(lab, b, &["route", "show", "table", "2"]);
    assert!(table.trim().is_empty(), "{b} table 2: {table}");
}

/// `client1` hears the periodic GARPs (1 s) for the cluster VIP and the VIP from the master's
/// `eth1` only: 5 ± 1 each over 5 s, none from the backup. Starts 2 s after the transition's
/// bursts.
#[allow(clippy::print_stdout, reason = "the counts are the output")]
fn garp_from_master_only(lab: &Lab, master: usize) {
    let (mm, bm) = (lb_mac(lab, LBS[master].0), lb_mac(lab, LBS[1 - master].0));
    std::thread::sleep(Duration::from_secs(2));
    let sock = seesaw_lab::capture::open(lab, "client1").expect("capture socket");
    let window = Duration::from_secs(5);
    let heard = seesaw_lab::capture::listen(&sock, window).expect("capture");
    for ip in ["192.0.2.1", "198.51.100.1"] {
        let ip: std::net::IpAddr = ip.parse().expect("literal");
        let from_master = heard
            .iter()
            .filter(|h| h.ip == ip && h.eth_src == mm && h.mac == mm)
            .count();
        println!(
            "HA-LAB GARP {ip} from {} over {window:?}: {from_master}",
            LBS[master].0
        );
        assert!(
            (4..=6).contains(&from_master),
            "{ip}: {from_master} GARPs from the master in {window:?} (1 s interval): {heard:?}"
        );
    }
    assert!(
        !heard.iter().any(|h| h.eth_src == bm || h.mac == bm),
        "the backup announced: {heard:?}"
    );
}

/// Runs `seesaw -c failover` on node `on` against its run directory; the command must succeed.
fn ask_failover(lab: &Lab, run_dir: &Path, on: usize) {
    lab.seesaw(LBS[on].0, run_dir, &["-c", "failover"])
        .unwrap_or_else(|e| panic!("failover failed: {e}"));
}

fn env_pids(run_dir: &Path) -> Vec<i32> {
    procs::pids_with_env("SEESAW_RUN_DIR", &run_dir.to_string_lossy())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillHa,
    StopAll,
    Failover,
    /// SIGSTOP of the master's engine only, for the stall time.
    StopEngine,
    /// SIGSTOP of the master's ncc only.
    StopNcc,
    /// SIGSTOP of the master's ha only.
    StopHa,
    /// The master's node interface (`eth0`: adverts and the client path) down for 2 s.
    LinkDown,
}

impl Fault {
    /// The daemon a stall fault stops.
    fn stalled(self) -> Option<&'static str> {
        match self {
            Self::StopEngine => Some("seesaw_engine"),
            Self::StopNcc => Some("seesaw_ncc"),
            Self::StopHa => Some("seesaw_ha"),
            _ => None,
        }
    }
}

/// How long the stall faults stop their daemon: `HA_LAB_STALL_SECS`, 10 s by default.
fn stall() -> Duration {
    Duration::from_secs(ha_pair::setting("HA_LAB_STALL_SECS", 10, 1..=60))
}

/// A stall seen from the clients, over the whole window (the stall, and 2 s after it ends):
/// the outage is the longest time in which no path answered (a probe starts every 10 ms on each
/// path, so a healthy pair shows gaps of ~10 ms); two masters, as in [`analyse`], when the old
/// master answered a request that started after the other node had completed one — an overlap,
/// or mastership taken back on resuming — and the time between the two.
fn analyse_window(
    master: usize,
    t_fault: Instant,
    s: &[Vec<Probe>; 2],
) -> (Duration, bool, Duration) {
    let mut ok: Vec<Instant> = s
        .iter()
        .flatten()
        .filter(|p| p.ok)
        .map(|p| p.start)
        .collect();
    ok.sort();
    let last_before = ok
        .iter()
        .rev()
        .find(|t| **t < t_fault)
        .copied()
        .unwrap_or(t_fault);
    let end = s.iter().flatten().map(|p| p.start).max().unwrap_or(t_fault);
    let mut outage = Duration::ZERO;
    let mut prev = last_before;
    for t in ok.iter().filter(|t| **t >= t_fault) {
        outage = outage.max(t.saturating_duration_since(prev));
        prev = *t;
    }
    outage = outage.max(end.saturating_duration_since(prev));
    let new = 1 - master;
    let Some(first_new) = s[new].iter().find(|p| p.start >= t_fault && p.ok) else {
        return (outage, false, Duration::ZERO);
    };
    let last_old = s[master].iter().rfind(|p| p.ok);
    let overlap = last_old
        .map(|p| p.start.saturating_duration_since(first_new.end))
        .unwrap_or_default();
    (outage, overlap > Duration::ZERO, overlap)
}

/// 100 forged adverts a second to each node for 10 s from `attacker`, each spoofing the node's
/// peer at priority 255 (a master yields to it, a backup takes it for a live master: with both
/// fooled nobody serves). Returns how many probes failed meanwhile; prints an `HA-LAB` line.
#[allow(clippy::print_stdout, reason = "the measurement is the output")]
fn forged_flood(lab: &Arc<Lab>, label: &str) -> usize {
    let prober = Prober::start(lab, Duration::from_secs(14));
    std::thread::sleep(Duration::from_millis(500));
    let sent = lab
        .run_in("attacker", || {
            let sock = socket2::Socket::new(
                socket2::Domain::IPV4,
                socket2::Type::RAW,
                Some(socket2::Protocol::from(255)),
            )
            .expect("raw socket (IPPROTO_RAW: we write the IP header)");
            let packets: Vec<(Vec<u8>, socket2::SockAddr)> = (0..2)
                .map(|i| {
                    let (node, peer) = (
                        LBS[i].1.parse::<std::net::Ipv4Addr>().expect("literal"),
                        LBS[1 - i].1.parse::<std::net::Ipv4Addr>().expect("literal"),
                    );
                    let advert = seesaw_ha::advert::Advert::new(60, 255, interval());
                    let payload = advert.encode(peer.into(), node.into());
                    let dst = std::net::SocketAddr::from((node, 0));
                    (
                        seesaw_ha::advert::ipv4_datagram(peer, node, &payload),
                        dst.into(),
                    )
                })
                .collect();
            let mut sent = 0u32;
            let start = Instant::now();
            for n in 0..1000u32 {
                for (p, dst) in &packets {
                    if sock.send_to(p, dst).is_ok() {
                        sent += 1;
                    }
                }
                let next = start + Duration::from_millis(10) * (n + 1);
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
            sent
        })
        .expect("attacker namespace");
    std::thread::sleep(Duration::from_secs(2));
    let samples = prober.finish();
    // A request fails when neither path answers it: count the 10 ms slots without any answer.
    let ok: Vec<Instant> = samples
        .iter()
        .flatten()
        .filter(|p| p.ok)
        .map(|p| p.start)
        .collect();
    let all: Vec<Instant> = samples[0].iter().map(|p| p.start).collect();
    let failed = all
        .iter()
        .filter(|t| {
            !ok.iter()
                .any(|o| o.max(*t).duration_since(*o.min(*t)) <= Duration::from_millis(10))
        })
        .count();
    println!(
        "HA-LAB Forged adverts ({label}): {sent} sent over 10 s (priority 255, spoofing each node's peer, from a third host); {failed} of {} probe slots without an answer",
        all.len()
    );
    failed
}

fn unix_secs(t: std::time::SystemTime) -> f64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// Copies both nodes' logs to `$HA_LAB_KEEP_LOGS/<node>/` for timing analysis (the lab's own
/// directory is removed when the test ends).
#[allow(clippy::print_stdout, reason = "tells where the logs went")]
fn keep_logs(lab: &Lab) {
    let Some(dest) = std::env::var_os("HA_LAB_KEEP_LOGS") else {
        return;
    };
    for (name, _, _) in LBS {
        let (Ok(src), to) = (lab.log_dir(name), Path::new(&dest).join(name)) else {
            continue;
        };
        let _ = std::fs::create_dir_all(&to);
        for entry in std::fs::read_dir(&src).into_iter().flatten().flatten() {
            let _ = std::fs::copy(entry.path(), to.join(entry.file_name()));
        }
    }
    println!("logs kept in {}", Path::new(&dest).display());
}

#[test]
#[allow(
    clippy::print_stdout,
    clippy::too_many_lines,
    reason = "the measurements are the output"
)]
fn failover_outages_and_partition() {
    if !seesaw_lab::require_root() {
        return;
    }
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    let runs = ha_pair::setting("HA_LAB_RUNS", 5, 1..=100);
    let (lab, run_dirs) =
        ha_pair::start("proxy", interval()).unwrap_or_else(|e| panic!("starting the HA pair: {e}"));
    let lab = Arc::new(lab);
    let first = one_master(&lab, Duration::from_secs(60)).expect("one master within 60 s");
    println!("initial master: {}", LBS[first].0);

    let cpu = advert_cpu(&run_dirs, Duration::from_secs(10));
    let switches = takeovers_under_load(&lab, Duration::from_secs(10));
    assert_eq!(
        switches, 0,
        "mastership moved on a loaded machine with no fault"
    );

    let mut summary = Vec::new();
    // `HA_LAB_FAULTS=failover` (comma-separated: kill, stop, failover) narrows a diagnostic run;
    // the acceptance run is all three.
    let faults: Vec<Fault> = match std::env::var("HA_LAB_FAULTS") {
        Ok(list) => list
            .split(',')
            .filter_map(|f| match f.trim() {
                "kill" => Some(Fault::KillHa),
                "stop" => Some(Fault::StopAll),
                "failover" => Some(Fault::Failover),
                "engine" => Some(Fault::StopEngine),
                "ncc" => Some(Fault::StopNcc),
                "ha" => Some(Fault::StopHa),
                "link" => Some(Fault::LinkDown),
                _ => None,
            })
            .collect(),
        Err(_) => vec![
            Fault::KillHa,
            Fault::StopAll,
            Fault::Failover,
            Fault::StopEngine,
            Fault::StopNcc,
            Fault::StopHa,
            Fault::LinkDown,
        ],
    };
    for fault in faults {
        let mut outages = Vec::new();
        let mut two_masters = 0;
        let mut overlaps = Vec::new();
        for run in 0..runs {
            // A killed ha comes back after the watchdog's backoff (2 s, growing with repeated
            // failures): both nodes must run one before the next fault.
            let both_up = (0..1200).any(|_| {
                let up = run_dirs.iter().all(|d| {
                    !procs::find_daemon("seesaw_ha", "SEESAW_RUN_DIR", &d.to_string_lossy())
                        .is_empty()
                });
                if !up {
                    std::thread::sleep(Duration::from_millis(100));
                }
                up
            });
            assert!(
                both_up,
                "{fault:?} run {run}: seesaw_ha not running on both nodes"
            );
            std::thread::sleep(Duration::from_millis(600));
            let master = one_master(&lab, Duration::from_secs(30))
                .unwrap_or_else(|| panic!("{fault:?} run {run}: no single master to start from"));
            let prober = Prober::start(&lab, stall() + Duration::from_secs(8));
            std::thread::sleep(Duration::from_millis(300));
            // The processes are looked up first (a /proc scan takes a while on a loaded machine):
            // the fault's time is when the signal goes out.
            let ha_pids = procs::find_daemon(
                "seesaw_ha",
                "SEESAW_RUN_DIR",
                &run_dirs[master].to_string_lossy(),
            );
            let all_pids = env_pids(&run_dirs[master]);
            let stall_pids = fault.stalled().map_or_else(Vec::new, |name| {
                procs::find_daemon(name, "SEESAW_RUN_DIR", &run_dirs[master].to_string_lossy())
            });
            let t_fault = Instant::now();
            let fault_wall = std::time::SystemTime::now();
            let mut stopped = Vec::new();
            match fault {
                Fault::KillHa => {
                    assert!(!ha_pids.is_empty(), "no seesaw_ha on the master");
                    for &p in &ha_pids {
                        let _ = kill(Pid::from_raw(p), Signal::SIGKILL);
                    }
                }
                Fault::StopAll => {
                    stopped = all_pids;
                    for &p in &stopped {
                        let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
                    }
                }
                Fault::StopEngine | Fault::StopNcc | Fault::StopHa => {
                    stopped = stall_pids;
                    assert!(
                        !stopped.is_empty(),
                        "{fault:?}: no such daemon on the master"
                    );
                    for &p in &stopped {
                        let _ = kill(Pid::from_raw(p), Signal::SIGSTOP);
                    }
                    std::thread::sleep(stall());
                    for &p in &stopped {
                        let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
                    }
                    stopped.clear();
                }
                Fault::LinkDown => {
                    ip_in(&lab, LBS[master].0, &["link", "set", "eth0", "down"]);
                    std::thread::sleep(Duration::from_secs(2));
                    ip_in(&lab, LBS[master].0, &["link", "set", "eth0", "up"]);
                }
                Fault::Failover => {
                    // Odd runs ask the backup, which relays the request to the master over
                    // engine-to-engine peer sync; even runs ask the master itself.
                    let on = if run % 2 == 1 { 1 - master } else { master };
                    ask_failover(&lab, &run_dirs[on], on);
                }
            }
            // The window covers the hand-over delay (`failover` takes effect with the master's
            // next status report, ≤ 1 s) plus the outage bound; the outage itself is measured
            // from the old master's last answer.
            std::thread::sleep(Duration::from_millis(2500));
            let samples = prober.finish();
            for &p in &stopped {
                let _ = kill(Pid::from_raw(p), Signal::SIGCONT);
            }
            let (outage, two, overlap) = if fault.stalled().is_some() {
                analyse_window(master, t_fault, &samples)
            } else {
                handover(master, t_fault, &samples, fault == Fault::Failover)
            };
            if std::env::var_os("HA_LAB_DEBUG").is_some() {
                for (who, list) in samples.iter().enumerate() {
                    for p in list.iter().filter(|p| {
                        p.end >= t_fault && p.start <= t_fault + Duration::from_millis(300)
                    }) {
                        println!(
                            "  probe via {} start={:+.1}ms took={:.1}ms ok={}",
                            LBS[who].0,
                            p.start.saturating_duration_since(t_fault).as_secs_f64() * 1e3
                                - t_fault.saturating_duration_since(p.start).as_secs_f64() * 1e3,
                            (p.end - p.start).as_secs_f64() * 1e3,
                            p.ok
                        );
                    }
                }
            }
            println!(
                "HA-RUN {fault:?} run={run} master={} fault_at={:.3} outage={outage:?} two={two}",
                LBS[master].0,
                unix_secs(fault_wall),
            );
            assert!(
                outage != Duration::MAX,
                "{fault:?} run {run}: the peer never served"
            );
            outages.push(outage);
            overlaps.push(overlap);
            two_masters += usize::from(two);
            // Let the pair settle (a killed ha is restarted after 2 s; a resumed master steps
            // down or keeps mastership by priority) before the next run.
            std::thread::sleep(Duration::from_millis(match fault {
                Fault::KillHa => 3500,
                _ => 500,
            }));
        }
        outages.sort();
        overlaps.sort();
        let line = format!(
            "HA-LAB {fault:?}: runs={runs} outage median={:?} p99={:?} max={:?}; runs with two masters={two_masters}; both-serving median={:?} max={:?}",
            pct(&outages, 0.5),
            pct(&outages, 0.99),
            outages[outages.len() - 1],
            pct(&overlaps, 0.5),
            overlaps[overlaps.len() - 1],
        );
        println!("{line}");
        let max_overlap = overlaps[overlaps.len() - 1];
        summary.push((fault, outages, two_masters, max_overlap));
    }

    // The LB interface follows mastership, also across a failover, and only the master sends
    // the periodic gratuitous ARPs.
    let master =
        one_master(&lab, Duration::from_secs(30)).expect("one master before the LB checks");
    lb_interfaces_follow(&lab, master);
    garp_from_master_only(&lab, master);
    ask_failover(&lab, &run_dirs[master], master);
    let end = Instant::now() + Duration::from_secs(15);
    let new = loop {
        match one_master(&lab, Duration::from_secs(1)) {
            Some(m) if m != master => break m,
            _ if Instant::now() > end => panic!("no new master after failover"),
            _ => {}
        }
    };
    lb_interfaces_follow(&lab, new);
    garp_from_master_only(&lab, new);

    // Forged adverts: without a key they take the VIP down; with one they change nothing.
    let unkeyed = forged_flood(&lab, "no key");
    assert!(
        unkeyed > 0,
        "a forged flood without a key failed no request: the README's warning would be wrong"
    );
    for (i, (name, _, _)) in LBS.iter().enumerate() {
        let config = lab.config_dir(name).expect("lb");
        let key = config.join("ha.key");
        std::fs::write(&key, b"lab key: 32 bytes or more, the same on both nodes")
            .expect("key file");
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .expect("key mode");
        let cfg = seesaw_cfg(LBS[i].1, LBS[1 - i].1).replace(
            "[ha]\n",
            &format!("[ha]\nauth_key_file = {}\n", key.display()),
        );
        write_atomic(&config, "seesaw.cfg", &cfg).expect("seesaw.cfg");
    }
    for (i, (name, _, _)) in LBS.iter().enumerate() {
        lab.seesaw(name, &run_dirs[i], &["-c", "config reload"])
            .unwrap_or_else(|e| panic!("config reload on {name}: {e}"));
    }
    // ha re-reads the config within its fetch interval (15 s); restarted, at once.
    for d in &run_dirs {
        for p in procs::find_daemon("seesaw_ha", "SEESAW_RUN_DIR", &d.to_string_lossy()) {
            let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
        }
    }
    std::thread::sleep(Duration::from_secs(3));
    one_master(&lab, Duration::from_secs(30)).expect("one master with keys");
    std::thread::sleep(Duration::from_secs(1));
    let keyed = forged_flood(&lab, "key");
    assert_eq!(
        keyed, 0,
        "a forged flood failed requests although both nodes have a key"
    );

    // Partition: drop protocol 112 both ways in lb1, then heal.
    let master =
        one_master(&lab, Duration::from_secs(30)).expect("one master before the partition");
    let nft = |args: &str| {
        let out = lab
            .exec("lb1", "nft", &[args], &[], Duration::from_secs(5))
            .expect("nft");
        assert!(out.status.success(), "nft {args}: {}", out.combined());
    };
    nft(
        "add table inet halab; add chain inet halab in { type filter hook input priority 0; }; \
         add chain inet halab out { type filter hook output priority 0; }; \
         add rule inet halab in ip protocol 112 drop; add rule inet halab out ip protocol 112 drop",
    );
    let t_part = Instant::now();
    let both_seen = (0..100).find_map(|_| {
        std::thread::sleep(Duration::from_millis(20));
        (serving(&lab) == [true, true]).then(Instant::now)
    });
    let both_at = both_seen.expect("both nodes master during the partition");
    std::thread::sleep(Duration::from_secs(1));
    // Healing, seen by the clients: until when did both answer?
    let prober = Prober::start(&lab, Duration::from_secs(4));
    std::thread::sleep(Duration::from_secs(1));
    let t_heal = Instant::now();
    nft("delete table inet halab");
    std::thread::sleep(Duration::from_secs(2));
    let samples = prober.finish();
    let healed = one_master(&lab, Duration::from_secs(5)).expect("one master after healing");
    // The loser's last answer after the heal: from then on only one node serves.
    let converged = samples[1 - healed]
        .iter()
        .filter(|p| p.ok && p.start >= t_heal)
        .map(|p| p.end.saturating_duration_since(t_heal))
        .max()
        .unwrap_or_default();
    println!(
        "HA-LAB Partition: both master after {:?}; partition held {:?}; after healing the loser ({}) answered its last request {:?} later (2 intervals: {:?}; probes every 10 ms)",
        both_at - t_part,
        t_heal - t_part,
        LBS[1 - healed].0,
        converged,
        interval() * 2
    );
    let _ = master;
    keep_logs(&lab);

    // The budget (1 % of a core) is for release builds; debug builds cost several times more
    // and are only printed.
    if std::env::var("SEESAW_LAB_PROFILE").as_deref() == Ok("release") {
        for (i, share) in cpu.iter().enumerate() {
            assert!(*share <= 1.0, "{}: ha used {share:.2}% of a core", LBS[i].0);
        }
    }
    // The targets of bench/RESULTS.md: ha death and `failover` ≤ 50 ms p99, a master crash and
    // a link down ≤ 150 ms; stalls of one daemon ≤ 150 ms with the two nodes serving at once for
    // at most one advert interval. The acceptance run (20 runs or more) holds them exactly; the
    // shorter default run (CI, a machine not measured here) gets 50 ms of slack on the outage,
    // and none on two masters or on both serving.
    let slack = if runs >= 20 {
        Duration::ZERO
    } else {
        Duration::from_millis(50)
    };
    for (fault, outages, two, overlap) in &summary {
        let p99 = pct(outages, 0.99);
        let bound = slack
            + match fault {
                Fault::KillHa | Fault::Failover => Duration::from_millis(50),
                _ => Duration::from_millis(150),
            };
        assert!(p99 <= bound, "{fault:?}: outage p99 {p99:?} > {bound:?}");
        match fault {
            Fault::StopEngine | Fault::StopNcc | Fault::StopHa => assert!(
                *overlap <= interval(),
                "{fault:?}: both nodes served for {overlap:?} (> one interval)"
            ),
            _ => assert_eq!(*two, 0, "{fault:?} showed two masters"),
        }
    }
    // One master within two intervals (the masters hear each other within one), plus the
    // loser's engine taking its VIPs down (~20 ms) and one probe period.
    assert!(
        converged <= interval() * 2 + Duration::from_millis(50),
        "after healing both nodes served for {converged:?}"
    );
}
