//! Script rendering tests against a recording runner: the transaction for a new service, and
//! that changing one service touches only that service's objects.

use std::sync::{Arc, Mutex};

use super::*;
use crate::dataplane::apply;
use crate::model::{Protocol, ServiceOpts};

/// Records scripts; lists whatever JSON it was given.
#[derive(Debug, Clone, Default)]
struct Recorder {
    scripts: Arc<Mutex<Vec<String>>>,
    listing: Arc<Mutex<(String, String)>>,
}

impl NftRunner for Recorder {
    fn list(&self, table: &str) -> Result<String, NccError> {
        let l = self.listing.lock().unwrap();
        Ok(if table.starts_with("inet") {
            l.0.clone()
        } else {
            l.1.clone()
        })
    }
    fn run(&self, script: &str) -> Result<(), NccError> {
        self.scripts.lock().unwrap().push(script.to_owned());
        Ok(())
    }
}

fn service(port: u16, sched: Scheduler, dests: &[(&str, u32)]) -> Service {
    Service {
        anchor: None,
        key: ServiceKey::new("198.51.100.1".parse().unwrap(), Protocol::Tcp, port),
        scheduler: sched,
        mode: ForwardMode::Nat,
        persistence: 0,
        dests: dests
            .iter()
            .map(|(a, w)| Dest::new(a.parse().unwrap(), *w))
            .collect(),
        opts: ServiceOpts::default(),
        marks: Vec::new(),
    }
}

#[test]
fn new_service_is_one_script_with_chain_slots_and_registry() {
    let rec = Recorder::default();
    let mut p = NftPlane::new(rec.clone(), None).unwrap();
    let s = service(
        80,
        Scheduler::Wrr,
        &[("10.0.0.1:80", 2), ("10.0.0.2:80", 1)],
    );
    apply(&mut p, &[s]).unwrap();
    let scripts = rec.scripts.lock().unwrap();
    assert_eq!(scripts.len(), 1, "one transaction");
    let text = &scripts[0];
    for want in [
        "add chain inet seesaw s1\n",
        "add element inet seesaw dst4 { 0x5ee00000 comment \"sid=1\" : 10.0.0.1 . 80, 0x5ee00001 comment \"sid=1\" : 10.0.0.2 . 80 }",
        "add element inet seesaw slot { 0x30000000 : 0x5ee00000, 0x30000001 : 0x5ee00001, 0x30000002 : 0x5ee00000 }",
        "add rule inet seesaw s1 ct mark set numgen inc mod 3 offset 0x30000000\n",
        "add element inet seesaw svc4 { 198.51.100.1 . tcp . 80 comment \"sid=1 sch=wrr p=0 so=0 sc=8 sn=3\" : jump s1 }",
        "add rule inet seesaw pre ip daddr . meta l4proto . th dport vmap @svc4",
        "add rule inet seesaw pre ct mark and 0xf0000000 == 0x30000000 ct mark set ct mark map @slot",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    assert!(
        !text.contains("chain inet seesaw a1"),
        "no state kept: no after-chain"
    );
    // No service chain binds a map: only the dispatch chains do.
    for l in text
        .lines()
        .filter(|l| l.starts_with("add rule inet seesaw s"))
    {
        assert!(!l.contains('@'), "a service rule binds a map: {l}");
    }
    let rules = text.find("add rule inet seesaw s1").unwrap();
    let registry = text.find("add element inet seesaw svc4").unwrap();
    assert!(rules < registry, "the service becomes reachable last");
}

#[test]
fn a_weight_change_touches_only_that_services_weight_and_slots() {
    // A kernel holding two services (what the first apply wrote), as nft would list it.
    let listing = r#"{"nftables": [
      {"chain": {"name": "pre"}}, PRE
      {"chain": {"name": "out"}}, OUT
      {"chain": {"name": "post"}}, {"rule": {"chain": "post"}},
      {"chain": {"name": "forward"}}, {"rule": {"chain": "forward"}}, {"rule": {"chain": "forward"}},
      {"chain": {"name": "s1"}}, {"rule": {"chain": "s1"}}, {"chain": {"name": "s2"}}, {"rule": {"chain": "s2"}},
      {"map": {"name": "svc4", "elem": [
        [{"elem": {"val": {"concat": ["198.51.100.1", "tcp", 80]}, "comment": "sid=1 sch=wrr p=0 so=0 sc=8 sn=2"}}, {"jump": {"target": "s1"}}],
        [{"elem": {"val": {"concat": ["198.51.100.1", "tcp", 81]}, "comment": "sid=2 sch=wrr p=0 so=8 sc=8 sn=2"}}, {"jump": {"target": "s2"}}]]}},
      {"map": {"name": "dst4", "elem": [
        [{"elem": {"val": 1591738368, "comment": "sid=1"}}, {"concat": ["10.0.0.1", 80]}],
        [{"elem": {"val": 1591738369, "comment": "sid=1"}}, {"concat": ["10.0.0.2", 80]}],
        [{"elem": {"val": 1591738370, "comment": "sid=2"}}, {"concat": ["10.0.0.1", 80]}],
        [{"elem": {"val": 1591738371, "comment": "sid=2"}}, {"concat": ["10.0.0.2", 80]}]]}},
      {"map": {"name": "weights", "elem": [[1591738368, 1], [1591738369, 1], [1591738370, 1], [1591738371, 1]]}},
      {"map": {"name": "slot", "elem": [[805306368, 1591738368], [805306369, 1591738369], [805306376, 1591738370], [805306377, 1591738371]]}},
      {"set": {"name": "cin", "elem": [1591738368, 1591738369, 1591738370, 1591738371]}},
      {"set": {"name": "cout", "elem": [1591738368, 1591738369, 1591738370, 1591738371]}}
    ]}"#;
    let n = rules::dispatch_rules(Table::Nat, None).len();
    let listing = listing
        .replace("PRE", &"{\"rule\": {\"chain\": \"pre\"}},".repeat(n))
        .replace("OUT", &"{\"rule\": {\"chain\": \"out\"}},".repeat(n));
    let rec = Recorder::default();
    rec.listing.lock().unwrap().0 = listing;
    let mut p = NftPlane::new(rec.clone(), None).unwrap();
    let a = service(
        80,
        Scheduler::Wrr,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    let b = service(
        81,
        Scheduler::Wrr,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    assert_eq!(apply(&mut p, &[a.clone(), b.clone()]).unwrap(), []);
    assert!(
        rec.scripts.lock().unwrap().is_empty(),
        "in sync: no transaction at all"
    );

    let b2 = service(
        81,
        Scheduler::Wrr,
        &[("10.0.0.1:80", 2), ("10.0.0.2:80", 1)],
    );
    let changes = apply(&mut p, &[a, b2]).unwrap();
    assert_eq!(changes.len(), 1);
    let scripts = rec.scripts.lock().unwrap();
    let text = &scripts[0];
    let ours: Vec<&str> = text
        .lines()
        .filter(|l| {
            !l.starts_with("add table")
                && !l.starts_with("add map")
                && !l.starts_with("add set")
                && !l.starts_with("add chain inet seesaw pre")
                && !l.starts_with("add chain inet seesaw out")
                && !l.starts_with("add chain inet seesaw post")
                && !l.starts_with("add chain inet seesaw forward")
        })
        .collect();
    assert_eq!(
        ours,
        [
            "delete element inet seesaw svc4 { 198.51.100.1 . tcp . 81 }",
            "delete element inet seesaw weights { 0x5ee00002 }",
            "flush chain inet seesaw s2",
            "add element inet seesaw slot { 0x3000000a : 0x5ee00002 }",
            "add element inet seesaw weights { 0x5ee00002 : 2 }",
            "add rule inet seesaw s2 ct mark set numgen inc mod 3 offset 0x30000008",
            "add element inet seesaw svc4 { 198.51.100.1 . tcp . 81 comment \"sid=2 sch=wrr p=0 so=8 sc=8 sn=3\" : jump s2 }",
        ],
        "only service 2's objects:\n{text}"
    );
}

#[test]
fn p2c_is_refused_and_dsr_and_tun_need_the_lb_interface() {
    let p = NftPlane::new(Recorder::default(), None)
        .unwrap()
        .with_tunnels(Box::new(FakeTunnels::default()));
    let mut s = service(80, Scheduler::P2c, &[("10.0.0.1:80", 1)]);
    assert!(p.unsupported(&s).unwrap().contains("proxy plane"));
    for sched in [Scheduler::Lc, Scheduler::Wlc] {
        s.scheduler = sched;
        assert_eq!(p.unsupported(&s), None, "{sched:?}");
    }
    s.scheduler = Scheduler::Rr;
    s.mode = ForwardMode::Dsr;
    assert!(p.unsupported(&s).unwrap().contains("LB interface"));
    s.mode = ForwardMode::Tun;
    assert!(p.unsupported(&s).unwrap().contains("LB interface"));
}

#[test]
fn tunnel_mode_needs_tunnel_devices_and_cannot_change_the_port() {
    let no_ipip = FakeTunnels {
        refuse: Some("tunnel mode needs the kernel's ipip module".into()),
        ..FakeTunnels::default()
    };
    let p = NftPlane::new(Recorder::default(), Some("eth0".into()))
        .unwrap()
        .with_tunnels(Box::new(no_ipip));
    let mut s = service(80, Scheduler::Rr, &[("10.0.0.1:80", 1)]);
    s.mode = ForwardMode::Tun;
    assert!(p.unsupported(&s).unwrap().contains("ipip module"));
    let p = NftPlane::new(Recorder::default(), Some("eth0".into()))
        .unwrap()
        .with_tunnels(Box::new(FakeTunnels::default()));
    assert_eq!(p.unsupported(&s), None);
    s.dests[0].addr = "10.0.0.1:8080".parse().unwrap();
    assert!(
        p.unsupported(&s)
            .unwrap()
            .contains("cannot change the port")
    );
}

#[test]
fn tunnel_mode_writes_tdev_elements_and_marks_the_service() {
    let rec = Recorder::default();
    let tun = FakeTunnels::default();
    let mut p = NftPlane::new(rec.clone(), Some("eth0".into()))
        .unwrap()
        .with_tunnels(Box::new(tun.clone()));
    let mut s = service(80, Scheduler::Rr, &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)]);
    s.mode = ForwardMode::Tun;
    apply(&mut p, std::slice::from_ref(&s)).unwrap();
    let text = rec.scripts.lock().unwrap()[0].clone();
    for want in [
        "add map netdev seesaw tdev { type mark : iface_index; }",
        "fwd ip to meta mark map @dst4 device meta mark map @tdev",
        "0x5ee00000 comment \"sid=1 port=80 t=1\" : 10.0.0.1",
        "add element netdev seesaw tdev { 0x5ee00000 : \"sst0a000001\", 0x5ee00001 : \"sst0a000002\" }",
        "sn=2 m=tun\"",
    ] {
        assert!(text.contains(want), "{want} missing:\n{text}");
    }
    let devs: Vec<String> = tun.devs.lock().unwrap().keys().cloned().collect();
    assert_eq!(devs, ["sst0a000001", "sst0a000002"]);
}

/// The whole life of a tunnel-mode service through the real `nft` in a private namespace; the
/// devices are veths with the tunnel devices' names (this host's kernel may have no `ipip`;
/// `lab/tests/ipvs.rs` carries traffic through real IPIP devices in the kernel lab).
#[test]
fn tunnel_mode_applies_adopts_and_cleans_up_in_a_private_netns() {
    in_private_netns(|| {
        let tun = FakeTunnels::default();
        for (i, ip) in ["10.0.0.1", "10.0.0.2"].into_iter().enumerate() {
            let name = tunnels::dev_name(ip.parse().unwrap());
            let ok = std::process::Command::new("ip")
                .args([
                    "link",
                    "add",
                    &name,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    &format!("p{i}"),
                ])
                .status()
                .expect("ip");
            assert!(ok.success());
            tun.devs.lock().unwrap().insert(name, ip.parse().unwrap());
        }
        let plane = || {
            NftPlane::new(NftCli::default(), Some("lo".to_owned()))
                .expect("plane")
                .with_tunnels(Box::new(tun.clone()))
        };
        let mut s = service(80, Scheduler::Rr, &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)]);
        s.mode = ForwardMode::Tun;
        let mut p = plane();
        assert_eq!(
            apply(&mut p, std::slice::from_ref(&s))
                .expect("apply")
                .len(),
            3
        );
        let mut p = plane();
        assert_eq!(p.current(), [s.clone()], "read back as tunnel mode");
        assert_eq!(apply(&mut p, std::slice::from_ref(&s)).expect("again"), []);
        // One destination leaves: its device goes, the other stays.
        s.dests.pop();
        assert_eq!(
            apply(&mut p, std::slice::from_ref(&s))
                .expect("drop one")
                .len(),
            1
        );
        let devs: Vec<String> = tun.devs.lock().unwrap().keys().cloned().collect();
        assert_eq!(devs, ["sst0a000001"]);
        // The same destination in DSR mode: rebuilt, no device.
        s.mode = ForwardMode::Dsr;
        apply(&mut plane(), std::slice::from_ref(&s)).expect("to DSR");
        assert!(tun.devs.lock().unwrap().is_empty());
        assert_eq!(plane().current(), [s]);
    });
}

#[test]
fn a_tunnel_device_left_by_an_earlier_ncc_is_removed_when_unused() {
    let tun = FakeTunnels::default();
    tun.devs
        .lock()
        .unwrap()
        .insert("sst0a000009".into(), "10.0.0.9".parse().unwrap());
    let mut p = NftPlane::new(Recorder::default(), Some("eth0".into()))
        .unwrap()
        .with_tunnels(Box::new(tun.clone()));
    apply(&mut p, &[service(80, Scheduler::Rr, &[("10.0.0.1:80", 1)])]).unwrap();
    assert!(tun.devs.lock().unwrap().is_empty());
}

#[test]
fn persistence_gets_an_after_chain_that_goes_away_with_it() {
    let rec = Recorder::default();
    let mut p = NftPlane::new(rec.clone(), None).unwrap();
    let mut s = service(80, Scheduler::Rr, &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)]);
    s.persistence = 60;
    apply(&mut p, std::slice::from_ref(&s)).unwrap();
    let text = rec.scripts.lock().unwrap()[0].clone();
    for want in [
        "add chain inet seesaw a1\n",
        "add map inet seesaw k1t60 { type ipv4_addr : mark; flags dynamic,timeout; timeout 60s; size 1048576; }",
        "add rule inet seesaw s1 ct mark != 0x20000000 ct mark set ip saddr map @k1t60 return\n",
        "add rule inet seesaw a1 update @k1t60 { ip saddr : ct mark }",
        "add element inet seesaw aft4 { 198.51.100.1 . tcp . 80 : jump a1 }",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    // The kernel now holds it (as nft would list it); dropping persistence removes the chain.
    let listing = r#"{"nftables": [
      {"chain": {"name": "s1"}}, {"rule": {"chain": "s1"}}, {"chain": {"name": "a1"}}, {"rule": {"chain": "a1"}},
      {"map": {"name": "k1t60", "elem": []}},
      {"map": {"name": "svc4", "elem": [
        [{"elem": {"val": {"concat": ["198.51.100.1", "tcp", 80]}, "comment": "sid=1 sch=rr p=60 so=0 sc=8 sn=2"}}, {"jump": {"target": "s1"}}]]}},
      {"map": {"name": "aft4", "elem": [[{"concat": ["198.51.100.1", "tcp", 80]}, {"jump": {"target": "a1"}}]]}},
      {"map": {"name": "dst4", "elem": [
        [{"elem": {"val": 1591738368, "comment": "sid=1"}}, {"concat": ["10.0.0.1", 80]}],
        [{"elem": {"val": 1591738369, "comment": "sid=1"}}, {"concat": ["10.0.0.2", 80]}]]}},
      {"map": {"name": "weights", "elem": [[1591738368, 1], [1591738369, 1]]}},
      {"map": {"name": "slot", "elem": [[805306368, 1591738368], [805306369, 1591738369]]}}
    ]}"#;
    rec.listing.lock().unwrap().0 = listing.to_owned();
    p.refresh().unwrap();
    s.persistence = 0;
    let changes = apply(&mut p, std::slice::from_ref(&s)).unwrap();
    assert_eq!(changes.len(), 1, "{changes:?}");
    let text = rec.scripts.lock().unwrap()[1].clone();
    for want in [
        "delete element inet seesaw aft4 { 198.51.100.1 . tcp . 80 }",
        "delete chain inet seesaw a1",
        "flush chain inet seesaw s1",
        "delete map inet seesaw k1t60",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let del_elem = text.find("delete element inet seesaw aft4").unwrap();
    let del_chain = text.find("delete chain inet seesaw a1").unwrap();
    assert!(del_elem < del_chain, "the jump goes before its chain");
}

#[test]
fn wlc_is_a_fixed_slot_table_with_a_numgen_rule() {
    let rec = Recorder::default();
    let mut p = NftPlane::new(rec.clone(), None).unwrap();
    let s = service(
        80,
        Scheduler::Wlc,
        &[("10.0.0.1:80", 3), ("10.0.0.2:80", 1)],
    );
    apply(&mut p, &[s]).unwrap();
    let text = rec.scripts.lock().unwrap()[0].clone();
    for want in [
        "add rule inet seesaw s1 ct mark set numgen inc mod 16 offset 0x30000000\n",
        "comment \"sid=1 sch=wlc p=0 so=0 sc=16 sn=16\" : jump s1",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
    let slots = text
        .lines()
        .find(|l| l.starts_with("add element inet seesaw slot"))
        .unwrap();
    assert_eq!(slots.matches(": 0x5ee00000").count(), 12, "{slots}");
    assert_eq!(slots.matches(": 0x5ee00001").count(), 4, "{slots}");
    assert!(
        !text.contains("a1"),
        "NAT wlc keeps no client state: {text}"
    );
}

#[test]
fn dsr_wlc_keeps_flows_ipv4_by_flow_ipv6_by_client() {
    let rec = Recorder::default();
    let mut p = NftPlane::new(rec.clone(), Some("eth1".to_owned())).unwrap();
    let mut v4 = service(
        80,
        Scheduler::Wlc,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    v4.mode = ForwardMode::Dsr;
    let mut v6 = v4.clone();
    v6.key.vip = "2001:db8::1".parse().unwrap();
    v6.scheduler = Scheduler::Lc;
    v6.dests = vec![Dest::new("[2001:db8::10]:80".parse().unwrap(), 1)];
    assert_eq!(p.unsupported(&v6), None, "IPv6 DSR lc is kept per client");
    let mut v6rr = v6.clone();
    v6rr.scheduler = Scheduler::Rr;
    assert!(p.unsupported(&v6rr).unwrap().contains("nft 1.0.6"));
    apply(&mut p, &[v4, v6]).unwrap();
    let text = rec.scripts.lock().unwrap()[0].clone();
    for want in [
        "add map netdev seesaw k1t300f { type ipv4_addr . inet_service : mark;",
        "add rule netdev seesaw s1 meta mark != 0x20000000 meta mark set ip saddr . th sport map @k1t300f return\n",
        "add rule netdev seesaw s1 meta mark set numgen inc mod 16 offset 0x30000000\n",
        "add map netdev seesaw k2t300c { type ipv6_addr : mark;",
        "add rule netdev seesaw a2 update @k2t300c { ip6 saddr : meta mark }",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

/// The kernel accepts what lc/wlc render: NAT and DSR, IPv4 (flow map) and IPv6 (client map),
/// and a re-apply finds nothing to change (root and nft; skips otherwise).
#[test]
fn lc_and_wlc_apply_in_a_private_netns() {
    in_private_netns(|| {
        let nat = service(
            80,
            Scheduler::Wlc,
            &[("10.0.0.1:80", 2), ("10.0.0.2:80", 1)],
        );
        let mut dsr4 = service(81, Scheduler::Lc, &[("10.0.0.1:81", 1), ("10.0.0.2:81", 1)]);
        dsr4.mode = ForwardMode::Dsr;
        let mut dsr6 = dsr4.clone();
        dsr6.scheduler = Scheduler::Wlc;
        dsr6.key.vip = "2001:db8::1".parse().unwrap();
        dsr6.dests = vec![Dest::new("[2001:db8::10]:81".parse().unwrap(), 1)];
        let all = [nat, dsr4, dsr6];
        let mut p = NftPlane::new(NftCli::default(), Some("lo".to_owned())).expect("plane");
        assert_eq!(apply(&mut p, &all).expect("apply").len(), 8);
        let mut again = NftPlane::new(NftCli::default(), Some("lo".to_owned())).expect("plane");
        assert_eq!(apply(&mut again, &all).expect("re-apply"), []);
        assert_eq!(apply(&mut again, &[]).expect("remove").len(), 8);
    });
}

#[test]
fn one_packet_dsr_keeps_no_flow_map_and_nat_refuses_it() {
    let rec = Recorder::default();
    let mut p = NftPlane::new(rec.clone(), Some("eth1".to_owned())).unwrap();
    let mut s = service(
        53,
        Scheduler::Wlc,
        &[("10.0.0.1:53", 1), ("10.0.0.2:53", 1)],
    );
    s.key.proto = Protocol::Udp;
    s.opts.kernel.one_packet = true;
    // NAT: scheduled once per conntrack flow here, so refused with the reason.
    let why = p.unsupported(&s).expect("NAT one_packet is refused");
    assert!(
        why.contains("one_packet in NAT mode needs the ipvs"),
        "{why}"
    );
    // DSR: the registry records it; no flow map (`…f`), so every datagram is scheduled alone.
    s.mode = ForwardMode::Dsr;
    assert_eq!(p.unsupported(&s), None);
    apply(&mut p, std::slice::from_ref(&s)).unwrap();
    let script = rec.scripts.lock().unwrap().concat();
    assert!(script.contains(" o=1\""), "{script}");
    assert!(!script.contains("t300f"), "a flow map: {script}");
    // The same DSR service without one_packet keeps its flows on their backends.
    let rec2 = Recorder::default();
    let mut p2 = NftPlane::new(rec2.clone(), Some("eth1".to_owned())).unwrap();
    s.opts.kernel.one_packet = false;
    apply(&mut p2, std::slice::from_ref(&s)).unwrap();
    let script = rec2.scripts.lock().unwrap().concat();
    assert!(script.contains("t300f"), "{script}");
    assert!(!script.contains(" o=1"), "{script}");
}

/// `st` without what the kernel counts (counters) or what the decoder could not read.
fn comparable(st: &TableState) -> TableState {
    let mut s = st.clone();
    for d in s.dests.values_mut() {
        d.counter = Counter::default();
    }
    for c in s.cin.values_mut().chain(s.cout.values_mut()) {
        *c = Counter::default();
    }
    s.problems.clear();
    s
}

/// The plane's own record of its tables after each transaction equals what `nft -j list`
/// reads back, over 80 random changes of every kind (add, remove, weights, destinations,
/// scheduler, persistence, NAT ↔ DSR), every other one applied as the reconciler applies a delta
/// (`apply_changed`: the changed service alone, after which a whole apply finds nothing to do);
/// and the plane lists the tables only once, at its start: a change costs what it changes.
#[test]
fn recorded_state_equals_the_kernel_listing_after_every_change() {
    in_private_netns(|| {
        let mut rnd = crate::test_support::seeded(0x5eed_5ee5_a11e_0001);
        let scheds = [
            Scheduler::Rr,
            Scheduler::Wrr,
            Scheduler::Sh,
            Scheduler::Mh,
            Scheduler::Dh,
            Scheduler::Wlc,
            Scheduler::Lc,
            Scheduler::Random,
        ];
        let mut want: Vec<Service> = Vec::new();
        // The plane runs as in ncc (libnftables, one kept context); the listings it is checked
        // against come from the `nft` binary.
        let nft = NftLib::open().expect("libnftables");
        let mut p = NftPlane::new(nft, Some("lo".to_owned())).expect("plane");
        let reads_at_start = p.reads;
        for step in 0..80 {
            let op = if want.len() < 3 { 0 } else { rnd(7) };
            // The service this step changes (`None`: none) and the one it deletes.
            let mut gone = None;
            let at = if want.is_empty() {
                0
            } else {
                rnd(want.len() as u64) as usize
            };
            let touched = if op == 0 { None } else { Some(want[at].key) };
            match op {
                0 => {
                    let port = 1000 + u16::try_from(rnd(50)).unwrap();
                    if want.iter().any(|s| s.key.port == port) {
                        continue;
                    }
                    let n = 1 + rnd(4);
                    let dests: Vec<(String, u32)> = (0..n)
                        .map(|j| {
                            (
                                format!("10.0.{}.{}:{port}", rnd(3), 10 + j),
                                1 + rnd(3) as u32,
                            )
                        })
                        .collect();
                    let refs: Vec<(&str, u32)> =
                        dests.iter().map(|(a, w)| (a.as_str(), *w)).collect();
                    let mut s = service(port, scheds[rnd(8) as usize], &refs);
                    s.dests.sort();
                    if rnd(2) == 0 {
                        s.mode = ForwardMode::Dsr;
                    }
                    if rnd(4) == 0 {
                        s.persistence = 60;
                    }
                    want.push(s);
                }
                1 => {
                    gone = Some(want.remove(at).key);
                }
                2 => {
                    let i = at;
                    if let Some(d) = want[i].dests.first_mut() {
                        d.weight = 1 + rnd(5) as u32;
                    }
                }
                3 => {
                    let i = at;
                    let port = want[i].key.port;
                    let addr = format!("10.1.0.{}:{port}", 1 + rnd(200)).parse().unwrap();
                    if !want[i].dests.iter().any(|d| d.addr == addr) {
                        want[i].dests.push(Dest::new(addr, 1));
                        want[i].dests.sort();
                    }
                }
                4 => {
                    let i = at;
                    if !want[i].dests.is_empty() {
                        let j = rnd(want[i].dests.len() as u64) as usize;
                        want[i].dests.remove(j);
                    }
                }
                5 => {
                    let i = at;
                    want[i].scheduler = scheds[rnd(8) as usize];
                    want[i].persistence = if rnd(3) == 0 { 30 } else { 0 };
                }
                _ => {
                    let i = at;
                    want[i].mode = match want[i].mode {
                        ForwardMode::Nat => ForwardMode::Dsr,
                        _ => ForwardMode::Nat,
                    };
                }
            }
            // Every other step as the reconciler applies a delta: the changed service alone.
            let touched = touched
                .or_else(|| want.last().map(|s| s.key))
                .filter(|_| gone.is_none());
            if step % 2 == 1 {
                let changed: Vec<Service> = want
                    .iter()
                    .filter(|s| Some(s.key) == touched)
                    .cloned()
                    .collect();
                let removed: Vec<ServiceKey> = gone.into_iter().collect();
                let scope = crate::dataplane::Scope {
                    whole: &want,
                    changed: &changed,
                    removed: &removed,
                };
                p.apply_changed(&scope)
                    .unwrap_or_else(|e| panic!("step {step}: {e}"));
                assert_eq!(
                    apply(&mut p, &want).expect("whole"),
                    [],
                    "step {step}: the scoped apply left the plane where the whole one would"
                );
            } else {
                apply(&mut p, &want).unwrap_or_else(|e| panic!("step {step}: {e}"));
            }
            let listed = |t: Table| {
                parse::parse_table(&NftCli::default().list(t.spec()).expect("list")).expect("parse")
            };
            assert_eq!(
                comparable(&p.nat),
                comparable(&listed(Table::Nat)),
                "step {step}: the NAT table"
            );
            if !p.dsr.chains.is_empty() {
                assert_eq!(
                    comparable(&p.dsr),
                    comparable(&listed(Table::Dsr)),
                    "step {step}: the DSR table"
                );
            }
        }
        assert_eq!(
            p.reads, reads_at_start,
            "the plane listed its tables after its start"
        );
        let mut again = NftPlane::new(NftCli::default(), Some("lo".to_owned())).expect("plane");
        assert_eq!(
            apply(&mut again, &want).expect("adopt"),
            [],
            "a new plane adopts"
        );
    });
}

/// The in-process runner behaves as the binary: a missing table lists as empty, a bad script
/// is refused with nft's own message and changes nothing, and what it commits lists the same
/// through either.
#[test]
fn the_library_runner_lists_commits_and_refuses_as_the_binary_does() {
    in_private_netns(|| {
        let lib = NftLib::open().expect("libnftables");
        let cli = NftCli::default();
        assert_eq!(lib.list("inet seesaw").expect("list"), "");
        lib.run("add table inet seesaw\nadd chain inet seesaw c\n")
            .expect("commit");
        let listed = lib.list("inet seesaw").expect("list");
        assert!(listed.contains("\"name\": \"c\""), "{listed}");
        assert_eq!(listed, cli.list("inet seesaw").expect("list"));
        let e = lib
            .run("add chain inet seesaw d\nadd rule inet seesaw nosuch accept\n")
            .expect_err("a rule in a missing chain");
        assert!(
            e.to_string().contains("nft transaction failed: Error:"),
            "nft's own message: {e}"
        );
        assert!(
            !lib.list("inet seesaw")
                .expect("list")
                .contains("\"name\": \"d\""),
            "a refused script changed nothing"
        );
        assert!(lib.run("add table inet t\0").is_err(), "a NUL byte");
    });
}

/// Runs `f` on a thread in a network namespace of its own, with the real `nft`; skips, saying
/// why, without root or `nft`.
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
fn in_private_netns(f: impl FnOnce() + Send + 'static) {
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipping: applying to the kernel needs nft");
        return;
    }
    crate::test_support::in_private_netns("applying to the kernel", f);
}

/// A refused transaction reports nft's own message; one refused without any (too large for the
/// kernel's memory) reports the script's size instead of an empty reason.
#[test]
fn a_transaction_refused_without_a_message_says_how_large_it_was() {
    let script = "add table inet seesaw\nadd chain inet seesaw c\n";
    let e = runner::transaction_failed("", script).to_string();
    assert!(
        e.contains("without a message") && e.contains("2 lines"),
        "{e}"
    );
    let e = runner::transaction_failed("Error: No such file\nmore", script).to_string();
    assert!(
        e.ends_with("nft transaction failed: Error: No such file\nmore"),
        "{e}"
    );
}
