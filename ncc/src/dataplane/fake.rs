//! `FakeDataplane`: an in-memory plane that keeps exactly what it was told and logs every change.
//! Tests assert on its state; it also backs the ncc gRPC tests.

use std::collections::BTreeMap;

use super::{Change, Dataplane, ServiceStats};
use crate::NccError;
use crate::model::{DestStats, Service, ServiceKey};

/// An in-memory data plane.
#[derive(Debug, Default)]
pub struct FakeDataplane {
    services: BTreeMap<ServiceKey, Service>,
    /// Every change committed, in order.
    pub log: Vec<Change>,
}

impl Dataplane for FakeDataplane {
    fn kind(&self) -> &'static str {
        "fake"
    }

    fn unsupported(&self, _: &Service) -> Option<String> {
        None
    }

    fn current(&self) -> Vec<Service> {
        self.services.values().cloned().collect()
    }

    fn commit(&mut self, changes: &[Change]) -> Result<(), NccError> {
        for c in changes {
            let missing = |k: &ServiceKey| NccError::Inconsistent(format!("no service {k}"));
            match c {
                Change::AddService(s) => {
                    self.services.insert(s.key, s.clone());
                }
                Change::UpdateService(s) => {
                    let cur = self
                        .services
                        .get_mut(&s.key)
                        .ok_or_else(|| missing(&s.key))?;
                    (cur.scheduler, cur.mode, cur.persistence) =
                        (s.scheduler, s.mode, s.persistence);
                    cur.marks.clone_from(&s.marks);
                    cur.opts.clone_from(&s.opts);
                }
                Change::DeleteService(k) => {
                    self.services.remove(k).ok_or_else(|| missing(k))?;
                }
                Change::AddDest(k, d) | Change::UpdateDest(k, d) => {
                    let s = self.services.get_mut(k).ok_or_else(|| missing(k))?;
                    s.dests.retain(|x| x.addr != d.addr);
                    s.dests.push(*d);
                    s.dests.sort();
                }
                Change::DeleteDest(k, d) => {
                    let s = self.services.get_mut(k).ok_or_else(|| missing(k))?;
                    s.dests.retain(|x| x.addr != d.addr);
                }
            }
            self.log.push(c.clone());
        }
        Ok(())
    }

    fn stats(&self) -> Vec<ServiceStats> {
        self.services
            .values()
            .map(|s| ServiceStats {
                service: s.clone(),
                dests: s
                    .dests
                    .iter()
                    .map(|d| DestStats {
                        dest: Some(*d),
                        ..DestStats::default()
                    })
                    .collect(),
                table_hash: None,
            })
            .collect()
    }
}
