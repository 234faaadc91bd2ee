//! The engine's desired state for a cluster.pb with every backend healthy, in ncc's terms: what
//! a plane must hold once every check passes. Shared by `property.rs` (generated configs) and
//! `compat.rs` (Seesaw's own configs on every plane); and the engine's input these and
//! `preview.rs` and `reconcile.rs` start from (the time, a loaded cluster.pb).

#![allow(dead_code, reason = "each test binary uses its share of this module")]

use std::time::{Duration, SystemTime};

use seesaw_engine::config::{DataplaneKind, Loaded, load_cluster, seesaw_cfg};
use seesaw_engine::ncc_port::desired_to_pb;
use seesaw_engine::state::{CheckResult, EngineState};
use seesaw_ncc::model::Service;

/// The time every engine in these tests starts at.
pub(crate) fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

/// `cluster` loaded for the automatic plane, on a single node at 10.0.0.2.
pub(crate) fn loaded(cluster: &str) -> Loaded {
    Loaded {
        settings: seesaw_cfg::parse("[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n").unwrap(),
        cluster: load_cluster(cluster.as_bytes(), None).unwrap_or_else(|e| panic!("{e:#?}")),
    }
}

/// The desired services for `text` on `plane`, or validation's refusal.
pub(crate) fn desired(text: &str, plane: DataplaneKind) -> Result<Vec<Service>, String> {
    desired_on(text, plane, "10.0.0.2")
}

/// As [`desired`], on the node whose address is `node_ipv4` (a single node: no HA peer).
pub(crate) fn desired_on(
    text: &str,
    plane: DataplaneKind,
    node_ipv4: &str,
) -> Result<Vec<Service>, String> {
    let cluster = load_cluster(text.as_bytes(), Some(plane)).map_err(|e| e.join("; "))?;
    let settings = seesaw_cfg::parse(&format!("[cluster]\nname = t\nnode_ipv4 = {node_ipv4}\n"))
        .expect("seesaw.cfg literal");
    let mut engine = EngineState::new(Loaded { settings, cluster }, t0());
    let (views, _) = engine.evaluate();
    let results: Vec<(u64, CheckResult)> = views
        .iter()
        .flat_map(|v| &v.services)
        .flat_map(|s| &s.dests)
        .flat_map(|d| &d.checks)
        .map(|c| {
            (
                c.id,
                CheckResult {
                    healthy: true,
                    message: String::new(),
                    at: t0(),
                },
            )
        })
        .collect();
    engine.health(results);
    let (_, desired) = engine.evaluate();
    seesaw_ncc::convert::services_from_pb(desired_to_pb(&desired))
        .map_err(|e| format!("ncc refused the engine's request: {e}"))
}
