//! `seesaw trace` against the real suite (issue 17, acceptance 2): for 100 flows from 100
//! client addresses, the backend the trace predicts is the one the flow then reaches, on the
//! proxy plane (the loopback suite) and on the nftables plane (the namespace NAT lab, root
//! only); and an open connection's live entry (the proxy's flow table, conntrack) names the
//! backend it reached. Both run the vserver with `mh`, so the pick is a function of the flow.
//! Needs `cargo build --workspace --bins` first.
#![allow(
    clippy::print_stderr,
    reason = "the spread over backends is for the person running the tests"
)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use seesaw_lab::nat_lab::{self, NatLab};
use seesaw_lab::{LoopbackSuite, bins, wait_until};

const FLOWS: u8 = 100;

/// The value after `label` on its line of the shell's trace text.
fn line_value<'a>(text: &'a str, label: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .map(str::trim)
}

/// The predicted `ip:port` of a trace's "New flow:" line.
fn predicted(text: &str) -> Option<SocketAddr> {
    line_value(text, "New flow:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The live flow's `ip:port`.
fn live(text: &str) -> Option<SocketAddr> {
    line_value(text, "Live flow:")?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// A socket to `vip` from `src` (port chosen by the kernel).
fn connect_from(src: IpAddr, vip: SocketAddr) -> TcpStream {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(&SocketAddr::new(src, 0).into()).expect("bind");
    s.connect_timeout(&vip.into(), Duration::from_secs(3))
        .unwrap_or_else(|e| panic!("connect {src} → {vip}: {e}"));
    let s: TcpStream = s.into();
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s
}

/// One HTTP/1.0 GET from `src`: the name the demo backend answers with.
fn who_answers(src: IpAddr, vip: SocketAddr) -> String {
    let mut s = connect_from(src, vip);
    s.write_all(b"GET / HTTP/1.0\r\nHost: lab\r\n\r\n")
        .expect("send");
    let mut out = Vec::new();
    s.read_to_end(&mut out).expect("read");
    let text = String::from_utf8_lossy(&out);
    text.split_once("\r\n\r\n")
        .map(|(_, body)| body.trim().to_owned())
        .unwrap_or_default()
}

#[test]
fn proxy_trace_predicts_the_backend_of_100_flows() {
    let mut suite = LoopbackSuite::start().unwrap_or_else(|e| panic!("suite: {e}"));
    let vip = suite.vip();
    let mut cluster = suite.cluster().clone();
    cluster.scheduler = "MH".to_owned();
    suite.write_cluster(cluster).expect("cluster.pb");
    let out = suite.shell("config reload").expect("reload");
    assert!(out.status.success(), "{out:?}");
    let probe = format!("trace tcp 127.1.0.1:40000 {vip}");
    wait_until("the proxy runs mh", Duration::from_secs(20), || {
        suite
            .shell(&probe)
            .is_ok_and(|o| o.stdout.contains("Maglev slot") && predicted(&o.stdout).is_some())
    })
    .expect("mh applied");
    let by_name: BTreeMap<String, SocketAddr> = suite
        .backends()
        .iter()
        .map(|b| (b.name.clone(), b.addr))
        .collect();
    let mut spread: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for i in 1..=FLOWS {
        let src = IpAddr::V4(Ipv4Addr::new(127, 1, 0, i));
        let out = suite
            .shell(&format!("trace tcp {src}:40000 {vip}"))
            .expect("trace");
        let want = predicted(&out.stdout).unwrap_or_else(|| panic!("no prediction:\n{out:?}"));
        let name = who_answers(src, vip);
        let got = by_name
            .get(&name)
            .unwrap_or_else(|| panic!("{src}: answer {name:?} is no backend"));
        assert_eq!(
            *got, want,
            "{src}: predicted {want}, reached {name}\n{}",
            out.stdout
        );
        *spread.entry(want).or_default() += 1;
    }
    eprintln!("proxy: {FLOWS} flows predicted and reached alike; spread {spread:?}");
    assert!(spread.len() >= 2, "the flows all went one way: {spread:?}");

    // An open connection is in the flow table, on the backend the trace predicted.
    let src = IpAddr::V4(Ipv4Addr::new(127, 1, 0, 250));
    let conn = connect_from(src, vip);
    let client = conn.local_addr().expect("local addr");
    let mut text = String::new();
    wait_until(
        "the relayed connection shows",
        Duration::from_secs(5),
        || {
            text = suite
                .shell(&format!("trace tcp {client} {vip}"))
                .map(|o| o.stdout)
                .unwrap_or_default();
            live(&text).is_some()
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(live(&text), predicted(&text), "{text}");
    assert!(text.contains("(relayed)"), "{text}");
    drop(conn);
}

fn shell_in(lab: &NatLab, run: &Path, command: &str) -> String {
    let seesaw = bins::binary("seesaw").expect("seesaw built");
    let run = run.to_string_lossy().into_owned();
    lab.lab
        .exec(
            "lb1",
            &seesaw,
            &["--run-dir", &run, "-c", command],
            &[],
            Duration::from_secs(10),
        )
        .map(|o| o.stdout)
        .unwrap_or_else(|e| format!("shell failed: {e}"))
}

#[test]
fn nftables_trace_predicts_the_backend_of_100_flows() {
    if !seesaw_lab::require_root() {
        return;
    }
    let mut nft = std::process::Command::new("nft");
    nft.arg("--version");
    if seesaw_lab::cmd::run(nft, Duration::from_secs(5)).is_err() {
        eprintln!("skipping: the nftables trace test needs nft (apt-get install nftables)");
        return;
    }
    let lab = NatLab::start("nftables").unwrap_or_else(|e| panic!("lab: {e}"));
    let vip = nat_lab::vip();
    let run = lab.lab.run_dir("lb1").expect("run dir");
    let config = lab.lab.config_dir("lb1").expect("config dir");
    let mut cluster = nat_lab::cluster_pb();
    cluster.scheduler = "MH".to_owned();
    std::fs::write(config.join("cluster.pb"), cluster.render()).expect("cluster.pb");
    let out = shell_in(&lab, &run, "config reload");
    assert!(out.contains("applied"), "{out}");
    let probe = format!("trace tcp 192.0.2.100:40000 {vip}");
    wait_until("nftables runs mh", Duration::from_secs(20), || {
        let t = shell_in(&lab, &run, &probe);
        t.contains("Maglev slot") && predicted(&t).is_some()
    })
    .expect("mh applied");
    // 100 client addresses.
    for i in 1..=FLOWS {
        let addr = format!("192.0.2.{}/24", 100 + u16::from(i));
        lab.lab
            .exec(
                "client",
                "ip",
                &["addr", "add", &addr, "dev", "eth0"],
                &[],
                Duration::from_secs(5),
            )
            .expect("ip addr add");
    }
    let by_name: BTreeMap<String, SocketAddr> = nat_lab::BACKENDS
        .iter()
        .map(|(n, ip)| {
            (
                (*n).to_owned(),
                SocketAddr::new(ip.parse().expect("ip"), 80),
            )
        })
        .collect();
    let mut spread: BTreeMap<SocketAddr, usize> = BTreeMap::new();
    for i in 1..=FLOWS {
        let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100 + i));
        let t = shell_in(&lab, &run, &format!("trace tcp {src}:40000 {vip}"));
        let want = predicted(&t).unwrap_or_else(|| panic!("no prediction:\n{t}"));
        let name = lab
            .lab
            .run_in("client", || who_answers(src, vip))
            .expect("client");
        let got = by_name
            .get(&name)
            .unwrap_or_else(|| panic!("{src}: answer {name:?} is no backend"));
        assert_eq!(*got, want, "{src}: predicted {want}, reached {name}\n{t}");
        *spread.entry(want).or_default() += 1;
    }
    eprintln!("nftables: {FLOWS} flows predicted and reached alike; spread {spread:?}");
    assert!(spread.len() >= 2, "the flows all went one way: {spread:?}");

    // An open connection's conntrack entry names the backend the trace predicted.
    let src = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 100));
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let lab_ref = &lab;
    std::thread::scope(|s| {
        s.spawn(move || {
            lab_ref
                .lab
                .run_in("client", move || {
                    let conn = connect_from(src, vip);
                    addr_tx
                        .send(conn.local_addr().expect("local"))
                        .expect("send");
                    // Open until the trace has looked.
                    let _ = rx.recv_timeout(Duration::from_secs(30));
                    drop(conn);
                })
                .expect("client");
        });
        let client = addr_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("connected");
        let mut text = String::new();
        let seen = wait_until("the conntrack entry shows", Duration::from_secs(5), || {
            text = shell_in(&lab, &run, &format!("trace tcp {client} {vip}"));
            live(&text).is_some()
        });
        let _ = tx.send(());
        seen.unwrap_or_else(|e| panic!("{e}: {text}"));
        assert_eq!(live(&text), predicted(&text), "{text}");
        assert!(text.contains("(ESTABLISHED)"), "{text}");
    });
}
