//! The engine's driver: sets up the API, peer sync, the etcd follower and the watches, then feeds
//! every event to the sans-io core ([`crate::machine::Engine`]) and carries out the effects it
//! returns — the apply and BGP calls to ncc (awaited, their outcomes handed straight back), the
//! snapshot, the replies, and the background work (config reads, edits and fetches on blocking
//! threads, counters, peer sync, traces). Decisions live in the core; this file only does I/O.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::machine::{
    Effect, Engine, EtcdCmd, FetchReply, Input, LoadReply, Now, Reply, with_etcd,
};
use crate::ncc_port::{Ncc, NccBgp, NccError, PlaneStats};
use crate::state::ReloadOutcome;

mod config_source;
mod dump;
mod etcd_source;

pub use crate::events::{BgpNeighborsReply, Event, HaConfigView, ReloadReply, Snapshot};

pub use crate::etcd::{EtcdShared, EtcdView};
pub use crate::machine::ConfigSource;
use config_source::{save_fetched, spawn_edit, spawn_fetch, spawn_load, start_sync};
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
/// Deadline of the teardown at shutdown.
const TEARDOWN_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline of one BGP update through ncc: the pass waits for BGP (a withdrawal must precede the
/// plane change), and an HA report must never wait long behind an unreachable speaker.
const BGP_CALL_DEADLINE: Duration = Duration::from_secs(1);

fn now() -> Now {
    Now {
        mono: tokio::time::Instant::now().into_std(),
        wall: SystemTime::now(),
    }
}

/// What the driver owns besides the core: the ports and the channels results come back on.
struct Driver<N> {
    ncc: Arc<N>,
    config_dir: PathBuf,
    peer: Option<crate::sync::PeerClient>,
    etcd: etcd_source::EtcdSource,
    snap_tx: watch::Sender<Arc<Snapshot>>,
    applies: dump::ApplyLog,
    events: mpsc::Sender<Event>,
    fetch_tx: mpsc::Sender<FetchReply>,
    load_tx: mpsc::Sender<LoadReply>,
    edit_tx: mpsc::Sender<LoadReply>,
    stats_tx: mpsc::Sender<Result<PlaneStats, NccError>>,
    /// The watched ha process and the flag that ends its watch.
    ha_watch: Option<(i32, Arc<AtomicBool>)>,
}

/// Runs the engine until `shutdown` is cancelled: serves the API on `listener` and drives `ncc`.
/// `config_dir` is re-read on `config reload`.
pub async fn run<N: Ncc + NccBgp>(
    loaded: Loaded,
    listener: UnixListener,
    ncc: N,
    config_dir: PathBuf,
    shutdown: CancellationToken,
) -> Result<(), EngineError> {
    let etcd_settings = loaded.settings.etcd.clone();
    let (etcd, mut etcd_rx, etcd_shared) =
        etcd_source::EtcdSource::new(etcd_settings.clone(), &config_dir);
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
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
    let peer = start_sync(first.state(), &config_dir, &snap_rx, &tx, &shutdown).await;
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

    let (fetch_tx, mut fetch_rx) = mpsc::channel::<FetchReply>(4);
    let (load_tx, mut load_rx) = mpsc::channel::<LoadReply>(4);
    let (edit_tx, mut edit_rx) = mpsc::channel::<LoadReply>(4);
    let (stats_tx, mut stats_rx) = mpsc::channel::<Result<PlaneStats, NccError>>(1);
    let ncc = Arc::new(ncc);
    let mut d = Driver {
        ncc: Arc::clone(&ncc),
        config_dir,
        peer,
        etcd,
        snap_tx,
        applies,
        events: tx.clone(),
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
    let (boot_tx, mut boot_rx) = mpsc::channel::<u64>(4);
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
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let input = tokio::select! {
            () = shutdown.cancelled() => break,
            ev = rx.recv() => match ev {
                Some(ev) => Input::Event(ev),
                None => break,
            },
            Some(stats) = stats_rx.recv() => {
                if let Ok(s) = &stats {
                    crate::config::seesaw_cfg::set_running_plane(s.kind.as_str());
                }
                Input::Stats(stats.map_err(|e| e.to_string()))
            }
            Some(boot) = boot_rx.recv() => Input::NccBoot(boot),
            Some(r) = edit_rx.recv() => Input::Edited(r),
            Some(r) = load_rx.recv() => Input::Loaded(r),
            Some(msg) = etcd_rx.recv() => match d.etcd.on_msg(msg) {
                Some(outcome) => Input::Etcd(outcome),
                None => continue,
            },
            Some(r) = fetch_rx.recv() => Input::Fetched(r),
            _ = tick.tick() => Input::Tick { ha_heard: pulse.last() },
        };
        d.step(&mut engine, input).await;
    }

    // Graceful stop: take everything this engine put in the data plane down (Seesaw does the same).
    // A crash (SIGKILL) skips this, and the restarted engine adopts what the plane holds.
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

impl<N: Ncc + NccBgp> Driver<N> {
    /// Hands `input` to the core and carries out its effects, in order. The outcome of an apply
    /// or a BGP call goes back to the core before anything else; results of background work come
    /// back later through the loop's channels.
    async fn step(&mut self, engine: &mut Engine, input: Input) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for effect in engine.handle(input, now()) {
                if let Some(next) = self.carry(effect).await {
                    inputs.push_front(next);
                }
            }
        }
    }

    fn publish(&self, mut snap: Snapshot) {
        with_etcd(&mut snap, self.etcd.view());
        self.snap_tx.send_replace(Arc::new(snap));
    }

    /// Carries out one effect; returns the input that reports its outcome at once, if any.
    async fn carry(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Apply(desired) => {
                let r = self.ncc.apply(&desired).await.map_err(|e| e.to_string());
                dump::record(
                    &self.applies,
                    desired.services.len(),
                    r.as_ref().map(Vec::len).map_err(Clone::clone),
                );
                return Some(Input::Applied(r));
            }
            Effect::Bgp(req) => {
                let r = tokio::time::timeout(BGP_CALL_DEADLINE, self.ncc.bgp_set(&req))
                    .await
                    .unwrap_or_else(|_| {
                        Err(NccError::Unavailable("bgp update timed out".to_owned()))
                    })
                    .map_err(|e| e.to_string());
                return Some(Input::BgpDone(r));
            }
            Effect::Publish(snap) => self.publish(*snap),
            Effect::Reply(r) => send_reply(r),
            Effect::Load(reply) => spawn_load(&self.config_dir, &self.load_tx, reply),
            Effect::Edit {
                text,
                base,
                who,
                what,
                reply,
            } => spawn_edit(
                &self.config_dir,
                (text, base),
                (who, what),
                &self.edit_tx,
                reply,
            ),
            Effect::Rollback { id, who, reply } => {
                // Reading one history file is small; parsing and saving it run off the loop.
                match crate::history::History::new(&self.config_dir).get(id) {
                    Ok(text) => {
                        return Some(Input::Event(Event::UpdateCluster {
                            text,
                            who,
                            what: format!("rollback to version {id}"),
                            base: 0,
                            reply,
                        }));
                    }
                    Err(e) => refuse(reply, format!("config history has no version {id}: {e}")),
                }
            }
            Effect::Fetch(from, reply) => spawn_fetch(
                from,
                &self.config_dir,
                self.fetch_tx.clone(),
                reply,
                self.peer.clone(),
            ),
            Effect::SaveFetched(text) => save_fetched(&self.config_dir, text),
            Effect::Etcd(cmd) => self.etcd_cmd(cmd),
            Effect::ReadStats => {
                let (ncc, tx) = (Arc::clone(&self.ncc), self.stats_tx.clone());
                tokio::spawn(async move {
                    let _ = tx.send(ncc.stats().await).await;
                });
            }
            Effect::PollPeerOverrides => {
                if let Some(peer) = self.peer.clone() {
                    let events = self.events.clone();
                    tokio::spawn(async move {
                        match peer.overrides().await {
                            Ok((list, _)) => {
                                let _ = events.send(Event::PeerOverrides(list)).await;
                            }
                            Err(e) => tracing::debug!("peer sync: {e}"),
                        }
                    });
                }
            }
            Effect::RelayFailover(reply) => {
                let Some(peer) = self.peer.clone() else {
                    let _ = reply.send(Err("no peer to relay the failover to".to_owned()));
                    return None;
                };
                tokio::spawn(async move {
                    let r = peer.failover().await;
                    match &r {
                        Ok(m) => tracing::info!("failover {m}"),
                        Err(e) => tracing::warn!("failover relay failed: {e}"),
                    }
                    let _ = reply.send(r);
                });
            }
            Effect::Trace(q, reply) => {
                let ncc = Arc::clone(&self.ncc);
                tokio::spawn(async move {
                    let _ = reply.send(ncc.trace(q).await.map_err(|e| e.to_string()));
                });
            }
            Effect::BgpNeighbors(reply) => {
                let ncc = Arc::clone(&self.ncc);
                tokio::spawn(async move {
                    let _ = reply.send(ncc.bgp_neighbors().await);
                });
            }
            Effect::WatchHa(pid) => {
                if let Some((_, old)) = self.ha_watch.take() {
                    old.store(true, Ordering::Relaxed);
                }
                self.ha_watch = Some((pid, watch_exit(pid, self.events.clone())));
            }
        }
        None
    }

    fn etcd_cmd(&mut self, cmd: EtcdCmd) {
        let pending = match cmd {
            EtcdCmd::Start => {
                let _ = self.etcd.start();
                None
            }
            EtcdCmd::Stop => {
                self.etcd.stop();
                None
            }
            EtcdCmd::Restart(reply) => {
                self.etcd.stop();
                let why = self.etcd.start().map_or_else(
                    |e| e,
                    |()| "config source etcd: re-reading the key".to_owned(),
                );
                Some((Some(reply), ReloadOutcome::Unchanged(why)))
            }
            EtcdCmd::Update {
                text,
                who,
                what,
                base,
                reply,
                anchors,
            } => self.etcd.update(
                text,
                crate::etcd::Meta::now(&who, &what),
                base,
                (reply, anchors),
            ),
            EtcdCmd::Rollback {
                id,
                who,
                reply,
                anchors,
            } => self.etcd.rollback(id, who, (reply, anchors)),
        };
        // Answered at once: nothing changed in the core's state.
        if let Some((Some(reply), outcome)) = pending {
            let _ = reply.send(ReloadReply {
                outcome,
                changes: None,
            });
        }
    }
}

fn send_reply(r: Reply) {
    match r {
        Reply::Reload(tx, v) => {
            let _ = tx.send(v);
        }
        Reply::Ha(tx, v) => {
            let _ = tx.send(v);
        }
        Reply::Override(tx, v) => {
            let _ = tx.send(v);
        }
        Reply::Failover(tx, v) => {
            let _ = tx.send(v);
        }
        Reply::Preview(tx, v) => {
            let _ = tx.send(*v);
        }
        Reply::Source(tx, v) => {
            let _ = tx.send(v);
        }
    }
}

fn refuse(reply: oneshot::Sender<ReloadReply>, why: String) {
    let _ = reply.send(ReloadReply {
        outcome: ReloadOutcome::Refused(vec![why]),
        changes: None,
    });
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

#[cfg(test)]
mod run_tests;
