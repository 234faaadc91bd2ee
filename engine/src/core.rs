//! The engine's event loop: one owner of [`EngineState`], fed by a closed set of events (config
//! reload, health results, HA reports, a tick), which after every event re-evaluates health, drives
//! ncc towards the desired state when it changed, and publishes a snapshot for the API to read.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::desired::DesiredState;
use crate::ncc_port::{Ncc, NccBgp};
use crate::state::{EngineState, ReloadOutcome, VserverView};

mod config_source;
mod dump;
mod etcd_source;

pub use crate::events::{BgpNeighborsReply, Event, HaConfigView, ReloadReply, Snapshot};

pub use crate::etcd::{EtcdShared, EtcdView};
pub use config_source::ConfigSource;
use config_source::{
    CONVERGE_EVERY, FetchReply, LoadReply, apply_edit, apply_fetched, apply_loaded, spawn_fetch,
    start_edit, start_reload, start_sync,
};
pub use etcd_source::merge as merge_members;

/// Why the engine stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The gRPC server failed.
    #[error("engine API server failed")]
    Serve(#[source] tonic::transport::Error),
}

/// How often the loop ticks (stats refresh, retries, start-up gate).
const TICK: Duration = Duration::from_secs(1);
/// How often plane counters are read (at the least: see the loop).
const STATS_EVERY: Duration = Duration::from_secs(2);
/// A full re-apply this often repairs drift even when nothing changed.
const RECONCILE_EVERY: Duration = Duration::from_secs(30);
/// Deadline of the teardown at shutdown.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// Runs the engine until `shutdown` is cancelled: serves the API on `listener` and drives `ncc`.
/// `config_dir` is re-read on `config reload`.
pub async fn run<N: Ncc + NccBgp>(
    loaded: Loaded,
    listener: UnixListener,
    ncc: N,
    config_dir: PathBuf,
    shutdown: CancellationToken,
) -> Result<(), EngineError> {
    let mut state = EngineState::new(loaded, SystemTime::now());
    state.require_ha();
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let (views, _) = state.evaluate();
    let mut source = ConfigSource::default_for(&state.loaded().settings);
    let (mut etcd, mut etcd_rx, etcd_shared) =
        etcd_source::EtcdSource::new(state.loaded().settings.etcd.clone(), &config_dir);
    if source == ConfigSource::Etcd
        && let Err(e) = etcd.start()
    {
        tracing::error!("{e}");
    }
    let first = snapshot(&state, "unknown", views, (source, etcd.view()));
    let (snap_tx, snap_rx) = watch::channel(Arc::new(first));
    let applies = dump::ApplyLog::default();
    dump::register(snap_rx.clone(), Arc::clone(&applies));

    // Peer sync runs only when a peer is configured: it serves the master's overrides to the backup
    // and carries a backup's `failover` to the master.
    let peer = start_sync(&state, &config_dir, &snap_rx, &tx, &shutdown).await;
    let events = tx.clone();
    let pulse = Arc::new(crate::events::HaPulse::default());
    let server = crate::server::serve(
        listener,
        snap_rx,
        tx,
        Arc::clone(&pulse),
        config_dir.clone(),
        etcd_shared,
        shutdown.child_token(),
    );
    let server = tokio::spawn(server);
    seesaw_common::ready::notify_ready();
    tracing::info!(dir = %config_dir.display(), "engine running");

    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_applied: Option<DesiredState> = None;
    // A refused apply is retried with backoff while the desired state stays the same (a new
    // desired state is tried at once): (next try, failures in a row, the state refused).
    let mut apply_failed: Option<(tokio::time::Instant, u32, DesiredState)> = None;
    let mut last_apply_at = tokio::time::Instant::now();
    let mut plane_kind = String::from("unknown");
    let mut ticks: u64 = 0;
    let (fetch_tx, mut fetch_rx) = mpsc::channel::<FetchReply>(4);
    let mut fetch_in_flight = false;
    let (load_tx, mut load_rx) = mpsc::channel::<LoadReply>(4);
    // Edits (UpdateCluster, rollback) are checked and saved off the loop too; one config change
    // (reload or edit) is in flight at a time.
    let (edit_tx, mut edit_rx) = mpsc::channel::<LoadReply>(4);
    let mut load_in_flight = false;
    let ncc = Arc::new(ncc);
    let mut bgp = BgpSync::default();
    // ncc's boot id, watched over a stream that ends the moment ncc dies: a new id means a
    // restarted ncc, which gets the desired state at once instead of at the next reconcile.
    let (boot_tx, mut boot_rx) = mpsc::channel::<u64>(4);
    {
        let ncc = Arc::clone(&ncc);
        tokio::spawn(async move { ncc.watch(boot_tx).await });
    }
    let mut ncc_boot: Option<u64> = None;
    let (stats_tx, mut stats_rx) =
        mpsc::channel::<Result<crate::ncc_port::PlaneStats, crate::ncc_port::NccError>>(1);
    let mut stats_in_flight = false;
    // The reporting ha process, watched through a pidfd: its exit makes HA UNKNOWN at once.
    let mut ha_watch: Option<(i32, Arc<AtomicBool>)> = None;
    // Counters are read every STATS_EVERY, or less often when a read is slow (nftables at
    // 10,000 services takes seconds): at most a fifth of ncc's time goes to counters.
    let mut stats_started = tokio::time::Instant::now();
    let mut stats_due = tokio::time::Instant::now();
    let mut last_poll = tokio::time::Instant::now();
    let mut last_converge = tokio::time::Instant::now();
    // Adopt what the plane already holds (an engine restart must not flush it). ncc starts before
    // the engine, so a short bounded wait is enough; without it the start-up gate still protects.
    for _ in 0..10 {
        match ncc.stats().await {
            Ok(s) => {
                tracing::info!(plane = %s.kind, destinations = s.dests.len(), "adopting the data plane's current state");
                state.presume(s.dests.keys().copied());
                state.adopt_fwmarks(&s.fwmarks);
                crate::config::seesaw_cfg::set_running_plane(&s.kind);
                plane_kind = s.kind;
                break;
            }
            Err(e) => {
                tracing::debug!(error = %e, "ncc not reachable yet");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
    loop {
        let mut pending: Option<(Option<oneshot::Sender<ReloadReply>>, ReloadOutcome)> = None;
        let mut ha_reply: Option<oneshot::Sender<bool>> = None;
        // An override is answered only after the snapshot shows it: an operator's next `show`
        // reads what they just set (read-your-writes).
        let mut override_reply = None;
        tokio::select! {
            () = shutdown.cancelled() => break,
            ev = rx.recv() => match ev {
                Some(Event::Reload(reply)) if source.is_remote() => {
                    if fetch_in_flight {
                        let _ = reply.send(ReloadReply {
                            outcome: ReloadOutcome::Refused(vec!["reload request already queued".to_owned()]),
                            changes: None,
                        });
                    } else {
                        fetch_in_flight = true;
                        last_poll = tokio::time::Instant::now();
                        spawn_fetch(&state, &config_dir, fetch_tx.clone(), Some(reply), source, peer.clone());
                    }
                }
                Some(Event::Reload(reply)) if source == ConfigSource::Etcd => {
                    // The watch delivers every revision; a reload re-reads the key from scratch.
                    etcd.stop();
                    let started = etcd.start();
                    let why = started.map_or_else(|e| e, |()| "config source etcd: re-reading the key".to_owned());
                    pending = Some((Some(reply), ReloadOutcome::Unchanged(why)));
                }
                Some(Event::Reload(reply)) => {
                    pending = start_reload(&config_dir, source, &load_tx, Some(reply), &mut load_in_flight);
                }
                Some(Event::Health(results, stats)) => {
                    state.health(results);
                    state.probe_stats(stats);
                }
                Some(Event::Trace(q, reply)) => {
                    let ncc = Arc::clone(&ncc);
                    tokio::spawn(async move {
                        let _ = reply.send(ncc.trace(q).await.map_err(|e| e.to_string()));
                    });
                }
                Some(Event::BgpNeighbors(reply)) => {
                    let ncc = Arc::clone(&ncc);
                    tokio::spawn(async move {
                        let _ = reply.send(ncc.bgp_neighbors().await);
                    });
                }
                Some(Event::Ha(ha, pid, reply)) => {
                    if ha.state != state.ha_view().state {
                        tracing::info!(from = %state.ha_view().state, to = %ha.state, "ha state");
                    }
                    if let Some(reset) = source.after_ha_change(&state.ha_view().state, &ha.state, &state.loaded().settings) {
                        tracing::info!(from = %source.as_str(), to = %reset.as_str(), "ha transition: config source reset to the default, as in Seesaw");
                        // The path of an operator's `config source`: switch, then reload or fetch.
                        let (reply, _) = oneshot::channel();
                        let _ = events.try_send(Event::ConfigSource { source: reset.as_str().to_owned(), reply });
                    }
                    state.ha(ha);
                    ha_reply = Some(reply);
                    if let Some(pid) = pid.filter(|p| ha_watch.as_ref().is_none_or(|(w, _)| w != p)) {
                        if let Some((_, old)) = ha_watch.take() {
                            old.store(true, Ordering::Relaxed);
                        }
                        ha_watch = Some((pid, watch_exit(pid, events.clone())));
                    }
                }
                Some(Event::HaGone(pid)) => {
                    if ha_watch.as_ref().is_some_and(|(w, _)| *w == pid) {
                        ha_watch = None;
                        state.ha_gone(SystemTime::now());
                    }
                }
                Some(Event::Failover(reply)) if state.ha_view().state == "BACKUP" && peer.is_some() => {
                    // An operator on the backup: the master must hand over, so ask it.
                    let peer = peer.clone().expect("checked in the guard");
                    tokio::spawn(async move {
                        let r = peer.failover().await;
                        match &r {
                            Ok(m) => tracing::info!("failover {m}"),
                            Err(e) => tracing::warn!("failover relay failed: {e}"),
                        }
                        let _ = reply.send(r);
                    });
                }
                Some(Event::Preview { candidate, reply }) => {
                    let builds = crate::preview::builds_tables(&plane_kind, &candidate.settings);
                    let _ = reply.send(crate::preview::preview(&state, *candidate, SystemTime::now(), builds));
                }
                Some(Event::UpdateCluster { text, who, what, base, reply }) if source == ConfigSource::Etcd => {
                    let base = i64::try_from(base).unwrap_or(i64::MAX);
                    pending = etcd.update(text, crate::etcd::Meta::now(&who, &what), base, (reply, state.anchors().clone()));
                }
                Some(Event::UpdateCluster { text, who, what, base, reply }) => {
                    pending = start_edit(&config_dir, (text, base), who, what, &edit_tx, reply, &mut load_in_flight);
                }
                Some(Event::Rollback { id, who, reply }) if source == ConfigSource::Etcd => {
                    pending = etcd.rollback(id, who, (reply, state.anchors().clone()));
                }
                Some(Event::Rollback { id, who, reply }) => {
                    // Reading one history file is small; parsing and saving it run off the loop.
                    match crate::history::History::new(&config_dir).get(id) {
                        Ok(bytes) => {
                            let what = format!("rollback to version {id}");
                            pending = start_edit(&config_dir, (bytes, 0), who, what, &edit_tx, reply, &mut load_in_flight);
                        }
                        Err(e) => {
                            let why = vec![format!("config history has no version {id}: {e}")];
                            pending = Some((Some(reply), ReloadOutcome::Refused(why)));
                        }
                    }
                }
                Some(Event::PeerOverrides(list)) => {
                    if state.ha_view().state == "BACKUP" && state.mirror_overrides(&list, SystemTime::now()) {
                        tracing::info!(overrides = list.len(), "mirrored the master's overrides");
                    }
                }
                Some(Event::Failover(reply)) => {
                    let r = state.request_failover().map_err(|e| e.to_string());
                    match &r {
                        Ok(_) => tracing::info!("failover requested"),
                        Err(e) => tracing::warn!("failover refused: {e}"),
                    }
                    let _ = reply.send(r);
                }
                Some(Event::Override { kind, target, state: new, caller, reply }) => {
                    let r = state.set_override(kind, &target, new, &caller, SystemTime::now());
                    match &r {
                        Ok(msg) => tracing::info!(by = %caller.user, "override: {msg}"),
                        Err(e) => tracing::warn!(by = %caller.user, "override refused: {e}"),
                    }
                    override_reply = Some((reply, r));
                }
                Some(Event::ConfigSource { source: wanted, reply }) => {
                    let previous = source.as_str().to_owned();
                    if wanted.is_empty() {
                        let _ = reply.send(Ok((previous.clone(), previous)));
                    } else {
                        match ConfigSource::parse(&wanted) {
                            Ok(ConfigSource::Etcd) if !etcd.configured() => {
                                let _ = reply.send(Err("config source etcd: seesaw.cfg has no [etcd] endpoints".to_owned()));
                            }
                            Ok(s) => {
                                if s == ConfigSource::Etcd {
                                    let _ = etcd.start();
                                } else {
                                    etcd.stop();
                                }
                                source = s;
                                tracing::info!(from = %previous, to = %source.as_str(), "config source changed");
                                let _ = reply.send(Ok((source.as_str().to_owned(), previous)));
                                if source.is_remote() {
                                    if !fetch_in_flight {
                                        fetch_in_flight = true;
                                        last_poll = tokio::time::Instant::now();
                                        spawn_fetch(&state, &config_dir, fetch_tx.clone(), None, source, peer.clone());
                                    }
                                } else if source != ConfigSource::Etcd {
                                    pending = start_reload(&config_dir, source, &load_tx, None, &mut load_in_flight);
                                }
                            }
                            Err(e) => {
                                let _ = reply.send(Err(e));
                            }
                        }
                    }
                }
                None => break,
            },
            Some(stats) = stats_rx.recv() => {
                stats_in_flight = false;
                stats_due = stats_started + STATS_EVERY.max(stats_started.elapsed() * 5);
                match stats {
                    Ok(s) => {
                        crate::config::seesaw_cfg::set_running_plane(&s.kind);
                        plane_kind = s.kind;
                        state.stats(s.dests, s.tables);
                    }
                    Err(e) => tracing::debug!(error = %e, "stats unavailable"),
                }
            }
            Some(boot) = boot_rx.recv() => {
                if ncc_boot.is_some_and(|b| b != boot) {
                    tracing::warn!("ncc restarted: sending it the desired state now");
                    last_applied = None;
                    bgp.ncc_restarted();
                }
                ncc_boot = Some(boot);
            }
            Some((checked, reply)) = edit_rx.recv() => {
                load_in_flight = false;
                let outcome = apply_edit(&mut state, checked);
                pending = Some((reply, outcome));
            }
            Some((loaded, reply)) = load_rx.recv() => {
                load_in_flight = false;
                let outcome = apply_loaded(&mut state, loaded);
                pending = Some((reply, outcome));
            }
            Some(msg) = etcd_rx.recv() => {
                pending = etcd.on_msg(&mut state, msg);
            }
            Some((fetched, reply)) = fetch_rx.recv() => {
                fetch_in_flight = false;
                let outcome = apply_fetched(&mut state, &config_dir, fetched);
                pending = Some((reply, outcome));
            }
            _ = tick.tick() => {
                ticks += 1;
                if let Some(peer) = &peer
                    && state.ha_view().state == "BACKUP"
                    && ticks.is_multiple_of(crate::sync::POLL_EVERY.as_secs().max(1))
                {
                    let (peer, events) = (peer.clone(), events.clone());
                    tokio::spawn(async move {
                        match peer.overrides().await {
                            Ok((list, _)) => {
                                let _ = events.send(Event::PeerOverrides(list)).await;
                            }
                            Err(e) => tracing::debug!("peer sync: {e}"),
                        }
                    });
                }
                // Liveness comes from the API handler: reports queued behind a busy loop count.
                if let Some(at) = pulse.last() {
                    state.ha_heard(at);
                }
                state.ha_expire(SystemTime::now());
                if source.is_remote()
                    && !fetch_in_flight
                    && last_poll.elapsed() >= state.loaded().settings.config_interval
                {
                    fetch_in_flight = true;
                    last_poll = tokio::time::Instant::now();
                    spawn_fetch(&state, &config_dir, fetch_tx.clone(), None, source, peer.clone());
                }
                if state.converging() && last_converge.elapsed() >= CONVERGE_EVERY {
                    last_converge = tokio::time::Instant::now();
                    state.converge(SystemTime::now());
                }
                // Counters are read off the loop: a slow stats call must never delay an HA report
                // (a new master's VIPs wait for the loop).
                if !stats_in_flight && tokio::time::Instant::now() >= stats_due {
                    stats_in_flight = true;
                    stats_started = tokio::time::Instant::now();
                    let (ncc, tx) = (Arc::clone(&ncc), stats_tx.clone());
                    tokio::spawn(async move {
                        let _ = tx.send(ncc.stats().await).await;
                    });
                }
            }
        }

        let (views, desired) = state.evaluate();
        let bgp_wanted = state.bgp_desired(&desired);
        let mut changes = None;
        let due = last_apply_at.elapsed() >= RECONCILE_EVERY;
        let forced = matches!(pending, Some((_, ReloadOutcome::Applied(_))));
        let may_apply = state.may_apply(SystemTime::now());
        // BGP withdrawals go out before the services behind them leave the plane.
        if may_apply {
            bgp.withdraw_first(&*ncc, bgp_wanted.as_ref()).await;
        }
        let mut plane_holds = last_applied.as_ref() == Some(&desired);
        let backing_off = apply_failed.as_ref().is_some_and(|(at, _, refused)| {
            tokio::time::Instant::now() < *at && *refused == desired
        });
        if may_apply && !backing_off && (last_applied.as_ref() != Some(&desired) || due || forced) {
            match ncc.apply(&desired).await {
                Ok(c) => {
                    tracing::info!(
                        changes = c.len(),
                        services = desired.services.len(),
                        "applied desired state"
                    );
                    for change in &c {
                        tracing::info!("  {change}");
                    }
                    changes = Some(c.len());
                    plane_holds = true;
                    dump::record(&applies, desired.services.len(), Ok(c.len()));
                    last_applied = Some(desired);
                    apply_failed = None;
                    state.apply_result(None);
                }
                Err(e) => {
                    let failures = apply_failed.as_ref().map_or(0, |f| f.1) + 1;
                    let wait = apply_backoff(failures);
                    tracing::warn!(error = %e, retry_in = ?wait, "applying desired state failed; the plane keeps what it holds");
                    plane_holds = false;
                    dump::record(&applies, desired.services.len(), Err(e.to_string()));
                    state.apply_result(Some(e.to_string()));
                    apply_failed = Some((tokio::time::Instant::now() + wait, failures, desired));
                }
            }
            last_apply_at = tokio::time::Instant::now();
        }
        // Announcements only for what the plane holds now.
        if may_apply && plane_holds {
            bgp.announce(&*ncc, bgp_wanted).await;
        }
        let mut views = views;
        if !plane_holds {
            let why = state
                .apply_error()
                .unwrap_or("the data plane has not been programmed yet")
                .to_owned();
            mark_unapplied(&mut views, last_applied.as_ref(), &why);
        }
        // Callers hear back after the snapshot reflects what they asked for.
        let snap = snapshot(&state, &plane_kind, views, (source, etcd.view()));
        snap_tx.send_replace(Arc::new(snap));
        // The ha process hears back only once the plane reflects its report: a LEADER handing
        // over sends its priority-0 advert after its VIPs are down.
        // A report answered on the API's fast path has no listener: it must never consume a
        // pending failover, or the hand-over an operator asked for is lost.
        if let Some(reply) = ha_reply
            && !reply.is_closed()
        {
            let _ = reply.send(state.take_failover());
        }
        if let Some((Some(reply), outcome)) = pending {
            let _ = reply.send(ReloadReply { outcome, changes });
        }
        if let Some((reply, r)) = override_reply {
            let _ = reply.send(r);
        }
    }

    // Graceful stop: take everything this engine put in the data plane down (Seesaw does the same).
    // A crash (SIGKILL) skips this, and the restarted engine adopts what the plane holds.
    tracing::info!("engine stopping: tearing down the data plane");
    // Withdraw every announcement before the services go.
    let _ = tokio::time::timeout(TEARDOWN_DEADLINE, bgp.withdraw_first(&*ncc, None)).await;
    // The LB interface goes down with it (this node no longer serves; the peer takes over).
    let teardown = DesiredState {
        lb: Some(crate::desired::LbDesired {
            up: false,
            ..state.lb_desired()
        }),
        ..DesiredState::default()
    };
    match tokio::time::timeout(TEARDOWN_DEADLINE, ncc.apply(&teardown)).await {
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

/// A configured path as the HA config carries it ("" = not configured).
fn path_string(p: Option<&std::path::Path>) -> String {
    p.map(|p| p.display().to_string()).unwrap_or_default()
}

fn snapshot(
    state: &EngineState,
    plane: &str,
    vservers: Vec<VserverView>,
    (source, etcd): (ConfigSource, Option<EtcdView>),
) -> Snapshot {
    let mut warnings = state.warnings();
    if let Some(EtcdView {
        key,
        revision,
        trouble: Some(why),
    }) = &etcd
    {
        warnings.push(format!(
            "config source etcd ({key}): {why}; serving revision {revision}, saved on disk"
        ));
    }
    let loaded = state.loaded().clone();
    let local = loaded.local_node().cloned();
    let s = &loaded.settings;
    let ha_config = HaConfigView {
        enabled: local.as_ref().is_some_and(|n| n.ha_enabled),
        local_addr: s.node_ipv4.map(|a| a.to_string()).unwrap_or_default(),
        remote_addr: s.peer_ipv4.map(|a| a.to_string()).unwrap_or_default(),
        priority: local.as_ref().map_or(0, |n| u32::from(n.priority)),
        vrid: u32::from(s.vrid),
        advert_interval_ms: u32::try_from(s.ha_advert_interval.as_millis()).unwrap_or(u32::MAX),
        preempt: s.ha_preempt,
        auth_key_file: path_string(s.ha_auth_key_file.as_deref()),
        auth_accept_key_file: path_string(s.ha_auth_accept_key_file.as_deref()),
    };
    let (generation, loaded_at, reload_failures, last_errors) = state.config_meta();
    Snapshot {
        site: s.cluster_name.clone(),
        nodes: loaded
            .cluster
            .nodes
            .iter()
            .map(|n| (n.clone(), local.as_ref().is_some_and(|l| l.host == n.host)))
            .collect(),
        dataplane: if plane == "unknown" {
            s.dataplane.as_str().to_owned()
        } else {
            plane.to_owned()
        },
        vservers,
        checks: state.checks().cloned().collect(),
        ha: state.ha_view().clone(),
        failover_pending: state.failover_pending(),
        ha_config,
        last_updated: loaded.cluster.metadata.last_updated,
        attributes: loaded.cluster.metadata.attributes.clone(),
        loaded_at,
        generation,
        reload_failures,
        last_reload_errors: last_errors.to_vec(),
        warnings,
        source: source.as_str().to_owned(),
        etcd,
        vip_pools: state.full_config().cluster.vip_pools.clone(),
        overrides: state
            .overrides()
            .iter()
            .map(|(k, t, o)| (k, t.to_owned(), o.state, o.set_by.clone(), o.set_at))
            .collect(),
        vlans: crate::state::vlan_views(&state.full_config().cluster),
    }
}

/// Resend the BGP announcements this often even when nothing changed: a restarted ncc or GoBGP
/// daemon gets them back within this time.
const BGP_RESYNC_EVERY: Duration = Duration::from_secs(5);
/// Deadline of one BGP update through ncc.
const BGP_CALL_DEADLINE: Duration = Duration::from_secs(1);
/// After a failed BGP update the next one waits 1 s, then twice as long after every further
/// failure, up to this: the loop waits for each attempt (up to [`BGP_CALL_DEADLINE`]), so a
/// speaker that does not answer must not cost that on every event the loop handles.
const BGP_RETRY_MAX: Duration = Duration::from_secs(5);

/// What ncc last confirmed announcing, and when.
#[derive(Debug, Default)]
struct BgpSync {
    /// The last request ncc carried out; `None` before the first or after a failure.
    sent: Option<crate::state::BgpDesired>,
    /// Routes that may be announced although `sent` is `None` (after a failed call).
    maybe: std::collections::BTreeSet<std::net::IpAddr>,
    last_ok: Option<tokio::time::Instant>,
    settings: Option<crate::state::BgpSettings>,
    /// Failed updates in a row, and when the next may be tried.
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
}

impl BgpSync {
    /// ncc restarted (it withdraws everything at its first BGP call): the next update sends the
    /// whole wanted set at once, without waiting out a failure backoff.
    fn ncc_restarted(&mut self) {
        self.sent = None;
        self.failures = 0;
        self.retry_at = None;
    }

    /// Withdraws every announced route `wanted` does not keep (all of them when BGP is off),
    /// keeping the others; called before the plane is changed.
    async fn withdraw_first<N: NccBgp>(
        &mut self,
        ncc: &N,
        wanted: Option<&crate::state::BgpDesired>,
    ) {
        let announced: std::collections::BTreeSet<std::net::IpAddr> = self
            .sent
            .as_ref()
            .map(|s| s.routes.clone())
            .unwrap_or_default()
            .union(&self.maybe)
            .copied()
            .collect();
        let keep: std::collections::BTreeSet<_> = match wanted {
            Some(w) => announced.intersection(&w.routes).copied().collect(),
            None => std::collections::BTreeSet::new(),
        };
        if keep == announced {
            return;
        }
        let Some(settings) = wanted
            .map(|w| w.settings.clone())
            .or_else(|| self.settings.clone())
        else {
            return;
        };
        let req = crate::state::BgpDesired {
            settings,
            routes: keep,
        };
        self.call(ncc, req).await;
    }

    /// Announces `wanted` when it differs from what ncc holds, or every [`BGP_RESYNC_EVERY`].
    async fn announce<N: NccBgp>(&mut self, ncc: &N, wanted: Option<crate::state::BgpDesired>) {
        let Some(w) = wanted else { return };
        let due = self.last_ok.is_none_or(|t| t.elapsed() >= BGP_RESYNC_EVERY);
        if self.sent.as_ref() == Some(&w) && !due {
            return;
        }
        self.call(ncc, w).await;
    }

    async fn call<N: NccBgp>(&mut self, ncc: &N, req: crate::state::BgpDesired) {
        // Backing off after failures: what was not done stays in `maybe`/unsent and is done by
        // the first call that gets through.
        if self
            .retry_at
            .is_some_and(|t| tokio::time::Instant::now() < t)
        {
            return;
        }
        // Bounded: the loop waits for BGP (a withdrawal must precede the plane change), and an
        // HA report must never wait long behind an unreachable speaker.
        let r = tokio::time::timeout(BGP_CALL_DEADLINE, ncc.bgp_set(&req))
            .await
            .unwrap_or_else(|_| {
                Err(crate::ncc_port::NccError::Unavailable(
                    "bgp update timed out".to_owned(),
                ))
            });
        match r {
            Ok(changes) => {
                for c in &changes {
                    tracing::info!("bgp: {c}");
                }
                self.settings = Some(req.settings.clone());
                self.maybe.clear();
                self.sent = Some(req);
                self.last_ok = Some(tokio::time::Instant::now());
                (self.failures, self.retry_at) = (0, None);
            }
            Err(e) => {
                // Unknown now: remember what may still be announced so it is withdrawn later.
                if let Some(s) = self.sent.take() {
                    self.maybe.extend(s.routes);
                }
                self.maybe.extend(req.routes.iter().copied());
                self.settings = Some(req.settings);
                let wait = Duration::from_secs(1)
                    .saturating_mul(1 << self.failures.min(8))
                    .min(BGP_RETRY_MAX);
                self.failures = self.failures.saturating_add(1);
                self.retry_at = Some(tokio::time::Instant::now() + wait);
                tracing::warn!(error = %e, retry_in = ?wait, "bgp update failed");
            }
        }
    }
}

/// Watches process `pid` (the ha process) on a small thread until it exits, then reports it; a
/// process already gone is reported at once, one that cannot be watched (no pidfd) is left to
/// the report timeout. Setting the returned flag ends the watch within a second.
fn watch_exit(pid: i32, events: mpsc::Sender<Event>) -> Arc<AtomicBool> {
    use rustix::event::{PollFd, PollFlags, Timespec, poll};
    use rustix::process::{Pid, PidfdFlags, pidfd_open};
    let stop = Arc::new(AtomicBool::new(false));
    let fd = match Pid::from_raw(pid).map(|p| pidfd_open(p, PidfdFlags::empty())) {
        Some(Ok(fd)) => fd,
        Some(Err(rustix::io::Errno::SRCH)) => {
            let _ = events.try_send(Event::HaGone(pid));
            return stop;
        }
        Some(Err(e)) => {
            tracing::debug!(pid, error = %e, "cannot watch the ha process; relying on its reports");
            return stop;
        }
        None => return stop,
    };
    let flag = Arc::clone(&stop);
    let spawned = std::thread::Builder::new()
        .name("ha-watch".into())
        .spawn(move || {
            let second = Timespec {
                tv_sec: 1,
                tv_nsec: 0,
            };
            while !flag.load(Ordering::Relaxed) {
                let mut fds = [PollFd::new(&fd, PollFlags::IN)];
                // A pidfd becomes readable when its process exits.
                match poll(&mut fds, Some(&second)) {
                    Ok(n) if n > 0 => {
                        let _ = events.blocking_send(Event::HaGone(pid));
                        return;
                    }
                    Ok(_) | Err(rustix::io::Errno::INTR) => {}
                    Err(e) => {
                        tracing::debug!(pid, error = %e, "watching the ha process failed");
                        return;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::debug!(pid, error = %e, "cannot watch the ha process; relying on its reports");
    }
    stop
}

/// Marks every active service the data plane does not hold as `applied` says (the last desired
/// state ncc confirmed, if any) as not applied, with `why`: `show vservers` must never call a
/// service active that the plane refused.
fn mark_unapplied(views: &mut [VserverView], applied: Option<&DesiredState>, why: &str) {
    let held_keys: std::collections::HashSet<crate::desired::ServiceKey> = applied
        .map(|d| d.services.iter().map(|s| s.key).collect())
        .unwrap_or_default();
    for v in views {
        for s in &mut v.services {
            if s.active && !held_keys.contains(&s.key) {
                s.active = false;
                s.not_applied = Some(why.to_owned());
            }
        }
    }
}

/// How long after `failures` refused applies in a row (of one desired state) the next try waits:
/// 1, 2, 4, 8, 16, then every 30 s.
fn apply_backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

#[cfg(test)]
mod run_tests;

#[cfg(test)]
mod bgp_sync_tests;
