//! A proxy service's selection table: compiled payload rules, and per backend group a
//! [`Picker`] over that group's destinations. A `Table` is built off the hot path whenever the
//! service changes and published with one atomic pointer swap; flows hold `Arc<DestState>`s, so
//! a swap never touches an established flow. Per-destination state (counters, the drain token)
//! lives in a [`DestMap`] that outlives tables.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::rules::{Compiled, RuleError, Verdict};
use crate::model::{Dest, DestStats, Scheduler, Service};
use crate::sched::{Algo, FlowHash, Member, Picker, hash_addr};

/// Byte counters are split in this many shards, one cache line each: a worker thread adds to its
/// own shard on every message, so workers never pass one counter's cache line back and forth
/// (nor the line of the `evicted` flag every wake reads); a snapshot sums the shards.
const SHARDS: usize = 8;

/// The byte counters one thread adds to.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct ByteShard {
    /// Bytes client → backend.
    pub bytes_in: AtomicU64,
    /// Bytes backend → client.
    pub bytes_out: AtomicU64,
}

/// This thread's shard index: threads take the next index when they first count.
fn shard_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Ordering::Relaxed) % SHARDS;
    }
    INDEX.with(|i| *i)
}

/// Live counters of one destination.
#[derive(Debug, Default)]
pub struct Counters {
    /// Open connections (TCP) or flows (UDP).
    pub active: AtomicU64,
    /// Connections or flows ever.
    pub total: AtomicU64,
    /// Bytes, counted as they pass, per shard.
    bytes: [ByteShard; SHARDS],
}

impl Counters {
    /// The calling thread's byte counters (a TCP connection resolves it once: it never leaves
    /// its worker thread).
    #[inline]
    pub fn shard(&self) -> &ByteShard {
        &self.bytes[shard_index()]
    }

    /// A point-in-time copy.
    pub fn snapshot(&self, dest: Dest) -> DestStats {
        let sum = |f: fn(&ByteShard) -> &AtomicU64| {
            self.bytes
                .iter()
                .map(|s| f(s).load(Ordering::Relaxed))
                .fold(0u64, u64::wrapping_add)
        };
        DestStats {
            dest: Some(dest),
            active_conns: self.active.load(Ordering::Relaxed),
            total_conns: self.total.load(Ordering::Relaxed),
            bytes_in: sum(|s| &s.bytes_in),
            bytes_out: sum(|s| &s.bytes_out),
        }
    }
}

/// One destination's state shared by every table and flow of a service.
#[derive(Debug)]
pub struct DestState {
    /// Address.
    pub addr: SocketAddr,
    /// Counters.
    pub counters: Counters,
    /// Cancelled when a removed destination's drain timeout passes: its flows end then.
    /// Wait on it; test [`DestState::is_evicted`] (the token's own test takes a lock).
    pub evict: CancellationToken,
    /// Set just before `evict` is cancelled: the lock-free test read on every packet.
    evicted: AtomicBool,
    /// Bumped on every removal and re-add, so a stale drain timer does nothing.
    generation: AtomicU64,
}

impl DestState {
    /// Ends every flow of this destination (its drain is over).
    pub fn end_flows(&self) {
        self.evicted.store(true, Ordering::Release);
        self.evict.cancel();
    }

    /// Whether [`DestState::end_flows`] ran: one atomic load, no lock.
    pub fn is_evicted(&self) -> bool {
        self.evicted.load(Ordering::Acquire)
    }
}

/// Destination states by address, shared by every table of one service; removed destinations
/// stay here while they drain.
#[derive(Debug, Default, Clone)]
pub struct DestMap(Arc<Mutex<HashMap<SocketAddr, Arc<DestState>>>>);

impl DestMap {
    /// The state of `addr`, created on first use (a draining one is revived).
    pub fn get(&self, addr: SocketAddr) -> Arc<DestState> {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let e = m.entry(addr).or_insert_with(|| {
            Arc::new(DestState {
                addr,
                counters: Counters::default(),
                evict: CancellationToken::new(),
                evicted: AtomicBool::new(false),
                generation: AtomicU64::new(0),
            })
        });
        if e.is_evicted() {
            // Drained out completely earlier: start afresh (counters restart, as in IPVS).
            *e = Arc::new(DestState {
                addr,
                counters: Counters::default(),
                evict: CancellationToken::new(),
                evicted: AtomicBool::new(false),
                generation: AtomicU64::new(0),
            });
        }
        e.generation.fetch_add(1, Ordering::Relaxed);
        e.clone()
    }

    /// The counters of `addr`, if known.
    pub fn peek(&self, addr: SocketAddr) -> Option<Arc<DestState>> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&addr)
            .cloned()
    }

    /// Starts draining `addr` (removed from the service): its established flows continue; after
    /// `timeout` (unless re-added meanwhile) they are ended. `None`: drain until they end.
    pub fn drain(&self, addr: SocketAddr, timeout: Option<Duration>) {
        let Some(d) = self.peek(addr) else { return };
        let generation = d.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let map = self.clone();
        let Some(timeout) = timeout else {
            // Nothing to end later; forget it once idle so the map does not grow.
            map.forget_if_idle(addr, generation);
            return;
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(timeout).await;
                if d.generation.load(Ordering::Relaxed) == generation {
                    d.end_flows();
                    map.forget(addr, generation);
                }
            });
        }
    }

    fn forget(&self, addr: SocketAddr, generation: u64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&addr)
            .is_some_and(|d| d.generation.load(Ordering::Relaxed) == generation)
        {
            m.remove(&addr);
        }
    }

    fn forget_if_idle(&self, addr: SocketAddr, generation: u64) {
        let mut m = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if m.get(&addr).is_some_and(|d| {
            d.generation.load(Ordering::Relaxed) == generation
                && d.counters.active.load(Ordering::Relaxed) == 0
        }) {
            m.remove(&addr);
        }
    }

    /// Ends every flow of every destination (the service is gone and drains no longer).
    pub fn evict_all(&self) {
        for d in self.0.lock().unwrap_or_else(|e| e.into_inner()).values() {
            d.end_flows();
        }
    }
}

/// One backend group.
#[derive(Debug)]
pub struct Group {
    picker: Picker,
    dests: Vec<Arc<DestState>>,
}

/// A service's selection table.
#[derive(Debug)]
pub struct Table {
    /// Compiled payload rules.
    pub rules: Compiled,
    groups: Vec<Group>,
    /// Hash of the VIP address and port (the `dh` key).
    dst_hash: u64,
    /// The service as this table was built from.
    pub spec: Service,
}

/// The scheduler algorithm of a model scheduler.
pub fn algo(s: Scheduler) -> Algo {
    match s {
        Scheduler::Rr => Algo::Rr,
        Scheduler::Wrr => Algo::Wrr,
        Scheduler::Lc => Algo::Lc,
        Scheduler::Wlc => Algo::Wlc,
        Scheduler::Sh => Algo::Sh,
        Scheduler::Dh => Algo::Dh,
        Scheduler::Mh => Algo::Mh,
        Scheduler::Random => Algo::Random,
        Scheduler::P2c => Algo::P2c,
    }
}

impl Table {
    /// Builds the table for `s`, reusing destination state from `dests`; `prev` (the table it
    /// replaces) lets Maglev move only the flows that must move.
    pub fn build(s: &Service, dests: &DestMap, prev: Option<&Self>) -> Result<Self, RuleError> {
        let rules = Compiled::compile(&s.opts)?;
        let a = algo(s.scheduler);
        let groups = (0..s.opts.groups.len().max(1))
            .map(|g| {
                let members: Vec<&Dest> = s
                    .dests
                    .iter()
                    .filter(|d| usize::from(d.group) == g)
                    .collect();
                let before = prev
                    .filter(|p| p.spec.scheduler == s.scheduler)
                    .and_then(|p| p.groups.get(g))
                    .map(|g| &g.picker);
                Group {
                    picker: Picker::anchored(
                        a,
                        &members
                            .iter()
                            .map(|d| Member {
                                key: hash_addr(d.addr),
                                weight: d.weight,
                                backup: d.backup,
                            })
                            .collect::<Vec<_>>(),
                        before,
                        s.anchor.as_deref(),
                    ),
                    dests: members.iter().map(|d| dests.get(d.addr)).collect(),
                }
            })
            .collect();
        Ok(Self {
            rules,
            groups,
            dst_hash: hash_addr(s.key.addr()),
            spec: s.clone(),
        })
    }

    /// The Maglev table's fingerprint: the one group's, or (payload groups) a hash over every
    /// group's in order; `None` unless the service is `mh` with a live destination.
    pub fn table_hash(&self) -> Option<u64> {
        let hashes: Vec<Option<u64>> = self.groups.iter().map(|g| g.picker.table_hash()).collect();
        match hashes.as_slice() {
            [one] => *one,
            _ if hashes.iter().all(Option::is_none) => None,
            _ => Some(crate::sched::maglev::table_hash(
                hashes.iter().map(|h| h.unwrap_or(0)),
            )),
        }
    }

    /// Picks a destination of `group` for a new flow whose source hashes to `src`, skipping
    /// `tried` (destinations whose connect failed).
    pub fn pick(&self, group: u16, src: u64, tried: &[SocketAddr]) -> Option<&Arc<DestState>> {
        let g = self.groups.get(usize::from(group))?;
        let exclude: Vec<usize> = if tried.is_empty() {
            Vec::new()
        } else {
            (0..g.dests.len())
                .filter(|&i| tried.contains(&g.dests[i].addr))
                .collect()
        };
        let load = |i: usize| g.dests[i].counters.active.load(Ordering::Relaxed);
        let flow = FlowHash {
            src,
            dst: self.dst_hash,
        };
        g.picker.pick(flow, &load, &exclude).map(|i| &g.dests[i])
    }

    /// The destination a new flow of `group` whose source hashes to `src` would get, and its
    /// Maglev (slot, table length) for mh, without moving any scheduler state; `None` when the
    /// scheduler's choice depends on its state or nothing can take the flow.
    pub fn predict(&self, group: u16, src: u64) -> Option<(SocketAddr, Option<(usize, usize)>)> {
        let g = self.groups.get(usize::from(group))?;
        let flow = FlowHash {
            src,
            dst: self.dst_hash,
        };
        let (i, slot) = g.picker.predict(flow)?;
        Some((g.dests.get(i)?.addr, slot))
    }

    /// Routes a payload to a group (or deny) by the service's rules.
    pub fn route(&self, payload: &[u8], sni: Option<&[u8]>) -> Verdict {
        self.rules.route(payload, sni)
    }

    /// How many destinations the group has (for bounding retries).
    pub fn group_len(&self, group: u16) -> usize {
        self.groups
            .get(usize::from(group))
            .map_or(0, |g| g.dests.len())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    use super::Counters;
    use crate::model::Dest;

    /// Threads add to their own shards; a snapshot sums every shard.
    #[test]
    fn sharded_byte_counters_sum_across_threads() {
        let c = Arc::new(Counters::default());
        let threads: Vec<_> = (0..12u64)
            .map(|t| {
                let c = Arc::clone(&c);
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        let s = c.shard();
                        s.bytes_in.fetch_add(t, Ordering::Relaxed);
                        s.bytes_out.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().expect("counting thread");
        }
        let d = c.snapshot(Dest::new("127.0.0.1:80".parse().expect("literal"), 1));
        assert_eq!(d.bytes_in, 1000 * (0..12).sum::<u64>());
        assert_eq!(d.bytes_out, 12_000);
    }
}
