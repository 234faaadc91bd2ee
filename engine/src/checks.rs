//! Expands the configuration into the services, destinations and health checks the engine tracks.
//! Check ids are a stable hash of what the probe does, so they survive reloads and engine restarts
//! (the healthcheck process keeps state by id) and identical plain probes run once per node.

use std::collections::BTreeMap;
use std::hash::Hasher;
use std::net::IpAddr;

use crate::config::Loaded;
use crate::desired::ServiceKey;
use crate::model::{Af, CheckMode, Entry, Healthcheck, Vserver};
use crate::overrides::{OverrideKind, OverrideState, Overrides};

/// A probe the healthcheck process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckSpec {
    /// Stable id.
    pub id: u64,
    /// The check config.
    pub check: Healthcheck,
    /// Address probed.
    pub target: IpAddr,
    /// Port probed.
    pub port: u16,
    /// DSR/TUN probes: the VIP the probe is sent to (with `mark`), reaching `target` through
    /// the data plane.
    pub vip: Option<IpAddr>,
    /// DSR/TUN probes: the firewall mark of the target's probe service (set by the engine
    /// state from its mark pool; 0 until assigned).
    pub mark: u32,
    /// Human-readable owner, for logs and `show` output.
    pub description: String,
}

/// A destination: one backend of one service, with the checks that decide its health.
#[derive(Debug, Clone, PartialEq)]
pub struct DestTopo {
    /// Seesaw's destination name `<vserver>/<ip>:<port>/<proto>`.
    pub name: String,
    /// Backend hostname.
    pub backend: String,
    /// Backend address.
    pub ip: IpAddr,
    /// Backend port.
    pub port: u16,
    /// Weight.
    pub weight: u32,
    /// Backend enabled by config.
    pub enabled: bool,
    /// Counts in the watermark denominator.
    pub in_service: bool,
    /// Backend group for payload rules ("" the default group).
    pub group: String,
    /// A backup destination (used only when no primary of its group is healthy).
    pub backup: bool,
    /// (check name, id) of every check: vserver-level then entry-level.
    pub checks: Vec<(String, u64)>,
    /// The destination or backend override deciding `enabled`, if any.
    pub override_state: Option<OverrideState>,
}

/// A service: one VIP × one entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceTopo {
    /// Identity.
    pub key: ServiceKey,
    /// The entry config (shared with every view of the service).
    pub entry: std::sync::Arc<Entry>,
    /// Destinations.
    pub dests: Vec<DestTopo>,
}

/// A vserver and its services, as the engine runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct VserverTopo {
    /// The vserver config.
    pub config: Vserver,
    /// Whether it runs (enabled by config or override, and the node runs vservers).
    pub enabled: bool,
    /// The vserver override in force, if any.
    pub override_state: Option<OverrideState>,
    /// Services, sorted by family, protocol, port.
    pub services: Vec<ServiceTopo>,
}

/// Everything derived from one config.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Topology {
    /// Vservers by name.
    pub vservers: BTreeMap<String, VserverTopo>,
    /// Every distinct check by id.
    pub checks: BTreeMap<u64, CheckSpec>,
}

/// Builds the topology of `loaded` for this node, without overrides.
pub fn expand(loaded: &Loaded) -> Topology {
    expand_with(loaded, &Overrides::default())
}

/// Builds the topology of `loaded` for this node with `overrides` applied. Node-level disablement
/// wins over everything: a vserver override cannot run vservers on a node that must not.
pub fn expand_with(loaded: &Loaded, overrides: &Overrides) -> Topology {
    let node_runs_vservers = loaded.local_node().is_some_and(|n| n.vservers_enabled);
    let mut topo = Topology::default();
    for v in loaded.cluster.vservers.values() {
        let enabled = node_runs_vservers && overrides.vserver_enabled(&v.name, v.enabled);
        let mut services = Vec::new();
        for af in Af::ALL {
            let Some(vip) = v.host.addr(af) else { continue };
            for entry in v.entries.values() {
                let key = ServiceKey::new(vip, entry.key.proto, entry.key.port);
                let mut dests = Vec::new();
                for b in v.backends.values() {
                    let Some(ip) = b.host.addr(af) else { continue };
                    let name = format!("{}/{}", v.name, dest_label(ip, entry.backend_port, &key));
                    let override_state = overrides.destination(&name, &b.host.hostname);
                    let dest_enabled = match override_state {
                        Some(OverrideState::Enabled) => true,
                        Some(OverrideState::Disabled) => false,
                        _ => b.enabled,
                    };
                    let mut checks = Vec::new();
                    // A disabled vserver or destination exports no checks (Seesaw does the same).
                    if enabled && dest_enabled {
                        let vserver_level = v.healthchecks.values().map(|hc| (hc, true));
                        let entry_level = entry.healthchecks.values().map(|hc| (hc, false));
                        for (hc, vserver_wide) in vserver_level.chain(entry_level) {
                            let spec = check_spec(v, &key, hc, ip, vserver_wide);
                            checks.push((hc.name.clone(), spec.id));
                            topo.checks.entry(spec.id).or_insert(spec);
                        }
                    }
                    dests.push(DestTopo {
                        name,
                        backend: b.host.hostname.clone(),
                        ip,
                        port: entry.backend_port,
                        weight: b.weight,
                        enabled: dest_enabled,
                        in_service: b.in_service,
                        group: b.group.clone(),
                        backup: b.backup,
                        checks,
                        override_state,
                    });
                }
                services.push(ServiceTopo {
                    key,
                    entry: std::sync::Arc::new(entry.clone()),
                    dests,
                });
            }
        }
        topo.vservers.insert(
            v.name.clone(),
            VserverTopo {
                config: v.clone(),
                enabled,
                services,
                override_state: overrides.get(OverrideKind::Vserver, &v.name),
            },
        );
    }
    topo
}

fn dest_label(ip: IpAddr, port: u16, key: &ServiceKey) -> String {
    match ip {
        IpAddr::V4(ip) => format!("{ip}:{port}/{}", key.proto),
        IpAddr::V6(ip) => format!("[{ip}]:{port}/{}", key.proto),
    }
}

fn check_spec(
    v: &Vserver,
    key: &ServiceKey,
    hc: &Healthcheck,
    target: IpAddr,
    vserver_wide: bool,
) -> CheckSpec {
    // Plain probes go straight to the backend, so the same probe serves every vserver and entry
    // that uses it. DSR/TUN probes go through the VIP: a vserver-level one runs once per (VIP,
    // backend) whatever the entry, as Seesaw keys it (port and protocol 0); an entry-level one
    // stays per service.
    let via = match (hc.mode, vserver_wide) {
        (CheckMode::Plain, _) => String::new(),
        (CheckMode::Dsr | CheckMode::Tun, true) => key.vip.to_string(),
        (CheckMode::Dsr | CheckMode::Tun, false) => key.to_string(),
    };
    let canonical = format!(
        "{target}|{}|{:?}|{:?}|{}|{}|{}|{:?}|{:?}|{}|{:?}|{}|{}|{}|{via}",
        hc.port,
        hc.kind,
        hc.mode,
        hc.interval.as_millis(),
        hc.timeout.as_millis(),
        hc.retries,
        hc.send,
        hc.receive,
        hc.code,
        hc.method,
        hc.proxy,
        hc.tls_verify,
        hc.rise,
    );
    // xxh64 with a fixed seed is specified and stable across builds, unlike std's DefaultHasher.
    let mut h = twox_hash::XxHash64::with_seed(0x5ee5_a11c);
    h.write(canonical.as_bytes());
    CheckSpec {
        id: h.finish(),
        check: hc.clone(),
        target,
        port: hc.port,
        vip: (hc.mode != CheckMode::Plain).then_some(key.vip),
        mark: 0,
        description: format!("{} {} {target}:{}", v.name, hc.name, hc.port),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_cluster, seesaw_cfg};

    fn loaded(cluster: &str) -> Loaded {
        Loaded {
            settings: seesaw_cfg::parse("[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n").unwrap(),
            cluster: load_cluster(cluster.as_bytes(), None).unwrap(),
        }
    }

    const TWO_VSERVERS: &str = r#"
        seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        node < fqdn: "n." ipv4: "10.0.0.2/24" >
        vserver < name: "a" rp: "x" entry_address < fqdn: "a." ipv4: "10.1.0.1/32" >
          vserver_entry < protocol: TCP port: 80 healthcheck < type: HTTP send: "/h" > >
          vserver_entry < protocol: TCP port: 81 >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
          healthcheck < type: TCP port: 22 >
        >
        vserver < name: "b" rp: "x" entry_address < fqdn: "b." ipv4: "10.1.0.2/32" >
          vserver_entry < protocol: TCP port: 80 healthcheck < type: HTTP send: "/h" > >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
        >
    "#;

    #[test]
    fn identical_plain_probes_are_shared_and_ids_are_stable() {
        let t = expand(&loaded(TWO_VSERVERS));
        // a: TCP/22 (vserver-level, shared by both entries) + HTTP/80; b: the same HTTP/80 probe.
        assert_eq!(t.checks.len(), 2);
        let a80 = &t.vservers["a"].services[0].dests[0];
        let a81 = &t.vservers["a"].services[1].dests[0];
        let b80 = &t.vservers["b"].services[0].dests[0];
        assert_eq!(a80.name, "a/10.2.0.1:80/TCP");
        assert_eq!(a80.checks.len(), 2);
        assert_eq!(a81.checks, [a80.checks[0].clone()]);
        assert_eq!(b80.checks, [a80.checks[1].clone()]);
        // Same config, same ids: a reload or engine restart keeps the healthcheck state.
        assert_eq!(
            expand(&loaded(TWO_VSERVERS))
                .checks
                .keys()
                .collect::<Vec<_>>(),
            t.checks.keys().collect::<Vec<_>>()
        );
    }

    /// Seesaw keys a vserver-level check by (VIP, backend) with port and protocol 0, so a DSR
    /// vserver-level check runs once per VIP and backend however many entries share it; an
    /// entry-level DSR check stays per service.
    #[test]
    fn vserver_level_dsr_checks_run_once_per_vip_and_backend() {
        let text = r#"
            seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            vserver < name: "dsr" rp: "x"
              entry_address < fqdn: "d." ipv4: "10.1.0.9/32" ipv6: "2001:db8::9/128" >
              vserver_entry < protocol: TCP port: 80 mode: DSR >
              vserver_entry < protocol: TCP port: 443 mode: DSR
                healthcheck < type: TCP port: 443 mode: DSR > >
              vserver_entry < protocol: UDP port: 53 mode: DSR >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" ipv6: "2001:db8:2::1/64" > >
              backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > >
              healthcheck < type: HTTP port: 8080 mode: DSR send: "/h" >
            >
        "#;
        let t = expand(&loaded(text));
        let vserver_level: Vec<&CheckSpec> = t.checks.values().filter(|c| c.port == 8080).collect();
        // (10.1.0.9, b1), (10.1.0.9, b2), (2001:db8::9, b1): three probes, not nine.
        assert_eq!(vserver_level.len(), 3, "{vserver_level:#?}");
        let mut pairs: Vec<String> = vserver_level
            .iter()
            .map(|c| format!("{} -> {}", c.vip.unwrap(), c.target))
            .collect();
        pairs.sort();
        assert_eq!(
            pairs,
            [
                "10.1.0.9 -> 10.2.0.1",
                "10.1.0.9 -> 10.2.0.2",
                "2001:db8::9 -> 2001:db8:2::1"
            ]
        );
        // Every entry's destination on b1 over IPv4 hangs off the same vserver-level probe.
        let v = &t.vservers["dsr"];
        let ids: Vec<u64> = v
            .services
            .iter()
            .filter(|s| s.key.vip.is_ipv4())
            .flat_map(|s| s.dests.iter().filter(|d| d.backend == "b1."))
            .map(|d| d.checks[0].1)
            .collect();
        assert_eq!(ids.len(), 3);
        assert!(ids.iter().all(|id| *id == ids[0]));
        // The entry-level DSR check: one per (service, backend): 2 families' backends on 443.
        assert_eq!(t.checks.values().filter(|c| c.port == 443).count(), 3);
    }

    #[test]
    fn disabled_vserver_and_backend_export_no_checks() {
        let text = TWO_VSERVERS.replace(
            r#"entry_address < fqdn: "b." ipv4: "10.1.0.2/32" >"#,
            r#"entry_address < fqdn: "b." ipv4: "10.1.0.2/32" status: DISABLED >"#,
        );
        let t = expand(&loaded(&text));
        assert!(!t.vservers["b"].enabled);
        assert!(t.vservers["b"].services[0].dests[0].checks.is_empty());
        let text = TWO_VSERVERS.replace(
            r#"fqdn: "b1." ipv4: "10.2.0.1/24" >"#,
            r#"fqdn: "b1." ipv4: "10.2.0.1/24" status: BUILDING >"#,
        );
        let t = expand(&loaded(&text));
        assert!(t.checks.is_empty());
        assert!(!t.vservers["a"].services[0].dests[0].enabled);
        assert!(!t.vservers["a"].services[0].dests[0].in_service);
    }

    #[test]
    fn unknown_node_runs_no_vservers() {
        let mut l = loaded(TWO_VSERVERS);
        l.settings.node_ipv4 = Some("10.0.0.9".parse().unwrap());
        let t = expand(&l);
        assert!(t.vservers.values().all(|v| !v.enabled));
        assert!(t.checks.is_empty());
    }
}
