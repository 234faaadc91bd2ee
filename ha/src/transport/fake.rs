//! An in-memory advert network for tests: transports opened on one [`FakeNet`] reach each other
//! by address, and the test can partition the network or make opening fail. Delivery is
//! immediate and in order. The fake carries the encoded bytes in raw IPv4 datagrams and reads
//! them through the same codec as the raw socket (so signed adverts, a key mismatch and the
//! rejection counts work end to end); the parser's own checks are tested in `advert`.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;

use super::{Opener, Transport, TransportError, Wire};
use crate::advert::{Advert, Received, Rejections};
use crate::node::Peering;

/// The shared network. Clones share state.
#[derive(Debug, Clone, Default)]
pub struct FakeNet {
    inner: Arc<Mutex<NetState>>,
}

#[derive(Debug, Default)]
struct NetState {
    /// Where datagrams to an address go.
    endpoints: HashMap<Ipv4Addr, mpsc::UnboundedSender<Vec<u8>>>,
    partitioned: bool,
    refuse_open: bool,
    sent: Vec<(Ipv4Addr, Advert)>,
}

impl FakeNet {
    /// A network with nobody on it.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops every advert while `on` (both directions).
    pub fn set_partitioned(&self, on: bool) {
        self.lock().partitioned = on;
    }

    /// Makes opening a transport fail while `on` (no CAP_NET_RAW, say).
    pub fn set_refuse_open(&self, on: bool) {
        self.lock().refuse_open = on;
    }

    /// Every advert sent so far, with its sender.
    pub fn sent(&self) -> Vec<(Ipv4Addr, Advert)> {
        self.lock().sent.clone()
    }

    /// Delivers a raw IPv4 datagram to whoever holds its destination address (an attacker on
    /// the segment: forged or replayed adverts).
    pub fn inject(&self, datagram: Vec<u8>) {
        let Some(dst) = datagram
            .get(16..20)
            .map(|d| Ipv4Addr::new(d[0], d[1], d[2], d[3]))
        else {
            return;
        };
        if let Some(tx) = self.lock().endpoints.get(&dst) {
            let _ = tx.send(datagram);
        }
    }

    /// An opener for one node on this network.
    pub fn opener(&self) -> FakeOpener {
        FakeOpener { net: self.clone() }
    }

    fn lock(&self) -> MutexGuard<'_, NetState> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Opens [`FakeTransport`]s on a [`FakeNet`].
#[derive(Debug, Clone)]
pub struct FakeOpener {
    net: FakeNet,
}

impl Opener for FakeOpener {
    type Transport = FakeTransport;

    fn open(&mut self, p: &Peering) -> Result<FakeTransport, TransportError> {
        let mut s = self.net.lock();
        if s.refuse_open {
            return Err(TransportError::Open(std::io::Error::from(
                std::io::ErrorKind::PermissionDenied,
            )));
        }
        let (tx, rx) = mpsc::unbounded_channel();
        s.endpoints.insert(p.local, tx);
        Ok(FakeTransport {
            net: self.net.clone(),
            peering: *p,
            wire: Wire::new(p),
            rx,
        })
    }
}

/// One node's transport.
#[derive(Debug)]
pub struct FakeTransport {
    net: FakeNet,
    peering: Peering,
    wire: Wire,
    rx: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Transport for FakeTransport {
    fn send(&mut self, advert: &Advert) -> Result<(), TransportError> {
        let payload = self.wire.encode(advert);
        let mut s = self.net.lock();
        s.sent.push((self.peering.local, *advert));
        if s.partitioned {
            return Ok(());
        }
        if let Some(tx) = s.endpoints.get(&self.peering.peer) {
            // A closed receiver is a peer whose transport is gone: the advert is lost.
            let _ = tx.send(crate::advert::ipv4_datagram(
                self.peering.local,
                self.peering.peer,
                &payload,
            ));
        }
        Ok(())
    }

    async fn recv(&mut self) -> Result<Received, TransportError> {
        loop {
            match self.rx.recv().await {
                Some(d) => {
                    if let Some(r) = self.wire.decode(&d) {
                        return Ok(r);
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
    }

    fn rejected(&self) -> Rejections {
        self.wire.rejected
    }
}
