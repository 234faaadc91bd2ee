//! ncc's domain types: the services and destinations a data plane holds. Converted from the gRPC
//! messages in `server`; data planes never see proto types.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Transport protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
}

/// Scheduler.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheduler {
    /// Round robin (weight 0 excludes a destination).
    Rr,
    /// Smooth weighted round robin.
    Wrr,
    /// Least connections.
    Lc,
    /// Weighted least connections.
    Wlc,
    /// Source hashing.
    Sh,
    /// Maglev hashing.
    Mh,
}

/// Forwarding mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForwardMode {
    /// Direct server return.
    Dsr,
    /// NAT.
    Nat,
    /// Tunnel.
    Tun,
}

/// A service's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServiceKey {
    /// VIP.
    pub vip: IpAddr,
    /// Protocol.
    pub proto: Protocol,
    /// VIP port.
    pub port: u16,
}

impl ServiceKey {
    /// The VIP socket address.
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.vip, self.port)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self.proto {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
        };
        write!(f, "{}/{p}", self.addr())
    }
}

/// A destination (real server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dest {
    /// Address and port.
    pub addr: SocketAddr,
    /// Weight.
    pub weight: u32,
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
}

impl Service {
    /// The service's settings without its destinations, for comparing.
    pub fn settings(&self) -> (Scheduler, ForwardMode, u32) {
        (self.scheduler, self.mode, self.persistence)
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
