//! The engine's status as one model: plain structs converted from the engine's proto messages
//! once (`From<pb::…>`) and serialised once (serde), so the `seesaw` shell's tables, its `-o json`
//! and the ECU's HTTP API show the same thing with the same names. The JSON shape is ours: it does
//! not change when a proto gains a field. Layout:
//!
//! - [`vserver`]: vservers, their services, destinations and health checks (`Vservers`);
//! - [`cluster`]: the cluster and its nodes, HA, the running config, saved versions, reload
//!   outcomes, overrides, VLANs and BGP neighbours;
//! - [`change`]: change previews and flow traces.
//!
//! A field the shell's text shows but the JSON never carried (the ECU's API shape, which its tests
//! and dashboard read) is in the model and marked `#[serde(skip)]`.
//!
//! Admission rule: what the engine reports, converted without decisions of a caller; views that
//! combine replies for one command (the shell's backend rows, say) stay with their caller.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod change;
pub mod cluster;
pub mod vserver;

pub use change::{Changes, ExcludedDestination, FlowTrace, FlowsMoved, Preview};
pub use cluster::{
    Attribute, BgpNeighbor, Cluster, ConfigStatus, EtcdStatus, HaStatus, Node, Outcome, Override,
    Version, Vlan,
};
pub use vserver::{Check, CheckStats, Destination, MAX_LATENCY_BUCKETS, Service, Vserver};
