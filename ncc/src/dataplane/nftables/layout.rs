//! Slot layouts: which destination owns each scheduler slot of a service. The nftables plane
//! turns every scheduler into "compute a slot number, look the slot up in a map": rr and wrr
//! use `numgen inc`, random `numgen random`, sh and mh `jhash` of the source, dh `jhash` of the
//! destination. This module decides the slot contents, purely.
//!
//! - rr: one slot per destination with weight > 0 (weights only switch a destination on or off);
//! - wrr, random, sh, dh: weight-proportional slots (weights divided by their gcd, scaled down
//!   to at most [`MAX_WEIGHTED_SLOTS`]), interleaved in smooth-wrr order so consecutive `numgen`
//!   values spread over the destinations;
//! - mh: a Maglev table derived from the previous one ([`maglev::derive`]): survivors keep their
//!   slots up to their new share, so removing a backend moves only the flows that were on it and
//!   adding one moves about 1/n of them;
//! - lc, wlc: a fixed-size table ([`least::slot_total`]) that ncc re-cuts from sampled
//!   connection counts between applies ([`least`]); an apply lays it out as if every
//!   destination were idle (weight-proportional for wlc, equal for lc), moving as few slots as
//!   it can, and the next sample corrects it.

use super::least;
use crate::model::Scheduler;
use crate::sched::maglev;

/// Upper bound on the slots of a weighted scheduler.
pub const MAX_WEIGHTED_SLOTS: u64 = 4096;

/// The scheduler families the plane knows how to lay out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One slot per live destination.
    Plain,
    /// Weight-proportional, interleaved.
    Weighted,
    /// Maglev.
    Maglev,
    /// Least connections, re-cut from connection counts (`weighted`: wlc).
    Least {
        /// wlc (ratios over weights) rather than lc.
        weighted: bool,
    },
}

impl Layout {
    /// How the plane lays out `s`'s slots; `None` for a scheduler it does not carry (p2c).
    pub fn of(s: Scheduler) -> Option<Self> {
        match s {
            Scheduler::Rr => Some(Self::Plain),
            Scheduler::Wrr | Scheduler::Sh | Scheduler::Dh | Scheduler::Random => {
                Some(Self::Weighted)
            }
            Scheduler::Mh => Some(Self::Maglev),
            Scheduler::Lc => Some(Self::Least { weighted: false }),
            Scheduler::Wlc => Some(Self::Least { weighted: true }),
            Scheduler::P2c => None,
        }
    }
}

/// One destination as the layout sees it: an id (the plane's destination id), its weight and a
/// stable key hash (for Maglev).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// The destination id stored in the slot.
    pub id: u32,
    /// Weight; 0 owns no slot.
    pub weight: u32,
    /// Stable hash of the destination's address (Maglev key).
    pub key: u64,
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// The slot contents for `members`. `old` is the current table (Maglev: survivors keep their
/// slots when destinations only left; least connections: as few slots move as possible);
/// `anchor`, when given, replaces `old` as what a Maglev table is derived from, so every node
/// with the same anchor and members lays out the same table. Empty when no member has a weight.
pub fn slots(
    layout: Layout,
    members: &[Member],
    old: &[u32],
    anchor: Option<&maglev::Anchor>,
) -> Vec<u32> {
    let live: Vec<&Member> = members.iter().filter(|m| m.weight > 0).collect();
    if live.is_empty() {
        return Vec::new();
    }
    match layout {
        Layout::Plain => live.iter().map(|m| m.id).collect(),
        Layout::Weighted => weighted(&live),
        Layout::Least { weighted } => {
            let dests: Vec<least::Dest> = live
                .iter()
                .map(|m| least::Dest {
                    id: m.id,
                    weight: m.weight,
                    load: 0,
                })
                .collect();
            least::layout(&dests, weighted, 1, old)
        }
        Layout::Maglev => {
            let backends: Vec<(u64, u32)> = live.iter().map(|m| (m.key, m.weight)).collect();
            let keys: std::collections::HashMap<u32, u64> =
                live.iter().map(|m| (m.id, m.key)).collect();
            let prev: Vec<u64> = match anchor {
                Some(a) => a.slots.clone(),
                None => old
                    .iter()
                    .map(|id| keys.get(id).copied().unwrap_or(maglev::GONE))
                    .collect(),
            };
            maglev::derive(&prev, &backends)
                .into_iter()
                .map(|i| live[i as usize].id)
                .collect()
        }
    }
}

fn weighted(live: &[&Member]) -> Vec<u32> {
    let g = live
        .iter()
        .fold(0u64, |g, m| gcd(g, u64::from(m.weight)))
        .max(1);
    let mut w: Vec<u64> = live.iter().map(|m| u64::from(m.weight) / g).collect();
    let total: u64 = w.iter().sum();
    if total > MAX_WEIGHTED_SLOTS {
        for x in &mut w {
            *x = (*x * MAX_WEIGHTED_SLOTS / total).max(1);
        }
    }
    let total: u64 = w.iter().sum();
    // Smooth weighted round robin (nginx): each step every member gains its weight, the richest
    // is picked and pays the total.
    let mut credit = vec![0i64; w.len()];
    let wi: Vec<i64> = w
        .iter()
        .map(|x| i64::try_from(*x).unwrap_or(i64::MAX))
        .collect();
    let ti = i64::try_from(total).unwrap_or(i64::MAX);
    let mut out = Vec::with_capacity(usize::try_from(total).unwrap_or(0));
    for _ in 0..total {
        let mut best = 0;
        for i in 0..credit.len() {
            credit[i] += wi[i];
            if credit[i] > credit[best] {
                best = i;
            }
        }
        credit[best] -= ti;
        out.push(live[best].id);
    }
    out
}

/// The slot capacity reserved for a table of `n` slots: room to grow without moving the range.
pub fn capacity(n: usize) -> u32 {
    let n = u32::try_from(n).unwrap_or(u32::MAX);
    n.max(8).checked_next_power_of_two().unwrap_or(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(id: u32, weight: u32) -> Member {
        Member {
            id,
            weight,
            key: maglev::key_hash(&id.to_le_bytes()),
        }
    }

    #[test]
    fn plain_skips_weight_zero() {
        assert_eq!(
            slots(Layout::Plain, &[m(1, 5), m(2, 0), m(3, 1)], &[], None),
            [1, 3]
        );
    }

    #[test]
    fn weighted_is_proportional_and_interleaved() {
        let s = slots(Layout::Weighted, &[m(1, 6), m(2, 4), m(3, 2)], &[], None);
        assert_eq!(s.len(), 6, "weights divided by their gcd");
        assert_eq!(s.iter().filter(|x| **x == 1).count(), 3);
        assert_eq!(s.iter().filter(|x| **x == 2).count(), 2);
        assert_eq!(s, [1, 2, 1, 3, 2, 1]);
    }

    #[test]
    fn weighted_scales_huge_weights() {
        let s = slots(Layout::Weighted, &[m(1, 1_000_000), m(2, 1)], &[], None);
        assert!(s.len() as u64 <= MAX_WEIGHTED_SLOTS + 1);
        assert!(s.contains(&2), "a small weight keeps at least one slot");
    }

    #[test]
    fn maglev_removal_keeps_survivors_slots() {
        let three = slots(Layout::Maglev, &[m(1, 1), m(2, 1), m(3, 1)], &[], None);
        let two = slots(Layout::Maglev, &[m(1, 1), m(3, 1)], &three, None);
        assert_eq!(three.len(), two.len());
        for (a, b) in three.iter().zip(&two) {
            if *a != 2 {
                assert_eq!(a, b, "a survivor's slot moved");
            } else {
                assert_ne!(*b, 2);
            }
        }
        let share = two.iter().filter(|x| **x == 1).count() as f64 / two.len() as f64;
        assert!((0.4..0.6).contains(&share), "unbalanced: {share}");
    }

    #[test]
    fn maglev_addition_moves_only_the_newcomers_share() {
        let two = slots(Layout::Maglev, &[m(1, 1), m(3, 1)], &[], None);
        let three = slots(Layout::Maglev, &[m(1, 1), m(2, 1), m(3, 1)], &two, None);
        assert_eq!(two.len(), three.len());
        // Every slot that changed went to the newcomer, and it holds a third of them.
        assert!(two.iter().zip(&three).all(|(a, b)| a == b || *b == 2));
        let share = three.iter().filter(|x| **x == 2).count() as f64 / three.len() as f64;
        assert!((share - 1.0 / 3.0).abs() < 0.001, "newcomer share {share}");
    }

    #[test]
    fn least_connection_tables_start_idle_and_keep_their_slots() {
        let wlc = Layout::Least { weighted: true };
        let s = slots(wlc, &[m(1, 3), m(2, 1), m(3, 0)], &[], None);
        assert_eq!(s.len(), 16, "8 slots per live destination");
        assert_eq!(s.iter().filter(|x| **x == 1).count(), 12);
        let lc = slots(
            Layout::Least { weighted: false },
            &[m(1, 3), m(2, 1)],
            &[],
            None,
        );
        assert_eq!(lc.iter().filter(|x| **x == 1).count(), 8);
        // A re-laid table keeps every slot it can.
        let again = slots(wlc, &[m(1, 3), m(2, 1)], &s, None);
        assert_eq!(again, s);
    }

    #[test]
    fn capacity_rounds_up() {
        assert_eq!(capacity(0), 8);
        assert_eq!(capacity(9), 16);
        assert_eq!(capacity(65_537), 131_072);
    }

    #[test]
    fn an_anchor_replaces_what_the_node_held() {
        let all = [m(1, 1), m(2, 1), m(3, 1), m(4, 1)];
        let set: Vec<(u64, u32)> = all.iter().map(|x| (x.key, x.weight)).collect();
        let anchor = maglev::Anchor::derive(None, &set);
        let live = [m(1, 1), m(2, 1), m(4, 1)];
        let garbage = vec![2u32; 65_537];
        let a = slots(Layout::Maglev, &live, &garbage, Some(&anchor));
        let b = slots(Layout::Maglev, &live, &[], Some(&anchor));
        assert_eq!(a, b, "what the node held does not matter");
        let keys = |t: &[u32]| -> Vec<u64> {
            t.iter()
                .map(|id| live.iter().find(|x| x.id == *id).unwrap().key)
                .collect()
        };
        let live_set: Vec<(u64, u32)> = live.iter().map(|x| (x.key, x.weight)).collect();
        assert_eq!(
            keys(&a),
            maglev::Anchor::derive(Some(&anchor), &live_set).slots
        );
    }
}
