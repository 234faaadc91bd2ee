//! The HA node as a sans-io state machine: events in, actions out, time injected.
//!
//! Two modes, chosen by the config the engine hands out:
//!
//! - **single-node** (no peer): the node is LEADER while HA is enabled, permanently — there is
//!   nobody to hand over to, and no adverts are sent;
//! - **peer** (a peer address): Seesaw's VRRP-style protocol (reference §3.3, RFC 5798 §6.4).
//!   The node starts BACKUP and becomes LEADER when no advert arrived for the master-down interval
//!   `3 × interval + (256 − priority) × interval / 256` (the interval taken from the master's
//!   adverts), at once on a priority-0 advert, or — with preemption — on an advert of lower
//!   priority. A LEADER advertises every interval and steps down on a higher-priority advert, or
//!   on an equal one from a higher address (the RFC tiebreak Seesaw lacks, so a healed partition
//!   always converges); it answers a lower one with an advert at once. On shutdown, on a
//!   `failover` request, when the engine stops answering, or when HA is reconfigured, a LEADER
//!   steps down and sends one priority-0 advert so the peer takes over without waiting.
//!
//! Failover ordering: the node first reports BACKUP to the engine (which takes the VIPs down) and
//! sends the priority-0 advert only once that report was delivered (or one advert interval later
//! if it is not), so the two nodes are never both LEADER during a handover.
//!
//! The node also owns the schedule of its conversations with the engine: when to (re-)fetch the
//! HA config and when to push the status. The runtime sleeps until [`Node::next_deadline`] and
//! executes the returned [`Action`]s, reporting their outcome back as events.

use std::time::Duration;

use tokio::time::Instant;

use crate::advert::{Advert, Received};
use crate::auth::AuthSetting;

mod config;
pub use config::{DEFAULT_ADVERT_INTERVAL, HaConfig, Peering, State, lease_ttl};

/// What can happen to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The engine answered a config fetch.
    ConfigReceived(HaConfig),
    /// Time passed; the node checks its timers.
    Tick,
    /// A call to the engine failed (fetch or push).
    EngineUnreachable,
    /// A status push was delivered; `failover` is the engine asking the LEADER to hand over.
    PushDelivered {
        /// The operator asked for a failover.
        failover: bool,
    },
    /// The advert transport asked for by [`Action::OpenTransport`] is open.
    TransportReady,
    /// Opening the transport failed, or it broke; the node retries after the retry interval.
    TransportFailed,
    /// A valid advert from the peer (the transport applies every receive check).
    Advert(Received),
    /// An advert could not be sent (the node's link is down, a firewall rule, no route).
    AdvertNotSent,
    /// The process is stopping.
    Shutdown,
}

/// What the runtime must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask the engine for the HA config; report the result as `ConfigReceived` or
    /// `EngineUnreachable`.
    FetchConfig,
    /// Tell the engine this status; report the outcome as `PushDelivered` or `EngineUnreachable`.
    PushStatus(Status),
    /// Open (or re-open) the advert transport; report `TransportReady` or `TransportFailed`.
    OpenTransport(Peering),
    /// Close the advert transport.
    CloseTransport,
    /// Send this advert to the peer now.
    SendAdvert(Advert),
    /// Hold ncc's lease on the master-only state for this long from now; zero gives it up at
    /// once. Best effort (one datagram), never awaited.
    Lease(Duration),
}

/// A snapshot of the node, for the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    /// The current state.
    pub state: State,
    /// When the current state was entered (the node's creation for the initial UNKNOWN).
    pub since: Instant,
    /// How many transitions happened since the process started.
    pub transitions: u64,
    /// Advertisements sent.
    pub adverts_sent: u64,
    /// Valid advertisements received from the peer.
    pub adverts_received: u64,
}

/// How often the node talks to the engine, and how patient it is with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Re-fetch the config this often once it is known, to follow config reloads.
    pub fetch_interval: Duration,
    /// Retry this often while the engine does not answer (forever: the watchdog may be restarting
    /// it), and re-open a failed transport this often.
    pub retry_interval: Duration,
    /// Push the status this often even without a transition, so a restarted engine learns it soon
    /// and a `failover` request is seen within this time.
    pub push_interval: Duration,
    /// In peer mode, this many consecutive failed engine calls make a LEADER step down (an engine
    /// that is dead or stuck cannot serve the VIPs) and keep a BACKUP from taking over.
    pub engine_fail_limit: u32,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            fetch_interval: Duration::from_secs(15),
            retry_interval: Duration::from_secs(1),
            push_interval: Duration::from_secs(1),
            engine_fail_limit: 3,
        }
    }
}

/// The peer-mode protocol state.
#[derive(Debug, Clone, Copy)]
struct Proto {
    peering: Peering,
    transport_ready: bool,
    /// When to retry opening a failed transport.
    reopen_at: Option<Instant>,
    /// BACKUP: when the master is declared down.
    master_down_at: Option<Instant>,
    /// LEADER: when the next advert is due.
    next_advert: Option<Instant>,
    /// A handover (failover) waits for the BACKUP report to be delivered before the priority-0
    /// advert goes out; this is the deadline after which it goes out anyway.
    handover_deadline: Option<Instant>,
    /// After a failover this node does not preempt until it has been LEADER again.
    preempt_suppressed: bool,
    /// A lease was taken with ncc and not given up yet.
    leased: bool,
    /// When an advert last failed to go out.
    send_failed_at: Option<Instant>,
}

impl Proto {
    /// The priority a LEADER advertises: its own, or 1 (the lowest) while its adverts failed
    /// within the last four intervals — a master coming back from a dead link must not make
    /// the peer that took over meanwhile yield to it (the peer asserts; this node then yields).
    fn advertised(&self, now: Instant) -> u8 {
        let silent = self
            .send_failed_at
            .is_some_and(|at| now.saturating_duration_since(at) <= self.peering.interval * 4);
        if silent { 1 } else { self.peering.priority }
    }
}

/// The HA state machine.
#[derive(Debug)]
pub struct Node {
    timers: Timers,
    state: State,
    since: Instant,
    transitions: u64,
    adverts_sent: u64,
    adverts_received: u64,
    /// The last config the engine gave us; `None` until the first successful fetch.
    config: Option<HaConfig>,
    /// Consecutive failed engine calls.
    engine_failures: u32,
    next_fetch: Instant,
    next_push: Instant,
    proto: Option<Proto>,
}

// === impl Node ===

impl Node {
    /// A node in UNKNOWN that wants the config at once and pushes its first periodic status one
    /// push interval later (a transition pushes earlier).
    pub fn new(timers: Timers, now: Instant) -> Self {
        Self {
            timers,
            state: State::Unknown,
            since: now,
            transitions: 0,
            adverts_sent: 0,
            adverts_received: 0,
            config: None,
            engine_failures: 0,
            next_fetch: now,
            next_push: now + timers.push_interval,
            proto: None,
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        if self.state == State::Shutdown {
            // Terminal: a late fetch result, advert or tick after shutdown changes nothing.
            return Vec::new();
        }
        let mut actions = self.after_stall(now);
        actions.extend(match event {
            Event::ConfigReceived(config) => self.on_config(config, now),
            Event::Tick => self.on_tick(now),
            Event::EngineUnreachable => self.on_engine_failure(now),
            Event::PushDelivered { failover } => self.on_push_delivered(failover, now),
            Event::TransportReady => self.on_transport(true, now),
            Event::TransportFailed => self.on_transport(false, now),
            Event::Advert(r) => self.on_advert(r, now),
            Event::AdvertNotSent => {
                if let Some(p) = &mut self.proto {
                    p.send_failed_at = Some(now);
                }
                Vec::new()
            }
            Event::Shutdown => self.on_shutdown(now),
        });
        actions
    }

    /// A LEADER that finds its next advert long overdue was not running (SIGSTOP, a frozen VM):
    /// the peer heard nothing for its master-down interval and has most likely taken over. It
    /// steps down rather than take mastership back (its lease ran out meanwhile; giving it up
    /// makes that explicit), tells the peer in case it has not taken over yet, and does not
    /// preempt until it has been LEADER again.
    fn after_stall(&mut self, now: Instant) -> Vec<Action> {
        let Some(p) = &self.proto else {
            return Vec::new();
        };
        let overdue = p
            .next_advert
            .is_some_and(|at| now.saturating_duration_since(at) > p.peering.interval * 2);
        if self.state != State::Leader || !overdue {
            return Vec::new();
        }
        let late = p
            .next_advert
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        tracing::warn!(
            late_ms = late.as_millis(),
            "this node did not run for longer than two advert intervals: stepping down (the \
             peer has taken over or is about to)"
        );
        self.step_down_with_handover(now, true)
    }

    /// A pending handover goes out: the BACKUP report reached the engine.
    fn complete_handover(&mut self) -> Vec<Action> {
        match &mut self.proto {
            Some(p) if p.handover_deadline.is_some() => {
                p.handover_deadline = None;
                let advert = p.peering.advert(0);
                vec![self.advert(advert)]
            }
            _ => Vec::new(),
        }
    }

    /// When the node next wants a `Tick`; `None` once shut down.
    pub fn next_deadline(&self) -> Option<Instant> {
        if self.state == State::Shutdown {
            return None;
        }
        let mut t = self.next_fetch.min(self.next_push);
        if let Some(p) = &self.proto {
            for d in [
                p.reopen_at,
                p.master_down_at,
                p.next_advert,
                p.handover_deadline,
            ]
            .into_iter()
            .flatten()
            {
                t = t.min(d);
            }
        }
        Some(t)
    }

    /// The current status.
    pub fn status(&self) -> Status {
        Status {
            state: self.state,
            since: self.since,
            transitions: self.transitions,
            adverts_sent: self.adverts_sent,
            adverts_received: self.adverts_received,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// Whether the last call to the engine succeeded (true before the first call).
    pub fn engine_reachable(&self) -> bool {
        self.engine_failures == 0
    }

    /// The running peering, in peer mode.
    pub fn peering(&self) -> Option<Peering> {
        self.proto.map(|p| p.peering)
    }

    /// Whether this node may become LEADER now (peer mode).
    fn eligible(&self) -> bool {
        self.engine_failures < self.timers.engine_fail_limit
            && self.proto.is_some_and(|p| p.transport_ready)
    }

    fn on_config(&mut self, config: HaConfig, now: Instant) -> Vec<Action> {
        self.engine_answered(now);
        let mut actions = Vec::new();
        self.next_fetch = now + self.timers.fetch_interval;
        if self.config.as_ref() == Some(&config) {
            return actions;
        }
        tracing::info!(
            enabled = config.enabled,
            local = %config.local_addr,
            remote = config.remote_addr.as_deref().unwrap_or("none"),
            priority = config.priority,
            vrid = config.vrid,
            interval_ms = config.advert_interval.as_millis(),
            preempt = config.preempt,
            auth = match &config.auth {
                AuthSetting::Off => "off",
                AuthSetting::Keys(k) if k.accept.is_some() => "signed (second key accepted)",
                AuthSetting::Keys(_) => "signed",
                AuthSetting::Unusable(_) => "unusable key",
            },
            "ha config"
        );
        let peering = if config.enabled {
            Peering::from_config(&config)
        } else {
            Ok(None)
        };
        self.config = Some(config.clone());
        let old = self.proto.map(|p| p.peering);
        match peering {
            Ok(Some(p)) if old == Some(p) => {}
            Ok(Some(p)) => {
                // New or changed peering: give up mastership on the old one, then start over as
                // BACKUP on the new one.
                actions.extend(self.leave_peering(now));
                actions.extend(self.transition(State::Backup, now));
                self.proto = Some(Proto {
                    peering: p,
                    transport_ready: false,
                    reopen_at: None,
                    master_down_at: None,
                    next_advert: None,
                    handover_deadline: None,
                    preempt_suppressed: false,
                    leased: false,
                    send_failed_at: None,
                });
                actions.push(Action::OpenTransport(p));
            }
            Ok(None) => {
                actions.extend(self.leave_peering(now));
                let target = if config.enabled {
                    State::Leader
                } else {
                    State::Disabled
                };
                actions.extend(self.transition(target, now));
            }
            Err(why) => {
                tracing::error!(error = %why, "ha config cannot be run; this node stays out of HA");
                actions.extend(self.leave_peering(now));
                actions.extend(self.transition(State::Error, now));
            }
        }
        actions
    }

    /// Ends peer mode: a LEADER gives its lease up and sends its priority-0 advert first, then
    /// the transport closes.
    fn leave_peering(&mut self, now: Instant) -> Vec<Action> {
        let Some(p) = self.proto else {
            return Vec::new();
        };
        let mut actions = Vec::new();
        if self.state == State::Leader && p.transport_ready {
            actions.extend(self.transition(State::Backup, now));
            actions.push(self.advert(p.peering.advert(0)));
        } else if p.leased {
            actions.push(Action::Lease(Duration::ZERO));
        }
        self.proto = None;
        actions.push(Action::CloseTransport);
        actions
    }

    /// A call to the engine succeeded. A BACKUP that was ineligible because of the engine becomes
    /// eligible again and waits a full master-down interval for a master before taking over.
    fn engine_answered(&mut self, now: Instant) {
        if self.engine_failures > 0 {
            tracing::info!("engine reachable again");
        }
        let was_eligible = self.eligible();
        self.engine_failures = 0;
        if !was_eligible
            && self.eligible()
            && self.state == State::Backup
            && let Some(p) = &mut self.proto
            && p.master_down_at.is_none()
        {
            p.master_down_at = Some(now + p.peering.master_down(p.peering.interval));
        }
    }

    fn on_engine_failure(&mut self, now: Instant) -> Vec<Action> {
        if self.engine_failures == 0 {
            tracing::warn!(
                "engine unreachable; retrying every {:?}",
                self.timers.retry_interval
            );
        }
        self.engine_failures = self.engine_failures.saturating_add(1);
        // Retry soon even if the failure was a push: a restarted engine may hold a new config,
        // and we want to know it within a retry interval.
        self.next_fetch = self.next_fetch.min(now + self.timers.retry_interval);
        let mut actions = Vec::new();
        if self.engine_failures == self.timers.engine_fail_limit && self.proto.is_some() {
            if self.state == State::Leader {
                tracing::warn!(
                    failures = self.engine_failures,
                    "the engine does not answer: giving up mastership"
                );
                actions.extend(self.step_down_with_handover(now, false));
            }
            if let Some(p) = &mut self.proto {
                p.master_down_at = None;
            }
        }
        actions
    }

    fn on_push_delivered(&mut self, failover: bool, now: Instant) -> Vec<Action> {
        self.engine_answered(now);
        // A delivered push completes a pending handover: the engine knows we are BACKUP.
        let mut actions = self.complete_handover();
        if failover {
            match (self.state, self.proto.is_some()) {
                (State::Leader, true) => {
                    tracing::info!("failover requested: handing mastership to the peer");
                    actions.extend(self.step_down_with_handover(now, true));
                }
                (state, _) => {
                    tracing::info!(%state, "failover requested but this node is not a peered LEADER; ignored");
                }
            }
        }
        actions
    }

    /// LEADER → BACKUP; the priority-0 advert follows once the engine has the BACKUP report.
    fn step_down_with_handover(&mut self, now: Instant, suppress_preempt: bool) -> Vec<Action> {
        let actions = self.transition(State::Backup, now);
        if let Some(p) = &mut self.proto {
            p.next_advert = None;
            p.master_down_at = Some(now + p.peering.master_down(p.peering.interval));
            p.handover_deadline = Some(now + p.peering.interval);
            p.preempt_suppressed |= suppress_preempt;
        }
        actions
    }

    fn on_transport(&mut self, ok: bool, now: Instant) -> Vec<Action> {
        let retry = self.timers.retry_interval;
        let Some(p) = &mut self.proto else {
            return Vec::new();
        };
        if ok {
            p.transport_ready = true;
            p.reopen_at = None;
            p.master_down_at = Some(now + p.peering.master_down(p.peering.interval));
            return self.transition(State::Backup, now);
        }
        let was_ready = p.transport_ready;
        p.transport_ready = false;
        p.reopen_at = Some(now + retry);
        p.master_down_at = None;
        p.next_advert = None;
        if was_ready {
            tracing::warn!("advert transport failed; re-opening");
        }
        self.transition(State::Error, now)
    }

    fn on_advert(&mut self, r: Received, now: Instant) -> Vec<Action> {
        self.adverts_received += 1;
        let eligible = self.eligible();
        let Some(p) = &mut self.proto else {
            return Vec::new();
        };
        let ours = p.peering.priority;
        let theirs = r.advert.priority;
        match self.state {
            State::Leader => {
                // Two masters: the RFC's tiebreak (priority, then address) — unless this node's
                // own adverts failed within the peer's master-down interval (its link was down):
                // the peer took over because it heard nothing, and this node hands back to it
                // rather than take mastership back.
                let cut_off = r.advert.interval() * 4;
                let was_silent = p
                    .send_failed_at
                    .is_some_and(|at| now.saturating_duration_since(at) <= cut_off);
                let yields =
                    theirs > ours || (theirs == ours && r.src > p.peering.local) || was_silent;
                if theirs != 0 && yields {
                    tracing::info!(peer = %r.src, priority = theirs, "higher-priority master seen");
                    p.next_advert = None;
                    p.master_down_at = Some(now + p.peering.master_down(r.advert.interval()));
                    self.transition(State::Backup, now)
                } else {
                    // A peer giving up, or a lower master: assert mastership at once.
                    let advert = p.peering.advert(p.advertised(now));
                    p.next_advert = Some(now + p.peering.interval);
                    vec![self.advert(advert)]
                }
            }
            State::Backup => {
                let preempts = p.peering.preempt && !p.preempt_suppressed && theirs < ours;
                if (theirs == 0 || preempts) && eligible && p.handover_deadline.is_none() {
                    if theirs == 0 {
                        tracing::info!(peer = %r.src, "master gave up: taking over");
                    } else {
                        tracing::info!(peer = %r.src, priority = theirs, "preempting a lower-priority master");
                    }
                    self.become_leader(now)
                } else {
                    p.master_down_at = Some(
                        now + if theirs == 0 {
                            p.peering.skew()
                        } else {
                            p.peering.master_down(r.advert.interval())
                        },
                    );
                    Vec::new()
                }
            }
            _ => Vec::new(),
        }
    }

    fn become_leader(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = self.transition(State::Leader, now);
        if let Some(p) = &mut self.proto {
            p.master_down_at = None;
            p.preempt_suppressed = false;
            p.next_advert = Some(now + p.peering.interval);
            p.leased = true;
            let (advert, ttl) = (p.peering.advert(p.peering.priority), lease_ttl(&p.peering));
            actions.push(self.advert(advert));
            actions.push(Action::Lease(ttl));
        }
        actions
    }

    fn advert(&mut self, advert: Advert) -> Action {
        self.adverts_sent += 1;
        Action::SendAdvert(advert)
    }

    fn on_shutdown(&mut self, now: Instant) -> Vec<Action> {
        let leader = self.state == State::Leader;
        // The lease is given up (inside the transition) before the priority-0 advert.
        let mut actions = self.transition(State::Shutdown, now);
        if let Some(p) = self.proto.take()
            && leader
            && p.transport_ready
        {
            actions.push(self.advert(p.peering.advert(0)));
        }
        actions
    }

    fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
        // Adverts first: they are the time-critical part.
        if let Some(p) = &mut self.proto {
            if let Some(at) = p.reopen_at
                && now >= at
            {
                p.reopen_at = None;
                actions.push(Action::OpenTransport(p.peering));
            }
            if let Some(at) = p.handover_deadline
                && now >= at
            {
                // The engine did not confirm BACKUP in time; hand over anyway.
                p.handover_deadline = None;
                let advert = p.peering.advert(0);
                actions.push(self.advert(advert));
            }
        }
        if let Some(p) = &mut self.proto
            && self.state == State::Leader
            && let Some(at) = p.next_advert
            && now >= at
        {
            // Keep the cadence; after a stall, restart it from now rather than bursting.
            let next = at + p.peering.interval;
            p.next_advert = Some(if next > now {
                next
            } else {
                now + p.peering.interval
            });
            p.leased = true;
            let (advert, ttl) = (p.peering.advert(p.advertised(now)), lease_ttl(&p.peering));
            actions.push(self.advert(advert));
            actions.push(Action::Lease(ttl));
        }
        let eligible = self.eligible();
        if let Some(p) = &mut self.proto
            && self.state == State::Backup
            && let Some(at) = p.master_down_at
            && now >= at
        {
            p.master_down_at = None;
            if eligible && p.handover_deadline.is_none() {
                tracing::info!("no advert within the master-down interval: taking over");
                actions.extend(self.become_leader(now));
            }
        }
        // Push before fetching: the push carries a snapshot, and a fetch may cause a transition
        // whose own push must be the last word.
        if now >= self.next_push {
            self.next_push = now + self.timers.push_interval;
            actions.push(Action::PushStatus(self.status()));
        }
        if now >= self.next_fetch {
            // Provisional: a failed fetch comes back as EngineUnreachable and shortens it.
            self.next_fetch = now + self.timers.fetch_interval;
            actions.push(Action::FetchConfig);
        }
        actions
    }

    fn transition(&mut self, to: State, now: Instant) -> Vec<Action> {
        if to == self.state {
            return Vec::new();
        }
        tracing::info!(from = %self.state, to = %to, "ha state transition");
        let mut actions = Vec::new();
        // Leaving LEADER gives the lease up first: ncc withdraws the master-only state at once,
        // whatever the engine is doing.
        if let Some(p) = &mut self.proto
            && std::mem::take(&mut p.leased)
        {
            actions.push(Action::Lease(Duration::ZERO));
        }
        self.state = to;
        self.since = now;
        self.transitions += 1;
        // The transition push replaces the next periodic one.
        self.next_push = now + self.timers.push_interval;
        actions.push(Action::PushStatus(self.status()));
        actions
    }
}

#[cfg(test)]
pub(crate) mod tests;
