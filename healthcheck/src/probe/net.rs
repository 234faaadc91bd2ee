//! Sockets of the probes: TCP and UDP to a [`Dial`]. A DSR or TUN check's socket is set up to go
//! through the VIP ([`ThroughVip`]): `SO_MARK` set before connecting (the mark steers the probe
//! through the data plane to one backend) and the source bound to the address the kernel would
//! use to reach that backend (the VIP is local, so the kernel would otherwise pick the VIP as the
//! source, and the backend, which holds the VIP too, would drop the probe). Setting a mark needs
//! CAP_NET_RAW (Linux ≥ 5.17) or CAP_NET_ADMIN; without either the probe fails with that reason,
//! it never falls back to a direct probe.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::check::{Dial, ThroughVip};

/// A TCP connection to `d.addr`, set up as `d.through_vip` says.
pub async fn tcp_connect(d: &Dial) -> io::Result<TcpStream> {
    let sock = if d.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(t) = d.through_vip {
        set_mark(SockRef::from(&sock), t.mark)?;
        let source = source_towards(t.backend)?;
        // Let connect pick the port, so probes share source ports across 4-tuples as
        // unbound connections do (a bind to port 0 would reserve a port per probe).
        // Best effort: without it the bind still works, it only uses ports faster.
        let _ = nix::sys::socket::setsockopt(
            &sock,
            nix::sys::socket::sockopt::IpBindAddressNoPort,
            &true,
        );
        sock.bind(SocketAddr::new(source, 0))
            .map_err(|e| context(e, format!("cannot bind the source address {source}")))?;
    }
    sock.connect(d.addr).await
}

/// [`tcp_connect`] for a probe that writes a request: Nagle must not hold it back.
pub async fn tcp_connect_nodelay(d: &Dial) -> io::Result<TcpStream> {
    let stream = tcp_connect(d).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A UDP socket connected to `d.addr` (so ICMP errors come back as `recv` errors), set up as
/// `d.through_vip` says.
pub async fn udp_connect(d: &Dial) -> io::Result<UdpSocket> {
    let any: IpAddr = if d.addr.is_ipv4() {
        Ipv4Addr::UNSPECIFIED.into()
    } else {
        Ipv6Addr::UNSPECIFIED.into()
    };
    let sock = match d.through_vip {
        None => UdpSocket::bind(SocketAddr::new(any, 0)).await?,
        Some(t) => marked_udp(d.addr, t)?,
    };
    sock.connect(d.addr).await?;
    Ok(sock)
}

/// A non-blocking UDP socket for `vip` with `t`'s mark, bound to the source towards its backend.
fn marked_udp(vip: SocketAddr, t: ThroughVip) -> io::Result<UdpSocket> {
    let domain = if vip.is_ipv4() {
        Domain::IPV4
    } else {
        Domain::IPV6
    };
    let sock = Socket::new(domain, Type::DGRAM, Some(Protocol::UDP))?;
    sock.set_nonblocking(true)?;
    // The mark first: a missing capability is the error to report.
    set_mark(SockRef::from(&sock), t.mark)?;
    let source = source_towards(t.backend)?;
    sock.bind(&SocketAddr::new(source, 0).into())
        .map_err(|e| context(e, format!("cannot bind the source address {source}")))?;
    UdpSocket::from_std(std::net::UdpSocket::from(sock))
}

/// The source address the kernel would use to reach `backend`: a UDP socket "connected" to it
/// (a route lookup; nothing is sent) reports it.
pub fn source_towards(backend: IpAddr) -> io::Result<IpAddr> {
    let any: SocketAddr = if backend.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let probe = std::net::UdpSocket::bind(any)?;
    // Any non-zero port: only the route is looked up.
    probe
        .connect(SocketAddr::new(backend, 9))
        .map_err(|e| context(e, format!("no source address towards backend {backend}")))?;
    Ok(probe.local_addr()?.ip())
}

/// Sets `SO_MARK`, saying which capability is missing when it fails.
pub fn set_mark(sock: SockRef<'_>, mark: u32) -> io::Result<()> {
    sock.set_mark(mark).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                e.kind(),
                format!("cannot set SO_MARK {mark:#x} (needs CAP_NET_RAW or CAP_NET_ADMIN)"),
            )
        } else {
            e
        }
    })
}

/// `e` with `what` in front of its message, keeping its kind.
fn context(e: io::Error, what: String) -> io::Error {
    let msg = super::io_msg(&e);
    io::Error::new(e.kind(), format!("{what}: {msg}"))
}

/// `N` unpredictable bytes (RADIUS authenticators, DNS ids, ICMP identifiers).
pub fn random<const N: usize>() -> [u8; N] {
    let mut b = [0u8; N];
    if rustls::crypto::ring::default_provider()
        .secure_random
        .fill(&mut b)
        .is_err()
    {
        // The kernel's RNG never fails on Linux; if it did, a time-derived value still keeps
        // concurrent probes apart (these values are not secrets).
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
            .to_le_bytes();
        for (i, x) in b.iter_mut().enumerate() {
            *x = t[i % t.len()];
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn is_root() -> bool {
        nix::unistd::getuid().is_root()
    }

    /// DSR/TUN probes: the mark is on the socket when it connects, and the source is the one
    /// towards the backend (a listener on loopback stands in for the VIP).
    #[tokio::test]
    #[allow(clippy::print_stderr, reason = "the skip message")]
    async fn mark_and_source_are_set_on_probe_sockets() {
        if !is_root() {
            eprintln!(
                "skipping mark_and_source_are_set_on_probe_sockets: SO_MARK needs CAP_NET_ADMIN (run as root)"
            );
            return;
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend: IpAddr = "127.0.0.1".parse().unwrap();
        let source = source_towards(backend).unwrap();
        assert_eq!(source, backend, "loopback reaches loopback from loopback");
        let d = Dial::through_vip(l.local_addr().unwrap(), 0x5ee5, backend);
        let s = tcp_connect(&d).await.unwrap();
        assert_eq!(SockRef::from(&s).mark().unwrap(), 0x5ee5);
        let (_, peer) = l.accept().await.unwrap();
        assert_eq!(peer.ip(), source);
        assert_eq!(s.local_addr().unwrap(), peer);
        let u = udp_connect(&d).await.unwrap();
        assert_eq!(SockRef::from(&u).mark().unwrap(), 0x5ee5);
        assert_eq!(u.local_addr().unwrap().ip(), source);
        assert_ne!(u.local_addr().unwrap().port(), 0);
        let plain = tcp_connect(&Dial::plain(d.addr)).await.unwrap();
        assert_eq!(SockRef::from(&plain).mark().unwrap(), 0);
        // A datagram really leaves a marked, bound socket and reaches the "VIP".
        let vip = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let d = Dial::through_vip(vip.local_addr().unwrap(), 0x5ee5, backend);
        let u = udp_connect(&d).await.unwrap();
        u.send(b"probe").await.unwrap();
        let mut buf = [0u8; 16];
        let (n, from) = vip.recv_from(&mut buf).await.unwrap();
        assert_eq!((&buf[..n], from), (&b"probe"[..], u.local_addr().unwrap()));
    }

    /// IPv6: the source towards `::1` is `::1`, and a marked probe connects from it.
    #[tokio::test]
    #[allow(clippy::print_stderr, reason = "the skip message")]
    async fn ipv6_probe_sockets_bind_the_source_towards_the_backend() {
        let Ok(l) = tokio::net::TcpListener::bind("[::1]:0").await else {
            eprintln!("skipping ipv6_probe_sockets_bind_the_source_towards_the_backend: no ::1");
            return;
        };
        let backend: IpAddr = "::1".parse().unwrap();
        assert_eq!(source_towards(backend).unwrap(), backend);
        if !is_root() {
            eprintln!(
                "skipping the marked half of ipv6_probe_sockets_bind_the_source_towards_the_backend: needs CAP_NET_ADMIN (run as root)"
            );
            return;
        }
        let d = Dial::through_vip(l.local_addr().unwrap(), 0x10000, backend);
        let s = tcp_connect(&d).await.unwrap();
        assert_eq!(SockRef::from(&s).mark().unwrap(), 0x10000);
        let (_, peer) = l.accept().await.unwrap();
        assert_eq!(peer.ip(), backend);
    }

    /// Runs `f` on a thread of its own without the effective capabilities `drop` (capabilities
    /// are per thread, so the rest of the test binary keeps them).
    fn without<T: Send + 'static>(
        drop: rustix::thread::CapabilitySet,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> T {
        std::thread::spawn(move || {
            let mut caps = rustix::thread::capabilities(None).expect("capget");
            caps.effective.remove(drop);
            rustix::thread::set_capabilities(None, caps).expect("dropping effective capabilities");
            f()
        })
        .join()
        .expect("probe thread")
    }

    /// SO_MARK needs CAP_NET_RAW or CAP_NET_ADMIN (Linux ≥ 5.17): the healthcheck's CAP_NET_RAW,
    /// which ICMP needs anyway, is enough.
    #[test]
    #[allow(clippy::print_stderr, reason = "the skip message")]
    fn cap_net_raw_alone_can_mark() {
        use rustix::thread::CapabilitySet;
        let caps = rustix::thread::capabilities(None).expect("capget");
        if !caps.effective.contains(CapabilitySet::NET_RAW) {
            eprintln!("skipping cap_net_raw_alone_can_mark: needs CAP_NET_RAW (run as root)");
            return;
        }
        let marked = without(CapabilitySet::NET_ADMIN, || {
            let s = Socket::new(Domain::IPV4, Type::DGRAM, None).expect("socket");
            set_mark(SockRef::from(&s), 0x10000).map_err(|e| e.to_string())
        });
        assert_eq!(
            marked,
            Ok(()),
            "this kernel wants CAP_NET_ADMIN for SO_MARK (< 5.17?)"
        );
    }

    /// Without CAP_NET_RAW and CAP_NET_ADMIN a DSR probe fails and says why; it never probes
    /// directly.
    #[test]
    fn missing_capabilities_fail_the_probe_with_the_reason() {
        use rustix::thread::CapabilitySet;
        let outcome = without(CapabilitySet::NET_ADMIN | CapabilitySet::NET_RAW, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let d = Dial::through_vip(
                    l.local_addr().unwrap(),
                    0x10000,
                    "127.0.0.1".parse().unwrap(),
                );
                let tcp = tcp_connect(&d).await.map(|_| ()).map_err(|e| e.to_string());
                let udp = udp_connect(&d).await.map(|_| ()).map_err(|e| e.to_string());
                let probe = crate::probe::tcp(
                    &crate::check::TcpProbe {
                        dial: d,
                        tls: None,
                        send: Vec::new(),
                        receive: Vec::new(),
                    },
                    &crate::probe::TlsClients::with_roots(rustls::RootCertStore::empty()),
                )
                .await;
                // The listener saw nothing: no direct probe behind the error.
                let accepted =
                    tokio::time::timeout(std::time::Duration::from_millis(50), l.accept())
                        .await
                        .is_ok();
                (tcp, udp, probe, accepted, d.addr)
            })
        });
        let (tcp, udp, probe, accepted, addr) = outcome;
        let want = "cannot set SO_MARK 0x10000 (needs CAP_NET_RAW or CAP_NET_ADMIN)";
        assert_eq!(tcp, Err(want.to_owned()));
        assert_eq!(udp, Err(want.to_owned()));
        assert!(!probe.success);
        assert_eq!(
            probe.message,
            format!("tcp connect {addr} (mark 0x10000 to 127.0.0.1): {want}")
        );
        assert!(!accepted, "a connection reached the listener");
    }

    #[test]
    fn random_values_differ() {
        let a: [u8; 16] = random();
        let b: [u8; 16] = random();
        assert_ne!(a, b);
    }
}
