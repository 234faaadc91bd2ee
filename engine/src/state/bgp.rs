//! What this node announces over BGP, sans-io (reference §3.6, checklist 55): an anycast VIP is
//! announced while every service behind it is healthy — exactly while its services are in the
//! desired data-plane state, because the health rules put an anycast VIP's services there only
//! when all of them are healthy — plus the service anycast VIPs (`service_anycast`: Seesaw's
//! default pair and seesaw.cfg's `[extra_service_anycast]`), which the node also holds.
//!
//! BGP runs only when the config asks for it: cluster.pb has `bgp_peer`s and both ASNs, this node
//! is `bgp_enabled` (serving or building) and anycast is on (`[cluster] anycast_enabled` and the
//! node's status). The ordering against the data plane is the event loop's job (`core.rs`):
//! withdrawals are sent before the services leave the plane, announcements after they are in it.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::EngineState;
use crate::config::seesaw_cfg::is_anycast;
use crate::desired::DesiredState;

/// How this node speaks BGP: the type ncc drives the speaker with.
pub use seesaw_proto::domain::BgpSettings;

/// The announcements this node wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpDesired {
    /// Settings.
    pub settings: BgpSettings,
    /// Host routes to announce.
    pub routes: BTreeSet<IpAddr>,
}

/// One neighbour, for `show bgp neighbors`: ncc's report, which the engine passes to its API
/// without reading it (so it keeps ncc's wire form rather than a copy of it).
pub type BgpNeighborView = seesaw_proto::ncc::BgpNeighbor;

/// Seesaw's service anycast VIPs (`ServiceAnycastIPv4/IPv6` in its engine defaults).
pub(crate) const SERVICE_ANYCAST_V4: Ipv4Addr = Ipv4Addr::new(192, 168, 255, 254);
/// See [`SERVICE_ANYCAST_V4`].
pub(crate) const SERVICE_ANYCAST_V6: Ipv6Addr =
    Ipv6Addr::new(0x2015, 0xcafe, 0xffff, 0, 0, 0, 0, 0x254);

impl EngineState {
    /// The service anycast VIPs this node holds and announces, as Seesaw's `initAnycast` does:
    /// while anycast is enabled (`[cluster] anycast_enabled` and the node's status), Seesaw's
    /// 192.168.255.254 and 2015:cafe:ffff::254 (unless `[bgp] service_anycast` is off) and the
    /// `[extra_service_anycast]` addresses, each while a cluster VIP of its family is set.
    pub fn service_anycast(&self) -> Vec<IpAddr> {
        let loaded = self.loaded();
        let s = &loaded.settings;
        let node_anycast = loaded.local_node().is_some_and(|n| n.anycast_enabled);
        if !(s.anycast_enabled && node_anycast) {
            return Vec::new();
        }
        let lb = self.lb_desired();
        let defaults = [
            IpAddr::V4(SERVICE_ANYCAST_V4),
            IpAddr::V6(SERVICE_ANYCAST_V6),
        ];
        let mut out: Vec<IpAddr> = defaults
            .into_iter()
            .filter(|_| s.service_anycast)
            .chain(s.extra_service_anycast.iter().copied())
            .filter(|ip| match ip {
                IpAddr::V4(_) => lb.cluster_vip_v4.is_some(),
                IpAddr::V6(_) => lb.cluster_vip_v6.is_some(),
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// How BGP runs under the current config, or `None` when it does not.
    pub fn bgp_settings(&self) -> Option<BgpSettings> {
        let loaded = self.loaded();
        let s = &loaded.settings;
        let bgp = &loaded.cluster.bgp;
        let node = loaded.local_node()?;
        let peers: Vec<IpAddr> = bgp
            .peers
            .iter()
            .flat_map(|h| {
                [
                    h.ipv4.map(|(a, _)| IpAddr::V4(a)),
                    h.ipv6.map(|(a, _)| IpAddr::V6(a)),
                ]
            })
            .flatten()
            .collect();
        let usable = !peers.is_empty()
            && bgp.local_asn != 0
            && bgp.remote_asn != 0
            && node.bgp_enabled
            && s.anycast_enabled;
        if !usable {
            return None;
        }
        Some(BgpSettings {
            gobgp_api: s.bgp_gobgp_api.to_string(),
            local_asn: bgp.local_asn,
            remote_asn: bgp.remote_asn,
            peers,
            router_id: s.node_ipv4?,
            next_hop_v4: s.node_ipv4,
            next_hop_v6: s.node_ipv6,
        })
    }

    /// The announcements for `desired` (the state about to be applied), or `None` without BGP.
    /// Only addresses with a next hop of their family are announced.
    pub fn bgp_desired(&self, desired: &DesiredState) -> Option<BgpDesired> {
        let settings = self.bgp_settings()?;
        let node = self.loaded().local_node()?;
        let serving = node.anycast_enabled;
        let routes = desired
            .services
            .iter()
            .map(|s| s.key.vip)
            .filter(|ip| serving && is_anycast(*ip))
            .chain(self.service_anycast())
            .filter(|ip| match ip {
                IpAddr::V4(_) => settings.next_hop_v4.is_some(),
                IpAddr::V6(_) => settings.next_hop_v6.is_some(),
            })
            .collect();
        Some(BgpDesired { settings, routes })
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::config::{Loaded, load_cluster, seesaw_cfg};
    use crate::state::CheckResult;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    /// Two anycast vservers on one VIP (192.168.255.7, ports 80 and 443, each with one checked
    /// backend), one unicast vserver, and BGP peering unless `peers` is false.
    fn state(peers: bool, extra: &str) -> EngineState {
        state_cfg(peers, &format!("service_anycast = false\n{extra}"))
    }

    /// [`state`] with `extra` appended to the `[bgp]` section (Seesaw's service anycast VIPs on).
    fn state_cfg(peers: bool, extra: &str) -> EngineState {
        let cfg = format!(
            "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n\n[bgp]\ngobgp_api = 127.0.0.1:50051\n{extra}"
        );
        let bgp = if peers {
            "bgp_remote_asn: 64512 bgp_local_asn: 64513 bgp_peer < fqdn: \"r.\" ipv4: \"10.0.0.254/24\" >"
        } else {
            ""
        };
        let check = "healthcheck < type: TCP interval: 1 timeout: 1 >";
        let cluster = format!(
            r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            {bgp}
            vserver < name: "uni" rp: "x" entry_address < fqdn: "u." ipv4: "10.1.0.1/32" >
              vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 > >
            vserver < name: "any" rp: "x" entry_address < fqdn: "a." ipv4: "192.168.255.7/32" >
              vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT {check} >
              vserver_entry < protocol: TCP port: 443 scheduler: RR mode: NAT {check} >
              backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > weight: 1 > >"#
        );
        let loaded = Loaded {
            settings: seesaw_cfg::parse(&cfg).expect("seesaw.cfg"),
            cluster: load_cluster(cluster.as_bytes(), None).expect("cluster.pb"),
        };
        EngineState::new(loaded, t0())
    }

    fn routes(e: &mut EngineState) -> Option<Vec<String>> {
        let (_, desired) = e.evaluate();
        e.bgp_desired(&desired)
            .map(|b| b.routes.iter().map(ToString::to_string).collect())
    }

    fn result(healthy: bool) -> CheckResult {
        CheckResult {
            healthy,
            message: "test".to_owned(),
            at: t0(),
        }
    }

    fn set_all(e: &mut EngineState, healthy: bool) {
        let ids: Vec<u64> = e.checks().map(|c| c.id).collect();
        e.health(ids.into_iter().map(|id| (id, result(healthy))));
    }

    #[test]
    fn no_peers_means_no_bgp() {
        let mut e = state(false, "");
        assert_eq!(routes(&mut e), None);
        assert_eq!(e.bgp_settings(), None);
    }

    #[test]
    fn an_anycast_vip_is_announced_only_while_every_service_is_healthy() {
        let mut e = state(true, "");
        let s = e.bgp_settings().expect("bgp on");
        assert_eq!((s.local_asn, s.remote_asn), (64513, 64512));
        assert_eq!(s.peers, ["10.0.0.254".parse::<IpAddr>().unwrap()]);
        assert_eq!(s.next_hop_v4, Some("10.0.0.2".parse().unwrap()));
        // Checks not reported yet: not healthy, nothing announced (the unicast VIP never is).
        assert_eq!(routes(&mut e), Some(vec![]));
        set_all(&mut e, true);
        assert_eq!(routes(&mut e), Some(vec!["192.168.255.7".to_owned()]));
        // One of the two services fails: the VIP is withdrawn.
        let first = e.checks().map(|c| c.id).min().expect("checks");
        e.health(vec![(first, result(false))]);
        assert_eq!(routes(&mut e), Some(vec![]));
    }

    #[test]
    fn extra_service_anycast_addresses_are_held_and_announced_like_seesaws() {
        let mut e = state(true, "\n[extra_service_anycast]\ndns = 192.168.255.53\n");
        assert_eq!(routes(&mut e), Some(vec!["192.168.255.53".to_owned()]));
        let held: Vec<String> = e
            .evaluate()
            .1
            .vips
            .iter()
            .map(ToString::to_string)
            .collect();
        assert!(
            held.contains(&"192.168.255.53 (Anycast)".to_owned()),
            "{held:?}"
        );
        // An IPv6 one waits for an IPv6 cluster VIP, as in Seesaw.
        let mut e = state(
            true,
            "\n[extra_service_anycast]\ndns6 = 2015:cafe:ffff::53\n",
        );
        assert_eq!(routes(&mut e), Some(vec![]));
    }

    #[test]
    fn anycast_disabled_in_seesaw_cfg_turns_bgp_off() {
        let mut e = state(true, "");
        let cfg = "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\nanycast_enabled = false\n";
        let loaded = Loaded {
            settings: seesaw_cfg::parse(cfg).expect("seesaw.cfg"),
            cluster: e.loaded().cluster.clone(),
        };
        e.reload(loaded, t0());
        assert_eq!(routes(&mut e), None);
    }

    #[test]
    fn seesaws_service_anycast_vips_are_held_and_announced_while_anycast_is_on() {
        // The cluster VIP is IPv4 only (seesaw_vip 10.0.0.1): only 192.168.255.254.
        let mut e = state_cfg(true, "");
        assert_eq!(routes(&mut e), Some(vec!["192.168.255.254".to_owned()]));
        let held = |e: &mut EngineState| -> Vec<String> {
            e.evaluate().1.vips.iter().map(|v| v.to_string()).collect()
        };
        // Held beside the unicast vserver's VIP (its anycast vserver is not healthy yet).
        assert_eq!(
            held(&mut e),
            ["10.1.0.1 (Unicast)", "192.168.255.254 (Anycast)"]
        );
        // With an IPv6 cluster VIP and node address, 2015:cafe:ffff::254 too.
        let mut e = state_cfg(true, "");
        let mut loaded = (**e.loaded()).clone();
        loaded.settings.vip_ipv6 = Some("2001:db8::1".parse().unwrap());
        loaded.settings.node_ipv6 = Some("2001:db8::2".parse().unwrap());
        e.reload(loaded, t0());
        assert_eq!(
            routes(&mut e),
            Some(vec![
                "192.168.255.254".to_owned(),
                "2015:cafe:ffff::254".to_owned()
            ])
        );
        // The key turns them off; so does anycast_enabled = false.
        let mut e = state_cfg(true, "service_anycast = off\n");
        assert_eq!(routes(&mut e), Some(vec![]));
        assert_eq!(held(&mut e), ["10.1.0.1 (Unicast)"]);
        let mut e = state_cfg(true, "");
        let mut loaded = (**e.loaded()).clone();
        loaded.settings.anycast_enabled = false;
        e.reload(loaded, t0());
        assert!(e.service_anycast().is_empty());
        assert_eq!(held(&mut e), ["10.1.0.1 (Unicast)"]);
    }
}
