//! The LB manager over a stateful fake kernel that behaves like Linux where it matters (link
//! down drops IPv6 addresses and the routes through the link, duplicates are `EEXIST`, VLANs
//! need 802.1q), and over the real kernel in a private network namespace when root.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::test_support::{Heard, in_private_netns};

#[derive(Debug, Default)]
struct K {
    links: BTreeMap<u32, LinkInfo>,
    addrs: Vec<HeldAddr>,
    routes: Vec<RouteInfo>,
    rules: Vec<RuleInfo>,
    next_index: u32,
    no_8021q: bool,
    /// Every mutating call, in order.
    log: Vec<String>,
}

#[derive(Debug, Clone, Default)]
struct Fake(Arc<Mutex<K>>);

fn link(index: u32, name: &str, mac: Mac) -> LinkInfo {
    LinkInfo {
        index,
        name: name.into(),
        up: true,
        mac: Some(mac),
        perm_mac: Some(mac),
        parent: None,
        kind: Some("veth".into()),
        vlan_id: None,
    }
}

const NODE_MAC: Mac = [2, 0, 0, 0, 0, 2];
const LB_MAC: Mac = [2, 0, 0, 0, 0, 3];

impl Fake {
    /// eth0 (node, 192.0.2.10/24 and 2001:db8::10/64) and eth1 (LB, a foreign IPv6 address),
    /// a main-table default route via 192.0.2.254.
    fn two_nics() -> Self {
        let f = Self::default();
        {
            let mut k = f.0.lock().unwrap();
            k.links.insert(2, link(2, "eth0", NODE_MAC));
            k.links.insert(3, link(3, "eth1", LB_MAC));
            k.next_index = 10;
            for (i, a, p) in [
                (2, "192.0.2.10", 24),
                (2, "2001:db8::10", 64),
                (3, "2001:db8:1::99", 64),
            ] {
                k.addrs.push(HeldAddr {
                    index: i,
                    addr: a.parse().unwrap(),
                    prefix: p,
                    proto: 0,
                });
            }
            k.routes.push(RouteInfo {
                table: RT_TABLE_MAIN,
                dst: ("0.0.0.0".parse().unwrap(), 0),
                gateway: Some("192.0.2.254".parse().unwrap()),
                oif: Some(2),
                protocol: 4,
                scope: RT_SCOPE_UNIVERSE,
                kind: RTN_UNICAST,
                metric: None,
            });
        }
        f
    }

    fn up(&self, name: &str) -> bool {
        let k = self.0.lock().unwrap();
        k.links.values().find(|l| l.name == name).unwrap().up
    }

    fn has_addr(&self, index: u32, a: &str) -> bool {
        let a: IpAddr = a.parse().unwrap();
        let k = self.0.lock().unwrap();
        k.addrs.iter().any(|h| h.index == index && h.addr == a)
    }
}

fn exists() -> NccError {
    NccError::Plane("rtnetlink: File exists (os error 17)".into())
}

/// The fake kernel's add or delete of one object in `held`, where `same` finds it: an add of one
/// held fails with EEXIST, a delete of one not held with `missing`; then the log line `what`.
fn add_or_del<T>(
    (held, log): (&mut Vec<T>, &mut Vec<String>),
    add: bool,
    same: impl FnMut(&T) -> bool,
    new: impl FnOnce() -> T,
    (missing, what): (&str, String),
) -> Result<(), NccError> {
    match (add, held.iter().position(same)) {
        (true, None) => held.push(new()),
        (false, Some(p)) => {
            held.remove(p);
        }
        (true, Some(_)) => return Err(exists()),
        (false, None) => return Err(NccError::Plane(missing.into())),
    }
    log.push(format!("{} {what}", if add { "add" } else { "del" }));
    Ok(())
}

impl LbKernel for Fake {
    fn links(&mut self) -> Result<Vec<LinkInfo>, NccError> {
        Ok(self.0.lock().unwrap().links.values().cloned().collect())
    }
    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError> {
        Ok(self.0.lock().unwrap().addrs.clone())
    }
    fn routes(&mut self) -> Result<Vec<RouteInfo>, NccError> {
        Ok(self.0.lock().unwrap().routes.clone())
    }
    fn rules(&mut self) -> Result<Vec<RuleInfo>, NccError> {
        Ok(self.0.lock().unwrap().rules.clone())
    }
    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        let parent_up = {
            let l = k
                .links
                .get(&index)
                .ok_or_else(|| NccError::Plane("ENODEV".into()))?;
            l.parent.and_then(|p| k.links.get(&p)).is_none_or(|p| p.up)
        };
        if up && !parent_up {
            return Err(NccError::Plane(
                "rtnetlink: Network is down (os error 100)".into(),
            ));
        }
        k.links.get_mut(&index).expect("checked").up = up;
        k.log
            .push(format!("link {index} {}", if up { "up" } else { "down" }));
        if !up {
            // Linux: IPv6 addresses and every route through the link go.
            k.addrs.retain(|a| !(a.index == index && a.addr.is_ipv6()));
            k.routes.retain(|r| r.oif != Some(index));
        }
        Ok(())
    }
    fn set_mac(&mut self, index: u32, mac: Mac) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        let l = k
            .links
            .get_mut(&index)
            .ok_or_else(|| NccError::Plane("ENODEV".into()))?;
        if l.up {
            return Err(NccError::Plane("rtnetlink: Device or resource busy".into()));
        }
        l.mac = Some(mac);
        k.log.push(format!("mac {index}"));
        Ok(())
    }
    fn add_vlan(&mut self, parent: u32, name: &str, id: u16) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        if k.no_8021q {
            return Err(NccError::Unsupported(vec!["no 802.1q".into()]));
        }
        if k.links.values().any(|l| l.name == name) {
            return Err(exists());
        }
        let mac = k.links.get(&parent).and_then(|p| p.mac);
        let index = k.next_index;
        k.next_index += 1;
        k.links.insert(
            index,
            LinkInfo {
                index,
                name: name.into(),
                up: false,
                mac,
                perm_mac: None,
                parent: Some(parent),
                kind: Some("vlan".into()),
                vlan_id: Some(id),
            },
        );
        k.log.push(format!("add vlan {name}"));
        Ok(())
    }
    fn del_link(&mut self, index: u32) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        k.links.remove(&index);
        k.addrs.retain(|a| a.index != index);
        k.routes.retain(|r| r.oif != Some(index));
        k.log.push(format!("del link {index}"));
        Ok(())
    }
    fn addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError> {
        let k = &mut *self.0.lock().unwrap();
        add_or_del(
            (&mut k.addrs, &mut k.log),
            add,
            |h| h.index == a.index && h.addr == a.addr,
            || *a,
            ("EADDRNOTAVAIL", a.addr.to_string()),
        )
    }
    fn route(&mut self, add: bool, r: &RouteInfo) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        if add && r.oif.and_then(|o| k.links.get(&o)).is_none_or(|l| !l.up) {
            return Err(NccError::Plane("rtnetlink: Network is down".into()));
        }
        let k = &mut *k;
        add_or_del(
            (&mut k.routes, &mut k.log),
            add,
            |h| h == r,
            || *r,
            ("ESRCH", "route".into()),
        )
    }
    fn rule(&mut self, add: bool, r: &RuleInfo) -> Result<(), NccError> {
        let k = &mut *self.0.lock().unwrap();
        add_or_del(
            (&mut k.rules, &mut k.log),
            add,
            |h| (h.src, h.dst, h.table) == (r.src, r.dst, r.table),
            || RuleInfo {
                priority: Some(32765),
                ..*r
            },
            ("ENOENT", "rule".into()),
        )
    }
}

/// The GARP loop's targets and interval.
type LoopState = (Vec<(String, IpAddr)>, Duration);

/// The GARP loop's current set and interval.
#[derive(Debug, Clone, Default)]
struct Loop(Arc<Mutex<LoopState>>);

impl Periodic for Loop {
    fn set(&self, targets: Vec<(String, IpAddr)>, interval: Duration) {
        *self.0.lock().unwrap() = (targets, interval);
    }
}

fn want(up: bool) -> LbWant {
    LbWant {
        up,
        cluster_v4: Some("192.0.2.1".parse().unwrap()),
        cluster_v6: Some("2001:db8::1".parse().unwrap()),
        table: 2,
        vmac: None,
        garp_interval: Duration::from_secs(10),
        vlans: Vec::new(),
    }
}

fn manager(k: &Fake, lb: &str, heard: &Heard, garp: &Loop) -> Lb {
    Lb::new(
        Box::new(k.clone()),
        lb.into(),
        "eth0".into(),
        Some(Box::new(heard.clone())),
        Some(Box::new(garp.clone())),
        None,
    )
}

fn uni(a: &str) -> Vip {
    Vip {
        addr: a.parse().unwrap(),
        kind: VipKind::Unicast,
    }
}

#[test]
fn master_and_backup_drive_link_rules_routes_and_garp() {
    let k = Fake::two_nics();
    let (heard, garp) = (Heard::default(), Loop::default());
    let mut lb = manager(&k, "eth1", &heard, &garp);
    let vips = [
        uni("198.51.100.1"),
        uni("2001:db8:5::1"),
        Vip {
            addr: "192.168.255.7".parse().unwrap(),
            kind: VipKind::Anycast,
        },
    ];

    // Backup first (the engine's posture before any HA report): link down, cluster VIP held
    // with the node network's prefix, rules in place, no routes, no GARP.
    let plan = lb.apply(&want(false), &[]).unwrap();
    assert_eq!(
        plan.changes,
        [
            "add 192.0.2.1/24 on eth1",
            "add 2001:db8::1/64 on eth1",
            "eth1 down",
            "add rule to 192.0.2.1 lookup 2",
            "add rule from 192.0.2.1 lookup 2",
        ]
    );
    assert!(!k.up("eth1"));
    assert!(
        k.has_addr(3, "2001:db8:1::99"),
        "IPv6 kept across link down"
    );
    assert!(k.has_addr(3, "2001:db8::1"), "IPv6 cluster VIP kept");
    assert!(
        k.0.lock()
            .unwrap()
            .addrs
            .iter()
            .any(|a| a.addr == "2001:db8:1::99".parse::<IpAddr>().unwrap() && a.proto == 0),
        "a foreign address is put back as it was"
    );
    assert_eq!(plan.keep.len(), 2);
    assert!(garp.0.lock().unwrap().0.is_empty());
    assert!(heard.0.lock().unwrap().is_empty());
    assert!(
        lb.apply(&want(false), &[]).unwrap().changes.is_empty(),
        "idempotent"
    );

    // Master: link up, routes, a `from` rule per unicast IPv4 VIP, burst and GARP loop.
    let plan = lb.apply(&want(true), &vips).unwrap();
    assert_eq!(
        plan.changes,
        [
            "eth1 up",
            "add rule from 198.51.100.1 lookup 2",
            "add route 192.0.2.0/24 table 2",
            "add route default via 192.0.2.254 table 2",
        ]
    );
    assert!(k.up("eth1"));
    let routes = k.0.lock().unwrap().routes.clone();
    assert!(routes.iter().any(|r| r.table == 2
        && r.dst == ("192.0.2.0".parse().unwrap(), 24)
        && r.oif == Some(3)
        && r.scope == RT_SCOPE_LINK));
    assert_eq!(
        *heard.0.lock().unwrap(),
        [
            ("eth1".to_owned(), "192.0.2.1".parse().unwrap()),
            ("eth1".to_owned(), "2001:db8::1".parse().unwrap())
        ],
        "burst for the cluster VIPs on becoming master"
    );
    let (targets, every) = garp.0.lock().unwrap().clone();
    assert_eq!(every, Duration::from_secs(10));
    assert_eq!(
        targets,
        [
            ("eth1".to_owned(), "192.0.2.1".parse().unwrap()),
            ("eth1".to_owned(), "198.51.100.1".parse().unwrap())
        ],
        "without VMAC: the cluster VIP and every non-anycast IPv4 VIP"
    );
    assert!(
        lb.apply(&want(true), &vips).unwrap().changes.is_empty(),
        "idempotent"
    );
    assert_eq!(heard.0.lock().unwrap().len(), 2, "no second burst");

    // A new manager (ncc restarted) adopts everything: no change.
    let mut again = manager(&k, "eth1", &Heard::default(), &Loop::default());
    assert!(again.apply(&want(true), &vips).unwrap().changes.is_empty());

    // Backup again: the reverse; the VIP's rule goes with the VIP.
    let plan = lb.apply(&want(false), &[]).unwrap();
    assert_eq!(
        plan.changes,
        ["eth1 down", "delete rule from 198.51.100.1 lookup 2"]
    );
    assert!(k.0.lock().unwrap().routes.iter().all(|r| r.table != 2));
    assert!(garp.0.lock().unwrap().0.is_empty(), "the GARP loop stops");
    assert!(k.has_addr(3, "2001:db8:1::99") && k.has_addr(3, "2001:db8::1"));

    // A changed table moves the rules.
    let plan = lb
        .apply(
            &LbWant {
                table: 7,
                ..want(false)
            },
            &[],
        )
        .unwrap();
    assert_eq!(plan.changes.len(), 4, "{:?}", plan.changes);
    assert!(k.0.lock().unwrap().rules.iter().all(|r| r.table == 7));
}

#[test]
fn vmac_is_set_with_the_link_down_and_undone_without_use_vmac() {
    let k = Fake::two_nics();
    let garp = Loop::default();
    let mut lb = manager(&k, "eth1", &Heard::default(), &garp);
    let with = LbWant {
        vmac: Some(vmac(60)),
        ..want(true)
    };
    let plan = lb.apply(&with, &[uni("198.51.100.1")]).unwrap();
    assert_eq!(
        plan.changes[..3],
        [
            "eth1 down",
            "set MAC 00:00:5e:00:01:3c on eth1",
            "add 192.0.2.1/24 on eth1"
        ]
    );
    assert!(plan.changes.contains(&"eth1 up".to_owned()));
    let l = k.0.lock().unwrap().links[&3].clone();
    assert_eq!(l.mac, Some([0, 0, 0x5e, 0, 1, 0x3c]));
    assert!(l.up, "up again as master");
    assert_eq!(
        garp.0.lock().unwrap().0,
        [("eth1".to_owned(), "192.0.2.1".parse().unwrap())],
        "with VMAC only the cluster VIP"
    );
    assert!(
        lb.apply(&with, &[])
            .unwrap()
            .changes
            .iter()
            .all(|c| !c.contains("MAC"))
    );
    let plan = lb.apply(&want(true), &[]).unwrap();
    assert!(
        plan.changes
            .contains(&"set MAC 02:00:00:00:00:03 on eth1".to_owned())
    );
    assert_eq!(k.0.lock().unwrap().links[&3].mac, Some(LB_MAC));
}

#[test]
fn a_single_nic_node_keeps_its_link_and_mac_and_holds_the_cluster_vip_only_as_master() {
    let k = Fake::two_nics();
    let mut lb = manager(&k, "eth0", &Heard::default(), &Loop::default());
    let backup = LbWant {
        vmac: Some(vmac(60)),
        ..want(false)
    };
    let plan = lb.apply(&backup, &[]).unwrap();
    assert!(k.up("eth0"), "the node interface is never taken down");
    assert_eq!(
        k.0.lock().unwrap().links[&2].mac,
        Some(NODE_MAC),
        "no VMAC on it"
    );
    assert!(!k.has_addr(2, "192.0.2.1"), "no cluster VIP on the backup");
    assert!(
        plan.changes.iter().all(|c| c.starts_with("add rule")),
        "{plan:?}"
    );
    lb.apply(
        &LbWant {
            up: true,
            ..backup.clone()
        },
        &[],
    )
    .unwrap();
    assert!(k.has_addr(2, "192.0.2.1"));
    lb.apply(&backup, &[]).unwrap();
    // The address is left to the VIP manager, which removes ours not kept.
    let mut v = super::super::vips::Vips::new(
        Box::new(AddrView(k.clone())),
        Some("eth0".into()),
        "lo".into(),
        None,
    );
    let plan = lb.apply(&backup, &[]).unwrap();
    v.apply_keeping(&[], &plan.keep).unwrap();
    assert!(!k.has_addr(2, "192.0.2.1"));
}

/// The fake seen through the VIP manager's narrower trait.
#[derive(Debug, Clone)]
struct AddrView(Fake);

impl super::super::vips::AddrKernel for AddrView {
    fn index(&self, name: &str) -> Result<u32, NccError> {
        let k = self.0.0.lock().unwrap();
        k.links
            .values()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| NccError::Plane(format!("{name}: no such device")))
    }
    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError> {
        self.0.addrs()
    }
    fn set_addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError> {
        self.0.addr(add, a)
    }
    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError> {
        LbKernel::set_up(&mut self.0, index, up)
    }
}

#[test]
fn vlans_are_created_addressed_follow_the_parent_and_go_when_unconfigured() {
    let k = Fake::two_nics();
    let garp = Loop::default();
    let mut lb = manager(&k, "eth1", &Heard::default(), &garp);
    let vlans = vec![
        VlanWant {
            id: 10,
            v4: Some(("203.0.113.2".parse().unwrap(), 24)),
            v6: None,
        },
        VlanWant {
            id: 20,
            v4: None,
            v6: Some(("2001:db8:20::2".parse().unwrap(), 64)),
        },
    ];
    let w = LbWant {
        vlans: vlans.clone(),
        ..want(true)
    };
    let plan = lb
        .apply(&w, &[uni("203.0.113.50"), uni("198.51.100.1")])
        .unwrap();
    for c in [
        "add VLAN eth1.10",
        "add VLAN eth1.20",
        "add 203.0.113.2/24 on eth1.10",
        "eth1.10 up",
        "eth1.20 up",
    ] {
        assert!(
            plan.changes.contains(&c.to_owned()),
            "{c}: {:?}",
            plan.changes
        );
    }
    assert_eq!(
        plan.vlan_nets,
        [
            ("eth1.10".to_owned(), "203.0.113.0".parse().unwrap(), 24),
            ("eth1.20".to_owned(), "2001:db8:20::".parse().unwrap(), 64)
        ]
    );
    // The VIP in VLAN 10's subnet gets no `from` rule (only VIPs on the LB NIC itself do) and
    // is announced on the VLAN interface.
    let rules = k.0.lock().unwrap().rules.clone();
    assert!(!rules.iter().any(|r| {
        r.src
            .is_some_and(|s| s.0 == "203.0.113.50".parse::<IpAddr>().unwrap())
    }));
    assert!(
        garp.0
            .lock()
            .unwrap()
            .0
            .contains(&("eth1.10".to_owned(), "203.0.113.50".parse().unwrap()))
    );
    assert!(
        lb.apply(&w, &[uni("203.0.113.50"), uni("198.51.100.1")])
            .unwrap()
            .changes
            .is_empty()
    );
    // Backup: VLANs go down before their parent, IPv6 kept.
    let plan = lb
        .apply(
            &LbWant {
                up: false,
                ..w.clone()
            },
            &[],
        )
        .unwrap();
    let downs: Vec<&String> = plan
        .changes
        .iter()
        .filter(|c| c.ends_with("down"))
        .collect();
    assert_eq!(downs, ["eth1.20 down", "eth1.10 down", "eth1 down"]);
    let idx20 =
        k.0.lock()
            .unwrap()
            .links
            .values()
            .find(|l| l.name == "eth1.20")
            .unwrap()
            .index;
    assert!(k.has_addr(idx20, "2001:db8:20::2"));
    // VLAN 20 unconfigured: deleted.
    let plan = lb
        .apply(
            &LbWant {
                up: false,
                vlans: vlans[..1].to_vec(),
                ..w
            },
            &[],
        )
        .unwrap();
    assert_eq!(plan.changes, ["delete VLAN eth1.20"]);
}

#[test]
fn a_kernel_without_8021q_still_gets_everything_else() {
    let k = Fake::two_nics();
    k.0.lock().unwrap().no_8021q = true;
    let mut lb = manager(&k, "eth1", &Heard::default(), &Loop::default());
    let w = LbWant {
        vlans: vec![VlanWant {
            id: 10,
            v4: Some(("203.0.113.2".parse().unwrap(), 24)),
            v6: None,
        }],
        ..want(true)
    };
    let plan = lb.apply(&w, &[]).unwrap();
    assert!(plan.changes.iter().all(|c| !c.contains("VLAN")));
    assert!(k.up("eth1") && k.has_addr(3, "192.0.2.1"));
    assert!(plan.vlan_nets.is_empty());
}

#[test]
fn bad_tables_missing_interfaces_and_foreign_networks() {
    let k = Fake::two_nics();
    let mut lb = manager(&k, "eth1", &Heard::default(), &Loop::default());
    for t in [0, 251, 255] {
        assert!(matches!(
            lb.apply(
                &LbWant {
                    table: t,
                    ..want(true)
                },
                &[]
            ),
            Err(NccError::Invalid(_))
        ));
    }
    let mut ghost = manager(&k, "eth9", &Heard::default(), &Loop::default());
    assert!(matches!(
        ghost.apply(&want(true), &[]),
        Err(NccError::Plane(_))
    ));
    // A cluster VIP outside the node networks: skipped (with a warning), the rest applies.
    let plan = lb
        .apply(
            &LbWant {
                cluster_v4: Some("203.0.113.1".parse().unwrap()),
                cluster_v6: None,
                ..want(true)
            },
            &[],
        )
        .unwrap();
    assert!(plan.changes.is_empty(), "{:?}", plan.changes);
    assert!(k.0.lock().unwrap().rules.is_empty() && !k.has_addr(3, "203.0.113.1"));
    // Foreign rules and routes are never touched.
    {
        let mut g = k.0.lock().unwrap();
        g.rules.push(RuleInfo {
            family: 2,
            src: Some(("10.9.9.9".parse().unwrap(), 32)),
            dst: None,
            table: 2,
            action: FR_ACT_TO_TBL,
            priority: Some(100),
            protocol: 4,
        });
    }
    lb.apply(&want(false), &[]).unwrap();
    assert!(k.0.lock().unwrap().rules.iter().any(|r| r.protocol == 4));
}

#[test]
fn helpers() {
    // (network, prefix length, address, inside): a family mismatch or a prefix longer than the
    // family's is never inside.
    for (net, len, addr, inside) in [
        ("192.0.2.0", 24, "192.0.2.77", true),
        ("192.0.2.0", 24, "192.0.3.1", false),
        ("0.0.0.0", 0, "8.8.8.8", true),
        ("192.0.2.0", 24, "2001:db8::1", false),
        ("192.0.2.0", 40, "192.0.2.1", false),
        ("2001:db8::", 64, "2001:db8::5", true),
    ] {
        assert_eq!(
            in_net(net.parse().unwrap(), len, addr.parse().unwrap()),
            inside,
            "{addr} in {net}/{len}"
        );
    }
    assert_eq!(vmac(1), [0, 0, 0x5e, 0, 1, 1]);
}

fn sh(args: &[&str]) -> String {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("ip");
    assert!(
        out.status.success(),
        "ip {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The real kernel in a private network namespace (root only): two veth pairs stand for the
/// node and LB NICs; the encodings are checked by what `ip` reads back.
#[test]
#[allow(
    clippy::print_stderr,
    reason = "the skip notices are for the person running the tests"
)]
fn rtnetlink_lb_in_a_private_netns() {
    in_private_netns("the rtnetlink LB test", || {
        sh(&["link", "add", "sn0", "type", "veth", "peer", "name", "sp0"]);
        sh(&["link", "add", "sl0", "type", "veth", "peer", "name", "sq0"]);
        for l in ["lo", "sn0", "sp0", "sl0", "sq0"] {
            sh(&["link", "set", l, "up"]);
        }
        sh(&["addr", "add", "192.0.2.10/24", "dev", "sn0"]);
        sh(&[
            "route",
            "add",
            "default",
            "via",
            "192.0.2.254",
            "dev",
            "sn0",
        ]);
        sh(&["addr", "add", "2001:db8:1::99/64", "dev", "sl0", "nodad"]);
        let new = || {
            Lb::new(
                Box::new(KernelLb::open().expect("rtnetlink")),
                "sl0".into(),
                "sn0".into(),
                None,
                None,
                None,
            )
        };
        let mut lb = new();
        let backup = LbWant {
            vmac: Some(vmac(60)),
            cluster_v6: None,
            ..want(false)
        };
        let plan = lb.apply(&backup, &[]).expect("backup");
        assert!(plan.changes.contains(&"sl0 down".to_owned()), "{plan:?}");
        let link = sh(&["-o", "link", "show", "sl0"]);
        assert!(link.contains("00:00:5e:00:01:3c"), "VMAC: {link}");
        assert!(
            !link
                .split(['<', '>'])
                .nth(1)
                .unwrap_or("")
                .split(',')
                .any(|f| f == "UP"),
            "{link}"
        );
        let addrs = sh(&["-o", "addr", "show", "dev", "sl0"]);
        assert!(addrs.contains("192.0.2.1/24"), "cluster VIP: {addrs}");
        assert!(
            addrs.contains("2001:db8:1::99/64"),
            "IPv6 kept across link down: {addrs}"
        );
        let rules = sh(&["rule", "show"]);
        assert!(rules.contains("from all to 192.0.2.1 lookup 2"), "{rules}");
        assert!(rules.contains("from 192.0.2.1 lookup 2"), "{rules}");

        let master = LbWant {
            up: true,
            ..backup.clone()
        };
        let vips = [uni("198.51.100.1")];
        lb.apply(&master, &vips).expect("master");
        let table = sh(&["route", "show", "table", "2"]);
        assert!(table.contains("default via 192.0.2.254 dev sl0"), "{table}");
        assert!(table.contains("192.0.2.0/24 dev sl0"), "{table}");
        assert!(sh(&["rule", "show"]).contains("from 198.51.100.1 lookup 2"));
        assert!(
            lb.apply(&master, &vips).expect("again").changes.is_empty(),
            "idempotent"
        );
        assert!(
            new()
                .apply(&master, &vips)
                .expect("adopt")
                .changes
                .is_empty(),
            "a restarted ncc adopts the kernel's rules, routes and addresses"
        );
        // Back to backup: the table empties, the VIP's rule goes, the cluster rules stay.
        let plan = lb.apply(&backup, &[]).expect("backup again");
        assert!(plan.changes.contains(&"sl0 down".to_owned()), "{plan:?}");
        assert!(sh(&["route", "show", "table", "2"]).trim().is_empty());
        let rules = sh(&["rule", "show"]);
        assert!(!rules.contains("198.51.100.1") && rules.contains("to 192.0.2.1 lookup 2"));

        // VLANs: only where the kernel has 802.1q.
        let with_vlan = LbWant {
            vlans: vec![VlanWant {
                id: 10,
                v4: Some(("203.0.113.2".parse().unwrap(), 24)),
                v6: None,
            }],
            ..master
        };
        let plan = lb.apply(&with_vlan, &[]).expect("vlan");
        if plan.changes.contains(&"add VLAN sl0.10".to_owned()) {
            let v = sh(&["-d", "-o", "link", "show", "sl0.10"]);
            assert!(v.contains("vlan protocol 802.1Q id 10"), "{v}");
            assert!(sh(&["-o", "addr", "show", "dev", "sl0.10"]).contains("203.0.113.2/24"));
        } else {
            eprintln!(
                "skipping the VLAN part: this kernel has no 802.1q ({:?})",
                plan.changes
            );
        }
    });
}

#[test]
fn the_lb_interface_from_the_wire_is_checked() {
    use seesaw_proto::ncc as pb;
    let good = pb::LbInterface {
        up: true,
        cluster_vip_ipv4: "192.0.2.1".into(),
        cluster_vip_ipv6: String::new(),
        routing_table_id: 2,
        use_vmac: true,
        vrid: 60,
        garp_interval_ms: 10_000,
        vlans: vec![
            pb::Vlan {
                id: 20,
                host_ipv4: String::new(),
                host_ipv6: "2001:db8:20::2/64".into(),
            },
            pb::Vlan {
                id: 10,
                host_ipv4: "203.0.113.2/24".into(),
                host_ipv6: String::new(),
            },
        ],
    };
    let w = crate::convert::lb_from_pb(&good).unwrap();
    assert_eq!(w.vmac, Some(vmac(60)));
    assert_eq!(w.garp_interval, Duration::from_secs(10));
    assert_eq!(
        w.vlans.iter().map(|v| v.id).collect::<Vec<_>>(),
        [10, 20],
        "sorted"
    );
    let fast = crate::convert::lb_from_pb(&pb::LbInterface {
        garp_interval_ms: 1,
        use_vmac: false,
        vrid: 0,
        ..good.clone()
    })
    .unwrap();
    assert_eq!(fast.garp_interval, Duration::from_millis(100), "clamped");
    assert_eq!(fast.vmac, None);
    let bad = pb::LbInterface {
        cluster_vip_ipv4: "2001:db8::1".into(),
        cluster_vip_ipv6: "224.0.0.1".into(),
        routing_table_id: 251,
        use_vmac: true,
        vrid: 256,
        vlans: vec![
            pb::Vlan {
                id: 0,
                host_ipv4: "203.0.113.2/33".into(),
                host_ipv6: "203.0.113.2/24".into(),
            },
            pb::Vlan {
                id: 5,
                host_ipv4: "nonsense".into(),
                host_ipv6: String::new(),
            },
            pb::Vlan {
                id: 5,
                host_ipv4: String::new(),
                host_ipv6: String::new(),
            },
        ],
        ..good
    };
    match crate::convert::lb_from_pb(&bad) {
        Err(NccError::Invalid(why)) => assert_eq!(why.len(), 9, "{why:#?}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
