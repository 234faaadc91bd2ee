//! Reconcile snapshots: the engine's core turns config and health into a desired state, ncc's diff
//! turns desired + current into ordered operations. Each case of Seesaw's vserver checklist
//! (reference §12, items 69–84) is one config/health step with the exact operations expected,
//! run in-process through the real gRPC conversion and the stateful fake data plane.

#[path = "support/desired.rs"]
mod desired;

use desired::{loaded, t0};
use seesaw_engine::desired::DesiredState;
use seesaw_engine::ncc_port::desired_to_pb;
use seesaw_engine::state::{CheckResult, EngineState};
use seesaw_ncc::dataplane::{self, Dataplane, fake::FakeDataplane};

/// One vserver `web` on `vip`, entries and backends as given (text-format fragments).
fn config(vip: &str, entries: &str, backends: &str, node_status: &str) -> String {
    format!(
        r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" status: PRODUCTION >
           node < fqdn: "n." ipv4: "10.0.0.2/24" status: {node_status} >
           vserver < name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "{vip}" >
             {entries} {backends} >"#
    )
}

const TCP80: &str = r#"vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: WRR healthcheck < type: TCP > >"#;
const TWO_ENTRIES: &str = r#"vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: WRR healthcheck < type: TCP > >
                             vserver_entry < protocol: TCP port: 443 mode: NAT scheduler: WRR healthcheck < type: TCP > >"#;

/// `web` on 10.1.0.1 with the one entry TCP80 and backends of these weights.
fn web_tcp80(weights: &[(u8, u32)], node_status: &str) -> String {
    config("10.1.0.1/32", TCP80, &backends(weights), node_status)
}

fn backends(weights: &[(u8, u32)]) -> String {
    weights
        .iter()
        .map(|(n, w)| {
            format!(r#"backend < host < fqdn: "b{n}." ipv4: "10.2.0.{n}/24" > weight: {w} >"#)
        })
        .collect()
}

/// The engine and the fake plane side by side.
struct Rig {
    engine: EngineState,
    plane: FakeDataplane,
}

impl Rig {
    fn new(cfg: &str) -> Self {
        Self {
            engine: EngineState::new(loaded(cfg), t0()),
            plane: FakeDataplane::default(),
        }
    }

    /// Marks every check of every backend whose last octet is in `down` unhealthy, others healthy.
    fn health(&mut self, down: &[u8]) {
        let (views, _) = self.engine.evaluate();
        let mut results = Vec::new();
        for v in &views {
            for s in &v.services {
                for d in &s.dests {
                    let octet = d
                        .dest
                        .ip
                        .to_string()
                        .rsplit('.')
                        .next()
                        .unwrap()
                        .parse::<u8>()
                        .unwrap();
                    for c in &d.checks {
                        results.push((
                            c.id,
                            CheckResult {
                                healthy: !down.contains(&octet),
                                message: String::new(),
                                at: t0(),
                            },
                        ));
                    }
                }
            }
        }
        self.engine.health(results);
    }

    /// A rig on `cfg` with every check healthy and the first step applied.
    fn up(cfg: &str) -> Self {
        let mut r = Self::new(cfg);
        r.health(&[]);
        r.step();
        r
    }

    fn reload(&mut self, cfg: &str) {
        self.engine.reload(loaded(cfg), t0());
    }

    /// Applies the engine's desired state to the plane; returns ncc's operations.
    fn step(&mut self) -> Vec<String> {
        let (_, desired) = self.engine.evaluate();
        apply(&mut self.plane, &desired)
    }
}

fn apply(plane: &mut FakeDataplane, desired: &DesiredState) -> Vec<String> {
    let services = seesaw_ncc::convert::services_from_pb(desired_to_pb(desired)).unwrap();
    dataplane::apply(plane, &services)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn bring_up_then_health_changes_then_teardown() {
    let cfg = web_tcp80(&[(1, 1), (2, 1)], "PRODUCTION");
    let mut r = Rig::new(&cfg);
    r.health(&[]);
    // 74: the service first, then its healthy destinations.
    assert_eq!(
        r.step(),
        [
            "add service 10.1.0.1:80/TCP (Wrr, Nat)",
            "add destination 10.2.0.1:80 to 10.1.0.1:80/TCP (weight 1)",
            "add destination 10.2.0.2:80 to 10.1.0.1:80/TCP (weight 1)",
        ]
    );
    assert!(r.step().is_empty(), "in sync: nothing to do");
    // 69: an unhealthy destination leaves; the service stays.
    r.health(&[2]);
    assert_eq!(
        r.step(),
        ["delete destination 10.2.0.2:80 from 10.1.0.1:80/TCP"]
    );
    // 70/72: no healthy destination left: the service goes, destinations first.
    r.health(&[1, 2]);
    assert_eq!(
        r.step(),
        [
            "delete destination 10.2.0.1:80 from 10.1.0.1:80/TCP",
            "delete service 10.1.0.1:80/TCP"
        ]
    );
    r.health(&[]);
    assert_eq!(r.step().len(), 3);
    // 84: shutdown removes everything.
    assert_eq!(
        apply(&mut r.plane, &DesiredState::default()),
        [
            "delete destination 10.2.0.1:80 from 10.1.0.1:80/TCP",
            "delete destination 10.2.0.2:80 from 10.1.0.1:80/TCP",
            "delete service 10.1.0.1:80/TCP",
        ]
    );
}

#[test]
fn watermarks_gate_the_service() {
    let entry = r#"vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: RR
                   server_low_watermark: 0.3 server_high_watermark: 0.6 healthcheck < type: TCP > >"#;
    let mut r = Rig::new(&config(
        "10.1.0.1/32",
        entry,
        &backends(&[(1, 1), (2, 1), (3, 1)]),
        "PRODUCTION",
    ));
    r.health(&[2, 3]);
    assert!(r.step().is_empty(), "1/3 < high watermark 0.6: not up");
    r.health(&[3]);
    assert_eq!(r.step().len(), 3, "2/3: service + 2 destinations");
    r.health(&[2, 3]);
    assert_eq!(
        r.step(),
        ["delete destination 10.2.0.2:80 from 10.1.0.1:80/TCP"],
        "1/3 ≥ low 0.3: stays up"
    );
}

#[test]
fn in_place_changes_weights_backends_and_modes() {
    let mut r = Rig::up(&web_tcp80(&[(1, 1), (2, 1)], "PRODUCTION"));
    // 77: a weight change is an edit in place; a removed backend is drained and deleted.
    r.reload(&web_tcp80(&[(1, 5)], "PRODUCTION"));
    assert_eq!(
        r.step(),
        [
            "delete destination 10.2.0.2:80 from 10.1.0.1:80/TCP",
            "set weight of 10.2.0.1:80 in 10.1.0.1:80/TCP to 5",
        ]
    );
    // 75: a scheduler or mode change updates the service in place (its destinations stay).
    r.reload(&config(
        "10.1.0.1/32",
        &TCP80.replace("WRR", "RR"),
        &backends(&[(1, 5)]),
        "PRODUCTION",
    ));
    assert_eq!(
        r.step(),
        ["update service 10.1.0.1:80/TCP (Rr, Nat, persistence 0s)"]
    );
    // 77: a backend whose status leaves PRODUCTION is taken down.
    r.reload(&config(
        "10.1.0.1/32",
        &TCP80.replace("WRR", "RR"),
        r#"backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" status: DISABLED > weight: 5 >"#,
        "PRODUCTION",
    ));
    assert_eq!(
        r.step(),
        [
            "delete destination 10.2.0.1:80 from 10.1.0.1:80/TCP",
            "delete service 10.1.0.1:80/TCP"
        ]
    );
}

#[test]
fn anycast_vip_needs_all_services_healthy() {
    let mut r = Rig::new(&config(
        "192.168.255.7/32",
        TWO_ENTRIES,
        &backends(&[(1, 1)]),
        "PRODUCTION",
    ));
    r.health(&[]);
    assert_eq!(r.step().len(), 4, "two services with one destination each");
    // 71: one service of the anycast VIP fails → the whole VIP goes (destinations first).
    let (views, _) = r.engine.evaluate();
    let tcp443 = views[0].services[1].dests[0].checks[0].id;
    r.engine.health([(
        tcp443,
        CheckResult {
            healthy: false,
            message: String::new(),
            at: t0(),
        },
    )]);
    // Only the port-443 service's check fails; the port-80 service is healthy but goes too.
    assert_eq!(
        r.step(),
        [
            "delete destination 10.2.0.1:80 from 192.168.255.7:80/TCP",
            "delete service 192.168.255.7:80/TCP",
            "delete destination 10.2.0.1:443 from 192.168.255.7:443/TCP",
            "delete service 192.168.255.7:443/TCP",
        ]
    );
}

#[test]
fn re_ip_round_trip_leaves_nothing_behind() {
    let unicast = config("10.1.0.1/32", TCP80, &backends(&[(1, 1)]), "PRODUCTION");
    let anycast = config(
        "192.168.255.9/32",
        TCP80,
        &backends(&[(1, 1)]),
        "PRODUCTION",
    );
    let mut r = Rig::up(&unicast);
    let start = r.plane.current();
    // 76: the services on the old IP go before the new IP comes up.
    r.reload(&anycast);
    r.health(&[]);
    assert_eq!(
        r.step(),
        [
            "delete destination 10.2.0.1:80 from 10.1.0.1:80/TCP",
            "delete service 10.1.0.1:80/TCP",
            "add service 192.168.255.9:80/TCP (Wrr, Nat)",
            "add destination 10.2.0.1:80 to 192.168.255.9:80/TCP (weight 1)",
        ]
    );
    r.reload(&unicast);
    r.health(&[]);
    assert_eq!(r.step().len(), 4);
    assert_eq!(
        r.plane.current(),
        start,
        "unicast → anycast → unicast: exactly the starting state"
    );
}

#[test]
fn node_disablement_tears_everything_down() {
    let mut r = Rig::up(&web_tcp80(&[(1, 1), (2, 1)], "PRODUCTION"));
    // 82: a node that must not run vservers holds nothing.
    r.reload(&web_tcp80(&[(1, 1), (2, 1)], "DISABLED"));
    assert_eq!(r.step().len(), 3);
    assert!(r.plane.current().is_empty());
}

/// The mark of the only firewall-mark service of `family` (`true`: IPv4) in the desired state.
fn fwmark_of(e: &mut EngineState, v4: bool, probe: bool) -> u32 {
    let (_, desired) = e.evaluate();
    let marks: Vec<u32> = desired
        .services
        .iter()
        .filter(|s| s.key.fwmark != 0 && s.key.vip.is_ipv4() == v4 && s.marks.is_empty() == probe)
        .map(|s| s.key.fwmark)
        .collect();
    assert_eq!(marks.len(), 1, "{desired:?}");
    marks[0]
}

#[test]
fn fwmark_vserver_is_one_service_with_a_stable_mark() {
    let fwm = format!("use_fwm: true {TWO_ENTRIES}");
    let cfg = config(
        "10.1.0.1/32",
        &fwm,
        &backends(&[(1, 1), (2, 1)]),
        "PRODUCTION",
    );
    let mut r = Rig::new(&cfg);
    r.health(&[]);
    let m = fwmark_of(&mut r.engine, true, false);
    assert!((256..=8255).contains(&m), "Seesaw's vserver pool: {m}");
    // 83: one firewall-mark service for both entries, destinations at port 0.
    assert_eq!(
        r.step(),
        [
            format!("add service fwmark {m}/IPv4 (Wrr, Nat)"),
            format!("add destination 10.2.0.1:0 to fwmark {m}/IPv4 (weight 1)"),
            format!("add destination 10.2.0.2:0 to fwmark {m}/IPv4 (weight 1)"),
        ]
    );
    let held = r.plane.current();
    assert_eq!(held.len(), 1);
    let marked: Vec<String> = held[0].marks.iter().map(ToString::to_string).collect();
    assert_eq!(marked, ["10.1.0.1:80/TCP", "10.1.0.1:443/TCP"]);
    // A destination unhealthy in one entry leaves the one service.
    r.health(&[2]);
    assert_eq!(
        r.step(),
        [format!(
            "delete destination 10.2.0.2:0 from fwmark {m}/IPv4"
        )]
    );
    r.health(&[]);
    r.step();
    // A reload that adds an entry and a second fwmark vserver: the running mark never moves.
    let three = format!(
        r#"use_fwm: true {TWO_ENTRIES}
           vserver_entry < protocol: UDP port: 53 mode: NAT scheduler: WRR healthcheck < type: TCP > >"#
    );
    let cfg2 = format!(
        r#"{}
           vserver < name: "dns" rp: "x" use_fwm: true entry_address < fqdn: "d." ipv4: "10.1.0.2/32" >
             {TCP80} {} >"#,
        config(
            "10.1.0.1/32",
            &three,
            &backends(&[(1, 1), (2, 1)]),
            "PRODUCTION"
        ),
        backends(&[(3, 1)])
    );
    r.reload(&cfg2);
    r.health(&[]);
    let (_, desired) = r.engine.evaluate();
    let web = desired
        .services
        .iter()
        .find(|s| s.marks.iter().any(|k| k.vip.to_string() == "10.1.0.1"))
        .expect("web's service");
    assert_eq!(web.key.fwmark, m, "web keeps its mark");
    let dns = desired
        .services
        .iter()
        .find(|s| s.marks.iter().any(|k| k.vip.to_string() == "10.1.0.2"))
        .expect("dns's service")
        .key
        .fwmark;
    assert_ne!(dns, m);
    let mut ops = r.step();
    ops.sort();
    let mut want = vec![
        format!("update service fwmark {m}/IPv4 (Wrr, Nat, persistence 0s)"),
        format!("add service fwmark {dns}/IPv4 (Wrr, Nat)"),
        format!("add destination 10.2.0.3:0 to fwmark {dns}/IPv4 (weight 1)"),
    ];
    want.sort();
    assert_eq!(ops, want);

    // An engine restart adopts the marks the plane holds: nothing changes.
    let mut restarted = EngineState::new(loaded(&cfg2), t0());
    let held: Vec<seesaw_engine::state::HeldFwmark> = r
        .plane
        .current()
        .iter()
        .map(|s| seesaw_engine::state::HeldFwmark {
            // The engine's key is ncc's (one type, `seesaw_proto::domain`).
            key: s.key,
            mode: seesaw_engine::model::ForwardMode::Nat,
            marks: s
                .marks
                .iter()
                .map(|k| {
                    seesaw_engine::desired::ServiceKey::new(
                        k.vip,
                        seesaw_engine::model::Protocol::Tcp,
                        k.port,
                    )
                })
                .collect(),
            dests: s.dests.iter().map(|d| d.addr.ip()).collect(),
        })
        .collect();
    restarted.adopt_fwmarks(&held);
    r.engine = restarted;
    r.health(&[]);
    assert_eq!(
        r.step(),
        Vec::<String>::new(),
        "the restarted engine keeps both marks"
    );

    // The vserver goes away: its service leaves (destinations first), its mark is free again.
    r.reload(&cfg);
    r.health(&[]);
    let mut ops = r.step();
    for _ in 0..3 {
        r.engine.converge(t0());
        r.health(&[]);
        ops.extend(r.step());
    }
    assert_eq!(
        ops,
        [
            format!("delete destination 10.2.0.3:0 from fwmark {dns}/IPv4"),
            format!("delete service fwmark {dns}/IPv4"),
            format!("update service fwmark {m}/IPv4 (Wrr, Nat, persistence 0s)"),
        ]
    );
}

#[test]
fn dsr_probe_gets_a_single_destination_fwmark_service() {
    let entry = r#"vserver_entry < protocol: TCP port: 80 mode: DSR scheduler: WRR
                     healthcheck < type: TCP mode: DSR > >"#;
    let cfg = config(
        "10.1.0.1/32",
        entry,
        &backends(&[(1, 1), (2, 1)]),
        "PRODUCTION",
    );
    let mut r = Rig::new(&cfg);
    let checks: Vec<_> = r.engine.checks().cloned().collect();
    assert_eq!(checks.len(), 2, "one probe per backend");
    for c in &checks {
        assert_eq!(
            c.vip,
            Some("10.1.0.1".parse().unwrap()),
            "probes go to the VIP"
        );
        assert!(
            (65_536..=81_535).contains(&c.mark),
            "Seesaw's probe pool: {}",
            c.mark
        );
    }
    assert_ne!(checks[0].mark, checks[1].mark);
    // Before any check reports, only the probe services exist (sh, one destination at port 0).
    let mut ops = r.step();
    ops.sort();
    let mut want = Vec::new();
    for c in &checks {
        want.push(format!("add service fwmark {}/IPv4 (Sh, Dsr)", c.mark));
        want.push(format!(
            "add destination {}:0 to fwmark {}/IPv4 (weight 1)",
            c.target, c.mark
        ));
    }
    want.sort();
    assert_eq!(ops, want);
    // A reload keeps the probe marks.
    r.reload(&cfg.replace("weight: 1", "weight: 2"));
    let again: Vec<u32> = r.engine.checks().map(|c| c.mark).collect();
    assert_eq!(again, checks.iter().map(|c| c.mark).collect::<Vec<_>>());
}
