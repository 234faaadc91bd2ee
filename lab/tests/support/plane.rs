//! What the data-plane labs (`ipvs.rs`, `nftables.rs`) share: a TCP service over some of their
//! backends, and the backends' names a client sees through a VIP.

use std::net::SocketAddr;
use std::time::Duration;

use seesaw_lab::{Lab, http};
use seesaw_ncc::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey};

/// A TCP service on `vip:port` to `dests` (address, weight), those of weight 0 left out.
pub(crate) fn tcp_service(
    vip: &str,
    port: u16,
    sched: Scheduler,
    mode: ForwardMode,
    dests: impl IntoIterator<Item = (String, u32)>,
) -> Service {
    let mut dests: Vec<Dest> = dests
        .into_iter()
        .filter(|(_, w)| *w > 0)
        .map(|(addr, w)| Dest::new(addr.parse().expect("literal"), w))
        .collect();
    dests.sort();
    let key = ServiceKey::new(vip.parse().expect("literal"), Protocol::Tcp, port);
    Service::new(key, sched, mode, dests)
}

/// `n` HTTP requests from the client to `vip`, each within `timeout`; the backends' names in
/// order (any failed request fails the test).
pub(crate) fn names(lab: &Lab, vip: SocketAddr, n: usize, timeout: Duration) -> Vec<String> {
    lab.run_in("client", move || {
        (0..n)
            .map(|i| match http::get(vip, "/", timeout) {
                Ok(r) if r.status == 200 => r.text().trim().to_owned(),
                other => panic!("request {i} to {vip} failed: {other:?}"),
            })
            .collect::<Vec<_>>()
    })
    .expect("entering client")
}
