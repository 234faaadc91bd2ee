//! Reconcile snapshots: the engine's core turns config and health into a desired state, ncc's diff
//! turns desired + current into ordered operations. Each case of Seesaw's vserver checklist
//! (reference §12, items 69–84) is one config/health step with the exact operations expected,
//! run in-process through the real gRPC conversion and the stateful fake data plane.

use std::time::{Duration, SystemTime};

use seesaw_engine::config::{Loaded, load_cluster, seesaw_cfg};
use seesaw_engine::desired::DesiredState;
use seesaw_engine::ncc_port::desired_to_pb;
use seesaw_engine::state::{CheckResult, EngineState};
use seesaw_ncc::dataplane::{self, Dataplane, fake::FakeDataplane};

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn loaded(cluster: &str) -> Loaded {
    Loaded {
        settings: seesaw_cfg::parse("[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n").unwrap(),
        cluster: load_cluster(cluster.as_bytes(), None).unwrap_or_else(|e| panic!("{e:#?}")),
    }
}

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
    let services = seesaw_ncc::server::services_from_pb(desired_to_pb(desired)).unwrap();
    dataplane::apply(plane, &services)
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

#[test]
fn bring_up_then_health_changes_then_teardown() {
    let cfg = config(
        "10.1.0.1/32",
        TCP80,
        &backends(&[(1, 1), (2, 1)]),
        "PRODUCTION",
    );
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
    let mut r = Rig::new(&config(
        "10.1.0.1/32",
        TCP80,
        &backends(&[(1, 1), (2, 1)]),
        "PRODUCTION",
    ));
    r.health(&[]);
    r.step();
    // 77: a weight change is an edit in place; a removed backend is drained and deleted.
    r.reload(&config(
        "10.1.0.1/32",
        TCP80,
        &backends(&[(1, 5)]),
        "PRODUCTION",
    ));
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
    let mut r = Rig::new(&unicast);
    r.health(&[]);
    r.step();
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
    let mut r = Rig::new(&config(
        "10.1.0.1/32",
        TCP80,
        &backends(&[(1, 1), (2, 1)]),
        "PRODUCTION",
    ));
    r.health(&[]);
    r.step();
    // 82: a node that must not run vservers holds nothing.
    r.reload(&config(
        "10.1.0.1/32",
        TCP80,
        &backends(&[(1, 1), (2, 1)]),
        "DISABLED",
    ));
    assert_eq!(r.step().len(), 3);
    assert!(r.plane.current().is_empty());
}
