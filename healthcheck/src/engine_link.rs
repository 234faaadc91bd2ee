//! What this process needs from the engine ([`EngineLink`]: fetch the check set, report results),
//! the gRPC implementation over the engine's Unix socket, and a stateful fake for tests. This is
//! the edge where the engine's protobuf messages become domain types and back.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use hickory_proto::rr::RecordType;
use hyper::{Method, Uri};
use seesaw_proto::engine as pb;
use seesaw_proto::engine::engine_client::EngineClient;
use tonic::transport::Channel;

use crate::check::{
    Batch, CheckId, CheckSpec, DEFAULT_INTERVAL, DEFAULT_TIMEOUT, Dial, DnsProbe, HttpProbe,
    IcmpProbe, LATENCY_BOUNDS_US, MysqlProbe, ProbeSpec, ProbeStats, RadiusExpect, RadiusProbe,
    TcpProbe, TlsSpec, UdpProbe,
};
use crate::codec::dns;
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
            client: EngineClient::new(channel)
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
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
/// [`ProbeSpec::Invalid`] and is reported unhealthy with the reason, so a bad check is visible in
/// `show healthchecks` rather than silently dropped.
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

/// How a check reaches its backend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Plain,
    /// DSR or TUN: through the VIP with a firewall mark.
    ThroughVip,
}

fn probe_from_proto(c: &pb::Check) -> Result<ProbeSpec, String> {
    use pb::CheckKind as K;
    let kind = K::try_from(c.kind).map_err(|_| format!("unknown check kind {}", c.kind))?;
    let mode = match c.mode.to_ascii_uppercase().as_str() {
        "" | "PLAIN" => Mode::Plain,
        "DSR" | "TUN" => Mode::ThroughVip,
        other => return Err(format!("unknown check mode {other:?}")),
    };
    let ip = target_ip(&c.target)?;
    let through = match mode {
        Mode::Plain => None,
        Mode::ThroughVip if kind == K::Icmp => None,
        Mode::ThroughVip => Some(through_vip(c, ip)?),
    };
    let dial_at = |default_port| dial(ip, c.port, default_port, through);
    match kind {
        K::Unspecified => Err("check kind not set".to_owned()),
        K::Icmp => {
            if mode == Mode::ThroughVip {
                // An ICMP echo cannot be steered to one backend through the VIP (Seesaw rejects it
                // too): the check would only ever test the load balancer itself.
                return Err(format!(
                    "icmp checks cannot run in {} mode",
                    c.mode.to_uppercase()
                ));
            }
            Ok(ProbeSpec::Icmp(IcmpProbe { ip }))
        }
        K::Tcp | K::TcpTls => Ok(ProbeSpec::Tcp(TcpProbe {
            dial: dial_at(None)?,
            // Through the VIP the backend answers as the VIP: its certificate names the VIP.
            tls: (kind == K::TcpTls).then_some(TlsSpec {
                verify: c.tls_verify,
                server: through.map_or(ip, |(vip, _)| vip).to_string(),
            }),
            send: c.send.as_bytes().to_vec(),
            receive: c.receive.as_bytes().to_vec(),
        })),
        K::Udp => Ok(ProbeSpec::Udp(UdpProbe {
            dial: dial_at(None)?,
            send: c.send.as_bytes().to_vec(),
            receive: c.receive.as_bytes().to_vec(),
        })),
        K::Http | K::Https => http_from_proto(c, kind == K::Https, dial_at(None)?),
        K::Dns => {
            let qtype = if c.method.is_empty() {
                RecordType::A
            } else {
                c.method
                    .to_ascii_uppercase()
                    .parse::<RecordType>()
                    .ok()
                    .filter(|t| !matches!(t, RecordType::Unknown(_)))
                    .ok_or_else(|| format!("invalid dns query type {:?}", c.method))?
            };
            if c.send.is_empty() {
                return Err("dns check without a query name (send)".to_owned());
            }
            let name = dns::fqdn(&c.send)?;
            let expect = dns::parse_expect(qtype, &c.receive)?;
            Ok(ProbeSpec::Dns(DnsProbe {
                dial: dial_at(Some(53))?,
                name,
                qtype,
                expect,
            }))
        }
        K::Radius => {
            let mut parts = c.send.splitn(3, ':');
            let (Some(user), Some(password), Some(secret)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err("radius check send must be user:password:secret".to_owned());
            };
            if secret.is_empty() {
                return Err("radius check without a shared secret".to_owned());
            }
            let expect = match c.receive.to_ascii_lowercase().as_str() {
                "" | "accept" => RadiusExpect::Accept,
                "challenge" => RadiusExpect::Challenge,
                "reject" => RadiusExpect::Reject,
                "any" => RadiusExpect::Any,
                other => {
                    return Err(format!(
                        "radius receive must be accept, challenge, reject or any, not {other:?}"
                    ));
                }
            };
            Ok(ProbeSpec::Radius(RadiusProbe {
                dial: dial_at(Some(1812))?,
                user: user.to_owned(),
                password: password.to_owned(),
                secret: secret.to_owned(),
                expect,
            }))
        }
        K::Mysql => Ok(ProbeSpec::Mysql(MysqlProbe {
            dial: dial_at(Some(3306))?,
        })),
    }
}

/// The HTTP(S) request, as Seesaw's HTTP checker builds it: `send` is a path (default `/`) or
/// an absolute URL whose scheme is replaced by the check's (`http` for HTTP, `https` for HTTPS).
/// The URL's host is the `Host` header and, for HTTPS, the TLS server name (SNI and certificate
/// verification); a bare path uses `ip:port` and the dialled address. With `proxy`, the backend
/// is an HTTP proxy, reached the way Go's transport reaches one: HTTP sends the absolute URL as
/// the request target; HTTPS does TLS with the proxy, `CONNECT`s to the URL's host (port 443 by
/// default), then TLS again inside the tunnel and an origin-form request.
fn http_from_proto(c: &pb::Check, secure: bool, dial: Dial) -> Result<ProbeSpec, String> {
    let method = if c.method.is_empty() {
        Method::GET
    } else {
        Method::from_bytes(c.method.as_bytes())
            .map_err(|_| format!("invalid http method {:?}", c.method))?
    };
    let send = if c.send.is_empty() { "/" } else { &c.send };
    let parsed: Uri = send
        .parse()
        .map_err(|_| format!("invalid http request {send:?}"))?;
    // Only a URL with a scheme is absolute; `host:port` alone would parse as an authority.
    let (authority, path) = match parsed.scheme().and(parsed.authority()) {
        Some(auth) => (
            auth.clone(),
            parsed
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
        ),
        None => {
            if !send.starts_with('/') {
                return Err(format!(
                    "invalid http request {send:?} (want /path or a URL)"
                ));
            }
            let auth = dial
                .addr
                .to_string()
                .parse()
                .map_err(|_| format!("invalid http request {send:?}"))?;
            (auth, send.to_owned())
        }
    };
    let from_url = parsed.scheme().is_some();
    let host = authority.to_string();
    let origin: Uri = path
        .parse()
        .map_err(|_| format!("invalid http request {send:?}"))?;
    let (uri, tunnel) = match (c.proxy, secure) {
        (false, _) => (origin, None),
        (true, false) => (
            format!("http://{authority}{path}")
                .parse()
                .map_err(|_| format!("invalid http request {send:?}"))?,
            None,
        ),
        (true, true) => (
            origin,
            Some(format!(
                "{}:{}",
                authority.host(),
                authority.port_u16().unwrap_or(443)
            )),
        ),
    };
    let server = if from_url {
        authority.host().to_owned()
    } else {
        dial.addr.ip().to_string()
    };
    let code = if c.code == 0 {
        200
    } else {
        u16::try_from(c.code)
            .ok()
            .filter(|&c| (100..=599).contains(&c))
            .ok_or_else(|| format!("invalid http status code {}", c.code))?
    };
    Ok(ProbeSpec::Http(HttpProbe {
        dial,
        tls: secure.then_some(TlsSpec {
            verify: c.tls_verify,
            server,
        }),
        method,
        uri,
        tunnel,
        host,
        code,
        receive: c.receive.as_bytes().to_vec(),
    }))
}

/// Where the probe connects: the backend `ip`, or for a DSR/TUN check (`through` = the VIP and
/// the backend's probe mark) the VIP, marked so the data plane forwards it to `ip`. The port is
/// the check's port either way (a default for DNS, RADIUS and MySQL when 0).
fn dial(
    ip: IpAddr,
    port: u32,
    default_port: Option<u16>,
    through: Option<(IpAddr, u32)>,
) -> Result<Dial, String> {
    let port = match (port, default_port) {
        (0, Some(d)) => d,
        (p, _) => u16::try_from(p)
            .ok()
            .filter(|&p| p != 0)
            .ok_or_else(|| format!("invalid target port {port}"))?,
    };
    Ok(match through {
        None => Dial::plain(SocketAddr::new(ip, port)),
        Some((vip, mark)) => Dial::through_vip(SocketAddr::new(vip, port), mark, ip),
    })
}

/// The VIP and mark of a DSR/TUN check. Without them the probe could only go to the backend
/// directly, which would not test what the mode promises, so the check is refused instead.
fn through_vip(c: &pb::Check, target: IpAddr) -> Result<(IpAddr, u32), String> {
    let mode = c.mode.to_ascii_uppercase();
    if c.vip.is_empty() {
        return Err(format!("{mode} check without a VIP from the engine"));
    }
    let vip = target_ip(&c.vip).map_err(|_| format!("invalid {mode} check VIP {:?}", c.vip))?;
    if vip.is_ipv4() != target.is_ipv4() {
        return Err(format!(
            "{mode} check VIP {vip} and backend {target} are of different address families"
        ));
    }
    if c.mark == 0 {
        return Err(format!(
            "{mode} check without a firewall mark from the engine"
        ));
    }
    Ok((vip, c.mark))
}

fn target_ip(target: &str) -> Result<IpAddr, String> {
    let bare = target
        .strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .unwrap_or(target);
    bare.parse()
        .map_err(|_| format!("invalid target address {target:?}"))
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
                stats: Some(stats_to_proto(&r.stats)),
            })
            .collect(),
        full: b.full,
        // Once per batch rather than per result: a third of the statistics' bytes.
        latency_bounds_us: LATENCY_BOUNDS_US.to_vec(),
    }
}

/// Converts a check's probe statistics; the histogram bounds travel once per batch
/// ([`batch_to_proto`]), so the engine and the ECU need no copy of [`LATENCY_BOUNDS_US`].
pub fn stats_to_proto(s: &ProbeStats) -> pb::ProbeStats {
    pb::ProbeStats {
        successes: s.successes,
        failures: s.failures,
        last_latency_us: s.last_latency_us,
        latency_sum_us: s.latency_sum_us,
        latency_bounds_us: Vec::new(),
        latency_counts: s.latency_counts.to_vec(),
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
mod tests;
