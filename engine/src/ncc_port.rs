//! The `Ncc` port: the only thing the engine needs from ncc. `GrpcNcc` adapts it onto the ncc's
//! gRPC API (converting domain ↔ proto here, at the edge); `FakeNcc` is a stateful model for tests.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use seesaw_proto::ncc as pb;

use crate::desired::{DesiredState, DestStats, ServiceKey, ServiceSpec};
use crate::model::{ForwardMode, PayloadKey, PayloadOp, Protocol, ProxyOpts};
use crate::state::DestSpecKey;

/// Why a call to ncc failed.
#[derive(Debug, thiserror::Error)]
pub enum NccError {
    /// ncc is not reachable (not started yet, restarting): retry later.
    #[error("ncc unavailable: {0}")]
    Unavailable(String),
    /// ncc refused the request: retrying the same request will not help.
    #[error("ncc refused the request: {0}")]
    Refused(String),
}

impl NccError {
    /// A call's reply message, or its failure as an [`NccError`].
    fn answer<T>(r: Result<tonic::Response<T>, tonic::Status>) -> Result<T, Self> {
        r.map(tonic::Response::into_inner)
            .map_err(|s| Self::from_status(&s))
    }

    fn from_status(s: &tonic::Status) -> Self {
        match s.code() {
            tonic::Code::InvalidArgument
            | tonic::Code::FailedPrecondition
            | tonic::Code::Aborted => Self::Refused(s.message().to_owned()),
            _ => Self::Unavailable(format!("{}: {}", s.code(), s.message())),
        }
    }
}

/// Counters per (service, destination) and the plane's kind.
#[derive(Debug, Clone)]
pub struct PlaneStats {
    /// The plane's kind.
    pub kind: PlaneKind,
    /// Counters.
    pub dests: HashMap<(ServiceKey, DestSpecKey), DestStats>,
    /// The firewall-mark services the plane holds (their marks are adopted at engine start).
    pub fwmarks: Vec<crate::state::HeldFwmark>,
    /// Maglev table fingerprints by service (mh on the proxy and nftables planes).
    pub tables: HashMap<ServiceKey, u64>,
}

/// The kind of data plane ncc runs, parsed where ncc's reply arrives: a kind the engine does not
/// know is an error there, never a silent default inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaneKind {
    /// Kernel IPVS.
    Ipvs,
    /// nftables.
    Nftables,
    /// The userspace proxy relay.
    Proxy,
    /// ncc's test plane.
    Fake,
}

impl PlaneKind {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ipvs => "ipvs",
            Self::Nftables => "nftables",
            Self::Proxy => "proxy",
            Self::Fake => "fake",
        }
    }

    /// Parses the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Ipvs, Self::Nftables, Self::Proxy, Self::Fake]
            .into_iter()
            .find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for PlaneKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the engine needs from ncc.
pub trait Ncc: Send + Sync + 'static {
    /// Makes the data plane hold exactly `desired`; returns the changes made.
    fn apply(
        &self,
        desired: &Arc<DesiredState>,
    ) -> impl Future<Output = Result<Vec<String>, NccError>> + Send;
    /// Reads the plane's counters.
    fn stats(&self) -> impl Future<Output = Result<PlaneStats, NccError>> + Send;
    /// Sends ncc's boot id on `tx` whenever a connection to ncc is made (so a new value means
    /// ncc restarted), reconnecting every [`WATCH_RETRY`] while ncc is away; returns when `tx`
    /// closes.
    fn watch(&self, tx: tokio::sync::mpsc::Sender<u64>) -> impl Future<Output = ()> + Send;
    /// What the plane would do with a flow (`seesaw trace`); read-only. By default: refused.
    fn trace(
        &self,
        q: crate::trace::FlowQuery,
    ) -> impl Future<Output = Result<crate::trace::PlaneTrace, NccError>> + Send {
        let _ = q;
        async { Err(NccError::Refused("this ncc cannot trace flows".to_owned())) }
    }
}

/// How often the engine tries to reach a restarting ncc's watch stream.
pub const WATCH_RETRY: std::time::Duration = std::time::Duration::from_millis(20);

// === impl GrpcNcc ===

/// The `Ncc` port over ncc's gRPC API on its Unix socket.
#[derive(Debug, Clone)]
pub struct GrpcNcc {
    client: pb::ncc_client::NccClient<tonic::transport::Channel>,
    sent: Arc<Mutex<Sent>>,
}

/// What the next apply can build on.
#[derive(Debug)]
struct Sent {
    /// The last request ncc confirmed, by its epoch (`None` until one was).
    base: Option<(u64, Arc<DesiredState>)>,
    /// The next request's epoch (started from the clock, so a restarted engine never names a
    /// request as its predecessor did).
    next: u64,
    /// ncc has `ApplyDelta` (until it answers UNIMPLEMENTED).
    deltas: bool,
    /// Requests ncc took: deltas, whole states.
    taken: (u64, u64),
}

impl GrpcNcc {
    /// A client on `channel` (see `seesaw_common::uds::channel`).
    pub fn new(channel: tonic::transport::Channel) -> Self {
        let start = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX / 2));
        Self {
            client: pb::ncc_client::NccClient::new(channel)
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
            sent: Arc::new(Mutex::new(Sent {
                base: None,
                next: start.max(1),
                deltas: true,
                taken: (0, 0),
            })),
        }
    }

    /// The base for the next request and the next request's epoch. A failed call keeps the
    /// base: whether or not ncc took the request, it refuses a delta on a request it does not
    /// hold, and the whole state follows.
    fn next_request(&self) -> (Option<(u64, Arc<DesiredState>)>, u64) {
        let mut s = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        let epoch = s.next;
        s.next = s.next.wrapping_add(1).max(1);
        (s.base.clone().filter(|_| s.deltas), epoch)
    }

    fn confirmed(&self, epoch: u64, desired: &Arc<DesiredState>, delta: bool) {
        let mut s = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        s.base = Some((epoch, Arc::clone(desired)));
        if delta {
            s.taken.0 += 1;
        } else {
            s.taken.1 += 1;
        }
    }

    /// How many requests ncc took as deltas and as whole states.
    pub fn taken(&self) -> (u64, u64) {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).taken
    }

    /// Sends what changed since `base`: `Ok(None)` when ncc cannot take it (no `ApplyDelta`, or
    /// it holds another request) and the whole state must go.
    async fn apply_delta(
        &self,
        (base, old): (u64, Arc<DesiredState>),
        desired: &Arc<DesiredState>,
        epoch: u64,
    ) -> Result<Option<Vec<String>>, NccError> {
        let mut client = self.client.clone();
        match client
            .apply_delta(delta_to_pb(&old, desired, base, epoch))
            .await
        {
            Ok(r) => Ok(Some(r.into_inner().changes)),
            Err(s) if s.code() == tonic::Code::Unimplemented => {
                tracing::info!("ncc has no ApplyDelta: sending whole states");
                self.sent.lock().unwrap_or_else(|e| e.into_inner()).deltas = false;
                Ok(None)
            }
            Err(s) if s.code() == tonic::Code::NotFound => {
                tracing::info!("{}; sending the whole state", s.message());
                Ok(None)
            }
            Err(s) => Err(NccError::from_status(&s)),
        }
    }
}

/// What changed from `old` to `new`, as ncc's `DesiredDelta` on the request named `base`:
/// services added or changed (whole), the keys of services gone, and the VIPs and the LB
/// interface (whole) only when they changed.
pub fn delta_to_pb(
    old: &DesiredState,
    new: &DesiredState,
    base: u64,
    epoch: u64,
) -> pb::DesiredDelta {
    // Both lists come from the same walk over the config, so a service usually sits where it
    // sat: compare in step, and look keys up only when the lists' keys differ.
    let mut services = Vec::new();
    let mut removed = Vec::new();
    let same_keys = old.services.len() == new.services.len()
        && old
            .services
            .iter()
            .zip(&new.services)
            .all(|(o, n)| o.key == n.key);
    if same_keys {
        for (o, n) in old.services.iter().zip(&new.services) {
            if o != n {
                services.push(service_to_pb(n));
            }
        }
    } else {
        let held: HashMap<ServiceKey, &Arc<ServiceSpec>> =
            old.services.iter().map(|s| (s.key, s)).collect();
        let kept: std::collections::HashSet<ServiceKey> =
            new.services.iter().map(|s| s.key).collect();
        for s in &new.services {
            // Equal `Arc`s (a service the core did not evaluate again) compare by address.
            if held.get(&s.key).is_none_or(|o| *o != s) {
                services.push(service_to_pb(s));
            }
        }
        removed = old
            .services
            .iter()
            .filter(|s| !kept.contains(&s.key))
            .map(|s| {
                let p = service_to_pb(s);
                pb::ServiceRef {
                    address: p.address,
                    protocol: p.protocol,
                    port: p.port,
                    fwmark: p.fwmark,
                }
            })
            .collect();
    }
    // The VIPs and the LB interface only when they changed (unset: the base's stand).
    let whole = desired_to_pb(&DesiredState {
        services: Vec::new(),
        vips: if new.vips == old.vips {
            Vec::new()
        } else {
            new.vips.clone()
        },
        lb: new.lb.clone().filter(|l| old.lb.as_ref() != Some(l)),
    });
    pb::DesiredDelta {
        base_epoch: base,
        epoch,
        services,
        removed,
        vips_managed: new.vips != old.vips,
        vips: whole.vips,
        lb_interface: whole.lb_interface,
    }
}

impl Ncc for GrpcNcc {
    async fn watch(&self, tx: tokio::sync::mpsc::Sender<u64>) {
        while !tx.is_closed() {
            let mut client = self.client.clone();
            if let Ok(reply) = client.watch(pb::Empty {}).await {
                let mut stream = reply.into_inner();
                while let Ok(Some(boot)) = stream.message().await {
                    if tx.send(boot.boot_id).await.is_err() {
                        return;
                    }
                }
            }
            tokio::time::sleep(WATCH_RETRY).await;
        }
    }

    async fn trace(
        &self,
        q: crate::trace::FlowQuery,
    ) -> Result<crate::trace::PlaneTrace, NccError> {
        let mut client = self.client.clone();
        let protocol = pb::Protocol::from(q.proto);
        let r = NccError::answer(
            client
                .trace(pb::TraceRequest {
                    protocol: protocol.into(),
                    client: q.client.to_string(),
                    vip: q.vip.to_string(),
                })
                .await,
        )?;
        Ok(crate::trace::PlaneTrace::from(r))
    }

    /// A delta on the last request ncc confirmed when there is one, else the whole state.
    async fn apply(&self, desired: &Arc<DesiredState>) -> Result<Vec<String>, NccError> {
        let (base, epoch) = self.next_request();
        if let Some(base) = base
            && let Some(changes) = self.apply_delta(base, desired, epoch).await?
        {
            self.confirmed(epoch, desired, true);
            return Ok(changes);
        }
        let mut req = desired_to_pb(desired);
        req.epoch = epoch;
        let mut client = self.client.clone();
        let reply = NccError::answer(client.apply(req).await)?;
        self.confirmed(epoch, desired, false);
        Ok(reply.changes)
    }

    async fn stats(&self) -> Result<PlaneStats, NccError> {
        let mut client = self.client.clone();
        let state = NccError::answer(client.get_state(pb::Empty {}).await)?;
        let mut dests = HashMap::new();
        let mut fwmarks = Vec::new();
        let mut tables = HashMap::new();
        for s in state.services {
            if s.fwmark != 0
                && let Ok(vip) = s.address.parse::<IpAddr>()
            {
                fwmarks.push(crate::state::HeldFwmark {
                    key: ServiceKey::fwmark(vip.is_ipv6(), s.fwmark),
                    mode: ForwardMode::from_pb(s.mode).unwrap_or(ForwardMode::Nat),
                    marks: s
                        .marked
                        .iter()
                        .filter_map(|m| {
                            Some(ServiceKey::new(
                                m.address.parse().ok()?,
                                Protocol::from_pb(m.protocol)?,
                                u16::try_from(m.port).ok()?,
                            ))
                        })
                        .collect(),
                    dests: s
                        .destinations
                        .iter()
                        .filter_map(|d| d.address.parse().ok())
                        .collect(),
                });
            }
            let (Ok(vip), Some(proto), Ok(port)) = (
                s.address.parse::<IpAddr>(),
                Protocol::from_pb(s.protocol),
                u16::try_from(s.port),
            ) else {
                continue;
            };
            let key = ServiceKey {
                vip,
                proto,
                port,
                fwmark: s.fwmark,
            };
            if let Ok(h) = u64::from_str_radix(&s.table_hash, 16) {
                tables.insert(key, h);
            }
            for d in s.destinations {
                let (Ok(ip), Ok(dport)) = (d.address.parse::<IpAddr>(), u16::try_from(d.port))
                else {
                    continue;
                };
                dests.insert(
                    (key, (ip, dport)),
                    DestStats {
                        active_conns: d.active_conns,
                        total_conns: d.total_conns,
                        bytes_in: d.bytes_in,
                        bytes_out: d.bytes_out,
                    },
                );
            }
        }
        let kind = PlaneKind::parse(&state.kind).ok_or_else(|| {
            NccError::Refused(format!(
                "ncc reports an unknown data plane kind {:?}",
                state.kind.chars().take(32).collect::<String>()
            ))
        })?;
        Ok(PlaneStats {
            kind,
            dests,
            fwmarks,
            tables,
        })
    }
}

/// The desired state as ncc's gRPC message (also used by the reconcile snapshot tests).
pub fn desired_to_pb(desired: &DesiredState) -> pb::DesiredState {
    pb::DesiredState {
        services: desired.services.iter().map(|s| service_to_pb(s)).collect(),
        vips: desired
            .vips
            .iter()
            .map(|v| pb::Vip {
                address: v.ip.to_string(),
                kind: match v.kind {
                    crate::model::VipKind::Unicast => pb::VipKind::Unicast,
                    crate::model::VipKind::Dedicated => pb::VipKind::Dedicated,
                    crate::model::VipKind::Anycast => pb::VipKind::Anycast,
                } as i32,
            })
            .collect(),
        vips_managed: true,
        lb_interface: desired.lb.as_ref().map(lb_to_pb),
        epoch: 0,
    }
}

fn lb_to_pb(lb: &crate::desired::LbDesired) -> pb::LbInterface {
    let opt = |a: Option<String>| a.unwrap_or_default();
    pb::LbInterface {
        up: lb.up,
        cluster_vip_ipv4: opt(lb.cluster_vip_v4.map(|a| a.to_string())),
        cluster_vip_ipv6: opt(lb.cluster_vip_v6.map(|a| a.to_string())),
        routing_table_id: u32::from(lb.routing_table),
        use_vmac: lb.use_vmac,
        vrid: u32::from(lb.vrid),
        garp_interval_ms: u32::try_from(lb.garp_interval.as_millis()).unwrap_or(u32::MAX),
        vlans: lb
            .vlans
            .iter()
            .map(|v| pb::Vlan {
                id: u32::from(v.id),
                host_ipv4: opt(v.ipv4.map(|(a, l)| format!("{a}/{l}"))),
                host_ipv6: opt(v.ipv6.map(|(a, l)| format!("{a}/{l}"))),
            })
            .collect(),
    }
}

fn service_to_pb(s: &ServiceSpec) -> pb::Service {
    pb::Service {
        address: s.key.vip.to_string(),
        protocol: pb::Protocol::from(s.key.proto) as i32,
        port: u32::from(s.key.port),
        scheduler: pb::Scheduler::from(s.scheduler) as i32,
        mode: pb::ForwardMode::from(s.mode) as i32,
        persistence_s: s.persistence,
        destinations: s
            .dests
            .iter()
            .map(|d| pb::Destination {
                address: d.ip.to_string(),
                port: u32::from(d.port),
                weight: d.weight,
                group: d.group.clone(),
                backup: d.backup,
            })
            .collect(),
        proxy: proxy_to_pb(&s.proxy),
        one_packet: s.kernel.one_packet,
        lthreshold: s.kernel.lthreshold,
        uthreshold: s.kernel.uthreshold,
        fwmark: s.key.fwmark,
        marked: s
            .marks
            .iter()
            .map(|m| pb::MarkedPort {
                address: m.vip.to_string(),
                protocol: pb::Protocol::from(m.proto) as i32,
                port: u32::from(m.port),
            })
            .collect(),
        maglev_anchor: s.anchor.as_deref().map(|a| {
            let (keys, slots) = a.encode();
            pb::MaglevAnchor { keys, slots }
        }),
    }
}

/// The proxy options in ncc's form; `None` when they are the defaults.
fn proxy_to_pb(o: &ProxyOpts) -> Option<pb::ProxyOptions> {
    if *o == ProxyOpts::default() {
        return None;
    }
    let rule = o
        .rules
        .iter()
        .map(|r| pb::PayloadRule {
            cond: r
                .conds
                .iter()
                .map(|c| pb::PayloadCond {
                    key: match c.key {
                        PayloadKey::Bytes => pb::PayloadKey::Bytes,
                        PayloadKey::Bits => pb::PayloadKey::Bits,
                        PayloadKey::TlsSni => pb::PayloadKey::TlsSni,
                    } as i32,
                    offset: c.offset,
                    length: c.length,
                    op: match c.op {
                        PayloadOp::Eq => pb::PayloadOp::Eq,
                        PayloadOp::Ne => pb::PayloadOp::Ne,
                        PayloadOp::Lt => pb::PayloadOp::Lt,
                        PayloadOp::Le => pb::PayloadOp::Le,
                        PayloadOp::Gt => pb::PayloadOp::Gt,
                        PayloadOp::Ge => pb::PayloadOp::Ge,
                        PayloadOp::Prefix => pb::PayloadOp::Prefix,
                        PayloadOp::Suffix => pb::PayloadOp::Suffix,
                        PayloadOp::In => pb::PayloadOp::In,
                    } as i32,
                    value: c.values.clone(),
                    mask: c.mask.clone(),
                })
                .collect(),
            group: r.group.clone().unwrap_or_default(),
            deny: r.group.is_none(),
        })
        .collect();
    Some(pb::ProxyOptions {
        rule,
        default_group: o.default_group.clone().unwrap_or_default(),
        default_deny: o.default_group.is_none(),
        hash_offset: o.hash_key.map_or(0, |k| k.0),
        hash_length: o.hash_key.map_or(0, |k| k.1),
        first_bytes: o.first_bytes,
        first_bytes_wait_ms: o.first_bytes_timeout_ms,
        drain_timeout_ms: o.drain_timeout_s.saturating_mul(1000),
        proxy_protocol: match o.proxy_protocol {
            1 => pb::ProxyProtocol::V1,
            2 => pb::ProxyProtocol::V2,
            _ => pb::ProxyProtocol::Off,
        } as i32,
        udp_mode: if o.udp_per_packet {
            pb::UdpMode::PerPacket
        } else {
            pb::UdpMode::PerFlow
        } as i32,
        udp_idle_timeout_ms: o.udp_idle_timeout_s.saturating_mul(1000),
        udp_max_flows: o.udp_max_flows,
    })
}

mod fake;
pub use fake::FakeNcc;

// === BGP ===

/// What the engine needs from ncc for BGP (announcements through ncc's GoBGP driver).
pub trait NccBgp: Send + Sync + 'static {
    /// Makes the speaker announce exactly `desired.routes`; returns the changes made.
    fn bgp_set(
        &self,
        desired: &crate::state::BgpDesired,
    ) -> impl Future<Output = Result<Vec<String>, NccError>> + Send;
    /// The speaker's neighbours and the routes it announces.
    fn bgp_neighbors(
        &self,
    ) -> impl Future<Output = Result<(Vec<crate::state::BgpNeighborView>, Vec<String>), NccError>> + Send;
}

/// The BGP request as ncc's gRPC message.
pub fn bgp_to_pb(d: &crate::state::BgpDesired) -> pb::BgpRequest {
    pb::BgpRequest {
        settings: Some(pb::BgpSettings::from(&d.settings)),
        routes: d.routes.iter().map(ToString::to_string).collect(),
    }
}

impl NccBgp for GrpcNcc {
    async fn bgp_set(&self, desired: &crate::state::BgpDesired) -> Result<Vec<String>, NccError> {
        let mut client = self.client.clone();
        let reply = NccError::answer(client.bgp_set(bgp_to_pb(desired)).await)?;
        Ok(reply.changes)
    }

    async fn bgp_neighbors(
        &self,
    ) -> Result<(Vec<crate::state::BgpNeighborView>, Vec<String>), NccError> {
        let mut client = self.client.clone();
        let r = NccError::answer(client.bgp_neighbors(pb::Empty {}).await)?;
        Ok((r.neighbors, r.announced))
    }
}

#[cfg(test)]
mod tests {
    use super::NccError;

    /// A request the plane failed (ncc answers Aborted, e.g. "Too many open files") is reported as
    /// refused, not as ncc being unreachable; transport failures stay "unavailable".
    #[test]
    fn plane_failures_are_refusals_and_transport_failures_unavailability() {
        let e = NccError::from_status(&tonic::Status::aborted(
            "data plane error: cannot listen on 127.0.0.1:80/TCP: Too many open files",
        ));
        assert_eq!(
            e.to_string(),
            "ncc refused the request: data plane error: cannot listen on 127.0.0.1:80/TCP: Too many open files"
        );
        let e = NccError::from_status(&tonic::Status::unavailable("connection refused"));
        assert!(matches!(e, NccError::Unavailable(_)), "{e}");
    }
}
