//! The nftables data plane in the namespace lab (root only; skips otherwise): a client, one load
//! balancer and three HTTP backends. ncc's nftables plane is driven in-process from a thread
//! inside `lb1` (each step builds a new plane, so each step also proves adopt-at-start), and
//! the client measures what the kernel does with real connections:
//!
//! - NAT rr alternates exactly; NAT wrr 3:2:1 holds within 5 % over 3,000 requests;
//! - sh sends one client to one backend;
//! - mh: removing one of three backends moves only the flows that were on it (per client
//!   address, 48 of them);
//! - DSR (netdev ingress, MAC rewrite and forward; backends hold the VIP on `lo`) serves HTTP,
//!   with rr flows kept on their backend by the flow map;
//! - the whole suite: a `use_fwm` vserver (two ports, one firewall-mark service, one rr
//!   rotation across both ports) and DSR health checks through the VIP (each probe mark reaches
//!   its own backend; a stopped backend leaves the plane, the others stay).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::os::fd::AsRawFd;
use std::time::Duration;

use seesaw_lab::{Lab, ProcId, bins, http, nat_lab};
use seesaw_ncc::dataplane::nftables::{NftCli, NftPlane};
use seesaw_ncc::dataplane::{Change, Dataplane, apply};
use seesaw_ncc::model::{ForwardMode, Scheduler, Service};
use seesaw_ncc::sched::{Algo, Member, Picker, hash_addr};

#[path = "support/plane.rs"]
mod plane;
#[path = "nftables/wlc.rs"]
mod wlc;

const NAT_VIP: &str = "198.51.100.1";
const DSR_VIP: &str = "198.51.100.2";
const BACKENDS: [(&str, &str); 3] = [
    ("be1", "203.0.113.11"),
    ("be2", "203.0.113.12"),
    ("be3", "203.0.113.13"),
];
/// Extra client addresses, one "flow" each for the mh test.
const CLIENTS: u8 = 48;

fn service(vip: &str, port: u16, sched: Scheduler, mode: ForwardMode, w: &[u32]) -> Service {
    let addrs = BACKENDS.iter().map(|(_, ip)| format!("{ip}:{port}"));
    plane::tcp_service(vip, port, sched, mode, addrs.zip(w.iter().copied()))
}

/// Applies `desired` with a fresh plane inside lb1 and returns the change list.
fn apply_in_lb(lab: &Lab, desired: &[Service]) -> Vec<Change> {
    let desired = desired.to_vec();
    lab.run_in("lb1", move || {
        let mut plane =
            NftPlane::new(NftCli::default(), Some("eth0".to_owned())).expect("read nftables");
        apply(&mut plane, &desired).expect("apply")
    })
    .expect("entering lb1")
}

/// One HTTP/1.0 request from `src`; returns the backend's name.
fn get_from(src: Ipv4Addr, vip: SocketAddr) -> Result<String, String> {
    marked_get_from(src, vip, 0)
}

/// [`get_from`] with `SO_MARK` = `mark` (0: unmarked), as a DSR health-check probe sends it.
fn marked_get_from(src: Ipv4Addr, vip: SocketAddr, mark: u32) -> Result<String, String> {
    use nix::sys::socket::{
        AddressFamily, SockFlag, SockType, SockaddrIn, bind, connect, setsockopt, socket, sockopt,
    };
    let SocketAddr::V4(v4) = vip else {
        return Err("IPv4 only".into());
    };
    let fd = socket(
        AddressFamily::Inet,
        SockType::Stream,
        SockFlag::empty(),
        None,
    )
    .map_err(|e| e.to_string())?;
    let tv = nix::sys::time::TimeVal::new(3, 0);
    setsockopt(&fd, sockopt::SendTimeout, &tv).map_err(|e| e.to_string())?;
    setsockopt(&fd, sockopt::ReceiveTimeout, &tv).map_err(|e| e.to_string())?;
    if mark != 0 {
        setsockopt(&fd, sockopt::Mark, &mark).map_err(|e| format!("SO_MARK: {e}"))?;
    }
    bind(fd.as_raw_fd(), &SockaddrIn::from(SocketAddrV4::new(src, 0)))
        .map_err(|e| e.to_string())?;
    connect(fd.as_raw_fd(), &SockaddrIn::from(v4)).map_err(|e| format!("connect: {e}"))?;
    let mut s = TcpStream::from(fd);
    s.write_all(format!("GET / HTTP/1.0\r\nHost: {vip}\r\n\r\n").as_bytes())
        .map_err(|e| e.to_string())?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).map_err(|e| e.to_string())?;
    raw.split("\r\n\r\n")
        .nth(1)
        .map(|b| b.trim().to_owned())
        .ok_or_else(|| format!("no body in {raw:?}"))
}

fn names(lab: &Lab, vip: SocketAddr, n: usize) -> Vec<String> {
    plane::names(lab, vip, n, Duration::from_secs(3))
}

/// Starts a demo backend named `name` in node `name` on `listen` and waits until it accepts.
fn start_backend(lab: &mut Lab, name: &str, listen: &str) -> ProcId {
    lab.start_demo_backend(name, listen.parse().expect("an address"), name)
        .unwrap_or_else(|e| panic!("starting {name} on {listen}: {e}"))
}

/// Whether this lab can run here: root and `nft` (each missing one prints why the test skips);
/// the suite's binaries must be built.
fn can_run() -> bool {
    if !seesaw_lab::require_nft("the nftables lab test") {
        return false;
    }
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    true
}

/// `client` (with `client_addrs`) → `lb1` (192.0.2.10 / 203.0.113.1, nothing running) → the
/// three [`BACKENDS`], each holding the DSR VIP on `lo` and routing the client net back via lb1.
fn backends_behind_lb1(client_addrs: &[&str]) -> Lab {
    let mut builder = nat_lab::client_and_lb1(client_addrs);
    for (name, ip) in BACKENDS {
        builder =
            nat_lab::backend_via_lb1(builder, name, ip).loopback(name, &format!("{DSR_VIP}/32"));
    }
    builder
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"))
}

/// The scheduler lab: `client` (192.0.2.100 and [`CLIENTS`] more addresses) → `lb1`
/// (forwarding, 192.0.2.10 / 203.0.113.1, no plane yet) → the three [`BACKENDS`], each serving
/// HTTP on port 80 (its name as the body) and holding the DSR VIP on `lo`.
fn scheduler_lab() -> Lab {
    let client_addrs: Vec<String> = std::iter::once("192.0.2.100/24".to_owned())
        .chain((0..CLIENTS).map(|i| format!("192.0.2.{}/24", 150 + i)))
        .collect();
    let client_refs: Vec<&str> = client_addrs.iter().map(String::as_str).collect();
    let mut lab = backends_behind_lb1(&client_refs);

    // lb1 forwards; DSR replies (source: the VIP, which lb1 has no route for) pass through it.
    lab.run_in("lb1", || {
        for (k, v) in [
            ("net/ipv4/ip_forward", "1"),
            ("net/ipv4/conf/all/rp_filter", "0"),
            ("net/ipv4/conf/eth0/rp_filter", "0"),
        ] {
            std::fs::write(format!("/proc/sys/{k}"), v).expect("sysctl");
        }
    })
    .expect("entering lb1");

    for (name, _) in BACKENDS {
        lab.start_demo_backend(name, "0.0.0.0:80".parse().expect("literal"), name)
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    }

    lab
}

#[test]
fn nat_and_dsr_schedulers_on_the_nftables_plane() {
    if !can_run() {
        return;
    }
    let lab = scheduler_lab();
    let nat: SocketAddr = format!("{NAT_VIP}:80").parse().expect("literal");
    let dsr: SocketAddr = format!("{DSR_VIP}:80").parse().expect("literal");

    // --- NAT rr: exact alternation.
    let rr = service(NAT_VIP, 80, Scheduler::Rr, ForwardMode::Nat, &[1, 1, 1]);
    let changes = apply_in_lb(&lab, std::slice::from_ref(&rr));
    assert_eq!(changes.len(), 4, "{changes:?}");
    let seq = names(&lab, nat, 30);
    for w in seq.windows(4) {
        assert_ne!(w[0], w[1], "rr repeated a backend: {seq:?}");
        assert_eq!(w[0], w[3], "rr is not a strict rotation: {seq:?}");
    }
    assert_eq!(
        apply_in_lb(&lab, std::slice::from_ref(&rr)),
        [],
        "adopted: 0 changes"
    );

    // --- NAT wrr 3:2:1 over 3,000 requests.
    let wrr = service(NAT_VIP, 80, Scheduler::Wrr, ForwardMode::Nat, &[3, 2, 1]);
    let changes = apply_in_lb(&lab, std::slice::from_ref(&wrr));
    assert_eq!(changes.len(), 3, "scheduler + two weights: {changes:?}");
    let seq = names(&lab, nat, 3000);
    let mut count: BTreeMap<&str, usize> = BTreeMap::new();
    for n in &seq {
        *count.entry(n.as_str()).or_default() += 1;
    }
    for ((name, _), share) in BACKENDS.iter().zip([3.0, 2.0, 1.0]) {
        let want = 3000.0 * share / 6.0;
        let got = count.get(name).copied().unwrap_or(0) as f64;
        assert!(
            (got - want).abs() <= 0.05 * want,
            "wrr 3:2:1: {name} got {got}, want {want} ± 5 %: {count:?}"
        );
    }

    // --- sh: one client, one backend.
    let sh = service(NAT_VIP, 80, Scheduler::Sh, ForwardMode::Nat, &[1, 1, 1]);
    apply_in_lb(&lab, std::slice::from_ref(&sh));
    let seq = names(&lab, nat, 40);
    assert!(
        seq.iter().all(|n| *n == seq[0]),
        "sh spread one client: {seq:?}"
    );

    // --- mh: removing be2 moves only be2's flows (one flow per client address).
    let mh3 = service(NAT_VIP, 80, Scheduler::Mh, ForwardMode::Nat, &[1, 1, 1]);
    apply_in_lb(&lab, std::slice::from_ref(&mh3));
    let sources: Vec<Ipv4Addr> = (0..CLIENTS)
        .map(|i| Ipv4Addr::new(192, 0, 2, 150 + i))
        .collect();
    let per_flow = |lab: &Lab| {
        let sources = sources.clone();
        lab.run_in("client", move || {
            sources
                .iter()
                .map(|s| (*s, get_from(*s, nat).unwrap_or_else(|e| panic!("{s}: {e}"))))
                .collect::<BTreeMap<_, _>>()
        })
        .expect("entering client")
    };
    let before = per_flow(&lab);
    let again = per_flow(&lab);
    assert_eq!(before, again, "mh is not stable per flow");
    let on_be2 = before.values().filter(|n| *n == "be2").count();
    assert!(on_be2 > 0 && on_be2 < before.len(), "flows: {before:?}");
    let mh2 = service(NAT_VIP, 80, Scheduler::Mh, ForwardMode::Nat, &[1, 0, 1]);
    let changes = apply_in_lb(&lab, std::slice::from_ref(&mh2));
    assert_eq!(changes.len(), 1, "{changes:?}");
    let after = per_flow(&lab);
    let mut moved_off_be2 = 0;
    for (src, was) in &before {
        let now = &after[src];
        if was == "be2" {
            assert_ne!(now, "be2");
            moved_off_be2 += 1;
        } else {
            assert_eq!(now, was, "flow from {src} moved from {was} to {now}");
        }
    }
    assert_eq!(moved_off_be2, on_be2);

    // --- DSR: rr over the netdev ingress hook; each connection stays on one backend.
    let dsr_rr = service(DSR_VIP, 80, Scheduler::Rr, ForwardMode::Dsr, &[1, 1, 1]);
    let changes = apply_in_lb(&lab, &[mh2.clone(), dsr_rr.clone()]);
    assert_eq!(changes.len(), 4, "{changes:?}");
    let seq = names(&lab, dsr, 12);
    for w in seq.windows(4) {
        assert_ne!(w[0], w[1], "DSR rr repeated a backend: {seq:?}");
        assert_eq!(w[0], w[3], "DSR rr is not a strict rotation: {seq:?}");
    }
    // DSR mh serves too, and the plane's counters saw the DSR packets.
    let dsr_mh = service(DSR_VIP, 80, Scheduler::Mh, ForwardMode::Dsr, &[1, 1, 1]);
    apply_in_lb(&lab, &[mh2.clone(), dsr_mh.clone()]);
    let seq = names(&lab, dsr, 10);
    assert!(
        seq.iter().all(|n| *n == seq[0]),
        "DSR mh spread one client: {seq:?}"
    );
    let stats = lab
        .run_in("lb1", || {
            NftPlane::new(NftCli::default(), Some("eth0".to_owned()))
                .expect("read")
                .stats()
        })
        .expect("entering lb1");
    let dsr_bytes: u64 = stats
        .iter()
        .filter(|s| s.service.mode == ForwardMode::Dsr)
        .flat_map(|s| s.dests.iter().map(|d| d.bytes_in))
        .sum();
    assert!(dsr_bytes > 0, "DSR counters: {stats:?}");
    let nat_bytes: u64 = stats
        .iter()
        .filter(|s| s.service.mode == ForwardMode::Nat)
        .flat_map(|s| s.dests.iter().map(|d| d.bytes_in + d.bytes_out))
        .sum();
    assert!(nat_bytes > 0, "NAT counters: {stats:?}");
    // The kernel's Maglev tables fingerprint as the proxy plane's picker builds them from the
    // same backends and the same history, so `table_hash` compares across nodes and planes.
    let members = |s: &Service| {
        s.dests
            .iter()
            .map(|d| Member {
                key: hash_addr(d.addr),
                weight: d.weight,
                backup: false,
            })
            .collect::<Vec<_>>()
    };
    let kernel_hash = |s: &Service| {
        stats
            .iter()
            .find(|x| x.service.key == s.key)
            .and_then(|x| x.table_hash)
    };
    let derived = Picker::after(
        Algo::Mh,
        &members(&mh2),
        Some(&Picker::new(Algo::Mh, &members(&mh3))),
    );
    assert!(derived.table_hash().is_some());
    assert_eq!(kernel_hash(&mh2), derived.table_hash(), "NAT mh table");
    let fresh = Picker::new(Algo::Mh, &members(&dsr_mh));
    assert_eq!(kernel_hash(&dsr_mh), fresh.table_hash(), "DSR mh table");
    assert_ne!(derived.table_hash(), fresh.table_hash());

    // Everything goes away on an empty desired state.
    let changes = apply_in_lb(&lab, &[]);
    assert!(!changes.is_empty());
    assert_eq!(apply_in_lb(&lab, &[]), []);
}

/// The whole suite under the watchdog with `[dataplane] kind = nftables`: under a steady request
/// loop from the client, `kill -9` ncc and then the engine. The kernel keeps forwarding while
/// they are gone (0 failed requests), and the restarted ncc adopts the tables: the re-sent,
/// unchanged desired state makes 0 changes (no second "add service" in ncc's log).
#[test]
fn kill_nine_ncc_and_engine_under_load_loses_nothing() {
    use seesaw_lab::{procs, wait_for};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    if !can_run() {
        return;
    }
    let nat =
        nat_lab::NatLab::start("nftables").unwrap_or_else(|e| panic!("starting the lab: {e}"));
    let lab = nat.lab;
    let log = lab.log_dir("lb1").expect("lb1");
    let vip = nat_lab::vip();

    let adds_before = in_ncc_logs(&log, "add service");
    assert_eq!(adds_before, 1, "one add service before the kills");

    // The steady loop: bounded in count and time.
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (s2, ok2, f2) = (stop.clone(), ok.clone(), failed.clone());
    let looper = lab
        .thread_in("client", move || {
            for _ in 0..100_000 {
                if s2.load(Ordering::Relaxed) {
                    break;
                }
                match http::get(vip, "/", Duration::from_secs(2)) {
                    Ok(r) if r.status == 200 => ok2.fetch_add(1, Ordering::Relaxed),
                    _ => f2.fetch_add(1, Ordering::Relaxed),
                };
                std::thread::sleep(Duration::from_millis(5));
            }
        })
        .expect("client");
    std::thread::sleep(Duration::from_secs(1));
    let id = lab.id().to_owned();
    for daemon in ["seesaw_ncc", "seesaw_engine"] {
        let pids = procs::find_daemon(daemon, seesaw_lab::netns::MARKER_VAR, &id);
        assert!(!pids.is_empty(), "{daemon} not found");
        for p in &pids {
            nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*p),
                nix::sys::signal::Signal::SIGKILL,
            )
            .expect("kill -9");
        }
        wait_for(
            &format!("{daemon} restarted"),
            Duration::from_secs(30),
            || {
                procs::find_daemon(daemon, seesaw_lab::netns::MARKER_VAR, &id)
                    .into_iter()
                    .find(|p| !pids.contains(p))
            },
        )
        .unwrap_or_else(|e| panic!("{e}"));
    }
    // Let the restarted engine re-send its state to the restarted ncc.
    std::thread::sleep(Duration::from_secs(5));
    stop.store(true, Ordering::Relaxed);
    looper.join().expect("loop thread");
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 100, "too few requests: {ok}");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    let serving = in_ncc_logs(&log, "ncc serving");
    assert!(
        serving >= 2,
        "ncc did not restart ({serving} starts logged)"
    );
    assert_eq!(
        in_ncc_logs(&log, "add service"),
        adds_before,
        "the restarted ncc changed the kernel"
    );
}

/// How often `what` stands in ncc's log files (every file in `log` naming ncc).
fn in_ncc_logs(log: &std::path::Path, what: &str) -> usize {
    std::fs::read_dir(log)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains("ncc"))
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .map(|t| t.matches(what).count())
        .sum()
}

/// A ready-to-start suite in `lb1` on the nftables plane: seesaw.cfg, `cluster` and watchdog.cfg
/// written; returns (run, config, log) dirs as strings.
fn write_suite(lab: &Lab, cluster: &str) {
    use seesaw_lab::config::{watchdog_cfg, write_atomic};
    let config = lab.config_dir("lb1").expect("lb1");
    let cfg = "[cluster]\nname = lab\nnode_ipv4 = 192.0.2.10\nanycast_enabled = false\n\n\
               [interface]\nnode = eth0\nlb = eth0\n\n[dataplane]\nkind = nftables\n\n\
               [ecu]\nlisten = 127.0.0.1:10257\n";
    write_atomic(&config, "seesaw.cfg", cfg).expect("seesaw.cfg");
    write_atomic(&config, "cluster.pb", cluster).expect("cluster.pb");
    write_atomic(&config, "watchdog.cfg", &watchdog_cfg().expect("bins")).expect("watchdog.cfg");
}

/// The services in lb1's nftables plane, with their destinations' addresses.
fn plane_in_lb(lab: &Lab) -> Vec<Service> {
    lab.run_in("lb1", || {
        NftPlane::new(NftCli::default(), Some("eth0".to_owned()))
            .expect("read nftables")
            .current()
    })
    .expect("entering lb1")
}

/// The DSR vserver's port in the suite test: the backends serve it on the VIP only.
const DSR_PORT: u16 = 81;

/// The backends (by name) that are destinations of the DSR VIP's `DSR_PORT` service.
fn dsr_dests(plane: &[Service]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = plane
        .iter()
        .filter(|s| s.key.fwmark == 0 && s.key.vip.to_string() == DSR_VIP && s.key.port == DSR_PORT)
        .flat_map(|s| s.dests.iter())
        .filter_map(|d| {
            BACKENDS
                .iter()
                .find(|(_, ip)| d.addr.ip().to_string() == *ip)
                .map(|(n, _)| *n)
        })
        .collect();
    out.sort_unstable();
    out
}

/// The whole suite on the nftables plane with two vservers:
///
/// - `fwm@lab`, `use_fwm`, NAT rr on ports 80 and 8080 of one VIP: one firewall-mark service
///   (destinations at port 0) serves both ports, so requests alternating between the ports
///   share one rr rotation;
/// - `dsr@lab`, DSR rr on port 81 with an HTTP health check in DSR mode. The backends serve
///   HTTP only on the VIP (held on their `lo`), not on their own address: a check passes only
///   if its probe went through the VIP, marked with the backend's probe mark, and the plane's
///   lo-egress chain forwarded it to that backend. Stopping be2's server makes exactly be2's
///   destination leave the DSR service; the other two stay, and be2 returns when its server
///   does.
#[test]
fn fwmark_vserver_and_dsr_checks_through_the_vip() {
    use seesaw_lab::wait_for;

    if !can_run() {
        return;
    }
    let mut lab = backends_behind_lb1(&["192.0.2.100/24"]);

    let host =
        |fqdn: &str, ip: &str| format!("< fqdn: \"{fqdn}\" ipv4: \"{ip}\" status: PRODUCTION >");
    let backends: String = BACKENDS
        .iter()
        .map(|(name, ip)| {
            format!(
                "  backend: < host: {} weight: 1 >\n",
                host(&format!("{name}.lab."), &format!("{ip}/24"))
            )
        })
        .collect();
    let cluster = format!(
        "seesaw_vip: {}\nnode: {}\n\
         vserver: <\n  name: \"fwm@lab\"\n  entry_address: {}\n  rp: \"lab@example.com\"\n  use_fwm: true\n  \
         vserver_entry: < protocol: TCP port: 80 scheduler: RR mode: NAT\n    \
         healthcheck: < type: TCP interval: 1 timeout: 1 > >\n  \
         vserver_entry: < protocol: TCP port: 8080 scheduler: RR mode: NAT\n    \
         healthcheck: < type: TCP interval: 1 timeout: 1 > >\n{backends}>\n\
         vserver: <\n  name: \"dsr@lab\"\n  entry_address: {}\n  rp: \"lab@example.com\"\n  \
         vserver_entry: < protocol: TCP port: {DSR_PORT} scheduler: RR mode: DSR\n    \
         healthcheck: < type: HTTP mode: DSR interval: 1 timeout: 1 retries: 0 send: \"/\" code: 200 > >\n{backends}>\n",
        host("seesaw-vip.lab.", "192.0.2.1/24"),
        host("lb1.lab.", "192.0.2.10/24"),
        host("fwm.lab.", &format!("{NAT_VIP}/32")),
        host("dsr.lab.", &format!("{DSR_VIP}/32")),
    );
    write_suite(&lab, &cluster);

    // Per backend: HTTP on its own address, ports 80 and 8080 (the NAT vserver), and on the DSR
    // VIP only, port 81 (the DSR vserver and its checks).
    let mut dsr_servers = BTreeMap::new();
    for (name, ip) in BACKENDS {
        for listen in [
            format!("{ip}:80"),
            format!("{ip}:8080"),
            format!("{DSR_VIP}:{DSR_PORT}"),
        ] {
            let id = start_backend(&mut lab, name, &listen);
            if listen.starts_with(DSR_VIP) {
                dsr_servers.insert(name, id);
            }
        }
    }
    lab.spawn_suite("lb1")
        .unwrap_or_else(|e| panic!("starting the watchdog: {e}"));

    // Every DSR destination up: each check passed through the VIP.
    wait_for(
        "the DSR checks of all three backends pass through the VIP",
        Duration::from_secs(60),
        || (dsr_dests(&plane_in_lb(&lab)) == ["be1", "be2", "be3"]).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; plane: {:#?}", plane_in_lb(&lab)));

    // --- use_fwm: one firewall-mark service for both ports, destinations at port 0.
    let nat80: SocketAddr = format!("{NAT_VIP}:80").parse().expect("literal");
    let nat8080: SocketAddr = format!("{NAT_VIP}:8080").parse().expect("literal");
    wait_for(
        "the fwmark service has all three backends",
        Duration::from_secs(60),
        || {
            plane_in_lb(&lab)
                .into_iter()
                .find(|s| (256..=8255).contains(&s.key.fwmark) && s.dests.len() == 3)
        },
    )
    .unwrap_or_else(|e| panic!("{e}; plane: {:#?}", plane_in_lb(&lab)));
    let plane = plane_in_lb(&lab);
    let fwm: Vec<&Service> = plane
        .iter()
        .filter(|s| (256..=8255).contains(&s.key.fwmark))
        .collect();
    assert_eq!(fwm.len(), 1, "one fwmark service: {plane:#?}");
    let marked: Vec<String> = fwm[0].marks.iter().map(ToString::to_string).collect();
    assert_eq!(
        marked,
        [format!("{NAT_VIP}:80/TCP"), format!("{NAT_VIP}:8080/TCP")],
        "{plane:#?}"
    );
    assert!(
        fwm[0].dests.iter().all(|d| d.addr.port() == 0),
        "{plane:#?}"
    );
    assert!(
        !plane
            .iter()
            .any(|s| s.key.fwmark == 0 && s.key.vip.to_string() == NAT_VIP),
        "no per-port services for the fwm vserver: {plane:#?}"
    );
    // Requests alternate between the ports; one rr rotation covers them all.
    let seq = lab
        .run_in("client", move || {
            (0..30)
                .map(|i| {
                    let vip = if i % 2 == 0 { nat80 } else { nat8080 };
                    match http::get(vip, "/", Duration::from_secs(3)) {
                        Ok(r) if r.status == 200 => r.text().trim().to_owned(),
                        other => panic!("request {i} to {vip} failed: {other:?}"),
                    }
                })
                .collect::<Vec<_>>()
        })
        .expect("entering client");
    for w in seq.windows(4) {
        assert_ne!(w[0], w[1], "rr repeated a backend across ports: {seq:?}");
        assert_eq!(
            w[0], w[3],
            "rr is not one rotation across both ports: {seq:?}"
        );
    }

    // --- DSR checks: one single-destination probe service per backend, in the probe pool.
    let probes: Vec<&Service> = plane
        .iter()
        .filter(|s| (65_536..=81_535).contains(&s.key.fwmark))
        .collect();
    assert_eq!(probes.len(), 3, "{plane:#?}");
    let dsr: SocketAddr = format!("{DSR_VIP}:{DSR_PORT}").parse().expect("literal");
    for p in &probes {
        assert_eq!(p.mode, ForwardMode::Dsr, "{p:?}");
        assert_eq!(p.dests.len(), 1, "{p:?}");
        // A request sent as the prober sends it (from lb1's address towards the backends,
        // marked with the backend's probe mark, to the VIP) is answered by that backend.
        let backend = p.dests[0].addr.ip().to_string();
        let want = BACKENDS
            .iter()
            .find(|(_, ip)| *ip == backend)
            .map(|(n, _)| *n)
            .unwrap_or_else(|| panic!("probe service for an unknown backend: {p:?}"));
        let mark = p.key.fwmark;
        let got = lab
            .run_in("lb1", move || {
                marked_get_from(Ipv4Addr::new(203, 0, 113, 1), dsr, mark)
            })
            .expect("entering lb1");
        assert_eq!(
            got.as_deref(),
            Ok(want),
            "mark {mark} should reach {backend}"
        );
    }
    // Client traffic reaches all three through the DSR VIP.
    let seen: std::collections::BTreeSet<String> = names(&lab, dsr, 9).into_iter().collect();
    assert_eq!(seen.len(), 3, "{seen:?}");

    // Stop be2's server on the VIP: its check fails, its destination leaves, the others stay.
    lab.kill(dsr_servers["be2"]).expect("stopping be2's server");
    wait_for(
        "be2 leaves the DSR service",
        Duration::from_secs(30),
        || (dsr_dests(&plane_in_lb(&lab)) == ["be1", "be3"]).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; plane: {:#?}", plane_in_lb(&lab)));
    let seq = names(&lab, dsr, 8);
    assert!(
        seq.iter().all(|n| n == "be1" || n == "be3"),
        "be2 still served: {seq:?}"
    );
    let plane = plane_in_lb(&lab);
    let fwm_dests = plane
        .iter()
        .find(|s| (256..=8255).contains(&s.key.fwmark))
        .map_or(0, |s| s.dests.len());
    assert_eq!(
        fwm_dests, 3,
        "the NAT vserver kept every backend: {plane:#?}"
    );

    // be2's server returns: so does its destination.
    let id = start_backend(&mut lab, "be2", &format!("{DSR_VIP}:{DSR_PORT}"));
    dsr_servers.insert("be2", id);
    wait_for(
        "be2 returns to the DSR service",
        Duration::from_secs(30),
        || (dsr_dests(&plane_in_lb(&lab)) == ["be1", "be2", "be3"]).then_some(()),
    )
    .unwrap_or_else(|e| panic!("{e}; plane: {:#?}", plane_in_lb(&lab)));
}

/// A DSR rr/wrr service keeps a flow map and a persistent service a client map; with equal
/// timeouts (300 s) they once had the same name, so switching a service from one to the other
/// reused a map of the wrong key type and nft refused the commit (found by `property.rs`).
#[test]
fn switching_between_a_flow_map_and_persistence_gets_a_new_map() {
    if !can_run() {
        return;
    }
    let lab = Lab::builder()
        .node("lb1", &["192.0.2.10/24"])
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    let flow = service(DSR_VIP, 80, Scheduler::Wrr, ForwardMode::Dsr, &[2, 3]);
    let mut sticky = service(DSR_VIP, 80, Scheduler::Sh, ForwardMode::Dsr, &[2, 3]);
    sticky.persistence = 300;
    assert!(!apply_in_lb(&lab, std::slice::from_ref(&flow)).is_empty());
    assert!(!apply_in_lb(&lab, std::slice::from_ref(&sticky)).is_empty());
    assert!(!apply_in_lb(&lab, std::slice::from_ref(&flow)).is_empty());
    assert!(apply_in_lb(&lab, std::slice::from_ref(&flow)).is_empty());
}
