//! The engine's driver: one loop that feeds every input to the sans-io core
//! ([`crate::machine::Engine`]) and carries out the effects it returns, in order — the apply
//! and BGP calls to ncc (awaited, their outcomes handed straight back), the snapshot and the
//! replies here; everything whose result comes back later through the loop's channels in
//! `background.rs` (config reads, edits and fetches on blocking threads, etcd, counters, peer
//! sync, traces, the ha watch). `start.rs` sets the driver up (API, peer sync, etcd follower,
//! ncc's boot watch, adoption of the plane) and tears the plane down at shutdown. Decisions live
//! in the core; the driver only does I/O.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime};

use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::config::Loaded;
use crate::machine::{Effect, Engine, FetchReply, Input, LoadReply, Now, Reply, with_etcd};
use crate::ncc_port::{Ncc, NccBgp, NccError, PlaneStats};

mod background;
mod config_source;
mod dump;
mod etcd_source;
mod start;

pub use crate::events::{BgpNeighborsReply, Event, HaConfigView, ReloadReply, Snapshot};

pub use crate::etcd::{EtcdShared, EtcdView};
pub use crate::machine::ConfigSource;
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
    let (mut engine, mut d, mut inbox) =
        start::start(loaded, listener, ncc, config_dir, &shutdown).await;
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let input = tokio::select! {
            () = shutdown.cancelled() => break,
            ev = inbox.events.recv() => match ev {
                Some(ev) => Input::Event(ev),
                None => break,
            },
            Some(stats) = inbox.stats.recv() => {
                if let Ok(s) = &stats {
                    crate::config::seesaw_cfg::set_running_plane(s.kind.as_str());
                }
                Input::Stats(stats.map_err(|e| e.to_string()))
            }
            Some(boot) = inbox.boot.recv() => Input::NccBoot(boot),
            Some(r) = inbox.edit.recv() => Input::Edited(r),
            Some(r) = inbox.load.recv() => Input::Loaded(r),
            Some(msg) = inbox.etcd.recv() => match d.etcd.on_msg(msg) {
                Some(outcome) => Input::Etcd(outcome),
                None => continue,
            },
            Some(r) = inbox.fetch.recv() => Input::Fetched(r),
            _ = tick.tick() => Input::Tick { ha_heard: inbox.pulse.last() },
        };
        d.step(&mut engine, input).await;
    }
    start::stop(&mut engine, &*d.ncc, inbox.server).await
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
            other => return self.background(other),
        }
        None
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

#[cfg(test)]
mod run_tests;
