//! Domain types of a check and of what is reported about it. The engine's protobuf messages are
//! converted into these at the edge (`engine_link`), so the scheduler and the probers never see
//! proto types.

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use hyper::{Method, Uri};

use crate::state::Thresholds;

/// Probe interval when the engine sends 0.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
/// Probe timeout when the engine sends 0.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// A check's id, stable across engine restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckId(pub u64);

impl fmt::Display for CheckId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Everything needed to run one check.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckSpec {
    /// Stable id.
    pub id: CheckId,
    /// Time between two probe starts (never zero).
    pub interval: Duration,
    /// Bound on one probe (never zero).
    pub timeout: Duration,
    /// Rise and retries.
    pub thresholds: Thresholds,
    /// Human-readable, for logs.
    pub description: String,
    /// What one probe does.
    pub probe: ProbeSpec,
}

/// What one probe does.
#[derive(Debug, Clone, PartialEq)]
pub enum ProbeSpec {
    /// Connect, optionally send and expect a prefix.
    Tcp(TcpProbe),
    /// One HTTP/1.1 request on a fresh connection.
    Http(HttpProbe),
    /// A kind this process does not implement yet: always unhealthy, said so in the message.
    Unsupported {
        /// The proto name of the kind, e.g. `ICMP`.
        kind: &'static str,
    },
    /// The engine sent something unusable (bad address, port or method): always unhealthy.
    Invalid {
        /// Why, for the result message.
        reason: String,
    },
}

/// A TCP check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpProbe {
    /// Where to connect.
    pub addr: SocketAddr,
    /// Written after connecting, if not empty.
    pub send: Vec<u8>,
    /// If not empty, the first `receive.len()` bytes read must equal it.
    pub receive: Vec<u8>,
}

/// An HTTP check.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpProbe {
    /// Where to connect; also the `Host` header.
    pub addr: SocketAddr,
    /// Request method.
    pub method: Method,
    /// Request target (path and query).
    pub path: Uri,
    /// Expected status code.
    pub code: u16,
    /// If not empty, the body must start with it.
    pub receive: Vec<u8>,
}

/// One probe's verdict, before thresholds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeOutcome {
    /// Whether this probe passed.
    pub success: bool,
    /// What happened, e.g. `tcp connect 127.0.0.2:8080: connection refused`.
    pub message: String,
}

impl ProbeOutcome {
    /// A passing probe.
    pub fn pass(message: impl Into<String>) -> Self {
        Self {
            success: true,
            message: message.into(),
        }
    }

    /// A failing probe.
    pub fn fail(message: impl Into<String>) -> Self {
        Self {
            success: false,
            message: message.into(),
        }
    }
}

/// A check's state as reported to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckResult {
    /// Which check.
    pub id: CheckId,
    /// Healthy or Unhealthy (Unknown is never reported).
    pub healthy: bool,
    /// The message of the probe that decided it.
    pub message: String,
    /// When that probe finished, UNIX milliseconds.
    pub checked_at_ms: i64,
}

/// One report to the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// The results, at most one per id.
    pub results: Vec<CheckResult>,
    /// True when `results` is the state of every check that has one (a resync).
    pub full: bool,
}

// === impl ProbeSpec ===

impl ProbeSpec {
    /// Names the probe in messages, e.g. `tcp 127.0.0.1:80`.
    pub fn label(&self) -> String {
        match self {
            Self::Tcp(p) => format!("tcp {}", p.addr),
            Self::Http(p) => format!("http {}", p.addr),
            Self::Unsupported { kind } => format!("check kind {kind}"),
            Self::Invalid { .. } => "invalid check".to_owned(),
        }
    }
}
