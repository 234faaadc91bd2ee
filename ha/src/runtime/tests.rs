//! Paused-time tests of the ha runtime against the fake engine: what is pushed when, re-fetching,
//! riding out an engine restart, and the final SHUTDOWN report.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use super::{RunConfig, run};
use crate::link::fake::FakeEngine;
use crate::node::tests::single;
use crate::node::{HaConfig, State};
use crate::transport::fake::FakeNet;

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

fn start(fake: &FakeEngine) -> (CancellationToken, JoinHandle<()>) {
    let token = CancellationToken::new();
    let task = tokio::spawn(run(
        RunConfig::default(),
        fake.clone(),
        FakeNet::new().opener(),
        token.clone(),
    ));
    (token, task)
}

/// A single enabled node's runtime started now against a fresh fake engine: the fake, the start
/// time, and the runtime's cancel token and task.
fn start_single() -> (FakeEngine, Instant, CancellationToken, JoinHandle<()>) {
    let fake = FakeEngine::new(single(true));
    let t0 = Instant::now();
    let (token, task) = start(&fake);
    (fake, t0, token, task)
}

/// The offsets from `t0` (in ms) and states of every report the fake received.
fn reports(fake: &FakeEngine, t0: Instant) -> Vec<(u128, State)> {
    fake.reports()
        .iter()
        .map(|(at, r)| ((*at - t0).as_millis(), r.state))
        .collect()
}

#[tokio::test(start_paused = true)]
async fn pushes_at_once_on_transition_then_every_second_and_refetches() {
    let (fake, t0, token, task) = start_single();

    sleep_until(t0 + secs(0.01)).await;
    assert_eq!(fake.fetches(), [t0]);
    assert_eq!(reports(&fake, t0), [(0, State::Leader)]);
    let first = fake.reports()[0].1;
    assert_eq!(first.transitions, 1);
    assert_eq!((first.adverts_sent, first.adverts_received), (0, 0));

    sleep_until(t0 + secs(3.5)).await;
    assert_eq!(
        reports(&fake, t0),
        [
            (0, State::Leader),
            (1000, State::Leader),
            (2000, State::Leader),
            (3000, State::Leader)
        ]
    );
    // Periodic pushes repeat the transition time, not the push time.
    assert!(
        fake.reports()
            .iter()
            .all(|(_, r)| r.since_ms == first.since_ms)
    );

    // A reload disables HA; the node learns it at the 15 s re-fetch and pushes at once.
    sleep_until(t0 + secs(10.0)).await;
    fake.set_config(single(false));
    sleep_until(t0 + secs(15.5)).await;
    assert_eq!(fake.fetches(), [t0, t0 + secs(15.0)]);
    let (at, last) = *fake.reports().last().expect("reports were pushed");
    assert_eq!(
        (at, last.state, last.transitions),
        (t0 + secs(15.0), State::Disabled, 2)
    );
    assert_eq!(last.since_ms, first.since_ms + 15_000);

    token.cancel();
    task.await.expect("run does not panic");
    let (_, last) = *fake.reports().last().expect("reports were pushed");
    assert_eq!((last.state, last.transitions), (State::Shutdown, 3));
}

#[tokio::test(start_paused = true)]
async fn retries_an_unreachable_engine_every_second_and_rides_out_a_restart() {
    let fake = FakeEngine::new(single(true));
    fake.set_unreachable(true);
    let t0 = Instant::now();
    let (token, task) = start(&fake);

    // Down from the start: one attempt per second, nothing delivered, forever.
    sleep_until(t0 + secs(3.5)).await;
    assert_eq!(fake.fetch_attempts(), 4);
    assert!(fake.reports().is_empty());

    // The engine comes up: the next retry gets the config and LEADER is pushed at once.
    fake.set_unreachable(false);
    sleep_until(t0 + secs(4.5)).await;
    assert_eq!(fake.fetches(), [t0 + secs(4.0)]);
    assert_eq!(
        reports(&fake, t0),
        [(4000, State::Unknown), (4000, State::Leader)]
    );

    // The watchdog restarts the engine: pushes at 7 s and 8 s fail, the node stays LEADER, and
    // the restarted engine hears LEADER within a second and is asked for its config again.
    sleep_until(t0 + secs(6.5)).await;
    fake.set_unreachable(true);
    sleep_until(t0 + secs(8.5)).await;
    fake.set_unreachable(false);
    sleep_until(t0 + secs(9.5)).await;
    let after: Vec<_> = reports(&fake, t0)
        .into_iter()
        .filter(|(ms, _)| *ms > 6500)
        .collect();
    assert_eq!(after, [(9000, State::Leader)]);
    assert_eq!(fake.fetches(), [t0 + secs(4.0), t0 + secs(9.0)]);

    token.cancel();
    task.await.expect("run does not panic");
}

#[tokio::test(start_paused = true)]
async fn shutdown_report_gives_up_after_the_deadline() {
    let (fake, t0, token, task) = start_single();
    sleep_until(t0 + secs(2.5)).await;
    // The engine stops answering; the node stays in its loop with a call in flight.
    fake.set_hanging(true);
    sleep_until(t0 + secs(3.5)).await;
    token.cancel();
    let stopped_at = t0 + secs(3.5);
    task.await.expect("run does not panic");
    // The in-flight call is abandoned at once; the SHUTDOWN report waits 1 s at most.
    assert_eq!(Instant::now() - stopped_at, secs(1.0));
    assert!(fake.reports().iter().all(|(_, r)| r.state == State::Leader));
}

#[tokio::test(start_paused = true)]
async fn shutdown_is_reported_once() {
    let (fake, _, token, task) = start_single();
    tokio::time::sleep(secs(1.5)).await;
    token.cancel();
    task.await.expect("run does not panic");
    let shutdowns = fake
        .reports()
        .iter()
        .filter(|(_, r)| r.state == State::Shutdown)
        .count();
    assert_eq!(shutdowns, 1);
    // Nothing more arrives after run returned.
    let n = fake.reports().len();
    tokio::time::sleep(secs(5.0)).await;
    assert_eq!(fake.reports().len(), n);
}

#[test]
fn dump_names_state_counters_peer_and_engine() {
    use std::net::Ipv4Addr;
    use std::time::{SystemTime, UNIX_EPOCH};

    use super::DumpView;
    use crate::link::HaReport;
    use crate::node::Peering;

    let since_ms = 1_700_000_000_000;
    let mut view = DumpView {
        report: HaReport {
            state: State::Leader,
            since_ms,
            transitions: 3,
            adverts_sent: 120,
            adverts_received: 7,
            adverts_rejected: Default::default(),
        },
        peering: Some(Peering {
            local: Ipv4Addr::new(192, 0, 2, 1),
            peer: Ipv4Addr::new(192, 0, 2, 2),
            vrid: 60,
            priority: 100,
            interval: Duration::from_millis(500),
            preempt: false,
            auth: None,
        }),
        engine_reachable: true,
        transport_open: true,
    };
    let now = UNIX_EPOCH + Duration::from_millis(12_345 + 1_700_000_000_000);
    assert_eq!(
        view.report(now),
        "state LEADER since 12.3 s ago; transitions 3; adverts sent 120, received 7; \
         peer 192.0.2.2 from 192.0.2.1 (vrid 60, priority 100, advert interval 500 ms, \
         preempt false), advert socket open; engine reachable"
    );
    view.peering = None;
    view.engine_reachable = false;
    let text = view.report(SystemTime::now());
    assert!(
        text.ends_with("no peer (single node); engine unreachable"),
        "{text}"
    );
}

/// One node of a pair on `net`: its own fake engine, serving a peer config with `auth`.
fn pair_node(
    net: &FakeNet,
    local: &str,
    peer: &str,
    priority: u32,
    auth: crate::auth::AuthSetting,
) -> (FakeEngine, CancellationToken, JoinHandle<()>) {
    let fake = FakeEngine::new(HaConfig {
        enabled: true,
        local_addr: local.into(),
        remote_addr: Some(peer.into()),
        priority,
        vrid: 60,
        advert_interval: Duration::from_millis(100),
        auth,
        ..HaConfig::default()
    });
    let token = CancellationToken::new();
    let task = tokio::spawn(run(
        RunConfig::default(),
        fake.clone(),
        net.opener(),
        token.clone(),
    ));
    (fake, token, task)
}

/// The pair's first node, 192.0.2.1 at priority 200, on `net`.
fn node_1(
    net: &FakeNet,
    auth: crate::auth::AuthSetting,
) -> (FakeEngine, CancellationToken, JoinHandle<()>) {
    pair_node(net, "192.0.2.1", "192.0.2.2", 200, auth)
}

/// The pair's second node, 192.0.2.2 at priority 100, on `net`.
fn node_2(
    net: &FakeNet,
    auth: crate::auth::AuthSetting,
) -> (FakeEngine, CancellationToken, JoinHandle<()>) {
    pair_node(net, "192.0.2.2", "192.0.2.1", 100, auth)
}

fn keyed(send: &[u8]) -> crate::auth::AuthSetting {
    crate::auth::AuthSetting::Keys(crate::auth::AuthKeys {
        send: crate::auth::Key::derive(send),
        accept: None,
    })
}

fn last_report(fake: &FakeEngine) -> crate::link::HaReport {
    fake.reports().last().expect("reports were pushed").1
}

#[tokio::test(start_paused = true)]
async fn signed_pair_elects_one_master_and_a_wrong_key_counts_bad_mac() {
    const KEY: &[u8] = b"the same 32-byte key on both nodes";
    let net = FakeNet::new();
    let (a, ta, ja) = node_1(&net, keyed(KEY));
    let (b, tb, jb) = node_2(&net, keyed(KEY));
    tokio::time::sleep(secs(5.0)).await;
    let (ra, rb) = (last_report(&a), last_report(&b));
    assert_eq!((ra.state, rb.state), (State::Leader, State::Backup));
    assert!(rb.adverts_received > 10, "{rb:?}");
    assert_eq!(ra.adverts_rejected.nonzero().count(), 0, "{ra:?}");
    assert_eq!(rb.adverts_rejected.nonzero().count(), 0, "{rb:?}");

    // An attacker on the segment forges an unsigned priority-0 advert from the master's
    // address: the backup drops it (and counts it) instead of taking over at once.
    for _ in 0..5 {
        let forged = crate::advert::Advert::new(60, 0, Duration::from_millis(100));
        let (src, dst) = (
            std::net::Ipv4Addr::new(192, 0, 2, 1),
            std::net::Ipv4Addr::new(192, 0, 2, 2),
        );
        net.inject(crate::advert::ipv4_datagram(
            src,
            dst,
            &forged.encode(src.into(), dst.into()),
        ));
    }
    tokio::time::sleep(secs(1.5)).await;
    let rb = last_report(&b);
    assert_eq!(rb.state, State::Backup);
    assert_eq!(rb.adverts_rejected.get("unauthenticated"), 5, "{rb:?}");
    assert_eq!(last_report(&a).state, State::Leader);
    for (t, j) in [(ta, ja), (tb, jb)] {
        t.cancel();
        j.await.expect("run does not panic");
    }

    // Different keys: neither node believes the other, both count bad_mac (and, with nobody
    // to hear, both lead: what the CLI's warning is for).
    let net = FakeNet::new();
    let (a, ta, ja) = node_1(&net, keyed(KEY));
    let (b, tb, jb) = node_2(&net, keyed(b"a different key, also 32 bytes ok"));
    tokio::time::sleep(secs(5.0)).await;
    let (ra, rb) = (last_report(&a), last_report(&b));
    assert!(ra.adverts_rejected.get("bad_mac") > 0, "{ra:?}");
    assert!(rb.adverts_rejected.get("bad_mac") > 0, "{rb:?}");
    assert_eq!(rb.adverts_received, 0);
    assert_eq!((ra.state, rb.state), (State::Leader, State::Leader));

    // One node without a key: it counts unexpected_auth, the signing one unauthenticated.
    let net = FakeNet::new();
    let (c, tc, jc) = node_1(&net, keyed(KEY));
    let (d, td, jd) = node_2(&net, crate::auth::AuthSetting::Off);
    tokio::time::sleep(secs(5.0)).await;
    assert!(last_report(&c).adverts_rejected.get("unauthenticated") > 0);
    assert!(last_report(&d).adverts_rejected.get("unexpected_auth") > 0);
    for (t, j) in [(ta, ja), (tb, jb), (tc, jc), (td, jd)] {
        t.cancel();
        j.await.expect("run does not panic");
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreadable_key_is_error_until_the_config_is_fixed() {
    const KEY: &[u8] = b"the same 32-byte key on both nodes";
    let net = FakeNet::new();
    let (a, ta, ja) = node_1(
        &net,
        crate::auth::AuthSetting::Unusable("advert key file /k: must be mode 0600".into()),
    );
    tokio::time::sleep(secs(2.0)).await;
    assert_eq!(last_report(&a).state, State::Error);
    assert!(net.sent().is_empty());
    a.set_config(HaConfig {
        enabled: true,
        local_addr: "192.0.2.1".into(),
        remote_addr: Some("192.0.2.2".into()),
        priority: 200,
        vrid: 60,
        advert_interval: Duration::from_millis(100),
        auth: keyed(KEY),
        ..HaConfig::default()
    });
    // The next fetch (every 15 s) reads the fixed key.
    tokio::time::sleep(secs(15.0)).await;
    assert_eq!(last_report(&a).state, State::Leader);
    ta.cancel();
    ja.await.expect("run does not panic");
}
