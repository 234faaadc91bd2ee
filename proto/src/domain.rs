//! The vocabulary both ends of the engine → ncc wire mean, as plain Rust types: a service's
//! identity, protocol, scheduler and forwarding mode, and a payload comparison. Declared once
//! here; the engine (`engine::model`, `engine::desired`) and ncc (`ncc::model`) re-export them,
//! so a service key the engine computes is the very type ncc's planes index by. Also the two
//! halves of `seesaw trace` both ends speak: the flow asked about and the plane's answer; and the
//! HA state the ha process reports to the engine ([`HaState`]); and how a node speaks BGP
//! ([`BgpSettings`]). The proto
//! messages stay the wire form; each side converts messages at its gRPC edge
//! (`engine::ncc_port`, `ncc::convert`), and these types' own conversions to and from ncc's
//! proto enums are here, once (`From` one way, `from_pb` the other: `None` for unspecified or
//! unknown values).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use crate::ncc as pb;

/// Transport protocol of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Tcp => "TCP",
            Self::Udp => "UDP",
        })
    }
}

/// Backend selection algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin (weight 0 excludes a destination).
    Rr,
    /// Weighted round robin (smooth).
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
    /// Destination hashing (of the VIP address and port).
    Dh,
    /// Weighted random.
    Random,
    /// Power of two choices: the less loaded (per weight) of two weighted random picks
    /// (userspace proxy).
    P2c,
}

impl fmt::Display for Scheduler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How packets reach a backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// Direct server return (IPVS gatewaying).
    Dsr,
    /// NAT (IPVS masquerading; the userspace proxy behaves as NAT).
    Nat,
    /// IP-in-IP tunnel.
    Tun,
}

impl fmt::Display for ForwardMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Dsr => "DSR",
            Self::Nat => "NAT",
            Self::Tun => "TUN",
        })
    }
}

/// A service's identity in the data plane: a VIP, protocol and port, or a firewall mark (IPVS's
/// two kinds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// VIP; for a firewall-mark service the family's unspecified address (`0.0.0.0` or `::`).
    pub vip: IpAddr,
    /// Protocol (a firewall-mark service matches every protocol and says `Tcp` here).
    pub proto: Protocol,
    /// VIP port (0 for a firewall-mark service).
    pub port: u16,
    /// Firewall mark: non-zero makes this a firewall-mark service, which takes every packet of
    /// its family carrying the mark (and the VIP:port tuples marked into it).
    pub fwmark: u32,
}

impl ServiceKey {
    /// A VIP:port service's key.
    pub fn new(vip: IpAddr, proto: Protocol, port: u16) -> Self {
        Self {
            vip,
            proto,
            port,
            fwmark: 0,
        }
    }

    /// A firewall-mark service's key (`ipv6` picks the family).
    pub fn fwmark(ipv6: bool, mark: u32) -> Self {
        let vip = if ipv6 {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        Self {
            vip,
            proto: Protocol::Tcp,
            port: 0,
            fwmark: mark,
        }
    }

    /// Whether this is a firewall-mark service.
    pub fn is_fwmark(&self) -> bool {
        self.fwmark != 0
    }

    /// The VIP socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.vip, self.port)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_fwmark() {
            let af = if self.vip.is_ipv4() { "IPv4" } else { "IPv6" };
            return write!(f, "fwmark {}/{af}", self.fwmark);
        }
        write!(f, "{}/{}", self.addr(), self.proto)
    }
}

/// A payload comparison (the userspace proxy's payload rules).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<` (numbers only)
    Lt,
    /// `<=` (numbers only)
    Le,
    /// `>` (numbers only)
    Gt,
    /// `>=` (numbers only)
    Ge,
    /// The field starts with the value.
    Prefix,
    /// The field ends with the value (server names only).
    Suffix,
    /// The field equals one of the values.
    In,
}

/// The HA state as the engine API spells it (`HaStatus.state`): what the ha process reports and
/// the engine reads, one type at both ends (the engine's `HaRole`, the ha node's `State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum HaState {
    /// No config seen yet; at the engine, no report yet, a stale one, or the ha process exited.
    #[default]
    Unknown,
    /// Not the leader: unicast VIPs stay down on a peered node.
    Backup,
    /// HA is switched off in the config.
    Disabled,
    /// The node cannot take part in HA (bad addresses, no advert socket); retried.
    Error,
    /// The leader: unicast VIPs are served.
    Leader,
    /// The ha process is stopping; terminal.
    Shutdown,
}

impl HaState {
    /// Every state, in the order the engine API lists them.
    pub const ALL: [Self; 6] = [
        Self::Unknown,
        Self::Backup,
        Self::Disabled,
        Self::Error,
        Self::Leader,
        Self::Shutdown,
    ];

    /// The wire spelling (`UNKNOWN`, `LEADER`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Backup => "BACKUP",
            Self::Disabled => "DISABLED",
            Self::Error => "ERROR",
            Self::Leader => "LEADER",
            Self::Shutdown => "SHUTDOWN",
        }
    }

    /// Parses the wire spelling; `None` for anything else.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

impl fmt::Display for HaState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for HaState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// How this node speaks BGP (`BgpSettings` on the wire): what the engine derives from
/// cluster.pb (`bgp_*`), seesaw.cfg (`[bgp] gobgp_api`) and the node's addresses, and what ncc
/// drives the GoBGP daemon with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpSettings {
    /// The daemon's gRPC address, `host:port` (`[bgp] gobgp_api`).
    pub gobgp_api: String,
    /// This node's ASN (cluster.pb `bgp_local_asn`).
    pub local_asn: u32,
    /// The peers' ASN (cluster.pb `bgp_remote_asn`).
    pub remote_asn: u32,
    /// The peers, routers (cluster.pb `bgp_peer`).
    pub peers: Vec<IpAddr>,
    /// BGP router id: the node's IPv4 address.
    pub router_id: Ipv4Addr,
    /// Next hop of IPv4 routes: this node (`[cluster] node_ipv4`).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// Next hop of IPv6 routes: this node (`[cluster] node_ipv6`).
    pub next_hop_v6: Option<Ipv6Addr>,
}

impl From<&BgpSettings> for pb::BgpSettings {
    fn from(s: &BgpSettings) -> Self {
        let opt = |a: Option<String>| a.unwrap_or_default();
        Self {
            gobgp_api: s.gobgp_api.clone(),
            local_asn: s.local_asn,
            remote_asn: s.remote_asn,
            peers: s.peers.iter().map(ToString::to_string).collect(),
            router_id: s.router_id.to_string(),
            next_hop_ipv4: opt(s.next_hop_v4.map(|a| a.to_string())),
            next_hop_ipv6: opt(s.next_hop_v6.map(|a| a.to_string())),
        }
    }
}

/// A flow `seesaw trace` asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceFlow {
    /// TCP or UDP.
    pub proto: Protocol,
    /// The client's address and port.
    pub client: SocketAddr,
    /// The VIP and port.
    pub vip: SocketAddr,
}

/// What a data plane would do with a [`TraceFlow`] (read-only: no scheduler state moves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlaneTrace {
    /// The plane holds a service for the flow.
    pub found: bool,
    /// The plane's kind.
    pub plane: String,
    /// The destination a new flow would get, when the scheduler's choice is a function of the
    /// flow (sh, mh, dh).
    pub predicted: Option<SocketAddr>,
    /// How the plane decides (e.g. the Maglev slot).
    pub how: String,
    /// The live flow's destination.
    pub flow: Option<SocketAddr>,
    /// The live flow's state.
    pub flow_state: String,
    /// What else decides the flow.
    pub notes: Vec<String>,
}

impl PlaneTrace {
    /// The answer of a plane that cannot trace.
    pub fn unsupported(plane: &str) -> Self {
        Self {
            plane: plane.to_owned(),
            notes: vec![format!("the {plane} plane does not trace flows")],
            ..Self::default()
        }
    }
}

impl From<PlaneTrace> for pb::TraceReply {
    fn from(t: PlaneTrace) -> Self {
        let addr = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
        Self {
            service_found: t.found,
            plane: t.plane,
            predicted: addr(t.predicted),
            how: t.how,
            flow: addr(t.flow),
            flow_state: t.flow_state,
            notes: t.notes,
        }
    }
}

impl From<pb::TraceReply> for PlaneTrace {
    fn from(r: pb::TraceReply) -> Self {
        Self {
            found: r.service_found,
            plane: r.plane,
            predicted: r.predicted.parse().ok(),
            how: r.how,
            flow: r.flow.parse().ok(),
            flow_state: r.flow_state,
            notes: r.notes,
        }
    }
}

impl From<Protocol> for pb::Protocol {
    fn from(p: Protocol) -> Self {
        match p {
            Protocol::Tcp => Self::Tcp,
            Protocol::Udp => Self::Udp,
        }
    }
}

impl Protocol {
    /// The protocol of a proto enum value; `None` for unspecified or unknown values.
    pub fn from_pb(v: i32) -> Option<Self> {
        match pb::Protocol::try_from(v).ok()? {
            pb::Protocol::Tcp => Some(Self::Tcp),
            pb::Protocol::Udp => Some(Self::Udp),
            pb::Protocol::Unspecified => None,
        }
    }
}

impl Scheduler {
    /// Its lower-case name: IPVS's name for the ones IPVS has, and what `Display` writes, the
    /// nftables plane's registry comments hold and [`Self::from_name`] reads.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rr => "rr",
            Self::Wrr => "wrr",
            Self::Lc => "lc",
            Self::Wlc => "wlc",
            Self::Sh => "sh",
            Self::Mh => "mh",
            Self::Dh => "dh",
            Self::Random => "random",
            Self::P2c => "p2c",
        }
    }

    /// The scheduler of its lower-case name ([`Self::name`]); `None` for any other.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "rr" => Self::Rr,
            "wrr" => Self::Wrr,
            "lc" => Self::Lc,
            "wlc" => Self::Wlc,
            "sh" => Self::Sh,
            "mh" => Self::Mh,
            "dh" => Self::Dh,
            "random" => Self::Random,
            "p2c" => Self::P2c,
            _ => return None,
        })
    }
}

impl From<Scheduler> for pb::Scheduler {
    fn from(s: Scheduler) -> Self {
        match s {
            Scheduler::Rr => Self::Rr,
            Scheduler::Wrr => Self::Wrr,
            Scheduler::Lc => Self::Lc,
            Scheduler::Wlc => Self::Wlc,
            Scheduler::Sh => Self::Sh,
            Scheduler::Mh => Self::Mh,
            Scheduler::Dh => Self::Dh,
            Scheduler::Random => Self::Random,
            Scheduler::P2c => Self::P2c,
        }
    }
}

impl Scheduler {
    /// The scheduler of a proto enum value; `None` for unspecified or unknown values.
    pub fn from_pb(v: i32) -> Option<Self> {
        Some(match pb::Scheduler::try_from(v).ok()? {
            pb::Scheduler::Rr => Self::Rr,
            pb::Scheduler::Wrr => Self::Wrr,
            pb::Scheduler::Lc => Self::Lc,
            pb::Scheduler::Wlc => Self::Wlc,
            pb::Scheduler::Sh => Self::Sh,
            pb::Scheduler::Mh => Self::Mh,
            pb::Scheduler::Dh => Self::Dh,
            pb::Scheduler::Random => Self::Random,
            pb::Scheduler::P2c => Self::P2c,
            pb::Scheduler::Unspecified => return None,
        })
    }
}

impl From<ForwardMode> for pb::ForwardMode {
    fn from(m: ForwardMode) -> Self {
        match m {
            ForwardMode::Dsr => Self::Dsr,
            ForwardMode::Nat => Self::Nat,
            ForwardMode::Tun => Self::Tun,
        }
    }
}

impl ForwardMode {
    /// The mode of a proto enum value; `None` for unspecified or unknown values.
    pub fn from_pb(v: i32) -> Option<Self> {
        match pb::ForwardMode::try_from(v).ok()? {
            pb::ForwardMode::Dsr => Some(Self::Dsr),
            pb::ForwardMode::Nat => Some(Self::Nat),
            pb::ForwardMode::Tun => Some(Self::Tun),
            pb::ForwardMode::Unspecified => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ForwardMode, Protocol, Scheduler, ServiceKey, pb};

    /// Keys print as operators read them in logs and change reports.
    #[test]
    fn keys_print_as_address_and_protocol_or_as_a_mark() {
        let v4 = ServiceKey::new("10.0.0.1".parse().unwrap(), Protocol::Udp, 53);
        let v6 = ServiceKey::new("2001:db8::1".parse().unwrap(), Protocol::Tcp, 443);
        assert_eq!(v4.to_string(), "10.0.0.1:53/UDP");
        assert_eq!(v6.to_string(), "[2001:db8::1]:443/TCP");
        assert_eq!(ServiceKey::fwmark(true, 7).to_string(), "fwmark 7/IPv6");
        assert!(ServiceKey::fwmark(false, 7).is_fwmark() && !v4.is_fwmark());
    }

    /// Every value survives the trip to ncc's proto enums and back; unspecified and unknown
    /// values are refused.
    #[test]
    fn enums_survive_the_trip_to_the_wire() {
        for p in [Protocol::Tcp, Protocol::Udp] {
            assert_eq!(Protocol::from_pb(pb::Protocol::from(p) as i32), Some(p));
        }
        for m in [ForwardMode::Dsr, ForwardMode::Nat, ForwardMode::Tun] {
            assert_eq!(
                ForwardMode::from_pb(pb::ForwardMode::from(m) as i32),
                Some(m)
            );
        }
        use Scheduler::*;
        for s in [Rr, Wrr, Lc, Wlc, Sh, Mh, Dh, Random, P2c] {
            assert_eq!(Scheduler::from_pb(pb::Scheduler::from(s) as i32), Some(s));
            assert_eq!(Scheduler::from_name(&s.to_string()), Some(s));
        }
        assert_eq!(Scheduler::from_name("WRR"), None);
        assert_eq!(Protocol::from_pb(0), None);
        assert_eq!(Scheduler::from_pb(0), None);
        assert_eq!(ForwardMode::from_pb(99), None);
    }
}
