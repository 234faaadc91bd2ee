//! The ha process's port to the engine: the two calls it needs, in domain types, with the gRPC
//! adapter over the engine's Unix socket. Proto messages are converted here and go no further.
//! The advert key files the engine names are read here too (the node does no io): a key that
//! cannot be used arrives at the node as [`crate::auth::AuthSetting::Unusable`], and is read
//! again at every config fetch.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::engine::engine_client::EngineClient;
use seesaw_proto::engine::{self as pb};
use tonic::transport::Channel;

use crate::advert::Rejections;
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
    /// Datagrams dropped, by reason (bad MACs, replays, ...), since the process started.
    pub adverts_rejected: Rejections,
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
            client: EngineClient::new(seesaw_common::uds::channel(&path, timeout))
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
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
        auth: crate::auth::load_keys(&c.auth_key_file, &c.auth_accept_key_file),
    }
}

fn report_to_proto(r: HaReport) -> pb::HaStatus {
    pb::HaStatus {
        state: r.state.as_str().to_owned(),
        since_ms: r.since_ms,
        transitions: r.transitions,
        adverts_sent: r.adverts_sent,
        adverts_received: r.adverts_received,
        adverts_rejected: r
            .adverts_rejected
            .nonzero()
            .map(|(reason, n)| (reason.to_owned(), n))
            .collect(),
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
            ..Default::default()
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
        assert_eq!(c.auth, crate::auth::AuthSetting::Off);
    }

    #[test]
    fn key_files_are_read_at_the_edge_and_bad_ones_are_unusable() {
        use std::os::unix::fs::PermissionsExt;

        use crate::auth::{AuthSetting, Key};
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, bytes: &[u8], mode: u32| {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).expect("chmod");
            path.display().to_string()
        };
        let good = write("ha.key", &[1u8; 33], 0o600);
        let next = write("next.key", &[2u8; 32], 0o600);
        let open = write("open.key", &[1u8; 33], 0o644);
        let short = write("short.key", &[1u8; 31], 0o600);
        let with = |send: &str, accept: &str| {
            config_from_proto(pb::HaConfig {
                auth_key_file: send.into(),
                auth_accept_key_file: accept.into(),
                ..Default::default()
            })
            .auth
        };
        match with(&good, &next) {
            AuthSetting::Keys(k) => {
                assert_eq!(k.send, Key::derive(&[1u8; 33]));
                assert_eq!(k.accept, Some(Key::derive(&[2u8; 32])));
            }
            other => panic!("expected keys, got {other:?}"),
        }
        for (send, accept, says) in [
            (open.as_str(), "", "must be mode 0600"),
            (short.as_str(), "", "holds 31 bytes"),
            (good.as_str(), short.as_str(), "short.key"),
            (
                "/nonexistent/ha.key",
                "",
                "/nonexistent/ha.key: cannot read",
            ),
            ("", good.as_str(), "without auth_key_file"),
        ] {
            match with(send, accept) {
                AuthSetting::Unusable(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{send} {accept}: expected unusable, got {other:?}"),
            }
        }
    }

    #[test]
    fn report_uses_wire_state_names() {
        let p = report_to_proto(HaReport {
            state: State::Leader,
            since_ms: 1_700_000_000_000,
            transitions: 2,
            adverts_sent: 0,
            adverts_received: 0,
            adverts_rejected: {
                let mut r = Rejections::default();
                r.add(&crate::advert::AdvertError::BadMac);
                r.add(&crate::advert::AdvertError::BadMac);
                r
            },
        });
        assert_eq!(p.state, "LEADER");
        assert_eq!(
            p.adverts_rejected.into_iter().collect::<Vec<_>>(),
            [("bad_mac".to_owned(), 2)]
        );
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
