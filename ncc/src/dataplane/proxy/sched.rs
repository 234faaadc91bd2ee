//! Backend selection for the proxy plane. A `Table` is immutable once built except for the small
//! scheduler state (round-robin cursor, smooth-WRR credits); per-destination counters live in a
//! `CounterMap` that outlives table rebuilds, so a weight change keeps the counters.

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use crate::model::{Dest, DestStats, Scheduler, Service};

/// Live counters of one destination.
#[derive(Debug, Default)]
pub struct Counters {
    /// Open connections.
    pub active: AtomicU64,
    /// Connections ever.
    pub total: AtomicU64,
    /// Bytes client → backend.
    pub bytes_in: AtomicU64,
    /// Bytes backend → client.
    pub bytes_out: AtomicU64,
}

impl Counters {
    /// A point-in-time copy.
    pub fn snapshot(&self, dest: Dest) -> DestStats {
        DestStats {
            dest: Some(dest),
            active_conns: self.active.load(Ordering::Relaxed),
            total_conns: self.total.load(Ordering::Relaxed),
            bytes_in: self.bytes_in.load(Ordering::Relaxed),
            bytes_out: self.bytes_out.load(Ordering::Relaxed),
        }
    }
}

/// Counters by destination address, shared by every table of one service.
#[derive(Debug, Default, Clone)]
pub struct CounterMap(Arc<Mutex<HashMap<SocketAddr, Arc<Counters>>>>);

impl CounterMap {
    /// The counters of `addr`, created on first use.
    pub fn get(&self, addr: SocketAddr) -> Arc<Counters> {
        self.0
            .lock()
            .expect("counter map lock poisoned")
            .entry(addr)
            .or_default()
            .clone()
    }

    fn retain(&self, keep: &[SocketAddr]) {
        self.0
            .lock()
            .expect("counter map lock poisoned")
            .retain(|a, _| keep.contains(a));
    }
}

/// One destination in a table.
#[derive(Debug)]
pub struct Slot {
    /// Address.
    pub addr: SocketAddr,
    /// Weight.
    pub weight: u32,
    /// Counters.
    pub counters: Arc<Counters>,
}

/// A service's selection table.
#[derive(Debug)]
pub struct Table {
    scheduler: Scheduler,
    /// Destinations with weight > 0 (weight 0 takes no new connections, as in IPVS).
    slots: Vec<Slot>,
    cursor: AtomicUsize,
    /// Smooth weighted round robin credits (nginx's algorithm), one per slot.
    credits: Mutex<Vec<i64>>,
}

impl Table {
    /// Builds the table for `s`, reusing its counters.
    pub fn build(s: &Service, counters: &CounterMap) -> Self {
        counters.retain(&s.dests.iter().map(|d| d.addr).collect::<Vec<_>>());
        let slots: Vec<Slot> = s
            .dests
            .iter()
            .filter(|d| d.weight > 0)
            .map(|d| Slot {
                addr: d.addr,
                weight: d.weight,
                counters: counters.get(d.addr),
            })
            .collect();
        let n = slots.len();
        Self {
            scheduler: s.scheduler,
            slots,
            cursor: AtomicUsize::new(0),
            credits: Mutex::new(vec![0; n]),
        }
    }

    /// Number of selectable destinations.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Whether no destination can take a connection.
    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// Picks a destination for `client`, skipping the indexes in `exclude` (already tried).
    pub fn pick(&self, client: IpAddr, exclude: &[usize]) -> Option<(usize, &Slot)> {
        let ok = |i: &usize| !exclude.contains(i);
        if self.slots.is_empty() || exclude.len() >= self.slots.len() {
            return None;
        }
        let i = match self.scheduler {
            Scheduler::Rr => {
                let n = self.slots.len();
                let start = self.cursor.fetch_add(1, Ordering::Relaxed);
                (0..n).map(|k| (start + k) % n).find(ok)?
            }
            Scheduler::Wrr => {
                let mut credits = self.credits.lock().expect("wrr lock poisoned");
                let total: i64 = self
                    .slots
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| ok(i))
                    .map(|(_, s)| i64::from(s.weight))
                    .sum();
                let mut best: Option<usize> = None;
                for (i, s) in self.slots.iter().enumerate() {
                    if !ok(&i) {
                        continue;
                    }
                    credits[i] += i64::from(s.weight);
                    if best.is_none_or(|b| credits[i] > credits[b]) {
                        best = Some(i);
                    }
                }
                let b = best?;
                credits[b] -= total;
                b
            }
            Scheduler::Lc | Scheduler::Wlc => {
                let weighted = self.scheduler == Scheduler::Wlc;
                // Compare active/weight as active_a * weight_b < active_b * weight_a (no floats).
                let load = |s: &Slot| {
                    let a = u128::from(s.counters.active.load(Ordering::Relaxed)) + 1;
                    (a, if weighted { u128::from(s.weight) } else { 1 })
                };
                (0..self.slots.len()).filter(ok).min_by(|&x, &y| {
                    let (ax, wx) = load(&self.slots[x]);
                    let (ay, wy) = load(&self.slots[y]);
                    (ax * wy).cmp(&(ay * wx))
                })?
            }
            Scheduler::Sh | Scheduler::Mh => {
                let mut h = twox_hash::XxHash64::with_seed(0x5ee5);
                match client {
                    IpAddr::V4(a) => h.write(&a.octets()),
                    IpAddr::V6(a) => h.write(&a.octets()),
                }
                let n = self.slots.len();
                let start = usize::try_from(h.finish() % n as u64).unwrap_or(0);
                (0..n).map(|k| (start + k) % n).find(ok)?
            }
        };
        Some((i, &self.slots[i]))
    }
}
