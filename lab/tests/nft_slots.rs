//! The engine refuses a config the nftables plane cannot hold by counting the slots it would lay
//! (`seesaw_engine::config::validate::nft_slots`); this holds that count to the plane's own
//! layout (`seesaw_ncc::dataplane::nftables::layout::slots`) for every scheduler the plane
//! carries, over seeded weight sets: none, one, many, zero weights, weights with a common
//! divisor, weights past the 4,096-slot scale-down and Maglev's larger tables.

use seesaw_engine::config::validate::{nft_slots, nft_slots_bound};
use seesaw_ncc::dataplane::nftables::layout::{Layout, Member, slots};
use seesaw_proto::domain::Scheduler;

const SCHEDULERS: [Scheduler; 8] = [
    Scheduler::Rr,
    Scheduler::Wrr,
    Scheduler::Lc,
    Scheduler::Wlc,
    Scheduler::Sh,
    Scheduler::Mh,
    Scheduler::Dh,
    Scheduler::Random,
];

/// A seeded generator (xorshift64*), so a failure names a weight set that reproduces.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

fn weight_sets() -> Vec<Vec<u32>> {
    let mut sets = vec![
        vec![],
        vec![0],
        vec![1],
        vec![0, 0, 7],
        vec![3, 6, 9],
        vec![10_000, 1],
    ];
    sets.push(vec![1; 700]);
    let mut rng = Rng(0x5ee5_a11e);
    for _ in 0..200 {
        let n = rng.below(40);
        let top = [2, 10, 300, 100_000][usize::try_from(rng.below(4)).unwrap()];
        let common = 1 + rng.below(5);
        sets.push(
            (0..n)
                .map(|_| u32::try_from(rng.below(top) * common).unwrap())
                .collect(),
        );
    }
    sets
}

/// The plane's view of destinations with `weights`: ids from 1, distinct Maglev keys.
fn members(weights: &[u32]) -> Vec<Member> {
    (0u32..)
        .zip(weights)
        .map(|(i, w)| Member {
            id: i + 1,
            weight: *w,
            key: u64::from(i) * 0x9e37_79b9,
        })
        .collect()
}

#[test]
fn the_engines_slot_count_is_what_the_nftables_plane_lays() {
    for weights in weight_sets() {
        let members = members(&weights);
        for s in SCHEDULERS {
            let laid = slots(Layout::of(s).expect("carried"), &members, &[], None).len();
            assert_eq!(
                nft_slots(s, &weights),
                laid,
                "{s} over {} weights, the first {:?}",
                weights.len(),
                &weights[..weights.len().min(12)]
            );
        }
    }
    assert_eq!(Layout::of(Scheduler::P2c), None);
    assert_eq!(nft_slots(Scheduler::P2c, &[1, 2]), 0);
}

/// The engine sends a service only its healthy destinations of the service's address family, a
/// subset of the configured ones; `nft_slots_bound` of the whole set is at least what the plane
/// lays for any subset (where wrr's scale-down past 4,096 slots makes a subset lay more).
#[test]
fn the_engines_bound_covers_every_subset_the_plane_may_be_sent() {
    let mut rng = Rng(0xb00d);
    let mut sets = weight_sets();
    let mut w = vec![3; 1364];
    w.extend([1; 5]);
    sets.push(w);
    for weights in sets {
        for round in 0..8 {
            // Round 0 drops nothing; later rounds drop each destination with odds 1 in 4.
            let kept: Vec<u32> = weights
                .iter()
                .filter(|_| round == 0 || rng.below(4) != 0)
                .copied()
                .collect();
            let members = members(&kept);
            for s in SCHEDULERS {
                let laid = slots(Layout::of(s).expect("carried"), &members, &[], None).len();
                let bound = nft_slots_bound(s, &weights);
                assert!(
                    laid <= bound,
                    "{s}: {laid} slots for {} of {} weights, bound {bound}; the first {:?}",
                    kept.len(),
                    weights.len(),
                    &weights[..weights.len().min(12)]
                );
            }
        }
    }
}
