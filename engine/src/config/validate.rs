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

mod checks;
mod plane;
mod proxy;
mod slots;
mod vip_pools;

pub use checks::{healthcheck, healthchecks};
pub use plane::{check_plane, proxy_capacity, same_family};
use proxy::proxy_opts;
pub use slots::{MAX_SLOTS as NFT_MAX_SLOTS, nft_capacity, nft_slots, nft_slots_bound};

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
    let vip_pools = vip_pools::vip_pools(c, &mut r);
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
            vip_pools,
            warnings: r.warnings,
            etcd: None,
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
