//! The namespace lab smoke test (root only; skips otherwise): a client, one load balancer and two
//! backends in their own network namespaces on a private bridge. The whole daemon suite runs in
//! `lb1` under `seesaw_watchdog` with the userspace proxy data plane, and the client reaches the
//! backends only through the VIP.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::time::Duration;

use seesaw_lab::cmd::run;
use seesaw_lab::config::{SeesawCfg, watchdog_cfg, write_atomic};
use seesaw_lab::nat_lab::{BACKENDS, client_and_lb1, cluster_pb};
use seesaw_lab::{LabBuilder, bins, http, procs, wait_for, wait_until};

const VIP: &str = "198.51.100.1:80";

/// A client routed to the VIP's subnet through lb1, which holds the VIP on its loopback, and
/// one backend be1 behind lb1.
fn client_lb_be1() -> LabBuilder {
    client_and_lb1(&["192.0.2.100/24"])
        .loopback("lb1", "198.51.100.1/32")
        .node("be1", &["203.0.113.11/24"])
}

#[test]
fn client_reaches_both_backends_through_the_vip() {
    if !seesaw_lab::require_root() {
        return;
    }
    bins::require_all().unwrap_or_else(|e| panic!("{e}"));
    // ncc in this build does not add VIPs, and the proxy plane binds VIP:port, so the VIP must
    // already be local in lb1.
    let mut lab = client_lb_be1()
        .node("be2", &["203.0.113.12/24"])
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));

    let config = lab.config_dir("lb1").expect("lb1 exists");
    let run = lab.run_dir("lb1").expect("lb1 exists");
    let seesaw_cfg = SeesawCfg {
        cluster: "lab".to_owned(),
        node_ipv4: "192.0.2.10".parse().expect("literal"),
        iface: "eth0".to_owned(),
        ecu_listen: "127.0.0.1:10257".parse().expect("literal"),
    };
    write_atomic(&config, "seesaw.cfg", &seesaw_cfg.render()).expect("write seesaw.cfg");
    write_atomic(&config, "cluster.pb", &cluster_pb().render()).expect("write cluster.pb");
    write_atomic(&config, "watchdog.cfg", &watchdog_cfg().expect("binaries"))
        .expect("write watchdog.cfg");

    for (name, ip) in BACKENDS {
        let addr: SocketAddr = format!("{ip}:80").parse().expect("literal");
        lab.start_demo_backend(name, addr, name)
            .unwrap_or_else(|e| panic!("starting {name}: {e}"));
    }

    lab.spawn_suite("lb1")
        .unwrap_or_else(|e| panic!("starting the watchdog: {e}"));

    let vip: SocketAddr = VIP.parse().expect("literal");
    let answered = lab
        .run_in("client", || {
            wait_for(
                "20 sequential requests through the VIP, all answered, by be1 and be2",
                Duration::from_secs(60),
                || {
                    let mut seen = BTreeSet::new();
                    for _ in 0..20 {
                        match http::get(vip, "/", Duration::from_secs(2)) {
                            Ok(r) if r.status == 200 => seen.insert(r.text()),
                            _ => return None,
                        };
                    }
                    BACKENDS
                        .iter()
                        .all(|(name, _)| seen.contains(*name))
                        .then_some(seen)
                },
            )
        })
        .expect("entering the client namespace");
    let answered = answered.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answered.len(), 2, "unexpected answers: {answered:?}");

    let out = lab
        .seesaw("lb1", &run, &["-c", "show vservers web@lab"])
        .unwrap_or_else(|e| panic!("show vservers failed: {e}"));
    for (name, ip) in BACKENDS {
        assert!(
            out.contains(&format!("{name}.lab.")) || out.contains(ip),
            "{name} missing from show vservers:\n{out}"
        );
    }
}

/// The harness on its own, without any Seesaw daemon: namespaces, bridge, routes, `run_in`,
/// `spawn` and `exec`, and that dropping the lab removes every namespace and process.
#[test]
fn lab_wires_namespaces_and_cleans_up() {
    if !seesaw_lab::require_root() {
        return;
    }
    let mut lab = client_lb_be1()
        .build()
        .unwrap_or_else(|e| panic!("building the lab: {e}"));
    let id = lab.id().to_owned();

    // A socket stays in the namespace it was created in, whichever thread later uses it.
    let listener = lab
        .run_in("lb1", || TcpListener::bind("198.51.100.1:8080"))
        .expect("entering lb1")
        .expect("binding the VIP inside lb1");
    let server = std::thread::spawn(move || {
        let (mut s, peer) = listener.accept().expect("accept");
        s.write_all(peer.ip().to_string().as_bytes())
            .expect("write");
    });
    let seen_as = lab
        .run_in("client", || {
            let mut s = TcpStream::connect_timeout(
                &"198.51.100.1:8080".parse().expect("literal"),
                Duration::from_secs(5),
            )?;
            let mut peer = String::new();
            s.read_to_string(&mut peer)?;
            std::io::Result::Ok(peer)
        })
        .expect("entering client")
        .expect("client reaches the VIP through the route via lb1");
    server.join().expect("server thread");
    assert_eq!(seen_as, "192.0.2.100");

    // The client has no route to the backend network: only the VIP is reachable.
    let direct = lab
        .run_in("client", || {
            TcpStream::connect_timeout(
                &"203.0.113.11:80".parse().expect("literal"),
                Duration::from_secs(1),
            )
        })
        .expect("entering client");
    assert!(direct.is_err(), "client reached a backend directly");

    let out = lab
        .exec(
            "be1",
            "ip",
            &["-4", "-o", "addr", "show", "dev", "eth0"],
            &[],
            Duration::from_secs(5),
        )
        .expect("ip in be1");
    assert!(out.stdout.contains("203.0.113.11/24"), "{}", out.combined());

    let sleeper = lab
        .spawn("be1", "sleep", &["60"], &[])
        .expect("spawn sleep in be1");
    let pid = lab.pid(sleeper);
    let be1 = lab.ns("be1").expect("be1 exists").to_owned();
    // `ip netns exec` enters the namespace and then execs, so the pid is briefly still in the
    // host namespace right after the spawn.
    wait_until(
        "the spawned process to be in be1's namespace",
        Duration::from_secs(5),
        || {
            let mut identify = Command::new("ip");
            identify.args(["netns", "identify", &pid.to_string()]);
            run(identify, Duration::from_secs(5)).is_ok_and(|o| o.stdout.trim() == be1)
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));

    drop(lab);
    let pid = i32::try_from(pid).expect("pid fits");
    assert!(!procs::alive(pid), "the spawned process outlived the lab");
    let mut list = Command::new("ip");
    list.args(["netns", "list"]);
    let left = run(list, Duration::from_secs(5)).expect("ip netns list");
    assert!(
        !left.stdout.contains(&id),
        "namespaces left behind:\n{}",
        left.stdout
    );
}
