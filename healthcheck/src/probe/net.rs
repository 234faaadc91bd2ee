//! Sockets of the probes: TCP and UDP to a [`Dial`], with `SO_MARK` set before connecting when the
//! check runs in DSR or TUN mode (the mark steers the probe through the data plane to one
//! backend). Setting a mark needs CAP_NET_ADMIN; without it the probe fails with that reason.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};

use socket2::SockRef;
use tokio::net::{TcpSocket, TcpStream, UdpSocket};

use crate::check::Dial;

/// A TCP connection to `d.addr`, marked with `d.mark`.
pub async fn tcp_connect(d: &Dial) -> io::Result<TcpStream> {
    let sock = if d.addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(mark) = d.mark {
        set_mark(SockRef::from(&sock), mark)?;
    }
    sock.connect(d.addr).await
}

/// [`tcp_connect`] for a probe that writes a request: Nagle must not hold it back.
pub async fn tcp_connect_nodelay(d: &Dial) -> io::Result<TcpStream> {
    let stream = tcp_connect(d).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A UDP socket connected to `d.addr` (so ICMP errors come back as `recv` errors), marked with
/// `d.mark`.
pub async fn udp_connect(d: &Dial) -> io::Result<UdpSocket> {
    let any: SocketAddr = if d.addr.is_ipv4() {
        (Ipv4Addr::UNSPECIFIED, 0).into()
    } else {
        (Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let sock = UdpSocket::bind(any).await?;
    if let Some(mark) = d.mark {
        set_mark(SockRef::from(&sock), mark)?;
    }
    sock.connect(d.addr).await?;
    Ok(sock)
}

/// Sets `SO_MARK`, saying which capability is missing when it fails.
pub fn set_mark(sock: SockRef<'_>, mark: u32) -> io::Result<()> {
    sock.set_mark(mark).map_err(|e| {
        if e.kind() == io::ErrorKind::PermissionDenied {
            io::Error::new(
                e.kind(),
                format!("cannot set SO_MARK {mark:#x} (needs CAP_NET_ADMIN)"),
            )
        } else {
            e
        }
    })
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
        std::fs::read_to_string("/proc/self/status")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("Uid:"))
                    .map(|l| l.split_whitespace().nth(1) == Some("0"))
            })
            .unwrap_or(false)
    }

    /// DSR/TUN probes: the mark is on the socket when it connects.
    #[tokio::test]
    #[allow(clippy::print_stderr, reason = "the skip message")]
    async fn mark_is_set_on_probe_sockets() {
        if !is_root() {
            eprintln!(
                "skipping mark_is_set_on_probe_sockets: SO_MARK needs CAP_NET_ADMIN (run as root)"
            );
            return;
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let d = Dial {
            addr: l.local_addr().unwrap(),
            mark: Some(0x5ee5),
        };
        let s = tcp_connect(&d).await.unwrap();
        assert_eq!(SockRef::from(&s).mark().unwrap(), 0x5ee5);
        let u = udp_connect(&d).await.unwrap();
        assert_eq!(SockRef::from(&u).mark().unwrap(), 0x5ee5);
        let plain = tcp_connect(&Dial::plain(d.addr)).await.unwrap();
        assert_eq!(SockRef::from(&plain).mark().unwrap(), 0);
    }

    #[test]
    fn random_values_differ() {
        let a: [u8; 16] = random();
        let b: [u8; 16] = random();
        assert_ne!(a, b);
    }
}
