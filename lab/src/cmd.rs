//! Running helper commands to completion: the single `ip` (iproute2) entry point every namespace
//! operation goes through, and a bounded "run and collect output" for one-shot tools like the
//! `seesaw -c` shell.

use std::fs::File;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::error::LabError;

/// How long any single `ip` invocation may take; they are all local and instant.
const IP_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished command printed.
#[derive(Debug, Clone)]
pub struct Output {
    /// How it exited.
    pub status: ExitStatus,
    /// Everything written to stdout.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Output {
    /// stdout followed by stderr, for assertions that do not care which stream a line went to.
    pub fn combined(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

/// Runs `ip <args>` and fails with its stderr if it exits non-zero. Every namespace, link, address
/// and route change in the lab goes through here, so the whole footprint on the host is visible
/// in one place.
pub(crate) fn ip(args: &[&str]) -> Result<Output, LabError> {
    let mut cmd = Command::new("ip");
    cmd.args(args);
    let out = run(cmd, IP_TIMEOUT)?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(LabError::Command {
            cmd: format!("ip {}", args.join(" ")),
            detail: format!("{}: {}", out.status, out.stderr.trim()),
        })
    }
}

/// Whether the `ip` tool is installed and runs.
pub(crate) fn ip_available() -> bool {
    Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `cmd` to completion within `within`, killing it if it takes longer. Output goes through
/// temporary files rather than pipes so a chatty command can never block on a full pipe while we
/// poll for its exit.
pub fn run(mut cmd: Command, within: Duration) -> Result<Output, LabError> {
    let shown = describe(&cmd);
    let dir =
        tempfile::tempdir().map_err(LabError::io("creating a temp dir for command output"))?;
    let out_path = dir.path().join("stdout");
    let err_path = dir.path().join("stderr");
    let out_file = File::create(&out_path).map_err(LabError::io("creating stdout file"))?;
    let err_file = File::create(&err_path).map_err(LabError::io("creating stderr file"))?;
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file)
        .stderr(err_file)
        .spawn()
        .map_err(|source| LabError::Spawn {
            cmd: shown.clone(),
            source,
        })?;
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child
            .try_wait()
            .map_err(LabError::io(format!("waiting for `{shown}`")))?
        {
            break status;
        }
        if start.elapsed() >= within {
            // Best effort: the process may exit between the check and the kill.
            let _ = child.kill();
            let _ = child.wait();
            return Err(LabError::Timeout {
                what: format!("`{shown}` to exit"),
                within,
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Ok(Output {
        status,
        stdout: read_lossy(&out_path),
        stderr: read_lossy(&err_path),
    })
}

/// Feeds `text` to `promtool check metrics` and panics, with promtool's output and the text,
/// when it refuses it. False when promtool is not installed (Debian `prometheus`): the caller
/// decides whether that skips its check.
pub fn promtool_accepts(text: &str) -> bool {
    use std::io::Write;
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        return false;
    };
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write metrics");
    let out = child.wait_with_output().expect("promtool output");
    assert!(
        out.status.success(),
        "promtool check metrics refused:\n{}{}\n{text}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    true
}

/// A command line for messages.
pub(crate) fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// A file's content as text, or an empty string if it cannot be read (output files of a command
/// that never wrote anything).
pub(crate) fn read_lossy(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}
