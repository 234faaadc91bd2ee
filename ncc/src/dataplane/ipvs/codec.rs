//! The IPVS generic-netlink family, encoded and decoded by pure functions (no sockets here).
//!
//! Derivation from the kernel UAPI (`include/uapi/linux/ip_vs.h`, `linux/netlink.h`,
//! `linux/genetlink.h`); every number below is checked by the golden-bytes tests:
//!
//! - A message is `nlmsghdr` (16 bytes, native endian: `u32 len` of the whole message, `u16
//!   type` = the family id the kernel assigned to "IPVS" (resolved through `nlctrl`, family
//!   `GENL_ID_CTRL` = 0x10, command `CTRL_CMD_GETFAMILY` = 3, attribute `CTRL_ATTR_FAMILY_NAME`
//!   = 2 in, `CTRL_ATTR_FAMILY_ID` = 1 (u16) out), `u16 flags` (`NLM_F_REQUEST` 0x1, `NLM_F_ACK`
//!   0x4, `NLM_F_DUMP` 0x300), `u32 seq`, `u32 pid`), then `genlmsghdr` (`u8 cmd`, `u8 version`
//!   = `IPVS_GENL_VERSION` 1, `u16` reserved 0), then attributes.
//! - An attribute is `u16 nla_len` (4 + payload, unpadded), `u16 nla_type` (bit 15
//!   `NLA_F_NESTED` on nested ones), the payload, zero padding to a multiple of 4.
//! - Commands: `NEW_SERVICE` 1, `SET_SERVICE` 2, `DEL_SERVICE` 3, `GET_SERVICE` 4, `NEW_DEST`
//!   5, `SET_DEST` 6, `DEL_DEST` 7, `GET_DEST` 8. Command attributes: `IPVS_CMD_ATTR_SERVICE` 1
//!   and `IPVS_CMD_ATTR_DEST` 2, both nested.
//! - Service attributes (`IPVS_SVC_ATTR_*`): `AF` 1 u16, `PROTOCOL` 2 u16, `ADDR` 3 (16 bytes,
//!   `union nf_inet_addr`: an IPv4 address in the first 4, the rest zero), `PORT` 4 (u16,
//!   network order), `FWMARK` 5 u32, `SCHED_NAME` 6 (NUL-terminated, at most 16 bytes with the
//!   NUL), `FLAGS` 7 (`struct ip_vs_flags { u32 flags; u32 mask; }`), `TIMEOUT` 8 u32 (seconds),
//!   `NETMASK` 9 u32 (an IPv4 mask, or a prefix length for IPv6), `STATS` 10 nested, `STATS64`
//!   12 nested. A service is named either by AF+PROTOCOL+ADDR+PORT or by AF+FWMARK; NEW and
//!   SET need the full entry (SCHED_NAME, FLAGS, TIMEOUT, NETMASK), else EINVAL.
//! - Service flags: `IP_VS_SVC_F_PERSISTENT` 0x1, `HASHED` 0x2 (kernel-owned), `ONEPACKET` 0x4,
//!   `SCHED1..3` 0x8/0x10/0x20 (e.g. sh-fallback, sh-port, mh-fallback).
//! - Destination attributes (`IPVS_DEST_ATTR_*`): `ADDR` 1, `PORT` 2 (network order),
//!   `FWD_METHOD` 3 u32 (`IP_VS_CONN_F_MASQ` 0, `TUNNEL` 2, `DROUTE` 3), `WEIGHT` 4 u32,
//!   `U_THRESH` 5 u32, `L_THRESH` 6 u32, `ACTIVE_CONNS` 7, `INACT_CONNS` 8, `PERSIST_CONNS` 9
//!   (u32, read only), `STATS` 10, `ADDR_FAMILY` 11 u16, `STATS64` 12. NEW_DEST and SET_DEST
//!   need ADDR, PORT, FWD_METHOD, WEIGHT, U_THRESH and L_THRESH; the message also carries the
//!   service it belongs to.
//! - Stats attributes (`IPVS_STATS_ATTR_*`): `CONNS` 1, `INPKTS` 2, `OUTPKTS` 3 (u32 in
//!   `STATS`, u64 in `STATS64`), `INBYTES` 4, `OUTBYTES` 5 (u64), `CPS` 6 .. `OUTBPS` 10, `PAD`
//!   11. We read `STATS64` when present, else `STATS`.
//! - Replies: a dump answers with one message per object (cmd `NEW_SERVICE`/`NEW_DEST`), ended
//!   by `NLMSG_DONE` (type 3); a request with `NLM_F_ACK` answers `NLMSG_ERROR` (type 2: `i32
//!   error` (0 = ack, else -errno), then the offending request's header).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::kernel::netlink::{self, push_attr, push_nested};
use crate::kernel::uapi::{
    CTRL_ATTR_FAMILY_ID, CTRL_ATTR_FAMILY_NAME, CTRL_CMD_GETFAMILY, GENL_ID_CTRL,
    IPVS_CMD_ATTR_DEST, IPVS_CMD_ATTR_SERVICE, IPVS_DEST_ATTR_ACTIVE_CONNS, IPVS_DEST_ATTR_ADDR,
    IPVS_DEST_ATTR_ADDR_FAMILY, IPVS_DEST_ATTR_FWD_METHOD, IPVS_DEST_ATTR_INACT_CONNS,
    IPVS_DEST_ATTR_L_THRESH, IPVS_DEST_ATTR_PERSIST_CONNS, IPVS_DEST_ATTR_PORT,
    IPVS_DEST_ATTR_STATS, IPVS_DEST_ATTR_STATS64, IPVS_DEST_ATTR_U_THRESH, IPVS_DEST_ATTR_WEIGHT,
    IPVS_GENL_VERSION, IPVS_STATS_ATTR_CONNS, IPVS_STATS_ATTR_INBYTES, IPVS_STATS_ATTR_INPKTS,
    IPVS_STATS_ATTR_OUTBYTES, IPVS_STATS_ATTR_OUTPKTS, IPVS_SVC_ATTR_ADDR, IPVS_SVC_ATTR_AF,
    IPVS_SVC_ATTR_FLAGS, IPVS_SVC_ATTR_FWMARK, IPVS_SVC_ATTR_NETMASK, IPVS_SVC_ATTR_PORT,
    IPVS_SVC_ATTR_PROTOCOL, IPVS_SVC_ATTR_SCHED_NAME, IPVS_SVC_ATTR_STATS, IPVS_SVC_ATTR_STATS64,
    IPVS_SVC_ATTR_TIMEOUT, NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR,
};

/// IPVS commands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Cmd {
    /// `IPVS_CMD_NEW_SERVICE`.
    NewService = 1,
    /// `IPVS_CMD_SET_SERVICE`.
    SetService = 2,
    /// `IPVS_CMD_DEL_SERVICE`.
    DelService = 3,
    /// `IPVS_CMD_GET_SERVICE`.
    GetService = 4,
    /// `IPVS_CMD_NEW_DEST`.
    NewDest = 5,
    /// `IPVS_CMD_SET_DEST`.
    SetDest = 6,
    /// `IPVS_CMD_DEL_DEST`.
    DelDest = 7,
    /// `IPVS_CMD_GET_DEST`.
    GetDest = 8,
}

/// `AF_INET`.
pub const AF_INET: u16 = 2;
/// `AF_INET6`.
pub const AF_INET6: u16 = 10;
/// `IPPROTO_TCP`.
pub const IPPROTO_TCP: u16 = 6;
/// `IPPROTO_UDP`.
pub const IPPROTO_UDP: u16 = 17;

/// `IP_VS_SVC_F_PERSISTENT`.
pub const F_PERSISTENT: u32 = 0x1;
/// `IP_VS_SVC_F_ONEPACKET`.
pub const F_ONEPACKET: u32 = 0x4;
/// `IP_VS_SVC_F_SCHED1`: sh-fallback / mh-fallback (skip an overloaded or weight-0 server).
pub const F_SCHED_FALLBACK: u32 = 0x8;
/// `IP_VS_SVC_F_SCHED2`: sh-port / mh-port (the source port joins the hash).
pub const F_SCHED_PORT: u32 = 0x10;
/// The flags we own (everything but `HASHED`, which the kernel sets).
pub const F_MASK: u32 = !0x2;

/// `IP_VS_SCHEDNAME_MAXLEN` (with the NUL).
pub const SCHEDNAME_MAXLEN: usize = 16;

/// How a destination is reached (`IP_VS_CONN_F_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fwd {
    /// NAT (`MASQ`, 0).
    Masq,
    /// IP-in-IP (`TUNNEL`, 2).
    Tunnel,
    /// Direct routing (`DROUTE`, 3).
    Route,
}

impl Fwd {
    fn code(self) -> u32 {
        match self {
            Self::Masq => 0,
            Self::Tunnel => 2,
            Self::Route => 3,
        }
    }

    fn from_code(c: u32) -> Option<Self> {
        match c & 7 {
            0 => Some(Self::Masq),
            2 => Some(Self::Tunnel),
            3 => Some(Self::Route),
            _ => None,
        }
    }
}

/// Traffic counters of a service or destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Connections scheduled.
    pub conns: u64,
    /// Packets in.
    pub inpkts: u64,
    /// Packets out.
    pub outpkts: u64,
    /// Bytes in.
    pub inbytes: u64,
    /// Bytes out.
    pub outbytes: u64,
}

/// How a service is named: by address or by firewall mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SvcId {
    /// Protocol (`IPPROTO_*`), address and port.
    Addr {
        /// `IPPROTO_TCP` or `IPPROTO_UDP`.
        protocol: u16,
        /// The VIP.
        addr: IpAddr,
        /// The port.
        port: u16,
    },
    /// A firewall mark, with the address family of the traffic it marks.
    Fwmark {
        /// `AF_INET` or `AF_INET6`.
        af: u16,
        /// The mark.
        mark: u32,
    },
}

impl SvcId {
    fn af(&self) -> u16 {
        match self {
            Self::Addr { addr, .. } => af_of(*addr),
            Self::Fwmark { af, .. } => *af,
        }
    }
}

/// An IPVS virtual service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IpvsService {
    /// Its name.
    pub id: SvcId,
    /// Scheduler name (`rr`, `wlc`, `mh`, …).
    pub sched: String,
    /// `IP_VS_SVC_F_*` flags.
    pub flags: u32,
    /// Persistence timeout in seconds.
    pub timeout: u32,
    /// Persistence netmask (IPv4 mask, or IPv6 prefix length).
    pub netmask: u32,
    /// Counters (decoded replies only).
    pub stats: Stats,
}

/// An IPVS destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpvsDest {
    /// Address.
    pub addr: IpAddr,
    /// Port.
    pub port: u16,
    /// Forwarding method.
    pub fwd: Fwd,
    /// Weight.
    pub weight: u32,
    /// Upper connection threshold (0: none).
    pub u_thresh: u32,
    /// Lower connection threshold.
    pub l_thresh: u32,
    /// Active connections (decoded replies only).
    pub active_conns: u32,
    /// Inactive connections (decoded replies only).
    pub inact_conns: u32,
    /// Counters (decoded replies only).
    pub stats: Stats,
}

/// One decoded reply message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// A service (from a `GET_SERVICE` dump).
    Service(IpvsService),
    /// A destination (from a `GET_DEST` dump).
    Dest(IpvsDest),
    /// `NLMSG_ERROR`: 0 is an acknowledgement, else a negative errno.
    Ack(i32),
    /// `NLMSG_DONE`: the end of a dump.
    Done,
    /// A controller reply naming a family id.
    Family(u16),
}

/// Why a reply could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpvsDecodeError {
    /// Fewer bytes than a header or than a length field claims.
    #[error("ipvs reply truncated at byte {0}")]
    Truncated(usize),
    /// A field holds a value the UAPI does not allow.
    #[error("ipvs reply has a bad {0}")]
    Bad(&'static str),
}

fn af_of(ip: IpAddr) -> u16 {
    if ip.is_ipv4() { AF_INET } else { AF_INET6 }
}

fn inet_addr(ip: IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match ip {
        IpAddr::V4(v) => b[..4].copy_from_slice(&v.octets()),
        IpAddr::V6(v) => b = v.octets(),
    }
    b
}

/// A generic-netlink message of `family`: the header, `cmd` with IPVS's version, then `body`.
fn message(family: u16, flags: u16, seq: u32, cmd: u8, body: &[u8]) -> Vec<u8> {
    let mut genl = Vec::with_capacity(4 + body.len());
    genl.extend_from_slice(&[cmd, IPVS_GENL_VERSION, 0, 0]);
    genl.extend_from_slice(body);
    netlink::message(family, flags, seq, &genl)
}

/// An IPVS command the kernel acknowledges.
fn acked(family: u16, seq: u32, cmd: Cmd, body: &[u8]) -> Vec<u8> {
    message(family, NLM_F_REQUEST | NLM_F_ACK, seq, cmd as u8, body)
}

/// An IPVS `GET_*` command as a dump.
fn dump(family: u16, seq: u32, cmd: Cmd, body: &[u8]) -> Vec<u8> {
    message(family, NLM_F_REQUEST | NLM_F_DUMP, seq, cmd as u8, body)
}

/// `CTRL_CMD_GETFAMILY` for `name` (resolves the IPVS family id).
pub fn get_family(name: &str, seq: u32) -> Vec<u8> {
    let mut body = Vec::new();
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    push_attr(&mut body, CTRL_ATTR_FAMILY_NAME, &n);
    let mut m = message(GENL_ID_CTRL, NLM_F_REQUEST, seq, CTRL_CMD_GETFAMILY, &body);
    // nlctrl speaks version 2 (`CTRL_VERSION`); IPVS ignores nothing here, but be exact.
    m[17] = 2;
    m
}

fn svc_id_attrs(out: &mut Vec<u8>, id: &SvcId) {
    push_attr(out, IPVS_SVC_ATTR_AF, &id.af().to_ne_bytes());
    match id {
        SvcId::Addr {
            protocol,
            addr,
            port,
        } => {
            push_attr(out, IPVS_SVC_ATTR_PROTOCOL, &protocol.to_ne_bytes());
            push_attr(out, IPVS_SVC_ATTR_ADDR, &inet_addr(*addr));
            push_attr(out, IPVS_SVC_ATTR_PORT, &port.to_be_bytes());
        }
        SvcId::Fwmark { mark, .. } => push_attr(out, IPVS_SVC_ATTR_FWMARK, &mark.to_ne_bytes()),
    }
}

fn svc_attrs(out: &mut Vec<u8>, s: &IpvsService) {
    push_nested(out, IPVS_CMD_ATTR_SERVICE, |o| {
        svc_id_attrs(o, &s.id);
        let mut name = s.sched.as_bytes()[..s.sched.len().min(SCHEDNAME_MAXLEN - 1)].to_vec();
        name.push(0);
        push_attr(o, IPVS_SVC_ATTR_SCHED_NAME, &name);
        let mut flags = s.flags.to_ne_bytes().to_vec();
        flags.extend_from_slice(&F_MASK.to_ne_bytes());
        push_attr(o, IPVS_SVC_ATTR_FLAGS, &flags);
        push_attr(o, IPVS_SVC_ATTR_TIMEOUT, &s.timeout.to_ne_bytes());
        push_attr(o, IPVS_SVC_ATTR_NETMASK, &s.netmask.to_ne_bytes());
    });
}

fn svc_id_only(out: &mut Vec<u8>, id: &SvcId) {
    push_nested(out, IPVS_CMD_ATTR_SERVICE, |o| svc_id_attrs(o, id));
}

fn dest_attrs(out: &mut Vec<u8>, d: &IpvsDest, full: bool) {
    push_nested(out, IPVS_CMD_ATTR_DEST, |o| {
        push_attr(o, IPVS_DEST_ATTR_ADDR, &inet_addr(d.addr));
        push_attr(o, IPVS_DEST_ATTR_PORT, &d.port.to_be_bytes());
        if full {
            push_attr(o, IPVS_DEST_ATTR_FWD_METHOD, &d.fwd.code().to_ne_bytes());
            push_attr(o, IPVS_DEST_ATTR_WEIGHT, &d.weight.to_ne_bytes());
            push_attr(o, IPVS_DEST_ATTR_U_THRESH, &d.u_thresh.to_ne_bytes());
            push_attr(o, IPVS_DEST_ATTR_L_THRESH, &d.l_thresh.to_ne_bytes());
        }
        push_attr(o, IPVS_DEST_ATTR_ADDR_FAMILY, &af_of(d.addr).to_ne_bytes());
    });
}

/// `NEW_SERVICE` (add) or `SET_SERVICE` (edit in place): the full entry.
pub fn put_service(family: u16, seq: u32, edit: bool, s: &IpvsService) -> Vec<u8> {
    let mut body = Vec::new();
    svc_attrs(&mut body, s);
    let cmd = if edit {
        Cmd::SetService
    } else {
        Cmd::NewService
    };
    acked(family, seq, cmd, &body)
}

/// `DEL_SERVICE`.
pub fn del_service(family: u16, seq: u32, id: &SvcId) -> Vec<u8> {
    let mut body = Vec::new();
    svc_id_only(&mut body, id);
    acked(family, seq, Cmd::DelService, &body)
}

/// `GET_SERVICE` as a dump of every service.
pub fn dump_services(family: u16, seq: u32) -> Vec<u8> {
    dump(family, seq, Cmd::GetService, &[])
}

/// `NEW_DEST` (add) or `SET_DEST` (edit weight/thresholds in place): the full entry.
pub fn put_dest(family: u16, seq: u32, edit: bool, svc: &SvcId, d: &IpvsDest) -> Vec<u8> {
    let mut body = Vec::new();
    svc_id_only(&mut body, svc);
    dest_attrs(&mut body, d, true);
    let cmd = if edit { Cmd::SetDest } else { Cmd::NewDest };
    acked(family, seq, cmd, &body)
}

/// `DEL_DEST`.
pub fn del_dest(family: u16, seq: u32, svc: &SvcId, d: &IpvsDest) -> Vec<u8> {
    let mut body = Vec::new();
    svc_id_only(&mut body, svc);
    dest_attrs(&mut body, d, false);
    acked(family, seq, Cmd::DelDest, &body)
}

/// `GET_DEST` as a dump of one service's destinations.
pub fn dump_dests(family: u16, seq: u32, svc: &SvcId) -> Vec<u8> {
    let mut body = Vec::new();
    svc_id_only(&mut body, svc);
    dump(family, seq, Cmd::GetDest, &body)
}

/// Iterates the attributes in `b`: (type without flags, payload). Errors on a length that
/// overruns.
fn attrs(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), IpvsDecodeError>> {
    netlink::attrs(b).map(|a| a.map_err(IpvsDecodeError::Truncated))
}

/// The first `N` bytes of an attribute's payload, or `Bad(what)` when it is shorter.
fn bytes_of<const N: usize>(p: &[u8], what: &'static str) -> Result<[u8; N], IpvsDecodeError> {
    p.get(..N)
        .and_then(|x| x.try_into().ok())
        .ok_or(IpvsDecodeError::Bad(what))
}

fn u16_of(p: &[u8]) -> Result<u16, IpvsDecodeError> {
    bytes_of(p, "u16 attribute").map(u16::from_ne_bytes)
}

fn u32_of(p: &[u8]) -> Result<u32, IpvsDecodeError> {
    bytes_of(p, "u32 attribute").map(u32::from_ne_bytes)
}

fn u64_of(p: &[u8]) -> Result<u64, IpvsDecodeError> {
    bytes_of(p, "u64 attribute").map(u64::from_ne_bytes)
}

fn port_of(p: &[u8]) -> Result<u16, IpvsDecodeError> {
    bytes_of(p, "port").map(u16::from_be_bytes)
}

fn addr_of(p: &[u8], af: u16) -> Result<IpAddr, IpvsDecodeError> {
    let b: [u8; 16] = bytes_of(p, "address")?;
    match af {
        AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        AF_INET6 => Ok(IpAddr::V6(Ipv6Addr::from(b))),
        _ => Err(IpvsDecodeError::Bad("address family")),
    }
}

fn stats_of(p: &[u8], wide: bool) -> Result<Stats, IpvsDecodeError> {
    let mut s = Stats::default();
    for a in attrs(p) {
        let (k, v) = a?;
        let small = |v: &[u8]| {
            if wide {
                u64_of(v)
            } else {
                u32_of(v).map(u64::from)
            }
        };
        match k {
            IPVS_STATS_ATTR_CONNS => s.conns = small(v)?,
            IPVS_STATS_ATTR_INPKTS => s.inpkts = small(v)?,
            IPVS_STATS_ATTR_OUTPKTS => s.outpkts = small(v)?,
            IPVS_STATS_ATTR_INBYTES => s.inbytes = u64_of(v)?,
            IPVS_STATS_ATTR_OUTBYTES => s.outbytes = u64_of(v)?,
            _ => {}
        }
    }
    Ok(s)
}

fn decode_service(p: &[u8]) -> Result<IpvsService, IpvsDecodeError> {
    let (mut af, mut proto, mut addr, mut port, mut mark) = (None, None, None, None, None);
    let (mut sched, mut flags, mut timeout, mut netmask) = (None, 0, 0, 0);
    let (mut stats, mut stats64) = (None, None);
    for a in attrs(p) {
        let (k, v) = a?;
        match k {
            IPVS_SVC_ATTR_AF => af = Some(u16_of(v)?),
            IPVS_SVC_ATTR_PROTOCOL => proto = Some(u16_of(v)?),
            IPVS_SVC_ATTR_ADDR => addr = Some(v),
            IPVS_SVC_ATTR_PORT => port = Some(port_of(v)?),
            IPVS_SVC_ATTR_FWMARK => mark = Some(u32_of(v)?),
            IPVS_SVC_ATTR_SCHED_NAME => {
                let end = v.iter().position(|c| *c == 0).unwrap_or(v.len());
                if end >= SCHEDNAME_MAXLEN {
                    return Err(IpvsDecodeError::Bad("scheduler name"));
                }
                let name = std::str::from_utf8(&v[..end])
                    .map_err(|_| IpvsDecodeError::Bad("scheduler name"))?;
                sched = Some(name.to_owned());
            }
            IPVS_SVC_ATTR_FLAGS => flags = u32_of(v)?,
            IPVS_SVC_ATTR_TIMEOUT => timeout = u32_of(v)?,
            IPVS_SVC_ATTR_NETMASK => netmask = u32_of(v)?,
            IPVS_SVC_ATTR_STATS => stats = Some(stats_of(v, false)?),
            IPVS_SVC_ATTR_STATS64 => stats64 = Some(stats_of(v, true)?),
            _ => {}
        }
    }
    let af = af.ok_or(IpvsDecodeError::Bad("service without address family"))?;
    let id = match (mark, proto, addr, port) {
        (Some(m), _, _, _) if m != 0 => SvcId::Fwmark { af, mark: m },
        (_, Some(protocol), Some(a), Some(port)) => SvcId::Addr {
            protocol,
            addr: addr_of(a, af)?,
            port,
        },
        _ => return Err(IpvsDecodeError::Bad("service without address or mark")),
    };
    Ok(IpvsService {
        id,
        sched: sched.ok_or(IpvsDecodeError::Bad("service without scheduler"))?,
        flags,
        timeout,
        netmask,
        stats: stats64.or(stats).unwrap_or_default(),
    })
}

fn decode_dest(p: &[u8], svc_af: Option<u16>) -> Result<IpvsDest, IpvsDecodeError> {
    let (mut addr, mut port, mut fwd, mut af) = (None, None, None, svc_af);
    let mut d = IpvsDest {
        addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        port: 0,
        fwd: Fwd::Masq,
        weight: 0,
        u_thresh: 0,
        l_thresh: 0,
        active_conns: 0,
        inact_conns: 0,
        stats: Stats::default(),
    };
    let (mut stats, mut stats64) = (None, None);
    for a in attrs(p) {
        let (k, v) = a?;
        match k {
            IPVS_DEST_ATTR_ADDR => addr = Some(v),
            IPVS_DEST_ATTR_PORT => port = Some(port_of(v)?),
            IPVS_DEST_ATTR_FWD_METHOD => {
                fwd = Some(Fwd::from_code(u32_of(v)?).ok_or(IpvsDecodeError::Bad("fwd method"))?);
            }
            IPVS_DEST_ATTR_WEIGHT => d.weight = u32_of(v)?,
            IPVS_DEST_ATTR_U_THRESH => d.u_thresh = u32_of(v)?,
            IPVS_DEST_ATTR_L_THRESH => d.l_thresh = u32_of(v)?,
            IPVS_DEST_ATTR_ACTIVE_CONNS => d.active_conns = u32_of(v)?,
            IPVS_DEST_ATTR_INACT_CONNS => d.inact_conns = u32_of(v)?,
            IPVS_DEST_ATTR_PERSIST_CONNS => {}
            IPVS_DEST_ATTR_ADDR_FAMILY => af = Some(u16_of(v)?),
            IPVS_DEST_ATTR_STATS => stats = Some(stats_of(v, false)?),
            IPVS_DEST_ATTR_STATS64 => stats64 = Some(stats_of(v, true)?),
            _ => {}
        }
    }
    let af = af.unwrap_or(AF_INET);
    d.addr = addr_of(
        addr.ok_or(IpvsDecodeError::Bad("destination without address"))?,
        af,
    )?;
    d.port = port.ok_or(IpvsDecodeError::Bad("destination without port"))?;
    d.fwd = fwd.ok_or(IpvsDecodeError::Bad("destination without fwd method"))?;
    d.stats = stats64.or(stats).unwrap_or_default();
    Ok(d)
}

/// Decodes every netlink message in one datagram the kernel sent. `family` is the IPVS family
/// id (messages of other types, except errors, done and controller replies, are refused).
/// Hostile input gives an error, never a panic (see the `ipvs_reply` fuzz target).
pub fn decode(b: &[u8], family: u16) -> Result<Vec<Reply>, IpvsDecodeError> {
    let mut out = Vec::new();
    for m in netlink::messages(b, false) {
        let netlink::Msg { ty, body: msg, .. } = m.map_err(IpvsDecodeError::Truncated)?;
        match ty {
            NLMSG_DONE => out.push(Reply::Done),
            NLMSG_ERROR => {
                let code = netlink::error_code(msg).ok_or(IpvsDecodeError::Bad("error message"))?;
                out.push(Reply::Ack(code));
            }
            t if t == GENL_ID_CTRL => {
                let body = msg.get(4..).ok_or(IpvsDecodeError::Bad("genlmsghdr"))?;
                let mut id = None;
                for a in attrs(body) {
                    let (k, v) = a?;
                    if k == CTRL_ATTR_FAMILY_ID {
                        id = Some(u16_of(v)?);
                    }
                }
                out.push(Reply::Family(id.ok_or(IpvsDecodeError::Bad(
                    "controller reply without family id",
                ))?));
            }
            t if t == family => {
                let hdr = msg.get(..4).ok_or(IpvsDecodeError::Bad("genlmsghdr"))?;
                let mut svc = None;
                let mut dest = None;
                for a in attrs(&msg[4..]) {
                    let (k, v) = a?;
                    match k {
                        IPVS_CMD_ATTR_SERVICE => svc = Some(v),
                        IPVS_CMD_ATTR_DEST => dest = Some(v),
                        _ => {}
                    }
                }
                match (hdr[0], svc, dest) {
                    (c, Some(s), None) if c == Cmd::NewService as u8 => {
                        out.push(Reply::Service(decode_service(s)?));
                    }
                    (c, _, Some(d)) if c == Cmd::NewDest as u8 => {
                        let af = svc.and_then(|s| {
                            attrs(s)
                                .filter_map(Result::ok)
                                .find(|(k, _)| *k == IPVS_SVC_ATTR_AF)
                                .and_then(|(_, v)| u16_of(v).ok())
                        });
                        out.push(Reply::Dest(decode_dest(d, af)?));
                    }
                    _ => return Err(IpvsDecodeError::Bad("ipvs reply command")),
                }
            }
            _ => return Err(IpvsDecodeError::Bad("message type")),
        }
    }
    Ok(out)
}

#[cfg(test)]
#[path = "codec_tests.rs"]
mod tests;
