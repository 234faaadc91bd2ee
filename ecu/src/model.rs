//! The ECU's view of the engine's state: the engine's status model (`seesaw_status`, converted
//! from the engine's protos in one place and shared with the `seesaw` shell) re-exported under
//! the names the API uses, plus what only the ECU asks for (previews of a given text, override
//! kinds and states as its JSON bodies name them).

pub use seesaw_status::{
    Attribute, Changes, Check, CheckStats, Cluster, ConfigStatus, Destination, EtcdStatus,
    ExcludedDestination, FlowTrace, FlowsMoved, HaStatus, MAX_LATENCY_BUCKETS, Node, Outcome,
    Override, Preview, Service, Version, Vserver,
};
use serde::Serialize;

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
