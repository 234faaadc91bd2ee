//! The demo's process plumbing: `seesaw demo-guard` (runs one command and stops it when the demo goes away), signals, exit codes, log files and error text.

use super::*;

/// `seesaw demo-guard -- PROGRAM ARGS...` (hidden): runs PROGRAM (the watchdog) as its child and
/// stops it with SIGTERM when asked to (SIGTERM/SIGINT) or when the demo that started the guard
/// dies, so even a SIGKILLed demo leaves nothing behind (the watchdog then stops its children in
/// order). Polling `getppid` stands in for `PR_SET_PDEATHSIG`, which
/// needs `unsafe` `pre_exec`. Exits with PROGRAM's exit code (128 + signal if it was killed).
pub fn guard(command: &[OsString]) -> u8 {
    let Some((program, args)) = command.split_first() else {
        eprintln!("seesaw demo-guard: no command given");
        return seesaw_common::exit::USAGE;
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("seesaw demo-guard: cannot start the async runtime: {e}");
            return seesaw_common::exit::OSERR;
        }
    };
    runtime.block_on(async {
        let parent = nix::unistd::getppid();
        let mut signals = match Signals::install() {
            Ok(s) => s,
            Err(e) => {
                eprintln!("seesaw demo-guard: {}", error_chain(&e));
                return seesaw_common::exit::OSERR;
            }
        };
        let mut child = match Command::new(program).args(args).kill_on_drop(true).spawn() {
            Ok(c) => c,
            Err(e) => {
                eprintln!(
                    "seesaw demo-guard: cannot start {}: {e}",
                    Path::new(program).display()
                );
                return seesaw_common::exit::OSERR;
            }
        };
        let mut poll = tokio::time::interval(GUARD_PARENT_POLL);
        loop {
            tokio::select! {
                status = child.wait() => return status.map_or(1, exit_code),
                () = signals.recv() => break,
                _ = poll.tick() => if nix::unistd::getppid() != parent {
                    eprintln!("seesaw demo-guard: the demo is gone; stopping {}", Path::new(program).display());
                    break;
                },
            }
        }
        if let Some(pid) = child.id().and_then(pid) {
            let _ = kill(pid, Signal::SIGTERM);
        }
        match tokio::time::timeout(STOP_GRACE, child.wait()).await {
            Ok(Ok(status)) => exit_code(status),
            _ => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                1
            }
        }
    })
}

/// A child's exit status as our exit code.
pub(super) fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        (None, None) => 1,
    }
}

/// SIGINT or SIGTERM.
pub(super) struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
}

impl Signals {
    pub(super) fn install() -> Result<Self, DemoError> {
        let install = |kind| signal(kind).map_err(io_err("cannot install signal handlers"));
        Ok(Self {
            int: install(SignalKind::interrupt())?,
            term: install(SignalKind::terminate())?,
        })
    }

    pub(super) async fn recv(&mut self) {
        tokio::select! {
            _ = self.int.recv() => {}
            _ = self.term.recv() => {}
        }
    }
}

// === helpers ===

pub(super) fn print_log_tails(dir: &Path) {
    let mut files: Vec<PathBuf> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect(),
        Err(e) => {
            eprintln!("cannot list {}: {e}", dir.display());
            return;
        }
    };
    files.sort();
    for path in files {
        let Ok(bytes) = fs::read(&path) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<&str> = text.lines().collect();
        eprintln!("==> {} <==", path.display());
        for line in &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..] {
            eprintln!("{line}");
        }
    }
}

pub(super) fn log_file(dir: &Path, name: &str) -> Result<File, DemoError> {
    let path = dir.join(name);
    File::create(&path).map_err(io_err(format!("cannot create {}", path.display())))
}

/// Our stderr as a child's stdio.
pub(super) fn stderr_stdio() -> Result<Stdio, DemoError> {
    let fd = io::stderr()
        .as_fd()
        .try_clone_to_owned()
        .map_err(io_err("cannot duplicate stderr"))?;
    Ok(Stdio::from(fd))
}

pub(super) fn pid(raw: u32) -> Option<Pid> {
    i32::try_from(raw).ok().map(Pid::from_raw)
}

pub(super) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> DemoError {
    let what = what.into();
    move |source| DemoError::Io { what, source }
}

/// `error: cause: cause`, for a one-line report.
pub(super) fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let _ = write!(text, ": {s}");
        source = s.source();
    }
    text
}
