//! Domain-free helpers every Seesaw process uses. Layout:
//!
//! - [`args`]: the flags every daemon takes (`--run-dir`, `--config-dir`, `--log-dir`);
//! - [`paths`]: where sockets live under the run directory;
//! - [`uds`]: binding a Unix socket exclusively (live owner ⇒ refuse, stale file ⇒ remove),
//!   serving tonic on it, and connecting to it;
//! - [`peer`]: who is calling, from `SO_PEERCRED`, never from what the client claims;
//! - [`signal`]: SIGTERM/SIGINT/SIGQUIT → a `CancellationToken`, SIGUSR1 → a state-dump request;
//! - [`logging`]: tracing initialisation;
//! - [`ready`]: readiness notification (the sd_notify protocol, also used by our watchdog);
//! - [`exit`]: process exit codes;
//! - [`files`]: private modes (umask 027, 0640 files), atomic writes keeping a file's group, and a
//!   socket's owner, group and mode kept across restarts, and secret files (owner-only keys);
//! - [`lease`]: the 12-byte lease datagram one process renews a lease with on another's socket;
//! - [`goconf`]: INI files read as Go's goconf reads them (`seesaw.cfg`);
//! - [`text`]: control characters that must not reach a log line or a file name;
//! - [`process_status`]: the watchdog's status file, as the watchdog writes and the ECU reads it.
//!
//! Admission rule: nothing here knows what a load balancer is.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod args;
pub mod exit;
pub mod files;
pub mod goconf;
pub mod lease;
pub mod logging;
pub mod maglev;
pub mod paths;
pub mod peer;
pub mod pidfile;
pub mod plane;
pub mod process_status;
pub mod ready;
pub mod signal;
pub mod text;
pub mod uds;

/// The version of this build, as `seesaw <version> (<profile>)`.
pub fn build_info() -> String {
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    format!("seesaw {} ({profile})", env!("CARGO_PKG_VERSION"))
}

/// The runtime `builder` builds (with every driver enabled), or, when it cannot start, the error
/// logged and [`exit::OSERR`] to leave with.
pub fn runtime_or_exit(
    builder: &mut tokio::runtime::Builder,
) -> Result<tokio::runtime::Runtime, std::process::ExitCode> {
    builder.enable_all().build().map_err(|e| {
        tracing::error!(error = %e, "cannot start the tokio runtime");
        std::process::ExitCode::from(exit::OSERR)
    })
}
