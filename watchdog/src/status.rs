//! The status file: what the watchdog knows about its services, published for the ECU's
//! `/metrics` (`seesaw_process_up`, `seesaw_process_restarts_total`) as
//! `<run-dir>/watchdog/status.json`. It is rewritten on every change (a start, READY, an exit)
//! by writing a temporary file and renaming it over the old one, so a reader sees the old or
//! the new file, never a partial one; a clean stop removes it.
//!
//! Why a file: it is the narrowest channel out of a root process — nothing to serve, no socket to
//! secure, no request that could block the supervisor — and it stays readable while the process
//! it describes is down, which is when it matters. Format (version 1, declared once in
//! `seesaw_common::process_status`):
//!
//! ```json
//! {"version": 1, "watchdog_pid": 812, "written_at_ms": 1700000000000,
//!  "services": [{"name": "engine", "pid": 901, "running": true, "ready": true,
//!                "restarts": 1, "failures": 0, "since_ms": 1700000000000}]}
//! ```
//!
//! `restarts` counts starts after the first since the watchdog started; `failures` is the
//! current run of failed exits (what the backoff uses); `pid` and `since_ms` are null while the
//! service is down.

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use seesaw_common::process_status::{FileV1, ServiceV1};

/// What the watchdog knows about one service right now.
#[derive(Debug, Clone, Default)]
pub struct ServiceStatus {
    /// The child's pid while it runs.
    pub pid: Option<u32>,
    /// When the current run started.
    pub since: Option<DateTime<Local>>,
    /// Consecutive failed runs.
    pub failures: u32,
    /// The current run has sent READY=1.
    pub ready: bool,
    /// Some run has sent READY=1 since the watchdog started.
    pub ever_ready: bool,
    /// Starts after the first one since the watchdog started.
    pub restarts: u64,
}

/// The file name inside `<run-dir>/watchdog/`.
pub const FILE_NAME: &str = "status.json";

/// Renders the file's contents for `services` (name, status), in start order.
pub fn render(services: &[(&str, ServiceStatus)], now_ms: i64) -> String {
    let file = FileV1 {
        version: 1,
        watchdog_pid: std::process::id(),
        written_at_ms: now_ms,
        services: services
            .iter()
            .map(|(name, s)| ServiceV1 {
                name: (*name).to_owned(),
                pid: s.pid,
                running: s.pid.is_some(),
                ready: s.ready,
                restarts: s.restarts,
                failures: s.failures,
                since_ms: s.since.map(|t| t.timestamp_millis()),
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&file).unwrap_or_else(|e| {
        // Only strings and numbers: serialising cannot fail; say so if it ever does.
        format!("{{\"error\": \"{e}\"}}")
    });
    text.push('\n');
    text
}

/// Writes the status file atomically (temporary file in the same directory, then rename),
/// readable by everyone (it holds nothing secret; the ECU may run as another user).
#[derive(Debug)]
pub struct StatusWriter {
    path: PathBuf,
    tmp: PathBuf,
    /// The last write failed (logged once until a write succeeds again).
    failing: bool,
}

impl StatusWriter {
    /// A writer for `<dir>/status.json`.
    pub fn new(dir: &Path) -> Self {
        Self {
            path: dir.join(FILE_NAME),
            tmp: dir.join(format!(".{FILE_NAME}.tmp")),
            failing: false,
        }
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Replaces the file with `text`; failures are logged (once per failing streak), not fatal:
    /// supervision matters more than its report.
    pub fn write(&mut self, text: &str) {
        match self.try_write(text) {
            Ok(()) => self.failing = false,
            Err(e) => {
                if !self.failing {
                    tracing::warn!(path = %self.path.display(), error = %e, "cannot write the status file");
                }
                self.failing = true;
            }
        }
    }

    fn try_write(&self, text: &str) -> io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .open(&self.tmp)?;
        f.write_all(text.as_bytes())?;
        drop(f);
        std::fs::rename(&self.tmp, &self.path)
    }

    /// Removes the file (a clean stop: nothing is supervised any more).
    pub fn remove(&self) {
        for p in [&self.path, &self.tmp] {
            match std::fs::remove_file(p) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => {
                    tracing::warn!(path = %p.display(), error = %e, "cannot remove the status file")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_service_and_replaces_the_file_atomically() {
        let dir = tempfile::tempdir().expect("tempdir");
        let up = ServiceStatus {
            pid: Some(42),
            since: DateTime::from_timestamp_millis(1_700_000_000_123)
                .map(|t| t.with_timezone(&Local)),
            failures: 0,
            ready: true,
            ever_ready: true,
            restarts: 2,
        };
        let down = ServiceStatus {
            failures: 3,
            restarts: 3,
            ..ServiceStatus::default()
        };
        let text = render(&[("ncc", up), ("engine", down)], 5);
        let v: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(v["version"], 1);
        assert_eq!(v["written_at_ms"], 5);
        assert_eq!(v["watchdog_pid"], std::process::id());
        assert_eq!(
            v["services"][0],
            serde_json::json!({"name": "ncc", "pid": 42, "running": true, "ready": true,
                "restarts": 2, "failures": 0, "since_ms": 1_700_000_000_123_i64})
        );
        assert_eq!(
            v["services"][1],
            serde_json::json!({"name": "engine", "pid": null, "running": false, "ready": false,
                "restarts": 3, "failures": 3, "since_ms": null})
        );

        let mut w = StatusWriter::new(dir.path());
        w.write(&text);
        w.write("second\n");
        assert_eq!(std::fs::read_to_string(w.path()).expect("read"), "second\n");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("list")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, [FILE_NAME], "no temporary file is left behind");
        w.remove();
        assert!(!w.path().exists());
        // A directory that is gone: logged, not fatal.
        drop(dir);
        w.write("third\n");
        assert!(w.failing);
    }
}
