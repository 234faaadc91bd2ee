//! Decoding `nft -j list table …` output into what our table holds: the service registry (the
//! `svc4`/`svc6` verdict maps, whose element comments carry each service's settings), the
//! destination maps (`dst4`/`dst6`, element comments carry the owning service), weights, slots
//! and counters. The input comes from another process and is treated as hostile: every shape is
//! checked, nothing panics, and anything we cannot read is reported as a problem rather than
//! guessed (see the `nft_json` fuzz target).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, SocketAddr};

use serde_json::Value;

use crate::model::{Protocol, Scheduler, ServiceKey};

/// A packet/byte counter.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// Packets.
    pub packets: u64,
    /// Bytes.
    pub bytes: u64,
}

/// A service's settings and slot range, from its registry comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SvcMeta {
    /// Service id (names its chain `s<sid>` and sticky map `k<sid>`).
    pub sid: u32,
    /// Scheduler.
    pub sched: Scheduler,
    /// Persistence timeout in seconds (0: none).
    pub persist: u32,
    /// First slot of the reserved range.
    pub off: u32,
    /// Slots reserved.
    pub cap: u32,
    /// Slots in use (the `mod` of the scheduler rule).
    pub n: u32,
    /// Seesaw's `one_packet` (DSR only): every datagram is scheduled on its own, no flow map.
    pub ops: bool,
    /// Tunnel mode (in the DSR table): destinations are reached through IPIP devices.
    pub tun: bool,
}

/// One destination record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DstRec {
    /// The owning service id.
    pub sid: u32,
    /// Address and port.
    pub addr: SocketAddr,
    /// The map element's counter (NAT: new connections; DSR: packets and bytes).
    pub counter: Counter,
    /// A tunnel-mode destination: `tdev` holds its device under the same id.
    pub tun: bool,
}

/// What one of our tables holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableState {
    /// Chains by name.
    pub chains: BTreeSet<String>,
    /// Sets and maps by name.
    pub sets: BTreeSet<String>,
    /// Rules per chain.
    pub rules: BTreeMap<String, usize>,
    /// The service registry (VIP:port services from `svc4`/`svc6`, firewall-mark services
    /// from `fwm4`/`fwm6`).
    pub services: BTreeMap<ServiceKey, SvcMeta>,
    /// Marked tuples: `svc4`/`svc6` elements commented `fwm=<mark>`, which send a VIP:port
    /// into that firewall-mark service's chain.
    pub marked: BTreeMap<ServiceKey, u32>,
    /// Destinations by id (written through [`TableState::add_dest`] and
    /// [`TableState::remove_dest`], which keep `by_sid`).
    pub dests: BTreeMap<u32, DstRec>,
    /// The destination ids of each service id: a service's destinations are found without
    /// walking every destination of the table (100,000 at 10,000 × 10).
    pub by_sid: BTreeMap<u32, BTreeSet<u32>>,
    /// Weights by destination id.
    pub weights: BTreeMap<u32, u32>,
    /// Slot → destination id.
    pub slots: BTreeMap<u32, u32>,
    /// Per destination id: client → backend traffic (NAT).
    pub cin: BTreeMap<u32, Counter>,
    /// Per destination id: backend → client traffic (NAT).
    pub cout: BTreeMap<u32, Counter>,
    /// What could not be decoded.
    pub problems: Vec<String>,
}

impl TableState {
    /// Records destination `id`.
    pub fn add_dest(&mut self, id: u32, rec: DstRec) {
        if let Some(old) = self.dests.insert(id, rec) {
            self.unindex(old.sid, id);
        }
        self.by_sid.entry(rec.sid).or_default().insert(id);
    }

    /// Forgets destination `id`.
    pub fn remove_dest(&mut self, id: u32) -> Option<DstRec> {
        let old = self.dests.remove(&id)?;
        self.unindex(old.sid, id);
        Some(old)
    }

    fn unindex(&mut self, sid: u32, id: u32) {
        if let Some(ids) = self.by_sid.get_mut(&sid) {
            ids.remove(&id);
            if ids.is_empty() {
                self.by_sid.remove(&sid);
            }
        }
    }
}

/// Why the listing could not be decoded at all.
#[derive(Debug, thiserror::Error)]
pub enum NftParseError {
    /// Not JSON.
    #[error("nft output is not JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON, but not an nftables document.
    #[error("nft output has no \"nftables\" array")]
    Shape,
}

/// The registry comment of a service.
pub fn svc_comment(m: &SvcMeta) -> String {
    format!(
        "sid={} sch={} p={} so={} sc={} sn={}{}{}",
        m.sid,
        m.sched.name(),
        m.persist,
        m.off,
        m.cap,
        m.n,
        if m.ops { " o=1" } else { "" },
        if m.tun { " m=tun" } else { "" }
    )
}

/// Parses a registry comment.
pub fn parse_svc_comment(c: &str) -> Option<SvcMeta> {
    let kv = comment_fields(c);
    let num = |k: &str| kv.get(k).and_then(|v| v.parse::<u32>().ok());
    Some(SvcMeta {
        sid: num("sid")?,
        sched: Scheduler::from_name(kv.get("sch")?)?,
        persist: num("p")?,
        off: num("so")?,
        cap: num("sc")?,
        n: num("sn")?,
        // Absent in tables written before one_packet was kept: off.
        ops: kv.get("o") == Some(&"1"),
        tun: kv.get("m") == Some(&"tun"),
    })
}

fn comment_fields(c: &str) -> BTreeMap<&str, &str> {
    c.split_ascii_whitespace()
        .filter_map(|f| f.split_once('='))
        .collect()
}

/// Decodes the JSON listing of one table. An empty string means the table does not exist.
pub fn parse_table(json: &str) -> Result<TableState, NftParseError> {
    let mut st = TableState::default();
    if json.trim().is_empty() {
        return Ok(st);
    }
    let doc: Value = serde_json::from_str(json)?;
    let items = doc
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or(NftParseError::Shape)?;
    for item in items {
        if let Some(c) = item.get("chain") {
            if let Some(name) = c.get("name").and_then(Value::as_str) {
                st.chains.insert(name.to_owned());
            }
        } else if let Some(r) = item.get("rule") {
            if let Some(chain) = r.get("chain").and_then(Value::as_str) {
                *st.rules.entry(chain.to_owned()).or_default() += 1;
            }
        } else if let Some(m) = item.get("map").or_else(|| item.get("set")) {
            let Some(name) = m.get("name").and_then(Value::as_str) else {
                continue;
            };
            st.sets.insert(name.to_owned());
            let elems = m.get("elem").and_then(Value::as_array);
            for e in elems.into_iter().flatten() {
                decode_elem(&mut st, name, e);
            }
        }
    }
    Ok(st)
}

/// An element's key part: the value, its comment and its counter.
struct Key<'a> {
    val: &'a Value,
    comment: Option<&'a str>,
    counter: Counter,
}

fn key_of(v: &Value) -> Key<'_> {
    match v.get("elem") {
        Some(e) => Key {
            val: e.get("val").unwrap_or(&Value::Null),
            comment: e.get("comment").and_then(Value::as_str),
            counter: e.get("counter").map(counter_of).unwrap_or_default(),
        },
        None => Key {
            val: v,
            comment: None,
            counter: Counter::default(),
        },
    }
}

fn counter_of(v: &Value) -> Counter {
    Counter {
        packets: v.get("packets").and_then(Value::as_u64).unwrap_or(0),
        bytes: v.get("bytes").and_then(Value::as_u64).unwrap_or(0),
    }
}

fn as_u32(v: &Value) -> Option<u32> {
    v.as_u64().and_then(|x| u32::try_from(x).ok())
}

fn jump_target(d: &Value) -> Option<&str> {
    d.get("jump")
        .and_then(|j| j.get("target"))
        .and_then(Value::as_str)
}

fn decode_elem(st: &mut TableState, map: &str, e: &Value) {
    let pair = e.as_array().filter(|a| a.len() == 2);
    let (k, data) = match pair {
        Some(a) => (key_of(&a[0]), Some(&a[1])),
        None => (key_of(e), None),
    };
    let bad = |st: &mut TableState| {
        st.problems
            .push(format!("{map}: cannot decode element {e}"))
    };
    match (map, data) {
        ("svc4" | "svc6", Some(d)) => {
            let key = k.val.get("concat").and_then(Value::as_array).and_then(|c| {
                let [a, p, port] = c.as_slice() else {
                    return None;
                };
                let vip: IpAddr = a.as_str()?.parse().ok()?;
                let proto = match p {
                    Value::String(s) if s == "tcp" => Protocol::Tcp,
                    Value::String(s) if s == "udp" => Protocol::Udp,
                    Value::Number(n) if n.as_u64() == Some(6) => Protocol::Tcp,
                    Value::Number(n) if n.as_u64() == Some(17) => Protocol::Udp,
                    _ => return None,
                };
                let port = u16::try_from(port.as_u64()?).ok()?;
                Some(ServiceKey::new(vip, proto, port))
            });
            let meta = k.comment.and_then(parse_svc_comment);
            let fwm = k.comment.and_then(|c| {
                comment_fields(c)
                    .get("fwm")
                    .and_then(|m| m.parse::<u32>().ok())
                    .filter(|m| *m != 0)
            });
            let target = jump_target(d);
            match (key, meta, fwm, target) {
                (Some(key), Some(meta), None, Some(t)) if t == format!("s{}", meta.sid) => {
                    st.services.insert(key, meta);
                }
                (Some(key), None, Some(mark), Some(t)) if t.starts_with('s') => {
                    st.marked.insert(key, mark);
                }
                _ => bad(st),
            }
        }
        ("fwm4" | "fwm6", Some(d)) => {
            let mark = as_u32(k.val).filter(|m| *m != 0);
            let meta = k.comment.and_then(parse_svc_comment);
            match (mark, meta, jump_target(d)) {
                (Some(mark), Some(meta), Some(t)) if t == format!("s{}", meta.sid) => {
                    st.services
                        .insert(ServiceKey::fwmark(map == "fwm6", mark), meta);
                }
                _ => bad(st),
            }
        }
        ("dst4" | "dst6" | "dnp4" | "dnp6", Some(d)) => {
            let id = as_u32(k.val);
            let sid = k
                .comment
                .and_then(|c| comment_fields(c).get("sid").and_then(|s| s.parse().ok()));
            let port_c = k
                .comment
                .and_then(|c| comment_fields(c).get("port").and_then(|s| s.parse().ok()));
            let tun = k
                .comment
                .is_some_and(|c| comment_fields(c).get("t") == Some(&"1"));
            let addr = match d {
                Value::Object(_) => d.get("concat").and_then(Value::as_array).and_then(|c| {
                    let [a, p] = c.as_slice() else {
                        return None;
                    };
                    let ip: IpAddr = a.as_str()?.parse().ok()?;
                    Some(SocketAddr::new(ip, u16::try_from(p.as_u64()?).ok()?))
                }),
                Value::String(s) => s
                    .parse::<IpAddr>()
                    .ok()
                    .zip(port_c)
                    .map(|(ip, p)| SocketAddr::new(ip, p)),
                _ => None,
            };
            match (id, sid, addr) {
                (Some(id), Some(sid), Some(addr)) => {
                    st.add_dest(
                        id,
                        DstRec {
                            sid,
                            addr,
                            counter: k.counter,
                            tun,
                        },
                    );
                }
                _ => bad(st),
            }
        }
        ("weights" | "slot", Some(d)) => match (as_u32(k.val), as_u32(d)) {
            (Some(a), Some(b)) if map == "weights" => {
                st.weights.insert(a, b);
            }
            (Some(a), Some(b)) if a & super::SLOT_MASK == super::SLOT_BASE => {
                st.slots.insert(a - super::SLOT_BASE, b);
            }
            _ => bad(st),
        },
        ("cin" | "cout", None) => match as_u32(k.val) {
            Some(id) if map == "cin" => {
                st.cin.insert(id, k.counter);
            }
            Some(id) => {
                st.cout.insert(id, k.counter);
            }
            None => bad(st),
        },
        // Sticky maps (`k<sid>`) hold client state we never need to read back; `tdev` follows
        // the the `t=1` destinations destinations (written and deleted with them).
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_registry_destinations_slots_and_counters() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"table": {"family": "inet", "name": "seesaw", "handle": 1}},
          {"map": {"family": "inet", "name": "svc4", "table": "seesaw", "type": ["ipv4_addr", "inet_proto", "inet_service"], "handle": 6, "map": "verdict",
             "elem": [[{"elem": {"val": {"concat": ["198.51.100.1", "tcp", 80]}, "comment": "sid=3 sch=wrr p=0 so=8 sc=8 sn=3"}}, {"jump": {"target": "s3"}}],
                      [{"concat": ["198.51.100.9", "udp", 53]}, {"jump": {"target": "s4"}}]]}},
          {"map": {"family": "inet", "name": "dst4", "table": "seesaw", "type": "mark", "map": "ipv4_addr . inet_service",
             "elem": [[{"elem": {"val": 1592786945, "comment": "sid=3", "counter": {"packets": 7, "bytes": 420}}}, {"concat": ["10.0.0.1", 8080]}]]}},
          {"map": {"family": "inet", "name": "slot", "table": "seesaw", "type": "mark", "map": "mark", "elem": [[805306376, 1592786945], [805306377, 1592786945], [9, 1592786945]]}},
          {"map": {"family": "inet", "name": "weights", "table": "seesaw", "type": "mark", "map": "mark", "elem": [[1592786945, 2]]}},
          {"set": {"family": "inet", "name": "cin", "table": "seesaw", "type": "mark", "elem": [{"elem": {"val": 1592786945, "counter": {"packets": 3, "bytes": 99}}}]}},
          {"chain": {"family": "inet", "table": "seesaw", "name": "s3", "handle": 1}},
          {"rule": {"family": "inet", "table": "seesaw", "chain": "s3", "handle": 9, "expr": []}}]}"#;
        let st = parse_table(json).unwrap();
        let key = ServiceKey {
            vip: "198.51.100.1".parse().unwrap(),
            proto: Protocol::Tcp,
            port: 80,
            fwmark: 0,
        };
        assert_eq!(
            st.services.get(&key),
            Some(&SvcMeta {
                sid: 3,
                sched: Scheduler::Wrr,
                persist: 0,
                off: 8,
                cap: 8,
                n: 3,
                ops: false,
                tun: false,
            })
        );
        assert_eq!(
            st.services.len(),
            1,
            "the element without a comment is a problem"
        );
        assert_eq!(
            st.problems.len(),
            2,
            "and so is a slot outside the slot range"
        );
        let d = st.dests[&1_592_786_945];
        assert_eq!(d.addr, "10.0.0.1:8080".parse().unwrap());
        assert_eq!(d.counter.packets, 7);
        assert_eq!(st.slots.get(&8), Some(&1_592_786_945));
        assert_eq!(st.slots.len(), 2);
        assert_eq!(st.weights[&1_592_786_945], 2);
        assert_eq!(st.cin[&1_592_786_945].bytes, 99);
        assert_eq!(st.rules["s3"], 1);
        assert!(st.chains.contains("s3"));
    }

    #[test]
    fn hostile_inputs_are_errors_or_problems_never_panics() {
        for bad in [
            "{",
            "[]",
            "{\"nftables\": 3}",
            "{\"nftables\": [{\"map\": {\"name\": \"svc4\", \"elem\": [[1], 2, [{\"elem\": 1}, {}]]}}]}",
            "{\"nftables\": [{\"map\": {\"name\": \"dst4\", \"elem\": [[{\"elem\": {\"val\": 99999999999, \"comment\": \"sid=x\"}}, \"::1\"]]}}]}",
            "{\"nftables\": [{\"map\": {\"name\": \"slot\", \"elem\": [[-1, 2], [1, \"a\"]]}}]}",
        ] {
            if let Ok(st) = parse_table(bad) {
                assert!(st.services.is_empty() && st.dests.is_empty() && st.slots.is_empty());
            }
        }
        assert!(parse_svc_comment("sid=1 sch=nope p=0 so=0 sc=8 sn=1").is_none());
        assert!(parse_svc_comment("sid=4294967296 sch=rr p=0 so=0 sc=8 sn=1").is_none());
    }
}
