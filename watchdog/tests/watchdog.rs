//! Runs the real `seesaw_watchdog` binary over a temp directory whose services are the
//! `seesaw_watchdog_testchild` helper: start order follows READY, a crash restarts after ~0.2 s,
//! output lands in the log file behind the symlink, and SIGTERM stops services dependents first
//! with SIGKILL for a child that ignores SIGTERM. A kill -9 of the watchdog leaves its children
//! running, and the next watchdog adopts them.

mod support;

use std::fs;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use support::{CHILD, WATCHDOG, wait_until, watchdog};

/// One line the test child appended: `<unix ms> <name> <what> [details]`.
#[derive(Debug)]
struct Event {
    ms: u128,
    name: String,
    what: String,
    details: String,
}

fn read_events(path: &Path) -> Vec<Event> {
    let text = fs::read_to_string(path).unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.splitn(4, ' ');
            Some(Event {
                ms: parts.next()?.parse().ok()?,
                name: parts.next()?.to_owned(),
                what: parts.next()?.to_owned(),
                details: parts.next().unwrap_or("").to_owned(),
            })
        })
        .collect()
}

/// Index of the `nth` (0-based) event `what` of service `name`.
fn find(events: &[Event], name: &str, what: &str, nth: usize) -> Option<usize> {
    events
        .iter()
        .enumerate()
        .filter(|(_, e)| e.name == name && e.what == what)
        .nth(nth)
        .map(|(i, _)| i)
}

#[test]
fn starts_in_readiness_order_restarts_crashes_and_stops_in_reverse() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let ev = dir.join("events");
    let ev = ev.display();
    let cfg = dir.join("watchdog.cfg");
    fs::write(
        &cfg,
        format!(
            "[c]\nbinary = {CHILD}\nargs = name=c events={ev}\ndependency = b\n\n\
             [crash]\nbinary = {CHILD}\nargs = name=crash events={ev} exit_after_ms=200 exit_code=3\n\n\
             [b]\nbinary = {CHILD}\nargs = name=b events={ev} ignore_term\ndependency = a\nterm_timeout = 700ms\n\n\
             [a]\nbinary = {CHILD}\nargs = name=a events={ev} ready_after_ms=300\npriority = 5\n"
        ),
    )
    .expect("write config");
    let notify_path = dir.join("watchdog.notify");
    let notify = UnixDatagram::bind(&notify_path).expect("bind notify socket");
    notify
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("set timeout");
    let mut wd = watchdog(dir, &cfg, |c| {
        c.env("NOTIFY_SOCKET", &notify_path);
    });
    let events_path = dir.join("events");

    // The watchdog announces READY once every service has been ready.
    let mut buf = [0u8; 512];
    let n = notify.recv(&mut buf).expect("watchdog READY within 10 s");
    assert!(
        String::from_utf8_lossy(&buf[..n])
            .lines()
            .any(|l| l == "READY=1")
    );

    // Start order follows readiness: b only after a's READY, c only after b's.
    let events = read_events(&events_path);
    let idx = |name, what| {
        find(&events, name, what, 0).unwrap_or_else(|| panic!("{name} {what} in {events:?}"))
    };
    assert!(idx("a", "start") < idx("a", "ready"));
    assert!(idx("a", "ready") < idx("b", "start"), "{events:?}");
    assert!(idx("b", "ready") < idx("c", "start"), "{events:?}");
    let run_dir = dir.join("run");
    let a_start = &events[idx("a", "start")];
    assert!(a_start.details.contains("argv0=seesaw_a "), "{a_start:?}");
    // Output is captured by the watchdog, so children must not open log files of their own.
    assert!(a_start.details.contains("log_dir= "), "{a_start:?}");
    assert!(
        a_start
            .details
            .ends_with(&format!("run_dir={}", run_dir.display())),
        "{a_start:?}"
    );
    assert!(run_dir.join("watchdog/a.notify").exists());

    // The crashing service comes back after the 0.2 s base delay.
    let events = wait_until(Duration::from_secs(8), "crash to restart", || {
        let events = read_events(&events_path);
        find(&events, "crash", "start", 1).map(|_| events)
    });
    let exit = &events[find(&events, "crash", "exit", 0).expect("crash exited")];
    assert_eq!(exit.details, "code=3");
    let restart = &events[find(&events, "crash", "start", 1).expect("crash restarted")];
    let gap = restart.ms - exit.ms;
    assert!((150..2000).contains(&gap), "restart gap {gap} ms");

    // Output goes to the timestamped file behind seesaw_<name>.log.
    let link = dir.join("log/seesaw_a.log");
    let target = fs::read_link(&link).expect("seesaw_a.log is a symlink");
    assert!(
        target.to_string_lossy().starts_with("seesaw_a.log."),
        "{target:?}"
    );
    let log = fs::read_to_string(&link).expect("read log through symlink");
    assert!(
        log.contains("hello from a on stdout") && log.contains("hello from a on stderr"),
        "{log}"
    );
    assert!(dir.join("log/seesaw_crash.log").exists());

    // SIGTERM: c first, then b (ignores SIGTERM, so SIGKILL after 700 ms), then a; exit 0.
    let status = wd.stop(Duration::from_secs(8));
    assert!(status.success(), "watchdog exit status {status}");
    let events = read_events(&events_path);
    let term_c = idx_of(&events, "c", "term");
    let term_b = idx_of(&events, "b", "term-ignored");
    let term_a = idx_of(&events, "a", "term");
    assert!(term_c < term_b && term_b < term_a, "{events:?}");
    let killed_after = events[term_a].ms - events[term_b].ms;
    assert!(
        killed_after >= 600,
        "a stopped only {killed_after} ms after b got SIGTERM"
    );
    // b never exited on its own: it was SIGKILLed (and reaped, so its pid is gone).
    let b_pid: i32 = events[find(&events, "b", "start", 0).expect("b started")]
        .details
        .split_whitespace()
        .find_map(|w| w.strip_prefix("pid="))
        .and_then(|p| p.parse().ok())
        .expect("b's pid");
    assert!(kill(Pid::from_raw(b_pid), None).is_err(), "b still alive");
}

fn idx_of(events: &[Event], name: &str, what: &str) -> usize {
    find(events, name, what, 0).unwrap_or_else(|| panic!("no {name} {what} in {events:?}"))
}

/// `seesaw_watchdog <validate> <config> path`, with the two flags spelt as given.
fn validate(flags: [&str; 2], path: &Path) -> std::process::Output {
    Command::new(WATCHDOG)
        .args(flags)
        .arg(path)
        .output()
        .expect("run")
}

#[test]
fn validate_prints_ok_or_every_error() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let good = tmp.path().join("good.cfg");
    fs::write(&good, "[a]\nbinary = /bin/true\n").expect("write");
    let out = validate(["--validate", "--config"], &good);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "config OK\n");

    let bad = tmp.path().join("bad.cfg");
    fs::write(
        &bad,
        "[a]\npriority = 50\n[b]\nbinary = /b\ndependency = zz\n",
    )
    .expect("write");
    // Go's single-dash flags too.
    let out = validate(["-validate", "-config"], &bad);
    assert_eq!(out.status.code(), Some(78));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let file = bad.display();
    for want in [
        format!("{file} [a] priority: 50 is outside the nice range -20..19"),
        format!("{file} [a] binary: required"),
        format!("{file} [b] dependency: unknown service \"zz\""),
    ] {
        assert!(stderr.contains(&want), "missing {want:?} in {stderr}");
    }
}

/// The status file, parsed, once `pred` holds for it.
fn status_when(
    path: &Path,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    wait_until(Duration::from_secs(10), what, || {
        let text = fs::read_to_string(path).ok()?;
        // Replaced by rename: a read never sees a partial file.
        let v: serde_json::Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("partial status file: {e}\n{text}"));
        pred(&v).then_some(v)
    })
}

fn service<'a>(v: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    v["services"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no service {name} in {v}"))
}

/// A config of two test children, `b` depending on `a` and ready 100 ms after start, both
/// logging to one events file: (config path, events path).
fn a_then_b(dir: &Path) -> (PathBuf, PathBuf) {
    let ev = dir.join("events");
    let cfg = dir.join("watchdog.cfg");
    fs::write(
        &cfg,
        format!(
            "[a]\nbinary = {CHILD}\nargs = name=a events={ev}\n\n\
             [b]\nbinary = {CHILD}\nargs = name=b events={ev} ready_after_ms=100\ndependency = a\n",
            ev = ev.display()
        ),
    )
    .expect("write config");
    (cfg, ev)
}

#[test]
fn status_file_counts_a_restart_after_a_kill_and_goes_away_on_stop() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (cfg, _) = a_then_b(dir);
    let mut wd = watchdog(dir, &cfg, |_| {});
    let path = dir.join("run/watchdog/status.json");

    let v = status_when(&path, "both services up", |v| {
        v["services"]
            .as_array()
            .is_some_and(|a| a.len() == 2 && a.iter().all(|s| s["ready"] == true))
    });
    assert_eq!(v["version"], 1);
    assert_eq!(v["watchdog_pid"], wd.child.id());
    // Start order, and no restart yet.
    assert_eq!(v["services"][0]["name"], "a");
    let b = service(&v, "b");
    assert_eq!(
        (b["restarts"].as_u64(), b["running"].as_bool()),
        (Some(0), Some(true))
    );
    let first_pid = b["pid"].as_i64().expect("b's pid");
    assert!(
        b["since_ms"]
            .as_i64()
            .is_some_and(|ms| ms > 1_600_000_000_000),
        "{b}"
    );

    // SIGKILL b: the file says it is down, then up again with one restart and a new pid.
    kill(
        Pid::from_raw(i32::try_from(first_pid).expect("pid fits")),
        Signal::SIGKILL,
    )
    .expect("kill b");
    let v = status_when(&path, "b down", |v| service(v, "b")["running"] == false);
    let b = service(&v, "b");
    assert_eq!(
        (b["pid"].is_null(), b["ready"].as_bool()),
        (true, Some(false)),
        "{b}"
    );
    assert_eq!(b["failures"], 1, "{b}");
    let v = status_when(&path, "b restarted and ready", |v| {
        let b = service(v, "b");
        b["ready"] == true && b["restarts"] == 1
    });
    let b = service(&v, "b");
    assert_ne!(b["pid"].as_i64(), Some(first_pid), "{b}");
    assert_eq!(service(&v, "a")["restarts"], 0);

    // A clean stop removes the file: nothing is supervised any more.
    let status = wd.stop(Duration::from_secs(8));
    assert!(status.success(), "watchdog exit status {status}");
    assert!(!path.exists(), "status file left behind");
}

/// The pids of every service once all of `names` are ready.
fn ready_pids(path: &Path, names: &[&str]) -> Vec<i64> {
    let v = status_when(path, "every service ready", |v| {
        names.iter().all(|n| {
            v["services"]
                .as_array()
                .and_then(|a| a.iter().find(|s| s["name"] == *n))
                .is_some_and(|s| s["ready"] == true)
        })
    });
    names
        .iter()
        .map(|n| service(&v, n)["pid"].as_i64().expect("pid"))
        .collect()
}

fn alive(pid: i64) -> bool {
    let pid = i32::try_from(pid).expect("pid fits");
    // A zombie is not alive: read its state.
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit(')')
                .next()
                .map(|r| r.trim_start().starts_with('Z'))
        })
        .is_some_and(|zombie| !zombie)
}

#[test]
fn a_killed_watchdog_leaves_children_serving_and_the_next_one_adopts_them() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    let (cfg, ev) = a_then_b(dir);
    let status = dir.join("run/watchdog/status.json");
    let mut first = watchdog(dir, &cfg, |_| {});
    let pids = ready_pids(&status, &["a", "b"]);

    // kill -9 of the watchdog: the children keep running, nobody stops them.
    first.child.kill().expect("kill -9 the watchdog");
    first.child.wait().expect("reap it");
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        pids.iter().all(|&p| alive(p)),
        "a child died with its watchdog"
    );
    let events = read_events(&ev);
    assert!(
        !events.iter().any(|e| e.what.starts_with("term")),
        "a child was stopped: {events:?}"
    );

    // The next watchdog adopts both (same pids, no new start), ready at once.
    let _ = fs::remove_file(&status);
    let mut second = watchdog(dir, &cfg, |_| {});
    assert_eq!(ready_pids(&status, &["a", "b"]), pids);
    let starts = |events: &[Event]| events.iter().filter(|e| e.what == "start").count();
    assert_eq!(starts(&read_events(&ev)), 2, "a duplicate was started");

    // An adopted child that dies is restarted like any other.
    kill(
        Pid::from_raw(i32::try_from(pids[0]).expect("pid fits")),
        Signal::SIGKILL,
    )
    .expect("kill a");
    let v = status_when(&status, "a restarted", |v| {
        let a = service(v, "a");
        a["ready"] == true && a["pid"].as_i64() != Some(pids[0])
    });
    assert_eq!(service(&v, "a")["restarts"], 1);
    assert_eq!(service(&v, "b")["pid"].as_i64(), Some(pids[1]));

    // An orderly stop still stops everything, the adopted b before a.
    let exit = second.stop(Duration::from_secs(10));
    assert!(exit.success(), "{exit}");
    let events = read_events(&ev);
    let term_b = idx_of(&events, "b", "term");
    let term_a = idx_of(&events, "a", "term");
    assert!(term_b < term_a, "{events:?}");
    wait_until(Duration::from_secs(5), "the adopted b to be gone", || {
        (!alive(pids[1])).then_some(())
    });
}
