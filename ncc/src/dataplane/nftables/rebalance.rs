//! lc and wlc between applies: a dedicated thread samples per-destination connection counts
//! ([`LoadSource`]) every [`SAMPLE_PERIOD`] and re-cuts each least-connection service's slot
//! table ([`super::least`]), rewriting only the slots whose destination changes, all services
//! in one `nft -f -` transaction. Established flows never move: NAT flows keep their DNAT in
//! conntrack and DSR flows their pick in the flow map; only new flows read the slots.
//!
//! The thread works from [`Mirror`], ncc's copy of what every lc/wlc service holds (ids,
//! weights, slot contents), never from `nft list` (seconds at 10,000 services). Every writer of
//! the tables holds the mirror's lock while it renders and runs its transaction: the plane's
//! `commit` (which lays its script over the mirror's slots first, [`Mirror::patch`], and records
//! what it wrote, [`Mirror::committed`]), its `read` (which rebuilds the mirror from the
//! kernel), and this thread. So a rewrite is always computed against what the kernel holds.
//! The counts are read *without* the lock, and the lock is held only for a small transaction,
//! so an apply waits at most that long. A failed rewrite invalidates the mirror until the
//! next read (every apply reads; the engine re-applies every 30 s).
//!
//! Bounds: one conntrack dump for all NAT services plus one set dump per DSR lc/wlc service
//! per sample; at most [`MAX_REWRITES`] slot rewrites per transaction (services take turns);
//! and the thread sleeps at least four times as long as its last sample took, so at 10,000
//! services it costs at most a fifth of one core, sampling less often rather than falling
//! behind.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use super::least::{self, Load, Steering};
use super::loads::LoadSource;
use super::parse::{SvcMeta, TableState};
use super::rules::sticky;
use super::script::{Laid, elements, slot_key};
use super::wire::{Elem, Val};
use super::{NftRunner, Table};
use crate::model::{Scheduler, ServiceKey};

/// How often connection counts are sampled (a slow sample stretches it, see the module doc).
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(250);
/// The longest pause between samples, however slow the last one was.
const MAX_PERIOD: Duration = Duration::from_secs(5);
/// Slot rewrites per transaction at most.
pub const MAX_REWRITES: usize = 16_384;

/// One lc/wlc service as the kernel holds it.
#[derive(Debug, Clone)]
struct LeastSvc {
    table: Table,
    meta: SvcMeta,
    /// (destination id, weight).
    members: Vec<(u32, u32)>,
    /// Slot `meta.off + i` holds `slots[i]` (`None`: the kernel has no element there).
    slots: Vec<Option<u32>>,
    /// DSR: the map whose elements are counted (the flow, client or persistence map).
    count_map: Option<String>,
    /// The steady-state controller of its shares ([`Steering`]).
    steer: Steering,
    /// The last sampled load of each member.
    loads: Vec<Load>,
}

/// ncc's copy of the lc/wlc services in the kernel; see the module doc.
#[derive(Debug, Default)]
pub struct Mirror {
    services: BTreeMap<ServiceKey, LeastSvc>,
    /// The copy matches the kernel (false after a failed rewrite, until the next read).
    valid: bool,
    /// Bumped by every read, commit and rewrite.
    generation: u64,
    /// Where the next rewrite starts when the last one ran out of budget.
    cursor: Option<ServiceKey>,
    /// Slots rewritten so far (for the logs).
    rewritten: u64,
    /// The kernel's ruleset generation when the plane's decoded tables (with this copy's slots
    /// laid over them) last matched the kernel: set by a read, advanced by each of our own
    /// transactions (that nobody else committed is checked at the next read of the
    /// generation), `None` when unknown. While the
    /// kernel is still at this generation, the plane diffs against its own state without
    /// listing the tables (see [`run_tracked`]).
    pub kernel_gen: Option<u32>,
}

/// Runs `script` as one transaction and keeps `mirror.kernel_gen` true: it advances by one when
/// the kernel was at the known generation before and the transaction committed. Whether it was
/// the only transaction is checked at the next read of the generation (the plane's refresh, the
/// next `run_tracked`): generations only grow, so finding exactly `before + 1` there means
/// nobody else committed since. The generation is not read right after the commit: the kernel
/// answers that read only once it has released the transaction's old objects (about 15 ms at
/// 10,000 services), which would add to every health flip's latency.
/// Callers hold the mirror's lock (every writer of the tables does).
pub fn run_tracked<R: NftRunner>(
    runner: &R,
    mirror: &mut Mirror,
    commit: impl FnOnce(&R) -> Result<(), crate::NccError>,
) -> Result<(), crate::NccError> {
    let before = runner.generation();
    let r = commit(runner);
    mirror.kernel_gen = match (mirror.kernel_gen, before) {
        (Some(k), Some(b)) if r.is_ok() && b == k => Some(b.wrapping_add(1)),
        _ => None,
    };
    r
}

/// What one sample reads.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// Conntrack (some NAT service is lc/wlc).
    pub nat: bool,
    /// The DSR maps to count.
    pub dsr_maps: Vec<String>,
}

/// Sampled loads, and which sources could be read.
#[derive(Debug, Default)]
pub struct Sample {
    /// Load by destination id.
    pub loads: HashMap<u32, Load>,
    /// Conntrack was read.
    pub nat_ok: bool,
    /// These DSR maps were read.
    pub dsr_ok: HashSet<String>,
}

/// One rewrite transaction: the slot elements it replaces and the slots it sets.
#[derive(Debug, Default)]
pub struct Rewrite {
    /// Slot elements deleted, by table.
    del: BTreeMap<Table, Vec<Elem>>,
    /// Slot elements added, by table.
    add: BTreeMap<Table, Vec<Elem>>,
    /// New slot contents by service.
    slots: Vec<(ServiceKey, Vec<u32>)>,
    /// Slots rewritten.
    pub count: usize,
}

impl Rewrite {
    /// Slot `at` of table `t` (`held`: it has an element now) becomes destination `id`.
    fn set(&mut self, t: Table, at: u32, held: bool, id: u32) {
        if held {
            self.del.entry(t).or_default().push(Elem::key(slot_key(at)));
        }
        self.add
            .entry(t)
            .or_default()
            .push(Elem::map(slot_key(at), Val::Mark(id)));
    }

    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The `nft -f -` script.
    pub fn script(&self) -> String {
        let mut out = String::new();
        for (t, elems) in &self.del {
            elements(&mut out, "delete", *t, "slot", elems);
        }
        for (t, elems) in &self.add {
            elements(&mut out, "add", *t, "slot", elems);
        }
        out
    }

    /// Commits it through `runner`: as one netlink batch where the runner has a channel for
    /// them (no libnftables cache fill, see [`super::wire`]) and it fits one datagram, else as a
    /// script.
    fn commit<R: NftRunner>(&self, runner: &R) -> Result<(), crate::NccError> {
        let Some(nl) = runner.batches() else {
            return runner.run(&self.script());
        };
        let mut nl = nl.lock().unwrap_or_else(|e| e.into_inner());
        let mut b = super::wire::Batch::new(nl.next_seq());
        for (add, side) in [(false, &self.del), (true, &self.add)] {
            for (t, elems) in side {
                b.elems(add, *t, "slot", elems).ok_or_else(|| {
                    crate::NccError::Plane("a slot element names no device".into())
                })?;
            }
        }
        if b.len() > super::script::MAX_BATCH {
            drop(nl);
            return runner.run(&self.script());
        }
        nl.reserve(u32::try_from(b.messages + 1).unwrap_or(u32::MAX));
        let (buf, last) = b.finish();
        nl.transact(&buf, last)
    }
}

fn is_least(s: Scheduler) -> bool {
    matches!(s, Scheduler::Lc | Scheduler::Wlc)
}

fn count_map(t: Table, key: &ServiceKey, meta: &SvcMeta) -> Option<String> {
    (t == Table::Dsr)
        .then(|| sticky(t, key.vip, meta).map(|s| s.0))
        .flatten()
}

impl Mirror {
    /// Whether the copy matches the kernel.
    pub fn valid(&self) -> bool {
        self.valid
    }

    /// The generation (see [`Mirror::bump`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Marks a change of the tables.
    pub fn bump(&mut self) {
        self.generation = self.generation.wrapping_add(1);
    }

    /// Rebuilds the copy from tables just read; sampling state survives for services that
    /// kept their id.
    pub fn rebuild(&mut self, nat: &TableState, dsr: &TableState) {
        let mut old = std::mem::take(&mut self.services);
        for (t, st) in [(Table::Nat, nat), (Table::Dsr, dsr)] {
            for (key, meta) in st.services.iter().filter(|(_, m)| is_least(m.sched)) {
                // By the table's index: walking every destination for every service made a
                // restart with 10,000 lc/wlc services quadratic (10^9 steps).
                let members: Vec<(u32, u32)> = st
                    .by_sid
                    .get(&meta.sid)
                    .into_iter()
                    .flatten()
                    .map(|id| (*id, st.weights.get(id).copied().unwrap_or(0)))
                    .collect();
                let slots = (0..meta.n)
                    .map(|i| st.slots.get(&meta.off.wrapping_add(i)).copied())
                    .collect();
                let (steer, loads) = old
                    .remove(key)
                    .filter(|o| o.meta.sid == meta.sid)
                    .map(|o| (o.steer, o.loads))
                    .unwrap_or_default();
                self.services.insert(
                    *key,
                    LeastSvc {
                        table: t,
                        meta: *meta,
                        count_map: count_map(t, key, meta),
                        members,
                        slots,
                        steer,
                        loads,
                    },
                );
            }
        }
        self.valid = true;
        self.bump();
    }

    /// Lays the copy's slot contents of the services `keys` over `nat`/`dsr` (decoded earlier,
    /// perhaps before a rewrite), so a script that changes those services starts from what the
    /// kernel holds. Only theirs: laying every service's (1.28 million slots at 10,000 wlc
    /// services) made each health flip cost the cluster.
    pub fn patch(&self, nat: &mut TableState, dsr: &mut TableState, keys: &[ServiceKey]) {
        if !self.valid {
            return;
        }
        for (key, s) in keys.iter().filter_map(|k| Some((k, self.services.get(k)?))) {
            let st = match s.table {
                Table::Nat => &mut *nat,
                Table::Dsr => &mut *dsr,
            };
            if st.services.get(key).is_none_or(|m| m.sid != s.meta.sid) {
                continue;
            }
            for (i, slot) in (0u32..).zip(&s.slots) {
                let at = s.meta.off.wrapping_add(i);
                match slot {
                    Some(id) => st.slots.insert(at, *id),
                    None => st.slots.remove(&at),
                };
            }
        }
    }

    /// Records what a transaction that ran wrote: `gone` services left, `laid` ones hold
    /// these layouts.
    pub fn committed(&mut self, gone: &[ServiceKey], laid: &[Laid]) {
        for k in gone {
            self.services.remove(k);
        }
        for l in laid {
            if !is_least(l.meta.sched) {
                self.services.remove(&l.key);
                continue;
            }
            let (steer, loads) = self
                .services
                .remove(&l.key)
                .filter(|o| o.meta.sid == l.meta.sid)
                .map(|o| (o.steer, o.loads))
                .unwrap_or_default();
            self.services.insert(
                l.key,
                LeastSvc {
                    table: l.table,
                    meta: l.meta,
                    members: l.members.clone(),
                    slots: l.slots.iter().copied().map(Some).collect(),
                    count_map: count_map(l.table, &l.key, &l.meta),
                    steer,
                    loads,
                },
            );
        }
        self.bump();
    }

    /// What the next sample must read (nothing while the copy is invalid).
    pub fn plan(&self) -> Plan {
        let mut p = Plan::default();
        if !self.valid {
            return p;
        }
        for s in self.services.values().filter(|s| s.meta.n > 0) {
            match (&s.table, &s.count_map) {
                (Table::Nat, _) => p.nat = true,
                (Table::Dsr, Some(m)) => p.dsr_maps.push(m.clone()),
                (Table::Dsr, None) => {}
            }
        }
        p
    }

    /// The rewrite that re-cuts every sampled service from `sample`, at most `budget` slots,
    /// starting after the service where the last one stopped.
    pub fn rewrite(&mut self, sample: &Sample, budget: usize) -> Rewrite {
        let mut rw = Rewrite::default();
        if !self.valid {
            return rw;
        }
        let start = self.cursor.take();
        let keys: Vec<ServiceKey> = match start {
            Some(c) => self
                .services
                .range((Bound::Excluded(c), Bound::Unbounded))
                .chain(self.services.range(..=c))
                .map(|(k, _)| *k)
                .collect(),
            None => self.services.keys().copied().collect(),
        };
        for key in keys {
            let Some(s) = self.services.get_mut(&key) else {
                continue;
            };
            let read = match (&s.table, &s.count_map) {
                (Table::Nat, _) => sample.nat_ok,
                (Table::Dsr, Some(m)) => sample.dsr_ok.contains(m),
                (Table::Dsr, None) => false,
            };
            if !read || s.meta.n == 0 {
                continue;
            }
            let dests: Vec<least::Dest> = s
                .members
                .iter()
                .map(|(id, w)| least::Dest {
                    id: *id,
                    weight: *w,
                    load: sample.loads.get(id).copied().unwrap_or_default().overhead(),
                })
                .collect();
            s.loads = s
                .members
                .iter()
                .map(|(id, _)| sample.loads.get(id).copied().unwrap_or_default())
                .collect();
            let old: Vec<u32> = s.slots.iter().map(|x| x.unwrap_or(0)).collect();
            // The controller's step is kept only if this rewrite goes out (a service left for
            // the next round steps once, then).
            let mut steer = s.steer.clone();
            let new = least::steer(&mut steer, &dests, s.meta.sched == Scheduler::Wlc, &old);
            if new.len() != s.slots.len() {
                // The table's size is the apply's to change; the next read reconciles.
                continue;
            }
            let moves: Vec<usize> = (0..new.len())
                .filter(|i| s.slots[*i] != Some(new[*i]))
                .collect();
            if !moves.is_empty() && rw.count + moves.len() > budget && rw.count > 0 {
                self.cursor = rw.slots.last().map(|(k, _)| *k);
                break;
            }
            s.steer = steer;
            if moves.is_empty() {
                continue;
            }
            for i in &moves {
                let at = s
                    .meta
                    .off
                    .wrapping_add(u32::try_from(*i).unwrap_or(u32::MAX));
                rw.set(s.table, at, s.slots[*i].is_some(), new[*i]);
            }
            rw.count += moves.len();
            rw.slots.push((key, new));
        }
        rw
    }

    /// Records a rewrite that ran.
    pub fn applied(&mut self, rw: Rewrite) {
        for (k, slots) in rw.slots {
            if let Some(s) = self.services.get_mut(&k) {
                s.slots = slots.into_iter().map(Some).collect();
            }
        }
        self.rewritten = self.rewritten.saturating_add(rw.count as u64);
        self.bump();
    }

    /// Gives up the copy until the next read.
    pub fn invalidate(&mut self) {
        self.valid = false;
    }

    /// The last sampled load of every lc/wlc destination, by id.
    pub fn loads(&self) -> HashMap<u32, Load> {
        self.services
            .values()
            .flat_map(|s| s.members.iter().map(|m| m.0).zip(s.loads.iter().copied()))
            .collect()
    }
}

/// Reads one sample for `plan` from `source`. Sources that fail are left out of the sample
/// (their services keep their slots) and logged, at most once a minute per kind.
pub fn sample(plan: &Plan, source: &mut dyn LoadSource, quiet: &mut Quiet) -> Sample {
    let mut s = Sample::default();
    if plan.nat {
        match source.nat(&mut s.loads) {
            Ok(()) => s.nat_ok = true,
            Err(e) => quiet.warn("conntrack", &e),
        }
    }
    for m in &plan.dsr_maps {
        match source.dsr_map(m, &mut s.loads) {
            Ok(true) => {
                s.dsr_ok.insert(m.clone());
            }
            // A map deleted since the plan (its service went away) is no news.
            Ok(false) => {}
            Err(e) => quiet.warn("DSR flow map", &e),
        }
    }
    s
}

/// Rate limit of the sampler's warnings.
#[derive(Debug, Default)]
pub struct Quiet {
    last: HashMap<&'static str, Instant>,
}

impl Quiet {
    fn warn(&mut self, what: &'static str, e: &dyn std::fmt::Display) {
        let now = Instant::now();
        if self
            .last
            .get(what)
            .is_none_or(|t| now.duration_since(*t) >= Duration::from_secs(60))
        {
            self.last.insert(what, now);
            tracing::warn!(
                "lc/wlc: cannot read the {what} counts ({e}); those services keep their slots"
            );
        }
    }
}

/// One round: plan, sample without the lock, rewrite under it. Returns the slots rewritten.
pub fn round<R: NftRunner>(
    mirror: &Mutex<Mirror>,
    runner: &R,
    source: &mut dyn LoadSource,
    quiet: &mut Quiet,
) -> usize {
    let plan = mirror.lock().unwrap_or_else(|e| e.into_inner()).plan();
    if plan == Plan::default() {
        return 0;
    }
    let got = sample(&plan, source, quiet);
    let mut m = mirror.lock().unwrap_or_else(|e| e.into_inner());
    let rw = m.rewrite(&got, MAX_REWRITES);
    if rw.is_empty() {
        return 0;
    }
    match run_tracked(runner, &mut m, |r| rw.commit(r)) {
        Ok(()) => {
            let n = rw.count;
            tracing::debug!(slots = n, "lc/wlc: slots re-cut from connection counts");
            m.applied(rw);
            n
        }
        Err(e) => {
            m.invalidate();
            quiet.warn("slot rewrite", &e);
            0
        }
    }
}

/// Starts the sampling thread over `mirror`; it ends once the plane that owns the mirror is
/// dropped. `period`: [`SAMPLE_PERIOD`] in production.
pub fn spawn<R: NftRunner>(
    mirror: &Arc<Mutex<Mirror>>,
    runner: R,
    mut source: Box<dyn LoadSource>,
    period: Duration,
) -> std::io::Result<()> {
    let weak: Weak<Mutex<Mirror>> = Arc::downgrade(mirror);
    std::thread::Builder::new()
        .name("ncc-lc-wlc".into())
        .spawn(move || {
            let mut quiet = Quiet::default();
            let mut pause = period;
            loop {
                std::thread::sleep(pause);
                let Some(m) = weak.upgrade() else {
                    return;
                };
                let start = Instant::now();
                round(&m, &runner, source.as_mut(), &mut quiet);
                drop(m);
                pause = period.max(start.elapsed() * 4).min(MAX_PERIOD.max(period));
            }
        })
        .map(drop)
}

#[cfg(test)]
#[path = "rebalance_tests.rs"]
mod tests;
