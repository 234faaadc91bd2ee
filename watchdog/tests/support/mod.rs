//! What the watchdog's binary tests share: the binaries, the watchdog started over a temp
//! directory (killed on drop, its log shown if the test failed), and waiting for a condition.

#![allow(
    dead_code,
    reason = "each test binary uses a part of the support module"
)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub(crate) const WATCHDOG: &str = env!("CARGO_BIN_EXE_seesaw_watchdog");
pub(crate) const CHILD: &str = env!("CARGO_BIN_EXE_seesaw_watchdog_testchild");

/// The watchdog process; killed on drop, and its log shown if the test failed.
pub(crate) struct Watchdog {
    pub(crate) child: Child,
    stderr: PathBuf,
}

impl Watchdog {
    /// Sends the watchdog SIGTERM and waits up to `within` for it to exit; its exit status.
    pub(crate) fn stop(&mut self, within: Duration) -> ExitStatus {
        let pid = i32::try_from(self.child.id()).expect("pid fits");
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGTERM,
        )
        .expect("SIGTERM the watchdog");
        wait_until(within, "the watchdog to exit", || {
            self.child.try_wait().expect("try_wait")
        })
    }
}

impl Drop for Watchdog {
    #[allow(
        clippy::print_stderr,
        reason = "show the watchdog's log when a test fails"
    )]
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "--- watchdog stderr ---\n{}",
                fs::read_to_string(&self.stderr).unwrap_or_default()
            );
        }
    }
}

/// The watchdog over `dir` (run, log and config directories) with the config file `cfg`, the
/// test child enabled, no stdin or stdout, stderr in `<dir>/watchdog.stderr`; `adjust` adds to
/// the command (environment) before it is spawned.
pub(crate) fn watchdog(dir: &Path, cfg: &Path, adjust: impl FnOnce(&mut Command)) -> Watchdog {
    let stderr = dir.join("watchdog.stderr");
    let mut cmd = Command::new(WATCHDOG);
    cmd.arg("--run-dir")
        .arg(dir.join("run"))
        .arg("--config-dir")
        .arg(dir)
        .arg("--config")
        .arg(cfg)
        .arg("--log-dir")
        .arg(dir.join("log"))
        .env("SEESAW_WATCHDOG_TESTCHILD", "1")
        .env("RUST_LOG", "info")
        .env_remove("NOTIFY_SOCKET")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(fs::File::create(&stderr).expect("create stderr file"));
    adjust(&mut cmd);
    Watchdog {
        child: cmd.spawn().expect("spawn seesaw_watchdog"),
        stderr,
    }
}

/// Polls `f` every 50 ms until it gives a value; fails after `timeout`.
pub(crate) fn wait_until<T>(timeout: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
