//! Distribution properties of every scheduler: rr and wrr are exact, smooth wrr interleaves,
//! lc/wlc follow load, sh/dh/mh are sticky and weighted, random and p2c are weighted, backups are
//! used only when no primary can be, drained members take nothing new, and retries skip.

use std::sync::atomic::{AtomicU64, Ordering};

use super::*;

fn members(weights: &[u32]) -> Vec<Member> {
    weights
        .iter()
        .enumerate()
        .map(|(i, &w)| Member {
            key: hash_addr(format!("10.0.0.{}:80", i + 1).parse().unwrap()),
            weight: w,
            backup: false,
        })
        .collect()
}

fn no_load(_: usize) -> u64 {
    0
}

fn flow(i: u64) -> FlowHash {
    FlowHash {
        src: hash_bytes(&i.to_le_bytes()),
        dst: 7,
    }
}

fn counts(p: &Picker, n: usize, rounds: u64) -> Vec<u64> {
    let mut c = vec![0; n];
    for i in 0..rounds {
        c[p.pick(flow(i), &no_load, &[]).unwrap()] += 1;
    }
    c
}

fn assert_share(c: &[u64], weights: &[u32], tolerance: f64) {
    let total: u64 = c.iter().sum();
    let wsum: u32 = weights.iter().sum();
    for (i, (&got, &w)) in c.iter().zip(weights).enumerate() {
        let want = f64::from(w) / f64::from(wsum);
        let share = got as f64 / total as f64;
        assert!(
            (share - want).abs() <= tolerance,
            "member {i}: share {share:.4}, want {want:.4} ({c:?})"
        );
    }
}

#[test]
fn rr_is_exact_and_skips_drained() {
    let p = Picker::new(Algo::Rr, &members(&[1, 5, 0, 1]));
    let seq: Vec<usize> = (0..6)
        .map(|i| p.pick(flow(i), &no_load, &[]).unwrap())
        .collect();
    assert_eq!(seq, [0, 1, 3, 0, 1, 3]);
}

#[test]
fn wrr_is_exact_and_smooth() {
    let p = Picker::new(Algo::Wrr, &members(&[5, 1, 1]));
    let seq: Vec<usize> = (0..7)
        .map(|i| p.pick(flow(i), &no_load, &[]).unwrap())
        .collect();
    // nginx's smooth sequence for 5,1,1.
    assert_eq!(seq, [0, 0, 1, 0, 2, 0, 0]);
    let c = counts(&p, 3, 7000);
    assert_eq!(c, [5000, 1000, 1000]);
}

#[test]
fn lc_and_wlc_follow_load() {
    let loads = [10u64, 3, 7];
    let load = |i: usize| loads[i];
    let p = Picker::new(Algo::Lc, &members(&[1, 1, 1]));
    assert_eq!(p.pick(flow(0), &load, &[]), Some(1));
    assert_eq!(p.pick(flow(0), &load, &[1]), Some(2));
    // wlc: 10/10 = 1 < 3/1 and 7/1.
    let p = Picker::new(Algo::Wlc, &members(&[10, 1, 1]));
    assert_eq!(p.pick(flow(0), &load, &[]), Some(0));
    // Equal loads rotate rather than always hitting the first.
    let p = Picker::new(Algo::Lc, &members(&[1, 1, 1]));
    let c = counts(&p, 3, 300);
    assert_eq!(c, [100, 100, 100]);
}

#[test]
fn lc_balances_live_connections() {
    let active: Vec<AtomicU64> = (0..4).map(|_| AtomicU64::new(0)).collect();
    let load = |i: usize| active[i].load(Ordering::Relaxed);
    let p = Picker::new(Algo::Wlc, &members(&[1, 1, 2, 4]));
    for i in 0..800 {
        let m = p.pick(flow(i), &load, &[]).unwrap();
        active[m].fetch_add(1, Ordering::Relaxed);
    }
    let got: Vec<u64> = active.iter().map(|a| a.load(Ordering::Relaxed)).collect();
    assert_eq!(got, [100, 100, 200, 400]);
}

#[test]
fn sh_is_sticky_and_weighted() {
    let w = [1, 2, 3, 4];
    let p = Picker::new(Algo::Sh, &members(&w));
    for i in 0..100 {
        assert_eq!(
            p.pick(flow(i), &no_load, &[]),
            p.pick(flow(i), &no_load, &[])
        );
    }
    assert_share(&counts(&p, 4, 100_000), &w, 0.01);
}

#[test]
fn dh_follows_the_destination() {
    let w = [1, 1, 2];
    let p = Picker::new(Algo::Dh, &members(&w));
    // Every flow to one destination goes to one member.
    let first = p.pick(flow(0), &no_load, &[]).unwrap();
    assert!((1..1000).all(|i| p.pick(flow(i), &no_load, &[]) == Some(first)));
    // Across destinations it is weighted.
    let mut c = vec![0u64; 3];
    for d in 0..100_000u64 {
        let f = FlowHash {
            src: 1,
            dst: hash_bytes(&d.to_le_bytes()),
        };
        c[p.pick(f, &no_load, &[]).unwrap()] += 1;
    }
    assert_share(&c, &w, 0.01);
}

#[test]
fn mh_is_sticky_weighted_and_consistent() {
    let w = [1, 1, 1, 3];
    let m = members(&w);
    let p = Picker::new(Algo::Mh, &m);
    assert_share(&counts(&p, 4, 100_000), &w, 0.01);
    // Dropping member 0 moves only its flows.
    let mut less = m.clone();
    less[0].weight = 0;
    let q = Picker::new(Algo::Mh, &less);
    let mut moved = 0;
    for i in 0..20_000 {
        let a = p.pick(flow(i), &no_load, &[]).unwrap();
        let b = q.pick(flow(i), &no_load, &[]).unwrap();
        if a != 0 && a != b {
            moved += 1;
        }
    }
    assert!(moved < 200, "{moved} flows of kept members moved");
    // Derived from the previous picker: not one flow of a kept member moves, and the one that
    // comes back takes only its share.
    let r = Picker::after(Algo::Mh, &less, Some(&p));
    let back = Picker::after(Algo::Mh, &m, Some(&r));
    let (mut moved, mut to_newcomer) = (0, 0);
    for i in 0..20_000 {
        let a = p.pick(flow(i), &no_load, &[]).unwrap();
        let b = r.pick(flow(i), &no_load, &[]).unwrap();
        if a != 0 && a != b {
            moved += 1;
        }
        let c = back.pick(flow(i), &no_load, &[]).unwrap();
        if c != b {
            assert_eq!(c, 0, "a flow moved between two kept members");
            to_newcomer += 1;
        }
    }
    assert_eq!(moved, 0, "derived: flows of kept members moved");
    assert!(
        (2_800..3_900).contains(&to_newcomer),
        "{to_newcomer} of 20,000 to a 1/6 member"
    );
}

#[test]
fn random_and_p2c_are_weighted() {
    let w = [1, 3];
    let p = Picker::new(Algo::Random, &members(&w));
    assert_share(&counts(&p, 2, 100_000), &w, 0.01);
    // p2c with live load converges to the weights.
    let active: Vec<AtomicU64> = (0..2).map(|_| AtomicU64::new(0)).collect();
    let load = |i: usize| active[i].load(Ordering::Relaxed);
    let p = Picker::new(Algo::P2c, &members(&w));
    for i in 0..4000 {
        let m = p.pick(flow(i), &load, &[]).unwrap();
        active[m].fetch_add(1, Ordering::Relaxed);
    }
    let a0 = active[0].load(Ordering::Relaxed);
    assert!((900..=1100).contains(&a0), "p2c gave member 0 {a0} of 4000");
}

#[test]
fn backups_only_when_no_primary_can() {
    let mut m = members(&[1, 1, 1]);
    m[2].backup = true;
    for algo in [
        Algo::Rr,
        Algo::Wrr,
        Algo::Lc,
        Algo::Wlc,
        Algo::Sh,
        Algo::Dh,
        Algo::Mh,
        Algo::Random,
        Algo::P2c,
    ] {
        let p = Picker::new(algo, &m);
        for i in 0..200 {
            assert_ne!(p.pick(flow(i), &no_load, &[]), Some(2), "{algo:?}");
        }
        // Both primaries tried (failed): the backup.
        assert_eq!(p.pick(flow(1), &no_load, &[0, 1]), Some(2), "{algo:?}");
        assert_eq!(p.pick(flow(1), &no_load, &[0, 1, 2]), None, "{algo:?}");
        // Primaries drained: the backup.
        let mut drained = m.clone();
        drained[0].weight = 0;
        drained[1].weight = 0;
        let p = Picker::new(algo, &drained);
        assert_eq!(p.pick(flow(3), &no_load, &[]), Some(2), "{algo:?}");
    }
}

#[test]
fn retries_skip_tried_members_and_empty_is_none() {
    for algo in [Algo::Sh, Algo::Mh, Algo::Rr, Algo::Random, Algo::P2c] {
        let p = Picker::new(algo, &members(&[1, 1, 1]));
        let a = p.pick(flow(9), &no_load, &[]).unwrap();
        let b = p.pick(flow(9), &no_load, &[a]).unwrap();
        assert_ne!(a, b);
        let c = p.pick(flow(9), &no_load, &[a, b]).unwrap();
        assert!(c != a && c != b);
        assert!(p.pick(flow(9), &no_load, &[0, 1, 2]).is_none());
    }
    let p = Picker::new(Algo::Wrr, &members(&[0, 0]));
    assert!(p.is_empty());
    assert!(p.pick(flow(0), &no_load, &[]).is_none());
}

#[test]
fn table_hash_names_the_table_not_the_node() {
    let m = members(&[1, 1, 2, 1]);
    let mut shuffled = m.clone();
    shuffled.reverse();
    let a = Picker::new(Algo::Mh, &m).table_hash();
    assert!(a.is_some());
    // Another node listing the same backends in another order builds the same table.
    assert_eq!(a, Picker::new(Algo::Mh, &shuffled).table_hash());
    // A different weight is a different table; so is a different history.
    assert_ne!(
        a,
        Picker::new(Algo::Mh, &members(&[1, 1, 1, 1])).table_hash()
    );
    let fewer = members(&[1, 1, 2]);
    let derived = Picker::after(Algo::Mh, &fewer, Some(&Picker::new(Algo::Mh, &m)));
    assert_ne!(
        derived.table_hash(),
        Picker::new(Algo::Mh, &fewer).table_hash()
    );
    // Only mh has a table; an empty primary tier has none.
    assert_eq!(Picker::new(Algo::Rr, &m).table_hash(), None);
    assert_eq!(Picker::new(Algo::Mh, &members(&[0, 0])).table_hash(), None);
}

#[test]
fn an_anchor_makes_the_table_independent_of_history() {
    let all = members(&[1; 10]);
    let set: Vec<(u64, u32)> = all.iter().map(|m| (m.key, m.weight)).collect();
    let anchor = maglev::Anchor::derive(None, &set);
    let mut live = all.clone();
    live[3].weight = 0;
    // A node that ran since long ago (its last table had other members) and one that just
    // started agree once both derive from the anchor.
    let old = Picker::new(Algo::Mh, &members(&[1, 2, 1, 1, 1, 1, 1]));
    let started = Picker::anchored(Algo::Mh, &live, None, Some(&anchor));
    let long_running = Picker::anchored(Algo::Mh, &live, Some(&old), Some(&anchor));
    assert_eq!(started.table_hash(), long_running.table_hash());
    // The table is the anchor with member 3's slots handed on, as the engine would derive it.
    let live_set: Vec<(u64, u32)> = live.iter().map(|m| (m.key, m.weight)).collect();
    let want = maglev::Anchor::derive(Some(&anchor), &live_set);
    assert_eq!(started.table_hash(), Some(want.hash()));
}
