//! Least-connection re-weighting, purely: per-destination loads and weights in, slot contents
//! out. The nftables plane cannot pick "the destination with the fewest connections" per packet
//! (a rule cannot compare map values), so lc and wlc are slot tables like wrr whose contents
//! ncc recomputes from sampled connection counts (see the `rebalance` module): a destination
//! far below its share of the load gets most slots, an overloaded one none.
//!
//! The model is IPVS's. A destination's load is its *overhead*, `active × 256 + inactive`
//! (`ip_vs_dest_conn_overhead`); wlc compares `overhead / weight`, lc compares overhead and uses
//! weights only to switch a destination on or off. Exact (per-connection) wlc sends each new
//! connection to the smallest ratio, which over a burst of `A` new connections fills the least
//! loaded destinations up to a common level: the *water-filling* of `A` over the loads. Here
//! that fill is computed once per sample for the connections expected before the next sample
//! ([`Estimator`]), and the slot table is cut in proportion to it ([`targets`]):
//!
//! - a destination with no connections beside loaded ones gets (nearly) every slot;
//! - equal ratios give weight-proportional slots (equal slots for lc), as wrr would;
//! - weight 0 gets no slot;
//! - the table always has [`slot_total`] slots (at most [`MAX_SLOTS`]), so re-weighting never
//!   changes a service's `numgen … mod n` rule, only slot elements, and [`reassign`] moves as
//!   few of them as the new counts allow.

use std::collections::HashMap;

/// IPVS's weight of an active connection against an inactive one.
pub const ACTIVE_WEIGHT: u64 = 256;
/// Slots per live destination.
pub const SLOTS_PER_DEST: usize = 8;
/// Upper bound on a least-connection service's slots.
pub const MAX_SLOTS: usize = 512;

/// One destination's connections, as sampled.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Established connections (TCP `ESTABLISHED`, other protocols while tracked).
    pub active: u64,
    /// Connections opening or closing (`SYN_*`, `FIN_WAIT`, `TIME_WAIT`, ...).
    pub inactive: u64,
}

impl Load {
    /// IPVS's `active × 256 + inactive`.
    pub fn overhead(self) -> u64 {
        self.active
            .saturating_mul(ACTIVE_WEIGHT)
            .saturating_add(self.inactive)
    }
}

/// One destination of a least-connection service as the re-weighting sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dest {
    /// The plane's destination id (what a slot holds).
    pub id: u32,
    /// Weight; 0 gets no slot.
    pub weight: u32,
    /// Sampled overhead ([`Load::overhead`]).
    pub load: u64,
}

/// The slot count of a least-connection service with `live` destinations of weight > 0.
pub fn slot_total(live: usize) -> usize {
    if live == 0 {
        return 0;
    }
    live.saturating_mul(SLOTS_PER_DEST)
        .clamp(SLOTS_PER_DEST, MAX_SLOTS)
}

/// How many of `n` slots each destination should own (same order as `dests`): the
/// water-filling of `arrivals` (in overhead units, at least 1) over the loads, cut into `n`
/// slots by largest remainder. `weighted`: wlc (ratios over weights), else lc. The counts sum
/// to `n` when a destination has a weight, else they are all 0.
pub fn targets(dests: &[Dest], weighted: bool, arrivals: u64, n: usize) -> Vec<usize> {
    let mut out = vec![0usize; dests.len()];
    let live: Vec<usize> = (0..dests.len()).filter(|i| dests[*i].weight > 0).collect();
    if live.is_empty() || n == 0 {
        return out;
    }
    let eff = |i: usize| {
        if weighted {
            f64::from(dests[i].weight)
        } else {
            1.0
        }
    };
    #[allow(
        clippy::cast_precision_loss,
        reason = "loads are compared approximately; 2^53 connections do not occur"
    )]
    let load = |i: usize| dests[i].load as f64;
    #[allow(clippy::cast_precision_loss, reason = "as above")]
    let a = arrivals.max(1) as f64;
    // Ascending load ratio: the water level rises through them in this order.
    let mut order = live.clone();
    order.sort_by(|x, y| {
        (load(*x) / eff(*x))
            .total_cmp(&(load(*y) / eff(*y)))
            .then(x.cmp(y))
    });
    let (mut sum_e, mut sum_c, mut level) = (0.0f64, 0.0f64, 0.0f64);
    for (k, i) in order.iter().enumerate() {
        sum_e += eff(*i);
        sum_c += load(*i);
        level = (a + sum_c) / sum_e;
        let next = order.get(k + 1).map(|j| load(*j) / eff(*j));
        if next.is_none_or(|r| level <= r) {
            break;
        }
    }
    let fill: Vec<f64> = (0..dests.len())
        .map(|i| {
            if dests[i].weight == 0 {
                0.0
            } else {
                (level * eff(i) - load(i)).max(0.0)
            }
        })
        .collect();
    let total: f64 = fill.iter().sum();
    if total <= 0.0 {
        // Only rounding can get here: fall back to the least loaded destination.
        out[order[0]] = n;
        return out;
    }
    #[allow(clippy::cast_precision_loss, reason = "n is at most MAX_SLOTS")]
    let nf = n as f64;
    let exact: Vec<f64> = fill.iter().map(|f| f / total * nf).collect();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 ≤ exact ≤ n"
    )]
    for (o, e) in out.iter_mut().zip(&exact) {
        *o = e.floor() as usize;
    }
    let mut left = n.saturating_sub(out.iter().sum());
    let mut by_rest: Vec<usize> = (0..dests.len()).filter(|i| fill[*i] > 0.0).collect();
    by_rest.sort_by(|x, y| {
        (exact[*y] - exact[*y].floor())
            .total_cmp(&(exact[*x] - exact[*x].floor()))
            .then(x.cmp(y))
    });
    for i in by_rest.iter().cycle().take(by_rest.len().max(1) * 2) {
        if left == 0 {
            break;
        }
        out[*i] += 1;
        left -= 1;
    }
    if left > 0 {
        out[order[0]] += left;
    }
    out
}

/// New slot contents of `n` slots with `counts[i]` slots for `ids[i]`, moving as few slots of
/// `old` as possible: a slot keeps its destination while that destination still has room, and
/// freed slots go to the destinations with the most room left first, so a destination's new
/// slots spread over the table. `counts` should sum to `n`: slots beyond them go to the
/// smallest id; the table is empty when every count is 0.
pub fn reassign(old: &[u32], ids: &[u32], counts: &[usize], n: usize) -> Vec<u32> {
    let mut room: HashMap<u32, usize> = HashMap::new();
    for (id, c) in ids.iter().zip(counts) {
        *room.entry(*id).or_default() += *c;
    }
    if room.values().all(|c| *c == 0) {
        return Vec::new();
    }
    let mut out: Vec<Option<u32>> = vec![None; n];
    for (slot, id) in out.iter_mut().zip(old) {
        if let Some(r) = room.get_mut(id).filter(|r| **r > 0) {
            *r -= 1;
            *slot = Some(*id);
        }
    }
    // Holes, filled from the destination with the most room left (ties: the smallest id).
    for slot in out.iter_mut().filter(|s| s.is_none()) {
        let best = ids
            .iter()
            .copied()
            .max_by_key(|id| (room.get(id).copied().unwrap_or(0), std::cmp::Reverse(*id)));
        if let Some(id) = best {
            if let Some(r) = room.get_mut(&id).filter(|r| **r > 0) {
                *r -= 1;
            }
            *slot = Some(id);
        }
    }
    out.into_iter().flatten().collect()
}

/// The slot table of a least-connection service: [`targets`] of its destinations, laid over
/// `old` by [`reassign`]. Empty when no destination has a weight.
pub fn layout(dests: &[Dest], weighted: bool, arrivals: u64, old: &[u32]) -> Vec<u32> {
    let n = slot_total(dests.iter().filter(|d| d.weight > 0).count());
    let counts = targets(dests, weighted, arrivals, n);
    let ids: Vec<u32> = dests.iter().map(|d| d.id).collect();
    reassign(old, &ids, &counts, n)
}

/// The connections a service is expected to get before the next sample, in overhead units:
/// the growth of each destination's load since the last sample (summed over destinations whose
/// load grew: a lower bound of what arrived), remembered with a slow decay so one quiet sample
/// does not make the next burst land on a single destination, and never below one active
/// connection per live destination.
#[derive(Debug, Clone, Default)]
pub struct Estimator {
    prev: HashMap<u32, u64>,
    est: u64,
}

impl Estimator {
    /// Takes a new sample of `dests` and returns the expected arrivals.
    pub fn observe(&mut self, dests: &[Dest]) -> u64 {
        let grown: u64 = dests
            .iter()
            .map(|d| {
                self.prev
                    .get(&d.id)
                    .map_or(0, |p| d.load.saturating_sub(*p))
            })
            .fold(0u64, u64::saturating_add);
        self.prev = dests.iter().map(|d| (d.id, d.load)).collect();
        self.est = grown.max(self.est - self.est / 4);
        let live = dests.iter().filter(|d| d.weight > 0).count() as u64;
        self.est.max(live.saturating_mul(ACTIVE_WEIGHT)).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(id: u32, weight: u32, active: u64) -> Dest {
        Dest {
            id,
            weight,
            load: Load {
                active,
                inactive: 0,
            }
            .overhead(),
        }
    }

    fn count(slots: &[u32], id: u32) -> usize {
        slots.iter().filter(|s| **s == id).count()
    }

    #[test]
    fn an_idle_destination_gets_most_slots() {
        let dests = [d(1, 1, 100), d(2, 1, 0), d(3, 1, 100)];
        let slots = layout(&dests, true, 3 * ACTIVE_WEIGHT, &[]);
        assert_eq!(slots.len(), 24);
        assert_eq!(count(&slots, 2), 24, "{slots:?}");
        // With a burst bigger than the gap, the others get a share too, the idle one most.
        let t = targets(&dests, true, 300 * ACTIVE_WEIGHT, 24);
        assert!(t[1] > t[0] && t[1] > t[2] && t[0] > 0, "{t:?}");
        assert_eq!(t.iter().sum::<usize>(), 24);
    }

    #[test]
    fn equal_loads_give_weight_proportional_slots() {
        // Loads proportional to the weights: equal ratios.
        let dests = [d(1, 3, 30), d(2, 2, 20), d(3, 1, 10)];
        assert_eq!(targets(&dests, true, 600 * ACTIVE_WEIGHT, 24), [12, 8, 4]);
        let idle = [d(1, 3, 0), d(2, 2, 0), d(3, 1, 0)];
        assert_eq!(targets(&idle, true, 1, 24), [12, 8, 4]);
        // lc ignores weights (but 0).
        assert_eq!(targets(&idle, false, 1, 24), [8, 8, 8]);
    }

    #[test]
    fn weight_zero_gets_none() {
        let dests = [d(1, 0, 0), d(2, 1, 50), d(3, 1, 50)];
        let slots = layout(&dests, true, 1_000_000, &[]);
        assert_eq!(slots.len(), 16, "two live destinations");
        assert_eq!(count(&slots, 1), 0);
        assert_eq!(count(&slots, 2), 8);
        assert!(layout(&[d(1, 0, 0)], true, 1, &[1, 1]).is_empty());
        assert!(targets(&[d(1, 0, 0)], false, 1, 8).iter().all(|c| *c == 0));
    }

    #[test]
    fn the_slot_total_is_bounded() {
        assert_eq!(slot_total(0), 0);
        assert_eq!(slot_total(1), SLOTS_PER_DEST);
        assert_eq!(slot_total(1000), MAX_SLOTS);
        let many: Vec<Dest> = (0..1000).map(|i| d(i, 1 + i % 7, u64::from(i))).collect();
        let slots = layout(&many, true, 5000, &[]);
        assert_eq!(slots.len(), MAX_SLOTS);
        let t = targets(&many, true, u64::MAX, MAX_SLOTS);
        assert_eq!(t.iter().sum::<usize>(), MAX_SLOTS);
    }

    #[test]
    fn wlc_compares_load_over_weight() {
        // 40 connections on weight 4 is lighter than 20 on weight 1.
        let dests = [d(1, 4, 40), d(2, 1, 20)];
        let t = targets(&dests, true, 2 * ACTIVE_WEIGHT, 16);
        assert_eq!(t, [16, 0]);
        // lc ignores the weights: 20 is lighter than 40.
        assert_eq!(targets(&dests, false, 2 * ACTIVE_WEIGHT, 16), [0, 16]);
    }

    #[test]
    fn inactive_connections_weigh_a_256th() {
        let busy = Load {
            active: 1,
            inactive: 0,
        };
        let closing = Load {
            active: 0,
            inactive: 200,
        };
        assert!(closing.overhead() < busy.overhead());
        let huge = Load {
            active: u64::MAX,
            inactive: 1,
        };
        assert_eq!(huge.overhead(), u64::MAX, "saturates");
    }

    #[test]
    fn reassign_moves_only_what_it_must() {
        let old = [1, 2, 1, 2, 1, 2, 1, 2];
        let same = reassign(&old, &[1, 2], &[4, 4], 8);
        assert_eq!(same, old);
        let shifted = reassign(&old, &[1, 2], &[6, 2], 8);
        assert_eq!(count(&shifted, 1), 6);
        let moved = old.iter().zip(&shifted).filter(|(a, b)| a != b).count();
        assert_eq!(moved, 2, "{shifted:?}");
        // A departed destination's slots go to the others; survivors keep theirs.
        let gone = reassign(&old, &[1, 3], &[4, 4], 8);
        assert!(old.iter().zip(&gone).all(|(o, g)| *o == 2 || o == g));
        assert_eq!(count(&gone, 3), 4);
        // Growing and shrinking tables.
        assert_eq!(reassign(&[], &[7], &[8], 8), [7; 8]);
        assert_eq!(reassign(&old, &[1], &[2], 2), [1, 1]);
    }

    #[test]
    fn the_estimator_remembers_bursts_and_has_a_floor() {
        let mut e = Estimator::default();
        let at = |a: u64, b: u64| [d(1, 1, a), d(2, 1, b)];
        assert_eq!(e.observe(&at(0, 0)), 2 * ACTIVE_WEIGHT, "floor");
        let burst = e.observe(&at(100, 0));
        assert_eq!(burst, 100 * ACTIVE_WEIGHT);
        let quiet = e.observe(&at(100, 0));
        assert_eq!(quiet, 75 * ACTIVE_WEIGHT, "decays slowly");
        // Shrinking loads are departures, not arrivals.
        assert!(e.observe(&at(0, 0)) < quiet);
    }
}
