//! `seesaw_watchdog`: starts the Seesaw processes in dependency order (each after its dependency
//! reports READY over the sd_notify protocol), restarts them with backoff, captures their output
//! into per-service log files, and stops them in reverse order on shutdown.
//!
//! Layout:
//! - [`config`]: `watchdog.cfg` parsing and validation (no side effects);
//! - [`policy`]: pure decisions: restart backoff and start order;
//! - [`spawn`]: the one audited spawner, and the crate's only `unsafe` (a `pre_exec` hook);
//! - [`caps`]: `capabilities =` parsing and the syscalls the spawner's hook makes for it;
//! - [`status`]: the status file (`<run-dir>/watchdog/status.json`) the ECU's metrics read;
//! - `supervisor`: the async orchestration behind [`run`].
#![deny(unsafe_code)]

pub mod caps;
pub mod config;
pub mod policy;
pub mod spawn;
pub mod status;
mod supervisor;

pub use config::{ConfigError, ConfigErrors, Identity, ServiceConfig, WatchdogConfig};
pub use supervisor::{RunContext, ServiceStatus, WatchdogError};

use tokio_util::sync::CancellationToken;

/// Supervises `config`'s services until `shutdown` is cancelled, then stops them (dependents
/// first) and returns once every child is reaped. Announces its own readiness once every
/// service has been ready.
///
/// Children outlive a killed watchdog; a watchdog started on the same run directory adopts the
/// ones still running instead of starting duplicates.
pub async fn run(
    config: WatchdogConfig,
    ctx: RunContext,
    shutdown: CancellationToken,
) -> Result<(), WatchdogError> {
    supervisor::supervise(config, ctx, shutdown).await
}
