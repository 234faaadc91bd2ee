//! The HA advertisement: Seesaw's VRRPv3-layout packet (RFC 5798 §5.1 without the address list),
//! its checksum, and the receive-side checks of a raw IPv4 datagram.
//!
//! ```text
//!  0               1               2               3
//! +-------+-------+---------------+---------------+---------------+
//! |  ver  | type  |     VRID      |   priority    |  count (0)    |
//! +-------+-------+---------------+---------------+---------------+
//! | rsvd  |  max advert interval (centiseconds)   |   checksum    |
//! +-------+---------------------------------------+---------------+
//! ```
//!
//! The checksum is the Internet checksum over a pseudo-header (source, destination, protocol 112,
//! length 8) followed by the 8 bytes with the checksum field zero. Everything here is pure: the
//! parser is the only code that reads bytes from the network, and it never panics.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The VRRP IPv4 multicast group.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const TTL: u8 = 255;
/// Length of an advert payload.
pub const LEN: usize = 8;
/// Version 3, type 1 (advertisement).
pub const VERSION_TYPE: u8 = 0x31;
/// The largest interval the 12-bit field holds, in centiseconds.
pub const MAX_INTERVAL_CS: u16 = 0x0fff;

/// One advertisement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Advert {
    /// Virtual router id.
    pub vrid: u8,
    /// Sender priority; 0 means "I am giving up mastership".
    pub priority: u8,
    /// Advertisement interval in centiseconds (1..=4095).
    pub interval_cs: u16,
}

/// Why a received datagram is not an advert for us. Each reason is counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum AdvertError {
    /// Shorter than an IPv4 header, not IPv4, or a header length or total length that lies.
    #[error("malformed ip header")]
    MalformedIp,
    /// A fragment (the kernel reassembles; a fragment here is forged).
    #[error("ip fragment")]
    Fragment,
    /// Not protocol 112.
    #[error("ip protocol {0} is not vrrp")]
    Protocol(u8),
    /// TTL other than 255: sent from off-link.
    #[error("ttl {0} is not 255")]
    Ttl(u8),
    /// Payload not exactly 8 bytes.
    #[error("advert length {0} is not 8")]
    Length(usize),
    /// Our own advert (multicast loop or a reflected packet).
    #[error("advert from our own address")]
    OwnAddress,
    /// Not from the configured peer.
    #[error("advert from {0}, which is not the configured peer")]
    NotPeer(IpAddr),
    /// Checksum mismatch.
    #[error("bad checksum")]
    Checksum,
    /// Version/type byte other than 0x31.
    #[error("version/type 0x{0:02x} is not 0x31")]
    VersionType(u8),
    /// Another virtual router.
    #[error("vrid {0} is not ours")]
    Vrid(u8),
    /// Address count other than zero (Seesaw never sends addresses).
    #[error("address count {0} is not 0")]
    Count(u8),
    /// Interval 0 (would make the master-down interval zero).
    #[error("advert interval 0")]
    ZeroInterval,
}

/// What a receiver expects of an advert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// This node's address: adverts from it are dropped.
    pub local: Ipv4Addr,
    /// The peer's address: adverts from anyone else are dropped.
    pub peer: Ipv4Addr,
    /// Our VRID.
    pub vrid: u8,
}

/// An advert that passed every check, with its sender.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Received {
    /// Source address of the datagram.
    pub src: Ipv4Addr,
    /// The advert.
    pub advert: Advert,
}

// === impl Advert ===

impl Advert {
    /// An advert for `vrid` at `priority` with `interval` rounded to centiseconds and clamped to
    /// the field's range (1..=4095 cs, i.e. 10 ms..40.95 s).
    pub fn new(vrid: u8, priority: u8, interval: Duration) -> Self {
        let cs = (interval.as_millis() / 10).clamp(1, u128::from(MAX_INTERVAL_CS));
        Self {
            vrid,
            priority,
            interval_cs: u16::try_from(cs).unwrap_or(MAX_INTERVAL_CS),
        }
    }

    /// The advertised interval.
    pub fn interval(&self) -> Duration {
        Duration::from_millis(u64::from(self.interval_cs) * 10)
    }

    /// The 8 payload bytes, checksummed for a datagram from `src` to `dst`.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> [u8; LEN] {
        let iv = self.interval_cs & MAX_INTERVAL_CS;
        let mut b = [
            VERSION_TYPE,
            self.vrid,
            self.priority,
            0,
            (iv >> 8) as u8,
            (iv & 0xff) as u8,
            0,
            0,
        ];
        let sum = checksum(src, dst, &b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }
}

/// The VRRP checksum of `payload` (with its checksum field as it is) for `src` → `dst`. Over a
/// payload whose checksum field is already filled in, a correct checksum yields 0.
pub fn checksum(src: IpAddr, dst: IpAddr, payload: &[u8]) -> u16 {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut sum: u32 = 0;
    let mut add = |bytes: &[u8]| {
        for pair in bytes.chunks(2) {
            let hi = u32::from(pair[0]) << 8;
            let lo = pair.get(1).map_or(0, |b| u32::from(*b));
            sum = sum.wrapping_add(hi | lo);
        }
    };
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            add(&s.octets());
            add(&d.octets());
            // Zero, protocol, 16-bit length.
            add(&[0, PROTOCOL]);
            add(&(len as u16).to_be_bytes());
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a.octets(),
                IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
            };
            add(&v6(s));
            add(&v6(d));
            // 32-bit length, three zero bytes, next header.
            add(&len.to_be_bytes());
            add(&[0, 0, 0, PROTOCOL]);
        }
    }
    add(payload);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Parses a raw IPv4 datagram as read from a raw protocol-112 socket (IP header included) and
/// applies every receive check; the checks run in Seesaw's order after the header sanity checks.
pub fn parse_ipv4(datagram: &[u8], expect: &Expect) -> Result<Received, AdvertError> {
    let header = datagram.get(..20).ok_or(AdvertError::MalformedIp)?;
    if header[0] >> 4 != 4 {
        return Err(AdvertError::MalformedIp);
    }
    let ihl = usize::from(header[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([header[2], header[3]]));
    if ihl < 20 || total < ihl || total > datagram.len() {
        return Err(AdvertError::MalformedIp);
    }
    let frag = u16::from_be_bytes([header[6], header[7]]);
    // More-fragments flag or a non-zero offset.
    if frag & 0x3fff != 0 {
        return Err(AdvertError::Fragment);
    }
    let ttl = header[8];
    let proto = header[9];
    let src = Ipv4Addr::new(header[12], header[13], header[14], header[15]);
    let dst = Ipv4Addr::new(header[16], header[17], header[18], header[19]);
    if proto != PROTOCOL {
        return Err(AdvertError::Protocol(proto));
    }
    let payload = datagram.get(ihl..total).ok_or(AdvertError::MalformedIp)?;
    if payload.len() != LEN {
        return Err(AdvertError::Length(payload.len()));
    }
    if src == expect.local {
        return Err(AdvertError::OwnAddress);
    }
    if ttl != TTL {
        return Err(AdvertError::Ttl(ttl));
    }
    if checksum(IpAddr::V4(src), IpAddr::V4(dst), payload) != 0 {
        return Err(AdvertError::Checksum);
    }
    if payload[0] != VERSION_TYPE {
        return Err(AdvertError::VersionType(payload[0]));
    }
    if payload[1] != expect.vrid {
        return Err(AdvertError::Vrid(payload[1]));
    }
    if src != expect.peer {
        return Err(AdvertError::NotPeer(IpAddr::V4(src)));
    }
    if payload[3] != 0 {
        return Err(AdvertError::Count(payload[3]));
    }
    let interval_cs = u16::from_be_bytes([payload[4], payload[5]]) & MAX_INTERVAL_CS;
    if interval_cs == 0 {
        return Err(AdvertError::ZeroInterval);
    }
    Ok(Received {
        src,
        advert: Advert {
            vrid: payload[1],
            priority: payload[2],
            interval_cs,
        },
    })
}

#[cfg(test)]
mod tests;
