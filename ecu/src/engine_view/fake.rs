//! A stateful in-memory engine for tests: vservers, HA and config status that tests set and
//! change, and a switch that makes it unreachable. Name filtering follows the engine's rule
//! (exact name or prefix). Writes are kept: overrides, reloads, failovers, and cluster.pb
//! versions (an update that does not parse is refused and changes nothing; an accepted one
//! replaces the vservers with what the text holds).

use std::sync::{Arc, Mutex, MutexGuard};

use super::{EngineView, ViewError};
use crate::cluster_edit;
use crate::model::{
    Cluster, ConfigStatus, Destination, HaStatus, Outcome, Override, OverrideKind, OverrideState,
    Service, Version, Vserver,
};

/// The fake engine. Clones share state.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    inner: Arc<Mutex<FakeState>>,
}

#[derive(Debug)]
struct FakeState {
    vservers: Vec<Vserver>,
    ha: HaStatus,
    config: ConfigStatus,
    unreachable: bool,
    overrides: Vec<Override>,
    reloads: u32,
    failovers: u32,
    source: String,
    /// Every saved version with its text, oldest first.
    versions: Vec<(Version, String)>,
    text: String,
    /// Registered members: (pool, host, ttl_s).
    leases: Vec<(String, String, u32)>,
    /// Allocated addresses: (vip pool, owner, address).
    vips: Vec<(String, String, String)>,
}

// === impl FakeEngine ===

impl FakeEngine {
    /// A reachable engine with no vservers, HA `UNKNOWN` and config generation 0.
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Mutex::new(FakeState {
                vservers: Vec::new(),
                ha: HaStatus {
                    state: "UNKNOWN".into(),
                    ..HaStatus::default()
                },
                config: ConfigStatus::default(),
                unreachable: false,
                overrides: Vec::new(),
                reloads: 0,
                failovers: 0,
                source: "disk".into(),
                versions: Vec::new(),
                text: String::new(),
                leases: Vec::new(),
                vips: Vec::new(),
            })),
        }
    }

    /// Replaces the vservers.
    pub fn set_vservers(&self, vservers: Vec<Vserver>) {
        self.lock().vservers = vservers;
    }

    /// Replaces the HA status.
    pub fn set_ha(&self, ha: HaStatus) {
        self.lock().ha = ha;
    }

    /// Replaces the config status.
    pub fn set_config(&self, config: ConfigStatus) {
        self.lock().config = config;
    }

    /// Makes every read fail as if the engine were down, or succeed again.
    pub fn set_unreachable(&self, unreachable: bool) {
        self.lock().unreachable = unreachable;
    }

    /// Sets the cluster.pb text (not a version) and derives the vservers from it.
    pub fn set_cluster_text(&self, text: &str) {
        let mut s = self.lock();
        s.text = text.to_owned();
        if let Ok(c) = cluster_edit::parse(text) {
            s.vservers = vservers_of(&c);
        }
    }

    /// The current cluster.pb text.
    pub fn cluster_text_now(&self) -> String {
        self.lock().text.clone()
    }

    /// Overrides set so far.
    pub fn overrides_now(&self) -> Vec<Override> {
        self.lock().overrides.clone()
    }

    /// (reloads, failovers) asked for.
    pub fn counts(&self) -> (u32, u32) {
        let s = self.lock();
        (s.reloads, s.failovers)
    }

    fn lock(&self) -> MutexGuard<'_, FakeState> {
        // A panicking test thread poisons the lock; the state is still what the test wants to see.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// As the engine: [`FakeEngine::reachable`] for a `call` that needs config source etcd, and
    /// says `why` otherwise.
    fn reachable_on_etcd(
        &self,
        call: &'static str,
        why: &str,
    ) -> Result<MutexGuard<'_, FakeState>, ViewError> {
        let s = self.reachable()?;
        if s.source != "etcd" {
            return Err(ViewError::Rpc {
                call,
                code: tonic::Code::FailedPrecondition,
                message: why.to_owned(),
            });
        }
        Ok(s)
    }

    fn reachable(&self) -> Result<MutexGuard<'_, FakeState>, ViewError> {
        let s = self.lock();
        if s.unreachable {
            return Err(ViewError::Unavailable("fake engine is down".into()));
        }
        Ok(s)
    }
}

impl Default for FakeEngine {
    fn default() -> Self {
        Self::new()
    }
}

impl EngineView for FakeEngine {
    async fn vservers(&self, name: String) -> Result<Vec<Vserver>, ViewError> {
        let s = self.reachable()?;
        Ok(s.vservers
            .iter()
            .filter(|v| v.name.starts_with(&name))
            .cloned()
            .collect())
    }

    async fn ha_status(&self) -> Result<HaStatus, ViewError> {
        Ok(self.reachable()?.ha.clone())
    }

    async fn config_status(&self) -> Result<ConfigStatus, ViewError> {
        Ok(self.reachable()?.config.clone())
    }

    async fn cluster(&self) -> Result<Cluster, ViewError> {
        drop(self.reachable()?);
        Ok(Cluster {
            site: "fake".into(),
            version: 2,
            dataplane: "fake".into(),
            nodes: Vec::new(),
        })
    }

    async fn overrides(&self) -> Result<Vec<Override>, ViewError> {
        Ok(self.reachable()?.overrides.clone())
    }

    async fn set_override(
        &self,
        kind: OverrideKind,
        target: String,
        state: OverrideState,
        who: String,
    ) -> Result<String, ViewError> {
        let mut s = self.reachable()?;
        let name = |k: OverrideKind| format!("{k:?}").to_lowercase();
        s.overrides
            .retain(|o| !(o.kind == name(kind) && o.target == target));
        let st = format!("{state:?}").to_lowercase();
        s.overrides.push(Override {
            kind: name(kind),
            target: target.clone(),
            state: st.clone(),
            set_by: format!("{who} (via ecu)"),
            set_at_ms: 0,
        });
        Ok(format!("{} {target}: {st}", name(kind)))
    }

    async fn config_reload(&self) -> Result<Outcome, ViewError> {
        let mut s = self.reachable()?;
        s.reloads += 1;
        s.config.generation += 1;
        Ok(applied(s.config.generation))
    }

    async fn config_source(&self, source: String) -> Result<(String, String), ViewError> {
        let mut s = self.reachable()?;
        let before = s.source.clone();
        match source.as_str() {
            "" => Ok((before.clone(), before)),
            "disk" | "none" | "server" | "peer" | "etcd" => {
                s.source = source;
                Ok((s.source.clone(), before))
            }
            other => Err(ViewError::Rpc {
                call: "ConfigSource",
                code: tonic::Code::InvalidArgument,
                message: format!("unknown config source {other:?}"),
            }),
        }
    }

    async fn failover(&self) -> Result<String, ViewError> {
        let mut s = self.reachable()?;
        if s.ha.state != "LEADER" {
            return Err(ViewError::Rpc {
                call: "Failover",
                code: tonic::Code::FailedPrecondition,
                message: format!("this node is {}, not the master", s.ha.state),
            });
        }
        s.failovers += 1;
        Ok("failover requested".into())
    }

    async fn cluster_text(&self) -> Result<(String, u64), ViewError> {
        let s = self.reachable()?;
        Ok((s.text.clone(), s.config.generation))
    }

    async fn update_cluster(
        &self,
        text: String,
        what: String,
        who: String,
        base: u64,
    ) -> Result<Outcome, ViewError> {
        let mut s = self.reachable()?;
        // The engine's compare-and-swap: an edit based on an older config is refused.
        if base != 0 && base != s.config.generation {
            return Ok(refused(format!(
                "conflict: the config is at revision {}, not {base}",
                s.config.generation
            )));
        }
        let c = match cluster_edit::parse(&text) {
            Ok(c) => c,
            Err(e) => return Ok(refused(e.to_string())),
        };
        s.vservers = vservers_of(&c);
        save(&mut s, text, what, who);
        Ok(applied(s.config.generation))
    }

    async fn history(&self) -> Result<Vec<Version>, ViewError> {
        let s = self.reachable()?;
        Ok(s.versions.iter().rev().map(|(v, _)| v.clone()).collect())
    }

    async fn register_member(
        &self,
        pool: String,
        m: crate::spec::Member,
        ttl_s: u32,
    ) -> Result<(i64, bool), ViewError> {
        let mut s = self.reachable_on_etcd(
            "RegisterMember",
            "registering members needs config source etcd, connected",
        )?;
        let renewed = s.leases.iter().any(|(p, h, _)| *p == pool && *h == m.host);
        if !renewed {
            s.leases.push((pool, m.host, ttl_s));
        }
        Ok((s.leases.len() as i64, renewed))
    }

    async fn allocate_vip(
        &self,
        vip_pool: String,
        owner: String,
        _ports: Vec<u16>,
    ) -> Result<(String, bool), ViewError> {
        let mut s = self.reachable_on_etcd(
            "AllocateVip",
            "address pools need config source etcd, connected",
        )?;
        // As the engine: only a vip_pool of the running config.
        let known = cluster_edit::parse(&s.text)
            .is_ok_and(|c| c.vip_pool.iter().any(|p| p.name == vip_pool));
        if !known {
            return Err(ViewError::Rpc {
                call: "AllocateVip",
                code: tonic::Code::NotFound,
                message: format!("no vip_pool {vip_pool:?} in the running config"),
            });
        }
        if let Some((_, _, ip)) = s.vips.iter().find(|v| v.0 == vip_pool && v.1 == owner) {
            return Ok((ip.clone(), false));
        }
        let ip = format!("10.99.0.{}", s.vips.len() + 1);
        s.vips.push((vip_pool, owner, ip.clone()));
        Ok((ip, true))
    }

    async fn free_vip(&self, vip_pool: String, owner: String) -> Result<bool, ViewError> {
        let mut s = self.reachable()?;
        let before = s.vips.len();
        s.vips.retain(|v| !(v.0 == vip_pool && v.1 == owner));
        Ok(s.vips.len() != before)
    }

    async fn trace(
        &self,
        _proto: String,
        _client: String,
        vip: String,
    ) -> Result<crate::model::FlowTrace, ViewError> {
        // The fake has no data plane: it matches a vserver by VIP only.
        let s = self.reachable()?;
        let ip = vip.rsplit_once(':').map_or(vip.as_str(), |(ip, _)| ip);
        let hit = s.vservers.iter().find(|v| v.vips.iter().any(|x| x == ip));
        Ok(crate::model::FlowTrace {
            matched: hit.is_some(),
            vserver: hit.map(|v| v.name.clone()).unwrap_or_default(),
            plane: "fake".to_owned(),
            ..Default::default()
        })
    }

    async fn preview(
        &self,
        of: crate::model::PreviewOf,
    ) -> Result<crate::model::Preview, ViewError> {
        let s = self.reachable()?;
        let text = match of {
            crate::model::PreviewOf::Text(t) => t,
            crate::model::PreviewOf::Reload => s.text.clone(),
            crate::model::PreviewOf::Rollback(id) => {
                match s.versions.iter().find(|(v, _)| v.id == id) {
                    Some((_, t)) => t.clone(),
                    None => {
                        return Err(ViewError::Rpc {
                            call: "PreviewCluster",
                            code: tonic::Code::NotFound,
                            message: format!("no config version {id}"),
                        });
                    }
                }
            }
        };
        Ok(preview_of(&s.vservers, &text))
    }

    async fn rollback(&self, id: u64, who: String) -> Result<Outcome, ViewError> {
        let mut s = self.reachable()?;
        let Some((_, text)) = s.versions.iter().find(|(v, _)| v.id == id).cloned() else {
            return Err(ViewError::Rpc {
                call: "ConfigRollback",
                code: tonic::Code::NotFound,
                message: format!("no config version {id}"),
            });
        };
        if let Ok(c) = cluster_edit::parse(&text) {
            s.vservers = vservers_of(&c);
        }
        save(&mut s, text, format!("rollback to version {id}"), who);
        Ok(applied(s.config.generation))
    }
}

/// The fake's preview: vservers compared by name and content; no data plane, so no services,
/// destinations or tables.
fn preview_of(before: &[Vserver], text: &str) -> crate::model::Preview {
    let after = match cluster_edit::parse(text) {
        Ok(c) => vservers_of(&c),
        Err(e) => {
            return crate::model::Preview {
                errors: vec![e.to_string()],
                ..Default::default()
            };
        }
    };
    let mut c = crate::model::Changes::default();
    for v in &after {
        match before.iter().find(|b| b.name == v.name) {
            None => c.added.push(v.name.clone()),
            Some(b) if b != v => c.changed.push(v.name.clone()),
            Some(_) => {}
        }
    }
    c.removed = before
        .iter()
        .filter(|b| !after.iter().any(|v| v.name == b.name))
        .map(|b| b.name.clone())
        .collect();
    crate::model::Preview {
        vservers: c,
        ..Default::default()
    }
}

/// The engine's refusal of a config change, for `why`.
fn refused(why: String) -> Outcome {
    Outcome {
        applied: false,
        message: "configuration refused".into(),
        errors: vec![why],
    }
}

fn applied(generation: u64) -> Outcome {
    Outcome {
        applied: true,
        message: format!("configuration applied (generation {generation})"),
        errors: Vec::new(),
    }
}

fn save(s: &mut FakeState, text: String, what: String, who: String) {
    let id = s.versions.last().map_or(1, |(v, _)| v.id + 1);
    s.config.generation += 1;
    s.versions.push((
        Version {
            id,
            at_ms: 0,
            who,
            what,
            sha256: String::new(),
            size: text.len() as u64,
        },
        text.clone(),
    ));
    s.text = text;
}

/// What the engine would show for a config: every backend healthy and active.
fn vservers_of(c: &seesaw_proto::config::Cluster) -> Vec<Vserver> {
    c.vserver
        .iter()
        .map(|v| {
            let vip = v
                .entry_address
                .ipv4
                .clone()
                .or_else(|| v.entry_address.ipv6.clone())
                .unwrap_or_default();
            let vip = vip.split('/').next().unwrap_or_default().to_owned();
            let services = v
                .vserver_entry
                .iter()
                .map(|e| {
                    let destinations = v
                        .backend
                        .iter()
                        .map(|b| {
                            let ip = b.host.ipv4.clone().unwrap_or_default();
                            let ip = ip.split('/').next().unwrap_or_default().to_owned();
                            Destination {
                                name: format!("{}/{ip}:{}/TCP", v.name, e.port),
                                address: ip,
                                port: u32::try_from(e.backend_port.unwrap_or(e.port))
                                    .unwrap_or_default(),
                                ..destination(&b.host.fqdn, b.weight.unwrap_or(1))
                            }
                        })
                        .collect();
                    Service {
                        address: vip.clone(),
                        protocol: if e.protocol == 2 { "UDP" } else { "TCP" }.into(),
                        enabled: true,
                        ..service(
                            u32::try_from(e.port).unwrap_or_default(),
                            "rr",
                            destinations,
                        )
                    }
                })
                .collect();
            Vserver {
                name: v.name.clone(),
                hostname: v.entry_address.fqdn.clone(),
                config_enabled: true,
                vips: vec![vip],
                ..vserver("", services)
            }
        })
        .collect()
}

/// A test vserver: `name` (hostname `<name>.demo.`), enabled, on VIP 127.0.0.1, with `services`.
pub fn vserver(name: &str, services: Vec<Service>) -> Vserver {
    Vserver {
        name: name.into(),
        hostname: format!("{name}.demo."),
        enabled: true,
        vips: vec!["127.0.0.1".into()],
        services,
        ..Vserver::default()
    }
}

/// A test service: TCP on 127.0.0.1:`port`, NAT, healthy and active, with `destinations`.
pub fn service(port: u32, scheduler: &str, destinations: Vec<Destination>) -> Service {
    Service {
        address: "127.0.0.1".into(),
        protocol: "TCP".into(),
        port,
        scheduler: scheduler.into(),
        mode: "NAT".into(),
        healthy: true,
        active: true,
        destinations,
        ..Service::default()
    }
}

/// A test destination: `backend` at 127.0.0.2:80 (named after it), enabled, healthy and active,
/// with weight `weight` and no checks or traffic.
pub fn destination(backend: &str, weight: i32) -> Destination {
    Destination {
        name: backend.split('.').next().unwrap_or_default().into(),
        backend: backend.into(),
        address: "127.0.0.2".into(),
        port: 80,
        weight,
        enabled: true,
        healthy: true,
        active: true,
        ..Destination::default()
    }
}
