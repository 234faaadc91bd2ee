//! Proto ↔ domain conversion for ncc's API, in one place: requests are checked as a whole here
//! (every problem collected) before any plane sees them, and the domain form is turned back into
//! proto for the proxy relay (`seesaw_proxy`) and for `GetState`.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use seesaw_proto::ncc as pb;
use tonic::Status;

use crate::NccError;
use crate::bgp::BgpError;
use crate::dataplane::proxy::rules;
use crate::model::{
    Cond, Dest, Field, ForwardMode, KernelOpts, Op, Protocol, ProxyProtocol, Rule, RuleTarget,
    Scheduler, Service, ServiceKey, ServiceOpts, UdpMode,
};

/// The VIPs of a request, collecting every problem.
pub fn vips_from_pb(vips: &[pb::Vip]) -> Result<Vec<crate::kernel::vips::Vip>, NccError> {
    use crate::kernel::vips::{Vip, VipKind};
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for v in vips {
        let kind = match pb::VipKind::try_from(v.kind) {
            Ok(pb::VipKind::Unicast) => VipKind::Unicast,
            Ok(pb::VipKind::Dedicated) => VipKind::Dedicated,
            Ok(pb::VipKind::Anycast) => VipKind::Anycast,
            _ => {
                errors.push(format!("VIP {}: unknown kind {}", v.address, v.kind));
                continue;
            }
        };
        match v.address.parse::<IpAddr>() {
            Ok(addr) if !addr.is_unspecified() && !addr.is_multicast() => {
                out.push(Vip { addr, kind });
            }
            _ => errors.push(format!("VIP {:?} is not a unicast address", v.address)),
        }
    }
    if errors.is_empty() {
        out.sort();
        out.dedup_by_key(|v| v.addr);
        Ok(out)
    } else {
        Err(NccError::Invalid(errors))
    }
}

/// The LB interface of a request, collecting every problem.
pub fn lb_from_pb(l: &pb::LbInterface) -> Result<crate::kernel::lb::LbWant, NccError> {
    use crate::kernel::lb::{LbWant, VlanWant, vmac};
    let mut errors = Vec::new();
    let opt = |what: &str, v: &str, errors: &mut Vec<String>| -> Option<IpAddr> {
        if v.trim().is_empty() {
            return None;
        }
        match v.trim().parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_loopback() => Some(a),
            _ => {
                errors.push(format!(
                    "lb_interface.{what}: {v:?} is not a unicast address"
                ));
                None
            }
        }
    };
    let cluster_v4 = match opt("cluster_vip_ipv4", &l.cluster_vip_ipv4, &mut errors) {
        Some(IpAddr::V4(a)) => Some(a),
        Some(IpAddr::V6(a)) => {
            errors.push(format!("lb_interface.cluster_vip_ipv4: {a} is IPv6"));
            None
        }
        None => None,
    };
    let cluster_v6 = match opt("cluster_vip_ipv6", &l.cluster_vip_ipv6, &mut errors) {
        Some(IpAddr::V6(a)) => Some(a),
        Some(IpAddr::V4(a)) => {
            errors.push(format!("lb_interface.cluster_vip_ipv6: {a} is IPv4"));
            None
        }
        None => None,
    };
    if !(1..=250).contains(&l.routing_table_id) {
        errors.push(format!(
            "lb_interface.routing_table_id: {} is outside 1..250",
            l.routing_table_id
        ));
    }
    let vrid = u8::try_from(l.vrid).ok().filter(|v| *v > 0);
    if l.use_vmac && vrid.is_none() {
        errors.push(format!("lb_interface.vrid: {} is outside 1..255", l.vrid));
    }
    let host = |what: String, v: &str, errors: &mut Vec<String>| -> Option<(IpAddr, u8)> {
        if v.trim().is_empty() {
            return None;
        }
        let parsed = v.trim().split_once('/').and_then(|(a, p)| {
            let a = a.parse::<IpAddr>().ok()?;
            let p = p.parse::<u8>().ok()?;
            (p <= if a.is_ipv4() { 32 } else { 128 } && !a.is_unspecified()).then_some((a, p))
        });
        if parsed.is_none() {
            errors.push(format!("{what}: {v:?} is not an address/prefix"));
        }
        parsed
    };
    let mut vlans = Vec::new();
    for (i, v) in l.vlans.iter().enumerate() {
        let id = u16::try_from(v.id)
            .ok()
            .filter(|id| (1..=4094).contains(id));
        if id.is_none() {
            errors.push(format!(
                "lb_interface.vlans[{i}].id: {} is outside 1..4094",
                v.id
            ));
        }
        let v4 = match host(
            format!("lb_interface.vlans[{i}].host_ipv4"),
            &v.host_ipv4,
            &mut errors,
        ) {
            Some((IpAddr::V4(a), p)) => Some((a, p)),
            Some(_) => {
                errors.push(format!("lb_interface.vlans[{i}].host_ipv4: not IPv4"));
                None
            }
            None => None,
        };
        let v6 = match host(
            format!("lb_interface.vlans[{i}].host_ipv6"),
            &v.host_ipv6,
            &mut errors,
        ) {
            Some((IpAddr::V6(a), p)) => Some((a, p)),
            Some(_) => {
                errors.push(format!("lb_interface.vlans[{i}].host_ipv6: not IPv6"));
                None
            }
            None => None,
        };
        if let Some(id) = id {
            if vlans.iter().any(|w: &VlanWant| w.id == id) {
                errors.push(format!("lb_interface.vlans[{i}]: duplicate VLAN {id}"));
            }
            vlans.push(VlanWant { id, v4, v6 });
        }
    }
    vlans.sort();
    if !errors.is_empty() {
        return Err(NccError::Invalid(errors));
    }
    Ok(LbWant {
        up: l.up,
        cluster_v4,
        cluster_v6,
        table: l.routing_table_id,
        vmac: if l.use_vmac { vrid.map(vmac) } else { None },
        // Zero is off; anything else at least every 100 ms (no flood from a bad request).
        garp_interval: match l.garp_interval_ms {
            0 => Duration::ZERO,
            ms => Duration::from_millis(u64::from(ms.max(100))),
        },
        vlans,
    })
}

/// Converts the request, collecting every problem.
pub fn services_from_pb(d: pb::DesiredState) -> Result<Vec<Service>, NccError> {
    let mut errors = Vec::new();
    let mut out: Vec<Service> = Vec::with_capacity(d.services.len());
    let mut seen = std::collections::HashSet::with_capacity(d.services.len());
    for (i, s) in d.services.into_iter().enumerate() {
        let path = format!("services[{i}]");
        let vip = s
            .address
            .parse::<IpAddr>()
            .map_err(|_| format!("{path}.address: {:?} is not an IP address", s.address));
        let fwmark = s.fwmark != 0;
        let port = u16::try_from(s.port)
            .ok()
            .filter(|p| (*p > 0) != fwmark)
            .ok_or_else(|| format!("{path}.port: {} is not a port", s.port));
        let proto = match Protocol::from_pb(s.protocol) {
            _ if fwmark => Ok(Protocol::Tcp),
            Some(p) => Ok(p),
            None => Err(format!("{path}.protocol: unspecified")),
        };
        let mut marks = Vec::new();
        for (j, m) in s.marked.iter().enumerate() {
            match marked_from_pb(m) {
                Some(k) => marks.push(k),
                None => errors.push(format!(
                    "{path}.marked[{j}]: {:?} port {} is not a VIP:port tuple",
                    m.address, m.port
                )),
            }
        }
        marks.sort();
        marks.dedup();
        let scheduler =
            Scheduler::from_pb(s.scheduler).ok_or_else(|| format!("{path}.scheduler: unspecified"));
        let mode = ForwardMode::from_pb(s.mode).ok_or_else(|| format!("{path}.mode: unspecified"));
        let opts = opts_from_pb(&path, s.proxy.as_ref(), &s.destinations).map(|mut o| {
            o.kernel = KernelOpts {
                one_packet: s.one_packet,
                lthreshold: s.lthreshold,
                uthreshold: s.uthreshold,
            };
            o
        });
        let group_of = |name: &str| match &opts {
            Ok(o) => o
                .groups
                .iter()
                .position(|g| g == name)
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        let mut dests = Vec::new();
        for (j, d) in s.destinations.iter().enumerate() {
            let ip = d.address.parse::<IpAddr>();
            let p = u16::try_from(d.port).ok().filter(|p| (*p > 0) != fwmark);
            match (ip, p) {
                (Ok(ip), Some(p)) => dests.push(Dest {
                    addr: SocketAddr::new(ip, p),
                    weight: d.weight,
                    group: group_of(&d.group),
                    backup: d.backup,
                }),
                _ => errors.push(format!(
                    "{path}.destinations[{j}]: bad address {:?} or port {}",
                    d.address, d.port
                )),
            }
        }
        dests.sort();
        if dests.windows(2).any(|w| w[0].addr == w[1].addr) {
            errors.push(format!("{path}.destinations: duplicate destination"));
        }
        match (vip, port, proto, scheduler, mode, opts) {
            (Ok(vip), Ok(port), Ok(proto), Ok(scheduler), Ok(mode), Ok(opts)) => {
                let key = ServiceKey {
                    vip,
                    proto,
                    port,
                    fwmark: s.fwmark,
                };
                if fwmark && !vip.is_unspecified() {
                    errors.push(format!(
                        "{path}.address: a firewall-mark service's address is 0.0.0.0 or ::"
                    ));
                }
                if !seen.insert(key) {
                    errors.push(format!("{path}: duplicate service {key}"));
                }
                let anchor = match &s.maglev_anchor {
                    None => None,
                    Some(a) => match seesaw_common::maglev::Anchor::decode(&a.keys, &a.slots) {
                        Ok(a) => Some(std::sync::Arc::new(a)),
                        Err(e) => {
                            errors.push(format!("{path}.maglev_anchor: {e}"));
                            None
                        }
                    },
                };
                out.push(Service {
                    anchor,
                    key,
                    scheduler,
                    mode,
                    persistence: s.persistence_s,
                    dests,
                    opts,
                    marks,
                });
            }
            (a, b, c, e, f, g) => {
                errors.extend(
                    [a.err(), b.err(), c.err(), e.err(), f.err()]
                        .into_iter()
                        .flatten(),
                );
                errors.extend(g.err().into_iter().flatten());
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(NccError::Invalid(errors))
    }
}

/// A delta request's services converted: those to add or replace, and the keys to delete. Every
/// problem is collected, as for a whole request; a key both changed and deleted is one.
pub fn delta_from_pb(
    services: Vec<pb::Service>,
    removed: &[pb::ServiceRef],
) -> Result<(Vec<Service>, Vec<ServiceKey>), NccError> {
    let mut errors = Vec::new();
    let mut keys = Vec::with_capacity(removed.len());
    for (i, r) in removed.iter().enumerate() {
        match service_ref_from_pb(r) {
            Some(k) => keys.push(k),
            None => errors.push(format!(
                "removed[{i}]: {:?} protocol {} port {} mark {} is not a service key",
                r.address, r.protocol, r.port, r.fwmark
            )),
        }
    }
    let upserts = match services_from_pb(pb::DesiredState {
        services,
        ..pb::DesiredState::default()
    }) {
        Ok(u) => u,
        Err(NccError::Invalid(mut e)) => {
            e.append(&mut errors);
            return Err(NccError::Invalid(e));
        }
        Err(e) => return Err(e),
    };
    let changed: std::collections::HashSet<ServiceKey> = upserts.iter().map(|s| s.key).collect();
    errors.extend(
        keys.iter()
            .filter(|k| changed.contains(k))
            .map(|k| format!("removed: {k} is also among the changed services")),
    );
    if errors.is_empty() {
        Ok((upserts, keys))
    } else {
        Err(NccError::Invalid(errors))
    }
}

/// A service key from its reference: address, protocol and port, or the family's unspecified
/// address and a firewall mark (protocol and port unset).
fn service_ref_from_pb(r: &pb::ServiceRef) -> Option<ServiceKey> {
    let vip = r.address.parse::<IpAddr>().ok()?;
    if r.fwmark != 0 {
        return (vip.is_unspecified() && r.port == 0).then_some(ServiceKey {
            vip,
            proto: Protocol::Tcp,
            port: 0,
            fwmark: r.fwmark,
        });
    }
    marked_from_pb(&pb::MarkedPort {
        address: r.address.clone(),
        protocol: r.protocol,
        port: r.port,
    })
}

pub(crate) fn marked_to_pb(k: &ServiceKey) -> pb::MarkedPort {
    pb::MarkedPort {
        address: k.vip.to_string(),
        protocol: pb::Protocol::from(k.proto) as i32,
        port: u32::from(k.port),
    }
}

fn marked_from_pb(m: &pb::MarkedPort) -> Option<ServiceKey> {
    let vip = m.address.parse::<IpAddr>().ok()?;
    let proto = Protocol::from_pb(m.protocol)?;
    let port = u16::try_from(m.port).ok().filter(|p| *p > 0)?;
    Some(ServiceKey::new(vip, proto, port))
}

/// Converts and checks a service's proxy options. Group names are collected from the
/// destinations, the rules and the default (index 0 is always `""`); every rule condition is
/// checked here so a bad request is refused as a whole, before any plane sees it.
fn opts_from_pb(
    path: &str,
    p: Option<&pb::ProxyOptions>,
    dests: &[pb::Destination],
) -> Result<ServiceOpts, Vec<String>> {
    let mut o = ServiceOpts::default();
    let Some(p) = p else {
        if dests.iter().any(|d| !d.group.is_empty()) {
            let mut names: Vec<String> = dests.iter().map(|d| d.group.clone()).collect();
            names.sort();
            names.dedup();
            names.retain(|n| !n.is_empty());
            o.groups.extend(names);
        }
        return Ok(o);
    };
    let mut errors = Vec::new();
    let mut names: Vec<&str> = dests.iter().map(|d| d.group.as_str()).collect();
    names.extend(p.rule.iter().filter(|r| !r.deny).map(|r| r.group.as_str()));
    if !p.default_deny {
        names.push(&p.default_group);
    }
    names.sort_unstable();
    names.dedup();
    names.retain(|n| !n.is_empty());
    if names.len() >= usize::from(u16::MAX) {
        errors.push(format!("{path}.proxy: too many backend groups"));
    }
    o.groups.extend(names.iter().map(|n| (*n).to_owned()));
    let group = |name: &str| {
        o.groups
            .iter()
            .position(|g| g == name)
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(0)
    };
    let target = |deny: bool, name: &str| {
        if deny {
            RuleTarget::Deny
        } else {
            RuleTarget::Group(group(name))
        }
    };
    let mut rules = Vec::new();
    for (i, r) in p.rule.iter().enumerate() {
        let mut conds = Vec::new();
        for (j, c) in r.cond.iter().enumerate() {
            let cpath = format!("{path}.proxy.rule[{i}].cond[{j}]");
            let field = match pb::PayloadKey::try_from(c.key) {
                Ok(pb::PayloadKey::Bytes) => Field::Bytes {
                    offset: c.offset,
                    len: c.length,
                },
                Ok(pb::PayloadKey::Bits) => Field::Bits {
                    offset: c.offset,
                    len: c.length,
                },
                Ok(pb::PayloadKey::TlsSni) => Field::Sni,
                _ => {
                    errors.push(format!("{cpath}.key: unspecified"));
                    continue;
                }
            };
            let op = match pb::PayloadOp::try_from(c.op) {
                Ok(pb::PayloadOp::Eq) => Op::Eq,
                Ok(pb::PayloadOp::Ne) => Op::Ne,
                Ok(pb::PayloadOp::Lt) => Op::Lt,
                Ok(pb::PayloadOp::Le) => Op::Le,
                Ok(pb::PayloadOp::Gt) => Op::Gt,
                Ok(pb::PayloadOp::Ge) => Op::Ge,
                Ok(pb::PayloadOp::Prefix) => Op::Prefix,
                Ok(pb::PayloadOp::Suffix) => Op::Suffix,
                Ok(pb::PayloadOp::In) => Op::In,
                _ => {
                    errors.push(format!("{cpath}.op: unspecified"));
                    continue;
                }
            };
            let cond = Cond {
                field,
                op,
                mask: c.mask.clone(),
                values: c.value.clone(),
            };
            if let Err(e) = rules::check(&cond) {
                errors.push(format!("{cpath}: {e}"));
            }
            conds.push(cond);
        }
        rules.push(Rule {
            conds,
            target: target(r.deny, &r.group),
        });
    }
    if rules.len() > rules::MAX_RULES {
        errors.push(format!("{path}.proxy.rule: too many rules"));
    }
    o.rules = rules;
    o.default_target = target(p.default_deny, &p.default_group);
    if p.hash_length > 0 {
        if p.hash_length > 64 || p.hash_offset > rules::MAX_OFFSET {
            errors.push(format!(
                "{path}.proxy: hash key {}:{} is out of range",
                p.hash_offset, p.hash_length
            ));
        }
        o.hash_key = Some((p.hash_offset, p.hash_length));
    }
    o.first_bytes = p.first_bytes.min(16_384);
    o.first_bytes_wait_ms = p.first_bytes_wait_ms;
    o.drain_timeout_ms = p.drain_timeout_ms;
    o.proxy_protocol = match pb::ProxyProtocol::try_from(p.proxy_protocol) {
        Ok(pb::ProxyProtocol::V1) => ProxyProtocol::V1,
        Ok(pb::ProxyProtocol::V2) => ProxyProtocol::V2,
        _ => ProxyProtocol::Off,
    };
    o.udp_mode = match pb::UdpMode::try_from(p.udp_mode) {
        Ok(pb::UdpMode::PerPacket) => UdpMode::PerPacket,
        _ => UdpMode::PerFlow,
    };
    if p.udp_idle_timeout_ms > 0 {
        o.udp_idle_timeout_ms = p.udp_idle_timeout_ms;
    }
    if p.udp_max_flows > 0 {
        o.udp_max_flows = p.udp_max_flows;
    }
    if errors.is_empty() {
        Ok(o)
    } else {
        Err(errors)
    }
}

/// The proto form of a service's proxy options (`None` for the defaults).
pub fn opts_to_pb(s: &Service) -> Option<pb::ProxyOptions> {
    let o = &s.opts;
    let defaults = ServiceOpts {
        kernel: o.kernel,
        ..ServiceOpts::default()
    };
    if *o == defaults {
        return None;
    }
    let name = |g: u16| o.groups.get(usize::from(g)).cloned().unwrap_or_default();
    let (default_group, default_deny) = match &o.default_target {
        RuleTarget::Group(g) => (name(*g), false),
        RuleTarget::Deny => (String::new(), true),
    };
    Some(pb::ProxyOptions {
        rule: o
            .rules
            .iter()
            .map(|r| {
                let (group, deny) = match &r.target {
                    RuleTarget::Group(g) => (name(*g), false),
                    RuleTarget::Deny => (String::new(), true),
                };
                pb::PayloadRule {
                    cond: r
                        .conds
                        .iter()
                        .map(|c| {
                            let (key, offset, length) = match c.field {
                                Field::Bytes { offset, len } => {
                                    (pb::PayloadKey::Bytes, offset, len)
                                }
                                Field::Bits { offset, len } => (pb::PayloadKey::Bits, offset, len),
                                Field::Sni => (pb::PayloadKey::TlsSni, 0, 0),
                            };
                            pb::PayloadCond {
                                key: key as i32,
                                offset,
                                length,
                                op: match c.op {
                                    Op::Eq => pb::PayloadOp::Eq,
                                    Op::Ne => pb::PayloadOp::Ne,
                                    Op::Lt => pb::PayloadOp::Lt,
                                    Op::Le => pb::PayloadOp::Le,
                                    Op::Gt => pb::PayloadOp::Gt,
                                    Op::Ge => pb::PayloadOp::Ge,
                                    Op::Prefix => pb::PayloadOp::Prefix,
                                    Op::Suffix => pb::PayloadOp::Suffix,
                                    Op::In => pb::PayloadOp::In,
                                } as i32,
                                value: c.values.clone(),
                                mask: c.mask.clone(),
                            }
                        })
                        .collect(),
                    group,
                    deny,
                }
            })
            .collect(),
        default_group,
        default_deny,
        hash_offset: o.hash_key.map_or(0, |k| k.0),
        hash_length: o.hash_key.map_or(0, |k| k.1),
        first_bytes: o.first_bytes,
        first_bytes_wait_ms: o.first_bytes_wait_ms,
        drain_timeout_ms: o.drain_timeout_ms,
        proxy_protocol: match o.proxy_protocol {
            ProxyProtocol::Off => pb::ProxyProtocol::Off,
            ProxyProtocol::V1 => pb::ProxyProtocol::V1,
            ProxyProtocol::V2 => pb::ProxyProtocol::V2,
        } as i32,
        udp_mode: match o.udp_mode {
            UdpMode::PerFlow => pb::UdpMode::PerFlow,
            UdpMode::PerPacket => pb::UdpMode::PerPacket,
        } as i32,
        udp_idle_timeout_ms: o.udp_idle_timeout_ms,
        udp_max_flows: o.udp_max_flows,
    })
}

pub(crate) fn bgp_status(e: BgpError) -> Status {
    match e {
        BgpError::Invalid(_) | BgpError::Address(_) => Status::invalid_argument(e.to_string()),
        BgpError::Conflict(_) => Status::failed_precondition(e.to_string()),
        BgpError::Daemon { .. } => Status::unavailable(e.to_string()),
    }
}

/// The domain form of a `BgpSet` request: every address checked.
pub fn bgp_request_from_pb(
    r: pb::BgpRequest,
) -> Result<(crate::bgp::Settings, std::collections::BTreeSet<IpAddr>), BgpError> {
    let s = r
        .settings
        .ok_or_else(|| BgpError::Invalid("no settings".to_owned()))?;
    let ip = |what: &str, v: &str| -> Result<IpAddr, BgpError> {
        v.trim()
            .parse()
            .map_err(|_| BgpError::Invalid(format!("{what} {v:?} is not an IP address")))
    };
    let opt = |what: &str, v: &str| -> Result<Option<IpAddr>, BgpError> {
        if v.trim().is_empty() {
            Ok(None)
        } else {
            ip(what, v).map(Some)
        }
    };
    if s.gobgp_api.trim().is_empty() {
        return Err(BgpError::Address(s.gobgp_api));
    }
    if s.local_asn == 0 || s.remote_asn == 0 {
        return Err(BgpError::Invalid(format!(
            "ASNs must be set (local {}, remote {})",
            s.local_asn, s.remote_asn
        )));
    }
    let router_id = match ip("router id", &s.router_id)? {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => {
            return Err(BgpError::Invalid(format!(
                "router id {} is not IPv4",
                s.router_id
            )));
        }
    };
    let next_hop_v4 = match opt("IPv4 next hop", &s.next_hop_ipv4)? {
        None => None,
        Some(IpAddr::V4(a)) => Some(a),
        Some(other) => return Err(BgpError::Invalid(format!("IPv4 next hop {other} is IPv6"))),
    };
    let next_hop_v6 = match opt("IPv6 next hop", &s.next_hop_ipv6)? {
        None => None,
        Some(IpAddr::V6(a)) => Some(a),
        Some(other) => return Err(BgpError::Invalid(format!("IPv6 next hop {other} is IPv4"))),
    };
    let peers = s
        .peers
        .iter()
        .map(|p| ip("peer", p))
        .collect::<Result<Vec<_>, _>>()?;
    let routes = r
        .routes
        .iter()
        .map(|p| ip("route", p))
        .collect::<Result<_, _>>()?;
    Ok((
        crate::bgp::Settings {
            gobgp_api: s.gobgp_api.trim().to_owned(),
            local_asn: s.local_asn,
            remote_asn: s.remote_asn,
            peers,
            router_id,
            next_hop_v4,
            next_hop_v6,
        },
        routes,
    ))
}

/// The proto form of `services` (a `DesiredState` without VIPs or LB interface): what ncc sends
/// the proxy relay. `services_from_pb(services_to_pb(s))` is `s`.
pub fn services_to_pb(services: &[Service]) -> pb::DesiredState {
    pb::DesiredState {
        services: services
            .iter()
            .map(|s| {
                let group = |g: u16| {
                    s.opts
                        .groups
                        .get(usize::from(g))
                        .cloned()
                        .unwrap_or_default()
                };
                pb::Service {
                    address: s.key.vip.to_string(),
                    protocol: if s.key.is_fwmark() {
                        pb::Protocol::Unspecified as i32
                    } else {
                        pb::Protocol::from(s.key.proto) as i32
                    },
                    port: u32::from(s.key.port),
                    scheduler: pb::Scheduler::from(s.scheduler) as i32,
                    mode: pb::ForwardMode::from(s.mode) as i32,
                    persistence_s: s.persistence,
                    destinations: s
                        .dests
                        .iter()
                        .map(|d| pb::Destination {
                            address: d.addr.ip().to_string(),
                            port: u32::from(d.addr.port()),
                            weight: d.weight,
                            group: group(d.group),
                            backup: d.backup,
                        })
                        .collect(),
                    fwmark: s.key.fwmark,
                    marked: s.marks.iter().map(marked_to_pb).collect(),
                    one_packet: s.opts.kernel.one_packet,
                    lthreshold: s.opts.kernel.lthreshold,
                    uthreshold: s.opts.kernel.uthreshold,
                    proxy: opts_to_pb(s),
                    maglev_anchor: s.anchor.as_deref().map(|a| {
                        let (keys, slots) = a.encode();
                        pb::MaglevAnchor { keys, slots }
                    }),
                }
            })
            .collect(),
        ..Default::default()
    }
}

/// The domain form of a `GetState` reply's services and counters (what ncc reads back from the
/// proxy relay). Entries that do not parse are left out: they were produced by our own relay.
pub fn stats_from_pb(state: &pb::DataplaneState) -> Vec<crate::dataplane::ServiceStats> {
    use crate::model::DestStats;
    state
        .services
        .iter()
        .filter_map(|s| {
            let vip = s.address.parse::<IpAddr>().ok()?;
            let port = u16::try_from(s.port).ok()?;
            let proto = Protocol::from_pb(s.protocol).unwrap_or(Protocol::Tcp);
            let key = ServiceKey {
                vip,
                proto,
                port,
                fwmark: s.fwmark,
            };
            let dests: Vec<DestStats> = s
                .destinations
                .iter()
                .filter_map(|d| {
                    let addr =
                        SocketAddr::new(d.address.parse().ok()?, u16::try_from(d.port).ok()?);
                    Some(DestStats {
                        dest: Some(Dest {
                            addr,
                            weight: d.weight,
                            group: 0,
                            backup: false,
                        }),
                        active_conns: d.active_conns,
                        total_conns: d.total_conns,
                        bytes_in: d.bytes_in,
                        bytes_out: d.bytes_out,
                    })
                })
                .collect();
            let service = Service {
                anchor: None,
                key,
                scheduler: Scheduler::from_pb(s.scheduler).unwrap_or(Scheduler::Rr),
                mode: ForwardMode::from_pb(s.mode).unwrap_or(ForwardMode::Nat),
                persistence: s.persistence_s,
                dests: dests.iter().filter_map(|d| d.dest).collect(),
                opts: ServiceOpts::default(),
                marks: s.marked.iter().filter_map(marked_from_pb).collect(),
            };
            Some(crate::dataplane::ServiceStats {
                service,
                dests,
                table_hash: u64::from_str_radix(&s.table_hash, 16).ok(),
            })
        })
        .collect()
}
