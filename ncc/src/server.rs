//! ncc's gRPC API on its Unix socket: the adapter in front of the reconciler thread
//! ([`crate::reconciler`]), which owns the plane, the LB interface, the VIPs and the fence. Every
//! call is bounded by a deadline; only trusted callers (root or the socket owner, from
//! `SO_PEERCRED`) may change anything. Proto messages are converted to domain types here (with
//! `convert.rs`) and nowhere else; BGP, which talks to GoBGP over the network, has its own lock.

use std::sync::Arc;
use std::time::Duration;

use seesaw_proto::ncc as pb;
use tokio::net::UnixListener;
use tokio::sync::{Mutex, oneshot};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::NccError;
use crate::bgp::Bgp;
use crate::bgp::gobgp::GobgpSpeaker;
use crate::convert::{
    bgp_request_from_pb, bgp_status, delta_from_pb, lb_from_pb, marked_to_pb, services_from_pb,
    vips_from_pb,
};
use crate::dataplane::Dataplane;
use crate::kernel::lb::LbWant;
use crate::kernel::vips::Vip;
use crate::reconciler::{Delta, Handle, Job, Reconciler, Request as LastRequest};

/// Deadline of every call.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// The longest lease ha may ask for (3 × the longest advert interval).
const MAX_LEASE: Duration = Duration::from_secs(123);

/// Serves the ncc API for `plane` on `listener` until `shutdown` is cancelled.
pub async fn run<P: Dataplane>(
    plane: P,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    run_with_vips(plane, None, listener, shutdown).await
}

/// [`run`], also managing VIPs with `vips` (when ncc may change the network).
pub async fn run_with_vips<P: Dataplane>(
    plane: P,
    vips: Option<crate::kernel::vips::Vips>,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    run_with_interfaces(plane, vips, None, listener, shutdown).await
}

/// [`run_with_vips`], also driving the LB interface with `lb` (HA role, policy routing, VMAC,
/// VLANs, GARP loop).
pub async fn run_with_interfaces<P: Dataplane>(
    plane: P,
    vips: Option<crate::kernel::vips::Vips>,
    lb: Option<crate::kernel::lb::Lb>,
    listener: UnixListener,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    tracing::info!(
        plane = plane.kind(),
        vips = vips.is_some(),
        lb = lb.as_ref().map(crate::kernel::lb::Lb::interface),
        "ncc serving"
    );
    let svc = match NccService::start(plane, vips, lb) {
        Ok(svc) => svc,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the reconciler thread");
            return Ok(());
        }
    };
    // ha's renewals arrive as datagrams on a socket beside the API's.
    if let Some(path) = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(|p| p.with_file_name("lease.sock")))
    {
        let _ = std::fs::remove_file(&path);
        match tokio::net::UnixDatagram::bind(&path) {
            Ok(sock) => {
                tokio::spawn(svc.shared().serve_lease_datagrams(sock, shutdown.clone()));
            }
            Err(e) => {
                tracing::error!(path = %path.display(), error = %e, "cannot bind the lease socket: the fence takes leases over the API only")
            }
        }
    }
    seesaw_common::ready::notify_ready();
    let server = tonic::transport::Server::builder()
        .timeout(CALL_DEADLINE)
        .add_service(
            pb::ncc_server::NccServer::new(svc)
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
        )
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

/// The ncc service: the adapter's handle on the reconciler, and BGP.
pub struct NccService {
    reconciler: Handle,
    /// BGP through GoBGP; its own lock, so a slow daemon never delays the data plane.
    bgp: Arc<Mutex<Bgp<GobgpSpeaker>>>,
    /// The plane's epoch ([`Dataplane::epoch`]), mixed into the boot id `Watch` sends.
    epoch: Option<tokio::sync::watch::Receiver<u64>>,
}

impl NccService {
    /// Starts the reconciler thread over `plane`, with the VIPs and the LB interface where ncc
    /// manages them.
    pub fn start<P: Dataplane>(
        plane: P,
        vips: Option<crate::kernel::vips::Vips>,
        lb: Option<crate::kernel::lb::Lb>,
    ) -> std::io::Result<Self> {
        let epoch = plane.epoch();
        Ok(Self {
            reconciler: Reconciler::new(plane, vips, lb).spawn()?,
            bgp: Arc::new(Mutex::new(Bgp::new(Box::new(GobgpSpeaker::connect)))),
            epoch,
        })
    }

    /// A handle on the same service (every part shared), for tasks.
    fn shared(&self) -> Self {
        Self {
            reconciler: self.reconciler.clone(),
            bgp: self.bgp.clone(),
            epoch: self.epoch.clone(),
        }
    }

    /// One lease request: renew (zero gives up), make the plane follow, say where it stands.
    async fn renew(&self, ttl_ms: u32) -> Result<pb::LeaseReply, Status> {
        let ttl = Duration::from_millis(u64::from(ttl_ms));
        self.renew_for(ttl).await
    }

    /// Serves the lease datagrams on `sock` (see `seesaw_common::lease`) until `shutdown`:
    /// messages older than one already applied, and renewals already over (they waited in the
    /// socket while ncc was stopped), are ignored.
    async fn serve_lease_datagrams(
        self,
        sock: tokio::net::UnixDatagram,
        shutdown: CancellationToken,
    ) {
        use seesaw_common::lease::LeaseMsg;
        let mut buf = [0u8; 64];
        let mut last = 0u64;
        let mut malformed = 0u64;
        loop {
            let n = tokio::select! {
                () = shutdown.cancelled() => return,
                r = sock.recv(&mut buf) => match r {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::error!(error = %e, "lease socket failed; leases only over the API now");
                        return;
                    }
                },
            };
            let Some(msg) = LeaseMsg::decode(&buf[..n]) else {
                malformed += 1;
                if malformed == 1 || malformed.is_power_of_two() {
                    tracing::warn!(bytes = n, malformed, "ignoring a malformed lease datagram");
                }
                continue;
            };
            if msg.sent_at_us <= last {
                continue;
            }
            last = msg.sent_at_us;
            let left = msg.remaining(seesaw_common::lease::now_us());
            if msg.ttl_ms > 0 && left.is_zero() {
                continue;
            }
            if let Err(e) = self.renew_for(left).await {
                tracing::warn!(error = %e, "lease datagram refused");
            }
        }
    }

    /// Renews for `ttl` from now (zero gives up); the plane follows.
    async fn renew_for(&self, ttl: Duration) -> Result<pb::LeaseReply, Status> {
        if ttl > MAX_LEASE {
            return Err(Status::invalid_argument(format!(
                "lease of {ttl:?} is longer than {MAX_LEASE:?}"
            )));
        }
        let l = self
            .reconciler
            .call(|tx| Job::Renew(ttl, tx))
            .await
            .map_err(Status::from)?;
        Ok(pb::LeaseReply {
            fenced: l.fenced,
            fences: l.fences,
        })
    }
}

/// The id `Watch` sends: this process's boot id, mixed with the plane's epoch once the plane
/// has one, so a plane that lost its state (the proxy relay restarted) looks like a restarted
/// ncc to the engine, which then re-sends the desired state at once.
fn watch_id(epoch: u64) -> u64 {
    if epoch == 0 {
        return boot_id();
    }
    let mut h = twox_hash::XxHash64::with_seed(boot_id());
    std::hash::Hasher::write(&mut h, &epoch.to_le_bytes());
    std::hash::Hasher::finish(&h)
}

/// This process's boot id: its pid and start time mixed, different for every start.
fn boot_id() -> u64 {
    static BOOT: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *BOOT.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let mut h = twox_hash::XxHash64::with_seed(u64::from(std::process::id()));
        std::hash::Hasher::write(&mut h, &nanos.to_le_bytes());
        std::hash::Hasher::finish(&h)
    })
}

impl NccService {
    /// The VIPs (when the sender manages them) and the LB interface part of a request. The LB
    /// interface matters only where ncc manages that interface (privileged, and `[interface]
    /// lb` a real link); elsewhere it is not ncc's business, valid or not.
    fn interfaces(
        &self,
        vips_managed: bool,
        vips: &[pb::Vip],
        lb: Option<&pb::LbInterface>,
    ) -> Result<(Option<Vec<Vip>>, Option<LbWant>), Status> {
        let vips = vips_managed.then(|| vips_from_pb(vips)).transpose()?;
        let lb = match lb {
            Some(l) if self.reconciler.manages_lb() => Some(lb_from_pb(l)?),
            _ => None,
        };
        Ok((vips, lb))
    }

    /// Hands an apply to the reconciler thread and reports its changes.
    async fn run_apply(
        &self,
        job: impl FnOnce(oneshot::Sender<Result<Vec<String>, NccError>>) -> Job,
    ) -> Result<Response<pb::ApplyReply>, Status> {
        let changes = self
            .reconciler
            .call(job)
            .await
            .map_err(Status::from)?
            .map_err(Status::from)?;
        for c in &changes {
            tracing::info!("{c}");
        }
        Ok(Response::new(pb::ApplyReply { changes }))
    }
}

#[tonic::async_trait]
impl pb::ncc_server::Ncc for NccService {
    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::NccBoot, Status>>;
    type LeaseStream = tokio_stream::wrappers::ReceiverStream<Result<pb::LeaseReply, Status>>;

    async fn watch(&self, req: Request<pb::Empty>) -> Result<Response<Self::WatchStream>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        let mut epoch = self.epoch.clone();
        tokio::spawn(async move {
            loop {
                let e = epoch.as_mut().map_or(0, |r| *r.borrow_and_update());
                let boot = pb::NccBoot {
                    boot_id: watch_id(e),
                };
                if tx.send(Ok(boot)).await.is_err() {
                    return;
                }
                // Held until the engine hangs up (ncc's exit closes the stream for it); a new
                // plane epoch sends a new id on the same stream.
                match epoch.as_mut() {
                    Some(r) => tokio::select! {
                        c = r.changed() => if c.is_err() {
                            tx.closed().await;
                            return;
                        },
                        () = tx.closed() => return,
                    },
                    None => {
                        tx.closed().await;
                        return;
                    }
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn apply(
        &self,
        req: Request<pb::DesiredState>,
    ) -> Result<Response<pb::ApplyReply>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let req = req.into_inner();
        let (vips, lb) = self.interfaces(req.vips_managed, &req.vips, req.lb_interface.as_ref())?;
        let epoch = req.epoch;
        let services = services_from_pb(req)?;
        // Kernel work (netlink, `nft`, the relay's socket) blocks: the reconciler thread does it,
        // one job at a time. A fenced node keeps the request and applies its fenced form.
        let request = LastRequest {
            vips,
            lb,
            services,
            epoch,
        };
        self.run_apply(|tx| Job::Apply(request, tx)).await
    }

    async fn apply_delta(
        &self,
        req: Request<pb::DesiredDelta>,
    ) -> Result<Response<pb::ApplyReply>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let req = req.into_inner();
        let (vips, lb) = self.interfaces(req.vips_managed, &req.vips, req.lb_interface.as_ref())?;
        let (services, removed) = delta_from_pb(req.services, &req.removed)?;
        let delta = Delta {
            base: req.base_epoch,
            epoch: req.epoch,
            services,
            removed,
            vips,
            lb,
        };
        self.run_apply(|tx| Job::ApplyDelta(delta, tx)).await
    }

    async fn lease(
        &self,
        req: Request<tonic::Streaming<pb::LeaseRequest>>,
    ) -> Result<Response<Self::LeaseStream>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let mut inbound = req.into_inner();
        let (tx, rx) = tokio::sync::mpsc::channel(4);
        let me = self.shared();
        tokio::spawn(async move {
            while let Ok(Some(r)) = inbound.message().await {
                if tx.send(me.renew(r.ttl_ms).await).await.is_err() {
                    return;
                }
            }
        });
        Ok(Response::new(tokio_stream::wrappers::ReceiverStream::new(
            rx,
        )))
    }

    async fn bgp_set(
        &self,
        req: Request<pb::BgpRequest>,
    ) -> Result<Response<pb::ApplyReply>, Status> {
        seesaw_common::peer::require_trusted(&req)?;
        let (settings, routes) = bgp_request_from_pb(req.into_inner()).map_err(bgp_status)?;
        let mut bgp = self.bgp.lock().await;
        let changes = bgp.set(settings, routes).await.map_err(bgp_status)?;
        for c in &changes {
            tracing::info!("bgp: {c}");
        }
        Ok(Response::new(pb::ApplyReply { changes }))
    }

    async fn trace(
        &self,
        req: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::TraceReply>, Status> {
        let flow = crate::dataplane::trace::flow_from_pb(req.get_ref())
            .map_err(Status::invalid_argument)?;
        // A kernel plane may re-read its tables and conntrack: the reconciler thread does it.
        let t = self
            .reconciler
            .call(|tx| Job::Trace(flow, tx))
            .await
            .map_err(Status::from)?;
        Ok(Response::new(pb::TraceReply::from(t)))
    }

    async fn bgp_neighbors(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::BgpNeighborList>, Status> {
        let (neighbors, announced) = self
            .bgp
            .lock()
            .await
            .neighbors()
            .await
            .map_err(bgp_status)?;
        Ok(Response::new(pb::BgpNeighborList {
            neighbors: neighbors
                .into_iter()
                .map(|n| pb::BgpNeighbor {
                    address: n.address.to_string(),
                    peer_asn: n.peer_asn,
                    router_id: n.router_id,
                    state: n.state.as_str().to_owned(),
                    uptime_s: n.uptime.as_secs(),
                    messages_received: n.received,
                    messages_sent: n.sent,
                    updates_received: n.updates_received,
                    updates_sent: n.updates_sent,
                })
                .collect(),
            announced: announced.into_iter().map(crate::bgp::host_route).collect(),
        }))
    }

    async fn get_state(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::DataplaneState>, Status> {
        // The reconciler only hands out a reader: the counters are read on a blocking thread,
        // so a slow read never delays an apply.
        let kind = self.reconciler.kind().to_owned();
        let reader = self
            .reconciler
            .call(Job::Counters)
            .await
            .map_err(Status::from)?;
        let stats = tokio::task::spawn_blocking(reader)
            .await
            .map_err(|e| Status::internal(format!("reading counters failed: {e}")))?;
        let services = stats
            .into_iter()
            .map(|s| pb::ServiceState {
                address: s.service.key.vip.to_string(),
                protocol: pb::Protocol::from(s.service.key.proto) as i32,
                port: u32::from(s.service.key.port),
                scheduler: pb::Scheduler::from(s.service.scheduler) as i32,
                mode: pb::ForwardMode::from(s.service.mode) as i32,
                persistence_s: s.service.persistence,
                fwmark: s.service.key.fwmark,
                marked: s.service.marks.iter().map(marked_to_pb).collect(),
                table_hash: s
                    .table_hash
                    .map(|h| format!("{h:016x}"))
                    .unwrap_or_default(),
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
        Ok(Response::new(pb::DataplaneState { kind, services }))
    }
}
