//! The shell's own view of engine replies: plain structs converted from the protos at the edge,
//! rendered as text by [`crate::format`] and as JSON by serde (`-o json`), so the JSON shape is
//! ours and does not change when a proto gains a field.

use seesaw_proto::engine as pb;
use serde::Serialize;

/// `ClusterStatus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    /// Engine API version.
    pub version: u32,
    /// The site (the cluster name), shown in the prompt.
    pub site: String,
    /// The data plane the ncc runs.
    pub dataplane: String,
    /// Every node of the cluster.
    pub nodes: Vec<NodeView>,
}

/// One node.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeView {
    /// Host name.
    pub hostname: String,
    /// IPv4 address, empty if none.
    pub ipv4: String,
    /// IPv6 address, empty if none.
    pub ipv6: String,
    /// HA priority.
    pub priority: u32,
    /// Whether HA runs on the node.
    pub ha_enabled: bool,
    /// Whether anycast VIPs are served.
    pub anycast_enabled: bool,
    /// Whether BGP runs.
    pub bgp_enabled: bool,
    /// Whether the node serves vservers; `show nodes` calls the node enabled when it does.
    pub vservers_enabled: bool,
    /// Whether this is the node the shell talks to.
    pub is_local: bool,
}

/// `ConfigStatus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfigStatusView {
    /// UNIX seconds of the config's own `last_updated` (0 if unset).
    pub last_updated: i64,
    /// UNIX milliseconds when the running config was loaded.
    pub loaded_at_ms: i64,
    /// Where it came from.
    pub source: String,
    /// Increments on every applied config.
    pub generation: u64,
    /// Refused reloads so far.
    pub reload_failures: u64,
    /// Metadata attributes as (name, value).
    pub attributes: Vec<(String, String)>,
    /// Cluster warnings.
    pub warnings: Vec<String>,
    /// Errors of the last refused reload.
    pub last_reload_errors: Vec<String>,
}

/// What `show warnings` lists: cluster warnings, then errors of the last refused reload that are
/// not already among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningsView {
    /// Every warning, once.
    pub warnings: Vec<String>,
}

/// `HaStatus`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HaView {
    /// UNKNOWN, BACKUP, DISABLED, ERROR, LEADER or SHUTDOWN.
    pub state: String,
    /// UNIX milliseconds of the last transition (0 if never).
    pub since_ms: i64,
    /// Number of transitions.
    pub transitions: u64,
    /// Advertisements sent.
    pub adverts_sent: u64,
    /// Advertisements received.
    pub adverts_received: u64,
    /// UNIX milliseconds of the ha process's last report (0 if never).
    pub last_update_ms: i64,
}

/// `ConfigReloadReply`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReloadView {
    /// Whether the new config is now running.
    pub applied: bool,
    /// The engine's summary.
    pub message: String,
    /// Why it was refused.
    pub errors: Vec<String>,
}

/// One vserver with its services and destinations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VserverView {
    /// Vserver name.
    pub name: String,
    /// Entry address host name.
    pub hostname: String,
    /// Effective state (after overrides).
    pub enabled: bool,
    /// State the config asks for.
    pub config_enabled: bool,
    /// `enabled` or `disabled` when an override applies, else empty.
    pub override_state: String,
    /// VIP addresses.
    pub vips: Vec<String>,
    /// Services.
    pub services: Vec<ServiceView>,
    /// Warnings about this vserver.
    pub warnings: Vec<String>,
}

/// One service (VIP, protocol, port).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceView {
    /// VIP address.
    pub address: String,
    /// TCP, UDP, ...
    pub protocol: String,
    /// Port.
    pub port: u32,
    /// Scheduler name.
    pub scheduler: String,
    /// NAT, DSR or TUN.
    pub mode: String,
    /// Persistence in seconds (0: none).
    pub persistence: u32,
    /// One-packet scheduling (UDP).
    pub one_packet: bool,
    /// Enabled.
    pub enabled: bool,
    /// Healthy.
    pub healthy: bool,
    /// Active (programmed in the data plane).
    pub active: bool,
    /// Low watermark.
    pub low_watermark: f32,
    /// High watermark.
    pub high_watermark: f32,
    /// Current share of healthy destinations.
    pub current_watermark: f32,
    /// Destinations.
    pub destinations: Vec<DestinationView>,
}

/// One destination (backend of a service).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DestinationView {
    /// Destination name.
    pub name: String,
    /// Backend host name.
    pub backend: String,
    /// Backend address.
    pub address: String,
    /// Backend port.
    pub port: u32,
    /// Weight.
    pub weight: i32,
    /// Enabled.
    pub enabled: bool,
    /// Healthy.
    pub healthy: bool,
    /// Active.
    pub active: bool,
    /// Current connections.
    pub active_conns: u64,
    /// Connections so far.
    pub total_conns: u64,
    /// Bytes from clients.
    pub bytes_in: u64,
    /// Bytes to clients.
    pub bytes_out: u64,
    /// Health checks of this destination.
    pub checks: Vec<CheckView>,
}

/// One health check's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckView {
    /// Check name.
    pub name: String,
    /// Check id.
    pub id: u64,
    /// State, e.g. healthy or unhealthy.
    pub state: String,
    /// Last result message.
    pub message: String,
}

// === conversions from the protos ===

impl From<pb::ClusterStatus> for ClusterView {
    fn from(c: pb::ClusterStatus) -> Self {
        Self {
            version: c.version,
            site: c.site,
            dataplane: c.dataplane,
            nodes: c.nodes.into_iter().map(NodeView::from).collect(),
        }
    }
}

impl From<pb::Node> for NodeView {
    fn from(n: pb::Node) -> Self {
        Self {
            hostname: n.hostname,
            ipv4: n.ipv4,
            ipv6: n.ipv6,
            priority: n.priority,
            ha_enabled: n.ha_enabled,
            anycast_enabled: n.anycast_enabled,
            bgp_enabled: n.bgp_enabled,
            vservers_enabled: n.vservers_enabled,
            is_local: n.is_local,
        }
    }
}

impl From<pb::ConfigStatus> for ConfigStatusView {
    fn from(c: pb::ConfigStatus) -> Self {
        Self {
            last_updated: c.last_updated,
            loaded_at_ms: c.loaded_at_ms,
            source: c.source,
            generation: c.generation,
            reload_failures: c.reload_failures,
            attributes: c
                .attributes
                .into_iter()
                .map(|a| (a.name, a.value))
                .collect(),
            warnings: c.warnings,
            last_reload_errors: c.last_reload_errors,
        }
    }
}

impl From<ConfigStatusView> for WarningsView {
    fn from(c: ConfigStatusView) -> Self {
        let mut warnings = c.warnings;
        for e in c.last_reload_errors {
            if !warnings.contains(&e) {
                warnings.push(e);
            }
        }
        Self { warnings }
    }
}

impl From<pb::HaStatus> for HaView {
    fn from(h: pb::HaStatus) -> Self {
        Self {
            state: h.state,
            since_ms: h.since_ms,
            transitions: h.transitions,
            adverts_sent: h.adverts_sent,
            adverts_received: h.adverts_received,
            last_update_ms: h.last_update_ms,
        }
    }
}

impl From<pb::ConfigReloadReply> for ReloadView {
    fn from(r: pb::ConfigReloadReply) -> Self {
        Self {
            applied: r.applied,
            message: r.message,
            errors: r.errors,
        }
    }
}

impl From<pb::VserverStatus> for VserverView {
    fn from(v: pb::VserverStatus) -> Self {
        Self {
            name: v.name,
            hostname: v.hostname,
            enabled: v.enabled,
            config_enabled: v.config_enabled,
            override_state: v.override_state,
            vips: v.vips,
            services: v.services.into_iter().map(ServiceView::from).collect(),
            warnings: v.warnings,
        }
    }
}

impl From<pb::ServiceStatus> for ServiceView {
    fn from(s: pb::ServiceStatus) -> Self {
        Self {
            address: s.address,
            protocol: s.protocol,
            port: s.port,
            scheduler: s.scheduler,
            mode: s.mode,
            persistence: s.persistence,
            one_packet: s.one_packet,
            enabled: s.enabled,
            healthy: s.healthy,
            active: s.active,
            low_watermark: s.low_watermark,
            high_watermark: s.high_watermark,
            current_watermark: s.current_watermark,
            destinations: s
                .destinations
                .into_iter()
                .map(DestinationView::from)
                .collect(),
        }
    }
}

impl From<pb::DestinationStatus> for DestinationView {
    fn from(d: pb::DestinationStatus) -> Self {
        Self {
            name: d.name,
            backend: d.backend,
            address: d.address,
            port: d.port,
            weight: d.weight,
            enabled: d.enabled,
            healthy: d.healthy,
            active: d.active,
            active_conns: d.active_conns,
            total_conns: d.total_conns,
            bytes_in: d.bytes_in,
            bytes_out: d.bytes_out,
            checks: d.checks.into_iter().map(CheckView::from).collect(),
        }
    }
}

impl From<pb::CheckStatus> for CheckView {
    fn from(c: pb::CheckStatus) -> Self {
        Self {
            name: c.name,
            id: c.id,
            state: c.state,
            message: c.message,
        }
    }
}
