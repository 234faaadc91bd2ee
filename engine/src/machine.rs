//! The engine's core as a sans-io state machine, in the style of `ha::node::Node`:
//! [`Engine::handle`] takes one [`Input`] and the time, changes [`EngineState`] and returns the
//! [`Effect`]s for the driver (`core.rs`) to carry out. No I/O, no clock, no task here.
//!
//! Every input ends in a *pass*: health is evaluated, and the plane is driven towards the
//! desired state in a fixed order, each step an effect whose outcome comes back as an input:
//! 1. BGP withdrawals ([`Effect::Bgp`], answered by [`Input::BgpDone`]) before services leave;
//! 2. the apply ([`Effect::Apply`], answered by [`Input::Applied`]), skipped when the plane
//!    holds the desired state already, and backed off while ncc refuses the same state;
//! 3. announcements, only for what the plane holds;
//! 4. the snapshot ([`Effect::Publish`]), then the replies waiting for it (read-your-writes):
//!    the ha process is answered only once the plane reflects its report.
//!
//! Inputs that arrive while a pass waits for an outcome are kept and handled after it.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use crate::config::Loaded;
use crate::desired::DesiredState;
use crate::events::{Event, ReloadReply, Snapshot};
use crate::ncc_port::PlaneKind;
use crate::state::{BgpDesired, EngineState, HaRole, ReloadOutcome, VserverView};

mod bgp;
mod io;
mod snapshot;
mod source;

pub use bgp::BgpPlan;
pub use io::{Effect, EtcdCmd, EtcdOutcome, FetchFrom, Input, Reply};
pub use snapshot::{mark_unapplied, snapshot, with_etcd};
pub use source::{
    CONVERGE_EVERY, ConfigSource, FetchReply, Fetched, LoadReply, Pending, apply_edit,
    apply_fetched, apply_loaded,
};

/// How often plane counters are read (at the least: see [`Input::Stats`]).
pub const STATS_EVERY: Duration = Duration::from_secs(2);
/// A full re-apply this often repairs drift even when nothing changed.
pub const RECONCILE_EVERY: Duration = Duration::from_secs(30);

/// The time an input is handled at: monotonic for timers, wall clock for what is shown.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    /// For timers and backoffs.
    pub mono: Instant,
    /// For reports, overrides and config times.
    pub wall: SystemTime,
}

/// Which step of a pass waits for an outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Withdraw,
    Apply,
    Announce,
}

/// Replies an input leaves for the end of its pass.
#[derive(Debug, Default)]
struct Waiting {
    reload: Option<Pending>,
    ha: Option<oneshot::Sender<bool>>,
    other: Vec<Reply>,
}

/// One pass: the desired state evaluated after an input, on its way to the plane.
#[derive(Debug)]
struct Pass {
    views: Vec<Arc<VserverView>>,
    desired: Arc<DesiredState>,
    bgp_wanted: Option<BgpDesired>,
    may_apply: bool,
    plane_holds: bool,
    forced: bool,
    changes: Option<usize>,
    step: Step,
    waiting: Waiting,
}

/// The engine's core.
#[derive(Debug)]
pub struct Engine {
    state: EngineState,
    source: ConfigSource,
    /// Peer sync runs (a peer is configured and its client was made).
    has_peer: bool,
    /// seesaw.cfg has `[etcd]` (as the driver's follower was built).
    etcd_configured: bool,
    config_dir: PathBuf,
    /// The kind ncc reports; `None` until it answered.
    plane_kind: Option<PlaneKind>,
    last_applied: Option<Arc<DesiredState>>,
    /// A refused apply is retried with backoff while the desired state stays the same (a new
    /// desired state is tried at once): (next try, failures in a row, the state refused).
    apply_failed: Option<(Instant, u32, Arc<DesiredState>)>,
    last_apply_at: Instant,
    bgp: BgpPlan,
    /// The reporting ha process being watched.
    ha_pid: Option<i32>,
    /// The last HA report the plane reflects (state, transitions).
    ha_reflected: Option<(HaRole, u64)>,
    /// The reply to the latest HA report, waiting for the plane to reflect it.
    ha_held: Option<oneshot::Sender<bool>>,
    ncc_boot: Option<u64>,
    ticks: u64,
    fetch_in_flight: bool,
    /// One config change (reload or edit) is in flight at a time.
    load_in_flight: bool,
    stats_in_flight: bool,
    stats_started: Instant,
    stats_due: Instant,
    last_poll: Instant,
    last_converge: Instant,
    pass: Option<Pass>,
    deferred: VecDeque<Input>,
}

/// How long after `failures` refused applies in a row (of one desired state) the next try waits:
/// 1, 2, 4, 8, 16, then every 30 s.
pub fn apply_backoff(failures: u32) -> Duration {
    Duration::from_secs((1u64 << failures.saturating_sub(1).min(5)).min(30))
}

impl Engine {
    /// A core for `loaded`; `has_peer` and `etcd_configured` say what the driver runs.
    pub fn new(
        loaded: Loaded,
        config_dir: PathBuf,
        (has_peer, etcd_configured): (bool, bool),
        now: Now,
    ) -> Self {
        let mut state = EngineState::new(loaded, now.wall);
        state.require_ha();
        let source = ConfigSource::default_for(&state.loaded().settings);
        Self {
            state,
            source,
            has_peer,
            etcd_configured,
            config_dir,
            plane_kind: None,
            last_applied: None,
            apply_failed: None,
            last_apply_at: now.mono,
            bgp: BgpPlan::default(),
            ha_pid: None,
            ha_reflected: None,
            ha_held: None,
            ncc_boot: None,
            ticks: 0,
            fetch_in_flight: false,
            load_in_flight: false,
            stats_in_flight: false,
            stats_started: now.mono,
            stats_due: now.mono,
            last_poll: now.mono,
            last_converge: now.mono,
            pass: None,
            deferred: VecDeque::new(),
        }
    }

    /// The config source in force.
    pub fn source(&self) -> ConfigSource {
        self.source
    }

    /// The state (read-only).
    pub fn state(&self) -> &EngineState {
        &self.state
    }

    /// The snapshot as things stand, without a pass (the first one, before any input).
    pub fn snapshot(&mut self) -> Snapshot {
        let (views, _) = self.state.evaluate();
        snapshot(
            &self.state,
            self.plane_kind,
            views,
            self.source,
            self.ha_reflected,
        )
    }

    /// What a graceful stop sends: the withdrawal of every announcement, then the plane
    /// emptied with the LB interface down (this node no longer serves; the peer takes over).
    pub fn teardown(&mut self, now: Now) -> (Option<BgpDesired>, DesiredState) {
        let withdraw = self.bgp.withdrawal(None, now.mono);
        let empty = DesiredState {
            lb: Some(crate::desired::LbDesired {
                up: false,
                ..self.state.lb_desired()
            }),
            ..DesiredState::default()
        };
        (withdraw, empty)
    }

    /// Handles one input at `now`; returns what the driver must do, in order.
    pub fn handle(&mut self, input: Input, now: Now) -> Vec<Effect> {
        match input {
            Input::Applied(r) => self.on_applied(r, now),
            Input::BgpDone(r) => self.on_bgp_done(r, now),
            other if self.pass.is_some() => {
                self.deferred.push_back(other);
                Vec::new()
            }
            other => {
                let mut effects = Vec::new();
                let mut waiting = Waiting::default();
                self.on_input(other, now, &mut waiting, &mut effects);
                effects.extend(self.begin_pass(waiting, now));
                effects
            }
        }
    }

    fn on_input(&mut self, input: Input, now: Now, w: &mut Waiting, fx: &mut Vec<Effect>) {
        match input {
            Input::Event(ev) => self.on_event(ev, now, w, fx),
            Input::Tick { ha_heard } => self.on_tick(ha_heard, now, fx),
            Input::Adopt(s) => {
                tracing::info!(plane = %s.kind, destinations = s.dests.len(), "adopting the data plane's current state");
                self.state.presume(s.dests.keys().copied());
                self.state.adopt_fwmarks(&s.fwmarks);
                self.plane_kind = Some(s.kind);
            }
            Input::Stats(r) => {
                self.stats_in_flight = false;
                let took = now.mono.saturating_duration_since(self.stats_started);
                // At most a fifth of ncc's time goes to counters (a read at 10,000 services
                // takes seconds on nftables).
                self.stats_due = self.stats_started + STATS_EVERY.max(took * 5);
                match r {
                    Ok(s) => {
                        self.plane_kind = Some(s.kind);
                        self.state.stats(s.dests, s.tables);
                    }
                    Err(e) => tracing::debug!(error = %e, "stats unavailable"),
                }
            }
            Input::NccBoot(boot) => {
                if self.ncc_boot.is_some_and(|b| b != boot) {
                    tracing::warn!("ncc restarted: sending it the desired state now");
                    self.last_applied = None;
                    self.bgp.ncc_restarted();
                }
                self.ncc_boot = Some(boot);
            }
            Input::Loaded((loaded, reply)) => {
                self.load_in_flight = false;
                w.reload = Some((reply, apply_loaded(&mut self.state, loaded, now.wall)));
            }
            Input::Edited((checked, reply)) => {
                self.load_in_flight = false;
                w.reload = Some((reply, apply_edit(&mut self.state, checked, now.wall)));
            }
            Input::Fetched((fetched, reply)) => {
                self.fetch_in_flight = false;
                let (outcome, save) = apply_fetched(&mut self.state, fetched, now.wall);
                if let Some(text) = save {
                    fx.push(Effect::SaveFetched(text));
                }
                w.reload = Some((reply, outcome));
            }
            Input::Etcd(EtcdOutcome::Reply(p)) => w.reload = Some(p),
            Input::Etcd(EtcdOutcome::Checked {
                revision,
                checked,
                reply,
            }) => {
                let outcome = match *checked {
                    Ok(loaded) => {
                        let generation = self.state.reload(loaded, now.wall);
                        tracing::info!(revision, generation, "etcd config applied");
                        ReloadOutcome::Applied(generation)
                    }
                    Err(errors) => {
                        tracing::warn!(revision, errors = ?errors, "etcd config refused; the running config stays");
                        self.state.reload_refused(errors.clone());
                        ReloadOutcome::Refused(errors)
                    }
                };
                w.reload = Some((reply, outcome));
            }
            Input::Applied(_) | Input::BgpDone(_) => {}
        }
    }

    fn on_tick(&mut self, ha_heard: Option<SystemTime>, now: Now, fx: &mut Vec<Effect>) {
        self.ticks += 1;
        if self.has_peer
            && self.state.ha_view().state == HaRole::Backup
            && self
                .ticks
                .is_multiple_of(crate::sync::POLL_EVERY.as_secs().max(1))
        {
            fx.push(Effect::PollPeerOverrides);
        }
        // Liveness comes from the API handler: reports queued behind a busy pass count.
        if let Some(at) = ha_heard {
            self.state.ha_heard(at);
        }
        self.state.ha_expire(now.wall);
        if self.source.is_remote()
            && !self.fetch_in_flight
            && now.mono.saturating_duration_since(self.last_poll)
                >= self.state.loaded().settings.config_interval
        {
            fx.push(self.fetch(None, now));
        }
        if self.state.converging()
            && now.mono.saturating_duration_since(self.last_converge) >= CONVERGE_EVERY
        {
            self.last_converge = now.mono;
            self.state.converge(now.wall);
        }
        // Counters are read off the loop: a slow stats call must never delay an HA report.
        if !self.stats_in_flight && now.mono >= self.stats_due {
            self.stats_in_flight = true;
            self.stats_started = now.mono;
            fx.push(Effect::ReadStats);
        }
    }

    /// A fetch from the source in force (remote), marked in flight.
    fn fetch(&mut self, reply: Option<oneshot::Sender<ReloadReply>>, now: Now) -> Effect {
        self.fetch_in_flight = true;
        self.last_poll = now.mono;
        let from = if self.source == ConfigSource::Peer {
            FetchFrom::Peer
        } else {
            let s = &self.state.loaded().settings;
            FetchFrom::Server(crate::source::ServerSource {
                servers: s.config_servers.clone(),
                port: s.config_server_port,
                cluster: s.cluster_name.clone(),
                ca_file: s
                    .config_server_ca
                    .clone()
                    .unwrap_or_else(|| self.config_dir.join("ssl").join("ca.crt")),
                timeout: Duration::from_secs(20),
            })
        };
        Effect::Fetch(from, reply)
    }

    /// Starts reading the config directory unless the source is `none` or a change is in
    /// flight (then the reply says so).
    fn reload(
        &mut self,
        reply: Option<oneshot::Sender<ReloadReply>>,
        w: &mut Waiting,
    ) -> Option<Effect> {
        if self.source == ConfigSource::None {
            tracing::info!("config source is none: reload keeps the running config");
            let why = vec!["config source is none: nothing to load".to_owned()];
            w.reload = Some((reply, ReloadOutcome::Refused(why)));
            return None;
        }
        if self.load_in_flight {
            let why = vec!["a reload is already in progress".to_owned()];
            w.reload = Some((reply, ReloadOutcome::Refused(why)));
            return None;
        }
        self.load_in_flight = true;
        Some(Effect::Load(reply))
    }

    /// Switches the config source and starts reading from it.
    fn set_source(&mut self, to: ConfigSource, now: Now, w: &mut Waiting, fx: &mut Vec<Effect>) {
        fx.push(Effect::Etcd(if to == ConfigSource::Etcd {
            EtcdCmd::Start
        } else {
            EtcdCmd::Stop
        }));
        self.source = to;
        if to.is_remote() {
            if !self.fetch_in_flight {
                fx.push(self.fetch(None, now));
            }
        } else if to != ConfigSource::Etcd
            && let Some(e) = self.reload(None, w)
        {
            fx.push(e);
        }
    }

    #[allow(clippy::too_many_lines, reason = "one arm per event, each short")]
    fn on_event(&mut self, ev: Event, now: Now, w: &mut Waiting, fx: &mut Vec<Effect>) {
        let backup = self.state.ha_view().state == HaRole::Backup;
        match ev {
            Event::Reload(reply) if self.source.is_remote() => {
                if self.fetch_in_flight {
                    let why = vec!["reload request already queued".to_owned()];
                    w.reload = Some((Some(reply), ReloadOutcome::Refused(why)));
                } else {
                    fx.push(self.fetch(Some(reply), now));
                }
            }
            // The watch delivers every revision; a reload re-reads the key from scratch.
            Event::Reload(reply) if self.source == ConfigSource::Etcd => {
                fx.push(Effect::Etcd(EtcdCmd::Restart(reply)));
            }
            Event::Reload(reply) => fx.extend(self.reload(Some(reply), w)),
            Event::Health(results, stats) => {
                self.state.health(results);
                self.state.probe_stats(stats);
            }
            Event::Trace(q, reply) => fx.push(Effect::Trace(q, reply)),
            Event::BgpNeighbors(reply) => fx.push(Effect::BgpNeighbors(reply)),
            Event::Ha(ha, pid, reply) => {
                let from = self.state.ha_view().state;
                if ha.state != from {
                    tracing::info!(%from, to = %ha.state, "ha state");
                }
                if let Some(reset) =
                    self.source
                        .after_ha_change(from, ha.state, &self.state.loaded().settings)
                {
                    tracing::info!(from = %self.source.as_str(), to = %reset.as_str(), "ha transition: config source reset to the default, as in Seesaw");
                    self.set_source(reset, now, w, fx);
                }
                self.state.ha(ha);
                w.ha = Some(reply);
                if let Some(pid) = pid.filter(|p| self.ha_pid != Some(*p)) {
                    self.ha_pid = Some(pid);
                    fx.push(Effect::WatchHa(pid));
                }
            }
            Event::HaGone(pid) => {
                if self.ha_pid == Some(pid) {
                    self.ha_pid = None;
                    self.state.ha_gone(now.wall);
                }
            }
            // An operator on the backup: the master must hand over, so ask it.
            Event::Failover(reply) if backup && self.has_peer => {
                fx.push(Effect::RelayFailover(reply));
            }
            Event::Failover(reply) => {
                let r = self.state.request_failover().map_err(|e| e.to_string());
                match &r {
                    Ok(_) => tracing::info!("failover requested"),
                    Err(e) => tracing::warn!("failover refused: {e}"),
                }
                w.other.push(Reply::Failover(reply, r));
            }
            Event::Preview { candidate, reply } => {
                let builds = crate::preview::builds_tables(self.plane_kind, &candidate.settings);
                let p = crate::preview::preview(&self.state, *candidate, now.wall, builds);
                fx.push(Effect::Reply(Reply::Preview(reply, Box::new(p))));
            }
            Event::UpdateCluster(edit) => {
                if self.source == ConfigSource::Etcd {
                    let anchors = self.state.anchors().clone();
                    fx.push(Effect::Etcd(EtcdCmd::Update(edit, anchors)));
                } else if self.load_in_flight {
                    // Edits land on disk in the order they are applied: one at a time.
                    let why =
                        vec!["another configuration change is in progress; try again".to_owned()];
                    w.reload = Some((Some(edit.reply), ReloadOutcome::Refused(why)));
                } else {
                    self.load_in_flight = true;
                    fx.push(Effect::Edit(edit));
                }
            }
            Event::Rollback(rollback) if self.source == ConfigSource::Etcd => {
                let anchors = self.state.anchors().clone();
                fx.push(Effect::Etcd(EtcdCmd::Rollback(rollback, anchors)));
            }
            Event::Rollback(rollback) => fx.push(Effect::Rollback(rollback)),
            Event::PeerOverrides(list) => {
                if backup && self.state.mirror_overrides(&list, now.wall) {
                    tracing::info!(overrides = list.len(), "mirrored the master's overrides");
                }
            }
            Event::Override {
                kind,
                target,
                state,
                caller,
                reply,
            } => {
                let r = self
                    .state
                    .set_override(kind, &target, state, &caller, now.wall);
                match &r {
                    Ok(msg) => tracing::info!(by = %caller.user, "override: {msg}"),
                    Err(e) => tracing::warn!(by = %caller.user, "override refused: {e}"),
                }
                w.other.push(Reply::Override(reply, r));
            }
            Event::ConfigSource {
                source: wanted,
                reply,
            } => {
                let previous = self.source.as_str().to_owned();
                let r = if wanted.is_empty() {
                    Ok((previous.clone(), previous))
                } else {
                    match ConfigSource::parse(&wanted) {
                        Ok(ConfigSource::Etcd) if !self.etcd_configured => {
                            Err("config source etcd: seesaw.cfg has no [etcd] endpoints".to_owned())
                        }
                        Ok(s) => {
                            self.set_source(s, now, w, fx);
                            tracing::info!(from = %previous, to = %s.as_str(), "config source changed");
                            Ok((s.as_str().to_owned(), previous))
                        }
                        Err(e) => Err(e),
                    }
                };
                w.other.push(Reply::Source(reply, r));
            }
        }
    }

    /// Evaluates and starts driving the plane: BGP withdrawals first.
    fn begin_pass(&mut self, waiting: Waiting, now: Now) -> Vec<Effect> {
        let (views, desired) = self.state.evaluate();
        let bgp_wanted = self.state.bgp_desired(&desired);
        let may_apply = self.state.may_apply(now.wall);
        let plane_holds = self.last_applied.as_deref() == Some(&desired);
        let forced = matches!(waiting.reload, Some((_, ReloadOutcome::Applied(_))));
        self.pass = Some(Pass {
            views,
            desired: Arc::new(desired),
            bgp_wanted,
            may_apply,
            plane_holds,
            forced,
            changes: None,
            step: Step::Withdraw,
            waiting,
        });
        if may_apply {
            let wanted = self.pass.as_ref().and_then(|p| p.bgp_wanted.clone());
            if let Some(req) = self.bgp.withdrawal(wanted.as_ref(), now.mono) {
                return vec![Effect::Bgp(req)];
            }
        }
        self.apply_step(now)
    }

    /// Applies the desired state when it differs from what the plane holds, when a reconcile
    /// is due, or after a config change; not while backing off from a refusal of the same state.
    fn apply_step(&mut self, now: Now) -> Vec<Effect> {
        let Some(pass) = self.pass.as_mut() else {
            return Vec::new();
        };
        let due = now.mono.saturating_duration_since(self.last_apply_at) >= RECONCILE_EVERY;
        let backing_off = self
            .apply_failed
            .as_ref()
            .is_some_and(|(at, _, refused)| now.mono < *at && **refused == *pass.desired);
        if pass.may_apply && !backing_off && (!pass.plane_holds || due || pass.forced) {
            pass.step = Step::Apply;
            return vec![Effect::Apply(Arc::clone(&pass.desired))];
        }
        self.announce_step(now)
    }

    fn on_applied(&mut self, r: Result<Vec<String>, String>, now: Now) -> Vec<Effect> {
        let Some(pass) = self.pass.as_mut().filter(|p| p.step == Step::Apply) else {
            return Vec::new();
        };
        match r {
            Ok(c) => {
                tracing::info!(
                    changes = c.len(),
                    services = pass.desired.services.len(),
                    "applied desired state"
                );
                for change in &c {
                    tracing::info!("  {change}");
                }
                pass.changes = Some(c.len());
                pass.plane_holds = true;
                self.last_applied = Some(Arc::clone(&pass.desired));
                self.apply_failed = None;
                self.state.apply_result(None);
            }
            Err(e) => {
                let failures = self.apply_failed.as_ref().map_or(0, |f| f.1) + 1;
                let wait = apply_backoff(failures);
                tracing::warn!(error = %e, retry_in = ?wait, "applying desired state failed; the plane keeps what it holds");
                pass.plane_holds = false;
                self.state.apply_result(Some(e));
                self.apply_failed = Some((now.mono + wait, failures, Arc::clone(&pass.desired)));
            }
        }
        self.last_apply_at = now.mono;
        self.announce_step(now)
    }

    /// Announcements only for what the plane holds now.
    fn announce_step(&mut self, now: Now) -> Vec<Effect> {
        let Some(pass) = self.pass.as_mut() else {
            return Vec::new();
        };
        if pass.may_apply && pass.plane_holds {
            let wanted = pass.bgp_wanted.take();
            if let Some(req) = self.bgp.announcement(wanted, now.mono) {
                pass.step = Step::Announce;
                return vec![Effect::Bgp(req)];
            }
        }
        self.finish_pass(now)
    }

    fn on_bgp_done(&mut self, r: Result<Vec<String>, String>, now: Now) -> Vec<Effect> {
        self.bgp.done(r, now.mono);
        match self.pass.as_ref().map(|p| p.step) {
            Some(Step::Withdraw) => self.apply_step(now),
            Some(Step::Announce) => self.finish_pass(now),
            Some(Step::Apply) | None => Vec::new(),
        }
    }

    /// Publishes the snapshot, then answers what waited for it; then handles inputs that came
    /// during the pass.
    fn finish_pass(&mut self, now: Now) -> Vec<Effect> {
        let Some(mut pass) = self.pass.take() else {
            return Vec::new();
        };
        if !pass.plane_holds {
            let why = self
                .state
                .apply_error()
                .unwrap_or("the data plane has not been programmed yet")
                .to_owned();
            mark_unapplied(&mut pass.views, self.last_applied.as_deref(), &why);
        }
        // The ha process hears back only once the plane reflects its report (or nothing is
        // programmed yet: the start-up gate): a LEADER handing over sends its priority-0 advert
        // after its VIPs are down. The newest report's reply replaces an older one held.
        if let Some(reply) = pass.waiting.ha.take() {
            self.ha_held = Some(reply);
        }
        let mut replies = Vec::new();
        if pass.plane_holds || !pass.may_apply {
            let ha = self.state.ha_view();
            self.ha_reflected = Some((ha.state, ha.transitions));
            // A report answered on the API's fast path has no listener: it must never consume a
            // pending failover, or the hand-over an operator asked for is lost.
            if let Some(reply) = self.ha_held.take().filter(|r| !r.is_closed()) {
                replies.push(Reply::Ha(reply, self.state.take_failover()));
            }
        }
        let snap = snapshot(
            &self.state,
            self.plane_kind,
            pass.views,
            self.source,
            self.ha_reflected,
        );
        let mut effects = vec![Effect::Publish(Box::new(snap))];
        effects.extend(replies.into_iter().map(Effect::Reply));
        if let Some((Some(reply), outcome)) = pass.waiting.reload {
            effects.push(Effect::Reply(Reply::Reload(
                reply,
                ReloadReply {
                    outcome,
                    changes: pass.changes,
                },
            )));
        }
        effects.extend(pass.waiting.other.into_iter().map(Effect::Reply));
        while self.pass.is_none()
            && let Some(input) = self.deferred.pop_front()
        {
            effects.extend(self.handle(input, now));
        }
        effects
    }
}

#[cfg(test)]
mod tests;
