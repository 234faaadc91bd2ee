//! A stateful in-memory engine for tests: vservers, HA and config status that tests set and
//! change, and a switch that makes it unreachable. Name filtering follows the engine's rule
//! (exact name or prefix).

use std::sync::{Arc, Mutex, MutexGuard};

use super::{EngineView, ViewError};
use crate::model::{ConfigStatus, HaStatus, Vserver};

/// The fake engine. Clones share state.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
struct FakeState {
    vservers: Vec<Vserver>,
    ha: HaStatus,
    config: ConfigStatus,
    unreachable: bool,
}

// === impl FakeEngine ===

impl FakeEngine {
    /// A reachable engine with no vservers, HA `UNKNOWN` and config generation 0.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(FakeState {
                vservers: Vec::new(),
                ha: HaStatus {
                    state: "UNKNOWN".into(),
                    since_ms: 0,
                    transitions: 0,
                    adverts_sent: 0,
                    adverts_received: 0,
                    last_update_ms: 0,
                },
                config: ConfigStatus {
                    generation: 0,
                    last_updated: 0,
                    loaded_at_ms: 0,
                    source: String::new(),
                    attributes: Vec::new(),
                    warnings: Vec::new(),
                    last_reload_errors: Vec::new(),
                    reload_failures: 0,
                },
                unreachable: false,
            })),
        }
    }

    /// Replaces the vservers.
    pub fn set_vservers(&self, vservers: Vec<Vserver>) {
        self.lock().vservers = vservers;
    }

    /// Replaces the HA status.
    pub fn set_ha(&self, ha: HaStatus) {
        self.lock().ha = ha;
    }

    /// Replaces the config status.
    pub fn set_config(&self, config: ConfigStatus) {
        self.lock().config = config;
    }

    /// Makes every read fail as if the engine were down, or succeed again.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread poisons the lock; the state is still what the test wants to see.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn reachable(&self) -> Result<MutexGuard<'_, FakeState>, ViewError> {
        let s = self.lock();
        if s.unreachable {
            return Err(ViewError::Unavailable("fake engine is down".into()));
        }
        Ok(s)
    }
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineView for FakeEngine {
    async fn vservers(&self, name: String) -> Result<Vec<Vserver>, ViewError> {
        let s = self.reachable()?;
        Ok(s.vservers
            .iter()
            .filter(|v| v.name.starts_with(&name))
            .cloned()
            .collect())
    }

    async fn ha_status(&self) -> Result<HaStatus, ViewError> {
        Ok(self.reachable()?.ha.clone())
    }

    async fn config_status(&self) -> Result<ConfigStatus, ViewError> {
        Ok(self.reachable()?.config.clone())
    }
}
