//! What `show vlans` reports for each VLAN, sans-io: how many distinct backend addresses and
//! distinct vserver entry addresses of the whole cluster fall inside the VLAN host's IPv4 and IPv6
//! subnets. These are Seesaw's counts (`engine/config/config.go`, `addVLANs`): an address is
//! counted once however many vservers name it, and per family of the subnet that holds it.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::{Ipv4Net, Ipv6Net};

use crate::model::{Cluster, Host, Vlan};

/// Addresses counted per address family.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AfCounts {
    /// Inside the VLAN's IPv4 subnet.
    pub ipv4: u32,
    /// Inside the VLAN's IPv6 subnet.
    pub ipv6: u32,
}

/// One VLAN with its counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VlanView {
    /// The VLAN as configured (id and the LB's host on it).
    pub vlan: Vlan,
    /// Distinct backend addresses inside the VLAN's subnets.
    pub backends: AfCounts,
    /// Distinct vserver entry addresses (VIPs) inside the VLAN's subnets.
    pub vips: AfCounts,
}

/// Every VLAN of `cluster`, by id, with its backend and VIP counts.
pub fn vlan_views(cluster: &Cluster) -> Vec<VlanView> {
    if cluster.vlans.is_empty() {
        // Nothing to count into: skip the walk over every vserver and backend.
        return Vec::new();
    }
    let mut backends = BTreeSet::new();
    let mut vips = BTreeSet::new();
    for v in cluster.vservers.values() {
        vips.extend(addresses(&v.host));
        for b in v.backends.values() {
            backends.extend(addresses(&b.host));
        }
    }
    cluster
        .vlans
        .values()
        .map(|vlan| VlanView {
            vlan: vlan.clone(),
            backends: count(&vlan.host, &backends),
            vips: count(&vlan.host, &vips),
        })
        .collect()
}

/// The host's addresses, IPv4 and IPv6.
fn addresses(host: &Host) -> impl Iterator<Item = IpAddr> {
    let v4 = host.ipv4.map(|(a, _)| IpAddr::V4(a));
    let v6 = host.ipv6.map(|(a, _)| IpAddr::V6(a));
    v4.into_iter().chain(v6)
}

/// How many of `addrs` the subnets of `host` (address and prefix length) hold, per family.
fn count(host: &Host, addrs: &BTreeSet<IpAddr>) -> AfCounts {
    let v4 = host.ipv4.and_then(|(a, len)| Ipv4Net::new(a, len).ok());
    let v6 = host.ipv6.and_then(|(a, len)| Ipv6Net::new(a, len).ok());
    let mut counts = AfCounts::default();
    for ip in addrs {
        match ip {
            IpAddr::V4(ip) if v4.is_some_and(|n| n.contains(ip)) => counts.ipv4 += 1,
            IpAddr::V6(ip) if v6.is_some_and(|n| n.contains(ip)) => counts.ipv6 += 1,
            _ => {}
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_cluster;

    fn counts(text: &str) -> Vec<(u16, AfCounts, AfCounts)> {
        let cluster = load_cluster(text.as_bytes(), None).expect("the test cluster loads");
        vlan_views(&cluster)
            .into_iter()
            .map(|v| (v.vlan.id, v.backends, v.vips))
            .collect()
    }

    fn af(ipv4: u32, ipv6: u32) -> AfCounts {
        AfCounts { ipv4, ipv6 }
    }

    #[test]
    fn counts_distinct_backends_and_vips_per_subnet_and_family() {
        // b1 backs both vservers (counted once); b3 and the v6 VIP are outside VLAN 10; VLAN 20
        // holds one IPv4 VIP and the IPv6 backend; VLAN 30 holds nothing.
        let text = r#"
            seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            vlan < vlan_id: 10 host < fqdn: "v10." ipv4: "10.2.0.254/24" ipv6: "2001:db8:10::fe/64" > >
            vlan < vlan_id: 20 host < fqdn: "v20." ipv4: "10.1.0.254/24" ipv6: "2001:db8:20::fe/64" > >
            vlan < vlan_id: 30 host < fqdn: "v30." ipv4: "10.9.0.254/24" > >
            vserver < name: "a" rp: "x" entry_address < fqdn: "a." ipv4: "10.1.0.1/32" >
              vserver_entry < protocol: TCP port: 80 mode: NAT >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
              backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" ipv6: "2001:db8:20::2/64" > >
            >
            vserver < name: "b" rp: "x" entry_address < fqdn: "b." ipv4: "10.3.0.2/32" ipv6: "2001:db8:10::b/128" >
              vserver_entry < protocol: TCP port: 80 mode: NAT >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
              backend < host < fqdn: "b3." ipv4: "10.4.0.3/24" > >
            >
        "#;
        assert_eq!(
            counts(text),
            [
                (10, af(2, 0), af(0, 1)),
                (20, af(0, 1), af(1, 0)),
                (30, af(0, 0), af(0, 0)),
            ]
        );
    }

    #[test]
    fn a_cluster_without_vservers_counts_zero() {
        let text = r#"
            seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            vlan < vlan_id: 7 host < fqdn: "v7." ipv4: "10.7.0.1/24" > >
        "#;
        assert_eq!(counts(text), [(7, af(0, 0), af(0, 0))]);
    }
}
