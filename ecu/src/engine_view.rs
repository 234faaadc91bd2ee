//! The ECU's port to the engine: the reads it serves and the writes it asks for, in the ECU's own types, with the gRPC
//! adapter over the engine's Unix socket. Proto messages are converted here and go no further.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use seesaw_proto::engine::{self as pb};
use tonic::transport::Channel;

use crate::model::{
    Attribute, Check, CheckStats, Cluster, ConfigStatus, Destination, HaStatus, Node, Outcome,
    Override, OverrideKind, OverrideState, Service, Version, Vserver,
};

#[cfg(any(test, feature = "testing"))]
pub mod fake;

/// Why a read from the engine failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ViewError {
    /// The engine did not answer (not running, restarting, or too slow).
    #[error("engine unavailable: {0}")]
    Unavailable(String),
    /// The engine answered with an error.
    #[error("engine call {call} failed: {code:?}: {message}")]
    Rpc {
        /// The RPC name.
        call: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

/// What the ECU reads from and asks of the engine.
pub trait EngineView: Send + Sync + 'static {
    /// Vservers whose name is `name` or starts with it; all of them for an empty `name`.
    fn vservers(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Vec<Vserver>, ViewError>> + Send;
    /// The HA status the engine holds.
    fn ha_status(&self) -> impl Future<Output = Result<HaStatus, ViewError>> + Send;
    /// The running config's status.
    fn config_status(&self) -> impl Future<Output = Result<ConfigStatus, ViewError>> + Send;
    /// The cluster and its nodes.
    fn cluster(&self) -> impl Future<Output = Result<Cluster, ViewError>> + Send;
    /// The overrides in force.
    fn overrides(&self) -> impl Future<Output = Result<Vec<Override>, ViewError>> + Send;
    /// Sets an override for the API user `who` (the ECU authorised them); the engine's message.
    fn set_override(
        &self,
        kind: OverrideKind,
        target: String,
        state: OverrideState,
        who: String,
    ) -> impl Future<Output = Result<String, ViewError>> + Send;
    /// Re-reads cluster.pb from the config source.
    fn config_reload(&self) -> impl Future<Output = Result<Outcome, ViewError>> + Send;
    /// Reads (empty `source`) or sets the config source: (now, before).
    fn config_source(
        &self,
        source: String,
    ) -> impl Future<Output = Result<(String, String), ViewError>> + Send;
    /// Asks the master to hand over; the engine's message.
    fn failover(&self) -> impl Future<Output = Result<String, ViewError>> + Send;
    /// The cluster.pb text and its revision (pass it back to `update_cluster`).
    fn cluster_text(&self) -> impl Future<Output = Result<(String, u64), ViewError>> + Send;
    /// Validates, records (as `who`, describing it as `what`) and applies a new cluster.pb,
    /// refused with a conflict when the config is no longer at revision `base` (0: no check).
    fn update_cluster(
        &self,
        text: String,
        what: String,
        who: String,
        base: u64,
    ) -> impl Future<Output = Result<Outcome, ViewError>> + Send;
    /// The saved versions, newest first.
    fn history(&self) -> impl Future<Output = Result<Vec<Version>, ViewError>> + Send;
    /// Restores version `id` byte for byte and applies it.
    fn rollback(
        &self,
        id: u64,
        who: String,
    ) -> impl Future<Output = Result<Outcome, ViewError>> + Send;
    /// `seesaw trace`: the flow of `proto` (`tcp`, `udp`) from `client` to `vip` (`ip:port`).
    fn trace(
        &self,
        proto: String,
        client: String,
        vip: String,
    ) -> impl Future<Output = Result<crate::model::FlowTrace, ViewError>> + Send;
    /// What a change would do; nothing is saved or applied.
    fn preview(
        &self,
        of: crate::model::PreviewOf,
    ) -> impl Future<Output = Result<crate::model::Preview, ViewError>> + Send;
    /// Config source etcd: registers (or renews) `m` in `pool` for `ttl_s` seconds; (lease id,
    /// whether it was a renewal).
    fn register_member(
        &self,
        pool: String,
        m: crate::spec::Member,
        ttl_s: u32,
    ) -> impl Future<Output = Result<(i64, bool), ViewError>> + Send;
    /// Config source etcd: allocates an address of `vip_pool` to `owner`, reserving `ports` on
    /// it; (address, whether this call won it rather than finding the owner's own).
    fn allocate_vip(
        &self,
        vip_pool: String,
        owner: String,
        ports: Vec<u16>,
    ) -> impl Future<Output = Result<(String, bool), ViewError>> + Send;
    /// Frees what `owner` holds in `vip_pool`; whether it held anything.
    fn free_vip(
        &self,
        vip_pool: String,
        owner: String,
    ) -> impl Future<Output = Result<bool, ViewError>> + Send;
}

/// [`EngineView`] over the engine's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcEngineView {
    client: EngineClient<Channel>,
}

// === impl GrpcEngineView ===

impl GrpcEngineView {
    /// A lazily connecting view of the engine socket under `run_dir`; every call gets `timeout`.
    /// Must be called inside a tokio runtime.
    pub fn new(run_dir: &Path, timeout: Duration) -> Self {
        let path = seesaw_common::paths::engine_socket(run_dir);
        Self {
            client: EngineClient::new(seesaw_common::uds::channel(&path, timeout)),
        }
    }

    // Tonic clients are cheap clones over one shared channel; each request takes its own.
    fn c(&self) -> EngineClient<Channel> {
        self.client.clone()
    }
}

impl EngineView for GrpcEngineView {
    async fn vservers(&self, name: String) -> Result<Vec<Vserver>, ViewError> {
        let reply = self
            .c()
            .vservers(pb::VserversRequest { name })
            .await
            .map_err(|s| view_error("Vservers", &s))?;
        Ok(reply
            .into_inner()
            .vservers
            .into_iter()
            .map(vserver_from_proto)
            .collect())
    }

    async fn ha_status(&self) -> Result<HaStatus, ViewError> {
        let reply = self
            .c()
            .ha_status(pb::Empty {})
            .await
            .map_err(|s| view_error("HaStatus", &s))?;
        Ok(ha_from_proto(reply.into_inner()))
    }

    async fn config_status(&self) -> Result<ConfigStatus, ViewError> {
        let reply = self
            .c()
            .config_status(pb::Empty {})
            .await
            .map_err(|s| view_error("ConfigStatus", &s))?;
        Ok(config_from_proto(reply.into_inner()))
    }

    async fn cluster(&self) -> Result<Cluster, ViewError> {
        let c = self
            .c()
            .cluster_status(pb::Empty {})
            .await
            .map_err(|s| view_error("ClusterStatus", &s))?
            .into_inner();
        Ok(Cluster {
            site: c.site,
            version: c.version,
            dataplane: c.dataplane,
            nodes: c
                .nodes
                .into_iter()
                .map(|n| Node {
                    hostname: n.hostname,
                    ipv4: n.ipv4,
                    ipv6: n.ipv6,
                    is_local: n.is_local,
                })
                .collect(),
        })
    }

    async fn overrides(&self) -> Result<Vec<Override>, ViewError> {
        let r = self
            .c()
            .overrides(pb::Empty {})
            .await
            .map_err(|s| view_error("Overrides", &s))?
            .into_inner();
        Ok(r.overrides
            .into_iter()
            .map(|o| Override {
                state: match pb::OverrideState::try_from(o.state) {
                    Ok(pb::OverrideState::OverrideEnabled) => "enabled",
                    Ok(pb::OverrideState::OverrideDisabled) => "disabled",
                    _ => "default",
                }
                .to_owned(),
                kind: o.kind,
                target: o.target,
                set_by: o.set_by,
                set_at_ms: o.set_at_ms,
            })
            .collect())
    }

    async fn set_override(
        &self,
        kind: OverrideKind,
        target: String,
        state: OverrideState,
        who: String,
    ) -> Result<String, ViewError> {
        let req = pb::OverrideRequest {
            target,
            state: match state {
                OverrideState::Default => pb::OverrideState::OverrideDefault,
                OverrideState::Enabled => pb::OverrideState::OverrideEnabled,
                OverrideState::Disabled => pb::OverrideState::OverrideDisabled,
            } as i32,
            // The ECU authorised the caller by its own role; it calls as itself (trusted) and
            // the engine records the override as the API user's.
            acting_user: String::new(),
            on_behalf_of: who,
        };
        let mut c = self.c();
        let r = match kind {
            OverrideKind::Vserver => c.override_vserver(req).await,
            OverrideKind::Backend => c.override_backend(req).await,
            OverrideKind::Destination => c.override_destination(req).await,
        };
        Ok(r.map_err(|s| view_error("Override", &s))?
            .into_inner()
            .message)
    }

    async fn config_reload(&self) -> Result<Outcome, ViewError> {
        let r = self
            .c()
            .config_reload(pb::Empty {})
            .await
            .map_err(|s| view_error("ConfigReload", &s))?;
        Ok(outcome(r.into_inner()))
    }

    async fn config_source(&self, source: String) -> Result<(String, String), ViewError> {
        let r = self
            .c()
            .config_source(pb::ConfigSourceRequest { source })
            .await
            .map_err(|s| view_error("ConfigSource", &s))?
            .into_inner();
        Ok((r.source, r.previous))
    }

    async fn failover(&self) -> Result<String, ViewError> {
        let r = self
            .c()
            .failover(pb::Empty {})
            .await
            .map_err(|s| view_error("Failover", &s))?;
        Ok(r.into_inner().message)
    }

    async fn cluster_text(&self) -> Result<(String, u64), ViewError> {
        let r = self
            .c()
            .get_cluster(pb::Empty {})
            .await
            .map_err(|s| view_error("GetCluster", &s))?
            .into_inner();
        Ok((r.text, r.revision))
    }

    async fn update_cluster(
        &self,
        text: String,
        what: String,
        who: String,
        base: u64,
    ) -> Result<Outcome, ViewError> {
        let r = self
            .c()
            .update_cluster(pb::UpdateClusterRequest {
                text,
                what,
                acting_user: who,
                base_revision: base,
            })
            .await
            .map_err(|s| view_error("UpdateCluster", &s))?;
        Ok(outcome(r.into_inner()))
    }

    async fn history(&self) -> Result<Vec<Version>, ViewError> {
        let r = self
            .c()
            .config_history(pb::Empty {})
            .await
            .map_err(|s| view_error("ConfigHistory", &s))?;
        Ok(r.into_inner()
            .versions
            .into_iter()
            .map(|v| Version {
                id: v.id,
                at_ms: v.at_ms,
                who: v.who,
                what: v.what,
                sha256: v.sha256,
                size: v.size,
            })
            .collect())
    }

    async fn rollback(&self, id: u64, who: String) -> Result<Outcome, ViewError> {
        let r = self
            .c()
            .config_rollback(pb::ConfigRollbackRequest {
                id,
                acting_user: who,
            })
            .await
            .map_err(|s| view_error("ConfigRollback", &s))?;
        Ok(outcome(r.into_inner()))
    }

    async fn trace(
        &self,
        proto: String,
        client: String,
        vip: String,
    ) -> Result<crate::model::FlowTrace, ViewError> {
        let t = self
            .c()
            .trace(pb::TraceRequest {
                protocol: proto,
                client,
                vip,
            })
            .await
            .map_err(|s| view_error("Trace", &s))?
            .into_inner();
        Ok(crate::model::FlowTrace {
            matched: t.matched,
            vserver: t.vserver,
            service: t.service,
            scheduler: t.scheduler,
            predicted: t.predicted,
            predicted_backend: t.predicted_backend,
            how: t.how,
            flow: t.flow,
            flow_state: t.flow_state,
            eligible: t.eligible,
            excluded: t
                .excluded
                .into_iter()
                .map(|e| crate::model::ExcludedDestination {
                    destination: e.destination,
                    backend: e.backend,
                    why: e.why,
                })
                .collect(),
            plane: t.plane,
            notes: t.notes,
        })
    }

    async fn preview(
        &self,
        of: crate::model::PreviewOf,
    ) -> Result<crate::model::Preview, ViewError> {
        use crate::model::PreviewOf;
        use pb::preview_request::Change;
        let change = match of {
            PreviewOf::Text(t) => Change::Text(t),
            PreviewOf::Reload => Change::Reload(true),
            PreviewOf::Rollback(id) => Change::RollbackId(id),
        };
        let r = self
            .c()
            .preview_cluster(pb::PreviewRequest {
                change: Some(change),
            })
            .await
            .map_err(|s| view_error("PreviewCluster", &s))?
            .into_inner();
        Ok(preview(r))
    }

    async fn register_member(
        &self,
        pool: String,
        m: crate::spec::Member,
        ttl_s: u32,
    ) -> Result<(i64, bool), ViewError> {
        self.register(pool, m, ttl_s).await
    }

    async fn allocate_vip(
        &self,
        vip_pool: String,
        owner: String,
        ports: Vec<u16>,
    ) -> Result<(String, bool), ViewError> {
        let mut ports = ports.into_iter().map(u32::from);
        let r = self
            .c()
            .allocate_vip(pb::VipRequest {
                pool: vip_pool,
                owner,
                port: ports.next().unwrap_or(0),
                more_ports: ports.collect(),
            })
            .await
            .map_err(|s| view_error("AllocateVip", &s))?
            .into_inner();
        Ok((r.ip, r.created))
    }

    async fn free_vip(&self, vip_pool: String, owner: String) -> Result<bool, ViewError> {
        let r = self
            .c()
            .free_vip(pb::VipRequest {
                pool: vip_pool,
                owner,
                ..Default::default()
            })
            .await
            .map_err(|s| view_error("FreeVip", &s))?
            .into_inner();
        Ok(r.freed)
    }
}

impl GrpcEngineView {
    async fn register(
        &self,
        pool: String,
        m: crate::spec::Member,
        ttl_s: u32,
    ) -> Result<(i64, bool), ViewError> {
        let r = self
            .c()
            .register_member(pb::MemberLease {
                pool,
                host: m.host,
                ip: m.ip.to_string(),
                weight: m.weight,
                ttl_s,
            })
            .await
            .map_err(|s| view_error("RegisterMember", &s))?
            .into_inner();
        Ok((r.lease_id, r.renewed))
    }
}

fn preview(r: pb::Preview) -> crate::model::Preview {
    let changes = |c: Option<pb::Changes>| {
        let c = c.unwrap_or_default();
        crate::model::Changes {
            added: c.added,
            removed: c.removed,
            changed: c.changed,
        }
    };
    crate::model::Preview {
        vservers: changes(r.vservers),
        services: changes(r.services),
        destinations: changes(r.destinations),
        flows_moved: r
            .flows_moved
            .into_iter()
            .map(|f| crate::model::FlowsMoved {
                service: f.service,
                share: f.share,
            })
            .collect(),
        errors: if r.valid && r.errors.is_empty() {
            Vec::new()
        } else if r.errors.is_empty() {
            vec!["refused".to_owned()]
        } else {
            r.errors
        },
    }
}

fn outcome(r: pb::ConfigReloadReply) -> Outcome {
    Outcome {
        applied: r.applied,
        message: r.message,
        errors: r.errors,
    }
}

/// Connection failures and timeouts are "unavailable"; anything else the engine said is an error.
fn view_error(call: &'static str, status: &tonic::Status) -> ViewError {
    match status.code() {
        tonic::Code::Unavailable | tonic::Code::DeadlineExceeded | tonic::Code::Cancelled => {
            ViewError::Unavailable(status.message().to_owned())
        }
        code => ViewError::Rpc {
            call,
            code,
            message: status.message().to_owned(),
        },
    }
}

fn vserver_from_proto(v: pb::VserverStatus) -> Vserver {
    Vserver {
        name: v.name,
        hostname: v.hostname,
        enabled: v.enabled,
        override_state: v.override_state,
        vips: v.vips,
        services: v.services.into_iter().map(service_from_proto).collect(),
        warnings: v.warnings,
    }
}

fn service_from_proto(s: pb::ServiceStatus) -> Service {
    Service {
        address: s.address,
        // Upper case, so the `service` metric label is stable whatever the engine's spelling.
        protocol: s.protocol.to_ascii_uppercase(),
        port: s.port,
        scheduler: s.scheduler,
        mode: s.mode,
        healthy: s.healthy,
        active: s.active,
        not_applied: s.not_applied,
        table_hash: s.table_hash,
        destinations: s
            .destinations
            .into_iter()
            .map(destination_from_proto)
            .collect(),
    }
}

fn destination_from_proto(d: pb::DestinationStatus) -> Destination {
    Destination {
        name: d.name,
        backend: d.backend,
        address: d.address,
        port: d.port,
        weight: d.weight,
        enabled: d.enabled,
        override_state: d.override_state,
        healthy: d.healthy,
        active: d.active,
        checks: d
            .checks
            .into_iter()
            .map(|c| Check {
                name: c.name,
                id: c.id,
                state: c.state,
                message: c.message,
                stats: c.stats.and_then(|s| {
                    let stats = CheckStats {
                        successes: s.successes,
                        failures: s.failures,
                        last_latency_us: s.last_latency_us,
                        latency_sum_us: s.latency_sum_us,
                        latency_bounds_us: s.latency_bounds_us,
                        latency_counts: s.latency_counts,
                    };
                    match stats.validate() {
                        Ok(()) => Some(stats),
                        Err(e) => {
                            tracing::debug!(check = c.id, "probe statistics ignored: {e}");
                            None
                        }
                    }
                }),
            })
            .collect(),
        active_conns: d.active_conns,
        total_conns: d.total_conns,
        bytes_in: d.bytes_in,
        bytes_out: d.bytes_out,
    }
}

fn ha_from_proto(h: pb::HaStatus) -> HaStatus {
    HaStatus {
        state: h.state,
        since_ms: h.since_ms,
        transitions: h.transitions,
        adverts_sent: h.adverts_sent,
        adverts_received: h.adverts_received,
        adverts_rejected: h
            .adverts_rejected
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .collect(),
        last_update_ms: h.last_update_ms,
    }
}

fn config_from_proto(c: pb::ConfigStatus) -> ConfigStatus {
    ConfigStatus {
        generation: c.generation,
        last_updated: c.last_updated,
        loaded_at_ms: c.loaded_at_ms,
        source: c.source,
        attributes: c
            .attributes
            .into_iter()
            .map(|a| Attribute {
                name: a.name,
                value: a.value,
            })
            .collect(),
        warnings: c.warnings,
        last_reload_errors: c.last_reload_errors,
        reload_failures: c.reload_failures,
        etcd: (!c.etcd_key.is_empty()).then_some(crate::model::EtcdStatus {
            key: c.etcd_key,
            revision: c.etcd_revision,
            trouble: c.etcd_trouble,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vserver_conversion_keeps_every_api_field() {
        let v = vserver_from_proto(pb::VserverStatus {
            name: "web".into(),
            enabled: true,
            vips: vec!["127.0.0.1".into()],
            services: vec![pb::ServiceStatus {
                address: "127.0.0.1".into(),
                protocol: "tcp".into(),
                port: 8080,
                scheduler: "wrr".into(),
                mode: "NAT".into(),
                healthy: true,
                active: true,
                destinations: vec![pb::DestinationStatus {
                    name: "be1".into(),
                    address: "127.0.0.2".into(),
                    port: 80,
                    weight: 3,
                    healthy: true,
                    active: true,
                    active_conns: 4,
                    total_conns: 5,
                    bytes_in: 6,
                    bytes_out: 7,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        });
        let s = &v.services[0];
        assert_eq!(
            (s.key(), s.scheduler.as_str()),
            ("127.0.0.1:8080/TCP".into(), "wrr")
        );
        let d = &s.destinations[0];
        assert_eq!(
            (
                d.weight,
                d.active_conns,
                d.total_conns,
                d.bytes_in,
                d.bytes_out
            ),
            (3, 4, 5, 6, 7)
        );
    }

    #[test]
    fn connection_failures_are_unavailable() {
        let e = view_error(
            "HaStatus",
            &tonic::Status::unavailable("connection refused"),
        );
        assert_eq!(e, ViewError::Unavailable("connection refused".into()));
        let e = view_error("HaStatus", &tonic::Status::permission_denied("no"));
        assert!(matches!(
            e,
            ViewError::Rpc {
                code: tonic::Code::PermissionDenied,
                ..
            }
        ));
    }

    #[tokio::test]
    async fn grpc_view_of_a_missing_engine_is_unavailable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let view = GrpcEngineView::new(dir.path(), Duration::from_secs(1));
        let err = view.ha_status().await.expect_err("nothing listens");
        assert!(matches!(err, ViewError::Unavailable(_)), "{err:?}");
    }
}
