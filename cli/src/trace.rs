//! `trace tcp|udp <client-ip:port> <vip:port>`: the engine's answer (`seesaw_status::FlowTrace`,
//! also the ECU's `GET /v1/trace`) as the shell's text; `-o json` is its serde form.

use std::fmt::Write as _;

use seesaw_status::FlowTrace;

/// The text form.
pub fn render(t: &FlowTrace) -> String {
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
        for e in &t.excluded {
            let _ = writeln!(out, "  {} ({}): {}", e.destination, e.backend, e.why);
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
    use seesaw_proto::engine as pb;

    #[test]
    fn a_trace_shows_the_pick_the_flow_and_every_exclusion() {
        let t = FlowTrace::from(pb::FlowTrace {
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
