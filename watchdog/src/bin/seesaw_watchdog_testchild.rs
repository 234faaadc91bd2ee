//! TEST HELPER ONLY, not part of Seesaw: a tiny service the watchdog integration tests
//! supervise (the test machine has neither `socat` nor a usable `systemd-notify`). It refuses
//! to run unless `SEESAW_WATCHDOG_TESTCHILD=1` is set.
//!
//! Arguments are `key=value` words (the watchdog splits `args` on whitespace):
//! `name=N events=FILE [ready_after_ms=MS] [exit_after_ms=MS] [exit_code=C] [ignore_term]`.
//! It appends one line per event (`<unix ms> <name> <event> ...`) to `events`: `start` (with
//! pid, argv0, SEESAW_LOG_DIR and SEESAW_RUN_DIR), `ready` just before sending READY=1, `term` (then exits 0) or
//! `term-ignored` on SIGTERM, `usr1` on SIGUSR1 (a state dump request), and `exit` before
//! exiting with `exit_code`.

use std::collections::HashMap;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::signal::unix::{SignalKind, signal};

#[allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "the output is what the test checks"
)]
fn main() -> ExitCode {
    if std::env::var("SEESAW_WATCHDOG_TESTCHILD").as_deref() != Ok("1") {
        eprintln!("seesaw_watchdog_testchild is a test helper; set SEESAW_WATCHDOG_TESTCHILD=1");
        return ExitCode::from(64);
    }
    let mut argv = std::env::args();
    let argv0 = argv.next().unwrap_or_default();
    let opts: HashMap<String, String> = argv
        .map(|a| match a.split_once('=') {
            Some((k, v)) => (k.to_owned(), v.to_owned()),
            None => (a, String::new()),
        })
        .collect();
    let ms = |k: &str| {
        opts.get(k)
            .and_then(|v| v.parse().ok())
            .map(Duration::from_millis)
    };
    let name = opts.get("name").cloned().unwrap_or_else(|| "child".into());
    let Some(events) = opts.get("events").cloned() else {
        eprintln!("events=FILE is required");
        return ExitCode::from(64);
    };
    let log = |what: &str| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis();
        let line = format!("{now} {name} {what}\n");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&events);
        if let Err(e) = file.and_then(|mut f| f.write_all(line.as_bytes())) {
            eprintln!("cannot write {events}: {e}");
        }
    };
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    let (run_dir, log_dir) = (var("SEESAW_RUN_DIR"), var("SEESAW_LOG_DIR"));
    let pid = std::process::id();
    log(&format!(
        "start pid={pid} argv0={argv0} log_dir={log_dir} run_dir={run_dir}"
    ));
    println!("hello from {name} on stdout");
    eprintln!("hello from {name} on stderr");
    let Ok(rt) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return ExitCode::from(70);
    };
    let code = rt.block_on(async {
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            return 70;
        };
        let Ok(mut usr1) = signal(SignalKind::user_defined1()) else {
            return 70;
        };
        let exit_at = ms("exit_after_ms").map(|d| tokio::time::Instant::now() + d);
        tokio::time::sleep(ms("ready_after_ms").unwrap_or_default()).await;
        // Record first: once READY=1 is out, a dependent may start and log before us.
        log("ready");
        seesaw_common::ready::notify_ready();
        let exit_timer = async {
            match exit_at {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(exit_timer);
        loop {
            tokio::select! {
                _ = usr1.recv() => log("usr1"),
                _ = term.recv() => {
                    if opts.contains_key("ignore_term") {
                        log("term-ignored");
                    } else {
                        log("term");
                        return 0;
                    }
                }
                () = &mut exit_timer => {
                    let code = opts.get("exit_code").and_then(|c| c.parse().ok()).unwrap_or(0);
                    log(&format!("exit code={code}"));
                    return code;
                }
            }
        }
    });
    ExitCode::from(code)
}
