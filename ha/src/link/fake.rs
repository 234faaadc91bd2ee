//! A stateful in-memory engine for tests: it holds an HA config that tests can change, can be made
//! unreachable or hanging, and records every config fetch and status report with the (tokio) time
//! it came.

use std::sync::{Arc, Mutex, MutexGuard};

use tokio::time::Instant;

use super::{EngineLink, HaReport, LinkError};
use crate::node::HaConfig;

/// The fake engine. Clones share state, so a test keeps one clone and gives the other to `run`.
#[derive(Debug, Clone, Default)]
pub struct FakeEngine {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug, Default)]
struct FakeState {
    config: HaConfig,
    unreachable: bool,
    hanging: bool,
    failover: bool,
    fetch_attempts: u64,
    fetches: Vec<Instant>,
    reports: Vec<(Instant, HaReport)>,
}

// === impl FakeEngine ===

impl FakeEngine {
    /// A reachable engine serving `config`.
    pub fn new(config: HaConfig) -> Self {
        let fake = Self::default();
        fake.lock().config = config;
        fake
    }

    /// Replaces the config later fetches return (a config reload).
    pub fn set_config(&self, config: HaConfig) {
        self.lock().config = config;
    }

    /// Makes every call fail with `Unavailable` (engine down) or succeed again.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Makes every call hang forever (an engine that accepts but never answers).
    pub fn set_hanging(&self, hanging: bool) {
        self.lock().hanging = hanging;
    }

    /// Asks the node for a failover: the next delivered status report answers `failover`.
    pub fn request_failover(&self) {
        self.lock().failover = true;
    }

    /// How many config fetches were attempted, including failed ones.
    pub fn fetch_attempts(&self) -> u64 {
        self.lock().fetch_attempts
    }

    /// When each successful config fetch happened.
    pub fn fetches(&self) -> Vec<Instant> {
        self.lock().fetches.clone()
    }

    /// Every status report received, with its arrival time.
    pub fn reports(&self) -> Vec<(Instant, HaReport)> {
        self.lock().reports.clone()
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread poisons the lock; the state is still what the test wants to see.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn unavailable(call: &'static str) -> LinkError {
        LinkError::Rpc {
            call,
            code: tonic::Code::Unavailable,
            message: "fake engine is down".into(),
        }
    }
}

impl EngineLink for FakeEngine {
    async fn ha_config(&mut self) -> Result<HaConfig, LinkError> {
        let hanging = {
            let mut s = self.lock();
            s.fetch_attempts += 1;
            s.hanging
        };
        if hanging {
            std::future::pending::<()>().await;
        }
        let mut s = self.lock();
        if s.unreachable {
            return Err(Self::unavailable("HaConfig"));
        }
        s.fetches.push(Instant::now());
        Ok(s.config.clone())
    }

    async fn ha_update(&mut self, report: HaReport) -> Result<bool, LinkError> {
        let hanging = self.lock().hanging;
        if hanging {
            std::future::pending::<()>().await;
        }
        let mut s = self.lock();
        if s.unreachable {
            return Err(Self::unavailable("HaUpdate"));
        }
        s.reports.push((Instant::now(), report));
        Ok(std::mem::take(&mut s.failover))
    }
}
