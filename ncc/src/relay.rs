//! The proxy plane as ncc sees it when the relay runs in its own process (`seesaw_proxy`): the
//! listening sockets and every relayed connection live there, so they outlive ncc — kill -9 of
//! ncc breaks no connection, and a restarted ncc adopts what the relay holds (the relay diffs
//! each desired state against its own truth).
//!
//! ncc talks to the relay with the same `Ncc` gRPC API the engine uses on ncc (`Apply` with the
//! services only, `GetState`, `Watch`), over the relay's Unix socket. Calls are blocking: ncc
//! makes them from the blocking thread its applies run on. The relay's `Watch` stream gives its
//! boot id; a new one (the relay restarted, empty) becomes this plane's [`Dataplane::epoch`], so
//! the engine re-sends the desired state at once and the relay is refilled within milliseconds
//! of its restart.

use std::path::{Path, PathBuf};
use std::time::Duration;

use seesaw_proto::ncc as pb;
use tokio::runtime::Handle;
use tonic::transport::Channel;

use crate::NccError;
use crate::dataplane::{Change, Dataplane, ServiceStats, StatsReader, check, fold};
use crate::model::Service;

/// Deadline of one call to the relay (an apply binds sockets: at 10,000 services, seconds).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often the watcher retries a relay that is away.
const WATCH_RETRY: Duration = Duration::from_millis(20);

/// The proxy relay, driven from ncc.
#[derive(Debug)]
pub struct RelayPlane {
    socket: PathBuf,
    client: pb::ncc_client::NccClient<Channel>,
    handle: Handle,
    /// What the relay accepted last (its truth is its own; this serves [`Dataplane::current`]).
    held: Vec<Service>,
    epoch: tokio::sync::watch::Receiver<u64>,
    watcher: tokio::task::JoinHandle<()>,
}

impl Drop for RelayPlane {
    fn drop(&mut self) {
        self.watcher.abort();
    }
}

impl RelayPlane {
    /// A plane driving the relay at `socket`, with calls and the watcher on `handle`. Connects
    /// lazily: the relay may start after ncc (or restart at any time).
    pub fn connect(socket: &Path, handle: Handle) -> Self {
        let _guard = handle.enter();
        let channel = seesaw_common::uds::channel(socket, CALL_TIMEOUT);
        let client = pb::ncc_client::NccClient::new(channel)
            .max_decoding_message_size(seesaw_common::uds::MAX_MESSAGE)
            .max_encoding_message_size(seesaw_common::uds::MAX_MESSAGE);
        let (tx, epoch) = tokio::sync::watch::channel(0);
        let watcher = handle.spawn(watch_relay(client.clone(), socket.to_owned(), tx));
        Self {
            socket: socket.to_owned(),
            client,
            handle: handle.clone(),
            held: Vec::new(),
            epoch,
            watcher,
        }
    }

    fn unreachable(&self, s: &tonic::Status) -> NccError {
        NccError::Plane(format!(
            "the proxy relay seesaw_proxy at {} is not answering ({}: {}); the watchdog \
             restarts it, and ncc re-sends the services the moment it is back",
            self.socket.display(),
            s.code(),
            s.message()
        ))
    }

    /// Sends `desired` to the relay; returns the changes it made.
    fn send(&mut self, desired: &[Service]) -> Result<Vec<String>, NccError> {
        let mut client = self.client.clone();
        let req = crate::convert::services_to_pb(desired);
        let reply = self.handle.block_on(client.apply(req));
        match reply {
            Ok(r) => {
                self.held = desired.to_vec();
                Ok(r.into_inner().changes)
            }
            Err(s) => Err(match s.code() {
                tonic::Code::InvalidArgument => NccError::Invalid(vec![relayed(&s)]),
                tonic::Code::FailedPrecondition => NccError::Unsupported(vec![relayed(&s)]),
                tonic::Code::Aborted | tonic::Code::Internal => NccError::Plane(relayed(&s)),
                _ => self.unreachable(&s),
            }),
        }
    }
}

/// The relay's own message, without the "data plane error: " its status repeats.
fn relayed(s: &tonic::Status) -> String {
    let m = s.message();
    for prefix in [
        "data plane error: ",
        "invalid request: ",
        "not supported by this data plane: ",
    ] {
        if let Some(rest) = m.strip_prefix(prefix) {
            return format!("proxy relay: {rest}");
        }
    }
    format!("proxy relay: {m}")
}

/// Follows the relay's `Watch` stream for as long as the plane lives, publishing each boot id
/// it announces (a new one: the relay restarted).
async fn watch_relay(
    client: pb::ncc_client::NccClient<Channel>,
    socket: PathBuf,
    tx: tokio::sync::watch::Sender<u64>,
) {
    let mut away_logged = false;
    loop {
        let mut c = client.clone();
        match c.watch(pb::Empty {}).await {
            Ok(reply) => {
                let mut stream = reply.into_inner();
                while let Ok(Some(boot)) = stream.message().await {
                    let old = tx.send_replace(boot.boot_id);
                    if old != boot.boot_id {
                        tracing::info!(
                            relay = %socket.display(),
                            restarted = old != 0,
                            "proxy relay connected"
                        );
                    }
                    away_logged = false;
                }
                tracing::warn!(relay = %socket.display(), "proxy relay went away");
            }
            Err(e) if !away_logged => {
                tracing::warn!(relay = %socket.display(), error = %e.message(), "proxy relay not reachable yet");
                away_logged = true;
            }
            Err(_) => {}
        }
        tokio::time::sleep(WATCH_RETRY).await;
    }
}

impl Dataplane for RelayPlane {
    fn kind(&self) -> &'static str {
        "proxy"
    }

    fn unsupported(&self, s: &Service) -> Option<String> {
        crate::dataplane::proxy::unsupported(s)
    }

    fn current(&self) -> Vec<Service> {
        self.held.clone()
    }

    /// Adopts what the relay holds (`GetState`): a new ncc over a running relay starts from
    /// the relay's services, not from nothing. `GetState` reports keys, schedulers, modes,
    /// persistence, destinations and marks; proxy options, backend groups and Maglev anchors
    /// stay the relay's own (ncc sends it whole states, which it diffs against its own truth).
    fn refresh(&mut self) -> Result<(), NccError> {
        let mut client = self.client.clone();
        match self.handle.block_on(client.get_state(pb::Empty {})) {
            Ok(r) => {
                let mut held: Vec<Service> = crate::convert::stats_from_pb(&r.into_inner())
                    .into_iter()
                    .map(|s| s.service)
                    .collect();
                held.sort_by_key(|s| s.key);
                self.held = held;
                Ok(())
            }
            Err(s) => Err(self.unreachable(&s)),
        }
    }

    /// Sends what `changes` make of the held services; refuses, sending nothing, changes that
    /// name a service the relay does not hold (as a kernel transaction would).
    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        let mut keys: std::collections::BTreeSet<_> = self.held.iter().map(|s| s.key).collect();
        for c in changes {
            let key = match c {
                Change::AddService(s) => {
                    keys.insert(s.key);
                    continue;
                }
                Change::DeleteService(k) => {
                    if !keys.remove(k) {
                        return Err(NccError::Inconsistent(format!("no service {k}")));
                    }
                    continue;
                }
                Change::UpdateService(s) => s.key,
                Change::AddDest(k, _) | Change::UpdateDest(k, _) | Change::DeleteDest(k, _) => *k,
            };
            if !keys.contains(&key) {
                return Err(NccError::Inconsistent(format!("no service {key}")));
            }
        }
        let desired = fold(&self.held, changes);
        self.send(&desired).map(|_| ())
    }

    fn stats(&self) -> Vec<ServiceStats> {
        (self.stats_reader())()
    }

    fn stats_reader(&self) -> StatsReader {
        let (mut client, handle) = (self.client.clone(), self.handle.clone());
        Box::new(
            move || match handle.block_on(client.get_state(pb::Empty {})) {
                Ok(r) => crate::convert::stats_from_pb(&r.into_inner()),
                Err(e) => {
                    tracing::warn!(error = %e.message(), "cannot read the proxy relay's counters");
                    Vec::new()
                }
            },
        )
    }

    fn apply_desired(&mut self, desired: &[Service]) -> Result<Vec<String>, NccError> {
        check(&*self, desired)?;
        self.send(desired)
    }

    fn epoch(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.epoch.clone())
    }

    fn trace(
        &mut self,
        flow: &crate::dataplane::trace::TraceFlow,
    ) -> crate::dataplane::trace::PlaneTrace {
        use crate::dataplane::trace;
        let mut client = self.client.clone();
        let protocol = pb::Protocol::from(flow.proto);
        let req = pb::TraceRequest {
            protocol: protocol.into(),
            client: flow.client.to_string(),
            vip: flow.vip.to_string(),
        };
        match self.handle.block_on(client.trace(req)) {
            Ok(r) => trace::PlaneTrace::from(r.into_inner()),
            Err(s) => trace::PlaneTrace {
                plane: "proxy".to_owned(),
                notes: vec![self.unreachable(&s).to_string()],
                ..Default::default()
            },
        }
    }
}

#[cfg(test)]
mod tests {
    /// The proxy plane: the relay (ncc's server over a `ProxyPlane`, which binds the VIPs' sockets,
    /// so in a namespace whose loopback holds the battery's VIPs) outlives each `RelayPlane`, as
    /// `seesaw_proxy` outlives a restarted ncc.
    #[test]
    fn contract_proxy_relay_in_a_private_netns() {
        crate::test_support::in_private_netns("the proxy plane's contract battery", || {
            for args in [
                &["link", "set", "lo", "up"][..],
                &["addr", "add", "198.51.100.1/32", "dev", "lo"],
                &["addr", "add", "198.51.100.3/32", "dev", "lo"],
                &["addr", "add", "2001:db8::1/128", "dev", "lo"],
            ] {
                let ok = std::process::Command::new("ip")
                    .args(args)
                    .status()
                    .is_ok_and(|s| s.success());
                assert!(ok, "ip {args:?}");
            }
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let dir = tempfile::tempdir().expect("temp dir");
            let sock = dir.path().join("relay.sock");
            let stop = tokio_util::sync::CancellationToken::new();
            let listener = {
                let _in = rt.enter();
                tokio::net::UnixListener::bind(&sock).expect("bind the relay socket")
            };
            rt.spawn(crate::server::run(
                crate::dataplane::proxy::ProxyPlane::new(),
                listener,
                stop.clone(),
            ));
            let handle = rt.handle().clone();
            crate::dataplane::contract::battery(&mut || {
                Box::new(super::RelayPlane::connect(&sock, handle.clone()))
            });
            stop.cancel();
        });
    }
}
