//! `seesaw_ha`: decides whether this node is the HA leader and tells the engine, which acts on it
//! (VIPs up on the leader, down elsewhere).
//!
//! Layout:
//! - [`advert`]: the VRRPv3-layout advertisement, its checksum and the receive checks (pure);
//! - [`auth`]: authenticated adverts (`[ha] auth_key_file`): keys, signer, verifier (pure, but
//!   for reading the key files);
//! - [`node`]: the sans-io state machine (`Node::handle(event, now) -> Vec<Action>`): single-node
//!   mode without a peer, Seesaw's master/backup protocol with one; it also owns the fetch/push
//!   schedule of the engine conversation;
//! - [`fence`]: the port to ncc's fence (the lease a LEADER holds on its master-only state);
//! - [`link`]: the port to the engine (`EngineLink`), its gRPC adapter and, for tests, a fake;
//! - [`transport`]: the port to the network (`Opener`/`Transport`), the raw-socket adapter and,
//!   for tests, an in-memory network;
//! - [`run`]: the runtime loop that drives a `Node` with tokio time;
//! - [`sentinel`]: the child process that resigns for a master whose ha process died.
#![forbid(unsafe_code)]

// The fakes are test hooks; a release binary must not be able to contain them.
#[cfg(all(feature = "testing", not(debug_assertions)))]
compile_error!("the `testing` feature is for debug builds (tests) only");

pub mod advert;
pub mod auth;
pub mod fence;
pub mod link;
pub mod node;
mod runtime;
pub mod sentinel;
pub mod transport;

pub use runtime::{RunConfig, run, run_with_sentinel};
