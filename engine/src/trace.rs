//! `seesaw trace`, sans-io: which vserver and service a flow matches and why each destination
//! that will not get it is left out (override, health, weight 0, not active), from the status
//! views; the data plane adds which destination its scheduler would pick and the live flow
//! ([`PlaneTrace`], asked of ncc through the `Ncc` port's `trace`).

use crate::overrides::OverrideState;
use crate::state::{CheckState, ServiceView, VserverView};

/// The flow asked about, and what the data plane said about it: the vocabulary ncc speaks
/// too (`seesaw_proto::domain`).
pub use seesaw_proto::domain::{PlaneTrace, TraceFlow as FlowQuery};

/// A destination that will not get new flows, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// The destination's name (`vserver/ip:port/proto`).
    pub destination: String,
    /// Its backend host.
    pub backend: String,
    /// Why.
    pub why: String,
}

/// What the engine knows about a flow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Matched {
    /// The vserver.
    pub vserver: String,
    /// The service (`vip:port/proto`).
    pub service: String,
    /// Its scheduler.
    pub scheduler: String,
    /// Destinations that take new flows: (name, backend).
    pub eligible: Vec<(String, String)>,
    /// Destinations that do not.
    pub excluded: Vec<Excluded>,
}

/// The vserver and service `q` reaches: the service on the VIP, port and protocol, or a
/// firewall-mark service whose vserver has the VIP and an entry on the port and protocol.
pub fn match_flow(views: &[std::sync::Arc<VserverView>], q: &FlowQuery) -> Option<Matched> {
    let hit = |s: &ServiceView| s.entry.key.proto == q.proto && s.entry.key.port == q.vip.port();
    let (v, s) = views
        .iter()
        .flat_map(|v| v.services.iter().map(move |s| (v, s)))
        .find(|(_, s)| s.key.fwmark == 0 && s.key.vip == q.vip.ip() && hit(s))
        .or_else(|| {
            views
                .iter()
                .filter(|v| v.vips.iter().any(|x| x.ip == q.vip.ip()))
                .flat_map(|v| v.services.iter().map(move |s| (v, s)))
                .find(|(_, s)| s.key.fwmark != 0 && hit(s))
        })?;
    let mut m = Matched {
        vserver: v.name.clone(),
        service: s.key.to_string(),
        scheduler: format!("{:?}", s.entry.scheduler).to_lowercase(),
        ..Matched::default()
    };
    for d in &s.dests {
        match why_excluded(d) {
            None => m.eligible.push((d.name.clone(), d.backend.clone())),
            Some(why) => m.excluded.push(Excluded {
                destination: d.name.clone(),
                backend: d.backend.clone(),
                why,
            }),
        }
    }
    Some(m)
}

/// Why `d` takes no new flows, if it does not.
fn why_excluded(d: &crate::state::DestView) -> Option<String> {
    if d.override_state == Some(OverrideState::Disabled) {
        return Some("override: disabled".to_owned());
    }
    if !d.enabled {
        return Some("disabled in the configuration".to_owned());
    }
    if !d.healthy {
        let why: Vec<String> = d
            .checks
            .iter()
            .filter(|c| c.state != CheckState::Healthy)
            .map(|c| format!("{}: {}", c.name, c.message))
            .collect();
        return Some(format!("unhealthy ({})", why.join("; ")));
    }
    if d.dest.weight == 0 {
        return Some("weight 0 (draining: established flows continue, no new ones)".to_owned());
    }
    if !d.active {
        return Some("not active (the service is below its watermark or not applied)".to_owned());
    }
    None
}
