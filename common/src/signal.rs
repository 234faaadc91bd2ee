//! Signals mapped onto one vocabulary: SIGTERM, SIGINT and SIGQUIT cancel the shutdown token;
//! SIGUSR1 asks for a state dump (each process logs its own actors' state).

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use std::sync::Arc;

/// Spawns the signal listener. Returns the notifier that fires on SIGUSR1.
/// Must be called inside a tokio runtime.
pub fn install(shutdown: CancellationToken) -> std::io::Result<Arc<Notify>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let dump = Arc::new(Notify::new());
    let dump2 = dump.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = term.recv() => { tracing::info!("SIGTERM: shutting down"); shutdown.cancel(); }
                _ = int.recv() => { tracing::info!("SIGINT: shutting down"); shutdown.cancel(); }
                _ = quit.recv() => { tracing::info!("SIGQUIT: shutting down"); shutdown.cancel(); }
                _ = usr1.recv() => { dump2.notify_waiters(); }
            }
        }
    });
    Ok(dump)
}
