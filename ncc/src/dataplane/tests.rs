//! Diff and apply tests: the ordered change list for each kind of difference, and the fake plane
//! converging to the desired state.

use super::fake::FakeDataplane;
use super::*;
use crate::NccError;
use crate::model::{ForwardMode, Protocol, Scheduler};

fn svc(port: u16, dests: &[(u8, u32)]) -> Service {
    let key = ServiceKey::new("10.1.0.1".parse().unwrap(), Protocol::Tcp, port);
    let dests = dests
        .iter()
        .map(|(last, w)| Dest::new(format!("10.2.0.{last}:80").parse().unwrap(), *w))
        .collect();
    Service::new(key, Scheduler::Wrr, ForwardMode::Nat, dests)
}

fn show(changes: &[Change]) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[test]
fn diff_orders_removals_before_additions_and_edits_weights_in_place() {
    let current = [svc(80, &[(1, 1), (2, 1)]), svc(81, &[(1, 1)])];
    let mut changed = svc(80, &[(1, 3), (3, 1)]);
    changed.scheduler = Scheduler::Rr;
    let desired = [changed, svc(82, &[(9, 2)])];
    assert_eq!(
        show(&diff(&current, &desired)),
        [
            "delete destination 10.2.0.2:80 from 10.1.0.1:80/TCP",
            "delete destination 10.2.0.1:80 from 10.1.0.1:81/TCP",
            "delete service 10.1.0.1:81/TCP",
            "update service 10.1.0.1:80/TCP (Rr, Nat, persistence 0s)",
            "set weight of 10.2.0.1:80 in 10.1.0.1:80/TCP to 3",
            "add destination 10.2.0.3:80 to 10.1.0.1:80/TCP (weight 1)",
            "add service 10.1.0.1:82/TCP (Wrr, Nat)",
            "add destination 10.2.0.9:80 to 10.1.0.1:82/TCP (weight 2)",
        ]
    );
}

#[test]
fn apply_converges_and_is_idempotent() {
    let mut plane = FakeDataplane::default();
    let desired = [svc(80, &[(1, 1), (2, 1)])];
    assert_eq!(apply(&mut plane, &desired).unwrap().len(), 3);
    assert_eq!(plane.current(), desired);
    assert!(
        apply(&mut plane, &desired).unwrap().is_empty(),
        "in sync: zero changes"
    );
    assert!(apply(&mut plane, &[]).unwrap().len() == 3);
    assert!(plane.current().is_empty());
}

#[test]
fn unsupported_service_refuses_the_whole_request() {
    let mut plane = proxy::ProxyPlane::new();
    let mut dsr = svc(80, &[(1, 1)]);
    dsr.mode = ForwardMode::Dsr;
    match apply(&mut plane, &[dsr]) {
        Err(NccError::Unsupported(why)) => {
            assert_eq!(
                why,
                ["10.1.0.1:80/TCP: mode Dsr is not possible in a userspace proxy (use NAT)"]
            );
        }
        other => panic!("expected Unsupported, got {other:?}"),
    }
    assert!(plane.current().is_empty());
}

/// What the relay plane keeps as "held" after a commit is the fold of the changes: folding the
/// diff of any two states onto the first gives the second.
#[test]
fn folding_a_diff_gives_the_desired_state() {
    let mut rr = svc(80, &[(1, 1), (2, 1)]);
    rr.scheduler = Scheduler::Rr;
    let states = [
        vec![],
        vec![svc(80, &[(1, 1), (2, 1)])],
        vec![rr, svc(81, &[(3, 2)])],
        vec![svc(80, &[(2, 5), (4, 1)]), svc(82, &[])],
        vec![svc(81, &[(1, 0), (3, 2)])],
    ];
    for a in &states {
        for b in &states {
            assert_eq!(&fold(a, &diff(a, b)), b, "from {a:?}");
        }
    }
}

/// Services round-trip through the proto form ncc sends the relay, proxy options and groups
/// included.
#[test]
fn services_survive_the_trip_to_the_relay() {
    let mut s = svc(80, &[(1, 1), (2, 1)]);
    s.opts.groups = vec![String::new(), "canary".into()];
    s.opts.drain_timeout_ms = 1500;
    s.dests[1].group = 1;
    s.dests[0].backup = true;
    let want = vec![s, svc(81, &[(3, 7)])];
    let back = crate::convert::services_from_pb(crate::convert::services_to_pb(&want)).unwrap();
    assert_eq!(back, want);
}

/// A plane told only what changed ends where one told the whole request does: 200 seeded
/// random deltas (destinations added, removed and re-weighted, services added and deleted),
/// each applied scoped to one fake plane and whole to another; and a scoped apply refuses what
/// the whole one would.
#[test]
fn a_scoped_apply_ends_where_the_whole_apply_does() {
    let mut rnd = crate::test_support::seeded(0x5c0_9ed);
    let (mut scoped, mut whole) = (FakeDataplane::default(), FakeDataplane::default());
    let mut want: Vec<Service> = (0..5).map(|p| svc(80 + p, &[(1, 1), (2, 1)])).collect();
    apply(&mut scoped, &want).unwrap();
    apply(&mut whole, &want).unwrap();
    for step in 0..200 {
        let (mut changed, mut removed) = (Vec::new(), Vec::new());
        let i = rnd(want.len() as u64) as usize;
        match rnd(5) {
            0 => {
                let port = 80 + u16::try_from(rnd(12)).unwrap();
                if want.iter().all(|s| s.key.port != port) {
                    want.push(svc(port, &[(3, 2)]));
                    changed.push(want.len() - 1);
                }
            }
            1 if want.len() > 1 => removed.push(want.remove(i).key),
            2 => {
                let d = u8::try_from(1 + rnd(6)).unwrap();
                let addr = format!("10.2.0.{d}:80").parse().unwrap();
                want[i].dests.retain(|x| x.addr != addr);
                changed.push(i);
            }
            _ => {
                let d = u8::try_from(1 + rnd(6)).unwrap();
                let addr = format!("10.2.0.{d}:80").parse().unwrap();
                want[i].dests.retain(|x| x.addr != addr);
                want[i].dests.push(Dest::new(addr, 1 + rnd(4) as u32));
                want[i].dests.sort();
                changed.push(i);
            }
        }
        let changed: Vec<Service> = changed.iter().map(|&j| want[j].clone()).collect();
        let scope = Scope {
            whole: &want,
            changed: &changed,
            removed: &removed,
        };
        apply_scoped(&mut scoped, &scope).unwrap_or_else(|e| panic!("step {step}: {e}"));
        apply(&mut whole, &want).unwrap();
        assert_eq!(scoped.current(), whole.current(), "step {step}");
    }
    // Refusals are the whole apply's: a service the plane cannot hold.
    let mut proxy = proxy::ProxyPlane::new();
    let mut dsr = svc(90, &[(1, 1)]);
    dsr.mode = ForwardMode::Dsr;
    let whole = [dsr];
    let scope = Scope {
        whole: &whole,
        changed: &whole,
        removed: &[],
    };
    let e = apply_scoped(&mut proxy, &scope).expect_err("refused");
    assert!(matches!(e, NccError::Unsupported(_)), "{e}");
}
