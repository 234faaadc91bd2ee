//! The engine's ncc port (`GrpcNcc`) against ncc's real gRPC server (a fake plane) over a Unix
//! socket, seen from outside through ncc's `GetState`: the first request is whole, later ones
//! send only what changed (`ApplyDelta`), and an ncc that restarted (it holds no request) gets
//! the whole state again — whatever the path, the plane ends up holding the engine's state.

#[path = "support/desired.rs"]
mod desired;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use desired::{loaded, t0};
use seesaw_engine::desired::DesiredState;
use seesaw_engine::ncc_port::{GrpcNcc, Ncc};
use seesaw_engine::state::{CheckResult, EngineState};
use seesaw_ncc::dataplane::fake::FakeDataplane;
use seesaw_proto::ncc as pb;
use tokio_util::sync::CancellationToken;

/// Three vservers (10.1.0.1–3), two checked backends each (10.2.0.1–2).
fn cluster(vservers: u8) -> String {
    let mut c = String::from(
        r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        node < fqdn: "n." ipv4: "10.0.0.2/24" >"#,
    );
    for i in 1..=vservers {
        c.push_str(&format!(
            r#"
        vserver < name: "v{i}" rp: "x" entry_address < fqdn: "e{i}." ipv4: "10.1.0.{i}/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: WRR mode: NAT
            healthcheck < type: TCP interval: 5 timeout: 1 > >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 >
          backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > weight: 1 > >"#
        ));
    }
    c
}

/// Every check healthy except those of the backend `down` (its checks are shared by every
/// vserver it serves).
fn health(e: &mut EngineState, down: Option<&str>) -> Arc<DesiredState> {
    let (views, _) = e.evaluate();
    let mut results = Vec::new();
    for v in &views {
        for s in &v.services {
            for d in &s.dests {
                let bad = down.is_some_and(|be| d.dest.ip.to_string() == be);
                for c in &d.checks {
                    let r = CheckResult {
                        healthy: !bad,
                        message: String::new(),
                        at: t0(),
                    };
                    results.push((c.id, r));
                }
            }
        }
    }
    e.health(results);
    Arc::new(e.evaluate().1)
}

/// ncc's server with a fresh fake plane on `sock`; cancelled to stop it.
fn start_ncc(sock: &Path) -> CancellationToken {
    let _ = std::fs::remove_file(sock);
    let listener = tokio::net::UnixListener::bind(sock).expect("bind the socket");
    let stop = CancellationToken::new();
    tokio::spawn(seesaw_ncc::server::run(
        FakeDataplane::default(),
        listener,
        stop.clone(),
    ));
    stop
}

/// What ncc's plane holds: VIP → destination addresses.
async fn held(sock: &Path) -> BTreeMap<String, Vec<String>> {
    let channel = seesaw_common::uds::channel(sock, Duration::from_secs(5));
    let state = pb::ncc_client::NccClient::new(channel)
        .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
        .get_state(pb::Empty {})
        .await
        .expect("GetState")
        .into_inner();
    state
        .services
        .into_iter()
        .map(|s| {
            let mut d: Vec<String> = s.destinations.into_iter().map(|d| d.address).collect();
            d.sort();
            (s.address, d)
        })
        .collect()
}

fn want(v: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    v.iter()
        .map(|(vip, d)| {
            (
                (*vip).to_owned(),
                d.iter().map(|a| (*a).to_owned()).collect(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deltas_and_a_restarted_ncc_leave_the_plane_holding_the_engines_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("ncc.sock");
    let stop = start_ncc(&sock);
    let ncc = GrpcNcc::new(seesaw_common::uds::channel(&sock, Duration::from_secs(5)));
    let mut e = EngineState::new(loaded(&cluster(3)), t0());
    let both: &[&str] = &["10.2.0.1", "10.2.0.2"];
    let one: &[&str] = &["10.2.0.2"];

    // Whole: every service added.
    let changes = ncc.apply(&health(&mut e, None)).await.expect("apply");
    assert_eq!(changes.len(), 9, "3 services, 6 destinations: {changes:?}");
    let all = want(&[("10.1.0.1", both), ("10.1.0.2", both), ("10.1.0.3", both)]);
    assert_eq!(held(&sock).await, all);
    assert_eq!(ncc.taken(), (0, 1), "the first request is whole");

    // A health flip: one backend leaves its three services, then comes back.
    let changes = ncc
        .apply(&health(&mut e, Some("10.2.0.1")))
        .await
        .expect("apply");
    assert_eq!(changes.len(), 3, "{changes:?}");
    let flipped = want(&[("10.1.0.1", one), ("10.1.0.2", one), ("10.1.0.3", one)]);
    assert_eq!(held(&sock).await, flipped);
    ncc.apply(&health(&mut e, None)).await.expect("apply");
    assert_eq!(held(&sock).await, all);

    // A vserver removed from the config.
    e.reload(loaded(&cluster(2)), t0());
    let changes = ncc.apply(&health(&mut e, None)).await.expect("apply");
    assert!(
        changes.iter().all(|c| c.contains("10.1.0.3")),
        "only the removed vserver: {changes:?}"
    );
    let two = want(&[("10.1.0.1", both), ("10.1.0.2", both)]);
    assert_eq!(held(&sock).await, two);
    assert_eq!(ncc.taken(), (3, 1), "the next three were deltas");

    // ncc restarts with an empty plane: the engine's delta names a request the new ncc does not
    // hold, so the whole state goes and nothing is missing.
    stop.cancel();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let stop = start_ncc(&sock);
    let desired = health(&mut e, Some("10.2.0.1"));
    // The engine's channel may first see the old connection gone (the driver retries the same
    // way); the base survives a failed call.
    let mut changes = Err(seesaw_engine::ncc_port::NccError::Unavailable(String::new()));
    for _ in 0..50 {
        changes = ncc.apply(&desired).await;
        if changes.is_ok() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let changes = changes.expect("apply after the restart");
    assert_eq!(changes.len(), 4, "2 services, 2 destinations: {changes:?}");
    let after = want(&[("10.1.0.1", one), ("10.1.0.2", one)]);
    assert_eq!(held(&sock).await, after);
    assert_eq!(
        ncc.taken(),
        (3, 2),
        "the new ncc refused the delta and took the whole state"
    );
    // And deltas again from there; an unchanged state changes nothing.
    assert_eq!(
        ncc.apply(&desired).await.expect("apply"),
        Vec::<String>::new()
    );
    ncc.apply(&health(&mut e, None)).await.expect("apply");
    assert_eq!(held(&sock).await, two);
    assert_eq!(ncc.taken(), (5, 2));
    stop.cancel();
}

/// The whole state of a large cluster crosses the socket both ways: 20,000 services × 10
/// destinations (about 8 MB, twice tonic's default 4 MiB limit) go whole from the engine's port
/// to ncc's server, and come back in `GetState`. Before `MAX_MESSAGE`, ncc refused the request
/// ("decoded message length too large") and the plane stayed empty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_whole_state_larger_than_four_mebibytes_crosses_both_ways() {
    use prost::Message as _;
    use seesaw_engine::desired::{DestSpec, KernelOpts, ServiceKey, ServiceSpec};
    use seesaw_engine::model::{ForwardMode, Protocol, Scheduler};
    let dir = tempfile::tempdir().expect("temp dir");
    let sock = dir.path().join("ncc.sock");
    let stop = start_ncc(&sock);
    let services: Vec<Arc<ServiceSpec>> = (0..20_000u32)
        .map(|i| {
            let vip = std::net::Ipv4Addr::from(0x0a08_0000 + i);
            Arc::new(ServiceSpec {
                key: ServiceKey::new(vip.into(), Protocol::Tcp, 80),
                scheduler: Scheduler::Wrr,
                mode: ForwardMode::Nat,
                persistence: 0,
                dests: (0..10u32)
                    .map(|j| DestSpec {
                        ip: std::net::Ipv4Addr::from(0x0a09_0000 + i * 10 + j).into(),
                        port: 80,
                        weight: 1,
                        group: String::new(),
                        backup: false,
                    })
                    .collect(),
                proxy: seesaw_engine::model::ProxyOpts::default(),
                marks: Vec::new(),
                kernel: KernelOpts::default(),
                anchor: None,
            })
        })
        .collect();
    let desired = Arc::new(DesiredState {
        services,
        ..DesiredState::default()
    });
    let size = seesaw_engine::ncc_port::desired_to_pb(&desired).encoded_len();
    assert!(
        size > 4 << 20,
        "the request is {size} bytes: too small to test the limit"
    );
    let ncc = GrpcNcc::new(seesaw_common::uds::channel(&sock, Duration::from_secs(60)));
    let changes = ncc
        .apply(&desired)
        .await
        .expect("a large whole state is taken");
    assert_eq!(
        changes.len(),
        220_000,
        "every service and destination added"
    );
    let held = held(&sock).await;
    assert_eq!(held.len(), 20_000, "GetState answers with every service");
    assert!(held.values().all(|d| d.len() == 10));
    stop.cancel();
}
