//! Seesaw's default scheduler, WLC, on the two kernel planes, same workload, same run: IPVS's
//! exact WLC and the nftables plane's approximation (slots re-cut from conntrack counts every
//! 250 ms). Three backends answer after unequal service times; a pool of concurrent clients
//! opens one connection per request; each backend's share of the connections is reported per
//! plane, and the largest difference between the planes.
//!
//! `wlcbench [--conns N] [--rounds R] [--clients C]` boots the kernel lab (this host's kernel has
//! no IPVS) and runs `wlcbench guest …` inside it, which alternates the planes round by round
//! (IPVS, nftables, IPVS, …) so both see the same machine. Needs root, QEMU and the lab's
//! packages (`seesaw_lab::vm::missing` names them). Results go to `bench/RESULTS.md` by hand.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark reports to its operator"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use seesaw_lab::vm::{self, Vm};
use seesaw_lab::{Lab, bins, http};
use seesaw_ncc::dataplane::ipvs::IpvsPlane;
use seesaw_ncc::dataplane::ipvs::sys::Netlink;
use seesaw_ncc::dataplane::nftables::{NfnlLoads, NftCli, NftPlane, SAMPLE_PERIOD};
use seesaw_ncc::dataplane::{Dataplane, apply};
use seesaw_ncc::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey, ServiceOpts};

const VIP: &str = "198.51.100.1";
/// Name, address and service time of each backend.
const BACKENDS: [(&str, &str, u64); 3] = [
    ("be1", "203.0.113.11", 5),
    ("be2", "203.0.113.12", 20),
    ("be3", "203.0.113.13", 60),
];

struct Opts {
    conns: usize,
    rounds: usize,
    clients: usize,
}

fn opts(args: &[String]) -> Opts {
    let mut o = Opts {
        conns: 6000,
        rounds: 3,
        clients: 24,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let v = it
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{a} needs a number"));
        match a.as_str() {
            "--conns" => o.conns = v,
            "--rounds" => o.rounds = v,
            "--clients" => o.clients = v,
            _ => panic!("unknown option {a}"),
        }
    }
    o.rounds = o.rounds.clamp(1, 20);
    o.clients = o.clients.clamp(1, 256);
    o.conns = o.conns.clamp(o.rounds, 1_000_000);
    o
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("guest") {
        guest(&opts(&args[1..]));
        return;
    }
    if let Some(why) = vm::missing() {
        eprintln!("wlcbench: {why}");
        std::process::exit(2);
    }
    let o = opts(&args);
    let kernel = Vm::prepare().unwrap_or_else(|e| panic!("preparing the kernel lab: {e}"));
    let exe = std::env::current_exe().expect("this binary");
    let script = format!(
        "cd {}\nexport SEESAW_LAB_PROFILE={}\n{} guest --conns {} --rounds {} --clients {} 2>&1\n",
        bins::workspace_dir().display(),
        std::env::var("SEESAW_LAB_PROFILE").unwrap_or_else(|_| "release".into()),
        exe.display(),
        o.conns,
        o.rounds,
        o.clients
    );
    let run = kernel
        .run(&script, Duration::from_secs(3600))
        .unwrap_or_else(|e| panic!("the kernel lab: {e}"));
    let out: Vec<&str> = run
        .console
        .lines()
        .skip_while(|l| !l.starts_with("wlcbench"))
        .take_while(|l| !l.starts_with("SEESAW-VM-EXIT"))
        .collect();
    println!("{}", out.join("\n"));
    println!(
        "kernel {}: {:.0} s in the VM",
        kernel.version,
        run.wall.as_secs_f64()
    );
    if run.status != Some(0) {
        eprintln!("wlcbench: the guest failed ({:?})", run.status);
        std::process::exit(1);
    }
}

fn sh(lab: &Lab, node: &str, script: &str) {
    lab.stdout_of(node, "sh", &["-c", script], Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"));
}

fn scene() -> Lab {
    let mut b = seesaw_lab::nat_lab::client_and_lb1(&["192.0.2.100/24"]);
    for (name, ip, _) in BACKENDS {
        b = seesaw_lab::nat_lab::backend_via_lb1(b, name, ip);
    }
    let mut lab = b
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    sh(
        &lab,
        "lb1",
        // As ncc sets them (Seesaw's sysctls), send_redirects off included: lb1 forwards out
        // the interface it received on, and a redirect would send the backends' replies
        // straight to the client, past the NAT.
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
         net.ipv4.conf.eth0.rp_filter=0 net.ipv4.vs.conntrack=1 \
         net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 && \
         ip link add dummy0 type dummy && ip link set dummy0 up && \
         ip addr add 198.51.100.1/32 dev dummy0",
    );
    let seesaw = bins::binary("seesaw").expect("built");
    for (name, ip, delay) in BACKENDS {
        let listen = format!("{ip}:80");
        lab.spawn(
            name,
            &seesaw,
            &[
                "demo-backend",
                "--listen",
                &listen,
                "--name",
                name,
                "--delay-ms",
                &delay.to_string(),
            ],
            &[],
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        lab.wait_tcp(
            name,
            listen.parse().expect("literal"),
            Duration::from_secs(30),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    lab
}

fn service() -> Service {
    let mut dests: Vec<Dest> = BACKENDS
        .iter()
        .map(|(_, ip, _)| Dest::new(format!("{ip}:80").parse().expect("literal"), 1))
        .collect();
    dests.sort();
    Service {
        anchor: None,
        key: ServiceKey::new(VIP.parse().expect("literal"), Protocol::Tcp, 80),
        scheduler: Scheduler::Wlc,
        mode: ForwardMode::Nat,
        persistence: 0,
        dests,
        opts: ServiceOpts::default(),
        marks: Vec::new(),
    }
}

/// `n` connections, one request each, from `clients` concurrent clients; answers by backend.
fn load(lab: &Lab, n: usize, clients: usize) -> (BTreeMap<String, usize>, usize, Duration) {
    let vip: SocketAddr = format!("{VIP}:80").parse().expect("literal");
    lab.run_in("client", move || {
        let left = Arc::new(AtomicUsize::new(n));
        let t0 = Instant::now();
        let threads: Vec<_> = (0..clients)
            .map(|_| {
                let left = Arc::clone(&left);
                std::thread::spawn(move || {
                    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                    let mut failed = Vec::new();
                    while left
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |v| v.checked_sub(1))
                        .is_ok()
                    {
                        match http::get(vip, "/", Duration::from_secs(5)) {
                            Ok(r) if r.status == 200 => {
                                *seen.entry(r.text().trim().to_owned()).or_default() += 1;
                            }
                            other => failed.push(format!("{:?} {other:?}", t0.elapsed())),
                        }
                    }
                    (seen, failed)
                })
            })
            .collect();
        let mut all = BTreeMap::new();
        let mut failed = 0;
        for t in threads {
            let (seen, f) = t.join().expect("client thread");
            failed += f.len();
            for why in f.iter().take(3) {
                println!("wlcbench failure: {why}");
            }
            for (k, v) in seen {
                *all.entry(k).or_default() += v;
            }
        }
        (all, failed, t0.elapsed())
    })
    .expect("entering client")
}

fn guest(o: &Opts) {
    assert!(vm::ipvs_here(), "wlcbench guest: no IPVS in this kernel");
    let lab = scene();
    let per_round = o.conns / o.rounds;
    println!(
        "wlcbench: WLC, NAT, 3 backends answering after {} ms, equal weights; {} clients; \
         {} rounds × {per_round} connections per plane",
        BACKENDS
            .iter()
            .map(|b| b.2.to_string())
            .collect::<Vec<_>>()
            .join("/"),
        o.clients,
        o.rounds
    );
    let mut totals: BTreeMap<&str, BTreeMap<String, usize>> = BTreeMap::new();
    for round in 0..o.rounds {
        for plane in ["ipvs", "nftables"] {
            let svc = service();
            let (counts, failed, took) = if plane == "ipvs" {
                let s = svc.clone();
                lab.run_in("lb1", move || {
                    let mut p =
                        IpvsPlane::new(Netlink::open().expect("IPVS netlink")).expect("read IPVS");
                    apply(&mut p, &[s]).expect("apply");
                })
                .expect("lb1");
                let r = load(&lab, per_round, o.clients);
                lab.run_in("lb1", || {
                    let mut p =
                        IpvsPlane::new(Netlink::open().expect("IPVS netlink")).expect("read IPVS");
                    apply(&mut p, &[]).expect("remove");
                })
                .expect("lb1");
                r
            } else {
                // The plane and its re-weighting thread live in lb1 for the round.
                let (tx, rx) = std::sync::mpsc::channel::<()>();
                let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
                let s = svc.clone();
                let keeper = lab.thread_in("lb1", move || {
                    let mut p = NftPlane::new(NftCli::default(), Some("eth0".to_owned()))
                        .expect("read nftables")
                        .with_rebalancer(Box::new(NfnlLoads::default()), SAMPLE_PERIOD);
                    apply(&mut p, std::slice::from_ref(&s)).expect("apply");
                    ready_tx.send(()).expect("ready");
                    let _ = rx.recv();
                    apply(&mut p, &[]).expect("remove");
                    assert!(p.current().is_empty());
                });
                let keeper = keeper.expect("lb1");
                ready_rx.recv().expect("the nftables plane");
                let r = load(&lab, per_round, o.clients);
                drop(tx);
                keeper.join().expect("the nftables plane");
                r
            };
            let rate = (per_round - failed) as f64 / took.as_secs_f64();
            println!(
                "wlcbench round {round} {plane:8}: {counts:?} failed {failed} ({rate:.0} conn/s)"
            );
            assert_eq!(failed, 0, "{plane}: failed connections");
            let t = totals.entry(plane).or_default();
            for (k, v) in counts {
                *t.entry(k).or_default() += v;
            }
        }
    }
    println!("wlcbench | backend (service time) | IPVS wlc | nftables wlc | difference |");
    println!("wlcbench |---|---|---|---|");
    let mut worst: f64 = 0.0;
    for (name, _, delay) in BACKENDS {
        let share = |plane: &str| {
            let t = &totals[plane];
            let all: usize = t.values().sum();
            100.0 * *t.get(name).unwrap_or(&0) as f64 / all.max(1) as f64
        };
        let (a, b) = (share("ipvs"), share("nftables"));
        worst = worst.max((a - b).abs());
        println!(
            "wlcbench | {name} ({delay} ms) | {a:.1} % | {b:.1} % | {:.1} pp |",
            (a - b).abs()
        );
    }
    println!(
        "wlcbench: largest difference {worst:.1} percentage points (target ≤ 10): {}",
        if worst <= 10.0 { "met" } else { "NOT met" }
    );
}
