//! The `seesaw_watchdog` binary: flags, logging, config, then [`seesaw_watchdog::run`].

use std::process::ExitCode;

use clap::Parser;
use seesaw_common::args::{CommonArgs, normalize_go_flags};
use seesaw_common::{exit, logging};
use seesaw_watchdog::{Identity, RunContext, WatchdogConfig, config};
use tokio_util::sync::CancellationToken;

/// Supervises the Seesaw processes listed in watchdog.cfg.
#[derive(Debug, Parser)]
#[command(name = "seesaw_watchdog", version)]
struct Flags {
    #[command(flatten)]
    common: CommonArgs,
    /// The services file (default: <config-dir>/watchdog.cfg).
    #[arg(long)]
    config: Option<std::path::PathBuf>,
    /// Only check the config: print `config OK` or every error, exit 0 or 78.
    #[arg(long)]
    validate: bool,
}

#[allow(clippy::print_stdout, reason = "--validate reports on stdout")]
fn main() -> ExitCode {
    seesaw_common::files::private_umask();
    let flags = match Flags::try_parse_from(normalize_go_flags(std::env::args())) {
        Ok(f) => f,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => return fail(&e, exit::USAGE),
    };
    let _log = match logging::init("seesaw_watchdog", flags.common.log_dir.as_deref()) {
        Ok(g) => g,
        Err(e @ logging::LoggingError::Filter(_)) => return fail(&e, exit::USAGE),
        Err(e) => return fail(&e, exit::OSERR),
    };
    tracing::info!(build = %seesaw_common::build_info(), "starting");
    let default_path = flags.common.config_dir.join("watchdog.cfg");
    let cfg = match config::load(
        flags.config.as_ref().unwrap_or(&default_path),
        Identity::current(),
    ) {
        Ok(c) => c,
        Err(errors) => return fail(&errors, exit::CONFIG),
    };
    if flags.validate {
        println!("config OK");
        return ExitCode::from(exit::OK);
    }
    if let Err(e) = serve(flags.common, cfg) {
        return fail(&e, exit::OSERR);
    }
    ExitCode::from(exit::OK)
}

fn serve(common: CommonArgs, cfg: WatchdogConfig) -> Result<(), Box<dyn std::error::Error>> {
    // Current-thread: supervision is a handful of timers and child waits.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let shutdown = CancellationToken::new();
        let dump = seesaw_common::signal::install(shutdown.clone())?;
        let ctx = RunContext::new(common, dump);
        Ok(seesaw_watchdog::run(cfg, ctx, shutdown).await?)
    })
}

#[allow(
    clippy::print_stderr,
    reason = "logging may be down; operators read this"
)]
fn fail(e: &dyn std::fmt::Display, code: u8) -> ExitCode {
    eprintln!("{e}");
    ExitCode::from(code)
}
