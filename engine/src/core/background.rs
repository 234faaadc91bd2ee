//! The driver's background work: the effects whose results come back later through the loop's
//! channels (config reads, edits and fetches on blocking threads, the etcd follower, counters,
//! peer sync, traces, BGP neighbours) and the watch on the ha process. Nothing here decides.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::{mpsc, oneshot};

use super::config_source::{save_fetched, spawn_edit, spawn_fetch, spawn_load};
use super::{Driver, Event, ReloadReply};
use crate::events::{Edit, Rollback};
use crate::machine::{Effect, EtcdCmd, Input};
use crate::ncc_port::{Ncc, NccBgp};
use crate::state::ReloadOutcome;

impl<N: Ncc + NccBgp> Driver<N> {
    /// Starts the work `effect` asks for; returns the input that reports its outcome at once,
    /// if any (a rollback becomes the edit it stands for).
    pub(super) fn background(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Load(reply) => spawn_load(&self.config_dir, &self.load_tx, reply),
            Effect::Edit(edit) => spawn_edit(&self.config_dir, edit, &self.edit_tx),
            Effect::Rollback(Rollback { id, who, reply }) => {
                // Reading one history file is small; parsing and saving it run off the loop.
                match crate::history::History::new(&self.config_dir).get(id) {
                    Ok(text) => {
                        return Some(Input::Event(Event::UpdateCluster(Edit {
                            text,
                            who,
                            what: format!("rollback to version {id}"),
                            base: 0,
                            reply,
                        })));
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
            Effect::Apply(_) | Effect::Bgp(_) | Effect::Publish(_) | Effect::Reply(_) => {
                unreachable!("the driver carries these itself")
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
            EtcdCmd::Update(edit, anchors) => self.etcd.update(
                edit.text,
                crate::etcd::Meta::now(&edit.who, &edit.what),
                i64::try_from(edit.base).unwrap_or(i64::MAX),
                (edit.reply, anchors),
            ),
            EtcdCmd::Rollback(Rollback { id, who, reply }, anchors) => {
                self.etcd.rollback(id, who, (reply, anchors))
            }
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
