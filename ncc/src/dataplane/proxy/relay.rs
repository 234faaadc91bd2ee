//! Accepting and relaying TCP connections for one proxy service. Each connection picks a
//! destination from the service's current table, retries the next one if the connect fails or
//! times out, then relays both directions with proper half-close until either side is done.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::sched::Table;
use crate::model::ServiceKey;

/// How long a backend connect may take before the next destination is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// At most this many destinations are tried per client connection.
const MAX_TRIES: usize = 3;

/// Accepts connections until `stop` is cancelled; connections already relaying are not affected.
pub(super) async fn accept_loop(
    listener: TcpListener,
    key: ServiceKey,
    table: Arc<RwLock<Arc<Table>>>,
    stop: CancellationToken,
) {
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((client, peer)) => {
                let table = table.read().expect("table lock poisoned").clone();
                tokio::spawn(async move {
                    if let Err(e) = relay(client, peer, &table).await {
                        tracing::debug!(service = %key, client = %peer, error = %e, "connection ended with an error");
                    }
                });
            }
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                tracing::warn!(service = %key, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    tracing::info!(service = %key, "stopped accepting");
}

async fn relay(mut client: TcpStream, peer: SocketAddr, table: &Table) -> std::io::Result<()> {
    let _ = client.set_nodelay(true);
    let mut tried = Vec::new();
    let (slot, mut backend) = loop {
        let Some((i, slot)) = table.pick(peer.ip(), &tried) else {
            return Err(std::io::Error::other("no destination available"));
        };
        tried.push(i);
        match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(slot.addr)).await {
            Ok(Ok(s)) => break (slot, s),
            Ok(Err(e)) => {
                tracing::debug!(dest = %slot.addr, error = %e, "connect failed, trying the next")
            }
            Err(_) => tracing::debug!(dest = %slot.addr, "connect timed out, trying the next"),
        }
        if tried.len() >= MAX_TRIES.min(table.len()) {
            return Err(std::io::Error::other("every destination tried failed"));
        }
    };
    let _ = backend.set_nodelay(true);
    let c = &slot.counters;
    c.active.fetch_add(1, Ordering::Relaxed);
    c.total.fetch_add(1, Ordering::Relaxed);
    let result = tokio::io::copy_bidirectional(&mut client, &mut backend).await;
    c.active.fetch_sub(1, Ordering::Relaxed);
    let (up, down) = result?;
    c.bytes_in.fetch_add(up, Ordering::Relaxed);
    c.bytes_out.fetch_add(down, Ordering::Relaxed);
    Ok(())
}
