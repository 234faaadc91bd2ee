//! Tracing initialisation: stderr always (the watchdog captures it into per-service files), plus
//! an optional daily file under `--log-dir`. The filter comes from `RUST_LOG` (default `info`).

use std::path::Path;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Why logging could not start.
#[derive(Debug, thiserror::Error)]
pub enum LoggingError {
    /// `RUST_LOG` does not parse.
    #[error("invalid RUST_LOG filter: {0}")]
    Filter(String),
    /// The log directory could not be created.
    #[error("cannot create log dir {path}")]
    Dir {
        /// The directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Keeps the background log writer alive; drop it last.
pub struct LogGuard(
    #[allow(dead_code, reason = "held for its Drop")]
    Option<tracing_appender::non_blocking::WorkerGuard>,
);

/// [`init`], or, if logging cannot start, why on stderr (there is nowhere else yet) and the
/// usage exit code to leave with.
#[allow(
    clippy::print_stderr,
    reason = "logging is not up; stderr is all there is"
)]
pub fn init_or_exit(
    name: &str,
    log_dir: Option<&Path>,
) -> Result<LogGuard, std::process::ExitCode> {
    init(name, log_dir).map_err(|e| {
        eprintln!("{name}: {e}");
        std::process::ExitCode::from(crate::exit::USAGE)
    })
}

/// Starts tracing for process `name`.
pub fn init(name: &str, log_dir: Option<&Path>) -> Result<LogGuard, LoggingError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(s) if !s.is_empty() => {
            EnvFilter::try_new(&s).map_err(|e| LoggingError::Filter(e.to_string()))?
        }
        _ => EnvFilter::new("info"),
    };
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false);
    let (file, guard) = match log_dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(|source| LoggingError::Dir {
                path: dir.display().to_string(),
                source,
            })?;
            let appender = tracing_appender::rolling::daily(dir, format!("{name}.log"));
            let (nb, guard) = tracing_appender::non_blocking(appender);
            (
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(nb)
                        .with_ansi(false),
                ),
                Some(guard),
            )
        }
        None => (None, None),
    };
    // A second init (tests running several components in one process) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(stderr)
        .with(file)
        .try_init();
    Ok(LogGuard(guard))
}
