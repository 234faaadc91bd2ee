//! The re-weighting round against a recording runner and a scripted load source: an idle
//! destination takes the slots (steered over a few samples) in transactions of slot elements
//! only, a drained destination wins its share back once its connections close, unread sources
//! and failed transactions change nothing, DSR services count their own flow map, the budget
//! splits big rewrites, and an apply renders over rewritten slots.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use super::*;
use crate::NccError;
use crate::dataplane::apply;
use crate::dataplane::nftables::NftPlane;
use crate::model::{Dest, ForwardMode, Protocol, Service, ServiceOpts};

#[derive(Debug, Clone, Default)]
struct Rec {
    scripts: Arc<Mutex<Vec<String>>>,
    fail: Arc<AtomicBool>,
}

impl NftRunner for Rec {
    fn list(&self, _: &str) -> Result<String, NccError> {
        Ok(String::new())
    }
    fn run(&self, script: &str) -> Result<(), NccError> {
        if self.fail.load(Ordering::Relaxed) {
            return Err(NccError::Plane("refused".into()));
        }
        self.scripts.lock().unwrap().push(script.to_owned());
        Ok(())
    }
}

/// Loads by destination id, the same from every source; `broken` sources fail.
#[derive(Debug, Default)]
struct Fixed {
    loads: HashMap<u32, Load>,
    broken: bool,
    maps: Vec<String>,
}

impl LoadSource for Fixed {
    fn nat(&mut self, out: &mut HashMap<u32, Load>) -> Result<(), NccError> {
        if self.broken {
            return Err(NccError::Plane("no conntrack".into()));
        }
        out.extend(self.loads.iter().map(|(k, v)| (*k, *v)));
        Ok(())
    }
    fn dsr_map(&mut self, name: &str, out: &mut HashMap<u32, Load>) -> Result<bool, NccError> {
        self.maps.push(name.to_owned());
        self.nat(out).map(|()| true)
    }
}

const D0: u32 = 0x5ee0_0000;

fn wlc(port: u16, n: u8) -> Service {
    Service {
        anchor: None,
        key: ServiceKey::new("198.51.100.1".parse().unwrap(), Protocol::Tcp, port),
        scheduler: Scheduler::Wlc,
        mode: ForwardMode::Nat,
        persistence: 0,
        dests: (1..=n)
            .map(|i| Dest::new(format!("10.0.0.{i}:{port}").parse().unwrap(), 1))
            .collect(),
        opts: ServiceOpts::default(),
        marks: Vec::new(),
    }
}

fn active(pairs: &[(u32, u64)]) -> HashMap<u32, Load> {
    pairs
        .iter()
        .map(|(id, a)| {
            (
                *id,
                Load {
                    active: *a,
                    inactive: 0,
                },
            )
        })
        .collect()
}

fn plane(rec: &Rec, services: &[Service], lb: Option<&str>) -> NftPlane<Rec> {
    let mut p = NftPlane::new(rec.clone(), lb.map(str::to_owned)).unwrap();
    apply(&mut p, services).unwrap();
    p
}

/// Rounds with the same loads until one changes nothing (at most 30); how many moved slots.
fn settle(p: &NftPlane<Rec>, rec: &Rec, src: &mut Fixed) -> Vec<usize> {
    let mut moved = Vec::new();
    for _ in 0..30 {
        let m = round(&p.least, rec, src, &mut Quiet::default());
        moved.push(m);
        if m == 0 {
            return moved;
        }
    }
    panic!("still moving after 30 rounds: {moved:?}");
}

fn held(p: &NftPlane<Rec>, id: u32) -> usize {
    let m = p.least.lock().unwrap();
    let s = &m.services.values().next().unwrap().slots;
    s.iter().filter(|x| **x == Some(id)).count()
}

#[test]
fn an_idle_destination_takes_the_slots_in_a_transaction_of_slots_only() {
    let rec = Rec::default();
    let p = plane(&rec, &[wlc(80, 3)], None);
    let mut src = Fixed {
        loads: active(&[(D0, 100), (D0 + 2, 100)]),
        ..Fixed::default()
    };
    let moved = round(&p.least, &rec, &mut src, &mut Quiet::default());
    assert_eq!(
        moved, 12,
        "24 slots: the idle one goes from 8 to 20 in one sample"
    );
    let script = rec.scripts.lock().unwrap().last().unwrap().clone();
    assert_eq!(script.lines().count(), 2, "{script}");
    assert!(script.starts_with("delete element inet seesaw slot { 0x3"));
    let add = script.lines().nth(1).unwrap();
    assert!(add.starts_with("add element inet seesaw slot {"), "{add}");
    assert_eq!(add.matches(": 0x5ee00001").count(), 12, "{add}");
    // The same loads keep steering until the loaded two are at the floor; then nothing moves
    // and no transaction is made.
    let rounds = settle(&p, &rec, &mut src);
    assert!(rounds.len() <= 6, "{rounds:?}");
    assert!(held(&p, D0 + 1) >= 23, "{}", held(&p, D0 + 1));
    let scripts = rec.scripts.lock().unwrap().len();
    assert_eq!(round(&p.least, &rec, &mut src, &mut Quiet::default()), 0);
    assert_eq!(rec.scripts.lock().unwrap().len(), scripts);
    // The sampled loads are kept for the plane's counters.
    let loads = p.least.lock().unwrap().loads();
    assert_eq!(loads[&D0].active, 100);
    assert_eq!(loads[&(D0 + 1)].active, 0);
}

#[test]
fn a_drained_destination_wins_its_share_back() {
    let rec = Rec::default();
    let p = plane(&rec, &[wlc(80, 2)], None);
    let mut busy = Fixed {
        loads: active(&[(D0, 50)]),
        ..Fixed::default()
    };
    settle(&p, &rec, &mut busy);
    assert!(held(&p, D0) <= 1, "{}", held(&p, D0));
    // Its connections closed; the other now carries the load.
    let mut turned = Fixed {
        loads: active(&[(D0 + 1, 50)]),
        ..Fixed::default()
    };
    for _ in 0..8 {
        round(&p.least, &rec, &mut turned, &mut Quiet::default());
    }
    assert!(held(&p, D0) >= 15, "{}", held(&p, D0));
    // Equal loads keep the split that produced them (it is the one wlc wants).
    let mut even = Fixed {
        loads: active(&[(D0, 50), (D0 + 1, 50)]),
        ..Fixed::default()
    };
    let before = held(&p, D0);
    assert_eq!(round(&p.least, &rec, &mut even, &mut Quiet::default()), 0);
    assert_eq!(held(&p, D0), before);
}

#[test]
fn unread_sources_and_failed_rewrites_change_nothing() {
    let rec = Rec::default();
    let p = plane(&rec, &[wlc(80, 2)], None);
    let mut broken = Fixed {
        loads: active(&[(D0, 50)]),
        broken: true,
        ..Fixed::default()
    };
    assert_eq!(round(&p.least, &rec, &mut broken, &mut Quiet::default()), 0);
    assert_eq!(rec.scripts.lock().unwrap().len(), 1, "only the apply");
    rec.fail.store(true, Ordering::Relaxed);
    let mut src = Fixed {
        loads: active(&[(D0, 50)]),
        ..Fixed::default()
    };
    assert_eq!(round(&p.least, &rec, &mut src, &mut Quiet::default()), 0);
    let m = p.least.lock().unwrap();
    assert!(!m.valid(), "a failed rewrite gives the copy up");
    assert_eq!(m.plan(), Plan::default(), "no sampling until the next read");
}

#[test]
fn dsr_services_count_their_own_flow_map() {
    let rec = Rec::default();
    let mut dsr = wlc(80, 2);
    dsr.mode = ForwardMode::Dsr;
    let mut lc6 = wlc(80, 1);
    lc6.mode = ForwardMode::Dsr;
    lc6.scheduler = Scheduler::Lc;
    lc6.key.vip = "2001:db8::1".parse().unwrap();
    lc6.dests = vec![Dest::new("[2001:db8::10]:80".parse().unwrap(), 1)];
    let rr = Service {
        scheduler: Scheduler::Rr,
        ..wlc(81, 2)
    };
    let p = plane(&rec, &[dsr, lc6, rr], Some("eth1"));
    let plan = p.least.lock().unwrap().plan();
    assert_eq!(
        plan,
        Plan {
            nat: false,
            dsr_maps: vec!["k1t300f".into(), "k3t300c".into()],
        }
    );
    let mut src = Fixed {
        loads: active(&[(D0, 10)]),
        ..Fixed::default()
    };
    assert!(round(&p.least, &rec, &mut src, &mut Quiet::default()) > 0);
    assert_eq!(src.maps, ["k1t300f", "k3t300c"]);
    let script = rec.scripts.lock().unwrap().last().unwrap().clone();
    assert!(script.contains("element netdev seesaw slot"), "{script}");
}

#[test]
fn the_budget_splits_a_big_rewrite_and_services_take_turns() {
    let rec = Rec::default();
    let p = plane(&rec, &[wlc(80, 2), wlc(81, 2), wlc(82, 2)], None);
    // Every service's first destination is busy: one sample moves 4 of its 16 slots.
    let loads = active(&[(D0, 9), (D0 + 2, 9), (D0 + 4, 9)]);
    let sample = Sample {
        loads,
        nat_ok: true,
        dsr_ok: HashSet::new(),
    };
    let mut m = p.least.lock().unwrap();
    let first = m.rewrite(&sample, 5);
    assert_eq!(first.count, 4, "one service fits in 5");
    assert_eq!(first.slots[0].0.port, 80);
    m.applied(first);
    let second = m.rewrite(&sample, 5);
    assert_eq!(second.count, 4);
    let port = second.slots[0].0.port;
    assert_eq!(port, 81, "the next service's turn");
    m.applied(second);
    let third = m.rewrite(&sample, 100);
    // Port 82's turn comes first; the others, still steering, follow within the budget.
    assert_eq!(third.slots[0].0.port, 82, "port 82 was left to move");
}

#[test]
fn an_apply_renders_over_the_rewritten_slots() {
    let rec = Rec::default();
    let p = plane(&rec, &[wlc(80, 2)], None);
    let mut src = Fixed {
        loads: active(&[(D0, 50)]),
        ..Fixed::default()
    };
    settle(&p, &rec, &mut src);
    // The plane's decoded tables still hold the apply's slots; patching lays the rewrite over.
    let (mut nat, mut dsr) = (p.nat.clone(), p.dsr.clone());
    let key = wlc(80, 2).key;
    let meta = p.least.lock().unwrap().services[&key].meta;
    nat.services.insert(key, meta);
    for i in 0..meta.n {
        nat.slots.insert(meta.off + i, D0);
    }
    p.least.lock().unwrap().patch(&mut nat, &mut dsr, &[key]);
    let held: Vec<u32> = (0..meta.n).map(|i| nat.slots[&(meta.off + i)]).collect();
    let copy: Vec<u32> = p.least.lock().unwrap().services[&key]
        .slots
        .iter()
        .map(|x| x.unwrap())
        .collect();
    assert_eq!(held, copy);
    assert!(held.iter().filter(|id| **id == D0).count() <= 1, "{held:?}");
    // A generation change makes the next refresh read the kernel.
    assert_ne!(p.least.lock().unwrap().generation(), p.read_gen);
}

/// A rewrite too large for one netlink datagram (every slot of 80 wlc services, ~280 KB as a
/// batch) is committed as a script rather than refused by the socket.
#[test]
fn a_rewrite_too_large_for_a_batch_commits_as_a_script_in_a_private_netns() {
    crate::test_support::in_private_netns("applying to the kernel", || {
        let nft = super::super::NftLib::open().expect("libnftables");
        let mut p = NftPlane::new(nft.clone(), None).expect("plane");
        let services: Vec<Service> = (0..80).map(|i| wlc(1000 + i, 10)).collect();
        apply(&mut p, &services).expect("apply");
        let m = p.least.lock().unwrap();
        let mut rw = Rewrite::default();
        for s in m.services.values() {
            for (i, slot) in (0u32..).zip(&s.slots) {
                let at = s.meta.off.wrapping_add(i);
                rw.set(s.table, at, true, slot.expect("laid"));
                rw.count += 1;
            }
        }
        drop(m);
        assert!(rw.count > 5000, "{} slots", rw.count);
        rw.commit(&nft).expect("committed");
    });
}
