//! Vservers, their services, destinations and health checks, as the engine's `Vservers` call
//! reports them (`GET /v1/vservers`, `show vservers`).

use seesaw_proto::engine as pb;
use serde::Serialize;

/// A virtual server.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Vserver {
    /// The vserver name from cluster.pb.
    pub name: String,
    /// The VIP's fqdn.
    pub hostname: String,
    /// Whether the vserver is enabled (config and overrides combined).
    pub enabled: bool,
    /// The state the config asks for (the shell's `Status` line; not in the JSON).
    #[serde(skip)]
    pub config_enabled: bool,
    /// `enabled` or `disabled` when an override applies, else empty.
    pub override_state: String,
    /// Its VIPs.
    pub vips: Vec<String>,
    /// One entry per (VIP, port, protocol).
    pub services: Vec<Service>,
    /// The vserver's config warnings.
    pub warnings: Vec<String>,
}

/// One service of a vserver (VIP, protocol, port).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Service {
    /// The VIP.
    pub address: String,
    /// `TCP` or `UDP` (upper case whatever the engine's spelling, so a metric label keyed on it
    /// is stable).
    pub protocol: String,
    /// The port.
    pub port: u32,
    /// The scheduler (`rr`, `wlc`, ...).
    pub scheduler: String,
    /// The forwarding mode (`NAT`, `DSR`, `TUN`).
    pub mode: String,
    /// Persistence in seconds, 0 for none (the shell's text; not in the JSON).
    #[serde(skip)]
    pub persistence: u32,
    /// One-packet scheduling (UDP; the shell's text; not in the JSON).
    #[serde(skip)]
    pub one_packet: bool,
    /// Whether the service is enabled (the shell's text; not in the JSON).
    #[serde(skip)]
    pub enabled: bool,
    /// Whether enough destinations are healthy.
    pub healthy: bool,
    /// Whether the service is programmed in the data plane.
    pub active: bool,
    /// Why the data plane does not hold it although it should (empty: it does).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub not_applied: String,
    /// The data plane's Maglev table fingerprint (mh on the proxy and nftables planes): equal on
    /// nodes that send every flow to the same backend.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub table_hash: String,
    /// Low watermark (the shell's text; not in the JSON).
    #[serde(skip)]
    pub low_watermark: f32,
    /// High watermark (the shell's text; not in the JSON).
    #[serde(skip)]
    pub high_watermark: f32,
    /// Current share of healthy destinations (the shell's text; not in the JSON).
    #[serde(skip)]
    pub current_watermark: f32,
    /// Its backends.
    pub destinations: Vec<Destination>,
}

/// A backend of a service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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

/// A health check of a destination.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CheckStats {
    /// Probes that passed.
    pub successes: u64,
    /// Probes that failed.
    pub failures: u64,
    /// Duration of the latest probe, microseconds.
    pub last_latency_us: u64,
    /// Sum of every probe's duration, microseconds.
    pub latency_sum_us: u64,
    /// Histogram upper bounds, microseconds, strictly increasing (both histogram fields empty when
    /// the engine sent none or one of a bad shape: see [`CheckStats::validate`]).
    pub latency_bounds_us: Vec<u64>,
    /// Probes per bucket (not cumulative); the extra last entry counts the slower rest.
    pub latency_counts: Vec<u64>,
}

/// At most this many latency buckets are accepted from the engine.
pub const MAX_LATENCY_BUCKETS: usize = 64;

// === impl Service ===

impl Service {
    /// The service's display key, `127.0.0.1:8080/TCP` or `[2001:db8::1]:53/UDP`, as Seesaw prints
    /// services; also the `service` label of the ECU's metrics.
    pub fn key(&self) -> String {
        if self.address.contains(':') {
            format!("[{}]:{}/{}", self.address, self.port, self.protocol)
        } else {
            format!("{}:{}/{}", self.address, self.port, self.protocol)
        }
    }
}

// === impl Check ===

impl Check {
    /// Probes that passed so far (before rise/retries); 0 until reported.
    pub fn successes(&self) -> u64 {
        self.stats.as_ref().map_or(0, |s| s.successes)
    }

    /// Probes that failed so far; 0 until reported.
    pub fn failures(&self) -> u64 {
        self.stats.as_ref().map_or(0, |s| s.failures)
    }

    /// How long the latest probe took, microseconds; `None` before the first probe is reported.
    pub fn last_latency_us(&self) -> Option<u64> {
        self.stats
            .as_ref()
            .filter(|s| s.successes + s.failures > 0)
            .map(|s| s.last_latency_us)
    }
}

// === impl CheckStats ===

impl CheckStats {
    /// Checks the shape: one more count than bounds, bounds strictly increasing, at most
    /// [`MAX_LATENCY_BUCKETS`]. The engine validates too; its readers do not trust a newer one.
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

// === conversions from the protos ===

impl From<pb::VserverStatus> for Vserver {
    fn from(v: pb::VserverStatus) -> Self {
        Self {
            name: v.name,
            hostname: v.hostname,
            enabled: v.enabled,
            config_enabled: v.config_enabled,
            override_state: v.override_state,
            vips: v.vips,
            services: v.services.into_iter().map(Service::from).collect(),
            warnings: v.warnings,
        }
    }
}

impl From<pb::ServiceStatus> for Service {
    fn from(s: pb::ServiceStatus) -> Self {
        Self {
            address: s.address,
            protocol: s.protocol.to_ascii_uppercase(),
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
            destinations: s.destinations.into_iter().map(Destination::from).collect(),
        }
    }
}

impl From<pb::DestinationStatus> for Destination {
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
            checks: d.checks.into_iter().map(Check::from).collect(),
            active_conns: d.active_conns,
            total_conns: d.total_conns,
            bytes_in: d.bytes_in,
            bytes_out: d.bytes_out,
        }
    }
}

impl From<pb::CheckStatus> for Check {
    fn from(c: pb::CheckStatus) -> Self {
        let id = c.id;
        Self {
            name: c.name,
            id,
            state: c.state,
            message: c.message,
            stats: c.stats.map(|s| {
                let mut stats = CheckStats::from(s);
                if let Err(e) = stats.validate() {
                    // The counters stand on their own; a histogram of a bad shape is not passed on.
                    if !stats.latency_counts.is_empty() || !stats.latency_bounds_us.is_empty() {
                        tracing::debug!(check = id, "latency histogram ignored: {e}");
                    }
                    stats.latency_bounds_us.clear();
                    stats.latency_counts.clear();
                }
                stats
            }),
        }
    }
}

impl From<pb::ProbeStats> for CheckStats {
    fn from(s: pb::ProbeStats) -> Self {
        Self {
            successes: s.successes,
            failures: s.failures,
            last_latency_us: s.last_latency_us,
            latency_sum_us: s.latency_sum_us,
            latency_bounds_us: s.latency_bounds_us,
            latency_counts: s.latency_counts,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_keys() {
        let service = |address: &str| Service {
            address: address.into(),
            protocol: "TCP".into(),
            port: 8080,
            ..Default::default()
        };
        assert_eq!(service("127.0.0.1").key(), "127.0.0.1:8080/TCP");
        assert_eq!(service("2001:db8::1").key(), "[2001:db8::1]:8080/TCP");
    }

    #[test]
    fn vserver_conversion_keeps_every_field() {
        let v = Vserver::from(pb::VserverStatus {
            name: "web".into(),
            enabled: true,
            config_enabled: true,
            vips: vec!["127.0.0.1".into()],
            services: vec![pb::ServiceStatus {
                address: "127.0.0.1".into(),
                protocol: "tcp".into(),
                port: 8080,
                scheduler: "wrr".into(),
                mode: "NAT".into(),
                persistence: 300,
                healthy: true,
                active: true,
                current_watermark: 0.5,
                destinations: vec![pb::DestinationStatus {
                    name: "be1".into(),
                    address: "127.0.0.2".into(),
                    port: 80,
                    weight: 3,
                    healthy: true,
                    active: true,
                    active_conns: 4,
                    total_conns: 5,
                    bytes_in: 6,
                    bytes_out: 7,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(v.config_enabled);
        let s = &v.services[0];
        assert_eq!(
            (
                s.key(),
                s.scheduler.as_str(),
                s.persistence,
                s.current_watermark
            ),
            ("127.0.0.1:8080/TCP".into(), "wrr", 300, 0.5)
        );
        let d = &s.destinations[0];
        assert_eq!(
            (
                d.weight,
                d.active_conns,
                d.total_conns,
                d.bytes_in,
                d.bytes_out
            ),
            (3, 4, 5, 6, 7)
        );
    }

    #[test]
    fn a_histogram_of_a_bad_shape_is_dropped_and_the_counters_kept() {
        let check = |bounds: Vec<u64>, counts: Vec<u64>| {
            Check::from(pb::CheckStatus {
                id: 7,
                stats: Some(pb::ProbeStats {
                    successes: 2,
                    failures: 1,
                    last_latency_us: 900,
                    latency_bounds_us: bounds,
                    latency_counts: counts,
                    ..Default::default()
                }),
                ..Default::default()
            })
        };
        let good = check(vec![1_000, 5_000], vec![2, 1, 0]);
        assert_eq!(
            (good.successes(), good.failures(), good.last_latency_us()),
            (2, 1, Some(900))
        );
        assert!(good.stats.as_ref().is_some_and(|s| s.validate().is_ok()));
        let bad = check(vec![5_000, 1_000], vec![2, 1, 0]);
        assert_eq!((bad.successes(), bad.last_latency_us()), (2, Some(900)));
        let stats = bad.stats.expect("counters kept");
        assert!(stats.latency_bounds_us.is_empty() && stats.latency_counts.is_empty());
        assert_eq!(Check::default().last_latency_us(), None);
    }
}
