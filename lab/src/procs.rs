//! Long-running processes a test started: spawning with captured output, signalling, orderly
//! teardown (SIGTERM, then SIGKILL after a grace period), finding strays through `/proc`, and
//! dumping every captured log when a test fails.
//!
//! Every process gets a marker environment variable unique to the harness instance. Daemons the
//! watchdog starts inherit it, so teardown can find and kill them even when the watchdog itself
//! had to be SIGKILLed and never stopped its children.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::cmd::{describe, read_lossy};
use crate::error::LabError;

/// How long processes get between SIGTERM and SIGKILL at teardown.
pub const TERM_GRACE: Duration = Duration::from_secs(3);

/// The most of each log file printed on failure; the end is where the failure is.
const DUMP_TAIL_BYTES: usize = 64 * 1024;

/// A handle to a process started through the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcId(usize);

/// The processes of one harness instance and where their output goes.
#[derive(Debug)]
pub(crate) struct Supervisor {
    /// Directory for `<n>-<label>.stdout` / `.stderr`.
    out_dir: PathBuf,
    /// `KEY=VALUE` set on every child; any process whose environment contains it is ours.
    marker: (String, String),
    procs: Vec<Proc>,
    /// Further directories whose files are printed on failure (daemon log dirs).
    log_dirs: Vec<PathBuf>,
}

#[derive(Debug)]
struct Proc {
    label: String,
    cmdline: String,
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    /// Set once the child has been reaped, so teardown does not signal a recycled pid.
    exited: bool,
}

// === impl Supervisor ===

impl Supervisor {
    pub(crate) fn new(out_dir: PathBuf, marker: (String, String)) -> Self {
        Self {
            out_dir,
            marker,
            procs: Vec::new(),
            log_dirs: Vec::new(),
        }
    }

    /// Adds a directory whose files are printed on failure.
    pub(crate) fn watch_log_dir(&mut self, dir: PathBuf) {
        self.log_dirs.push(dir);
    }

    /// Starts `cmd` with stdout/stderr captured to files and the marker in its environment.
    pub(crate) fn spawn(&mut self, label: &str, mut cmd: Command) -> Result<ProcId, LabError> {
        let n = self.procs.len();
        let stdout = self.out_dir.join(format!("{n}-{label}.stdout"));
        let stderr = self.out_dir.join(format!("{n}-{label}.stderr"));
        let out = File::create(&stdout)
            .map_err(LabError::io(format!("creating {}", stdout.display())))?;
        let err = File::create(&stderr)
            .map_err(LabError::io(format!("creating {}", stderr.display())))?;
        let cmdline = describe(&cmd);
        // A process group of its own keeps a terminal's Ctrl-C from reaching it before the
        // harness's own teardown does.
        let child = cmd
            .env(&self.marker.0, &self.marker.1)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .map_err(|source| LabError::Spawn {
                cmd: cmdline.clone(),
                source,
            })?;
        self.procs.push(Proc {
            label: label.to_owned(),
            cmdline,
            child,
            stdout,
            stderr,
            exited: false,
        });
        Ok(ProcId(n))
    }

    pub(crate) fn pid(&self, id: ProcId) -> u32 {
        self.procs[id.0].child.id()
    }

    /// Whether the process is still running (reaping it if it has exited).
    pub(crate) fn is_running(&mut self, id: ProcId) -> bool {
        let p = &mut self.procs[id.0];
        if !p.exited && matches!(p.child.try_wait(), Ok(Some(_)) | Err(_)) {
            p.exited = true;
        }
        !p.exited
    }

    /// Sends `sig` to the process.
    pub(crate) fn signal(&mut self, id: ProcId, sig: Signal) -> Result<(), LabError> {
        if !self.is_running(id) {
            return Ok(());
        }
        let pid = pid_of(self.pid(id));
        kill(Pid::from_raw(pid), sig).map_err(|source| LabError::Signal { pid, source })
    }

    /// SIGKILLs the process and reaps it.
    pub(crate) fn kill(&mut self, id: ProcId) -> Result<(), LabError> {
        self.signal(id, Signal::SIGKILL)?;
        let p = &mut self.procs[id.0];
        p.child
            .wait()
            .map_err(LabError::io(format!("reaping {}", p.label)))?;
        p.exited = true;
        Ok(())
    }

    /// Stops everything: SIGTERM to our children, SIGKILL to those still alive after
    /// [`TERM_GRACE`], then the same for any marked process that outlived its parent.
    pub(crate) fn shutdown(&mut self) {
        let ids: Vec<ProcId> = (0..self.procs.len()).map(ProcId).collect();
        for &id in &ids {
            let _ = self.signal(id, Signal::SIGTERM);
        }
        let deadline = Instant::now() + TERM_GRACE;
        while ids.iter().any(|&id| self.is_running(id)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        for &id in &ids {
            let _ = self.kill(id);
        }
        let strays = pids_with_env(&self.marker.0, &self.marker.1);
        terminate_pids(&strays, TERM_GRACE);
    }

    /// Prints every captured output file and every file under the watched log dirs to stderr.
    #[allow(
        clippy::print_stderr,
        reason = "the test harness shows these logs only when a test fails"
    )]
    pub(crate) fn dump_logs(&self) {
        for p in &self.procs {
            for (stream, path) in [("stdout", &p.stdout), ("stderr", &p.stderr)] {
                eprintln!(
                    "===== {} {stream} ({}) [{}] =====",
                    p.label,
                    p.cmdline,
                    path.display()
                );
                eprintln!("{}", tail(&read_lossy(path)));
            }
        }
        for dir in &self.log_dirs {
            for file in files_under(dir) {
                eprintln!("===== log file {} =====", file.display());
                eprintln!("{}", tail(&read_lossy(&file)));
            }
        }
    }
}

// === /proc helpers ===

/// Pids whose environment contains `key=value` (excluding this process).
pub fn pids_with_env(key: &str, value: &str) -> Vec<i32> {
    let needle = format!("{key}={value}");
    all_pids()
        .into_iter()
        .filter(|&pid| environ(pid).contains(&needle))
        .collect()
}

/// Pids whose `argv[0]` has base name `name` and whose environment contains `key=value`.
/// This is how a test finds a daemon the watchdog started (Seesaw's watchdog sets argv[0] to
/// `seesaw_<service>`; a full path in argv[0] matches by its base name).
pub fn find_daemon(name: &str, key: &str, value: &str) -> Vec<i32> {
    let needle = format!("{key}={value}");
    all_pids()
        .into_iter()
        .filter(|&pid| {
            let argv0 = cmdline(pid).into_iter().next().unwrap_or_default();
            Path::new(&argv0).file_name().is_some_and(|n| n == name)
                && !is_zombie(pid)
                && environ(pid).contains(&needle)
        })
        .collect()
}

/// SIGTERMs `pids`, waits up to `grace` for them to go, then SIGKILLs the rest.
pub(crate) fn terminate_pids(pids: &[i32], grace: Duration) {
    for &pid in pids {
        let _ = kill(Pid::from_raw(pid), Signal::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while pids.iter().any(|&p| alive(p)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    for &pid in pids {
        if alive(pid) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

/// Whether `pid` exists and is not a zombie waiting to be reaped by someone else.
pub fn alive(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists() && !is_zombie(pid)
}

fn is_zombie(pid: i32) -> bool {
    // /proc/<pid>/stat is "pid (comm) S ..."; comm may contain spaces and parentheses, so the
    // state is the first field after the last ')'.
    let stat = read_lossy(Path::new(&format!("/proc/{pid}/stat")));
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .is_some_and(|state| state == "Z" || state == "X")
}

fn all_pids() -> Vec<i32> {
    let me = pid_of(std::process::id());
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
                .filter(|&p| p != me)
                .collect()
        })
        .unwrap_or_default()
}

fn nul_separated(path: &str) -> Vec<String> {
    std::fs::read(path)
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|s| !s.is_empty())
                .map(|s| String::from_utf8_lossy(s).into_owned())
                .collect()
        })
        .unwrap_or_default()
}

fn cmdline(pid: i32) -> Vec<String> {
    nul_separated(&format!("/proc/{pid}/cmdline"))
}

fn environ(pid: i32) -> Vec<String> {
    nul_separated(&format!("/proc/{pid}/environ"))
}

fn pid_of(id: u32) -> i32 {
    i32::try_from(id).expect("Linux pids fit in i32 (pid_max ≤ 2^22)")
}

/// Regular files under `dir`, recursively, sorted for a stable dump order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in rd.flatten() {
            let path = entry.path();
            // metadata() follows symlinks, so a `seesaw_x.log` link to the newest file is shown.
            match std::fs::metadata(&path) {
                Ok(m) if m.is_dir() => stack.push(path),
                Ok(m) if m.is_file() => out.push(path),
                _ => {}
            }
        }
    }
    // A `seesaw_x.log` symlink and the file it names are one log: print it once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())));
    out.sort();
    out
}

fn tail(s: &str) -> &str {
    if s.len() <= DUMP_TAIL_BYTES {
        return s;
    }
    let mut start = s.len() - DUMP_TAIL_BYTES;
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// CPU time `pid` has used so far (user + system, all threads), from `/proc/<pid>/stat`;
/// `None` when the process is gone or the line cannot be read.
pub fn cpu_time(pid: i32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields count from the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, utime 14 and stime 15 (1-based), i.e. 11 and 12 here.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let hz = u64::try_from(nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??).ok()?;
    Some(Duration::from_millis((utime + stime) * 1000 / hz.max(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end_on_a_char_boundary() {
        let s = format!("é{}", "x".repeat(DUMP_TAIL_BYTES));
        let t = tail(&s);
        assert_eq!(t.len(), DUMP_TAIL_BYTES);
        assert!(t.chars().all(|c| c == 'x'));
        assert_eq!(tail("short"), "short");
    }

    #[test]
    fn supervisor_finds_marked_children_and_stops_them() {
        let dir = tempfile::tempdir().expect("temp dir");
        let marker = (
            "SEESAW_LAB_TEST_MARKER".to_owned(),
            format!("{}", std::process::id()),
        );
        let mut sup = Supervisor::new(dir.path().to_path_buf(), marker.clone());
        let mut cmd = Command::new("sleep");
        cmd.arg("30");
        let id = sup.spawn("sleeper", cmd).expect("spawn sleep");
        let pid = pid_of(sup.pid(id));
        // Between fork and exec the child still shows this process's environment, so the marker
        // appears only once `sleep` runs: wait for it, bounded.
        let deadline = Instant::now() + Duration::from_secs(5);
        while pids_with_env(&marker.0, &marker.1).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(pids_with_env(&marker.0, &marker.1), vec![pid]);
        assert_eq!(find_daemon("sleep", &marker.0, &marker.1), vec![pid]);
        assert!(find_daemon("seesaw_engine", &marker.0, &marker.1).is_empty());
        assert!(sup.is_running(id));
        sup.shutdown();
        assert!(!sup.is_running(id));
        assert!(!alive(pid));
    }
}
