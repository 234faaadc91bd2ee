//! The shell's own view of engine replies: plain structs converted from the protos at the edge,
//! rendered as text by the `format` module and as JSON by serde (`-o json`), so the JSON shape is
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
    /// Config source etcd: the key, the revision running, and why etcd is not followed ("" while
    /// it is).
    pub etcd: Option<(String, u64, String)>,
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
    /// Datagrams the ha process dropped, by reason (`bad_mac`, `replay`, ...).
    pub adverts_rejected: std::collections::BTreeMap<String, u64>,
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

/// A change preview (`config reload --dry-run`): nothing was applied.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PreviewView {
    /// Whether the change would be applied.
    pub valid: bool,
    /// Why it would be refused.
    pub errors: Vec<String>,
    /// (what, added, removed, changed) for vservers, services and destinations.
    pub changes: Vec<ChangesView>,
    /// Consistent-hash services and the share of their flows that would move, 0..1.
    pub flows_moved: Vec<(String, f64)>,
}

/// Names added, removed and changed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChangesView {
    /// `vservers`, `services` or `destinations`.
    pub what: &'static str,
    /// New.
    pub added: Vec<String>,
    /// Gone.
    pub removed: Vec<String>,
    /// Changed.
    pub changed: Vec<String>,
}

impl From<pb::Preview> for PreviewView {
    fn from(p: pb::Preview) -> Self {
        let c = |what, c: Option<pb::Changes>| {
            let c = c.unwrap_or_default();
            ChangesView {
                what,
                added: c.added,
                removed: c.removed,
                changed: c.changed,
            }
        };
        Self {
            valid: p.valid,
            errors: p.errors,
            changes: vec![
                c("vservers", p.vservers),
                c("services", p.services),
                c("destinations", p.destinations),
            ],
            flows_moved: p
                .flows_moved
                .into_iter()
                .map(|f| (f.service, f.share))
                .collect(),
        }
    }
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
    /// Why the data plane does not hold it although it should (empty: it does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub not_applied: String,
    /// The data plane's Maglev table fingerprint (mh on the proxy and nftables planes): equal on
    /// nodes that send every flow to the same backend.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub table_hash: String,
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
    /// `enabled` or `disabled` when an override applies, else empty.
    pub override_state: String,
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
    /// How long the latest probe took, microseconds (`None` until the healthcheck reports it).
    pub last_latency_us: Option<u64>,
    /// Probes that passed so far (before rise/retries).
    pub successes: u64,
    /// Probes that failed so far.
    pub failures: u64,
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
            etcd: (!c.etcd_key.is_empty()).then_some((c.etcd_key, c.etcd_revision, c.etcd_trouble)),
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
            adverts_rejected: h
                .adverts_rejected
                .into_iter()
                .filter(|(_, n)| *n > 0)
                .collect(),
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
            not_applied: s.not_applied,
            table_hash: s.table_hash,
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
            override_state: d.override_state,
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
            last_latency_us: c
                .stats
                .as_ref()
                .filter(|s| s.successes + s.failures > 0)
                .map(|s| s.last_latency_us),
            successes: c.stats.as_ref().map_or(0, |s| s.successes),
            failures: c.stats.as_ref().map_or(0, |s| s.failures),
        }
    }
}

// === derived views: backends, destinations, checks, history, VLANs, version ===

/// One backend host across every vserver (`show backends`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BackendRow {
    /// The backend's hostname.
    pub hostname: String,
    /// Its address.
    pub address: String,
    /// Destinations it backs.
    pub destinations: usize,
    /// How many of them are healthy.
    pub healthy: usize,
    /// How many of them take traffic.
    pub active: usize,
    /// `enabled`/`disabled` when an override applies, else empty.
    pub override_state: String,
    /// Seesaw's summary: `disabled` when every destination or every vserver of the backend is
    /// disabled, `partially disabled` when some are, else `enabled`.
    pub status: String,
}

/// One destination with its vserver and service (`show destinations`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DestinationRow {
    /// The destination name.
    pub name: String,
    /// Its vserver.
    pub vserver: String,
    /// Whether its vserver is enabled.
    pub vserver_enabled: bool,
    /// Its service, `127.0.0.1:80/TCP`.
    pub service: String,
    /// The backend's hostname.
    pub backend: String,
    /// `address:port`.
    pub address: String,
    /// Weight.
    pub weight: i32,
    /// Enabled (config and overrides).
    pub enabled: bool,
    /// Health checks pass.
    pub healthy: bool,
    /// Takes traffic.
    pub active: bool,
    /// Override state, or empty.
    pub override_state: String,
    /// Connections open now.
    pub active_conns: u64,
    /// Connections since the service was created.
    pub total_conns: u64,
}

/// One health check (`show healthchecks`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckRow {
    /// The destination it checks.
    pub destination: String,
    /// The check's name.
    pub name: String,
    /// Its stable id.
    pub id: u64,
    /// Its state.
    pub state: String,
    /// The last probe's message.
    pub message: String,
    /// How long the latest probe took, microseconds (`None` before the first report of it).
    pub last_latency_us: Option<u64>,
    /// Probes that passed and failed so far (before rise/retries).
    pub successes: u64,
    /// See `successes`.
    pub failures: u64,
}

/// A saved cluster.pb version (`config history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionRow {
    /// Increasing id.
    pub id: u64,
    /// UNIX milliseconds.
    pub at_ms: i64,
    /// Who made it.
    pub who: String,
    /// What changed.
    pub what: String,
    /// Hex SHA-256 of the saved bytes.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
}

/// A VLAN with the engine's counts (`show vlans`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VlanRow {
    /// The 802.1Q id.
    pub id: u32,
    /// The host's fqdn.
    pub host: String,
    /// IPv4 with prefix length, empty if none.
    pub ipv4: String,
    /// IPv6 with prefix length, empty if none.
    pub ipv6: String,
    /// Distinct backend addresses of the cluster inside the IPv4 subnet.
    pub ipv4_backends: u32,
    /// ... inside the IPv6 subnet.
    pub ipv6_backends: u32,
    /// Distinct vserver entry addresses inside the IPv4 subnet.
    pub ipv4_vips: u32,
    /// ... inside the IPv6 subnet.
    pub ipv6_vips: u32,
}

/// One BGP neighbour (`show bgp neighbors`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpNeighborView {
    /// The neighbour's address.
    pub address: String,
    /// Its AS number.
    pub peer_asn: u32,
    /// Its router id.
    pub router_id: String,
    /// Session state (ESTABLISHED, ACTIVE, ...).
    pub state: String,
    /// Seconds the session has been in that state.
    pub uptime_s: u64,
    /// Messages received.
    pub messages_received: u64,
    /// Messages sent.
    pub messages_sent: u64,
    /// UPDATEs received.
    pub updates_received: u64,
    /// UPDATEs sent.
    pub updates_sent: u64,
}

/// `show version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionView {
    /// The shell's build.
    pub shell: String,
    /// The engine's API version.
    pub engine: u32,
    /// The site.
    pub site: String,
    /// The data plane.
    pub dataplane: String,
}

fn service_key(s: &ServiceView) -> String {
    if s.address.contains(':') {
        format!(
            "[{}]:{}/{}",
            s.address,
            s.port,
            s.protocol.to_ascii_uppercase()
        )
    } else {
        format!(
            "{}:{}/{}",
            s.address,
            s.port,
            s.protocol.to_ascii_uppercase()
        )
    }
}

/// Backends whose hostname starts with `prefix`, sorted by hostname.
pub fn backend_rows(vservers: &[VserverView], prefix: &str) -> Vec<BackendRow> {
    use std::collections::{BTreeMap, BTreeSet};
    /// Per backend: its row, disabled destinations, and (all, disabled) vserver names.
    type Tally<'a> = (BackendRow, usize, BTreeSet<&'a str>, BTreeSet<&'a str>);
    let mut by: BTreeMap<String, Tally<'_>> = BTreeMap::new();
    for v in vservers {
        for d in v
            .services
            .iter()
            .flat_map(|s| &s.destinations)
            .filter(|d| d.backend.starts_with(prefix))
        {
            let (row, disabled, all, off) = by.entry(d.backend.clone()).or_insert_with(|| {
                let row = BackendRow {
                    hostname: d.backend.clone(),
                    address: d.address.clone(),
                    destinations: 0,
                    healthy: 0,
                    active: 0,
                    override_state: String::new(),
                    status: String::new(),
                };
                (row, 0, BTreeSet::new(), BTreeSet::new())
            });
            row.destinations += 1;
            row.healthy += usize::from(d.healthy);
            row.active += usize::from(d.active);
            *disabled += usize::from(!d.enabled);
            all.insert(&v.name);
            if !v.enabled {
                off.insert(&v.name);
            }
            if !d.override_state.is_empty() {
                row.override_state.clone_from(&d.override_state);
            }
        }
    }
    by.into_values()
        .map(|(mut row, disabled, all, off)| {
            row.status = if off.len() == all.len() || disabled == row.destinations {
                "disabled"
            } else if !off.is_empty() || disabled > 0 {
                "partially disabled"
            } else {
                "enabled"
            }
            .to_owned();
            row
        })
        .collect()
}

/// Destinations whose name starts with `prefix`, sorted by name (as Seesaw sorts them).
pub fn destination_rows(vservers: &[VserverView], prefix: &str) -> Vec<DestinationRow> {
    let mut out = Vec::new();
    for v in vservers {
        for s in &v.services {
            for d in s.destinations.iter().filter(|d| d.name.starts_with(prefix)) {
                out.push(DestinationRow {
                    name: d.name.clone(),
                    vserver: v.name.clone(),
                    vserver_enabled: v.enabled,
                    service: service_key(s),
                    backend: d.backend.clone(),
                    address: if d.address.contains(':') {
                        format!("[{}]:{}", d.address, d.port)
                    } else {
                        format!("{}:{}", d.address, d.port)
                    },
                    weight: d.weight,
                    enabled: d.enabled,
                    healthy: d.healthy,
                    active: d.active,
                    override_state: d.override_state.clone(),
                    active_conns: d.active_conns,
                    total_conns: d.total_conns,
                });
            }
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Checks of destinations whose name starts with `prefix`.
pub fn check_rows(vservers: &[VserverView], prefix: &str) -> Vec<CheckRow> {
    vservers
        .iter()
        .flat_map(|v| &v.services)
        .flat_map(|s| &s.destinations)
        .filter(|d| d.name.starts_with(prefix))
        .flat_map(|d| {
            d.checks.iter().map(|c| CheckRow {
                destination: d.name.clone(),
                name: c.name.clone(),
                id: c.id,
                state: c.state.clone(),
                message: c.message.clone(),
                last_latency_us: c.last_latency_us,
                successes: c.successes,
                failures: c.failures,
            })
        })
        .collect()
}

impl From<pb::ConfigVersion> for VersionRow {
    fn from(v: pb::ConfigVersion) -> Self {
        Self {
            id: v.id,
            at_ms: v.at_ms,
            who: v.who,
            what: v.what,
            sha256: v.sha256,
            size: v.size,
        }
    }
}

impl From<pb::Vlan> for VlanRow {
    fn from(v: pb::Vlan) -> Self {
        Self {
            id: v.id,
            host: v.hostname,
            ipv4: v.ipv4,
            ipv6: v.ipv6,
            ipv4_backends: v.ipv4_backends,
            ipv6_backends: v.ipv6_backends,
            ipv4_vips: v.ipv4_vips,
            ipv6_vips: v.ipv6_vips,
        }
    }
}

impl From<pb::BgpNeighbor> for BgpNeighborView {
    fn from(n: pb::BgpNeighbor) -> Self {
        Self {
            address: n.address,
            peer_asn: n.peer_asn,
            router_id: n.router_id,
            state: n.state,
            uptime_s: n.uptime_s,
            messages_received: n.messages_received,
            messages_sent: n.messages_sent,
            updates_received: n.updates_received,
            updates_sent: n.updates_sent,
        }
    }
}

/// `show vlans <id|ip>`: the VLAN with this id, else the first whose subnet holds this address;
/// the error is Seesaw's text.
pub fn select_vlan(rows: Vec<VlanRow>, filter: &str) -> Result<VlanRow, String> {
    if let Ok(id) = filter.parse::<u16>() {
        return rows
            .into_iter()
            .find(|v| v.id == u32::from(id))
            .ok_or_else(|| format!("VLAN ID {id} not found"));
    }
    let Ok(ip) = filter.parse::<std::net::IpAddr>() else {
        return Err(format!(
            "unknown value {filter:?} - must be a VLAN ID or IP address"
        ));
    };
    rows.into_iter()
        .find(|v| {
            [&v.ipv4, &v.ipv6]
                .into_iter()
                .filter_map(|cidr| cidr.parse::<ipnet::IpNet>().ok())
                .any(|net| net.contains(&ip))
        })
        .ok_or_else(|| format!("VLAN not found for IP address {ip}"))
}

/// `show bgp neighbors <ip>`: the neighbour with this address; the error is Seesaw's text.
pub fn select_neighbor(
    neighbors: Vec<BgpNeighborView>,
    ip: &str,
) -> Result<BgpNeighborView, String> {
    let Ok(want) = ip.parse::<std::net::IpAddr>() else {
        return Err(format!("{ip:?} is not a valid IP address"));
    };
    neighbors
        .into_iter()
        .find(|n| n.address.parse::<std::net::IpAddr>() == Ok(want))
        .ok_or_else(|| "No such neighbor".to_owned())
}
