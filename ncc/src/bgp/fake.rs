//! A stateful in-memory [`Speaker`]: a daemon with a global config, neighbours and a RIB, shared
//! through an `Arc` so a test can inspect it (or "restart" it) while the manager owns a handle.
//! Every change to the RIB is logged, so tests can assert what was ever announced.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{BgpError, Neighbor, SessionState, Settings, Speaker};

/// The fake daemon's state.
#[derive(Debug, Default)]
pub(crate) struct FakeDaemon {
    /// Global ASN (0: not started).
    pub asn: u32,
    /// Neighbours and their ASN.
    pub peers: BTreeMap<IpAddr, u32>,
    /// Originated routes and their next hop.
    pub rib: BTreeMap<IpAddr, IpAddr>,
    /// Every RIB change, in order: `+route` or `-route`, and `-*` for withdraw-all.
    pub log: Vec<String>,
    /// Fail every call while set.
    pub down: bool,
}

/// A handle on a shared [`FakeDaemon`].
#[derive(Debug, Clone, Default)]
pub(crate) struct FakeSpeaker(pub Arc<Mutex<FakeDaemon>>);

impl FakeSpeaker {
    fn with<T>(
        &self,
        call: &'static str,
        f: impl FnOnce(&mut FakeDaemon) -> T,
    ) -> Result<T, BgpError> {
        let mut d = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if d.down {
            return Err(BgpError::Daemon {
                call,
                message: "connection refused".to_owned(),
            });
        }
        Ok(f(&mut d))
    }
}

impl Speaker for FakeSpeaker {
    async fn ensure_running(&mut self, s: &Settings) -> Result<bool, BgpError> {
        self.with("GetBgp", |d| {
            if d.asn != 0 && d.asn != s.local_asn {
                return Err(BgpError::Conflict(format!("runs as AS{}", d.asn)));
            }
            let fresh = d.asn == 0;
            d.asn = s.local_asn;
            d.peers = s.peers.iter().map(|p| (*p, s.remote_asn)).collect();
            Ok(fresh)
        })?
    }

    async fn announce(&mut self, route: IpAddr, next_hop: IpAddr) -> Result<(), BgpError> {
        self.with("AddPath", |d| {
            d.rib.insert(route, next_hop);
            d.log.push(format!("+{route}"));
        })
    }

    async fn withdraw(&mut self, route: IpAddr, _: IpAddr) -> Result<(), BgpError> {
        self.with("DeletePath", |d| {
            d.rib.remove(&route);
            d.log.push(format!("-{route}"));
        })
    }

    async fn withdraw_all(&mut self) -> Result<(), BgpError> {
        self.with("DeletePath", |d| {
            d.rib.clear();
            d.log.push("-*".to_owned());
        })
    }

    async fn announced(&mut self) -> Result<Vec<IpAddr>, BgpError> {
        self.with("ListPath", |d| d.rib.keys().copied().collect())
    }

    async fn neighbors(&mut self) -> Result<Vec<Neighbor>, BgpError> {
        self.with("ListPeer", |d| {
            d.peers
                .iter()
                .map(|(a, asn)| Neighbor {
                    address: *a,
                    peer_asn: *asn,
                    router_id: String::new(),
                    state: SessionState::Active,
                    uptime: Duration::ZERO,
                    received: 0,
                    sent: 0,
                    updates_received: 0,
                    updates_sent: 0,
                })
                .collect()
        })
    }
}

/// The routes of a fake RIB, for assertions.
pub(crate) fn rib(s: &FakeSpeaker) -> BTreeSet<IpAddr> {
    s.0.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .rib
        .keys()
        .copied()
        .collect()
}
