//! What the engine wants the data plane to hold, in domain types. ncc receives this (converted to
//! proto at the gRPC edge) and makes the plane match it.

use std::net::IpAddr;

use crate::model::{ForwardMode, Scheduler};

/// One destination of a service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DestSpec {
    /// Backend address.
    pub ip: IpAddr,
    /// Backend port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Backend group for payload rules ("" the default group; userspace proxy).
    pub group: String,
    /// A backup destination (userspace proxy).
    pub backup: bool,
}

pub use seesaw_proto::domain::ServiceKey;

/// One service with the destinations that should receive traffic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceSpec {
    /// Identity.
    pub key: ServiceKey,
    /// Scheduler.
    pub scheduler: Scheduler,
    /// Forwarding mode.
    pub mode: ForwardMode,
    /// Persistence timeout in seconds.
    pub persistence: u32,
    /// Destinations, sorted.
    pub dests: Vec<DestSpec>,
    /// Userspace proxy options.
    pub proxy: crate::model::ProxyOpts,
    /// Firewall-mark services: the VIP:port tuples marked into this service, sorted.
    pub marks: Vec<ServiceKey>,
    /// Seesaw's `one_packet` and connection thresholds (the kernel planes' options).
    pub kernel: KernelOpts,
    /// `mh`: the Maglev table every node derives the live one from (see `state::anchors`).
    pub anchor: Option<std::sync::Arc<seesaw_common::maglev::Anchor>>,
}

/// An entry's `one_packet`, `lthreshold` and `uthreshold`, as ncc gets them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KernelOpts {
    /// Schedule every UDP datagram on its own.
    pub one_packet: bool,
    /// Lower connection threshold per destination (0: none).
    pub lthreshold: u32,
    /// Upper connection threshold per destination (0: none).
    pub uthreshold: u32,
}

impl KernelOpts {
    /// The options of a config entry.
    pub fn of(e: &crate::model::Entry) -> Self {
        Self {
            one_packet: e.one_packet,
            lthreshold: e.lthreshold,
            uthreshold: e.uthreshold,
        }
    }
}

/// The whole desired data-plane state, services sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Services.
    pub services: Vec<std::sync::Arc<ServiceSpec>>,
    /// The VIPs that should be up on this node, sorted: unicast and dedicated VIPs while their
    /// vserver is enabled (on the node that serves unicast: the HA master, or any node without
    /// HA), anycast VIPs only while active (every service on them healthy).
    pub vips: Vec<crate::model::Vip>,
    /// The LB interface's role and settings (`None`: ncc leaves the interface as it is).
    pub lb: Option<LbDesired>,
}

/// The LB interface as the engine wants it (Seesaw's `LBInterfaceInit`/`Up`/`Down`, reference
/// §5.2–5.5): derived from seesaw.cfg, cluster.pb's VLANs and the HA state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LbDesired {
    /// Master (or no HA): interface up, policy routes in the table, periodic GARP.
    pub up: bool,
    /// The cluster VIP (`[cluster] vip_ipv4`, else cluster.pb `seesaw_vip`).
    pub cluster_vip_v4: Option<std::net::Ipv4Addr>,
    /// The IPv6 cluster VIP.
    pub cluster_vip_v6: Option<std::net::Ipv6Addr>,
    /// `[interface] routing_table_id` (1..=250).
    pub routing_table: u8,
    /// `[cluster] use_vmac`.
    pub use_vmac: bool,
    /// `[cluster] vrid`.
    pub vrid: u8,
    /// `[cluster] garp_interval_sec` (zero: no periodic GARP).
    pub garp_interval: std::time::Duration,
    /// cluster.pb VLANs: id and the LB's host addresses with prefix lengths.
    pub vlans: Vec<VlanSpec>,
}

/// One VLAN sub-interface.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct VlanSpec {
    /// 802.1q id.
    pub id: u16,
    /// IPv4 host address and prefix length.
    pub ipv4: Option<(std::net::Ipv4Addr, u8)>,
    /// IPv6 host address and prefix length.
    pub ipv6: Option<(std::net::Ipv6Addr, u8)>,
}

/// Counters of one destination as the data plane reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DestStats {
    /// Open connections.
    pub active_conns: u64,
    /// Connections since creation.
    pub total_conns: u64,
    /// Bytes client → backend.
    pub bytes_in: u64,
    /// Bytes backend → client.
    pub bytes_out: u64,
}
