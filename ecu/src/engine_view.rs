//! The ECU's port to the engine: the reads it serves, in the ECU's own types, with the gRPC
//! adapter over the engine's Unix socket. Proto messages are converted here and go no further.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use seesaw_proto::engine::{self as pb};
use tonic::transport::Channel;

use crate::model::{Attribute, ConfigStatus, Destination, HaStatus, Service, Vserver};

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

/// What the ECU reads from the engine.
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
}

impl EngineView for GrpcEngineView {
    async fn vservers(&self, name: String) -> Result<Vec<Vserver>, ViewError> {
        // Tonic clients are cheap clones over one shared channel; each request takes its own.
        let reply = self
            .client
            .clone()
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
            .client
            .clone()
            .ha_status(pb::Empty {})
            .await
            .map_err(|s| view_error("HaStatus", &s))?;
        Ok(ha_from_proto(reply.into_inner()))
    }

    async fn config_status(&self) -> Result<ConfigStatus, ViewError> {
        let reply = self
            .client
            .clone()
            .config_status(pb::Empty {})
            .await
            .map_err(|s| view_error("ConfigStatus", &s))?;
        Ok(config_from_proto(reply.into_inner()))
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
        enabled: v.enabled,
        vips: v.vips,
        services: v.services.into_iter().map(service_from_proto).collect(),
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
        address: d.address,
        port: d.port,
        weight: d.weight,
        healthy: d.healthy,
        active: d.active,
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
