//! Seesaw's own data plane on a real IPVS kernel: the kernel lab ([`seesaw_lab::vm`]) boots
//! Debian's kernel under QEMU once and runs this file's guest tests inside it, in one boot.
//! Debian's `ipvsadm -Ln` is the independent reader in every assertion; the client's view
//! (which backend answered, failed requests) is the other.
//!
//! - `ipvs_suite_in_the_kernel_lab` (host): skips with the reason when root, QEMU, busybox,
//!   kmod, cpio or ipvsadm is missing; otherwise boots the VM, runs the guest tests (the
//!   guest tests below, each ignored with its reason on the host and run with `--ignored`
//!   inside the VM) and fails if any fails.
//! - `guest_ipvs_plane_*`: ncc's `IpvsPlane` driven in-process inside `lb1`: NAT round robin
//!   over three backends, wrr, every IPVS scheduler with WLC as the default, persistence, DSR
//!   (backends hold the VIP on `lo`), TUN (IPIP, the VIP on `tunl0`), IPv6, `one_packet`,
//!   thresholds and Seesaw's sh/mh flags, adoption by a new plane (0 changes).
//! - `guest_nftables_plane_tunnel_mode_through_ipip_devices`: the nftables plane's tunnel mode
//!   (one IPIP device per destination), which this host's kernel cannot carry.
//! - `guest_suite_*`: the whole suite under its watchdog with `[dataplane] kind = ipvs`: kill -9
//!   of ncc and of the engine under load (0 failed requests, `ipvsadm -Ln` unchanged).
#![allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "the guest's output and figures are for the person running the tests"
)]

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

#[path = "support/plane.rs"]
mod plane;

use seesaw_lab::vm;
use seesaw_lab::{Lab, bins, ha_pair, nat_lab, procs};
use seesaw_ncc::dataplane::ipvs::IpvsPlane;
use seesaw_ncc::dataplane::ipvs::firewall::TABLE;
use seesaw_ncc::dataplane::ipvs::sys::Netlink;
use seesaw_ncc::dataplane::nftables::{NftCli, NftPlane, NftRunner};
use seesaw_ncc::dataplane::{Change, Dataplane, apply};
use seesaw_ncc::model::{ForwardMode, KernelOpts, Protocol, Scheduler, Service, ServiceKey};

const NAT_VIP: &str = "198.51.100.1";
const DSR_VIP: &str = "198.51.100.2";
const TUN_VIP: &str = "198.51.100.3";
const NAT_VIP6: &str = "2001:db8:51::1";
const TUN_VIP6: &str = "2001:db8:51::3";
const BACKENDS: [(&str, &str, &str); 3] = [
    ("be1", "203.0.113.11", "2001:db8:113::11"),
    ("be2", "203.0.113.12", "2001:db8:113::12"),
    ("be3", "203.0.113.13", "2001:db8:113::13"),
];

/// The host side: boots the kernel lab once and runs every guest test inside it.
#[test]
fn ipvs_suite_in_the_kernel_lab() {
    if !vm::host_can_boot() {
        return;
    }
    vm::run_guest_tests("guest_", Duration::from_secs(1200));
}

/// Whether this process is a guest test inside the kernel lab; prints why not otherwise.
fn in_vm() -> bool {
    let ok = vm::in_guest() && vm::ipvs_here();
    if !ok {
        eprintln!(
            "skipping: guest tests run inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"
        );
    }
    ok
}

/// Inside the kernel lab, the [`scene`]; elsewhere `None` (the test skips, saying why).
fn guest_scene() -> Option<Lab> {
    in_vm().then(scene)
}

/// Runs `sh -c script` in `node`; panics with its output unless it succeeds.
fn sh(lab: &Lab, node: &str, script: &str) -> String {
    lab.stdout_of(node, "sh", &["-c", script], Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}"))
}

/// `ipvsadm -Ln` (plus `extra` flags) in `lb1`.
fn ipvsadm(lab: &Lab, extra: &str) -> String {
    sh(lab, "lb1", &format!("ipvsadm -Ln {extra}"))
}

/// The lines of `ipvsadm -Ln` that describe `vip` and its destinations.
fn block(text: &str, vip: &str) -> String {
    let mut out = Vec::new();
    let mut inside = false;
    for l in text.lines() {
        if !l.starts_with("  ->") {
            inside = l.contains(vip);
        }
        if inside {
            out.push(l.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    out.join("\n")
}

fn service(vip: &str, port: u16, sched: Scheduler, mode: ForwardMode, w: &[u32]) -> Service {
    let v6 = vip.contains(':');
    let addrs = BACKENDS.iter().map(|(_, ip4, ip6)| {
        if v6 {
            format!("[{ip6}]:{port}")
        } else {
            format!("{ip4}:{port}")
        }
    });
    plane::tcp_service(vip, port, sched, mode, addrs.zip(w.iter().copied()))
}

/// Applies `desired` with a fresh plane inside lb1 (each call proves adopt-at-start too).
fn apply_in_lb(lab: &Lab, desired: &[Service]) -> Vec<Change> {
    let desired = desired.to_vec();
    lab.run_in("lb1", move || {
        let mut plane = IpvsPlane::new(Netlink::open().expect("IPVS netlink")).expect("read IPVS");
        apply(&mut plane, &desired).expect("apply")
    })
    .expect("entering lb1")
}

/// `n` HTTP requests from the client to `vip`; the backends' names in order.
fn names(lab: &Lab, vip: SocketAddr, n: usize) -> Vec<String> {
    plane::names(lab, vip, n, Duration::from_secs(5))
}

fn counts(seq: &[String]) -> BTreeMap<String, usize> {
    let mut c = BTreeMap::new();
    for n in seq {
        *c.entry(n.clone()).or_default() += 1;
    }
    c
}

/// client → lb1 (the VIPs on `dummy0`, as ncc puts dedicated VIPs) → be1..be3, each holding
/// the DSR VIP on `lo` and the TUN VIP on `tunl0`, replying through lb1; IPv6 alongside.
fn scene() -> Lab {
    let mut builder = nat_lab::client_and_lb1(&["192.0.2.100/24"]);
    for (name, ip, _) in BACKENDS {
        builder =
            nat_lab::backend_via_lb1(builder, name, ip).loopback(name, &format!("{DSR_VIP}/32"));
    }
    let mut lab = builder
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    sh(
        &lab,
        "lb1",
        "sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
         net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 \
         net.ipv4.conf.all.accept_local=1 net.ipv4.conf.eth0.accept_local=1 \
         net.ipv4.vs.conntrack=1 net.ipv4.vs.expire_nodest_conn=1 \
         net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0 && \
         ip link add dummy0 type dummy && ip link set dummy0 up && \
         ip addr add 198.51.100.1/32 dev dummy0 && ip addr add 198.51.100.2/32 dev dummy0 && \
         ip addr add 198.51.100.3/32 dev dummy0 && ip addr add 2001:db8:51::1/128 dev dummy0 && \
         ip addr add 2001:db8:2::10/64 dev eth0 nodad && ip addr add 2001:db8:113::1/64 dev eth0 nodad",
    );
    sh(
        &lab,
        "client",
        "ip addr add 2001:db8:2::100/64 dev eth0 nodad && \
         ip -6 route add 2001:db8:51::/64 via 2001:db8:2::10",
    );
    for (name, _, ip6) in BACKENDS {
        sh(
            &lab,
            name,
            &format!(
                "sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                 net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
                 net.ipv6.conf.all.accept_redirects=0 net.ipv6.conf.eth0.accept_redirects=0 && \
                 ip link set tunl0 up && ip addr add {TUN_VIP}/32 dev tunl0 && \
                 sysctl -qw net.ipv4.conf.tunl0.rp_filter=0 && \
                 ip addr add {ip6}/64 dev eth0 nodad && \
                 ip -6 route add 2001:db8:2::/64 via 2001:db8:113::1"
            ),
        );
    }
    for (name, ..) in BACKENDS {
        lab.start_demo_backend(name, "[::]:80".parse().expect("literal"), name)
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    }
    lab
}

#[test]
#[ignore = "runs inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"]
fn guest_ipvs_plane_nat_schedulers_persistence_and_ipv6() {
    let Some(lab) = guest_scene() else { return };
    let nat: SocketAddr = format!("{NAT_VIP}:80").parse().expect("literal");

    // NAT rr over three backends: a strict rotation, three Masq destinations in the kernel.
    let rr = service(NAT_VIP, 80, Scheduler::Rr, ForwardMode::Nat, &[1, 1, 1]);
    assert_eq!(apply_in_lb(&lab, std::slice::from_ref(&rr)).len(), 4);
    let shown = block(&ipvsadm(&lab, ""), NAT_VIP);
    assert!(shown.starts_with("TCP 198.51.100.1:80 rr"), "{shown}");
    for (_, ip, _) in BACKENDS {
        assert!(shown.contains(&format!("-> {ip}:80 Masq 1")), "{shown}");
    }
    let seq = names(&lab, nat, 30);
    for w in seq.windows(4) {
        assert_ne!(w[0], w[1], "rr repeated a backend: {seq:?}");
        assert_eq!(w[0], w[3], "rr is not a strict rotation: {seq:?}");
    }
    assert_eq!(apply_in_lb(&lab, std::slice::from_ref(&rr)), [], "adopted");

    // wrr 3:2:1: IPVS is exact per cycle.
    let wrr = service(NAT_VIP, 80, Scheduler::Wrr, ForwardMode::Nat, &[3, 2, 1]);
    apply_in_lb(&lab, std::slice::from_ref(&wrr));
    let c = counts(&names(&lab, nat, 300));
    assert_eq!(
        (c.get("be1"), c.get("be2"), c.get("be3")),
        (Some(&150), Some(&100), Some(&50)),
        "{c:?}"
    );

    // Every IPVS scheduler serves, with the name (and Seesaw's sh/mh flags) in the kernel.
    for (sched, name, flags) in [
        (Scheduler::Wlc, "wlc", ""),
        (Scheduler::Lc, "lc", ""),
        (Scheduler::Sh, "sh", "(sh-fallback,sh-port)"),
        (Scheduler::Mh, "mh", "(mh-fallback,mh-port)"),
        (Scheduler::Dh, "dh", ""),
    ] {
        let s = service(NAT_VIP, 80, sched, ForwardMode::Nat, &[1, 1, 1]);
        apply_in_lb(&lab, std::slice::from_ref(&s));
        let shown = block(&ipvsadm(&lab, ""), NAT_VIP);
        let head = shown.lines().next().unwrap_or_default().to_owned();
        assert_eq!(
            head,
            format!("TCP 198.51.100.1:80 {name} {flags}").trim(),
            "{shown}"
        );
        let c = counts(&names(&lab, nat, 30));
        // dh hashes the VIP: one backend. sh and mh hash the source address and, with
        // Seesaw's port flag, its port, so one client's connections spread.
        // lc and wlc: every request served (their balance under load is the WLC bench's).
        match sched {
            Scheduler::Dh => assert_eq!(c.len(), 1, "{name}: {c:?}"),
            Scheduler::Sh | Scheduler::Mh => assert!(c.len() > 1, "{name}: {c:?}"),
            _ => assert_eq!(c.values().sum::<usize>(), 30, "{name}: {c:?}"),
        }
    }

    // Persistence: one client sticks to one backend under rr.
    let mut p = service(NAT_VIP, 80, Scheduler::Rr, ForwardMode::Nat, &[1, 1, 1]);
    p.persistence = 300;
    apply_in_lb(&lab, std::slice::from_ref(&p));
    let shown = block(&ipvsadm(&lab, ""), NAT_VIP);
    assert!(
        shown.starts_with("TCP 198.51.100.1:80 rr persistent 300"),
        "{shown}"
    );
    assert_eq!(counts(&names(&lab, nat, 20)).len(), 1, "persistence");

    // IPv6 NAT rr.
    let v6 = service(NAT_VIP6, 80, Scheduler::Rr, ForwardMode::Nat, &[1, 1, 1]);
    apply_in_lb(&lab, &[p.clone(), v6.clone()]);
    let shown = block(&ipvsadm(&lab, ""), "[2001:db8:51::1]:80");
    assert!(shown.starts_with("TCP [2001:db8:51::1]:80 rr"), "{shown}");
    assert_eq!(shown.lines().count(), 4, "{shown}");
    let c = counts(&names(
        &lab,
        format!("[{NAT_VIP6}]:80").parse().expect("v6"),
        30,
    ));
    assert_eq!(
        c.values().copied().collect::<Vec<_>>(),
        [10, 10, 10],
        "{c:?}"
    );

    // Everything leaves on an empty desired state.
    apply_in_lb(&lab, &[]);
    assert_eq!(block(&ipvsadm(&lab, ""), "198.51.100"), "");
}

#[test]
#[ignore = "runs inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"]
fn guest_ipvs_plane_dsr_tun_one_packet_and_thresholds() {
    let Some(lab) = guest_scene() else { return };

    // DSR (Seesaw's default mode) with WLC (its default scheduler): backends answer from the VIP.
    let dsr = service(DSR_VIP, 80, Scheduler::Wlc, ForwardMode::Dsr, &[1, 1, 1]);
    // TUN: IPIP to each backend, which holds the VIP on tunl0.
    let tun = service(TUN_VIP, 80, Scheduler::Rr, ForwardMode::Tun, &[1, 1, 1]);
    // A UDP service with Seesaw's one_packet and thresholds.
    let mut udp = service(DSR_VIP, 53, Scheduler::Sh, ForwardMode::Dsr, &[1, 1, 1]);
    udp.key.proto = Protocol::Udp;
    udp.opts.kernel = KernelOpts {
        one_packet: true,
        lthreshold: 10,
        uthreshold: 100,
    };
    let all = [dsr.clone(), tun.clone(), udp.clone()];
    assert_eq!(apply_in_lb(&lab, &all).len(), 12);
    let text = ipvsadm(&lab, "");
    let shown = block(&text, &format!("{DSR_VIP}:80"));
    assert!(shown.starts_with("TCP 198.51.100.2:80 wlc"), "{shown}");
    for (_, ip, _) in BACKENDS {
        assert!(shown.contains(&format!("-> {ip}:80 Route 1")), "{shown}");
    }
    let shown = block(&text, &format!("{TUN_VIP}:80"));
    for (_, ip, _) in BACKENDS {
        assert!(shown.contains(&format!("-> {ip}:80 Tunnel 1")), "{shown}");
    }
    let shown = block(&text, &format!("{DSR_VIP}:53"));
    assert!(
        shown.starts_with("UDP 198.51.100.2:53 sh (sh-fallback,sh-port) ops"),
        "one_packet is `ops`: {shown}"
    );
    let thresholds = block(&ipvsadm(&lab, "--thresholds"), &format!("{DSR_VIP}:53"));
    for (_, ip, _) in BACKENDS {
        assert!(
            thresholds.contains(&format!("-> {ip}:53 100 10")),
            "{thresholds}"
        );
    }

    let seq = names(&lab, format!("{DSR_VIP}:80").parse().expect("v4"), 30);
    assert_eq!(counts(&seq).len(), 3, "DSR wlc spreads: {seq:?}");
    let seq = names(&lab, format!("{TUN_VIP}:80").parse().expect("v4"), 30);
    for w in seq.windows(4) {
        assert_eq!(w[0], w[3], "TUN rr is not a strict rotation: {seq:?}");
    }
    assert_eq!(
        apply_in_lb(&lab, &all),
        [],
        "adopted, flags and thresholds included"
    );
}

/// The HA pair of `tests/ha.rs` with `[dataplane] kind = ipvs`: the VIP lives on the master's
/// LB interface only, so IPVS serves it there and nowhere else. Each fault once, judged from
/// the two clients (`client1` routes the VIP through lb1, `client2` through lb2): the peer
/// serves within the bound and the two nodes never both answer. Adverts every 100 ms (the
/// emulated machine runs several times slower than the host; the 30 ms figures are
/// `tests/ha.rs`'s, on the host). A stalled ha stops renewing ncc's lease, and ncc withdraws
/// the VIP (the fence) before the peer takes over.
///
/// Not here: SIGSTOP of every process on the master. IPVS lives in the kernel, so a frozen
/// node keeps answering for the VIP it holds (measured: both nodes answered for 4.3 s in this
/// scene, where each client has a static route to "its" node); in a real network the new
/// master's gratuitous ARPs (and, with `use_vmac`, the switch learning the VMAC from its frames)
/// move the traffic. `docs/ARCHITECTURE.md` (HA, kernel planes) says so.
#[test]
#[ignore = "runs inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"]
#[allow(clippy::too_many_lines, reason = "one scene, three faults, in order")]
fn guest_ha_pair_fails_over_on_ipvs() {
    if !in_vm() {
        return;
    }
    let (lab, run_dirs) = ha_pair::start("ipvs", Duration::from_millis(100))
        .unwrap_or_else(|e| panic!("starting the HA pair: {e}"));
    let lab = Arc::new(lab);
    for (fault, label) in [
        (0, "kill -9 ha"),
        (1, "SIGSTOP the master's ha 5 s"),
        (2, "seesaw -c failover"),
    ] {
        let both_ha = (0..600).any(|_| {
            let up = run_dirs.iter().all(|d| {
                !procs::find_daemon("seesaw_ha", "SEESAW_RUN_DIR", &d.to_string_lossy()).is_empty()
            });
            if !up {
                std::thread::sleep(Duration::from_millis(100));
            }
            up
        });
        assert!(both_ha, "{label}: seesaw_ha not running on both nodes");
        let master = ha_pair::one_master(&lab, Duration::from_secs(90))
            .unwrap_or_else(|| panic!("{label}: no single master"));
        let (lb, _, _) = ha_pair::LBS[master];
        let shown = ipvsadm_in(&lab, lb);
        assert!(
            shown.contains("TCP  198.51.100.1:80 rr") && shown.matches("Masq").count() == 2,
            "{label}: the master's IPVS: {shown}"
        );
        std::thread::sleep(Duration::from_millis(500));
        let run = run_dirs[master].to_string_lossy().into_owned();
        let prober = ha_pair::Prober::start(&lab, Duration::from_secs(15));
        std::thread::sleep(Duration::from_millis(500));
        let ha_pid = procs::find_daemon("seesaw_ha", "SEESAW_RUN_DIR", &run);
        let t_fault = Instant::now();
        match fault {
            0 => signal_all(&ha_pid, Signal::SIGKILL),
            1 => signal_all(&ha_pid, Signal::SIGSTOP),
            _ => {
                lab.seesaw(lb, &run_dirs[master], &["-c", "failover"])
                    .unwrap_or_else(|e| panic!("failover: {e}"));
            }
        }
        std::thread::sleep(Duration::from_secs(5));
        let samples = prober.finish();
        if fault == 1 {
            signal_all(&ha_pid, Signal::SIGCONT);
        }
        let (outage, two, overlap) = ha_pair::handover(master, t_fault, &samples, fault == 2);
        println!(
            "IPVS-HA {label}: master {lb}, outage {outage:?}, both serving {overlap:?} ({} probes)",
            samples[0].len() + samples[1].len()
        );
        assert!(
            outage < Duration::from_secs(3),
            "{label}: outage {outage:?}"
        );
        assert!(!two, "{label}: both nodes served for {overlap:?}");
        let (new, _, _) = ha_pair::LBS[1 - master];
        let shown = ipvsadm_in(&lab, new);
        assert!(
            shown.contains("TCP  198.51.100.1:80 rr"),
            "{label}: the new master's IPVS: {shown}"
        );
        // A resumed or restarted node settles as backup before the next fault.
        std::thread::sleep(Duration::from_secs(3));
    }
}

/// `ipvsadm -Ln` in `node`.
fn ipvsadm_in(lab: &Lab, node: &str) -> String {
    sh(lab, node, "ipvsadm -Ln")
}

/// Sends `sig` to every pid (a process already gone is no error here).
fn signal_all(pids: &[i32], sig: Signal) {
    for &p in pids {
        let _ = kill(Pid::from_raw(p), sig);
    }
}

/// Applies `desired` with a fresh plane in lb1 that manages Seesaw's firewall table through
/// `nft` and adopts its marks (as ncc runs it).
fn apply_with_firewall(lab: &Lab, desired: &[Service]) -> Vec<String> {
    let desired = desired.to_vec();
    lab.run_in("lb1", move || {
        let nft = NftCli::default();
        let listing = nft.list_text(TABLE).expect("nft list table");
        let mut plane = IpvsPlane::new(Netlink::open().expect("IPVS netlink"))
            .expect("read IPVS")
            .with_firewall(Box::new(move |script| nft.run(script)))
            .adopt_marks(&listing);
        plane.apply_desired(&desired).expect("apply")
    })
    .expect("entering lb1")
}

/// Whether the client's TCP connection to `addr` is answered.
fn connects(lab: &Lab, addr: &str) -> bool {
    let addr: SocketAddr = addr.parse().expect("literal");
    lab.run_in("client", move || {
        std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_ok()
    })
    .expect("entering client")
}

/// The nftables plane's tunnel mode on a kernel with IPIP: ncc's `NftPlane` in `lb1` makes
/// one `ipip` (`ip6tnl` for IPv6) device per destination and forwards each flow, unchanged,
/// through its destination's device; the backends decapsulate on `tunl0`/`ip6tnl0`, which hold
/// the VIP. The client sees a strict rr rotation over the three backends; a new plane adopts
/// the services with no change; removing them removes the devices.
#[test]
#[ignore = "runs inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"]
fn guest_nftables_plane_tunnel_mode_through_ipip_devices() {
    let Some(lab) = guest_scene() else { return };
    for (name, ..) in BACKENDS {
        sh(
            &lab,
            name,
            &format!(
                "ip link set ip6tnl0 up && ip addr add {TUN_VIP6}/128 dev ip6tnl0 nodad && \
                 sysctl -qw net.ipv6.conf.ip6tnl0.accept_ra=0"
            ),
        );
    }
    let rr = service(TUN_VIP, 80, Scheduler::Rr, ForwardMode::Tun, &[1, 1, 1]);
    let mh6 = service(TUN_VIP6, 80, Scheduler::Mh, ForwardMode::Tun, &[1, 1, 1]);
    let all = vec![rr, mh6];
    let nft_apply = |want: Vec<Service>| {
        lab.run_in("lb1", move || {
            let mut plane =
                NftPlane::new(NftCli::default(), Some("eth0".to_owned())).expect("read nftables");
            apply(&mut plane, &want).expect("apply")
        })
        .expect("entering lb1")
    };
    assert_eq!(
        nft_apply(all.clone()).len(),
        8,
        "2 services, 6 destinations"
    );
    let links = sh(&lab, "lb1", "ip -d link show");
    for (_, ip4, ip6) in BACKENDS {
        assert!(links.contains(&format!("remote {ip4}")), "{links}");
        assert!(links.contains(&format!("remote {ip6}")), "{links}");
    }
    let seq = names(&lab, format!("{TUN_VIP}:80").parse().expect("v4"), 30);
    assert_eq!(counts(&seq).len(), 3, "rr over three backends: {seq:?}");
    for w in seq.windows(4) {
        assert_eq!(w[0], w[3], "tunnel rr is not a strict rotation: {seq:?}");
    }
    let seq = names(&lab, format!("[{TUN_VIP6}]:80").parse().expect("v6"), 10);
    assert_eq!(
        counts(&seq).len(),
        1,
        "mh keeps one client on one backend: {seq:?}"
    );
    assert_eq!(nft_apply(all), [], "adopted by a new plane");
    assert_eq!(
        nft_apply(Vec::new()).len(),
        8,
        "2 services, 6 destinations removed"
    );
    let links = sh(&lab, "lb1", "ip link show");
    assert!(!links.contains("sst"), "devices left behind:\n{links}");
}

#[test]
#[ignore = "runs inside the kernel lab (ipvs_suite_in_the_kernel_lab boots it)"]
fn guest_ipvs_firewall_use_fwm_filter_and_nat_source() {
    if !in_vm() {
        return;
    }
    let mut lab = scene();
    // The backends lose their route back to the clients: only the NAT source rule (masquerade
    // to lb1's address) gets the replies home.
    for (name, ..) in BACKENDS {
        sh(&lab, name, "ip route del 192.0.2.0/24");
    }
    // Something on lb1 itself listens on every address, port 2222: the per-VIP filter must
    // keep it off the VIP (Seesaw: a VIP accepts its service ports and ICMP only).
    let seesaw = bins::binary("seesaw").expect("built");
    lab.spawn(
        "lb1",
        &seesaw,
        &["demo-backend", "--listen", "0.0.0.0:2222", "--name", "lb1"],
        &[],
    )
    .expect("a listener on lb1");
    lab.wait_tcp(
        "lb1",
        "192.0.2.10:2222".parse().expect("literal"),
        Duration::from_secs(30),
    )
    .expect("lb1:2222");
    assert!(connects(&lab, &format!("{NAT_VIP}:2222")), "no filter yet");

    // use_fwm: VIP tcp/80 is marked 0x10 and served by IPVS's firewall-mark service 16 (NAT,
    // rr, port-0 destinations: the packet's port is kept).
    let mut fwm = service(NAT_VIP, 0, Scheduler::Rr, ForwardMode::Nat, &[1, 1, 1]);
    fwm.key = ServiceKey::fwmark(false, 0x10);
    fwm.marks = vec![ServiceKey::new(
        NAT_VIP.parse().expect("literal"),
        Protocol::Tcp,
        80,
    )];
    let changes = apply_with_firewall(&lab, std::slice::from_ref(&fwm));
    assert_eq!(changes.len(), 4, "{changes:?}");
    let shown = ipvsadm(&lab, "");
    let fwm_block = shown
        .split("FWM  16 rr")
        .nth(1)
        .unwrap_or_else(|| panic!("no FWM 16 rr service: {shown}"));
    for (_, ip, _) in BACKENDS {
        assert!(fwm_block.contains(&format!("-> {ip}:0")), "{shown}");
    }
    let table = sh(&lab, "lb1", "nft list table inet seesaw_ipvs");
    for rule in [
        "ip daddr 198.51.100.1 tcp dport 80 meta mark set 0x00000010",
        "ip daddr 198.51.100.1 tcp dport 80 accept",
        "ip daddr 198.51.100.1 meta l4proto icmp accept",
        "ip daddr 198.51.100.1 reject",
        "ct original ip daddr 198.51.100.1 ct original proto-dst 80 masquerade",
    ] {
        assert!(table.contains(rule), "missing {rule:?} in\n{table}");
    }
    // Marked traffic is balanced (strict rotation) and comes home through masquerade.
    let seq = names(&lab, format!("{NAT_VIP}:80").parse().expect("v4"), 12);
    for w in seq.windows(4) {
        assert_ne!(w[0], w[1], "rr repeated a backend: {seq:?}");
        assert_eq!(w[0], w[3], "rr is not a strict rotation: {seq:?}");
    }
    // The filter: the VIP refuses lb1's own port 2222, answers ICMP; lb1's node address is
    // not a VIP and still reaches the listener.
    assert!(
        !connects(&lab, &format!("{NAT_VIP}:2222")),
        "the VIP filter"
    );
    assert!(connects(&lab, "192.0.2.10:2222"), "the node address");
    sh(&lab, "client", &format!("busybox ping -c 1 -W 3 {NAT_VIP}"));
    // A new plane adopts IPVS and the table: no change.
    assert_eq!(
        apply_with_firewall(&lab, std::slice::from_ref(&fwm)),
        Vec::<String>::new()
    );

    // Nothing desired: IPVS empty, the table without rules, the VIP's port 2222 open again.
    apply_with_firewall(&lab, &[]);
    assert_eq!(block(&ipvsadm(&lab, ""), "FWM"), "");
    let table = sh(&lab, "lb1", "nft list table inet seesaw_ipvs");
    assert!(!table.contains("198.51.100.1"), "{table}");
    assert!(connects(&lab, &format!("{NAT_VIP}:2222")));
}
