//! The ha process's port to ncc's fence: while this node leads a peering it renews a lease on
//! the master-only state (unicast VIPs, their services, the LB interface) every advert interval,
//! for three intervals; when it steps down it gives the lease up (a zero lease), so ncc withdraws
//! that state before the peer is told to take over. If this process stalls or dies, the lease
//! runs out on its own about when the peer's master-down interval ends, so the two nodes never
//! serve a VIP at once for longer than an apply. See ncc's `lease` module for the other side.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use seesaw_proto::ncc::ncc_client::NccClient;
use seesaw_proto::ncc::{self as pb};
use tonic::transport::Channel;

/// What the ha process needs from ncc.
pub trait Fence: Send + 'static {
    /// Holds the master-only state for `ttl` from now; zero gives it up at once. `Ok(true)`:
    /// ncc has withdrawn it (fenced).
    fn lease(&mut self, ttl: Duration) -> impl Future<Output = Result<bool, String>> + Send;
}

/// No fence (tests of the protocol alone, and nodes whose ncc predates the call).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFence;

impl Fence for NoFence {
    async fn lease(&mut self, ttl: Duration) -> Result<bool, String> {
        Ok(ttl.is_zero())
    }
}

/// [`Fence`] over ncc's gRPC API: one `Lease` stream, opened on first use and re-opened after
/// an error, one request and its reply per call (a message on an open stream costs a fraction of
/// a call, and renewals come every advert interval).
#[derive(Debug)]
pub struct GrpcFence {
    client: NccClient<Channel>,
    stream: Option<(
        tokio::sync::mpsc::Sender<pb::LeaseRequest>,
        tonic::Streaming<pb::LeaseReply>,
    )>,
}

impl GrpcFence {
    /// A lazily connecting fence on the ncc socket under `run_dir`; every call gets `timeout`.
    /// Must be called inside a tokio runtime.
    pub fn new(run_dir: &Path, timeout: Duration) -> Self {
        let path = seesaw_common::paths::ncc_socket(run_dir);
        Self {
            client: NccClient::new(seesaw_common::uds::channel(&path, timeout)),
            stream: None,
        }
    }
}

impl Fence for GrpcFence {
    async fn lease(&mut self, ttl: Duration) -> Result<bool, String> {
        let ttl_ms = u32::try_from(ttl.as_millis()).unwrap_or(u32::MAX);
        if self.stream.is_none() {
            let (tx, rx) = tokio::sync::mpsc::channel(4);
            let replies = self
                .client
                .lease(tokio_stream::wrappers::ReceiverStream::new(rx))
                .await
                .map_err(|s| format!("ncc Lease: {:?}: {}", s.code(), s.message()))?
                .into_inner();
            self.stream = Some((tx, replies));
        }
        // Taken out while in use: if this future is dropped half-way (the caller's timeout), the
        // next call opens a new stream rather than read a stale reply.
        let Some((tx, mut replies)) = self.stream.take() else {
            return Err("ncc Lease: no stream".to_owned());
        };
        tx.send(pb::LeaseRequest { ttl_ms })
            .await
            .map_err(|_| "ncc Lease: the stream closed".to_owned())?;
        match replies.message().await {
            Ok(Some(r)) => {
                self.stream = Some((tx, replies));
                Ok(r.fenced)
            }
            Ok(None) => Err("ncc Lease: the stream ended".to_owned()),
            Err(s) => Err(format!("ncc Lease: {:?}: {}", s.code(), s.message())),
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod fake {
    //! A recording fence for tests.
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    /// Records every lease call with the (tokio) time it came. Clones share the record.
    #[derive(Debug, Clone, Default)]
    pub struct FakeFence {
        calls: Arc<Mutex<Vec<(Instant, Duration)>>>,
    }

    impl FakeFence {
        /// Every call so far: when, and for how long.
        pub fn calls(&self) -> Vec<(Instant, Duration)> {
            self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }

        /// When the lease held by the calls so far runs out (`None`: never leased); a zero
        /// lease ends it at its call.
        pub fn held_until(&self) -> Option<Instant> {
            self.calls().last().map(|(at, ttl)| *at + *ttl)
        }
    }

    impl super::Fence for FakeFence {
        async fn lease(&mut self, ttl: Duration) -> Result<bool, String> {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), ttl));
            Ok(ttl.is_zero())
        }
    }
}
