//! The raw-socket transport on loopback (root only): two transports bound to 127.0.0.1 and
//! 127.0.0.2 exchange adverts with TTL 255 and valid checksums, and a third party's adverts are
//! dropped. Traffic stays on 127.0.0.0/8.

use std::net::Ipv4Addr;
use std::time::Duration;

use seesaw_ha::advert::{Advert, Received};
use seesaw_ha::node::Peering;
use seesaw_ha::transport::{RawTransport, Transport};

fn peering(local: [u8; 4], peer: [u8; 4]) -> Peering {
    Peering {
        local: Ipv4Addr::from(local),
        peer: Ipv4Addr::from(peer),
        vrid: 77,
        priority: 100,
        interval: Duration::from_millis(100),
        preempt: false,
        auth: None,
    }
}

fn signed(local: [u8; 4], peer: [u8; 4], key: &[u8]) -> Peering {
    Peering {
        auth: Some(seesaw_ha::auth::AuthKeys {
            send: seesaw_ha::auth::Key::derive(key),
            accept: None,
        }),
        ..peering(local, peer)
    }
}

/// Whether this process may open raw sockets (root); says why the test skips otherwise.
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
fn raw_sockets_allowed() -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        eprintln!("skipping: raw sockets need root (CAP_NET_RAW)");
    }
    root
}

/// Transports at 127.0.0.`a` and 127.0.0.`b`, each the other's peer, unsigned.
fn peers(a: u8, b: u8) -> (RawTransport, RawTransport) {
    let (ia, ib) = ([127, 0, 0, a], [127, 0, 0, b]);
    (
        RawTransport::open(&peering(ia, ib)).expect("open a"),
        RawTransport::open(&peering(ib, ia)).expect("open b"),
    )
}

/// The next advert `t` accepts, failing the test after 2 s.
async fn recv_within_2s(t: &mut RawTransport) -> Received {
    tokio::time::timeout(Duration::from_secs(2), t.recv())
        .await
        .expect("an advert within 2 s")
        .expect("recv")
}

#[tokio::test]
async fn adverts_cross_loopback_and_strangers_are_dropped() {
    if !raw_sockets_allowed() {
        return;
    }
    let (mut a, mut b) = peers(1, 2);
    // A stranger at 127.0.0.3 that believes 127.0.0.2 is its peer.
    let mut c = RawTransport::open(&peering([127, 0, 0, 3], [127, 0, 0, 2])).expect("open c");

    c.send(&Advert::new(77, 200, Duration::from_millis(100)))
        .expect("send c");
    let sent = Advert::new(77, 100, Duration::from_millis(100));
    a.send(&sent).expect("send a");
    let got = recv_within_2s(&mut b).await;
    assert_eq!(got.src, Ipv4Addr::new(127, 0, 0, 1));
    assert_eq!(got.advert, sent);
    assert_eq!(
        b.drops()
            .get(&seesaw_ha::advert::AdvertError::NotPeer(
                "127.0.0.3".parse().expect("ip")
            ))
            .copied(),
        Some(1)
    );
    let back = Advert::new(77, 0, Duration::from_millis(100));
    b.send(&back).expect("send b");
    let got = recv_within_2s(&mut a).await;
    assert_eq!(got.advert.priority, 0);
}

#[tokio::test]
async fn an_advert_read_late_reports_its_kernel_arrival() {
    if !raw_sockets_allowed() {
        return;
    }
    let (mut a, mut b) = peers(4, 5);
    // The first socket asking for receive timestamps turns the kernel's timestamping on through
    // deferred work; a datagram received before that runs carries no kernel time and is stamped
    // when read. One exchange and a moment's wait let it run.
    a.send(&Advert::new(77, 100, Duration::from_millis(100)))
        .expect("send");
    recv_within_2s(&mut b).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    a.send(&Advert::new(77, 100, Duration::from_millis(100)))
        .expect("send");
    // The reader is "descheduled" for 150 ms: the advert waited in the socket that long.
    std::thread::sleep(Duration::from_millis(150));
    recv_within_2s(&mut b).await;
    let age = b.last_age();
    assert!(
        age >= Duration::from_millis(140) && age < Duration::from_secs(1),
        "age {age:?}"
    );
    // Read at once: (almost) no age.
    a.send(&Advert::new(77, 100, Duration::from_millis(100)))
        .expect("send");
    recv_within_2s(&mut b).await;
    assert!(
        b.last_age() < Duration::from_millis(100),
        "{:?}",
        b.last_age()
    );
}

#[tokio::test]
async fn signed_adverts_cross_loopback_and_a_wrong_key_is_counted() {
    if !raw_sockets_allowed() {
        return;
    }
    const KEY: &[u8] = b"a key of thirty-two bytes or more";
    let mut a = RawTransport::open(&signed([127, 0, 0, 7], [127, 0, 0, 8], KEY)).expect("open a");
    let mut b = RawTransport::open(&signed([127, 0, 0, 8], [127, 0, 0, 7], KEY)).expect("open b");
    let sent = Advert::new(77, 100, Duration::from_millis(100));
    a.send(&sent).expect("send a");
    assert_eq!(recv_within_2s(&mut b).await.advert, sent);
    // The same address with another key (a peer whose key differs): dropped and counted.
    drop(a);
    let mut wrong = RawTransport::open(&signed(
        [127, 0, 0, 7],
        [127, 0, 0, 8],
        b"another key of at least 32 bytes",
    ))
    .expect("open wrong");
    wrong.send(&sent).expect("send wrong");
    let mut unsigned =
        RawTransport::open(&peering([127, 0, 0, 9], [127, 0, 0, 8])).expect("open c");
    drop(unsigned.send(&sent));
    let quiet = tokio::time::timeout(Duration::from_millis(300), b.recv()).await;
    assert!(quiet.is_err(), "nothing verifies: {quiet:?}");
    assert_eq!(b.rejected().get("bad_mac"), 1);
    // The stranger at .9 is not the peer: not an authentication alarm.
    assert_eq!(b.rejected().get("not_peer"), 1);
    assert_eq!(b.rejected().get("unauthenticated"), 0);
}
