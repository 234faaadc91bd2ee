//! The Seesaw engine: owns the configuration and every decision; performs no syscall that changes
//! the network (ncc does, on the engine's request). Layout:
//!
//! - [`config`]: `seesaw.cfg` and `cluster.pb` → validated [`model`] types (no side effects);
//! - [`model`]: the domain types of the cluster configuration;
//! - [`checks`]: config → services, destinations and stable-id health checks;
//! - [`state`]: the sans-io core: health aggregation, watermarks, the desired data-plane state;
//! - [`desired`]: what ncc is asked to hold;
//! - [`overrides`]: operator overrides (vserver, backend, destination) and who may set them;
//! - [`ncc_port`]: the `Ncc` port the engine drives (gRPC adapter and a stateful fake);
//! - [`server`]: the engine's gRPC API (converts to and from proto at this edge);
//! - [`core`]: the event loop tying them together (`run`).
#![forbid(unsafe_code)]

pub mod checks;
pub mod config;
pub mod core;
pub mod desired;
pub mod etcd;
pub mod events;
pub mod history;
pub mod machine;
pub mod model;
pub mod ncc_port;
pub mod overrides;
pub mod preview;
pub mod server;
pub mod source;
pub mod state;
pub mod sync;
pub mod trace;

pub use crate::core::run;
