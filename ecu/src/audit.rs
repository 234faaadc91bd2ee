//! The audit log: one JSON line per write attempt through the API — who (user, role, how they
//! authenticated, from where), what (method, path, the action in words), and the outcome (HTTP
//! status and the engine's message) — appended and flushed before the answer is sent. Refused
//! attempts (401/403/400) are recorded too.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::Serialize;

/// One record.
#[derive(Debug, Clone, Serialize)]
pub struct Record {
    /// RFC 3339 UTC time.
    pub at: String,
    /// The user, or `-` when unauthenticated.
    pub user: String,
    /// The role, or `-`.
    pub role: String,
    /// `token`, `certificate` or `-`.
    pub via: String,
    /// The client's address.
    pub remote: String,
    /// HTTP method.
    pub method: String,
    /// Request path.
    pub path: String,
    /// What was asked, in words.
    pub action: String,
    /// HTTP status of the answer.
    pub status: u16,
    /// The engine's message or the reason for refusing.
    pub detail: String,
}

/// Why the audit log cannot be opened.
#[derive(Debug, thiserror::Error)]
#[error("cannot open the audit log {path}")]
pub struct AuditOpenError {
    /// The file.
    pub path: PathBuf,
    /// The cause.
    #[source]
    pub source: std::io::Error,
}

/// The log file.
#[derive(Debug)]
pub struct AuditLog {
    file: Mutex<File>,
    path: PathBuf,
}

impl AuditLog {
    /// Opens (creating, mode 0640) `path` for appending.
    pub fn open(path: &Path) -> Result<Self, AuditOpenError> {
        use std::os::unix::fs::OpenOptionsExt;
        let err = |source| AuditOpenError {
            path: path.to_owned(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(err)?;
        }
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640)
            .open(path)
            .map_err(err)?;
        Ok(Self {
            file: Mutex::new(file),
            path: path.to_owned(),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record. A write failure is logged, not fatal: the change already happened
    /// (or was refused) and the tracing log keeps a copy.
    pub fn record(&self, r: &Record) {
        let mut line = serde_json::to_string(r).unwrap_or_else(|_| "{}".to_owned());
        tracing::info!(target: "audit", "{line}");
        line.push('\n');
        let mut f = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if let Err(e) = f.write_all(line.as_bytes()).and_then(|()| f.flush()) {
            tracing::error!("cannot write the audit log {}: {e}", self.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_appended_as_json_lines() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("sub/audit.log");
        let log = AuditLog::open(&path).expect("opens");
        for status in [200, 403] {
            log.record(&Record {
                at: "now".into(),
                user: "alice".into(),
                role: "admin".into(),
                via: "token".into(),
                remote: "127.0.0.1:1".into(),
                method: "POST".into(),
                path: "/v1/config/reload".into(),
                action: "config reload".into(),
                status,
                detail: String::new(),
            });
        }
        let text = std::fs::read_to_string(&path).expect("written");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).expect("json line"))
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (lines[0]["user"].as_str(), lines[1]["status"].as_u64()),
            (Some("alice"), Some(403))
        );
    }
}
