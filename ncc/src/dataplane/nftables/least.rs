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

/// The exponent of one steering step: each sample moves a destination's share by the square
/// root of how far its load ratio is from the mean (half the gap, on a log scale).
pub const STEER_GAIN: f64 = 0.5;
/// The least share a live destination keeps (2 %), so one that was overloaded is sampled
/// again and wins its share back once its connections close.
pub const STEER_FLOOR: f64 = 0.02;

/// The steady-state controller of a least-connection service, one per service: the share of
/// new connections each destination gets, moved every sample towards equal load ratios.
///
/// Water-filling ([`targets`]) models arrivals that stay; short connections also *leave*, and a
/// table re-cut from one sample sends every new connection to the destination that was least
/// loaded at that instant until the next sample — it herds, and the loads swing. IPVS's wlc,
/// per connection, settles where every destination has the same `overhead / weight`: with
/// service times `τ`, destination `i` then gets arrivals in proportion to `weight / τ` (Little's
/// law). `Steering` reaches the same point from samples alone: a destination whose ratio is
/// above the mean loses share, one below gains, by `((mean + c) / (ratio + c)) ^ STEER_GAIN`
/// (`c`: one active connection, so small counts move shares gently), from the shares it set
/// last. A destination with nothing beside loaded ones gains several-fold per sample, so an
/// idle or new destination fills within a second, as with IPVS. When every destination is
/// (nearly) idle the loads say nothing, and the shares relax towards the weights.
#[derive(Debug, Clone, Default)]
pub struct Steering {
    shares: HashMap<u32, f64>,
}

impl Steering {
    /// Takes a sample of `dests` and returns each one's share (same order; weight 0 gets 0).
    pub fn step(&mut self, dests: &[Dest], weighted: bool) -> Vec<f64> {
        let eff = |d: &Dest| {
            if weighted { f64::from(d.weight) } else { 1.0 }
        };
        #[allow(
            clippy::cast_precision_loss,
            reason = "loads are compared approximately; 2^53 connections do not occur"
        )]
        let load = |d: &Dest| d.load as f64;
        let live: Vec<&Dest> = dests.iter().filter(|d| d.weight > 0).collect();
        let sum_eff: f64 = live.iter().map(|d| eff(d)).sum();
        if live.is_empty() || sum_eff <= 0.0 {
            self.shares.clear();
            return vec![0.0; dests.len()];
        }
        let mean = live.iter().map(|d| load(d)).sum::<f64>() / sum_eff;
        #[allow(clippy::cast_precision_loss, reason = "a small constant")]
        let c = ACTIVE_WEIGHT as f64;
        let mut out: Vec<f64> = dests
            .iter()
            .map(|d| {
                if d.weight == 0 {
                    return 0.0;
                }
                // A destination without a share yet starts at its weight's.
                let start = self
                    .shares
                    .get(&d.id)
                    .copied()
                    .unwrap_or(eff(d) / sum_eff)
                    .max(STEER_FLOOR);
                let ratio = load(d) / eff(d);
                start * ((mean + c) / (ratio + c)).powf(STEER_GAIN)
            })
            .collect();
        // Little load, little to learn from: shares relax towards the weights (half-way per
        // sample with nothing at all, a 32nd at three active connections per destination),
        // as IPVS spreads connections that find every destination equally idle.
        let relax = 0.5 * (c / (mean + c)).powi(2);
        let total: f64 = out.iter().sum();
        for (s, d) in out.iter_mut().zip(dests) {
            if d.weight > 0 {
                *s = ((1.0 - relax) * *s / total + relax * eff(d) / sum_eff).max(STEER_FLOOR);
            }
        }
        let total: f64 = out.iter().sum();
        for s in &mut out {
            *s /= total;
        }
        self.shares = dests
            .iter()
            .zip(&out)
            .filter(|(d, _)| d.weight > 0)
            .map(|(d, s)| (d.id, *s))
            .collect();
        out
    }
}

/// `n` slots cut in proportion to `shares` (largest remainder); the counts sum to `n` when any
/// share is positive, else they are all 0.
pub fn cut(shares: &[f64], n: usize) -> Vec<usize> {
    let mut out = vec![0usize; shares.len()];
    let total: f64 = shares.iter().sum();
    if total <= 0.0 || n == 0 {
        return out;
    }
    #[allow(clippy::cast_precision_loss, reason = "n is at most MAX_SLOTS")]
    let nf = n as f64;
    let exact: Vec<f64> = shares.iter().map(|s| s / total * nf).collect();
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 ≤ exact ≤ n"
    )]
    for (o, e) in out.iter_mut().zip(&exact) {
        *o = e.floor() as usize;
    }
    let mut rest: Vec<usize> = (0..shares.len()).filter(|i| shares[*i] > 0.0).collect();
    rest.sort_by(|x, y| {
        (exact[*y] - exact[*y].floor())
            .total_cmp(&(exact[*x] - exact[*x].floor()))
            .then(x.cmp(y))
    });
    let mut left = n.saturating_sub(out.iter().sum());
    for i in rest.iter().cycle().take(rest.len() * 2) {
        if left == 0 {
            break;
        }
        out[*i] += 1;
        left -= 1;
    }
    out
}

/// One sample's slot table for a least-connection service: [`Steering::step`], cut into the
/// service's [`slot_total`] slots and laid over `old` with [`reassign`].
pub fn steer(steering: &mut Steering, dests: &[Dest], weighted: bool, old: &[u32]) -> Vec<u32> {
    let n = slot_total(dests.iter().filter(|d| d.weight > 0).count());
    let counts = cut(&steering.step(dests, weighted), n);
    let ids: Vec<u32> = dests.iter().map(|d| d.id).collect();
    reassign(old, &ids, &counts, n)
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

    /// A closed loop of three destinations whose connections last 55, 70 and 110 ms (the
    /// wlcbench set-up in the kernel lab: 5/20/60 ms answers plus the emulated machine's
    /// connection overhead) at 300 new connections a second: each sample sees the loads that
    /// the last shares produce (Little's law), and the shares settle where the loads are equal
    /// — IPVS's wlc, arrivals in proportion to 1/τ — without swinging.
    #[test]
    fn steering_settles_where_ipvs_wlc_does() {
        let tau = [0.055, 0.070, 0.110];
        let rate = 300.0;
        let mut st = Steering::default();
        let mut shares = vec![1.0 / 3.0; 3];
        let mut history = Vec::new();
        for _ in 0..40 {
            let dests: Vec<Dest> = (0..3)
                .map(|i| {
                    #[allow(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a small positive load"
                    )]
                    let load = (rate * shares[i] * tau[i] * 256.0) as u64;
                    Dest {
                        id: u32::try_from(i).unwrap() + 1,
                        weight: 1,
                        load,
                    }
                })
                .collect();
            shares = st.step(&dests, true);
            history.push(shares.clone());
        }
        let inv: Vec<f64> = tau.iter().map(|t| 1.0 / t).collect();
        let sum: f64 = inv.iter().sum();
        for (i, want) in inv.iter().map(|v| v / sum).enumerate() {
            for h in &history[20..] {
                assert!(
                    (h[i] - want).abs() < 0.02,
                    "share {i}: {h:?}, want {want:.3}"
                );
            }
        }
    }

    #[test]
    fn steering_drains_a_loaded_destination_and_fills_an_idle_one() {
        let mut st = Steering::default();
        // be1 holds 40 connections, be2 and be3 none: within six samples (1.5 s) be1 is at
        // the floor and the idle two share the rest.
        let dests = [d(1, 1, 40), d(2, 1, 0), d(3, 1, 0)];
        let mut s = Vec::new();
        for _ in 0..6 {
            s = st.step(&dests, true);
        }
        assert!(s[0] <= 0.05, "{s:?}");
        assert!((s[1] - s[2]).abs() < 1e-9 && s[1] > 0.45, "{s:?}");
        // Weight 0 gets nothing; equal ratios keep weight-proportional shares.
        let mut st = Steering::default();
        let s = st.step(&[d(1, 2, 20), d(2, 1, 10), d(3, 0, 0)], true);
        assert!((s[0] - 2.0 / 3.0).abs() < 1e-9 && s[2] == 0.0, "{s:?}");
        assert_eq!(cut(&s, 24), [16, 8, 0]);
        assert_eq!(cut(&[0.0, 0.0], 24), [0, 0]);
        // Drained to the floor, then every destination idle: back to equal shares.
        let mut st = Steering::default();
        for _ in 0..6 {
            st.step(&[d(1, 1, 40), d(2, 1, 0), d(3, 1, 0)], true);
        }
        let mut s = Vec::new();
        for _ in 0..8 {
            s = st.step(&[d(1, 1, 0), d(2, 1, 0), d(3, 1, 0)], true);
        }
        assert!(s.iter().all(|x| (x - 1.0 / 3.0).abs() < 0.01), "{s:?}");
    }
}
