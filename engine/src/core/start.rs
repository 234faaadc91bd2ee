//! The driver's start and stop: the first snapshot and peer sync, the API server, the channels
//! background work reports on, ncc's boot-id watch and the adoption of what the plane already
//! holds; and the graceful teardown at shutdown.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::config_source::start_sync;
use super::{ConfigSource, Driver, EngineError, Event, dump, etcd_source, now};
use crate::config::Loaded;
use crate::machine::{Engine, FetchReply, Input, LoadReply};
use crate::ncc_port::{Ncc, NccBgp, NccError, PlaneStats};

/// Deadline of the teardown at shutdown.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// What the loop listens on besides the shutdown and its tick.
pub(super) struct Inbox {
    /// Events from the API, peer sync and the ha watch.
    pub(super) events: mpsc::Receiver<Event>,
    /// Counters read from ncc.
    pub(super) stats: mpsc::Receiver<Result<PlaneStats, NccError>>,
    /// ncc's boot ids.
    pub(super) boot: mpsc::Receiver<u64>,
    /// Config edits written.
    pub(super) edit: mpsc::Receiver<LoadReply>,
    /// Config reads.
    pub(super) load: mpsc::Receiver<LoadReply>,
    /// The etcd follower's messages.
    pub(super) etcd: mpsc::Receiver<etcd_source::Stamped>,
    /// Configs fetched from a server or the peer.
    pub(super) fetch: mpsc::Receiver<FetchReply>,
    /// When the ha process was last heard.
    pub(super) pulse: Arc<crate::events::HaPulse>,
    /// The API server.
    pub(super) server: JoinHandle<Result<(), tonic::transport::Error>>,
}

/// Starts everything around the core and returns it with the driver and the loop's inbox.
pub(super) async fn start<N: Ncc + NccBgp>(
    loaded: Loaded,
    listener: UnixListener,
    ncc: N,
    config_dir: PathBuf,
    shutdown: &CancellationToken,
) -> (Engine, Driver<N>, Inbox) {
    let etcd_settings = loaded.settings.etcd.clone();
    let (etcd, etcd_rx, etcd_shared) =
        etcd_source::EtcdSource::new(etcd_settings.clone(), &config_dir);
    let (tx, rx) = mpsc::channel::<Event>(1024);
    // Peer sync needs the first snapshot; whether it runs is known only after it started, so
    // the core is made twice: once to publish, once with the peer known.
    let mut first = Engine::new(
        loaded.clone(),
        config_dir.clone(),
        (false, etcd_settings.is_some()),
        now(),
    );
    let (snap_tx, snap_rx) = watch::channel(Arc::new(first.snapshot()));
    // Peer sync runs only when a peer is configured: it serves the master's overrides to the backup
    // and carries a backup's `failover` to the master.
    let peer = start_sync(first.state(), &config_dir, &snap_rx, &tx, shutdown).await;
    drop(first);
    let mut engine = Engine::new(
        loaded,
        config_dir.clone(),
        (peer.is_some(), etcd_settings.is_some()),
        now(),
    );
    let applies = dump::ApplyLog::default();
    dump::register(snap_rx.clone(), Arc::clone(&applies));
    let pulse = Arc::new(crate::events::HaPulse::default());
    let server = tokio::spawn(crate::server::serve(
        listener,
        snap_rx,
        tx.clone(),
        Arc::clone(&pulse),
        config_dir.clone(),
        etcd_shared,
        shutdown.child_token(),
    ));
    seesaw_common::ready::notify_ready();
    tracing::info!(dir = %config_dir.display(), "engine running");

    let (fetch_tx, fetch) = mpsc::channel::<FetchReply>(4);
    let (load_tx, load) = mpsc::channel::<LoadReply>(4);
    let (edit_tx, edit) = mpsc::channel::<LoadReply>(4);
    let (stats_tx, stats) = mpsc::channel::<Result<PlaneStats, NccError>>(1);
    let ncc = Arc::new(ncc);
    let mut d = Driver {
        ncc: Arc::clone(&ncc),
        config_dir,
        peer,
        etcd,
        snap_tx,
        applies,
        events: tx,
        fetch_tx,
        load_tx,
        edit_tx,
        stats_tx,
        ha_watch: None,
    };
    if engine.source() == ConfigSource::Etcd
        && let Err(e) = d.etcd.start()
    {
        tracing::error!("{e}");
    }
    d.publish(engine.snapshot());
    // ncc's boot id, watched over a stream that ends the moment ncc dies: a new id means a
    // restarted ncc, which gets the desired state at once instead of at the next reconcile.
    let (boot_tx, boot) = mpsc::channel::<u64>(4);
    {
        let ncc = Arc::clone(&ncc);
        tokio::spawn(async move { ncc.watch(boot_tx).await });
    }
    // Adopt what the plane already holds (an engine restart must not flush it). ncc starts before
    // the engine, so a short bounded wait is enough; without it the start-up gate still protects.
    for _ in 0..10 {
        match ncc.stats().await {
            Ok(s) => {
                crate::config::seesaw_cfg::set_running_plane(s.kind.as_str());
                d.step(&mut engine, Input::Adopt(s)).await;
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "ncc not reachable yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    let inbox = Inbox {
        events: rx,
        stats,
        boot,
        edit,
        load,
        etcd: etcd_rx,
        fetch,
        pulse,
        server,
    };
    (engine, d, inbox)
}

/// Graceful stop: takes everything this engine put in the data plane down (Seesaw does the
/// same), then waits briefly for the API server. A crash (SIGKILL) skips this, and the
/// restarted engine adopts what the plane holds.
pub(super) async fn stop<N: Ncc + NccBgp>(
    engine: &mut Engine,
    ncc: &N,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
) -> Result<(), EngineError> {
    tracing::info!("engine stopping: tearing down the data plane");
    let (withdraw, empty) = engine.teardown(now());
    // Withdraw every announcement before the services go.
    if let Some(req) = withdraw {
        let _ = tokio::time::timeout(TEARDOWN_DEADLINE, ncc.bgp_set(&req)).await;
    }
    match tokio::time::timeout(TEARDOWN_DEADLINE, ncc.apply(&Arc::new(empty))).await {
        Ok(Ok(c)) => tracing::info!(changes = c.len(), "teardown done"),
        Ok(Err(e)) => tracing::warn!(error = %e, "teardown failed"),
        Err(_) => tracing::warn!("teardown timed out"),
    }
    seesaw_common::ready::notify_stopping();
    // Open client connections (a shell, a late healthcheck) may hold the graceful drain: bound it.
    let Ok(server) = tokio::time::timeout(Duration::from_secs(1), server).await else {
        tracing::info!("closing remaining client connections");
        return Ok(());
    };
    match server {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(EngineError::Serve(e)),
        Err(e) => {
            tracing::error!(error = %e, "server task failed");
            Ok(())
        }
    }
}
