//! The userspace proxy plane: TCP and UDP forwarding on VIP:port, with the schedulers of
//! [`crate::sched`], backend groups chosen by payload rules ([`rules`]), backups, drain, and
//! PROXY protocol. It needs no privilege, so it is what the demo and the unprivileged tests run.
//!
//! Threads: TCP services share one pool of worker threads (one per core, each a single-threaded
//! tokio runtime); a TCP service binds one `SO_REUSEPORT` listener per worker, so the kernel
//! spreads connections (while listeners use at most a quarter of the open-file limit; past that,
//! one listener per service, so 10,000 services fit in 20,000 descriptors), and a worker that accepted more open connections than the least loaded
//! one (by two or more) hands the new connection over to it, so the kernel's hash cannot leave one
//! core with most of the work; a connection then lives on one core. Every UDP service runs one worker
//! thread per core with its own `SO_REUSEPORT` socket, epoll set and flow table ([`udp`]).
//!
//! Hot reconfiguration: every change builds a new [`Table`] off the packet path and publishes it
//! with one atomic swap (`arc-swap`); flows hold their destination's state, so a swap never
//! touches an established flow on an unchanged destination. A removed destination drains: its
//! flows continue until they end, or until the service's drain timeout passes.

pub mod flows;
pub mod rules;
mod sys;
pub mod table;
mod tcp;
pub mod tls;
mod trace;
mod udp;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;

use super::{Change, Dataplane, ServiceStats};
use crate::NccError;
use crate::model::{Field, ForwardMode, Protocol, Service, ServiceKey};
pub use table::{Counters, DestMap, DestState, Table};
pub use tcp::{proxy_v1, proxy_v2};

/// Per-service counters of traffic that reached no destination.
#[derive(Debug, Default)]
pub struct ServiceCounters {
    /// Denied by a payload rule (or the default deny).
    pub denied: AtomicU64,
    /// No destination in the chosen group could take it.
    pub no_backend: AtomicU64,
    /// UDP: the flow table was full.
    pub table_full: AtomicU64,
    /// UDP: datagrams the kernel refused to send.
    pub send_errors: AtomicU64,
    /// Open TCP connections by client (`seesaw trace`).
    pub flows: flows::Flows,
}

/// A snapshot of [`ServiceCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropStats {
    /// Denied by rules.
    pub denied: u64,
    /// No destination available.
    pub no_backend: u64,
    /// Flow table full.
    pub table_full: u64,
    /// Send errors.
    pub send_errors: u64,
}

/// The TCP worker pool: one thread per core, each running a single-threaded tokio runtime.
#[derive(Debug)]
struct Workers {
    pool: Arc<tcp::Pool>,
    stop: CancellationToken,
}

impl Workers {
    fn start(n: usize) -> std::io::Result<Self> {
        let stop = CancellationToken::new();
        let mut handles = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = std::sync::mpsc::channel();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name(format!("proxy-tcp-{i}"))
                .spawn(move || {
                    let rt = match tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                    {
                        Ok(rt) => rt,
                        Err(e) => {
                            let _ = tx.send(Err(e));
                            return;
                        }
                    };
                    let _ = tx.send(Ok(rt.handle().clone()));
                    rt.block_on(stop.cancelled());
                })?;
            match rx.recv() {
                Ok(Ok(h)) => handles.push(h),
                Ok(Err(e)) => return Err(e),
                Err(_) => return Err(std::io::Error::other("proxy worker did not start")),
            }
        }
        Ok(Self {
            pool: Arc::new(tcp::Pool::new(handles)),
            stop,
        })
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// The proxy data plane.
#[derive(Debug, Default)]
pub struct ProxyPlane {
    services: BTreeMap<ServiceKey, Running>,
    workers: Option<Workers>,
    threads: Option<usize>,
}

#[derive(Debug)]
struct Running {
    spec: Service,
    /// Sockets this service holds (listeners, or UDP sockets).
    sockets: usize,
    table: Arc<ArcSwap<Table>>,
    dests: DestMap,
    counters: Arc<ServiceCounters>,
    stop: CancellationToken,
    udp_stop: Arc<AtomicBool>,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Stops accepting; established TCP connections keep running until they end (or their
        // destination's drain timeout passes). UDP workers stop, closing their flows.
        self.stop.cancel();
        self.udp_stop.store(true, Ordering::Relaxed);
    }
}

/// Sockets bound for a new service before anything changes.
enum Bound {
    Tcp(Vec<std::net::TcpListener>),
    Udp(Vec<std::net::UdpSocket>),
}

impl Bound {
    fn len(&self) -> usize {
        match self {
            Self::Tcp(v) => v.len(),
            Self::Udp(v) => v.len(),
        }
    }
}

/// Descriptors kept free for relayed connections (two each, plus a splice pipe) and the rest
/// of the process, beyond which a change is refused before anything is bound.
const RESERVED_FDS: usize = 1024;
/// UDP worker threads (one per worker per UDP service) the plane starts at most.
const MAX_UDP_THREADS: usize = 4096;

/// The open-file limit (soft) of this process.
fn nofile_limit() -> usize {
    nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NOFILE)
        .map_or(1024, |(soft, _)| {
            usize::try_from(soft).unwrap_or(usize::MAX)
        })
}

impl ProxyPlane {
    /// An empty plane with one worker per core.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty plane with `n` workers per protocol (tests use few).
    pub fn with_threads(n: usize) -> Self {
        Self {
            threads: Some(n.max(1)),
            ..Self::default()
        }
    }

    /// Worker threads per protocol: `with_threads`, else `SEESAW_PROXY_THREADS` (1..=256), else
    /// one per core.
    fn nthreads(&self) -> usize {
        self.threads.unwrap_or_else(|| {
            std::env::var("SEESAW_PROXY_THREADS")
                .ok()
                .and_then(|v| v.parse::<usize>().ok())
                .filter(|n| (1..=256).contains(n))
                .unwrap_or_else(|| {
                    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
                })
        })
    }

    /// Counters of traffic of `key` that reached no destination.
    pub fn drops(&self, key: &ServiceKey) -> Option<DropStats> {
        self.services.get(key).map(|r| DropStats {
            denied: r.counters.denied.load(Ordering::Relaxed),
            no_backend: r.counters.no_backend.load(Ordering::Relaxed),
            table_full: r.counters.table_full.load(Ordering::Relaxed),
            send_errors: r.counters.send_errors.load(Ordering::Relaxed),
        })
    }

    /// What the plane can hold, for the log: the open-file limit and how listeners use it.
    pub fn capacity(&self) -> String {
        let limit = nofile_limit();
        let n = self.nthreads();
        format!(
            "open-file limit {limit}: a TCP service gets {n} listeners (one per worker) while \
             listeners fill at most a quarter of it, then 1; {} descriptors are kept for \
             connections; at most {MAX_UDP_THREADS} UDP worker threads ({n} per UDP service)",
            RESERVED_FDS.max(limit / 4)
        )
    }

    /// Listeners for the next TCP service, with `held` sockets already held or bound.
    fn tcp_listeners(&self, held: usize) -> usize {
        let n = self.nthreads();
        if (held + n) * 4 <= nofile_limit() {
            n
        } else {
            1
        }
    }

    /// Refuses `changes` before anything is bound if they would take more descriptors or
    /// threads than the plane has (a bind failing halfway is all-or-nothing too; this says why).
    fn check_capacity(&self, changes: &[Change]) -> Result<(), NccError> {
        let n = self.nthreads();
        let removed: std::collections::BTreeSet<&ServiceKey> = changes
            .iter()
            .filter_map(|c| match c {
                Change::DeleteService(k) => Some(k),
                _ => None,
            })
            .collect();
        let kept = |k: &&ServiceKey| !removed.contains(k);
        let mut held: usize = self
            .services
            .iter()
            .filter(|(k, _)| kept(k))
            .map(|(_, r)| r.sockets)
            .sum();
        let mut udp = self
            .services
            .iter()
            .filter(|(k, r)| kept(k) && r.spec.key.proto == Protocol::Udp)
            .count();
        for c in changes {
            if let Change::AddService(s) = c {
                match s.key.proto {
                    Protocol::Tcp => held += self.tcp_listeners(held),
                    Protocol::Udp => {
                        held += n;
                        udp += 1;
                    }
                }
            }
        }
        let limit = nofile_limit();
        let room = limit.saturating_sub(RESERVED_FDS.max(limit / 4));
        let mut why = Vec::new();
        if held > room {
            why.push(format!(
                "the services need {held} listening sockets and the proxy plane has room for \
                 {room} (open-file limit {limit}, {} kept for connections): raise LimitNOFILE \
                 or use a kernel plane",
                limit - room
            ));
        }
        if udp * n > MAX_UDP_THREADS {
            why.push(format!(
                "{udp} UDP services need {} worker threads ({n} each); the proxy plane starts \
                 at most {MAX_UDP_THREADS}",
                udp * n
            ));
        }
        if why.is_empty() {
            Ok(())
        } else {
            Err(NccError::Plane(why.join("; ")))
        }
    }

    fn bind(&self, s: &Service, held: usize) -> std::io::Result<Bound> {
        let n = self.nthreads();
        match s.key.proto {
            Protocol::Tcp => (0..self.tcp_listeners(held))
                .map(|_| tcp::bind(s.key.addr()))
                .collect::<Result<_, _>>()
                .map(Bound::Tcp),
            Protocol::Udp => {
                let first = udp::bind(s.key.addr())?;
                // Port 0 is not a service port, but keep every socket on the same port anyway.
                let addr = first.local_addr()?;
                let mut v = vec![first];
                for _ in 1..n {
                    v.push(udp::bind(addr)?);
                }
                Ok(Bound::Udp(v))
            }
        }
    }

    fn start(&mut self, s: &Service, bound: Bound) -> Result<Running, NccError> {
        let sockets = bound.len();
        // A service with one listener starts on the next worker in turn, so accepts spread.
        let first = self.services.len();
        let dests = DestMap::default();
        let table = Table::build(s, &dests, None)
            .map_err(|e| NccError::Invalid(vec![format!("{}: {e}", s.key)]))?;
        let table = Arc::new(ArcSwap::from_pointee(table));
        let counters = Arc::new(ServiceCounters::default());
        let stop = CancellationToken::new();
        let udp_stop = Arc::new(AtomicBool::new(false));
        match bound {
            Bound::Tcp(listeners) => {
                if self.workers.is_none() {
                    let w = Workers::start(self.nthreads())
                        .map_err(|e| NccError::Plane(format!("cannot start proxy workers: {e}")))?;
                    self.workers = Some(w);
                }
                if let Some(w) = &self.workers {
                    let n = w.pool.len();
                    for (i, l) in listeners.into_iter().enumerate() {
                        w.pool.spawn(
                            (first + i) % n,
                            tcp::accept_loop(
                                l,
                                s.key,
                                table.clone(),
                                counters.clone(),
                                stop.clone(),
                                w.pool.clone(),
                                (first + i) % n,
                            ),
                        );
                    }
                }
            }
            Bound::Udp(socks) => {
                for (i, sock) in socks.into_iter().enumerate() {
                    let (key, table, counters, stop) =
                        (s.key, table.clone(), counters.clone(), udp_stop.clone());
                    std::thread::Builder::new()
                        .name(format!("proxy-udp-{i}"))
                        .spawn(move || udp::run(key, sock, table, counters, stop))
                        .map_err(|e| {
                            udp_stop.store(true, Ordering::Relaxed);
                            NccError::Plane(format!("cannot start a UDP worker: {e}"))
                        })?;
                }
            }
        }
        Ok(Running {
            spec: s.clone(),
            sockets,
            table,
            dests,
            counters,
            stop,
            udp_stop,
        })
    }
}

impl Dataplane for ProxyPlane {
    fn builds_tables(&self) -> bool {
        true
    }

    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn unsupported(&self, s: &Service) -> Option<String> {
        unsupported(s)
    }

    fn current(&self) -> Vec<Service> {
        self.services.values().map(|r| r.spec.clone()).collect()
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        self.check_capacity(changes)?;
        // Bind every new socket first, so a bind failure leaves the plane unchanged.
        let mut bound = BTreeMap::new();
        let mut held: usize = self.services.values().map(|r| r.sockets).sum();
        for c in changes {
            if let Change::AddService(s) = c {
                let b = self
                    .bind(s, held)
                    .map_err(|e| NccError::Plane(format!("cannot listen on {}: {e}", s.key)))?;
                held += b.len();
                bound.insert(s.key, b);
            }
        }
        let mut touched = Vec::new();
        for c in changes {
            match c {
                Change::AddService(s) => {
                    let b = bound
                        .remove(&s.key)
                        .ok_or_else(|| NccError::Inconsistent(format!("{} added twice", s.key)))?;
                    let r = self.start(s, b)?;
                    self.services.insert(s.key, r);
                }
                Change::DeleteService(k) => {
                    self.services.remove(k);
                }
                Change::UpdateService(s) => {
                    let r = running(&mut self.services, &s.key)?;
                    (r.spec.scheduler, r.spec.mode, r.spec.persistence) =
                        (s.scheduler, s.mode, s.persistence);
                    r.spec.opts = s.opts.clone();
                    touched.push(s.key);
                }
                Change::AddDest(k, d) | Change::UpdateDest(k, d) => {
                    let r = running(&mut self.services, k)?;
                    r.spec.dests.retain(|x| x.addr != d.addr);
                    r.spec.dests.push(*d);
                    r.spec.dests.sort();
                    touched.push(*k);
                }
                Change::DeleteDest(k, d) => {
                    let r = running(&mut self.services, k)?;
                    r.spec.dests.retain(|x| x.addr != d.addr);
                    let timeout = match r.spec.opts.drain_timeout_ms {
                        0 => None,
                        ms => Some(Duration::from_millis(u64::from(ms))),
                    };
                    r.dests.drain(d.addr, timeout);
                    touched.push(*k);
                }
            }
        }
        touched.sort();
        touched.dedup();
        for k in touched {
            if let Some(r) = self.services.get(&k) {
                let t = Table::build(&r.spec, &r.dests, Some(&r.table.load()))
                    .map_err(|e| NccError::Plane(format!("{k}: {e}")))?;
                r.table.store(Arc::new(t));
            }
        }
        Ok(())
    }

    fn stats(&self) -> Vec<ServiceStats> {
        self.services
            .values()
            .map(|r| ServiceStats {
                service: r.spec.clone(),
                dests: r
                    .spec
                    .dests
                    .iter()
                    .map(|d| match r.dests.peek(d.addr) {
                        Some(s) => s.counters.snapshot(*d),
                        None => Counters::default().snapshot(*d),
                    })
                    .collect(),
                table_hash: r.table.load().table_hash(),
            })
            .collect()
    }

    fn trace(
        &mut self,
        flow: &crate::dataplane::trace::TraceFlow,
    ) -> crate::dataplane::trace::PlaneTrace {
        self.trace_flow(flow)
    }
}

/// Why the proxy plane cannot hold `s`, if it cannot (also asked by ncc of the relay's
/// services before they are sent).
pub fn unsupported(s: &Service) -> Option<String> {
    if s.key.is_fwmark() {
        return Some(
            "firewall-mark services need a kernel plane (nftables or ipvs): a userspace \
             proxy accepts connections on VIP:port sockets and never sees packet marks"
                .into(),
        );
    }
    if s.mode != ForwardMode::Nat {
        return Some(format!(
            "mode {:?} is not possible in a userspace proxy (use NAT)",
            s.mode
        ));
    }
    if s.persistence > 0 {
        return Some(
            "persistence is not available in the proxy data plane (use sh or mh for affinity)"
                .into(),
        );
    }
    if let Some(why) = crate::model::thresholds_need_ipvs(s) {
        return Some(why);
    }
    if s.key.proto == Protocol::Udp
        && s.opts
            .rules
            .iter()
            .any(|r| r.conds.iter().any(|c| c.field == Field::Sni))
    {
        return Some("the TLS server name is a TCP routing key; this service is UDP".into());
    }
    if let Err(e) = rules::Compiled::compile(&s.opts) {
        return Some(e.to_string());
    }
    None
}

fn running<'a>(
    m: &'a mut BTreeMap<ServiceKey, Running>,
    k: &ServiceKey,
) -> Result<&'a mut Running, NccError> {
    m.get_mut(k)
        .ok_or_else(|| NccError::Inconsistent(format!("no service {k}")))
}

#[cfg(test)]
mod tests;
