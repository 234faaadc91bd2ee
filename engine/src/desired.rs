//! What the engine wants the data plane to hold, in domain types. ncc receives this (converted to
//! proto at the gRPC edge) and makes the plane match it.

use std::net::IpAddr;

use crate::model::{ForwardMode, Protocol, Scheduler};

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

/// The identity of a service in the data plane: VIP, protocol and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// The VIP.
    pub vip: IpAddr,
    /// Protocol.
    pub proto: Protocol,
    /// VIP port.
    pub port: u16,
}

impl std::fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.vip {
            IpAddr::V4(ip) => write!(f, "{ip}:{}/{}", self.port, self.proto),
            IpAddr::V6(ip) => write!(f, "[{ip}]:{}/{}", self.port, self.proto),
        }
    }
}

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
}

/// The whole desired data-plane state, services sorted by key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DesiredState {
    /// Services.
    pub services: Vec<ServiceSpec>,
    /// The VIPs that should be up on this node, sorted: unicast and dedicated VIPs while their
    /// vserver is enabled (on the node that serves unicast: the HA master, or any node without
    /// HA), anycast VIPs only while active (every service on them healthy).
    pub vips: Vec<crate::model::Vip>,
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
