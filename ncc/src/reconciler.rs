//! ncc's reconciler: one thread owns everything ncc changes in the kernel — the data plane, the
//! LB interface, the VIPs — and the fence ([`crate::lease::Lease`]) with the engine's last
//! request as it was sent. The gRPC adapter (`server.rs`) converts each call and hands it over as
//! a [`Job`]; the thread applies jobs one at a time, so no lock guards the plane, and no kernel
//! work (`nft`, netlink, the relay's socket, waiting for a link) ever runs on the async runtime.
//! The lease timer is the thread's own receive timeout.
//!
//! The only work done elsewhere is reading counters: the thread hands out a reader
//! ([`crate::dataplane::Dataplane::stats_reader`]) that runs on a blocking thread, so a slow read
//! never delays an apply.

use std::collections::HashMap;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::NccError;
use crate::dataplane::trace::{PlaneTrace, TraceFlow};
use crate::dataplane::{Dataplane, StatsReader};
use crate::kernel::lb::{Lb, LbWant};
use crate::kernel::vips::{Vip, Vips};
use crate::lease::{Change, Lease};
use crate::model::{Service, ServiceKey};

/// The engine's apply request, converted.
#[derive(Debug, Clone)]
pub struct Request {
    /// The VIPs to hold (`None`: the engine does not manage VIPs).
    pub vips: Option<Vec<Vip>>,
    /// The LB interface as wanted (only where ncc manages it).
    pub lb: Option<LbWant>,
    /// The services.
    pub services: Vec<Service>,
    /// The sender's name for this request (0: none; no delta can build on it).
    pub epoch: u64,
}

/// What changed since the request named `base` (the engine's `DesiredDelta`, converted).
#[derive(Debug, Clone)]
pub struct Delta {
    /// The request this builds on: the last one the thread holds, or the delta is refused.
    pub base: u64,
    /// This request's name.
    pub epoch: u64,
    /// Services added or replacing the one with their key.
    pub services: Vec<Service>,
    /// Services deleted.
    pub removed: Vec<ServiceKey>,
    /// The VIPs, whole (`None`: the base request's stand).
    pub vips: Option<Vec<Vip>>,
    /// The LB interface, whole (`None`: the base request's stands).
    pub lb: Option<LbWant>,
}

/// Where the fence stands after a renewal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseState {
    /// The master-only state is withdrawn.
    pub fenced: bool,
    /// How often it was withdrawn.
    pub fences: u64,
}

/// A unit of work for the reconciler thread, with where its answer goes.
pub enum Job {
    /// Make the kernel hold this request (as the lease allows); it becomes the last request.
    Apply(Request, oneshot::Sender<Result<Vec<String>, NccError>>),
    /// Patch the last request with this delta (refused, changing nothing, unless it builds on
    /// that request), then apply it as [`Job::Apply`] does.
    ApplyDelta(Delta, oneshot::Sender<Result<Vec<String>, NccError>>),
    /// A lease renewal for this long from now (zero gives the lease up).
    Renew(Duration, oneshot::Sender<LeaseState>),
    /// What the plane would do with a flow.
    Trace(TraceFlow, oneshot::Sender<PlaneTrace>),
    /// A reader of the plane's counters, to run elsewhere.
    Counters(oneshot::Sender<StatsReader>),
}

/// The adapter's handle on the thread.
#[derive(Clone)]
pub struct Handle {
    jobs: mpsc::Sender<Job>,
    kind: &'static str,
    manages_lb: bool,
}

impl Handle {
    /// The plane's kind.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Whether ncc drives the LB interface here.
    pub fn manages_lb(&self) -> bool {
        self.manages_lb
    }

    /// Hands a job over and waits for its answer without blocking the runtime; an error when
    /// the thread is gone.
    pub async fn call<T>(
        &self,
        job: impl FnOnce(oneshot::Sender<T>) -> Job,
    ) -> Result<T, NccError> {
        let (tx, rx) = oneshot::channel();
        self.jobs
            .send(job(tx))
            .map_err(|_| NccError::Plane("the reconciler thread is gone".into()))?;
        rx.await
            .map_err(|_| NccError::Plane("the reconciler thread dropped the request".into()))
    }
}

/// What the thread owns.
pub struct Reconciler<P> {
    plane: P,
    lb: Option<Lb>,
    vips: Option<Vips>,
    lease: Lease,
    last: Option<Request>,
    /// The epoch of the last request when its whole apply (or a scoped one on it) succeeded
    /// unfenced: the kernel then holds exactly that request, so a delta on it that changes
    /// only services touches only those ([`Dataplane::apply_changed`]).
    in_sync: Option<u64>,
    /// Where each service of `last` sits in its list, kept across deltas that only replace
    /// services (a health flip), so patching costs the delta, not the request; `None` after
    /// anything that moves them.
    index: Option<HashMap<ServiceKey, usize>>,
}

impl<P: Dataplane> Reconciler<P> {
    /// A reconciler for `plane`, with the LB interface and the VIPs where ncc manages them.
    pub fn new(plane: P, vips: Option<Vips>, lb: Option<Lb>) -> Self {
        Self {
            plane,
            lb,
            vips,
            lease: Lease::default(),
            last: None,
            in_sync: None,
            index: None,
        }
    }

    /// Starts the thread; it ends when every handle is dropped.
    pub fn spawn(self) -> std::io::Result<Handle> {
        let (jobs, rx) = mpsc::channel();
        let handle = Handle {
            jobs,
            kind: self.plane.kind(),
            manages_lb: self.lb.is_some(),
        };
        std::thread::Builder::new()
            .name("ncc-reconciler".into())
            .spawn(move || self.run(&rx))?;
        Ok(handle)
    }

    fn run(mut self, jobs: &mpsc::Receiver<Job>) {
        loop {
            let job = match self.lease.deadline() {
                Some(due) => {
                    let wait = due.saturating_duration_since(Instant::now());
                    match jobs.recv_timeout(wait) {
                        Ok(job) => job,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            let change = self.lease.wake(Instant::now(), due);
                            self.follow(change);
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => return,
                    }
                }
                None => match jobs.recv() {
                    Ok(job) => job,
                    Err(_) => return,
                },
            };
            self.handle(job);
        }
    }

    /// Carries out one job; answers that nobody waits for any more are dropped.
    pub fn handle(&mut self, job: Job) {
        match job {
            Job::Apply(request, reply) => {
                self.last = Some(request);
                self.index = None;
                let _ = reply.send(self.apply_as_leased());
            }
            Job::ApplyDelta(delta, reply) => {
                let _ = reply.send(self.apply_delta(delta));
            }
            Job::Renew(ttl, reply) => {
                let change = self.lease.renew(ttl, Instant::now());
                self.follow(change);
                let _ = reply.send(LeaseState {
                    fenced: self.lease.fenced(),
                    fences: self.lease.fences(),
                });
            }
            Job::Trace(flow, reply) => {
                let _ = reply.send(self.plane.trace(&flow));
            }
            Job::Counters(reply) => {
                let _ = reply.send(self.plane.stats_reader());
            }
        }
    }

    /// Patches the last request with `d` and applies it: only the services `d` changes when the
    /// kernel holds the base request unfenced and `d` leaves the VIPs and the LB interface
    /// alone, else the whole request (an empty delta, the engine's periodic re-send, is a
    /// whole re-converge).
    fn apply_delta(&mut self, d: Delta) -> Result<Vec<String>, NccError> {
        let scoped = self.in_sync.is_some_and(|e| e == d.base)
            && !self.lease.fenced()
            && d.vips.is_none()
            && d.lb.is_none()
            && !(d.services.is_empty() && d.removed.is_empty());
        let (changed, removed) = if scoped {
            (d.services.clone(), d.removed.clone())
        } else {
            (Vec::new(), Vec::new())
        };
        self.patch(d)?;
        if !scoped {
            return self.apply_as_leased();
        }
        let last = self.last.as_ref().expect("patched");
        let epoch = last.epoch;
        self.in_sync = None;
        let changes = self.plane.apply_changed(&crate::dataplane::Scope {
            whole: &last.services,
            changed: &changed,
            removed: &removed,
        })?;
        self.in_sync = Some(epoch);
        Ok(changes)
    }

    /// The last request with `d` laid over it, or an error (and no change) when `d` builds on
    /// another request or deletes a service the request does not hold.
    fn patch(&mut self, d: Delta) -> Result<(), NccError> {
        let last = match self.last.as_mut() {
            Some(l) if l.epoch != 0 && l.epoch == d.base => l,
            Some(l) => {
                return Err(NccError::UnknownBase(format!(
                    "the delta builds on request {}, ncc holds request {}",
                    d.base, l.epoch
                )));
            }
            None => {
                return Err(NccError::UnknownBase(format!(
                    "the delta builds on request {}, ncc holds none",
                    d.base
                )));
            }
        };
        let at = self.index.get_or_insert_with(|| {
            last.services
                .iter()
                .enumerate()
                .map(|(i, s)| (s.key, i))
                .collect()
        });
        if let Some(k) = d.removed.iter().find(|k| !at.contains_key(k)) {
            return Err(NccError::UnknownBase(format!(
                "the delta deletes {k}, which request {} does not hold",
                d.base
            )));
        }
        for s in d.services {
            match at.get(&s.key) {
                Some(&i) => last.services[i] = s,
                None => {
                    at.insert(s.key, last.services.len());
                    last.services.push(s);
                }
            }
        }
        if !d.removed.is_empty() {
            let mut gone = vec![false; last.services.len()];
            for k in &d.removed {
                gone[at[k]] = true;
            }
            let mut i = 0;
            last.services.retain(|_| {
                i += 1;
                !gone[i - 1]
            });
            self.index = None;
        }
        if d.vips.is_some() {
            last.vips = d.vips;
        }
        if d.lb.is_some() {
            last.lb = d.lb;
        }
        last.epoch = d.epoch;
        Ok(())
    }

    /// Makes the kernel follow a lease change.
    fn follow(&mut self, change: Change) {
        let what = match change {
            Change::None => return,
            Change::Fence => {
                "fence: the HA lease ran out or was given up; unicast VIPs, their services and \
                 the LB interface withdrawn"
            }
            Change::Unfence => "fence lifted: the HA lease was renewed",
        };
        match self.apply_as_leased() {
            Ok(changes) => {
                if change == Change::Fence {
                    tracing::warn!(changes = changes.len(), "{what}");
                } else {
                    tracing::info!(changes = changes.len(), "{what}");
                }
                for c in &changes {
                    tracing::info!("{c}");
                }
            }
            Err(e) => tracing::error!(error = %e, "{what}, but applying it failed"),
        }
    }

    /// Applies the last request whole, or its fenced form while the lease is out.
    fn apply_as_leased(&mut self) -> Result<Vec<String>, NccError> {
        self.in_sync = None;
        let Some(r) = self.last.clone() else {
            return Ok(Vec::new());
        };
        if self.lease.fenced() {
            let (vips, lb, services) =
                crate::lease::fenced(r.vips.as_deref(), r.lb.as_ref(), &r.services);
            self.apply(vips, lb.as_ref(), &services)
        } else {
            let changes = self.apply(r.vips, r.lb.as_ref(), &r.services)?;
            self.in_sync = Some(r.epoch).filter(|e| *e != 0);
            Ok(changes)
        }
    }

    /// One apply: the LB interface first (up before VIPs are announced on it), then the VIPs
    /// (which leave the LB manager's own addresses alone), then the data plane.
    fn apply(
        &mut self,
        vips: Option<Vec<Vip>>,
        lb_want: Option<&LbWant>,
        services: &[Service],
    ) -> Result<Vec<String>, NccError> {
        let mut changes = Vec::new();
        let mut keep = Vec::new();
        let mut vlan_nets = None;
        if let (Some(l), Some(w)) = (self.lb.as_mut(), lb_want) {
            let plan = l.apply(w, vips.as_deref().unwrap_or_default())?;
            changes.extend(plan.changes);
            keep = plan.keep;
            vlan_nets = Some(plan.vlan_nets);
        }
        if let Some(want) = vips {
            match self.vips.as_mut() {
                Some(m) => {
                    if let Some(n) = vlan_nets {
                        m.set_vlans(n);
                    }
                    changes.extend(m.apply_keeping(&want, &keep)?);
                }
                None if !want.is_empty() => {
                    tracing::warn!("not managing VIPs: ncc may not change the network");
                }
                None => {}
            }
        }
        changes.extend(self.plane.apply_desired(services)?);
        Ok(changes)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::time::Duration;

    use super::{Delta, Job, Reconciler, Request};
    use crate::NccError;
    use crate::dataplane::fake::FakeDataplane;
    use crate::kernel::vips::{Vip, VipKind};
    use crate::model::{ForwardMode, Protocol, Scheduler, Service, ServiceKey};

    fn svc(a: &str) -> Service {
        let ip: IpAddr = a.parse().expect("literal");
        Service {
            anchor: None,
            key: ServiceKey::new(ip, Protocol::Tcp, 80),
            scheduler: Scheduler::Rr,
            mode: ForwardMode::Nat,
            persistence: 0,
            dests: Vec::new(),
            opts: crate::model::ServiceOpts::default(),
            marks: Vec::new(),
        }
    }

    /// Applies a whole request, which must succeed; its changes.
    async fn apply(h: &super::Handle, r: Request) -> Vec<String> {
        h.call(|tx| Job::Apply(r, tx))
            .await
            .expect("the thread runs")
            .expect("applied")
    }

    /// Applies a delta; the thread's answer.
    async fn apply_delta(h: &super::Handle, d: Delta) -> Result<Vec<String>, NccError> {
        h.call(|tx| Job::ApplyDelta(d, tx))
            .await
            .expect("the thread runs")
    }

    /// The services the plane holds, read as the API reads counters.
    async fn held(h: &super::Handle) -> Vec<String> {
        let reader = h.call(Job::Counters).await.expect("the thread runs");
        let mut v: Vec<String> = reader()
            .into_iter()
            .map(|s| s.service.key.vip.to_string())
            .collect();
        v.sort();
        v
    }

    /// The thread applies requests in order, fences on its own when the lease runs out (its
    /// receive timeout is the lease timer: no other task wakes it), and puts the master-only
    /// part back on the next renewal; a lease given up fences at once.
    #[tokio::test]
    async fn the_thread_applies_in_order_and_fences_when_the_lease_runs_out() {
        let h = Reconciler::new(FakeDataplane::default(), None, None)
            .spawn()
            .expect("thread");
        let vips = vec![
            Vip {
                addr: "10.1.0.1".parse().expect("literal"),
                kind: VipKind::Unicast,
            },
            Vip {
                addr: "192.168.255.7".parse().expect("literal"),
                kind: VipKind::Anycast,
            },
        ];
        let request = Request {
            vips: Some(vips),
            lb: None,
            services: vec![svc("10.1.0.1"), svc("192.168.255.7")],
            epoch: 0,
        };
        let changes = apply(&h, request).await;
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(held(&h).await, ["10.1.0.1", "192.168.255.7"]);
        let l = h
            .call(|tx| Job::Renew(Duration::from_millis(300), tx))
            .await
            .expect("renewed");
        assert!(!l.fenced);
        // Nobody renews: the thread fences by itself (bounded wait).
        let mut fenced = false;
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if held(&h).await == ["192.168.255.7"] {
                fenced = true;
                break;
            }
        }
        assert!(fenced, "the lease ran out but the unicast service stayed");
        let l = h
            .call(|tx| Job::Renew(Duration::from_secs(30), tx))
            .await
            .expect("renewed");
        assert_eq!((l.fenced, l.fences), (false, 1));
        assert_eq!(held(&h).await, ["10.1.0.1", "192.168.255.7"]);
        let l = h
            .call(|tx| Job::Renew(Duration::ZERO, tx))
            .await
            .expect("given up");
        assert_eq!((l.fenced, l.fences), (true, 2));
        assert_eq!(held(&h).await, ["192.168.255.7"]);
    }

    fn delta(base: u64, epoch: u64, services: &[&str], removed: &[&str]) -> Delta {
        Delta {
            base,
            epoch,
            services: services.iter().map(|a| svc(a)).collect(),
            removed: removed.iter().map(|a| svc(a).key).collect(),
            vips: None,
            lb: None,
        }
    }

    /// A delta is laid over the request it names and applied; one that names another request,
    /// or deletes a service that request does not hold, is refused and changes nothing (the
    /// engine then sends the whole state); an unnamed request takes no delta.
    #[tokio::test]
    async fn deltas_build_only_on_the_request_held() {
        let h = Reconciler::new(FakeDataplane::default(), None, None)
            .spawn()
            .expect("thread");
        let whole = |epoch: u64, services: &[&str]| Request {
            vips: None,
            lb: None,
            services: services.iter().map(|a| svc(a)).collect(),
            epoch,
        };
        let r = whole(0, &["10.1.0.1"]);
        apply(&h, r).await;
        let d = delta(0, 1, &["10.1.0.2"], &[]);
        let e = apply_delta(&h, d).await;
        assert!(matches!(e, Err(NccError::UnknownBase(_))), "{e:?}");
        assert_eq!(held(&h).await, ["10.1.0.1"]);

        let r = whole(7, &["10.1.0.1", "10.1.0.2"]);
        apply(&h, r).await;
        // Added, changed and removed in one delta.
        let mut d = delta(7, 8, &["10.1.0.3"], &["10.1.0.1"]);
        let mut changed = svc("10.1.0.2");
        changed.persistence = 30;
        d.services.push(changed);
        let changes = apply_delta(&h, d).await.expect("applied");
        assert_eq!(changes.len(), 3, "{changes:?}");
        assert_eq!(held(&h).await, ["10.1.0.2", "10.1.0.3"]);
        // The same base again: the thread holds request 8 now.
        let d = delta(7, 9, &["10.1.0.4"], &[]);
        let e = apply_delta(&h, d).await;
        assert!(matches!(e, Err(NccError::UnknownBase(_))), "{e:?}");
        // Deleting what request 8 does not hold.
        let d = delta(8, 9, &["10.1.0.4"], &["10.1.0.9"]);
        let e = apply_delta(&h, d).await;
        assert!(matches!(e, Err(NccError::UnknownBase(_))), "{e:?}");
        assert_eq!(held(&h).await, ["10.1.0.2", "10.1.0.3"]);
        // And on from 8.
        let d = delta(8, 9, &[], &["10.1.0.3"]);
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(held(&h).await, ["10.1.0.2"]);
        // Deltas in a row, each laid where the one before left the services (the thread
        // keeps their positions between deltas that move none).
        let steps: [(&[&str], &[&str], &[&str]); 5] = [
            (
                &["10.1.0.5", "10.1.0.6"],
                &[],
                &["10.1.0.2", "10.1.0.5", "10.1.0.6"],
            ),
            (&["10.1.0.5"], &["10.1.0.2"], &["10.1.0.5", "10.1.0.6"]),
            (
                &["10.1.0.6", "10.1.0.7"],
                &[],
                &["10.1.0.5", "10.1.0.6", "10.1.0.7"],
            ),
            (&["10.1.0.7"], &["10.1.0.5"], &["10.1.0.6", "10.1.0.7"]),
            (&["10.1.0.6"], &[], &["10.1.0.6", "10.1.0.7"]),
        ];
        for (i, (services, removed, after)) in (9..).zip(steps) {
            let d = delta(i, i + 1, services, removed);
            apply_delta(&h, d).await.expect("applied");
            assert_eq!(held(&h).await, after, "after request {}", i + 1);
        }
    }

    /// A fake plane that counts whole and scoped applies and can be made to fail its next
    /// commit.
    #[derive(Default)]
    struct Counting {
        inner: FakeDataplane,
        /// (whole applies, scoped applies, fail the next commit)
        seen: std::sync::Arc<std::sync::Mutex<(u32, u32, bool)>>,
    }

    impl crate::dataplane::Dataplane for Counting {
        fn kind(&self) -> &'static str {
            "fake"
        }
        fn unsupported(&self, _: &Service) -> Option<String> {
            None
        }
        fn current(&self) -> Vec<Service> {
            self.inner.current()
        }
        fn commit(&mut self, changes: &[crate::dataplane::Change]) -> Result<(), NccError> {
            if std::mem::take(&mut self.seen.lock().expect("lock").2) {
                return Err(NccError::Plane("injected".into()));
            }
            self.inner.commit(changes)
        }
        fn stats(&self) -> Vec<crate::dataplane::ServiceStats> {
            self.inner.stats()
        }
        fn apply_desired(&mut self, desired: &[Service]) -> Result<Vec<String>, NccError> {
            self.seen.lock().expect("lock").0 += 1;
            Ok(crate::dataplane::texts(&crate::dataplane::apply(
                self, desired,
            )?))
        }
        fn apply_changed(
            &mut self,
            scope: &crate::dataplane::Scope<'_>,
        ) -> Result<Vec<String>, NccError> {
            self.seen.lock().expect("lock").1 += 1;
            Ok(crate::dataplane::texts(&crate::dataplane::apply_scoped(
                self, scope,
            )?))
        }
    }

    /// A delta that changes only services, on the request the kernel holds, touches only those
    /// services; everything else is a whole apply: the first request, an empty delta (the
    /// engine's periodic re-send), new VIPs, the apply after a failed one, and while fenced.
    #[tokio::test]
    async fn only_a_services_delta_on_the_request_applied_is_scoped() {
        let plane = Counting::default();
        let seen = std::sync::Arc::clone(&plane.seen);
        let count = || {
            let s = seen.lock().expect("lock");
            (s.0, s.1)
        };
        let h = Reconciler::new(plane, None, None).spawn().expect("thread");
        let r = Request {
            vips: None,
            lb: None,
            services: vec![svc("10.1.0.1"), svc("10.1.0.2")],
            epoch: 1,
        };
        apply(&h, r).await;
        assert_eq!(count(), (1, 0), "the first request is whole");
        let mut d = delta(1, 2, &["10.1.0.3"], &["10.1.0.1"]);
        let changes = apply_delta(&h, d).await.expect("applied");
        assert_eq!(changes.len(), 2, "{changes:?}");
        assert_eq!(count(), (1, 1), "a services delta is scoped");
        assert_eq!(held(&h).await, ["10.1.0.2", "10.1.0.3"]);
        d = delta(2, 3, &[], &[]);
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(count(), (2, 1), "an empty delta re-converges whole");
        d = delta(3, 4, &[], &[]);
        d.vips = Some(Vec::new());
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(count(), (3, 1), "new VIPs: whole");
        // A failed apply: the next delta is whole, and the one after scoped again.
        seen.lock().expect("lock").2 = true;
        d = delta(4, 5, &["10.1.0.4"], &[]);
        let e = apply_delta(&h, d).await;
        assert!(e.is_err(), "{e:?}");
        assert_eq!(count(), (3, 2));
        d = delta(5, 6, &["10.1.0.5"], &[]);
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(count(), (4, 2), "after a failure: whole");
        assert_eq!(
            held(&h).await,
            ["10.1.0.2", "10.1.0.3", "10.1.0.4", "10.1.0.5"]
        );
        d = delta(6, 7, &["10.1.0.6"], &[]);
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(count(), (4, 3), "in sync again: scoped");
        // Fenced (a lease given up): whole.
        h.call(|tx| Job::Renew(Duration::ZERO, tx))
            .await
            .expect("given up");
        let fenced = count();
        d = delta(7, 8, &["10.1.0.7"], &[]);
        apply_delta(&h, d).await.expect("applied");
        assert_eq!(count(), (fenced.0 + 1, fenced.1), "fenced: whole");
    }
}
