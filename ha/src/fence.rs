//! The ha process's port to ncc's fence: while this node leads a peering it renews a lease on
//! the master-only state (unicast VIPs, their services, the LB interface) with every advert, for
//! three intervals; when it steps down it gives the lease up (a zero lease), so ncc withdraws
//! that state before the peer is told to take over. If this process stalls or dies, the lease
//! runs out on its own about when the peer's master-down interval ends, so the two nodes never
//! serve a VIP at once for longer than an apply. See ncc's `lease` module for the other side.
//!
//! A renewal is one datagram on ncc's lease socket (`seesaw_common::lease`): sent inline with
//! the advert, it never waits for ncc, and costs one `sendto`.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use seesaw_common::lease::LeaseMsg;

/// What the ha process needs from ncc. Never blocks.
pub trait Fence: Send + 'static {
    /// Holds the master-only state for `ttl` from now; zero gives it up at once.
    fn lease(&mut self, ttl: Duration) -> Result<(), String>;
}

/// No fence (tests of the protocol alone).
#[derive(Debug, Default, Clone, Copy)]
pub struct NoFence;

impl Fence for NoFence {
    fn lease(&mut self, _: Duration) -> Result<(), String> {
        Ok(())
    }
}

/// [`Fence`] over ncc's lease socket; connects on first use and again after an error.
#[derive(Debug)]
pub struct NccFence {
    path: PathBuf,
    sock: Option<UnixDatagram>,
}

impl NccFence {
    /// A fence on the lease socket under `run_dir`.
    pub fn new(run_dir: &Path) -> Self {
        Self {
            path: seesaw_common::paths::ncc_lease_socket(run_dir),
            sock: None,
        }
    }

    fn connected(&mut self) -> std::io::Result<&UnixDatagram> {
        if self.sock.is_none() {
            let s = UnixDatagram::unbound()?;
            s.set_nonblocking(true)?;
            s.connect(&self.path)?;
            self.sock = Some(s);
        }
        self.sock
            .as_ref()
            .ok_or_else(|| std::io::Error::other("no lease socket"))
    }
}

impl Fence for NccFence {
    fn lease(&mut self, ttl: Duration) -> Result<(), String> {
        let msg = LeaseMsg::now(ttl).encode();
        match self.connected().and_then(|s| s.send(&msg)) {
            Ok(_) => Ok(()),
            Err(e) => {
                // ncc restarted (a new socket), or it is stopped and its queue is full: connect
                // again next time.
                self.sock = None;
                Err(format!("lease datagram to {}: {e}", self.path.display()))
            }
        }
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod fake {
    //! A recording fence for tests.
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use tokio::time::Instant;

    /// Records every lease with the (tokio) time it came. Clones share the record.
    #[derive(Debug, Clone, Default)]
    pub struct FakeFence {
        calls: Arc<Mutex<Vec<(Instant, Duration)>>>,
    }

    impl FakeFence {
        /// Every lease so far: when, and for how long.
        pub fn calls(&self) -> Vec<(Instant, Duration)> {
            self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
        }
    }

    impl super::Fence for FakeFence {
        fn lease(&mut self, ttl: Duration) -> Result<(), String> {
            self.calls
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((Instant::now(), ttl));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewals_reach_the_socket_and_a_missing_ncc_is_an_error() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut fence = NccFence::new(dir.path());
        assert!(
            fence.lease(Duration::from_millis(90)).is_err(),
            "no ncc yet"
        );
        std::fs::create_dir_all(dir.path().join("ncc")).expect("dir");
        let ncc =
            UnixDatagram::bind(seesaw_common::paths::ncc_lease_socket(dir.path())).expect("bind");
        fence.lease(Duration::from_millis(90)).expect("sent");
        fence.lease(Duration::ZERO).expect("sent");
        let mut buf = [0u8; 64];
        let n = ncc.recv(&mut buf).expect("first");
        let first = LeaseMsg::decode(&buf[..n]).expect("a lease message");
        assert_eq!(first.ttl_ms, 90);
        let n = ncc.recv(&mut buf).expect("second");
        let second = LeaseMsg::decode(&buf[..n]).expect("a lease message");
        assert_eq!(second.ttl_ms, 0);
        assert!(second.sent_at_us >= first.sent_at_us);
    }
}
