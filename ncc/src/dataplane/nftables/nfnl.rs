//! The two `NETLINK_NETFILTER` dumps the lc/wlc re-weighting reads, encoded and decoded by pure
//! functions (the socket is in `loads`): ctnetlink's conntrack table, filtered by our mark, for
//! NAT; nf_tables' elements of one set (a DSR service's flow map) for DSR. The replies come
//! from the kernel and are decoded as hostile input: every length is checked, nothing panics,
//! and a malformed message is an error (fuzz target `nfnl_reply`). Nothing is allocated per
//! entry: a dump of a million flows is counted, not stored. Hand-written rather than taken
//! from `netlink-packet-netfilter` for that reason (its decoder builds every tuple of every
//! entry) and because only five attributes matter here.
//!
//! Derivation from the kernel UAPI (`linux/netlink.h`, `linux/netfilter/nfnetlink.h`,
//! `nfnetlink_conntrack.h`, `nf_conntrack_tcp.h`, `nf_tables.h`); the golden-bytes tests pin
//! every number:
//!
//! - A message is `nlmsghdr` (16 bytes, native endian: `u32 len`, `u16 type`, `u16 flags`,
//!   `u32 seq`, `u32 pid`), then `nfgenmsg` (`u8 family`, `u8 version` = `NFNETLINK_V0` 0,
//!   `__be16 res_id`), then attributes (`u16 len` = 4 + payload, `u16 type`, bit 15
//!   `NLA_F_NESTED` and bit 14 `NLA_F_NET_BYTEORDER` as flags; payload padded to 4 bytes).
//!   Messages in one datagram are padded to 4 bytes. The type is `subsystem << 8 | message`.
//!   A dump ends with `NLMSG_DONE` (3); `NLMSG_ERROR` (2) carries `i32 -errno`.
//! - Conntrack (`NFNL_SUBSYS_CTNETLINK` 1): request `IPCTNL_MSG_CT_GET` 1 with `NLM_F_REQUEST |
//!   NLM_F_DUMP` (0x301), family `AF_UNSPEC` (both IP versions), and the dump filter
//!   `CTA_MARK` 8 + `CTA_MARK_MASK` 21 (both `__be32`): only entries whose
//!   `mark & mask == mark` come back. Each entry is an `IPCTNL_MSG_CT_NEW` 0 message with
//!   `CTA_TUPLE_ORIG` 1 { `CTA_TUPLE_PROTO` 2 { `CTA_PROTO_NUM` 1: `u8` } },
//!   `CTA_PROTOINFO` 4 { `CTA_PROTOINFO_TCP` 1 { `CTA_PROTOINFO_TCP_STATE` 1: `u8` } } and
//!   `CTA_MARK` 8 (`__be32`). TCP states: `ESTABLISHED` 3 is active, every other one inactive
//!   (as IPVS counts); other protocols are active while tracked.
//! - nf_tables (`NFNL_SUBSYS_NFTABLES` 10): request `NFT_MSG_GETSETELEM` 13, dump flags,
//!   family `NFPROTO_NETDEV` 5, `NFTA_SET_ELEM_LIST_TABLE` 1 and `NFTA_SET_ELEM_LIST_SET` 2
//!   (NUL-terminated strings). Replies are `NFT_MSG_NEWSETELEM` 12 messages with
//!   `NFTA_SET_ELEM_LIST_ELEMENTS` 3 { `NFTA_LIST_ELEM` 1 { `NFTA_SET_ELEM_DATA` 2 {
//!   `NFTA_DATA_VALUE` 1: the mapped value } } }; a `mark` value is 4 bytes in host order (a
//!   register's bytes, as `meta mark` loads it). Expired elements are not dumped.
//! - The ruleset generation: `NFT_MSG_GETGEN` 16 with `NLM_F_REQUEST | NLM_F_ACK` (0x5); the
//!   reply is one `NFT_MSG_NEWGEN` 15 with `NFTA_GEN_ID` 1 (`__be32`), then the ack.

use std::collections::HashMap;

use super::least::Load;
use crate::kernel::netlink::{self, message, push_attr};
use crate::kernel::uapi::{
    CTA_IP_V4_DST, CTA_IP_V4_SRC, CTA_IP_V6_DST, CTA_IP_V6_SRC, CTA_MARK, CTA_MARK_MASK,
    CTA_PROTO_DST_PORT, CTA_PROTO_NUM, CTA_PROTO_SRC_PORT, CTA_PROTOINFO, CTA_PROTOINFO_TCP,
    CTA_PROTOINFO_TCP_STATE, CTA_TUPLE_IP, CTA_TUPLE_ORIG, CTA_TUPLE_PROTO, CTA_TUPLE_REPLY,
    IPCTNL_MSG_CT_GET, IPCTNL_MSG_CT_NEW, IPPROTO_TCP, NFNL_SUBSYS_CTNETLINK, NFNL_SUBSYS_NFTABLES,
    NFT_MSG_GETGEN, NFT_MSG_GETSETELEM, NFT_MSG_NEWGEN, NFT_MSG_NEWSETELEM, NFTA_DATA_VALUE,
    NFTA_GEN_ID, NFTA_LIST_ELEM, NFTA_SET_ELEM_DATA, NFTA_SET_ELEM_LIST_ELEMENTS,
    NFTA_SET_ELEM_LIST_SET, NFTA_SET_ELEM_LIST_TABLE, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST,
    NLMSG_DONE, NLMSG_ERROR, NLMSG_NOOP, TCP_CONNTRACK_ESTABLISHED,
};

const NFGENMSG_LEN: usize = 4;

/// Why a reply could not be counted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NfnlDecodeError {
    /// A length field disagrees with the bytes there are.
    #[error("netfilter netlink reply: malformed {0}")]
    Malformed(&'static str),
    /// The kernel refused the request (`-errno`).
    #[error("netfilter netlink: {}", std::io::Error::from_raw_os_error(*.0))]
    Errno(i32),
}

/// Whether a dump goes on after this datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// More datagrams follow.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

/// A request: the netlink header, `nfgenmsg` (family, version 0, resource id 0), attributes.
fn request(ty: u16, flags: u16, seq: u32, family: u8, attrs: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(NFGENMSG_LEN + attrs.len());
    body.extend_from_slice(&[family, 0, 0, 0]);
    body.extend_from_slice(attrs);
    message(ty, flags, seq, &body)
}

/// A dump of the conntrack entries whose mark, masked by `mask`, is `mark`.
pub fn conntrack_dump(seq: u32, mark: u32, mask: u32) -> Vec<u8> {
    let mut attrs = Vec::new();
    push_attr(&mut attrs, CTA_MARK, &mark.to_be_bytes());
    push_attr(&mut attrs, CTA_MARK_MASK, &mask.to_be_bytes());
    request(
        NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_GET,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        0,
        &attrs,
    )
}

/// A dump of the elements of set `set` in table `table` of `family`.
pub fn setelem_dump(seq: u32, family: u8, table: &str, set: &str) -> Vec<u8> {
    let cstr = |s: &str| {
        let mut b = s.as_bytes().to_vec();
        b.push(0);
        b
    };
    let mut attrs = Vec::new();
    push_attr(&mut attrs, NFTA_SET_ELEM_LIST_TABLE, &cstr(table));
    push_attr(&mut attrs, NFTA_SET_ELEM_LIST_SET, &cstr(set));
    request(
        NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETSETELEM,
        NLM_F_REQUEST | NLM_F_DUMP,
        seq,
        family,
        &attrs,
    )
}

/// `NFT_MSG_GETGEN` with `NLM_F_ACK`: the ruleset's generation, which every committed
/// nf_tables transaction (anyone's) increments.
pub fn getgen(seq: u32) -> Vec<u8> {
    request(
        NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        0,
        &[],
    )
}

/// Reads the generation (`NFTA_GEN_ID`, `__be32`) of a `NFT_MSG_NEWGEN` message in `b` into
/// `out`.
pub fn read_gen(b: &[u8], out: &mut Option<u32>) -> Result<Step, NfnlDecodeError> {
    messages(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWGEN, |p| {
        let id = find(p, NFTA_GEN_ID)?.ok_or(NfnlDecodeError::Malformed("NFTA_GEN_ID"))?;
        let v: [u8; 4] = id
            .try_into()
            .map_err(|_| NfnlDecodeError::Malformed("NFTA_GEN_ID"))?;
        *out = Some(u32::from_be_bytes(v));
        Ok(())
    })
}

/// Reads the acks of a batch ([`super::wire::Batch`]) in one datagram: `Done` once the ack of
/// message `last` arrived, an error for the first message the kernel refused (which aborted the
/// whole transaction), `More` otherwise. Acks carry the sequence number of the message they
/// answer.
pub fn read_acks(b: &[u8], last: u32) -> Result<Step, NfnlDecodeError> {
    for m in walk(b, true) {
        let (ty, seq, body) = m?;
        if ty == NLMSG_ERROR {
            let code = error_code(body)?;
            if code != 0 {
                return Err(NfnlDecodeError::Errno(code.saturating_neg()));
            }
            if seq == last {
                return Ok(Step::Done);
            }
        }
    }
    Ok(Step::More)
}

/// The attributes in `b`: (type without flags, payload).
fn attrs(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), NfnlDecodeError>> {
    netlink::attrs(b).map(|a| a.map_err(|_| NfnlDecodeError::Malformed("attribute length")))
}

/// The payload of the first attribute of type `kind` in `b`.
fn find(b: &[u8], kind: u16) -> Result<Option<&[u8]>, NfnlDecodeError> {
    for a in attrs(b) {
        let (k, p) = a?;
        if k == kind {
            return Ok(Some(p));
        }
    }
    Ok(None)
}

/// The messages of one datagram: (type, sequence number, body); see [`netlink::messages`].
fn walk(
    b: &[u8],
    cut_ok: bool,
) -> impl Iterator<Item = Result<(u16, u32, &[u8]), NfnlDecodeError>> {
    netlink::messages(b, cut_ok).map(|m| {
        m.map(|m| (m.ty, m.seq, m.body))
            .map_err(|_| NfnlDecodeError::Malformed("message header"))
    })
}

/// The code of an `NLMSG_ERROR` body: 0 for an ack, else `-errno`.
fn error_code(body: &[u8]) -> Result<i32, NfnlDecodeError> {
    netlink::error_code(body).ok_or(NfnlDecodeError::Malformed("error message"))
}

/// Walks the messages of one datagram, handing each payload of type `want` (after `nfgenmsg`)
/// to `each`.
fn messages(
    b: &[u8],
    want: u16,
    mut each: impl FnMut(&[u8]) -> Result<(), NfnlDecodeError>,
) -> Result<Step, NfnlDecodeError> {
    for m in walk(b, false) {
        let (ty, _, body) = m?;
        match ty {
            NLMSG_DONE => return Ok(Step::Done),
            NLMSG_ERROR => {
                let code = error_code(body)?;
                return if code == 0 {
                    Ok(Step::Done)
                } else {
                    Err(NfnlDecodeError::Errno(code.saturating_neg()))
                };
            }
            NLMSG_NOOP => {}
            t if t == want => {
                let payload = body
                    .get(NFGENMSG_LEN..)
                    .ok_or(NfnlDecodeError::Malformed("nfgenmsg"))?;
                each(payload)?;
            }
            // Anything else (an overrun notice, another subsystem) is not ours to count.
            _ => {}
        }
    }
    Ok(Step::More)
}

fn u8_of(p: &[u8]) -> Option<u8> {
    (p.len() == 1).then(|| p[0])
}

/// Counts the conntrack entries of one reply datagram into `out` by mark: each entry whose
/// mark, masked by `mask`, is `mark` (the kernel filters already; an older kernel that ignores
/// the filter is filtered here) counts as one active or inactive connection.
pub fn count_conntrack(
    b: &[u8],
    mark: u32,
    mask: u32,
    out: &mut HashMap<u32, Load>,
) -> Result<Step, NfnlDecodeError> {
    messages(b, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW, |p| {
        let Some(m) = find(p, CTA_MARK)? else {
            return Ok(());
        };
        let m: [u8; 4] = m
            .try_into()
            .map_err(|_| NfnlDecodeError::Malformed("CTA_MARK"))?;
        let m = u32::from_be_bytes(m);
        if m & mask != mark {
            return Ok(());
        }
        let proto = match find(p, CTA_TUPLE_ORIG)? {
            Some(t) => match find(t, CTA_TUPLE_PROTO)? {
                Some(pr) => find(pr, CTA_PROTO_NUM)?.and_then(u8_of),
                None => None,
            },
            None => None,
        };
        let active = if proto == Some(IPPROTO_TCP) {
            let state = match find(p, CTA_PROTOINFO)? {
                Some(pi) => match find(pi, CTA_PROTOINFO_TCP)? {
                    Some(tcp) => find(tcp, CTA_PROTOINFO_TCP_STATE)?.and_then(u8_of),
                    None => None,
                },
                None => None,
            };
            state == Some(TCP_CONNTRACK_ESTABLISHED)
        } else {
            true
        };
        let e = out.entry(m).or_default();
        if active {
            e.active = e.active.saturating_add(1);
        } else {
            e.inactive = e.inactive.saturating_add(1);
        }
        Ok(())
    })
}

/// A connection as conntrack keys it: protocol number and the two ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuple {
    /// `IPPROTO_TCP` 6 or `IPPROTO_UDP` 17.
    pub proto: u8,
    /// Source address and port.
    pub src: std::net::SocketAddr,
    /// Destination address and port.
    pub dst: std::net::SocketAddr,
}

/// A conntrack entry found for a [`Tuple`]: where it went and its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFlow {
    /// The reply tuple's source: the backend after DNAT.
    pub dest: std::net::SocketAddr,
    /// The entry's mark (the destination id).
    pub mark: u32,
    /// TCP: conntrack's state number (`ESTABLISHED` 3, ...).
    pub tcp_state: Option<u8>,
}

/// conntrack's name of a TCP state number.
pub fn tcp_state_name(s: u8) -> &'static str {
    match s {
        0 => "NONE",
        1 => "SYN_SENT",
        2 => "SYN_RECV",
        3 => "ESTABLISHED",
        4 => "FIN_WAIT",
        5 => "CLOSE_WAIT",
        6 => "LAST_ACK",
        7 => "TIME_WAIT",
        8 => "CLOSE",
        9 => "SYN_SENT2",
        _ => "UNKNOWN",
    }
}

/// A tuple attribute's protocol, source and destination; `None` when a part is missing.
fn tuple_of(t: &[u8]) -> Result<Option<Tuple>, NfnlDecodeError> {
    let (Some(ip), Some(pr)) = (find(t, CTA_TUPLE_IP)?, find(t, CTA_TUPLE_PROTO)?) else {
        return Ok(None);
    };
    let addr = |kind4: u16, kind6: u16| -> Result<Option<std::net::IpAddr>, NfnlDecodeError> {
        if let Some(v) = find(ip, kind4)? {
            let b: [u8; 4] = v
                .try_into()
                .map_err(|_| NfnlDecodeError::Malformed("CTA_IP_V4"))?;
            return Ok(Some(std::net::IpAddr::from(b)));
        }
        if let Some(v) = find(ip, kind6)? {
            let b: [u8; 16] = v
                .try_into()
                .map_err(|_| NfnlDecodeError::Malformed("CTA_IP_V6"))?;
            return Ok(Some(std::net::IpAddr::from(b)));
        }
        Ok(None)
    };
    let port = |kind: u16| -> Result<Option<u16>, NfnlDecodeError> {
        match find(pr, kind)? {
            Some(v) => {
                let b: [u8; 2] = v
                    .try_into()
                    .map_err(|_| NfnlDecodeError::Malformed("CTA_PROTO_PORT"))?;
                Ok(Some(u16::from_be_bytes(b)))
            }
            None => Ok(None),
        }
    };
    let (src, dst) = (
        addr(CTA_IP_V4_SRC, CTA_IP_V6_SRC)?,
        addr(CTA_IP_V4_DST, CTA_IP_V6_DST)?,
    );
    let (sport, dport) = (port(CTA_PROTO_SRC_PORT)?, port(CTA_PROTO_DST_PORT)?);
    let proto = find(pr, CTA_PROTO_NUM)?.and_then(u8_of);
    Ok(match (proto, src, dst, sport, dport) {
        (Some(proto), Some(s), Some(d), Some(sp), Some(dp)) => Some(Tuple {
            proto,
            src: std::net::SocketAddr::new(s, sp),
            dst: std::net::SocketAddr::new(d, dp),
        }),
        _ => None,
    })
}

/// Looks in one conntrack dump datagram for the entry whose original tuple is `want`, into
/// `out` (hostile input, like every reply: lengths checked, nothing panics).
pub fn find_flow(
    b: &[u8],
    want: &Tuple,
    out: &mut Option<FoundFlow>,
) -> Result<Step, NfnlDecodeError> {
    messages(b, NFNL_SUBSYS_CTNETLINK << 8 | IPCTNL_MSG_CT_NEW, |p| {
        if out.is_some() {
            return Ok(());
        }
        let orig = match find(p, CTA_TUPLE_ORIG)? {
            Some(t) => tuple_of(t)?,
            None => None,
        };
        if orig.as_ref() != Some(want) {
            return Ok(());
        }
        let Some(reply) = find(p, CTA_TUPLE_REPLY)?
            .map(tuple_of)
            .transpose()?
            .flatten()
        else {
            return Ok(());
        };
        let mark = match find(p, CTA_MARK)? {
            Some(m) => u32::from_be_bytes(
                m.try_into()
                    .map_err(|_| NfnlDecodeError::Malformed("CTA_MARK"))?,
            ),
            None => 0,
        };
        let tcp_state = match find(p, CTA_PROTOINFO)? {
            Some(pi) => match find(pi, CTA_PROTOINFO_TCP)? {
                Some(tcp) => find(tcp, CTA_PROTOINFO_TCP_STATE)?.and_then(u8_of),
                None => None,
            },
            None => None,
        };
        *out = Some(FoundFlow {
            dest: reply.src,
            mark,
            tcp_state,
        });
        Ok(())
    })
}

/// Counts the elements of one set-element reply datagram into `out` by their 4-byte value (a
/// destination id): each is one active connection (a DSR flow, or a client).
pub fn count_setelems(b: &[u8], out: &mut HashMap<u32, Load>) -> Result<Step, NfnlDecodeError> {
    messages(b, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_NEWSETELEM, |p| {
        let Some(list) = find(p, NFTA_SET_ELEM_LIST_ELEMENTS)? else {
            return Ok(());
        };
        for a in attrs(list) {
            let (kind, elem) = a?;
            if kind != NFTA_LIST_ELEM {
                continue;
            }
            let Some(data) = find(elem, NFTA_SET_ELEM_DATA)? else {
                continue;
            };
            let Some(value) = find(data, NFTA_DATA_VALUE)? else {
                continue;
            };
            let v: [u8; 4] = value
                .try_into()
                .map_err(|_| NfnlDecodeError::Malformed("element value"))?;
            let e = out.entry(u32::from_ne_bytes(v)).or_default();
            e.active = e.active.saturating_add(1);
        }
        Ok(())
    })
}

#[cfg(test)]
#[path = "nfnl_tests.rs"]
mod tests;
