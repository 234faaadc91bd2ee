//! Payload rules: checking ([`check`]), compiling ([`Compiled::compile`]) and evaluating
//! ([`Compiled::route`]) the one rule language of the proxy's TCP first bytes and UDP datagrams.
//!
//! Semantics (the reference is [`reference_route`], a direct reading of the rules):
//! rules are tried in order and the first whose conditions all hold decides; a condition on bytes
//! the payload does not have is false; numbers are big-endian and unsigned; a mask is ANDed with
//! the field before comparing; no rule matching means the default target.
//!
//! Compilation turns each numeric field into a (offset, width, shift) load of one unaligned u64
//! where the payload is long enough, and merges runs of consecutive single-condition `==`/`in`
//! rules on the same field and mask into one sorted dispatch table (first rule wins per value),
//! so 100 version-style rules cost one load and one binary search. Every other rule whose
//! conditions are numeric fields of at most 8 loaded bytes becomes a run of flat range tests
//! (`NumTest`: one 8-byte load, shift, mask and one wrapping compare each, masks folded in at
//! compile time), so a non-matching rule costs a few instructions and no data-dependent branch
//! beyond its verdict.

use crate::model::{Cond, Field, Op, Rule, RuleTarget, ServiceOpts};

mod flat;

use flat::*;

/// Longest byte field.
pub const MAX_FIELD_BYTES: u32 = 64;
/// Highest byte (or bit / 8) offset a field may start at.
pub const MAX_OFFSET: u32 = 65_535;
/// Most values one `in` condition may list.
pub const MAX_SET: usize = 4096;
/// Most rules per service.
pub const MAX_RULES: usize = 10_000;

/// Why a rule cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rule {rule} condition {cond}: {why}")]
pub struct RuleError {
    /// Index of the rule.
    pub rule: usize,
    /// Index of the condition.
    pub cond: usize,
    /// What is wrong.
    pub why: String,
}

/// Width of a numeric field in bytes (of its value encoding), or `None` for SNI.
fn value_width(f: Field) -> Option<usize> {
    match f {
        Field::Bytes { len, .. } => Some(len as usize),
        Field::Bits { len, .. } => Some(len.div_ceil(8) as usize),
        Field::Sni => None,
    }
}

/// Checks one condition's shape; the message names what is wrong.
pub fn check(c: &Cond) -> Result<(), String> {
    match c.field {
        Field::Bytes { offset, len } => {
            if !(1..=MAX_FIELD_BYTES).contains(&len) {
                return Err(format!("byte length {len} is not in 1..={MAX_FIELD_BYTES}"));
            }
            if offset > MAX_OFFSET {
                return Err(format!("offset {offset} is above {MAX_OFFSET}"));
            }
            if len > 8 && matches!(c.op, Op::Lt | Op::Le | Op::Gt | Op::Ge) {
                return Err("ordering operators need a field of at most 8 bytes".into());
            }
        }
        Field::Bits { offset, len } => {
            if !(1..=64).contains(&len) {
                return Err(format!("bit length {len} is not in 1..=64"));
            }
            if offset / 8 > MAX_OFFSET {
                return Err(format!("bit offset {offset} is above {}", MAX_OFFSET * 8));
            }
            if c.op == Op::Prefix {
                return Err("prefix needs a byte field".into());
            }
        }
        Field::Sni => {
            if !matches!(c.op, Op::Eq | Op::Ne | Op::Prefix | Op::Suffix | Op::In) {
                return Err("sni supports ==, !=, prefix, suffix and in".into());
            }
            if !c.mask.is_empty() {
                return Err("sni takes no mask".into());
            }
        }
    }
    if c.op == Op::Suffix && c.field != Field::Sni {
        return Err("suffix is for sni only".into());
    }
    match (c.op, c.values.len()) {
        (Op::In, 0) => return Err("in needs at least one value".into()),
        (Op::In, n) if n > MAX_SET => {
            return Err(format!("in lists {n} values (at most {MAX_SET})"));
        }
        (Op::In, _) | (_, 1) => {}
        (_, n) => return Err(format!("{n} values given, the operator takes one")),
    }
    if let Some(w) = value_width(c.field) {
        if !c.mask.is_empty() && c.mask.len() != w {
            return Err(format!("mask has {} bytes, the field {w}", c.mask.len()));
        }
        if c.op == Op::Prefix && !c.mask.is_empty() {
            return Err("prefix takes no mask".into());
        }
        for v in &c.values {
            let ok = if c.op == Op::Prefix {
                (1..=w).contains(&v.len())
            } else {
                v.len() == w
            };
            if !ok {
                return Err(format!("value has {} bytes, the field {w}", v.len()));
            }
            if let Field::Bits { len, .. } = c.field
                && len < 64
                && be(v) >> len != 0
            {
                return Err(format!("value does not fit in {len} bits"));
            }
        }
    }
    Ok(())
}

fn be(b: &[u8]) -> u64 {
    b.iter().fold(0u64, |a, &x| (a << 8) | u64::from(x))
}

/// The numeric value of a field of ≤ 8 bytes (or a bit range), if the payload holds it.
fn reference_num(f: Field, p: &[u8]) -> Option<u64> {
    match f {
        Field::Bytes { offset, len } => {
            let (o, l) = (offset as usize, len as usize);
            p.get(o..o + l).map(be)
        }
        Field::Bits { offset, len } => {
            let (o, l) = (offset as usize, len as usize);
            if p.len() * 8 < o + l {
                return None;
            }
            let mut v = 0u64;
            for bit in o..o + l {
                v = (v << 1) | u64::from((p[bit / 8] >> (7 - bit % 8)) & 1);
            }
            Some(v)
        }
        Field::Sni => None,
    }
}

/// The straightforward evaluation of one condition (the oracle for tests and fuzzing).
fn reference_cond(c: &Cond, payload: &[u8], sni: Option<&[u8]>) -> bool {
    if c.field == Field::Sni {
        let Some(s) = sni else { return false };
        return match c.op {
            Op::Eq => s == c.values[0].as_slice(),
            Op::Ne => s != c.values[0].as_slice(),
            Op::Prefix => s.starts_with(&c.values[0]),
            Op::Suffix => s.ends_with(&c.values[0]),
            Op::In => c.values.iter().any(|v| v.as_slice() == s),
            _ => false,
        };
    }
    let w = value_width(c.field).unwrap_or(0);
    if w > 8 || c.op == Op::Prefix {
        let Field::Bytes { offset, len } = c.field else {
            return false;
        };
        let Some(f) = payload.get(offset as usize..(offset + len) as usize) else {
            return false;
        };
        let f: Vec<u8> = if c.mask.is_empty() {
            f.to_vec()
        } else {
            f.iter().zip(&c.mask).map(|(a, m)| a & m).collect()
        };
        return match c.op {
            Op::Eq => f == c.values[0],
            Op::Ne => f != c.values[0],
            Op::Prefix => f.starts_with(&c.values[0]),
            Op::In => c.values.contains(&f),
            _ => false,
        };
    }
    let Some(mut v) = reference_num(c.field, payload) else {
        return false;
    };
    if !c.mask.is_empty() {
        v &= be(&c.mask);
    }
    let a = be(&c.values[0]);
    match c.op {
        Op::Eq => v == a,
        Op::Ne => v != a,
        Op::Lt => v < a,
        Op::Le => v <= a,
        Op::Gt => v > a,
        Op::Ge => v >= a,
        Op::In => c.values.iter().any(|x| be(x) == v),
        Op::Prefix | Op::Suffix => false,
    }
}

/// Evaluates `opts`' rules directly, without compiling (slow; the meaning of the rules).
pub fn reference_route(opts: &ServiceOpts, payload: &[u8], sni: Option<&[u8]>) -> RuleTarget {
    opts.rules
        .iter()
        .find(|r| r.conds.iter().all(|c| reference_cond(c, payload, sni)))
        .map_or_else(|| opts.default_target.clone(), |r| r.target.clone())
}

/// A compiled target: a group index, or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// To this backend group.
    Group(u16),
    /// Drop and count.
    Deny,
}

impl From<&RuleTarget> for Verdict {
    fn from(t: &RuleTarget) -> Self {
        match t {
            RuleTarget::Group(g) => Self::Group(*g),
            RuleTarget::Deny => Self::Deny,
        }
    }
}

/// A numeric field as a load: bytes `off .. off+n` (n ≤ 9), then `>> shift`, then `& mask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Load {
    off: usize,
    n: usize,
    shift: u32,
    mask: u64,
}

impl Load {
    fn of(f: Field) -> Option<Self> {
        match f {
            Field::Bytes { offset, len } if (1..=8).contains(&len) => Some(Self {
                off: offset as usize,
                n: len as usize,
                shift: 0,
                mask: u64::MAX >> (64 - 8 * len),
            }),
            Field::Bits { offset, len } if (1..=64).contains(&len) => {
                let first = (offset / 8) as usize;
                let last = ((offset + len - 1) / 8) as usize;
                let n = last - first + 1;
                Some(Self {
                    off: first,
                    n,
                    shift: (n as u32) * 8 - (offset % 8) - len,
                    mask: if len == 64 {
                        u64::MAX
                    } else {
                        (1u64 << len) - 1
                    },
                })
            }
            _ => None,
        }
    }

    #[inline(always)]
    fn get(&self, p: &[u8]) -> Option<u64> {
        let end = self.off + self.n;
        if end > p.len() {
            return None;
        }
        let raw: u64 = if self.n <= 8 {
            if self.off + 8 <= p.len() {
                // One unaligned load of 8 bytes; keep the first n.
                let mut b = [0u8; 8];
                b.copy_from_slice(&p[self.off..self.off + 8]);
                u64::from_be_bytes(b) >> (64 - 8 * self.n as u32)
            } else {
                be(&p[self.off..end])
            }
        } else {
            // A 9-byte bit range: load as u128.
            let v = p[self.off..end]
                .iter()
                .fold(0u128, |a, &x| (a << 8) | u128::from(x));
            return Some(((v >> self.shift) as u64) & self.mask);
        };
        Some((raw >> self.shift) & self.mask)
    }
}

/// A numeric condition flattened for the hot path: load 8 big-endian bytes at `off` (bytes past
/// the payload's end read as zero), shift right by `rsh`, AND `mask`, then test
/// `v - lo <= span` (wrapping), negated when `neg`. Every operator of a field of at most 8 bytes
/// (bit ranges within 8 bytes included) and its mask reduce to this: `==` is the range
/// `[a, a]`, `!=` its negation, `<`, `<=`, `>`, `>=` half-open ranges; an empty range is the
/// negation of the full one. The payload must hold `need` bytes, else the condition is false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct NumTest {
    mask: u64,
    lo: u64,
    span: u64,
    off: u32,
    need: u32,
    rsh: u32,
    neg: bool,
}

/// Eight big-endian bytes at `off`; bytes past the end of `p` read as zero.
#[inline(always)]
fn load8(p: &[u8], off: usize) -> u64 {
    match p.get(off..).and_then(<[u8]>::first_chunk::<8>) {
        Some(b) => u64::from_be_bytes(*b),
        None => {
            let mut b = [0u8; 8];
            if let Some(tail) = p.get(off..) {
                b[..tail.len()].copy_from_slice(tail);
            }
            u64::from_be_bytes(b)
        }
    }
}

impl NumTest {
    /// The flat form of `c`, when it has one (numeric field within 8 loaded bytes, an
    /// ordering or equality operator).
    fn of(c: &Cond) -> Option<Self> {
        let w = value_width(c.field)?;
        let load = Load::of(c.field)?;
        if w > 8 || load.n > 8 || c.values.len() != 1 {
            return None;
        }
        let a = be(&c.values[0]);
        let mask = load.mask
            & if c.mask.is_empty() {
                u64::MAX
            } else {
                be(&c.mask)
            };
        const NEVER: (u64, u64, bool) = (0, u64::MAX, true);
        let (lo, span, neg) = match c.op {
            Op::Eq => (a, 0, false),
            Op::Ne => (a, 0, true),
            Op::Lt if a == 0 => NEVER,
            Op::Lt => (0, a - 1, false),
            Op::Le => (0, a, false),
            Op::Gt if a == u64::MAX => NEVER,
            Op::Gt => (a + 1, u64::MAX - (a + 1), false),
            Op::Ge => (a, u64::MAX - a, false),
            Op::In | Op::Prefix | Op::Suffix => return None,
        };
        Some(Self {
            off: u32::try_from(load.off).ok()?,
            need: u32::try_from(load.off + load.n).ok()?,
            rsh: 64 - 8 * load.n as u32 + load.shift,
            neg,
            mask,
            lo,
            span,
        })
    }

    #[inline(always)]
    fn eval(&self, p: &[u8]) -> bool {
        if self.need as usize > p.len() {
            return false;
        }
        // rsh < 64: a load covers 1..=8 bytes, so 64 - 8n + shift ≤ 63.
        let v = (load8(p, self.off as usize) >> self.rsh) & self.mask;
        (v.wrapping_sub(self.lo) <= self.span) != self.neg
    }
}

#[derive(Debug, Clone)]
enum CCond {
    Num {
        load: Load,
        mask: u64,
        op: Op,
        a: u64,
    },
    NumIn {
        load: Load,
        mask: u64,
        set: Box<[u64]>,
    },
    Slice {
        off: usize,
        len: usize,
        op: Op,
        mask: Box<[u8]>,
        vals: Box<[Box<[u8]>]>,
    },
    Sni {
        op: Op,
        vals: Box<[Box<[u8]>]>,
    },
}

impl CCond {
    #[inline(always)]
    fn eval(&self, p: &[u8], sni: Option<&[u8]>) -> bool {
        match self {
            Self::Num { load, mask, op, a } => {
                let Some(v) = load.get(p) else { return false };
                let v = v & mask;
                match op {
                    Op::Eq => v == *a,
                    Op::Ne => v != *a,
                    Op::Lt => v < *a,
                    Op::Le => v <= *a,
                    Op::Gt => v > *a,
                    Op::Ge => v >= *a,
                    _ => false,
                }
            }
            Self::NumIn { load, mask, set } => match load.get(p) {
                Some(v) => set.binary_search(&(v & mask)).is_ok(),
                None => false,
            },
            Self::Slice {
                off,
                len,
                op,
                mask,
                vals,
            } => {
                let Some(f) = p.get(*off..off + len) else {
                    return false;
                };
                let eq = |v: &[u8]| {
                    if mask.is_empty() {
                        f == v
                    } else {
                        f.iter()
                            .zip(mask.iter())
                            .zip(v)
                            .all(|((a, m), b)| a & m == *b)
                    }
                };
                match op {
                    Op::Eq => eq(&vals[0]),
                    Op::Ne => !eq(&vals[0]),
                    Op::Prefix => f.starts_with(&vals[0]),
                    Op::In => vals.iter().any(|v| eq(v)),
                    _ => false,
                }
            }
            Self::Sni { op, vals } => {
                let Some(s) = sni else { return false };
                match op {
                    Op::Eq => s == &*vals[0],
                    Op::Ne => s != &*vals[0],
                    Op::Prefix => s.starts_with(&vals[0]),
                    Op::Suffix => s.ends_with(&vals[0]),
                    Op::In => vals.iter().any(|v| &**v == s),
                    _ => false,
                }
            }
        }
    }
}

#[derive(Debug, Clone)]
enum Step {
    /// A run of rules `flat[start..end]` whose conditions are all flat numeric tests. When the
    /// payload holds `fast_len` bytes (≤ [`PAD`]), the first test of up to 64 rules at a time
    /// is evaluated without branches into a bit set, and only rules whose bit is set are looked
    /// at further, in order; otherwise rule after rule with length checks.
    Block {
        start: u32,
        end: u32,
        fast_len: u32,
        /// Index of the block's first `Chunk` (filled in when compiling ends).
        chunk0: u32,
    },
    /// One rule: conditions `conds[start..end]` all hold → target.
    Rule {
        start: u32,
        end: u32,
        target: Verdict,
    },
    /// A run of `field & mask == value → target` rules, sorted by value, first rule kept.
    Dispatch {
        load: Load,
        mask: u64,
        keys: Box<[u64]>,
        targets: Box<[Verdict]>,
    },
}

/// Rules compiled for evaluation on the hot path.
#[derive(Debug, Clone)]
pub struct Compiled {
    steps: Box<[Step]>,
    flat: FlatRules,
    conds: Box<[CCond]>,
    default: Verdict,
    hash_key: Option<(usize, usize)>,
    needs_sni: bool,
    bytes_needed: usize,
}

/// The single-field equality a rule reduces to, for dispatch merging.
fn as_dispatch(r: &Rule) -> Option<(Load, u64, Vec<u64>)> {
    let [c] = r.conds.as_slice() else { return None };
    if !matches!(c.op, Op::Eq | Op::In) {
        return None;
    }
    let w = value_width(c.field)?;
    if w > 8 {
        return None;
    }
    let load = Load::of(c.field)?;
    let mask = if c.mask.is_empty() {
        u64::MAX
    } else {
        be(&c.mask)
    };
    Some((load, mask, c.values.iter().map(|v| be(v)).collect()))
}

impl Compiled {
    /// Checks and compiles `opts`' rules.
    pub fn compile(opts: &ServiceOpts) -> Result<Self, RuleError> {
        if opts.rules.len() > MAX_RULES {
            return Err(RuleError {
                rule: MAX_RULES,
                cond: 0,
                why: format!("{} rules (at most {MAX_RULES})", opts.rules.len()),
            });
        }
        let mut steps = Vec::new();
        let mut flat = FlatRules::default();
        let mut conds = Vec::new();
        let mut needs_sni = false;
        let mut bytes_needed = 0usize;
        let mut i = 0;
        while i < opts.rules.len() {
            let r = &opts.rules[i];
            for (j, c) in r.conds.iter().enumerate() {
                check(c).map_err(|why| RuleError {
                    rule: i,
                    cond: j,
                    why,
                })?;
                match c.field {
                    Field::Sni => needs_sni = true,
                    Field::Bytes { offset, len } => {
                        bytes_needed = bytes_needed.max((offset + len) as usize);
                    }
                    Field::Bits { offset, len } => {
                        bytes_needed = bytes_needed.max((offset + len).div_ceil(8) as usize);
                    }
                }
            }
            // Merge a run of dispatchable rules on one field and mask.
            if let Some((load, mask, _)) = as_dispatch(r) {
                let mut map: Vec<(u64, usize, Verdict)> = Vec::new();
                let mut k = i;
                while k < opts.rules.len() {
                    match as_dispatch(&opts.rules[k]) {
                        Some((l, m, vals)) if l == load && m == mask => {
                            if k > i {
                                for (j, c) in opts.rules[k].conds.iter().enumerate() {
                                    check(c).map_err(|why| RuleError {
                                        rule: k,
                                        cond: j,
                                        why,
                                    })?;
                                }
                            }
                            let t = Verdict::from(&opts.rules[k].target);
                            map.extend(vals.into_iter().map(|v| (v, k, t)));
                        }
                        _ => break,
                    }
                    k += 1;
                }
                if k - i >= 2 {
                    // Sort by value, then rule order; keep the first rule per value.
                    map.sort_by_key(|&(v, rule, _)| (v, rule));
                    map.dedup_by_key(|e| e.0);
                    steps.push(Step::Dispatch {
                        load,
                        mask,
                        keys: map.iter().map(|e| e.0).collect(),
                        targets: map.iter().map(|e| e.2).collect(),
                    });
                    i = k;
                    continue;
                }
            }
            let tests: Option<Vec<NumTest>> = r.conds.iter().map(NumTest::of).collect();
            match tests {
                Some(tests) if !tests.is_empty() => {
                    // Append to the open block (the previous step), or open one.
                    let (block_start, fast_len) = match steps.last() {
                        Some(&Step::Block {
                            start, fast_len, ..
                        }) => {
                            steps.pop();
                            (start, fast_len)
                        }
                        _ => (flat.rules.len() as u32, 0),
                    };
                    let fast_len = tests.iter().fold(fast_len, |m, t| m.max(t.off + 8));
                    flat.push(&tests, Verdict::from(&r.target));
                    steps.push(Step::Block {
                        start: block_start,
                        end: flat.rules.len() as u32,
                        fast_len,
                        chunk0: 0,
                    });
                }
                _ => {
                    let start = conds.len() as u32;
                    for c in &r.conds {
                        conds.push(compile_cond(c));
                    }
                    steps.push(Step::Rule {
                        start,
                        end: conds.len() as u32,
                        target: Verdict::from(&r.target),
                    });
                }
            }
            i += 1;
        }
        let hash_key = opts
            .hash_key
            .filter(|&(_, l)| l > 0)
            .map(|(o, l)| (o as usize, l as usize));
        if let Some((o, l)) = hash_key {
            bytes_needed = bytes_needed.max(o + l);
        }
        for s in &mut steps {
            if let Step::Block {
                start, end, chunk0, ..
            } = s
            {
                *chunk0 = flat.chunks.len() as u32;
                flat.chunk(*start as usize, *end as usize);
            }
        }
        Ok(Self {
            steps: steps.into(),
            flat,
            conds: conds.into(),
            default: Verdict::from(&opts.default_target),
            hash_key,
            needs_sni,
            bytes_needed,
        })
    }

    /// Where `payload` (with the TLS server name, if known) goes.
    #[inline]
    pub fn route(&self, payload: &[u8], sni: Option<&[u8]>) -> Verdict {
        for s in self.steps.iter() {
            match s {
                Step::Block {
                    start,
                    end,
                    fast_len,
                    chunk0,
                } => {
                    let (start, end) = (*start as usize, *end as usize);
                    let v = if payload.len() >= *fast_len as usize && *fast_len as usize <= PAD {
                        let chunks = (end - start).div_ceil(CHUNK);
                        self.flat.run_fast(*chunk0 as usize, chunks, payload)
                    } else {
                        self.flat.run_checked(start, end, payload)
                    };
                    if let Some(v) = v {
                        return v;
                    }
                }
                Step::Rule { start, end, target } => {
                    if self.conds[*start as usize..*end as usize]
                        .iter()
                        .all(|c| c.eval(payload, sni))
                    {
                        return *target;
                    }
                }
                Step::Dispatch {
                    load,
                    mask,
                    keys,
                    targets,
                } => {
                    if let Some(v) = load.get(payload)
                        && let Ok(i) = keys.binary_search(&(v & mask))
                    {
                        return targets[i];
                    }
                }
            }
        }
        self.default
    }

    /// The payload's hash key bytes, when the service hashes on payload and the payload holds
    /// them.
    #[inline]
    pub fn hash_key<'a>(&self, payload: &'a [u8]) -> Option<&'a [u8]> {
        let (o, l) = self.hash_key?;
        payload.get(o..o + l)
    }

    /// Whether the service hashes on a payload key.
    pub fn has_hash_key(&self) -> bool {
        self.hash_key.is_some()
    }

    /// Whether any rule looks at the TLS server name.
    pub fn needs_sni(&self) -> bool {
        self.needs_sni
    }

    /// Whether there is anything to evaluate (rules, or a non-default target).
    pub fn is_trivial(&self) -> bool {
        self.steps.is_empty() && self.default == Verdict::Group(0) && self.hash_key.is_none()
    }

    /// The most payload bytes any rule or the hash key looks at.
    pub fn bytes_needed(&self) -> usize {
        self.bytes_needed
    }
}

fn compile_cond(c: &Cond) -> CCond {
    let boxed = |v: &[Vec<u8>]| -> Box<[Box<[u8]>]> {
        v.iter().map(|x| x.clone().into_boxed_slice()).collect()
    };
    if c.field == Field::Sni {
        return CCond::Sni {
            op: c.op,
            vals: boxed(&c.values),
        };
    }
    let w = value_width(c.field).unwrap_or(0);
    match (Load::of(c.field), c.op) {
        (Some(load), op) if w <= 8 && op != Op::Prefix => {
            let mask = if c.mask.is_empty() {
                u64::MAX
            } else {
                be(&c.mask)
            };
            if op == Op::In {
                let mut set: Vec<u64> = c.values.iter().map(|v| be(v)).collect();
                set.sort_unstable();
                set.dedup();
                CCond::NumIn {
                    load,
                    mask,
                    set: set.into(),
                }
            } else {
                CCond::Num {
                    load,
                    mask,
                    op,
                    a: be(&c.values[0]),
                }
            }
        }
        _ => {
            let (off, len) = match c.field {
                Field::Bytes { offset, len } => (offset as usize, len as usize),
                // Unreachable after `check` (bit ranges always have a load); an impossible
                // range keeps the condition false.
                _ => (usize::MAX / 2, 1),
            };
            CCond::Slice {
                off,
                len,
                op: c.op,
                mask: c.mask.clone().into_boxed_slice(),
                vals: boxed(&c.values),
            }
        }
    }
}

#[cfg(test)]
mod tests;
