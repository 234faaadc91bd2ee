//! The batch against the script, in the kernel: the same seeded changes applied by a plane that
//! sends batches (`NftLib`, as ncc runs) and by one that sends only scripts (the `nft` binary),
//! each in a network namespace of its own, leave tables that list the same after every step —
//! every rule's expressions, every element, key, value and comment.

use super::super::*;
use crate::dataplane::apply;
use crate::model::{Protocol, ServiceOpts};

fn service(vip: &str, port: u16, sched: Scheduler, mode: ForwardMode) -> Service {
    Service {
        anchor: None,
        key: ServiceKey::new(vip.parse().unwrap(), Protocol::Tcp, port),
        scheduler: sched,
        mode,
        persistence: 0,
        dests: Vec::new(),
        opts: ServiceOpts::default(),
        marks: Vec::new(),
    }
}

/// A backend of `vip`'s family.
fn backend(v6: bool, i: u64, port: u16) -> Dest {
    let addr = if v6 {
        format!("[2001:db8::{:x}]:{port}", 10 + i)
    } else {
        format!("10.0.0.{}:{port}", 10 + i)
    };
    Dest::new(addr.parse().unwrap(), 1)
}

/// The listing with what differs between two equal tables taken out: object handles (given
/// out per table in creation order) and the order elements are listed in.
fn canonical(json: &str) -> serde_json::Value {
    fn walk(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("handle");
                for x in m.values_mut() {
                    walk(x);
                }
                if let Some(serde_json::Value::Array(elems)) = m.get_mut("elem") {
                    elems.sort_by_key(ToString::to_string);
                }
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(walk),
            _ => {}
        }
    }
    let mut v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    walk(&mut v);
    v
}

/// Runs the seeded changes on a plane over `runner`: the listings of both tables after each
/// step, and how many steps went to the kernel as a batch.
fn changes<R: NftRunner>(runner: R) -> (Vec<(serde_json::Value, serde_json::Value)>, usize) {
    let mut p = NftPlane::new(runner, Some("lo".to_owned())).expect("plane");
    let mut rnd = crate::test_support::seeded(0x5eed_ba7c_0000_0001);
    let mut want = Vec::new();
    let scheds = [
        Scheduler::Rr,
        Scheduler::Wrr,
        Scheduler::Sh,
        Scheduler::Dh,
        Scheduler::Random,
        Scheduler::Lc,
        Scheduler::Wlc,
    ];
    let mut port = 1000;
    for sched in scheds {
        for mode in [ForwardMode::Nat, ForwardMode::Dsr] {
            for (vip, v6) in [("198.51.100.1", false), ("2001:db8:5ee::1", true)] {
                for persistence in [0, 60] {
                    port += 1;
                    let mut s = service(vip, port, sched, mode);
                    s.persistence = persistence;
                    s.dests = (0..3).map(|i| backend(v6, i, port)).collect();
                    if p.unsupported(&s).is_none() {
                        want.push(s);
                    }
                }
            }
        }
    }
    // A NAT firewall-mark service (its chain sets the packet mark first).
    let mut fwm = service("0.0.0.0", 0, Scheduler::Wrr, ForwardMode::Nat);
    fwm.key.fwmark = 7;
    fwm.dests = (0..3).map(|i| backend(false, i, 0)).collect();
    want.push(fwm);
    apply(&mut p, &want).expect("start");
    let list = |t: Table| canonical(&NftCli::default().list(t.spec()).expect("list"));
    let mut out = vec![(list(Table::Nat), list(Table::Dsr))];
    let mut batched = 0;
    for step in 0..60 {
        let i = rnd(want.len() as u64) as usize;
        let s = &mut want[i];
        let v6 = s.key.vip.is_ipv6();
        match rnd(4) {
            // A backend fails its check, or comes back.
            0 | 1 if s.dests.len() > 1 => {
                let j = rnd(s.dests.len() as u64) as usize;
                s.dests.remove(j);
            }
            0 | 1 => s.dests.push(backend(v6, 3 + rnd(5), s.key.port)),
            2 => {
                let j = rnd(s.dests.len() as u64) as usize;
                s.dests[j].weight = 1 + rnd(4) as u32;
            }
            _ => s.dests.push(backend(v6, 3 + rnd(5), s.key.port)),
        }
        s.dests.sort();
        s.dests.dedup_by_key(|d| d.addr);
        apply(&mut p, &want).unwrap_or_else(|e| panic!("step {step}: {e}"));
        batched += usize::from(p.batched);
        out.push((list(Table::Nat), list(Table::Dsr)));
    }
    (out, batched)
}

#[test]
fn a_batch_leaves_the_kernel_as_the_script_does_in_a_private_netns() {
    let got = Arc::new(Mutex::new(Vec::new()));
    for lib in [true, false] {
        let got = Arc::clone(&got);
        crate::test_support::in_private_netns("applying to the kernel", move || {
            let r = if lib {
                changes(NftLib::open().expect("libnftables"))
            } else {
                changes(NftCli::default())
            };
            got.lock().unwrap().push(r);
        });
    }
    let got = got.lock().unwrap();
    let [(batches, batched), (scripts, scripted)] = &got[..] else {
        return; // not root: skipped
    };
    assert_eq!(*scripted, 0, "the binary has no netlink channel");
    assert!(
        *batched >= 50,
        "only {batched} of 60 changes went as a batch"
    );
    for (step, (b, s)) in batches.iter().zip(scripts).enumerate() {
        assert!(b.0.get("nftables").is_some(), "step {step}: no listing");
        assert_eq!(b.0, s.0, "step {step}: the NAT table");
        assert_eq!(b.1, s.1, "step {step}: the DSR table");
    }
}
