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

/// A change that writes nothing (a service updated to what it already holds) commits at once:
/// an empty batch would wait for an answer the kernel never sends.
#[test]
fn a_change_that_writes_nothing_commits_at_once_in_a_private_netns() {
    crate::test_support::in_private_netns("applying to the kernel", || {
        let mut p = NftPlane::new(NftLib::open().expect("libnftables"), None).expect("plane");
        let mut s = service("198.51.100.1", 80, Scheduler::Rr, ForwardMode::Nat);
        s.dests = (0..2).map(|i| backend(false, i, 80)).collect();
        apply(&mut p, std::slice::from_ref(&s)).expect("apply");
        let t = std::time::Instant::now();
        p.commit(&[Change::UpdateService(s)])
            .expect("an unchanged service commits");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert!(!p.batched, "nothing to write goes as a script");
        let reads = p.reads;
        apply(&mut p, &[]).expect("delete");
        assert_eq!(p.reads, reads, "and the plane still trusts its record");
    });
}

/// One flip that touches hundreds of services (a backend shared by 300 vservers fails) is one
/// batch of 600+ messages, answered by one ack rather than one per message (which overflow
/// the socket's receive buffer), and leaves the kernel as the plane recorded.
#[test]
fn a_flip_of_three_hundred_services_is_one_batch_in_a_private_netns() {
    crate::test_support::in_private_netns("applying to the kernel", || {
        let mut p = NftPlane::new(NftLib::open().expect("libnftables"), None).expect("plane");
        let mut want: Vec<Service> = (0..300)
            .map(|i| {
                let mut s = service("198.51.100.1", 1000 + i, Scheduler::Rr, ForwardMode::Nat);
                s.dests = (0..2).map(|j| backend(false, j, 80)).collect();
                s
            })
            .collect();
        apply(&mut p, &want).expect("apply");
        for s in &mut want {
            s.dests.remove(0);
        }
        apply(&mut p, &want).expect("the shared backend leaves every service");
        assert!(p.batched, "as one batch ({} bytes)", p.last_script.0);
        assert!(p.last_script.1 >= 600, "{} messages", p.last_script.1);
        let listed = parse::parse_table(&NftCli::default().list("inet seesaw").expect("list"))
            .expect("parse");
        assert_eq!(listed.dests.len(), 300, "one destination left per service");
        assert_eq!(
            listed.dests,
            p.nat
                .dests
                .iter()
                .map(|(k, v)| (
                    *k,
                    DstRec {
                        counter: listed.dests.get(k).map_or(v.counter, |d| d.counter),
                        ..*v
                    }
                ))
                .collect(),
            "the kernel holds what the plane recorded"
        );
    });
}

/// Turning Seesaw's `one_packet` on for a DSR service is one change: the plane takes the new
/// options, so the next apply of the same state finds nothing to do (it kept the old ones, and
/// found the same update again on every apply).
#[test]
fn an_options_change_is_taken_once_in_a_private_netns() {
    crate::test_support::in_private_netns("applying to the kernel", || {
        let nft = NftLib::open().expect("libnftables");
        let mut p = NftPlane::new(nft, Some("lo".to_owned())).expect("plane");
        let mut s = service("198.51.100.1", 53, Scheduler::Sh, ForwardMode::Dsr);
        s.dests = (0..2).map(|i| backend(false, i, 53)).collect();
        apply(&mut p, std::slice::from_ref(&s)).expect("apply");
        s.opts.kernel.one_packet = true;
        assert!(
            !apply(&mut p, std::slice::from_ref(&s))
                .expect("on")
                .is_empty()
        );
        assert!(
            p.nat
                .services
                .values()
                .chain(p.dsr.services.values())
                .all(|m| m.ops)
        );
        assert_eq!(
            apply(&mut p, &[s]).expect("again"),
            Vec::<Change>::new(),
            "taken once"
        );
    });
}
