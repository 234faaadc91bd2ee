//! `seesaw_ha`: parses flags, starts logging and the runtime, and runs [`seesaw_ha::run`] against
//! the engine's socket until SIGTERM/SIGINT/SIGQUIT.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_common::args::CommonArgs;
use seesaw_common::exit;
use seesaw_ha::link::GrpcEngineLink;

/// Seesaw HA: decides leadership and reports it to the engine.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ha", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Internal: run as the resign sentinel of the seesaw_ha that started this process.
    #[arg(long = "resign-sentinel", hide = true)]
    resign_sentinel: bool,
}

/// Per-call deadline for engine RPCs: local calls, so anything slower means the engine is stuck.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(1);

fn main() -> ExitCode {
    run().unwrap_or_else(|code| code)
}

fn run() -> Result<ExitCode, ExitCode> {
    let (args, _log) = seesaw_common::args::start_daemon::<Args>("seesaw_ha", |a| &a.common)?;
    if args.resign_sentinel {
        return sentinel();
    }
    tracing::info!(build = %seesaw_common::build_info(), "seesaw_ha starting");
    let runtime =
        seesaw_common::runtime_or_exit(&mut tokio::runtime::Builder::new_current_thread())?;
    runtime.block_on(async {
        let shutdown = seesaw_common::signal::shutdown_or_exit()?;
        let link = GrpcEngineLink::new(&args.common.run_dir, ENGINE_TIMEOUT);
        // The sentinel resigns for this master if this process dies (kill -9, a crash).
        let sentinel = match std::env::current_exe()
            .and_then(|exe| seesaw_ha::sentinel::Sentinel::spawn(&exe))
        {
            Ok(s) => {
                tracing::info!(pid = s.pid(), "resign sentinel started");
                Some(s)
            }
            Err(e) => {
                tracing::warn!(error = %e, "no resign sentinel: a kill -9 of ha costs the master-down interval");
                None
            }
        };
        seesaw_ha::run_with_sentinel(
            seesaw_ha::RunConfig::default(),
            link,
            seesaw_ha::transport::RawOpener,
            seesaw_ha::fence::NccFence::new(&args.common.run_dir),
            sentinel,
            shutdown,
        )
        .await;
        tracing::info!("seesaw_ha stopped");
        Ok(ExitCode::from(exit::OK))
    })
}

/// `seesaw_ha --resign-sentinel`: see `seesaw_ha::sentinel`.
fn sentinel() -> Result<ExitCode, ExitCode> {
    let rt = seesaw_common::runtime_or_exit(&mut tokio::runtime::Builder::new_current_thread())?;
    seesaw_ha::sentinel::serve(&rt);
    Ok(ExitCode::from(exit::OK))
}
