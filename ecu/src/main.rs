//! `seesaw_ecu`: parses flags, resolves the listen address, binds it, and serves
//! [`seesaw_ecu::run`] until SIGTERM/SIGINT/SIGQUIT.

use std::error::Error;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_common::args::CommonArgs;
use seesaw_common::exit::{self, OK, USAGE};
use seesaw_ecu::config::{EcuConfig, parse_listen};
use seesaw_ecu::engine_view::GrpcEngineView;
use tokio_util::sync::CancellationToken;

/// Seesaw ECU: read-only JSON API and Prometheus metrics over HTTP.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ecu", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// HTTP address (host:port, [v6]:port, :port); default: seesaw.cfg [ecu] listen, or 127.0.0.1:10257
    #[arg(long, env = "SEESAW_ECU_LISTEN", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
}

/// Per-call deadline for engine reads, so an HTTP request never hangs on a stuck engine.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

#[allow(clippy::print_stderr, reason = "only before logging is up")]
fn main() -> ExitCode {
    let argv = seesaw_common::args::normalize_go_flags(std::env::args());
    let args = match Args::try_parse_from(argv) {
        Ok(a) => a,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { USAGE } else { OK });
        }
    };
    let _log = match seesaw_common::logging::init("seesaw_ecu", args.common.log_dir.as_deref()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("seesaw_ecu: {e}");
            return ExitCode::from(USAGE);
        }
    };
    tracing::info!(build = %seesaw_common::build_info(), "seesaw_ecu starting");
    let config = match EcuConfig::load(args.listen, &args.common.config_dir) {
        Ok(c) => c,
        Err(e) => return fail("invalid configuration", &e, exit::CONFIG),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => return fail("cannot start tokio", &e, exit::OSERR),
    };
    runtime.block_on(async {
        let listener = match tokio::net::TcpListener::bind(config.listen).await {
            Ok(l) => l,
            Err(e) => return fail("cannot bind the listen address", &e, exit::OSERR),
        };
        let shutdown = CancellationToken::new();
        if let Err(e) = seesaw_common::signal::install(shutdown.clone()) {
            return fail("cannot install signal handlers", &e, exit::OSERR);
        }
        let view = GrpcEngineView::new(&args.common.run_dir, ENGINE_TIMEOUT);
        match seesaw_ecu::run(listener, view, shutdown).await {
            Ok(()) => ExitCode::from(OK),
            Err(e) => fail("ecu stopped", &e, exit::SOFTWARE),
        }
    })
}

/// Logs `e` with its causes (stderr is always a log target) and returns `code`.
fn fail(what: &str, e: &(dyn Error + 'static), code: u8) -> ExitCode {
    let causes: Vec<String> = std::iter::successors(Some(e), |e| (*e).source())
        .map(|e| e.to_string())
        .collect();
    tracing::error!("{what}: {}", causes.join(": "));
    ExitCode::from(code)
}
