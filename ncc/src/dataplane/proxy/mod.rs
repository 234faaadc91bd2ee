//! The userspace proxy plane: a TCP listener per service on VIP:port, a scheduler per service, and
//! a relay per connection. It needs no privilege, so it is what the demo and the unprivileged
//! tests run. Tables are rebuilt off the accept path and swapped atomically; a weight change or a
//! removed destination never touches established connections (they drain on their own).

mod relay;
mod sched;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use super::{Change, Dataplane, ServiceStats};
use crate::NccError;
use crate::model::{ForwardMode, Protocol, Scheduler, Service, ServiceKey};
pub use sched::{Counters, Table};

/// The proxy data plane.
#[derive(Debug, Default)]
pub struct ProxyPlane {
    services: BTreeMap<ServiceKey, Running>,
}

#[derive(Debug)]
struct Running {
    spec: Service,
    table: Arc<RwLock<Arc<Table>>>,
    counters: sched::CounterMap,
    stop: CancellationToken,
}

impl Drop for Running {
    fn drop(&mut self) {
        // Stops accepting; established connections keep running until they end.
        self.stop.cancel();
    }
}

impl ProxyPlane {
    /// An empty plane. Must be used inside a tokio runtime (listeners are tokio sockets).
    pub fn new() -> Self {
        Self::default()
    }

    fn rebuild(r: &Running) {
        let table = Table::build(&r.spec, &r.counters);
        *r.table.write().expect("table lock poisoned") = Arc::new(table);
    }
}

impl Dataplane for ProxyPlane {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn unsupported(&self, s: &Service) -> Option<String> {
        if s.key.proto != Protocol::Tcp {
            return Some("the proxy data plane forwards TCP only in this version".into());
        }
        if s.mode != ForwardMode::Nat {
            return Some(format!(
                "mode {:?} is not possible in a userspace proxy (use NAT)",
                s.mode
            ));
        }
        if s.scheduler == Scheduler::Mh {
            return Some(
                "scheduler mh is not available in the proxy data plane in this version".into(),
            );
        }
        if s.persistence > 0 {
            return Some(
                "persistence is not available in the proxy data plane in this version".into(),
            );
        }
        None
    }

    fn current(&self) -> Vec<Service> {
        self.services.values().map(|r| r.spec.clone()).collect()
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        // Bind every new listener first, so a bind failure leaves the plane unchanged.
        let mut new_listeners = BTreeMap::new();
        for c in changes {
            if let Change::AddService(s) = c {
                let l = bind(s.key.addr())
                    .map_err(|e| NccError::Plane(format!("cannot listen on {}: {e}", s.key)))?;
                new_listeners.insert(s.key, l);
            }
        }
        let mut touched = Vec::new();
        for c in changes {
            match c {
                Change::AddService(s) => {
                    let listener = new_listeners.remove(&s.key).expect("bound above");
                    let counters = sched::CounterMap::default();
                    let table = Arc::new(RwLock::new(Arc::new(Table::build(s, &counters))));
                    let stop = CancellationToken::new();
                    tokio::spawn(relay::accept_loop(
                        listener,
                        s.key,
                        table.clone(),
                        stop.clone(),
                    ));
                    self.services.insert(
                        s.key,
                        Running {
                            spec: s.clone(),
                            table,
                            counters,
                            stop,
                        },
                    );
                }
                Change::DeleteService(k) => {
                    self.services.remove(k);
                }
                Change::UpdateService(s) => {
                    let r = running(&mut self.services, &s.key)?;
                    (r.spec.scheduler, r.spec.mode, r.spec.persistence) =
                        (s.scheduler, s.mode, s.persistence);
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
                    touched.push(*k);
                }
            }
        }
        touched.sort();
        touched.dedup();
        for k in touched {
            if let Some(r) = self.services.get(&k) {
                Self::rebuild(r);
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
                    .map(|d| r.counters.get(d.addr).snapshot(*d))
                    .collect(),
            })
            .collect()
    }
}

fn running<'a>(
    m: &'a mut BTreeMap<ServiceKey, Running>,
    k: &ServiceKey,
) -> Result<&'a mut Running, NccError> {
    m.get_mut(k)
        .ok_or_else(|| NccError::Inconsistent(format!("no service {k}")))
}

fn bind(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    sock.set_reuse_address(true)?;
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    sock.listen(1024)?;
    tokio::net::TcpListener::from_std(sock.into())
}

#[cfg(test)]
mod tests;
