//! The engine's gRPC API on its Unix socket. Reads come from the latest [`Snapshot`]; writes and
//! reports become [`Event`]s for the core loop. Trust is decided from `SO_PEERCRED`
//! (`seesaw_common::peer`): writes and the ha/healthcheck calls need root or the socket owner.
//! Proto types are built here and nowhere else in the engine.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use seesaw_common::peer::require_trusted;
use seesaw_proto::engine as pb;
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::core::{Event, Snapshot};
use crate::model::CheckKind;
use crate::state::{CheckResult, HaView, ReloadOutcome};

/// Serves the API until `shutdown` is cancelled.
pub async fn serve(
    listener: UnixListener,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let svc = EngineService { snapshot, events };
    tonic::transport::Server::builder()
        .add_service(pb::engine_server::EngineServer::new(svc))
        .serve_with_incoming_shutdown(
            seesaw_common::uds::incoming(listener),
            shutdown.cancelled_owned(),
        )
        .await
}

struct EngineService {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
}

impl EngineService {
    fn snap(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    async fn send(&self, ev: Event) -> Result<(), Status> {
        self.events
            .send(ev)
            .await
            .map_err(|_| Status::unavailable("engine is shutting down"))
    }
}

fn ms(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(i64::MAX)
}

fn from_ms(ms: i64) -> Option<SystemTime> {
    (ms > 0).then(|| UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0)))
}

#[tonic::async_trait]
impl pb::engine_server::Engine for EngineService {
    async fn cluster_status(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::ClusterStatus>, Status> {
        let s = self.snap();
        Ok(Response::new(pb::ClusterStatus {
            version: 2,
            site: s.site.clone(),
            dataplane: s.dataplane.clone(),
            nodes: s
                .nodes
                .iter()
                .map(|(n, local)| pb::Node {
                    hostname: n.host.hostname.clone(),
                    ipv4: n.host.ipv4.map(|(a, _)| a.to_string()).unwrap_or_default(),
                    ipv6: n.host.ipv6.map(|(a, _)| a.to_string()).unwrap_or_default(),
                    priority: u32::from(n.priority),
                    ha_enabled: n.ha_enabled,
                    anycast_enabled: n.anycast_enabled,
                    bgp_enabled: n.bgp_enabled,
                    vservers_enabled: n.vservers_enabled,
                    is_local: *local,
                })
                .collect(),
        }))
    }

    async fn config_status(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::ConfigStatus>, Status> {
        let s = self.snap();
        Ok(Response::new(pb::ConfigStatus {
            last_updated: s.last_updated,
            loaded_at_ms: ms(s.loaded_at),
            source: "disk".to_owned(),
            generation: s.generation,
            attributes: s
                .attributes
                .iter()
                .map(|(n, v)| pb::Attribute {
                    name: n.clone(),
                    value: v.clone(),
                })
                .collect(),
            warnings: s.warnings.clone(),
            last_reload_errors: s.last_reload_errors.clone(),
            reload_failures: s.reload_failures,
        }))
    }

    async fn vservers(
        &self,
        req: Request<pb::VserversRequest>,
    ) -> Result<Response<pb::VserversReply>, Status> {
        let want = req.into_inner().name;
        let s = self.snap();
        let exact = s.vservers.iter().any(|v| v.name == want);
        let vservers = s
            .vservers
            .iter()
            .filter(|v| {
                if exact {
                    v.name == want
                } else {
                    v.name.starts_with(&want)
                }
            })
            .map(|v| pb::VserverStatus {
                name: v.name.clone(),
                hostname: v.hostname.clone(),
                enabled: v.enabled,
                config_enabled: v.config_enabled,
                vips: v.vips.iter().map(ToString::to_string).collect(),
                warnings: v.warnings.clone(),
                services: v
                    .services
                    .iter()
                    .map(|sv| pb::ServiceStatus {
                        address: sv.key.vip.to_string(),
                        protocol: sv.key.proto.to_string(),
                        port: u32::from(sv.key.port),
                        scheduler: sv.entry.scheduler.to_string(),
                        mode: sv.entry.mode.to_string(),
                        persistence: sv.entry.persistence,
                        one_packet: sv.entry.one_packet,
                        enabled: sv.enabled,
                        healthy: sv.healthy,
                        active: sv.active,
                        low_watermark: sv.entry.low_watermark,
                        high_watermark: sv.entry.high_watermark,
                        current_watermark: sv.current_watermark,
                        destinations: sv
                            .dests
                            .iter()
                            .map(|d| pb::DestinationStatus {
                                name: d.name.clone(),
                                backend: d.backend.clone(),
                                address: d.dest.ip.to_string(),
                                port: u32::from(d.dest.port),
                                weight: i32::try_from(d.dest.weight).unwrap_or(i32::MAX),
                                enabled: d.enabled,
                                healthy: d.healthy,
                                active: d.active,
                                checks: d
                                    .checks
                                    .iter()
                                    .map(|c| pb::CheckStatus {
                                        name: c.name.clone(),
                                        id: c.id,
                                        state: c.state.to_owned(),
                                        message: c.message.clone(),
                                    })
                                    .collect(),
                                active_conns: d.stats.active_conns,
                                total_conns: d.stats.total_conns,
                                bytes_in: d.stats.bytes_in,
                                bytes_out: d.stats.bytes_out,
                            })
                            .collect(),
                    })
                    .collect(),
            })
            .collect();
        Ok(Response::new(pb::VserversReply { vservers }))
    }

    async fn ha_status(&self, _: Request<pb::Empty>) -> Result<Response<pb::HaStatus>, Status> {
        let ha = self.snap().ha.clone();
        Ok(Response::new(pb::HaStatus {
            state: ha.state,
            since_ms: ha.since.map_or(0, ms),
            transitions: ha.transitions,
            adverts_sent: ha.adverts_sent,
            adverts_received: ha.adverts_received,
            last_update_ms: ha.last_update.map_or(0, ms),
        }))
    }

    async fn config_reload(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::ConfigReloadReply>, Status> {
        require_trusted(&req)?;
        let (tx, rx) = oneshot::channel();
        self.send(Event::Reload(tx)).await?;
        let reply = rx
            .await
            .map_err(|_| Status::unavailable("engine stopped during the reload"))?;
        Ok(Response::new(match reply.outcome {
            ReloadOutcome::Applied(generation) => pb::ConfigReloadReply {
                applied: true,
                message: match reply.changes {
                    Some(n) => format!(
                        "configuration applied (generation {generation}, {n} data-plane changes)"
                    ),
                    None => format!(
                        "configuration applied (generation {generation}; data plane not updated yet)"
                    ),
                },
                errors: Vec::new(),
            },
            ReloadOutcome::Refused(errors) => pb::ConfigReloadReply {
                applied: false,
                message: format!(
                    "configuration refused ({} errors); the running configuration is unchanged",
                    errors.len()
                ),
                errors,
            },
        }))
    }

    async fn ha_config(&self, req: Request<pb::Empty>) -> Result<Response<pb::HaConfig>, Status> {
        require_trusted(&req)?;
        let c = self.snap().ha_config.clone();
        Ok(Response::new(pb::HaConfig {
            enabled: c.enabled,
            local_addr: c.local_addr,
            remote_addr: c.remote_addr,
            priority: c.priority,
            vrid: c.vrid,
        }))
    }

    async fn ha_update(&self, req: Request<pb::HaStatus>) -> Result<Response<pb::Empty>, Status> {
        require_trusted(&req)?;
        let s = req.into_inner();
        self.send(Event::Ha(HaView {
            state: s.state,
            since: from_ms(s.since_ms),
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            last_update: Some(SystemTime::now()),
        }))
        .await?;
        Ok(Response::new(pb::Empty {}))
    }

    async fn healthchecks(&self, req: Request<pb::Empty>) -> Result<Response<pb::Checks>, Status> {
        require_trusted(&req)?;
        let s = self.snap();
        let checks = s
            .checks
            .iter()
            .map(|c| pb::Check {
                id: c.id,
                kind: match c.check.kind {
                    CheckKind::Icmp => pb::CheckKind::Icmp,
                    CheckKind::Udp => pb::CheckKind::Udp,
                    CheckKind::Tcp => pb::CheckKind::Tcp,
                    CheckKind::Http => pb::CheckKind::Http,
                    CheckKind::Https => pb::CheckKind::Https,
                    CheckKind::Dns => pb::CheckKind::Dns,
                    CheckKind::TcpTls => pb::CheckKind::TcpTls,
                    CheckKind::Radius => pb::CheckKind::Radius,
                } as i32,
                target: c.target.to_string(),
                port: u32::from(c.port),
                interval_ms: u32::try_from(c.check.interval.as_millis()).unwrap_or(u32::MAX),
                timeout_ms: u32::try_from(c.check.timeout.as_millis()).unwrap_or(u32::MAX),
                retries: c.check.retries,
                rise: c.check.rise,
                send: c.check.send.clone(),
                receive: c.check.receive.clone(),
                code: u32::from(c.check.code),
                method: c.check.method.clone(),
                proxy: c.check.proxy,
                tls_verify: c.check.tls_verify,
                mode: format!("{:?}", c.check.mode).to_uppercase(),
                description: c.description.clone(),
            })
            .collect();
        Ok(Response::new(pb::Checks { checks }))
    }

    async fn health_state(
        &self,
        req: Request<pb::HealthBatch>,
    ) -> Result<Response<pb::Empty>, Status> {
        require_trusted(&req)?;
        let batch = req.into_inner();
        let results = batch
            .results
            .into_iter()
            .map(|r| {
                (
                    r.id,
                    CheckResult {
                        healthy: r.healthy,
                        message: r.message,
                        at: from_ms(r.checked_at_ms).unwrap_or_else(SystemTime::now),
                    },
                )
            })
            .collect();
        self.send(Event::Health(results)).await?;
        Ok(Response::new(pb::Empty {}))
    }
}
