//! Readiness: a process says `READY=1` over the sd_notify protocol once it serves its socket.
//! systemd and our watchdog both listen on `NOTIFY_SOCKET`; without it this is a no-op. A process
//! whose service manager set `WatchdogSec=` (`WATCHDOG_USEC` for this pid) also sends
//! `WATCHDOG=1` from its main loop at half that interval.

use std::time::Duration;

/// Tells the supervisor (systemd or `seesaw_watchdog`) that this process is ready.
pub fn notify_ready() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Ready]) {
        tracing::warn!(error = %e, "could not send readiness notification");
    }
}

/// Tells the supervisor that this process is stopping.
pub fn notify_stopping() {
    let _ = sd_notify::notify(&[sd_notify::NotifyState::Stopping]);
}

/// How often the service manager wants `WATCHDOG=1` from this process (half its timeout), if it
/// asked for pings at all (`WATCHDOG_USEC` set, and `WATCHDOG_PID` unset or this process).
pub fn watchdog_ping_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| (timeout / 2).max(Duration::from_millis(10)))
}

/// Sends one `WATCHDOG=1` keep-alive.
pub fn notify_watchdog() {
    if let Err(e) = sd_notify::notify(&[sd_notify::NotifyState::Watchdog]) {
        tracing::warn!(error = %e, "could not send the watchdog keep-alive");
    }
}
