//! `trace tcp|udp <client-ip:port> <vip:port>`: the engine's answer as the shell shows it (text
//! and `-o json`).

use std::fmt::Write as _;

use seesaw_proto::engine as pb;
use serde::Serialize;

/// The trace of one flow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TraceView {
    /// A configured service matches.
    pub matched: bool,
    /// The vserver.
    pub vserver: String,
    /// The service.
    pub service: String,
    /// Its scheduler.
    pub scheduler: String,
    /// The destination a new flow would get (empty: not predictable).
    pub predicted: String,
    /// Its backend host.
    pub predicted_backend: String,
    /// How the plane decides.
    pub how: String,
    /// The live flow's destination (empty: none).
    pub flow: String,
    /// Its state.
    pub flow_state: String,
    /// Destinations that take new flows.
    pub eligible: Vec<String>,
    /// (destination, backend, why) of those that do not.
    pub excluded: Vec<(String, String, String)>,
    /// The plane.
    pub plane: String,
    /// Anything else.
    pub notes: Vec<String>,
}

impl From<pb::FlowTrace> for TraceView {
    fn from(t: pb::FlowTrace) -> Self {
        Self {
            matched: t.matched,
            vserver: t.vserver,
            service: t.service,
            scheduler: t.scheduler,
            predicted: t.predicted,
            predicted_backend: t.predicted_backend,
            how: t.how,
            flow: t.flow,
            flow_state: t.flow_state,
            eligible: t.eligible,
            excluded: t
                .excluded
                .into_iter()
                .map(|e| (e.destination, e.backend, e.why))
                .collect(),
            plane: t.plane,
            notes: t.notes,
        }
    }
}

/// The text form.
pub fn render(t: &TraceView) -> String {
    let mut out = String::new();
    if !t.matched {
        out.push_str("No service matches this flow.\n");
        for n in &t.notes {
            let _ = writeln!(out, "  {n}");
        }
        return out;
    }
    let _ = writeln!(out, "Vserver:     {}", t.vserver);
    let _ = writeln!(out, "Service:     {} ({})", t.service, t.scheduler);
    if t.predicted.is_empty() {
        let _ = writeln!(out, "New flow:    not predictable");
    } else {
        let _ = writeln!(out, "New flow:    {} {}", t.predicted, t.predicted_backend);
    }
    if !t.how.is_empty() {
        let _ = writeln!(out, "  how:       {} ({} plane)", t.how, t.plane);
    }
    if t.flow.is_empty() {
        let _ = writeln!(out, "Live flow:   none");
    } else {
        let _ = writeln!(out, "Live flow:   {} ({})", t.flow, t.flow_state);
    }
    let _ = writeln!(out, "Eligible:    {} destinations", t.eligible.len());
    if !t.excluded.is_empty() {
        let _ = writeln!(out, "Excluded:");
        for (d, b, why) in &t.excluded {
            let _ = writeln!(out, "  {d} ({b}): {why}");
        }
    }
    for n in &t.notes {
        let _ = writeln!(out, "Note: {n}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_trace_shows_the_pick_the_flow_and_every_exclusion() {
        let t = TraceView::from(pb::FlowTrace {
            matched: true,
            vserver: "web@demo".into(),
            service: "127.0.0.1:80/TCP".into(),
            scheduler: "mh".into(),
            predicted: "127.0.0.2:8080".into(),
            predicted_backend: "be1.demo.".into(),
            how: "Maglev slot 7 of 65537 (hash of the client address)".into(),
            flow: "127.0.0.2:8080".into(),
            flow_state: "relayed".into(),
            eligible: vec!["a".into(), "b".into()],
            excluded: vec![pb::ExcludedDestination {
                destination: "web@demo/127.0.0.3:8080/TCP".into(),
                backend: "be2.demo.".into(),
                why: "override: disabled".into(),
            }],
            plane: "proxy".into(),
            notes: vec![],
        });
        assert_eq!(
            render(&t),
            "Vserver:     web@demo\nService:     127.0.0.1:80/TCP (mh)\n\
             New flow:    127.0.0.2:8080 be1.demo.\n\
             \x20 how:       Maglev slot 7 of 65537 (hash of the client address) (proxy plane)\n\
             Live flow:   127.0.0.2:8080 (relayed)\nEligible:    2 destinations\nExcluded:\n\
             \x20 web@demo/127.0.0.3:8080/TCP (be2.demo.): override: disabled\n"
        );
    }
}
