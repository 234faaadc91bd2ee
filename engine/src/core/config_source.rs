//! The driver's side of the config sources: background fetches (checked against this node's
//! seesaw.cfg off the loop), reading the config directory, checking and saving edits (fsync,
//! history) and fetched configs (archive), all on blocking threads or tasks; and starting peer
//! sync. What the core does with the results is in `machine/source.rs`.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::{self, Loaded};
use crate::events::{Edit, Event, ReloadReply, Snapshot};
use crate::machine::{FetchFrom, FetchReply, Fetched, LoadReply};
use crate::state::EngineState;

/// Archive bounds for configs replaced by fetched ones (Seesaw: 1500 files, 60 days).
pub(super) const ARCHIVE_KEEP: usize = 1500;
pub(super) const ARCHIVE_MAX_AGE: Duration = Duration::from_secs(60 * 86_400);

/// Starts a fetch in the background: from the config servers or the peer, then checked against
/// `<dir>/seesaw.cfg` on a blocking thread; the result comes back on `tx`.
pub(super) fn spawn_fetch(
    from: FetchFrom,
    dir: &std::path::Path,
    tx: mpsc::Sender<FetchReply>,
    reply: Option<oneshot::Sender<ReloadReply>>,
    peer: Option<crate::sync::PeerClient>,
) {
    let dir = dir.to_owned();
    tokio::spawn(async move {
        let r = match (from, peer) {
            (FetchFrom::Peer, Some(peer)) => peer.config().await,
            (FetchFrom::Peer, None) => {
                Err("config source peer: no peer is configured in seesaw.cfg".to_owned())
            }
            (FetchFrom::Server(src), _) => src.fetch().await.map_err(|e| e.to_string()),
        };
        let checked = match r {
            Ok(bytes) => tokio::task::spawn_blocking(move || check_fetched(&dir, &bytes))
                .await
                .unwrap_or_else(|e| Err(vec![format!("checking the fetched config failed: {e}")])),
            Err(e) => Err(vec![e]),
        };
        let _ = tx.send((checked, reply)).await;
    });
}

/// Parses and validates fetched cluster.pb bytes with this node's seesaw.cfg. Blocking.
fn check_fetched(dir: &std::path::Path, bytes: &[u8]) -> Result<Fetched, Vec<String>> {
    let settings = std::fs::read_to_string(dir.join("seesaw.cfg"))
        .map_err(|e| vec![format!("seesaw.cfg: {e}")])
        .and_then(|t| config::seesaw_cfg::parse_checked(&t))?;
    let pb = config::cluster::parse(bytes)?;
    let (cluster, _) = config::validate::validate(&pb)?;
    let plane = config::validate::check_plane(&cluster, settings.dataplane.effective());
    if !plane.is_empty() {
        return Err(plane);
    }
    Ok(Fetched {
        text: pb.to_text().into_bytes(),
        loaded: Loaded { settings, cluster },
    })
}

/// Saves an applied fetched config as `<dir>/cluster.pb`, the previous one archived, on a
/// blocking thread.
pub(super) fn save_fetched(dir: &std::path::Path, text: Vec<u8>) {
    let dir = dir.to_owned();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = crate::source::save_with_archive(
            &dir,
            &text,
            SystemTime::now(),
            ARCHIVE_KEEP,
            ARCHIVE_MAX_AGE,
        ) {
            // The new config still runs; only the copy on disk is stale.
            tracing::warn!(error = %e, "could not save the fetched config to disk");
        }
    });
}

/// Reads and validates `<dir>` (seesaw.cfg and cluster.pb) on a blocking thread, so a large or
/// hostile cluster.pb never stalls the event loop; the result comes back on `tx`.
pub(super) fn spawn_load(
    dir: &std::path::Path,
    tx: &mpsc::Sender<LoadReply>,
    reply: Option<oneshot::Sender<ReloadReply>>,
) {
    let (dir, tx) = (dir.to_owned(), tx.clone());
    tokio::task::spawn_blocking(move || {
        let loaded = config::load_dir(&dir);
        let _ = tx.blocking_send((loaded, reply));
    });
}

/// Checks and saves an edit on a blocking thread ([`check_and_save`]: parse, validate, write
/// cluster.pb with fsync, record its history version); the result comes back on `tx`.
pub(super) fn spawn_edit(dir: &std::path::Path, edit: Edit, tx: &mpsc::Sender<LoadReply>) {
    let (dir, tx) = (dir.to_owned(), tx.clone());
    tokio::task::spawn_blocking(move || {
        let checked = check_and_save(&dir, &edit.text, edit.base, &edit.who, &edit.what);
        let _ = tx.blocking_send((checked, Some(edit.reply)));
    });
}

/// Starts peer sync when `[cluster] peer_ipv4/6` is set: serves this node's sync API on its node
/// address and returns a client for the peer's. A bind failure is logged and sync stays off: the
/// node still load-balances, it only cannot mirror overrides.
pub(super) async fn start_sync(
    state: &EngineState,
    config_dir: &std::path::Path,
    snapshot: &watch::Receiver<Arc<Snapshot>>,
    events: &mpsc::Sender<Event>,
    shutdown: &CancellationToken,
) -> Option<crate::sync::PeerClient> {
    let s = &state.loaded().settings;
    let (node, peer) = match (s.node_ipv4, s.peer_ipv4, s.node_ipv6, s.peer_ipv6) {
        (Some(n), Some(p), _, _) => (std::net::IpAddr::V4(n), std::net::IpAddr::V4(p)),
        (_, _, Some(n), Some(p)) => (std::net::IpAddr::V6(n), std::net::IpAddr::V6(p)),
        _ => return None,
    };
    let allowed: Vec<std::net::IpAddr> = [
        s.peer_ipv4.map(Into::into),
        s.peer_ipv6.map(Into::into),
        s.node_ipv4.map(Into::into),
        s.node_ipv6.map(Into::into),
    ]
    .into_iter()
    .flatten()
    .collect();
    let bind = std::net::SocketAddr::new(node, s.sync_port);
    match tokio::net::TcpListener::bind(bind).await {
        Ok(listener) => {
            tracing::info!(%bind, %peer, "peer sync listening");
            tokio::spawn(crate::sync::serve(
                listener,
                allowed,
                config_dir.to_owned(),
                snapshot.clone(),
                events.clone(),
                shutdown.child_token(),
            ));
        }
        Err(e) => {
            tracing::error!(%bind, error = %e, "peer sync cannot listen; overrides will not be mirrored")
        }
    }
    match crate::sync::PeerClient::new(std::net::SocketAddr::new(peer, s.sync_port)) {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::error!(error = %e, "peer sync client");
            None
        }
    }
}

/// Validates `bytes` as the new cluster.pb with this node's seesaw.cfg, then saves it and records
/// a history version. `base` (non-zero) is the content tag of the cluster.pb the edit started
/// from: a cluster.pb changed since (by another edit or by hand) refuses it. Blocking (file I/O
/// with fsync): never call it on the event loop.
fn check_and_save(
    dir: &std::path::Path,
    bytes: &[u8],
    base: u64,
    who: &str,
    what: &str,
) -> Result<Loaded, Vec<String>> {
    if base != 0 {
        let now = std::fs::read(dir.join("cluster.pb"))
            .map(|b| crate::history::content_tag(&b))
            .unwrap_or(0);
        if now != base {
            return Err(vec![format!(
                "conflict: cluster.pb changed since this edit read it (revision {now}, not {base}); read it again and retry"
            )]);
        }
    }
    let loaded = match config::load_candidate(dir, bytes) {
        Ok(l) => l,
        Err(errors) => {
            tracing::warn!(by = %who, errors = errors.len(), "config update refused; nothing changed");
            return Err(config::summarize(errors, config::SHOWN_ERRORS));
        }
    };
    if let Err(e) = crate::history::write_atomic(&dir.join("cluster.pb"), bytes) {
        return Err(vec![format!("cannot write cluster.pb: {e}")]);
    }
    match crate::history::History::new(dir).record(bytes, who, what, SystemTime::now()) {
        Ok(v) => tracing::info!(version = v.id, by = %who, "{what}"),
        Err(e) => {
            tracing::warn!(error = %e, "config applied but its history version was not saved")
        }
    }
    Ok(loaded)
}
