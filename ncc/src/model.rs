//! ncc's domain types: the services and destinations a data plane holds. Converted from the gRPC
//! messages in `server`; data planes never see proto types.

use std::net::SocketAddr;
use std::sync::Arc;

use seesaw_common::maglev::Anchor;

pub use seesaw_proto::domain::{ForwardMode, PayloadOp as Op, Protocol, Scheduler, ServiceKey};

/// A destination (real server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dest {
    /// Address and port.
    pub addr: SocketAddr,
    /// Weight (0: drain — no new connections, established ones continue).
    pub weight: u32,
    /// Backend group: an index into the service's [`ServiceOpts::groups`] (0 is the default
    /// group `""`). Payload rules route to groups; planes without rules use one group.
    pub group: u16,
    /// A backup: takes traffic only when no primary of its group can.
    pub backup: bool,
}

impl Dest {
    /// A primary destination of the default group.
    pub fn new(addr: SocketAddr, weight: u32) -> Self {
        Self {
            addr,
            weight,
            group: 0,
            backup: false,
        }
    }
}

/// Where a payload rule sends a packet or connection.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RuleTarget {
    /// A backend group, by index into [`ServiceOpts::groups`].
    Group(u16),
    /// Drop (UDP) or close (TCP), and count.
    Deny,
}

/// What a payload condition looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Field {
    /// Bytes `offset .. offset+len` of the payload (big-endian when compared as a number).
    Bytes {
        /// First byte.
        offset: u32,
        /// Length in bytes (1..=64).
        len: u32,
    },
    /// Bits `offset .. offset+len` of the payload, counted from the first byte's most significant
    /// bit (len 1..=64).
    Bits {
        /// First bit.
        offset: u32,
        /// Length in bits.
        len: u32,
    },
    /// The server name of a TLS ClientHello (TCP first bytes only), lower case.
    Sni,
}

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cond {
    /// What is compared.
    pub field: Field,
    /// How.
    pub op: Op,
    /// ANDed with the field before comparing (big-endian, the field's width); empty: none.
    pub mask: Vec<u8>,
    /// The value(s): big-endian bytes of the field's width (shorter for `Prefix`), or names for
    /// `Sni`. Exactly one except for `In`.
    pub values: Vec<Vec<u8>>,
}

/// A payload rule: every condition holds → the target.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Rule {
    /// Conditions, all of which must hold.
    pub conds: Vec<Cond>,
    /// Where matching traffic goes.
    pub target: RuleTarget,
}

/// How a UDP service ties datagrams to backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UdpMode {
    /// The first datagram of a flow picks the backend; later ones follow it.
    #[default]
    PerFlow,
    /// Every datagram picks a backend.
    PerPacket,
}

/// PROXY protocol towards backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProxyProtocol {
    /// None.
    #[default]
    Off,
    /// Text header (v1).
    V1,
    /// Binary header (v2).
    V2,
}

/// The userspace proxy's per-service options (other planes ignore them; the engine refuses
/// them for planes that cannot honour them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ServiceOpts {
    /// Backend group names; index 0 is always the default group `""`.
    pub groups: Vec<String>,
    /// Payload rules, first match wins.
    pub rules: Vec<Rule>,
    /// Where traffic no rule matches goes.
    pub default_target: RuleTarget,
    /// Hash key: bytes `offset .. offset+len` of the payload feed the hashing schedulers
    /// (sh, dh, mh) and key UDP flows, instead of the client address.
    pub hash_key: Option<(u32, u32)>,
    /// TCP: read at most this many first bytes before routing (0: route on connect).
    pub first_bytes: u32,
    /// TCP: wait at most this long for the first bytes, in milliseconds.
    pub first_bytes_wait_ms: u32,
    /// Removed destinations keep established flows at most this long, in milliseconds
    /// (0: until they end).
    pub drain_timeout_ms: u32,
    /// PROXY protocol towards backends.
    pub proxy_protocol: ProxyProtocol,
    /// UDP: per-flow or per-packet.
    pub udp_mode: UdpMode,
    /// UDP: flows idle this long are forgotten, in milliseconds.
    pub udp_idle_timeout_ms: u32,
    /// UDP: at most this many flows per worker.
    pub udp_max_flows: u32,
    /// Seesaw's kernel-scheduling options (IPVS).
    pub kernel: KernelOpts,
}

/// Seesaw's per-entry options for the kernel scheduler: what IPVS gets besides the scheduler.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct KernelOpts {
    /// Schedule every UDP datagram on its own (`IP_VS_SVC_F_ONEPACKET`).
    pub one_packet: bool,
    /// Lower connection threshold of every destination (0: none).
    pub lthreshold: u32,
    /// Upper connection threshold of every destination (0: none).
    pub uthreshold: u32,
}

impl Default for ServiceOpts {
    fn default() -> Self {
        Self {
            groups: vec![String::new()],
            rules: Vec::new(),
            default_target: RuleTarget::Group(0),
            hash_key: None,
            first_bytes: 0,
            first_bytes_wait_ms: 1000,
            drain_timeout_ms: 0,
            proxy_protocol: ProxyProtocol::Off,
            udp_mode: UdpMode::PerFlow,
            udp_idle_timeout_ms: 60_000,
            udp_max_flows: 65_536,
            kernel: KernelOpts::default(),
        }
    }
}

/// A service with its destinations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Forwarding mode.
    pub mode: ForwardMode,
    /// Persistence timeout in seconds.
    pub persistence: u32,
    /// Destinations, sorted by address.
    pub dests: Vec<Dest>,
    /// Userspace-proxy options (payload rules, groups, UDP flow handling, drain).
    pub opts: ServiceOpts,
    /// Firewall-mark services only: the VIP:protocol:port tuples the plane marks into this
    /// service (Seesaw's mangle `MARK` rules), sorted; each tuple's own `fwmark` is 0. Empty
    /// for a service reached only by packets marked elsewhere (a probe's `SO_MARK`).
    pub marks: Vec<ServiceKey>,
    /// `mh` on the planes that build the table (proxy, nftables): the table every node derives
    /// the live one from ([`seesaw_common::maglev::Anchor`]); `None`: derive from the table
    /// held before.
    pub anchor: Option<Arc<Anchor>>,
}

/// What [`Service::settings`] compares.
pub type Settings<'a> = (
    Scheduler,
    ForwardMode,
    u32,
    &'a ServiceOpts,
    &'a [ServiceKey],
    Option<u64>,
);

impl Service {
    /// A service with `dests` (kept in the order given) and nothing else: no persistence, the
    /// default proxy options, no marked tuples, no anchor.
    pub fn new(key: ServiceKey, scheduler: Scheduler, mode: ForwardMode, dests: Vec<Dest>) -> Self {
        Self {
            key,
            scheduler,
            mode,
            persistence: 0,
            dests,
            opts: ServiceOpts::default(),
            marks: Vec::new(),
            anchor: None,
        }
    }

    /// The service's settings without its destinations, for comparing (the anchor by its
    /// fingerprint).
    pub fn settings(&self) -> Settings<'_> {
        (
            self.scheduler,
            self.mode,
            self.persistence,
            &self.opts,
            &self.marks,
            self.anchor.as_ref().map(|a| a.hash()),
        )
    }

    /// The first destination whose address is not of the VIP's family (no plane can reach it).
    pub fn dest_outside_family(&self) -> Option<&Dest> {
        self.dests
            .iter()
            .find(|d| d.addr.is_ipv4() != self.key.vip.is_ipv4())
    }

    /// What is wrong with the service's firewall-mark fields, if anything: destinations of a
    /// firewall-mark service keep the packet's port (port 0), its marked tuples are VIP:port
    /// services of its family, and only firewall-mark services mark.
    pub fn fwmark_problem(&self) -> Option<String> {
        if !self.key.is_fwmark() {
            return (!self.marks.is_empty())
                .then(|| "only a firewall-mark service can mark traffic".to_owned());
        }
        if let Some(d) = self.dests.iter().find(|d| d.addr.port() != 0) {
            return Some(format!(
                "destination {} of a firewall-mark service must use port 0 (the packet keeps its port)",
                d.addr
            ));
        }
        if let Some(d) = self.dest_outside_family() {
            return Some(format!(
                "destination {} is not in the service's address family",
                d.addr
            ));
        }
        if let Some(m) = self
            .marks
            .iter()
            .find(|m| m.is_fwmark() || m.port == 0 || m.vip.is_ipv4() != self.key.vip.is_ipv4())
        {
            return Some(format!(
                "marked tuple {m} must be a VIP:port of the service's address family"
            ));
        }
        None
    }
}

/// Counters of one destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestStats {
    /// The destination.
    pub dest: Option<Dest>,
    /// Open connections.
    pub active_conns: u64,
    /// Connections since it was added.
    pub total_conns: u64,
    /// Bytes client → backend.
    pub bytes_in: u64,
    /// Bytes backend → client.
    pub bytes_out: u64,
}

/// Why a kernel plane refuses the service's userspace-proxy features (payload rules, backend
/// groups, backups, proxy options), if it has any.
pub fn proxy_features(s: &Service) -> Option<String> {
    let plain = ServiceOpts {
        kernel: s.opts.kernel,
        ..ServiceOpts::default()
    };
    (s.opts != plain || s.dests.iter().any(|d| d.group != 0 || d.backup)).then(|| {
        "payload rules, backend groups, backups and proxy options are features of the \
         userspace proxy plane"
            .to_owned()
    })
}

/// Why a plane other than IPVS refuses the service's connection thresholds, if it has any:
/// only IPVS counts connections per destination exactly enough to stop at a threshold.
pub fn thresholds_need_ipvs(s: &Service) -> Option<String> {
    let k = &s.opts.kernel;
    (k.lthreshold > 0 || k.uthreshold > 0).then(|| {
        format!(
            "connection thresholds (lthreshold {}, uthreshold {}) need the ipvs data plane",
            k.lthreshold, k.uthreshold
        )
    })
}
