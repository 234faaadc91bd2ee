//! The Seesaw engine: owns the configuration and every decision. Layout:
//!
//! - [`config`]: `seesaw.cfg` and `cluster.pb` → validated [`model`] types (no side effects);
//! - [`model`]: the domain types of the cluster configuration;
#![forbid(unsafe_code)]

pub mod config;
pub mod model;
