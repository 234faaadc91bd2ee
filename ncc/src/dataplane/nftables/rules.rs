//! The rule text of the plane's chains, purely: a service chain `s<sid>` (sticky lookup, then
//! the scheduler's slot), its after-chain `a<sid>` (sticky-map update), the shared dispatch
//! chains (`pre`/`out` NAT, `in` DSR), the DSR table's `eg` chain for marked local probes, and
//! the base objects every transaction re-declares idempotently. [`super::script`] decides
//! which of these a transaction writes.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::parse::{SvcMeta, TableState};
use super::wire::Expr;
use super::{DID_BASE, DID_MASK, DSR_FLOW_TIMEOUT_S, RESCHEDULE, SLOT_BASE, SLOT_MASK, Table, ipf};
use crate::kernel::uapi::{
    NFT_CMP_EQ, NFT_CMP_NEQ, NFT_META_MARK, NFT_META_NFPROTO, NFT_META_PROTOCOL,
    NFT_PAYLOAD_NETWORK_HEADER, NFT_PAYLOAD_TRANSPORT_HEADER, NFT_REG_1, NFT_REG_2, NFT_REG32_01,
};
use crate::model::Scheduler;

/// The fixed `jhash` seed (the same on every node and after every restart).
pub const HASH_SEED: u32 = 0x5ee5_a11e;

/// The sticky map of a service, if it keeps client state: (name, key expression, key type,
/// timeout). Persistence keys on the client address; DSR rr/wrr/random/lc/wlc keep each flow
/// (client address and port) on its backend — except with `one_packet`, which schedules every
/// datagram on its own — since the netdev hook has no conntrack (and lc/wlc
/// re-cut their slots several times a second: without the map a flow's next packet could land
/// elsewhere). The map is the service's own (`k<sid>t<secs>`) and bound only by its own
/// chains: nft 1.0.6 cannot update a map whose key is longer than 16 bytes, which rules out
/// one shared map keyed by the service, and also an IPv6 flow key (address and port, 20
/// bytes): IPv6 DSR lc/wlc keep each *client* on its backend instead (`…c`, keyed by the
/// address alone), while IPv6 DSR rr/wrr/random stay refused ([`sticky_key_fits`]).
pub(super) fn sticky(t: Table, vip: IpAddr, m: &SvcMeta) -> Option<(String, String, String, u32)> {
    let ip = ipf(vip);
    let at = if vip.is_ipv4() {
        "ipv4_addr"
    } else {
        "ipv6_addr"
    };
    if m.persist > 0 {
        return Some((
            format!("k{}t{}", m.sid, m.persist),
            format!("{ip} saddr"),
            at.to_owned(),
            m.persist,
        ));
    }
    if t == Table::Dsr && m.ops {
        // Seesaw's one_packet: every datagram is scheduled on its own.
        return None;
    }
    let least = matches!(m.sched, Scheduler::Lc | Scheduler::Wlc);
    if t == Table::Dsr && least && vip.is_ipv6() {
        // `c`: per client, never the name of a persistence or flow map of the same timeout.
        return Some((
            format!("k{}t{}c", m.sid, DSR_FLOW_TIMEOUT_S),
            format!("{ip} saddr"),
            at.to_owned(),
            DSR_FLOW_TIMEOUT_S,
        ));
    }
    if t == Table::Dsr
        && (least || matches!(m.sched, Scheduler::Rr | Scheduler::Wrr | Scheduler::Random))
    {
        // `f`: a flow map, never the name of a persistence map of the same timeout (their key
        // types differ, and a service switching between the two must get a new map).
        return Some((
            format!("k{}t{}f", m.sid, DSR_FLOW_TIMEOUT_S),
            format!("{ip} saddr . th sport"),
            format!("{at} . inet_service"),
            DSR_FLOW_TIMEOUT_S,
        ));
    }
    None
}

/// Whether a service's flow state fits a dynamic map nft can update (see [`sticky`]).
pub fn sticky_key_fits(t: Table, vip: IpAddr, m: &SvcMeta) -> bool {
    sticky(t, vip, m).is_none_or(|(_, key, _, _)| !(vip.is_ipv6() && key.contains("sport")))
}

/// The conntrack (NAT) or packet (DSR) mark that carries a flow's slot and then its
/// destination id through the dispatch chain.
fn reg(t: Table) -> &'static str {
    match t {
        Table::Nat => "ct mark",
        Table::Dsr => "meta mark",
    }
}

/// One rule of a service chain (see [`rules`]): its text in a script (`Display`) and its
/// expressions in a netlink batch ([`SvcRule::exprs`]) come from this one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SvcRule {
    /// `meta mark set <mark>` (a NAT firewall-mark service).
    SetMark(u32),
    /// The lookup of the client in the service's sticky map `map`: its key is the source
    /// address, or (`flow`) the source address and port.
    Sticky {
        /// The table (NAT keeps the result in the conntrack mark, DSR in the packet mark).
        t: Table,
        /// An IPv6 service.
        v6: bool,
        /// Keyed by address and port.
        flow: bool,
        /// The map's name.
        map: String,
    },
    /// The scheduler: the flow's slot `offset + (how) mod n` into the mark.
    Schedule {
        /// The table.
        t: Table,
        /// How the slot is picked.
        how: Pick,
        /// Slots in use.
        n: u32,
        /// [`SLOT_BASE`] plus the service's first slot.
        offset: u32,
    },
}

/// How a service chain picks a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pick {
    /// `numgen inc` (rr, wrr, lc, wlc).
    Inc,
    /// `numgen random`.
    Random,
    /// `jhash` of the source (`daddr` false: sh, mh) or destination (dh) address.
    Jhash {
        /// An IPv6 service.
        v6: bool,
        /// Hash the destination address.
        daddr: bool,
    },
}

fn ipv(v6: bool) -> &'static str {
    if v6 { "ip6" } else { "ip" }
}

impl std::fmt::Display for SvcRule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::SetMark(m) => write!(f, "meta mark set {m:#x}"),
            Self::Sticky { t, v6, flow, map } => {
                let r = reg(*t);
                let sport = if *flow { " . th sport" } else { "" };
                write!(
                    f,
                    "{r} != {RESCHEDULE:#x} {r} set {} saddr{sport} map @{map} return",
                    ipv(*v6)
                )
            }
            Self::Schedule { t, how, n, offset } => {
                let r = reg(*t);
                match how {
                    Pick::Inc => write!(f, "{r} set numgen inc mod {n} offset {offset:#x}"),
                    Pick::Random => write!(f, "{r} set numgen random mod {n} offset {offset:#x}"),
                    Pick::Jhash { v6, daddr } => write!(
                        f,
                        "{r} set jhash {} {} mod {n} seed {HASH_SEED:#x} offset {offset:#x}",
                        ipv(*v6),
                        if *daddr { "daddr" } else { "saddr" }
                    ),
                }
            }
        }
    }
}

impl SvcRule {
    /// The expressions nft 1.0.6 writes for this rule (`nft --debug=netlink`), including the
    /// family check it adds before an address is read (`meta nfproto` in the `inet` table,
    /// `meta protocol` in `netdev`).
    pub fn exprs(&self) -> Vec<Expr> {
        // The mark a service chain works in: the conntrack mark (NAT), the packet mark (DSR).
        let mark = |t: Table, set: bool| match t {
            Table::Nat => Expr::Ct {
                key: NFT_META_MARK,
                reg: NFT_REG_1,
                set,
            },
            Table::Dsr => Expr::Meta {
                key: NFT_META_MARK,
                reg: NFT_REG_1,
                set,
            },
        };
        let family = |t: Table, v6: bool| {
            let (key, data) = match t {
                Table::Nat => (NFT_META_NFPROTO, vec![if v6 { 10 } else { 2 }]),
                Table::Dsr => (
                    NFT_META_PROTOCOL,
                    if v6 { 0x86ddu16 } else { 0x0800 }.to_be_bytes().to_vec(),
                ),
            };
            [
                Expr::Meta {
                    key,
                    reg: NFT_REG_1,
                    set: false,
                },
                Expr::Cmp {
                    sreg: NFT_REG_1,
                    op: NFT_CMP_EQ,
                    data,
                },
            ]
        };
        let addr = |dreg: u32, v6: bool, daddr: bool| Expr::Payload {
            dreg,
            base: NFT_PAYLOAD_NETWORK_HEADER,
            offset: match (v6, daddr) {
                (false, false) => 12,
                (false, true) => 16,
                (true, false) => 8,
                (true, true) => 24,
            },
            len: if v6 { 16 } else { 4 },
        };
        match self {
            Self::SetMark(m) => vec![
                Expr::Value {
                    dreg: NFT_REG_1,
                    data: m.to_ne_bytes().to_vec(),
                },
                // The packet mark, in either table (Seesaw's mangle rules set it).
                Expr::Meta {
                    key: NFT_META_MARK,
                    reg: NFT_REG_1,
                    set: true,
                },
            ],
            Self::Sticky { t, v6, flow, map } => {
                let mut v = vec![
                    mark(*t, false),
                    Expr::Cmp {
                        sreg: NFT_REG_1,
                        op: NFT_CMP_NEQ,
                        data: RESCHEDULE.to_ne_bytes().to_vec(),
                    },
                ];
                v.extend(family(*t, *v6));
                v.push(addr(NFT_REG_1, *v6, false));
                if *flow {
                    v.push(Expr::Payload {
                        dreg: NFT_REG32_01,
                        base: NFT_PAYLOAD_TRANSPORT_HEADER,
                        offset: 0,
                        len: 2,
                    });
                }
                v.push(Expr::Lookup {
                    set: map.clone(),
                    sreg: NFT_REG_1,
                    dreg: NFT_REG_1,
                });
                v.push(mark(*t, true));
                v.push(Expr::Return);
                v
            }
            Self::Schedule { t, how, n, offset } => {
                let mut v = Vec::new();
                match how {
                    Pick::Inc | Pick::Random => v.push(Expr::Numgen {
                        dreg: NFT_REG_1,
                        modulus: *n,
                        random: *how == Pick::Random,
                        offset: *offset,
                    }),
                    Pick::Jhash { v6, daddr } => {
                        v.extend(family(*t, *v6));
                        v.push(addr(NFT_REG_2, *v6, *daddr));
                        v.push(Expr::Jhash {
                            sreg: NFT_REG_2,
                            dreg: NFT_REG_1,
                            len: if *v6 { 16 } else { 4 },
                            modulus: *n,
                            seed: HASH_SEED,
                            offset: *offset,
                        });
                    }
                }
                v.push(mark(*t, true));
                v
            }
        }
    }
}

/// The rules of a service chain `s<sid>`: a rule computing the flow's slot (tagged with
/// [`SLOT_BASE`]) into the mark, after (for services with client state) a lookup of the client
/// in the service's own sticky map that returns its destination id (skipped on the dispatch
/// chain's second pass, marked [`RESCHEDULE`]). The chain binds no shared map, so adding it
/// costs the same with 1 or 10,000 services; the dispatch chain resolves slot → destination
/// once for all services. A NAT firewall-mark service's chain first sets the packet mark to
/// its `fwmark`, so packets it takes by VIP:port carry the mark as Seesaw's mangle rules made
/// them (the DSR table cannot: there the packet mark is the dispatch register).
pub fn rules(t: Table, vip: IpAddr, fwmark: u32, m: &SvcMeta) -> Vec<SvcRule> {
    if m.n == 0 {
        return Vec::new();
    }
    let v6 = vip.is_ipv6();
    let offset = SLOT_BASE.wrapping_add(m.off);
    let how = match m.sched {
        Scheduler::Rr | Scheduler::Wrr | Scheduler::Lc | Scheduler::Wlc => Pick::Inc,
        Scheduler::Sh | Scheduler::Mh => Pick::Jhash { v6, daddr: false },
        Scheduler::Random => Pick::Random,
        Scheduler::Dh => Pick::Jhash { v6, daddr: true },
        Scheduler::P2c => return Vec::new(),
    };
    let mut out = Vec::new();
    if t == Table::Nat && fwmark != 0 {
        out.push(SvcRule::SetMark(fwmark));
    }
    if let Some((map, key, _, _)) = sticky(t, vip, m) {
        out.push(SvcRule::Sticky {
            t,
            v6,
            flow: key.contains("sport"),
            map,
        });
    }
    out.push(SvcRule::Schedule {
        t,
        how,
        n: m.n,
        offset,
    });
    out
}

/// The rules of a service's after-chain `a<sid>` (run once the destination is known): the
/// update of its sticky map with the service's own timeout. Empty when it keeps no state.
pub fn after_rules(t: Table, vip: IpAddr, m: &SvcMeta) -> Vec<String> {
    match sticky(t, vip, m) {
        Some((map, key, _, _)) if m.n > 0 => {
            vec![format!("update @{map} {{ {key} : {} }}", reg(t))]
        }
        _ => Vec::new(),
    }
}

/// The rules of a dispatch chain (`pre`/`out` for NAT, `in` for DSR). One pass: look the
/// service up (verdict map → `s<sid>` puts a slot, or a sticky destination id, in the mark),
/// resolve slot → destination id, run the service's after-chain, then DNAT/forward to the
/// destination. DNAT and `fwd` end evaluation, so the rules after the first pass run only when
/// its destination is gone (a sticky entry naming a deleted destination): the mark becomes
/// [`RESCHEDULE`] and a second pass, in which service chains skip their sticky lookup,
/// schedules afresh (and the after-chain repairs the entry). Every shared map is bound by
/// these few rules only.
pub fn dispatch_rules(t: Table, lb: Option<&str>) -> Vec<String> {
    let r = reg(t);
    let slot = format!("{r} and {SLOT_MASK:#x} == {SLOT_BASE:#x}");
    let did = format!("{r} and {DID_MASK:#x} == {DID_BASE:#x}");
    let fams = [("ip", "4"), ("ip6", "6")];
    let svc = |ip: &str| format!("{ip} daddr . meta l4proto . th dport");
    let pass = |out: &mut Vec<String>| {
        if t == Table::Nat {
            // Firewall-mark services first, as IPVS looks them up first.
            for (nf, v) in [("ipv4", "4"), ("ipv6", "6")] {
                out.push(format!("meta nfproto {nf} meta mark vmap @fwm{v}"));
            }
        }
        for (ip, v) in fams {
            out.push(format!("{} vmap @svc{v}", svc(ip)));
        }
        out.push(format!("{slot} {r} set {r} map @slot"));
        for (ip, v) in fams {
            out.push(format!("{did} {} vmap @aft{v}", svc(ip)));
        }
        for (ip, v) in fams {
            match t {
                Table::Nat => out.push(format!(
                    "{did} meta l4proto {{ tcp, udp }} dnat {ip} to ct mark map @dst{v}"
                )),
                Table::Dsr => {
                    // Tunnel-mode destinations first: their device comes from `tdev` (a
                    // miss ends the rule, and the packet goes on to the DSR rule).
                    out.push(format!(
                        "{did} fwd {ip} to meta mark map @dst{v} device meta mark map @tdev"
                    ));
                    out.push(format!(
                        "{did} fwd {ip} to meta mark map @dst{v} device \"{}\"",
                        lb.unwrap_or("lo")
                    ));
                }
            }
        }
    };
    let dnat_keep_port = |out: &mut Vec<String>| {
        if t == Table::Nat {
            // A firewall-mark service's destinations keep the packet's port (and protocol).
            for (ip, v) in fams {
                out.push(format!("{did} dnat {ip} to ct mark map @dnp{v}"));
            }
        }
    };
    let mut out = Vec::new();
    if t == Table::Dsr {
        // Only frames addressed to this node: a switch floods unknown unicast (e.g. frames for
        // a node whose link just went down) to every port, and every node forwarding its copy
        // would hand the backends duplicates (`scale_out` lab).
        out.push("meta pkttype != host accept".to_owned());
    }
    pass(&mut out);
    dnat_keep_port(&mut out);
    out.push(format!("{did} {r} set {RESCHEDULE:#x}"));
    pass(&mut out);
    dnat_keep_port(&mut out);
    out
}

/// The rules of the DSR table's `eg` chain (netdev egress of `lo`): locally generated packets
/// that carry a firewall-mark service's mark (a health-check probe's `SO_MARK`, connected to a
/// VIP that is local on this node and therefore routed through `lo`) are scheduled by that
/// service and forwarded, unchanged, to the chosen destination's MAC on the LB interface: the
/// probe reaches exactly the backend that client traffic for the VIP would, the way IPVS
/// catches marked local packets. A packet the service took but could not forward (a sticky
/// entry naming a destination that is gone) is dropped rather than delivered to the local VIP,
/// which would answer for the backend.
pub fn egress_rules(lb: &str) -> Vec<String> {
    let r = reg(Table::Dsr);
    let slot = format!("{r} and {SLOT_MASK:#x} == {SLOT_BASE:#x}");
    let did = format!("{r} and {DID_MASK:#x} == {DID_BASE:#x}");
    let mut out = Vec::new();
    for (p, v) in [("ip", "4"), ("ip6", "6")] {
        out.push(format!("meta protocol {p} meta mark vmap @fwm{v}"));
    }
    out.push(format!("{slot} {r} set {r} map @slot"));
    for (ip, v) in [("ip", "4"), ("ip6", "6")] {
        out.push(format!(
            "{did} meta protocol {ip} fwd {ip} to meta mark map @dst{v} device meta mark map @tdev"
        ));
        out.push(format!(
            "{did} meta protocol {ip} fwd {ip} to meta mark map @dst{v} device \"{lb}\""
        ));
    }
    out.push(format!("{slot} drop"));
    out.push(format!("{did} drop"));
    out
}

/// The maps both tables hold: the registries, slots and weights.
pub(super) fn base_maps(out: &mut String, t: &str) {
    let svc = |a: &str| format!("{a} . inet_proto . inet_service");
    for (v, a) in [("4", "ipv4_addr"), ("6", "ipv6_addr")] {
        let _ = writeln!(out, "add map {t} svc{v} {{ type {} : verdict; }}", svc(a));
        let _ = writeln!(out, "add map {t} aft{v} {{ type {} : verdict; }}", svc(a));
    }
    for v in ["4", "6"] {
        let _ = writeln!(out, "add map {t} fwm{v} {{ type mark : verdict; }}");
    }
    let _ = writeln!(out, "add map {t} slot {{ type mark : mark; }}");
    let _ = writeln!(out, "add map {t} weights {{ type mark : mark; }}");
}

/// The maps and sets [`base_maps`] and [`base_nat`]/[`base_dsr`] declare in table `t`.
pub(super) fn base_sets(t: Table) -> Vec<&'static str> {
    let mut v = vec![
        "svc4", "aft4", "svc6", "aft6", "fwm4", "fwm6", "slot", "weights", "dst4", "dst6",
    ];
    match t {
        Table::Nat => v.extend(["dnp4", "dnp6", "cin", "cout"]),
        Table::Dsr => v.push("tdev"),
    }
    v
}

/// The base chains of table `t` and their rules.
fn base_chains(t: Table, lb: &str) -> Vec<(&'static str, Vec<String>)> {
    match t {
        Table::Nat => {
            let ours = format!("ct mark and {DID_MASK:#x} == {DID_BASE:#x}");
            vec![
                ("pre", dispatch_rules(Table::Nat, None)),
                ("out", dispatch_rules(Table::Nat, None)),
                ("post", vec![format!("ct status dnat {ours} masquerade")]),
                (
                    "forward",
                    vec![
                        format!("{ours} ct direction original ct mark @cin"),
                        format!("{ours} ct direction reply ct mark @cout"),
                    ],
                ),
            ]
        }
        Table::Dsr => vec![
            ("in", dispatch_rules(Table::Dsr, Some(lb))),
            ("eg", egress_rules(lb)),
        ],
    }
}

/// Records in `st` the base objects a script declares in table `t` (what the kernel holds
/// after it ran).
pub(super) fn base_record(st: &mut TableState, t: Table) {
    for s in base_sets(t) {
        st.sets.insert(s.to_owned());
    }
    for (c, rules) in base_chains(t, "lo") {
        st.chains.insert(c.to_owned());
        st.rules.insert(c.to_owned(), rules.len());
    }
}

/// Whether `st` holds every base object of table `t` as a script would declare it (the maps,
/// sets and base chains, each chain with its rules): then a transaction need not re-declare
/// them.
pub(super) fn base_held(st: &TableState, t: Table) -> bool {
    base_sets(t).iter().all(|s| st.sets.contains(*s))
        && base_chains(t, "lo")
            .iter()
            .all(|(c, r)| st.chains.contains(*c) && st.rules.get(*c) == Some(&r.len()))
}

pub(super) fn base_nat(out: &mut String, st: &TableState) {
    let t = Table::Nat.spec();
    let _ = writeln!(out, "add table {t}");
    base_maps(out, t);
    let _ = write!(
        out,
        "add map {t} dst4 {{ type mark : ipv4_addr . inet_service; counter; }}\n\
         add map {t} dst6 {{ type mark : ipv6_addr . inet_service; counter; }}\n\
         add map {t} dnp4 {{ type mark : ipv4_addr; counter; }}\n\
         add map {t} dnp6 {{ type mark : ipv6_addr; counter; }}\n\
         add set {t} cin {{ type mark; counter; }}\n\
         add set {t} cout {{ type mark; counter; }}\n\
         add chain {t} pre {{ type nat hook prerouting priority -100; policy accept; }}\n\
         add chain {t} out {{ type nat hook output priority -100; policy accept; }}\n\
         add chain {t} post {{ type nat hook postrouting priority 100; policy accept; }}\n\
         add chain {t} forward {{ type filter hook forward priority 0; policy accept; }}\n"
    );
    base_rules(out, t, st, &base_chains(Table::Nat, "lo"));
}

pub(super) fn base_dsr(out: &mut String, st: &TableState, lb: &str) {
    let t = Table::Dsr.spec();
    let _ = writeln!(out, "add table {t}");
    base_maps(out, t);
    let _ = write!(
        out,
        "add map {t} dst4 {{ type mark : ipv4_addr; counter; }}\n\
         add map {t} dst6 {{ type mark : ipv6_addr; counter; }}\n\
         add map {t} tdev {{ type mark : iface_index; }}\n\
         add chain {t} in {{ type filter hook ingress device \"{lb}\" priority 0; policy accept; }}\n\
         add chain {t} eg {{ type filter hook egress device \"lo\" priority 0; policy accept; }}\n"
    );
    base_rules(out, t, st, &base_chains(Table::Dsr, lb));
}

/// Base chains are (re)filled only when their rule count is not what we put there, so a
/// healthy table is never touched.
pub(super) fn base_rules(out: &mut String, t: &str, st: &TableState, want: &[(&str, Vec<String>)]) {
    for (chain, rules) in want {
        if st.rules.get(*chain).copied().unwrap_or(0) == rules.len() {
            continue;
        }
        let _ = writeln!(out, "flush chain {t} {chain}");
        for r in rules {
            let _ = writeln!(out, "add rule {t} {chain} {r}");
        }
    }
}
