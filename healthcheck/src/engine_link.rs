//! What this process needs from the engine ([`EngineLink`]: fetch the check set, report results),
//! the gRPC implementation over the engine's Unix socket, and a stateful fake for tests. This is
//! the edge where the engine's protobuf messages become domain types and back.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hyper::{Method, StatusCode, Uri};
use seesaw_proto::engine as pb;
use seesaw_proto::engine::engine_client::EngineClient;
use tonic::transport::Channel;

use crate::check::{
    Batch, CheckId, CheckSpec, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, HttpProbe, ProbeSpec, TcpProbe,
};
use crate::state::Thresholds;

/// Bound on one call to the engine.
pub const RPC_TIMEOUT: Duration = Duration::from_secs(3);

/// Why talking to the engine failed. Every failure is treated as "engine unavailable, retry".
#[derive(Debug, thiserror::Error)]
pub enum EngineLinkError {
    /// The RPC returned an error status (including "could not connect").
    #[error("engine rpc {rpc} failed ({code:?}): {message}")]
    Rpc {
        /// The RPC name.
        rpc: &'static str,
        /// The gRPC status code.
        code: tonic::Code,
        /// The status message.
        message: String,
    },
}

/// The engine, as this process sees it.
pub trait EngineLink: Send + Sync + 'static {
    /// The current check set.
    fn fetch(&self) -> impl Future<Output = Result<Vec<CheckSpec>, EngineLinkError>> + Send;
    /// Delivers one batch of results.
    fn report(&self, batch: &Batch) -> impl Future<Output = Result<(), EngineLinkError>> + Send;
}

/// [`EngineLink`] over the engine's gRPC API.
#[derive(Debug, Clone)]
pub struct GrpcEngineLink {
    client: EngineClient<Channel>,
}

// === impl GrpcEngineLink ===

impl GrpcEngineLink {
    /// A link to the engine socket under `run_dir`. Connects lazily, so the engine need not be up.
    pub fn new(run_dir: &Path) -> Self {
        let path = seesaw_common::paths::engine_socket(run_dir);
        Self::from_channel(seesaw_common::uds::channel(&path, RPC_TIMEOUT))
    }

    /// A link over an existing channel.
    pub fn from_channel(channel: Channel) -> Self {
        Self {
            client: EngineClient::new(channel),
        }
    }
}

impl EngineLink for GrpcEngineLink {
    async fn fetch(&self) -> Result<Vec<CheckSpec>, EngineLinkError> {
        let reply = self
            .client
            .clone()
            .healthchecks(pb::Empty {})
            .await
            .map_err(|s| rpc_error("Healthchecks", &s))?;
        Ok(reply
            .into_inner()
            .checks
            .iter()
            .map(check_from_proto)
            .collect())
    }

    async fn report(&self, batch: &Batch) -> Result<(), EngineLinkError> {
        self.client
            .clone()
            .health_state(batch_to_proto(batch))
            .await
            .map_err(|s| rpc_error("HealthState", &s))?;
        Ok(())
    }
}

fn rpc_error(rpc: &'static str, s: &tonic::Status) -> EngineLinkError {
    EngineLinkError::Rpc {
        rpc,
        code: s.code(),
        message: s.message().to_owned(),
    }
}

// === conversions ===

/// Converts one check from the engine. Never fails: a check this process cannot run becomes
/// [`ProbeSpec::Unsupported`] or [`ProbeSpec::Invalid`] and is reported unhealthy with the reason,
/// so a bad check is visible in `show healthchecks` rather than silently dropped.
pub fn check_from_proto(c: &pb::Check) -> CheckSpec {
    let ms_or = |ms: u32, default: Duration| {
        if ms == 0 {
            default
        } else {
            Duration::from_millis(u64::from(ms))
        }
    };
    CheckSpec {
        id: CheckId(c.id),
        interval: ms_or(c.interval_ms, DEFAULT_INTERVAL),
        timeout: ms_or(c.timeout_ms, DEFAULT_TIMEOUT),
        thresholds: Thresholds {
            rise: c.rise,
            retries: c.retries,
        },
        description: c.description.clone(),
        probe: probe_from_proto(c).unwrap_or_else(|reason| ProbeSpec::Invalid { reason }),
    }
}

fn probe_from_proto(c: &pb::Check) -> Result<ProbeSpec, String> {
    let kind =
        pb::CheckKind::try_from(c.kind).map_err(|_| format!("unknown check kind {}", c.kind))?;
    match kind {
        pb::CheckKind::Tcp | pb::CheckKind::Http => {}
        pb::CheckKind::Unspecified => return Err("check kind not set".to_owned()),
        other => {
            return Ok(ProbeSpec::Unsupported {
                kind: other.as_str_name(),
            });
        }
    }
    let addr = target_addr(&c.target, c.port)?;
    if kind == pb::CheckKind::Tcp {
        return Ok(ProbeSpec::Tcp(TcpProbe {
            addr,
            send: c.send.as_bytes().to_vec(),
            receive: c.receive.as_bytes().to_vec(),
        }));
    }
    let method = if c.method.is_empty() {
        Method::GET
    } else {
        Method::from_bytes(c.method.as_bytes())
            .map_err(|_| format!("invalid http method {:?}", c.method))?
    };
    let path = if c.send.is_empty() { "/" } else { &c.send };
    let path: Uri = path
        .parse()
        .map_err(|_| format!("invalid http path {path:?}"))?;
    let code = if c.code == 0 {
        200
    } else {
        u16::try_from(c.code)
            .ok()
            .filter(|&c| StatusCode::from_u16(c).is_ok())
            .ok_or_else(|| format!("invalid http status code {}", c.code))?
    };
    Ok(ProbeSpec::Http(HttpProbe {
        addr,
        method,
        path,
        code,
        receive: c.receive.as_bytes().to_vec(),
    }))
}

fn target_addr(target: &str, port: u32) -> Result<SocketAddr, String> {
    let bare = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(target);
    let ip: IpAddr = bare
        .parse()
        .map_err(|_| format!("invalid target address {target:?}"))?;
    let port = u16::try_from(port)
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("invalid target port {port}"))?;
    Ok(SocketAddr::new(ip, port))
}

/// Converts a batch for the engine.
pub fn batch_to_proto(b: &Batch) -> pb::HealthBatch {
    pb::HealthBatch {
        results: b
            .results
            .iter()
            .map(|r| pb::HealthResult {
                id: r.id.0,
                healthy: r.healthy,
                message: r.message.clone(),
                checked_at_ms: r.checked_at_ms,
            })
            .collect(),
        full: b.full,
    }
}

#[cfg(any(test, feature = "testing"))]
pub use fake::{FakeEngine, FakeEngineLink};

#[cfg(any(test, feature = "testing"))]
mod fake {
    //! A stateful in-memory engine: holds a check set, can be "down", records every batch and
    //! keeps the engine's view of each check's health.

    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex, MutexGuard};

    use seesaw_proto::engine as pb;

    use super::{EngineLink, EngineLinkError, check_from_proto};
    use crate::check::{Batch, CheckId, CheckResult, CheckSpec};

    /// A handle on the shared fake engine; clones see the same engine.
    #[derive(Debug, Clone, Default)]
    pub struct FakeEngineLink {
        inner: Arc<Mutex<FakeEngine>>,
    }

    /// The fake engine's state.
    #[derive(Debug, Default)]
    pub struct FakeEngine {
        /// What `Healthchecks` returns.
        pub checks: Vec<pb::Check>,
        /// While true, every call fails with `Unavailable`.
        pub down: bool,
        /// Successful fetches so far.
        pub fetches: usize,
        /// Every delivered batch, in order.
        pub batches: Vec<Batch>,
        /// The engine's view: the latest result per id (a full batch replaces it).
        pub health: BTreeMap<CheckId, CheckResult>,
    }

    impl FakeEngineLink {
        /// An engine that is up with no checks.
        pub fn new() -> Self {
            Self::default()
        }

        /// Locks the engine's state for inspection or changes.
        pub fn state(&self) -> MutexGuard<'_, FakeEngine> {
            self.inner
                .lock()
                .expect("fake engine lock poisoned by a failed test")
        }

        fn call(&self, rpc: &'static str) -> Result<MutexGuard<'_, FakeEngine>, EngineLinkError> {
            let st = self.state();
            if st.down {
                return Err(EngineLinkError::Rpc {
                    rpc,
                    code: tonic::Code::Unavailable,
                    message: "fake engine is down".to_owned(),
                });
            }
            Ok(st)
        }
    }

    impl EngineLink for FakeEngineLink {
        async fn fetch(&self) -> Result<Vec<CheckSpec>, EngineLinkError> {
            let mut st = self.call("Healthchecks")?;
            st.fetches += 1;
            Ok(st.checks.iter().map(check_from_proto).collect())
        }

        async fn report(&self, batch: &Batch) -> Result<(), EngineLinkError> {
            let mut st = self.call("HealthState")?;
            if batch.full {
                st.health.clear();
            }
            for r in &batch.results {
                st.health.insert(r.id, r.clone());
            }
            st.batches.push(batch.clone());
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(kind: pb::CheckKind) -> pb::Check {
        pb::Check {
            id: 7,
            kind: kind as i32,
            target: "127.0.0.2".into(),
            port: 8080,
            ..Default::default()
        }
    }

    #[test]
    fn defaults_apply_to_zero_fields() {
        let s = check_from_proto(&check(pb::CheckKind::Http));
        assert_eq!(s.id, CheckId(7));
        assert_eq!(s.interval, DEFAULT_INTERVAL);
        assert_eq!(s.timeout, DEFAULT_TIMEOUT);
        let ProbeSpec::Http(h) = s.probe else {
            panic!("expected http, got {:?}", s.probe);
        };
        assert_eq!(h.addr, "127.0.0.2:8080".parse().unwrap());
        assert_eq!(h.method, Method::GET);
        assert_eq!(h.path, "/");
        assert_eq!(h.code, 200);
    }

    #[test]
    fn tcp_and_ipv6_targets() {
        let mut c = check(pb::CheckKind::Tcp);
        c.target = "::1".into();
        c.send = "PING".into();
        c.receive = "PONG".into();
        c.interval_ms = 2000;
        let s = check_from_proto(&c);
        assert_eq!(s.interval, Duration::from_secs(2));
        assert_eq!(
            s.probe,
            ProbeSpec::Tcp(TcpProbe {
                addr: "[::1]:8080".parse().unwrap(),
                send: b"PING".to_vec(),
                receive: b"PONG".to_vec(),
            })
        );
    }

    #[test]
    fn unusable_checks_become_explicit() {
        let s = check_from_proto(&check(pb::CheckKind::Icmp));
        assert_eq!(s.probe, ProbeSpec::Unsupported { kind: "ICMP" });

        let mut c = check(pb::CheckKind::Tcp);
        c.target = "backend.example".into();
        assert_eq!(
            check_from_proto(&c).probe,
            ProbeSpec::Invalid {
                reason: "invalid target address \"backend.example\"".into()
            }
        );
        let mut c = check(pb::CheckKind::Tcp);
        c.port = 70000;
        assert_eq!(
            check_from_proto(&c).probe,
            ProbeSpec::Invalid {
                reason: "invalid target port 70000".into()
            }
        );
        let mut c = check(pb::CheckKind::Http);
        c.method = "GE T".into();
        assert!(matches!(
            check_from_proto(&c).probe,
            ProbeSpec::Invalid { .. }
        ));
        let mut c = check(pb::CheckKind::Http);
        c.code = 42;
        assert!(matches!(
            check_from_proto(&c).probe,
            ProbeSpec::Invalid { .. }
        ));
        let mut c = check(pb::CheckKind::Tcp);
        c.kind = 99;
        assert_eq!(
            check_from_proto(&c).probe,
            ProbeSpec::Invalid {
                reason: "unknown check kind 99".into()
            }
        );
    }
}
