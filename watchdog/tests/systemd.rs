//! The watchdog as a systemd service: `READY=1` once every service is ready and `WATCHDOG=1`
//! keep-alives at half of `WATCHDOG_USEC` on `NOTIFY_SOCKET`; SIGUSR1 passed on to the children;
//! and, as root, `capabilities =` leaving a child exactly the listed capabilities after a `user`
//! switch (skipped with a message when not root); and `systemd-analyze verify` of the shipped
//! unit where systemd is installed.
#![allow(clippy::print_stderr, reason = "skipped tests say why")]

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use support::{CHILD, WATCHDOG, Watchdog, wait_until, watchdog};

fn start(dir: &Path, cfg: &str, env: &[(&str, &str)]) -> Watchdog {
    let path = dir.join("watchdog.cfg");
    fs::write(&path, cfg).expect("write watchdog.cfg");
    watchdog(dir, &path, |cmd| {
        cmd.env_remove("WATCHDOG_USEC").env_remove("WATCHDOG_PID");
        for (k, v) in env {
            cmd.env(k, v);
        }
    })
}

#[test]
fn ready_and_keep_alives_reach_the_service_manager_and_usr1_reaches_children() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket_path = dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let events = dir.path().join("events");
    let cfg = format!(
        "[a]\nbinary = {CHILD}\nargs = name=a events={} ready_after_ms=50\n",
        events.display()
    );
    let wd = start(
        dir.path(),
        &cfg,
        &[
            ("NOTIFY_SOCKET", socket_path.to_str().expect("utf-8 path")),
            // 400 ms timeout: keep-alives every 200 ms.
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut got: Vec<(Instant, String)> = Vec::new();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    while started.elapsed() < Duration::from_secs(10) {
        if let Ok(n) = socket.recv(&mut buf) {
            got.push((
                Instant::now(),
                String::from_utf8_lossy(&buf[..n]).into_owned(),
            ));
        }
        let pings = got.iter().filter(|(_, m)| m.contains("WATCHDOG=1")).count();
        if pings >= 5 && got.iter().any(|(_, m)| m.contains("READY=1")) {
            break;
        }
    }
    let pings: Vec<Instant> = got
        .iter()
        .filter(|(_, m)| m.contains("WATCHDOG=1"))
        .map(|(t, _)| *t)
        .collect();
    assert!(got.iter().any(|(_, m)| m.contains("READY=1")), "{got:?}");
    assert!(pings.len() >= 5, "{got:?}");
    // Half the timeout, with slack for a loaded machine; never slower than the timeout.
    for w in pings.windows(2) {
        let gap = w[1] - w[0];
        assert!(gap < Duration::from_millis(400), "keep-alive gap {gap:?}");
    }

    // SIGUSR1 on the watchdog: it logs its services and passes the signal on.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(i32::try_from(wd.child.id()).expect("pid")).expect("pid"),
        rustix::process::Signal::USR1,
    )
    .expect("signal the watchdog");
    let stderr = dir.path().join("watchdog.stderr");
    wait_until(Duration::from_secs(5), "the watchdog's state dump", || {
        let log = fs::read_to_string(&stderr).unwrap_or_default();
        (log.contains("SIGUSR1: state dump") && log.contains("service=a")).then_some(())
    });
    // The child got it too.
    wait_until(Duration::from_secs(5), "the child's usr1 event", || {
        fs::read_to_string(&events)
            .ok()
            .filter(|t| t.contains(" a usr1"))
    });
}

#[test]
fn capabilities_are_exactly_what_the_config_lists() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("SKIP capabilities_are_exactly_what_the_config_lists: needs root");
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    // The watchdog opens each log file itself and hands the descriptor over, so `nobody` needs
    // no access to the temp dir.
    let cfg = "[raw]\nbinary = /bin/grep\nargs = -E ^(Uid|Cap(Inh|Prm|Eff|Bnd|Amb)) /proc/self/status\n\
               user = nobody\ncapabilities = CAP_NET_RAW\n\n\
               [bare]\nbinary = /bin/grep\nargs = -E ^(Uid|Cap(Eff|Bnd)) /proc/self/status\n\
               capabilities = none\n";
    let _wd = start(dir.path(), cfg, &[]);
    let read = |name: &str| {
        wait_until(Duration::from_secs(10), &format!("{name}'s output"), || {
            let text =
                fs::read_to_string(dir.path().join(format!("log/seesaw_{name}.log"))).ok()?;
            text.contains("CapBnd").then_some(text)
        })
    };
    let field = |text: &str, key: &str| -> String {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}:")))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    let raw = read("raw");
    // CAP_NET_RAW is bit 13.
    for key in ["CapPrm", "CapEff", "CapAmb", "CapBnd", "CapInh"] {
        assert_eq!(field(&raw, key), "0000000000002000", "{key} in\n{raw}");
    }
    assert_eq!(field(&raw, "Uid"), "65534", "{raw}");
    let bare = read("bare");
    assert_eq!(field(&bare, "Uid"), "0", "{bare}");
    for key in ["CapEff", "CapBnd"] {
        assert_eq!(field(&bare, key), "0000000000000000", "{key} in\n{bare}");
    }
}

/// `systemd-analyze verify` accepts the shipped unit (with `ExecStart` pointing at the built
/// binary, since verify checks that the program exists). Skipped where systemd is absent.
#[test]
fn systemd_analyze_verifies_the_unit() {
    let Ok(version) = Command::new("systemd-analyze").arg("--version").output() else {
        eprintln!("SKIP systemd_analyze_verifies_the_unit: systemd-analyze not installed");
        return;
    };
    assert!(version.status.success());
    let shipped =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../init/systemd/seesaw_watchdog.service");
    let text = fs::read_to_string(&shipped).expect("the shipped unit");
    assert!(
        text.contains("ExecStart=/usr/local/seesaw/seesaw_watchdog "),
        "{text}"
    );
    assert!(
        text.contains("Type=notify") && text.contains("WatchdogSec="),
        "{text}"
    );
    // The watchdog's death stops no child, the run dir survives the restart, and the restart
    // comes within 1 s (the new watchdog adopts the children).
    for want in [
        "\nKillMode=process\n",
        "\nRuntimeDirectoryPreserve=restart\n",
        "\nRestart=always\n",
        "\nRestartSec=500ms\n",
    ] {
        assert!(text.contains(want), "the unit lacks {want:?}");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let unit = dir.path().join("seesaw_watchdog.service");
    fs::write(
        &unit,
        text.replace("/usr/local/seesaw/seesaw_watchdog", WATCHDOG),
    )
    .expect("write");
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "systemd-analyze verify refused the unit:\n{stderr}"
    );
    // Other units on the host may draw warnings; ours must draw none.
    let ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("seesaw_watchdog.service"))
        .collect();
    assert!(ours.is_empty(), "{ours:#?}");
}
