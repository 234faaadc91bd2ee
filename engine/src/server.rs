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

use crate::etcd::EtcdShared;
use crate::events::{Edit, Event, HaPulse, Rollback, Snapshot};

/// Versions `config history` shows from etcd (each is two reads).
const HISTORY_SHOWN: usize = 100;
use crate::model::CheckKind;
use crate::overrides::{Caller, OverrideKind, OverrideState};
use crate::state::OverrideError;
use crate::state::{CheckResult, HaView, ProbeStats, ReloadOutcome};

mod convert;
mod overrides;
mod preview;
mod trace;

use convert::*;

/// Serves the API until `shutdown` is cancelled.
pub async fn serve(
    listener: UnixListener,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
    pulse: Arc<HaPulse>,
    config_dir: std::path::PathBuf,
    etcd: Arc<EtcdShared>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let svc = EngineService {
        snapshot,
        events,
        pulse,
        config_dir,
        etcd,
    };
    tonic::transport::Server::builder()
        .add_service(
            pb::engine_server::EngineServer::new(svc)
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(
            seesaw_common::uds::incoming(listener),
            shutdown.cancelled_owned(),
        )
        .await
}

struct EngineService {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
    /// The ha process's liveness, written here, read by the loop.
    pulse: Arc<HaPulse>,
    /// For the config history and the cluster.pb text (read-only here; writes go through events).
    config_dir: std::path::PathBuf,
    /// With config source etcd: the text and history come from etcd.
    etcd: Arc<EtcdShared>,
}

impl EngineService {
    fn snap(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// The store, the named pool of the running config, and the request, or why not.
    #[allow(
        clippy::result_large_err,
        reason = "tonic's Status is the error type of every RPC"
    )]
    fn vip_pool(
        &self,
        req: Request<pb::VipRequest>,
    ) -> Result<(crate::etcd::Store, crate::model::VipPool, pb::VipRequest), Status> {
        let r = req.into_inner();
        let Some(store) = self.etcd.store() else {
            return Err(Status::failed_precondition(
                "address pools need config source etcd, connected",
            ));
        };
        if r.owner.is_empty() || r.owner.chars().any(|c| c.is_control() || c == '/') {
            return Err(Status::invalid_argument(format!(
                "owner {:?} is not a valid name",
                r.owner
            )));
        }
        let pool = self
            .snap()
            .vip_pools
            .iter()
            .find(|p| p.name == r.pool)
            .cloned()
            .ok_or_else(|| {
                Status::not_found(format!("no vip_pool named {:?} in the config", r.pool))
            })?;
        Ok((store, pool, r))
    }

    async fn send(&self, ev: Event) -> Result<(), Status> {
        self.events
            .send(ev)
            .await
            .map_err(|_| Status::unavailable("engine is shutting down"))
    }

    /// Sends the event `make` builds around a reply channel and waits for the loop's answer;
    /// `gone` is the error when the loop stops before answering.
    async fn ask<T>(
        &self,
        make: impl FnOnce(oneshot::Sender<T>) -> Event,
        gone: &str,
    ) -> Result<T, Status> {
        let (tx, rx) = oneshot::channel();
        self.send(make(tx)).await?;
        rx.await.map_err(|_| Status::unavailable(gone))
    }

    /// [`Self::ask`] for the events that change the running config: the reload's outcome.
    async fn ask_reload(
        &self,
        make: impl FnOnce(oneshot::Sender<crate::events::ReloadReply>) -> Event,
    ) -> Result<Response<pb::ConfigReloadReply>, Status> {
        let reply = self.ask(make, "engine stopped").await?;
        Ok(Response::new(reload_reply(reply)))
    }
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
            source: s.source.clone(),
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
            etcd_key: s.etcd.as_ref().map(|e| e.key.clone()).unwrap_or_default(),
            etcd_revision: s.etcd.as_ref().map_or(0, |e| e.revision.unsigned_abs()),
            etcd_trouble: s
                .etcd
                .as_ref()
                .and_then(|e| e.trouble.clone())
                .unwrap_or_default(),
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
                override_state: v
                    .override_state
                    .map(|o| o.as_str().to_owned())
                    .unwrap_or_default(),
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
                        not_applied: sv.not_applied.clone().unwrap_or_default(),
                        table_hash: sv
                            .table_hash
                            .map(|h| format!("{h:016x}"))
                            .unwrap_or_default(),
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
                                        state: c.state.as_str().to_owned(),
                                        message: c.message.clone(),
                                        stats: c.stats.as_deref().map(stats_to_proto),
                                    })
                                    .collect(),
                                override_state: d
                                    .override_state
                                    .map(|o| o.as_str().to_owned())
                                    .unwrap_or_default(),
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
            state: ha.state.as_str().to_owned(),
            since_ms: ha.since.map_or(0, ms),
            transitions: ha.transitions,
            adverts_sent: ha.adverts_sent,
            adverts_received: ha.adverts_received,
            adverts_rejected: ha.adverts_rejected.into_iter().collect(),
            last_update_ms: ha.last_update.map_or(0, ms),
        }))
    }

    async fn config_reload(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::ConfigReloadReply>, Status> {
        require_trusted(&req)?;
        let reply = self
            .ask(Event::Reload, "engine stopped during the reload")
            .await?;
        Ok(Response::new(reload_reply(reply)))
    }

    async fn get_cluster(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::ClusterText>, Status> {
        if let Some(store) = self.etcd.store() {
            return match store.read(None).await {
                Ok(Some((bytes, revision))) => Ok(Response::new(pb::ClusterText {
                    text: String::from_utf8_lossy(&bytes).into_owned(),
                    revision: revision.unsigned_abs(),
                })),
                Ok(None) => Err(Status::not_found(format!("{} is not in etcd", store.key()))),
                Err(e) => Err(Status::unavailable(e.to_string())),
            };
        }
        let text = tokio::fs::read_to_string(self.config_dir.join("cluster.pb"))
            .await
            .map_err(|e| Status::unavailable(format!("cluster.pb: {e}")))?;
        let revision = crate::history::content_tag(text.as_bytes());
        Ok(Response::new(pb::ClusterText { text, revision }))
    }

    async fn update_cluster(
        &self,
        req: Request<pb::UpdateClusterRequest>,
    ) -> Result<Response<pb::ConfigReloadReply>, Status> {
        require_trusted(&req)?;
        let who = author(&req, &req.get_ref().acting_user);
        let r = req.into_inner();
        self.ask_reload(|reply| {
            Event::UpdateCluster(Edit {
                text: r.text.into_bytes(),
                who,
                what: r.what,
                base: r.base_revision,
                reply,
            })
        })
        .await
    }

    async fn config_history(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::ConfigHistoryReply>, Status> {
        if let Some(store) = self.etcd.store() {
            let versions = store
                .history(HISTORY_SHOWN)
                .await
                .map_err(|e| Status::unavailable(e.to_string()))?;
            return Ok(Response::new(pb::ConfigHistoryReply {
                versions: versions
                    .into_iter()
                    .map(|v| pb::ConfigVersion {
                        id: v.revision.unsigned_abs(),
                        at_ms: v.meta.at_ms,
                        who: v.meta.who,
                        what: v.meta.what,
                        sha256: v.sha256,
                        size: v.size,
                    })
                    .collect(),
            }));
        }
        let mut versions: Vec<pb::ConfigVersion> = crate::history::History::new(&self.config_dir)
            .list()
            .into_iter()
            .map(pb::ConfigVersion::from)
            .collect();
        versions.reverse();
        Ok(Response::new(pb::ConfigHistoryReply { versions }))
    }

    async fn register_member(
        &self,
        req: Request<pb::MemberLease>,
    ) -> Result<Response<pb::MemberLeaseReply>, Status> {
        require_trusted(&req)?;
        let r = req.into_inner();
        let Some(store) = self.etcd.store() else {
            return Err(Status::failed_precondition(
                "registering members needs config source etcd, connected",
            ));
        };
        let ip = r
            .ip
            .parse()
            .map_err(|_| Status::invalid_argument(format!("ip {:?} is not an address", r.ip)))?;
        if !(1..=3600).contains(&r.ttl_s) {
            return Err(Status::invalid_argument(format!(
                "ttl_s {} is outside 1..3600",
                r.ttl_s
            )));
        }
        if !self.snap().vservers.iter().any(|v| v.name == r.pool) {
            return Err(Status::not_found(format!(
                "no pool (vserver) named {:?}",
                r.pool
            )));
        }
        let m = crate::etcd::Member {
            pool: r.pool,
            host: r.host,
            ip,
            weight: r.weight,
        };
        // The checks a value read back from etcd gets.
        let bytes = serde_json::to_vec(&m).map_err(|e| Status::internal(e.to_string()))?;
        crate::etcd::parse_member(&bytes).map_err(Status::invalid_argument)?;
        let (lease_id, renewed) = store
            .register(&m, i64::from(r.ttl_s))
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::MemberLeaseReply { lease_id, renewed }))
    }

    async fn allocate_vip(
        &self,
        req: Request<pb::VipRequest>,
    ) -> Result<Response<pb::VipReply>, Status> {
        require_trusted(&req)?;
        let (store, pool, r) = self.vip_pool(req)?;
        let ports: Vec<u16> = std::iter::once(r.port)
            .chain(r.more_ports.iter().copied())
            .filter(|p| *p != 0)
            .map(u16::try_from)
            .collect::<Result<_, _>>()
            .map_err(|_| Status::invalid_argument("a port is outside 1..65535"))?;
        let a = store
            .allocate(&pool, &r.owner, &ports)
            .await
            .map_err(|e| match e {
                crate::etcd::StoreError::Unreachable(_) => Status::unavailable(e.to_string()),
                _ => Status::failed_precondition(e.to_string()),
            })?;
        Ok(Response::new(pb::VipReply {
            ip: a.ip.to_string(),
            port: u32::from(a.ports.first().copied().unwrap_or(0)),
            freed: false,
            created: a.created,
            ports: a.ports.iter().map(|p| u32::from(*p)).collect(),
        }))
    }

    async fn free_vip(
        &self,
        req: Request<pb::VipRequest>,
    ) -> Result<Response<pb::VipReply>, Status> {
        require_trusted(&req)?;
        let (store, pool, r) = self.vip_pool(req)?;
        let freed = store
            .free(&pool.name, &r.owner)
            .await
            .map_err(|e| Status::unavailable(e.to_string()))?;
        Ok(Response::new(pb::VipReply {
            freed,
            ..Default::default()
        }))
    }

    async fn config_rollback(
        &self,
        req: Request<pb::ConfigRollbackRequest>,
    ) -> Result<Response<pb::ConfigReloadReply>, Status> {
        require_trusted(&req)?;
        let who = author(&req, &req.get_ref().acting_user);
        let id = req.get_ref().id;
        self.ask_reload(|reply| Event::Rollback(Rollback { id, who, reply }))
            .await
    }

    async fn trace(
        &self,
        req: Request<pb::TraceRequest>,
    ) -> Result<Response<pb::FlowTrace>, Status> {
        Ok(Response::new(self.trace_of(req.into_inner()).await?))
    }

    async fn preview_cluster(
        &self,
        req: Request<pb::PreviewRequest>,
    ) -> Result<Response<pb::Preview>, Status> {
        require_trusted(&req)?;
        Ok(Response::new(self.preview_of(req.into_inner()).await?))
    }

    async fn override_vserver(
        &self,
        req: Request<pb::OverrideRequest>,
    ) -> Result<Response<pb::OverrideReply>, Status> {
        self.set_override(OverrideKind::Vserver, req).await
    }

    async fn override_backend(
        &self,
        req: Request<pb::OverrideRequest>,
    ) -> Result<Response<pb::OverrideReply>, Status> {
        self.set_override(OverrideKind::Backend, req).await
    }

    async fn override_destination(
        &self,
        req: Request<pb::OverrideRequest>,
    ) -> Result<Response<pb::OverrideReply>, Status> {
        self.set_override(OverrideKind::Destination, req).await
    }

    async fn overrides(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<pb::OverridesReply>, Status> {
        let s = self.snap();
        Ok(Response::new(pb::OverridesReply {
            overrides: s
                .overrides
                .iter()
                .map(|(kind, target, state, by, at)| pb::Override {
                    kind: kind.as_str().to_owned(),
                    target: target.clone(),
                    state: state_to_pb(*state) as i32,
                    set_by: by.clone(),
                    set_at_ms: ms(*at),
                })
                .collect(),
        }))
    }

    async fn config_source(
        &self,
        req: Request<pb::ConfigSourceRequest>,
    ) -> Result<Response<pb::ConfigSourceReply>, Status> {
        let wanted = req.get_ref().source.clone();
        if !wanted.is_empty() {
            require_trusted(&req)?;
        }
        let r = self
            .ask(
                |reply| Event::ConfigSource {
                    source: wanted,
                    reply,
                },
                "engine stopped",
            )
            .await?;
        match r {
            Ok((source, previous)) => Ok(Response::new(pb::ConfigSourceReply { source, previous })),
            Err(e) => Err(Status::invalid_argument(e)),
        }
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
            advert_interval_ms: c.advert_interval_ms,
            preempt: c.preempt,
            auth_key_file: c.auth_key_file,
            auth_accept_key_file: c.auth_accept_key_file,
        }))
    }

    async fn ha_update(
        &self,
        req: Request<pb::HaStatus>,
    ) -> Result<Response<pb::HaUpdateReply>, Status> {
        require_trusted(&req)?;
        // The reporting process, from the kernel (SO_PEERCRED): the engine watches it exit.
        let pid = req
            .extensions()
            .get::<tonic::transport::server::UdsConnectInfo>()
            .and_then(|i| i.peer_cred)
            .and_then(|c| c.pid());
        let s = req.into_inner();
        // The state is parsed here, at the boundary: one the engine does not know is refused,
        // never taken for "not leader" inside.
        let state = crate::state::HaRole::parse(&s.state).ok_or_else(|| {
            Status::invalid_argument(format!(
                "unknown HA state {:?}",
                s.state.chars().take(32).collect::<String>()
            ))
        })?;
        let now = SystemTime::now();
        self.pulse.heard(now);
        let view = HaView {
            state,
            since: from_ms(s.since_ms),
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            // Bounded: ha names a handful of reasons; a larger map is not from ours.
            adverts_rejected: s
                .adverts_rejected
                .into_iter()
                .filter(|(reason, _)| reason.len() <= 32)
                .take(32)
                .collect(),
            last_update: Some(now),
        };
        // A report that repeats the state the data plane already reflects (the core's
        // `ha_reflected`), with no failover waiting, is liveness: answered here, the counters handed to the loop without waiting for it. A
        // loop busy with a slow ncc must never make the ha process think its engine is dead
        // (it would give mastership up while ncc, stalled, keeps the VIPs).
        let snap = self.snap();
        if snap.ha_reflected == Some((view.state, view.transitions)) && !snap.failover_pending {
            let (tx, _) = oneshot::channel();
            let _ = self.events.try_send(Event::Ha(view, pid, tx));
            return Ok(Response::new(pb::HaUpdateReply { failover: false }));
        }
        let failover = self
            .ask(
                |tx| Event::Ha(view, pid, tx),
                "engine stopped before acting on the report",
            )
            .await?;
        Ok(Response::new(pb::HaUpdateReply { failover }))
    }

    async fn failover(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::FailoverReply>, Status> {
        require_trusted(&req)?;
        match self
            .ask(Event::Failover, "engine stopped during the request")
            .await?
        {
            Ok(message) => Ok(Response::new(pb::FailoverReply { message })),
            Err(e) => Err(Status::failed_precondition(e)),
        }
    }

    async fn bgp_neighbors(
        &self,
        _: Request<pb::Empty>,
    ) -> Result<Response<seesaw_proto::ncc::BgpNeighborList>, Status> {
        let (neighbors, announced) = self
            .ask(Event::BgpNeighbors, "engine stopped during the request")
            .await?
            .map_err(bgp_status)?;
        Ok(Response::new(seesaw_proto::ncc::BgpNeighborList {
            neighbors,
            announced,
        }))
    }

    async fn vlans(&self, _: Request<pb::Empty>) -> Result<Response<pb::VlansReply>, Status> {
        let vlans = self.snap().vlans.iter().map(vlan_to_proto).collect();
        Ok(Response::new(pb::VlansReply { vlans }))
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
                    CheckKind::Mysql => pb::CheckKind::Mysql,
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
                vip: c.vip.map(|v| v.to_string()).unwrap_or_default(),
                mark: c.mark,
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
        let mut stats = Vec::new();
        // The batch's bounds serve every result that has none of its own: one shared copy.
        let mut bounds: Option<Arc<[u64]>> = None;
        let batch_bounds = batch.latency_bounds_us;
        let results = batch
            .results
            .into_iter()
            .map(|r| {
                if let Some(s) = r.stats {
                    match stats_from_proto(s, &batch_bounds, &mut bounds) {
                        Ok(s) => stats.push((r.id, s)),
                        Err(why) => tracing::debug!(id = r.id, "probe statistics ignored: {why}"),
                    }
                }
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
        self.send(Event::Health(results, stats)).await?;
        Ok(Response::new(pb::Empty {}))
    }
}

/// The author recorded in the history: the end user a trusted proxy names, else the caller's
/// user from `SO_PEERCRED`.
fn author<T>(req: &Request<T>, acting_user: &str) -> String {
    if !acting_user.is_empty() {
        return acting_user.to_owned();
    }
    req.extensions()
        .get::<tonic::transport::server::UdsConnectInfo>()
        .and_then(|i| i.peer_cred)
        .and_then(|c| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(c.uid()))
                .ok()
                .flatten()
        })
        .map_or_else(|| "unknown".to_owned(), |u| u.name)
}

/// A failed BGP query as the caller sees it: BGP not configured (or refused by the speaker) is
/// an answer, not an outage of the engine.
fn bgp_status(e: crate::ncc_port::NccError) -> Status {
    match e {
        crate::ncc_port::NccError::Refused(m) => Status::failed_precondition(m),
        e @ crate::ncc_port::NccError::Unavailable(_) => Status::unavailable(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
