//! The one audited spawner: every child process of the watchdog starts here, with the same
//! hygiene (own process group, stdin from /dev/null, output into a file, optional privilege
//! drop). No parent-death signal: a child outlives a killed watchdog and is adopted by the next
//! one (see `supervisor`). It also holds the only `unsafe` code in this crate.

use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::path::Path;
use std::process::Stdio;

use tokio::process::{Child, Command};

/// What to run and how.
#[derive(Debug)]
pub struct SpawnSpec<'a> {
    /// The program.
    pub binary: &'a Path,
    /// `argv[0]` as the child sees it (`seesaw_<name>`).
    pub arg0: &'a str,
    /// `argv[1..]`.
    pub args: &'a [String],
    /// Variables to set on top of the watchdog's own environment.
    pub env: Vec<(&'static str, OsString)>,
    /// Variables to remove from the inherited environment.
    pub env_remove: Vec<&'static str>,
    /// Receives both stdout and stderr. Handing the file itself to the child (rather than
    /// copying a pipe) keeps logging working even while the watchdog is stalled.
    pub output: File,
    /// `(uid, gid)` to switch to; only meaningful when the watchdog is root.
    pub run_as: Option<(u32, u32)>,
    /// The only capabilities the child keeps (`capabilities =`); `None` leaves them alone.
    /// With a plan the uid switch happens in the plan (after `PR_SET_KEEPCAPS`), not in std.
    pub caps: Option<crate::caps::Plan>,
}

/// Starts the child. It is killed (SIGKILL) if the returned handle is dropped; it keeps running
/// if the watchdog dies.
pub fn spawn(spec: SpawnSpec<'_>) -> io::Result<Child> {
    let mut cmd = Command::new(spec.binary);
    cmd.arg0(spec.arg0)
        .args(spec.args)
        .stdin(Stdio::null())
        .stdout(spec.output.try_clone()?)
        .stderr(spec.output)
        .process_group(0)
        .kill_on_drop(true);
    for key in spec.env_remove {
        cmd.env_remove(key);
    }
    for (key, value) in spec.env {
        cmd.env(key, value);
    }
    // With a capability plan the plan switches uid itself, keeping the listed capabilities.
    if let (None, Some((uid, gid))) = (&spec.caps, spec.run_as) {
        // std drops supplementary groups (setgroups(0)) before setuid when running as root.
        cmd.uid(uid).gid(gid);
    }
    if let Some(plan) = spec.caps {
        drop_privileges(&mut cmd, plan);
    }
    cmd.spawn()
}

/// Applies the capability plan in the child, before exec.
#[allow(
    unsafe_code,
    reason = "pre_exec is unsafe; the closure is audited below"
)]
fn drop_privileges(cmd: &mut Command, plan: crate::caps::Plan) {
    // SAFETY: the closure runs in the forked child before exec, where only async-signal-safe
    // operations are allowed. It only issues raw syscalls through rustix (prctl, setgroups,
    // setresgid, setresuid, capset on values computed before the fork; see
    // `caps::Plan::apply_in_child`), captures plain values, does not allocate (a
    // `std::io::Error` built from an errno is not boxed) and takes no locks.
    unsafe {
        cmd.pre_exec(move || plan.apply_in_child());
    }
}
