//! ncc's gRPC API on its Unix socket. Every call is serialised through one mutex around the plane
//! and bounded by a deadline; only trusted callers (root or the socket owner, from `SO_PEERCRED`)
//! may change anything. Proto messages are converted to domain types here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use seesaw_proto::ncc as pb;
use tokio::net::UnixListener;
use tokio::sync::Mutex;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::NccError;
use crate::bgp::Bgp;
use crate::bgp::gobgp::GobgpSpeaker;
use crate::convert::{
    bgp_request_from_pb, bgp_status, lb_from_pb, marked_to_pb, mode_to_pb, proto_to_pb,
    sched_to_pb, services_from_pb, vips_from_pb,
};
use crate::dataplane::Dataplane;

/// Deadline of every call.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

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
    let mut svc = NccService::new(plane);
    if let Some(v) = vips {
        svc = svc.with_vips(v);
    }
    if let Some(l) = lb {
        svc = svc.with_lb(l);
    }
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
    /// BGP through GoBGP; its own lock, so a slow daemon never delays the data plane.
    bgp: Arc<Mutex<Bgp<GobgpSpeaker>>>,
    /// VIPs on interfaces (only when ncc may change the network); used under the plane lock.
    vips: Arc<std::sync::Mutex<Option<crate::kernel::vips::Vips>>>,
    /// The LB interface (only when ncc manages VIPs and seesaw.cfg names `[interface] lb`);
    /// locked before `vips`, under the plane lock.
    lb: Arc<std::sync::Mutex<Option<crate::kernel::lb::Lb>>>,
    /// The plane's epoch ([`Dataplane::epoch`]), mixed into the boot id `Watch` sends.
    epoch: Option<tokio::sync::watch::Receiver<u64>>,
}

impl<P: Dataplane> NccService<P> {
    /// Wraps a plane (for in-process tests).
    pub fn new(plane: P) -> Self {
        Self {
            epoch: plane.epoch(),
            plane: Arc::new(Mutex::new(plane)),
            bgp: Arc::new(Mutex::new(Bgp::new(Box::new(GobgpSpeaker::connect)))),
            vips: Arc::new(std::sync::Mutex::new(None)),
            lb: Arc::new(std::sync::Mutex::new(None)),
        }
    }

    /// Also drives the LB interface.
    #[must_use]
    pub fn with_lb(self, lb: crate::kernel::lb::Lb) -> Self {
        Self {
            lb: Arc::new(std::sync::Mutex::new(Some(lb))),
            ..self
        }
    }

    /// Also manages VIPs.
    #[must_use]
    pub fn with_vips(self, vips: crate::kernel::vips::Vips) -> Self {
        Self {
            vips: Arc::new(std::sync::Mutex::new(Some(vips))),
            ..self
        }
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

#[tonic::async_trait]
impl<P: Dataplane> pb::ncc_server::Ncc for NccService<P> {
    type WatchStream = tokio_stream::wrappers::ReceiverStream<Result<pb::NccBoot, Status>>;

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
        let vips = req
            .vips_managed
            .then(|| vips_from_pb(&req.vips))
            .transpose()?;
        // The LB interface part matters only where ncc manages that interface (privileged, and
        // `[interface] lb` a real link); elsewhere it is not ncc's business, valid or not.
        let manages_lb = self.lb.lock().map(|l| l.is_some()).unwrap_or(false);
        let lb_want = match &req.lb_interface {
            Some(l) if manages_lb => Some(lb_from_pb(l)?),
            _ => None,
        };
        let desired = services_from_pb(req)?;
        // Kernel work (netlink, `nft`, the relay's socket) blocks: it runs on a blocking thread,
        // never on the runtime's workers. The plane's lock serialises applies.
        let (plane, lb, vips_mgr) = (self.plane.clone(), self.lb.clone(), self.vips.clone());
        let changes = tokio::task::spawn_blocking(move || {
            let mut plane = plane.blocking_lock();
            apply_blocking(
                &mut *plane,
                &lb,
                &vips_mgr,
                vips,
                lb_want.as_ref(),
                &desired,
            )
        })
        .await
        .map_err(|e| Status::internal(format!("the apply task failed: {e}")))??;
        for c in &changes {
            tracing::info!("{c}");
        }
        Ok(Response::new(pb::ApplyReply { changes }))
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
        // The plane's lock is held only to take a reader: the counters are read without it
        // (and off the async workers), so a slow read never delays an apply.
        let (kind, reader) = {
            let plane = self.plane.lock().await;
            (plane.kind().to_owned(), plane.stats_reader())
        };
        let stats = tokio::task::spawn_blocking(reader)
            .await
            .map_err(|e| Status::internal(format!("reading counters failed: {e}")))?;
        let services = stats
            .into_iter()
            .map(|s| pb::ServiceState {
                address: s.service.key.vip.to_string(),
                protocol: proto_to_pb(s.service.key.proto) as i32,
                port: u32::from(s.service.key.port),
                scheduler: sched_to_pb(s.service.scheduler) as i32,
                mode: mode_to_pb(s.service.mode) as i32,
                persistence_s: s.service.persistence,
                fwmark: s.service.key.fwmark,
                marked: s.service.marks.iter().map(marked_to_pb).collect(),
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

/// One apply, under the plane's lock, on a blocking thread: the LB interface first (up before
/// VIPs are announced on it), then the VIPs (which leave the LB manager's own addresses alone),
/// then the data plane.
fn apply_blocking<P: Dataplane>(
    plane: &mut P,
    lb: &std::sync::Mutex<Option<crate::kernel::lb::Lb>>,
    vip_mgr: &std::sync::Mutex<Option<crate::kernel::vips::Vips>>,
    vips: Option<Vec<crate::kernel::vips::Vip>>,
    lb_want: Option<&crate::kernel::lb::LbWant>,
    desired: &[crate::model::Service],
) -> Result<Vec<String>, NccError> {
    let mut changes = Vec::new();
    {
        let mut lb = lb
            .lock()
            .map_err(|_| NccError::Plane("the LB manager panicked".into()))?;
        let mut keep = Vec::new();
        let mut vlan_nets = None;
        if let (Some(l), Some(w)) = (lb.as_mut(), lb_want) {
            let plan = l.apply(w, vips.as_deref().unwrap_or_default())?;
            changes.extend(plan.changes);
            keep = plan.keep;
            vlan_nets = Some(plan.vlan_nets);
        }
        if let Some(want) = vips {
            let mut mgr = vip_mgr
                .lock()
                .map_err(|_| NccError::Plane("the VIP manager panicked".into()))?;
            match mgr.as_mut() {
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
    }
    changes.extend(plane.apply_desired(desired)?);
    Ok(changes)
}
