//! What the engine says about a change or a flow: change previews (`PreviewCluster`; the shell's
//! `--dry-run`, the ECU's `?dry_run=true`) and flow traces (`Trace`; `seesaw trace`,
//! `GET /v1/trace`).

use seesaw_proto::engine as pb;
use serde::Serialize;

/// What a change would do (nothing applied), or why it would be refused.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Preview {
    /// Vservers by name.
    pub vservers: Changes,
    /// Data-plane services.
    pub services: Changes,
    /// Destinations (`<service> <ip:port>`).
    pub destinations: Changes,
    /// `mh` services present before and after.
    pub flows_moved: Vec<FlowsMoved>,
    /// Why the change would be refused (empty: it would be applied).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
}

/// Names added, removed and changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Changes {
    /// New.
    pub added: Vec<String>,
    /// Gone.
    pub removed: Vec<String>,
    /// Changed.
    pub changed: Vec<String>,
}

/// A consistent-hash service and the share of its flows a change would move.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FlowsMoved {
    /// The service.
    pub service: String,
    /// 0..1.
    pub share: f64,
}

/// Which vserver, service and destination a flow gets, and why others are excluded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowTrace {
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
    /// Those that do not, and why.
    pub excluded: Vec<ExcludedDestination>,
    /// The plane's kind.
    pub plane: String,
    /// Anything else.
    pub notes: Vec<String>,
}

/// A destination that takes no new flows.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExcludedDestination {
    /// Its name.
    pub destination: String,
    /// Its backend host.
    pub backend: String,
    /// Why.
    pub why: String,
}

// === impl Preview ===

impl Preview {
    /// Whether the change would be applied.
    pub fn valid(&self) -> bool {
        self.errors.is_empty()
    }

    /// The three groups with their names: `vservers`, `services`, `destinations`.
    pub fn groups(&self) -> [(&'static str, &Changes); 3] {
        [
            ("vservers", &self.vservers),
            ("services", &self.services),
            ("destinations", &self.destinations),
        ]
    }
}

// === conversions from the protos ===

impl From<pb::Preview> for Preview {
    fn from(p: pb::Preview) -> Self {
        let changes = |c: Option<pb::Changes>| {
            let c = c.unwrap_or_default();
            Changes {
                added: c.added,
                removed: c.removed,
                changed: c.changed,
            }
        };
        Self {
            vservers: changes(p.vservers),
            services: changes(p.services),
            destinations: changes(p.destinations),
            flows_moved: p
                .flows_moved
                .into_iter()
                .map(|f| FlowsMoved {
                    service: f.service,
                    share: f.share,
                })
                .collect(),
            // One field says both: a refusal always names at least one error.
            errors: if p.valid && p.errors.is_empty() {
                Vec::new()
            } else if p.errors.is_empty() {
                vec!["refused".to_owned()]
            } else {
                p.errors
            },
        }
    }
}

impl From<pb::FlowTrace> for FlowTrace {
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
                .map(|e| ExcludedDestination {
                    destination: e.destination,
                    backend: e.backend,
                    why: e.why,
                })
                .collect(),
            plane: t.plane,
            notes: t.notes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_always_names_an_error() {
        let refused = Preview::from(pb::Preview {
            valid: false,
            ..Default::default()
        });
        assert_eq!(
            (refused.valid(), refused.errors),
            (false, vec!["refused".to_owned()])
        );
        let ok = Preview::from(pb::Preview {
            valid: true,
            vservers: Some(pb::Changes {
                added: vec!["web".into()],
                ..Default::default()
            }),
            ..Default::default()
        });
        assert!(ok.valid());
        assert_eq!(ok.groups()[0], ("vservers", &ok.vservers));
        assert_eq!(ok.vservers.added, ["web"]);
    }
}
