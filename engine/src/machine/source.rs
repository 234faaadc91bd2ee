//! Where the engine's cluster config comes from (`ConfigSource`), and what the core does with a
//! config read, edited or fetched off the loop: pure decisions on [`EngineState`], no I/O (the
//! driver's `core/config_source.rs` reads, validates and saves on blocking threads).

use std::time::{Duration, SystemTime};

use tokio::sync::oneshot;

use crate::config::{self, Loaded};
use crate::events::ReloadReply;
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
    /// edits are compare-and-swap writes to etcd (`core/etcd_source.rs`). The default with `[etcd]`.
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
        from: HaRole,
        to: HaRole,
        settings: &config::Settings,
    ) -> Option<Self> {
        let transition = from != to && matches!(to, HaRole::Leader | HaRole::Backup);
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

use crate::state::HaRole;

/// How often a churn-limited config takes its next step.
pub const CONVERGE_EVERY: Duration = Duration::from_secs(5);

/// A reload waiting for its outcome: the operator's reply (if any) and the outcome.
pub type Pending = (Option<oneshot::Sender<ReloadReply>>, ReloadOutcome);

/// A config read and validated off the loop (or every reason it was refused), with the reply
/// waiting for it.
pub type LoadReply = (
    Result<Loaded, Vec<String>>,
    Option<oneshot::Sender<ReloadReply>>,
);

/// A config fetched from a config server or the peer and checked against this node's seesaw.cfg
/// off the loop: the text to save and the config it holds.
#[derive(Debug)]
pub struct Fetched {
    /// cluster.pb as text, saved with the previous one archived when applied.
    pub text: Vec<u8>,
    /// The validated config.
    pub loaded: Loaded,
}

/// A fetch's outcome with the reply waiting for it.
pub type FetchReply = (
    Result<Fetched, Vec<String>>,
    Option<oneshot::Sender<ReloadReply>>,
);

/// Applies an edit checked and saved off the loop; a refused edit changes nothing (and is not a
/// refused reload: the running config was never in question).
pub fn apply_edit(
    state: &mut EngineState,
    checked: Result<Loaded, Vec<String>>,
    now: SystemTime,
) -> ReloadOutcome {
    match checked {
        Ok(loaded) => ReloadOutcome::Applied(state.reload(loaded, now)),
        Err(errors) => ReloadOutcome::Refused(errors),
    }
}

/// Applies a config read off the loop, or records why it was refused (the running config stays).
pub fn apply_loaded(
    state: &mut EngineState,
    loaded: Result<Loaded, Vec<String>>,
    now: SystemTime,
) -> ReloadOutcome {
    match loaded {
        Ok(loaded) => {
            let generation = state.reload(loaded, now);
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

/// Applies a fetched config unless it is older than or identical to the running one; returns
/// the outcome and, when applied, the text to save.
pub fn apply_fetched(
    state: &mut EngineState,
    fetched: Result<Fetched, Vec<String>>,
    now: SystemTime,
) -> (ReloadOutcome, Option<Vec<u8>>) {
    let Fetched { text, loaded } = match fetched {
        Ok(f) => f,
        Err(errors) => {
            tracing::warn!(errors = ?errors, "fetched configuration refused; the running config stays");
            state.reload_refused(errors.clone());
            return (ReloadOutcome::Refused(errors), None);
        }
    };
    let current = state.full_config();
    if loaded.cluster.metadata.last_updated < current.cluster.metadata.last_updated {
        let why = format!(
            "fetched config is older (last_updated {} < {}), ignored",
            loaded.cluster.metadata.last_updated, current.cluster.metadata.last_updated
        );
        tracing::info!("{why}");
        return (ReloadOutcome::Unchanged(why), None);
    }
    if current.cluster == loaded.cluster && current.settings == loaded.settings {
        let why = "fetched config is identical to the running one".to_owned();
        return (ReloadOutcome::Unchanged(why), None);
    }
    let generation = state.reload(loaded, now);
    tracing::info!(generation, "fetched configuration applied");
    (ReloadOutcome::Applied(generation), Some(text))
}

#[cfg(test)]
mod tests {
    use super::{ConfigSource, HaRole};
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
            hand.after_ha_change(HaRole::Backup, HaRole::Leader, &served),
            Some(ConfigSource::Server)
        );
        assert_eq!(
            hand.after_ha_change(HaRole::Unknown, HaRole::Backup, &served),
            Some(ConfigSource::Server)
        );
        // No transition, a transition to neither role, or already the default: nothing changes.
        assert_eq!(
            hand.after_ha_change(HaRole::Leader, HaRole::Leader, &served),
            None
        );
        assert_eq!(
            hand.after_ha_change(HaRole::Leader, HaRole::Shutdown, &served),
            None
        );
        assert_eq!(
            ConfigSource::Server.after_ha_change(HaRole::Backup, HaRole::Leader, &served),
            None
        );
        // Without config servers `disk` is the default, and a hand-chosen `none` goes back to it.
        assert_eq!(
            ConfigSource::None.after_ha_change(HaRole::Backup, HaRole::Leader, &plain),
            Some(ConfigSource::Disk)
        );
    }
}
