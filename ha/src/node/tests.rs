//! Unit tests of the node: single-node mode, the engine schedule, and the peer protocol.

use std::net::Ipv4Addr;

use super::*;
use crate::advert::{Advert, Received};
use crate::auth::AuthKeys;

/// A single-node config (192.0.2.1, VRID 60, priority 100), enabled or not.
pub(crate) fn single(enabled: bool) -> HaConfig {
    HaConfig {
        enabled,
        local_addr: "192.0.2.1".into(),
        remote_addr: None,
        priority: 100,
        vrid: 60,
        ..HaConfig::default()
    }
}

fn with_peer() -> HaConfig {
    HaConfig {
        remote_addr: Some("192.0.2.2".into()),
        ..single(true)
    }
}

fn pushed_states(actions: &[Action]) -> Vec<State> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::PushStatus(s) => Some(s.state),
            _ => None,
        })
        .collect()
}

#[test]
fn starts_unknown_and_fetches_at_once() {
    let t0 = Instant::now();
    let mut node = Node::new(Timers::default(), t0);
    assert_eq!(node.state(), State::Unknown);
    assert_eq!(node.next_deadline(), Some(t0));
    assert_eq!(node.handle(Event::Tick, t0), vec![Action::FetchConfig]);
    let s = node.status();
    assert_eq!(
        (s.since, s.transitions, s.adverts_sent, s.adverts_received),
        (t0, 0, 0, 0)
    );
}

#[test]
fn enabled_without_peer_becomes_leader_and_pushes() {
    let t0 = Instant::now();
    let t1 = t0 + Duration::from_millis(30);
    let mut node = Node::new(Timers::default(), t0);
    let actions = node.handle(Event::ConfigReceived(single(true)), t1);
    assert_eq!(
        actions,
        vec![Action::PushStatus(Status {
            state: State::Leader,
            since: t1,
            transitions: 1,
            adverts_sent: 0,
            adverts_received: 0,
        })]
    );
    // The same config again is not a transition.
    assert!(
        node.handle(Event::ConfigReceived(single(true)), t1)
            .is_empty()
    );
    assert_eq!(node.status().transitions, 1);
}

#[test]
fn disabled_and_peer_configs() {
    let t0 = Instant::now();
    let mut node = Node::new(Timers::default(), t0);
    assert_eq!(
        pushed_states(&node.handle(Event::ConfigReceived(single(false)), t0)),
        [State::Disabled]
    );
    assert_eq!(
        pushed_states(&node.handle(Event::ConfigReceived(with_peer()), t0)),
        [State::Backup]
    );
    assert_eq!(
        pushed_states(&node.handle(Event::ConfigReceived(single(true)), t0)),
        [State::Leader]
    );
    // Disabling a peer config is DISABLED, whatever the peer.
    let disabled_peer = HaConfig {
        enabled: false,
        ..with_peer()
    };
    assert_eq!(
        pushed_states(&node.handle(Event::ConfigReceived(disabled_peer), t0)),
        [State::Disabled]
    );
    assert_eq!(node.status().transitions, 4);
}

#[test]
fn periodic_push_and_refetch_schedule() {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut node = Node::new(timers, t0);
    node.handle(Event::Tick, t0);
    node.handle(Event::ConfigReceived(single(true)), t0);
    // Nothing is due before a push interval.
    assert_eq!(node.next_deadline(), Some(t0 + timers.push_interval));
    assert!(
        node.handle(Event::Tick, t0 + Duration::from_millis(999))
            .is_empty()
    );
    let t1 = t0 + timers.push_interval;
    assert_eq!(
        pushed_states(&node.handle(Event::Tick, t1)),
        [State::Leader]
    );
    // At the fetch interval both are due: the push comes first, then the fetch.
    let t15 = t0 + timers.fetch_interval;
    let actions = node.handle(Event::Tick, t15);
    assert!(matches!(
        actions.as_slice(),
        [Action::PushStatus(_), Action::FetchConfig]
    ));
}

#[test]
fn unreachable_engine_is_retried_every_retry_interval() {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut node = Node::new(timers, t0);
    assert_eq!(node.handle(Event::Tick, t0), vec![Action::FetchConfig]);
    assert!(node.handle(Event::EngineUnreachable, t0).is_empty());
    assert!(!node.engine_reachable());
    assert_eq!(node.state(), State::Unknown);
    let t1 = t0 + timers.retry_interval;
    assert_eq!(node.next_deadline(), Some(t1));
    // Push (UNKNOWN) and retry are both due.
    let actions = node.handle(Event::Tick, t1);
    assert!(actions.contains(&Action::FetchConfig));
    assert_eq!(pushed_states(&actions), [State::Unknown]);
    node.handle(Event::ConfigReceived(single(true)), t1);
    assert!(node.engine_reachable());
    assert_eq!(node.state(), State::Leader);
}

#[test]
fn failed_push_while_leader_keeps_state_and_brings_the_refetch_forward() {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut node = Node::new(timers, t0);
    node.handle(Event::ConfigReceived(single(true)), t0);
    assert_eq!(node.next_deadline(), Some(t0 + timers.push_interval));
    let t1 = t0 + timers.push_interval;
    node.handle(Event::Tick, t1);
    node.handle(Event::EngineUnreachable, t1);
    // The engine going away does not take leadership away in single-node mode.
    assert_eq!(node.state(), State::Leader);
    let actions = node.handle(Event::Tick, t1 + timers.retry_interval);
    assert!(actions.contains(&Action::FetchConfig));
}

#[test]
fn shutdown_is_terminal() {
    let t0 = Instant::now();
    let mut node = Node::new(Timers::default(), t0);
    node.handle(Event::ConfigReceived(single(true)), t0);
    let t1 = t0 + Duration::from_secs(3);
    assert_eq!(
        pushed_states(&node.handle(Event::Shutdown, t1)),
        [State::Shutdown]
    );
    assert_eq!(node.status().since, t1);
    assert_eq!(node.next_deadline(), None);
    assert!(
        node.handle(Event::ConfigReceived(single(true)), t1)
            .is_empty()
    );
    assert!(
        node.handle(Event::Tick, t1 + Duration::from_secs(60))
            .is_empty()
    );
    assert!(node.handle(Event::Shutdown, t1).is_empty());
    assert_eq!(node.state(), State::Shutdown);
    assert_eq!(node.status().transitions, 2);
}

// --- peer mode ---

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const MS100: Duration = Duration::from_millis(100);

fn peer_cfg(priority: u32, preempt: bool) -> HaConfig {
    HaConfig {
        enabled: true,
        local_addr: LOCAL.to_string(),
        remote_addr: Some(PEER.to_string()),
        priority,
        vrid: 60,
        advert_interval: MS100,
        preempt,
        ..HaConfig::default()
    }
}

fn from_peer(priority: u8) -> Event {
    Event::Advert(Received {
        src: PEER,
        advert: Advert::new(60, priority, MS100),
    })
}

fn adverts(actions: &[Action]) -> Vec<u8> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::SendAdvert(a) => Some(a.priority),
            _ => None,
        })
        .collect()
}

/// A [`peered`] node (no preemption) that a priority-0 advert from its peer made leader at `t0`.
fn made_leader(priority: u32, t0: Instant) -> Node {
    let mut node = peered(priority, false, t0);
    node.handle(from_peer(0), t0);
    node
}

/// A peered node whose transport is open, at `t0`; returns it BACKUP.
fn peered(priority: u32, preempt: bool, t0: Instant) -> Node {
    let mut node = Node::new(Timers::default(), t0);
    let actions = node.handle(Event::ConfigReceived(peer_cfg(priority, preempt)), t0);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::OpenTransport(p) if p.peer == PEER && p.vrid == 60)),
        "{actions:?}"
    );
    node.handle(Event::TransportReady, t0);
    assert_eq!(node.state(), State::Backup);
    node
}

/// Ticks every `step` from `from` until `until`, collecting actions.
fn run_ticks(
    node: &mut Node,
    from: Instant,
    until: Instant,
    step: Duration,
) -> Vec<(Instant, Action)> {
    let mut out = Vec::new();
    let mut t = from;
    while t <= until {
        for a in node.handle(Event::Tick, t) {
            out.push((t, a));
        }
        t += step;
    }
    out
}

#[test]
fn master_down_interval_is_rfc_5798_with_seesaw_numbers() {
    let p = |prio: u32, ms: u64| {
        Peering::from_config(&HaConfig {
            advert_interval: Duration::from_millis(ms),
            ..peer_cfg(prio, false)
        })
        .expect("valid")
        .expect("peered")
    };
    // Seesaw: 500 ms adverts, priority 255 → ≈1.502 s, priority 1 → ≈1.998 s.
    let hi = p(255, 500);
    assert_eq!(
        hi.master_down(hi.interval),
        Duration::from_nanos(1_501_953_125)
    );
    let lo = p(1, 500);
    assert_eq!(
        lo.master_down(lo.interval),
        Duration::from_nanos(1_998_046_875)
    );
    // 10 ms is the floor, 100 ms the lab's setting.
    assert_eq!(p(255, 10).interval, Duration::from_millis(10));
    assert_eq!(p(255, 5).interval, Duration::from_millis(10));
    assert!(p(1, 100).master_down(MS100) < Duration::from_millis(400));
}

#[test]
fn bad_peer_configs_are_errors_not_panics() {
    let t0 = Instant::now();
    for bad in [
        HaConfig {
            local_addr: "nope".into(),
            ..peer_cfg(1, false)
        },
        HaConfig {
            remote_addr: Some("::1".into()),
            ..peer_cfg(1, false)
        },
        HaConfig {
            remote_addr: Some(LOCAL.to_string()),
            ..peer_cfg(1, false)
        },
        HaConfig {
            vrid: 0,
            ..peer_cfg(1, false)
        },
        HaConfig {
            vrid: 256,
            ..peer_cfg(1, false)
        },
        HaConfig {
            auth: AuthSetting::Unusable("advert key file /k: must be mode 0600".into()),
            ..peer_cfg(1, false)
        },
    ] {
        let mut node = Node::new(Timers::default(), t0);
        let actions = node.handle(Event::ConfigReceived(bad.clone()), t0);
        assert_eq!(node.state(), State::Error, "{bad:?}");
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, Action::OpenTransport(_)))
        );
        // It never becomes leader on its own.
        run_ticks(&mut node, t0, t0 + Duration::from_secs(3), MS100);
        assert_eq!(node.state(), State::Error);
    }
}

#[test]
fn backup_takes_over_after_master_down_and_then_advertises_every_interval() {
    let t0 = Instant::now();
    let mut node = peered(1, false, t0);
    let md = node.peering().expect("peered").master_down(MS100);
    // Adverts from the master keep it backup.
    let mut t = t0;
    for _ in 0..20 {
        t += MS100;
        assert!(node.handle(from_peer(255), t).is_empty());
        assert!(
            node.handle(Event::Tick, t)
                .iter()
                .all(|a| !matches!(a, Action::SendAdvert(_)))
        );
    }
    assert_eq!(node.state(), State::Backup);
    assert_eq!(node.status().adverts_received, 20);
    // Silence: exactly at t + master-down it takes over and advertises at once.
    assert_eq!(node.next_deadline(), Some(t + md));
    let before = node.handle(Event::Tick, t + md - Duration::from_millis(1));
    assert!(adverts(&before).is_empty());
    let actions = node.handle(Event::Tick, t + md);
    assert_eq!(node.state(), State::Leader);
    assert_eq!(adverts(&actions), [1]);
    assert!(matches!(
        actions[0],
        Action::PushStatus(Status {
            state: State::Leader,
            ..
        })
    ));
    // Then one advert per interval.
    let later = run_ticks(
        &mut node,
        t + md + Duration::from_millis(10),
        t + md + Duration::from_millis(1005),
        Duration::from_millis(10),
    );
    let n = later
        .iter()
        .filter(|(_, a)| matches!(a, Action::SendAdvert(_)))
        .count();
    assert_eq!(n, 10);
}

#[test]
fn priority_zero_advert_means_take_over_at_once() {
    let t0 = Instant::now();
    let mut node = peered(1, false, t0);
    node.handle(from_peer(255), t0);
    let t1 = t0 + Duration::from_millis(30);
    let actions = node.handle(from_peer(0), t1);
    assert_eq!(node.state(), State::Leader);
    assert_eq!(node.status().since, t1);
    assert_eq!(adverts(&actions), [1]);
}

#[test]
fn preemption_only_when_enabled_and_only_over_lower_priority() {
    let t0 = Instant::now();
    let mut off = peered(200, false, t0);
    off.handle(from_peer(100), t0);
    assert_eq!(off.state(), State::Backup);

    let mut on = peered(200, true, t0);
    on.handle(from_peer(250), t0);
    assert_eq!(on.state(), State::Backup);
    on.handle(from_peer(200), t0);
    assert_eq!(on.state(), State::Backup);
    let actions = on.handle(from_peer(100), t0);
    assert_eq!(on.state(), State::Leader);
    assert_eq!(adverts(&actions), [200]);
}

#[test]
fn leader_yields_to_higher_priority_and_to_equal_priority_from_a_higher_address() {
    let t0 = Instant::now();
    let mut node = made_leader(100, t0);
    assert_eq!(node.state(), State::Leader);
    // Lower priority: re-advertise at once, stay leader.
    let actions = node.handle(from_peer(50), t0);
    assert_eq!(adverts(&actions), [100]);
    assert_eq!(node.state(), State::Leader);
    // Equal priority from a higher address (192.0.2.2 > .1): step down.
    let actions = node.handle(from_peer(100), t0);
    assert_eq!(node.state(), State::Backup);
    assert!(adverts(&actions).is_empty());

    // Higher priority: step down.
    let mut node = made_leader(100, t0);
    node.handle(from_peer(101), t0);
    assert_eq!(node.state(), State::Backup);

    // Equal priority from a lower address: the local node wins and re-asserts.
    let mut node = leader_with_the_higher_address(t0);
    let actions = node.handle(from_peer(100), t0);
    assert_eq!(node.state(), State::Leader);
    assert_eq!(adverts(&actions), [100]);
}

#[test]
fn shutdown_as_leader_sends_priority_zero() {
    let t0 = Instant::now();
    let mut node = made_leader(100, t0);
    let actions = node.handle(Event::Shutdown, t0);
    // The lease goes first, then the report, then the advert.
    assert_eq!(actions[0], Action::Lease(Duration::ZERO));
    assert!(matches!(
        actions[1],
        Action::PushStatus(Status {
            state: State::Shutdown,
            ..
        })
    ));
    assert_eq!(adverts(&actions), [0]);
    // As backup: no advert.
    let mut node = peered(100, false, t0);
    assert!(adverts(&node.handle(Event::Shutdown, t0)).is_empty());
}

#[test]
fn failover_reports_backup_first_then_hands_over_with_priority_zero() {
    let t0 = Instant::now();
    let mut node = peered(255, true, t0);
    node.handle(from_peer(0), t0);
    assert_eq!(node.state(), State::Leader);
    let t1 = t0 + Duration::from_millis(500);
    run_ticks(&mut node, t0, t1, Duration::from_millis(10));
    let actions = node.handle(Event::PushDelivered { failover: true }, t1);
    assert_eq!(node.state(), State::Backup);
    // The lease is given up and BACKUP goes to the engine first; no advert yet.
    assert!(matches!(
        actions.as_slice(),
        [
            Action::Lease(Duration::ZERO),
            Action::PushStatus(Status {
                state: State::Backup,
                ..
            })
        ]
    ));
    // The engine confirms: now the priority-0 advert.
    let actions = node.handle(
        Event::PushDelivered { failover: false },
        t1 + Duration::from_millis(3),
    );
    assert_eq!(adverts(&actions), [0]);
    // The peer (priority 1) takes over and advertises; with preempt on, this node does not take
    // mastership back after a failover it asked for.
    node.handle(from_peer(1), t1 + Duration::from_millis(5));
    assert_eq!(node.state(), State::Backup);
    // But when the peer later goes silent, it takes over as usual.
    let after = run_ticks(
        &mut node,
        t1 + Duration::from_millis(10),
        t1 + Duration::from_secs(1),
        Duration::from_millis(10),
    );
    assert_eq!(node.state(), State::Leader);
    assert!(
        after
            .iter()
            .any(|(_, a)| matches!(a, Action::SendAdvert(a) if a.priority == 255))
    );
}

#[test]
fn failover_hands_over_after_one_interval_when_the_engine_does_not_confirm() {
    let t0 = Instant::now();
    let mut node = made_leader(255, t0);
    node.handle(Event::PushDelivered { failover: true }, t0);
    assert_eq!(node.next_deadline(), Some(t0 + MS100));
    let actions = node.handle(Event::Tick, t0 + MS100);
    assert_eq!(adverts(&actions), [0]);
    // Exactly one handover advert.
    assert!(adverts(&node.handle(Event::PushDelivered { failover: false }, t0 + MS100)).is_empty());
}

#[test]
fn failover_is_ignored_by_a_backup_and_in_single_node_mode() {
    let t0 = Instant::now();
    let mut node = peered(255, false, t0);
    assert!(
        node.handle(Event::PushDelivered { failover: true }, t0)
            .is_empty()
    );
    assert_eq!(node.state(), State::Backup);
    let mut single_node = Node::new(Timers::default(), t0);
    single_node.handle(Event::ConfigReceived(single(true)), t0);
    assert!(
        single_node
            .handle(Event::PushDelivered { failover: true }, t0)
            .is_empty()
    );
    assert_eq!(single_node.state(), State::Leader);
}

#[test]
fn a_dead_engine_makes_the_leader_step_down_and_keeps_a_backup_from_taking_over() {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut node = made_leader(255, t0);
    assert_eq!(node.state(), State::Leader);
    // Failures a second apart, the node advertising meanwhile.
    let mut t = t0;
    for _ in 1..timers.engine_fail_limit {
        run_ticks(
            &mut node,
            t,
            t + Duration::from_secs(1),
            Duration::from_millis(50),
        );
        t += Duration::from_secs(1);
        node.handle(Event::EngineUnreachable, t);
        assert_eq!(node.state(), State::Leader);
    }
    run_ticks(
        &mut node,
        t,
        t + Duration::from_secs(1),
        Duration::from_millis(50),
    );
    let t1 = t + Duration::from_secs(1);
    let actions = node.handle(Event::EngineUnreachable, t1);
    assert_eq!(node.state(), State::Backup);
    // The handover advert cannot wait for the engine; it goes after one interval.
    let actions2 = node.handle(Event::Tick, t1 + MS100);
    assert_eq!(
        adverts(&actions)
            .into_iter()
            .chain(adverts(&actions2))
            .collect::<Vec<_>>(),
        [0]
    );
    // With the peer silent and the engine still down, it never takes over.
    run_ticks(
        &mut node,
        t1 + MS100,
        t1 + Duration::from_secs(5),
        Duration::from_millis(50),
    );
    assert_eq!(node.state(), State::Backup);
    // The engine comes back: one master-down interval later it is leader again.
    let t2 = t1 + Duration::from_secs(6);
    node.handle(Event::PushDelivered { failover: false }, t2);
    run_ticks(
        &mut node,
        t2,
        t2 + Duration::from_millis(300),
        Duration::from_millis(10),
    );
    assert_eq!(node.state(), State::Backup);
    run_ticks(
        &mut node,
        t2 + Duration::from_millis(300),
        t2 + Duration::from_millis(500),
        Duration::from_millis(10),
    );
    assert_eq!(node.state(), State::Leader);
}

#[test]
fn transport_failure_is_error_and_retried() {
    let t0 = Instant::now();
    let timers = Timers::default();
    let mut node = Node::new(timers, t0);
    node.handle(Event::ConfigReceived(peer_cfg(1, false)), t0);
    node.handle(Event::TransportFailed, t0);
    assert_eq!(node.state(), State::Error);
    let actions = node.handle(Event::Tick, t0 + timers.retry_interval);
    assert!(
        actions
            .iter()
            .any(|a| matches!(a, Action::OpenTransport(_)))
    );
    // Never leader without a transport.
    run_ticks(&mut node, t0, t0 + Duration::from_millis(900), MS100);
    assert_ne!(node.state(), State::Leader);
    node.handle(Event::TransportReady, t0 + timers.retry_interval);
    assert_eq!(node.state(), State::Backup);
}

#[test]
fn reconfiguring_a_leader_hands_over_and_reopens() {
    let t0 = Instant::now();
    let mut node = made_leader(255, t0);
    let changed = HaConfig {
        vrid: 61,
        ..peer_cfg(255, false)
    };
    let actions = node.handle(Event::ConfigReceived(changed), t0);
    assert_eq!(adverts(&actions), [0]);
    let close = actions
        .iter()
        .position(|a| *a == Action::CloseTransport)
        .expect("close");
    let open = actions
        .iter()
        .position(|a| matches!(a, Action::OpenTransport(p) if p.vrid == 61))
        .expect("open");
    assert!(close < open);
    assert_eq!(node.state(), State::Backup);
    // Disabling: priority 0 (if leader), close, DISABLED.
    node.handle(Event::TransportReady, t0);
    node.handle(from_peer(0), t0);
    let actions = node.handle(
        Event::ConfigReceived(HaConfig {
            enabled: false,
            ..peer_cfg(255, false)
        }),
        t0,
    );
    assert_eq!(adverts(&actions), [0]);
    assert!(actions.contains(&Action::CloseTransport));
    assert_eq!(node.state(), State::Disabled);
}

#[test]
fn a_key_change_reopens_the_transport_and_an_unreadable_key_is_error() {
    let t0 = Instant::now();
    let mut node = peered(255, false, t0);
    let key = |b: u8| crate::auth::Key::derive(&[b; 32]);
    let keyed = |send: u8, accept: Option<u8>| HaConfig {
        auth: AuthSetting::Keys(AuthKeys {
            send: key(send),
            accept: accept.map(key),
        }),
        ..peer_cfg(255, false)
    };
    let opened = |actions: &[Action]| {
        actions.iter().find_map(|a| match a {
            Action::OpenTransport(p) => Some(p.auth),
            _ => None,
        })
    };
    let a = node.handle(Event::ConfigReceived(keyed(1, None)), t0);
    assert_eq!(
        opened(&a),
        Some(Some(AuthKeys {
            send: key(1),
            accept: None
        }))
    );
    node.handle(Event::TransportReady, t0);
    // Rotation step 1: a second accepted key is a new peering too.
    let a = node.handle(Event::ConfigReceived(keyed(1, Some(2))), t0);
    assert_eq!(
        opened(&a),
        Some(Some(AuthKeys {
            send: key(1),
            accept: Some(key(2))
        }))
    );
    node.handle(Event::TransportReady, t0);
    // The same config again changes nothing.
    let a = node.handle(Event::ConfigReceived(keyed(1, Some(2))), t0);
    assert_eq!(opened(&a), None);
    // A key file that cannot be read: ERROR, transport closed, retried with the next fetch.
    let bad = HaConfig {
        auth: AuthSetting::Unusable("advert key file /etc/seesaw/ha.key: cannot read".into()),
        ..peer_cfg(255, false)
    };
    let a = node.handle(Event::ConfigReceived(bad), t0);
    assert!(a.contains(&Action::CloseTransport));
    assert_eq!(node.state(), State::Error);
    let a = node.handle(Event::ConfigReceived(keyed(1, None)), t0);
    assert!(opened(&a).is_some());
    assert_eq!(node.state(), State::Backup);
}

#[test]
fn adverts_are_ignored_outside_peer_mode_and_after_shutdown() {
    let t0 = Instant::now();
    let mut node = Node::new(Timers::default(), t0);
    node.handle(Event::ConfigReceived(single(true)), t0);
    assert!(node.handle(from_peer(0), t0).is_empty());
    assert_eq!(node.state(), State::Leader);
    node.handle(Event::Shutdown, t0);
    assert!(node.handle(from_peer(0), t0).is_empty());
}

/// Two nodes wired back to back through their actions, under one clock: exactly one leader at
/// any time across start-up, a partition and its healing.
#[test]
fn two_nodes_converge_and_a_healed_partition_leaves_one_master() {
    let t0 = Instant::now();
    let cfg_a = peer_cfg(255, false);
    let cfg_b = HaConfig {
        local_addr: PEER.to_string(),
        remote_addr: Some(LOCAL.to_string()),
        priority: 1,
        ..peer_cfg(1, false)
    };
    let mut a = Node::new(Timers::default(), t0);
    let mut b = Node::new(Timers::default(), t0);
    a.handle(Event::ConfigReceived(cfg_a), t0);
    b.handle(Event::ConfigReceived(cfg_b), t0);
    a.handle(Event::TransportReady, t0);
    b.handle(Event::TransportReady, t0);
    let step = Duration::from_millis(5);
    let mut partitioned = false;
    let mut both_since: Option<Instant> = None;
    let mut both_total = Duration::ZERO;
    let mut t = t0;
    let end = t0 + Duration::from_secs(6);
    while t < end {
        let elapsed = t - t0;
        partitioned = (Duration::from_secs(2)..Duration::from_secs(4)).contains(&elapsed);
        let from_a = sent_adverts(a.handle(Event::Tick, t));
        let from_b = sent_adverts(b.handle(Event::Tick, t));
        if !partitioned {
            exchange(from_a, (&mut a, LOCAL), (&mut b, PEER), t);
            exchange(from_b, (&mut b, PEER), (&mut a, LOCAL), t);
        }
        let both = a.state() == State::Leader && b.state() == State::Leader;
        match (both, both_since) {
            (true, None) => both_since = Some(t),
            (false, Some(s)) => {
                both_total += t - s;
                both_since = None;
            }
            _ => {}
        }
        if !partitioned
            && elapsed >= Duration::from_millis(1000)
            && elapsed < Duration::from_secs(2)
        {
            assert!(!both, "two masters before the partition at {elapsed:?}");
        }
        if elapsed >= Duration::from_secs(4) + a.peering().expect("a").master_down(MS100) {
            assert!(!both, "two masters after healing at {elapsed:?}");
            assert!(a.state() == State::Leader || b.state() == State::Leader);
        }
        t += step;
    }
    assert!(!partitioned);
    // The higher priority won the cold start and holds mastership after healing.
    assert_eq!(a.state(), State::Leader);
    assert_eq!(b.state(), State::Backup);
    // Both were master only during the partition (2 s minus b's detection time).
    assert!(
        both_total > Duration::from_millis(1500) && both_total <= Duration::from_secs(2),
        "{both_total:?}"
    );
}

/// The adverts `actions` send.
fn sent_adverts(actions: Vec<Action>) -> Vec<Advert> {
    actions
        .into_iter()
        .filter_map(|x| match x {
            Action::SendAdvert(v) => Some(v),
            _ => None,
        })
        .collect()
}

/// Delivers `adverts` from one node to the other, and the other's replies back.
fn exchange(
    adverts: Vec<Advert>,
    (from, from_addr): (&mut Node, Ipv4Addr),
    (to, to_addr): (&mut Node, Ipv4Addr),
    t: Instant,
) {
    for advert in adverts {
        let replies = to.handle(
            Event::Advert(Received {
                src: from_addr,
                advert,
            }),
            t,
        );
        for advert in sent_adverts(replies) {
            from.handle(
                Event::Advert(Received {
                    src: to_addr,
                    advert,
                }),
                t,
            );
        }
    }
}

fn leases(actions: &[Action]) -> Vec<Duration> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Lease(d) => Some(*d),
            _ => None,
        })
        .collect()
}

/// A LEADER holds ncc's lease for three intervals and renews it with every advert; leaving
/// LEADER gives it up (zero) before anything else. A single node never takes a lease.
#[test]
fn the_leader_renews_its_lease_with_every_advert_and_gives_it_up_first() {
    let t0 = Instant::now();
    let mut node = peered(100, false, t0);
    let actions = node.handle(from_peer(0), t0);
    assert_eq!(node.state(), State::Leader);
    assert_eq!(leases(&actions), [MS100 * 3]);
    let ticks = run_ticks(
        &mut node,
        t0,
        t0 + Duration::from_secs(1),
        Duration::from_millis(10),
    );
    let renewals: Vec<Instant> = ticks
        .iter()
        .filter(|(_, a)| matches!(a, Action::Lease(d) if *d == MS100 * 3))
        .map(|(t, _)| *t)
        .collect();
    let sent: Vec<Instant> = ticks
        .iter()
        .filter(|(_, a)| matches!(a, Action::SendAdvert(_)))
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(renewals, sent, "one renewal with every advert");
    assert_eq!(renewals.len(), 10);
    // A higher-priority master: the lease goes before the BACKUP report.
    let actions = node.handle(from_peer(200), t0 + Duration::from_secs(1));
    assert_eq!(node.state(), State::Backup);
    assert_eq!(actions.first(), Some(&Action::Lease(Duration::ZERO)));
    // Given up once; a BACKUP takes none.
    let later = run_ticks(
        &mut node,
        t0 + Duration::from_secs(1),
        t0 + Duration::from_millis(1200),
        Duration::from_millis(10),
    );
    assert!(later.iter().all(|(_, a)| !matches!(a, Action::Lease(_))));

    let mut single_node = Node::new(Timers::default(), t0);
    let mut all = single_node.handle(Event::ConfigReceived(single(true)), t0);
    all.extend(single_node.handle(Event::Shutdown, t0));
    assert!(leases(&all).is_empty(), "{all:?}");
}

/// A LEADER at `t0` whose address is higher than the peer's: an equal-priority tie between two
/// masters would be its.
fn leader_with_the_higher_address(t0: Instant) -> Node {
    let mut node = Node::new(Timers::default(), t0);
    node.handle(
        Event::ConfigReceived(HaConfig {
            local_addr: "192.0.2.3".into(),
            ..peer_cfg(100, false)
        }),
        t0,
    );
    node.handle(Event::TransportReady, t0);
    node.handle(from_peer(0), t0);
    assert_eq!(node.state(), State::Leader);
    node
}

/// A LEADER that was not running for longer than two intervals (SIGSTOP) steps down when it
/// runs again, gives its lease up, hands over, and does not take mastership back from the peer
/// that took over meanwhile — even with the higher address, which would win an equal-priority
/// tie between two masters.
#[test]
fn a_leader_back_from_a_stall_steps_down_and_does_not_take_mastership_back() {
    let t0 = Instant::now();
    let mut node = leader_with_the_higher_address(t0);
    run_ticks(
        &mut node,
        t0,
        t0 + Duration::from_millis(500),
        Duration::from_millis(10),
    );
    // Stopped for 10 s; the first thing it sees is the new master's queued advert.
    let back = t0 + Duration::from_millis(10_500);
    let actions = node.handle(from_peer(100), back);
    assert_eq!(node.state(), State::Backup);
    assert_eq!(actions.first(), Some(&Action::Lease(Duration::ZERO)));
    assert_eq!(
        adverts(&node.handle(Event::PushDelivered { failover: false }, back)),
        [0]
    );
    // The peer keeps advertising: this node stays BACKUP.
    let mut t = back;
    for _ in 0..20 {
        t += MS100;
        node.handle(from_peer(100), t);
        node.handle(Event::Tick, t);
    }
    assert_eq!(node.state(), State::Backup);
    // A short delay (under two intervals) is not a stall.
    let mut node = made_leader(100, t0);
    node.handle(Event::Tick, t0 + MS100 * 2);
    assert_eq!(node.state(), State::Leader);
}

/// A master whose adverts could not go out (its link was down) finds the peer master when the
/// link returns: it hands back, whatever the tiebreak says, instead of taking mastership back.
#[test]
fn a_master_whose_adverts_failed_yields_to_the_peer_that_took_over() {
    let t0 = Instant::now();
    let mut node = leader_with_the_higher_address(t0);
    let mut t = t0;
    for _ in 0..20 {
        t += MS100;
        node.handle(Event::Tick, t);
        node.handle(Event::AdvertNotSent, t);
    }
    t += MS100;
    node.handle(Event::Tick, t);
    let actions = node.handle(from_peer(100), t);
    assert_eq!(node.state(), State::Backup);
    assert_eq!(actions.first(), Some(&Action::Lease(Duration::ZERO)));
    // Without failed sends the tiebreak keeps it.
    let mut node = leader_with_the_higher_address(t0);
    node.handle(Event::Tick, t0 + MS100);
    node.handle(from_peer(100), t0 + MS100);
    assert_eq!(node.state(), State::Leader);
}

/// A master coming back from a dead link advertises the lowest priority for a while, so the
/// peer that took over keeps mastership even with a lower priority of its own.
#[test]
fn a_master_back_from_a_dead_link_advertises_the_lowest_priority() {
    let t0 = Instant::now();
    let mut node = made_leader(200, t0);
    let mut t = t0;
    for _ in 0..5 {
        t += MS100;
        node.handle(Event::Tick, t);
        node.handle(Event::AdvertNotSent, t);
    }
    t += MS100;
    assert_eq!(adverts(&node.handle(Event::Tick, t)), [1]);
    // Long after the link came back: its own priority again.
    let later = run_ticks(
        &mut node,
        t,
        t + Duration::from_secs(1),
        Duration::from_millis(10),
    );
    let (_, last) = later
        .iter()
        .rfind(|(_, a)| matches!(a, Action::SendAdvert(_)))
        .expect("adverts");
    assert!(matches!(last, Action::SendAdvert(a) if a.priority == 200));
}
