//! Test helpers shared by the unit tests: a scripted prober whose targets are switched up and
//! down by the test, so scheduler and driver tests can run on paused time without sockets.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_proto::engine as pb;
use tokio::time::Instant;

use crate::check::{ProbeOutcome, ProbeSpec};
use crate::probe::Prober;

/// What a scripted target does when probed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Behaviour {
    Up,
    Down,
    /// Never answers (the scheduler's timeout must end the probe).
    Hang,
}

/// Passes for targets set `Up`, fails for every other target, and records each probe.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScriptedProber {
    targets: Arc<Mutex<HashMap<SocketAddr, Behaviour>>>,
    calls: Arc<Mutex<Vec<(Instant, SocketAddr)>>>,
}

impl ScriptedProber {
    pub(crate) fn set(&self, addr: SocketAddr, b: Behaviour) {
        self.targets.lock().unwrap().insert(addr, b);
    }

    /// When each probe of `addr` started.
    pub(crate) fn calls_to(&self, addr: SocketAddr) -> Vec<Instant> {
        let calls = self.calls.lock().unwrap();
        calls
            .iter()
            .filter(|(_, a)| *a == addr)
            .map(|(t, _)| *t)
            .collect()
    }

    /// Every probe start, in order.
    pub(crate) fn calls(&self) -> Vec<(Instant, SocketAddr)> {
        self.calls.lock().unwrap().clone()
    }
}

impl Prober for ScriptedProber {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeOutcome {
        let ProbeSpec::Tcp(p) = spec else {
            return ProbeOutcome::fail("scripted prober only knows tcp");
        };
        self.calls
            .lock()
            .unwrap()
            .push((Instant::now(), p.dial.addr));
        let b = self.targets.lock().unwrap().get(&p.dial.addr).copied();
        match b {
            Some(Behaviour::Up) => ProbeOutcome::pass(format!("up {}", p.dial.addr)),
            Some(Behaviour::Hang) => {
                tokio::time::sleep(Duration::from_secs(86400)).await;
                ProbeOutcome::fail("woke up")
            }
            Some(Behaviour::Down) | None => ProbeOutcome::fail(format!("down {}", p.dial.addr)),
        }
    }
}

/// The address of scripted target `n`.
pub(crate) fn addr(n: u8) -> SocketAddr {
    SocketAddr::from(([10, 0, 0, n], 80))
}

/// A TCP check `id` on target `n`, probed every `interval_ms`.
pub(crate) fn tcp_check(id: u64, n: u8, interval_ms: u32, rise: u32, retries: u32) -> pb::Check {
    pb::Check {
        id,
        kind: pb::CheckKind::Tcp as i32,
        target: addr(n).ip().to_string(),
        port: 80,
        interval_ms,
        timeout_ms: interval_ms / 2,
        rise,
        retries,
        description: format!("check {id}"),
        ..Default::default()
    }
}
