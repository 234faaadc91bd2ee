//! `seesaw_healthcheck`: the process skeleton around [`seesaw_healthcheck::run`]. It needs no
//! configuration file: the engine hands it the checks.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use seesaw_common::args::CommonArgs;
use seesaw_common::exit;
use seesaw_healthcheck::Options;
use seesaw_healthcheck::engine_link::GrpcEngineLink;

/// Runs the health checks the engine asks for and reports their state back.
#[derive(Debug, Parser)]
#[command(name = "seesaw_healthcheck", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Report every check healthy without probing (Seesaw's -dry_run).
    #[arg(long)]
    dry_run: bool,
}

fn main() -> ExitCode {
    run().unwrap_or_else(|code| code)
}

fn run() -> Result<ExitCode, ExitCode> {
    let (args, _log_guard) =
        seesaw_common::args::start_daemon::<Args>("seesaw_healthcheck", |a| &a.common)?;
    tracing::info!("{}", seesaw_common::build_info());

    let runtime = seesaw_common::runtime_or_exit(&mut tokio::runtime::Builder::new_multi_thread())?;
    runtime.block_on(async {
        let shutdown = seesaw_common::signal::shutdown_or_exit()?;
        let opts = Options {
            dry_run: args.dry_run,
            ..Options::default()
        };
        let link = GrpcEngineLink::new(&args.common.run_dir);
        // Nothing to bind: the process is ready as soon as its loop runs.
        seesaw_common::ready::notify_ready();
        seesaw_healthcheck::run(opts, link, shutdown).await;
        seesaw_common::ready::notify_stopping();
        Ok(ExitCode::from(exit::OK))
    })
}
