//! The data-plane contract battery: one sequence of checks every plane must pass — add, read,
//! update and delete services and destinations, idempotence (a second apply changes nothing),
//! adopt-at-start (a new plane over the same kernel holds the same state and changes nothing),
//! refusal of what the plane cannot hold, and inconsistent commits failing without damage.
//!
//! Instantiated for the stateful fake kernel always, for the IPVS plane over its stateful fake
//! kernel always, for nftables in a private network namespace when root with `nft` installed,
//! for the proxy plane as ncc drives it (`RelayPlane` over a relay serving a `ProxyPlane`, the
//! relay's process standing in for the kernel: a new `RelayPlane` is a restarted ncc; its
//! instance lives with the relay plane, `relay.rs`) in a private network namespace when root,
//! and for the IPVS plane over the real kernel (netlink) in
//! a private network namespace where `/proc/net/ip_vs` exists; elsewhere those instances print
//! why they skip.

use std::sync::{Arc, Mutex};

use super::fake::FakeDataplane;
use super::{Change, Dataplane, ServiceStats, apply};
use crate::NccError;
use crate::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey};
use crate::test_support::in_private_netns;

/// A kernel that outlives the planes over it: each [`FakeKernel::plane`] is a new "process"
/// that must adopt what the previous one left.
#[derive(Debug, Clone, Default)]
pub(super) struct FakeKernel(Arc<Mutex<FakeDataplane>>);

impl FakeKernel {
    /// A plane over this kernel.
    pub(super) fn plane(&self) -> FakeKernelPlane {
        FakeKernelPlane(self.0.clone())
    }
}

/// A plane over a [`FakeKernel`].
#[derive(Debug)]
pub(super) struct FakeKernelPlane(Arc<Mutex<FakeDataplane>>);

impl Dataplane for FakeKernelPlane {
    fn kind(&self) -> &'static str {
        "fake"
    }
    fn unsupported(&self, s: &Service) -> Option<String> {
        (s.mode == ForwardMode::Tun).then(|| "the fake kernel has no tunnels".to_owned())
    }
    fn current(&self) -> Vec<Service> {
        self.0.lock().expect("fake kernel lock").current()
    }
    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        let mut k = self.0.lock().expect("fake kernel lock");
        // A kernel transaction: all or nothing.
        let before = k.current();
        let r = k.commit(changes);
        if r.is_err() {
            let undo = super::diff(&k.current(), &before);
            k.commit(&undo)?;
        }
        r
    }
    fn stats(&self) -> Vec<ServiceStats> {
        self.0.lock().expect("fake kernel lock").stats()
    }
}

fn svc(
    vip: &str,
    port: u16,
    sched: Scheduler,
    mode: ForwardMode,
    dests: &[(&str, u32)],
) -> Service {
    let mut dests: Vec<Dest> = dests
        .iter()
        .map(|(a, w)| Dest::new(a.parse().expect("literal"), *w))
        .collect();
    dests.sort();
    let key = ServiceKey::new(vip.parse().expect("literal"), Protocol::Tcp, port);
    Service::new(key, sched, mode, dests)
}

fn sorted(mut v: Vec<Service>) -> Vec<Service> {
    v.sort_by_key(|s| s.key);
    v
}

/// The plane holds exactly `desired` (`what` says after which step).
fn holds(p: &dyn Dataplane, desired: &[Service], what: &str) {
    assert_eq!(sorted(p.current()), sorted(desired.to_vec()), "{what}");
}

/// The plane holds exactly `desired`, and applying it again changes nothing (`again` names
/// that check).
fn settled(p: &mut dyn Dataplane, desired: &[Service], what: &str, again: &str) {
    holds(p, desired, what);
    assert_eq!(apply(p, desired).expect("again"), [], "{again}");
}

/// Runs the whole battery. `make` returns a new plane over the same kernel each call; the
/// kernel starts empty.
/// A new plane over the same kernel (a restarted ncc): it must hold `desired` as adopted and
/// re-applying it must change nothing.
fn restarted(
    make: &mut dyn FnMut() -> Box<dyn Dataplane>,
    desired: &[Service],
    what: &str,
) -> Box<dyn Dataplane> {
    let mut p = make();
    p.refresh().expect("refresh");
    settled(
        &mut *p,
        desired,
        &format!("{what}: adopted"),
        &format!("{what}: 0 changes after restart"),
    );
    p
}

pub(crate) fn battery(make: &mut dyn FnMut() -> Box<dyn Dataplane>) {
    let mut p = make();
    let kind = p.kind();
    p.refresh().expect("refresh");
    assert!(p.current().is_empty(), "{kind}: the kernel starts empty");

    // Add.
    let mut desired = vec![
        svc(
            "198.51.100.1",
            80,
            Scheduler::Wrr,
            ForwardMode::Nat,
            &[("10.0.0.1:8080", 3), ("10.0.0.2:8080", 1)],
        ),
        svc(
            "2001:db8::1",
            443,
            Scheduler::Rr,
            ForwardMode::Nat,
            &[("[2001:db8:1::1]:443", 1)],
        ),
    ];
    let dsr = svc(
        "198.51.100.2",
        80,
        Scheduler::Mh,
        ForwardMode::Dsr,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1), ("10.0.0.3:80", 1)],
    );
    if p.unsupported(&dsr).is_none() {
        desired.push(dsr);
    }
    let changes = apply(&mut *p, &desired).expect("add");
    let want_changes = desired.iter().map(|s| 1 + s.dests.len()).sum::<usize>();
    assert_eq!(changes.len(), want_changes, "{kind}: {changes:?}");
    // Read back, and idempotence.
    settled(
        &mut *p,
        &desired,
        &format!("{kind}: get after add"),
        &format!("{kind}: idempotent"),
    );

    // Update: a weight (edit in place), a new destination, a removed one, new settings.
    desired[0].dests = vec![
        Dest::new("10.0.0.1:8080".parse().expect("literal"), 2),
        Dest::new("10.0.0.3:8080".parse().expect("literal"), 1),
    ];
    desired[1].scheduler = Scheduler::Sh;
    desired[1].persistence = 300;
    if p.unsupported(&desired[1]).is_some() {
        // Planes without persistence (the proxy: sh and mh are its affinity) change the
        // scheduler only.
        desired[1].persistence = 0;
    }
    let persistence = desired[1].persistence;
    let changes = apply(&mut *p, &desired).expect("update");
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "delete destination 10.0.0.2:8080 from 198.51.100.1:80/TCP",
            "set weight of 10.0.0.1:8080 in 198.51.100.1:80/TCP to 2",
            "add destination 10.0.0.3:8080 to 198.51.100.1:80/TCP (weight 1)",
            &format!("update service [2001:db8::1]:443/TCP (Sh, Nat, persistence {persistence}s)"),
        ],
        "{kind}"
    );
    settled(
        &mut *p,
        &desired,
        &format!("{kind}: get after update"),
        &format!("{kind}: idempotent"),
    );

    // Adopt at start: a new plane over the same kernel holds it all and changes nothing.
    drop(p);
    let mut p = restarted(make, &desired, &format!("{kind}: restart"));
    let stats = p.stats();
    assert_eq!(stats.len(), desired.len(), "{kind}: stats per service");

    // Errors: what the plane cannot hold is refused as a whole, and nothing changes.
    let mut refused = desired.clone();
    let candidates = [
        (Scheduler::Rr, ForwardMode::Tun),
        (Scheduler::P2c, ForwardMode::Nat),
    ];
    let cannot = candidates
        .iter()
        .map(|(sch, mode)| svc("198.51.100.3", 80, *sch, *mode, &[("10.0.0.9:80", 1)]))
        .find(|s| p.unsupported(s).is_some())
        .unwrap_or_else(|| panic!("{kind}: refuses neither tunnels nor p2c"));
    refused.push(cannot);
    match apply(&mut *p, &refused) {
        Err(NccError::Unsupported(why)) => assert_eq!(why.len(), 1, "{kind}: {why:?}"),
        other => panic!("{kind}: expected Unsupported, got {other:?}"),
    }
    // An inconsistent commit (deleting what is not there) fails and changes nothing.
    let ghost = ServiceKey {
        vip: "198.51.100.99".parse().expect("literal"),
        proto: Protocol::Udp,
        port: 53,
        fwmark: 0,
    };
    assert!(
        p.commit(&[Change::DeleteService(ghost)]).is_err(),
        "{kind}: deleting a missing service must fail"
    );
    p.refresh().expect("refresh");
    holds(&*p, &desired, &format!("{kind}: unchanged after errors"));

    // Delete everything.
    let changes = apply(&mut *p, &[]).expect("delete all");
    assert_eq!(
        changes.len(),
        desired.iter().map(|s| 1 + s.dests.len()).sum::<usize>(),
        "{kind}"
    );
    assert!(p.current().is_empty(), "{kind}: empty after delete");
    drop(p);
    let mut p = make();
    p.refresh().expect("refresh");
    assert!(
        p.current().is_empty(),
        "{kind}: still empty for a new plane"
    );
    drop(p);
    fwmark_battery(make);
}

fn tuple(vip: &str, proto: Protocol, port: u16) -> ServiceKey {
    ServiceKey::new(vip.parse().expect("literal"), proto, port)
}

/// A firewall-mark service: `marks` are the VIP:port tuples it takes.
fn fwm(
    mark: u32,
    ipv6: bool,
    sched: Scheduler,
    mode: ForwardMode,
    dests: &[(&str, u32)],
    marks: &[ServiceKey],
) -> Service {
    let mut s = svc("0.0.0.0", 0, sched, mode, dests);
    s.key = ServiceKey::fwmark(ipv6, mark);
    s.marks = marks.to_vec();
    s.marks.sort();
    s
}

/// The firewall-mark part of the battery: a vserver-style service marking two ports of one VIP
/// (NAT; DSR too where the plane has it), a probe-style single-destination service reached only
/// by marks set elsewhere, edits of the marked tuples and destinations, adopt-at-start, refusal
/// of conflicting marks, and deletion. Planes that cannot mark (ipvs) run the probe part only.
fn fwmark_battery(make: &mut dyn FnMut() -> Box<dyn Dataplane>) {
    let mut p = make();
    let kind = p.kind();
    p.refresh().expect("refresh");
    let web = [
        tuple("198.51.100.5", Protocol::Tcp, 80),
        tuple("198.51.100.5", Protocol::Tcp, 443),
    ];
    let mut desired = Vec::new();
    let nat = fwm(
        300,
        false,
        Scheduler::Rr,
        ForwardMode::Nat,
        &[("10.0.0.1:0", 1), ("10.0.0.2:0", 1)],
        &web,
    );
    let marking = p.unsupported(&nat).is_none();
    if marking {
        desired.push(nat);
        let dsr = fwm(
            301,
            false,
            Scheduler::Wrr,
            ForwardMode::Dsr,
            &[("10.0.0.3:0", 2), ("10.0.0.4:0", 1)],
            &[tuple("198.51.100.6", Protocol::Udp, 53)],
        );
        if p.unsupported(&dsr).is_none() {
            desired.push(dsr);
        }
        let v6 = fwm(
            302,
            true,
            Scheduler::Sh,
            ForwardMode::Nat,
            &[("[2001:db8:1::1]:0", 1)],
            &[tuple("2001:db8::5", Protocol::Tcp, 80)],
        );
        desired.push(v6);
    }
    let probe = fwm(
        65_536,
        false,
        Scheduler::Sh,
        ForwardMode::Dsr,
        &[("10.0.0.1:0", 1)],
        &[],
    );
    if !marking && p.unsupported(&probe).is_some() {
        // A plane without firewall marks (the proxy) refuses them all, changing nothing.
        match apply(&mut *p, std::slice::from_ref(&probe)) {
            Err(NccError::Unsupported(why)) => assert_eq!(why.len(), 1, "{kind}: {why:?}"),
            other => panic!("{kind}: expected Unsupported, got {other:?}"),
        }
        assert!(
            p.current().is_empty(),
            "{kind}: unchanged after the refusal"
        );
        return;
    }
    assert_eq!(p.unsupported(&probe), None, "{kind}: a probe service");
    desired.push(probe);
    let changes = apply(&mut *p, &desired).expect("add fwmark services");
    assert_eq!(
        changes.len(),
        desired.iter().map(|s| 1 + s.dests.len()).sum::<usize>(),
        "{kind}: {changes:?}"
    );
    settled(
        &mut *p,
        &desired,
        &format!("{kind}: fwmark get"),
        &format!("{kind}: fwmark idempotent"),
    );

    // Edits: a marked tuple replaced, a destination re-weighted and one added.
    if marking {
        desired[0].marks = vec![
            tuple("198.51.100.5", Protocol::Tcp, 80),
            tuple("198.51.100.5", Protocol::Udp, 8080),
        ];
        desired[0].dests = vec![
            Dest::new("10.0.0.1:0".parse().expect("literal"), 3),
            Dest::new("10.0.0.2:0".parse().expect("literal"), 1),
            Dest::new("10.0.0.9:0".parse().expect("literal"), 1),
        ];
        desired[0].scheduler = Scheduler::Wrr;
        let shown: Vec<String> = apply(&mut *p, &desired)
            .expect("edit")
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            shown,
            [
                "update service fwmark 300/IPv4 (Wrr, Nat, persistence 0s)",
                "set weight of 10.0.0.1:0 in fwmark 300/IPv4 to 3",
                "add destination 10.0.0.9:0 to fwmark 300/IPv4 (weight 1)",
            ],
            "{kind}"
        );
        holds(&*p, &desired, &format!("{kind}: after edit"));
    }

    // Adopt at start.
    drop(p);
    let mut p = restarted(make, &desired, &format!("{kind}: fwmark restart"));

    // Conflicts are refused as a whole and change nothing.
    if marking {
        let mut twice = desired.clone();
        twice.push(fwm(
            303,
            false,
            Scheduler::Rr,
            ForwardMode::Nat,
            &[("10.0.0.7:0", 1)],
            &[tuple("198.51.100.5", Protocol::Tcp, 80)],
        ));
        match apply(&mut *p, &twice) {
            Err(NccError::Invalid(why)) => {
                assert!(
                    why[0].contains("already served by fwmark 300/IPv4"),
                    "{kind}: {why:?}"
                );
            }
            other => panic!("{kind}: expected Invalid, got {other:?}"),
        }
        let mut both = desired.clone();
        both.push(svc(
            "198.51.100.5",
            80,
            Scheduler::Rr,
            ForwardMode::Nat,
            &[("10.0.0.7:80", 1)],
        ));
        assert!(
            matches!(apply(&mut *p, &both), Err(NccError::Invalid(_))),
            "{kind}: a tuple both marked and a service of its own"
        );
    }
    let mut port = desired.clone();
    port.push(fwm(
        304,
        false,
        Scheduler::Rr,
        ForwardMode::Dsr,
        &[("10.0.0.7:80", 1)],
        &[],
    ));
    match apply(&mut *p, &port) {
        Err(NccError::Invalid(why)) => assert!(why[0].contains("port 0"), "{kind}: {why:?}"),
        other => panic!("{kind}: expected Invalid, got {other:?}"),
    }
    p.refresh().expect("refresh");
    holds(&*p, &desired, &format!("{kind}: unchanged"));

    // Delete.
    apply(&mut *p, &[]).expect("delete all");
    assert!(p.current().is_empty(), "{kind}: empty after fwmark delete");
    drop(p);
    let mut p = make();
    p.refresh().expect("refresh");
    assert!(p.current().is_empty(), "{kind}: still empty");
}

#[test]
fn contract_fake_kernel() {
    let k = FakeKernel::default();
    battery(&mut || Box::new(k.plane()));
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
fn contract_nftables_in_a_private_netns() {
    if std::process::Command::new("nft")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!(
            "skipping: the nftables contract battery needs the nft binary (apt-get install nftables)"
        );
        return;
    }
    in_private_netns("the nftables contract battery", || {
        battery(&mut || {
            Box::new(
                super::nftables::NftPlane::new(
                    super::nftables::NftCli::default(),
                    Some("lo".to_owned()),
                )
                .expect("nftables plane"),
            )
        });
    });
}

#[test]
fn contract_ipvs_over_the_fake_ipvs_kernel() {
    let k = super::ipvs::FakeIpvs::default();
    battery(&mut || Box::new(super::ipvs::IpvsPlane::new(k.clone()).expect("ipvs plane")));
}

#[test]
#[allow(
    clippy::print_stderr,
    reason = "the skip notice is for the person running the tests"
)]
fn contract_ipvs_in_a_private_netns() {
    if !super::ipvs::available() {
        eprintln!(
            "skipping: the IPVS contract battery needs IPVS (/proc/net/ip_vs does not exist)"
        );
        return;
    }
    in_private_netns("the IPVS contract battery", || {
        battery(&mut || {
            Box::new(
                super::ipvs::IpvsPlane::new(
                    super::ipvs::sys::Netlink::open().expect("ipvs netlink"),
                )
                .expect("ipvs plane"),
            )
        });
    });
}
