//! Firewall-mark pools (sans-io). A `use_fwm` vserver takes one mark per address family from
//! Seesaw's vserver pool (256..=8255); every DSR/TUN health-check target (backend address and
//! mode) takes one from Seesaw's probe pool (65536..=81535) for its single-destination
//! firewall-mark service.
//!
//! Marks must never move under a running vserver: a new mark means a new data-plane service and
//! lost flows. So a holder keeps its mark for as long as it is wanted; a new holder first gets
//! the mark the data plane already uses for it (adopted from ncc at engine start), else its
//! home mark (a stable hash of its name), else the next free mark after it. A holder that is no
//! longer wanted returns its mark at once.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;
use std::ops::RangeInclusive;

pub use crate::model::{PROBE_MARKS, VSERVER_MARKS};

/// More holders than marks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("firewall mark pool {first}..={last} is exhausted: {wanted} marks needed, {size} exist")]
pub struct PoolExhausted {
    /// First mark of the pool.
    pub first: u32,
    /// Last mark of the pool.
    pub last: u32,
    /// Holders wanting a mark.
    pub wanted: usize,
    /// Marks in the pool.
    pub size: usize,
}

/// A pool of marks held by keys `K`.
#[derive(Debug, Clone)]
pub struct MarkPool<K> {
    range: RangeInclusive<u32>,
    held: BTreeMap<K, u32>,
    /// Marks the data plane already uses, by holder (consumed by the next `assign`).
    adopted: BTreeMap<K, u32>,
}

impl<K: Ord + Clone> MarkPool<K> {
    /// An empty pool over `range`.
    pub fn new(range: RangeInclusive<u32>) -> Self {
        Self {
            range,
            held: BTreeMap::new(),
            adopted: BTreeMap::new(),
        }
    }

    /// The number of marks in the pool.
    pub fn size(&self) -> usize {
        usize::try_from(self.range.end() - self.range.start() + 1).unwrap_or(usize::MAX)
    }

    /// Remembers that the data plane uses `mark` for `key` (ignored outside the pool), so the
    /// next [`MarkPool::assign`] gives it back instead of a fresh one.
    pub fn adopt(&mut self, key: K, mark: u32) {
        if self.range.contains(&mark) && !self.held.contains_key(&key) {
            self.adopted.insert(key, mark);
        }
    }

    /// Makes exactly `wanted` hold marks: holders keep theirs, the others return theirs, new
    /// ones get their adopted mark, else their home mark (`name(key)` hashed), else the next
    /// free one. Nothing changes when the pool is too small.
    pub fn assign(
        &mut self,
        wanted: &BTreeSet<K>,
        name: impl Fn(&K) -> String,
    ) -> Result<(), PoolExhausted> {
        if wanted.len() > self.size() {
            return Err(PoolExhausted {
                first: *self.range.start(),
                last: *self.range.end(),
                wanted: wanted.len(),
                size: self.size(),
            });
        }
        self.held.retain(|k, _| wanted.contains(k));
        let mut used: BTreeSet<u32> = self.held.values().copied().collect();
        let adopted = std::mem::take(&mut self.adopted);
        let new: Vec<&K> = wanted
            .iter()
            .filter(|k| !self.held.contains_key(k))
            .collect();
        let mut rest = Vec::new();
        for k in new {
            match adopted.get(k) {
                Some(m) if used.insert(*m) => {
                    self.held.insert(k.clone(), *m);
                }
                _ => rest.push(k),
            }
        }
        let first = *self.range.start();
        let size = u64::try_from(self.size()).unwrap_or(u64::MAX);
        for k in rest {
            let mut h = twox_hash::XxHash64::with_seed(0x5ee5_f3a4);
            h.write(name(k).as_bytes());
            let home = h.finish() % size;
            for i in 0..size {
                let m = first + u32::try_from((home + i) % size).unwrap_or(0);
                if used.insert(m) {
                    self.held.insert(k.clone(), m);
                    break;
                }
            }
        }
        Ok(())
    }

    /// The mark `key` holds.
    pub fn get(&self, key: &K) -> Option<u32> {
        self.held.get(key).copied()
    }

    /// Every holder and its mark.
    pub fn held(&self) -> &BTreeMap<K, u32> {
        &self.held
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(keys: &[&str]) -> BTreeSet<String> {
        keys.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn holders_keep_their_marks_and_leavers_return_them() {
        let mut p = MarkPool::new(256..=259);
        p.assign(&set(&["a", "b"]), Clone::clone).unwrap();
        let (a, b) = (p.get(&"a".into()).unwrap(), p.get(&"b".into()).unwrap());
        assert_ne!(a, b);
        assert!((256..=259).contains(&a) && (256..=259).contains(&b));
        // A reload with more vservers never moves the existing ones.
        p.assign(&set(&["a", "b", "c", "d"]), Clone::clone).unwrap();
        assert_eq!(p.get(&"a".into()), Some(a));
        assert_eq!(p.get(&"b".into()), Some(b));
        let all: BTreeSet<u32> = p.held().values().copied().collect();
        assert_eq!(all.len(), 4, "four distinct marks");
        // Full: one more is an error and changes nothing.
        let err = p
            .assign(&set(&["a", "b", "c", "d", "e"]), Clone::clone)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "firewall mark pool 256..=259 is exhausted: 5 marks needed, 4 exist"
        );
        assert_eq!(p.held().len(), 4);
        // "a" goes away: its mark is free for "e".
        p.assign(&set(&["b", "c", "d", "e"]), Clone::clone).unwrap();
        assert_eq!(p.get(&"a".into()), None);
        assert_eq!(p.get(&"e".into()), Some(a));
    }

    #[test]
    fn the_same_config_gives_the_same_marks_in_a_fresh_engine() {
        let names = set(&["web", "dns", "mail"]);
        let mut one = MarkPool::new(VSERVER_MARKS);
        one.assign(&names, Clone::clone).unwrap();
        let mut two = MarkPool::new(VSERVER_MARKS);
        two.assign(&names, Clone::clone).unwrap();
        assert_eq!(one.held(), two.held());
    }

    #[test]
    fn adopted_marks_win_over_home_marks() {
        // The running plane says web uses 300 (say it was assigned when another vserver held
        // web's home mark): a restarted engine keeps 300.
        let mut p = MarkPool::new(VSERVER_MARKS);
        p.adopt("web".to_owned(), 300);
        p.adopt("dns".to_owned(), 300); // a conflict: one of them keeps it
        p.adopt("out".to_owned(), 9_999); // outside the pool: ignored
        p.assign(&set(&["web", "dns", "out"]), Clone::clone)
            .unwrap();
        let at_300 = [p.get(&"web".into()), p.get(&"dns".into())]
            .iter()
            .filter(|m| **m == Some(300))
            .count();
        assert_eq!(
            at_300, 1,
            "exactly one of the conflicting holders keeps 300"
        );
        assert_ne!(p.get(&"web".into()), p.get(&"dns".into()));
        assert_ne!(p.get(&"out".into()), Some(9_999));
        // Adoption is consumed: it does not resurrect a mark later.
        p.assign(&set(&[]), Clone::clone).unwrap();
        p.assign(&set(&["web"]), Clone::clone).unwrap();
        let mut fresh = MarkPool::new(VSERVER_MARKS);
        fresh.assign(&set(&["web"]), Clone::clone).unwrap();
        assert_eq!(p.held(), fresh.held());
    }
}
