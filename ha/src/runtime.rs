//! The ha runtime: drives a [`Node`] with tokio time, moves adverts through a [`Transport`], and
//! talks to the engine through an [`EngineLink`] — until the shutdown token fires; then reports
//! SHUTDOWN once, best effort.
//!
//! Adverts are time-critical and engine calls are not: the engine calls run in a worker task with
//! a per-call deadline, so a slow or stuck engine never delays an advert (which would let the
//! peer take over while this node still thinks it is LEADER). Status pushes queued behind a stuck
//! call are coalesced to the latest.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::{Mutex, mpsc};
use tokio::time::{Instant, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use crate::advert::Rejections;
use crate::fence::Fence;
use crate::link::{EngineLink, HaReport};
use crate::node::{Action, Event, Node, Peering, Status, Timers};
use crate::transport::{Opener, Transport};

/// Runtime settings. The defaults are what `seesaw_ha` uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunConfig {
    /// When to fetch and push.
    pub timers: Timers,
    /// Deadline of each engine call; a call that takes longer counts as a failure.
    pub call_timeout: Duration,
    /// How long the final SHUTDOWN report may take.
    pub shutdown_deadline: Duration,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            timers: Timers::default(),
            call_timeout: Duration::from_secs(1),
            shutdown_deadline: Duration::from_secs(1),
        }
    }
}

/// A request to the engine worker.
#[derive(Debug)]
enum Call {
    Fetch,
    Push(HaReport),
}

/// Runs the HA node until `shutdown` is cancelled. Engine and transport failures are retried
/// forever (the watchdog may be restarting the engine), so this never fails.
pub async fn run<L, O>(config: RunConfig, link: L, opener: O, shutdown: CancellationToken)
where
    L: EngineLink + 'static,
    O: Opener,
{
    run_with_sentinel(config, link, opener, crate::fence::NoFence, None, shutdown).await;
}

/// [`run`], holding ncc's lease through `fence` while this node leads a peering, and keeping
/// `sentinel` armed meanwhile, so it resigns for us if this process dies.
pub async fn run_with_sentinel<L, O, F>(
    config: RunConfig,
    link: L,
    mut opener: O,
    fence: F,
    mut sentinel: Option<crate::sentinel::Sentinel>,
    shutdown: CancellationToken,
) where
    L: EngineLink + 'static,
    O: Opener,
    F: Fence,
{
    let clock = Clock::start();
    let mut node = Node::new(config.timers, Instant::now());
    let link = Arc::new(Mutex::new(link));
    let (call_tx, call_rx) = mpsc::unbounded_channel::<Call>();
    let (event_tx, mut event_rx) = mpsc::unbounded_channel::<Event>();
    let worker = tokio::spawn(engine_worker(
        Arc::clone(&link),
        call_rx,
        event_tx.clone(),
        config.call_timeout,
    ));
    let mut fence = fence;
    let mut lease_failing = false;
    let mut transport: Option<O::Transport> = None;
    // Rejections counted by transports already closed: the reported counts only grow.
    let mut retired = Rejections::default();
    let mut send_failing = false;
    // What SIGUSR1 reports: refreshed after every event (a lock and a copy), read by the signal
    // task. The reporter holds it weakly, so it says "stopped" once this run ends.
    let dump = Arc::new(std::sync::Mutex::new(DumpView::of(
        &node,
        &clock,
        None::<&O::Transport>,
        &retired,
    )));
    let weak = Arc::downgrade(&dump);
    seesaw_common::signal::on_dump("ha", move || match weak.upgrade() {
        Some(d) => d
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .report(SystemTime::now()),
        None => "stopped".to_owned(),
    });
    seesaw_common::ready::notify_ready();
    tracing::info!("ha running");

    while let Some(deadline) = node.next_deadline() {
        let event = tokio::select! {
            biased;
            () = shutdown.cancelled() => break,
            Some(ev) = event_rx.recv() => ev,
            r = recv(&mut transport) => match r {
                Ok(rcv) => Event::Advert(rcv),
                Err(e) => {
                    tracing::warn!(error = %e, "advert transport failed");
                    retire(&mut transport, &mut retired);
                    Event::TransportFailed
                }
            },
            () = sleep_until(deadline) => Event::Tick,
        };
        // An advert is timed from its arrival in the kernel, so a process that was not scheduled
        // for a while does not stretch the master-down interval by that delay.
        let now = Instant::now();
        let at = match (&event, transport.as_ref()) {
            (Event::Advert(_), Some(t)) => now.checked_sub(t.last_age()).unwrap_or(now),
            _ => now,
        };
        let mut queue = VecDeque::from(node.handle(event, at));
        while let Some(action) = queue.pop_front() {
            if let Some(ev) = execute(
                action,
                &mut transport,
                &mut retired,
                &mut opener,
                (&call_tx, (&mut fence, &mut lease_failing)),
                &clock,
                &mut send_failing,
            ) {
                queue.extend(node.handle(ev, Instant::now()));
            }
        }
        *dump.lock().unwrap_or_else(|e| e.into_inner()) =
            DumpView::of(&node, &clock, transport.as_ref(), &retired);
        if let Some(s) = sentinel.as_mut() {
            let leads = node.state() == crate::node::State::Leader && transport.is_some();
            s.set(node.peering().filter(|_| leads));
        }
    }
    // An orderly stop resigns below, from here: the sentinel must not do it again.
    if let Some(s) = sentinel.as_mut() {
        s.set(None);
    }

    // Stop the workers (they may be stuck in a call) and make the last report ourselves.
    worker.abort();
    let _ = worker.await;
    for action in node.handle(Event::Shutdown, Instant::now()) {
        match action {
            Action::Lease(ttl) => match fence.lease(ttl) {
                Ok(()) => tracing::info!("gave up the lease"),
                Err(e) => tracing::warn!(error = %e, "could not give up the lease"),
            },
            Action::SendAdvert(a) => {
                if let Some(t) = transport.as_mut() {
                    match t.send(&a) {
                        Ok(()) => tracing::info!("sent the priority-0 advert"),
                        Err(e) => {
                            tracing::warn!(error = %e, "could not send the priority-0 advert")
                        }
                    }
                }
            }
            Action::PushStatus(status) => {
                let mut link = link.lock().await;
                match timeout(
                    config.shutdown_deadline,
                    link.ha_update(clock.report(&status, rejected(transport.as_ref(), &retired))),
                )
                .await
                {
                    Ok(Ok(_)) => tracing::info!("reported SHUTDOWN to the engine"),
                    Ok(Err(e)) => tracing::warn!(error = %e, "could not report SHUTDOWN"),
                    Err(_) => tracing::warn!("reporting SHUTDOWN timed out"),
                }
            }
            Action::FetchConfig | Action::OpenTransport(_) | Action::CloseTransport => {}
        }
    }
    seesaw_common::ready::notify_stopping();
}

/// The next advert, or never when no transport is open.
async fn recv<T: Transport>(
    transport: &mut Option<T>,
) -> Result<crate::advert::Received, crate::transport::TransportError> {
    match transport {
        Some(t) => t.recv().await,
        None => std::future::pending().await,
    }
}

/// Every rejection so far: the open transport's and the closed ones'.
fn rejected<T: Transport>(transport: Option<&T>, retired: &Rejections) -> Rejections {
    let mut all = *retired;
    if let Some(t) = transport {
        all.absorb(&t.rejected());
    }
    all
}

/// Closes the transport, keeping its rejection counts.
fn retire<T: Transport>(transport: &mut Option<T>, retired: &mut Rejections) {
    if let Some(t) = transport.take() {
        retired.absorb(&t.rejected());
    }
}

/// Executes one action; returns the event that reports its outcome at once, if any (engine
/// outcomes come back later through the worker).
fn execute<O: Opener, F: Fence>(
    action: Action,
    transport: &mut Option<O::Transport>,
    retired: &mut Rejections,
    opener: &mut O,
    (calls, (fence, lease_failing)): (&mpsc::UnboundedSender<Call>, (&mut F, &mut bool)),
    clock: &Clock,
    send_failing: &mut bool,
) -> Option<Event> {
    match action {
        Action::Lease(ttl) => {
            // One datagram, inline: it never waits for ncc.
            match fence.lease(ttl) {
                Ok(()) if *lease_failing => {
                    tracing::info!("ncc takes the lease again");
                    *lease_failing = false;
                }
                Ok(()) => {}
                Err(e) if !*lease_failing => {
                    tracing::warn!(error = %e, "lease not sent; it runs out unless a renewal gets through");
                    *lease_failing = true;
                }
                Err(_) => {}
            }
            None
        }
        Action::FetchConfig => {
            let _ = calls.send(Call::Fetch);
            None
        }
        Action::PushStatus(status) => {
            let report = clock.report(&status, rejected(transport.as_ref(), retired));
            let _ = calls.send(Call::Push(report));
            None
        }
        Action::OpenTransport(p) => {
            retire(transport, retired);
            match opener.open(&p) {
                Ok(t) => {
                    tracing::info!(local = %p.local, peer = %p.peer, vrid = p.vrid,
                        priority = p.priority, interval_ms = p.interval.as_millis(),
                        preempt = p.preempt, signed = p.auth.is_some(), "advert transport open");
                    *transport = Some(t);
                    Some(Event::TransportReady)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot open the advert transport; retrying");
                    Some(Event::TransportFailed)
                }
            }
        }
        Action::CloseTransport => {
            retire(transport, retired);
            None
        }
        Action::SendAdvert(a) => {
            // A failed send is not a broken socket: a firewall rule (EPERM), a missing route or a
            // full queue make adverts fail while they last, and the peer sees silence — which is
            // what the protocol is built to handle. The socket stays open; the next advert retries.
            // The node hears of it: a master that was silent yields when the link returns.
            let t = transport.as_mut()?;
            match t.send(&a) {
                Ok(()) if *send_failing => {
                    tracing::info!("adverts are being sent again");
                    *send_failing = false;
                    None
                }
                Ok(()) => None,
                Err(e) => {
                    if *send_failing {
                        tracing::debug!(error = %e, "advert not sent");
                    } else {
                        tracing::warn!(error = %e, "advert not sent; retrying with every advert");
                        *send_failing = true;
                    }
                    Some(Event::AdvertNotSent)
                }
            }
        }
    }
}

/// Runs engine calls one at a time, each with a deadline, and reports their outcomes as events.
async fn engine_worker<L: EngineLink>(
    link: Arc<Mutex<L>>,
    mut calls: mpsc::UnboundedReceiver<Call>,
    events: mpsc::UnboundedSender<Event>,
    call_timeout: Duration,
) {
    let mut warned = false;
    while let Some(first) = calls.recv().await {
        // Coalesce: everything queued behind a slow call collapses to at most one fetch and the
        // latest push, in the order fetch-then-push only if the fetch came first.
        let mut batch = vec![first];
        while let Ok(c) = calls.try_recv() {
            batch.push(c);
        }
        let fetch = batch.iter().any(|c| matches!(c, Call::Fetch));
        let push = batch.into_iter().rev().find_map(|c| match c {
            Call::Push(r) => Some(r),
            Call::Fetch => None,
        });
        let mut link = link.lock().await;
        let mut outcomes = Vec::new();
        if let Some(report) = push {
            outcomes.push(match timeout(call_timeout, link.ha_update(report)).await {
                Ok(Ok(failover)) => Ok(Event::PushDelivered { failover }),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("HaUpdate timed out".to_owned()),
            });
        }
        if fetch {
            outcomes.push(match timeout(call_timeout, link.ha_config()).await {
                Ok(Ok(c)) => Ok(Event::ConfigReceived(c)),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err("HaConfig timed out".to_owned()),
            });
        }
        drop(link);
        for outcome in outcomes {
            let event = match outcome {
                Ok(ev) => {
                    warned = false;
                    ev
                }
                Err(e) => {
                    // Warn on the first failure only; the retries every second would flood the log.
                    if warned {
                        tracing::debug!(error = %e, "engine still unreachable");
                    } else {
                        tracing::warn!(error = %e, "engine call failed");
                        warned = true;
                    }
                    Event::EngineUnreachable
                }
            };
            if events.send(event).is_err() {
                return;
            }
        }
    }
}

/// The node as SIGUSR1 reports it.
#[derive(Debug, Clone)]
struct DumpView {
    report: HaReport,
    peering: Option<Peering>,
    engine_reachable: bool,
    transport_open: bool,
}

impl DumpView {
    fn of<T: Transport>(
        node: &Node,
        clock: &Clock,
        transport: Option<&T>,
        retired: &Rejections,
    ) -> Self {
        Self {
            report: clock.report(&node.status(), rejected(transport, retired)),
            peering: node.peering(),
            engine_reachable: node.engine_reachable(),
            transport_open: transport.is_some(),
        }
    }

    /// One line: state and since, counters, the peer (or single-node mode), engine and socket.
    fn report(&self, now: SystemTime) -> String {
        let r = &self.report;
        let now_ms = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        let ago = now_ms.saturating_sub(r.since_ms).max(0);
        let peer = match &self.peering {
            Some(p) => format!(
                "peer {} from {} (vrid {}, priority {}, advert interval {} ms, preempt {}{}), \
                 advert socket {}",
                p.peer,
                p.local,
                p.vrid,
                p.priority,
                p.interval.as_millis(),
                p.preempt,
                if p.auth.is_some() { ", signed" } else { "" },
                if self.transport_open {
                    "open"
                } else {
                    "closed"
                }
            ),
            None => "no peer (single node)".to_owned(),
        };
        let rejected: Vec<String> = r
            .adverts_rejected
            .nonzero()
            .map(|(reason, n)| format!("{reason} {n}"))
            .collect();
        let rejected = if rejected.is_empty() {
            String::new()
        } else {
            format!(" (rejected: {})", rejected.join(", "))
        };
        format!(
            "state {} since {}.{} s ago; transitions {}; adverts sent {}, received {}{rejected}; \
             {peer}; engine {}",
            r.state,
            ago / 1000,
            (ago % 1000) / 100,
            r.transitions,
            r.adverts_sent,
            r.adverts_received,
            if self.engine_reachable {
                "reachable"
            } else {
                "unreachable"
            }
        )
    }
}

/// Maps tokio instants to UNIX milliseconds. Anchored once at start, so it follows tokio's clock
/// (pausable in tests) and never jumps backwards when the wall clock is stepped.
#[derive(Debug, Clone, Copy)]
struct Clock {
    origin: Instant,
    origin_unix_ms: i64,
}

impl Clock {
    fn start() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO);
        Self {
            origin: Instant::now(),
            origin_unix_ms: i64::try_from(unix.as_millis()).unwrap_or(i64::MAX),
        }
    }

    fn unix_ms(&self, t: Instant) -> i64 {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        if t >= self.origin {
            self.origin_unix_ms.saturating_add(ms(t - self.origin))
        } else {
            self.origin_unix_ms.saturating_sub(ms(self.origin - t))
        }
    }

    fn report(&self, s: &Status, adverts_rejected: Rejections) -> HaReport {
        HaReport {
            state: s.state,
            since_ms: self.unix_ms(s.since),
            transitions: s.transitions,
            adverts_sent: s.adverts_sent,
            adverts_received: s.adverts_received,
            adverts_rejected,
        }
    }
}

#[cfg(test)]
mod tests;
