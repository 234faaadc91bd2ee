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
//!
//! Links (for the LB interface, its VMAC and VLAN sub-interfaces): `RTM_GETLINK` 18 dumps,
//! `RTM_NEWLINK` sets flags or `IFLA_ADDRESS` 1 (the MAC) on an index, or creates a VLAN
//! (`IFLA_IFNAME` 3, `IFLA_LINK` 5 = parent index, `IFLA_LINKINFO` 18 { `IFLA_INFO_KIND` 1
//! = "vlan", `IFLA_INFO_DATA` 2 { `IFLA_VLAN_ID` 1 (u16) } }), `RTM_DELLINK` 17 deletes; dumps
//! also carry `IFLA_PERM_ADDRESS` 54. Tunnel devices ([`encode_tunnel_add`]): kind "ipip" or
//! "ip6tnl" with `IFLA_INFO_DATA` { `IFLA_IPTUN_LOCAL` 2, `IFLA_IPTUN_REMOTE` 3, `IFLA_IPTUN_PROTO` 9 (u8, 41 =
//! IPv6 in IPv6) }. Routes (`linux/rtnetlink.h`): `RTM_NEWROUTE` 24,
//! `RTM_DELROUTE` 25, `RTM_GETROUTE` 26 with `struct rtmsg { u8 family, dst_len, src_len, tos,
//! table, protocol, scope, type; u32 flags; }` and `RTA_DST` 1, `RTA_OIF` 4, `RTA_GATEWAY` 5,
//! `RTA_PRIORITY` 6, `RTA_TABLE` 15 (u32); ncc's routes carry `rtm_protocol` = [`SEESAW_PROTO`].
//! Rules (`linux/fib_rules.h`): `RTM_NEWRULE` 32, `RTM_DELRULE` 33, `RTM_GETRULE` 34 with
//! `struct fib_rule_hdr { u8 family, dst_len, src_len, tos, table, res1, res2, action; u32
//! flags; }`, action `FR_ACT_TO_TBL` 1, and `FRA_DST` 1, `FRA_SRC` 2, `FRA_PRIORITY` 6,
//! `FRA_TABLE` 15 (u32), `FRA_PROTOCOL` 21 (u8, kernel ≥ 4.17): ncc's rules carry
//! [`SEESAW_PROTO`] there, so a restart adopts them and foreign rules are never touched.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};

use super::netlink::{self, message, push_attr};
use crate::NccError;
use crate::kernel::uapi::{
    AF_INET, AF_INET6, FRA_DST, FRA_PRIORITY, FRA_PROTOCOL, FRA_SRC, FRA_TABLE, IFA_ADDRESS,
    IFA_F_NODAD, IFA_FLAGS, IFA_LOCAL, IFA_PROTO, IFF_UP, IFLA_ADDRESS, IFLA_IFNAME,
    IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_IPTUN_LOCAL, IFLA_IPTUN_PROTO, IFLA_IPTUN_REMOTE,
    IFLA_LINK, IFLA_LINKINFO, IFLA_PERM_ADDRESS, IFLA_VLAN_ID, IPPROTO_IPV6, NLM_F_ACK,
    NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, RTA_DST,
    RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_TABLE, RTM_DELADDR, RTM_DELLINK, RTM_DELROUTE,
    RTM_DELRULE, RTM_GETADDR, RTM_GETLINK, RTM_GETROUTE, RTM_GETRULE, RTM_NEWADDR, RTM_NEWLINK,
    RTM_NEWROUTE, RTM_NEWRULE,
};

/// `IFA_PROTO` value of the addresses ncc owns.
pub const SEESAW_PROTO: u8 = 0x5e;

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

/// One interface as the kernel holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkInfo {
    /// Interface index.
    pub index: u32,
    /// Name (`IFLA_IFNAME`).
    pub name: String,
    /// `IFF_UP` is set.
    pub up: bool,
    /// The MAC (`IFLA_ADDRESS`, Ethernet-sized only).
    pub mac: Option<[u8; 6]>,
    /// The permanent MAC (`IFLA_PERM_ADDRESS`), where the driver has one.
    pub perm_mac: Option<[u8; 6]>,
    /// The parent link (`IFLA_LINK`; a VLAN's parent).
    pub parent: Option<u32>,
    /// `IFLA_INFO_KIND` ("vlan", "veth", ...).
    pub kind: Option<String>,
    /// `IFLA_VLAN_ID` of a VLAN.
    pub vlan_id: Option<u16>,
}

/// One route (the fields ncc reads and writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RouteInfo {
    /// Table (`RTA_TABLE`, else `rtm_table`).
    pub table: u32,
    /// Destination network (the unspecified address with length 0 for a default route).
    pub dst: (IpAddr, u8),
    /// Gateway.
    pub gateway: Option<IpAddr>,
    /// Output interface.
    pub oif: Option<u32>,
    /// `rtm_protocol` ([`SEESAW_PROTO`] for ncc's).
    pub protocol: u8,
    /// `rtm_scope`.
    pub scope: u8,
    /// `rtm_type`.
    pub kind: u8,
    /// `RTA_PRIORITY` (metric).
    pub metric: Option<u32>,
}

/// One policy-routing rule (the fields ncc reads and writes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct RuleInfo {
    /// `AF_INET` or `AF_INET6`.
    pub family: u8,
    /// `from` selector.
    pub src: Option<(IpAddr, u8)>,
    /// `to` selector.
    pub dst: Option<(IpAddr, u8)>,
    /// Table looked up.
    pub table: u32,
    /// Action (`FR_ACT_TO_TBL` for a lookup).
    pub action: u8,
    /// Priority (the kernel picks one when absent on add).
    pub priority: Option<u32>,
    /// `FRA_PROTOCOL` ([`SEESAW_PROTO`] for ncc's).
    pub protocol: u8,
}

/// One decoded reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RtReply {
    /// An address (from a dump).
    Addr(HeldAddr),
    /// A link (from a dump).
    Link(LinkInfo),
    /// A route (from a dump).
    Route(RouteInfo),
    /// A rule (from a dump).
    Rule(RuleInfo),
    /// `NLMSG_ERROR`: 0 acknowledges, else a negative errno.
    Ack(i32),
    /// End of a dump.
    Done,
}

impl RtReply {
    /// The address, if this is one.
    pub fn addr(self) -> Option<HeldAddr> {
        match self {
            Self::Addr(x) => Some(x),
            _ => None,
        }
    }

    /// The link, if this is one.
    pub fn link(self) -> Option<LinkInfo> {
        match self {
            Self::Link(x) => Some(x),
            _ => None,
        }
    }

    /// The route, if this is one.
    pub fn route(self) -> Option<RouteInfo> {
        match self {
            Self::Route(x) => Some(x),
            _ => None,
        }
    }

    /// The rule, if this is one.
    pub fn rule(self) -> Option<RuleInfo> {
        match self {
            Self::Rule(x) => Some(x),
            _ => None,
        }
    }
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

/// The request that adds (`new`, failing if the object exists) or deletes (`del`) an object with
/// `body`, acknowledged.
fn change(add: bool, (new, del): (u16, u16), seq: u32, body: &[u8]) -> Vec<u8> {
    if add {
        message(
            new,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            seq,
            body,
        )
    } else {
        message(del, NLM_F_REQUEST | NLM_F_ACK, seq, body)
    }
}

/// `RTM_NEWADDR` (`add`; create, exclusive) or `RTM_DELADDR` of `addr/prefix` on interface
/// `index`, marked as ours.
pub fn encode_addr(add: bool, seq: u32, index: u32, addr: IpAddr, prefix: u8) -> Vec<u8> {
    encode_addr_proto(add, seq, index, addr, prefix, SEESAW_PROTO)
}

/// [`encode_addr`] with the originator `proto` (0: no `IFA_PROTO`), to put back an address
/// exactly as it was (the LB interface's IPv6 addresses across a link down).
pub fn encode_addr_proto(
    add: bool,
    seq: u32,
    index: u32,
    addr: IpAddr,
    prefix: u8,
    proto: u8,
) -> Vec<u8> {
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
        if proto != 0 {
            push_attr(&mut body, IFA_PROTO, &[proto]);
        }
    }
    change(add, (RTM_NEWADDR, RTM_DELADDR), seq, &body)
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

/// `RTM_GETLINK` dump of every interface.
pub fn encode_link_dump(seq: u32) -> Vec<u8> {
    message(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, &[0u8; 16])
}

fn ifinfomsg(index: u32) -> Vec<u8> {
    let mut body = vec![0u8; 4];
    body.extend_from_slice(&index.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    body
}

/// `RTM_NEWLINK` setting interface `index`'s MAC (`ip link set dev X address M`).
pub fn encode_link_mac(seq: u32, index: u32, mac: [u8; 6]) -> Vec<u8> {
    let mut body = ifinfomsg(index);
    push_attr(&mut body, IFLA_ADDRESS, &mac);
    message(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, seq, &body)
}

/// `RTM_NEWLINK` creating VLAN `name` with `id` on `parent` (`ip link add link P name N type
/// vlan id I`), down.
pub fn encode_vlan_add(seq: u32, parent: u32, name: &str, id: u16) -> Vec<u8> {
    let mut body = ifinfomsg(0);
    push_attr(&mut body, IFLA_LINK, &parent.to_ne_bytes());
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    push_attr(&mut body, IFLA_IFNAME, &n);
    let mut data = Vec::new();
    push_attr(&mut data, IFLA_VLAN_ID, &id.to_ne_bytes());
    new_link(seq, body, b"vlan", &data)
}

/// `RTM_NEWLINK` creating tunnel device `name` to `remote`, up: `ipip` for an IPv4 remote
/// (`ip link add N type ipip remote R [local L]`), `ip6tnl` carrying IPv6 in IPv6 for an IPv6
/// one (`ip link add N type ip6tnl mode ip6ip6 remote R local L`: an ip6tnl device without a
/// local address cannot transmit). TTL and PMTU discovery are the kernel's defaults.
pub fn encode_tunnel_add(seq: u32, name: &str, remote: IpAddr, local: Option<IpAddr>) -> Vec<u8> {
    let mut body = vec![0u8; 4];
    body.extend_from_slice(&0u32.to_ne_bytes());
    body.extend_from_slice(&IFF_UP.to_ne_bytes());
    body.extend_from_slice(&IFF_UP.to_ne_bytes());
    let mut n = name.as_bytes().to_vec();
    n.push(0);
    push_attr(&mut body, IFLA_IFNAME, &n);
    let mut data = Vec::new();
    if let Some(l) = local {
        push_attr(&mut data, IFLA_IPTUN_LOCAL, &ip_bytes(l));
    }
    let kind: &[u8] = match remote {
        IpAddr::V4(a) => {
            push_attr(&mut data, IFLA_IPTUN_REMOTE, &a.octets());
            b"ipip"
        }
        IpAddr::V6(a) => {
            push_attr(&mut data, IFLA_IPTUN_REMOTE, &a.octets());
            push_attr(&mut data, IFLA_IPTUN_PROTO, &[IPPROTO_IPV6]);
            b"ip6tnl"
        }
    };
    new_link(seq, body, kind, &data)
}

/// `RTM_NEWLINK` (create, exclusive) of `body` (`ifinfomsg` and attributes) with
/// `IFLA_LINKINFO` { `IFLA_INFO_KIND` `kind`, `IFLA_INFO_DATA` `data` }.
fn new_link(seq: u32, mut body: Vec<u8>, kind: &[u8], data: &[u8]) -> Vec<u8> {
    let mut info = Vec::new();
    push_attr(&mut info, IFLA_INFO_KIND, kind);
    push_attr(&mut info, IFLA_INFO_DATA, data);
    push_attr(&mut body, IFLA_LINKINFO, &info);
    message(
        RTM_NEWLINK,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        seq,
        &body,
    )
}

/// `RTM_DELLINK` of interface `index`.
pub fn encode_link_del(seq: u32, index: u32) -> Vec<u8> {
    message(
        RTM_DELLINK,
        NLM_F_REQUEST | NLM_F_ACK,
        seq,
        &ifinfomsg(index),
    )
}

fn ip_bytes(a: IpAddr) -> Vec<u8> {
    match a {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn family_of(a: IpAddr) -> u8 {
    if a.is_ipv4() { AF_INET } else { AF_INET6 }
}

/// `RTM_GETROUTE` dump of every route of `family` (`AF_INET` 2, `AF_INET6` 10), every table.
pub fn encode_route_dump(seq: u32, family: u8) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body[0] = family;
    message(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq, &body)
}

/// `RTM_NEWROUTE` (create, exclusive) or `RTM_DELROUTE` of `r`.
pub fn encode_route(add: bool, seq: u32, r: &RouteInfo) -> Vec<u8> {
    let (dst, dst_len) = r.dst;
    let table_byte = u8::try_from(r.table).unwrap_or(252); // RT_TABLE_COMPAT: see RTA_TABLE
    let mut body = vec![
        family_of(dst),
        dst_len,
        0,
        0,
        table_byte,
        r.protocol,
        r.scope,
        r.kind,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    if dst_len > 0 {
        push_attr(&mut body, RTA_DST, &ip_bytes(dst));
    }
    if let Some(g) = r.gateway {
        push_attr(&mut body, RTA_GATEWAY, &ip_bytes(g));
    }
    if let Some(o) = r.oif {
        push_attr(&mut body, RTA_OIF, &o.to_ne_bytes());
    }
    if let Some(m) = r.metric {
        push_attr(&mut body, RTA_PRIORITY, &m.to_ne_bytes());
    }
    push_attr(&mut body, RTA_TABLE, &r.table.to_ne_bytes());
    change(add, (RTM_NEWROUTE, RTM_DELROUTE), seq, &body)
}

/// `RTM_GETRULE` dump of every rule of `family`.
pub fn encode_rule_dump(seq: u32, family: u8) -> Vec<u8> {
    let mut body = vec![0u8; 12];
    body[0] = family;
    message(RTM_GETRULE, NLM_F_REQUEST | NLM_F_DUMP, seq, &body)
}

/// `RTM_NEWRULE` (create, exclusive) or `RTM_DELRULE` of `r`.
pub fn encode_rule(add: bool, seq: u32, r: &RuleInfo) -> Vec<u8> {
    let table_byte = u8::try_from(r.table).unwrap_or(252);
    let mut body = vec![
        r.family,
        r.dst.map_or(0, |d| d.1),
        r.src.map_or(0, |s| s.1),
        0,
        table_byte,
        0,
        0,
        r.action,
    ];
    body.extend_from_slice(&0u32.to_ne_bytes());
    if let Some((a, _)) = r.dst {
        push_attr(&mut body, FRA_DST, &ip_bytes(a));
    }
    if let Some((a, _)) = r.src {
        push_attr(&mut body, FRA_SRC, &ip_bytes(a));
    }
    if let Some(p) = r.priority {
        push_attr(&mut body, FRA_PRIORITY, &p.to_ne_bytes());
    }
    push_attr(&mut body, FRA_TABLE, &r.table.to_ne_bytes());
    push_attr(&mut body, FRA_PROTOCOL, &[r.protocol]);
    change(add, (RTM_NEWRULE, RTM_DELRULE), seq, &body)
}

fn attrs(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), RtnlDecodeError>> {
    netlink::attrs(b).map(|a| a.map_err(RtnlDecodeError::Truncated))
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

fn ip_of(family: u8, raw: &[u8], what: &'static str) -> Result<Option<IpAddr>, RtnlDecodeError> {
    Ok(match family {
        AF_INET => Some(IpAddr::V4(Ipv4Addr::from(
            <[u8; 4]>::try_from(raw).map_err(|_| RtnlDecodeError::Bad(what))?,
        ))),
        AF_INET6 => Some(IpAddr::V6(Ipv6Addr::from(
            <[u8; 16]>::try_from(raw).map_err(|_| RtnlDecodeError::Bad(what))?,
        ))),
        _ => None,
    })
}

fn u32_of(v: &[u8], what: &'static str) -> Result<u32, RtnlDecodeError> {
    let b: [u8; 4] = v
        .get(..4)
        .and_then(|b| b.try_into().ok())
        .ok_or(RtnlDecodeError::Bad(what))?;
    Ok(u32::from_ne_bytes(b))
}

fn max_prefix(family: u8) -> u8 {
    if family == AF_INET { 32 } else { 128 }
}

fn decode_link(msg: &[u8]) -> Result<LinkInfo, RtnlDecodeError> {
    let hdr = msg.get(..16).ok_or(RtnlDecodeError::Bad("ifinfomsg"))?;
    let index = u32::from_ne_bytes([hdr[4], hdr[5], hdr[6], hdr[7]]);
    let flags = u32::from_ne_bytes([hdr[8], hdr[9], hdr[10], hdr[11]]);
    let mut l = LinkInfo {
        index,
        name: String::new(),
        up: flags & IFF_UP != 0,
        mac: None,
        perm_mac: None,
        parent: None,
        kind: None,
        vlan_id: None,
    };
    for a in attrs(&msg[16..]) {
        let (k, v) = a?;
        match k {
            IFLA_IFNAME => {
                let end = v.iter().position(|&b| b == 0).unwrap_or(v.len());
                l.name = std::str::from_utf8(&v[..end])
                    .map_err(|_| RtnlDecodeError::Bad("IFLA_IFNAME"))?
                    .to_owned();
            }
            IFLA_ADDRESS => l.mac = v.try_into().ok(),
            IFLA_PERM_ADDRESS => l.perm_mac = v.try_into().ok(),
            IFLA_LINK => l.parent = Some(u32_of(v, "IFLA_LINK")?),
            IFLA_LINKINFO => {
                for i in attrs(v) {
                    let (ik, iv) = i?;
                    match ik {
                        IFLA_INFO_KIND => {
                            let end = iv.iter().position(|&b| b == 0).unwrap_or(iv.len());
                            l.kind = Some(String::from_utf8_lossy(&iv[..end]).into_owned());
                        }
                        IFLA_INFO_DATA if l.kind.as_deref() == Some("vlan") => {
                            for d in attrs(iv) {
                                let (dk, dv) = d?;
                                if dk == IFLA_VLAN_ID {
                                    let b: [u8; 2] = dv
                                        .get(..2)
                                        .and_then(|b| b.try_into().ok())
                                        .ok_or(RtnlDecodeError::Bad("IFLA_VLAN_ID"))?;
                                    l.vlan_id = Some(u16::from_ne_bytes(b));
                                }
                            }
                        }
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    Ok(l)
}

fn decode_route(msg: &[u8]) -> Result<Option<RouteInfo>, RtnlDecodeError> {
    let hdr = msg.get(..12).ok_or(RtnlDecodeError::Bad("rtmsg"))?;
    let family = hdr[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let dst_len = hdr[1];
    if dst_len > max_prefix(family) {
        return Err(RtnlDecodeError::Bad("route prefix length"));
    }
    let unspecified = if family == AF_INET {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    };
    let mut r = RouteInfo {
        table: u32::from(hdr[4]),
        dst: (unspecified, dst_len),
        gateway: None,
        oif: None,
        protocol: hdr[5],
        scope: hdr[6],
        kind: hdr[7],
        metric: None,
    };
    for a in attrs(&msg[12..]) {
        let (k, v) = a?;
        match k {
            RTA_DST => {
                if let Some(ip) = ip_of(family, v, "RTA_DST")? {
                    r.dst.0 = ip;
                }
            }
            RTA_GATEWAY => r.gateway = ip_of(family, v, "RTA_GATEWAY")?,
            RTA_OIF => r.oif = Some(u32_of(v, "RTA_OIF")?),
            RTA_PRIORITY => r.metric = Some(u32_of(v, "RTA_PRIORITY")?),
            RTA_TABLE => r.table = u32_of(v, "RTA_TABLE")?,
            _ => {}
        }
    }
    Ok(Some(r))
}

fn decode_rule(msg: &[u8]) -> Result<Option<RuleInfo>, RtnlDecodeError> {
    let hdr = msg.get(..12).ok_or(RtnlDecodeError::Bad("fib_rule_hdr"))?;
    let family = hdr[0];
    if family != AF_INET && family != AF_INET6 {
        return Ok(None);
    }
    let (dst_len, src_len) = (hdr[1], hdr[2]);
    if dst_len > max_prefix(family) || src_len > max_prefix(family) {
        return Err(RtnlDecodeError::Bad("rule prefix length"));
    }
    let mut r = RuleInfo {
        family,
        src: None,
        dst: None,
        table: u32::from(hdr[4]),
        action: hdr[7],
        priority: None,
        protocol: 0,
    };
    for a in attrs(&msg[12..]) {
        let (k, v) = a?;
        match k {
            FRA_DST => r.dst = ip_of(family, v, "FRA_DST")?.map(|ip| (ip, dst_len)),
            FRA_SRC => r.src = ip_of(family, v, "FRA_SRC")?.map(|ip| (ip, src_len)),
            FRA_PRIORITY => r.priority = Some(u32_of(v, "FRA_PRIORITY")?),
            FRA_TABLE => r.table = u32_of(v, "FRA_TABLE")?,
            FRA_PROTOCOL => r.protocol = *v.first().ok_or(RtnlDecodeError::Bad("FRA_PROTOCOL"))?,
            _ => {}
        }
    }
    Ok(Some(r))
}

/// Decodes every message of one datagram. Hostile input gives an error, never a panic (the
/// `netlink_reply` fuzz target).
pub fn decode(b: &[u8]) -> Result<Vec<RtReply>, RtnlDecodeError> {
    let mut out = Vec::new();
    for m in netlink::messages(b, false) {
        let netlink::Msg { ty, body: msg, .. } = m.map_err(RtnlDecodeError::Truncated)?;
        match ty {
            NLMSG_DONE => out.push(RtReply::Done),
            NLMSG_ERROR => {
                let code = netlink::error_code(msg).ok_or(RtnlDecodeError::Bad("error message"))?;
                out.push(RtReply::Ack(code));
            }
            RTM_NEWADDR => {
                if let Some(a) = decode_addr(msg)? {
                    out.push(RtReply::Addr(a));
                }
            }
            RTM_NEWLINK => out.push(RtReply::Link(decode_link(msg)?)),
            RTM_NEWROUTE => {
                if let Some(r) = decode_route(msg)? {
                    out.push(RtReply::Route(r));
                }
            }
            RTM_NEWRULE => {
                if let Some(r) = decode_rule(msg)? {
                    out.push(RtReply::Rule(r));
                }
            }
            _ => return Err(RtnlDecodeError::Bad("message type")),
        }
    }
    Ok(out)
}

/// Why an rtnetlink request failed.
#[derive(Debug, thiserror::Error)]
pub enum RtnlError {
    /// The kernel refused it with this errno.
    #[error("rtnetlink: {}", std::io::Error::from_raw_os_error(*.0))]
    Kernel(i32),
    /// The socket failed.
    #[error("rtnetlink socket: {0}")]
    Io(std::io::Error),
    /// A reply could not be decoded.
    #[error(transparent)]
    Decode(#[from] RtnlDecodeError),
    /// The kernel never ended the reply.
    #[error("rtnetlink: reply without end")]
    Endless,
}

#[path = "rtnl_socket.rs"]
mod socket;
pub use socket::Rtnl;

#[cfg(test)]
#[path = "rtnl_tests.rs"]
mod tests;
