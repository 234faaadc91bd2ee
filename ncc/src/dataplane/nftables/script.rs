//! Rendering one transaction: the nft script that turns what a set of services holds in the
//! kernel into what they should hold. Pure: it reads the decoded tables and writes text. Only
//! the objects of the services being changed appear in the script (plus the idempotent base
//! objects), so changing one vserver touches only that vserver's chain, elements and slots.
//!
//! Order inside the script: element deletions (registry first, so no packet can jump into a
//! chain being removed), chain flushes and deletions, sticky-map deletions, new maps and chains,
//! new elements, rules, and finally the registry elements that make new services reachable.
//! The kernel applies the whole script as one transaction.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use super::layout::{self, Layout, Member};
use super::parse::{Counter, DstRec, SvcMeta, TableState, svc_comment};
use super::rules::{SvcRule, after_rules, base_dsr, base_nat, base_record, rules, sticky};
use super::wire::{Elem, Key, Val};
use super::{DID_BASE, DID_MASK, Held, SLOT_BASE, Table};
use crate::NccError;
use crate::model::{ForwardMode, Service, ServiceKey};

mod record;
pub(super) use record::MAX_BATCH;

/// Elements per `add element` statement.
const CHUNK: usize = 4000;

/// Id allocation over both tables. Looks ids up in the tables rather than copying them; the
/// next service id and slot range are found (one walk of the services) only when a
/// transaction needs one, so a health flip allocates nothing and walks nothing.
#[derive(Debug)]
pub struct Alloc<'a> {
    tables: [&'a TableState; 2],
    next_sid: Option<u32>,
    taken: BTreeSet<u32>,
    cursor: u32,
    next_slot: Option<u32>,
}

impl<'a> Alloc<'a> {
    /// Continues after what the kernel holds.
    pub fn from_states(nat: &'a TableState, dsr: &'a TableState) -> Self {
        let both = [nat, dsr];
        let cursor = both
            .iter()
            .filter_map(|s| s.dests.last_key_value().map(|(id, _)| *id))
            .max()
            .map_or(DID_BASE, |m| m.wrapping_add(1));
        Self {
            tables: both,
            next_sid: None,
            taken: BTreeSet::new(),
            cursor,
            next_slot: None,
        }
    }

    fn sid(&mut self) -> u32 {
        let tables = self.tables;
        let s = *self.next_sid.get_or_insert_with(|| {
            tables
                .iter()
                .flat_map(|s| s.services.values().map(|m| m.sid))
                .max()
                .map_or(1, |m| m.saturating_add(1))
        });
        self.next_sid = Some(s.saturating_add(1));
        s
    }

    fn did(&mut self) -> Result<u32, NccError> {
        for _ in 0..=(!DID_MASK) {
            if self.cursor & DID_MASK != DID_BASE {
                self.cursor = DID_BASE;
            }
            let c = self.cursor;
            self.cursor = self.cursor.wrapping_add(1);
            if !self.tables.iter().any(|t| t.dests.contains_key(&c)) && self.taken.insert(c) {
                return Ok(c);
            }
        }
        Err(NccError::Plane(
            "all 1048576 nftables destination ids are in use".into(),
        ))
    }

    fn slots(&mut self, cap: u32) -> Result<u32, NccError> {
        let tables = self.tables;
        let off = *self.next_slot.get_or_insert_with(|| {
            tables
                .iter()
                .flat_map(|s| s.services.values().map(|m| m.off.saturating_add(m.cap)))
                .max()
                .unwrap_or(0)
        });
        let next = off
            .checked_add(cap)
            .ok_or_else(|| NccError::Plane("nftables slot space exhausted".into()))?;
        self.next_slot = Some(next);
        Ok(off)
    }
}

/// One transaction being built.
#[derive(Debug, Default)]
pub struct Script {
    del: BTreeMap<(Table, &'static str), Vec<Elem>>,
    drop_chains: Vec<(Table, String)>,
    flush_chains: Vec<(Table, String)>,
    drop_sets: Vec<(Table, String)>,
    add_sets: Vec<(Table, String)>,
    add_chains: Vec<(Table, String)>,
    add: BTreeMap<(Table, &'static str), Vec<Elem>>,
    rules: Vec<(Table, String, Line)>,
    /// What each created or updated service holds once the script ran.
    pub laid: Vec<Laid>,
    /// The services the script removes.
    pub gone: Vec<ServiceKey>,
}

/// A rule a transaction appends: a service chain's (typed, so a batch can carry it) or an
/// after-chain's (text only).
#[derive(Debug)]
enum Line {
    Svc(SvcRule),
    Text(String),
}

impl std::fmt::Display for Line {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Svc(r) => r.fmt(f),
            Self::Text(t) => f.write_str(t),
        }
    }
}

/// A service as a script lays it out: the lc/wlc re-weighting keeps its own copy of these
/// (`rebalance::Mirror`), so it can rewrite slots between applies without reading the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Laid {
    /// The service.
    pub key: ServiceKey,
    /// Its table.
    pub table: Table,
    /// Its registry settings.
    pub meta: SvcMeta,
    /// (destination id, weight) of every destination.
    pub members: Vec<(u32, u32)>,
    /// The contents of slots `meta.off ..  meta.off + meta.n`.
    pub slots: Vec<u32>,
    /// (destination id, address) of every destination.
    pub addrs: Vec<(u32, std::net::SocketAddr)>,
    /// A firewall-mark service's marked tuples.
    pub marks: Vec<ServiceKey>,
}

impl Laid {
    /// Service `s` laid out in table `t` with `meta`: `members` are its destinations in the
    /// order of `s.dests`, `slots` the contents of its live slots.
    fn of(s: &Service, t: Table, meta: SvcMeta, members: &[Member], slots: &[u32]) -> Self {
        Self {
            key: s.key,
            table: t,
            meta,
            members: members.iter().map(|m| (m.id, m.weight)).collect(),
            slots: slots.to_vec(),
            addrs: members
                .iter()
                .zip(&s.dests)
                .map(|(m, d)| (m.id, d.addr))
                .collect(),
            marks: s.marks.clone(),
        }
    }
}

/// What a touched service held before the script ran: everything [`Script::record`] erases
/// before it writes what the service holds now.
#[derive(Debug, Clone)]
pub struct Was {
    /// The service.
    pub key: ServiceKey,
    /// Its table.
    pub table: Table,
    /// Its registry settings.
    pub meta: SvcMeta,
    /// Its destination ids.
    pub dids: Vec<u32>,
    /// Its marked tuples.
    pub marks: Vec<ServiceKey>,
}

impl Was {
    /// The record of `h`.
    pub fn of(h: &Held<'_>) -> Self {
        Self {
            key: h.key,
            table: h.table,
            meta: h.meta,
            dids: h.dids.values().copied().collect(),
            marks: h.marks.clone(),
        }
    }
}

fn fam(ip: IpAddr) -> (&'static str, &'static str, &'static str) {
    // (svc map, dst map, after map)
    if ip.is_ipv4() {
        ("svc4", "dst4", "aft4")
    } else {
        ("svc6", "dst6", "aft6")
    }
}

/// A slot's key in the `slot` map.
pub(super) fn slot_key(slot: u32) -> Key {
    Key::Mark(SLOT_BASE.wrapping_add(slot))
}

/// Whether a map is a registry (`svc*`, `fwm*`, `aft*`): its elements make a service
/// reachable, so they are deleted first and added last.
fn is_registry(m: &str) -> bool {
    m.starts_with("svc") || m.starts_with("fwm") || m.starts_with("aft")
}

/// A service's registry element: (map, key). VIP:port services live in `svc4`/`svc6`,
/// firewall-mark services in `fwm4`/`fwm6` keyed by the mark.
fn registry(k: &ServiceKey) -> (&'static str, Key) {
    match (k.is_fwmark(), k.vip.is_ipv4()) {
        (false, _) => (fam(k.vip).0, Key::Tuple(*k)),
        (true, true) => ("fwm4", Key::Mark(k.fwmark)),
        (true, false) => ("fwm6", Key::Mark(k.fwmark)),
    }
}

/// The keys under which a service's after-chain is found in `aft4`/`aft6`: the dispatch chain
/// looks it up by the packet's VIP:port, so a firewall-mark service registers every tuple it
/// marks (packets marked elsewhere keep no client state).
fn aft_keys(k: &ServiceKey, marks: &[ServiceKey]) -> Vec<Key> {
    if k.is_fwmark() {
        marks.iter().map(|m| Key::Tuple(*m)).collect()
    } else {
        vec![Key::Tuple(*k)]
    }
}

/// The destination map of an address: NAT destinations with port 0 (a firewall-mark service's,
/// which keep the packet's port) live in `dnp4`/`dnp6`, the others in `dst4`/`dst6`.
fn dst_map(t: Table, addr: std::net::SocketAddr) -> &'static str {
    match (t, addr.port() == 0, addr.is_ipv4()) {
        (Table::Nat, true, true) => "dnp4",
        (Table::Nat, true, false) => "dnp6",
        (_, _, true) => "dst4",
        (_, _, false) => "dst6",
    }
}

impl Script {
    fn del(&mut self, t: Table, map: &'static str, key: Key) {
        self.del.entry((t, map)).or_default().push(Elem::key(key));
    }

    fn add(&mut self, t: Table, map: &'static str, e: Elem) {
        self.add.entry((t, map)).or_default().push(e);
    }

    /// Adds what turns `held` into `new` (either may be absent).
    pub fn service(
        &mut self,
        alloc: &mut Alloc<'_>,
        held: Option<&Held<'_>>,
        new: Option<&Service>,
    ) -> Result<(), NccError> {
        match (held, new) {
            (None, None) => Ok(()),
            (Some(h), None) => {
                self.remove(h);
                Ok(())
            }
            (None, Some(n)) => self.create(alloc, n),
            (Some(h), Some(n))
                if Table::of(n.mode) != h.table || h.meta.tun != (n.mode == ForwardMode::Tun) =>
            {
                self.remove(h);
                self.create(alloc, n)
            }
            (Some(h), Some(n)) => self.update(alloc, h, n),
        }
    }

    fn remove(&mut self, h: &Held<'_>) {
        self.gone.push(h.key);
        let key = h.key;
        let t = h.table;
        let (svc, _, aft) = fam(key.vip);
        let (map, elem) = registry(&key);
        self.del(t, map, elem);
        for m in &h.marks {
            self.del(t, svc, Key::Tuple(*m));
        }
        let chain = format!("s{}", h.meta.sid);
        if h.st.chains.contains(&chain) {
            self.drop_chains.push((t, chain));
        }
        let after = format!("a{}", h.meta.sid);
        if h.st.chains.contains(&after) {
            for k in aft_keys(&key, &h.marks) {
                self.del(t, aft, k);
            }
            self.drop_chains.push((t, after));
        }
        let prefix = format!("k{}t", h.meta.sid);
        for s in h.st.sets.iter().filter(|s| s.starts_with(&prefix)) {
            self.drop_sets.push((t, s.clone()));
        }
        for id in h.dids.values() {
            self.drop_dest(t, *id, h);
        }
        for slot in
            h.st.slots
                .range(h.meta.off..h.meta.off.saturating_add(h.meta.cap))
        {
            self.del(t, "slot", slot_key(*slot.0));
        }
    }

    fn drop_dest(&mut self, t: Table, id: u32, h: &Held<'_>) {
        if let Some(rec) = h.st.dests.get(&id) {
            self.del(t, dst_map(t, rec.addr), Key::Mark(id));
        }
        if h.st.weights.contains_key(&id) {
            self.del(t, "weights", Key::Mark(id));
        }
        if h.st.dests.get(&id).is_some_and(|r| r.tun) {
            self.del(t, "tdev", Key::Mark(id));
        }
        if t == Table::Nat {
            if h.st.cin.contains_key(&id) {
                self.del(t, "cin", Key::Mark(id));
            }
            if h.st.cout.contains_key(&id) {
                self.del(t, "cout", Key::Mark(id));
            }
        }
    }

    /// Adds a destination's elements; `tun`: reached through its tunnel device (DSR table).
    fn add_dest(&mut self, t: Table, sid: u32, id: u32, d: (std::net::SocketAddr, u32), tun: bool) {
        let (addr, weight) = d;
        let dst = dst_map(t, addr);
        match t {
            Table::Nat => {
                let (val, port) = if addr.port() == 0 {
                    (Val::Addr(addr.ip()), " port=0")
                } else {
                    (Val::AddrPort(addr), "")
                };
                self.add(
                    t,
                    dst,
                    Elem::map(Key::Mark(id), val).with_comment(format!("sid={sid}{port}")),
                );
                self.add(t, "cin", Elem::key(Key::Mark(id)));
                self.add(t, "cout", Elem::key(Key::Mark(id)));
            }
            Table::Dsr => {
                let comment = format!(
                    "sid={sid} port={}{}",
                    addr.port(),
                    if tun { " t=1" } else { "" }
                );
                self.add(
                    t,
                    dst,
                    Elem::map(Key::Mark(id), Val::Addr(addr.ip())).with_comment(comment),
                );
                if tun {
                    let dev = super::tunnels::dev_name(addr.ip());
                    self.add(t, "tdev", Elem::map(Key::Mark(id), Val::Dev(dev)));
                }
            }
        }
        self.add(t, "weights", Elem::map(Key::Mark(id), Val::Num(weight)));
    }

    /// Writes the after-chain of a service (held: whether its chain and registry element
    /// exist) so that it runs `want`.
    fn sticky_map(&mut self, t: Table, vip: IpAddr, m: &SvcMeta) {
        if let Some((name, _, ty, timeout)) = sticky(t, vip, m) {
            self.add_sets.push((
                t,
                format!(
                    "add map {} {name} {{ type {ty} : mark; flags dynamic,timeout; timeout {timeout}s; size 1048576; }}",
                    t.spec()
                ),
            ));
        }
    }

    /// Writes the after-chain `a<sid>` of a service so that it runs `want`, reachable under
    /// `new_keys` in `aft4`/`aft6`. `held`: the chain exists, under `old_keys`.
    #[allow(
        clippy::too_many_arguments,
        reason = "one call site per case, all named"
    )]
    fn after_chain(
        &mut self,
        t: Table,
        vip: IpAddr,
        sid: u32,
        held: bool,
        old_keys: &[Key],
        new_keys: &[Key],
        want: Vec<String>,
    ) {
        let (_, _, aft) = fam(vip);
        let chain = format!("a{sid}");
        if want.is_empty() {
            if held {
                for k in old_keys {
                    self.del(t, aft, k.clone());
                }
                self.drop_chains.push((t, chain));
            }
            return;
        }
        if held {
            self.flush_chains.push((t, chain.clone()));
            for k in old_keys.iter().filter(|k| !new_keys.contains(k)) {
                self.del(t, aft, k.clone());
            }
            for k in new_keys.iter().filter(|k| !old_keys.contains(k)) {
                self.add(t, aft, Elem::map(k.clone(), Val::Jump(chain.clone())));
            }
        } else {
            self.add_chains.push((t, chain.clone()));
            for k in new_keys {
                self.add(t, aft, Elem::map(k.clone(), Val::Jump(chain.clone())));
            }
        }
        for r in want {
            self.rules.push((t, chain.clone(), Line::Text(r)));
        }
    }

    fn create(&mut self, alloc: &mut Alloc<'_>, s: &Service) -> Result<(), NccError> {
        let t = Table::of(s.mode);
        let lay = Layout::of(s.scheduler).ok_or_else(|| {
            NccError::Unsupported(vec![format!(
                "{}: scheduler {:?} is not available in nftables",
                s.key, s.scheduler
            )])
        })?;
        let sid = alloc.sid();
        let mut members = Vec::new();
        for d in &s.dests {
            let id = alloc.did()?;
            self.add_dest(t, sid, id, (d.addr, d.weight), s.mode == ForwardMode::Tun);
            members.push(member(id, d.addr, d.weight));
        }
        let slots = layout::slots(lay, &members, &[], s.anchor.as_deref());
        let n = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        let cap = layout::capacity(slots.len());
        let off = alloc.slots(cap)?;
        for (i, id) in (0u32..).zip(&slots) {
            self.add(t, "slot", Elem::map(slot_key(off + i), Val::Mark(*id)));
        }
        let meta = svc_meta(s, sid, (off, cap, n));
        self.laid.push(Laid::of(s, t, meta, &members, &slots));
        self.sticky_map(t, s.key.vip, &meta);
        let chain = format!("s{sid}");
        self.add_chains.push((t, chain.clone()));
        for r in rules(t, s.key.vip, s.key.fwmark, &meta) {
            self.rules.push((t, chain.clone(), Line::Svc(r)));
        }
        let keys = aft_keys(&s.key, &s.marks);
        self.after_chain(
            t,
            s.key.vip,
            sid,
            false,
            &[],
            &keys,
            after_rules(t, s.key.vip, &meta),
        );
        self.marked(t, &s.key, sid, &[], &s.marks);
        let (map, elem) = registry(&s.key);
        self.add(
            t,
            map,
            Elem::map(elem, Val::Jump(chain)).with_comment(svc_comment(&meta)),
        );
        Ok(())
    }

    /// Turns the marked tuples `old` of a firewall-mark service into `new`: each is a `svc4`/
    /// `svc6` element commented `fwm=<mark>` that jumps into the service's chain.
    fn marked(
        &mut self,
        t: Table,
        key: &ServiceKey,
        sid: u32,
        old: &[ServiceKey],
        new: &[ServiceKey],
    ) {
        let (svc, _, _) = fam(key.vip);
        for m in old.iter().filter(|m| !new.contains(m)) {
            self.del(t, svc, Key::Tuple(*m));
        }
        for m in new.iter().filter(|m| !old.contains(m)) {
            self.add(
                t,
                svc,
                Elem::map(Key::Tuple(*m), Val::Jump(format!("s{sid}")))
                    .with_comment(format!("fwm={}", key.fwmark)),
            );
        }
    }

    fn update(&mut self, alloc: &mut Alloc<'_>, h: &Held<'_>, s: &Service) -> Result<(), NccError> {
        let t = h.table;
        let lay = Layout::of(s.scheduler).ok_or_else(|| {
            NccError::Unsupported(vec![format!(
                "{}: scheduler {:?} is not available in nftables",
                s.key, s.scheduler
            )])
        })?;
        let old = h.meta;
        // Destinations: remove, add, re-weight.
        for (addr, id) in &h.dids {
            if !s.dests.iter().any(|d| d.addr == *addr) {
                self.drop_dest(t, *id, h);
            }
        }
        let mut members = Vec::new();
        for d in &s.dests {
            let id = match h.dids.get(&d.addr) {
                Some(id) => {
                    if h.weights.get(id) != Some(&d.weight) {
                        if h.st.weights.contains_key(id) {
                            self.del(t, "weights", Key::Mark(*id));
                        }
                        self.add(t, "weights", Elem::map(Key::Mark(*id), Val::Num(d.weight)));
                    }
                    *id
                }
                None => {
                    let id = alloc.did()?;
                    self.add_dest(t, old.sid, id, (d.addr, d.weight), old.tun);
                    id
                }
            };
            members.push(member(id, d.addr, d.weight));
        }
        // Slots: rewrite only the ones that differ (a new range if the old one is too small).
        let old_slots: Vec<u32> = (0..old.n)
            .filter_map(|i| h.st.slots.get(&(old.off + i)).copied())
            .collect();
        let keep_old = if s.scheduler == old.sched {
            &old_slots[..]
        } else {
            &[]
        };
        let slots = layout::slots(lay, &members, keep_old, s.anchor.as_deref());
        let n = u32::try_from(slots.len()).unwrap_or(u32::MAX);
        let (off, cap) = if n <= old.cap {
            (old.off, old.cap)
        } else {
            let cap = layout::capacity(slots.len());
            (alloc.slots(cap)?, cap)
        };
        for (slot, id) in h.st.slots.range(old.off..old.off.saturating_add(old.cap)) {
            let i = slot - old.off;
            let keep = off == old.off && slots.get(i as usize) == Some(id);
            if !keep {
                self.del(t, "slot", slot_key(*slot));
            }
        }
        for (i, id) in (0u32..).zip(&slots) {
            let slot = off + i;
            let same = off == old.off && h.st.slots.get(&slot) == Some(id);
            if !same {
                self.add(t, "slot", Elem::map(slot_key(slot), Val::Mark(*id)));
            }
        }
        let meta = svc_meta(s, old.sid, (off, cap, n));
        self.laid.push(Laid::of(s, t, meta, &members, &slots));
        self.marked(t, &s.key, old.sid, &h.marks, &s.marks);
        let old_keys = aft_keys(&s.key, &h.marks);
        let new_keys = aft_keys(&s.key, &s.marks);
        if meta == old && old_keys != new_keys && h.st.chains.contains(&format!("a{}", old.sid)) {
            // Only the marked tuples changed: re-register the after-chain under the new ones.
            let now = after_rules(t, s.key.vip, &meta);
            self.after_chain(t, s.key.vip, old.sid, true, &old_keys, &new_keys, now);
        }
        if meta != old {
            let chain = format!("s{}", old.sid);
            if h.st.chains.contains(&chain) {
                self.flush_chains.push((t, chain.clone()));
            } else {
                self.add_chains.push((t, chain.clone()));
            }
            let was = sticky(t, s.key.vip, &old).map(|x| x.0);
            let now = sticky(t, s.key.vip, &meta).map(|x| x.0);
            if was != now {
                if let Some(w) = was.filter(|w| h.st.sets.contains(w)) {
                    self.drop_sets.push((t, w));
                }
                self.sticky_map(t, s.key.vip, &meta);
            }
            for r in rules(t, s.key.vip, s.key.fwmark, &meta) {
                self.rules.push((t, chain.clone(), Line::Svc(r)));
            }
            let was = after_rules(t, s.key.vip, &old);
            let now = after_rules(t, s.key.vip, &meta);
            let held = h.st.chains.contains(&format!("a{}", old.sid));
            if was != now || held == now.is_empty() || old_keys != new_keys {
                self.after_chain(t, s.key.vip, old.sid, held, &old_keys, &new_keys, now);
            }
            let (map, elem) = registry(&s.key);
            self.del(t, map, elem.clone());
            self.add(
                t,
                map,
                Elem::map(elem, Val::Jump(chain)).with_comment(svc_comment(&meta)),
            );
        }
        Ok(())
    }
}

/// A layout member keyed as the proxy plane keys its destinations ([`crate::sched::hash_addr`]),
/// so both planes build the same Maglev table from the same backends.
fn member(id: u32, addr: std::net::SocketAddr, weight: u32) -> Member {
    Member {
        id,
        weight,
        key: crate::sched::hash_addr(addr),
    }
}

pub(super) fn elements(out: &mut String, verb: &str, t: Table, map: &str, elems: &[Elem]) {
    for chunk in elems.chunks(CHUNK) {
        let _ = write!(out, "{verb} element {} {map} {{ ", t.spec());
        for (i, e) in chunk.iter().enumerate() {
            let sep = if i == 0 { "" } else { ", " };
            let _ = write!(out, "{sep}{e}");
        }
        let _ = writeln!(out, " }}");
    }
}

/// The registry record of service `s` under id `sid` with its slots `(offset, capacity, live)`.
pub(super) fn svc_meta(s: &Service, sid: u32, (off, cap, n): (u32, u32, u32)) -> SvcMeta {
    SvcMeta {
        sid,
        sched: s.scheduler,
        persist: s.persistence,
        off,
        cap,
        n,
        ops: s.opts.kernel.one_packet,
        tun: s.mode == ForwardMode::Tun,
    }
}
