//! Validated domain types of the cluster configuration. Built only by `config::validate` from the
//! generated proto messages; nothing here derives prost or serde, so proto types stop at the edge.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;

/// A host's lifecycle status, as in Seesaw's servicedb (unset reads as Production).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Status {
    /// Serving.
    Production,
    /// Serving, under test.
    Testing,
    /// Being built: not serving, not counted.
    Building,
    /// Standby.
    Standby,
    /// Failed.
    Failure,
    /// Disabled.
    Disabled,
    /// Proposed: not serving, not counted.
    Proposed,
}

impl Status {
    /// Production or Testing: the states in which a host serves.
    pub fn is_serving(self) -> bool {
        matches!(self, Self::Production | Self::Testing)
    }
}

/// A named host with optional IPv4 and IPv6 addresses (each with its prefix length).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    /// Fully qualified host name.
    pub hostname: String,
    /// IPv4 address and prefix length.
    pub ipv4: Option<(Ipv4Addr, u8)>,
    /// IPv6 address and prefix length.
    pub ipv6: Option<(Ipv6Addr, u8)>,
    /// Lifecycle status.
    pub status: Status,
}

impl Host {
    /// The address of the given family, if the host has one.
    pub fn addr(&self, af: Af) -> Option<IpAddr> {
        match af {
            Af::V4 => self.ipv4.map(|(a, _)| IpAddr::V4(a)),
            Af::V6 => self.ipv6.map(|(a, _)| IpAddr::V6(a)),
        }
    }
}

/// Address family.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Af {
    /// IPv4.
    V4,
    /// IPv6.
    V6,
}

impl Af {
    /// Both families, IPv4 first (Seesaw's display order).
    pub const ALL: [Self; 2] = [Self::V4, Self::V6];
}

impl fmt::Display for Af {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V4 => "IPv4",
            Self::V6 => "IPv6",
        })
    }
}

/// A Seesaw node of the cluster, with the flags Seesaw derives from statuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The node's host entry.
    pub host: Host,
    /// VRRP priority: the lowest IPv4 gets 255, the others `N - index`.
    pub priority: u8,
    /// HA possible for this node (Seesaw: DISABLED unless the cluster VIP allows HA and the
    /// node's status equals the cluster VIP's).
    pub ha_enabled: bool,
    /// Anycast VIPs may be served.
    pub anycast_enabled: bool,
    /// BGP may be used.
    pub bgp_enabled: bool,
    /// Vservers run on this node.
    pub vservers_enabled: bool,
}

pub use seesaw_proto::domain::{ForwardMode, PayloadOp, Protocol, Scheduler};

/// Health check kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckKind {
    /// ICMP echo.
    Icmp,
    /// UDP send/expect.
    Udp,
    /// TCP connect (and optional send/expect).
    Tcp,
    /// HTTP request.
    Http,
    /// HTTPS request.
    Https,
    /// DNS query.
    Dns,
    /// TCP with a TLS handshake.
    TcpTls,
    /// RADIUS Access-Request.
    Radius,
    /// MySQL/MariaDB server greeting.
    Mysql,
}

impl CheckKind {
    /// The name Seesaw uses in check names: HTTPS prints as HTTP and TCP_TLS as TCP.
    pub fn seesaw_name(self) -> &'static str {
        match self {
            Self::Icmp => "ICMP",
            Self::Udp => "UDP",
            Self::Tcp | Self::TcpTls => "TCP",
            Self::Http | Self::Https => "HTTP",
            Self::Dns => "DNS",
            Self::Radius => "RADIUS",
            Self::Mysql => "MYSQL",
        }
    }

    /// The config spelling of the type (`HTTPS`, `TCP_TLS`, ...).
    pub fn proto_name(self) -> &'static str {
        match self {
            Self::Icmp => "ICMP_PING",
            Self::Udp => "UDP",
            Self::Tcp => "TCP",
            Self::Http => "HTTP",
            Self::Https => "HTTPS",
            Self::Dns => "DNS",
            Self::TcpTls => "TCP_TLS",
            Self::Radius => "RADIUS",
            Self::Mysql => "MYSQL",
        }
    }

    /// Seesaw's sort rank of the check type (its `HealthcheckType` order: DNS, HTTP, HTTPS,
    /// ICMP, RADIUS, TCP, TCP_TLS, UDP; our MySQL last), which decides check names.
    pub fn seesaw_rank(self) -> u8 {
        match self {
            Self::Dns => 1,
            Self::Http => 2,
            Self::Https => 3,
            Self::Icmp => 4,
            Self::Radius => 5,
            Self::Tcp => 6,
            Self::TcpTls => 7,
            Self::Udp => 8,
            Self::Mysql => 9,
        }
    }
}

/// How a probe reaches the backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckMode {
    /// Straight to the backend address.
    Plain,
    /// Through the VIP, forwarded DSR-style.
    Dsr,
    /// Through the VIP, tunnelled.
    Tun,
}

/// One health check, named `<TYPE>/<port>_<n>` as Seesaw does.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Healthcheck {
    /// Deterministic name, unique within its list.
    pub name: String,
    /// Kind.
    pub kind: CheckKind,
    /// Mode.
    pub mode: CheckMode,
    /// Target port (0 for ICMP).
    pub port: u16,
    /// Probe period.
    pub interval: Duration,
    /// Per-probe timeout.
    pub timeout: Duration,
    /// Payload, URI, query name or RADIUS credentials.
    pub send: String,
    /// Expected response prefix, answer or RADIUS outcome.
    pub receive: String,
    /// Expected HTTP status (200 when the config says 0).
    pub code: u16,
    /// HTTP method or DNS query type.
    pub method: String,
    /// Probe the backend as an HTTP proxy.
    pub proxy: bool,
    /// Verify TLS certificates.
    pub tls_verify: bool,
    /// Consecutive failures tolerated while healthy.
    pub retries: u32,
    /// Consecutive successes needed to become healthy.
    pub rise: u32,
}

/// The key of a vserver entry: `<port>/<PROTO>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryKey {
    /// Transport protocol.
    pub proto: Protocol,
    /// VIP port.
    pub port: u16,
}

impl fmt::Display for EntryKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.port, self.proto)
    }
}

/// One port/protocol of a vserver.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Protocol and VIP port.
    pub key: EntryKey,
    /// Port on the backends (equals the VIP port unless `backend_port` is set).
    pub backend_port: u16,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Forwarding mode.
    pub mode: ForwardMode,
    /// Persistence timeout in seconds (0: none).
    pub persistence: u32,
    /// One-packet scheduling.
    pub one_packet: bool,
    /// Fraction of backends needed to stay healthy.
    pub low_watermark: f32,
    /// Fraction of backends needed to become healthy (raised to `low_watermark` if below it).
    pub high_watermark: f32,
    /// Lower connection threshold.
    pub lthreshold: u32,
    /// Upper connection threshold.
    pub uthreshold: u32,
    /// Entry-level checks by name.
    pub healthchecks: BTreeMap<String, Healthcheck>,
    /// Userspace proxy options (payload rules, UDP flows, drain, PROXY protocol).
    pub proxy: ProxyOpts,
}

/// What a payload condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PayloadKey {
    /// Bytes `offset .. offset+length`.
    Bytes,
    /// Bits `offset .. offset+length`.
    Bits,
    /// The TLS ClientHello server name.
    TlsSni,
}

/// A validated payload condition; values are big-endian bytes of the field's width (shorter for
/// prefix), or lower-case names for the server name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayloadCond {
    /// What is compared.
    pub key: PayloadKey,
    /// First byte or bit.
    pub offset: u32,
    /// Bytes or bits.
    pub length: u32,
    /// How.
    pub op: PayloadOp,
    /// Values.
    pub values: Vec<Vec<u8>>,
    /// Mask (empty: none).
    pub mask: Vec<u8>,
}

/// A validated payload rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PayloadRule {
    /// Conditions, all of which must hold.
    pub conds: Vec<PayloadCond>,
    /// Target backend group; `None` denies.
    pub group: Option<String>,
}

/// The userspace proxy's options of one entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ProxyOpts {
    /// Rules, first match wins.
    pub rules: Vec<PayloadRule>,
    /// Group of unmatched traffic; `None` denies.
    pub default_group: Option<String>,
    /// Payload hash key `(offset, length)`.
    pub hash_key: Option<(u32, u32)>,
    /// TCP first bytes to read at most (0: as the rules need).
    pub first_bytes: u32,
    /// TCP first-bytes wait, milliseconds.
    pub first_bytes_timeout_ms: u32,
    /// Drain timeout of removed backends, seconds (0: none).
    pub drain_timeout_s: u32,
    /// PROXY protocol version towards backends (0: off, 1, 2).
    pub proxy_protocol: u8,
    /// UDP: choose per datagram instead of per flow.
    pub udp_per_packet: bool,
    /// UDP idle timeout, seconds.
    pub udp_idle_timeout_s: u32,
    /// UDP flows per worker at most.
    pub udp_max_flows: u32,
}

impl Default for ProxyOpts {
    fn default() -> Self {
        Self {
            rules: Vec::new(),
            default_group: Some(String::new()),
            hash_key: None,
            first_bytes: 0,
            first_bytes_timeout_ms: 1000,
            drain_timeout_s: 0,
            proxy_protocol: 0,
            udp_per_packet: false,
            udp_idle_timeout_s: 60,
            udp_max_flows: 65_536,
        }
    }
}

/// A backend of a vserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// The backend host.
    pub host: Host,
    /// Scheduling weight.
    pub weight: u32,
    /// Production or Testing.
    pub enabled: bool,
    /// Counts in the watermark denominator (not Proposed or Building).
    pub in_service: bool,
    /// Backend group for payload rules ("" the default group).
    pub group: String,
    /// Takes traffic only when no primary of its group is healthy.
    pub backup: bool,
}

/// How a VIP is placed and announced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VipKind {
    /// On the LB interface; moves with HA.
    Unicast,
    /// Inside a dedicated VIP subnet.
    Dedicated,
    /// Inside the anycast range; announced over BGP while every service is healthy.
    Anycast,
}

impl fmt::Display for VipKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Unicast => "Unicast",
            Self::Dedicated => "Dedicated",
            Self::Anycast => "Anycast",
        })
    }
}

/// A virtual IP address with its kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Vip {
    /// The address.
    pub ip: IpAddr,
    /// Its kind.
    pub kind: VipKind,
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.ip, self.kind)
    }
}

/// An access grant on a vserver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessGrant {
    /// User or group name.
    pub grantee: String,
    /// True for ADMIN, false for OPS.
    pub admin: bool,
    /// True for a group, false for a user.
    pub group: bool,
}

/// A virtual server: VIPs, entries, backends and checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Vserver {
    /// Unique name, by convention `service@cluster`.
    pub name: String,
    /// The entry address host.
    pub host: Host,
    /// Enabled by config (entry address Production or Testing).
    pub enabled: bool,
    /// One firewall-mark service per family.
    pub use_fwm: bool,
    /// Entries by key.
    pub entries: BTreeMap<EntryKey, Entry>,
    /// Backends by hostname.
    pub backends: BTreeMap<String, Backend>,
    /// Vserver-level checks by name (apply to every entry).
    pub healthchecks: BTreeMap<String, Healthcheck>,
    /// VIPs (one per address family present).
    pub vips: Vec<Vip>,
    /// Access grants.
    pub access_grants: Vec<AccessGrant>,
    /// Operator-facing warnings from the config.
    pub warnings: Vec<String>,
}

/// A VLAN the LB has an address on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vlan {
    /// 802.1q id.
    pub id: u16,
    /// The LB's own address on the VLAN.
    pub host: Host,
}

/// Config metadata.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    /// UNIX time of the last change (0 if unset).
    pub last_updated: i64,
    /// Free-form attributes.
    pub attributes: Vec<(String, String)>,
}

/// BGP settings from the cluster config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bgp {
    /// Local ASN.
    pub local_asn: u32,
    /// Remote ASN (0: unset).
    pub remote_asn: u32,
    /// Peers.
    pub peers: Vec<Host>,
}

/// A validated cluster.
#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The cluster VIP.
    pub seesaw_vip: Host,
    /// Nodes, sorted by IPv4 address.
    pub nodes: Vec<Node>,
    /// Vservers by name.
    pub vservers: BTreeMap<String, Vserver>,
    /// VLANs by id.
    pub vlans: BTreeMap<u16, Vlan>,
    /// Dedicated VIP subnets.
    pub dedicated_vip_subnets: Vec<IpNet>,
    /// BGP settings.
    pub bgp: Bgp,
    /// Access groups: name → members.
    pub access_groups: BTreeMap<String, Vec<String>>,
    /// Metadata.
    pub metadata: Metadata,
    /// Address pools for services created without a VIP.
    pub vip_pools: Vec<VipPool>,
    /// Cluster warnings: misconfigured vservers and skipped duplicates.
    pub warnings: Vec<String>,
    /// What the etcd source adds to a config it read (`None` for other sources).
    pub etcd: Option<EtcdFacts>,
}

/// What the etcd source knows about a config beyond its text.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EtcdFacts {
    /// The members it merged in from `<prefix>/members/`, as (vserver, backend fqdn): live
    /// backends, never part of a Maglev anchor.
    pub registered: std::collections::BTreeSet<(String, String)>,
    /// Maglev anchors stored with the config, by service (`ServiceKey` as text). A `mh`
    /// service without one builds its anchor afresh from the config — never from this node's
    /// history, so every node agrees.
    pub anchors: BTreeMap<String, std::sync::Arc<seesaw_common::maglev::Anchor>>,
}

/// A `vip_pool`: addresses (and optionally ports) that services created without a VIP draw from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipPool {
    /// Its name.
    pub name: String,
    /// Its address ranges.
    pub nets: Vec<IpNet>,
    /// Ports for services created without one.
    pub ports: Option<(u16, u16)>,
}

impl VipPool {
    /// How many addresses the pool holds (saturating).
    pub fn addresses(&self) -> u128 {
        self.nets.iter().fold(0u128, |n, net| {
            let bits = u32::from(net.max_prefix_len() - net.prefix_len());
            let all = 1u128.checked_shl(bits).unwrap_or(u128::MAX);
            let usable = match net {
                IpNet::V4(_) if bits >= 2 => all - 2,
                _ => all,
            };
            n.saturating_add(usable)
        })
    }

    /// Address number `i` of the pool (ranges in order; IPv4 ranges skip network and broadcast).
    pub fn address(&self, mut i: u128) -> Option<IpAddr> {
        for net in &self.nets {
            let bits = u32::from(net.max_prefix_len() - net.prefix_len());
            let (first, count) = match net {
                IpNet::V4(_) if bits >= 2 => (1u128, (1u128 << bits) - 2),
                _ => (0, 1u128.checked_shl(bits).unwrap_or(u128::MAX)),
            };
            if i < count {
                return Some(match net {
                    IpNet::V4(n) => {
                        let base = u32::from(n.network());
                        IpAddr::V4(Ipv4Addr::from(base + u32::try_from(first + i).ok()?))
                    }
                    IpNet::V6(n) => {
                        let base = u128::from(n.network());
                        IpAddr::V6(Ipv6Addr::from(base + first + i))
                    }
                });
            }
            i -= count;
        }
        None
    }
}

/// Seesaw's pool of firewall marks for `use_fwm` vservers.
pub const VSERVER_MARKS: std::ops::RangeInclusive<u32> = 256..=8255;
/// Seesaw's pool of firewall marks for DSR/TUN probe services.
pub const PROBE_MARKS: std::ops::RangeInclusive<u32> = 65_536..=81_535;
