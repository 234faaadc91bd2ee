//! The watchdog's view of the processes it supervises, read from the status file it keeps in the
//! run directory (`<run-dir>/watchdog/status.json`, rewritten atomically on every change; format
//! in docs/ARCHITECTURE.md). The ECU reads it on each scrape: a file is the narrowest channel
//! from the watchdog (no socket, no API, nothing the watchdog must serve), and a process that is
//! down cannot answer for itself anyway.
//!
//! The file is the watchdog's (root's), but it is still parsed defensively: bounded size,
//! bounded count, names restricted to what watchdog.cfg allows, and a file left behind by a
//! watchdog that is gone is ignored.

use std::path::{Path, PathBuf};

use seesaw_common::process_status::FileV1;
use serde::Serialize;

/// Where the watchdog keeps the file, relative to the run directory.
pub const STATUS_FILE: &str = "watchdog/status.json";

/// Larger files are refused (a real one is well under 4 KiB).
const MAX_BYTES: u64 = 256 * 1024;
/// More services are refused.
const MAX_SERVICES: usize = 256;

/// The supervised processes (`GET /v1/processes`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Processes {
    /// The watchdog's pid.
    pub watchdog_pid: u32,
    /// When the watchdog wrote the file, UNIX milliseconds.
    pub written_at_ms: i64,
    /// One entry per service, in start order.
    pub services: Vec<Process>,
}

/// One supervised process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Process {
    /// The service name (`engine`, `ncc`, ...).
    pub name: String,
    /// Its pid while it runs.
    pub pid: Option<u32>,
    /// It runs and has reported READY.
    pub up: bool,
    /// Starts after the first one, since the watchdog started.
    pub restarts: u64,
    /// Consecutive failed runs (what the restart backoff is based on).
    pub failures: u32,
    /// When the current run started, UNIX milliseconds.
    pub since_ms: Option<i64>,
}

/// Why the status file was not used.
#[derive(Debug, thiserror::Error)]
pub enum ProcessStatusError {
    /// There is no file (no watchdog, or not yet written).
    #[error("no watchdog status at {0}")]
    Missing(PathBuf),
    /// The file could not be read.
    #[error("cannot read {path}: {cause}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        cause: std::io::Error,
    },
    /// The file is not a valid status file.
    #[error("invalid watchdog status {path}: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The watchdog that wrote the file is gone.
    #[error("watchdog status {path} is stale: pid {pid} is gone")]
    Stale {
        /// The file.
        path: PathBuf,
        /// The watchdog's pid in the file.
        pid: u32,
    },
}

/// Reads and validates the status file at `path`; a file whose watchdog is gone is `Stale`.
pub fn read(path: &Path) -> Result<Processes, ProcessStatusError> {
    let bytes = read_bounded(path)?;
    let processes = parse(&bytes).map_err(|why| ProcessStatusError::Invalid {
        path: path.to_owned(),
        why,
    })?;
    if !Path::new(&format!("/proc/{}", processes.watchdog_pid)).exists() {
        return Err(ProcessStatusError::Stale {
            path: path.to_owned(),
            pid: processes.watchdog_pid,
        });
    }
    Ok(processes)
}

fn read_bounded(path: &Path) -> Result<Vec<u8>, ProcessStatusError> {
    use std::io::Read;
    let read_err = |cause: std::io::Error| ProcessStatusError::Read {
        path: path.to_owned(),
        cause,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ProcessStatusError::Missing(path.to_owned()));
        }
        Err(e) => return Err(read_err(e)),
    };
    let mut bytes = Vec::new();
    file.take(MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_BYTES {
        return Err(ProcessStatusError::Invalid {
            path: path.to_owned(),
            why: format!("larger than {MAX_BYTES} bytes"),
        });
    }
    Ok(bytes)
}

/// Parses and validates the file's bytes (pure; fuzzed by `fuzz_targets/ecu_process_status.rs`).
pub fn parse(bytes: &[u8]) -> Result<Processes, String> {
    let file: FileV1 = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != 1 {
        return Err(format!("unsupported version {}", file.version));
    }
    if file.services.len() > MAX_SERVICES {
        return Err(format!(
            "{} services (at most {MAX_SERVICES})",
            file.services.len()
        ));
    }
    let mut services = Vec::with_capacity(file.services.len());
    for s in file.services {
        if !valid_name(&s.name) {
            return Err(format!("invalid service name {:?}", s.name));
        }
        if services.iter().any(|p: &Process| p.name == s.name) {
            return Err(format!("service {:?} listed twice", s.name));
        }
        if s.running != s.pid.is_some() {
            return Err(format!("service {:?}: running and pid disagree", s.name));
        }
        services.push(Process {
            name: s.name,
            pid: s.pid,
            up: s.running && s.ready,
            restarts: s.restarts,
            failures: s.failures,
            since_ms: s.since_ms,
        });
    }
    Ok(Processes {
        watchdog_pid: file.watchdog_pid,
        written_at_ms: file.written_at_ms,
        services,
    })
}

/// watchdog.cfg section names: letters, digits, `_`, `-`, `.`; at most 64 bytes.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"{"version":1,"watchdog_pid":1,"written_at_ms":1700000000000,
        "services":[
          {"name":"ncc","pid":10,"running":true,"ready":true,"restarts":0,"failures":0,"since_ms":1700000000000},
          {"name":"engine","pid":null,"running":false,"ready":false,"restarts":2,"failures":1,"since_ms":null}
        ]}"#;

    #[test]
    fn parses_the_watchdogs_file() {
        let p = parse(GOOD.as_bytes()).expect("valid");
        assert_eq!(p.watchdog_pid, 1);
        assert_eq!(
            p.services,
            [
                Process {
                    name: "ncc".into(),
                    pid: Some(10),
                    up: true,
                    restarts: 0,
                    failures: 0,
                    since_ms: Some(1_700_000_000_000),
                },
                Process {
                    name: "engine".into(),
                    pid: None,
                    up: false,
                    restarts: 2,
                    failures: 1,
                    since_ms: None,
                },
            ]
        );
    }

    #[test]
    fn hostile_files_are_refused() {
        let cases: &[(&str, &str)] = &[
            ("", "EOF"),
            ("[]", "expected struct"),
            ("{\"version\":1}", "missing field"),
            (
                &GOOD.replace("\"version\":1", "\"version\":2"),
                "unsupported version 2",
            ),
            (
                &GOOD.replace("\"ncc\"", "\"n\\\"cc\""),
                "invalid service name",
            ),
            (&GOOD.replace("\"ncc\"", "\"\""), "invalid service name"),
            (&GOOD.replace("\"ncc\"", "\"engine\""), "listed twice"),
            (
                &GOOD.replace("\"pid\":10", "\"pid\":null"),
                "running and pid disagree",
            ),
            (
                &GOOD.replace("\"restarts\":0", "\"restarts\":-1"),
                "invalid value",
            ),
            (
                &GOOD.replace("\"failures\":0", "\"extra\":0"),
                "unknown field",
            ),
            (
                &GOOD.replace("\"pid\":10", "\"pid\":99999999999"),
                "invalid value",
            ),
        ];
        for (text, want) in cases {
            let err = parse(text.as_bytes()).expect_err(text);
            assert!(err.contains(want), "{text}: {err}");
        }
        let many: Vec<String> = (0..=MAX_SERVICES)
            .map(|i| {
                format!(
                    r#"{{"name":"s{i}","pid":null,"running":false,"ready":false,"restarts":0,"failures":0,"since_ms":null}}"#
                )
            })
            .collect();
        let text = format!(
            r#"{{"version":1,"watchdog_pid":1,"written_at_ms":0,"services":[{}]}}"#,
            many.join(",")
        );
        assert!(
            parse(text.as_bytes())
                .expect_err("too many")
                .contains("services")
        );
    }

    #[test]
    fn missing_oversized_and_stale_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("status.json");
        assert!(matches!(read(&path), Err(ProcessStatusError::Missing(_))));
        std::fs::write(
            &path,
            vec![b' '; usize::try_from(MAX_BYTES).unwrap_or(0) + 1],
        )
        .expect("write");
        assert!(matches!(
            read(&path),
            Err(ProcessStatusError::Invalid { .. })
        ));
        // pid 1 always exists; a pid above the kernel's maximum never does.
        std::fs::write(&path, GOOD).expect("write");
        assert_eq!(read(&path).expect("live watchdog").services.len(), 2);
        std::fs::write(
            &path,
            GOOD.replace("\"watchdog_pid\":1", "\"watchdog_pid\":4294967295"),
        )
        .expect("write");
        assert!(matches!(
            read(&path),
            Err(ProcessStatusError::Stale {
                pid: 4_294_967_295,
                ..
            })
        ));
    }
}
