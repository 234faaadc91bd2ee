//! The engine's core, sans-io: configuration, check results and HA status go in; the desired
//! data-plane state and the status views the API serves come out. Time is passed in, never read.
//!
//! Health rules (Seesaw's, with its "backend without checks never comes up" bug fixed):
//! a destination is healthy iff its backend is enabled and every one of its checks passes (no
//! checks: healthy); a service is healthy when the share of healthy in-service destinations reaches
//! the high watermark, and stays healthy down to the low watermark (hysteresis; 0 means "at least
//! one"); a unicast or dedicated VIP is active when any of its services is healthy, an anycast VIP
//! only when all are. Only healthy services on active VIPs reach the data plane, holding only
//! their healthy destinations.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::checks::{CheckSpec, Topology, expand_with};
use crate::config::{Loaded, churn};
use crate::desired::{DesiredState, DestSpec, DestStats, ServiceKey, ServiceSpec};
use crate::model::{Af, CheckMode, ForwardMode, Scheduler, VipKind};

use self::fwmark::{MarkPool, PROBE_MARKS, VSERVER_MARKS};
use crate::overrides::{Caller, OverrideKind, OverrideState, Overrides, may_override};

/// The engine's state. Cloned only to preview a config change.
#[derive(Debug, Clone)]
pub struct EngineState {
    loaded: Arc<Loaded>,
    topology: Topology,
    /// The topology's checks as one shared list, made at the first snapshot after the topology
    /// changed: every snapshot shares it instead of copying every check.
    check_list: std::sync::OnceLock<Arc<Vec<CheckSpec>>>,
    generation: u64,
    loaded_at: SystemTime,
    results: HashMap<u64, CheckResult>,
    /// Probe statistics per check id, pruned with `results`.
    probe_stats: HashMap<u64, Arc<ProbeStats>>,
    /// The full config still being converged to when churn limiting held part of it back.
    target: Option<Loaded>,
    /// Operator overrides; they survive reloads.
    overrides: Overrides,
    /// Previous service health, for watermark hysteresis.
    service_healthy: HashMap<ServiceKey, bool>,
    ha: HaView,
    last_reload_errors: Vec<String>,
    last_reload_error_count: usize,
    reload_failures: u64,
    stats: HashMap<(ServiceKey, DestSpecKey), DestStats>,
    /// Maglev table fingerprints the plane reported, by service.
    tables: HashMap<ServiceKey, u64>,
    /// Maglev anchors of the `mh` services ([`anchors`]).
    anchors: anchors::Anchors,
    apply_error: Option<String>,
    started: SystemTime,
    startup_grace: Duration,
    gate_open: bool,
    /// Destinations the data plane already held when this engine started: presumed healthy until
    /// their checks report, so a restarted engine adopts the plane instead of flushing it.
    presumed: std::collections::HashSet<(ServiceKey, DestSpecKey)>,
    /// Unicast VIPs follow the HA state; the failover request.
    ha_gate: ha::HaGate,
    /// Marks of `use_fwm` vservers, per (vserver, family).
    vserver_marks: MarkPool<(String, Af)>,
    /// Marks of DSR/TUN probe services, per (backend address, check mode).
    probe_marks: MarkPool<(IpAddr, CheckMode)>,
    /// Each vserver's last evaluation and what makes it stale ([`reuse`]).
    reuse: reuse::Reuse,
}

/// A firewall-mark service the data plane holds (adopted at engine start).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldFwmark {
    /// The service.
    pub key: ServiceKey,
    /// Its forwarding mode.
    pub mode: ForwardMode,
    /// The VIP:port tuples it marks.
    pub marks: Vec<ServiceKey>,
    /// Its destinations' addresses.
    pub dests: Vec<IpAddr>,
}

/// How long the result of a removed check is remembered (see `EngineState::prune_results`).
pub const RESULT_MEMORY: Duration = Duration::from_secs(60);

/// Why an override was not set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverrideError {
    /// The caller lacks a grant.
    #[error("permission denied: {0}")]
    Denied(String),
    /// The request is malformed.
    #[error("invalid override: {0}")]
    Invalid(String),
    /// The name is neither in the configuration nor already overridden (Seesaw's shell refuses
    /// such a name too, so a typo cannot leave an override that waits for a vserver).
    #[error("no such {} {target:?}", kind.as_str())]
    NotFound {
        /// What was named.
        kind: OverrideKind,
        /// The name.
        target: String,
    },
}

/// Identifies a destination within a service for stats (weight excluded: it may change).
pub type DestSpecKey = (IpAddr, u16);

impl EngineState {
    /// A new engine running `loaded`, started at `now`.
    pub fn new(loaded: Loaded, now: SystemTime) -> Self {
        // Churn limiting applies at start too (Seesaw does the same): bring up at most
        // `churn_limit` vservers, the rest on the following steps.
        let mut empty = loaded.cluster.clone();
        empty.vservers.clear();
        let (step, pending) = churn::limit(&empty, &loaded.cluster, loaded.settings.churn_limit);
        let target = pending.then(|| loaded.clone());
        let loaded = Loaded {
            settings: loaded.settings,
            cluster: step,
        };
        let overrides = Overrides::default();
        let topology = expand_with(&loaded, &overrides);
        let startup_grace = grace(&topology);
        Self {
            loaded: Arc::new(loaded),
            topology,
            check_list: std::sync::OnceLock::new(),
            generation: 1,
            loaded_at: now,
            results: HashMap::new(),
            probe_stats: HashMap::new(),
            target,
            overrides,
            service_healthy: HashMap::new(),
            ha: HaView::default(),
            last_reload_errors: Vec::new(),
            last_reload_error_count: 0,
            reload_failures: 0,
            stats: HashMap::new(),
            tables: HashMap::new(),
            anchors: BTreeMap::new(),
            apply_error: None,
            started: now,
            startup_grace,
            gate_open: false,
            presumed: std::collections::HashSet::new(),
            ha_gate: ha::HaGate::default(),
            vserver_marks: MarkPool::new(VSERVER_MARKS),
            probe_marks: MarkPool::new(PROBE_MARKS),
            reuse: reuse::Reuse::default(),
        }
        .with_marks()
    }

    /// Adopts what the data plane holds at start: those destinations count as healthy while their
    /// checks have not reported yet.
    pub fn presume(&mut self, in_plane: impl IntoIterator<Item = (ServiceKey, DestSpecKey)>) {
        self.presumed.extend(in_plane);
        self.touch();
    }

    /// Every vserver is evaluated afresh next time (something they all read changed).
    fn touch(&mut self) {
        self.reuse.stale = None;
    }

    /// The running configuration.
    pub fn loaded(&self) -> &Arc<Loaded> {
        &self.loaded
    }

    /// Replaces the configuration (validated by the caller). Check results survive for checks
    /// whose id still exists.
    pub fn reload(&mut self, loaded: Loaded, now: SystemTime) -> u64 {
        let (step, pending) = churn::limit(
            &self.loaded.cluster,
            &loaded.cluster,
            loaded.settings.churn_limit,
        );
        if pending {
            tracing::info!(
                running = step.vservers.len(),
                wanted = loaded.cluster.vservers.len(),
                "churn limit: part of the new config follows on the next steps"
            );
        }
        self.target = pending.then(|| loaded.clone());
        let loaded = Loaded {
            settings: loaded.settings,
            cluster: step,
        };
        self.set_topology(expand_with(&loaded, &self.overrides));
        let etcd = loaded.cluster.etcd.as_ref();
        self.anchors = anchors::anchors(&self.topology, etcd, &self.anchors);
        self.loaded = Arc::new(loaded);
        self.assign_marks();
        self.prune_results(now);
        self.generation += 1;
        self.loaded_at = now;
        self.last_reload_errors.clear();
        self.last_reload_error_count = 0;
        self.generation
    }

    /// Sets an override after checking that `caller` may. Returns a message for the operator.
    /// A name must exist in the configuration, unless it is already overridden: an override kept
    /// for a vserver that left the config can still be changed or cleared, and still applies if
    /// the name comes back.
    pub fn set_override(
        &mut self,
        kind: OverrideKind,
        target: &str,
        state: OverrideState,
        caller: &Caller,
        now: SystemTime,
    ) -> Result<String, OverrideError> {
        if target.is_empty() {
            return Err(OverrideError::Invalid(format!(
                "{} name must not be empty",
                kind.as_str()
            )));
        }
        let cluster = &self.loaded.cluster;
        let exists = match kind {
            OverrideKind::Vserver => [cluster, &self.full_config().cluster]
                .iter()
                .any(|c| c.vservers.contains_key(target)),
            OverrideKind::Backend => [cluster, &self.full_config().cluster]
                .iter()
                .flat_map(|c| c.vservers.values())
                .any(|v| v.backends.contains_key(target)),
            OverrideKind::Destination => self
                .topology
                .vservers
                .values()
                .flat_map(|v| &v.services)
                .flat_map(|s| &s.dests)
                .any(|d| d.name == target),
        };
        if !exists && self.overrides.get(kind, target).is_none() {
            return Err(OverrideError::NotFound {
                kind,
                target: target.to_owned(),
            });
        }
        // Vserver and destination overrides may be granted per vserver; backend overrides span
        // every vserver, so they need a trusted caller.
        let vserver_name = match kind {
            OverrideKind::Vserver => Some(target),
            OverrideKind::Destination => Some(target.split('/').next().unwrap_or(target)),
            OverrideKind::Backend => None,
        };
        let allowed = match vserver_name.and_then(|n| cluster.vservers.get(n)) {
            _ if caller.trusted => true,
            Some(v) => may_override(cluster, v, caller),
            None => false,
        };
        if !allowed {
            return Err(OverrideError::Denied(format!(
                "{} may not override {} {target:?}",
                caller.user,
                kind.as_str()
            )));
        }
        let previous = self.overrides.set(kind, target, state, &caller.user, now);
        self.set_topology(expand_with(&self.loaded, &self.overrides));
        self.assign_marks();
        self.prune_results(now);
        let mut msg = format!(
            "{} {target}: {} (was {})",
            kind.as_str(),
            state.as_str(),
            previous.as_str()
        );
        if !exists && state != OverrideState::Default {
            msg.push_str(&format!(
                "; no such {} now, the override applies when it appears",
                kind.as_str()
            ));
        }
        Ok(msg)
    }

    /// Mirrors the master's overrides (peer sync, while this node is the backup): the set becomes
    /// exactly the master's. Returns whether anything changed.
    pub fn mirror_overrides(
        &mut self,
        from_peer: &[crate::overrides::PeerOverride],
        now: SystemTime,
    ) -> bool {
        let mut mirrored = Overrides::default();
        for o in from_peer {
            mirrored.set(
                o.kind,
                &o.target,
                o.state,
                &format!("peer:{}", o.set_by),
                now,
            );
        }
        let same = mirrored
            .iter()
            .map(|(k, t, o)| (k, t, o.state))
            .eq(self.overrides.iter().map(|(k, t, o)| (k, t, o.state)));
        if same {
            return false;
        }
        self.overrides = mirrored;
        self.set_topology(expand_with(&self.loaded, &self.overrides));
        self.assign_marks();
        self.prune_results(now);
        true
    }

    /// The overrides in force.
    pub fn overrides(&self) -> &Overrides {
        &self.overrides
    }

    /// The last config accepted in full (what churn limiting converges to).
    pub fn full_config(&self) -> &Loaded {
        self.target.as_ref().unwrap_or(&self.loaded)
    }

    /// Whether part of the last config is still held back by the churn limit.
    pub fn converging(&self) -> bool {
        self.target.is_some()
    }

    /// Applies the next churn-limited step towards the last config; false if nothing is pending.
    pub fn converge(&mut self, now: SystemTime) -> bool {
        match self.target.take() {
            Some(t) => {
                self.reload(t, now);
                true
            }
            None => false,
        }
    }

    /// Forgets results of checks that no longer exist, but only after [`RESULT_MEMORY`]: a check
    /// removed and restored within that time (a rollback, an override toggled back) keeps its
    /// result, because the healthcheck process, which only reports changes, may never have
    /// noticed it was gone and will not report it again.
    fn prune_results(&mut self, now: SystemTime) {
        let topology = &self.topology;
        self.results.retain(|id, r| {
            topology.checks.contains_key(id)
                || now.duration_since(r.at).unwrap_or_default() < RESULT_MEMORY
        });
        let results = &self.results;
        self.probe_stats.retain(|id, _| results.contains_key(id));
        self.touch();
    }

    /// Records a refused reload: the first [`crate::config::SHOWN_ERRORS`] errors and the count
    /// of all of them.
    pub fn reload_refused(&mut self, errors: Vec<String>) {
        self.reload_failures += 1;
        self.last_reload_error_count = errors.len();
        self.last_reload_errors = crate::config::summarize(errors, crate::config::SHOWN_ERRORS);
    }

    /// Whether check `id` has reported.
    pub fn has_result(&self, id: u64) -> bool {
        self.results.contains_key(&id)
    }

    /// Records check results; ids the engine does not know are ignored.
    pub fn health(&mut self, results: impl IntoIterator<Item = (u64, CheckResult)>) {
        for (id, r) in results {
            if self.topology.checks.contains_key(&id) {
                self.results.insert(id, r);
                self.reuse.check(id);
            }
        }
    }

    /// Records probe statistics; ids the engine does not know are ignored.
    pub fn probe_stats(&mut self, stats: impl IntoIterator<Item = (u64, ProbeStats)>) {
        for (id, s) in stats {
            if self.topology.checks.contains_key(&id) {
                self.reuse.check(id);
                self.probe_stats.insert(id, Arc::new(s));
            }
        }
    }

    /// Records the ha process's report.
    pub fn ha(&mut self, ha: HaView) {
        if ha.state != self.ha.state {
            self.touch();
        }
        self.ha = ha;
    }

    /// Records the data plane's counters and table fingerprints.
    pub fn stats(
        &mut self,
        stats: HashMap<(ServiceKey, DestSpecKey), DestStats>,
        tables: HashMap<ServiceKey, u64>,
    ) {
        (self.stats, self.tables) = (stats, tables);
        self.touch();
    }

    /// The Maglev anchors of the `mh` services.
    pub fn anchors(&self) -> &anchors::Anchors {
        &self.anchors
    }

    /// Why the last apply failed, while it does.
    pub fn apply_error(&self) -> Option<&str> {
        self.apply_error.as_deref()
    }

    /// Records the outcome of the last apply (shown in warnings while it fails).
    pub fn apply_result(&mut self, error: Option<String>) {
        self.apply_error = error;
    }

    /// Whether the engine may program the data plane: once every check has reported, or after a
    /// start-up grace period. Programming earlier would pull healthy backends that simply have not
    /// been probed yet — after an engine restart that would break traffic the plane still carries.
    pub fn may_apply(&mut self, now: SystemTime) -> bool {
        if !self.gate_open {
            let all_known = self
                .topology
                .checks
                .keys()
                .all(|id| self.results.contains_key(id));
            let waited = now.duration_since(self.started).unwrap_or_default() >= self.startup_grace;
            if (all_known || waited) && self.ha_settled(now) {
                self.gate_open = true;
            }
        }
        self.gate_open
    }

    /// Every check the healthcheck process should run.
    pub fn checks(&self) -> impl Iterator<Item = &CheckSpec> {
        self.topology.checks.values()
    }

    /// Every check, as one list shared until the topology changes.
    pub fn check_list(&self) -> Arc<Vec<CheckSpec>> {
        Arc::clone(
            self.check_list
                .get_or_init(|| Arc::new(self.topology.checks.values().cloned().collect())),
        )
    }

    fn set_topology(&mut self, t: Topology) {
        self.topology = t;
        self.check_list = std::sync::OnceLock::new();
    }

    /// Evaluates health and returns the status views and the desired data-plane state.
    pub fn evaluate(&mut self) -> (Vec<Arc<VserverView>>, DesiredState) {
        let mut views = Vec::with_capacity(self.topology.vservers.len());
        let mut desired = Vec::new();
        let mut vips_up: Vec<crate::model::Vip> = Vec::new();
        for vt in self.topology.vservers.values() {
            // A vserver nothing it reads changed for is not evaluated again ([`reuse`]).
            if !self.reuse.is_stale(&vt.config.name)
                && let Some(e) = self.reuse.kept.get(&vt.config.name)
            {
                views.push(Arc::clone(&e.view));
                desired.extend(e.services.iter().cloned());
                vips_up.extend(e.vips_up.iter().copied());
                continue;
            }
            let mut vs_desired = Vec::new();
            let mut vs_vips = Vec::new();
            let mut services = Vec::new();
            for st in &vt.services {
                let dests: Vec<DestView> = st
                    .dests
                    .iter()
                    .map(|d| {
                        let checks: Vec<CheckView> = d
                            .checks
                            .iter()
                            .map(|(name, id)| {
                                let r = self.results.get(id);
                                CheckView {
                                    name: name.clone(),
                                    id: *id,
                                    state: match r {
                                        None => CheckState::Unknown,
                                        Some(r) if r.healthy => CheckState::Healthy,
                                        Some(_) => CheckState::Unhealthy,
                                    },
                                    message: r.map(|r| r.message.clone()).unwrap_or_default(),
                                    stats: self.probe_stats.get(id).cloned(),
                                }
                            })
                            .collect();
                        let dest = DestSpec {
                            ip: d.ip,
                            port: d.port,
                            weight: d.weight,
                            group: d.group.clone(),
                            backup: d.backup,
                        };
                        let presumed = self.presumed.contains(&(st.key, (d.ip, d.port)));
                        let checks_pass = checks.iter().all(|c| match c.state {
                            CheckState::Healthy => true,
                            CheckState::Unknown => presumed,
                            CheckState::Unhealthy => false,
                        });
                        DestView {
                            name: d.name.clone(),
                            backend: d.backend.clone(),
                            enabled: d.enabled,
                            healthy: vt.enabled && d.enabled && checks_pass,
                            active: false,
                            stats: self
                                .stats
                                .get(&(st.key, (d.ip, d.port)))
                                .copied()
                                .unwrap_or_default(),
                            dest,
                            checks,
                            override_state: d.override_state,
                        }
                    })
                    .collect();
                let in_service = st.dests.iter().filter(|d| d.in_service).count();
                let healthy_n = dests.iter().filter(|d| d.healthy).count();
                let was = self.service_healthy.get(&st.key).copied().unwrap_or(false);
                let threshold = if was {
                    st.entry.low_watermark
                } else {
                    st.entry.high_watermark
                };
                #[allow(clippy::cast_precision_loss, reason = "backend counts are small")]
                let ratio = if in_service == 0 {
                    0.0
                } else {
                    healthy_n as f32 / in_service as f32
                };
                let healthy = vt.enabled
                    && in_service > 0
                    && healthy_n > 0
                    && (threshold <= 0.0 || ratio >= threshold);
                self.service_healthy.insert(st.key, healthy);
                services.push(ServiceView {
                    table_hash: self.tables.get(&st.key).copied(),
                    key: st.key,
                    entry: st.entry.clone(),
                    enabled: vt.enabled,
                    healthy,
                    active: false,
                    not_applied: None,
                    current_watermark: ratio,
                    dests,
                });
            }
            // VIP activity: anycast needs every service on the address healthy, others any.
            let mut vip_active: BTreeMap<IpAddr, bool> = BTreeMap::new();
            for vip in &vt.config.vips {
                let on_vip: Vec<&ServiceView> =
                    services.iter().filter(|s| s.key.vip == vip.ip).collect();
                let active = match vip.kind {
                    VipKind::Anycast => !on_vip.is_empty() && on_vip.iter().all(|s| s.healthy),
                    VipKind::Unicast | VipKind::Dedicated => {
                        self.serves_unicast() && on_vip.iter().any(|s| s.healthy)
                    }
                };
                vip_active.insert(vip.ip, active);
                // Unicast and dedicated VIPs are up while the vserver is enabled on the node
                // that serves unicast (the HA master, or a node without HA: a backup holding
                // them would answer ARP for them); anycast VIPs only while active.
                let up = match vip.kind {
                    VipKind::Anycast => active,
                    VipKind::Unicast | VipKind::Dedicated => vt.enabled && self.serves_unicast(),
                };
                if up {
                    vs_vips.push(*vip);
                }
            }
            for s in &mut services {
                s.active = s.healthy && vip_active.get(&s.key.vip).copied().unwrap_or(false);
                if !s.active {
                    continue;
                }
                let mut dests = Vec::new();
                for d in &mut s.dests {
                    d.active = d.healthy;
                    if d.healthy {
                        dests.push(d.dest.clone());
                    }
                }
                dests.sort();
                if vt.config.use_fwm {
                    continue;
                }
                vs_desired.push(Arc::new(ServiceSpec {
                    key: s.key,
                    scheduler: s.entry.scheduler,
                    mode: s.entry.mode,
                    persistence: s.entry.persistence,
                    dests,
                    proxy: s.entry.proxy.clone(),
                    marks: Vec::new(),
                    kernel: crate::desired::KernelOpts::of(&s.entry),
                    anchor: self.anchors.get(&s.key).map(|a| Arc::clone(&a.anchor)),
                }));
            }
            if vt.config.use_fwm {
                vs_desired.extend(
                    self.fwmark_services(&vt.config.name, &services)
                        .into_iter()
                        .map(Arc::new),
                );
            }
            let view = Arc::new(VserverView {
                name: vt.config.name.clone(),
                hostname: vt.config.host.hostname.clone(),
                enabled: vt.enabled,
                config_enabled: vt.config.enabled,
                vips: vt.config.vips.clone(),
                services,
                warnings: vt.config.warnings.clone(),
                override_state: vt.override_state,
            });
            views.push(Arc::clone(&view));
            desired.extend(vs_desired.iter().cloned());
            vips_up.extend(vs_vips.iter().copied());
            self.reuse.kept.insert(
                vt.config.name.clone(),
                reuse::Evaluated {
                    view,
                    services: vs_desired,
                    vips_up: vs_vips,
                },
            );
        }
        if self.reuse.stale.is_none() {
            let topology = &self.topology;
            self.reuse
                .kept
                .retain(|name, _| topology.vservers.contains_key(name));
        }
        self.reuse.stale = Some(std::collections::HashSet::new());
        desired.extend(self.probe_services().into_iter().map(Arc::new));
        desired.sort_by_key(|s| s.key);
        vips_up.extend(
            self.service_anycast()
                .into_iter()
                .map(|ip| crate::model::Vip {
                    ip,
                    kind: VipKind::Anycast,
                }),
        );
        vips_up.sort();
        vips_up.dedup_by_key(|v| v.ip);
        (
            views,
            DesiredState {
                services: desired,
                vips: vips_up,
                lb: Some(self.lb_desired()),
            },
        )
    }

    /// Cluster warnings: config warnings, an unknown local node, a failing apply, a refused reload.
    pub fn warnings(&self) -> Vec<String> {
        let mut w = self.loaded.settings.warnings.clone();
        w.extend(self.loaded.cluster.warnings.iter().cloned());
        if self.loaded.local_node().is_none() {
            w.push(format!(
                "node {} is not configured in cluster.pb: no vservers run on this node",
                self.loaded
                    .settings
                    .node_ipv4
                    .map_or_else(|| "(node_ipv4 unset)".to_owned(), |ip| ip.to_string())
            ));
        }
        if let Some(e) = &self.apply_error {
            w.push(format!("data plane apply failing: {e}"));
        }
        if !self.last_reload_errors.is_empty() {
            w.push(format!(
                "last config reload refused ({} errors; the previous config keeps running): {}",
                self.last_reload_error_count,
                self.last_reload_errors.join("; ")
            ));
        }
        w
    }

    /// HA status.
    pub fn ha_view(&self) -> &HaView {
        &self.ha
    }

    /// Generation, load time, failures and last errors of the config.
    pub fn config_meta(&self) -> (u64, SystemTime, u64, &[String]) {
        (
            self.generation,
            self.loaded_at,
            self.reload_failures,
            &self.last_reload_errors,
        )
    }
}

/// How long to wait for first results at start: the slowest check's interval plus timeout plus a
/// second, capped at 10 s so a bad check config cannot keep the plane unprogrammed for long.
fn grace(t: &Topology) -> Duration {
    t.checks
        .values()
        .map(|c| c.check.timeout.min(c.check.interval) + Duration::from_secs(1))
        .max()
        .unwrap_or_default()
        .min(Duration::from_secs(10))
}

pub mod anchors;
mod bgp;
pub mod fwmark;
mod marks;
mod reuse;
pub use bgp::{BgpDesired, BgpNeighborView, BgpSettings};
mod ha;
pub use ha::{FailoverError, HA_STARTUP_WAIT, HA_TIMEOUT};
mod vlans;
pub use vlans::{AfCounts, VlanView, vlan_views};

mod views;
pub use views::*;

#[cfg(test)]
mod tests;
