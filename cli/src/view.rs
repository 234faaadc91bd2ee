//! The shell's views of engine replies: the engine's status model (`seesaw_status`: plain structs
//! converted from the protos once, shared with the ECU, rendered as text by the `format` module and
//! as JSON by serde for `-o json`), and here the rows the shell derives from it for one command
//! (backends, destinations, health checks, warnings, version) with the filters its commands take.

use seesaw_status::{BgpNeighbor, ConfigStatus, Vlan, Vserver};
use serde::Serialize;

/// What `show warnings` lists: cluster warnings, then errors of the last refused reload that are
/// not already among them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WarningsView {
    /// Every warning, once.
    pub warnings: Vec<String>,
}

impl From<ConfigStatus> for WarningsView {
    fn from(c: ConfigStatus) -> Self {
        let mut warnings = c.warnings;
        for e in c.last_reload_errors {
            if !warnings.contains(&e) {
                warnings.push(e);
            }
        }
        Self { warnings }
    }
}

// === derived views: backends, destinations, checks, version ===

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

/// Backends whose hostname starts with `prefix`, sorted by hostname.
pub fn backend_rows(vservers: &[Vserver], prefix: &str) -> Vec<BackendRow> {
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
pub fn destination_rows(vservers: &[Vserver], prefix: &str) -> Vec<DestinationRow> {
    let mut out = Vec::new();
    for v in vservers {
        for s in &v.services {
            for d in s.destinations.iter().filter(|d| d.name.starts_with(prefix)) {
                out.push(DestinationRow {
                    name: d.name.clone(),
                    vserver: v.name.clone(),
                    vserver_enabled: v.enabled,
                    service: s.key(),
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
pub fn check_rows(vservers: &[Vserver], prefix: &str) -> Vec<CheckRow> {
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
                last_latency_us: c.last_latency_us(),
                successes: c.successes(),
                failures: c.failures(),
            })
        })
        .collect()
}

/// `show vlans <id|ip>`: the VLAN with this id, else the first whose subnet holds this address;
/// the error is Seesaw's text.
pub fn select_vlan(rows: Vec<Vlan>, filter: &str) -> Result<Vlan, String> {
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
pub fn select_neighbor(neighbors: Vec<BgpNeighbor>, ip: &str) -> Result<BgpNeighbor, String> {
    let Ok(want) = ip.parse::<std::net::IpAddr>() else {
        return Err(format!("{ip:?} is not a valid IP address"));
    };
    neighbors
        .into_iter()
        .find(|n| n.address.parse::<std::net::IpAddr>() == Ok(want))
        .ok_or_else(|| "No such neighbor".to_owned())
}
