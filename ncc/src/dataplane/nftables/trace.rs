//! `seesaw trace` on the nftables plane, from the tables as the kernel holds them: the
//! service's registry entry (scheduler, slot range), the slot the kernel's `jhash` gives the
//! client (sh, mh) or the VIP (dh) — computed here with the kernel's own functions
//! ([`crate::dataplane::trace::jhash`]) — and that slot's destination; the live flow is the
//! conntrack entry of the connection (NAT; the DSR table has no conntrack).

use super::nfnl::{Tuple, tcp_state_name};
use super::parse::SvcMeta;
use super::rules::HASH_SEED;
use super::{NftPlane, NftRunner, Table};
use crate::dataplane::Dataplane;
use crate::dataplane::trace::{PlaneTrace, TraceFlow, nft_jhash_addr};
use crate::model::{Protocol, Scheduler, ServiceKey};

impl<R: NftRunner> NftPlane<R> {
    /// See [`crate::dataplane::Dataplane::trace`].
    pub(super) fn trace_flow(&mut self, flow: &TraceFlow) -> PlaneTrace {
        let mut t = PlaneTrace {
            plane: "nftables".to_owned(),
            ..PlaneTrace::default()
        };
        if let Err(e) = self.refresh() {
            t.notes.push(format!("the tables could not be read: {e}"));
            return t;
        }
        let key = ServiceKey::new(flow.vip.ip(), flow.proto, flow.vip.port());
        let found = [Table::Nat, Table::Dsr].into_iter().find_map(|table| {
            let st = self.state(table);
            if let Some(m) = st.services.get(&key) {
                return Some((table, *m));
            }
            // A VIP:port marked into a firewall-mark service.
            let mark = *st.marked.get(&key)?;
            let fw = ServiceKey::fwmark(flow.vip.is_ipv6(), mark);
            st.services.get(&fw).map(|m| (table, *m))
        });
        let Some((table, meta)) = found else {
            return t;
        };
        t.found = true;
        self.predict(table, &meta, flow, &mut t);
        if meta.persist > 0 {
            t.notes.push(format!(
                "persistence {} s: a client seen within that time keeps the destination it had",
                meta.persist
            ));
        }
        match table {
            Table::Nat => self.live_flow(flow, &mut t),
            Table::Dsr => t.notes.push(
                "direct server return: the netdev table keeps no connection state to show"
                    .to_owned(),
            ),
        }
        t
    }

    fn predict(&self, table: Table, meta: &SvcMeta, flow: &TraceFlow, t: &mut PlaneTrace) {
        let st = self.state(table);
        let hashed = match meta.sched {
            Scheduler::Sh | Scheduler::Mh => Some(flow.client.ip()),
            Scheduler::Dh => Some(flow.vip.ip()),
            _ => None,
        };
        let Some(ip) = hashed.filter(|_| meta.n > 0) else {
            t.how = format!(
                "{}: the kernel's choice depends on a counter or a random number (numgen), so \
                 a new flow's destination cannot be predicted",
                meta.sched.name()
            );
            return;
        };
        let slot = nft_jhash_addr(ip, meta.n, HASH_SEED);
        let dest = st
            .slots
            .get(&(meta.off + slot))
            .and_then(|id| st.dests.get(id))
            .map(|d| d.addr);
        let of = if meta.sched == Scheduler::Dh {
            "the VIP"
        } else {
            "the client address"
        };
        let kind = if meta.sched == Scheduler::Mh {
            "Maglev slot"
        } else {
            "slot"
        };
        t.how = format!("{kind} {slot} of {} (the kernel's jhash of {of})", meta.n);
        t.predicted = dest;
    }

    fn live_flow(&self, flow: &TraceFlow, t: &mut PlaneTrace) {
        let tuple = Tuple {
            proto: match flow.proto {
                Protocol::Tcp => 6,
                Protocol::Udp => 17,
            },
            src: flow.client,
            dst: flow.vip,
        };
        match super::loads::NfnlLoads::default().find_flow(&tuple) {
            Ok(Some(f)) => {
                t.flow = Some(f.dest);
                t.flow_state = f
                    .tcp_state
                    .map_or_else(|| "tracked".to_owned(), |s| tcp_state_name(s).to_owned());
            }
            Ok(None) => {}
            Err(e) => t.notes.push(format!("conntrack could not be read: {e}")),
        }
    }
}
