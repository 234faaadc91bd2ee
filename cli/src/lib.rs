//! The `seesaw` binary's library: the operator shell and the one-command demo. Layout:
//!
//! - [`tree`]: the command table, unique-prefix parsing, `?` help and Tab completion;
//! - [`engine`]: what the shell needs from the engine ([`engine::EngineLink`]) over gRPC;
//! - [`view`]: the rows the shell derives from the engine's status model (`seesaw_status`);
//! - [`format`]: text rendering of the views (JSON comes from serde);
//! - [`shell`]: running commands, `-c` one-shot mode and the interactive loop;
//! - [`demo`] and [`demo_backend`]: `seesaw demo`, the whole system on loopback without root.
#![forbid(unsafe_code)]

pub mod demo;
pub mod demo_backend;
pub mod engine;
pub mod format;
pub mod progress;
pub mod shell;
pub mod trace;
pub mod tree;
pub mod view;
