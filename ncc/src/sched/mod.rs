//! Backend schedulers shared by the data planes: the pure Maglev table builder ([`maglev`]),
//! reused by the nftables plane, and [`Picker`], the per-connection (or per-datagram) choice of
//! the userspace proxy: rr, smooth wrr, lc, wlc, sh, dh, mh, random and p2c, with weights,
//! backups (used only when no primary can take the flow) and drain (weight 0: no new flows).
//!
//! A `Picker` is built off the hot path when the destinations change and then shared read-only
//! (its only mutable state is the rr cursor, the wrr credits and the random state), so a swap of
//! pickers never disturbs flows that are already established.

pub use seesaw_common::maglev;

use std::hash::Hasher;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

/// A scheduling algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algo {
    /// Round robin over destinations with weight > 0.
    Rr,
    /// Smooth weighted round robin (nginx's).
    Wrr,
    /// Fewest active flows.
    Lc,
    /// Fewest active flows per weight.
    Wlc,
    /// Source hashing (client address, or the payload hash key), weighted, not consistent.
    Sh,
    /// Destination hashing (the VIP address and port), weighted.
    Dh,
    /// Maglev consistent hashing of the source (or payload key).
    Mh,
    /// Weighted random.
    Random,
    /// Power of two choices over weighted random picks, by active flows per weight.
    P2c,
}

/// One destination as the picker sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// A stable hash of the destination (see [`maglev::key_hash`]).
    pub key: u64,
    /// Weight; 0 takes no new flows (drain).
    pub weight: u32,
    /// A backup: used only when no primary can take the flow.
    pub backup: bool,
}

/// What the hashing schedulers hash.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlowHash {
    /// Hash of the source: the client address, or the payload hash key.
    pub src: u64,
    /// Hash of the destination (the VIP address and port).
    pub dst: u64,
}

/// Seed of [`hash_bytes`].
const SEED_FLOW: u64 = 0x5ee5_f10e_0000_0004;

/// The stable hash of flow bytes (a client address, a payload key).
#[inline]
pub fn hash_bytes(b: &[u8]) -> u64 {
    let mut h = twox_hash::XxHash64::with_seed(SEED_FLOW);
    h.write(b);
    h.finish()
}

/// The stable hash of an IP address.
pub fn hash_ip(ip: std::net::IpAddr) -> u64 {
    match ip {
        std::net::IpAddr::V4(a) => hash_bytes(&a.octets()),
        std::net::IpAddr::V6(a) => hash_bytes(&a.octets()),
    }
}

/// The stable hash of a socket address (the destination key of `dh`, the member key of a
/// destination).
pub fn hash_addr(a: std::net::SocketAddr) -> u64 {
    maglev::addr_key(a)
}

/// One tier (primaries or backups) of a picker: indexes into the member list.
#[derive(Debug, Default)]
struct Tier {
    /// Members with weight > 0.
    idx: Vec<usize>,
    /// Their weights.
    weights: Vec<u32>,
    /// Cumulative weights, for weighted random and the hashing schedulers.
    cum: Vec<u64>,
    /// Maglev table over `idx` (mh only).
    maglev: Vec<u32>,
    /// The Maglev keys of `idx`, for deriving the next table from this one.
    keys: Vec<u64>,
    cursor: AtomicUsize,
    credits: Mutex<Vec<i64>>,
}

impl Tier {
    fn new(
        algo: Algo,
        members: &[Member],
        backup: bool,
        prev: Option<&Self>,
        anchor: Option<&maglev::Anchor>,
    ) -> Self {
        let idx: Vec<usize> = (0..members.len())
            .filter(|&i| members[i].backup == backup && members[i].weight > 0)
            .collect();
        let weights: Vec<u32> = idx.iter().map(|&i| members[i].weight).collect();
        let mut total = 0u64;
        let cum = weights
            .iter()
            .map(|&w| {
                total += u64::from(w);
                total
            })
            .collect();
        let maglev = if algo == Algo::Mh && !idx.is_empty() {
            let b: Vec<(u64, u32)> = idx
                .iter()
                .map(|&i| (members[i].key, members[i].weight))
                .collect();
            // Derived from the anchor every node shares, else from the previous table: only
            // the flows that must move do.
            let before: Vec<u64> = match anchor {
                Some(a) => a.slots.clone(),
                None => prev.map_or_else(Vec::new, |p| {
                    p.maglev.iter().map(|&i| p.keys[i as usize]).collect()
                }),
            };
            maglev::derive(&before, &b)
        } else {
            Vec::new()
        };
        let keys = idx.iter().map(|&i| members[i].key).collect();
        let n = idx.len();
        Self {
            idx,
            weights,
            cum,
            maglev,
            keys,
            cursor: AtomicUsize::new(0),
            credits: Mutex::new(vec![0; n]),
        }
    }

    fn total(&self) -> u64 {
        self.cum.last().copied().unwrap_or(0)
    }

    /// The position whose cumulative weight range holds `x` (< total).
    fn by_weight(&self, x: u64) -> usize {
        self.cum.partition_point(|&c| c <= x)
    }

    fn pick(
        &self,
        algo: Algo,
        flow: FlowHash,
        rng: &AtomicU64,
        load: &dyn Fn(usize) -> u64,
        exclude: &[usize],
    ) -> Option<usize> {
        let n = self.idx.len();
        let ok = |p: usize| !exclude.contains(&self.idx[p]);
        if n == 0 || (0..n).all(|p| !ok(p)) {
            return None;
        }
        // The next allowed position at or after `start`, in order.
        let from = |start: usize| (0..n).map(|k| (start + k) % n).find(|&p| ok(p));
        let p = match algo {
            Algo::Rr => from(self.cursor.fetch_add(1, Ordering::Relaxed) % n)?,
            Algo::Wrr => {
                let mut credits = self.credits.lock().unwrap_or_else(|e| e.into_inner());
                let mut total = 0i64;
                let mut best: Option<usize> = None;
                for p in (0..n).filter(|&p| ok(p)) {
                    let w = i64::from(self.weights[p]);
                    total += w;
                    credits[p] += w;
                    if best.is_none_or(|b| credits[p] > credits[b]) {
                        best = Some(p);
                    }
                }
                let b = best?;
                credits[b] -= total;
                b
            }
            Algo::Lc | Algo::Wlc => {
                let weighted = algo == Algo::Wlc;
                let cost = |p: usize| {
                    let a = u128::from(load(self.idx[p])) + 1;
                    (
                        a,
                        if weighted {
                            u128::from(self.weights[p])
                        } else {
                            1
                        },
                    )
                };
                // Ties go to the earliest after a rotating start, so equal loads spread.
                let start = self.cursor.fetch_add(1, Ordering::Relaxed) % n;
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&p| ok(p))
                    .min_by(|&x, &y| {
                        let (ax, wx) = cost(x);
                        let (ay, wy) = cost(y);
                        (ax * wy).cmp(&(ay * wx))
                    })?
            }
            Algo::Sh => from(self.by_weight(mix(flow.src) % self.total()))?,
            Algo::Dh => from(self.by_weight(mix(flow.dst) % self.total()))?,
            Algo::Mh => {
                let t = &self.maglev;
                let s = maglev::slot(flow.src, t.len());
                // On a failed try, walk the table: the next slots belong to other members in
                // Maglev's permutation order.
                (0..t.len())
                    .map(|k| t[(s + k) % t.len()] as usize)
                    .find(|&p| ok(p))?
            }
            Algo::Random => {
                let x = next_rand(rng) % self.total();
                from(self.by_weight(x))?
            }
            Algo::P2c => {
                let a = from(self.by_weight(next_rand(rng) % self.total()))?;
                let b = from(self.by_weight(next_rand(rng) % self.total()))?;
                let (la, lb) = (
                    u128::from(load(self.idx[a])) + 1,
                    u128::from(load(self.idx[b])) + 1,
                );
                let (wa, wb) = (u128::from(self.weights[a]), u128::from(self.weights[b]));
                if la * wb <= lb * wa { a } else { b }
            }
        };
        Some(self.idx[p])
    }
}

/// A finaliser so consecutive hash inputs spread (xxh64 output is already mixed; this only
/// guards against callers passing raw small integers).
#[inline]
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x
}

#[inline]
fn next_rand(state: &AtomicU64) -> u64 {
    // splitmix64 over an atomic counter: lock-free and good enough for load spreading.
    let z = state.fetch_add(0x9e37_79b9_7f4a_7c15, Ordering::Relaxed);
    let mut z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Chooses members for new flows. Built once per change of the member list.
#[derive(Debug)]
pub struct Picker {
    algo: Algo,
    primary: Tier,
    backup: Tier,
    rng: AtomicU64,
}

impl Picker {
    /// A picker over `members` (indexes returned by [`Picker::pick`] refer to this slice).
    pub fn new(algo: Algo, members: &[Member]) -> Self {
        Self::after(algo, members, None)
    }

    /// A picker over `members` that replaces `prev`: a Maglev table is derived from `prev`'s
    /// ([`maglev::derive`]), so removing a backend moves only its flows.
    pub fn after(algo: Algo, members: &[Member], prev: Option<&Self>) -> Self {
        Self::anchored(algo, members, prev, None)
    }

    /// [`Picker::after`], with the primaries' Maglev table derived from `anchor` when given
    /// (so every node with the same anchor and members picks alike, whatever it held before).
    pub fn anchored(
        algo: Algo,
        members: &[Member],
        prev: Option<&Self>,
        anchor: Option<&maglev::Anchor>,
    ) -> Self {
        Self {
            algo,
            primary: Tier::new(algo, members, false, prev.map(|p| &p.primary), anchor),
            backup: Tier::new(algo, members, true, prev.map(|p| &p.backup), None),
            rng: AtomicU64::new(hash_bytes(&(members.len() as u64).to_le_bytes())),
        }
    }

    /// The fingerprint of the primaries' Maglev table ([`maglev::table_hash`]); `None` unless
    /// the algorithm is `mh` and a primary takes flows.
    pub fn table_hash(&self) -> Option<u64> {
        let t = &self.primary;
        (self.algo == Algo::Mh && !t.maglev.is_empty())
            .then(|| maglev::table_hash(t.maglev.iter().map(|&i| t.keys[i as usize])))
    }

    /// The algorithm.
    pub fn algo(&self) -> Algo {
        self.algo
    }

    /// Whether no member can take a new flow.
    pub fn is_empty(&self) -> bool {
        self.primary.idx.is_empty() && self.backup.idx.is_empty()
    }

    /// The member a new flow would get and, for `mh`, its Maglev slot (and the table's length),
    /// without touching any state; `None` for the schedulers whose pick depends on state (rr,
    /// wrr, lc, wlc, random, p2c) or when no member can take a flow. The same choice as
    /// [`Picker::pick`] when nothing is excluded.
    pub fn predict(&self, flow: FlowHash) -> Option<(usize, Option<(usize, usize)>)> {
        let tier = if self.primary.idx.is_empty() {
            &self.backup
        } else {
            &self.primary
        };
        if tier.idx.is_empty() {
            return None;
        }
        let n = tier.idx.len();
        let at = |p: usize| tier.idx[p.min(n - 1)];
        match self.algo {
            Algo::Sh => Some((at(tier.by_weight(mix(flow.src) % tier.total())), None)),
            Algo::Dh => Some((at(tier.by_weight(mix(flow.dst) % tier.total())), None)),
            Algo::Mh if !tier.maglev.is_empty() => {
                let len = tier.maglev.len();
                let slot = maglev::slot(flow.src, len);
                Some((at(tier.maglev[slot] as usize), Some((slot, len))))
            }
            _ => None,
        }
    }

    /// Picks a member for a new flow: a primary if any can take it, else a backup. `load(i)` is
    /// member `i`'s active flow count (lc, wlc, p2c); `exclude` lists members already tried.
    pub fn pick(
        &self,
        flow: FlowHash,
        load: &dyn Fn(usize) -> u64,
        exclude: &[usize],
    ) -> Option<usize> {
        self.primary
            .pick(self.algo, flow, &self.rng, load, exclude)
            .or_else(|| self.backup.pick(self.algo, flow, &self.rng, load, exclude))
    }
}

#[cfg(test)]
mod tests;
