//! HA gating, sans-io: which VIPs this node serves given the ha process's reports, when a silent
//! ha process stops counting, and the operator's `failover` request waiting for the LEADER's next
//! report.
//!
//! Rules (Seesaw's, reference §3.4–3.5): unicast and dedicated VIPs are served only while the ha
//! process reports LEADER; anycast VIPs are served on every node whose services behind them are
//! all healthy, whatever the HA state (BGP, not HA, picks the node). A report older than
//! [`HA_TIMEOUT`] counts as UNKNOWN (Seesaw: 30 s; ours pushes every second, so 3 s), so an ha
//! process killed with SIGKILL cannot leave its engine serving next to the new master for long.
//! At start the engine waits up to [`HA_STARTUP_WAIT`] for the first report before it programs
//! the data plane, so a restarted engine on the master does not flush the VIPs first.

use std::time::{Duration, SystemTime};

use super::{EngineState, HaRole};

/// A report older than this no longer counts.
pub const HA_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a starting engine waits for the first HA report before programming the plane.
pub const HA_STARTUP_WAIT: Duration = Duration::from_secs(3);

/// The engine's HA gate.
#[derive(Debug, Clone, Default)]
pub(crate) struct HaGate {
    /// Whether unicast VIPs follow the HA state (the running engine); off in unit tests of the
    /// health rules, which then see every VIP served.
    enabled: bool,
    /// `failover` was requested and not yet handed to the ha process.
    failover_pending: bool,
}

/// Why a failover cannot be requested.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FailoverError {
    /// No peer in seesaw.cfg: there is nobody to hand over to.
    #[error("no peer is configured ([cluster] peer_ipv4): there is nobody to fail over to")]
    NoPeer,
    /// This node is not the master.
    #[error(
        "this node is {0}, not the master: run failover on the master (a backup relays it over peer sync)"
    )]
    NotMaster(String),
}

impl EngineState {
    /// Makes unicast and dedicated VIPs follow the HA state (the engine binary always does).
    pub fn require_ha(&mut self) {
        self.ha_gate.enabled = true;
        self.touch();
    }

    /// Whether unicast and dedicated VIPs are served: this node is the HA LEADER, or it has no
    /// peer (`[cluster] peer_ipv4/6` unset). A node without a peer has nothing to fail over to,
    /// so its ha process dying, restarting or stalling (and the engine stalling past
    /// [`HA_TIMEOUT`]) never withdraws a VIP or a service there.
    pub fn serves_unicast(&self) -> bool {
        !self.ha_gate.enabled || self.ha.state == HaRole::Leader || !self.has_peer()
    }

    /// Whether seesaw.cfg names an HA peer.
    pub fn has_peer(&self) -> bool {
        let s = &self.loaded.settings;
        s.peer_ipv4.is_some() || s.peer_ipv6.is_some()
    }

    /// The ha process was heard at `at` (a report the loop has not processed yet counts for
    /// liveness; its content arrives with it).
    pub fn ha_heard(&mut self, at: SystemTime) {
        if self.ha.last_update.is_some_and(|l| l < at) {
            self.ha.last_update = Some(at);
        }
    }

    /// Whether an operator's `failover` waits for the ha process's next report.
    pub fn failover_pending(&self) -> bool {
        self.ha_gate.failover_pending
    }

    /// Treats a stale report as UNKNOWN; returns whether the state changed.
    pub fn ha_expire(&mut self, now: SystemTime) -> bool {
        let stale = self
            .ha
            .last_update
            .is_some_and(|at| now.duration_since(at).unwrap_or_default() > HA_TIMEOUT);
        if stale && !matches!(self.ha.state, HaRole::Unknown | HaRole::Disabled) {
            tracing::warn!(
                state = %self.ha.state,
                "no report from the ha process for {HA_TIMEOUT:?}: HA state is UNKNOWN"
            );
            self.ha.state = HaRole::Unknown;
            self.ha.since = Some(now);
            self.touch();
            return true;
        }
        false
    }

    /// The ha process exited: HA is UNKNOWN now (this node stops serving unicast VIPs before
    /// the peer, hearing no adverts, takes over). Returns whether the state changed.
    pub fn ha_gone(&mut self, now: SystemTime) -> bool {
        if matches!(self.ha.state, HaRole::Unknown | HaRole::Disabled) {
            return false;
        }
        tracing::warn!(state = %self.ha.state, "the ha process exited: HA state is UNKNOWN");
        self.ha.state = HaRole::Unknown;
        self.ha.since = Some(now);
        self.touch();
        true
    }

    /// Whether the HA state is known well enough to program the data plane: a report came, or
    /// the start-up wait is over.
    pub(crate) fn ha_settled(&self, now: SystemTime) -> bool {
        !self.ha_gate.enabled
            || self.ha.last_update.is_some()
            || now.duration_since(self.started).unwrap_or_default() >= HA_STARTUP_WAIT
    }

    /// The LB interface as this node should hold it: up while it serves unicast VIPs (the HA
    /// master, or any node without HA gating), down otherwise (Seesaw's `becomeMaster` /
    /// `becomeBackup` → `LBInterfaceUp` / `LBInterfaceDown`), with seesaw.cfg's cluster VIP,
    /// routing table, VMAC and GARP period and cluster.pb's VLANs.
    pub fn lb_desired(&self) -> crate::desired::LbDesired {
        let s = &self.loaded.settings;
        let c = &self.loaded.cluster;
        crate::desired::LbDesired {
            up: self.serves_unicast(),
            cluster_vip_v4: s.vip_ipv4.or(c.seesaw_vip.ipv4.map(|(a, _)| a)),
            cluster_vip_v6: s.vip_ipv6.or(c.seesaw_vip.ipv6.map(|(a, _)| a)),
            routing_table: s.routing_table_id,
            use_vmac: s.use_vmac,
            vrid: s.vrid,
            garp_interval: s.garp_interval,
            vlans: c
                .vlans
                .values()
                .map(|v| crate::desired::VlanSpec {
                    id: v.id,
                    ipv4: v.host.ipv4,
                    ipv6: v.host.ipv6,
                })
                .collect(),
        }
    }

    /// The operator asks for a failover: accepted on a peered LEADER, handed to the ha process
    /// with its next report.
    pub fn request_failover(&mut self) -> Result<String, FailoverError> {
        if self.loaded.settings.peer_ipv4.is_none() {
            return Err(FailoverError::NoPeer);
        }
        if self.ha.state != HaRole::Leader {
            return Err(FailoverError::NotMaster(self.ha.state.as_str().to_owned()));
        }
        self.ha_gate.failover_pending = true;
        Ok(
            "failover requested: the master hands over with its next status report (within 1 s)"
                .to_owned(),
        )
    }

    /// Whether the report just received should be answered with "fail over"; clears the request.
    /// A request only reaches a LEADER; any other report drops it.
    pub fn take_failover(&mut self) -> bool {
        std::mem::take(&mut self.ha_gate.failover_pending) && self.ha.state == HaRole::Leader
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Loaded, load_cluster, seesaw_cfg};
    use crate::state::HaView;

    fn t0() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    /// One unicast and one anycast vserver, no checks (healthy at once), with or without a peer.
    fn state(peer: bool) -> EngineState {
        let cfg = format!(
            "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n{}",
            if peer { "peer_ipv4 = 10.0.0.3\n" } else { "" }
        );
        let cluster = r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            node < fqdn: "m." ipv4: "10.0.0.3/24" >
            vserver < name: "uni" rp: "x" entry_address < fqdn: "u." ipv4: "10.1.0.1/32" >
              vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 > >
            vserver < name: "any" rp: "x" entry_address < fqdn: "a." ipv4: "192.168.255.7/32" >
              vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT >
              backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 > >"#;
        let loaded = Loaded {
            settings: seesaw_cfg::parse(&cfg).expect("seesaw.cfg"),
            cluster: load_cluster(cluster.as_bytes(), None).expect("cluster.pb"),
        };
        let mut e = EngineState::new(loaded, t0());
        e.require_ha();
        e
    }

    fn report(state: &str, at: SystemTime) -> HaView {
        HaView {
            state: HaRole::parse(state).expect("a known HA state"),
            since: Some(at),
            last_update: Some(at),
            ..HaView::default()
        }
    }

    fn served(e: &mut EngineState) -> Vec<String> {
        e.evaluate()
            .1
            .services
            .iter()
            .map(|s| s.key.vip.to_string())
            .collect()
    }

    #[test]
    fn unicast_vips_follow_leadership_and_anycast_vips_follow_health_only() {
        let mut e = state(true);
        assert_eq!(served(&mut e), ["192.168.255.7"]);
        e.ha(report("BACKUP", t0()));
        assert_eq!(served(&mut e), ["192.168.255.7"]);
        e.ha(report("LEADER", t0()));
        assert_eq!(served(&mut e), ["10.1.0.1", "192.168.255.7"]);
        let views = e.evaluate().0;
        assert!(views.iter().all(|v| v.services.iter().all(|s| s.active)));
        for s in ["SHUTDOWN", "UNKNOWN", "DISABLED", "ERROR", "BACKUP"] {
            e.ha(report(s, t0()));
            assert_eq!(served(&mut e), ["192.168.255.7"], "{s}");
        }
    }

    #[test]
    fn the_lb_interface_follows_leadership() {
        let mut e = state(true);
        let lb = |e: &mut EngineState| e.evaluate().1.lb.expect("the engine manages the LB");
        assert!(!lb(&mut e).up, "no report yet: down");
        e.ha(report("LEADER", t0()));
        let up = lb(&mut e);
        assert!(up.up);
        // seesaw.cfg names no vip_ipv4: cluster.pb's seesaw_vip; Seesaw's defaults otherwise.
        assert_eq!(up.cluster_vip_v4, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            (up.routing_table, up.use_vmac, up.vrid, up.garp_interval),
            (2, true, 60, Duration::from_secs(10))
        );
        for s in ["BACKUP", "UNKNOWN", "SHUTDOWN"] {
            e.ha(report(s, t0()));
            assert!(!lb(&mut e).up, "{s}");
        }
        e.ha(report("LEADER", t0()));
        assert!(e.ha_expire(t0() + HA_TIMEOUT * 2));
        assert!(
            !lb(&mut e).up,
            "a silent ha process takes the LB interface down"
        );
    }

    /// Without a peer there is nothing to fail over to: whatever the ha process reports, or
    /// fails to report, the node keeps its unicast VIPs and the LB interface.
    #[test]
    fn a_node_without_peer_serves_whatever_its_ha_process_does() {
        let mut e = state(false);
        let lb = |e: &mut EngineState| e.evaluate().1.lb.expect("the engine manages the LB").up;
        assert_eq!(
            served(&mut e),
            ["10.1.0.1", "192.168.255.7"],
            "before any report"
        );
        e.ha(report("LEADER", t0()));
        assert!(e.ha_gone(t0() + Duration::from_millis(10)), "killed");
        assert_eq!(served(&mut e), ["10.1.0.1", "192.168.255.7"]);
        assert!(lb(&mut e));
        e.ha(report("LEADER", t0()));
        assert!(e.ha_expire(t0() + HA_TIMEOUT * 2), "stalled");
        assert_eq!(served(&mut e), ["10.1.0.1", "192.168.255.7"]);
        for s in ["SHUTDOWN", "BACKUP", "ERROR"] {
            e.ha(report(s, t0()));
            assert_eq!(served(&mut e), ["10.1.0.1", "192.168.255.7"], "{s}");
        }
    }

    #[test]
    fn an_exited_ha_process_stops_counting_as_leader_at_once() {
        let mut e = state(true);
        e.ha(report("LEADER", t0()));
        assert!(e.serves_unicast());
        // Well inside the report timeout: the exit alone decides.
        assert!(e.ha_gone(t0() + Duration::from_millis(10)));
        assert_eq!(e.ha_view().state, "UNKNOWN");
        assert!(!e.serves_unicast());
        let lb = e.evaluate().1.lb.expect("the engine manages the LB");
        assert!(!lb.up, "the LB interface goes down with it");
        // Already UNKNOWN: nothing changes.
        assert!(!e.ha_gone(t0() + Duration::from_millis(20)));
    }

    #[test]
    fn a_silent_ha_process_stops_counting_as_leader() {
        let mut e = state(true);
        e.ha(report("LEADER", t0()));
        assert!(!e.ha_expire(t0() + HA_TIMEOUT));
        assert!(e.serves_unicast());
        assert!(e.ha_expire(t0() + HA_TIMEOUT + Duration::from_millis(1)));
        assert_eq!(e.ha_view().state, "UNKNOWN");
        assert!(!e.serves_unicast());
        // Once UNKNOWN, nothing more to expire.
        assert!(!e.ha_expire(t0() + HA_TIMEOUT * 10));
    }

    /// Reports answered by the API handler while the loop was busy (waiting on a stalled ncc)
    /// keep the ha process alive in the loop's eyes: the loop must not expire a LEADER whose
    /// reports are merely queued.
    #[test]
    fn reports_heard_by_the_handler_keep_the_leader_alive() {
        let mut e = state(true);
        e.ha(report("LEADER", t0()));
        e.ha_heard(t0() + HA_TIMEOUT);
        assert!(!e.ha_expire(t0() + HA_TIMEOUT + Duration::from_millis(500)));
        assert!(e.serves_unicast());
        // An older pulse never moves the report back.
        e.ha_heard(t0());
        assert!(!e.ha_expire(t0() + HA_TIMEOUT * 2));
        assert!(e.ha_expire(t0() + HA_TIMEOUT * 2 + Duration::from_millis(1)));
    }

    #[test]
    fn the_plane_waits_for_the_first_ha_report_or_the_startup_wait() {
        let mut e = state(true);
        assert!(!e.may_apply(t0() + Duration::from_secs(1)));
        e.ha(report("BACKUP", t0() + Duration::from_secs(1)));
        assert!(e.may_apply(t0() + Duration::from_secs(1)));

        let mut e = state(true);
        assert!(!e.may_apply(t0() + HA_STARTUP_WAIT - Duration::from_millis(1)));
        assert!(e.may_apply(t0() + HA_STARTUP_WAIT));
    }

    #[test]
    fn failover_needs_a_peered_leader_and_is_delivered_once() {
        let mut single = state(false);
        single.ha(report("LEADER", t0()));
        assert_eq!(single.request_failover(), Err(FailoverError::NoPeer));

        let mut e = state(true);
        e.ha(report("BACKUP", t0()));
        assert_eq!(
            e.request_failover(),
            Err(FailoverError::NotMaster("BACKUP".into()))
        );
        assert!(!e.take_failover());
        e.ha(report("LEADER", t0()));
        assert!(e.request_failover().is_ok());
        assert!(e.take_failover());
        assert!(!e.take_failover(), "delivered twice");
        // A request that meets a non-leader report is dropped, not kept for later.
        e.request_failover().expect("leader");
        e.ha(report("BACKUP", t0()));
        assert!(!e.take_failover());
        e.ha(report("LEADER", t0()));
        assert!(!e.take_failover());
    }
}
