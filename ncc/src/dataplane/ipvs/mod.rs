//! The IPVS data plane: services and destinations in the kernel's IP Virtual Server, driven
//! over its generic-netlink family ([`codec`] encodes and decodes, [`sys`] is the socket).
//! The plane reads the kernel before every diff, so what a previous ncc left is adopted, never
//! flushed. Weight and threshold changes are `SET_DEST` edits in place, scheduler and
//! persistence changes `SET_SERVICE`, so established connections keep their destination.
//!
//! IPVS has no transactions: a commit is checked against what the kernel holds first (an
//! inconsistent change fails before anything is sent), then sent in the diff's order
//! (destinations leave before their service, services exist before their destinations).
//!
//! Model mapping: NAT → `MASQ`, DSR → `DROUTE`, tunnel → `TUNNEL` (stored per destination;
//! a service without destinations reads back as the mode ncc last gave it, else NAT);
//! persistence → `IP_VS_SVC_F_PERSISTENT` with the timeout and a full netmask; `one_packet` →
//! `IP_VS_SVC_F_ONEPACKET`; sh and mh get Seesaw's fallback and port flags (`SCHED1|SCHED2`);
//! `lthreshold`/`uthreshold` go on every destination of the service.

pub mod codec;
pub mod firewall;
pub mod sys;

use std::collections::BTreeMap;
use std::net::SocketAddr;

use self::codec::{
    F_ONEPACKET, F_PERSISTENT, F_SCHED_FALLBACK, F_SCHED_PORT, Fwd, IPPROTO_TCP, IPPROTO_UDP,
    IpvsDest, IpvsService, SvcId,
};
use super::{Change, Dataplane, ServiceStats};
use crate::NccError;
use crate::model::{
    Dest, DestStats, ForwardMode, KernelOpts, Protocol, Scheduler, Service, ServiceKey, ServiceOpts,
};

/// One IPVS operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// `NEW_SERVICE` (`edit`: `SET_SERVICE`).
    PutService {
        /// Edit in place.
        edit: bool,
        /// The full entry.
        svc: IpvsService,
    },
    /// `DEL_SERVICE`.
    DelService(SvcId),
    /// `NEW_DEST` (`edit`: `SET_DEST`).
    PutDest {
        /// Edit in place.
        edit: bool,
        /// The service.
        svc: SvcId,
        /// The full entry.
        dest: IpvsDest,
    },
    /// `DEL_DEST`.
    DelDest(SvcId, IpvsDest),
}

/// The kernel side of the plane: the netlink socket in production ([`sys::Netlink`]), a
/// stateful fake in tests.
pub trait IpvsKernel: Send + 'static {
    /// Every service with its destinations.
    fn dump(&mut self) -> Result<Held, NccError>;
    /// Performs one operation.
    fn exec(&mut self, op: &Op) -> Result<(), NccError>;
}

/// Whether this kernel has IPVS (`/proc/net/ip_vs` exists).
pub fn available() -> bool {
    std::path::Path::new("/proc/net/ip_vs").exists()
}

/// The IPVS scheduler name of a scheduler, if IPVS has it.
pub fn sched_name(s: Scheduler) -> Option<&'static str> {
    match s {
        Scheduler::Random | Scheduler::P2c => None,
        _ => Some(s.name()),
    }
}

fn fwd_of(m: ForwardMode) -> Fwd {
    match m {
        ForwardMode::Nat => Fwd::Masq,
        ForwardMode::Dsr => Fwd::Route,
        ForwardMode::Tun => Fwd::Tunnel,
    }
}

fn mode_of(f: Fwd) -> ForwardMode {
    match f {
        Fwd::Masq => ForwardMode::Nat,
        Fwd::Route => ForwardMode::Dsr,
        Fwd::Tunnel => ForwardMode::Tun,
    }
}

/// The IPVS name of a service key.
pub fn svc_id(k: &ServiceKey) -> SvcId {
    if k.is_fwmark() {
        return SvcId::Fwmark {
            af: if k.vip.is_ipv4() {
                codec::AF_INET
            } else {
                codec::AF_INET6
            },
            mark: k.fwmark,
        };
    }
    SvcId::Addr {
        protocol: match k.proto {
            Protocol::Tcp => IPPROTO_TCP,
            Protocol::Udp => IPPROTO_UDP,
        },
        addr: k.vip,
        port: k.port,
    }
}

/// The IPVS entry of a service (without destinations).
pub fn ipvs_service(s: &Service) -> Result<IpvsService, NccError> {
    let sched = sched_name(s.scheduler).ok_or_else(|| {
        NccError::Unsupported(vec![format!("{}: scheduler has no IPVS module", s.key)])
    })?;
    Ok(IpvsService {
        id: svc_id(&s.key),
        sched: sched.to_owned(),
        flags: service_flags(s),
        timeout: s.persistence,
        netmask: if s.key.vip.is_ipv4() { u32::MAX } else { 128 },
        stats: codec::Stats::default(),
    })
}

/// The `IP_VS_SVC_F_*` flags of a service, as Seesaw sets them.
pub fn service_flags(s: &Service) -> u32 {
    let mut f = 0;
    if s.persistence > 0 {
        f |= F_PERSISTENT;
    }
    if s.opts.kernel.one_packet {
        f |= F_ONEPACKET;
    }
    if matches!(s.scheduler, Scheduler::Sh | Scheduler::Mh) {
        f |= F_SCHED_FALLBACK | F_SCHED_PORT;
    }
    f
}

/// The IPVS entry of destination `d` of service `s` (its mode and thresholds are the service's).
fn ipvs_dest(d: &Dest, s: &Service) -> IpvsDest {
    IpvsDest {
        addr: d.addr.ip(),
        port: d.addr.port(),
        fwd: fwd_of(s.mode),
        weight: d.weight,
        u_thresh: s.opts.kernel.uthreshold,
        l_thresh: s.opts.kernel.lthreshold,
        active_conns: 0,
        inact_conns: 0,
        stats: codec::Stats::default(),
    }
}

/// Runs one `nft -f` script ([`firewall::script`]) as one transaction.
pub type FirewallRunner = Box<dyn FnMut(&str) -> Result<(), NccError> + Send>;

/// What ncc gave a service that IPVS does not store per service: the mode and thresholds (IPVS
/// keeps them per destination, so a service without destinations reads back as these) and the
/// tuples marked into a firewall-mark service (they live in the firewall table).
#[derive(Debug, Clone)]
struct Given {
    mode: ForwardMode,
    kernel: KernelOpts,
    marks: Vec<ServiceKey>,
}

impl Default for Given {
    fn default() -> Self {
        Self {
            mode: ForwardMode::Nat,
            kernel: KernelOpts::default(),
            marks: Vec::new(),
        }
    }
}

/// The IPVS plane over a kernel.
pub struct IpvsPlane<K> {
    /// Behind a lock so `stats(&self)` can read fresh counters.
    kernel: std::sync::Mutex<K>,
    held: Held,
    given: BTreeMap<ServiceKey, Given>,
    /// The per-VIP filter, marks and NAT source rules ([`firewall`]); `None`: not managed.
    firewall: Option<FirewallRunner>,
    /// The firewall script last committed.
    firewall_text: Option<String>,
}

impl<K> std::fmt::Debug for IpvsPlane<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IpvsPlane")
            .field("services", &self.held.len())
            .field("firewall", &self.firewall.is_some())
            .finish_non_exhaustive()
    }
}

impl<K: IpvsKernel> IpvsPlane<K> {
    /// A plane over `kernel`; reads it immediately (what it holds is adopted).
    pub fn new(kernel: K) -> Result<Self, NccError> {
        let mut p = Self {
            kernel: std::sync::Mutex::new(kernel),
            held: Vec::new(),
            given: BTreeMap::new(),
            firewall: None,
            firewall_text: None,
        };
        let held = p.kernel()?.dump()?;
        p.held = held;
        Ok(p)
    }

    /// Manages the per-VIP filter, firewall marks (`use_fwm`) and NAT source rules through
    /// `run` (production: `nft -f -`), as [`firewall`] describes.
    #[must_use]
    pub fn with_firewall(mut self, run: FirewallRunner) -> Self {
        self.firewall = Some(run);
        self
    }

    /// Adopts the marks of a firewall table an earlier ncc wrote (`listing`: `nft list table
    /// inet seesaw_ipvs`; empty when there is none): IPVS holds the firewall-mark services but
    /// not which VIP . protocol . port tuples feed them, so without this a new ncc would see
    /// every `use_fwm` service as changed. Marks of no firewall-mark service IPVS holds are
    /// ignored (the next apply rewrites the table anyway).
    #[must_use]
    pub fn adopt_marks(mut self, listing: &str) -> Self {
        let mut marks: BTreeMap<ServiceKey, Vec<ServiceKey>> = BTreeMap::new();
        for (tuple, mark) in firewall::marks_in_listing(listing) {
            let key = ServiceKey::fwmark(tuple.vip.is_ipv6(), mark);
            if self.held.iter().any(|(s, _)| s.id == svc_id(&key)) {
                marks.entry(key).or_default().push(tuple);
            }
        }
        for (key, mut tuples) in marks {
            tuples.sort();
            tuples.dedup();
            let cur = self.current().into_iter().find(|s| s.key == key);
            let given = self.given.entry(key).or_default();
            if let Some(cur) = cur {
                given.mode = cur.mode;
                given.kernel = cur.opts.kernel;
            }
            given.marks = tuples;
        }
        self
    }

    /// Rewrites the firewall table if the services' rules changed.
    fn sync_firewall(&mut self) -> Result<(), NccError> {
        if self.firewall.is_none() {
            return Ok(());
        }
        let text = firewall::script(&self.current());
        if self.firewall_text.as_deref() == Some(text.as_str()) {
            return Ok(());
        }
        if let Some(run) = self.firewall.as_mut() {
            run(&text)?;
        }
        self.firewall_text = Some(text);
        Ok(())
    }

    fn kernel(&self) -> Result<std::sync::MutexGuard<'_, K>, NccError> {
        self.kernel
            .lock()
            .map_err(|_| NccError::Plane("ipvs: the kernel handle panicked".into()))
    }

    fn to_model(&self, s: &IpvsService, dests: &[IpvsDest]) -> Option<Service> {
        let key = match s.id {
            SvcId::Addr {
                protocol,
                addr,
                port,
            } => {
                let proto = match protocol {
                    IPPROTO_TCP => Protocol::Tcp,
                    IPPROTO_UDP => Protocol::Udp,
                    _ => return None,
                };
                ServiceKey::new(addr, proto, port)
            }
            SvcId::Fwmark { af, mark } if mark != 0 => {
                ServiceKey::fwmark(af == codec::AF_INET6, mark)
            }
            SvcId::Fwmark { .. } => return None,
        };
        let given = self.given.get(&key).cloned().unwrap_or_default();
        let (mode, mut kernel) = match dests.first() {
            Some(d) => (
                mode_of(d.fwd),
                KernelOpts {
                    one_packet: false,
                    lthreshold: d.l_thresh,
                    uthreshold: d.u_thresh,
                },
            ),
            None => (given.mode, given.kernel),
        };
        kernel.one_packet = s.flags & F_ONEPACKET != 0;
        let mut ds: Vec<Dest> = dests
            .iter()
            .map(|d| Dest::new(SocketAddr::new(d.addr, d.port), d.weight))
            .collect();
        ds.sort();
        Some(Service {
            anchor: None,
            key,
            scheduler: Scheduler::from_name(&s.sched)?,
            mode,
            persistence: if s.flags & F_PERSISTENT != 0 {
                s.timeout
            } else {
                0
            },
            dests: ds,
            opts: ServiceOpts {
                kernel,
                ..ServiceOpts::default()
            },
            marks: if self.firewall.is_some() {
                given.marks
            } else {
                Vec::new()
            },
        })
    }

    /// The operations for `changes` against `cur` (what the kernel holds), or why they are
    /// inconsistent with it.
    fn ops(cur: &[Service], changes: &[Change]) -> Result<Vec<Op>, NccError> {
        let mut want: BTreeMap<ServiceKey, Service> =
            cur.iter().map(|s| (s.key, s.clone())).collect();
        let mut ops = Vec::new();
        let missing = |k: &ServiceKey| NccError::Inconsistent(format!("no service {k}"));
        for c in changes {
            match c {
                Change::AddService(s) => {
                    if want.contains_key(&s.key) {
                        return Err(NccError::Inconsistent(format!("service {} exists", s.key)));
                    }
                    ops.push(Op::PutService {
                        edit: false,
                        svc: ipvs_service(s)?,
                    });
                    want.insert(
                        s.key,
                        Service {
                            dests: Vec::new(),
                            ..s.clone()
                        },
                    );
                }
                Change::UpdateService(s) => {
                    let cur = want.get_mut(&s.key).ok_or_else(|| missing(&s.key))?;
                    ops.push(Op::PutService {
                        edit: true,
                        svc: ipvs_service(s)?,
                    });
                    let per_dest = |k: &KernelOpts| (k.lthreshold, k.uthreshold);
                    if cur.mode != s.mode || per_dest(&cur.opts.kernel) != per_dest(&s.opts.kernel)
                    {
                        for d in &cur.dests {
                            ops.push(Op::PutDest {
                                edit: true,
                                svc: svc_id(&s.key),
                                dest: ipvs_dest(d, s),
                            });
                        }
                    }
                    (cur.scheduler, cur.mode, cur.persistence) =
                        (s.scheduler, s.mode, s.persistence);
                    cur.opts.kernel = s.opts.kernel;
                }
                Change::DeleteService(k) => {
                    want.remove(k).ok_or_else(|| missing(k))?;
                    ops.push(Op::DelService(svc_id(k)));
                }
                Change::AddDest(k, d) | Change::UpdateDest(k, d) => {
                    let s = want.get_mut(k).ok_or_else(|| missing(k))?;
                    let exists = s.dests.iter().any(|x| x.addr == d.addr);
                    if exists != matches!(c, Change::UpdateDest(..)) {
                        return Err(NccError::Inconsistent(format!(
                            "destination {} of {k} {}",
                            d.addr,
                            if exists { "exists" } else { "is missing" }
                        )));
                    }
                    ops.push(Op::PutDest {
                        edit: exists,
                        svc: svc_id(k),
                        dest: ipvs_dest(d, s),
                    });
                    s.dests.retain(|x| x.addr != d.addr);
                    s.dests.push(*d);
                }
                Change::DeleteDest(k, d) => {
                    let s = want.get_mut(k).ok_or_else(|| missing(k))?;
                    if !s.dests.iter().any(|x| x.addr == d.addr) {
                        return Err(NccError::Inconsistent(format!(
                            "destination {} of {k} is missing",
                            d.addr
                        )));
                    }
                    ops.push(Op::DelDest(svc_id(k), ipvs_dest(d, s)));
                    s.dests.retain(|x| x.addr != d.addr);
                }
            }
        }
        Ok(ops)
    }
}

impl<K: IpvsKernel> Dataplane for IpvsPlane<K> {
    fn kind(&self) -> &'static str {
        "ipvs"
    }

    fn unsupported(&self, s: &Service) -> Option<String> {
        if sched_name(s.scheduler).is_none() {
            return Some(format!(
                "scheduler {:?} has no IPVS module; use rr, wrr, lc, wlc, sh, dh or mh (or the \
                 proxy plane)",
                s.scheduler
            ));
        }
        if let Some(why) = crate::model::proxy_features(s) {
            return Some(why);
        }
        if let Some(d) = s.dest_outside_family() {
            return Some(format!(
                "destination {} is not in the VIP's address family",
                d.addr
            ));
        }
        if !s.marks.is_empty() && self.firewall.is_none() {
            return Some(
                "the ipvs plane does not mark packets itself: a firewall-mark service with \
                 marked VIP ports (use_fwm) needs the nftables plane; ipvs serves firewall-mark \
                 services reached by marks set elsewhere, such as health-check probes"
                    .into(),
            );
        }
        if s.mode != ForwardMode::Nat
            && !s.key.is_fwmark()
            && let Some(d) = s.dests.iter().find(|d| d.addr.port() != s.key.port)
        {
            return Some(format!(
                "direct routing and tunnels cannot change the port: destination {} must use \
                 port {}",
                d.addr, s.key.port
            ));
        }
        None
    }

    fn refresh(&mut self) -> Result<(), NccError> {
        let held = self.kernel()?.dump()?;
        self.held = held;
        Ok(())
    }

    fn current(&self) -> Vec<Service> {
        self.held
            .iter()
            .filter_map(|(s, d)| self.to_model(s, d))
            .collect()
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        let ops = Self::ops(&self.current(), changes)?;
        for c in changes {
            match c {
                Change::AddService(s) | Change::UpdateService(s) => {
                    self.given.insert(
                        s.key,
                        Given {
                            mode: s.mode,
                            kernel: s.opts.kernel,
                            marks: s.marks.clone(),
                        },
                    );
                }
                Change::DeleteService(k) => {
                    self.given.remove(k);
                }
                _ => {}
            }
        }
        let r = {
            let mut k = self.kernel()?;
            ops.iter().try_for_each(|op| k.exec(op))
        };
        self.refresh()?;
        r?;
        self.sync_firewall()
    }

    /// [`apply`], then the firewall table even when IPVS needed no change: a table an earlier
    /// apply could not write (or one this ncc has not written since it started) is retried
    /// rather than left behind IPVS services that are already in place.
    fn apply_desired(&mut self, desired: &[Service]) -> Result<Vec<String>, NccError> {
        let changes: Vec<String> = super::apply(self, desired)?
            .iter()
            .map(ToString::to_string)
            .collect();
        self.sync_firewall()?;
        Ok(changes)
    }

    fn stats(&self) -> Vec<ServiceStats> {
        let fresh = match self.kernel().and_then(|mut k| k.dump()) {
            Ok(h) => h,
            Err(e) => {
                tracing::warn!("cannot read IPVS counters ({e}); reporting the last state");
                self.held.clone()
            }
        };
        fresh
            .iter()
            .filter_map(|(s, ds)| {
                let service = self.to_model(s, ds)?;
                let dests = ds
                    .iter()
                    .map(|d| DestStats {
                        dest: Some(Dest::new(SocketAddr::new(d.addr, d.port), d.weight)),
                        active_conns: u64::from(d.active_conns),
                        total_conns: d.stats.conns,
                        bytes_in: d.stats.inbytes,
                        bytes_out: d.stats.outbytes,
                    })
                    .collect();
                Some(ServiceStats {
                    service,
                    dests,
                    table_hash: None,
                })
            })
            .collect()
    }
}

/// A stateful in-memory IPVS kernel with the kernel's error behaviour (EEXIST on adding what
/// exists, ENOENT on touching what does not). Clones share one kernel, so a new plane over a
/// clone must adopt what the previous one left.
#[derive(Debug, Clone, Default)]
pub struct FakeIpvs(std::sync::Arc<std::sync::Mutex<Held>>);

/// What an IPVS kernel holds: each service with its destinations.
pub type Held = Vec<(IpvsService, Vec<IpvsDest>)>;

impl IpvsKernel for FakeIpvs {
    fn dump(&mut self) -> Result<Held, NccError> {
        Ok(self
            .0
            .lock()
            .map_err(|_| NccError::Plane("fake ipvs lock poisoned".into()))?
            .clone())
    }

    fn exec(&mut self, op: &Op) -> Result<(), NccError> {
        let mut k = self
            .0
            .lock()
            .map_err(|_| NccError::Plane("fake ipvs lock poisoned".into()))?;
        let err = |what: &str| NccError::Plane(format!("ipvs: {what}"));
        let find = |k: &Held, id: &SvcId| k.iter().position(|(s, _)| s.id == *id);
        match op {
            Op::PutService { edit, svc } => match (find(&k, &svc.id), edit) {
                (Some(i), true) => k[i].0 = svc.clone(),
                (None, false) => k.push((svc.clone(), Vec::new())),
                (Some(_), false) => return Err(err("service exists (EEXIST)")),
                (None, true) => return Err(err("no such service (ESRCH)")),
            },
            Op::DelService(id) => {
                let i = find(&k, id).ok_or_else(|| err("no such service (ESRCH)"))?;
                k.remove(i);
            }
            Op::PutDest { edit, svc, dest } => {
                let i = find(&k, svc).ok_or_else(|| err("no such service (ESRCH)"))?;
                let ds = &mut k[i].1;
                let j = ds
                    .iter()
                    .position(|d| d.addr == dest.addr && d.port == dest.port);
                match (j, edit) {
                    (Some(j), true) => ds[j] = *dest,
                    (None, false) => ds.push(*dest),
                    (Some(_), false) => return Err(err("destination exists (EEXIST)")),
                    (None, true) => return Err(err("no such destination (ENOENT)")),
                }
            }
            Op::DelDest(svc, dest) => {
                let i = find(&k, svc).ok_or_else(|| err("no such service (ESRCH)"))?;
                let ds = &mut k[i].1;
                let j = ds
                    .iter()
                    .position(|d| d.addr == dest.addr && d.port == dest.port)
                    .ok_or_else(|| err("no such destination (ENOENT)"))?;
                ds.remove(j);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
