//! After a transaction: the decoded tables brought to what the kernel holds once the script
//! ran ([`Script::record`], so the plane reads nothing back after its own commit), and the
//! script's text ([`Script::render`]).

use super::*;

impl Script {
    /// Brings `nat`/`dsr` (what the tables held before this script) to what they hold once it
    /// ran: every touched service's old objects (`was`) are erased, its new ones (`laid`)
    /// written, and the base objects of the tables the script declared are recorded. So the
    /// plane needs no read-back after its own transaction (a 10,000-service listing takes
    /// seconds); `tunnel_mode_applies_adopts_and_cleans_up_in_a_private_netns` and
    /// `recorded_state_equals_the_kernel_listing_after_every_change` check it against the kernel.
    pub fn record(&self, was: &[Was], nat: &mut TableState, dsr: &mut TableState, dsr_used: bool) {
        for w in was {
            let st = match w.table {
                Table::Nat => &mut *nat,
                Table::Dsr => &mut *dsr,
            };
            erase(st, w);
        }
        for l in &self.laid {
            let st = match l.table {
                Table::Nat => &mut *nat,
                Table::Dsr => &mut *dsr,
            };
            write(st, l);
        }
        base_record(nat, Table::Nat);
        if dsr_used {
            base_record(dsr, Table::Dsr);
        }
    }

    /// The script text. `dsr` is the DSR table's state when that table is in use.
    pub fn render(&self, nat: &TableState, dsr: Option<&TableState>, lb: Option<&str>) -> String {
        let mut out = String::new();
        base_nat(&mut out, nat);
        if let Some(d) = dsr {
            base_dsr(&mut out, d, lb.unwrap_or("lo"));
        }
        let registry_first = |m: &&'static str| !is_registry(m);
        let mut dels: Vec<_> = self.del.iter().collect();
        dels.sort_by_key(|((t, m), _)| (registry_first(m), *t, *m));
        for ((t, m), elems) in dels {
            elements(&mut out, "delete", *t, m, elems);
        }
        for (t, c) in &self.drop_chains {
            let _ = writeln!(out, "flush chain {} {c}", t.spec());
            let _ = writeln!(out, "delete chain {} {c}", t.spec());
        }
        for (t, c) in &self.flush_chains {
            let _ = writeln!(out, "flush chain {} {c}", t.spec());
        }
        for (t, s) in &self.drop_sets {
            let _ = writeln!(out, "delete map {} {s}", t.spec());
        }
        for (_, line) in &self.add_sets {
            let _ = writeln!(out, "{line}");
        }
        for (t, c) in &self.add_chains {
            let _ = writeln!(out, "add chain {} {c}", t.spec());
        }
        let mut adds: Vec<_> = self.add.iter().collect();
        adds.sort_by_key(|((t, m), _)| (!registry_first(m), *t, *m));
        for ((t, m), elems) in adds.iter().filter(|((_, m), _)| registry_first(m)) {
            elements(&mut out, "add", *t, m, elems);
        }
        for (t, c, r) in &self.rules {
            let _ = writeln!(out, "add rule {} {c} {r}", t.spec());
        }
        for ((t, m), elems) in adds.iter().filter(|((_, m), _)| !registry_first(m)) {
            elements(&mut out, "add", *t, m, elems);
        }
        out
    }
}

impl Script {
    /// The transaction as one nf_tables batch (see [`super::super::wire`]) whose first message
    /// has sequence number `seq`, when a batch can carry it: it creates and deletes no map and
    /// no chain (elements, and the rules of an existing service chain, only), every base object
    /// is already in place, and it stays below [`MAX_BATCH`]. That is a health flip, a weight
    /// change, a backend added or removed. `None` otherwise: the script ([`Self::render`])
    /// carries it. The batch writes exactly what the script would, in the same order.
    pub fn batch(
        &self,
        nat: &TableState,
        dsr: Option<&TableState>,
        seq: u32,
    ) -> Option<super::super::wire::Batch> {
        let creates = !(self.drop_chains.is_empty()
            && self.drop_sets.is_empty()
            && self.add_sets.is_empty()
            && self.add_chains.is_empty());
        if creates
            || !super::super::rules::base_held(nat, Table::Nat)
            || dsr.is_some_and(|d| !super::super::rules::base_held(d, Table::Dsr))
        {
            return None;
        }
        let mut b = super::super::wire::Batch::new(seq);
        let registry_first = |m: &&'static str| !is_registry(m);
        let mut dels: Vec<_> = self.del.iter().collect();
        dels.sort_by_key(|((t, m), _)| (registry_first(m), *t, *m));
        for ((t, m), elems) in dels {
            b.elems(false, *t, m, elems)?;
        }
        for (t, c) in &self.flush_chains {
            b.flush_chain(*t, c);
        }
        let mut adds: Vec<_> = self.add.iter().collect();
        adds.sort_by_key(|((t, m), _)| (!registry_first(m), *t, *m));
        for ((t, m), elems) in adds.iter().filter(|((_, m), _)| registry_first(m)) {
            b.elems(true, *t, m, elems)?;
        }
        for (t, c, r) in &self.rules {
            let Line::Svc(r) = r else {
                return None;
            };
            b.rule(*t, c, &r.exprs());
        }
        for ((t, m), elems) in adds.iter().filter(|((_, m), _)| !registry_first(m)) {
            b.elems(true, *t, m, elems)?;
        }
        // Nothing to write: the script (which re-declares the base objects) commits it, as
        // an empty batch would be answered by nothing.
        (!b.is_empty() && b.len() <= MAX_BATCH).then_some(b)
    }
}

/// The largest batch sent in one datagram (a netlink socket's default send buffer is about
/// 208 KiB); larger transactions are scripts.
pub(crate) const MAX_BATCH: usize = 128 << 10;

/// Removes everything service `w` owned from `st`.
fn erase(st: &mut TableState, w: &Was) {
    st.services.remove(&w.key);
    for m in &w.marks {
        st.marked.remove(m);
    }
    for id in &w.dids {
        st.remove_dest(*id);
        st.weights.remove(id);
        st.cin.remove(id);
        st.cout.remove(id);
    }
    let end = w.meta.off.saturating_add(w.meta.cap);
    let slots: Vec<u32> = st.slots.range(w.meta.off..end).map(|(k, _)| *k).collect();
    for k in slots {
        st.slots.remove(&k);
    }
    for c in [format!("s{}", w.meta.sid), format!("a{}", w.meta.sid)] {
        st.chains.remove(&c);
        st.rules.remove(&c);
    }
    let prefix = format!("k{}t", w.meta.sid);
    st.sets.retain(|s| !s.starts_with(&prefix));
}

/// Writes what service `l` holds into `st`.
fn write(st: &mut TableState, l: &Laid) {
    let (t, m) = (l.table, l.meta);
    st.services.insert(l.key, m);
    for k in &l.marks {
        st.marked.insert(*k, l.key.fwmark);
    }
    for (id, addr) in &l.addrs {
        st.add_dest(
            *id,
            DstRec {
                sid: m.sid,
                addr: *addr,
                counter: Counter::default(),
                tun: m.tun,
            },
        );
        if t == Table::Nat {
            st.cin.insert(*id, Counter::default());
            st.cout.insert(*id, Counter::default());
        }
    }
    for (id, w) in &l.members {
        st.weights.insert(*id, *w);
    }
    for (i, id) in (0u32..).zip(&l.slots) {
        st.slots.insert(m.off.wrapping_add(i), *id);
    }
    let chain = format!("s{}", m.sid);
    // A listing counts rules per chain; an empty chain (a service with no destination) has
    // no count.
    let n = rules(t, l.key.vip, l.key.fwmark, &m).len();
    if n > 0 {
        st.rules.insert(chain.clone(), n);
    }
    st.chains.insert(chain);
    let after = after_rules(t, l.key.vip, &m);
    if !after.is_empty() {
        let chain = format!("a{}", m.sid);
        st.rules.insert(chain.clone(), after.len());
        st.chains.insert(chain);
    }
    if let Some((name, ..)) = sticky(t, l.key.vip, &m) {
        st.sets.insert(name);
    }
}
