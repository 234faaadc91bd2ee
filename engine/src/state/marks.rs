//! The engine state's firewall marks: assigning them to `use_fwm` vservers and DSR/TUN probe
//! targets, adopting the ones the plane holds at start, and the firewall-mark and probe services
//! of the desired state.

use super::*;

impl EngineState {
    pub(super) fn with_marks(mut self) -> Self {
        self.assign_marks();
        self
    }

    /// Gives every `use_fwm` vserver (per family) and every DSR/TUN probe target its mark, and
    /// writes the probe marks into the checks. Holders keep their marks (see [`fwmark`]).
    pub(super) fn assign_marks(&mut self) {
        // Called whenever the topology changes: every evaluation is stale, the readers anew.
        self.reuse.all(&self.topology);
        let vservers: std::collections::BTreeSet<(String, Af)> = self
            .topology
            .vservers
            .values()
            .filter(|v| v.config.use_fwm)
            .flat_map(|v| {
                Af::ALL
                    .into_iter()
                    .filter(|af| v.config.host.addr(*af).is_some())
                    .map(|af| (v.config.name.clone(), af))
            })
            .collect();
        if let Err(e) = self
            .vserver_marks
            .assign(&vservers, |(n, af)| format!("{n}/{af}"))
        {
            tracing::warn!(error = %e, "use_fwm vservers get no marks");
        }
        let probes: std::collections::BTreeSet<(IpAddr, CheckMode)> = self
            .topology
            .checks
            .values()
            .filter(|c| c.check.mode != CheckMode::Plain)
            .map(|c| (c.target, c.check.mode))
            .collect();
        if let Err(e) = self
            .probe_marks
            .assign(&probes, |(ip, mode)| format!("{ip}/{mode:?}"))
        {
            tracing::warn!(error = %e, "DSR/TUN probes get no marks");
        }
        for c in self.topology.checks.values_mut() {
            if c.check.mode != CheckMode::Plain {
                c.mark = self.probe_marks.get(&(c.target, c.check.mode)).unwrap_or(0);
            }
        }
    }

    /// Adopts the marks of the firewall-mark services the data plane holds at start, so a
    /// restarted engine keeps every running vserver's and probe's mark. Call before the first
    /// apply.
    pub fn adopt_fwmarks(&mut self, held: &[HeldFwmark]) {
        self.vserver_marks = MarkPool::new(VSERVER_MARKS);
        self.probe_marks = MarkPool::new(PROBE_MARKS);
        for h in held {
            let af = if h.key.vip.is_ipv4() { Af::V4 } else { Af::V6 };
            if let Some(first) = h.marks.first() {
                let owner = self
                    .topology
                    .vservers
                    .values()
                    .find(|v| v.config.use_fwm && v.config.host.addr(af) == Some(first.vip));
                if let Some(v) = owner {
                    self.vserver_marks
                        .adopt((v.config.name.clone(), af), h.key.fwmark);
                }
            } else if let [ip] = h.dests.as_slice() {
                let mode = match h.mode {
                    ForwardMode::Tun => CheckMode::Tun,
                    _ => CheckMode::Dsr,
                };
                self.probe_marks.adopt((*ip, mode), h.key.fwmark);
            }
        }
        self.assign_marks();
    }

    /// The firewall-mark services of a `use_fwm` vserver: one per family, present while any of
    /// the family's entries is active, marking every entry's VIP:port, with the destinations
    /// that are healthy in every entry (Seesaw hangs all checks off the one service) at port 0
    /// (the packet keeps its port). Scheduler, mode and persistence are the entries' (validation
    /// makes them agree).
    pub(super) fn fwmark_services(&self, name: &str, services: &[ServiceView]) -> Vec<ServiceSpec> {
        let mut out = Vec::new();
        for af in Af::ALL {
            let fam: Vec<&ServiceView> = services
                .iter()
                .filter(|s| s.key.vip.is_ipv4() == (af == Af::V4))
                .collect();
            let (Some(first), Some(mark)) =
                (fam.first(), self.vserver_marks.get(&(name.to_owned(), af)))
            else {
                continue;
            };
            if !fam.iter().any(|s| s.active) {
                continue;
            }
            let mut dests: Vec<DestSpec> = first
                .dests
                .iter()
                .filter(|d| {
                    fam.iter()
                        .all(|s| s.dests.iter().any(|x| x.dest.ip == d.dest.ip && x.healthy))
                })
                .map(|d| DestSpec {
                    port: 0,
                    ..d.dest.clone()
                })
                .collect();
            dests.sort();
            dests.dedup_by_key(|d| d.ip);
            let mut marks: Vec<ServiceKey> = fam.iter().map(|s| s.key).collect();
            marks.sort();
            out.push(ServiceSpec {
                key: ServiceKey::fwmark(af == Af::V6, mark),
                scheduler: first.entry.scheduler,
                mode: first.entry.mode,
                persistence: first.entry.persistence,
                dests,
                proxy: crate::model::ProxyOpts::default(),
                marks,
                kernel: crate::desired::KernelOpts::of(&first.entry),
                anchor: None,
            });
        }
        out
    }

    /// One single-destination firewall-mark service per DSR/TUN probe target: a probe sent to
    /// the VIP with the target's mark reaches exactly that backend, forwarded as client traffic
    /// would be. `sh` with one destination keeps no per-flow state in any plane.
    pub(super) fn probe_services(&self) -> Vec<ServiceSpec> {
        self.probe_marks
            .held()
            .iter()
            .map(|((ip, mode), mark)| ServiceSpec {
                key: ServiceKey::fwmark(ip.is_ipv6(), *mark),
                scheduler: Scheduler::Sh,
                mode: match mode {
                    CheckMode::Tun => ForwardMode::Tun,
                    _ => ForwardMode::Dsr,
                },
                persistence: 0,
                dests: vec![DestSpec {
                    ip: *ip,
                    port: 0,
                    weight: 1,
                    group: String::new(),
                    backup: false,
                }],
                proxy: crate::model::ProxyOpts::default(),
                marks: Vec::new(),
                anchor: None,
                kernel: crate::desired::KernelOpts::default(),
            })
            .collect()
    }
}
