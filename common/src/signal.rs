//! Signals mapped onto one vocabulary: SIGTERM, SIGINT and SIGQUIT cancel the shutdown token;
//! SIGUSR1 asks for a state dump: every process logs its pid, uptime and runtime task count, then
//! whatever its actors registered with [`on_dump`], and wakes the returned `Notify` for any
//! dump of its own (the watchdog logs its services and passes the signal on to them).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::sync::{Arc, LazyLock, Mutex};
use std::time::Instant;

type Reporter = Box<dyn Fn() -> String + Send + Sync>;

/// What the actors of this process registered for SIGUSR1.
static REPORTERS: Mutex<Vec<(&'static str, Reporter)>> = Mutex::new(Vec::new());
/// When this process started (first use of this module, at `install`).
static STARTED: LazyLock<Instant> = LazyLock::new(Instant::now);

/// Registers an actor's state report for SIGUSR1 dumps. `report` must be quick and must not
/// block (it runs on the signal task); reading a `watch` or an atomic is the intended use.
pub fn on_dump(actor: &'static str, report: impl Fn() -> String + Send + Sync + 'static) {
    REPORTERS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((actor, Box::new(report)));
}

/// Logs the process's state: pid, uptime, live tasks, and every registered actor's report.
pub fn dump_state() {
    let tasks = tokio::runtime::Handle::try_current()
        .map(|h| h.metrics().num_alive_tasks())
        .ok();
    tracing::info!(
        pid = std::process::id(),
        uptime_s = STARTED.elapsed().as_secs(),
        tasks = ?tasks,
        "SIGUSR1: state dump"
    );
    let reporters = REPORTERS.lock().unwrap_or_else(|e| e.into_inner());
    for (actor, report) in reporters.iter() {
        // Called outside the macro: tracing skips its arguments when no subscriber listens.
        let state = report();
        tracing::info!(actor, %state, "state");
    }
}

/// A shutdown token the signals cancel ([`install`]), or, when the handlers cannot be installed,
/// the error logged and [`crate::exit::OSERR`] to leave with. Must be called inside a tokio
/// runtime.
pub fn shutdown_or_exit() -> Result<CancellationToken, std::process::ExitCode> {
    let shutdown = CancellationToken::new();
    match install(shutdown.clone()) {
        Ok(_) => Ok(shutdown),
        Err(e) => {
            tracing::error!(error = %e, "cannot install signal handlers");
            Err(std::process::ExitCode::from(crate::exit::OSERR))
        }
    }
}

/// Spawns the signal listener. Returns the notifier that fires on SIGUSR1.
/// Must be called inside a tokio runtime.
pub fn install(shutdown: CancellationToken) -> std::io::Result<Arc<Notify>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    LazyLock::force(&STARTED);
    let dump = Arc::new(Notify::new());
    let dump2 = dump.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); shutdown.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); shutdown.cancel(); }
                _ = quit.recv() => { tracing::info!("SIGQUIT: shutting down"); shutdown.cancel(); }
                _ = usr1.recv() => { dump_state(); dump2.notify_waiters(); }
            }
        }
    });
    Ok(dump)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reporters_run_on_a_dump() {
        use std::sync::atomic::{AtomicU32, Ordering};
        static CALLS: AtomicU32 = AtomicU32::new(0);
        on_dump("counter", || {
            CALLS.fetch_add(1, Ordering::SeqCst);
            "fine".to_owned()
        });
        dump_state();
        dump_state();
        assert_eq!(CALLS.load(Ordering::SeqCst), 2);
    }
}
