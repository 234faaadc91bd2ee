//! `Trace`: the flow's match and exclusions from the latest snapshot ([`crate::trace`]), the
//! plane's prediction and live flow through the loop (which asks ncc off the loop).

use seesaw_proto::engine as pb;
use tokio::sync::oneshot;
use tonic::Status;

use super::EngineService;
use crate::events::Event;
use crate::model::Protocol;
use crate::trace::{FlowQuery, match_flow};

impl EngineService {
    /// The trace of the flow `r` names.
    pub(super) async fn trace_of(&self, r: pb::TraceRequest) -> Result<pb::FlowTrace, Status> {
        let proto = match r.protocol.to_ascii_lowercase().as_str() {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            other => {
                return Err(Status::invalid_argument(format!(
                    "protocol {other:?}: tcp or udp"
                )));
            }
        };
        let addr = |what: &str, s: &str| {
            s.parse()
                .map_err(|_| Status::invalid_argument(format!("{what} {s:?} is not an ip:port")))
        };
        let q = FlowQuery {
            proto,
            client: addr("client", &r.client)?,
            vip: addr("vip", &r.vip)?,
        };
        let Some(m) = match_flow(&self.snap().vservers, &q) else {
            return Ok(pb::FlowTrace {
                notes: vec![format!(
                    "no configured service on {}/{}",
                    q.vip,
                    r.protocol.to_ascii_uppercase()
                )],
                ..Default::default()
            });
        };
        let (tx, rx) = oneshot::channel();
        self.send(Event::Trace(q, tx)).await?;
        let plane = rx
            .await
            .map_err(|_| Status::unavailable("engine stopped"))?;
        let mut out = pb::FlowTrace {
            matched: true,
            vserver: m.vserver,
            service: m.service,
            scheduler: m.scheduler,
            eligible: m.eligible.iter().map(|(d, _)| d.clone()).collect(),
            excluded: m
                .excluded
                .into_iter()
                .map(|e| pb::ExcludedDestination {
                    destination: e.destination,
                    backend: e.backend,
                    why: e.why,
                })
                .collect(),
            ..Default::default()
        };
        match plane {
            Ok(p) => {
                if !p.found {
                    out.notes.push(format!(
                        "the {} plane holds no service for it (not applied yet, or not on this node)",
                        p.plane
                    ));
                }
                let backend_of = |a: std::net::SocketAddr| {
                    m.eligible
                        .iter()
                        .find(|(d, _)| d.contains(&format!("/{a}/")))
                        .map(|(_, b)| b.clone())
                        .unwrap_or_default()
                };
                out.predicted_backend = p.predicted.map(backend_of).unwrap_or_default();
                out.predicted = p.predicted.map(|a| a.to_string()).unwrap_or_default();
                out.how = p.how;
                out.flow = p.flow.map(|a| a.to_string()).unwrap_or_default();
                out.flow_state = p.flow_state;
                out.plane = p.plane;
                out.notes.extend(p.notes);
            }
            Err(e) => out
                .notes
                .push(format!("the data plane could not be asked: {e}")),
        }
        Ok(out)
    }
}
