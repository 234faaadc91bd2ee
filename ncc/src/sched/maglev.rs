//! Maglev consistent hashing (Eisenbud et al., NSDI 2016), pure and stable: the same backends
//! give the same table on every node and after every restart, because every hash is xxh64 with a
//! fixed seed over a caller-supplied stable key (e.g. the hash of the backend's address).
//!
//! Weights: in round `r` a backend with weight `w` takes a turn when
//! `floor((r+1)·w/wmax) > floor(r·w/wmax)`, so over a full table each backend holds slots in
//! proportion to its weight. Weight 0 backends hold no slot.
//!
//! The nftables plane reuses this module; keep [`build`] and [`table_size`] stable.

use std::hash::Hasher;

/// Seed of the offset hash.
const SEED_OFFSET: u64 = 0x5ee5_a11e_0ff5_e701;
/// Seed of the skip hash.
const SEED_SKIP: u64 = 0x5ee5_a11e_5c19_0002;
/// Seed of [`key_hash`].
const SEED_KEY: u64 = 0x5ee5_a11e_6e79_0003;

/// Table sizes (primes), smallest first. [`table_size`] picks the first that is at least
/// 100 × the backend count (the paper's bound for small disruption), never below [`DEFAULT_SIZE`].
pub const PRIMES: &[usize] = &[
    65_537, 131_071, 262_139, 524_287, 1_048_573, 2_097_143, 4_194_301,
];

/// The default table size.
pub const DEFAULT_SIZE: usize = 65_537;

/// Table size for `n_backends`: the smallest listed prime ≥ 100 × `n_backends`, at least
/// [`DEFAULT_SIZE`], at most the largest listed prime.
pub fn table_size(n_backends: usize) -> usize {
    let want = n_backends.saturating_mul(100);
    PRIMES
        .iter()
        .copied()
        .find(|&p| p >= want)
        .unwrap_or(PRIMES[PRIMES.len() - 1])
}

/// A stable 64-bit key for arbitrary bytes (e.g. a backend's address), for use as the key in
/// [`build`].
pub fn key_hash(bytes: &[u8]) -> u64 {
    let mut h = twox_hash::XxHash64::with_seed(SEED_KEY);
    h.write(bytes);
    h.finish()
}

fn hash_u64(key: u64, seed: u64) -> u64 {
    let mut h = twox_hash::XxHash64::with_seed(seed);
    h.write(&key.to_le_bytes());
    h.finish()
}

/// Builds a Maglev lookup table of `size` slots (`size` should be prime, see [`table_size`]).
/// Each slot holds an index into `backends`. Returns an empty table when `size` is 0 or no
/// backend has a weight above 0. Backends are `(stable key hash, weight)`; their order in the
/// slice does not matter for which key gets which slots, only for the returned indexes.
pub fn build(backends: &[(u64, u32)], size: usize) -> Vec<u32> {
    let wmax = backends.iter().map(|b| b.1).max().unwrap_or(0);
    if size == 0 || wmax == 0 || u32::try_from(backends.len()).is_err() {
        return Vec::new();
    }
    // Visit backends in key order so the result does not depend on the slice order; ties (equal
    // keys) fall back to the slice order.
    let mut order: Vec<usize> = (0..backends.len()).filter(|&i| backends[i].1 > 0).collect();
    order.sort_by_key(|&i| (backends[i].0, i));
    let m = size as u64;
    let mut pos: Vec<u64> = Vec::with_capacity(order.len());
    let mut skip: Vec<u64> = Vec::with_capacity(order.len());
    for &i in &order {
        let k = backends[i].0;
        pos.push(hash_u64(k, SEED_OFFSET) % m);
        skip.push(if m > 1 {
            hash_u64(k, SEED_SKIP) % (m - 1) + 1
        } else {
            1
        });
    }
    const EMPTY: u32 = u32::MAX;
    let mut table = vec![EMPTY; size];
    let mut filled = 0usize;
    let wmax = u64::from(wmax);
    let mut round: u64 = 0;
    while filled < size {
        for (n, &i) in order.iter().enumerate() {
            let w = u64::from(backends[i].1);
            if w != wmax && (round + 1) * w / wmax == round * w / wmax {
                continue;
            }
            // Next free slot in this backend's permutation.
            let mut p = pos[n];
            while table[p as usize] != EMPTY {
                p += skip[n];
                if p >= m {
                    p -= m;
                }
            }
            table[p as usize] = i as u32;
            p += skip[n];
            if p >= m {
                p -= m;
            }
            pos[n] = p;
            filled += 1;
            if filled == size {
                break;
            }
        }
        round += 1;
    }
    table
}

/// The slot of `flow_hash` in a table of `len` slots.
#[inline]
pub fn slot(flow_hash: u64, len: usize) -> usize {
    (flow_hash % len as u64) as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(n: usize) -> Vec<(u64, u32)> {
        (0..n)
            .map(|i| {
                (
                    key_hash(format!("10.0.{}.{}:80", i / 256, i % 256).as_bytes()),
                    1,
                )
            })
            .collect()
    }

    fn counts(t: &[u32], n: usize) -> Vec<usize> {
        let mut c = vec![0; n];
        for &i in t {
            c[i as usize] += 1;
        }
        c
    }

    #[test]
    fn equal_weights_spread_evenly() {
        let b = keys(4);
        let t = build(&b, DEFAULT_SIZE);
        let c = counts(&t, 4);
        assert!(c.iter().all(|&x| (16_383..=16_385).contains(&x)), "{c:?}");
    }

    #[test]
    fn weights_are_proportional() {
        let mut b = keys(3);
        b[0].1 = 1;
        b[1].1 = 2;
        b[2].1 = 5;
        let t = build(&b, DEFAULT_SIZE);
        let c = counts(&t, 3);
        let total = DEFAULT_SIZE as f64;
        for (i, w) in [(0, 1.0), (1, 2.0), (2, 5.0)] {
            let share = c[i] as f64 / total;
            assert!((share - w / 8.0).abs() < 0.01, "{c:?}");
        }
    }

    #[test]
    fn zero_weight_and_empty() {
        assert!(build(&[], DEFAULT_SIZE).is_empty());
        assert!(build(&[(1, 0)], DEFAULT_SIZE).is_empty());
        assert!(build(&[(1, 1)], 0).is_empty());
        let t = build(&[(1, 0), (2, 1)], 7);
        assert!(t.iter().all(|&i| i == 1));
    }

    #[test]
    fn stable_and_order_independent() {
        let b = keys(10);
        let t1 = build(&b, 251);
        let mut r = b.clone();
        r.reverse();
        let t2 = build(&r, 251);
        // Same key in every slot regardless of input order.
        for (x, y) in t1.iter().zip(&t2) {
            assert_eq!(b[*x as usize].0, r[*y as usize].0);
        }
        // Golden: the table of a fixed input never changes across builds and releases.
        assert_eq!(&build(&[(1, 1), (2, 1), (3, 1)], 13), &GOLDEN);
    }

    const GOLDEN: [u32; 13] = [1, 2, 1, 0, 0, 0, 0, 0, 1, 2, 2, 2, 1];

    #[test]
    fn removing_one_of_1000_moves_under_one_percent_of_others() {
        let b = keys(1000);
        let size = DEFAULT_SIZE;
        let before = build(&b, size);
        let gone = 417;
        let mut less = b.clone();
        less.remove(gone);
        let after = build(&less, size);
        let mut moved = 0usize;
        let mut kept = 0usize;
        for (x, y) in before.iter().zip(&after) {
            let kx = b[*x as usize].0;
            if *x as usize == gone {
                continue;
            }
            kept += 1;
            if less[*y as usize].0 != kx {
                moved += 1;
            }
        }
        let frac = moved as f64 / kept as f64;
        assert!(frac <= 0.01, "moved {moved} of {kept} ({frac:.4})");
    }

    #[test]
    fn table_sizes() {
        assert_eq!(table_size(0), 65_537);
        assert_eq!(table_size(655), 65_537);
        assert_eq!(table_size(1000), 131_071);
        assert_eq!(table_size(usize::MAX), 4_194_301);
    }
}
