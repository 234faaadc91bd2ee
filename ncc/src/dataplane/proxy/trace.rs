//! `seesaw trace` on the proxy plane: the service's current [`Table`] predicts the destination
//! of a new flow exactly as a connection would be scheduled (same source hash, same picker,
//! without moving any scheduler state), and the service's [`super::flows::Flows`] has the live
//! TCP connection, if any.

use super::ProxyPlane;
use crate::dataplane::trace::{PlaneTrace, TraceFlow};
use crate::model::{Protocol, Scheduler, ServiceKey};
use crate::sched::{hash_addr, hash_ip};

impl ProxyPlane {
    /// See [`crate::dataplane::Dataplane::trace`].
    pub(super) fn trace_flow(&self, flow: &TraceFlow) -> PlaneTrace {
        let mut t = PlaneTrace {
            plane: "proxy".to_owned(),
            ..PlaneTrace::default()
        };
        let key = ServiceKey::new(flow.vip.ip(), flow.proto, flow.vip.port());
        let Some(r) = self.services.get(&key) else {
            return t;
        };
        t.found = true;
        let table = r.table.load();
        if !table.rules.is_trivial() {
            t.notes.push(
                "payload rules choose the backend group (and may hash a payload key) from the \
                 first bytes; shown: the default group, keyed by the client address"
                    .to_owned(),
            );
        }
        // What a connection hashes: TCP the client's address, UDP its address and port.
        let src = match flow.proto {
            Protocol::Tcp => hash_ip(flow.client.ip()),
            Protocol::Udp => hash_addr(flow.client),
        };
        let sched = table.spec.scheduler;
        match table.predict(0, src) {
            Some((dest, maglev)) => {
                t.predicted = Some(dest);
                t.how = match (sched, maglev) {
                    (Scheduler::Mh, Some((slot, len))) => {
                        format!("Maglev slot {slot} of {len} (hash of the client address)")
                    }
                    (Scheduler::Dh, _) => "hash of the VIP over the weights (dh)".to_owned(),
                    _ => "hash of the client address over the weights (sh)".to_owned(),
                };
            }
            None => {
                t.how = format!(
                    "{sched:?}: the choice depends on the scheduler's state (counters, loads), \
                     so a new flow's destination cannot be predicted"
                )
                .to_lowercase();
            }
        }
        match flow.proto {
            Protocol::Tcp => {
                if let Some(d) = r.counters.flows.get(flow.client) {
                    t.flow = Some(d);
                    t.flow_state = "relayed".to_owned();
                }
            }
            Protocol::Udp => t.notes.push(
                "UDP flows live in each worker's own table; their live entry is not shown"
                    .to_owned(),
            ),
        }
        t
    }
}
