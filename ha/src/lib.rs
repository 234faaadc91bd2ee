//! `seesaw_ha`: decides whether this node is the HA leader and tells the engine, which acts on it
//! (VIPs up on the leader, down elsewhere).
//!
//! Layout:
//! - [`node`]: the sans-io state machine (`Node::handle(event, now) -> Vec<Action>`), which also
//!   owns the fetch/push schedule;
//! - [`link`]: the port to the engine (`EngineLink`), its gRPC adapter and, for tests, a fake;
//! - [`run`]: the runtime loop that drives a `Node` with tokio time.
//!
//! This build runs **single-node mode** only: with no peer configured the node is the leader while
//! HA is enabled. The VRRP-style peer protocol is a later step; a config naming a peer keeps the
//! node in BACKUP, with a warning in the log.
#![forbid(unsafe_code)]

// The fakes are test hooks; a release binary must not be able to contain them.
#[cfg(all(feature = "testing", not(debug_assertions)))]
compile_error!("the `testing` feature is for debug builds (tests) only");

pub mod link;
pub mod node;
mod runtime;

pub use runtime::{RunConfig, run};
