//! `seesaw_ecu`: parses flags, resolves the monitor address and the API settings (`ecu.cfg`),
//! binds both, and serves [`seesaw_ecu::run`] until SIGTERM/SIGINT/SIGQUIT.
//! `seesaw_ecu --hash-token` reads a token on stdin and prints the `token_sha256` for `ecu.cfg`.

use std::error::Error;
use std::io::Read;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use seesaw_common::args::CommonArgs;
use seesaw_common::exit::{self, OK};
use seesaw_ecu::api_config::ApiConfig;
use seesaw_ecu::audit::AuditLog;
use seesaw_ecu::config::{EcuConfig, parse_listen};
use seesaw_ecu::engine_view::GrpcEngineView;
use tokio_util::sync::CancellationToken;

/// Seesaw ECU: HTTPS REST API and dashboard with roles; read-only JSON and metrics over HTTP.
#[derive(Debug, Parser)]
#[command(name = "seesaw_ecu", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// HTTP address (host:port, [v6]:port, :port); default: seesaw.cfg [ecu] listen, or 127.0.0.1:10257
    #[arg(long, env = "SEESAW_ECU_LISTEN", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// The API's settings and users; default <config-dir>/ecu.cfg (missing: no API server)
    #[arg(long, env = "SEESAW_ECU_CONFIG")]
    api_config: Option<PathBuf>,
    /// Read a token from stdin, print its token_sha256 line for ecu.cfg, and exit
    #[arg(long)]
    hash_token: bool,
    /// Import a YAML file (Parasaus Service + Endpoints, or kind: Pool) into the running
    /// cluster.pb through the engine, print the outcome, and exit (the shell's `config import`)
    #[arg(long, value_name = "FILE")]
    import: Option<String>,
    /// With --import: print the outcome as JSON
    #[arg(long)]
    json: bool,
    /// How often the dashboard's 15-minute history samples the engine, milliseconds
    #[arg(long, env = "SEESAW_ECU_SERIES_INTERVAL_MS", default_value_t = 2000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    series_interval_ms: u64,
}

/// Per-call deadline for engine reads, so an HTTP request never hangs on a stuck engine.
const ENGINE_TIMEOUT: Duration = Duration::from_secs(2);

#[allow(
    clippy::print_stderr,
    clippy::print_stdout,
    reason = "only before logging is up, and --hash-token's answer"
)]
fn main() -> ExitCode {
    seesaw_common::files::private_umask();
    let args: Args = match seesaw_common::args::parse() {
        Ok(a) => a,
        Err(code) => return code,
    };
    if args.hash_token {
        let mut token = String::new();
        if let Err(e) = std::io::stdin().read_to_string(&mut token) {
            eprintln!("seesaw_ecu: cannot read the token: {e}");
            return ExitCode::from(exit::OSERR);
        }
        let digest = seesaw_ecu::auth::token_digest(token.trim());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        println!("token_sha256 = {hex}");
        return ExitCode::from(OK);
    }
    if let Some(file) = &args.import {
        return import_once(&args.common.run_dir, file, args.json);
    }
    let _log =
        match seesaw_common::logging::init_or_exit("seesaw_ecu", args.common.log_dir.as_deref()) {
            Ok(g) => g,
            Err(code) => return code,
        };
    tracing::info!(build = %seesaw_common::build_info(), "seesaw_ecu starting");
    let config = match EcuConfig::load(args.listen, &args.common.config_dir) {
        Ok(c) => c,
        Err(e) => return fail("invalid configuration", &e, exit::CONFIG),
    };
    let api_path = args
        .api_config
        .clone()
        .unwrap_or_else(|| args.common.config_dir.join("ecu.cfg"));
    let api_config = match ApiConfig::load(&api_path) {
        Ok(c) => c,
        Err(e) => return fail("invalid API configuration", &e, exit::CONFIG),
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
        let api = match api_config {
            None => {
                tracing::info!("{} not found: no HTTPS API", api_path.display());
                None
            }
            Some(c) => {
                let tls =
                    match seesaw_ecu::tls::server_config(&c.cert, &c.key, c.client_ca.as_deref()) {
                        Ok(t) => t,
                        Err(e) => return fail("invalid TLS material", &e, exit::CONFIG),
                    };
                let tcp = match tokio::net::TcpListener::bind(c.listen).await {
                    Ok(l) => l,
                    Err(e) => return fail("cannot bind the API address", &e, exit::OSERR),
                };
                let listener = match seesaw_ecu::tls::TlsListener::new(tcp, tls) {
                    Ok(l) => l,
                    Err(e) => return fail("cannot listen", &e, exit::OSERR),
                };
                let audit_path = c.audit_log.clone().unwrap_or_else(|| {
                    args.common
                        .log_dir
                        .clone()
                        .unwrap_or_else(|| args.common.run_dir.join("log"))
                        .join("seesaw_ecu_audit.log")
                });
                let audit = match AuditLog::open(&audit_path) {
                    Ok(a) => a,
                    Err(e) => return fail("cannot open the audit log", &e, exit::OSERR),
                };
                Some(seesaw_ecu::Api {
                    listener,
                    users: c.users,
                    audit,
                    series_interval: Duration::from_millis(args.series_interval_ms),
                })
            }
        };
        let shutdown = CancellationToken::new();
        if let Err(e) = seesaw_common::signal::install(shutdown.clone()) {
            return fail("cannot install signal handlers", &e, exit::OSERR);
        }
        let view = GrpcEngineView::new(&args.common.run_dir, ENGINE_TIMEOUT);
        let status = args.common.run_dir.join(seesaw_ecu::processes::STATUS_FILE);
        match seesaw_ecu::run(listener, view, api, Some(status), shutdown).await {
            Ok(()) => ExitCode::from(OK),
            Err(e) => fail("ecu stopped", &e, exit::SOFTWARE),
        }
    })
}

/// `--import FILE`: 0 applied; 1 refused (invalid YAML or the engine's errors, each on a line of
/// stderr); 69 engine unreachable.
#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a one-shot command's answer"
)]
fn import_once(run_dir: &std::path::Path, file: &str, json: bool) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start tokio: {e}");
            return ExitCode::from(exit::OSERR);
        }
    };
    let result = runtime.block_on(async {
        let view = GrpcEngineView::new(run_dir, Duration::from_secs(10));
        seesaw_ecu::import::import_file(&view, file).await
    });
    let (outcome, code) = match result {
        Ok(o) if o.applied => (o, OK),
        Ok(o) => (o, 1),
        Err(seesaw_ecu::import::ImportError::Engine(
            e @ seesaw_ecu::engine_view::ViewError::Unavailable(_),
        )) => {
            eprintln!("{e}");
            return ExitCode::from(exit::UNAVAILABLE);
        }
        Err(e) => (
            seesaw_ecu::model::Outcome {
                applied: false,
                message: "import refused".to_owned(),
                errors: e
                    .to_string()
                    .lines()
                    .map(|l| format!("{file}: {l}"))
                    .collect(),
            },
            1,
        ),
    };
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&outcome).unwrap_or_else(|_| "{}".to_owned())
        );
    } else if outcome.applied {
        println!("{}", outcome.message);
    } else {
        eprintln!("{}", outcome.message);
        for e in &outcome.errors {
            eprintln!("  {e}");
        }
    }
    ExitCode::from(code)
}

/// Logs `e` with its causes (stderr is always a log target) and returns `code`.
fn fail(what: &str, e: &(dyn Error + 'static), code: u8) -> ExitCode {
    let causes: Vec<String> = std::iter::successors(Some(e), |e| (*e).source())
        .map(|e| e.to_string())
        .collect();
    tracing::error!("{what}: {}", causes.join(": "));
    ExitCode::from(code)
}
