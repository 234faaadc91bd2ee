//! Where the engine's cluster config comes from: the `ConfigSource` (disk, config servers, the
//! peer, none), background fetches, applying fetched or edited configs (with history and archive),
//! and starting peer sync. Split out of the event loop in `core`, which calls these.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use super::{Event, ReloadReply, Snapshot};
use crate::config::{self, Loaded};
use crate::state::{EngineState, ReloadOutcome};

/// Where the engine takes its cluster config from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    /// `<config-dir>/cluster.pb` (the default without `[config_server]` servers).
    Disk,
    /// The `[config_server]` servers over HTTPS, polled every `config_interval_sec`; a fetched
    /// config is saved to `<config-dir>/cluster.pb` with the previous one archived. The default
    /// when seesaw.cfg names a config server, as in Seesaw.
    Server,
    /// The peer engine's cluster.pb, over peer sync (each node keeps its own copy on disk).
    Peer,
    /// The `[etcd]` key, watched: every node of a scale-out cluster runs the same config, and
    /// edits are compare-and-swap writes to etcd (`etcd_source`). The default with `[etcd]`.
    Etcd,
    /// Nothing: reloads keep the running config.
    None,
}

impl ConfigSource {
    /// Whether configs come over the network (fetched in the background).
    pub fn is_remote(self) -> bool {
        matches!(self, Self::Server | Self::Peer)
    }

    /// Parses `disk`, `server`, `peer` or `none`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "disk" => Ok(Self::Disk),
            "server" => Ok(Self::Server),
            "peer" => Ok(Self::Peer),
            "etcd" => Ok(Self::Etcd),
            "none" => Ok(Self::None),
            other => Err(format!(
                "unknown config source {other:?} (want disk, server, peer, etcd or none)"
            )),
        }
    }

    /// Seesaw's default source: `server` when seesaw.cfg's `[config_server]` names a server,
    /// else `disk` (a node without config servers has nothing else to read).
    pub fn default_for(settings: &config::Settings) -> Self {
        if settings.etcd.is_some() {
            Self::Etcd
        } else if settings.config_server_configured {
            Self::Server
        } else {
            Self::Disk
        }
    }

    /// The source after the HA state changed from `from` to `to`: Seesaw resets a source an
    /// operator chose by hand back to the default whenever the node becomes master or backup
    /// (`becomeMaster`/`becomeBackup`), so both nodes of a pair follow the same source. `None`
    /// when nothing changes.
    pub fn after_ha_change(
        self,
        from: &str,
        to: &str,
        settings: &config::Settings,
    ) -> Option<Self> {
        let transition = from != to && matches!(to, "LEADER" | "BACKUP");
        let default = Self::default_for(settings);
        (transition && self != default).then_some(default)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disk => "disk",
            Self::Server => "server",
            Self::Peer => "peer",
            Self::Etcd => "etcd",
            Self::None => "none",
        }
    }
}

/// How often a churn-limited config takes its next step.
pub(super) const CONVERGE_EVERY: Duration = Duration::from_secs(5);
/// Archive bounds for configs replaced by fetched ones (Seesaw: 1500 files, 60 days).
pub(super) const ARCHIVE_KEEP: usize = 1500;
pub(super) const ARCHIVE_MAX_AGE: Duration = Duration::from_secs(60 * 86_400);

pub(super) type FetchReply = (
    Result<Vec<u8>, String>,
    Option<oneshot::Sender<ReloadReply>>,
);

/// Starts a config-server fetch in the background; the result comes back on `tx`.
pub(super) fn spawn_fetch(
    state: &EngineState,
    dir: &std::path::Path,
    tx: mpsc::Sender<FetchReply>,
    reply: Option<oneshot::Sender<ReloadReply>>,
    source: ConfigSource,
    peer: Option<crate::sync::PeerClient>,
) {
    let s = &state.loaded().settings;
    let src = crate::source::ServerSource {
        servers: s.config_servers.clone(),
        port: s.config_server_port,
        cluster: s.cluster_name.clone(),
        ca_file: s
            .config_server_ca
            .clone()
            .unwrap_or_else(|| dir.join("ssl").join("ca.crt")),
        timeout: Duration::from_secs(20),
    };
    tokio::spawn(async move {
        let r = match (source, peer) {
            (ConfigSource::Peer, Some(peer)) => peer.config().await,
            (ConfigSource::Peer, None) => {
                Err("config source peer: no peer is configured in seesaw.cfg".to_owned())
            }
            _ => src.fetch().await.map_err(|e| e.to_string()),
        };
        let _ = tx.send((r, reply)).await;
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

/// Validates `bytes` as cluster.pb against the current seesaw.cfg (all errors, nothing changed on
/// error), then writes it as `<dir>/cluster.pb`, records a history version, and reloads.
/// Starts a config edit (`UpdateCluster`, rollback) off the loop: [`check_and_save`] runs on a
/// blocking thread — parse, validate, write cluster.pb (fsync) and its history version — and the
/// result comes back on `tx` for [`apply_edit`]. Refused at once while another config change is
/// in flight, so edits land on disk in the order they are applied.
pub(super) fn start_edit(
    dir: &std::path::Path,
    (bytes, base): (Vec<u8>, u64),
    who: String,
    what: String,
    tx: &mpsc::Sender<LoadReply>,
    reply: oneshot::Sender<ReloadReply>,
    in_flight: &mut bool,
) -> Option<Pending> {
    if *in_flight {
        let why = vec!["another configuration change is in progress; try again".to_owned()];
        return Some((Some(reply), ReloadOutcome::Refused(why)));
    }
    *in_flight = true;
    let (dir, tx) = (dir.to_owned(), tx.clone());
    tokio::task::spawn_blocking(move || {
        let checked = check_and_save(&dir, &bytes, base, &who, &what);
        let _ = tx.blocking_send((checked, Some(reply)));
    });
    None
}

/// Applies an edit checked and saved by [`start_edit`]; a refused edit changes nothing (and is
/// not a refused reload: the running config was never in question).
pub(super) fn apply_edit(
    state: &mut EngineState,
    checked: Result<Loaded, Vec<String>>,
) -> ReloadOutcome {
    match checked {
        Ok(loaded) => ReloadOutcome::Applied(state.reload(loaded, SystemTime::now())),
        Err(errors) => ReloadOutcome::Refused(errors),
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

/// Applies a fetched config: validates it, ignores it if older or identical, saves it (text, with
/// the previous file archived) and reloads.
pub(super) fn apply_fetched(
    state: &mut EngineState,
    dir: &std::path::Path,
    fetched: Result<Vec<u8>, String>,
) -> ReloadOutcome {
    let refused = |state: &mut EngineState, errors: Vec<String>| {
        tracing::warn!(errors = ?errors, "fetched configuration refused; the running config stays");
        state.reload_refused(errors.clone());
        ReloadOutcome::Refused(errors)
    };
    let bytes = match fetched {
        Ok(b) => b,
        Err(e) => return refused(state, vec![e]),
    };
    let settings = match std::fs::read_to_string(dir.join("seesaw.cfg"))
        .map_err(|e| vec![format!("seesaw.cfg: {e}")])
        .and_then(|t| config::seesaw_cfg::parse_checked(&t))
    {
        Ok(s) => s,
        Err(e) => return refused(state, e),
    };
    let pb = match config::cluster::parse(&bytes) {
        Ok(pb) => pb,
        Err(e) => return refused(state, e),
    };
    let cluster = match config::validate::validate(&pb) {
        Ok((c, _)) => c,
        Err(e) => return refused(state, e),
    };
    let plane = config::validate::check_plane(&cluster, settings.dataplane.effective());
    if !plane.is_empty() {
        return refused(state, plane);
    }
    let current = &state.full_config().cluster;
    if cluster.metadata.last_updated < current.metadata.last_updated {
        let why = format!(
            "fetched config is older (last_updated {} < {}), ignored",
            cluster.metadata.last_updated, current.metadata.last_updated
        );
        tracing::info!("{why}");
        return ReloadOutcome::Unchanged(why);
    }
    if *current == cluster && state.full_config().settings == settings {
        return ReloadOutcome::Unchanged(
            "fetched config is identical to the running one".to_owned(),
        );
    }
    if let Err(e) = crate::source::save_with_archive(
        dir,
        config::cluster::to_text(&pb).as_bytes(),
        SystemTime::now(),
        ARCHIVE_KEEP,
        ARCHIVE_MAX_AGE,
    ) {
        // The new config still runs; only the copy on disk is stale.
        tracing::warn!(error = %e, "could not save the fetched config to disk");
    }
    let generation = state.reload(Loaded { settings, cluster }, SystemTime::now());
    tracing::info!(generation, "fetched configuration applied");
    ReloadOutcome::Applied(generation)
}

/// A config directory read and validated off the loop, with the reply waiting for it.
pub(super) type LoadReply = (
    Result<Loaded, Vec<String>>,
    Option<oneshot::Sender<ReloadReply>>,
);

/// A reload waiting for its outcome: the operator's reply (if any) and the outcome.
pub(super) type Pending = (Option<oneshot::Sender<ReloadReply>>, ReloadOutcome);

/// Starts a reload of `<dir>` (seesaw.cfg and cluster.pb): reading, parsing and validating run
/// on a blocking thread, so a large or hostile cluster.pb never stalls the event loop (`show`
/// commands and HA reports keep being answered); the result comes back on `tx` for
/// [`apply_loaded`]. Returns the outcome at once when there is nothing to start: source `none`,
/// or a reload already in flight.
pub(super) fn start_reload(
    dir: &std::path::Path,
    source: ConfigSource,
    tx: &mpsc::Sender<LoadReply>,
    reply: Option<oneshot::Sender<ReloadReply>>,
    in_flight: &mut bool,
) -> Option<Pending> {
    if source == ConfigSource::None {
        tracing::info!("config source is none: reload keeps the running config");
        let why = vec!["config source is none: nothing to load".to_owned()];
        return Some((reply, ReloadOutcome::Refused(why)));
    }
    if *in_flight {
        let why = vec!["a reload is already in progress".to_owned()];
        return Some((reply, ReloadOutcome::Refused(why)));
    }
    *in_flight = true;
    let (dir, tx) = (dir.to_owned(), tx.clone());
    tokio::task::spawn_blocking(move || {
        let loaded = config::load_dir(&dir);
        let _ = tx.blocking_send((loaded, reply));
    });
    None
}

/// Applies a config read by [`start_reload`], or records why it was refused (the running config
/// stays).
pub(super) fn apply_loaded(
    state: &mut EngineState,
    loaded: Result<Loaded, Vec<String>>,
) -> ReloadOutcome {
    match loaded {
        Ok(loaded) => {
            let generation = state.reload(loaded, SystemTime::now());
            tracing::info!(generation, "configuration reloaded");
            ReloadOutcome::Applied(generation)
        }
        Err(errors) => {
            tracing::warn!(
                errors = errors.len(),
                "configuration reload refused; the running config stays"
            );
            for e in errors.iter().take(config::SHOWN_ERRORS) {
                tracing::warn!("  {e}");
            }
            state.reload_refused(errors.clone());
            ReloadOutcome::Refused(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ConfigSource;
    use crate::config::seesaw_cfg;

    #[test]
    fn the_default_is_server_with_config_servers_and_ha_transitions_reset_to_it() {
        let plain = seesaw_cfg::parse("[cluster]\nname = t\n").unwrap();
        let served =
            seesaw_cfg::parse("[cluster]\nname = t\n[config_server]\nprimary = cfg.example.com\n")
                .unwrap();
        assert_eq!(ConfigSource::default_for(&plain), ConfigSource::Disk);
        assert_eq!(ConfigSource::default_for(&served), ConfigSource::Server);
        // An operator chose `disk` by hand; becoming master or backup resets it, as in Seesaw.
        let hand = ConfigSource::Disk;
        assert_eq!(
            hand.after_ha_change("BACKUP", "LEADER", &served),
            Some(ConfigSource::Server)
        );
        assert_eq!(
            hand.after_ha_change("UNKNOWN", "BACKUP", &served),
            Some(ConfigSource::Server)
        );
        // No transition, a transition to neither role, or already the default: nothing changes.
        assert_eq!(hand.after_ha_change("LEADER", "LEADER", &served), None);
        assert_eq!(hand.after_ha_change("LEADER", "SHUTDOWN", &served), None);
        assert_eq!(
            ConfigSource::Server.after_ha_change("BACKUP", "LEADER", &served),
            None
        );
        // Without config servers `disk` is the default, and a hand-chosen `none` goes back to it.
        assert_eq!(
            ConfigSource::None.after_ha_change("BACKUP", "LEADER", &plain),
            Some(ConfigSource::Disk)
        );
    }
}
