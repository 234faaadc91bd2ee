//! The HA node as a sans-io state machine: events in, actions out, time injected.
//!
//! This build knows one real mode, **single-node**: a node whose HA config names no peer is the
//! leader for as long as HA is enabled, permanently (there is nobody to hand over to). A config that
//! names a peer needs the advertisement protocol, which this build does not have yet; such a node
//! stays BACKUP and says so in the log, so an operator is never left guessing why no VIP comes up.
//!
//! The node also owns the schedule of its two conversations with the engine: when to (re-)fetch the
//! HA config and when to push the status. The runtime only sleeps until [`Node::next_deadline`] and
//! executes the returned [`Action`]s, reporting their outcome back as events.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// The HA state, as the engine API spells it (`HaStatus.state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No config seen yet.
    Unknown,
    /// Not the leader: the engine keeps the VIPs down.
    Backup,
    /// HA is switched off in the config.
    Disabled,
    /// The node cannot take part in HA (not entered by this build; kept for the engine's vocabulary).
    Error,
    /// The leader: the engine brings the VIPs up.
    Leader,
    /// The process is stopping; terminal.
    Shutdown,
}

impl State {
    /// Every state, in the order the engine API lists them.
    pub const ALL: [Self; 6] = [
        Self::Unknown,
        Self::Backup,
        Self::Disabled,
        Self::Error,
        Self::Leader,
        Self::Shutdown,
    ];

    /// The wire name (`UNKNOWN`, `BACKUP`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "UNKNOWN",
            Self::Backup => "BACKUP",
            Self::Disabled => "DISABLED",
            Self::Error => "ERROR",
            Self::Leader => "LEADER",
            Self::Shutdown => "SHUTDOWN",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The HA part of the cluster config, as the engine hands it out (domain form of `HaConfig`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HaConfig {
    /// Whether HA runs at all.
    pub enabled: bool,
    /// This node's address.
    pub local_addr: String,
    /// The peer's address; `None` means no peer is configured (single-node mode).
    pub remote_addr: Option<String>,
    /// Advertisement priority (used by the peer protocol, later).
    pub priority: u32,
    /// Virtual router id (used by the peer protocol, later).
    pub vrid: u32,
}

/// What can happen to the node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// The engine answered a config fetch.
    ConfigReceived(HaConfig),
    /// Time passed; the node checks its timers.
    Tick,
    /// A call to the engine failed (fetch or push).
    EngineUnreachable,
    /// The process is stopping.
    Shutdown,
}

/// What the runtime must do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Ask the engine for the HA config; report the result as `ConfigReceived` or
    /// `EngineUnreachable`.
    FetchConfig,
    /// Tell the engine this status; report a failure as `EngineUnreachable`.
    PushStatus(Status),
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
    /// Advertisements sent (always 0 until the peer protocol exists).
    pub adverts_sent: u64,
    /// Advertisements received (always 0 until the peer protocol exists).
    pub adverts_received: u64,
}

/// How often the node talks to the engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Re-fetch the config this often once it is known, to follow config reloads.
    pub fetch_interval: Duration,
    /// Retry this often while the engine does not answer (forever: the watchdog may be restarting it).
    pub retry_interval: Duration,
    /// Push the status this often even without a transition, so a restarted engine learns it soon.
    pub push_interval: Duration,
}

impl Default for Timers {
    fn default() -> Self {
        Self {
            fetch_interval: Duration::from_secs(15),
            retry_interval: Duration::from_secs(1),
            push_interval: Duration::from_secs(1),
        }
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
    /// False after a failed call until the next successful fetch; only used to log edges, not every
    /// failed retry.
    engine_reachable: bool,
    next_fetch: Instant,
    next_push: Instant,
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
            engine_reachable: true,
            next_fetch: now,
            next_push: now + timers.push_interval,
        }
    }

    /// Feeds one event; returns what to do, in order.
    pub fn handle(&mut self, event: Event, now: Instant) -> Vec<Action> {
        if self.state == State::Shutdown {
            // Terminal: a late fetch result or tick after shutdown changes nothing.
            return Vec::new();
        }
        match event {
            Event::ConfigReceived(config) => self.on_config(config, now),
            Event::Tick => self.on_tick(now),
            Event::EngineUnreachable => {
                self.engine_reachable = false;
                // Retry soon even if the failure was a push: a restarted engine may hold a new
                // config, and we want to know it within a retry interval.
                self.next_fetch = self.next_fetch.min(now + self.timers.retry_interval);
                Vec::new()
            }
            Event::Shutdown => self.transition(State::Shutdown, now),
        }
    }

    /// When the node next wants a `Tick`; `None` once shut down.
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.state != State::Shutdown).then(|| self.next_fetch.min(self.next_push))
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
        self.engine_reachable
    }

    fn on_config(&mut self, config: HaConfig, now: Instant) -> Vec<Action> {
        if !self.engine_reachable {
            tracing::info!("engine reachable again");
            self.engine_reachable = true;
        }
        self.next_fetch = now + self.timers.fetch_interval;
        if self.config.as_ref() != Some(&config) {
            tracing::info!(
                enabled = config.enabled,
                local = %config.local_addr,
                remote = config.remote_addr.as_deref().unwrap_or("none"),
                priority = config.priority,
                vrid = config.vrid,
                "ha config"
            );
            if let (true, Some(remote)) = (config.enabled, &config.remote_addr) {
                // Logged once per config change rather than on every re-fetch.
                tracing::warn!(
                    peer = %remote,
                    "a peer is configured but the peer protocol is not available in this build; \
                     this node stays BACKUP (remove the peer to run single-node as LEADER)"
                );
            }
        }
        let target = match (&config.enabled, &config.remote_addr) {
            (false, _) => State::Disabled,
            (true, None) => State::Leader,
            (true, Some(_)) => State::Backup,
        };
        self.config = Some(config);
        self.transition(target, now)
    }

    fn on_tick(&mut self, now: Instant) -> Vec<Action> {
        let mut actions = Vec::new();
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
        self.state = to;
        self.since = now;
        self.transitions += 1;
        // The transition push replaces the next periodic one.
        self.next_push = now + self.timers.push_interval;
        vec![Action::PushStatus(self.status())]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn single(enabled: bool) -> HaConfig {
        HaConfig {
            enabled,
            local_addr: "192.0.2.1".into(),
            remote_addr: None,
            priority: 100,
            vrid: 60,
        }
    }

    fn with_peer() -> HaConfig {
        HaConfig {
            remote_addr: Some("192.0.2.2".into()),
            ..single(true)
        }
    }

    fn pushed_states(actions: &[Action]) -> Vec<State> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::PushStatus(s) => Some(s.state),
                Action::FetchConfig => None,
            })
            .collect()
    }

    #[test]
    fn starts_unknown_and_fetches_at_once() {
        let t0 = Instant::now();
        let mut node = Node::new(Timers::default(), t0);
        assert_eq!(node.state(), State::Unknown);
        assert_eq!(node.next_deadline(), Some(t0));
        assert_eq!(node.handle(Event::Tick, t0), vec![Action::FetchConfig]);
        let s = node.status();
        assert_eq!(
            (s.since, s.transitions, s.adverts_sent, s.adverts_received),
            (t0, 0, 0, 0)
        );
    }

    #[test]
    fn enabled_without_peer_becomes_leader_and_pushes() {
        let t0 = Instant::now();
        let t1 = t0 + Duration::from_millis(30);
        let mut node = Node::new(Timers::default(), t0);
        let actions = node.handle(Event::ConfigReceived(single(true)), t1);
        assert_eq!(
            actions,
            vec![Action::PushStatus(Status {
                state: State::Leader,
                since: t1,
                transitions: 1,
                adverts_sent: 0,
                adverts_received: 0,
            })]
        );
        // The same config again is not a transition.
        assert!(
            node.handle(Event::ConfigReceived(single(true)), t1)
                .is_empty()
        );
        assert_eq!(node.status().transitions, 1);
    }

    #[test]
    fn disabled_and_peer_configs() {
        let t0 = Instant::now();
        let mut node = Node::new(Timers::default(), t0);
        assert_eq!(
            pushed_states(&node.handle(Event::ConfigReceived(single(false)), t0)),
            [State::Disabled]
        );
        assert_eq!(
            pushed_states(&node.handle(Event::ConfigReceived(with_peer()), t0)),
            [State::Backup]
        );
        assert_eq!(
            pushed_states(&node.handle(Event::ConfigReceived(single(true)), t0)),
            [State::Leader]
        );
        // Disabling a peer config is DISABLED, whatever the peer.
        let disabled_peer = HaConfig {
            enabled: false,
            ..with_peer()
        };
        assert_eq!(
            pushed_states(&node.handle(Event::ConfigReceived(disabled_peer), t0)),
            [State::Disabled]
        );
        assert_eq!(node.status().transitions, 4);
    }

    #[test]
    fn periodic_push_and_refetch_schedule() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut node = Node::new(timers, t0);
        node.handle(Event::Tick, t0);
        node.handle(Event::ConfigReceived(single(true)), t0);
        // Nothing is due before a push interval.
        assert_eq!(node.next_deadline(), Some(t0 + timers.push_interval));
        assert!(
            node.handle(Event::Tick, t0 + Duration::from_millis(999))
                .is_empty()
        );
        let t1 = t0 + timers.push_interval;
        assert_eq!(
            pushed_states(&node.handle(Event::Tick, t1)),
            [State::Leader]
        );
        // At the fetch interval both are due: the push comes first, then the fetch.
        let t15 = t0 + timers.fetch_interval;
        let actions = node.handle(Event::Tick, t15);
        assert!(matches!(
            actions.as_slice(),
            [Action::PushStatus(_), Action::FetchConfig]
        ));
    }

    #[test]
    fn unreachable_engine_is_retried_every_retry_interval() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut node = Node::new(timers, t0);
        assert_eq!(node.handle(Event::Tick, t0), vec![Action::FetchConfig]);
        assert!(node.handle(Event::EngineUnreachable, t0).is_empty());
        assert!(!node.engine_reachable());
        assert_eq!(node.state(), State::Unknown);
        let t1 = t0 + timers.retry_interval;
        assert_eq!(node.next_deadline(), Some(t1));
        // Push (UNKNOWN) and retry are both due.
        let actions = node.handle(Event::Tick, t1);
        assert!(actions.contains(&Action::FetchConfig));
        assert_eq!(pushed_states(&actions), [State::Unknown]);
        node.handle(Event::ConfigReceived(single(true)), t1);
        assert!(node.engine_reachable());
        assert_eq!(node.state(), State::Leader);
    }

    #[test]
    fn failed_push_while_leader_keeps_state_and_brings_the_refetch_forward() {
        let t0 = Instant::now();
        let timers = Timers::default();
        let mut node = Node::new(timers, t0);
        node.handle(Event::ConfigReceived(single(true)), t0);
        assert_eq!(node.next_deadline(), Some(t0 + timers.push_interval));
        let t1 = t0 + timers.push_interval;
        node.handle(Event::Tick, t1);
        node.handle(Event::EngineUnreachable, t1);
        // The engine going away does not take leadership away in single-node mode.
        assert_eq!(node.state(), State::Leader);
        let actions = node.handle(Event::Tick, t1 + timers.retry_interval);
        assert!(actions.contains(&Action::FetchConfig));
    }

    #[test]
    fn shutdown_is_terminal() {
        let t0 = Instant::now();
        let mut node = Node::new(Timers::default(), t0);
        node.handle(Event::ConfigReceived(single(true)), t0);
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(
            pushed_states(&node.handle(Event::Shutdown, t1)),
            [State::Shutdown]
        );
        assert_eq!(node.status().since, t1);
        assert_eq!(node.next_deadline(), None);
        assert!(
            node.handle(Event::ConfigReceived(single(true)), t1)
                .is_empty()
        );
        assert!(
            node.handle(Event::Tick, t1 + Duration::from_secs(60))
                .is_empty()
        );
        assert!(node.handle(Event::Shutdown, t1).is_empty());
        assert_eq!(node.state(), State::Shutdown);
        assert_eq!(node.status().transitions, 2);
    }
}
