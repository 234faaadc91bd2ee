//! `vip_pool`: address ranges (and port ranges) that services created without a VIP draw from.
//! Every range must parse, names must be unique and clean, port ranges ordered and inside
//! 1..65535, and no two pools may overlap (an address would be handed out twice).

use super::*;
use crate::model::VipPool;

pub(super) fn vip_pools(c: &pb::Cluster, r: &mut Report) -> Vec<VipPool> {
    let mut out: Vec<VipPool> = Vec::new();
    for (i, p) in c.vip_pool.iter().enumerate() {
        let path = format!("vip_pool[{i}]");
        if p.name.is_empty()
            || p.name
                .chars()
                .any(|ch| ch.is_control() || ch.is_whitespace() || ch == '/')
        {
            r.errors
                .push(format!("{path}.name: {:?} is not a valid name", p.name));
        }
        if out.iter().any(|o| o.name == p.name) {
            r.errors
                .push(format!("{path}.name: duplicate pool {:?}", p.name));
        }
        if p.cidr.is_empty() {
            r.errors
                .push(format!("{path}.cidr: a pool needs at least one range"));
        }
        let mut nets = Vec::new();
        for (j, s) in p.cidr.iter().enumerate() {
            match s.parse::<IpNet>() {
                Ok(n) if n.network() == n.addr() => nets.push(n),
                Ok(n) => r.errors.push(format!(
                    "{path}.cidr[{j}]: {s} has host bits set (did you mean {}?)",
                    n.trunc()
                )),
                Err(_) => r
                    .errors
                    .push(format!("{path}.cidr[{j}]: {s:?} is not a CIDR range")),
            }
        }
        let ports = match (p.port_min, p.port_max) {
            (None, None) => None,
            (Some(lo), Some(hi)) if (1..=hi).contains(&lo) && hi <= 65_535 => Some((
                u16::try_from(lo).unwrap_or(1),
                u16::try_from(hi).unwrap_or(u16::MAX),
            )),
            (Some(lo), Some(hi)) => {
                r.errors.push(format!(
                    "{path}: ports {lo}..{hi} are not an ordered range in 1..65535"
                ));
                None
            }
            _ => {
                r.errors
                    .push(format!("{path}: port_min and port_max go together"));
                None
            }
        };
        for n in &nets {
            for o in &out {
                if let Some(m) = o
                    .nets
                    .iter()
                    .find(|m| m.contains(&n.network()) || n.contains(&m.network()))
                {
                    r.errors
                        .push(format!("{path}: {n} overlaps {m} of pool {:?}", o.name));
                }
            }
        }
        out.push(VipPool {
            name: p.name.clone(),
            nets,
            ports,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::config::load_cluster;

    fn load(pools: &str) -> Result<crate::model::Cluster, Vec<String>> {
        load_cluster(
            format!(r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" > {pools}"#).as_bytes(),
            None,
        )
    }

    #[test]
    fn pools_parse_and_number_their_addresses() {
        let c = load(r#"vip_pool < name: "pub" cidr: "10.64.0.0/30" cidr: "2001:db8::/127" port_min: 8000 port_max: 8099 >"#)
            .unwrap();
        let p = &c.vip_pools[0];
        assert_eq!(p.ports, Some((8000, 8099)));
        assert_eq!(p.addresses(), 2 + 2);
        let all: Vec<String> = (0..5)
            .filter_map(|i| p.address(i))
            .map(|a| a.to_string())
            .collect();
        assert_eq!(all, ["10.64.0.1", "10.64.0.2", "2001:db8::", "2001:db8::1"]);
    }

    #[test]
    fn bad_pools_are_refused_with_their_path() {
        for (pools, want) in [
            (
                r#"vip_pool < name: "a" >"#,
                "vip_pool[0].cidr: a pool needs",
            ),
            (r#"vip_pool < name: "a" cidr: "10.0.0.1/16" >"#, "host bits"),
            (r#"vip_pool < name: "a" cidr: "nope" >"#, "not a CIDR"),
            (
                r#"vip_pool < name: "a b" cidr: "10.9.0.0/16" >"#,
                "valid name",
            ),
            (
                r#"vip_pool < name: "a" cidr: "10.9.0.0/16" port_min: 9 >"#,
                "go together",
            ),
            (
                r#"vip_pool < name: "a" cidr: "10.9.0.0/16" port_min: 9 port_max: 8 >"#,
                "ordered range",
            ),
            (
                r#"vip_pool < name: "a" cidr: "10.9.0.0/16" port_min: 1 port_max: 70000 >"#,
                "ordered range",
            ),
            (
                r#"vip_pool < name: "a" cidr: "10.9.0.0/16" > vip_pool < name: "a" cidr: "10.8.0.0/16" >"#,
                "duplicate pool",
            ),
            (
                r#"vip_pool < name: "a" cidr: "10.9.0.0/16" > vip_pool < name: "b" cidr: "10.9.3.0/24" >"#,
                "overlaps",
            ),
        ] {
            let e = load(pools).unwrap_err();
            assert!(e.iter().any(|e| e.contains(want)), "{pools}: {e:?}");
        }
    }
}
