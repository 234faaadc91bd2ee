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
//! length 8) followed by the 8 bytes with the checksum field zero. With `[ha] auth_key_file` the
//! payload is [`SIGNED_LEN`] bytes: these 8, a counter and a truncated HMAC (see
//! [`crate::auth`]), and the checksum covers all of them. Everything here is pure: the parser is
//! the only code that reads bytes from the network, and it never panics.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use crate::auth::{self, AuthError, Key, Verifier};

/// IP protocol number of VRRP.
pub const PROTOCOL: u8 = 112;
/// The VRRP IPv4 multicast group.
pub const MULTICAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The TTL / hop limit every advert is sent with and must arrive with.
pub const TTL: u8 = 255;
/// Length of an advert payload.
pub const LEN: usize = 8;
const _: () = assert!(LEN == auth::ADVERT_LEN);
/// Length of a signed advert payload: the advert, the counter and the truncated MAC.
pub const SIGNED_LEN: usize = LEN + auth::COUNTER_LEN + auth::MAC_LEN;
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
    /// Payload neither 8 bytes (unsigned) nor 32 (signed).
    #[error("advert length {0} is neither 8 nor 32")]
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
    /// An unsigned (8-byte) advert while we have a key: the peer has none, or a forgery.
    #[error("unsigned advert while [ha] auth_key_file is set")]
    Unauthenticated,
    /// A signed advert that no configured key verifies: the keys differ, or a forgery.
    #[error("advert signature does not verify with our keys")]
    BadMac,
    /// A signed advert whose counter is not above the last one accepted: a replay.
    #[error("advert counter not above the last accepted (replay)")]
    Replay,
    /// A signed (32-byte) advert while we have no key: the peer signs, we do not.
    #[error("signed advert while this node has no [ha] auth_key_file")]
    UnexpectedAuth,
}

impl AdvertError {
    /// Every reason name [`AdvertError::reason`] returns, in a stable order.
    pub const REASONS: [&'static str; 16] = [
        "malformed_ip",
        "fragment",
        "protocol",
        "ttl",
        "length",
        "own_address",
        "not_peer",
        "checksum",
        "version_type",
        "vrid",
        "count",
        "zero_interval",
        "unauthenticated",
        "bad_mac",
        "replay",
        "unexpected_auth",
    ];

    /// The reason names of authentication failures.
    pub const AUTH_REASONS: [&'static str; 4] =
        ["unauthenticated", "bad_mac", "replay", "unexpected_auth"];

    /// The stable snake_case name of the reason (what the engine, the CLI and metrics show),
    /// without the per-packet detail.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::MalformedIp => "malformed_ip",
            Self::Fragment => "fragment",
            Self::Protocol(_) => "protocol",
            Self::Ttl(_) => "ttl",
            Self::Length(_) => "length",
            Self::OwnAddress => "own_address",
            Self::NotPeer(_) => "not_peer",
            Self::Checksum => "checksum",
            Self::VersionType(_) => "version_type",
            Self::Vrid(_) => "vrid",
            Self::Count(_) => "count",
            Self::ZeroInterval => "zero_interval",
            Self::Unauthenticated => "unauthenticated",
            Self::BadMac => "bad_mac",
            Self::Replay => "replay",
            Self::UnexpectedAuth => "unexpected_auth",
        }
    }

    /// Whether this is an authentication failure (loud: it means misconfiguration or an
    /// attack, not line noise).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::Unauthenticated | Self::BadMac | Self::Replay | Self::UnexpectedAuth
        )
    }
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

/// Rejected datagrams counted by [`AdvertError::reason`]: a fixed array, so reports that carry
/// it stay `Copy`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rejections([u64; AdvertError::REASONS.len()]);

// === impl Rejections ===

impl Rejections {
    /// Counts one rejection.
    pub fn add(&mut self, why: &AdvertError) {
        if let Some(i) = AdvertError::REASONS.iter().position(|r| *r == why.reason()) {
            self.0[i] = self.0[i].saturating_add(1);
        }
    }

    /// Adds every count of `other`.
    pub fn absorb(&mut self, other: &Self) {
        for (a, b) in self.0.iter_mut().zip(other.0) {
            *a = a.saturating_add(b);
        }
    }

    /// The count for a reason name (0 for an unknown name).
    pub fn get(&self, reason: &str) -> u64 {
        AdvertError::REASONS
            .iter()
            .position(|r| *r == reason)
            .map_or(0, |i| self.0[i])
    }

    /// Only the authentication failures (see [`AdvertError::is_auth`]).
    pub fn auth_failures(&self) -> Self {
        let mut out = *self;
        for (n, reason) in out.0.iter_mut().zip(AdvertError::REASONS) {
            if !AdvertError::AUTH_REASONS.contains(&reason) {
                *n = 0;
            }
        }
        out
    }

    /// The non-zero counts, by reason name, in [`AdvertError::REASONS`] order.
    pub fn nonzero(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        AdvertError::REASONS
            .iter()
            .zip(self.0)
            .filter(|(_, n)| *n > 0)
            .map(|(r, n)| (*r, n))
    }
}

impl From<AuthError> for AdvertError {
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::BadMac => Self::BadMac,
            AuthError::Replay => Self::Replay,
        }
    }
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

    /// The [`SIGNED_LEN`] payload bytes for a datagram from `src` to `dst`, signed with `key`
    /// at `counter`; the checksum covers all of them.
    pub fn encode_signed(
        &self,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        key: &Key,
        counter: u64,
    ) -> [u8; SIGNED_LEN] {
        let mut b = [0u8; SIGNED_LEN];
        b[..LEN].copy_from_slice(&self.encode(IpAddr::V4(src), IpAddr::V4(dst)));
        b[6] = 0;
        b[7] = 0;
        b[LEN..LEN + auth::COUNTER_LEN].copy_from_slice(&counter.to_be_bytes());
        let tag = auth::tag(key, src, dst, &b[..LEN], counter);
        b[LEN + auth::COUNTER_LEN..].copy_from_slice(&tag);
        let sum = checksum(IpAddr::V4(src), IpAddr::V4(dst), &b);
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }
}

/// A raw IPv4 datagram (20-byte header, TTL 255, protocol 112) carrying `payload` from `src` to
/// `dst`, as a raw socket reads it: what the in-memory test network carries.
pub fn ipv4_datagram(src: Ipv4Addr, dst: Ipv4Addr, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).unwrap_or(u16::MAX);
    let mut d = Vec::with_capacity(20 + payload.len());
    d.extend_from_slice(&[0x45, 0]);
    d.extend_from_slice(&total.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0x40, 0, TTL, PROTOCOL, 0, 0]);
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&dst.octets());
    d.extend_from_slice(payload);
    d
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
///
/// `auth` is the verifier when this node has a key: then only signed adverts that a configured
/// key verifies and whose counter is above the last accepted pass (and the verifier remembers
/// the counter); without one, only unsigned adverts pass. The peer's signed adverts are verified
/// before any payload field is read; a signing mismatch (unsigned with a key, signed without)
/// is reported only for adverts from the peer on our VRID, so other VRRP routers on the segment
/// count as `vrid`/`not_peer`, not as authentication failures. The replay window moves only for
/// an advert that passed every check.
pub fn parse_ipv4(
    datagram: &[u8],
    expect: &Expect,
    auth: Option<&mut Verifier>,
) -> Result<Received, AdvertError> {
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
    if payload.len() != LEN && payload.len() != SIGNED_LEN {
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
    // A signed advert from the peer is verified before any of its fields is read, so a
    // tampered byte anywhere is a bad MAC.
    let counter = match (&auth, payload.len()) {
        (Some(v), SIGNED_LEN) if src == expect.peer => Some(v.check_mac(src, dst, payload)?),
        _ => None,
    };
    if payload[0] != VERSION_TYPE {
        return Err(AdvertError::VersionType(payload[0]));
    }
    if payload[1] != expect.vrid {
        return Err(AdvertError::Vrid(payload[1]));
    }
    if src != expect.peer {
        return Err(AdvertError::NotPeer(IpAddr::V4(src)));
    }
    // Only now, for the peer's adverts on our VRID, is a signing mismatch an authentication
    // failure: other VRRP routers on the segment (unsigned, another VRID) are not alarms.
    match (&auth, payload.len()) {
        (Some(_), LEN) => return Err(AdvertError::Unauthenticated),
        (None, SIGNED_LEN) => return Err(AdvertError::UnexpectedAuth),
        _ => {}
    }
    if payload[3] != 0 {
        return Err(AdvertError::Count(payload[3]));
    }
    let interval_cs = u16::from_be_bytes([payload[4], payload[5]]) & MAX_INTERVAL_CS;
    if interval_cs == 0 {
        return Err(AdvertError::ZeroInterval);
    }
    if let (Some(v), Some(c)) = (auth, counter) {
        v.accept(c)?;
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
