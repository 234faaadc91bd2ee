//! Prometheus exposition: a fresh registry built from one snapshot of the engine per scrape, so
//! vservers and backends that disappear from the config disappear from the metrics too, and the
//! ECU keeps no counters of its own that could drift from the engine's.

use std::collections::HashSet;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::engine_view::ViewError;
use crate::model::{CheckStats, ConfigStatus, HaStatus, Vserver};
use crate::processes::Processes;

/// The content type of [`encode`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of [`encode_text`]'s output (Prometheus text format 0.0.4).
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The HA states exported one-hot in `seesaw_ha_state`, as the engine API lists them.
const HA_STATES: [&str; 6] = [
    "UNKNOWN", "BACKUP", "DISABLED", "ERROR", "LEADER", "SHUTDOWN",
];

/// What one scrape read from the engine.
#[derive(Debug, Clone)]
pub struct EngineSnapshot {
    /// Every vserver.
    pub vservers: Vec<Vserver>,
    /// The HA status.
    pub ha: HaStatus,
    /// The config status.
    pub config: ConfigStatus,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    vserver: String,
    service: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabels {
    vserver: String,
    service: String,
    hash: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DestinationLabels {
    vserver: String,
    service: String,
    destination: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VserverLabels {
    vserver: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    vserver: String,
    destination: String,
    check: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckResultLabels {
    vserver: String,
    destination: String,
    check: String,
    result: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProcessLabels {
    process: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BytesLabels {
    vserver: String,
    service: String,
    destination: String,
    direction: String,
}

/// Renders a scrape in the OpenMetrics text format; an engine error leaves only the `up` gauges
/// and the processes (from the watchdog's status file, when there is one).
pub fn encode(
    snapshot: &Result<EngineSnapshot, ViewError>,
    processes: Option<&Processes>,
) -> String {
    let registry = build(snapshot, processes);
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

/// Renders a scrape in the Prometheus text format 0.0.4, for clients that do not ask for
/// OpenMetrics (`promtool check metrics`, `curl`): the same samples, with counter families named
/// by their `_total` sample name and no `# EOF`.
pub fn encode_text(
    snapshot: &Result<EngineSnapshot, ViewError>,
    processes: Option<&Processes>,
) -> String {
    let open = encode(snapshot, processes);
    let counters: HashSet<&str> = open
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(open.len());
    for line in open.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let rewritten = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match rewritten {
            Some(l) => out.push_str(&l),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

fn build(snapshot: &Result<EngineSnapshot, ViewError>, processes: Option<&Processes>) -> Registry {
    let mut r = Registry::default();
    if let Some(p) = processes {
        register_processes(&mut r, p);
    }
    let (up, engine_up) = match snapshot {
        Ok(_) => (1, 1),
        // The engine answered, but with an error: it is up, Seesaw's state is still unknown.
        Err(ViewError::Rpc { .. }) => (0, 1),
        Err(ViewError::Unavailable(_)) => (0, 0),
    };
    register_gauge(
        &mut r,
        "seesaw_up",
        "Whether the ECU read Seesaw's state from the engine in this scrape",
        up,
    );
    register_gauge(
        &mut r,
        "seesaw_engine_up",
        "Whether the engine answered the ECU in this scrape",
        engine_up,
    );
    let Ok(EngineSnapshot {
        vservers,
        ha,
        config,
    }) = snapshot
    else {
        return r;
    };

    let ha_state = Family::<StateLabels, Gauge>::default();
    for state in HA_STATES {
        let value = i64::from(ha.state == state);
        ha_state
            .get_or_create(&StateLabels {
                state: state.into(),
            })
            .set(value);
    }
    if !HA_STATES.contains(&ha.state.as_str()) {
        // An engine newer than this ECU: still show the state rather than hide it.
        ha_state
            .get_or_create(&StateLabels {
                state: ha.state.clone(),
            })
            .set(1);
    }
    r.register(
        "seesaw_ha_state",
        "The HA state of this node (one-hot)",
        ha_state,
    );
    for (name, help, value) in [
        (
            "seesaw_ha_transitions",
            "HA state transitions since the ha process started",
            ha.transitions,
        ),
        (
            "seesaw_ha_adverts_sent",
            "VRRP advertisements sent by this node",
            ha.adverts_sent,
        ),
        (
            "seesaw_ha_adverts_received",
            "VRRP advertisements received from the peer",
            ha.adverts_received,
        ),
    ] {
        let c = Counter::<u64>::default();
        c.inc_by(value);
        r.register(name, help, c);
    }
    // By reason; a bad_mac, unauthenticated or unexpected_auth count that grows means the two
    // nodes' [ha] auth keys differ (or someone forges adverts).
    let rejected = Family::<ReasonLabels, Counter>::default();
    for (reason, n) in &ha.adverts_rejected {
        rejected
            .get_or_create(&ReasonLabels {
                reason: reason.clone(),
            })
            .inc_by(*n);
    }
    r.register(
        "seesaw_ha_adverts_rejected",
        "Advertisements the ha process dropped, by reason (bad_mac, replay, unauthenticated, \
         unexpected_auth, checksum, not_peer, ...)",
        rejected,
    );
    register_gauge(
        &mut r,
        "seesaw_ha_last_update_timestamp_seconds",
        "When the engine last heard from the ha process (UNIX seconds; 0: never)",
        ha.last_update_ms / 1000,
    );
    register_gauge(
        &mut r,
        "seesaw_config_loaded_timestamp_seconds",
        "When the running config was loaded (UNIX seconds)",
        config.loaded_at_ms / 1000,
    );
    register_gauge(
        &mut r,
        "seesaw_config_warnings",
        "Cluster warnings of the running config",
        i64::try_from(config.warnings.len()).unwrap_or(i64::MAX),
    );

    register_gauge(
        &mut r,
        "seesaw_config_generation",
        "Generation of the running config; increments on every applied config",
        saturating_i64(config.generation),
    );
    let failures = Counter::<u64>::default();
    failures.inc_by(config.reload_failures);
    r.register(
        "seesaw_config_reload_failures",
        "Config reloads refused since the engine started",
        failures,
    );
    if let Some(e) = &config.etcd {
        let up = Gauge::<i64>::default();
        up.set(i64::from(e.trouble.is_empty()));
        r.register(
            "seesaw_config_etcd_up",
            "1 while the config source etcd is followed, 0 while it cannot be (the node serves its last config)",
            up,
        );
        let revision = Gauge::<i64>::default();
        revision.set(saturating_i64(e.revision));
        r.register(
            "seesaw_config_etcd_revision",
            "The etcd revision of the running config",
            revision,
        );
    }

    let vserver_enabled = Family::<VserverLabels, Gauge>::default();
    let check_healthy = Family::<CheckLabels, Gauge>::default();
    let mut probes = CheckProbes::default();
    let service_healthy = Family::<ServiceLabels, Gauge>::default();
    let service_table = Family::<TableLabels, Gauge>::default();
    let dest_healthy = Family::<DestinationLabels, Gauge>::default();
    let dest_weight = Family::<DestinationLabels, Gauge>::default();
    let dest_active = Family::<DestinationLabels, Gauge>::default();
    let dest_conns = Family::<DestinationLabels, Counter>::default();
    let dest_bytes = Family::<BytesLabels, Counter>::default();
    for v in vservers {
        vserver_enabled
            .get_or_create(&VserverLabels {
                vserver: v.name.clone(),
            })
            .set(i64::from(v.enabled));
        for s in &v.services {
            let service = s.key();
            service_healthy
                .get_or_create(&ServiceLabels {
                    vserver: v.name.clone(),
                    service: service.clone(),
                })
                .set(i64::from(s.healthy));
            if !s.table_hash.is_empty() {
                service_table
                    .get_or_create(&TableLabels {
                        vserver: v.name.clone(),
                        service: service.clone(),
                        hash: s.table_hash.clone(),
                    })
                    .set(1);
            }
            for d in &s.destinations {
                let labels = DestinationLabels {
                    vserver: v.name.clone(),
                    service: service.clone(),
                    destination: d.name.clone(),
                };
                dest_healthy
                    .get_or_create(&labels)
                    .set(i64::from(d.healthy));
                for c in &d.checks {
                    // A check shared by several services is reported once per destination.
                    check_healthy
                        .get_or_create(&CheckLabels {
                            vserver: v.name.clone(),
                            destination: d.name.clone(),
                            check: c.name.clone(),
                        })
                        .set(i64::from(c.state.eq_ignore_ascii_case("healthy")));
                    if let Some(stats) = &c.stats {
                        probes.add(
                            CheckLabels {
                                vserver: v.name.clone(),
                                destination: d.name.clone(),
                                check: c.name.clone(),
                            },
                            stats,
                        );
                    }
                }
                dest_weight.get_or_create(&labels).set(i64::from(d.weight));
                dest_active
                    .get_or_create(&labels)
                    .set(saturating_i64(d.active_conns));
                dest_conns.get_or_create(&labels).inc_by(d.total_conns);
                for (direction, bytes) in [("in", d.bytes_in), ("out", d.bytes_out)] {
                    let labels = BytesLabels {
                        vserver: v.name.clone(),
                        service: service.clone(),
                        destination: d.name.clone(),
                        direction: direction.into(),
                    };
                    dest_bytes.get_or_create(&labels).inc_by(bytes);
                }
            }
        }
    }
    r.register(
        "seesaw_vserver_enabled",
        "Whether the vserver is enabled (config and overrides combined)",
        vserver_enabled,
    );
    r.register(
        "seesaw_check_healthy",
        "Whether the health check's last result was healthy",
        check_healthy,
    );
    probes.register(&mut r);
    r.register(
        "seesaw_service_healthy",
        "Whether the service has enough healthy destinations",
        service_healthy,
    );
    r.register(
        "seesaw_service_table",
        "The data plane's Maglev table fingerprint as the `hash` label (always 1; mh services on \
         the proxy and nftables planes): equal on nodes that send every flow to the same backend",
        service_table,
    );
    r.register(
        "seesaw_destination_healthy",
        "Whether the destination passes its health checks",
        dest_healthy,
    );
    r.register(
        "seesaw_destination_weight",
        "Scheduler weight of the destination",
        dest_weight,
    );
    r.register(
        "seesaw_destination_active_connections",
        "Connections open to the destination now",
        dest_active,
    );
    // Counters get their `_total` suffix from the encoder.
    r.register(
        "seesaw_destination_connections",
        "Connections scheduled to the destination",
        dest_conns,
    );
    r.register(
        "seesaw_destination_bytes",
        "Bytes forwarded for the destination, by direction (in: client to backend)",
        dest_bytes,
    );
    r
}

/// `seesaw_process_*`: one series per service the watchdog supervises.
fn register_processes(r: &mut Registry, p: &Processes) {
    let up = Family::<ProcessLabels, Gauge>::default();
    let restarts = Family::<ProcessLabels, Counter>::default();
    let started = Family::<ProcessLabels, Gauge>::default();
    for s in &p.services {
        let labels = ProcessLabels {
            process: s.name.clone(),
        };
        up.get_or_create(&labels).set(i64::from(s.up));
        restarts.get_or_create(&labels).inc_by(s.restarts);
        if let Some(ms) = s.since_ms {
            started.get_or_create(&labels).set(ms / 1000);
        }
    }
    r.register(
        "seesaw_process_up",
        "Whether the watchdog's process runs and has reported ready",
        up,
    );
    r.register(
        "seesaw_process_restarts",
        "Times the watchdog started the process again since the watchdog started",
        restarts,
    );
    r.register(
        "seesaw_process_start_time_seconds",
        "When the process's current run started (UNIX seconds; absent while it is down)",
        started,
    );
}

/// The probe series of every check: result counters, the latency histogram and the last
/// latency. A check shared by several services of a destination is counted once.
#[derive(Default)]
struct CheckProbes {
    seen: HashSet<CheckLabels>,
    results: Family<CheckResultLabels, Counter>,
    last: Family<CheckLabels, Gauge<f64, AtomicU64>>,
    histograms: Vec<(CheckLabels, ConstHistogram)>,
}

impl CheckProbes {
    fn add(&mut self, labels: CheckLabels, stats: &CheckStats) {
        // The engine view validated the shape; a bad one is skipped rather than half-rendered.
        if stats.validate().is_err() || !self.seen.insert(labels.clone()) {
            return;
        }
        for (result, n) in [("success", stats.successes), ("failure", stats.failures)] {
            self.results
                .get_or_create(&CheckResultLabels {
                    vserver: labels.vserver.clone(),
                    destination: labels.destination.clone(),
                    check: labels.check.clone(),
                    result: result.into(),
                })
                .inc_by(n);
        }
        self.last
            .get_or_create(&labels)
            .set(seconds(stats.last_latency_us));
        let buckets = stats
            .latency_bounds_us
            .iter()
            .map(|&b| seconds(b))
            .chain(std::iter::once(f64::INFINITY))
            .zip(stats.latency_counts.iter().copied())
            .collect();
        self.histograms.push((
            labels,
            ConstHistogram {
                sum: seconds(stats.latency_sum_us),
                count: stats
                    .latency_counts
                    .iter()
                    .fold(0u64, |a, &c| a.saturating_add(c)),
                buckets,
            },
        ));
    }

    fn register(self, r: &mut Registry) {
        r.register(
            "seesaw_check_probes",
            "Probes of the health check by result (before rise/retries thresholds)",
            self.results,
        );
        r.register(
            "seesaw_check_duration_seconds",
            "Duration of the health check's probes (a timed-out probe counts its timeout)",
            ConstHistogramFamily(self.histograms),
        );
        r.register(
            "seesaw_check_last_duration_seconds",
            "Duration of the health check's latest probe",
            self.last,
        );
    }
}

/// A histogram whose buckets are already counted (by the healthcheck process): per-bucket
/// counts, not cumulative, the last bound being +Inf.
#[derive(Debug)]
struct ConstHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

/// One [`ConstHistogram`] per label set, encoded like a `Family` of histograms.
#[derive(Debug)]
struct ConstHistogramFamily(Vec<(CheckLabels, ConstHistogram)>);

impl EncodeMetric for ConstHistogramFamily {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        for (labels, h) in &self.0 {
            encoder
                .encode_family(labels)?
                .encode_histogram::<NoLabelSet>(h.sum, h.count, &h.buckets, None)?;
        }
        Ok(())
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

fn seconds(us: u64) -> f64 {
    // Microseconds to seconds; exact for any latency a probe can have (< 2^53 µs).
    us as f64 / 1e6
}

fn register_gauge(r: &mut Registry, name: &str, help: &str, value: i64) {
    let g = Gauge::<i64>::default();
    g.set(value);
    r.register(name, help, g);
}

fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot of an engine with no vservers.
    fn no_vservers(ha: HaStatus, config: ConfigStatus) -> EngineSnapshot {
        EngineSnapshot {
            vservers: Vec::new(),
            ha,
            config,
        }
    }

    #[test]
    fn text_format_names_counters_by_their_samples() {
        let ha = HaStatus {
            state: "LEADER".into(),
            transitions: 3,
            ..HaStatus::default()
        };
        let config = ConfigStatus {
            generation: 1,
            reload_failures: 2,
            etcd: Some(crate::model::EtcdStatus {
                key: "/seesaw/t/cluster.pb".into(),
                revision: 42,
                trouble: "etcd is not reachable: refused".into(),
            }),
            ..ConfigStatus::default()
        };
        let text = encode_text(&Ok(no_vservers(ha, config)), None);
        assert!(
            text.contains(
                "# TYPE seesaw_ha_transitions_total counter\nseesaw_ha_transitions_total 3\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("# HELP seesaw_config_reload_failures_total "),
            "{text}"
        );
        assert!(text.contains("\nseesaw_config_etcd_up 0\n"), "{text}");
        assert!(
            text.contains("\nseesaw_config_etcd_revision 42\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE seesaw_up gauge\n"), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
    }

    #[test]
    fn unreachable_engine_reports_only_up_gauges() {
        let text = encode(&Err(ViewError::Unavailable("down".into())), None);
        assert!(text.contains("\nseesaw_up 0\n"), "{text}");
        assert!(text.contains("\nseesaw_engine_up 0\n"), "{text}");
        assert!(!text.contains("seesaw_ha_state"), "{text}");
        let text = encode(
            &Err(ViewError::Rpc {
                call: "Vservers",
                code: tonic::Code::Internal,
                message: "bug".into(),
            }),
            None,
        );
        assert!(text.contains("\nseesaw_up 0\n") && text.contains("\nseesaw_engine_up 1\n"));
    }

    #[test]
    fn unexpected_ha_state_is_still_exported() {
        let ha = HaStatus {
            state: "FUTURE".into(),
            ..HaStatus::default()
        };
        let config = ConfigStatus {
            generation: u64::MAX,
            ..ConfigStatus::default()
        };
        let text = encode(&Ok(no_vservers(ha, config)), None);
        assert!(
            text.contains("seesaw_ha_state{state=\"FUTURE\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("seesaw_ha_state{state=\"LEADER\"} 0"),
            "{text}"
        );
        assert!(
            text.contains(&format!("seesaw_config_generation {}", i64::MAX)),
            "{text}"
        );
    }
}
