//! What each data plane can hold (`check_plane`), the proxy plane's capacity and the
//! address-family helpers they share (the nftables plane's slot capacity is in `slots.rs`).

use super::*;

/// Why this host's kernel cannot carry the nftables plane's tunnel mode (one `ipip` device
/// per backend; `ip6_tunnel` too when `v6`), or `None` when it can: the module is loaded or
/// built in (`/sys/module/<name>`), or the kernel's module list names it (modprobe would load
/// it). Tunnel mode is validated on the host that runs it, like `auto`: a TUN config that
/// validates here is one ncc here applies.
pub(super) fn tunnels_missing(v6: bool) -> Option<String> {
    static CACHE: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
    let (v4ok, v6ok) = *CACHE.get_or_init(|| (kernel_has("ipip"), kernel_has("ip6_tunnel")));
    let missing: Vec<&str> = [("ipip", v4ok), ("ip6_tunnel", !v6 || v6ok)]
        .into_iter()
        .filter(|(_, ok)| !ok)
        .map(|(m, _)| m)
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "TUN on the nftables data plane needs the kernel module {} (one tunnel device per backend), which this host's kernel does not have",
            missing.join(" and ")
        )
    })
}

fn kernel_has(module: &str) -> bool {
    if std::path::Path::new("/sys/module").join(module).exists() {
        return true;
    }
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let dir = std::path::Path::new("/lib/modules").join(release.trim());
    let file = format!("/{module}.ko");
    ["modules.dep", "modules.builtin"].iter().any(|f| {
        std::fs::read_to_string(dir.join(f)).is_ok_and(|t| {
            t.lines()
                .any(|l| l.split(':').next().is_some_and(|p| p.contains(&file)))
        })
    })
}

/// Checks what the chosen data plane can do; each unsupported feature is an error with its path.
pub fn check_plane(c: &Cluster, plane: crate::config::seesaw_cfg::DataplaneKind) -> Vec<String> {
    use crate::config::seesaw_cfg::DataplaneKind;
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
        let v6 = v.host.ipv6.is_some();
        for (at, hc) in checks {
            let tun_why;
            let why = match (plane, hc.mode) {
                (_, CheckMode::Plain) | (DataplaneKind::Ipvs | DataplaneKind::Auto, _) => None,
                (DataplaneKind::Proxy, _) => Some(
                    "probes through the VIP need a kernel data plane (nftables or ipvs): the proxy plane cannot forward a marked probe to one backend",
                ),
                (DataplaneKind::Nftables, CheckMode::Dsr) => None,
                // TUN probes go through the tunnel device of their target, like client traffic.
                (DataplaneKind::Nftables, CheckMode::Tun) => {
                    tun_why = tunnels_missing(v6);
                    tun_why.as_deref()
                }
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
                    if e.mode == ForwardMode::Tun
                        && let Some(why) = tunnels_missing(v.host.ipv6.is_some())
                    {
                        errors.push(format!(
                            "vserver[{:?}].vserver_entry[{}].mode: {why}",
                            v.name, e.key
                        ));
                    }
                    if e.scheduler == Scheduler::P2c {
                        errors.push(format!(
                            "vserver[{:?}].vserver_entry[{}].scheduler: {} (power of two choices) needs the proxy data plane; use wlc, lc, rr, wrr, sh, dh, mh or random",
                            v.name, e.key, e.scheduler
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
        if plane == DataplaneKind::Nftables {
            errors.extend(nft_capacity(c));
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
pub(super) fn thresholds_need_ipvs(vserver: &str, e: &Entry) -> Option<String> {
    (e.lthreshold > 0 || e.uthreshold > 0).then(|| {
        format!(
            "vserver[{vserver:?}].vserver_entry[{}]: connection thresholds (lthreshold {}, uthreshold {}) need the ipvs data plane",
            e.key, e.lthreshold, e.uthreshold
        )
    })
}
