//! `seesaw_ecu`: parses flags, resolves the listen address, binds it, and serves
//! [`seesaw_ecu::run`] until SIGTERM/SIGINT/SIGQUIT.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_common::args::CommonArgs;
use seesaw_common::exit;
use seesaw_ecu::config::{EcuConfig, parse_listen};
use seesaw_ecu::engine_view::GrpcEngineView;
use tokio_util::sync::CancellationToken;

/// Seesaw ECU: read-only JSON API and Prometheus metrics over HTTP.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ecu", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// HTTP listen address (`host:port`, `[v6]:port` or `:port`). Default: `[ecu] listen` in
    /// seesaw.cfg, else 127.0.0.1:10257.
    #[arg(long, env = "SEESAW_ECU_LISTEN", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
}

/// Per-call deadline for engine reads, so an HTTP request never hangs on a stuck engine.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

#[allow(clippy::print_stderr, reason = "errors before or instead of logging go to stderr")]
fn main() -> ExitCode {
    let args = match Args::try_parse_from(seesaw_common::args::normalize_go_flags(std::env::args())) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { exit::USAGE } else { exit::OK });
        }
    };
    let _log = match seesaw_common::logging::init("seesaw_ecu", args.common.log_dir.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("seesaw_ecu: {e}");
            return ExitCode::from(exit::USAGE);
        }
    };
    tracing::info!(build = %seesaw_common::build_info(), "seesaw_ecu starting");
    let config = match EcuConfig::load(args.listen, &args.common.config_dir) {
        Ok(c) => c,
        Err(e) => {
            let cause = std::error::Error::source(&e).map(|s| format!(": {s}")).unwrap_or_default();
            eprintln!("seesaw_ecu: invalid configuration: {e}{cause}");
            return ExitCode::from(exit::CONFIG);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the tokio runtime");
            return ExitCode::from(exit::OSERR);
        }
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(addr = %config.listen, error = %e, "cannot bind the ecu listener");
                return ExitCode::from(exit::OSERR);
            }
        };
        let shutdown = CancellationToken::new();
        if let Err(e) = seesaw_common::signal::install(shutdown.clone()) {
            tracing::error!(error = %e, "cannot install signal handlers");
            return ExitCode::from(exit::OSERR);
        }
        let view = GrpcEngineView::new(&args.common.run_dir, ENGINE_TIMEOUT);
        match seesaw_ecu::run(listener, view, shutdown).await {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                tracing::error!(error = %e, cause = ?std::error::Error::source(&e), "ecu failed");
                ExitCode::from(exit::SOFTWARE)
            }
        }
    })
}
