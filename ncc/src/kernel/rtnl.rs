//! rtnetlink for VIPs and interfaces: address add/delete/dump and link up/down, encoded and
//! decoded by pure functions ([`encode_addr`], [`encode_link_up`], [`decode`]) over one
//! `AF_NETLINK`/`NETLINK_ROUTE` socket ([`Rtnl`], socket2, no unsafe).
//!
//! Layout (`linux/netlink.h`, `linux/rtnetlink.h`, `linux/if_addr.h`), checked by the
//! golden-bytes tests: `nlmsghdr` (u32 len, u16 type, u16 flags, u32 seq, u32 pid); message
//! types `RTM_NEWLINK` 16, `RTM_NEWADDR` 20, `RTM_DELADDR` 21, `RTM_GETADDR` 22; flags
//! `NLM_F_REQUEST` 0x1, `NLM_F_ACK` 0x4, `NLM_F_EXCL` 0x200, `NLM_F_CREATE` 0x400, `NLM_F_DUMP`
//! 0x300. Addresses: `struct ifaddrmsg { u8 family; u8 prefixlen; u8 flags; u8 scope; u32
//! index; }` then attributes `IFA_ADDRESS` 1, `IFA_LOCAL` 2, `IFA_FLAGS` 8 (u32), `IFA_PROTO`
//! 11 (u8, the address's originator: kernel ≥ 6.1). ncc marks every address it adds with
//! `IFA_PROTO` = [`SEESAW_PROTO`] so a restarted ncc knows which addresses are its own
//! (adopt, never flush), and leaves every other address alone. IPv6 VIPs get `IFA_F_NODAD`
//! (0x02) so they are usable at once. Links: `struct ifinfomsg { u8 family; u8 pad; u16 type;
//! i32 index; u32 flags; u32 change; }` with `IFF_UP` (0x1) in flags and change.
//!
//! Adding an address makes the kernel add its local route (table `local`), which is what
//! makes the VIP's traffic delivered here.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use crate::NccError;

/// `IFA_PROTO` value of the addresses ncc owns.
pub const SEESAW_PROTO: u8 = 0x5e;

const RTM_NEWLINK: u16 = 16;
const RTM_NEWADDR: u16 = 20;
const RTM_DELADDR: u16 = 21;
const RTM_GETADDR: u16 = 22;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_PROTO: u16 = 11;
const IFA_F_NODAD: u8 = 0x02;
const IFF_UP: u32 = 0x1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// One address as the kernel holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HeldAddr {
    /// Interface index.
    pub index: u32,
    /// The address.
    pub addr: IpAddr,
    /// Prefix length.
    pub prefix: u8,
    /// `IFA_PROTO` (0 when absent).
    pub proto: u8,
}

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtReply {
    /// An address (from a dump).
    Addr(HeldAddr),
    /// `NLMSG_ERROR`: 0 acknowledges, else a negative errno.
    Ack(i32),
    /// End of a dump.
    Done,
}

/// Why a reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtnlDecodeError {
    /// A length overruns the datagram.
    #[error("rtnetlink reply truncated at byte {0}")]
    Truncated(usize),
    /// A field holds a value the UAPI does not allow.
    #[error("rtnetlink reply has a bad {0}")]
    Bad(&'static str),
}

fn push_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn message(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(16 + body.len());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    out
}

/// `RTM_NEWADDR` (`add`; create, exclusive) or `RTM_DELADDR` of `addr/prefix` on interface
/// `index`, marked as ours.
pub fn encode_addr(add: bool, seq: u32, index: u32, addr: IpAddr, prefix: u8) -> Vec<u8> {
    let (family, bytes, flags): (u8, Vec<u8>, u8) = match addr {
        IpAddr::V4(a) => (AF_INET, a.octets().to_vec(), 0),
        IpAddr::V6(a) => (AF_INET6, a.octets().to_vec(), IFA_F_NODAD),
    };
    let mut body = vec![family, prefix, flags, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    if addr.is_ipv4() {
        push_attr(&mut body, IFA_LOCAL, &bytes);
    }
    push_attr(&mut body, IFA_ADDRESS, &bytes);
    if add {
        push_attr(&mut body, IFA_FLAGS, &u32::from(flags).to_ne_bytes());
        push_attr(&mut body, IFA_PROTO, &[SEESAW_PROTO]);
    }
    let (ty, f) = if add {
        (
            RTM_NEWADDR,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
    } else {
        (RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK)
    };
    message(ty, f, seq, &body)
}

/// `RTM_GETADDR` dump of every address of every family.
pub fn encode_addr_dump(seq: u32) -> Vec<u8> {
    message(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, seq, &[0u8; 8])
}

/// `RTM_NEWLINK` setting interface `index` up or down.
pub fn encode_link_up(seq: u32, index: u32, up: bool) -> Vec<u8> {
    let mut body = vec![0u8, 0, 0, 0];
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&(if up { IFF_UP } else { 0 }).to_ne_bytes());
    body.extend_from_slice(&IFF_UP.to_ne_bytes());
    message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &body)
}

fn attrs(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), RtnlDecodeError>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if b.len().saturating_sub(at) < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[at], b[at + 1]]));
        let kind = u16::from_ne_bytes([b[at + 2], b[at + 3]]) & 0x3fff;
        if len < 4 || at + len > b.len() {
            let e = RtnlDecodeError::Truncated(at);
            at = b.len();
            return Some(Err(e));
        }
        let payload = &b[at + 4..at + len];
        at += (len + 3) & !3;
        Some(Ok((kind, payload)))
    })
}

fn decode_addr(msg: &[u8]) -> Result<Option<HeldAddr>, RtnlDecodeError> {
    let hdr = msg.get(..8).ok_or(RtnlDecodeError::Bad("ifaddrmsg"))?;
    let (family, prefix) = (hdr[0], hdr[1]);
    let index = u32::from_ne_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let (mut local, mut address, mut proto) = (None, None, 0u8);
    for a in attrs(&msg[8..]) {
        let (k, v) = a?;
        match k {
            IFA_LOCAL => local = Some(v),
            IFA_ADDRESS => address = Some(v),
            IFA_PROTO => proto = *v.first().ok_or(RtnlDecodeError::Bad("IFA_PROTO"))?,
            _ => {}
        }
    }
    let Some(raw) = local.or(address) else {
        return Err(RtnlDecodeError::Bad(
            "address without IFA_LOCAL/IFA_ADDRESS",
        ));
    };
    let addr = match family {
        AF_INET => {
            let b: [u8; 4] = raw
                .try_into()
                .map_err(|_| RtnlDecodeError::Bad("IPv4 address"))?;
            IpAddr::V4(Ipv4Addr::from(b))
        }
        AF_INET6 => {
            let b: [u8; 16] = raw
                .try_into()
                .map_err(|_| RtnlDecodeError::Bad("IPv6 address"))?;
            IpAddr::V6(Ipv6Addr::from(b))
        }
        // Other families (none are dumped for RTM_GETADDR today) are skipped.
        _ => return Ok(None),
    };
    if prefix > if addr.is_ipv4() { 32 } else { 128 } {
        return Err(RtnlDecodeError::Bad("prefix length"));
    }
    Ok(Some(HeldAddr {
        index,
        addr,
        prefix,
        proto,
    }))
}

/// Decodes every message of one datagram. Hostile input gives an error, never a panic (the
/// `netlink_reply` fuzz target).
pub fn decode(b: &[u8]) -> Result<Vec<RtReply>, RtnlDecodeError> {
    let mut out = Vec::new();
    let mut at = 0usize;
    while b.len().saturating_sub(at) >= 16 {
        let len = u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]) as usize;
        let ty = u16::from_ne_bytes([b[at + 4], b[at + 5]]);
        if len < 16 || at.checked_add(len).is_none_or(|e| e > b.len()) {
            return Err(RtnlDecodeError::Truncated(at));
        }
        let msg = &b[at + 16..at + len];
        at += (len + 3) & !3;
        match ty {
            NLMSG_DONE => out.push(RtReply::Done),
            NLMSG_ERROR => {
                let e = msg.get(..4).ok_or(RtnlDecodeError::Truncated(at))?;
                out.push(RtReply::Ack(i32::from_ne_bytes([e[0], e[1], e[2], e[3]])));
            }
            RTM_NEWADDR => {
                if let Some(a) = decode_addr(msg)? {
                    out.push(RtReply::Addr(a));
                }
            }
            _ => return Err(RtnlDecodeError::Bad("message type")),
        }
    }
    Ok(out)
}

/// How long one request may wait for the kernel.
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// Upper bound on datagrams per request.
const MAX_DATAGRAMS: usize = 1 << 16;

/// A `NETLINK_ROUTE` socket in the caller's network namespace.
#[derive(Debug)]
pub struct Rtnl {
    sock: Socket,
    seq: u32,
}

impl Rtnl {
    /// Opens the socket.
    pub fn open() -> Result<Self, NccError> {
        let sock = Socket::new(
            Domain::from(libc::AF_NETLINK),
            Type::RAW,
            Some(Protocol::from(0)),
        )
        .map_err(|e| NccError::Plane(format!("rtnetlink socket: {e}")))?;
        sock.set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(|e| NccError::Plane(format!("rtnetlink timeout: {e}")))?;
        Ok(Self { sock, seq: 0 })
    }

    /// The next sequence number.
    pub fn seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Sends `msg` and collects replies until the acknowledgement (or `NLMSG_DONE` for a dump).
    pub fn request(&mut self, msg: &[u8], dump: bool) -> Result<Vec<RtReply>, NccError> {
        self.sock
            .send(msg)
            .map_err(|e| NccError::Plane(format!("rtnetlink send: {e}")))?;
        let mut buf = vec![0u8; 1 << 16];
        let mut out = Vec::new();
        for _ in 0..MAX_DATAGRAMS {
            let n = (&self.sock)
                .read(&mut buf)
                .map_err(|e| NccError::Plane(format!("rtnetlink recv: {e}")))?;
            for r in decode(&buf[..n]).map_err(|e| NccError::Plane(e.to_string()))? {
                match r {
                    RtReply::Ack(0) if !dump => return Ok(out),
                    RtReply::Ack(0) => {}
                    RtReply::Ack(e) => {
                        return Err(NccError::Plane(format!(
                            "rtnetlink: {}",
                            std::io::Error::from_raw_os_error(e.saturating_neg())
                        )));
                    }
                    RtReply::Done => return Ok(out),
                    a @ RtReply::Addr(_) => out.push(a),
                }
            }
        }
        Err(NccError::Plane("rtnetlink: reply without end".into()))
    }
}

#[cfg(test)]
#[path = "rtnl_tests.rs"]
mod tests;
