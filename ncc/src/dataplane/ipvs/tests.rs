//! The IPVS plane over the fake kernel: the operations a diff becomes (edits in place for
//! weights and settings, never delete + add), adoption, and refusals.

use std::sync::{Arc, Mutex};

use super::*;
use crate::dataplane::apply;

/// Records every operation on the way to a fake kernel.
#[derive(Debug, Clone, Default)]
struct Recording {
    kernel: FakeIpvs,
    ops: Arc<Mutex<Vec<Op>>>,
}

impl IpvsKernel for Recording {
    fn dump(&mut self) -> Result<Held, NccError> {
        self.kernel.dump()
    }
    fn exec(&mut self, op: &Op) -> Result<(), NccError> {
        self.ops.lock().unwrap().push(op.clone());
        self.kernel.exec(op)
    }
}

fn svc(sched: Scheduler, mode: ForwardMode, dests: &[(&str, u32)]) -> Service {
    let key = ServiceKey::new("198.51.100.1".parse().unwrap(), Protocol::Tcp, 80);
    let dests = dests
        .iter()
        .map(|(a, w)| Dest::new(a.parse().unwrap(), *w))
        .collect();
    Service::new(key, sched, mode, dests)
}

#[test]
fn weight_and_scheduler_changes_are_edits_in_place() {
    let rec = Recording::default();
    let mut p = IpvsPlane::new(rec.clone()).unwrap();
    let a = svc(
        Scheduler::Wlc,
        ForwardMode::Dsr,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    apply(&mut p, std::slice::from_ref(&a)).unwrap();
    let ops = std::mem::take(&mut *rec.ops.lock().unwrap());
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(matches!(&ops[0], Op::PutService { edit: false, svc } if svc.sched == "wlc"));
    assert!(
        ops[1..]
            .iter()
            .all(|o| matches!(o, Op::PutDest { edit: false, dest, .. } if dest.fwd == Fwd::Route))
    );

    let mut b = svc(
        Scheduler::Mh,
        ForwardMode::Dsr,
        &[("10.0.0.1:80", 5), ("10.0.0.2:80", 1)],
    );
    b.persistence = 60;
    let changes = apply(&mut p, std::slice::from_ref(&b)).unwrap();
    assert_eq!(changes.len(), 2, "{changes:?}");
    let ops = std::mem::take(&mut *rec.ops.lock().unwrap());
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert!(matches!(&ops[0],
        Op::PutService { edit: true, svc } if svc.sched == "mh"
            && svc.flags == F_PERSISTENT | F_SCHED_FALLBACK | F_SCHED_PORT
            && svc.timeout == 60));
    assert!(matches!(&ops[1], Op::PutDest { edit: true, dest, .. } if dest.weight == 5));
    assert!(
        !ops.iter()
            .any(|o| matches!(o, Op::DelDest(..) | Op::DelService(_)))
    );

    // A new plane over the same kernel adopts it: 0 changes, no operations.
    let mut q = IpvsPlane::new(rec.clone()).unwrap();
    assert_eq!(apply(&mut q, std::slice::from_ref(&b)).unwrap(), []);
    assert!(rec.ops.lock().unwrap().is_empty());

    // Changing the mode rewrites each destination's forwarding method in place.
    let c = Service {
        mode: ForwardMode::Tun,
        ..b.clone()
    };
    apply(&mut q, std::slice::from_ref(&c)).unwrap();
    let ops = std::mem::take(&mut *rec.ops.lock().unwrap());
    assert_eq!(
        ops.iter()
            .filter(
                |o| matches!(o, Op::PutDest { edit: true, dest, .. } if dest.fwd == Fwd::Tunnel)
            )
            .count(),
        2,
        "{ops:?}"
    );
}

#[test]
fn inconsistent_changes_send_nothing() {
    let rec = Recording::default();
    let mut p = IpvsPlane::new(rec.clone()).unwrap();
    let a = svc(Scheduler::Rr, ForwardMode::Nat, &[("10.0.0.1:80", 1)]);
    apply(&mut p, std::slice::from_ref(&a)).unwrap();
    rec.ops.lock().unwrap().clear();
    let r = p.commit(&[
        Change::UpdateDest(a.key, Dest::new("10.0.0.1:80".parse().unwrap(), 3)),
        Change::DeleteDest(a.key, Dest::new("10.9.9.9:80".parse().unwrap(), 1)),
    ]);
    assert!(matches!(r, Err(NccError::Inconsistent(_))), "{r:?}");
    assert!(rec.ops.lock().unwrap().is_empty(), "checked before sending");
}

#[test]
fn refusals_name_the_reason() {
    let p = IpvsPlane::new(FakeIpvs::default()).unwrap();
    let mut s = svc(Scheduler::Random, ForwardMode::Nat, &[("10.0.0.1:80", 1)]);
    assert!(p.unsupported(&s).unwrap().contains("IPVS module"));
    s.scheduler = Scheduler::Wlc;
    assert_eq!(p.unsupported(&s), None, "lc/wlc are IPVS's own");
    s.mode = ForwardMode::Dsr;
    s.dests = vec![Dest::new("10.0.0.1:8080".parse().unwrap(), 1)];
    assert!(p.unsupported(&s).unwrap().contains("port"));
}

/// Seesaw's `one_packet` becomes `IP_VS_SVC_F_ONEPACKET`, its thresholds go on every
/// destination, sh/mh get the fallback and port flags; a threshold change re-puts the
/// destinations in place; a new plane reads it all back (0 changes).
#[test]
fn one_packet_thresholds_and_sh_flags_reach_the_kernel_and_read_back() {
    let rec = Recording::default();
    let mut p = IpvsPlane::new(rec.clone()).unwrap();
    let mut a = svc(
        Scheduler::Sh,
        ForwardMode::Dsr,
        &[("10.0.0.1:80", 1), ("10.0.0.2:80", 1)],
    );
    a.key.proto = Protocol::Udp;
    a.opts.kernel = KernelOpts {
        one_packet: true,
        lthreshold: 10,
        uthreshold: 100,
    };
    apply(&mut p, std::slice::from_ref(&a)).unwrap();
    let ops = std::mem::take(&mut *rec.ops.lock().unwrap());
    assert!(matches!(&ops[0], Op::PutService { edit: false, svc }
        if svc.flags == F_ONEPACKET | F_SCHED_FALLBACK | F_SCHED_PORT));
    assert!(ops[1..].iter().all(|o| matches!(o,
        Op::PutDest { edit: false, dest, .. } if dest.l_thresh == 10 && dest.u_thresh == 100)));

    let mut again = IpvsPlane::new(rec.clone()).unwrap();
    assert_eq!(again.current(), vec![a.clone()], "read back whole");
    assert_eq!(apply(&mut again, std::slice::from_ref(&a)).unwrap(), []);

    a.opts.kernel.uthreshold = 50;
    a.scheduler = Scheduler::Wlc;
    apply(&mut again, std::slice::from_ref(&a)).unwrap();
    let ops = std::mem::take(&mut *rec.ops.lock().unwrap());
    assert_eq!(ops.len(), 3, "{ops:?}");
    assert!(matches!(&ops[0], Op::PutService { edit: true, svc } if svc.flags == F_ONEPACKET));
    assert!(ops[1..].iter().all(|o| matches!(o,
        Op::PutDest { edit: true, dest, .. } if dest.u_thresh == 50)));
}
