//! The `seesaw` binary: the shell (`seesaw [-engine socket] [-c "command"]`), `seesaw demo`, and
//! the demo's hidden backend (`seesaw demo-backend`).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use seesaw_cli::shell::{self, OutputFormat};
use seesaw_cli::{demo, demo_backend};
use seesaw_common::args::DEFAULT_RUN_DIR;
use seesaw_common::exit;

/// The Seesaw shell. Without -c it is interactive: `?` lists what may come next, Tab completes.
#[derive(Debug, Parser)]
#[command(name = "seesaw", version)]
struct Flags {
    /// Directory holding the engine's socket.
    #[arg(long, env = "SEESAW_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    run_dir: PathBuf,
    /// The engine's socket, as Seesaw's `-engine` (default: <run-dir>/engine/engine.sock).
    #[arg(long, value_name = "SOCKET")]
    engine: Option<PathBuf>,
    /// Run one command and exit, e.g. -c "show vservers".
    #[arg(short = 'c', value_name = "COMMAND")]
    command: Option<String>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = OutputFormat::Text)]
    output: OutputFormat,
    #[command(subcommand)]
    sub: Option<Sub>,
}

#[derive(Debug, Subcommand)]
enum Sub {
    /// Run the whole system on loopback (no root needed) until Ctrl-C.
    Demo {
        /// Keep the temp dir (configs, logs) after stopping.
        #[arg(long)]
        keep: bool,
    },
    /// Runs a command and stops it when the demo goes away.
    #[command(hide = true)]
    DemoGuard {
        /// The program and its arguments.
        #[arg(last = true, required = true)]
        command: Vec<OsString>,
    },
    /// A demo HTTP backend that answers every request with its name.
    #[command(hide = true)]
    DemoBackend {
        /// Address to listen on.
        #[arg(long)]
        listen: SocketAddr,
        /// The name it answers with.
        #[arg(long)]
        name: String,
        /// How long each answer takes, in milliseconds (backends of unequal service times).
        #[arg(long, default_value_t = 0)]
        delay_ms: u64,
    },
}

fn main() -> ExitCode {
    let flags =
        match Flags::try_parse_from(seesaw_common::args::normalize_go_flags(std::env::args())) {
            Ok(f) => f,
            Err(e) => {
                let _ = e.print();
                return ExitCode::from(if e.use_stderr() {
                    exit::USAGE
                } else {
                    exit::OK
                });
            }
        };
    let socket = flags
        .engine
        .unwrap_or_else(|| seesaw_common::paths::engine_socket(&flags.run_dir));
    let code = match (flags.sub, flags.command) {
        (Some(Sub::Demo { keep }), _) => demo::run(keep),
        (Some(Sub::DemoGuard { command }), _) => demo::guard(&command),
        (
            Some(Sub::DemoBackend {
                listen,
                name,
                delay_ms,
            }),
            _,
        ) => demo_backend::run(listen, &name, std::time::Duration::from_millis(delay_ms)),
        (None, Some(command)) => shell::one_shot(&socket, &command, flags.output),
        (None, None) => shell::interactive(&socket, flags.output),
    };
    ExitCode::from(code)
}
