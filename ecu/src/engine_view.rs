//! The ECU's port to the engine: the reads it serves and the writes it asks for, in the ECU's own
//! types (the engine's status model, `seesaw_status`, which converts the replies), with the gRPC
//! adapter over the engine's Unix socket. Proto messages go no further than this file.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use seesaw_proto::engine::{self as pb};
use tonic::transport::Channel;

use crate::model::{
    Cluster, ConfigStatus, FlowTrace, HaStatus, Outcome, Override, OverrideKind, OverrideState,
    Preview, PreviewOf, Version, Vserver,
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
    /// The vserver named exactly `name`, if any (`vservers` matches prefixes too).
    fn vserver_named(
        &self,
        name: String,
    ) -> impl Future<Output = Result<Option<Vserver>, ViewError>> + Send {
        async move {
            let all = self.vservers(name.clone()).await?;
            Ok(all.into_iter().find(|v| v.name == name))
        }
    }
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
    ) -> impl Future<Output = Result<FlowTrace, ViewError>> + Send;
    /// What a change would do; nothing is saved or applied.
    fn preview(&self, of: PreviewOf) -> impl Future<Output = Result<Preview, ViewError>> + Send;
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
            client: EngineClient::new(seesaw_common::uds::channel(&path, timeout))
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
        }
    }

    // Tonic clients are cheap clones over one shared channel; each request takes its own.
    fn c(&self) -> EngineClient<Channel> {
        self.client.clone()
    }
}

impl EngineView for GrpcEngineView {
    async fn vservers(&self, name: String) -> Result<Vec<Vserver>, ViewError> {
        let reply = answer(
            "Vservers",
            self.c().vservers(pb::VserversRequest { name }).await,
        )?;
        Ok(reply.vservers.into_iter().map(Vserver::from).collect())
    }

    async fn ha_status(&self) -> Result<HaStatus, ViewError> {
        let reply = answer("HaStatus", self.c().ha_status(pb::Empty {}).await)?;
        Ok(reply.into())
    }

    async fn config_status(&self) -> Result<ConfigStatus, ViewError> {
        let reply = answer("ConfigStatus", self.c().config_status(pb::Empty {}).await)?;
        Ok(reply.into())
    }

    async fn cluster(&self) -> Result<Cluster, ViewError> {
        let c = answer("ClusterStatus", self.c().cluster_status(pb::Empty {}).await)?;
        Ok(c.into())
    }

    async fn overrides(&self) -> Result<Vec<Override>, ViewError> {
        let r = answer("Overrides", self.c().overrides(pb::Empty {}).await)?;
        Ok(r.overrides.into_iter().map(Override::from).collect())
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
        Ok(answer("Override", r)?.message)
    }

    async fn config_reload(&self) -> Result<Outcome, ViewError> {
        let r = answer("ConfigReload", self.c().config_reload(pb::Empty {}).await)?;
        Ok(r.into())
    }

    async fn config_source(&self, source: String) -> Result<(String, String), ViewError> {
        let r = answer(
            "ConfigSource",
            self.c()
                .config_source(pb::ConfigSourceRequest { source })
                .await,
        )?;
        Ok((r.source, r.previous))
    }

    async fn failover(&self) -> Result<String, ViewError> {
        let r = answer("Failover", self.c().failover(pb::Empty {}).await)?;
        Ok(r.message)
    }

    async fn cluster_text(&self) -> Result<(String, u64), ViewError> {
        let r = answer("GetCluster", self.c().get_cluster(pb::Empty {}).await)?;
        Ok((r.text, r.revision))
    }

    async fn update_cluster(
        &self,
        text: String,
        what: String,
        who: String,
        base: u64,
    ) -> Result<Outcome, ViewError> {
        let r = answer(
            "UpdateCluster",
            self.c()
                .update_cluster(pb::UpdateClusterRequest {
                    text,
                    what,
                    acting_user: who,
                    base_revision: base,
                })
                .await,
        )?;
        Ok(r.into())
    }

    async fn history(&self) -> Result<Vec<Version>, ViewError> {
        let r = answer("ConfigHistory", self.c().config_history(pb::Empty {}).await)?;
        Ok(r.versions.into_iter().map(Version::from).collect())
    }

    async fn rollback(&self, id: u64, who: String) -> Result<Outcome, ViewError> {
        let r = answer(
            "ConfigRollback",
            self.c()
                .config_rollback(pb::ConfigRollbackRequest {
                    id,
                    acting_user: who,
                })
                .await,
        )?;
        Ok(r.into())
    }

    async fn trace(
        &self,
        proto: String,
        client: String,
        vip: String,
    ) -> Result<FlowTrace, ViewError> {
        let t = answer(
            "Trace",
            self.c()
                .trace(pb::TraceRequest {
                    protocol: proto,
                    client,
                    vip,
                })
                .await,
        )?;
        Ok(t.into())
    }

    async fn preview(&self, of: PreviewOf) -> Result<Preview, ViewError> {
        use pb::preview_request::Change;
        let change = match of {
            PreviewOf::Text(t) => Change::Text(t),
            PreviewOf::Reload => Change::Reload(true),
            PreviewOf::Rollback(id) => Change::RollbackId(id),
        };
        let r = answer(
            "PreviewCluster",
            self.c()
                .preview_cluster(pb::PreviewRequest {
                    change: Some(change),
                })
                .await,
        )?;
        Ok(r.into())
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
        let r = answer(
            "AllocateVip",
            self.c()
                .allocate_vip(pb::VipRequest {
                    pool: vip_pool,
                    owner,
                    port: ports.next().unwrap_or(0),
                    more_ports: ports.collect(),
                })
                .await,
        )?;
        Ok((r.ip, r.created))
    }

    async fn free_vip(&self, vip_pool: String, owner: String) -> Result<bool, ViewError> {
        let r = answer(
            "FreeVip",
            self.c()
                .free_vip(pb::VipRequest {
                    pool: vip_pool,
                    owner,
                    ..Default::default()
                })
                .await,
        )?;
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
        let r = answer(
            "RegisterMember",
            self.c()
                .register_member(pb::MemberLease {
                    pool,
                    host: m.host,
                    ip: m.ip.to_string(),
                    weight: m.weight,
                    ttl_s,
                })
                .await,
        )?;
        Ok((r.lease_id, r.renewed))
    }
}

/// Connection failures and timeouts are "unavailable"; anything else the engine said is an error.
/// The reply of the engine's `call`, or its failure as a [`ViewError`].
fn answer<T>(
    call: &'static str,
    reply: Result<tonic::Response<T>, tonic::Status>,
) -> Result<T, ViewError> {
    reply
        .map(tonic::Response::into_inner)
        .map_err(|s| view_error(call, &s))
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
