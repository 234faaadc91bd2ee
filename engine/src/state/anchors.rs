//! Maglev anchors, sans-io: per `mh` service the table every node derives the live one from
//! (`seesaw_common::maglev::Anchor`; ncc derives the live table from the anchor over the
//! destinations that are up). An anchor covers the service's configured destinations with their
//! configured weights — not health, overrides or registered members, which are the live set — so
//! it is the same on every node that runs the same config.
//!
//! - Config source etcd: the anchor stored with the config in etcd (written in the same
//!   transaction as each edit), else one built afresh from the config: never from this node's
//!   history, so a node that starts later agrees with the others.
//! - Other sources: derived from this engine's previous anchor, so a config edit moves only the
//!   flows it must (removing 1 of 1,000 backends moves 0.1 %).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use seesaw_common::maglev::{Anchor, addr_key};

use crate::checks::Topology;
use crate::desired::ServiceKey;
use crate::model::{EtcdFacts, Scheduler};

/// The anchors of every `mh` service in `topology`; `prev` are the ones before this config.
pub fn anchors(
    topology: &Topology,
    etcd: Option<&EtcdFacts>,
    prev: &BTreeMap<ServiceKey, Arc<Anchor>>,
) -> BTreeMap<ServiceKey, Arc<Anchor>> {
    let mut out = BTreeMap::new();
    for (name, vt) in &topology.vservers {
        for st in &vt.services {
            if st.entry.scheduler != Scheduler::Mh {
                continue;
            }
            let set = configured(name, st, etcd);
            let anchor = match etcd {
                Some(f) => f
                    .anchors
                    .get(&st.key.to_string())
                    .cloned()
                    .unwrap_or_else(|| Arc::new(Anchor::derive(None, &set))),
                None => {
                    let p = prev.get(&st.key);
                    let next = Anchor::derive(p.map(|a| &**a), &set);
                    match p {
                        Some(p) if **p == next => Arc::clone(p),
                        _ => Arc::new(next),
                    }
                }
            };
            out.insert(st.key, anchor);
        }
    }
    out
}

/// A service's configured destinations as Maglev (key, weight), registered members left out.
pub fn configured(
    vserver: &str,
    st: &crate::checks::ServiceTopo,
    etcd: Option<&EtcdFacts>,
) -> Vec<(u64, u32)> {
    st.dests
        .iter()
        .filter(|d| {
            etcd.is_none_or(|f| {
                !f.registered
                    .contains(&(vserver.to_owned(), d.backend.clone()))
            })
        })
        .filter(|d| d.weight > 0)
        .map(|d| (addr_key(SocketAddr::new(d.ip, d.port)), d.weight))
        .collect()
}
