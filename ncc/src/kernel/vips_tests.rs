//! The VIP manager over a stateful fake kernel (placement, idempotence, adoption, leaving
//! foreign addresses alone, announcements) and over the real kernel in a private network
//! namespace when root.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use super::*;
use crate::test_support::{Heard, in_private_netns};

/// Interfaces by name, addresses, link state; shared by clones (one kernel, many ncc runs).
#[derive(Debug, Clone, Default)]
struct FakeAddrs(Arc<Mutex<FakeState>>);

/// Interface indexes by name, addresses, link up/down by index.
type FakeState = (BTreeMap<String, u32>, Vec<HeldAddr>, BTreeMap<u32, bool>);

impl FakeAddrs {
    fn with(ifaces: &[(&str, u32)]) -> Self {
        let k = Self::default();
        for (n, i) in ifaces {
            k.0.lock().unwrap().0.insert((*n).to_owned(), *i);
        }
        k
    }
}

impl AddrKernel for FakeAddrs {
    fn index(&self, name: &str) -> Result<u32, NccError> {
        self.0
            .lock()
            .unwrap()
            .0
            .get(name)
            .copied()
            .ok_or_else(|| NccError::Plane(format!("interface {name}: no such device")))
    }
    fn addrs(&mut self) -> Result<Vec<HeldAddr>, NccError> {
        Ok(self.0.lock().unwrap().1.clone())
    }
    fn set_addr(&mut self, add: bool, a: &HeldAddr) -> Result<(), NccError> {
        let mut k = self.0.lock().unwrap();
        let pos =
            k.1.iter()
                .position(|h| h.index == a.index && h.addr == a.addr);
        match (add, pos) {
            (true, None) => k.1.push(*a),
            (false, Some(p)) => {
                k.1.remove(p);
            }
            (true, Some(_)) => return Err(NccError::Plane("File exists (os error 17)".into())),
            (false, None) => return Err(NccError::Plane("Cannot assign requested address".into())),
        }
        Ok(())
    }
    fn set_up(&mut self, index: u32, up: bool) -> Result<(), NccError> {
        self.0.lock().unwrap().2.insert(index, up);
        Ok(())
    }
}

fn vip(a: &str, kind: VipKind) -> Vip {
    Vip {
        addr: a.parse().unwrap(),
        kind,
    }
}

#[test]
fn places_adopts_and_removes_only_its_own() {
    let k = FakeAddrs::with(&[("lo", 1), ("eth1", 3), ("dummy0", 4)]);
    // Someone else's address on eth1 (the node address) and a pre-configured VIP.
    k.0.lock().unwrap().1.push(HeldAddr {
        index: 3,
        addr: "192.0.2.10".parse().unwrap(),
        prefix: 24,
        proto: 0,
    });
    let heard = Heard::default();
    let mut v = Vips::new(
        Box::new(k.clone()),
        Some("eth1".into()),
        "dummy0".into(),
        Some(Box::new(heard.clone())),
    );
    let desired = [
        vip("192.0.2.1", VipKind::Unicast),
        vip("2001:db8::1", VipKind::Unicast),
        vip("198.51.100.1", VipKind::Anycast),
        vip("198.51.100.2", VipKind::Dedicated),
    ];
    let changes = v.apply(&desired).unwrap();
    assert_eq!(
        changes,
        [
            "add VIP 198.51.100.1 on dummy0",
            "add VIP 198.51.100.2 on dummy0",
            "add VIP 192.0.2.1 on eth1",
            "add VIP 2001:db8::1 on eth1",
        ]
    );
    assert_eq!(
        heard.0.lock().unwrap().len(),
        4,
        "each new VIP announced once"
    );
    let held = k.0.lock().unwrap().1.clone();
    assert!(
        held.iter()
            .any(|h| h.addr == "2001:db8::1".parse::<IpAddr>().unwrap() && h.prefix == 128)
    );
    assert!(v.apply(&desired).unwrap().is_empty(), "idempotent");

    // A new ncc over the same kernel adopts: 0 changes; then the anycast VIP goes down.
    let mut w = Vips::new(
        Box::new(k.clone()),
        Some("eth1".into()),
        "dummy0".into(),
        None,
    );
    assert!(w.apply(&desired).unwrap().is_empty(), "adopted");
    let changes = w.apply(&desired[..2]).unwrap();
    assert_eq!(
        changes,
        [
            "delete VIP 198.51.100.1 from dummy0",
            "delete VIP 198.51.100.2 from dummy0"
        ]
    );
    // Nothing wanted: only ours go; the node address stays.
    w.apply(&[]).unwrap();
    let held = k.0.lock().unwrap().1.clone();
    assert_eq!(held.len(), 1);
    assert_eq!(held[0].addr, "192.0.2.10".parse::<IpAddr>().unwrap());
    // A wanted VIP that someone else configured is used as is, and never removed by us.
    assert!(
        w.apply(&[vip("192.0.2.10", VipKind::Unicast)])
            .unwrap()
            .is_empty()
    );
    w.apply(&[]).unwrap();
    assert_eq!(k.0.lock().unwrap().1.len(), 1);
}

#[test]
fn unicast_without_an_lb_interface_is_skipped_and_lo_is_not_announced() {
    let k = FakeAddrs::with(&[("lo", 1)]);
    let heard = Heard::default();
    let mut v = Vips::new(
        Box::new(k.clone()),
        None,
        "lo".into(),
        Some(Box::new(heard.clone())),
    );
    assert_eq!(
        v.apply(&[vip("192.0.2.1", VipKind::Unicast)]).unwrap(),
        Vec::<String>::new(),
        "skipped, not placed elsewhere"
    );
    assert!(k.0.lock().unwrap().1.is_empty());
    v.apply(&[vip("192.0.2.1", VipKind::Anycast)]).unwrap();
    assert!(heard.0.lock().unwrap().is_empty(), "no neighbours on lo");
    assert!(v.set_lb_up(false).is_err());
}

#[test]
fn lb_interface_up_and_down() {
    let k = FakeAddrs::with(&[("lo", 1), ("eth1", 3)]);
    let mut v = Vips::new(Box::new(k.clone()), Some("eth1".into()), "lo".into(), None);
    v.set_lb_up(false).unwrap();
    assert_eq!(k.0.lock().unwrap().2.get(&3), Some(&false));
    v.set_lb_up(true).unwrap();
    assert_eq!(k.0.lock().unwrap().2.get(&3), Some(&true));
}

#[test]
fn interface_names_are_checked_before_sysfs() {
    for bad in ["", "../etc", "a/b", ".x", "sixteen-chars-xx"] {
        assert!(matches!(ifindex(bad), Err(NccError::Invalid(_))), "{bad:?}");
    }
}

/// The real kernel: a private network namespace with `lo`, VIPs on `lo` (the VIP interface
/// where there is no dummy0), adoption by a second manager, and the local route.
#[test]
fn rtnetlink_in_a_private_netns() {
    in_private_netns("the rtnetlink VIP test", || {
        let mut v = Vips::new(
            Box::new(KernelAddrs::open().unwrap()),
            Some("lo".into()),
            "lo".into(),
            None,
        );
        v.set_lb_up(true).unwrap();
        let desired = [
            vip("192.0.2.1", VipKind::Anycast),
            vip("2001:db8::5", VipKind::Dedicated),
        ];
        assert_eq!(v.apply(&desired).unwrap().len(), 2);
        assert!(v.apply(&desired).unwrap().is_empty(), "idempotent");
        let mut cur = v.current().unwrap();
        cur.sort();
        assert_eq!(
            cur,
            [
                ("lo".to_owned(), "192.0.2.1".parse().unwrap()),
                ("lo".to_owned(), "2001:db8::5".parse().unwrap())
            ]
        );
        // The kernel added the local route: the VIP is reachable here.
        let l = std::net::TcpListener::bind("192.0.2.1:0").expect("bind on the VIP");
        std::net::TcpStream::connect(l.local_addr().unwrap()).expect("connect to the VIP");
        let l6 = std::net::TcpListener::bind("[2001:db8::5]:0").expect("bind on the IPv6 VIP");
        // IPv6 installs the local route from a work queue right after the add: bounded retry.
        let mut c6 = Err(std::io::Error::other("not tried"));
        for _ in 0..100 {
            c6 = std::net::TcpStream::connect(l6.local_addr().unwrap());
            if c6.is_ok() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        c6.expect("connect to the IPv6 VIP");
        // A new manager adopts (0 changes) and removes only ours: ::1 and 127.0.0.1 stay.
        let mut w = Vips::new(
            Box::new(KernelAddrs::open().unwrap()),
            Some("lo".into()),
            "lo".into(),
            None,
        );
        assert!(w.apply(&desired).unwrap().is_empty(), "adopted");
        assert_eq!(w.apply(&[]).unwrap().len(), 2);
        assert!(w.current().unwrap().is_empty());
        let left = KernelAddrs::open().unwrap().addrs().unwrap();
        assert!(
            left.iter()
                .any(|a| a.addr == "127.0.0.1".parse::<IpAddr>().unwrap())
        );
        assert!(
            std::net::TcpListener::bind("192.0.2.1:0").is_err(),
            "the VIP is gone"
        );
        v.set_lb_up(false).unwrap();
        let link = std::process::Command::new("ip")
            .args(["-o", "link", "show", "lo"])
            .output()
            .expect("ip link");
        let link = String::from_utf8_lossy(&link.stdout).into_owned();
        let flags = link.split(['<', '>']).nth(1).unwrap_or_default().to_owned();
        assert!(!flags.split(',').any(|f| f == "UP"), "lo is down: {link}");
    });
}

#[test]
fn vips_from_the_wire_are_checked() {
    use seesaw_proto::ncc as pb;
    let v = |a: &str, k: pb::VipKind| pb::Vip {
        address: a.into(),
        kind: k as i32,
    };
    let got = crate::convert::vips_from_pb(&[
        v("2001:db8::1", pb::VipKind::Anycast),
        v("192.0.2.1", pb::VipKind::Unicast),
        v("192.0.2.1", pb::VipKind::Unicast),
    ])
    .unwrap();
    assert_eq!(
        got,
        [
            vip("192.0.2.1", VipKind::Unicast),
            vip("2001:db8::1", VipKind::Anycast)
        ],
        "sorted, duplicates merged"
    );
    match crate::convert::vips_from_pb(&[
        v("0.0.0.0", pb::VipKind::Unicast),
        v("ff02::1", pb::VipKind::Anycast),
        v("nonsense", pb::VipKind::Dedicated),
        v("192.0.2.9", pb::VipKind::Unspecified),
        pb::Vip {
            address: "192.0.2.8".into(),
            kind: 77,
        },
    ]) {
        Err(NccError::Invalid(why)) => assert_eq!(why.len(), 5, "{why:?}"),
        other => panic!("expected Invalid, got {other:?}"),
    }
}
