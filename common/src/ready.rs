//! Readiness: a process says `READY=1` over the sd_notify protocol once it serves its socket.
//! systemd and our watchdog both listen on `NOTIFY_SOCKET`; without it this is a no-op.

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
