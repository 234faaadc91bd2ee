//! What the engine's loop is told (`Event`, with the replies it sends back) and what it publishes
//! after every event (`Snapshot`, read by the API and peer sync). Its own module, below the loop
//! (`core`) and its readers (`server`, `sync`), so none of them imports another in a circle.

use std::time::SystemTime;

use tokio::sync::oneshot;

use crate::checks::CheckSpec;
use crate::model::Node;
use crate::overrides::{Caller, OverrideKind, OverrideState};
use crate::state::{CheckResult, HaView, OverrideError, ProbeStats, ReloadOutcome, VserverView};

/// An edit of cluster.pb, as asked and as carried to where it is saved (the config directory or
/// etcd).
#[derive(Debug)]
pub struct Edit {
    /// The new cluster.pb.
    pub text: Vec<u8>,
    /// Author, for the history.
    pub who: String,
    /// What changed, for the history.
    pub what: String,
    /// The version the edit started from (`ClusterText.revision`: the content tag, or the etcd
    /// revision); 0: whatever runs now.
    pub base: u64,
    /// The outcome.
    pub reply: oneshot::Sender<ReloadReply>,
}

/// A rollback to a saved version: a history id, or with etcd the revision that wrote it.
#[derive(Debug)]
pub struct Rollback {
    /// The version.
    pub id: u64,
    /// Author.
    pub who: String,
    /// The outcome.
    pub reply: oneshot::Sender<ReloadReply>,
}

/// Everything that can happen to the engine.
#[derive(Debug)]
pub enum Event {
    /// Re-read the config files; the reply says whether they were applied.
    Reload(oneshot::Sender<ReloadReply>),
    /// Check results from the healthcheck process, and the probe statistics that came with them.
    Health(Vec<(u64, CheckResult)>, Vec<(u64, ProbeStats)>),
    /// A status report from the ha process; answered, once the data plane reflects it, with
    /// whether the operator asked for a failover.
    Ha(HaView, Option<i32>, oneshot::Sender<bool>),
    /// The ha process that reported with this pid exited (seen through a pidfd): HA is UNKNOWN
    /// at once, instead of after [`crate::state::ha::HA_TIMEOUT`] without reports.
    HaGone(i32),
    /// The operator asks the master to hand over; the reply is the message or why not.
    Failover(oneshot::Sender<Result<String, String>>),
    /// `show bgp neighbors`: the speaker's neighbours and announced routes, or why not.
    BgpNeighbors(oneshot::Sender<BgpNeighborsReply>),
    /// Replace cluster.pb with new text (validated first), record a history version, apply.
    UpdateCluster(Edit),
    /// Restore a saved version byte for byte (as a new version) and apply it.
    Rollback(Rollback),
    /// The master's overrides, fetched by peer sync (mirrored while this node is the backup).
    PeerOverrides(Vec<crate::overrides::PeerOverride>),
    /// Set an override; the reply is the operator message or why it was refused.
    Override {
        /// Vserver, backend or destination.
        kind: OverrideKind,
        /// Its name.
        target: String,
        /// The new state.
        state: OverrideState,
        /// Who asks.
        caller: Caller,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<String, OverrideError>>,
    },
    /// `seesaw trace`: ask the data plane about a flow.
    Trace(
        crate::trace::FlowQuery,
        oneshot::Sender<Result<crate::trace::PlaneTrace, String>>,
    ),
    /// What a validated candidate config would change (nothing is applied).
    Preview {
        /// The candidate.
        candidate: Box<crate::config::Loaded>,
        /// The preview.
        reply: oneshot::Sender<crate::preview::Preview>,
    },
    /// Read (empty) or set the config source; setting it triggers a reload.
    ConfigSource {
        /// `disk`, `server`, `peer`, `none`, or empty to read.
        source: String,
        /// (current, previous) or why the source was refused.
        reply: oneshot::Sender<Result<(String, String), String>>,
    },
}

/// The answer to a reload request.
#[derive(Debug, Clone)]
pub struct ReloadReply {
    /// Applied or refused.
    pub outcome: ReloadOutcome,
    /// Data-plane changes the new config caused (when the plane could be reached).
    pub changes: Option<usize>,
}

/// What the HA process is told.
#[derive(Debug, Clone, Default)]
pub struct HaConfigView {
    /// HA possible for this node.
    pub enabled: bool,
    /// This node's address.
    pub local_addr: String,
    /// The peer's address; empty when no peer is configured (single-node mode).
    pub remote_addr: String,
    /// VRRP priority.
    pub priority: u32,
    /// VRID.
    pub vrid: u32,
    /// `[ha] advert_interval_ms`.
    pub advert_interval_ms: u32,
    /// `[ha] preempt`.
    pub preempt: bool,
    /// `[ha] auth_key_file`; empty when adverts are not signed. ha reads the file itself.
    pub auth_key_file: String,
    /// `[ha] auth_accept_key_file`; empty when there is no second key.
    pub auth_accept_key_file: String,
}

/// A consistent view of the engine, published after every event; the API reads only this.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Site name.
    pub site: String,
    /// Nodes, with whether each is this one.
    pub nodes: Vec<(Node, bool)>,
    /// Data-plane kind reported by ncc (or configured).
    pub dataplane: String,
    /// Vservers.
    pub vservers: Vec<std::sync::Arc<VserverView>>,
    /// Checks for the healthcheck process (shared by every snapshot until the checks change).
    pub checks: std::sync::Arc<Vec<CheckSpec>>,
    /// HA status.
    pub ha: HaView,
    /// The last HA report (state, transitions) the data plane reflects, answered to the ha
    /// process: a repeat of it is answered on the API's fast path, anything else waits for the
    /// core (which answers once the plane reflects it).
    pub ha_reflected: Option<(crate::state::HaRole, u64)>,
    /// An operator's `failover` waits for the ha process's next report.
    pub failover_pending: bool,
    /// HA config.
    pub ha_config: HaConfigView,
    /// `metadata.last_updated`.
    pub last_updated: i64,
    /// Metadata attributes.
    pub attributes: Vec<(String, String)>,
    /// When the running config was loaded.
    pub loaded_at: SystemTime,
    /// Config generation.
    pub generation: u64,
    /// Refused reloads so far.
    pub reload_failures: u64,
    /// Errors of the last refused reload.
    pub last_reload_errors: Vec<String>,
    /// Cluster warnings.
    pub warnings: Vec<String>,
    /// The config source (`disk`, `server`, `peer`, `etcd`, `none`).
    pub source: String,
    /// With config source etcd: the key, the revision running, trouble.
    pub etcd: Option<crate::etcd::EtcdView>,
    /// The config's address pools.
    pub vip_pools: Vec<crate::model::VipPool>,
    /// Overrides in force: kind, target, state, who, when.
    pub overrides: Vec<(OverrideKind, String, OverrideState, String, SystemTime)>,
    /// VLANs with their backend and VIP counts (of the whole config, churn limit or not).
    pub vlans: Vec<crate::state::VlanView>,
}

/// When the ha process last reported, written by the API handler itself: a report that only
/// repeats what the loop knows is answered without the loop (which may be waiting on ncc), and
/// the loop reads its liveness from here, so a busy loop never mistakes a live ha for a silent
/// one.
#[derive(Debug, Default)]
pub struct HaPulse {
    /// UNIX milliseconds of the last report; 0: none yet.
    heard_ms: std::sync::atomic::AtomicI64,
}

impl HaPulse {
    /// A report arrived at `at`.
    pub fn heard(&self, at: SystemTime) {
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        self.heard_ms
            .fetch_max(ms, std::sync::atomic::Ordering::Relaxed);
    }

    /// When the last report arrived.
    pub fn last(&self) -> Option<SystemTime> {
        let ms = self.heard_ms.load(std::sync::atomic::Ordering::Relaxed);
        (ms > 0).then(|| {
            SystemTime::UNIX_EPOCH
                + std::time::Duration::from_millis(u64::try_from(ms).unwrap_or(0))
        })
    }
}

/// The answer to `show bgp neighbors`: neighbours and announced routes, or why not.
pub type BgpNeighborsReply =
    Result<(Vec<crate::state::BgpNeighborView>, Vec<String>), crate::ncc_port::NccError>;
