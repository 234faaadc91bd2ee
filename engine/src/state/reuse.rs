//! What lets an evaluation cost what changed: each vserver's last evaluation (its view, its
//! desired services, its VIPs to hold up), which vservers must be evaluated again, and which
//! vservers read each check. A check result marks only the vservers that read that check;
//! everything else the evaluation reads (the config, overrides, HA, counters, marks, presumed
//! destinations) marks them all ([`super::EngineState::touch`]). Guard:
//! `state/tests.rs` `reused_evaluations_equal_fresh_ones`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::views::VserverView;
use crate::checks::Topology;
use crate::desired::ServiceSpec;
use crate::model::Vip;

/// One vserver's evaluation.
#[derive(Debug, Clone)]
pub(super) struct Evaluated {
    /// Its view.
    pub(super) view: Arc<VserverView>,
    /// Its services in the desired state.
    pub(super) services: Vec<Arc<ServiceSpec>>,
    /// Its VIPs to hold up.
    pub(super) vips_up: Vec<Vip>,
}

/// The evaluations kept and what invalidates them.
#[derive(Debug, Clone, Default)]
pub(super) struct Reuse {
    /// By vserver name.
    pub(super) kept: HashMap<String, Evaluated>,
    /// Vservers to evaluate again; `None`: all of them.
    pub(super) stale: Option<HashSet<String>>,
    /// Check id → the vservers that read it.
    pub(super) readers: HashMap<u64, Vec<String>>,
}

impl Reuse {
    /// Everything is evaluated again, and the readers follow `topology`.
    pub(super) fn all(&mut self, topology: &Topology) {
        self.stale = None;
        self.readers.clear();
        for vt in topology.vservers.values() {
            for st in &vt.services {
                for d in &st.dests {
                    for (_, id) in &d.checks {
                        let r = self.readers.entry(*id).or_default();
                        if r.last() != Some(&vt.config.name) {
                            r.push(vt.config.name.clone());
                        }
                    }
                }
            }
        }
    }

    /// The vservers reading check `id` are evaluated again.
    pub(super) fn check(&mut self, id: u64) {
        if let (Some(stale), Some(readers)) = (self.stale.as_mut(), self.readers.get(&id)) {
            stale.extend(readers.iter().cloned());
        }
    }

    /// Whether vserver `name` must be evaluated (again).
    pub(super) fn is_stale(&self, name: &str) -> bool {
        self.stale.as_ref().is_none_or(|s| s.contains(name)) || !self.kept.contains_key(name)
    }
}
