//! `seesaw_engine`: flags, logging, config, socket, then `seesaw_engine::run` until a signal.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_common::{args::CommonArgs, exit, paths, uds};
use seesaw_engine::ncc_port::GrpcNcc;

/// The Seesaw engine: owns the configuration and every decision.
#[derive(Debug, Parser)]
#[command(name = "seesaw_engine", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Validate seesaw.cfg and cluster.pb in the config dir, print the result and exit
    /// (0: valid, 78: invalid).
    #[arg(long)]
    validate: bool,
    /// With --validate: treat every warning (what Seesaw would skip and carry on with) as an
    /// error, for people who write new configs.
    #[arg(long, requires = "validate")]
    strict: bool,
    /// With --validate: check against this data plane (auto, ipvs, nftables, proxy) instead of
    /// seesaw.cfg's `[dataplane] kind`, e.g. for another host; auto means what this host's ncc
    /// would pick.
    #[arg(long, requires = "validate", value_parser = parse_plane)]
    plane: Option<seesaw_engine::config::DataplaneKind>,
}

fn parse_plane(s: &str) -> Result<seesaw_engine::config::DataplaneKind, String> {
    seesaw_engine::config::DataplaneKind::parse(s)
        .ok_or_else(|| format!("{s:?} is not one of auto, ipvs, nftables, proxy"))
}

fn main() -> ExitCode {
    run().unwrap_or_else(|code| code)
}

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "startup errors and --validate output go to the terminal"
)]
fn run() -> Result<ExitCode, ExitCode> {
    let (args, _log) = seesaw_common::args::start_daemon::<Args>("seesaw_engine", |a| &a.common)?;
    tracing::info!("{}", seesaw_common::build_info());
    let loaded = match seesaw_engine::config::load_dir_for(&args.common.config_dir, args.plane) {
        Ok(l) => l,
        Err(errors) => {
            eprintln!("config invalid ({} errors):", errors.len());
            let shown = seesaw_engine::config::summarize(errors, 200);
            for e in &shown {
                eprintln!("  {e}");
            }
            return Err(ExitCode::from(exit::CONFIG));
        }
    };
    if args.validate {
        let warnings: Vec<&String> = loaded
            .settings
            .warnings
            .iter()
            .chain(&loaded.cluster.warnings)
            .collect();
        if args.strict && !warnings.is_empty() {
            eprintln!(
                "config invalid with --strict ({} {} errors):",
                warnings.len(),
                if warnings.len() == 1 {
                    "warning is"
                } else {
                    "warnings are"
                }
            );
            for w in &warnings {
                eprintln!("  {w}");
            }
            return Err(ExitCode::from(exit::CONFIG));
        }
        let asked = args.plane.unwrap_or(loaded.settings.dataplane);
        let plane = match (asked, asked.effective()) {
            (seesaw_engine::config::DataplaneKind::Auto, k) => {
                format!("the {} data plane (auto on this host)", k.as_str())
            }
            (_, k) => format!("the {} data plane", k.as_str()),
        };
        if warnings.is_empty() {
            println!("config OK for {plane}");
        } else {
            let plural = if warnings.len() == 1 { "" } else { "s" };
            println!(
                "config OK for {plane}, with {} warning{plural}:",
                warnings.len()
            );
            for w in &warnings {
                println!("  {w}");
            }
        }
        return Ok(ExitCode::from(exit::OK));
    }
    let rt = seesaw_common::runtime_or_exit(
        tokio::runtime::Builder::new_multi_thread().worker_threads(2),
    )?;
    rt.block_on(async move {
        let socket = paths::engine_socket(&args.common.run_dir);
        let listener = uds::bind_or_exit(&socket, "engine socket")?;
        let shutdown = seesaw_common::signal::shutdown_or_exit()?;
        let ncc = GrpcNcc::new(uds::channel(
            &paths::ncc_socket(&args.common.run_dir),
            Duration::from_secs(20),
        ));
        Ok(
            match seesaw_engine::run(loaded, listener, ncc, args.common.config_dir, shutdown).await
            {
                Ok(()) => ExitCode::from(exit::OK),
                Err(e) => {
                    tracing::error!(error = ?e, "engine failed");
                    ExitCode::from(exit::SOFTWARE)
                }
            },
        )
    })
}
