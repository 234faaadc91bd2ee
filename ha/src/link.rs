//! The ha process's port to the engine: the two calls it needs, in domain types, with the gRPC
//! adapter over the engine's Unix socket. Proto messages are converted here and go no further.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use seesaw_proto::engine::{self as pb};
use tonic::transport::Channel;

use crate::node::{HaConfig, State};

#[cfg(any(test, feature = "testing"))]
pub mod fake;

/// What the ha process tells the engine: a [`crate::node::Status`] with wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HaReport {
    /// The current state.
    pub state: State,
    /// UNIX milliseconds of the last transition.
    pub since_ms: i64,
    /// Transitions since the process started.
    pub transitions: u64,
    /// Advertisements sent.
    pub adverts_sent: u64,
    /// Advertisements received.
    pub adverts_received: u64,
}

/// Why a call to the engine failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The call failed (engine down, socket missing, timeout, refused).
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

/// What the ha process needs from the engine.
pub trait EngineLink: Send {
    /// The HA part of the running cluster config.
    fn ha_config(&mut self) -> impl Future<Output = Result<HaConfig, LinkError>> + Send;
    /// Reports the node's status; `Ok(true)` means the operator asked for a failover.
    fn ha_update(
        &mut self,
        report: HaReport,
    ) -> impl Future<Output = Result<bool, LinkError>> + Send;
}

/// [`EngineLink`] over the engine's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcEngineLink {
    client: EngineClient<Channel>,
}

// === impl GrpcEngineLink ===

impl GrpcEngineLink {
    /// A lazily connecting link to the engine socket under `run_dir`; every call gets `timeout`.
    /// Must be called inside a tokio runtime.
    pub fn new(run_dir: &Path, timeout: Duration) -> Self {
        let path = seesaw_common::paths::engine_socket(run_dir);
        Self {
            client: EngineClient::new(seesaw_common::uds::channel(&path, timeout)),
        }
    }
}

impl EngineLink for GrpcEngineLink {
    async fn ha_config(&mut self) -> Result<HaConfig, LinkError> {
        let reply = self
            .client
            .ha_config(pb::Empty {})
            .await
            .map_err(|s| rpc_error("HaConfig", &s))?;
        Ok(config_from_proto(reply.into_inner()))
    }

    async fn ha_update(&mut self, report: HaReport) -> Result<bool, LinkError> {
        let reply = self
            .client
            .ha_update(report_to_proto(report))
            .await
            .map_err(|s| rpc_error("HaUpdate", &s))?;
        Ok(reply.into_inner().failover)
    }
}

fn rpc_error(call: &'static str, status: &tonic::Status) -> LinkError {
    LinkError::Rpc {
        call,
        code: status.code(),
        message: status.message().to_owned(),
    }
}

fn config_from_proto(c: pb::HaConfig) -> HaConfig {
    // An empty or blank remote address is how the engine says "no peer".
    let remote = c.remote_addr.trim();
    HaConfig {
        enabled: c.enabled,
        local_addr: c.local_addr,
        remote_addr: (!remote.is_empty()).then(|| remote.to_owned()),
        priority: c.priority,
        vrid: c.vrid,
        // 0 is an engine that predates the field: Seesaw's default.
        advert_interval: if c.advert_interval_ms == 0 {
            crate::node::DEFAULT_ADVERT_INTERVAL
        } else {
            Duration::from_millis(u64::from(c.advert_interval_ms))
        },
        preempt: c.preempt,
    }
}

fn report_to_proto(r: HaReport) -> pb::HaStatus {
    pb::HaStatus {
        state: r.state.as_str().to_owned(),
        since_ms: r.since_ms,
        transitions: r.transitions,
        adverts_sent: r.adverts_sent,
        adverts_received: r.adverts_received,
        // Set by the engine when it receives the update.
        last_update_ms: 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_remote_means_no_peer() {
        let c = config_from_proto(pb::HaConfig {
            enabled: true,
            local_addr: "192.0.2.1".into(),
            remote_addr: "  ".into(),
            priority: 100,
            vrid: 60,
            advert_interval_ms: 100,
            preempt: true,
        });
        assert_eq!(c.remote_addr, None);
        assert_eq!(c.advert_interval, Duration::from_millis(100));
        assert!(c.preempt);
        let c = config_from_proto(pb::HaConfig {
            remote_addr: "192.0.2.2".into(),
            ..Default::default()
        });
        assert_eq!(c.remote_addr.as_deref(), Some("192.0.2.2"));
        assert_eq!(c.advert_interval, crate::node::DEFAULT_ADVERT_INTERVAL);
    }

    #[test]
    fn report_uses_wire_state_names() {
        let p = report_to_proto(HaReport {
            state: State::Leader,
            since_ms: 1_700_000_000_000,
            transitions: 2,
            adverts_sent: 0,
            adverts_received: 0,
        });
        assert_eq!(p.state, "LEADER");
        assert_eq!(p.since_ms, 1_700_000_000_000);
        assert_eq!(p.transitions, 2);
    }

    #[tokio::test]
    async fn grpc_link_reports_a_missing_engine_as_unavailable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut link = GrpcEngineLink::new(dir.path(), Duration::from_secs(1));
        match link.ha_config().await {
            Err(LinkError::Rpc { call, code, .. }) => {
                assert_eq!(call, "HaConfig");
                assert_eq!(code, tonic::Code::Unavailable);
            }
            other => panic!("expected an rpc error, got {other:?}"),
        }
    }
}
