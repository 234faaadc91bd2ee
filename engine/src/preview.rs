//! Change preview, sans-io: what a config change would do to the data plane, computed on a copy
//! of the engine's state and never applied (`config reload --dry-run`, `config rollback <id>
//! --dry-run`, the ECU's `?dry_run=true`).
//!
//! The copy takes the candidate config as [`EngineState::reload`] would (the churn limit is
//! stepped through to the end), and every check the candidate adds is presumed to pass: the
//! preview is what the plane holds once the change has settled, with today's health for
//! everything that already runs. Services and destinations are compared as ncc compares them
//! (`ncc::dataplane::diff`); a Maglev (`mh`) service that exists before and after also gets the
//! share of its table's slots that change backend — the share of flows that would move.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::SystemTime;

use seesaw_common::maglev;

use crate::config::{DataplaneKind, Loaded};
use crate::desired::{DesiredState, ServiceKey, ServiceSpec};
use crate::model::Scheduler;
use crate::state::{CheckResult, EngineState};

/// Names added, removed and changed, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New names.
    pub added: Vec<String>,
    /// Names that go.
    pub removed: Vec<String>,
    /// Names whose content changes.
    pub changed: Vec<String>,
}

impl Changes {
    /// Compares two maps by key: added, removed, and changed by `same`.
    fn of<K: Ord + ToString, V>(
        old: &BTreeMap<K, V>,
        new: &BTreeMap<K, V>,
        same: impl Fn(&V, &V) -> bool,
    ) -> Self {
        let mut c = Self::default();
        for (k, v) in new {
            match old.get(k) {
                None => c.added.push(k.to_string()),
                Some(o) if !same(o, v) => c.changed.push(k.to_string()),
                Some(_) => {}
            }
        }
        c.removed = old
            .keys()
            .filter(|k| !new.contains_key(k))
            .map(ToString::to_string)
            .collect();
        c
    }

    /// Whether nothing changes.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

/// What a config change would do.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Preview {
    /// Vservers, by name.
    pub vservers: Changes,
    /// Data-plane services (`vip:port/proto`).
    pub services: Changes,
    /// Destinations (`<service> <ip:port>`).
    pub destinations: Changes,
    /// `mh` services present before and after, with the share of flows that would move (0..1).
    pub flows_moved: Vec<(String, f64)>,
}

/// Whether the plane ncc runs (`plane_kind` as ncc reports it; `unknown` before it did: the one
/// `settings` names) builds its own Maglev tables, so an anchor change is a service change.
pub fn builds_tables(
    plane_kind: Option<crate::ncc_port::PlaneKind>,
    settings: &crate::config::Settings,
) -> bool {
    match plane_kind {
        Some(crate::ncc_port::PlaneKind::Ipvs) => false,
        None => settings.dataplane.effective() != DataplaneKind::Ipvs,
        Some(_) => true,
    }
}

/// The preview of replacing `state`'s config with `candidate` at `now`, for a plane that builds
/// its own Maglev tables or not ([`builds_tables`]).
pub fn preview(
    state: &EngineState,
    candidate: Loaded,
    now: SystemTime,
    builds_tables: bool,
) -> Preview {
    let vservers = Changes::of(
        &state.full_config().cluster.vservers,
        &candidate.cluster.vservers,
        |a, b| a == b,
    );
    let (_, before) = state.clone().evaluate();
    let mut next = state.clone();
    next.reload(candidate, now);
    // The churn limit only spreads the change over time; the preview is where it ends. Each
    // step brings up at least one vserver, so this ends; the bound is a guard.
    for _ in 0..100_000 {
        if !next.converge(now) {
            break;
        }
    }
    let unknown: Vec<(u64, CheckResult)> = next
        .checks()
        .filter(|c| !next.has_result(c.id))
        .map(|c| {
            let r = CheckResult {
                healthy: true,
                message: "presumed passing (preview)".to_owned(),
                at: now,
            };
            (c.id, r)
        })
        .collect();
    next.health(unknown);
    let (_, after) = next.evaluate();
    compare(vservers, &before, &after, builds_tables)
}

/// Compares two desired states as ncc's diff does.
fn compare(
    vservers: Changes,
    before: &DesiredState,
    after: &DesiredState,
    builds_tables: bool,
) -> Preview {
    let by_key = |d: &DesiredState| -> BTreeMap<ServiceKey, ServiceSpec> {
        d.services.iter().map(|s| (s.key, (**s).clone())).collect()
    };
    let (old, new) = (by_key(before), by_key(after));
    let services = Changes::of(&old, &new, |a, b| same_settings(a, b, builds_tables));
    let dests = |m: &BTreeMap<ServiceKey, ServiceSpec>| {
        m.values()
            .flat_map(|s| {
                s.dests.iter().map(move |d| {
                    let name = format!("{} {}", s.key, SocketAddr::new(d.ip, d.port));
                    (name, (d.weight, d.group.clone(), d.backup))
                })
            })
            .collect::<BTreeMap<String, _>>()
    };
    let destinations = Changes::of(&dests(&old), &dests(&new), |a, b| a == b);
    let flows_moved = old
        .iter()
        .filter_map(|(k, o)| {
            let n = new.get(k)?;
            (o.scheduler == Scheduler::Mh && n.scheduler == Scheduler::Mh)
                .then(|| (k.to_string(), moved_share(&table(o), &table(n))))
        })
        .collect();
    Preview {
        vservers,
        services,
        destinations,
        flows_moved,
    }
}

/// ncc's `Service::settings` equality: everything but the destinations; the Maglev anchor only
/// on the planes that build their own tables.
fn same_settings(a: &ServiceSpec, b: &ServiceSpec, builds_tables: bool) -> bool {
    let anchor = |s: &ServiceSpec| s.anchor.as_ref().map(|a| a.hash());
    a.scheduler == b.scheduler
        && a.mode == b.mode
        && a.persistence == b.persistence
        && a.proxy == b.proxy
        && a.marks == b.marks
        && a.kernel == b.kernel
        && (!builds_tables || anchor(a) == anchor(b))
}

/// The live Maglev table of an `mh` service as ncc lays it out (primaries with a weight, derived
/// from the anchor), as backend keys; empty when no primary takes flows.
fn table(s: &ServiceSpec) -> Vec<u64> {
    let live: Vec<(u64, u32)> = s
        .dests
        .iter()
        .filter(|d| !d.backup && d.weight > 0)
        .map(|d| (maglev::addr_key(SocketAddr::new(d.ip, d.port)), d.weight))
        .collect();
    if live.is_empty() {
        return Vec::new();
    }
    let prev: Vec<u64> = s
        .anchor
        .as_ref()
        .map(|a| a.slots.clone())
        .unwrap_or_default();
    let size = if prev.is_empty() {
        maglev::table_size(live.len())
    } else {
        prev.len()
    };
    let idx = if prev.is_empty() {
        maglev::build(&live, size)
    } else {
        maglev::derive(&prev, &live)
    };
    idx.into_iter().map(|i| live[i as usize].0).collect()
}

/// The share of flows whose backend differs between two tables: slot by slot when they have the
/// same size, else over 65,536 evenly spread flow hashes. A table with no backend moves
/// everything (or nothing, when both are empty).
pub fn moved_share(a: &[u64], b: &[u64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return if a.is_empty() && b.is_empty() {
            0.0
        } else {
            1.0
        };
    }
    if a.len() == b.len() {
        let moved = a.iter().zip(b).filter(|(x, y)| x != y).count();
        return moved as f64 / a.len() as f64;
    }
    const SAMPLES: u64 = 1 << 16;
    let step = u64::MAX / SAMPLES;
    let moved = (0..SAMPLES)
        .map(|i| i * step)
        .filter(|&h| a[maglev::slot(h, a.len())] != b[maglev::slot(h, b.len())])
        .count();
    moved as f64 / SAMPLES as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_tables_move_nothing_and_disjoint_ones_everything() {
        let a = vec![1, 2, 3, 4];
        assert_eq!(moved_share(&a, &a), 0.0);
        assert_eq!(moved_share(&a, &[5, 6, 7, 8]), 1.0);
        assert_eq!(moved_share(&a, &[1, 2, 3, 5]), 0.25);
        assert_eq!(moved_share(&[], &[]), 0.0);
        assert_eq!(moved_share(&a, &[]), 1.0);
        // Different sizes: sampled; a table of one backend against the same backend moves nothing.
        assert_eq!(moved_share(&[7, 7, 7], &[7, 7, 7, 7, 7]), 0.0);
    }

    #[test]
    fn changes_compare_by_key() {
        let old: BTreeMap<&str, u32> = [("a", 1), ("b", 2), ("c", 3)].into();
        let new: BTreeMap<&str, u32> = [("b", 2), ("c", 4), ("d", 5)].into();
        let c = Changes::of(&old, &new, |x, y| x == y);
        assert_eq!(c.added, ["d"]);
        assert_eq!(c.removed, ["a"]);
        assert_eq!(c.changed, ["c"]);
        assert!(!c.is_empty());
        assert!(Changes::of(&old, &old, |x, y| x == y).is_empty());
    }
}
