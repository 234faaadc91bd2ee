//! The data-plane contract battery: one sequence of checks every plane must pass — add, read,
//! update and delete services and destinations, idempotence (a second apply changes nothing),
//! adopt-at-start (a new plane over the same kernel holds the same state and changes nothing),
//! refusal of what the plane cannot hold, and inconsistent commits failing without damage.
//!
//! Instantiated for the stateful fake kernel always, for the IPVS plane over its stateful fake
//! kernel always, for nftables in a private network namespace when root with `nft` installed,
//! and for the IPVS plane over the real kernel (netlink) in a private network namespace where
//! `/proc/net/ip_vs` exists; elsewhere those instances print why they skip.

use std::sync::{Arc, Mutex};

use super::fake::FakeDataplane;
use super::{Change, Dataplane, ServiceStats, apply};
use crate::NccError;
use crate::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey, ServiceOpts};

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
    Service {
        key: ServiceKey {
            vip: vip.parse().expect("literal"),
            proto: Protocol::Tcp,
            port,
        },
        scheduler: sched,
        mode,
        persistence: 0,
        dests,
        opts: ServiceOpts::default(),
    }
}

fn sorted(mut v: Vec<Service>) -> Vec<Service> {
    v.sort_by_key(|s| s.key);
    v
}

/// Runs the whole battery. `make` returns a new plane over the same kernel each call; the
/// kernel starts empty.
pub(super) fn battery(make: &mut dyn FnMut() -> Box<dyn Dataplane>) {
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
    assert_eq!(
        sorted(p.current()),
        sorted(desired.clone()),
        "{kind}: get after add"
    );

    // Idempotence.
    assert_eq!(
        apply(&mut *p, &desired).expect("again"),
        [],
        "{kind}: idempotent"
    );

    // Update: a weight (edit in place), a new destination, a removed one, new settings.
    desired[0].dests = vec![
        Dest::new("10.0.0.1:8080".parse().expect("literal"), 2),
        Dest::new("10.0.0.3:8080".parse().expect("literal"), 1),
    ];
    desired[1].scheduler = Scheduler::Sh;
    desired[1].persistence = 300;
    let changes = apply(&mut *p, &desired).expect("update");
    let shown: Vec<String> = changes.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "delete destination 10.0.0.2:8080 from 198.51.100.1:80/TCP",
            "set weight of 10.0.0.1:8080 in 198.51.100.1:80/TCP to 2",
            "add destination 10.0.0.3:8080 to 198.51.100.1:80/TCP (weight 1)",
            "update service [2001:db8::1]:443/TCP (Sh, Nat, persistence 300s)",
        ],
        "{kind}"
    );
    assert_eq!(
        sorted(p.current()),
        sorted(desired.clone()),
        "{kind}: get after update"
    );
    assert_eq!(
        apply(&mut *p, &desired).expect("again"),
        [],
        "{kind}: idempotent"
    );

    // Adopt at start: a new plane over the same kernel holds it all and changes nothing.
    drop(p);
    let mut p = make();
    p.refresh().expect("refresh");
    assert_eq!(
        sorted(p.current()),
        sorted(desired.clone()),
        "{kind}: adopted"
    );
    assert_eq!(
        apply(&mut *p, &desired).expect("adopt"),
        [],
        "{kind}: 0 changes after restart"
    );
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
    };
    assert!(
        p.commit(&[Change::DeleteService(ghost)]).is_err(),
        "{kind}: deleting a missing service must fail"
    );
    p.refresh().expect("refresh");
    assert_eq!(
        sorted(p.current()),
        sorted(desired.clone()),
        "{kind}: unchanged after errors"
    );

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
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: the nftables contract battery needs root (private network namespace)");
        return;
    }
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
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        battery(&mut || {
            Box::new(
                super::nftables::NftPlane::new(
                    super::nftables::NftCli::default(),
                    Some("lo".to_owned()),
                )
                .expect("nftables plane"),
            )
        });
    })
    .join()
    .expect("battery thread");
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
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipping: the IPVS contract battery needs root (private network namespace)");
        return;
    }
    std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        battery(&mut || {
            Box::new(
                super::ipvs::IpvsPlane::new(
                    super::ipvs::sys::Netlink::open().expect("ipvs netlink"),
                )
                .expect("ipvs plane"),
            )
        });
    })
    .join()
    .expect("battery thread");
}
