//! Proxy plane tests with real sockets on loopback: scheduling across backends, weights, failover
//! on a dead backend, and hot changes that leave established connections alone.

use std::collections::HashMap;
use std::net::SocketAddr;
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

fn service(port: u16, scheduler: Scheduler, dests: &[(SocketAddr, u32)]) -> Service {
    let mut dests: Vec<Dest> = dests
        .iter()
        .map(|(a, w)| Dest {
            addr: *a,
            weight: *w,
        })
        .collect();
    dests.sort();
    Service {
        key: ServiceKey {
            vip: "127.0.0.1".parse().unwrap(),
            proto: Protocol::Tcp,
            port,
        },
        scheduler,
        mode: ForwardMode::Nat,
        persistence: 0,
        dests,
    }
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
    let port = free_port();
    let vip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut plane = ProxyPlane::new();
    apply(
        &mut plane,
        &[service(port, Scheduler::Wrr, &[(a, 1), (b, 1)])],
    )
    .unwrap();
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

    // Counters survived the table rebuild.
    let stats = plane.stats();
    let total: u64 = stats[0].dests.iter().map(|d| d.total_conns).sum();
    assert_eq!(total, 41);
    assert_eq!(
        stats[0].dests.iter().map(|d| d.active_conns).sum::<u64>(),
        1
    );
}

#[tokio::test]
async fn dead_destination_is_skipped_and_removed_service_stops_listening() {
    let a = backend("a").await;
    let dead: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let port = free_port();
    let vip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut plane = ProxyPlane::new();
    apply(
        &mut plane,
        &[service(port, Scheduler::Rr, &[(a, 1), (dead, 1)])],
    )
    .unwrap();
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
    let port = free_port();
    let vip: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let mut plane = ProxyPlane::new();
    apply(
        &mut plane,
        &[service(port, Scheduler::Lc, &[(a, 1), (b, 1)])],
    )
    .unwrap();
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
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
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
