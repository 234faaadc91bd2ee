//! Flat rule blocks: each block's first tests in columns evaluated branch-free over a zero-padded copy of the payload, one chunk of rules at a time; the rest of each rule checked only where the first test held.

use super::*;

/// Payload bytes copied to a zero-padded stack buffer for the branch-free first tests; blocks
/// whose fields end further in use the checked path.
pub(super) const PAD: usize = 128;
/// Rules whose first tests are evaluated in one pass (a multiple of 8).
pub(super) const CHUNK: usize = 128;

/// One rule of a block: its first test lives in [`FlatRules`]' columns, the others in
/// `rest[rest_start..rest_end]`.
#[derive(Debug, Clone, Copy)]
pub(super) struct FlatRule {
    pub(super) rest_start: u32,
    pub(super) rest_end: u32,
    pub(super) target: Verdict,
}

/// A rule's first test when it is `==` or `!=` (a one-value range): the 8 bytes at `off`,
/// read little-endian (no byte swap), ANDed with `mask` equal `val` (both byte-swapped and
/// moved up by the test's shift at compile time). The verdict goes to byte `pos` of the chunk.
#[derive(Debug, Clone, Copy)]
pub(super) struct PointTest {
    pub(super) mask: u64,
    pub(super) val: u64,
    pub(super) off: u32,
    pub(super) pos: u32,
}

/// Point tests of a chunk that read the same bytes with the same mask: one load and one AND,
/// then one compare per test (`vals[start..end]`, verdicts to bytes `pos[start..end]`).
#[derive(Debug, Clone, Copy)]
pub(super) struct PointGroup {
    pub(super) mask: u64,
    pub(super) off: u32,
    pub(super) start: u32,
    pub(super) end: u32,
}

/// A rule's first test otherwise: the 8 bytes at `off`, big-endian, ANDed with `mask` lie in
/// `lo ..= lo + span` (wrapping). Mask and range are moved up by the test's shift, which is
/// exact because the range is first clamped to the field's width.
#[derive(Debug, Clone, Copy)]
pub(super) struct RangeTest {
    pub(super) mask: u64,
    pub(super) lo: u64,
    pub(super) span: u64,
    pub(super) off: u32,
    pub(super) pos: u32,
}

/// Up to [`CHUNK`] consecutive rules of a block, their first tests split by kind.
#[derive(Debug, Clone)]
pub(super) struct Chunk {
    pub(super) base: u32,
    pub(super) groups: Box<[PointGroup]>,
    pub(super) vals: Box<[u64]>,
    /// Rule position (within the chunk) and negation of each point test.
    pub(super) pos: Box<[u8]>,
    pub(super) pneg: Box<[u8]>,
    pub(super) ranges: Box<[RangeTest]>,
    /// Rule position and negation of each range test.
    pub(super) rpos: Box<[u8]>,
    pub(super) rneg: Box<[u8]>,
}

/// Every block's rules: each rule's first test (also in its chunk's fast form) and the rest.
#[derive(Debug, Clone, Default)]
pub(super) struct FlatRules {
    pub(super) rules: Vec<FlatRule>,
    pub(super) first: Vec<NumTest>,
    pub(super) rest: Vec<NumTest>,
    pub(super) chunks: Vec<Chunk>,
}

impl FlatRules {
    pub(super) fn push(&mut self, tests: &[NumTest], target: Verdict) {
        let Some((first, rest)) = tests.split_first() else {
            return;
        };
        let rest_start = self.rest.len() as u32;
        self.rest.extend_from_slice(rest);
        self.rules.push(FlatRule {
            rest_start,
            rest_end: self.rest.len() as u32,
            target,
        });
        self.first.push(*first);
    }

    /// Builds the chunks of the block of rules `start..end`.
    pub(super) fn chunk(&mut self, start: usize, end: usize) {
        let mut base = start;
        while base < end {
            let top = end.min(base + CHUNK);
            let mut points = Vec::new();
            let mut ranges = Vec::new();
            let mut neg = Box::new([0u8; CHUNK]);
            for (i, t) in self.first[base..top].iter().enumerate() {
                let sh = t.rsh & 63;
                let width_max = u64::MAX >> sh;
                let mask = (t.mask & width_max) << sh;
                let (off, pos) = (t.off & (PAD as u32 - 1), i as u32);
                if t.lo > width_max {
                    // Empty after clamping to the field (`> field max`): never holds.
                    neg[i] = u8::from(!t.neg);
                    ranges.push(RangeTest {
                        mask: 0,
                        lo: 0,
                        span: u64::MAX,
                        off,
                        pos,
                    });
                    continue;
                }
                neg[i] = u8::from(t.neg);
                let hi = t.lo.saturating_add(t.span).min(width_max);
                if hi == t.lo {
                    points.push(PointTest {
                        mask: mask.swap_bytes(),
                        val: (t.lo << sh).swap_bytes(),
                        off,
                        pos,
                    });
                } else {
                    ranges.push(RangeTest {
                        mask,
                        lo: t.lo << sh,
                        span: (hi - t.lo) << sh,
                        off,
                        pos,
                    });
                }
            }
            // Group the point tests by (offset, mask); order within the chunk does not
            // matter (each writes its own byte).
            points.sort_by_key(|t| (t.off, t.mask, t.pos));
            let mut groups: Vec<PointGroup> = Vec::new();
            for (i, t) in points.iter().enumerate() {
                match groups.last_mut() {
                    Some(g) if g.off == t.off && g.mask == t.mask => g.end = i as u32 + 1,
                    _ => groups.push(PointGroup {
                        mask: t.mask,
                        off: t.off,
                        start: i as u32,
                        end: i as u32 + 1,
                    }),
                }
            }
            self.chunks.push(Chunk {
                base: base as u32,
                groups: groups.into(),
                vals: points.iter().map(|t| t.val).collect(),
                pos: points.iter().map(|t| t.pos as u8).collect(),
                pneg: points.iter().map(|t| neg[t.pos as usize]).collect(),
                rpos: ranges.iter().map(|t| t.pos as u8).collect(),
                rneg: ranges.iter().map(|t| neg[t.pos as usize]).collect(),
                ranges: ranges.into(),
            });
            base = top;
        }
    }

    /// Chunks `c0 .. c0 + n` against a payload of at least their block's fast length (≤ PAD):
    /// each chunk's first tests write their verdicts to byte arrays in test order (no branches,
    /// no bounds checks on the payload: offsets are below PAD and the buffer is PAD + 8 bytes),
    /// negations are applied to whole arrays, the few tests that held mark their rules in a
    /// bit set, and the marked rules are visited in order, checking their remaining tests.
    #[inline]
    pub(super) fn run_fast(&self, c0: usize, n: usize, p: &[u8]) -> Option<Verdict> {
        let mut buf = [0u8; PAD + 8];
        let len = p.len().min(PAD);
        buf[..len].copy_from_slice(&p[..len]);
        let load = |off: u32| {
            let at = off as usize & (PAD - 1);
            let mut b = [0u8; 8];
            b.copy_from_slice(&buf[at..at + 8]);
            b
        };
        for c in self.chunks.get(c0..c0 + n).unwrap_or_default() {
            // Verdicts land in point and range order (contiguous stores), negations are
            // applied to whole arrays, and only then mapped to rule positions.
            let mut okp = [0u8; CHUNK];
            let mut okr = [0u8; CHUNK];
            for g in c.groups.iter() {
                let v = u64::from_le_bytes(load(g.off)) & g.mask;
                let (a, b) = (g.start as usize, g.end as usize);
                let (Some(out), Some(vals)) = (okp.get_mut(a..b), c.vals.get(a..b)) else {
                    continue;
                };
                for (o, &x) in out.iter_mut().zip(vals) {
                    *o = u8::from(v == x);
                }
            }
            for (o, t) in okr.iter_mut().zip(c.ranges.iter()) {
                let v = u64::from_be_bytes(load(t.off)) & t.mask;
                *o = u8::from(v.wrapping_sub(t.lo) <= t.span);
            }
            for (o, g) in okp.iter_mut().zip(c.pneg.iter()) {
                *o ^= g;
            }
            for (o, g) in okr.iter_mut().zip(c.rneg.iter()) {
                *o ^= g;
            }
            // Candidate rules (first test held), as bits by position within the chunk.
            let mut cand = [0u64; CHUNK / 64];
            let mut mark = |ok: &[u8; CHUNK], used: usize, pos: &[u8]| {
                for (w, word) in ok[..used.next_multiple_of(8)].chunks_exact(8).enumerate() {
                    let mut bits =
                        u64::from_le_bytes(<[u8; 8]>::try_from(word).unwrap_or_default());
                    while bits != 0 {
                        let byte = (bits.trailing_zeros() / 8) as usize;
                        bits &= !(0xff << (byte * 8));
                        if let Some(&r) = pos.get(w * 8 + byte) {
                            let r = usize::from(r) & (CHUNK - 1);
                            cand[r / 64] |= 1 << (r % 64);
                        }
                    }
                }
            };
            mark(&okp, c.vals.len(), &c.pos);
            mark(&okr, c.ranges.len(), &c.rpos);
            for (w, &word) in cand.iter().enumerate() {
                let mut bits = word;
                while bits != 0 {
                    let r = c.base as usize + w * 64 + bits.trailing_zeros() as usize;
                    bits &= bits - 1;
                    let rule = &self.rules[r];
                    let rest = &self.rest[rule.rest_start as usize..rule.rest_end as usize];
                    if rest.iter().all(|t| t.eval(p)) {
                        return Some(rule.target);
                    }
                }
            }
        }
        None
    }

    /// Rules `start..end` one after the other, each test checking the payload's length.
    pub(super) fn run_checked(&self, start: usize, end: usize, p: &[u8]) -> Option<Verdict> {
        (start..end).find_map(|r| {
            let rule = &self.rules[r];
            let rest = &self.rest[rule.rest_start as usize..rule.rest_end as usize];
            (self.first[r].eval(p) && rest.iter().all(|t| t.eval(p))).then_some(rule.target)
        })
    }
}
