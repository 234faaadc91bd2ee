//! `PreviewCluster`: reads the candidate (the request's text, cluster.pb on disk, or a history
//! version) and validates it off the loop, as the real change would; the loop computes the
//! preview on a copy of its state ([`crate::preview`]). Nothing is saved or applied.

use seesaw_proto::engine as pb;
use tokio::sync::oneshot;
use tonic::Status;

use super::EngineService;
use crate::events::Event;
use crate::preview::{Changes, Preview};

impl EngineService {
    /// The preview of the change `req` names.
    pub(super) async fn preview_of(&self, req: pb::PreviewRequest) -> Result<pb::Preview, Status> {
        if self.etcd.store().is_some() {
            return Err(Status::failed_precondition(
                "a preview needs config source disk (with etcd, members and anchors live outside cluster.pb)",
            ));
        }
        let dir = self.config_dir.clone();
        let checked = tokio::task::spawn_blocking(move || {
            let bytes = match req.change {
                Some(pb::preview_request::Change::Text(t)) => t.into_bytes(),
                Some(pb::preview_request::Change::Reload(_)) => {
                    std::fs::read(dir.join("cluster.pb"))
                        .map_err(|e| vec![format!("cluster.pb: {e}")])?
                }
                Some(pb::preview_request::Change::RollbackId(id)) => {
                    crate::history::History::new(&dir)
                        .get(id)
                        .map_err(|e| vec![format!("config history has no version {id}: {e}")])?
                }
                None => return Err(vec!["the request names no change".to_owned()]),
            };
            crate::config::load_candidate(&dir, &bytes)
        })
        .await
        .map_err(|e| Status::internal(format!("preview: {e}")))?;
        let candidate = match checked {
            Ok(c) => c,
            Err(errors) => {
                return Ok(pb::Preview {
                    valid: false,
                    errors: crate::config::summarize(errors, crate::config::SHOWN_ERRORS),
                    ..Default::default()
                });
            }
        };
        let (tx, rx) = oneshot::channel();
        self.send(Event::Preview {
            candidate: Box::new(candidate),
            reply: tx,
        })
        .await?;
        let p = rx
            .await
            .map_err(|_| Status::unavailable("engine stopped"))?;
        Ok(preview_pb(p))
    }
}

fn changes_pb(c: Changes) -> Option<pb::Changes> {
    Some(pb::Changes {
        added: c.added,
        removed: c.removed,
        changed: c.changed,
    })
}

fn preview_pb(p: Preview) -> pb::Preview {
    pb::Preview {
        valid: true,
        errors: Vec::new(),
        vservers: changes_pb(p.vservers),
        services: changes_pb(p.services),
        destinations: changes_pb(p.destinations),
        flows_moved: p
            .flows_moved
            .into_iter()
            .map(|(service, share)| pb::FlowsMoved { service, share })
            .collect(),
    }
}
