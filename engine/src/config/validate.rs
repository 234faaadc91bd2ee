//! The generated `Cluster` message → validated domain types (`model::Cluster`). Every error is
//! collected with its field path (`vserver["web"].vserver_entry[0].port: ...`). Where Seesaw
//! skips something and carries on, so do we, with a warning carrying the field path: duplicate
//! vservers, entries, backends, grants and same-named checks (the first is kept); a vserver or
//! backend without an fqdn or without a usable address; an address without a prefix length
//! (dropped, as Seesaw's CIDR parser drops it); an ICMP check in DSR or TUN mode (dropped).

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use ipnet::IpNet;
use seesaw_proto::config as pb;

use super::seesaw_cfg::is_anycast;
use crate::model::*;

/// Errors (fatal) and warnings (shown by `show warnings`) from one validation.
#[derive(Debug, Default)]
pub struct Report {
    /// Every error, with its field path.
    pub errors: Vec<String>,
    /// Every warning.
    pub warnings: Vec<String>,
}

/// Validates a parsed cluster config.
pub fn validate(c: &pb::Cluster) -> Result<(Cluster, Vec<String>), Vec<String>> {
    let mut r = Report::default();
    // Required message fields are plain structs in prost; `cluster::parse` has checked presence.
    let seesaw_vip = host(&c.seesaw_vip, "seesaw_vip", &mut r);
    let nodes = nodes(c, &seesaw_vip, &mut r);

    let mut dedicated_vip_subnets = Vec::new();
    let mut seen_subnets = HashSet::new();
    for (i, s) in c.dedicated_vip_subnet.iter().enumerate() {
        match s.parse::<IpNet>() {
            Ok(net) if !seen_subnets.insert(net) => r
                .errors
                .push(format!("dedicated_vip_subnet[{i}]: duplicate subnet {s}")),
            Ok(net) => dedicated_vip_subnets.push(net),
            Err(_) => r.errors.push(format!(
                "dedicated_vip_subnet[{i}]: {s:?} is not a CIDR subnet"
            )),
        }
    }

    let mut vlans = BTreeMap::new();
    for (i, v) in c.vlan.iter().enumerate() {
        let path = format!("vlan[{i}]");
        let h = host(&v.host, &format!("{path}.host"), &mut r);
        match u16::try_from(v.vlan_id) {
            Ok(id @ 1..=4094) => {
                if vlans.insert(id, Vlan { id, host: h }).is_some() {
                    r.errors
                        .push(format!("{path}.vlan_id: duplicate VLAN {id}"));
                }
            }
            _ => r
                .errors
                .push(format!("{path}.vlan_id: {} is outside 1..4094", v.vlan_id)),
        }
    }

    let mut vservers = BTreeMap::new();
    for (i, v) in c.vserver.iter().enumerate() {
        let path = if v.name.is_empty() {
            format!("vserver[{i}]")
        } else {
            format!("vserver[{:?}]", v.name)
        };
        if v.name.is_empty() {
            r.errors.push(format!("{path}.name: must not be empty"));
            continue;
        }
        if vservers.contains_key(&v.name) {
            r.warnings.push(format!(
                "vserver[{i}]: duplicate vserver {:?}, skipped (the first is kept)",
                v.name
            ));
            continue;
        }
        if let Some(vs) = vserver(v, &path, &dedicated_vip_subnets, &mut r) {
            vservers.insert(v.name.clone(), vs);
        }
    }

    let mut access_groups = BTreeMap::new();
    for (i, g) in c.access_groups.iter().enumerate() {
        if access_groups
            .insert(g.name.clone(), g.member.clone())
            .is_some()
        {
            r.errors.push(format!(
                "access_groups[{i}].name: duplicate group {:?}",
                g.name
            ));
        }
    }

    for m in &c.misconfigured_vserver {
        r.warnings.push(format!(
            "vserver {:?} is misconfigured: {}",
            m.name,
            m.error_message()
        ));
    }

    let bgp = Bgp {
        local_asn: c.bgp_local_asn(),
        remote_asn: c.bgp_remote_asn(),
        peers: c
            .bgp_peer
            .iter()
            .enumerate()
            .map(|(i, h)| host(h, &format!("bgp_peer[{i}]"), &mut r))
            .collect(),
    };
    let metadata = c
        .metadata
        .as_ref()
        .map(|m| Metadata {
            last_updated: m.last_updated,
            attributes: m
                .attribute
                .iter()
                .map(|a| (a.name.clone(), a.value.clone()))
                .collect(),
        })
        .unwrap_or_default();
    fwmark_rules(&vservers, &mut r);
    one_owner_per_service(&vservers, &mut r);
    clean_names(c, &mut r);

    if !r.errors.is_empty() {
        return Err(r.errors);
    }
    let warnings = r.warnings.clone();
    Ok((
        Cluster {
            seesaw_vip,
            nodes,
            vservers,
            vlans,
            dedicated_vip_subnets,
            bgp,
            access_groups,
            metadata,
            warnings: r.warnings,
        },
        warnings,
    ))
}

fn status(s: Option<i32>, path: &str, r: &mut Report) -> Status {
    use pb::host::Status as S;
    match s.map(S::try_from) {
        None => Status::Production,
        Some(Ok(S::Production)) => Status::Production,
        Some(Ok(S::Testing)) => Status::Testing,
        Some(Ok(S::Building)) => Status::Building,
        Some(Ok(S::Standby)) => Status::Standby,
        Some(Ok(S::Failure)) => Status::Failure,
        Some(Ok(S::Disabled)) => Status::Disabled,
        Some(Ok(S::Proposed)) => Status::Proposed,
        Some(Err(_)) => {
            r.errors.push(format!(
                "{path}.status: unknown status {}",
                s.unwrap_or_default()
            ));
            Status::Production
        }
    }
}

/// Parses `addr/len` (or a bare address, meaning a host prefix) of one family.
fn cidr<A: std::str::FromStr + Copy>(s: &str, max: u8) -> Option<(A, u8)> {
    match s.split_once('/') {
        Some((a, len)) => {
            let len: u8 = len.parse().ok()?;
            (len <= max).then_some((a.parse().ok()?, len))
        }
        None => Some((s.parse().ok()?, max)),
    }
}

fn host(h: &pb::Host, path: &str, r: &mut Report) -> Host {
    if h.fqdn.is_empty() {
        r.errors.push(format!("{path}.fqdn: must not be empty"));
    }
    let ipv4 = h.ipv4.as_deref().filter(|s| !s.is_empty()).and_then(|s| {
        let v = cidr::<Ipv4Addr>(s, 32);
        if v.is_none() {
            r.errors.push(format!(
                "{path}.ipv4: {s:?} is not an IPv4 address with prefix length (like 10.0.0.1/24)"
            ));
        }
        v
    });
    let ipv6 = h.ipv6.as_deref().filter(|s| !s.is_empty()).and_then(|s| {
        let v = cidr::<Ipv6Addr>(s, 128);
        if v.is_none() {
            r.errors.push(format!(
                "{path}.ipv6: {s:?} is not an IPv6 address with prefix length (like 2001:db8::1/64)"
            ));
        }
        v
    });
    Host {
        hostname: h.fqdn.clone(),
        ipv4,
        ipv6,
        status: status(h.status, path, r),
    }
}

/// A vserver's or backend's host as Seesaw reads it: an address must be `addr/len`; one without
/// a prefix length or that does not parse is dropped with a warning (Seesaw's `net.ParseCIDR`
/// yields no address for it). The caller skips the host when no address or no fqdn is left.
fn seesaw_host(h: &pb::Host, path: &str, r: &mut Report) -> Host {
    let ipv4 = seesaw_addr(
        &format!("{path}.ipv4"),
        h.ipv4.as_deref(),
        32,
        "10.0.0.1/24",
        r,
    );
    let ipv6 = seesaw_addr(
        &format!("{path}.ipv6"),
        h.ipv6.as_deref(),
        128,
        "2001:db8::1/64",
        r,
    );
    Host {
        hostname: h.fqdn.clone(),
        ipv4,
        ipv6,
        status: status(h.status, path, r),
    }
}

/// One address of [`seesaw_host`].
fn seesaw_addr<A: std::str::FromStr + Copy>(
    path: &str,
    s: Option<&str>,
    max: u8,
    example: &str,
    r: &mut Report,
) -> Option<(A, u8)> {
    let s = s.filter(|s| !s.is_empty())?;
    if !s.contains('/') {
        r.warnings.push(format!(
            "{path}: {s:?} has no prefix length (write it like {example}), dropped as Seesaw drops it"
        ));
        return None;
    }
    let v = cidr(s, max);
    if v.is_none() {
        r.warnings.push(format!(
            "{path}: {s:?} is not an address with prefix length (like {example}), dropped"
        ));
    }
    v
}

/// Whether a vserver or backend host can be used; if not, says why in a warning (`what` is
/// "vserver" or "backend"), as Seesaw skips it.
fn usable(h: &Host, path: &str, what: &str, r: &mut Report) -> bool {
    let why = if h.hostname.is_empty() {
        "has no fqdn"
    } else if h.ipv4.is_none() && h.ipv6.is_none() {
        "has no usable ipv4 or ipv6 address"
    } else {
        return true;
    };
    r.warnings.push(format!("{path}: {what} {why}, skipped"));
    false
}

fn nodes(c: &pb::Cluster, vip: &Host, r: &mut Report) -> Vec<Node> {
    let ha_possible = matches!(
        vip.status,
        Status::Production | Status::Testing | Status::Building
    );
    let mut hosts: Vec<Host> = Vec::new();
    for (i, n) in c.node.iter().enumerate() {
        let h = host(n, &format!("node[{i}]"), r);
        if hosts.iter().any(|o| o.hostname == h.hostname) {
            r.errors
                .push(format!("node[{i}].fqdn: duplicate node {:?}", h.hostname));
            continue;
        }
        hosts.push(h);
    }
    // Seesaw orders nodes by IPv4 address; nodes without one sort last.
    hosts.sort_by_key(|h| (h.ipv4.is_none(), h.ipv4.map(|(a, _)| a)));
    let n = hosts.len();
    hosts
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let priority = if i == 0 {
                255
            } else {
                u8::try_from(n - i).unwrap_or(1)
            };
            let st = host.status;
            Node {
                ha_enabled: ha_possible && st == vip.status,
                anycast_enabled: st.is_serving(),
                bgp_enabled: st.is_serving() || st == Status::Building,
                vservers_enabled: st.is_serving(),
                priority,
                host,
            }
        })
        .collect()
}

fn vserver(v: &pb::Vserver, path: &str, subnets: &[IpNet], r: &mut Report) -> Option<Vserver> {
    let entry_path = format!("{path}.entry_address");
    let entry_host = seesaw_host(&v.entry_address, &entry_path, r);
    if !usable(&entry_host, &entry_path, "vserver", r) {
        return None;
    }
    let vips = Af::ALL
        .iter()
        .filter_map(|af| entry_host.addr(*af))
        .map(|ip| Vip {
            ip,
            kind: if is_anycast(ip) {
                VipKind::Anycast
            } else if subnets.iter().any(|s| s.contains(&ip)) {
                VipKind::Dedicated
            } else {
                VipKind::Unicast
            },
        })
        .collect();

    let mut entries = BTreeMap::new();
    for (i, e) in v.vserver_entry.iter().enumerate() {
        let epath = format!("{path}.vserver_entry[{i}]");
        let Some(entry) = entry(e, &epath, r) else {
            continue;
        };
        if entries.contains_key(&entry.key) {
            r.warnings.push(format!(
                "{epath}: duplicate entry {} for vserver {:?}, skipped",
                entry.key, v.name
            ));
            continue;
        }
        entries.insert(entry.key, entry);
    }

    let mut backends = BTreeMap::new();
    for (i, b) in v.backend.iter().enumerate() {
        let bpath = format!("{path}.backend[{i}]");
        let hpath = format!("{bpath}.host");
        let h = seesaw_host(&b.host, &hpath, r);
        if !usable(&h, &hpath, "backend", r) {
            continue;
        }
        let weight = b.weight();
        if weight < 0 {
            r.errors
                .push(format!("{bpath}.weight: {weight} is negative"));
        }
        if backends.contains_key(&h.hostname) {
            r.warnings.push(format!(
                "{bpath}: duplicate backend {:?} for vserver {:?}, skipped",
                h.hostname, v.name
            ));
            continue;
        }
        if b.group() == "deny" {
            r.errors.push(format!(
                "{bpath}.group: \"deny\" is reserved for rules that drop traffic"
            ));
        }
        let st = h.status;
        backends.insert(
            h.hostname.clone(),
            Backend {
                weight: u32::try_from(weight).unwrap_or(0),
                enabled: st.is_serving(),
                in_service: !matches!(st, Status::Proposed | Status::Building),
                host: h,
                group: b.group().to_owned(),
                backup: b.backup(),
            },
        );
    }

    let healthchecks = healthchecks(&v.healthcheck, None, &format!("{path}.healthcheck"), r);

    let mut access_grants: Vec<AccessGrant> = Vec::new();
    for (i, g) in v.access_grant.iter().enumerate() {
        let grant = AccessGrant {
            grantee: g.grantee.clone(),
            admin: g.role == pb::access_grant::Role::Admin as i32,
            group: g.r#type == pb::access_grant::Type::Group as i32,
        };
        if access_grants.contains(&grant) {
            r.warnings.push(format!(
                "{path}.access_grant[{i}]: duplicate grant for {:?}, skipped",
                g.grantee
            ));
            continue;
        }
        access_grants.push(grant);
    }

    Some(Vserver {
        name: v.name.clone(),
        enabled: entry_host.status.is_serving(),
        host: entry_host,
        use_fwm: v.use_fwm(),
        entries,
        backends,
        healthchecks,
        vips,
        access_grants,
        warnings: v.warning.clone(),
    })
}

fn port(v: i32, path: &str, r: &mut Report) -> Option<u16> {
    match u16::try_from(v) {
        Ok(p @ 1..) => Some(p),
        _ => {
            r.errors
                .push(format!("{path}: {v} is not a valid port (1-65535)"));
            None
        }
    }
}

fn non_negative(v: i32, path: &str, r: &mut Report) -> u32 {
    u32::try_from(v).unwrap_or_else(|_| {
        r.errors.push(format!("{path}: {v} is negative"));
        0
    })
}

fn entry(e: &pb::VserverEntry, path: &str, r: &mut Report) -> Option<Entry> {
    use pb::vserver_entry::{Mode as M, Scheduler as S};
    let proto = match pb::Protocol::try_from(e.protocol) {
        Ok(pb::Protocol::Tcp) => Some(Protocol::Tcp),
        Ok(pb::Protocol::Udp) => Some(Protocol::Udp),
        Err(_) => {
            r.errors
                .push(format!("{path}.protocol: unknown protocol {}", e.protocol));
            None
        }
    };
    let vport = port(e.port, &format!("{path}.port"), r);
    let scheduler = match e.scheduler.map(S::try_from).unwrap_or(Ok(S::Wlc)) {
        Ok(S::Rr) => Scheduler::Rr,
        Ok(S::Wrr) => Scheduler::Wrr,
        Ok(S::Lc) => Scheduler::Lc,
        Ok(S::Wlc) => Scheduler::Wlc,
        Ok(S::Sh) => Scheduler::Sh,
        Ok(S::Mh) => Scheduler::Mh,
        Ok(S::Dh) => Scheduler::Dh,
        Ok(S::Random) => Scheduler::Random,
        Ok(S::P2c) => Scheduler::P2c,
        Err(_) => {
            r.errors
                .push(format!("{path}.scheduler: unknown scheduler"));
            Scheduler::Wlc
        }
    };
    let mode = match e.mode.map(M::try_from).unwrap_or(Ok(M::Dsr)) {
        Ok(M::Dsr) => ForwardMode::Dsr,
        Ok(M::Nat) => ForwardMode::Nat,
        Ok(M::Tun) => ForwardMode::Tun,
        Err(_) => {
            r.errors.push(format!("{path}.mode: unknown mode"));
            ForwardMode::Dsr
        }
    };
    let persistence = non_negative(e.persistence(), &format!("{path}.persistence"), r);
    let mut low = e.server_low_watermark();
    let mut high = e.server_high_watermark();
    for (name, v) in [
        ("server_low_watermark", &mut low),
        ("server_high_watermark", &mut high),
    ] {
        if !(0.0..=1.0).contains(v) {
            r.errors
                .push(format!("{path}.{name}: {v} is outside 0.0..1.0"));
            *v = 0.0;
        }
    }
    // Seesaw raises high up to low, so "stay healthy" never needs more than "become healthy".
    high = high.max(low);
    let lthreshold = non_negative(e.lthreshold(), &format!("{path}.lthreshold"), r);
    let uthreshold = non_negative(e.uthreshold(), &format!("{path}.uthreshold"), r);
    let backend_port = match e.backend_port {
        Some(p) => port(p, &format!("{path}.backend_port"), r),
        None => vport,
    };
    let proxy = match &e.proxy {
        Some(p) => proxy_opts(p, &format!("{path}.proxy"), r),
        None => ProxyOpts::default(),
    };
    let (proto, vport, backend_port) = (proto?, vport?, backend_port?);
    let healthchecks = healthchecks(
        &e.healthcheck,
        Some(backend_port),
        &format!("{path}.healthcheck"),
        r,
    );
    Some(Entry {
        key: EntryKey { proto, port: vport },
        backend_port,
        scheduler,
        mode,
        persistence,
        one_packet: e.one_packet(),
        low_watermark: low,
        high_watermark: high,
        lthreshold,
        uthreshold,
        healthchecks,
        proxy,
    })
}

/// Parses a number (decimal or 0x-hex) that must fit in `bits` bits, as `width` big-endian bytes.
fn number(v: &str, bits: u32, width: usize) -> Result<Vec<u8>, String> {
    let t = v.trim();
    let n = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(h, 16)
    } else {
        t.parse::<u64>()
    }
    .map_err(|_| format!("{v:?} is not a number (decimal or 0x-hex)"))?;
    if bits < 64 && n >> bits != 0 {
        return Err(format!("{v:?} does not fit in {bits} bits"));
    }
    Ok(n.to_be_bytes()[8 - width..].to_vec())
}

/// Parses a 0x-hex byte string.
fn hex_bytes(v: &str) -> Result<Vec<u8>, String> {
    let h = v
        .trim()
        .strip_prefix("0x")
        .or_else(|| v.trim().strip_prefix("0X"))
        .ok_or_else(|| format!("{v:?} is not a 0x-hex byte string"))?;
    if h.is_empty() || h.len() % 2 != 0 {
        return Err(format!(
            "{v:?} needs an even, non-zero number of hex digits"
        ));
    }
    (0..h.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&h[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| format!("{v:?} is not a 0x-hex byte string"))
}

/// Most payload rules per entry.
const MAX_PAYLOAD_RULES: usize = 10_000;
/// Most values of one `IN`.
const MAX_PAYLOAD_SET: usize = 4096;

/// Validates the userspace proxy options of an entry.
fn proxy_opts(p: &pb::ProxyOptions, path: &str, r: &mut Report) -> ProxyOpts {
    use pb::payload_condition::{Key as K, Operator as O};
    let group = |g: &str| (g != "deny").then(|| g.to_owned());
    let mut rules = Vec::new();
    if p.rule.len() > MAX_PAYLOAD_RULES {
        r.errors.push(format!(
            "{path}.rule: {} rules (at most {MAX_PAYLOAD_RULES})",
            p.rule.len()
        ));
    }
    for (i, rule) in p.rule.iter().enumerate() {
        let rpath = format!("{path}.rule[{i}]");
        if rule.condition.is_empty() {
            r.errors.push(format!(
                "{rpath}.condition: a rule needs at least one condition"
            ));
        }
        let mut conds = Vec::new();
        for (j, c) in rule.condition.iter().enumerate() {
            let cpath = format!("{rpath}.condition[{j}]");
            let key = match K::try_from(c.key.unwrap_or(K::Bytes as i32)) {
                Ok(K::Bytes) => PayloadKey::Bytes,
                Ok(K::Bits) => PayloadKey::Bits,
                Ok(K::TlsSni) => PayloadKey::TlsSni,
                Err(_) => {
                    r.errors.push(format!("{cpath}.key: unknown key"));
                    continue;
                }
            };
            let op = match O::try_from(c.op.unwrap_or(O::Eq as i32)) {
                Ok(O::Eq) => PayloadOp::Eq,
                Ok(O::Ne) => PayloadOp::Ne,
                Ok(O::Lt) => PayloadOp::Lt,
                Ok(O::Le) => PayloadOp::Le,
                Ok(O::Gt) => PayloadOp::Gt,
                Ok(O::Ge) => PayloadOp::Ge,
                Ok(O::Prefix) => PayloadOp::Prefix,
                Ok(O::Suffix) => PayloadOp::Suffix,
                Ok(O::In) => PayloadOp::In,
                Err(_) => {
                    r.errors.push(format!("{cpath}.op: unknown operator"));
                    continue;
                }
            };
            let (offset, length) = (c.offset(), c.length());
            let before = r.errors.len();
            match (c.value.len(), op) {
                (0, _) => r.errors.push(format!("{cpath}.value: needs a value")),
                (n, PayloadOp::In) if n > MAX_PAYLOAD_SET => r.errors.push(format!(
                    "{cpath}.value: {n} values (at most {MAX_PAYLOAD_SET})"
                )),
                (1, _) | (_, PayloadOp::In) => {}
                (n, _) => r.errors.push(format!(
                    "{cpath}.value: {n} values given, the operator takes one"
                )),
            }
            let ordering = matches!(
                op,
                PayloadOp::Lt | PayloadOp::Le | PayloadOp::Gt | PayloadOp::Ge
            );
            let mut values = Vec::new();
            let mut mask = Vec::new();
            match key {
                PayloadKey::TlsSni => {
                    if ordering {
                        r.errors.push(format!(
                            "{cpath}.op: the server name supports EQ, NE, PREFIX, SUFFIX and IN"
                        ));
                    }
                    if c.mask.is_some() {
                        r.errors
                            .push(format!("{cpath}.mask: the server name takes no mask"));
                    }
                    values = c
                        .value
                        .iter()
                        .map(|v| v.to_ascii_lowercase().into_bytes())
                        .collect();
                }
                PayloadKey::Bytes | PayloadKey::Bits => {
                    let bits = key == PayloadKey::Bits;
                    let (max_len, unit) = if bits { (64, "bits") } else { (64, "bytes") };
                    if !(1..=max_len).contains(&length) {
                        r.errors.push(format!(
                            "{cpath}.length: {length} {unit} is not in 1..={max_len}"
                        ));
                    }
                    if (if bits { offset / 8 } else { offset }) > 65_535 {
                        r.errors.push(format!(
                            "{cpath}.offset: {offset} is too far into the payload"
                        ));
                    }
                    if op == PayloadOp::Suffix {
                        r.errors
                            .push(format!("{cpath}.op: SUFFIX is for the server name only"));
                    }
                    if bits && op == PayloadOp::Prefix {
                        r.errors
                            .push(format!("{cpath}.op: PREFIX needs a BYTES field"));
                    }
                    let width = if bits {
                        length.div_ceil(8) as usize
                    } else {
                        length as usize
                    };
                    let field_bits = if bits { length } else { length * 8 };
                    if width > 8 && ordering {
                        r.errors.push(format!(
                            "{cpath}.op: ordering needs a field of at most 8 bytes"
                        ));
                    }
                    if r.errors.len() == before {
                        for (k, v) in c.value.iter().enumerate() {
                            let parsed = if op == PayloadOp::Prefix || width > 8 {
                                hex_bytes(v).and_then(|b| {
                                    let ok = if op == PayloadOp::Prefix {
                                        b.len() <= width
                                    } else {
                                        b.len() == width
                                    };
                                    if ok {
                                        Ok(b)
                                    } else {
                                        Err(format!(
                                            "{v:?} has {} bytes, the field {width}",
                                            b.len()
                                        ))
                                    }
                                })
                            } else {
                                number(v, field_bits, width)
                            };
                            match parsed {
                                Ok(b) => values.push(b),
                                Err(e) => r.errors.push(format!("{cpath}.value[{k}]: {e}")),
                            }
                        }
                        if let Some(m) = &c.mask {
                            if op == PayloadOp::Prefix {
                                r.errors.push(format!("{cpath}.mask: PREFIX takes no mask"));
                            }
                            let parsed = if width > 8 {
                                hex_bytes(m).and_then(|b| {
                                    if b.len() == width {
                                        Ok(b)
                                    } else {
                                        Err(format!("{m:?} is not {width} bytes"))
                                    }
                                })
                            } else {
                                number(m, field_bits, width)
                            };
                            match parsed {
                                Ok(b) => mask = b,
                                Err(e) => r.errors.push(format!("{cpath}.mask: {e}")),
                            }
                        }
                    }
                }
            }
            conds.push(PayloadCond {
                key,
                offset: if key == PayloadKey::TlsSni { 0 } else { offset },
                length: if key == PayloadKey::TlsSni { 0 } else { length },
                op,
                values,
                mask,
            });
        }
        rules.push(PayloadRule {
            conds,
            group: group(&rule.group),
        });
    }
    let hash_key = match (p.hash_offset(), p.hash_length()) {
        (_, 0) => None,
        (o, l) => {
            if l > 64 || o > 65_535 {
                r.errors.push(format!(
                    "{path}.hash_length: hash key {o}:{l} must be at most 64 bytes within the first 64 KiB"
                ));
            }
            Some((o, l))
        }
    };
    if p.udp_max_flows() == 0 {
        r.errors
            .push(format!("{path}.udp_max_flows: must be at least 1"));
    }
    if p.udp_idle_timeout_s() == 0 {
        r.errors
            .push(format!("{path}.udp_idle_timeout_s: must be at least 1"));
    }
    if p.first_bytes() > 16_384 {
        r.errors.push(format!(
            "{path}.first_bytes: {} is above 16384",
            p.first_bytes()
        ));
    }
    use pb::proxy_options::{ProxyProtocol as PP, UdpMode as U};
    ProxyOpts {
        rules,
        default_group: group(p.default_group()),
        hash_key,
        first_bytes: p.first_bytes(),
        first_bytes_timeout_ms: p.first_bytes_timeout_ms(),
        drain_timeout_s: p.drain_timeout_s(),
        proxy_protocol: match p.proxy_protocol() {
            PP::Off => 0,
            PP::V1 => 1,
            PP::V2 => 2,
        },
        udp_per_packet: p.udp_mode() == U::PerPacket,
        udp_idle_timeout_s: p.udp_idle_timeout_s(),
        udp_max_flows: p.udp_max_flows(),
    }
}

/// Converts a list of checks and names them `<TYPE>/<port>_<n>` as Seesaw does: sorted by
/// Seesaw's type order, port and the other fields, the counter restarting whenever type or port
/// changes. HTTPS is named HTTP and TCP_TLS TCP, so an HTTPS check on the port of an HTTP check
/// (or TCP_TLS beside TCP) can get a name already taken; Seesaw keeps the first and skips it,
/// and so do we, with a warning. `default_port` is the entry's port for entry-level checks,
/// `None` for vserver-level ones.
pub fn healthchecks(
    list: &[pb::Healthcheck],
    default_port: Option<u16>,
    path: &str,
    r: &mut Report,
) -> BTreeMap<String, Healthcheck> {
    let mut checks: Vec<(usize, Healthcheck)> = list
        .iter()
        .enumerate()
        .filter_map(|(i, h)| Some((i, healthcheck(h, default_port, &format!("{path}[{i}]"), r)?)))
        .collect();
    let key = |c: &Healthcheck| {
        (
            c.kind.seesaw_rank(),
            c.port,
            c.send.clone(),
            c.receive.clone(),
            c.method.clone(),
            c.code,
            c.proxy,
            c.tls_verify,
            c.interval,
            c.timeout,
        )
    };
    checks.sort_by_cached_key(|(_, c)| key(c));
    let mut last: Option<(CheckKind, u16)> = None;
    let mut counter = 0usize;
    let mut out: BTreeMap<String, Healthcheck> = BTreeMap::new();
    for (i, mut c) in checks {
        if last == Some((c.kind, c.port)) {
            counter += 1;
        } else {
            counter = 0;
            last = Some((c.kind, c.port));
        }
        c.name = format!("{}/{}_{}", c.kind.seesaw_name(), c.port, counter);
        if let Some(kept) = out.get(&c.name) {
            r.warnings.push(format!(
                "{path}[{i}]: {} check on port {} is named {:?} like the {} check before it; Seesaw keeps the first, skipped",
                c.kind.proto_name(),
                c.port,
                c.name,
                kept.kind.proto_name()
            ));
            continue;
        }
        out.insert(c.name.clone(), c);
    }
    out
}

/// Converts one check, applying proto2 defaults. `None` if it has errors.
pub fn healthcheck(
    h: &pb::Healthcheck,
    default_port: Option<u16>,
    path: &str,
    r: &mut Report,
) -> Option<Healthcheck> {
    use pb::healthcheck::{Mode as M, Type as T};
    let errors_before = r.errors.len();
    let kind = match T::try_from(h.r#type) {
        Ok(T::IcmpPing) => CheckKind::Icmp,
        Ok(T::Udp) => CheckKind::Udp,
        Ok(T::Tcp) => CheckKind::Tcp,
        Ok(T::Http) => CheckKind::Http,
        Ok(T::Https) => CheckKind::Https,
        Ok(T::Dns) => CheckKind::Dns,
        Ok(T::TcpTls) => CheckKind::TcpTls,
        Ok(T::Radius) => CheckKind::Radius,
        Ok(T::Mysql) => CheckKind::Mysql,
        Err(_) => {
            r.errors
                .push(format!("{path}.type: unknown type {}", h.r#type));
            CheckKind::Tcp
        }
    };
    let mode = match h.mode.map(M::try_from).unwrap_or(Ok(M::Plain)) {
        Ok(M::Plain) => CheckMode::Plain,
        Ok(M::Dsr) => CheckMode::Dsr,
        Ok(M::Tun) => CheckMode::Tun,
        Err(_) => {
            r.errors.push(format!("{path}.mode: unknown mode"));
            CheckMode::Plain
        }
    };
    if kind == CheckKind::Icmp && mode != CheckMode::Plain {
        // Seesaw drops these too (its engine cannot build the checker and skips it): an echo
        // sent to the VIP is not tied to a port, so it cannot show that one backend serves it.
        r.warnings.push(format!(
            "{path}.mode: ICMP_PING checks cannot run in {} mode (an echo to the VIP cannot prove that one backend serves it); check dropped as Seesaw drops it — use PLAIN, or a TCP/UDP/HTTP check in this mode",
            if mode == CheckMode::Dsr { "DSR" } else { "TUN" }
        ));
        return None;
    }
    let port = match (h.port, default_port) {
        (Some(p), _) => port(p, &format!("{path}.port"), r).unwrap_or(0),
        (None, Some(p)) => p,
        (None, None) if kind == CheckKind::Icmp => 0,
        (None, None) => {
            r.errors
                .push(format!("{path}.port: required for vserver-level checks"));
            0
        }
    };
    let secs = |v: i32, name: &str, r: &mut Report| match u64::try_from(v) {
        Ok(s @ 1..=86_400) => Duration::from_secs(s),
        _ => {
            r.errors
                .push(format!("{path}.{name}: {v} is outside 1..86400 seconds"));
            Duration::from_secs(1)
        }
    };
    let interval = secs(h.interval(), "interval", r);
    let timeout = secs(h.timeout(), "timeout", r);
    let code = match h.code() {
        0 => 200,
        c @ 100..=999 => u16::try_from(c).expect("range checked"),
        c => {
            r.errors
                .push(format!("{path}.code: {c} is not an HTTP status"));
            200
        }
    };
    let retries = non_negative(h.retries(), &format!("{path}.retries"), r);
    let rise = match h.rise() {
        n @ 1.. => u32::try_from(n).expect("positive"),
        n => {
            r.errors.push(format!("{path}.rise: {n} is less than 1"));
            1
        }
    };
    if r.errors.len() > errors_before {
        return None;
    }
    Some(Healthcheck {
        name: String::new(),
        kind,
        mode,
        port,
        interval,
        timeout,
        send: h.send().to_owned(),
        receive: h.receive().to_owned(),
        code,
        method: h.method().to_owned(),
        proxy: h.proxy(),
        tls_verify: h.tls_verify(),
        retries,
        rise,
    })
}

/// Names, addresses' fqdns, comments and grants reach logs, the shell and files: a control
/// character (a newline forging a log line, an escape sequence for the terminal, NUL) or a line
/// separator is refused wherever it appears. Check payloads (`send`, `receive`) and payload-rule
/// values are bytes on the wire and may hold them. Paths use indexes, not the names themselves.
fn clean_names(c: &pb::Cluster, r: &mut Report) {
    let mut check = |path: String, s: &str| {
        if let Some(ch) = seesaw_common::text::first_control(s) {
            r.errors.push(format!(
                "{path}: {s:?} holds the control character {ch:?}; names and comments must be printable"
            ));
        }
    };
    check("seesaw_vip.fqdn".into(), &c.seesaw_vip.fqdn);
    for (i, n) in c.node.iter().enumerate() {
        check(format!("node[{i}].fqdn"), &n.fqdn);
    }
    for (i, v) in c.vlan.iter().enumerate() {
        check(format!("vlan[{i}].host.fqdn"), &v.host.fqdn);
    }
    for (i, p) in c.bgp_peer.iter().enumerate() {
        check(format!("bgp_peer[{i}].fqdn"), &p.fqdn);
    }
    for (i, v) in c.vserver.iter().enumerate() {
        let at = format!("vserver[{i}]");
        check(format!("{at}.name"), &v.name);
        check(format!("{at}.rp"), &v.rp);
        check(format!("{at}.entry_address.fqdn"), &v.entry_address.fqdn);
        for (j, w) in v.warning.iter().enumerate() {
            check(format!("{at}.warning[{j}]"), w);
        }
        for (j, b) in v.backend.iter().enumerate() {
            check(format!("{at}.backend[{j}].host.fqdn"), &b.host.fqdn);
            check(format!("{at}.backend[{j}].group"), b.group());
        }
        for (j, g) in v.access_grant.iter().enumerate() {
            check(format!("{at}.access_grant[{j}].grantee"), &g.grantee);
        }
    }
    for (i, g) in c.access_groups.iter().enumerate() {
        check(format!("access_groups[{i}].name"), &g.name);
        for (j, m) in g.member.iter().enumerate() {
            check(format!("access_groups[{i}].member[{j}]"), m);
        }
    }
    for (i, m) in c.misconfigured_vserver.iter().enumerate() {
        check(format!("misconfigured_vserver[{i}].name"), &m.name);
        check(
            format!("misconfigured_vserver[{i}].error_message"),
            m.error_message(),
        );
    }
    if let Some(m) = &c.metadata {
        for (i, a) in m.attribute.iter().enumerate() {
            check(format!("metadata.attribute[{i}].name"), &a.name);
            check(format!("metadata.attribute[{i}].value"), &a.value);
        }
    }
}

/// What every data plane refuses, refused here so that a config that validates is applied: a
/// VIP:port:protocol served by two vservers (ncc would hold two services with one key), and one
/// address twice among a vserver's backends (two destinations with one key). Seesaw accepts such
/// a file and then dies when IPVS answers "exists".
fn one_owner_per_service(vservers: &BTreeMap<String, Vserver>, r: &mut Report) {
    let mut owner: BTreeMap<(IpAddr, Protocol, u16), &str> = BTreeMap::new();
    for v in vservers.values() {
        for vip in &v.vips {
            for e in v.entries.values() {
                let key = (vip.ip, e.key.proto, e.key.port);
                if let Some(other) = owner.insert(key, &v.name) {
                    r.errors.push(format!(
                        "vserver[{:?}].vserver_entry[{}]: {} port {} is also served by vserver {other:?}; a VIP, port and protocol belong to one vserver",
                        v.name, e.key, vip.ip, e.key
                    ));
                    owner.insert(key, other);
                }
            }
        }
        let mut addrs: BTreeMap<IpAddr, &str> = BTreeMap::new();
        for b in v.backends.values() {
            for af in Af::ALL {
                let Some(ip) = b.host.addr(af) else { continue };
                if let Some(other) = addrs.insert(ip, &b.host.hostname) {
                    r.errors.push(format!(
                        "vserver[{:?}].backend[{:?}]: address {ip} is also backend {other:?}'s; one address can be one destination of a service only",
                        v.name, b.host.hostname
                    ));
                    addrs.insert(ip, other);
                }
            }
        }
    }
}

/// Firewall marks: a `use_fwm` vserver's entries become one service per family, so they must
/// agree on scheduler, mode and persistence (Seesaw takes "the first" entry's, in random map
/// order) and keep their port (the service's destinations have port 0); the vserver pool
/// (256..=8255, one mark per vserver and family) and the probe pool (65536..=81535, one mark
/// per DSR/TUN backend address and mode) must be large enough.
fn fwmark_rules(vservers: &BTreeMap<String, Vserver>, r: &mut Report) {
    use crate::model::{PROBE_MARKS, VSERVER_MARKS};
    let mut fwm_services = 0usize;
    let mut probes = std::collections::BTreeSet::new();
    for v in vservers.values() {
        let path = format!("vserver[{:?}]", v.name);
        for e in v.entries.values() {
            for hc in v.healthchecks.values().chain(e.healthchecks.values()) {
                if hc.mode != CheckMode::Plain {
                    for b in v.backends.values() {
                        for af in Af::ALL {
                            if let Some(ip) = b.host.addr(af) {
                                probes.insert((ip, hc.mode));
                            }
                        }
                    }
                }
            }
        }
        if !v.use_fwm {
            continue;
        }
        fwm_services += Af::ALL
            .iter()
            .filter(|af| v.host.addr(**af).is_some())
            .count();
        let mut entries = v.entries.values();
        if let Some(first) = entries.next() {
            for e in entries {
                if (e.scheduler, e.mode, e.persistence)
                    != (first.scheduler, first.mode, first.persistence)
                {
                    r.errors.push(format!(
                        "{path}.vserver_entry[{}]: with use_fwm every entry is one firewall-mark service, so scheduler, mode and persistence must equal those of vserver_entry[{}]",
                        e.key, first.key
                    ));
                }
            }
        }
        for e in v.entries.values() {
            if e.backend_port != e.key.port {
                r.errors.push(format!(
                    "{path}.vserver_entry[{}].backend_port: a firewall-mark service keeps the packet's port, so backend_port must be unset or {}",
                    e.key, e.key.port
                ));
            }
        }
    }
    let size = |p: &std::ops::RangeInclusive<u32>| (p.end() - p.start() + 1) as usize;
    if fwm_services > size(&VSERVER_MARKS) {
        r.errors.push(format!(
            "vserver: use_fwm: the firewall mark pool {}..={} is exhausted: {fwm_services} marks needed (one per vserver and address family), {} exist",
            VSERVER_MARKS.start(),
            VSERVER_MARKS.end(),
            size(&VSERVER_MARKS)
        ));
    }
    if probes.len() > size(&PROBE_MARKS) {
        r.errors.push(format!(
            "vserver: healthcheck mode DSR/TUN: the probe mark pool {}..={} is exhausted: {} marks needed (one per backend address and mode), {} exist",
            PROBE_MARKS.start(),
            PROBE_MARKS.end(),
            probes.len(),
            size(&PROBE_MARKS)
        ));
    }
}

/// Checks what the chosen data plane can do; each unsupported feature is an error with its path.
pub fn check_plane(c: &Cluster, plane: super::seesaw_cfg::DataplaneKind) -> Vec<String> {
    use super::seesaw_cfg::DataplaneKind;
    let mut errors = Vec::new();
    for v in c.vservers.values() {
        let path = format!("vserver[{:?}]", v.name);
        if plane == DataplaneKind::Ipvs {
            for e in v.entries.values() {
                if matches!(e.scheduler, Scheduler::Random | Scheduler::P2c) {
                    errors.push(format!(
                        "{path}.vserver_entry[{}].scheduler: {} has no IPVS module; use rr, wrr, lc, wlc, sh, dh or mh (or the proxy data plane)",
                        e.key, e.scheduler
                    ));
                }
            }
        }
        let mut checks: Vec<(String, &Healthcheck)> =
            v.healthchecks.values().map(|h| (path.clone(), h)).collect();
        for e in v.entries.values() {
            for h in e.healthchecks.values() {
                checks.push((format!("{path}.vserver_entry[{}]", e.key), h));
            }
        }
        for (at, hc) in checks {
            let why = match (plane, hc.mode) {
                (_, CheckMode::Plain) | (DataplaneKind::Ipvs | DataplaneKind::Auto, _) => None,
                (DataplaneKind::Proxy, _) => Some(
                    "probes through the VIP need a kernel data plane (nftables or ipvs): the proxy plane cannot forward a marked probe to one backend",
                ),
                (DataplaneKind::Nftables, CheckMode::Tun) => Some(
                    "TUN probes need the ipvs data plane; the nftables data plane has no tunnels (use DSR or PLAIN)",
                ),
                (DataplaneKind::Nftables, CheckMode::Dsr) => None,
            };
            if let Some(why) = why {
                errors.push(format!("{at}.healthcheck[{:?}].mode: {why}", hc.name));
            }
        }
    }
    if plane != DataplaneKind::Proxy {
        for v in c.vservers.values() {
            for e in v.entries.values() {
                if plane == DataplaneKind::Nftables {
                    // lc and wlc are re-weighted from sampled connection counts there.
                    if e.scheduler == Scheduler::P2c {
                        errors.push(format!(
                            "vserver[{:?}].vserver_entry[{}].scheduler: {} (power of two choices) needs the proxy data plane; use wlc, lc, rr, wrr, sh, dh, mh or random",
                            v.name, e.key, e.scheduler
                        ));
                    }
                    if e.mode == ForwardMode::Tun {
                        errors.push(format!(
                            "vserver[{:?}].vserver_entry[{}].mode: TUN needs the ipvs data plane; the nftables data plane forwards in NAT or DSR mode",
                            v.name, e.key
                        ));
                    }
                }
                if plane == DataplaneKind::Nftables {
                    errors.extend(thresholds_need_ipvs(&v.name, e));
                    if e.one_packet && e.mode == ForwardMode::Nat {
                        errors.push(format!(
                            "vserver[{:?}].vserver_entry[{}].one_packet: in NAT mode it needs the ipvs data plane (nftables NAT schedules once per conntrack flow); use DSR, where each datagram is scheduled on its own",
                            v.name, e.key
                        ));
                    }
                }
                if e.proxy != ProxyOpts::default() {
                    errors.push(format!(
                        "vserver[{:?}].vserver_entry[{}].proxy: proxy options (payload rules, UDP flows, drain, PROXY protocol) need the proxy data plane",
                        v.name, e.key
                    ));
                }
            }
            for b in v.backends.values() {
                if !b.group.is_empty() || b.backup {
                    errors.push(format!(
                        "vserver[{:?}].backend[{:?}]: backend groups and backups need the proxy data plane",
                        v.name, b.host.hostname
                    ));
                }
            }
        }
        return errors;
    }
    for v in c.vservers.values() {
        let path = format!("vserver[{:?}]", v.name);
        if v.use_fwm {
            errors.push(format!(
                "{path}.use_fwm: firewall-mark services are not supported by the proxy data plane"
            ));
        }
        for e in v.entries.values() {
            let epath = format!("{path}.vserver_entry[{}]", e.key);
            if e.key.proto == Protocol::Udp
                && e.proxy
                    .rules
                    .iter()
                    .any(|r| r.conds.iter().any(|c| c.key == PayloadKey::TlsSni))
            {
                errors.push(format!(
                    "{epath}.proxy.rule: the TLS server name is a TCP routing key; this entry is UDP"
                ));
            }
            if e.mode != ForwardMode::Nat {
                errors.push(format!(
                    "{epath}.mode: {} is not supported by the proxy data plane (it proxies like NAT; set mode: NAT)",
                    e.mode
                ));
            }
            errors.extend(thresholds_need_ipvs(&v.name, e));
            if e.persistence > 0 {
                errors.push(format!(
                    "{epath}.persistence: the proxy data plane has no persistence table; use scheduler sh or mh (optionally with proxy.hash_offset/hash_length) for affinity"
                ));
            }
        }
    }
    let limit = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(_, hard)| {
            usize::try_from(hard).unwrap_or(usize::MAX)
        });
    let workers = std::env::var("SEESAW_PROXY_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|n| (1..=256).contains(n))
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, std::num::NonZero::get));
    errors.extend(proxy_capacity(c, limit, workers));
    errors
}

/// Whether the proxy relay can hold every service of `c` in `limit` open files with `workers`
/// workers: the relay's own rule (ncc `dataplane/proxy`), so a config it would refuse is refused
/// here first. A TCP service takes a listener per worker while listeners fill at most a quarter
/// of the limit, then one; a UDP service a socket and a thread per worker (4,096 threads at
/// most); a quarter of the limit (at least 1,024) is kept for connections. The limit is this
/// host's hard limit, which every Seesaw process (the relay included) raises itself to.
pub fn proxy_capacity(c: &Cluster, limit: usize, workers: usize) -> Option<String> {
    let (mut held, mut udp, mut services) = (0usize, 0usize, 0usize);
    for v in c.vservers.values().filter(|v| !v.use_fwm) {
        for e in v.entries.values() {
            for _ in &v.vips {
                services += 1;
                match e.key.proto {
                    Protocol::Tcp => {
                        held += if (held + workers) * 4 <= limit {
                            workers
                        } else {
                            1
                        };
                    }
                    Protocol::Udp => {
                        held += workers;
                        udp += 1;
                    }
                }
            }
        }
    }
    let room = limit.saturating_sub(1024.max(limit / 4));
    let mut why = Vec::new();
    if held > room {
        why.push(format!(
            "{services} services need {held} listening sockets in the proxy data plane, which has room for {room} (open-file limit {limit}): raise LimitNOFILE or use a kernel data plane"
        ));
    }
    if udp * workers > 4096 {
        why.push(format!(
            "{udp} UDP services need {} proxy worker threads ({workers} each); the proxy data plane starts at most 4096",
            udp * workers
        ));
    }
    (!why.is_empty()).then(|| why.join("; "))
}

/// The IP of a host in the family of `ip` (helper for tests and the engine).
pub fn same_family(h: &Host, ip: IpAddr) -> Option<IpAddr> {
    match ip {
        IpAddr::V4(_) => h.addr(Af::V4),
        IpAddr::V6(_) => h.addr(Af::V6),
    }
}

/// The refusal of an entry's connection thresholds on a plane other than IPVS, if it has any.
fn thresholds_need_ipvs(vserver: &str, e: &Entry) -> Option<String> {
    (e.lthreshold > 0 || e.uthreshold > 0).then(|| {
        format!(
            "vserver[{vserver:?}].vserver_entry[{}]: connection thresholds (lthreshold {}, uthreshold {}) need the ipvs data plane",
            e.key, e.lthreshold, e.uthreshold
        )
    })
}

#[cfg(test)]
mod check_mode_tests {
    use super::super::load_cluster;

    fn cluster(check: &str) -> String {
        format!(
            r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" status: PRODUCTION >
               node < fqdn: "n." ipv4: "10.0.0.2/24" status: PRODUCTION >
               vserver < name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "10.1.0.1/32" >
                 vserver_entry < protocol: TCP port: 80 mode: DSR scheduler: RR {check} >
                 backend < host < fqdn: "b." ipv4: "10.2.0.1/24" > weight: 1 > >"#
        )
    }

    #[test]
    fn icmp_checks_are_dropped_in_dsr_and_tun_mode() {
        for mode in ["DSR", "TUN"] {
            let text = cluster(&format!(
                "healthcheck < type: ICMP_PING mode: {mode} > healthcheck < type: TCP mode: {mode} >"
            ));
            let pb = super::super::cluster::parse(text.as_bytes()).unwrap();
            let (c, warnings) = super::validate(&pb).expect("loads, as in Seesaw");
            assert_eq!(
                warnings,
                [format!(
                    "vserver[\"web\"].vserver_entry[0].healthcheck[0].mode: ICMP_PING checks cannot run in {mode} mode (an echo to the VIP cannot prove that one backend serves it); check dropped as Seesaw drops it — use PLAIN, or a TCP/UDP/HTTP check in this mode"
                )]
            );
            let entry = c.vservers["web"].entries.values().next().unwrap();
            assert_eq!(
                entry.healthchecks.keys().collect::<Vec<_>>(),
                ["TCP/80_0"],
                "only the ICMP check is dropped"
            );
        }
        for ok in [
            "healthcheck < type: ICMP_PING mode: PLAIN >",
            "healthcheck < type: ICMP_PING >",
            "healthcheck < type: TCP mode: DSR >",
        ] {
            load_cluster(cluster(ok).as_bytes(), None).unwrap_or_else(|e| panic!("{ok}: {e:?}"));
        }
    }
}
