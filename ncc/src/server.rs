//! ncc's gRPC API on its Unix socket. Every call is serialised through one mutex around the plane
//! and bounded by a deadline; only trusted callers (root or the socket owner, from `SO_PEERCRED`)
//! may change anything. Proto messages are converted to domain types here and nowhere else.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use seesaw_proto::ncc as pb;
use tokio::net::UnixListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::NccError;
use crate::dataplane::{self, Dataplane};
use crate::model::{Dest, ForwardMode, Protocol, Scheduler, Service, ServiceKey};

/// Deadline of every call.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// Serves the ncc API for `plane` on `listener` until `shutdown` is cancelled.
pub async fn run<P: Dataplane>(
    plane: P,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tracing::info!(plane = plane.kind(), "ncc serving");
    let svc = NccService {
        plane: Arc::new(Mutex::new(plane)),
    };
    seesaw_common::ready::notify_ready();
    let server = tonic::transport::Server::builder()
        .timeout(CALL_DEADLINE)
        .add_service(pb::ncc_server::NccServer::new(svc))
        .serve_with_incoming_shutdown(
            seesaw_common::uds::incoming(listener),
            shutdown.clone().cancelled_owned(),
        );
    // Graceful shutdown waits for open client connections (HTTP/2 keeps them open); give them a
    // moment, then stop regardless so SIGTERM never needs the watchdog's SIGKILL.
    tokio::select! {
        r = server => r,
        () = async {
            shutdown.cancelled().await;
            tokio::time::sleep(DRAIN_GRACE).await;
        } => {
            tracing::info!("closing remaining client connections");
            Ok(())
        }
    }
}

/// How long open API connections may linger after shutdown starts.
const DRAIN_GRACE: Duration = Duration::from_secs(1);

/// The ncc service over one plane.
pub struct NccService<P> {
    plane: Arc<Mutex<P>>,
}

impl<P> NccService<P> {
    /// Wraps a plane (for in-process tests).
    pub fn new(plane: P) -> Self {
        Self {
            plane: Arc::new(Mutex::new(plane)),
        }
    }
}

#[tonic::async_trait]
impl<P: Dataplane> pb::ncc_server::Ncc for NccService<P> {
    async fn apply(
        &self,
        req: Request<pb::DesiredState>,
    ) -> Result<Response<pb::ApplyReply>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let desired = services_from_pb(req.into_inner())?;
        let mut plane = self.plane.lock().await;
        let changes = dataplane::apply(&mut *plane, &desired)?;
        for c in &changes {
            tracing::info!("{c}");
        }
        Ok(Response::new(pb::ApplyReply {
            changes: changes.iter().map(ToString::to_string).collect(),
        }))
    }

    async fn get_state(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::DataplaneState>, Status> {
        let plane = self.plane.lock().await;
        let services = plane
            .stats()
            .into_iter()
            .map(|s| pb::ServiceState {
                address: s.service.key.vip.to_string(),
                protocol: proto_to_pb(s.service.key.proto) as i32,
                port: u32::from(s.service.key.port),
                scheduler: sched_to_pb(s.service.scheduler) as i32,
                mode: mode_to_pb(s.service.mode) as i32,
                persistence_s: s.service.persistence,
                destinations: s
                    .dests
                    .iter()
                    .filter_map(|d| {
                        let dest = d.dest?;
                        Some(pb::DestinationStats {
                            address: dest.addr.ip().to_string(),
                            port: u32::from(dest.addr.port()),
                            weight: dest.weight,
                            active_conns: d.active_conns,
                            total_conns: d.total_conns,
                            bytes_in: d.bytes_in,
                            bytes_out: d.bytes_out,
                        })
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::DataplaneState {
            kind: plane.kind().to_owned(),
            services,
        }))
    }
}

/// Converts the request, collecting every problem.
pub fn services_from_pb(d: pb::DesiredState) -> Result<Vec<Service>, NccError> {
    let mut errors = Vec::new();
    let mut out: Vec<Service> = Vec::new();
    for (i, s) in d.services.into_iter().enumerate() {
        let path = format!("services[{i}]");
        let vip = s
            .address
            .parse::<IpAddr>()
            .map_err(|_| format!("{path}.address: {:?} is not an IP address", s.address));
        let port = u16::try_from(s.port)
            .ok()
            .filter(|p| *p > 0)
            .ok_or_else(|| format!("{path}.port: {} is not a port", s.port));
        let proto = match pb::Protocol::try_from(s.protocol) {
            Ok(pb::Protocol::Tcp) => Ok(Protocol::Tcp),
            Ok(pb::Protocol::Udp) => Ok(Protocol::Udp),
            _ => Err(format!("{path}.protocol: unspecified")),
        };
        let scheduler = match pb::Scheduler::try_from(s.scheduler) {
            Ok(pb::Scheduler::Rr) => Ok(Scheduler::Rr),
            Ok(pb::Scheduler::Wrr) => Ok(Scheduler::Wrr),
            Ok(pb::Scheduler::Lc) => Ok(Scheduler::Lc),
            Ok(pb::Scheduler::Wlc) => Ok(Scheduler::Wlc),
            Ok(pb::Scheduler::Sh) => Ok(Scheduler::Sh),
            Ok(pb::Scheduler::Mh) => Ok(Scheduler::Mh),
            _ => Err(format!("{path}.scheduler: unspecified")),
        };
        let mode = match pb::ForwardMode::try_from(s.mode) {
            Ok(pb::ForwardMode::Dsr) => Ok(ForwardMode::Dsr),
            Ok(pb::ForwardMode::Nat) => Ok(ForwardMode::Nat),
            Ok(pb::ForwardMode::Tun) => Ok(ForwardMode::Tun),
            _ => Err(format!("{path}.mode: unspecified")),
        };
        let mut dests = Vec::new();
        for (j, d) in s.destinations.into_iter().enumerate() {
            let ip = d.address.parse::<IpAddr>();
            let p = u16::try_from(d.port).ok().filter(|p| *p > 0);
            match (ip, p) {
                (Ok(ip), Some(p)) => dests.push(Dest {
                    addr: SocketAddr::new(ip, p),
                    weight: d.weight,
                }),
                _ => errors.push(format!(
                    "{path}.destinations[{j}]: bad address {:?} or port {}",
                    d.address, d.port
                )),
            }
        }
        dests.sort();
        if dests.windows(2).any(|w| w[0].addr == w[1].addr) {
            errors.push(format!("{path}.destinations: duplicate destination"));
        }
        match (vip, port, proto, scheduler, mode) {
            (Ok(vip), Ok(port), Ok(proto), Ok(scheduler), Ok(mode)) => {
                let key = ServiceKey { vip, proto, port };
                if out.iter().any(|o| o.key == key) {
                    errors.push(format!("{path}: duplicate service {key}"));
                }
                out.push(Service {
                    key,
                    scheduler,
                    mode,
                    persistence: s.persistence_s,
                    dests,
                });
            }
            (a, b, c, e, f) => errors.extend(
                [a.err(), b.err(), c.err(), e.err(), f.err()]
                    .into_iter()
                    .flatten(),
            ),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(NccError::Invalid(errors))
    }
}

fn proto_to_pb(p: Protocol) -> pb::Protocol {
    match p {
        Protocol::Tcp => pb::Protocol::Tcp,
        Protocol::Udp => pb::Protocol::Udp,
    }
}

fn sched_to_pb(s: Scheduler) -> pb::Scheduler {
    match s {
        Scheduler::Rr => pb::Scheduler::Rr,
        Scheduler::Wrr => pb::Scheduler::Wrr,
        Scheduler::Lc => pb::Scheduler::Lc,
        Scheduler::Wlc => pb::Scheduler::Wlc,
        Scheduler::Sh => pb::Scheduler::Sh,
        Scheduler::Mh => pb::Scheduler::Mh,
    }
}

fn mode_to_pb(m: ForwardMode) -> pb::ForwardMode {
    match m {
        ForwardMode::Dsr => pb::ForwardMode::Dsr,
        ForwardMode::Nat => pb::ForwardMode::Nat,
        ForwardMode::Tun => pb::ForwardMode::Tun,
    }
}
