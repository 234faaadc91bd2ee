//! Peer sync between the two engines of a pair, over TCP on `<node_ip>:<sync_port>` (Seesaw:
//! 10258). The server answers only the configured peer or loopback (checked on the connection's
//! source address). The backup polls the master's overrides every 2 s and mirrors them, relays an
//! operator's `failover` to the master, and can take its cluster config from the peer
//! (`config source peer`). Unlike Seesaw, the backup mirrors the master's full override set each
//! poll, so a lost message or a restart can never leave the two nodes out of step.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use seesaw_proto::sync as pb;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::events::{Event, Snapshot};
pub use crate::overrides::PeerOverride;
use crate::overrides::{OverrideKind, OverrideState};

/// How often the backup mirrors the master's overrides.
pub const POLL_EVERY: Duration = Duration::from_secs(2);
/// Deadline of every sync call.
const CALL_TIMEOUT: Duration = Duration::from_secs(5);

/// Serves the sync API on `listener` until `shutdown`; `allowed` are the peer's addresses.
pub async fn serve(
    listener: tokio::net::TcpListener,
    allowed: Vec<IpAddr>,
    config_dir: PathBuf,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let svc = SyncService {
        allowed,
        config_dir,
        snapshot,
        events,
    };
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener);
    tonic::transport::Server::builder()
        .timeout(CALL_TIMEOUT)
        .add_service(
            pb::engine_sync_server::EngineSyncServer::new(svc)
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
        )
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
        .await
}

struct SyncService {
    allowed: Vec<IpAddr>,
    config_dir: PathBuf,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    events: mpsc::Sender<Event>,
}

impl SyncService {
    /// Only the configured peer, or this node itself (local tools), may use the sync API. Plain
    /// loopback is not enough: on a lab host the nodes themselves have loopback addresses.
    fn admit<T>(&self, req: &Request<T>) -> Result<(), Status> {
        match req.remote_addr().map(|a| a.ip()) {
            Some(ip) if self.allowed.contains(&ip) => Ok(()),
            Some(ip) => Err(Status::permission_denied(format!(
                "{ip} is not this node's peer"
            ))),
            None => Err(Status::permission_denied("unknown peer address")),
        }
    }
}

#[tonic::async_trait]
impl pb::engine_sync_server::EngineSync for SyncService {
    async fn overrides(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::OverrideSet>, Status> {
        self.admit(&req)?;
        let s = self.snapshot.borrow().clone();
        Ok(Response::new(pb::OverrideSet {
            overrides: s
                .overrides
                .iter()
                .map(|(kind, target, state, by, _)| pb::PeerOverride {
                    kind: kind.as_str().to_owned(),
                    target: target.clone(),
                    state: state.as_str().to_owned(),
                    set_by: by.clone(),
                })
                .collect(),
            ha_state: s.ha.state.as_str().to_owned(),
        }))
    }

    async fn failover(
        &self,
        req: Request<pb::Empty>,
    ) -> Result<Response<pb::FailoverReply>, Status> {
        self.admit(&req)?;
        let (tx, rx) = oneshot::channel();
        self.events
            .send(Event::Failover(tx))
            .await
            .map_err(|_| Status::unavailable("engine is shutting down"))?;
        match rx
            .await
            .map_err(|_| Status::unavailable("engine stopped"))?
        {
            Ok(message) => Ok(Response::new(pb::FailoverReply { message })),
            Err(e) => Err(Status::failed_precondition(e)),
        }
    }

    async fn config(&self, req: Request<pb::Empty>) -> Result<Response<pb::ClusterConfig>, Status> {
        self.admit(&req)?;
        let bytes = tokio::fs::read(self.config_dir.join("cluster.pb"))
            .await
            .map_err(|e| Status::unavailable(format!("cluster.pb: {e}")))?;
        Ok(Response::new(pb::ClusterConfig { cluster_pb: bytes }))
    }
}

/// A client for the peer's sync API.
#[derive(Debug, Clone)]
pub struct PeerClient {
    client: pb::engine_sync_client::EngineSyncClient<tonic::transport::Channel>,
    addr: SocketAddr,
}

impl PeerClient {
    /// A lazily connecting client for the peer at `addr`.
    pub fn new(addr: SocketAddr) -> Result<Self, String> {
        let endpoint = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .timeout(CALL_TIMEOUT)
            .connect_timeout(Duration::from_secs(2));
        Ok(Self {
            client: pb::engine_sync_client::EngineSyncClient::new(endpoint.connect_lazy())
                .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
                .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE),
            addr,
        })
    }

    /// The master's overrides and its HA state.
    pub async fn overrides(&self) -> Result<(Vec<PeerOverride>, String), String> {
        let r = self
            .client
            .clone()
            .overrides(pb::Empty {})
            .await
            .map_err(|s| format!("peer {}: {}", self.addr, s.message()))?
            .into_inner();
        let mut out = Vec::new();
        for o in r.overrides {
            let kind = match o.kind.as_str() {
                "vserver" => OverrideKind::Vserver,
                "backend" => OverrideKind::Backend,
                "destination" => OverrideKind::Destination,
                other => return Err(format!("peer sent unknown override kind {other:?}")),
            };
            let state = match o.state.as_str() {
                "enabled" => OverrideState::Enabled,
                "disabled" => OverrideState::Disabled,
                other => return Err(format!("peer sent unknown override state {other:?}")),
            };
            out.push(PeerOverride {
                kind,
                target: o.target,
                state,
                set_by: o.set_by,
            });
        }
        Ok((out, r.ha_state))
    }

    /// Asks the peer (the master) to fail over.
    pub async fn failover(&self) -> Result<String, String> {
        self.client
            .clone()
            .failover(pb::Empty {})
            .await
            .map(|r| {
                format!(
                    "relayed to the master {}: {}",
                    self.addr,
                    r.into_inner().message
                )
            })
            .map_err(|s| format!("peer {}: {}", self.addr, s.message()))
    }

    /// The peer's cluster.pb bytes.
    pub async fn config(&self) -> Result<Vec<u8>, String> {
        self.client
            .clone()
            .config(pb::Empty {})
            .await
            .map(|r| r.into_inner().cluster_pb)
            .map_err(|s| format!("peer {}: {}", self.addr, s.message()))
    }
}
