//! The lease (renewals, run-outs, the grace for ncc's own stalls) and the fenced transform.

use std::time::Duration;

use tokio::time::Instant;

use super::*;

const TTL: Duration = Duration::from_millis(90);

/// A lease renewed for [`TTL`] at `t`.
fn renewed_at(t: Instant) -> Lease {
    let mut l = Lease::default();
    l.renew(TTL, t);
    l
}

/// A lease renewed for [`TTL`] now, and now.
fn renewed_now() -> (Lease, Instant) {
    let t = Instant::now();
    (renewed_at(t), t)
}

#[test]
fn an_unarmed_lease_never_fences() {
    let mut l = Lease::default();
    let t = Instant::now();
    assert_eq!(l.deadline(), None);
    assert_eq!(l.wake(t + Duration::from_secs(3600), t), Change::None);
    assert!(!l.fenced());
}

#[test]
fn a_lease_that_is_not_renewed_fences_at_its_end_and_a_renewal_unfences() {
    let mut l = Lease::default();
    let t = Instant::now();
    assert_eq!(l.renew(TTL, t), Change::None);
    assert_eq!(l.deadline(), Some(t + TTL));
    // Renewed every 30 ms: never fenced.
    for i in 1..10 {
        let now = t + Duration::from_millis(30 * i);
        assert_eq!(l.wake(now, now), Change::None, "not due yet");
        assert_eq!(l.renew(TTL, now), Change::None);
    }
    let last = t + Duration::from_millis(270);
    let end = last + TTL;
    assert_eq!(l.deadline(), Some(end));
    assert_eq!(
        l.wake(
            end - Duration::from_millis(1),
            end - Duration::from_millis(1)
        ),
        Change::None
    );
    assert_eq!(l.wake(end, end), Change::Fence);
    assert!(l.fenced());
    assert_eq!(l.deadline(), None, "nothing more to wait for");
    assert_eq!(l.wake(end + TTL, end + TTL), Change::None, "fenced once");
    assert_eq!(l.renew(TTL, end + TTL), Change::Unfence);
    assert!(!l.fenced());
}

#[test]
fn a_zero_renewal_fences_at_once() {
    let (mut l, t) = renewed_now();
    assert_eq!(l.renew(Duration::ZERO, t), Change::Fence);
    assert_eq!(l.renew(Duration::ZERO, t), Change::None, "already fenced");
    assert_eq!(l.renew(TTL, t), Change::Unfence);
}

/// ncc itself was stopped: its timer fires seconds late, while the renewal that arrived in the
/// meantime waits in the socket. One more period for it, then the lease is judged again.
#[test]
fn a_late_wake_grants_one_more_period_for_the_queued_renewal() {
    let (mut l, t) = renewed_now();
    let due = t + TTL;
    let woke = due + Duration::from_secs(10);
    assert_eq!(l.wake(woke, due), Change::None, "graced");
    assert!(!l.fenced());
    assert_eq!(l.deadline(), Some(woke + TTL));
    // The queued renewal arrives: all is well.
    assert_eq!(l.renew(TTL, woke + Duration::from_millis(1)), Change::None);
    // Without a renewal the grace is spent once: the next late wake fences.
    let mut l = renewed_at(t);
    assert_eq!(l.wake(woke, due), Change::None);
    let due2 = woke + TTL;
    assert_eq!(l.wake(due2 + Duration::from_secs(5), due2), Change::Fence);
}

#[test]
fn a_slightly_late_wake_is_not_a_stall() {
    let (mut l, t) = renewed_now();
    let due = t + TTL;
    assert_eq!(l.wake(due + TTL / 3, due), Change::Fence);
}

mod transform {
    use std::net::IpAddr;

    use crate::kernel::vips::{Vip, VipKind};
    use crate::model::{ForwardMode, Protocol, Scheduler, Service, ServiceKey};

    use super::super::fenced;

    fn vip(a: &str, kind: VipKind) -> Vip {
        Vip {
            addr: a.parse().expect("literal"),
            kind,
        }
    }

    fn svc(a: &str) -> Service {
        let ip: IpAddr = a.parse().expect("literal");
        let key = ServiceKey::new(ip, Protocol::Tcp, 80);
        Service::new(key, Scheduler::Rr, ForwardMode::Nat, Vec::new())
    }

    #[test]
    fn only_the_master_only_part_is_withdrawn() {
        let vips = [
            vip("10.1.0.1", VipKind::Unicast),
            vip("10.3.0.1", VipKind::Dedicated),
            vip("192.168.255.7", VipKind::Anycast),
        ];
        let services = [svc("10.1.0.1"), svc("10.3.0.1"), svc("192.168.255.7")];
        let (v, _, s) = fenced(Some(&vips), None, &services);
        assert_eq!(v, Some(vec![vip("192.168.255.7", VipKind::Anycast)]));
        let left: Vec<String> = s.iter().map(|s| s.key.vip.to_string()).collect();
        assert_eq!(left, ["192.168.255.7"]);
    }

    #[test]
    fn a_request_without_its_vips_withdraws_every_service() {
        let (v, _, s) = fenced(None, None, &[svc("10.1.0.1")]);
        assert_eq!(v, None);
        assert!(s.is_empty());
    }
}
