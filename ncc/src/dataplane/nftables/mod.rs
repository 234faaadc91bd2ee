//! The nftables data plane: the kernel plane this machine can run. ncc owns two tables named
//! `seesaw` — `inet seesaw` (NAT: conntrack DNAT plus masquerade, counters) and `netdev seesaw`
//! (DSR: rewrite the MAC and forward at the LB interface's ingress) — and changes them only in
//! whole transactions: every `commit` is one nft script, which the kernel applies atomically or
//! not at all. ncc runs the scripts through libnftables in process ([`NftLib`], one kept
//! context); tests and tools can use the `nft` binary ([`NftCli`]) instead. State is read back
//! as `nft -j list table` prints it, so whatever the kernel holds at start (a previous ncc's
//! work) is adopted, never flushed.
//!
//! Layout of a table (both families use the same names). Per-service objects bind no map, and
//! every shared map is bound only by the few rules of the dispatch chains, so adding a service
//! costs the same with 1 or 10,000 services in the table (the kernel walks a map's elements
//! each time a rule in another chain binds it) and one transaction scales linearly:
//!
//! - `svc4`/`svc6`: VIP . protocol . port → `jump s<sid>`. This verdict map is the only
//!   per-packet lookup over services, so the cost per packet does not grow with their number.
//!   Its element comments are the registry: `sid=… sch=… p=… so=… sc=… sn=…` (id, scheduler,
//!   persistence, slot offset, slot capacity, slots in use).
//! - `s<sid>`: the service chain: the sticky lookup (if any), then the flow's slot (`numgen inc` for rr/wrr/lc/wlc, `jhash` of
//!   the source for sh/mh, of the destination for dh, `numgen random`), `mod sn offset
//!   SLOT_BASE+so`, into the mark (conntrack mark for NAT, packet mark for DSR).
//! - the dispatch chains (`pre`/`out` NAT, `in` DSR; [`rules::dispatch_rules`]): service
//!   lookup, sticky override, slot → destination id through `slot`, the service's after-chain,
//!   then DNAT (`dst4`/`dst6`) or `fwd`; a second pass reschedules when a sticky entry names a
//!   destination that is gone.
//! - `k<sid>t<secs>`: a service's client state (persistence: client address → destination id;
//!   DSR rr/wrr/random/lc/wlc: `k<sid>t<secs>f`, client address . port, [`DSR_FLOW_TIMEOUT_S`];
//!   IPv6 DSR lc/wlc: `k<sid>t<secs>c`, client address), looked up first in
//!   `s<sid>`; `aft4`/`aft6` → `a<sid>` updates it once the destination is known.
//! - `slot`: slot → destination id, all services in disjoint ranges. Weights become slot counts
//!   ([`layout`]); mh is a Maglev table; a change rewrites only the slots that differ. lc/wlc
//!   tables are re-cut between applies from sampled connection counts ([`rebalance`]).
//! - `dst4`/`dst6`: destination id → address . port (NAT) or address (DSR), with a per-element
//!   counter (NAT: new connections; DSR: packets and bytes). Comments name the owning service.
//! - `weights`: destination id → weight; `cin`/`cout`: per-destination packet/byte counters of
//!   NAT traffic in each direction (forward hook, keyed by the conntrack mark).
//!
//! Destination ids live in `0x5ee00000..0x5eefffff` and are stored in the conntrack mark of NAT
//! flows; `post` masquerades exactly those flows (two-armed NAT like Seesaw's SNAT, so backends
//! need no route back through us).

pub mod layout;
pub mod least;
mod libnft;
pub mod loads;
pub mod nfnl;
pub mod parse;
pub mod rebalance;
pub mod rules;
mod runner;
pub mod script;
mod trace;
pub mod tunnels;
pub mod wire;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use libnft::NftLib;
pub use loads::{LoadSource, NfnlLoads};
pub use rebalance::SAMPLE_PERIOD;
pub use runner::{NftCli, NftRunner};
pub use tunnels::{FakeTunnels, KernelTunnels, Tunnels};

use self::parse::{Counter, DstRec, SvcMeta, TableState};
use super::{Change, Dataplane, ServiceStats};
use crate::NccError;
use crate::model::{
    Dest, DestStats, ForwardMode, KernelOpts, Scheduler, Service, ServiceKey, ServiceOpts,
};

/// First destination id (also the conntrack-mark tag of our NAT flows).
pub const DID_BASE: u32 = 0x5ee0_0000;
/// Mask selecting the tag part of a destination id.
pub const DID_MASK: u32 = 0xfff0_0000;
/// Tag of a slot number in the mark (slot `i` travels as `SLOT_BASE + i`).
pub const SLOT_BASE: u32 = 0x3000_0000;
/// Mask selecting the tag part of a slot mark.
pub const SLOT_MASK: u32 = 0xf000_0000;
/// The mark of a dispatch chain's second pass (service chains skip their sticky lookup).
pub const RESCHEDULE: u32 = 0x2000_0000;
/// Idle timeout of a DSR flow entry (rr/wrr keep a flow on its backend through this map).
pub const DSR_FLOW_TIMEOUT_S: u32 = 300;

/// Which of our two tables a service lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Table {
    /// `inet seesaw`: NAT.
    Nat,
    /// `netdev seesaw`: DSR.
    Dsr,
}

impl Table {
    /// `family name` as nft spells it.
    pub fn spec(self) -> &'static str {
        match self {
            Self::Nat => "inet seesaw",
            Self::Dsr => "netdev seesaw",
        }
    }

    fn of(mode: ForwardMode) -> Self {
        match mode {
            ForwardMode::Nat => Self::Nat,
            // Tunnel mode forwards like DSR, through an IPIP device per destination.
            ForwardMode::Dsr | ForwardMode::Tun => Self::Dsr,
        }
    }
}

/// The nftables plane over an [`NftRunner`] ([`NftLib`] in ncc).
#[derive(Debug)]
pub struct NftPlane<R = NftCli> {
    runner: R,
    lb: Option<String>,
    nat: TableState,
    dsr: TableState,
    services: BTreeMap<ServiceKey, Service>,
    /// The tables were read and nothing was committed since (the next refresh may skip).
    just_read: bool,
    /// A transaction ran since the last read: `nat`/`dsr` are out of date (`services` is not).
    stale: bool,
    /// The last transaction's size in bytes and its lines (a script) or messages (a batch).
    pub last_script: (usize, usize),
    /// The last transaction went to the kernel as a netlink batch rather than a script.
    pub batched: bool,
    /// How many times the tables were listed (tests and benches watch it: a plane that knows
    /// the kernel holds its last commit diffs without listing).
    pub reads: u64,
    /// ncc's copy of the lc/wlc services, shared with the re-weighting thread; every writer
    /// of the tables holds its lock (see [`rebalance`]).
    least: Arc<Mutex<rebalance::Mirror>>,
    /// The mirror's generation when the tables were last read.
    read_gen: u64,
    /// Tunnel-mode destinations' devices ([`tunnels`]).
    tunnels: Mutex<Box<dyn Tunnels>>,
    /// The tunnel devices that exist, once listed (at the first commit).
    tun_devs: Option<BTreeSet<String>>,
}

impl<R: NftRunner> NftPlane<R> {
    /// A plane that owns `inet seesaw` and, for DSR, `netdev seesaw` on `lb_interface`. Reads
    /// the kernel immediately: existing state is adopted.
    pub fn new(runner: R, lb_interface: Option<String>) -> Result<Self, NccError> {
        let mut p = Self {
            runner,
            lb: lb_interface,
            nat: TableState::default(),
            dsr: TableState::default(),
            services: BTreeMap::new(),
            just_read: false,
            stale: false,
            last_script: (0, 0),
            batched: false,
            reads: 0,
            least: Arc::default(),
            read_gen: 0,
            tunnels: Mutex::new(Box::new(KernelTunnels::default())),
            tun_devs: None,
        };
        p.read()?;
        Ok(p)
    }

    /// Starts re-weighting lc and wlc services from the connection counts `source` reads,
    /// every `period` ([`SAMPLE_PERIOD`] in production), on a thread of its own that ends
    /// with the plane. Without it, lc/wlc services keep the layout of their last apply
    /// (weight-proportional for wlc, equal for lc).
    #[must_use]
    pub fn with_rebalancer(self, source: Box<dyn LoadSource>, period: Duration) -> Self {
        if let Err(e) = rebalance::spawn(&self.least, self.runner.clone(), source, period) {
            tracing::error!(
                "cannot start the lc/wlc re-weighting thread ({e}): lc/wlc services keep the \
                 layout of their last apply"
            );
        }
        self
    }

    /// Uses `t` for tunnel-mode destinations' devices (rtnetlink by default).
    #[must_use]
    pub fn with_tunnels(mut self, t: Box<dyn Tunnels>) -> Self {
        self.tunnels = Mutex::new(t);
        self.tun_devs = None;
        self
    }

    fn tunnels(&self) -> std::sync::MutexGuard<'_, Box<dyn Tunnels>> {
        self.tunnels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates the devices `want`'s tunnel-mode destinations need (before the transaction that
    /// names them); returns the devices no service needs any more, for [`Self::drop_tunnels`].
    fn make_tunnels(&mut self, needed: &BTreeMap<String, IpAddr>) -> Result<Vec<String>, NccError> {
        if needed.is_empty() && self.tun_devs.as_ref().is_some_and(|h| h.is_empty()) {
            return Ok(Vec::new());
        }
        let mut t = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        let held = match self.tun_devs.take() {
            Some(h) => h,
            None => t.held()?,
        };
        let mut now = held.clone();
        let mut result = Ok(());
        for (name, ip) in needed {
            if !held.contains(name) {
                match t.add(name, *ip) {
                    Ok(()) => {
                        now.insert(name.clone());
                    }
                    Err(e) => {
                        result = Err(e);
                        break;
                    }
                }
            }
        }
        let unused = now
            .iter()
            .filter(|n| !needed.contains_key(*n))
            .cloned()
            .collect();
        self.tun_devs = Some(now);
        result.map(|()| unused)
    }

    /// Deletes tunnel devices no service names any more (after the transaction).
    fn drop_tunnels(&mut self, unused: &[String]) {
        let mut t = self.tunnels.lock().unwrap_or_else(|e| e.into_inner());
        for name in unused {
            match t.del(name) {
                Ok(()) => {
                    if let Some(h) = &mut self.tun_devs {
                        h.remove(name);
                    }
                }
                Err(e) => tracing::warn!("deleting tunnel device {name}: {e}"),
            }
        }
    }

    fn mirror(&self) -> std::sync::MutexGuard<'_, rebalance::Mirror> {
        self.least.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads both tables. Holds the mirror's lock throughout, so no slot rewrite runs between
    /// the listing and the mirror's rebuild from it.
    fn read(&mut self) -> Result<(), NccError> {
        let least = self.least.clone();
        let mut mirror = least.lock().unwrap_or_else(|e| e.into_inner());
        let parse = |json: String| {
            parse::parse_table(&json)
                .map_err(|e| NccError::Plane(format!("reading nftables state: {e}")))
        };
        self.reads = self.reads.wrapping_add(1);
        let gen_before = self.runner.generation();
        self.nat = parse(self.runner.list(Table::Nat.spec())?)?;
        self.dsr = parse(self.runner.list(Table::Dsr.spec())?)?;
        let gen_after = self.runner.generation();
        for p in self.nat.problems.iter().chain(&self.dsr.problems) {
            tracing::warn!("nftables state: {p}");
        }
        let mut out: BTreeMap<ServiceKey, Service> = BTreeMap::new();
        for (t, st) in [(Table::Dsr, &self.dsr), (Table::Nat, &self.nat)] {
            // Destinations by service id: one pass, not one per service.
            let mut by_sid: HashMap<u32, Vec<Dest>> = HashMap::new();
            for (id, d) in &st.dests {
                let w = st.weights.get(id).copied().unwrap_or(0);
                by_sid.entry(d.sid).or_default().push(Dest::new(d.addr, w));
            }
            for (key, meta) in &st.services {
                let mut dests = by_sid.remove(&meta.sid).unwrap_or_default();
                dests.sort();
                let marks: Vec<ServiceKey> = if key.is_fwmark() {
                    st.marked
                        .iter()
                        .filter(|(m, mark)| {
                            **mark == key.fwmark && m.vip.is_ipv4() == key.vip.is_ipv4()
                        })
                        .map(|(m, _)| *m)
                        .collect()
                } else {
                    Vec::new()
                };
                out.insert(
                    *key,
                    Service {
                        anchor: None,
                        key: *key,
                        scheduler: meta.sched,
                        mode: match t {
                            Table::Nat => ForwardMode::Nat,
                            Table::Dsr if meta.tun => ForwardMode::Tun,
                            Table::Dsr => ForwardMode::Dsr,
                        },
                        persistence: meta.persist,
                        dests,
                        opts: ServiceOpts {
                            kernel: KernelOpts {
                                one_packet: meta.ops,
                                ..KernelOpts::default()
                            },
                            ..ServiceOpts::default()
                        },
                        marks,
                    },
                );
            }
        }
        self.services = out;
        mirror.rebuild(&self.nat, &self.dsr);
        // The listing is the kernel's state only if no transaction ran while it was taken.
        mirror.kernel_gen = gen_before.filter(|g| Some(*g) == gen_after);
        self.read_gen = mirror.generation();
        self.just_read = true;
        self.stale = false;
        Ok(())
    }

    fn state(&self, t: Table) -> &TableState {
        match t {
            Table::Nat => &self.nat,
            Table::Dsr => &self.dsr,
        }
    }
}

/// What a service holds in the kernel now, with ids.
pub struct Held<'a> {
    key: ServiceKey,
    table: Table,
    meta: SvcMeta,
    /// Destination address → id.
    dids: BTreeMap<SocketAddr, u32>,
    /// A firewall-mark service's marked tuples.
    marks: Vec<ServiceKey>,
    weights: BTreeMap<u32, u32>,
    st: &'a TableState,
}

impl<R: NftRunner> Dataplane for NftPlane<R> {
    fn builds_tables(&self) -> bool {
        true
    }

    fn trace(
        &mut self,
        flow: &crate::dataplane::trace::TraceFlow,
    ) -> crate::dataplane::trace::PlaneTrace {
        self.trace_flow(flow)
    }

    fn kind(&self) -> &'static str {
        "nftables"
    }

    fn unsupported(&self, s: &Service) -> Option<String> {
        if let Some(why) = crate::model::thresholds_need_ipvs(s) {
            return Some(why);
        }
        if s.key.fwmark & SLOT_MASK != 0 {
            return Some(format!(
                "firewall mark {:#x} is outside 1..{SLOT_MASK:#x}: the plane's dispatch uses the \
                 top four bits of the mark",
                s.key.fwmark
            ));
        }
        match s.scheduler {
            Scheduler::P2c => {
                return Some(
                    "scheduler p2c (power of two choices) is a feature of the userspace proxy \
                     plane; use wlc, lc, rr, wrr, sh, dh, mh or random"
                        .into(),
                );
            }
            Scheduler::Rr
            | Scheduler::Wrr
            | Scheduler::Lc
            | Scheduler::Wlc
            | Scheduler::Sh
            | Scheduler::Dh
            | Scheduler::Mh
            | Scheduler::Random => {}
        }
        if let Some(why) = crate::model::proxy_features(s) {
            return Some(why);
        }
        if let Some(why) = one_packet_needs_dsr(s) {
            return Some(why);
        }
        match s.mode {
            ForwardMode::Dsr | ForwardMode::Tun if self.lb.is_none() => {
                return Some(
                    "DSR and tunnel mode need the LB interface (seesaw.cfg [interface] lb) for \
                     the netdev ingress hook"
                        .into(),
                );
            }
            _ => {}
        }
        if s.mode == ForwardMode::Tun
            && let Err(why) = self.tunnels().probe(s.key.vip.is_ipv6())
        {
            return Some(why);
        }
        if let Some(d) = s
            .dests
            .iter()
            .find(|d| d.addr.is_ipv4() != s.key.vip.is_ipv4())
        {
            return Some(format!(
                "destination {} is not in the VIP's address family",
                d.addr
            ));
        }
        if s.mode != ForwardMode::Nat
            && let Some(d) = s.dests.iter().find(|d| d.addr.port() != s.key.port)
        {
            return Some(format!(
                "DSR and tunnel mode cannot change the port: destination {} must use port {}",
                d.addr, s.key.port
            ));
        }
        let meta = script::svc_meta(s, 0, (0, 0, 1));
        if s.mode != ForwardMode::Nat && !rules::sticky_key_fits(Table::Dsr, s.key.vip, &meta) {
            return Some(
                "IPv6 DSR with rr, wrr or random keeps each flow (client address and port, 20 \
                 bytes) in a dynamic map, which nft 1.0.6 cannot update; use wlc, lc, sh, mh or \
                 dh, or set persistence"
                    .into(),
            );
        }
        None
    }

    /// Reads the kernel, except right after [`NftPlane::new`] read it: listing a table of
    /// 10,000 services takes seconds, and a start-up apply would otherwise list it twice.
    ///
    /// Nor after its own transactions: `commit` records what each one wrote
    /// ([`script::Script::record`]), so while the kernel's ruleset generation is the one the
    /// plane last accounted for (its own commits and the lc/wlc rewrites, each checked to be
    /// the only transaction in between; [`rebalance::run_tracked`]), the decoded tables are
    /// the kernel's and a diff costs what it changes. Any other transaction — another program,
    /// or anyone's change to our tables — makes the next refresh list them again.
    fn refresh(&mut self) -> Result<(), NccError> {
        if std::mem::take(&mut self.just_read) && self.mirror().generation() == self.read_gen {
            return Ok(());
        }
        let known = {
            let m = self.mirror();
            (!self.stale && m.valid()).then_some(m.kernel_gen).flatten()
        };
        if known.is_some() && self.runner.generation() == known {
            return Ok(());
        }
        self.read()
    }

    fn current(&self) -> Vec<Service> {
        self.services.values().cloned().collect()
    }

    fn current_of(&self, keys: &BTreeSet<ServiceKey>) -> Vec<Service> {
        keys.iter()
            .filter_map(|k| self.services.get(k).cloned())
            .collect()
    }

    fn apply_changed(&mut self, scope: &super::Scope<'_>) -> Result<Vec<String>, NccError> {
        Ok(super::texts(&super::apply_scoped(self, scope)?))
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        if self.stale {
            self.read()?;
        }
        self.just_read = false;
        // The touched services as they will be (`None`: deleted); the others stay as they are.
        let mut want: BTreeMap<ServiceKey, Option<Service>> = BTreeMap::new();
        for c in changes {
            let key = match c {
                Change::AddService(s) | Change::UpdateService(s) => s.key,
                Change::DeleteService(k)
                | Change::AddDest(k, _)
                | Change::UpdateDest(k, _)
                | Change::DeleteDest(k, _) => *k,
            };
            let slot = want
                .entry(key)
                .or_insert_with(|| self.services.get(&key).cloned());
            let missing = || NccError::Inconsistent(format!("no service {key}"));
            match c {
                Change::AddService(s) => *slot = Some(s.clone()),
                Change::UpdateService(s) => {
                    let cur = slot.as_mut().ok_or_else(missing)?;
                    (cur.scheduler, cur.mode, cur.persistence) =
                        (s.scheduler, s.mode, s.persistence);
                    cur.marks.clone_from(&s.marks);
                    cur.anchor.clone_from(&s.anchor);
                    cur.opts.clone_from(&s.opts);
                }
                Change::DeleteService(_) => {
                    slot.take().ok_or_else(missing)?;
                }
                Change::AddDest(_, d) | Change::UpdateDest(_, d) => {
                    let s = slot.as_mut().ok_or_else(missing)?;
                    s.dests.retain(|x| x.addr != d.addr);
                    s.dests.push(*d);
                    s.dests.sort();
                }
                Change::DeleteDest(_, d) => {
                    let s = slot.as_mut().ok_or_else(missing)?;
                    s.dests.retain(|x| x.addr != d.addr);
                }
            }
        }
        let touched: Vec<ServiceKey> = want.keys().copied().collect();

        // The tables as read, with the slots the re-weighting rewrote since laid over those of
        // the touched services (the only ones the script reads); the lock stays held until the
        // transaction ran and the mirror recorded it.
        let least = self.least.clone();
        let mut mirror = least.lock().unwrap_or_else(|e| e.into_inner());
        if !mirror.valid() {
            // A re-weighting failed since the refresh and gave its copy up: the slots it
            // rewrote before are in the kernel but in neither record; read them.
            drop(mirror);
            self.read()?;
            mirror = least.lock().unwrap_or_else(|e| e.into_inner());
        }
        mirror.patch(&mut self.nat, &mut self.dsr, &touched);
        let mut alloc = script::Alloc::from_states(&self.nat, &self.dsr);
        let mut sc = script::Script::default();
        let mut dsr_used = !self.dsr.chains.is_empty();
        let mut was = Vec::new();
        for key in &touched {
            let held = self.held(key);
            let new = want.get(key).and_then(Option::as_ref);
            if let Some(n) = new {
                dsr_used |= n.mode != ForwardMode::Nat;
            }
            if let Some(h) = &held {
                was.push(script::Was::of(h));
            }
            sc.service(&mut alloc, held.as_ref(), new)?;
        }
        // A transaction a batch can carry goes to the kernel as one, without libnftables
        // (`wire`); the others, and every one on a runner without a netlink channel, as a script.
        let dsr = dsr_used.then_some(&self.dsr);
        let batch = self.runner.batches().and_then(|nl| {
            let mut nl = nl.lock().unwrap_or_else(|e| e.into_inner());
            let b = sc.batch(&self.nat, dsr, nl.next_seq())?;
            nl.reserve(u32::try_from(b.messages + 1).unwrap_or(u32::MAX));
            Some(b)
        });
        let text = match &batch {
            Some(b) => {
                self.last_script = (b.len(), b.messages);
                String::new()
            }
            None => {
                let text = sc.render(&self.nat, dsr, self.lb.as_deref());
                self.last_script = (text.len(), text.lines().count());
                text
            }
        };
        self.batched = batch.is_some();
        // Tunnel devices follow every tunnel-mode destination; unless a touched service is in
        // tunnel mode (before or after), the devices needed stay as they are.
        let tun = |s: &Service| s.mode == ForwardMode::Tun;
        let unused = if self.tun_devs.is_none()
            || want
                .iter()
                .any(|(k, n)| n.as_ref().is_some_and(tun) || self.services.get(k).is_some_and(tun))
        {
            let after = self
                .services
                .iter()
                .filter(|(k, _)| !want.contains_key(*k))
                .map(|(_, s)| s)
                .chain(want.values().flatten());
            let needed = after
                .filter(|s| tun(s))
                .flat_map(|s| &s.dests)
                .map(|d| (tunnels::dev_name(d.addr.ip()), d.addr.ip()))
                .collect();
            self.make_tunnels(&needed)?
        } else {
            Vec::new()
        };
        let commit = |r: &R| match (batch, r.batches()) {
            (Some(b), Some(nl)) => {
                let (buf, last) = b.finish();
                let mut nl = nl.lock().unwrap_or_else(|e| e.into_inner());
                nl.transact(&buf, last)
            }
            _ => r.run(&text),
        };
        if let Err(e) = rebalance::run_tracked(&self.runner, &mut mirror, commit) {
            // Nothing changed (one transaction), but re-read before the next diff anyway.
            self.stale = true;
            return Err(e);
        }
        self.drop_tunnels(&unused);
        // The kernel now holds `want`: no read-back. The decoded tables are brought to what
        // the script wrote; they are trusted while the ruleset generation says nobody else
        // committed (else the next refresh lists the tables).
        sc.record(&was, &mut self.nat, &mut self.dsr, dsr_used);
        mirror.committed(&sc.gone, &sc.laid);
        for (k, v) in want {
            match v {
                Some(s) => self.services.insert(k, s),
                None => self.services.remove(&k),
            };
        }
        self.stale = mirror.kernel_gen.is_none();
        Ok(())
    }

    fn stats(&self) -> Vec<ServiceStats> {
        (self.stats_reader())()
    }

    fn stats_reader(&self) -> super::StatsReader {
        let (runner, services) = (self.runner.clone(), self.current());
        let (nat, dsr) = (self.nat.clone(), self.dsr.clone());
        let loads = self.mirror().loads();
        Box::new(move || read_stats(&runner, &services, nat, dsr, &loads))
    }
}

/// Reads the counters of `services` from the kernel (`nat`/`dsr`: the last state read, reported
/// when the kernel cannot be read). `loads`: the lc/wlc re-weighting's last sample, by
/// destination id (the active connections it saw).
fn read_stats<R: NftRunner>(
    runner: &R,
    services: &[Service],
    nat: TableState,
    dsr: TableState,
    loads: &HashMap<u32, least::Load>,
) -> Vec<ServiceStats> {
    let fresh = |t: Table| {
        runner
            .list(t.spec())
            .ok()
            .and_then(|j| parse::parse_table(&j).ok())
    };
    let (nat, dsr) = match (fresh(Table::Nat), fresh(Table::Dsr)) {
        (Some(n), Some(d)) => (n, d),
        _ => {
            tracing::warn!("cannot read nftables counters; reporting the last state");
            (nat, dsr)
        }
    };
    // Destination records by (service id, address): one pass per table, so reading the
    // counters of 10,000 services × 10 destinations stays linear.
    fn index(st: &TableState) -> HashMap<(u32, SocketAddr), (&u32, &DstRec)> {
        st.dests
            .iter()
            .map(|(id, r)| ((r.sid, r.addr), (id, r)))
            .collect()
    }
    let (nat_ix, dsr_ix) = (index(&nat), index(&dsr));
    services
        .iter()
        .map(|s| {
            let (st, ix, t) = match s.mode {
                ForwardMode::Dsr | ForwardMode::Tun => (&dsr, &dsr_ix, Table::Dsr),
                _ => (&nat, &nat_ix, Table::Nat),
            };
            let sid = st.services.get(&s.key).map(|m| m.sid);
            let dests = s
                .dests
                .iter()
                .map(|d| {
                    let rec = sid.and_then(|sid| ix.get(&(sid, d.addr)).copied());
                    let active = rec
                        .and_then(|(id, _)| loads.get(id))
                        .map_or(0, |l| l.active);
                    let (conns, cin, cout) = match rec {
                        Some((id, r)) if t == Table::Nat => (
                            r.counter.packets,
                            st.cin.get(id).copied().unwrap_or_default(),
                            st.cout.get(id).copied().unwrap_or_default(),
                        ),
                        Some((_, r)) => (0, r.counter, Counter::default()),
                        None => (0, Counter::default(), Counter::default()),
                    };
                    DestStats {
                        dest: Some(*d),
                        active_conns: active,
                        total_conns: conns,
                        bytes_in: cin.bytes,
                        bytes_out: cout.bytes,
                    }
                })
                .collect();
            ServiceStats {
                service: s.clone(),
                dests,
                table_hash: table_hash(st, s),
            }
        })
        .collect()
}

/// The fingerprint of `s`'s Maglev table as the kernel holds it (`mh` only): each slot's
/// destination address, keyed as the proxy plane keys its members, so both planes and every
/// node give the same hash for the same table.
fn table_hash(st: &TableState, s: &Service) -> Option<u64> {
    let meta = st.services.get(&s.key)?;
    if meta.sched != Scheduler::Mh || meta.n == 0 {
        return None;
    }
    let keys = (meta.off..meta.off + meta.n).map(|i| {
        st.slots
            .get(&i)
            .and_then(|id| st.dests.get(id))
            .map_or(0, |d| crate::sched::hash_addr(d.addr))
    });
    Some(crate::sched::maglev::table_hash(keys))
}

impl<R: NftRunner> NftPlane<R> {
    fn held(&self, key: &ServiceKey) -> Option<Held<'_>> {
        [Table::Nat, Table::Dsr].into_iter().find_map(|t| {
            let st = self.state(t);
            let meta = *st.services.get(key)?;
            let dids = st
                .by_sid
                .get(&meta.sid)
                .into_iter()
                .flatten()
                .filter_map(|id| Some((st.dests.get(id)?.addr, *id)))
                .collect::<BTreeMap<_, _>>();
            let weights = dids
                .values()
                .map(|id| (*id, st.weights.get(id).copied().unwrap_or(0)))
                .collect();
            let marks = st
                .marked
                .iter()
                .filter(|(m, mark)| {
                    key.is_fwmark() && **mark == key.fwmark && m.vip.is_ipv4() == key.vip.is_ipv4()
                })
                .map(|(m, _)| *m)
                .collect();
            Some(Held {
                key: *key,
                table: t,
                meta,
                dids,
                marks,
                weights,
                st,
            })
        })
    }
}

/// `ip` or `ip6` for an address.
fn ipf(ip: IpAddr) -> &'static str {
    if ip.is_ipv4() { "ip" } else { "ip6" }
}

#[cfg(test)]
mod tests;

/// The refusal of `one_packet` in NAT mode on this plane: its NAT schedules once per conntrack
/// flow, so every datagram of a flow would go to one backend — not what Seesaw asks for. DSR
/// keeps no connection state and honours it (no flow map: each datagram is scheduled alone).
pub fn one_packet_needs_dsr(s: &Service) -> Option<String> {
    (s.opts.kernel.one_packet && s.mode == ForwardMode::Nat).then(|| {
        "one_packet in NAT mode needs the ipvs data plane (nftables NAT schedules once per \
         conntrack flow); use DSR, where each datagram is scheduled on its own"
            .to_owned()
    })
}
