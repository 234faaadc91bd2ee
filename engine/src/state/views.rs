//! What the engine reports: check results and probe statistics, the HA view, and the per-vserver, service, destination and check views the shell, the ECU and metrics read.

use super::*;

/// The last result of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Passed.
    pub healthy: bool,
    /// What the prober said.
    pub message: String,
    /// When it ran.
    pub at: SystemTime,
}

/// Cumulative probe statistics of one check, as the healthcheck process last reported them
/// (carried with its results; zero again after that process restarts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeStats {
    /// Probes that passed.
    pub successes: u64,
    /// Probes that failed.
    pub failures: u64,
    /// Duration of the latest probe.
    pub last_latency: Duration,
    /// Sum of every probe's duration.
    pub latency_sum: Duration,
    /// Histogram upper bounds, microseconds, strictly increasing (shared between checks).
    pub bounds_us: Arc<[u64]>,
    /// Probes per bucket, not cumulative; one more entry than `bounds_us` (+Inf).
    pub counts: Vec<u64>,
}

/// The HA state the ha process reports, parsed at the API boundary (a state the engine does
/// not know is refused there, never taken for "not leader" inside).
pub use seesaw_proto::domain::HaState as HaRole;

/// HA status as reported by the ha process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HaView {
    /// The reported state.
    pub state: HaRole,
    /// Last transition.
    pub since: Option<SystemTime>,
    /// Transition count.
    pub transitions: u64,
    /// Adverts sent.
    pub adverts_sent: u64,
    /// Adverts received.
    pub adverts_received: u64,
    /// Datagrams the ha process dropped, by reason (`bad_mac`, `replay`, ...); non-zero only.
    pub adverts_rejected: BTreeMap<String, u64>,
    /// When the ha process last reported.
    pub last_update: Option<SystemTime>,
}

impl Default for HaView {
    fn default() -> Self {
        Self {
            state: HaRole::Unknown,
            since: None,
            transitions: 0,
            adverts_sent: 0,
            adverts_received: 0,
            adverts_rejected: BTreeMap::new(),
            last_update: None,
        }
    }
}

/// What the engine knows of a check's result (strings only on the wire and in views).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CheckState {
    /// No result reported yet.
    Unknown,
    /// The last result passed.
    Healthy,
    /// The last result failed.
    Unhealthy,
}

impl CheckState {
    /// The wire spelling (`healthy`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }
}

impl PartialEq<&str> for CheckState {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A check as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckView {
    /// Check name (`HTTP/8080_0`).
    pub name: String,
    /// Id.
    pub id: u64,
    /// What its last result says.
    pub state: CheckState,
    /// Last message.
    pub message: String,
    /// Probe statistics, once the healthcheck process reported them.
    pub stats: Option<Arc<ProbeStats>>,
}

/// A destination as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct DestView {
    /// Destination name.
    pub name: String,
    /// Backend hostname.
    pub backend: String,
    /// Address and port.
    pub dest: DestSpec,
    /// Enabled by config.
    pub enabled: bool,
    /// Healthy.
    pub healthy: bool,
    /// In the data plane.
    pub active: bool,
    /// Checks.
    pub checks: Vec<CheckView>,
    /// Counters.
    pub stats: DestStats,
    /// The override deciding `enabled`, if any.
    pub override_state: Option<OverrideState>,
}

/// A service as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceView {
    /// Identity.
    pub key: ServiceKey,
    /// The entry config (shared with the topology).
    pub entry: Arc<crate::model::Entry>,
    /// Enabled (its vserver runs).
    pub enabled: bool,
    /// Healthy per the watermarks.
    pub healthy: bool,
    /// In the data plane.
    pub active: bool,
    /// Why the data plane does not hold this service although it should (its last apply was
    /// refused); `None` when it does. Set by the loop, which knows what ncc confirmed.
    pub not_applied: Option<String>,
    /// Healthy share of in-service destinations.
    pub current_watermark: f32,
    /// Destinations.
    pub dests: Vec<DestView>,
    /// The plane's Maglev table fingerprint (mh on the proxy and nftables planes).
    pub table_hash: Option<u64>,
}

/// A vserver as shown to operators.
#[derive(Debug, Clone, PartialEq)]
pub struct VserverView {
    /// Name.
    pub name: String,
    /// Entry hostname.
    pub hostname: String,
    /// Runs on this node.
    pub enabled: bool,
    /// Enabled by config.
    pub config_enabled: bool,
    /// VIPs.
    pub vips: Vec<crate::model::Vip>,
    /// Services.
    pub services: Vec<ServiceView>,
    /// Warnings from the config.
    pub warnings: Vec<String>,
    /// The vserver override in force, if any.
    pub override_state: Option<OverrideState>,
}

/// The outcome of a reload attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// Applied as generation N.
    Applied(u64),
    /// Refused; the running config stays.
    Refused(Vec<String>),
    /// Nothing to apply (identical, or older than the running config); the reason says which.
    Unchanged(String),
}
