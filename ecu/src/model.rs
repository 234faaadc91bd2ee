//! The ECU's own view of the engine's state: the JSON shapes of the HTTP API, converted from the
//! engine's proto messages in `engine_view` so that the API does not change when the IPC does.

use serde::Serialize;

/// A virtual server (`GET /v1/vservers`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Vserver {
    /// The vserver name from cluster.pb.
    pub name: String,
    /// The VIP's fqdn.
    pub hostname: String,
    /// Whether the vserver is enabled (config and overrides combined).
    pub enabled: bool,
    /// `enabled` or `disabled` when an override applies, else empty.
    pub override_state: String,
    /// Its VIPs.
    pub vips: Vec<String>,
    /// One entry per (VIP, port, protocol).
    pub services: Vec<Service>,
    /// The vserver's config warnings.
    pub warnings: Vec<String>,
}

/// One IPVS-style service of a vserver.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Service {
    /// The VIP.
    pub address: String,
    /// `TCP` or `UDP`.
    pub protocol: String,
    /// The port.
    pub port: u32,
    /// The scheduler (`rr`, `wlc`, ...).
    pub scheduler: String,
    /// The forwarding mode (`NAT`, `DSR`, `TUN`).
    pub mode: String,
    /// Whether enough destinations are healthy.
    pub healthy: bool,
    /// Whether the service is programmed in the data plane.
    pub active: bool,
    /// Why the data plane does not hold it although it should (empty: it does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub not_applied: String,
    /// The data plane's Maglev table fingerprint (mh on the proxy and nftables planes).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub table_hash: String,
    /// Its backends.
    pub destinations: Vec<Destination>,
}

/// A backend of a service.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Destination {
    /// The destination name.
    pub name: String,
    /// The backend's hostname.
    pub backend: String,
    /// Backend address.
    pub address: String,
    /// Backend port.
    pub port: u32,
    /// Scheduler weight.
    pub weight: i32,
    /// Whether it is enabled (config and overrides).
    pub enabled: bool,
    /// `enabled` or `disabled` when an override applies, else empty.
    pub override_state: String,
    /// Whether its health checks pass.
    pub healthy: bool,
    /// Whether it receives traffic.
    pub active: bool,
    /// Its health checks.
    pub checks: Vec<Check>,
    /// Connections open now.
    pub active_conns: u64,
    /// Connections since the service was created.
    pub total_conns: u64,
    /// Bytes from clients to the backend.
    pub bytes_in: u64,
    /// Bytes from the backend to clients.
    pub bytes_out: u64,
}

/// The node's HA status (`GET /v1/ha`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HaStatus {
    /// `UNKNOWN`, `BACKUP`, `DISABLED`, `ERROR`, `LEADER` or `SHUTDOWN`.
    pub state: String,
    /// UNIX milliseconds of the last transition.
    pub since_ms: i64,
    /// Transitions since the ha process started.
    pub transitions: u64,
    /// Advertisements sent.
    pub adverts_sent: u64,
    /// Advertisements received.
    pub adverts_received: u64,
    /// Datagrams the ha process dropped, by reason (`bad_mac`, `replay`, ...); non-zero only.
    pub adverts_rejected: std::collections::BTreeMap<String, u64>,
    /// UNIX milliseconds of the last report from the ha process (0: never).
    pub last_update_ms: i64,
}

/// The running configuration's status (`GET /v1/config`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigStatus {
    /// Increments on every applied config.
    pub generation: u64,
    /// UNIX seconds of the config's `metadata.last_updated` (0 if unset).
    pub last_updated: i64,
    /// UNIX milliseconds when the running config was loaded.
    pub loaded_at_ms: i64,
    /// Where the config came from.
    pub source: String,
    /// Metadata attributes, in config order.
    pub attributes: Vec<Attribute>,
    /// Cluster warnings.
    pub warnings: Vec<String>,
    /// Errors of the last refused reload (empty if it succeeded).
    pub last_reload_errors: Vec<String>,
    /// Refused reloads since the engine started.
    pub reload_failures: u64,
    /// With config source etcd: the key, the revision running, and trouble.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub etcd: Option<EtcdStatus>,
}

/// Config source etcd as `GET /v1/config` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EtcdStatus {
    /// The config key.
    pub key: String,
    /// The etcd revision running.
    pub revision: u64,
    /// Why etcd is not followed now (empty while it is); the node serves its last config.
    pub trouble: String,
}

/// A config metadata attribute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attribute {
    /// The attribute name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A health check of a destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// Human-readable name.
    pub name: String,
    /// Stable id.
    pub id: u64,
    /// `healthy`, `unhealthy` or `unknown`.
    pub state: String,
    /// The last probe's message.
    pub message: String,
    /// Probe statistics since the healthcheck process started the check (absent until reported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<CheckStats>,
}

/// Cumulative probe statistics of a check, as the healthcheck process last reported them (at
/// most one full resync, 15 s, old).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckStats {
    /// Probes that passed.
    pub successes: u64,
    /// Probes that failed.
    pub failures: u64,
    /// Duration of the latest probe, microseconds.
    pub last_latency_us: u64,
    /// Sum of every probe's duration, microseconds.
    pub latency_sum_us: u64,
    /// Histogram upper bounds, microseconds, strictly increasing.
    pub latency_bounds_us: Vec<u64>,
    /// Probes per bucket (not cumulative); the extra last entry counts the slower rest.
    pub latency_counts: Vec<u64>,
}

/// At most this many latency buckets are accepted from the engine.
pub const MAX_LATENCY_BUCKETS: usize = 64;

impl CheckStats {
    /// Checks the shape: one more count than bounds, bounds strictly increasing, at most
    /// [`MAX_LATENCY_BUCKETS`]. The engine validates too; the ECU does not trust a newer one.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_bounds_us.len() > MAX_LATENCY_BUCKETS {
            return Err(format!("{} latency buckets", self.latency_bounds_us.len()));
        }
        if self.latency_counts.len() != self.latency_bounds_us.len() + 1 {
            return Err(format!(
                "{} latency counts for {} bounds",
                self.latency_counts.len(),
                self.latency_bounds_us.len()
            ));
        }
        if self.latency_bounds_us.windows(2).any(|w| w[0] >= w[1]) {
            return Err("latency bounds not strictly increasing".to_owned());
        }
        Ok(())
    }
}

/// The cluster and its nodes (`GET /v1/nodes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Cluster {
    /// The site (cluster name).
    pub site: String,
    /// The engine's version.
    pub version: u32,
    /// The data plane in use.
    pub dataplane: String,
    /// The nodes.
    pub nodes: Vec<Node>,
}

/// One node of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Node {
    /// The node's hostname.
    pub hostname: String,
    /// Its IPv4 address.
    pub ipv4: String,
    /// Its IPv6 address.
    pub ipv6: String,
    /// Whether this is the node the ECU runs on.
    pub is_local: bool,
}

/// An override in force (`GET /v1/overrides`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Override {
    /// `vserver`, `backend` or `destination`.
    pub kind: String,
    /// What it names.
    pub target: String,
    /// `default`, `enabled` or `disabled`.
    pub state: String,
    /// Who set it.
    pub set_by: String,
    /// UNIX milliseconds.
    pub set_at_ms: i64,
}

/// A saved cluster.pb version (`GET /v1/config/history`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Version {
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

/// The engine's answer to a reload, a cluster update or a rollback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Whether the configuration was applied.
    pub applied: bool,
    /// Human-readable summary.
    pub message: String,
    /// Every error when it was refused.
    pub errors: Vec<String>,
}

/// `GET /v1/trace`: which vserver, service and destination a flow gets (see `seesaw trace`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowTrace {
    /// A configured service matches.
    pub matched: bool,
    /// The vserver.
    pub vserver: String,
    /// The service.
    pub service: String,
    /// Its scheduler.
    pub scheduler: String,
    /// The destination a new flow would get (empty: not predictable).
    pub predicted: String,
    /// Its backend host.
    pub predicted_backend: String,
    /// How the plane decides.
    pub how: String,
    /// The live flow's destination (empty: none).
    pub flow: String,
    /// Its state.
    pub flow_state: String,
    /// Destinations that take new flows.
    pub eligible: Vec<String>,
    /// Those that do not, and why.
    pub excluded: Vec<ExcludedDestination>,
    /// The plane's kind.
    pub plane: String,
    /// Anything else.
    pub notes: Vec<String>,
}

/// A destination that takes no new flows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExcludedDestination {
    /// Its name.
    pub destination: String,
    /// Its backend host.
    pub backend: String,
    /// Why.
    pub why: String,
}

/// What a change preview is of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreviewOf {
    /// A complete new cluster.pb text.
    Text(String),
    /// Re-reading cluster.pb from disk.
    Reload,
    /// Restoring a history version.
    Rollback(u64),
}

/// Names added, removed and changed.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Changes {
    /// New.
    pub added: Vec<String>,
    /// Gone.
    pub removed: Vec<String>,
    /// Changed.
    pub changed: Vec<String>,
}

/// A consistent-hash service and the share of its flows a change would move.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FlowsMoved {
    /// The service.
    pub service: String,
    /// 0..1.
    pub share: f64,
}

/// What a change would do (nothing applied), or why it would be refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preview {
    /// Vservers by name.
    pub vservers: Changes,
    /// Data-plane services.
    pub services: Changes,
    /// Destinations (`<service> <ip:port>`).
    pub destinations: Changes,
    /// `mh` services present before and after.
    pub flows_moved: Vec<FlowsMoved>,
    /// Why the change would be refused (empty: it would be applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// What an override names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideKind {
    /// A vserver by name.
    Vserver,
    /// A backend by hostname, in every vserver.
    Backend,
    /// One destination, `<vserver>/<ip>:<port>/<proto>`.
    Destination,
}

/// The state an override sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OverrideState {
    /// Follow the configuration.
    Default,
    /// Force enabled.
    Enabled,
    /// Force disabled.
    Disabled,
}

// === impl Service ===

impl Service {
    /// The service's display key, `127.0.0.1:8080/TCP` or `[2001:db8::1]:53/UDP`, as Seesaw prints
    /// services; also the `service` label of the metrics.
    pub fn key(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}/{}", self.address, self.port, self.protocol)
        } else {
            format!("{}:{}/{}", self.address, self.port, self.protocol)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(address: &str) -> Service {
        Service {
            address: address.into(),
            protocol: "TCP".into(),
            port: 8080,
            scheduler: "rr".into(),
            mode: "NAT".into(),
            healthy: true,
            active: true,
            not_applied: String::new(),
            table_hash: String::new(),
            destinations: Vec::new(),
        }
    }

    #[test]
    fn service_keys() {
        assert_eq!(service("127.0.0.1").key(), "127.0.0.1:8080/TCP");
        assert_eq!(service("2001:db8::1").key(), "[2001:db8::1]:8080/TCP");
    }
}
