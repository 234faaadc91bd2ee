//! `FakeNcc`: an in-memory ncc for tests — it holds the last applied state, reports changes as
//! the real one does, speaks BGP to nobody, and can be told to fail.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use super::{Ncc, NccBgp, NccError, PlaneKind, PlaneStats};
use crate::desired::{DesiredState, DestSpec, DestStats, ServiceKey, ServiceSpec};

/// An in-memory ncc: holds the last applied state, reports changes like the real one, and can be
/// told to fail. Tests assert on [`FakeNcc::services`], not on call counts.
#[derive(Debug, Clone, Default)]
pub struct FakeNcc {
    inner: Arc<Mutex<FakeInner>>,
    bgp: Arc<Mutex<FakeBgp>>,
}

#[derive(Debug, Default)]
struct FakeInner {
    services: HashMap<ServiceKey, ServiceSpec>,
    fail: Option<String>,
    applies: usize,
    /// Every apply call, failed ones included.
    attempts: usize,
    /// The LB interface as last applied (`None`: never managed).
    lb: Option<crate::desired::LbDesired>,
}

impl FakeNcc {
    /// What the fake data plane holds now.
    pub fn services(&self) -> Vec<ServiceSpec> {
        let inner = self.inner.lock().expect("fake ncc lock");
        let mut v: Vec<_> = inner.services.values().cloned().collect();
        v.sort_by_key(|s| s.key);
        v
    }

    /// Makes every following call fail as unavailable (`None` heals it).
    pub fn set_failing(&self, reason: Option<&str>) {
        self.inner.lock().expect("fake ncc lock").fail = reason.map(str::to_owned);
    }

    /// The LB interface as the fake ncc holds it (`None` until a request manages it).
    pub fn lb(&self) -> Option<crate::desired::LbDesired> {
        self.inner.lock().expect("fake ncc lock").lb.clone()
    }

    /// Number of successful applies.
    pub fn applies(&self) -> usize {
        self.inner.lock().expect("fake ncc lock").applies
    }

    /// Number of apply calls, failed ones included.
    pub fn attempts(&self) -> usize {
        self.inner.lock().expect("fake ncc lock").attempts
    }
}

impl Ncc for FakeNcc {
    /// The fake never restarts: one boot id, then the stream stays open.
    async fn watch(&self, tx: tokio::sync::mpsc::Sender<u64>) {
        if tx.send(1).await.is_ok() {
            tx.closed().await;
        }
    }

    async fn apply(&self, desired: &Arc<DesiredState>) -> Result<Vec<String>, NccError> {
        let mut inner = self.inner.lock().expect("fake ncc lock");
        inner.attempts += 1;
        if let Some(reason) = &inner.fail {
            return Err(NccError::Unavailable(reason.clone()));
        }
        let mut changes = Vec::new();
        let wanted: HashMap<ServiceKey, &ServiceSpec> =
            desired.services.iter().map(|s| (s.key, &**s)).collect();
        inner.services.retain(|k, _| {
            let keep = wanted.contains_key(k);
            if !keep {
                changes.push(format!("delete service {k}"));
            }
            keep
        });
        for (k, s) in wanted {
            match inner.services.get(&k) {
                None => changes.push(format!("add service {k}")),
                Some(old) if old != s => changes.push(format!("update service {k}")),
                Some(_) => continue,
            }
            inner.services.insert(k, s.clone());
        }
        if let Some(lb) = &desired.lb {
            if inner.lb.as_ref().map(|l| l.up) != Some(lb.up) {
                changes.push(format!(
                    "LB interface {}",
                    if lb.up { "up" } else { "down" }
                ));
            }
            inner.lb = Some(lb.clone());
        }
        inner.applies += 1;
        changes.sort();
        Ok(changes)
    }

    async fn stats(&self) -> Result<PlaneStats, NccError> {
        let inner = self.inner.lock().expect("fake ncc lock");
        if let Some(reason) = &inner.fail {
            return Err(NccError::Unavailable(reason.clone()));
        }
        let mut dests = HashMap::new();
        for s in inner.services.values() {
            for d in &s.dests {
                let DestSpec { ip, port, .. } = d;
                dests.insert((s.key, (*ip, *port)), DestStats::default());
            }
        }
        let fwmarks = inner
            .services
            .values()
            .filter(|s| s.key.fwmark != 0)
            .map(|s| crate::state::HeldFwmark {
                key: s.key,
                mode: s.mode,
                marks: s.marks.clone(),
                dests: s.dests.iter().map(|d| d.ip).collect(),
            })
            .collect();
        Ok(PlaneStats {
            kind: PlaneKind::Fake,
            dests,
            fwmarks,
            tables: HashMap::new(),
        })
    }
}

#[derive(Debug, Default)]
struct FakeBgp {
    /// Every `bgp_set` call, failed ones included.
    calls: usize,
    announced: std::collections::BTreeSet<IpAddr>,
    /// Every announcement change in order: `+ip` / `-ip`.
    log: Vec<String>,
    settings: Option<crate::state::BgpSettings>,
}

impl FakeNcc {
    /// What the fake speaker announces now.
    pub fn bgp_announced(&self) -> Vec<IpAddr> {
        let b = self.bgp.lock().expect("fake bgp lock");
        b.announced.iter().copied().collect()
    }

    /// Every announcement change so far (`+ip`, `-ip`), in order.
    pub fn bgp_log(&self) -> Vec<String> {
        self.bgp.lock().expect("fake bgp lock").log.clone()
    }

    /// How many BGP updates were asked for, failed ones included.
    pub fn bgp_calls(&self) -> usize {
        self.bgp.lock().expect("fake bgp lock").calls
    }
}

impl NccBgp for FakeNcc {
    async fn bgp_set(&self, desired: &crate::state::BgpDesired) -> Result<Vec<String>, NccError> {
        self.bgp.lock().expect("fake bgp lock").calls += 1;
        if let Some(reason) = &self.inner.lock().expect("fake ncc lock").fail {
            return Err(NccError::Unavailable(reason.clone()));
        }
        let mut b = self.bgp.lock().expect("fake bgp lock");
        let mut changes = Vec::new();
        for r in b
            .announced
            .difference(&desired.routes)
            .copied()
            .collect::<Vec<_>>()
        {
            b.announced.remove(&r);
            b.log.push(format!("-{r}"));
            changes.push(format!("withdraw {r}"));
        }
        for r in desired
            .routes
            .difference(&b.announced)
            .copied()
            .collect::<Vec<_>>()
        {
            b.announced.insert(r);
            b.log.push(format!("+{r}"));
            changes.push(format!("announce {r}"));
        }
        b.settings = Some(desired.settings.clone());
        Ok(changes)
    }

    async fn bgp_neighbors(
        &self,
    ) -> Result<(Vec<crate::state::BgpNeighborView>, Vec<String>), NccError> {
        let b = self.bgp.lock().expect("fake bgp lock");
        let neighbors = b
            .settings
            .iter()
            .flat_map(|s| {
                s.peers.iter().map(|p| crate::state::BgpNeighborView {
                    address: p.to_string(),
                    peer_asn: s.remote_asn,
                    state: "ESTABLISHED".to_owned(),
                    ..Default::default()
                })
            })
            .collect();
        Ok((
            neighbors,
            b.announced.iter().map(ToString::to_string).collect(),
        ))
    }
}
