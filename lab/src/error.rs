//! The harness's error type: every way building a lab, running a process or waiting can fail.

use std::io;
use std::path::PathBuf;
use std::time::Duration;

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A helper command ran but exited unsuccessfully.
    #[error("`{cmd}` failed: {detail}")]
    Command {
        /// The command line.
        cmd: String,
        /// Exit status and stderr.
        detail: String,
    },
    /// A command could not be started at all.
    #[error("cannot run `{cmd}`: {source}")]
    Spawn {
        /// The command line.
        cmd: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A workspace binary has not been built.
    #[error("binary `{name}` not found at {}; build it first with `cargo build --workspace --bins`", path.display())]
    MissingBinary {
        /// The binary name.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// An address the test asked for is outside the documentation and loopback ranges.
    #[error(
        "address {addr} is outside the lab ranges (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 127.0.0.0/8)"
    )]
    AddressOutOfRange {
        /// The offending address or network.
        addr: String,
    },
    /// An address does not parse.
    #[error("invalid address `{addr}`: {reason}")]
    BadAddress {
        /// The text given.
        addr: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A node name was used that the lab does not have.
    #[error("unknown node `{0}`")]
    UnknownNode(String),
    /// A node name was declared twice, or is not a short lower-case word.
    #[error("invalid node name `{0}` (duplicate, empty, longer than 10 or not [a-z0-9])")]
    BadNodeName(String),
    /// A bounded wait ran out.
    #[error("timed out after {within:?} waiting for {what}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// The bound.
        within: Duration,
    },
    /// No port was free on every address a suite needs.
    #[error("no port is free on all of {0}")]
    NoFreePort(String),
    /// A file-system or socket operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// Entering a network namespace failed.
    #[error("cannot enter network namespace {ns}: {source}")]
    Setns {
        /// The namespace name.
        ns: String,
        /// The cause.
        #[source]
        source: nix::Error,
    },
    /// Sending a signal failed.
    #[error("cannot signal pid {pid}: {source}")]
    Signal {
        /// The target.
        pid: i32,
        /// The cause.
        #[source]
        source: nix::Error,
    },
}

impl LabError {
    /// Wraps an I/O error with what was being attempted.
    pub(crate) fn io(what: impl Into<String>) -> impl FnOnce(io::Error) -> Self {
        let what = what.into();
        move |source| Self::Io { what, source }
    }
}
