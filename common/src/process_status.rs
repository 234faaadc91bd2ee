//! The watchdog's status file (`<run-dir>/watchdog/status.json`) as both ends see it: the
//! watchdog writes it on every change, the ECU reads it on each scrape. One declaration of the
//! format (version 1), so the writer and the reader cannot drift apart; what the fields mean,
//! and why a file, is in the watchdog's `status` module.

use serde::{Deserialize, Serialize};

/// The whole file (version 1). Unknown fields are refused on reading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileV1 {
    /// Always 1.
    pub version: u32,
    /// The writing watchdog's pid.
    pub watchdog_pid: u32,
    /// When it wrote the file, UNIX milliseconds.
    pub written_at_ms: i64,
    /// One entry per service, in start order.
    pub services: Vec<ServiceV1>,
}

/// One supervised service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceV1 {
    /// The watchdog.cfg section name.
    pub name: String,
    /// The child's pid while it runs, else null.
    pub pid: Option<u32>,
    /// A child runs (exactly when `pid` is set).
    pub running: bool,
    /// The current run has sent READY=1.
    pub ready: bool,
    /// Starts after the first since the watchdog started.
    pub restarts: u64,
    /// The current run of failed exits (what the backoff uses).
    pub failures: u32,
    /// When the current run started, UNIX milliseconds, else null.
    pub since_ms: Option<i64>,
}
