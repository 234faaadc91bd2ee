//! The flags every daemon takes, and their environment-variable fallbacks.

use std::path::PathBuf;

/// Default run directory (sockets, readiness files).
pub const DEFAULT_RUN_DIR: &str = "/run/seesaw";
/// Default configuration directory (`seesaw.cfg`, `cluster.pb`, `watchdog.cfg`).
pub const DEFAULT_CONFIG_DIR: &str = "/etc/seesaw";

/// Flags shared by every Seesaw daemon. Flatten it into each binary's clap parser.
#[derive(Debug, Clone, clap::Args)]
pub struct CommonArgs {
    /// Directory holding the Unix sockets of every process.
    #[arg(long, env = "SEESAW_RUN_DIR", default_value = DEFAULT_RUN_DIR)]
    pub run_dir: PathBuf,
    /// Directory holding seesaw.cfg and cluster.pb.
    #[arg(long, env = "SEESAW_CONFIG_DIR", default_value = DEFAULT_CONFIG_DIR)]
    pub config_dir: PathBuf,
    /// Also write logs to a daily file in this directory (stderr is always written).
    #[arg(long, env = "SEESAW_LOG_DIR")]
    pub log_dir: Option<PathBuf>,
}

/// Rewrites Go-style flags as Seesaw's watchdog.cfg writes them (`-log_dir=/x`) into the
/// `--log-dir=/x` form our parsers take, so a Seesaw `args =` line keeps working.
/// Anything that is not a single-dash word longer than one letter is passed through.
pub fn normalize_go_flags<I: IntoIterator<Item = String>>(args: I) -> Vec<String> {
    args.into_iter()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                return a;
            }
            let bytes = a.as_bytes();
            let is_go_long = bytes.len() > 2
                && bytes[0] == b'-'
                && bytes[1] != b'-'
                && bytes[1].is_ascii_alphabetic()
                && bytes[2] != b'='
                && a[1..].split('=').next().is_some_and(|n| n.len() > 1);
            if !is_go_long {
                return a;
            }
            match a[1..].split_once('=') {
                Some((name, value)) => format!("--{}={value}", name.replace('_', "-")),
                None => format!("--{}", a[1..].replace('_', "-")),
            }
        })
        .collect()
}

/// A daemon's arguments (Go-style `-flag` accepted): `A` parsed from the process's command
/// line, or, on a usage error or `--help`/`--version`, clap's message printed and the exit code
/// to leave with ([`crate::exit::USAGE`] or [`crate::exit::OK`]).
pub fn parse<A: clap::Parser>() -> Result<A, std::process::ExitCode> {
    A::try_parse_from(normalize_go_flags(std::env::args())).map_err(|e| {
        let _ = e.print();
        std::process::ExitCode::from(if e.use_stderr() {
            crate::exit::USAGE
        } else {
            crate::exit::OK
        })
    })
}

/// The first steps of a daemon's `main`: the private umask ([`crate::files::private_umask`]),
/// the flags ([`parse`]) and logging for process `name` ([`crate::logging::init_or_exit`], in the
/// log directory `common` picks from the flags). On failure, the exit code to leave with.
pub fn start_daemon<A: clap::Parser>(
    name: &str,
    common: impl FnOnce(&A) -> &CommonArgs,
) -> Result<(A, crate::logging::LogGuard), std::process::ExitCode> {
    crate::files::private_umask();
    let args: A = parse()?;
    let log = crate::logging::init_or_exit(name, common(&args).log_dir.as_deref())?;
    Ok((args, log))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(v: &[&str]) -> Vec<String> {
        normalize_go_flags(v.iter().map(|s| s.to_string()))
    }

    #[test]
    fn go_flags_become_double_dash() {
        assert_eq!(
            norm(&[
                "bin",
                "-log_dir=/var/log/seesaw",
                "-c",
                "--run-dir",
                "x",
                "-v"
            ]),
            [
                "bin",
                "--log-dir=/var/log/seesaw",
                "-c",
                "--run-dir",
                "x",
                "-v"
            ]
        );
        assert_eq!(norm(&["bin", "-dry_run"]), ["bin", "--dry-run"]);
        assert_eq!(norm(&["bin", "-c=show"]), ["bin", "-c=show"]);
    }
}
