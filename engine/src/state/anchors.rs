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

/// A service's anchor and the configured backends it was made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// The configured backends as (key, weight), sorted.
    pub set: Vec<(u64, u32)>,
    /// The anchor.
    pub anchor: Arc<Anchor>,
}

/// Anchors by service.
pub type Anchors = BTreeMap<ServiceKey, Anchored>;

/// The anchors of every `mh` service in `topology`; `prev` are the ones before this config.
pub fn anchors(topology: &Topology, etcd: Option<&EtcdFacts>, prev: &Anchors) -> Anchors {
    let mut out = BTreeMap::new();
    for (name, vt) in &topology.vservers {
        for st in &vt.services {
            if st.entry.scheduler != Scheduler::Mh {
                continue;
            }
            let set = configured(name, st, etcd);
            let p = prev.get(&st.key);
            let anchor = match (etcd, p) {
                (Some(f), _) if f.anchors.contains_key(&st.key.to_string()) => {
                    let stored = &f.anchors[&st.key.to_string()];
                    // Unchanged: keep the running one (its encoding and hash are cached).
                    match p {
                        Some(p) if p.anchor == *stored => Arc::clone(&p.anchor),
                        _ => Arc::clone(stored),
                    }
                }
                // The same backends as before: the same anchor.
                (_, Some(p)) if p.set == set => Arc::clone(&p.anchor),
                // etcd without a stored anchor: built afresh, as on every other node.
                (Some(_), _) => Arc::new(Anchor::derive(None, &set)),
                (None, p) => Arc::new(Anchor::derive(p.map(|a| &*a.anchor), &set)),
            };
            out.insert(st.key, Anchored { set, anchor });
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
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::expand;
    use crate::config::{Loaded, load_cluster, seesaw_cfg};

    fn topology(backends: &[&str]) -> Topology {
        let mut text = String::from(
            r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
               node < fqdn: "n." ipv4: "10.0.0.2/24" >
               vserver < name: "m" rp: "x" entry_address < fqdn: "m." ipv4: "10.1.0.1/32" >
                 vserver_entry < protocol: TCP port: 80 scheduler: MH mode: NAT >
                 vserver_entry < protocol: TCP port: 81 scheduler: RR mode: NAT >"#,
        );
        for b in backends {
            text.push_str(&format!(
                r#" backend < host < fqdn: "{b}." ipv4: "10.2.0.{}/24" > >"#,
                b.trim_start_matches('b')
            ));
        }
        text.push_str(" >");
        expand(&Loaded {
            settings: seesaw_cfg::parse("[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n").unwrap(),
            cluster: load_cluster(text.as_bytes(), None).unwrap(),
        })
    }

    fn key() -> ServiceKey {
        ServiceKey::new("10.1.0.1".parse().unwrap(), crate::model::Protocol::Tcp, 80)
    }

    #[test]
    fn disk_anchors_follow_the_config_and_etcd_anchors_never_follow_history() {
        let three = topology(&["b1", "b2", "b3"]);
        let a = anchors(&three, None, &Anchors::new());
        assert_eq!(a.len(), 1, "only the mh service has an anchor");
        let first = &a[&key()];
        // The same config again: the very same anchor.
        let again = anchors(&three, None, &a);
        assert!(Arc::ptr_eq(&again[&key()].anchor, &first.anchor));
        // Disk: b3 removed, the anchor is derived from the previous one (b3's slots only move).
        let two = topology(&["b1", "b2"]);
        let derived = anchors(&two, None, &a);
        let fresh = Anchor::derive(None, &derived[&key()].set);
        assert_ne!(*derived[&key()].anchor, fresh);
        let kept = first
            .anchor
            .slots
            .iter()
            .zip(&derived[&key()].anchor.slots)
            .filter(|(x, y)| x == y)
            .count();
        assert!(
            kept * 3 >= first.anchor.slots.len() * 2 - 10,
            "b1's and b2's slots stay"
        );
        // etcd without a stored anchor: built afresh whatever came before, as on a new node.
        let facts = EtcdFacts::default();
        assert_eq!(*anchors(&two, Some(&facts), &a)[&key()].anchor, fresh);
        // etcd with one: that one.
        let mut facts = EtcdFacts::default();
        facts
            .anchors
            .insert(key().to_string(), Arc::clone(&derived[&key()].anchor));
        let stored = anchors(&two, Some(&facts), &Anchors::new());
        assert!(Arc::ptr_eq(&stored[&key()].anchor, &derived[&key()].anchor));
        // A registered member is a live backend, not part of the anchor.
        let mut facts = EtcdFacts::default();
        facts.registered.insert(("m".into(), "b3.".into()));
        assert_eq!(
            anchors(&three, Some(&facts), &Anchors::new())[&key()]
                .set
                .len(),
            2
        );
    }
}
