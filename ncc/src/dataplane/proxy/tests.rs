//! Proxy plane tests with real sockets on loopback: scheduling across backends, weights, failover
//! on a dead backend, and hot changes that leave established connections alone.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::*;
use crate::dataplane::apply;
use crate::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey};

/// A backend that answers each line with `<name>:<line>`; runs until the test ends.
async fn backend(name: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            let reply = format!("{name}:{}", String::from_utf8_lossy(&buf[..n]));
                            if s.write_all(reply.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `plane` once it applied `services`.
fn holding(mut plane: ProxyPlane, services: &[Service]) -> ProxyPlane {
    apply(&mut plane, services).unwrap();
    plane
}

/// A free TCP port and the VIP 127.0.0.1 on it.
fn tcp_vip() -> (u16, SocketAddr) {
    let port = free_port();
    (port, format!("127.0.0.1:{port}").parse().unwrap())
}

fn service(port: u16, scheduler: Scheduler, dests: &[(SocketAddr, u32)]) -> Service {
    let mut dests: Vec<Dest> = dests.iter().map(|(a, w)| Dest::new(*a, *w)).collect();
    dests.sort();
    let key = ServiceKey::new("127.0.0.1".parse().unwrap(), Protocol::Tcp, port);
    Service::new(key, scheduler, ForwardMode::Nat, dests)
}

async fn ask(vip: SocketAddr, msg: &str) -> String {
    let mut s = TcpStream::connect(vip).await.unwrap();
    s.write_all(msg.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 256];
    let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

async fn who(vip: SocketAddr, n: usize) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for _ in 0..n {
        let r = ask(vip, "x").await;
        *seen
            .entry(r.split(':').next().unwrap().to_owned())
            .or_default() += 1;
    }
    seen
}

#[tokio::test]
async fn wrr_follows_weights_and_hot_weight_change_keeps_connections() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (port, vip) = tcp_vip();
    let mut plane = holding(
        ProxyPlane::new(),
        &[service(port, Scheduler::Wrr, &[(a, 1), (b, 1)])],
    );
    let seen = who(vip, 20).await;
    assert_eq!((seen["a"], seen["b"]), (10, 10));

    // An established connection survives a weight change and a removal of its backend.
    let mut held = TcpStream::connect(vip).await.unwrap();
    held.write_all(b"1").await.unwrap();
    let mut buf = [0u8; 16];
    let n = held.read(&mut buf).await.unwrap();
    let first = String::from_utf8_lossy(&buf[..n]).into_owned();
    let changes = apply(
        &mut plane,
        &[service(port, Scheduler::Wrr, &[(a, 3), (b, 1)])],
    )
    .unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let seen = who(vip, 20).await;
    assert_eq!((seen["a"], seen["b"]), (15, 5));
    held.write_all(b"2").await.unwrap();
    let n = held.read(&mut buf).await.unwrap();
    assert_eq!(String::from_utf8_lossy(&buf[..n]), first.replace('1', "2"));

    // Counters survived the table rebuild. The proxy ends a connection when it sees the
    // client's close, a moment after the client saw its reply: wait (bounded) for that.
    let mut active = u64::MAX;
    for _ in 0..100 {
        active = plane.stats()[0].dests.iter().map(|d| d.active_conns).sum();
        if active == 1 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(active, 1);
    let total: u64 = plane.stats()[0].dests.iter().map(|d| d.total_conns).sum();
    assert_eq!(total, 41);
}

#[tokio::test]
async fn dead_destination_is_skipped_and_removed_service_stops_listening() {
    let a = backend("a").await;
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let (port, vip) = tcp_vip();
    let mut plane = holding(
        ProxyPlane::new(),
        &[service(port, Scheduler::Rr, &[(a, 1), (dead, 1)])],
    );
    let seen = who(vip, 10).await;
    assert_eq!(
        seen.get("a"),
        Some(&10),
        "connect failures fall over to the live backend"
    );

    apply(&mut plane, &[]).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(TcpStream::connect(vip).await.is_err(), "listener closed");
}

#[tokio::test]
async fn lc_prefers_the_idle_backend() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (port, vip) = tcp_vip();
    let _plane = holding(
        ProxyPlane::new(),
        &[service(port, Scheduler::Lc, &[(a, 1), (b, 1)])],
    );
    // Hold one connection open; every new one must go to the other backend.
    let mut held = TcpStream::connect(vip).await.unwrap();
    held.write_all(b"h").await.unwrap();
    let mut buf = [0u8; 16];
    let n = held.read(&mut buf).await.unwrap();
    let busy = String::from_utf8_lossy(&buf[..n])
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    for _ in 0..5 {
        let r = ask(vip, "x").await;
        assert!(!r.starts_with(&busy), "{r} went to the busy backend");
        // Let the finished relay drop its connection count before the next pick.
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

#[test]
fn bind_failure_leaves_the_plane_unchanged() {
    let rt = current_thread_runtime();
    rt.block_on(async {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = taken.local_addr().unwrap().port();
        // SO_REUSEADDR does not allow two listeners on one port.
        let mut plane = ProxyPlane::new();
        let err = apply(&mut plane, &[service(port, Scheduler::Rr, &[])]).unwrap_err();
        assert!(err.to_string().contains("cannot listen on"), "{err}");
        assert!(plane.current().is_empty());
    });
}

// === payload routing, UDP, SNI, PROXY protocol, drain ===

use crate::model::{Cond, Field, Op, ProxyProtocol, Rule, RuleTarget, ServiceOpts};
use seesaw_proto::ncc as pb;

/// A UDP backend answering each datagram with `<name>:<payload>`; counts what it received.
fn udp_backend(name: &'static str) -> (SocketAddr, Arc<AtomicU64>) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let addr = s.local_addr().unwrap();
    let n = Arc::new(AtomicU64::new(0));
    let count = n.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if let Ok((len, from)) = s.recv_from(&mut buf) {
                count.fetch_add(1, Ordering::Relaxed);
                let mut reply = format!("{name}:").into_bytes();
                reply.extend_from_slice(&buf[..len]);
                let _ = s.send_to(&reply, from);
            }
        }
    });
    (addr, n)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends `payload` from `sock` to `vip` and returns the backend name of the reply (or `None`
/// when nothing comes back within 300 ms).
fn udp_ask(sock: &std::net::UdpSocket, vip: SocketAddr, payload: &[u8]) -> Option<String> {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    sock.send_to(payload, vip).unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = sock.recv_from(&mut buf).ok()?;
    assert_eq!(from, vip, "replies come from the VIP");
    let r = &buf[..n];
    let colon = r.iter().position(|&b| b == b':')?;
    assert_eq!(&r[colon + 1..], payload, "reply carries the payload back");
    Some(String::from_utf8_lossy(&r[..colon]).into_owned())
}

fn pb_dest(a: SocketAddr, group: &str, backup: bool) -> pb::Destination {
    pb::Destination {
        address: a.ip().to_string(),
        port: u32::from(a.port()),
        weight: 1,
        group: group.into(),
        backup,
    }
}

fn pb_cond(offset: u32, length: u32, op: pb::PayloadOp, value: &[u8]) -> pb::PayloadCond {
    pb::PayloadCond {
        key: pb::PayloadKey::Bytes as i32,
        offset,
        length,
        op: op as i32,
        value: vec![value.to_vec()],
        mask: Vec::new(),
    }
}

fn current_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// A free UDP port and the VIP 127.0.0.1 on it.
fn udp_vip() -> (u16, SocketAddr) {
    let port = free_udp_port();
    (port, format!("127.0.0.1:{port}").parse().unwrap())
}

/// A UDP NAT service on 127.0.0.1:`port` as the engine would send it, converted by ncc.
fn udp_nat_from_pb(
    port: u16,
    scheduler: pb::Scheduler,
    destinations: Vec<pb::Destination>,
    proxy: pb::ProxyOptions,
) -> Service {
    from_pb(pb::Service {
        address: "127.0.0.1".into(),
        protocol: pb::Protocol::Udp as i32,
        port: u32::from(port),
        scheduler: scheduler as i32,
        mode: pb::ForwardMode::Nat as i32,
        destinations,
        proxy: Some(proxy),
        ..Default::default()
    })
}

/// A rule: payload byte 1 equal to `v` goes to `target`.
fn byte_1_is(v: u8, target: RuleTarget) -> Rule {
    Rule {
        conds: vec![Cond {
            field: Field::Bytes { offset: 1, len: 1 },
            op: Op::Eq,
            mask: vec![],
            values: vec![vec![v]],
        }],
        target,
    }
}

/// Converts through ncc's API conversion, as a request from the engine would be.
fn from_pb(s: pb::Service) -> Service {
    crate::convert::services_from_pb(pb::DesiredState {
        services: vec![s],
        ..Default::default()
    })
    .unwrap()
    .remove(0)
}

#[test]
fn udp_kcp_conv_affinity_with_port_reuse() {
    // stevedore's first example: chash on data[0:4] (KCP conv), one backup peer.
    let rt = current_thread_runtime();
    let _g = rt.enter();
    let (b1, _) = udp_backend("b1");
    let (b2, _) = udp_backend("b2");
    let (b3, _) = udp_backend("b3");
    let (port, vip) = udp_vip();
    let svc = udp_nat_from_pb(
        port,
        pb::Scheduler::Mh,
        vec![
            pb_dest(b1, "kcp", true),
            pb_dest(b2, "kcp", false),
            pb_dest(b3, "kcp", false),
        ],
        pb::ProxyOptions {
            default_group: "kcp".into(),
            hash_offset: 0,
            hash_length: 4,
            ..Default::default()
        },
    );
    let mut plane = holding(ProxyPlane::with_threads(2), std::slice::from_ref(&svc));
    // One client socket (one port) carries many KCP sessions: each conv sticks to one backend,
    // a second client with the same convs lands on the same backends, the backup gets none.
    let c1 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let c2 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut per_backend: HashMap<String, usize> = HashMap::new();
    for conv in 0u32..40 {
        let mut pkt = conv.to_be_bytes().to_vec();
        pkt.extend_from_slice(&[81, 0, 0, 32, 0, 0, 0, 0]);
        let first = udp_ask(&c1, vip, &pkt).expect("reply");
        for _ in 0..3 {
            assert_eq!(udp_ask(&c1, vip, &pkt).as_deref(), Some(first.as_str()));
        }
        assert_eq!(udp_ask(&c2, vip, &pkt).as_deref(), Some(first.as_str()));
        *per_backend.entry(first).or_default() += 1;
    }
    assert!(
        !per_backend.contains_key("b1"),
        "backup unused: {per_backend:?}"
    );
    assert!(
        per_backend.get("b2").copied().unwrap_or(0) >= 8,
        "{per_backend:?}"
    );
    assert!(
        per_backend.get("b3").copied().unwrap_or(0) >= 8,
        "{per_backend:?}"
    );
    // Both primaries gone: the backup takes over.
    let mut only_backup = svc.clone();
    only_backup.dests.retain(|d| d.backup);
    apply(&mut plane, &[only_backup]).unwrap();
    let c3 = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert_eq!(udp_ask(&c3, vip, &[0, 0, 0, 7, 1]).as_deref(), Some("b1"));
    let stats = plane.stats();
    let b1_flows = stats[0]
        .dests
        .iter()
        .find(|d| d.dest.unwrap().addr == b1)
        .unwrap();
    assert_eq!(b1_flows.total_conns, 1);
}

#[test]
fn udp_protocol_version_routing_with_default_deny() {
    // stevedore's second example: data[4:6] == 1 → ver1, == 2 → ver2, anything else dropped.
    let rt = current_thread_runtime();
    let _g = rt.enter();
    let (v1, n1) = udp_backend("ver1");
    let (v2, n2) = udp_backend("ver2");
    let (port, vip) = udp_vip();
    let svc = udp_nat_from_pb(
        port,
        pb::Scheduler::Rr,
        vec![pb_dest(v1, "ver1", false), pb_dest(v2, "ver2", false)],
        pb::ProxyOptions {
            rule: vec![
                pb::PayloadRule {
                    cond: vec![pb_cond(4, 2, pb::PayloadOp::Eq, &[0, 1])],
                    group: "ver1".into(),
                    deny: false,
                },
                pb::PayloadRule {
                    cond: vec![pb_cond(4, 2, pb::PayloadOp::Eq, &[0, 2])],
                    group: "ver2".into(),
                    deny: false,
                },
            ],
            default_deny: true,
            udp_mode: pb::UdpMode::PerPacket as i32,
            ..Default::default()
        },
    );
    let plane = holding(ProxyPlane::with_threads(2), &[svc]);
    let c = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let pkt = |ver: u16| {
        let mut p = vec![0xca, 0xfe, 0, 1];
        p.extend_from_slice(&ver.to_be_bytes());
        p.extend_from_slice(&[0, 9, 1, 2, 3, 4, 5, 6, 7, 8]);
        p
    };
    for _ in 0..5 {
        assert_eq!(udp_ask(&c, vip, &pkt(1)).as_deref(), Some("ver1"));
        assert_eq!(udp_ask(&c, vip, &pkt(2)).as_deref(), Some("ver2"));
    }
    // Unknown versions and short datagrams are dropped and counted, and reach nobody.
    assert_eq!(udp_ask(&c, vip, &pkt(3)), None);
    assert_eq!(udp_ask(&c, vip, &[1, 2, 3]), None);
    assert_eq!(n1.load(Ordering::Relaxed), 5);
    assert_eq!(n2.load(Ordering::Relaxed), 5);
    let key = ServiceKey {
        vip: vip.ip(),
        proto: Protocol::Udp,
        port,
        fwmark: 0,
    };
    assert_eq!(plane.drops(&key).unwrap().denied, 2);
}

fn routed_service(port: u16, dests: Vec<Dest>, opts: ServiceOpts) -> Service {
    let key = ServiceKey::new("127.0.0.1".parse().unwrap(), Protocol::Tcp, port);
    Service {
        opts,
        ..Service::new(key, Scheduler::Rr, ForwardMode::Nat, dests)
    }
}

fn grouped(a: SocketAddr, group: u16) -> Dest {
    Dest {
        group,
        ..Dest::new(a, 1)
    }
}

#[tokio::test]
async fn tcp_first_bytes_routing() {
    let (web, other) = (backend("web").await, backend("other").await);
    let (port, vip) = tcp_vip();
    let opts = ServiceOpts {
        groups: vec![String::new(), "web".into()],
        rules: vec![Rule {
            conds: vec![Cond {
                field: Field::Bytes { offset: 0, len: 4 },
                op: Op::Prefix,
                mask: Vec::new(),
                values: vec![b"GET ".to_vec()],
            }],
            target: RuleTarget::Group(1),
        }],
        default_target: RuleTarget::Group(0),
        first_bytes_wait_ms: 200,
        ..ServiceOpts::default()
    };
    let _plane = holding(
        ProxyPlane::with_threads(2),
        &[routed_service(
            port,
            vec![grouped(web, 1), grouped(other, 0)],
            opts,
        )],
    );
    for _ in 0..3 {
        assert!(ask(vip, "GET /index").await.starts_with("web:GET "));
        assert!(ask(vip, "POST /x").await.starts_with("other:POST"));
    }
    // Fewer bytes than the rule needs, and the client waits: routed by default after the wait,
    // and the bytes already read are relayed.
    assert_eq!(ask(vip, "GE").await, "other:GE");
}

#[tokio::test]
async fn tcp_sni_routing() {
    let (a, b, d) = (backend("a").await, backend("b").await, backend("d").await);
    let (port, vip) = tcp_vip();
    let sni = |op, v: &str| Cond {
        field: Field::Sni,
        op,
        mask: Vec::new(),
        values: vec![v.as_bytes().to_vec()],
    };
    let opts = ServiceOpts {
        groups: vec![String::new(), "a".into(), "b".into()],
        rules: vec![
            Rule {
                conds: vec![sni(Op::Eq, "a.example.com")],
                target: RuleTarget::Group(1),
            },
            Rule {
                conds: vec![sni(Op::Suffix, ".b.test")],
                target: RuleTarget::Group(2),
            },
            Rule {
                conds: vec![sni(Op::Eq, "blocked.test")],
                target: RuleTarget::Deny,
            },
        ],
        first_bytes_wait_ms: 500,
        ..ServiceOpts::default()
    };
    let plane = holding(
        ProxyPlane::with_threads(2),
        &[routed_service(
            port,
            vec![grouped(a, 1), grouped(b, 2), grouped(d, 0)],
            opts,
        )],
    );
    let hello_to = |name: &'static str| async move {
        let hello = tls::client_hello(name);
        let mut s = TcpStream::connect(vip).await.unwrap();
        // Split the ClientHello across writes: the proxy must wait for all of it.
        s.write_all(&hello[..10]).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        s.write_all(&hello[10..]).await.unwrap();
        let mut buf = vec![0u8; 1024];
        let mut got = Vec::new();
        while got.len() < hello.len() + 2 {
            match tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await {
                Ok(Ok(0)) | Err(_) | Ok(Err(_)) => break,
                Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            }
        }
        let colon = got.iter().position(|&c| c == b':');
        colon.map(|i| String::from_utf8_lossy(&got[..i]).into_owned())
    };
    assert_eq!(hello_to("A.Example.com").await.as_deref(), Some("a"));
    assert_eq!(hello_to("www.b.test").await.as_deref(), Some("b"));
    assert_eq!(hello_to("other.test").await.as_deref(), Some("d"));
    assert_eq!(hello_to("blocked.test").await, None);
    let key = ServiceKey {
        vip: vip.ip(),
        proto: Protocol::Tcp,
        port,
        fwmark: 0,
    };
    assert_eq!(plane.drops(&key).unwrap().denied, 1);
}

#[tokio::test]
async fn proxy_protocol_headers_reach_the_backend() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let be = l.local_addr().unwrap();
    let (port, vip) = tcp_vip();
    let mut plane = ProxyPlane::with_threads(1);
    for (pp, want_prefix) in [
        (
            ProxyProtocol::V1,
            b"PROXY TCP4 127.0.0.1 127.0.0.1 ".to_vec(),
        ),
        (
            ProxyProtocol::V2,
            b"\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c".to_vec(),
        ),
    ] {
        let opts = ServiceOpts {
            proxy_protocol: pp,
            ..ServiceOpts::default()
        };
        apply(
            &mut plane,
            &[routed_service(port, vec![Dest::new(be, 1)], opts)],
        )
        .unwrap();
        let mut c = TcpStream::connect(vip).await.unwrap();
        c.write_all(b"hi").await.unwrap();
        let (mut s, _) = l.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        while !got.ends_with(b"hi") {
            let n = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        assert!(got.starts_with(&want_prefix), "{pp:?}: {got:?}");
        let client_port = c.local_addr().unwrap().port();
        if pp == ProxyProtocol::V1 {
            let line = String::from_utf8_lossy(&got);
            assert!(
                line.contains(&format!(" {client_port} {port}\r\n")),
                "{line}"
            );
        } else {
            assert_eq!(&got[24..26], &client_port.to_be_bytes());
            assert_eq!(&got[26..28], &port.to_be_bytes());
        }
    }
}

#[tokio::test]
async fn removed_destination_drains_until_its_timeout() {
    let (a, b) = (backend("a").await, backend("b").await);
    let (port, vip) = tcp_vip();
    let opts = ServiceOpts {
        drain_timeout_ms: 300,
        ..ServiceOpts::default()
    };
    let mut plane = ProxyPlane::with_threads(1);
    let svc = |dests: Vec<Dest>| routed_service(port, dests, opts.clone());
    apply(&mut plane, &[svc(vec![Dest::new(a, 1)])]).unwrap();
    let mut held = TcpStream::connect(vip).await.unwrap();
    held.write_all(b"1").await.unwrap();
    let mut buf = [0u8; 64];
    let n = held.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"a:1");
    // Remove a: the held connection keeps working, new ones go to b.
    apply(&mut plane, &[svc(vec![Dest::new(b, 1)])]).unwrap();
    held.write_all(b"2").await.unwrap();
    let n = held.read(&mut buf).await.unwrap();
    assert_eq!(&buf[..n], b"a:2");
    assert!(ask(vip, "x").await.starts_with("b:"));
    // After the drain timeout the held connection is closed.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _ = held.write_all(b"3").await;
    let r = tokio::time::timeout(Duration::from_secs(2), held.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "closed after drain: {r:?}"
    );
}

#[tokio::test]
async fn bulk_relay_switches_to_splice_and_keeps_half_close() {
    // A backend that reads the whole upload, then answers with its length and a 3 MB body and
    // closes: the upload's EOF must reach it while the download still flows (half-close), and
    // every byte must arrive in order (the relay copies first, then splices once a read fills
    // its buffer).
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let be = l.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        let mut up = Vec::new();
        s.read_to_end(&mut up).await.unwrap();
        let sum: u64 = up.iter().map(|&b| u64::from(b)).sum();
        s.write_all(format!("{} {sum}\n", up.len()).as_bytes())
            .await
            .unwrap();
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        s.write_all(&body).await.unwrap();
    });
    let (port, vip) = tcp_vip();
    let plane = holding(
        ProxyPlane::with_threads(1),
        &[service(port, Scheduler::Rr, &[(be, 1)])],
    );

    let mut c = TcpStream::connect(vip).await.unwrap();
    let upload: Vec<u8> = (0..1_000_000u32).map(|i| (i % 253) as u8).collect();
    let want_sum: u64 = upload.iter().map(|&b| u64::from(b)).sum();
    c.write_all(&upload).await.unwrap();
    c.shutdown().await.unwrap();
    let mut got = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), c.read_to_end(&mut got))
        .await
        .expect("the download finishes")
        .unwrap();
    let nl = got.iter().position(|&b| b == b'\n').unwrap();
    assert_eq!(
        String::from_utf8_lossy(&got[..nl]),
        format!("1000000 {want_sum}")
    );
    let body = &got[nl + 1..];
    assert_eq!(body.len(), 3_000_000);
    assert!(
        body.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8),
        "the body arrives intact and in order"
    );
    let st = plane.stats();
    let d = &st[0].dests[0];
    assert_eq!(d.bytes_in, 1_000_000);
    assert_eq!(d.bytes_out, 3_000_000 + nl as u64 + 1);
}

#[test]
fn udp_bursts_of_equal_datagrams_arrive_complete_and_in_order() {
    // Bursts of equal-sized datagrams of one flow leave as UDP GSO messages (or sendmmsg where
    // the kernel refuses GSO): each must still arrive as its own datagram, unchanged.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sink.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let be = sink.local_addr().unwrap();
    let (port, vip) = udp_vip();
    let mut svc = service(port, Scheduler::Rr, &[(be, 1)]);
    svc.key.proto = Protocol::Udp;
    let _plane = holding(ProxyPlane::with_threads(1), &[svc]);
    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 2048];
    for burst in 0..20u8 {
        // 16 datagrams of 100 bytes, then a shorter one: one GSO run per batch.
        for i in 0..16u8 {
            let mut d = vec![burst; 100];
            d[0] = i;
            client.send_to(&d, vip).unwrap();
        }
        client.send_to(&[burst, 0xee], vip).unwrap();
        for _ in 0..17 {
            let (n, _) = sink.recv_from(&mut buf).expect("every datagram arrives");
            got.push(buf[..n].to_vec());
        }
    }
    assert_eq!(got.len(), 20 * 17);
    for (k, d) in got.iter().enumerate() {
        let (burst, i) = ((k / 17) as u8, k % 17);
        if i == 16 {
            assert_eq!(d.as_slice(), &[burst, 0xee]);
        } else {
            assert_eq!(d.len(), 100, "datagram {k}");
            assert_eq!(d[0], i as u8, "datagram {k} in order");
            assert!(d[1..].iter().all(|&b| b == burst), "datagram {k} intact");
        }
    }
}

#[test]
#[allow(clippy::print_stderr, reason = "the skip notice")]
fn udp_gso_client_datagrams_coalesced_by_gro_are_routed_one_by_one() {
    // A client that sends with GSO: on loopback the kernel hands the proxy's GRO-enabled VIP
    // socket the datagrams coalesced; each must still be routed on its own (by byte 1: 0 → the
    // default group (a), 1 → group b, 0xff → denied) and arrive as its own datagram.
    let (a, b) = (
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
        std::net::UdpSocket::bind("127.0.0.1:0").unwrap(),
    );
    for s in [&a, &b] {
        s.set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
    }
    let (port, vip) = udp_vip();
    let opts = ServiceOpts {
        rules: vec![
            byte_1_is(1, RuleTarget::Group(1)),
            byte_1_is(0xff, RuleTarget::Deny),
        ],
        groups: vec![String::new(), "b".into()],
        ..ServiceOpts::default()
    };
    let mut svc = routed_service(
        port,
        vec![
            grouped(a.local_addr().unwrap(), 0),
            grouped(b.local_addr().unwrap(), 1),
        ],
        opts,
    );
    svc.key.proto = Protocol::Udp;
    svc.opts.udp_mode = crate::model::UdpMode::PerPacket;
    let plane = holding(ProxyPlane::with_threads(1), &[svc]);

    let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    client.connect(vip).unwrap();
    let mut batch = sys::Batch::new(32, 64);
    for i in 0..30u8 {
        let kind = match i % 3 {
            0 => 0,
            1 => 1,
            _ => 0xff,
        };
        assert!(batch.push(&[i, kind, 7, 7, 7, 7, 7, 7], None));
    }
    let sent = batch.send_gso(std::os::fd::AsFd::as_fd(&client), 0, 30, 8, None);
    if let Err(e) = sent {
        eprintln!("skipping: this kernel refuses UDP GSO ({e})");
        return;
    }
    let mut buf = [0u8; 2048];
    let recv_all = |s: &std::net::UdpSocket, buf: &mut [u8]| {
        let mut got = Vec::new();
        while let Ok(n) = s.recv(buf) {
            got.push(buf[..n].to_vec());
        }
        got
    };
    let at_a = recv_all(&a, &mut buf);
    let at_b = recv_all(&b, &mut buf);
    let ids = |v: &[Vec<u8>]| v.iter().map(|d| d[0]).collect::<Vec<_>>();
    assert!(
        at_a.iter().chain(&at_b).all(|d| d.len() == 8),
        "{at_a:?} {at_b:?}"
    );
    assert_eq!(ids(&at_a), (0..30).step_by(3).collect::<Vec<u8>>());
    assert_eq!(ids(&at_b), (1..30).step_by(3).collect::<Vec<u8>>());
    let key = plane.services.keys().next().copied().unwrap();
    assert_eq!(plane.drops(&key).unwrap().denied, 10);
}
