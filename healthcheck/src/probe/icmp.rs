//! ICMP echo probes on a socket of their own: an unprivileged ping socket (`SOCK_DGRAM`, allowed
//! by `net.ipv4.ping_group_range`) when the kernel permits it, else a raw socket (CAP_NET_RAW).
//! The reply must carry our sequence number and our random payload; on a ping socket the kernel
//! owns the identifier and filters replies by it, on a raw socket we filter by identifier too.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;
use tokio::time::Instant;

use super::{MAX_STRAY_DATAGRAMS, io_msg, net};
use crate::check::{IcmpProbe, ProbeOutcome};
use crate::codec::icmp;

/// Sequence numbers are shared by every ICMP probe of the process.
static SEQ: AtomicU16 = AtomicU16::new(0);

/// An ICMP socket and how it frames what it receives.
struct PingSocket {
    sock: UdpSocket,
    /// Raw IPv4 sockets deliver the IP header too.
    ip_header: bool,
    /// Ping sockets rewrite the identifier; raw sockets keep ours.
    check_id: bool,
}

/// One echo; passes on the matching reply.
pub async fn ping(p: &IcmpProbe) -> ProbeOutcome {
    let start = Instant::now();
    let v6 = p.ip.is_ipv6();
    let s = match open(p.ip) {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("icmp {}: {}", p.ip, io_msg(&e))),
    };
    let id = u16::from_be_bytes(net::random());
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    let token: [u8; 16] = net::random();
    let req = icmp::echo_request(v6, id, seq, &token);
    if let Err(e) = s.sock.send(&req).await {
        return ProbeOutcome::fail(format!("icmp send to {}: {}", p.ip, io_msg(&e)));
    }
    let mut buf = [0u8; 2048];
    for _ in 0..MAX_STRAY_DATAGRAMS {
        let n = match s.sock.recv(&mut buf).await {
            Ok(n) => n,
            Err(e) => {
                return ProbeOutcome::fail(format!("icmp recv from {}: {}", p.ip, io_msg(&e)));
            }
        };
        // Anything else (our own request seen on loopback, other pings' replies) is skipped.
        let Ok(r) = icmp::parse_reply(&buf[..n], v6, s.ip_header) else {
            continue;
        };
        if r.seq == seq && r.payload == token && (!s.check_id || r.id == id) {
            return ProbeOutcome::pass(format!(
                "icmp echo reply from {} in {} ms",
                p.ip,
                start.elapsed().as_millis()
            ));
        }
    }
    ProbeOutcome::fail(format!("icmp {}: no matching echo reply", p.ip))
}

fn open(ip: IpAddr) -> io::Result<PingSocket> {
    let (domain, proto) = if ip.is_ipv4() {
        (Domain::IPV4, Protocol::ICMPV4)
    } else {
        (Domain::IPV6, Protocol::ICMPV6)
    };
    let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
        Ok(s) => (s, false),
        Err(e) if matches!(e.kind(), io::ErrorKind::PermissionDenied) => {
            let s = Socket::new(domain, Type::RAW, Some(proto)).map_err(|e| {
                if e.kind() == io::ErrorKind::PermissionDenied {
                    io::Error::new(
                        e.kind(),
                        "cannot open an icmp socket (needs CAP_NET_RAW or net.ipv4.ping_group_range)",
                    )
                } else {
                    e
                }
            })?;
            (s, true)
        }
        Err(e) => return Err(e),
    };
    sock.set_nonblocking(true)?;
    // Connecting filters what arrives to the pinged address.
    sock.connect(&SocketAddr::new(ip, 0).into())?;
    let sock = UdpSocket::from_std(std::net::UdpSocket::from(sock))?;
    Ok(PingSocket {
        sock,
        ip_header: raw && ip.is_ipv4(),
        check_id: raw,
    })
}
