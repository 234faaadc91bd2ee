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
use crate::bgp::gobgp::GobgpSpeaker;
use crate::bgp::{Bgp, BgpError};
use crate::dataplane::proxy::rules;
use crate::dataplane::{self, Dataplane};
use crate::model::{
    Cond, Dest, Field, ForwardMode, Op, Protocol, ProxyProtocol, Rule, RuleTarget, Scheduler,
    Service, ServiceKey, ServiceOpts, UdpMode,
};

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
}

impl<P> NccService<P> {
    /// Wraps a plane (for in-process tests).
    pub fn new(plane: P) -> Self {
        Self {
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
        tokio::spawn(async move {
            if tx
                .send(Ok(pb::NccBoot { boot_id: boot_id() }))
                .await
                .is_ok()
            {
                // Held until the engine hangs up; ncc's exit closes the stream for it.
                tx.closed().await;
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
        let mut plane = self.plane.lock().await;
        let mut changes = Vec::new();
        {
            // The LB interface first (up before VIPs are announced on it), then the VIPs,
            // which leave the LB manager's own addresses alone.
            let mut lb = self
                .lb
                .lock()
                .map_err(|_| NccError::Plane("the LB manager panicked".into()))?;
            let mut keep = Vec::new();
            let mut vlan_nets = None;
            if let (Some(l), Some(w)) = (lb.as_mut(), lb_want.as_ref()) {
                let plan = l.apply(w, vips.as_deref().unwrap_or_default())?;
                changes.extend(plan.changes);
                keep = plan.keep;
                vlan_nets = Some(plan.vlan_nets);
            }
            if let Some(want) = vips {
                let mut mgr = self
                    .vips
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
        changes.extend(
            dataplane::apply(&mut *plane, &desired)?
                .iter()
                .map(ToString::to_string),
        );
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

/// The VIPs of a request, collecting every problem.
pub fn vips_from_pb(vips: &[pb::Vip]) -> Result<Vec<crate::kernel::vips::Vip>, NccError> {
    use crate::kernel::vips::{Vip, VipKind};
    let mut errors = Vec::new();
    let mut out = Vec::new();
    for v in vips {
        let kind = match pb::VipKind::try_from(v.kind) {
            Ok(pb::VipKind::Unicast) => VipKind::Unicast,
            Ok(pb::VipKind::Dedicated) => VipKind::Dedicated,
            Ok(pb::VipKind::Anycast) => VipKind::Anycast,
            _ => {
                errors.push(format!("VIP {}: unknown kind {}", v.address, v.kind));
                continue;
            }
        };
        match v.address.parse::<IpAddr>() {
            Ok(addr) if !addr.is_unspecified() && !addr.is_multicast() => {
                out.push(Vip { addr, kind });
            }
            _ => errors.push(format!("VIP {:?} is not a unicast address", v.address)),
        }
    }
    if errors.is_empty() {
        out.sort();
        out.dedup_by_key(|v| v.addr);
        Ok(out)
    } else {
        Err(NccError::Invalid(errors))
    }
}

/// The LB interface of a request, collecting every problem.
pub fn lb_from_pb(l: &pb::LbInterface) -> Result<crate::kernel::lb::LbWant, NccError> {
    use crate::kernel::lb::{LbWant, VlanWant, vmac};
    let mut errors = Vec::new();
    let opt = |what: &str, v: &str, errors: &mut Vec<String>| -> Option<IpAddr> {
        if v.trim().is_empty() {
            return None;
        }
        match v.trim().parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() && !a.is_multicast() && !a.is_loopback() => Some(a),
            _ => {
                errors.push(format!(
                    "lb_interface.{what}: {v:?} is not a unicast address"
                ));
                None
            }
        }
    };
    let cluster_v4 = match opt("cluster_vip_ipv4", &l.cluster_vip_ipv4, &mut errors) {
        Some(IpAddr::V4(a)) => Some(a),
        Some(IpAddr::V6(a)) => {
            errors.push(format!("lb_interface.cluster_vip_ipv4: {a} is IPv6"));
            None
        }
        None => None,
    };
    let cluster_v6 = match opt("cluster_vip_ipv6", &l.cluster_vip_ipv6, &mut errors) {
        Some(IpAddr::V6(a)) => Some(a),
        Some(IpAddr::V4(a)) => {
            errors.push(format!("lb_interface.cluster_vip_ipv6: {a} is IPv4"));
            None
        }
        None => None,
    };
    if !(1..=250).contains(&l.routing_table_id) {
        errors.push(format!(
            "lb_interface.routing_table_id: {} is outside 1..250",
            l.routing_table_id
        ));
    }
    let vrid = u8::try_from(l.vrid).ok().filter(|v| *v > 0);
    if l.use_vmac && vrid.is_none() {
        errors.push(format!("lb_interface.vrid: {} is outside 1..255", l.vrid));
    }
    let host = |what: String, v: &str, errors: &mut Vec<String>| -> Option<(IpAddr, u8)> {
        if v.trim().is_empty() {
            return None;
        }
        let parsed = v.trim().split_once('/').and_then(|(a, p)| {
            let a = a.parse::<IpAddr>().ok()?;
            let p = p.parse::<u8>().ok()?;
            (p <= if a.is_ipv4() { 32 } else { 128 } && !a.is_unspecified()).then_some((a, p))
        });
        if parsed.is_none() {
            errors.push(format!("{what}: {v:?} is not an address/prefix"));
        }
        parsed
    };
    let mut vlans = Vec::new();
    for (i, v) in l.vlans.iter().enumerate() {
        let id = u16::try_from(v.id)
            .ok()
            .filter(|id| (1..=4094).contains(id));
        if id.is_none() {
            errors.push(format!(
                "lb_interface.vlans[{i}].id: {} is outside 1..4094",
                v.id
            ));
        }
        let v4 = match host(
            format!("lb_interface.vlans[{i}].host_ipv4"),
            &v.host_ipv4,
            &mut errors,
        ) {
            Some((IpAddr::V4(a), p)) => Some((a, p)),
            Some(_) => {
                errors.push(format!("lb_interface.vlans[{i}].host_ipv4: not IPv4"));
                None
            }
            None => None,
        };
        let v6 = match host(
            format!("lb_interface.vlans[{i}].host_ipv6"),
            &v.host_ipv6,
            &mut errors,
        ) {
            Some((IpAddr::V6(a), p)) => Some((a, p)),
            Some(_) => {
                errors.push(format!("lb_interface.vlans[{i}].host_ipv6: not IPv6"));
                None
            }
            None => None,
        };
        if let Some(id) = id {
            if vlans.iter().any(|w: &VlanWant| w.id == id) {
                errors.push(format!("lb_interface.vlans[{i}]: duplicate VLAN {id}"));
            }
            vlans.push(VlanWant { id, v4, v6 });
        }
    }
    vlans.sort();
    if !errors.is_empty() {
        return Err(NccError::Invalid(errors));
    }
    Ok(LbWant {
        up: l.up,
        cluster_v4,
        cluster_v6,
        table: l.routing_table_id,
        vmac: if l.use_vmac { vrid.map(vmac) } else { None },
        // Zero is off; anything else at least every 100 ms (no flood from a bad request).
        garp_interval: match l.garp_interval_ms {
            0 => Duration::ZERO,
            ms => Duration::from_millis(u64::from(ms.max(100))),
        },
        vlans,
    })
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
        let fwmark = s.fwmark != 0;
        let port = u16::try_from(s.port)
            .ok()
            .filter(|p| (*p > 0) != fwmark)
            .ok_or_else(|| format!("{path}.port: {} is not a port", s.port));
        let proto = match pb::Protocol::try_from(s.protocol) {
            _ if fwmark => Ok(Protocol::Tcp),
            Ok(pb::Protocol::Tcp) => Ok(Protocol::Tcp),
            Ok(pb::Protocol::Udp) => Ok(Protocol::Udp),
            _ => Err(format!("{path}.protocol: unspecified")),
        };
        let mut marks = Vec::new();
        for (j, m) in s.marked.iter().enumerate() {
            match marked_from_pb(m) {
                Some(k) => marks.push(k),
                None => errors.push(format!(
                    "{path}.marked[{j}]: {:?} port {} is not a VIP:port tuple",
                    m.address, m.port
                )),
            }
        }
        marks.sort();
        marks.dedup();
        let scheduler = match pb::Scheduler::try_from(s.scheduler) {
            Ok(pb::Scheduler::Rr) => Ok(Scheduler::Rr),
            Ok(pb::Scheduler::Wrr) => Ok(Scheduler::Wrr),
            Ok(pb::Scheduler::Lc) => Ok(Scheduler::Lc),
            Ok(pb::Scheduler::Wlc) => Ok(Scheduler::Wlc),
            Ok(pb::Scheduler::Sh) => Ok(Scheduler::Sh),
            Ok(pb::Scheduler::Mh) => Ok(Scheduler::Mh),
            Ok(pb::Scheduler::Dh) => Ok(Scheduler::Dh),
            Ok(pb::Scheduler::Random) => Ok(Scheduler::Random),
            Ok(pb::Scheduler::P2c) => Ok(Scheduler::P2c),
            _ => Err(format!("{path}.scheduler: unspecified")),
        };
        let mode = match pb::ForwardMode::try_from(s.mode) {
            Ok(pb::ForwardMode::Dsr) => Ok(ForwardMode::Dsr),
            Ok(pb::ForwardMode::Nat) => Ok(ForwardMode::Nat),
            Ok(pb::ForwardMode::Tun) => Ok(ForwardMode::Tun),
            _ => Err(format!("{path}.mode: unspecified")),
        };
        let opts = opts_from_pb(&path, s.proxy.as_ref(), &s.destinations);
        let group_of = |name: &str| match &opts {
            Ok(o) => o
                .groups
                .iter()
                .position(|g| g == name)
                .and_then(|i| u16::try_from(i).ok())
                .unwrap_or(0),
            Err(_) => 0,
        };
        let mut dests = Vec::new();
        for (j, d) in s.destinations.iter().enumerate() {
            let ip = d.address.parse::<IpAddr>();
            let p = u16::try_from(d.port).ok().filter(|p| (*p > 0) != fwmark);
            match (ip, p) {
                (Ok(ip), Some(p)) => dests.push(Dest {
                    addr: SocketAddr::new(ip, p),
                    weight: d.weight,
                    group: group_of(&d.group),
                    backup: d.backup,
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
        match (vip, port, proto, scheduler, mode, opts) {
            (Ok(vip), Ok(port), Ok(proto), Ok(scheduler), Ok(mode), Ok(opts)) => {
                let key = ServiceKey {
                    vip,
                    proto,
                    port,
                    fwmark: s.fwmark,
                };
                if fwmark && !vip.is_unspecified() {
                    errors.push(format!(
                        "{path}.address: a firewall-mark service's address is 0.0.0.0 or ::"
                    ));
                }
                if out.iter().any(|o| o.key == key) {
                    errors.push(format!("{path}: duplicate service {key}"));
                }
                out.push(Service {
                    key,
                    scheduler,
                    mode,
                    persistence: s.persistence_s,
                    dests,
                    opts,
                    marks,
                });
            }
            (a, b, c, e, f, g) => {
                errors.extend(
                    [a.err(), b.err(), c.err(), e.err(), f.err()]
                        .into_iter()
                        .flatten(),
                );
                errors.extend(g.err().into_iter().flatten());
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(NccError::Invalid(errors))
    }
}

fn marked_to_pb(k: &ServiceKey) -> pb::MarkedPort {
    pb::MarkedPort {
        address: k.vip.to_string(),
        protocol: proto_to_pb(k.proto) as i32,
        port: u32::from(k.port),
    }
}

fn marked_from_pb(m: &pb::MarkedPort) -> Option<ServiceKey> {
    let vip = m.address.parse::<IpAddr>().ok()?;
    let proto = match pb::Protocol::try_from(m.protocol) {
        Ok(pb::Protocol::Tcp) => Protocol::Tcp,
        Ok(pb::Protocol::Udp) => Protocol::Udp,
        _ => return None,
    };
    let port = u16::try_from(m.port).ok().filter(|p| *p > 0)?;
    Some(ServiceKey::new(vip, proto, port))
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
        Scheduler::Dh => pb::Scheduler::Dh,
        Scheduler::Random => pb::Scheduler::Random,
        Scheduler::P2c => pb::Scheduler::P2c,
    }
}

/// Converts and checks a service's proxy options. Group names are collected from the
/// destinations, the rules and the default (index 0 is always `""`); every rule condition is
/// checked here so a bad request is refused as a whole, before any plane sees it.
fn opts_from_pb(
    path: &str,
    p: Option<&pb::ProxyOptions>,
    dests: &[pb::Destination],
) -> Result<ServiceOpts, Vec<String>> {
    let mut o = ServiceOpts::default();
    let Some(p) = p else {
        if dests.iter().any(|d| !d.group.is_empty()) {
            let mut names: Vec<String> = dests.iter().map(|d| d.group.clone()).collect();
            names.sort();
            names.dedup();
            names.retain(|n| !n.is_empty());
            o.groups.extend(names);
        }
        return Ok(o);
    };
    let mut errors = Vec::new();
    let mut names: Vec<&str> = dests.iter().map(|d| d.group.as_str()).collect();
    names.extend(p.rule.iter().filter(|r| !r.deny).map(|r| r.group.as_str()));
    if !p.default_deny {
        names.push(&p.default_group);
    }
    names.sort_unstable();
    names.dedup();
    names.retain(|n| !n.is_empty());
    if names.len() >= usize::from(u16::MAX) {
        errors.push(format!("{path}.proxy: too many backend groups"));
    }
    o.groups.extend(names.iter().map(|n| (*n).to_owned()));
    let group = |name: &str| {
        o.groups
            .iter()
            .position(|g| g == name)
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(0)
    };
    let target = |deny: bool, name: &str| {
        if deny {
            RuleTarget::Deny
        } else {
            RuleTarget::Group(group(name))
        }
    };
    let mut rules = Vec::new();
    for (i, r) in p.rule.iter().enumerate() {
        let mut conds = Vec::new();
        for (j, c) in r.cond.iter().enumerate() {
            let cpath = format!("{path}.proxy.rule[{i}].cond[{j}]");
            let field = match pb::PayloadKey::try_from(c.key) {
                Ok(pb::PayloadKey::Bytes) => Field::Bytes {
                    offset: c.offset,
                    len: c.length,
                },
                Ok(pb::PayloadKey::Bits) => Field::Bits {
                    offset: c.offset,
                    len: c.length,
                },
                Ok(pb::PayloadKey::TlsSni) => Field::Sni,
                _ => {
                    errors.push(format!("{cpath}.key: unspecified"));
                    continue;
                }
            };
            let op = match pb::PayloadOp::try_from(c.op) {
                Ok(pb::PayloadOp::Eq) => Op::Eq,
                Ok(pb::PayloadOp::Ne) => Op::Ne,
                Ok(pb::PayloadOp::Lt) => Op::Lt,
                Ok(pb::PayloadOp::Le) => Op::Le,
                Ok(pb::PayloadOp::Gt) => Op::Gt,
                Ok(pb::PayloadOp::Ge) => Op::Ge,
                Ok(pb::PayloadOp::Prefix) => Op::Prefix,
                Ok(pb::PayloadOp::Suffix) => Op::Suffix,
                Ok(pb::PayloadOp::In) => Op::In,
                _ => {
                    errors.push(format!("{cpath}.op: unspecified"));
                    continue;
                }
            };
            let cond = Cond {
                field,
                op,
                mask: c.mask.clone(),
                values: c.value.clone(),
            };
            if let Err(e) = rules::check(&cond) {
                errors.push(format!("{cpath}: {e}"));
            }
            conds.push(cond);
        }
        rules.push(Rule {
            conds,
            target: target(r.deny, &r.group),
        });
    }
    if rules.len() > rules::MAX_RULES {
        errors.push(format!("{path}.proxy.rule: too many rules"));
    }
    o.rules = rules;
    o.default_target = target(p.default_deny, &p.default_group);
    if p.hash_length > 0 {
        if p.hash_length > 64 || p.hash_offset > rules::MAX_OFFSET {
            errors.push(format!(
                "{path}.proxy: hash key {}:{} is out of range",
                p.hash_offset, p.hash_length
            ));
        }
        o.hash_key = Some((p.hash_offset, p.hash_length));
    }
    o.first_bytes = p.first_bytes.min(16_384);
    o.first_bytes_wait_ms = p.first_bytes_wait_ms;
    o.drain_timeout_ms = p.drain_timeout_ms;
    o.proxy_protocol = match pb::ProxyProtocol::try_from(p.proxy_protocol) {
        Ok(pb::ProxyProtocol::V1) => ProxyProtocol::V1,
        Ok(pb::ProxyProtocol::V2) => ProxyProtocol::V2,
        _ => ProxyProtocol::Off,
    };
    o.udp_mode = match pb::UdpMode::try_from(p.udp_mode) {
        Ok(pb::UdpMode::PerPacket) => UdpMode::PerPacket,
        _ => UdpMode::PerFlow,
    };
    if p.udp_idle_timeout_ms > 0 {
        o.udp_idle_timeout_ms = p.udp_idle_timeout_ms;
    }
    if p.udp_max_flows > 0 {
        o.udp_max_flows = p.udp_max_flows;
    }
    if errors.is_empty() {
        Ok(o)
    } else {
        Err(errors)
    }
}

/// The proto form of a service's proxy options (`None` for the defaults).
pub fn opts_to_pb(s: &Service) -> Option<pb::ProxyOptions> {
    let o = &s.opts;
    if *o == ServiceOpts::default() {
        return None;
    }
    let name = |g: u16| o.groups.get(usize::from(g)).cloned().unwrap_or_default();
    let (default_group, default_deny) = match &o.default_target {
        RuleTarget::Group(g) => (name(*g), false),
        RuleTarget::Deny => (String::new(), true),
    };
    Some(pb::ProxyOptions {
        rule: o
            .rules
            .iter()
            .map(|r| {
                let (group, deny) = match &r.target {
                    RuleTarget::Group(g) => (name(*g), false),
                    RuleTarget::Deny => (String::new(), true),
                };
                pb::PayloadRule {
                    cond: r
                        .conds
                        .iter()
                        .map(|c| {
                            let (key, offset, length) = match c.field {
                                Field::Bytes { offset, len } => {
                                    (pb::PayloadKey::Bytes, offset, len)
                                }
                                Field::Bits { offset, len } => (pb::PayloadKey::Bits, offset, len),
                                Field::Sni => (pb::PayloadKey::TlsSni, 0, 0),
                            };
                            pb::PayloadCond {
                                key: key as i32,
                                offset,
                                length,
                                op: match c.op {
                                    Op::Eq => pb::PayloadOp::Eq,
                                    Op::Ne => pb::PayloadOp::Ne,
                                    Op::Lt => pb::PayloadOp::Lt,
                                    Op::Le => pb::PayloadOp::Le,
                                    Op::Gt => pb::PayloadOp::Gt,
                                    Op::Ge => pb::PayloadOp::Ge,
                                    Op::Prefix => pb::PayloadOp::Prefix,
                                    Op::Suffix => pb::PayloadOp::Suffix,
                                    Op::In => pb::PayloadOp::In,
                                } as i32,
                                value: c.values.clone(),
                                mask: c.mask.clone(),
                            }
                        })
                        .collect(),
                    group,
                    deny,
                }
            })
            .collect(),
        default_group,
        default_deny,
        hash_offset: o.hash_key.map_or(0, |k| k.0),
        hash_length: o.hash_key.map_or(0, |k| k.1),
        first_bytes: o.first_bytes,
        first_bytes_wait_ms: o.first_bytes_wait_ms,
        drain_timeout_ms: o.drain_timeout_ms,
        proxy_protocol: match o.proxy_protocol {
            ProxyProtocol::Off => pb::ProxyProtocol::Off,
            ProxyProtocol::V1 => pb::ProxyProtocol::V1,
            ProxyProtocol::V2 => pb::ProxyProtocol::V2,
        } as i32,
        udp_mode: match o.udp_mode {
            UdpMode::PerFlow => pb::UdpMode::PerFlow,
            UdpMode::PerPacket => pb::UdpMode::PerPacket,
        } as i32,
        udp_idle_timeout_ms: o.udp_idle_timeout_ms,
        udp_max_flows: o.udp_max_flows,
    })
}

fn mode_to_pb(m: ForwardMode) -> pb::ForwardMode {
    match m {
        ForwardMode::Dsr => pb::ForwardMode::Dsr,
        ForwardMode::Nat => pb::ForwardMode::Nat,
        ForwardMode::Tun => pb::ForwardMode::Tun,
    }
}

fn bgp_status(e: BgpError) -> Status {
    match e {
        BgpError::Invalid(_) | BgpError::Address(_) => Status::invalid_argument(e.to_string()),
        BgpError::Conflict(_) => Status::failed_precondition(e.to_string()),
        BgpError::Daemon { .. } => Status::unavailable(e.to_string()),
    }
}

/// The domain form of a `BgpSet` request: every address checked.
pub fn bgp_request_from_pb(
    r: pb::BgpRequest,
) -> Result<(crate::bgp::Settings, std::collections::BTreeSet<IpAddr>), BgpError> {
    let s = r
        .settings
        .ok_or_else(|| BgpError::Invalid("no settings".to_owned()))?;
    let ip = |what: &str, v: &str| -> Result<IpAddr, BgpError> {
        v.trim()
            .parse()
            .map_err(|_| BgpError::Invalid(format!("{what} {v:?} is not an IP address")))
    };
    let opt = |what: &str, v: &str| -> Result<Option<IpAddr>, BgpError> {
        if v.trim().is_empty() {
            Ok(None)
        } else {
            ip(what, v).map(Some)
        }
    };
    if s.gobgp_api.trim().is_empty() {
        return Err(BgpError::Address(s.gobgp_api));
    }
    if s.local_asn == 0 || s.remote_asn == 0 {
        return Err(BgpError::Invalid(format!(
            "ASNs must be set (local {}, remote {})",
            s.local_asn, s.remote_asn
        )));
    }
    let router_id = match ip("router id", &s.router_id)? {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => {
            return Err(BgpError::Invalid(format!(
                "router id {} is not IPv4",
                s.router_id
            )));
        }
    };
    let next_hop_v4 = match opt("IPv4 next hop", &s.next_hop_ipv4)? {
        None => None,
        Some(IpAddr::V4(a)) => Some(a),
        Some(other) => return Err(BgpError::Invalid(format!("IPv4 next hop {other} is IPv6"))),
    };
    let next_hop_v6 = match opt("IPv6 next hop", &s.next_hop_ipv6)? {
        None => None,
        Some(IpAddr::V6(a)) => Some(a),
        Some(other) => return Err(BgpError::Invalid(format!("IPv6 next hop {other} is IPv4"))),
    };
    let peers = s
        .peers
        .iter()
        .map(|p| ip("peer", p))
        .collect::<Result<Vec<_>, _>>()?;
    let routes = r
        .routes
        .iter()
        .map(|p| ip("route", p))
        .collect::<Result<_, _>>()?;
    Ok((
        crate::bgp::Settings {
            api: s.gobgp_api.trim().to_owned(),
            local_asn: s.local_asn,
            remote_asn: s.remote_asn,
            peers,
            router_id,
            next_hop_v4,
            next_hop_v6,
        },
        routes,
    ))
}
