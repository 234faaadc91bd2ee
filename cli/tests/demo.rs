//! `seesaw demo`'s life cycle with stand-in daemons: a copy of the `seesaw` binary sits in a temp
//! dir next to stub daemons, and the stub `seesaw_watchdog` serves the VIP itself (it runs
//! `seesaw demo-backend` on 127.0.0.1:P). The real daemons are exercised by the end-to-end tests.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use seesaw_cli::demo::DAEMONS;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

/// Held while writing executables and spawning: a fork in another test thread while a file is
/// open for writing would make exec'ing it fail with ETXTBSY.
static EXEC_LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// A bin dir holding a copy of `seesaw` and stub daemons; `watchdog` is the stub watchdog's body.
fn bin_dir(watchdog: &str) -> tempfile::TempDir {
    let _guard = EXEC_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::copy(env!("CARGO_BIN_EXE_seesaw"), dir.path().join("seesaw")).expect("copy seesaw");
    for name in DAEMONS {
        let body = if name == "seesaw_watchdog" {
            watchdog
        } else {
            "exit 0"
        };
        let path = dir.path().join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write stub");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    dir
}

/// A watchdog stand-in that serves the VIP port named in cluster.pb.
const SERVING_WATCHDOG: &str = r#"
while [ $# -gt 0 ]; do case "$1" in --config-dir) CONF=$2; shift;; esac; shift; done
PORT=$(sed -n 's/^ *port: \([0-9]*\)$/\1/p' "$CONF/cluster.pb")
exec "$(dirname "$0")/seesaw" demo-backend --listen "127.0.0.1:$PORT" --name vip"#;

/// Starts `seesaw demo` from `bin`.
fn demo(bin: &Path) -> tokio::process::Child {
    let _guard = EXEC_LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    Command::new(bin.join("seesaw"))
        .arg("demo")
        .env_remove("CARGO")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn demo")
}

/// Whether `pid` runs (a zombie, left unreaped by a container's init, counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Reads the `demo vip:` and `demo run dir:` lines; returns the VIP and the temp dir.
async fn first_lines(child: &mut tokio::process::Child) -> (String, PathBuf) {
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = tokio::time::timeout(Duration::from_secs(60), stdout.next_line())
        .await
        .expect("demo is up in time")
        .expect("read stdout")
        .expect("a first line");
    let vip = first
        .strip_prefix("demo vip: ")
        .expect("vip line")
        .to_owned();
    let second = stdout
        .next_line()
        .await
        .expect("read")
        .expect("second line");
    let run_dir = PathBuf::from(second.strip_prefix("demo run dir: ").expect("run dir line"));
    // Keep draining stdout so the demo never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = stdout.next_line().await {} });
    (vip, run_dir.parent().expect("temp dir").to_owned())
}

async fn answers(addr: &str) -> bool {
    seesaw_cli::demo_backend::get(addr.parse().expect("addr"), Duration::from_secs(2))
        .await
        .is_ok()
}

#[tokio::test]
async fn demo_comes_up_prints_its_lines_and_cleans_up_on_sigterm() {
    let bin = bin_dir(SERVING_WATCHDOG);
    let mut child = demo(bin.path());
    let (vip, root) = first_lines(&mut child).await;
    assert!(
        root.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with("seesaw-demo.")),
        "{}",
        root.display()
    );
    let port: u16 = vip
        .strip_prefix("127.0.0.1:")
        .expect("on 127.0.0.1")
        .parse()
        .expect("port");

    let answer = seesaw_cli::demo_backend::get(vip.parse().expect("addr"), Duration::from_secs(5))
        .await
        .expect("VIP answers");
    assert_eq!(answer.body, "vip\n");
    let be1 = seesaw_cli::demo_backend::get(
        format!("127.0.0.2:{port}").parse().expect("addr"),
        Duration::from_secs(5),
    )
    .await
    .expect("be1 answers");
    assert_eq!(be1.backend.as_deref(), Some("be1"));
    let be2_pid: i32 = std::fs::read_to_string(root.join("demo/be2.pid"))
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    assert!(alive(be2_pid));
    let cfg = std::fs::read_to_string(root.join("config/watchdog.cfg")).expect("watchdog.cfg");
    assert!(cfg.contains(&format!("binary = {}/seesaw_ncc", bin.path().display())));

    let pid = Pid::from_raw(i32::try_from(child.id().expect("running")).expect("pid fits"));
    kill(pid, Signal::SIGTERM).expect("signal the demo");
    let status = tokio::time::timeout(Duration::from_secs(40), child.wait())
        .await
        .expect("demo stops in time")
        .expect("wait");
    assert_eq!(status.code(), Some(0));
    assert!(!root.exists(), "temp dir removed");
    assert!(!alive(be2_pid), "backend stopped");
    assert!(
        seesaw_cli::demo_backend::get(vip.parse().expect("addr"), Duration::from_secs(5))
            .await
            .is_err(),
        "the stand-in watchdog stopped"
    );
}

#[tokio::test]
async fn a_dying_watchdog_fails_the_demo_with_its_logs() {
    let bin = bin_dir("echo 'stub watchdog: giving up' >&2; exit 3");
    let mut child = demo(bin.path());
    let mut stderr = String::new();
    let mut pipe = child.stderr.take().expect("stderr");
    let status = tokio::time::timeout(Duration::from_secs(60), async {
        pipe.read_to_string(&mut stderr).await.expect("read stderr");
        child.wait().await.expect("wait")
    })
    .await
    .expect("demo fails in time");
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("seesaw_watchdog exited unexpectedly (exit status: 3)"),
        "{stderr}"
    );
    assert!(stderr.contains("stub watchdog: giving up"), "{stderr}");
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut stdout)
        .await
        .expect("read stdout");
    assert_eq!(stdout, "", "nothing on stdout before the demo is up");
}

#[tokio::test]
async fn missing_daemons_are_named_with_the_build_command() {
    let bin = bin_dir("exit 0");
    std::fs::remove_file(bin.path().join("seesaw_ha")).expect("remove");
    let out = demo(bin.path()).wait_with_output().await.expect("run demo");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("seesaw_ha; build them with `cargo build --workspace --bins`"),
        "{stderr}"
    );
}

/// A watchdog stand-in that needs to be stopped: a shell serving the VIP from a background
/// process, which it kills on SIGTERM.
const STUBBORN_WATCHDOG: &str = r#"
while [ $# -gt 0 ]; do case "$1" in --config-dir) CONF=$2; shift;; esac; shift; done
PORT=$(sed -n 's/^ *port: \([0-9]*\)$/\1/p' "$CONF/cluster.pb")
"$(dirname "$0")/seesaw" demo-backend --listen "127.0.0.1:$PORT" --name vip &
trap 'kill $!; exit 0' TERM
wait"#;

#[tokio::test]
async fn a_killed_demo_leaves_nothing_behind() {
    let bin = bin_dir(STUBBORN_WATCHDOG);
    let mut child = demo(bin.path());
    let (vip, root) = first_lines(&mut child).await;
    let port = vip.strip_prefix("127.0.0.1:").expect("on 127.0.0.1");
    let backends = [format!("127.0.0.2:{port}"), format!("127.0.0.3:{port}")];
    assert!(answers(&vip).await);
    child.start_kill().expect("SIGKILL the demo");
    child.wait().await.expect("reap the demo");
    // The guard and the backends poll for their parent every 500 ms.
    let mut gone = false;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if !answers(&vip).await && !answers(&backends[0]).await && !answers(&backends[1]).await {
            gone = true;
            break;
        }
    }
    assert!(gone, "every process of the demo stopped");
    // SIGKILL gives no chance to clean up the temp dir.
    std::fs::remove_dir_all(root).expect("remove the temp dir");
}
