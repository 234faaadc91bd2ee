//! Listening for neighbour announcements inside a lab node: an `AF_PACKET` socket opened in the
//! node's namespace (a socket keeps its namespace) records every gratuitous ARP (sender IP =
//! target IP) and unsolicited neighbour advertisement (with a target link-layer address) for a
//! bounded window.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

use nix::sys::socket::{
    AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, recv, setsockopt, socket, sockopt,
};

use crate::error::LabError;
use crate::netns::Lab;

/// One announcement heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Announcement {
    /// When it arrived.
    pub at: Instant,
    /// The Ethernet source.
    pub eth_src: [u8; 6],
    /// The announced address.
    pub ip: IpAddr,
    /// The announced MAC (ARP sender / NA target link-layer address).
    pub mac: [u8; 6],
}

fn mac_at(f: &[u8], i: usize) -> Option<[u8; 6]> {
    f.get(i..i + 6)?.try_into().ok()
}

/// Decodes a gratuitous ARP (request or reply, sender IP = target IP) or an unsolicited NA with
/// a target link-layer address option; anything else is `None`.
pub fn parse(f: &[u8], at: Instant) -> Option<Announcement> {
    let eth_src = mac_at(f, 6)?;
    match f.get(12..14)? {
        [0x08, 0x06] => {
            let spa: [u8; 4] = f.get(28..32)?.try_into().ok()?;
            let tpa: [u8; 4] = f.get(38..42)?.try_into().ok()?;
            let op = f.get(20..22)?;
            ((op == [0, 1] || op == [0, 2]) && spa == tpa).then(|| Announcement {
                at,
                eth_src,
                ip: IpAddr::V4(Ipv4Addr::from(spa)),
                mac: mac_at(f, 22).unwrap_or_default(),
            })
        }
        [0x86, 0xdd] => {
            let icmp = f.get(54..)?;
            if f.get(20)? != &58 || icmp.first()? != &136 || icmp.get(24..26)? != [2, 1] {
                return None;
            }
            let target: [u8; 16] = icmp.get(8..24)?.try_into().ok()?;
            Some(Announcement {
                at,
                eth_src,
                ip: IpAddr::V6(Ipv6Addr::from(target)),
                mac: mac_at(icmp, 26)?,
            })
        }
        _ => None,
    }
}

/// A capture socket in `node`'s namespace, opened now (frames queue from this moment).
pub fn open(lab: &Lab, node: &str) -> Result<OwnedFd, LabError> {
    lab.run_in(node, || {
        let s = socket(
            AddressFamily::Packet,
            SockType::Raw,
            SockFlag::SOCK_CLOEXEC,
            SockProtocol::EthAll,
        )
        .map_err(|e| LabError::io("AF_PACKET socket")(std::io::Error::from(e)))?;
        setsockopt(
            &s,
            sockopt::ReceiveTimeout,
            &nix::sys::time::TimeVal::new(0, 200_000),
        )
        .map_err(|e| LabError::io("receive timeout")(std::io::Error::from(e)))?;
        Ok(s)
    })?
}

/// Every announcement on `sock` for `window` (at most 100,000 frames read).
pub fn listen(sock: &OwnedFd, window: Duration) -> Result<Vec<Announcement>, LabError> {
    let deadline = Instant::now() + window;
    let mut heard = Vec::new();
    let mut buf = [0u8; 2048];
    for _ in 0..100_000 {
        if Instant::now() >= deadline {
            break;
        }
        match recv(sock.as_raw_fd(), &mut buf, MsgFlags::empty()) {
            Ok(n) => heard.extend(parse(&buf[..n], Instant::now())),
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {}
            Err(e) => return Err(LabError::io("capture")(std::io::Error::from(e))),
        }
    }
    Ok(heard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_garp_and_na_and_ignores_the_rest() {
        let now = Instant::now();
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&[2, 0, 0, 0, 0, 1, 0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 2]);
        arp.extend_from_slice(&[
            2, 0, 0, 0, 0, 1, 192, 0, 2, 1, 0, 0, 0, 0, 0, 0, 192, 0, 2, 1,
        ]);
        let a = parse(&arp, now).expect("gratuitous ARP reply");
        assert_eq!(a.ip, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)));
        assert_eq!(a.mac, [2, 0, 0, 0, 0, 1]);
        let mut who_has = arp.clone();
        who_has[41] = 9;
        assert_eq!(parse(&who_has, now), None, "an ordinary ARP request");
        for cut in 0..arp.len() {
            let _ = parse(&arp[..cut], now);
        }
    }
}
