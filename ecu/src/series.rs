//! The dashboard's history: per vserver and per backend, open connections, new connections per
//! second, bytes per second and health over the last 15 minutes, a health-transition timeline per
//! backend and the node's HA-state timeline. Kept in the ECU (not the browser) so a page opened
//! later still shows the past.
//!
//! This module is sans-io: [`Series::push`] takes a [`Sample`] (built from the engine's answers by
//! [`Sample::from_model`]) and the time it was taken; the ECU's sampler task (`api::series`) does
//! the reading and the clock. Memory is bounded three ways: each ring holds at most
//! [`Series::capacity`] points (window ÷ interval, at most [`MAX_POINTS`]), points older than the
//! window are dropped, and at most [`MAX_VSERVERS`] vservers with [`MAX_BACKENDS`] backends each
//! are tracked (by name order; the rest are counted in `dropped_series`). A vserver or backend
//! missing from a sample is forgotten at once.
//!
//! Rates come from the difference of cumulative counters between samples. A counter that went
//! down was reset (the engine or data plane restarted): the new value is taken as the count since
//! the reset, never as a negative rate. The first sample of a series has no rate. The engine
//! reads the plane's counters every 2 s or more ([`COUNTER_STALENESS`] at most), so a faster
//! sampler sees them move in steps: a change is divided by the time since the counters last
//! moved (but no further back than the staleness before the previous sample, the idle time it
//! has seen), and samples that find the counters unchanged repeat the last rate until the
//! staleness has passed, then say 0. A spike-and-zero saw would misstate steady traffic.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use serde::Serialize;

use crate::model::{HaStatus, Vserver};

/// The sampling interval by default.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(2);
/// How far back the dashboard looks.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// At most this many points per ring, whatever the interval.
pub const MAX_POINTS: usize = 1800;
/// At most this many vservers are tracked.
pub const MAX_VSERVERS: usize = 64;
/// At most this many backends per vserver are tracked.
pub const MAX_BACKENDS: usize = 32;
/// At most this many transitions are kept per timeline.
pub const MAX_TRANSITIONS: usize = 128;
/// How old the engine's copy of the plane counters may be (it reads them every 2 s, less often
/// when reads are slow).
pub const COUNTER_STALENESS: Duration = Duration::from_secs(5);

/// One reading of a vserver (summed over its services) or of a backend (summed over its
/// destinations).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reading {
    /// Connections open now.
    pub active_conns: u64,
    /// Connections since the data plane created the services (cumulative).
    pub total_conns: u64,
    /// Bytes both ways (cumulative).
    pub bytes: u64,
    /// Destinations that are healthy.
    pub healthy: u32,
    /// Destinations in all.
    pub destinations: u32,
}

/// What the engine said at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sample {
    /// Vservers by name, each with its backends by host.
    pub vservers: BTreeMap<String, (Reading, BTreeMap<String, Reading>)>,
    /// The HA state, when the engine answered for it.
    pub ha: Option<String>,
}

/// The series of every tracked vserver, and the HA timeline.
#[derive(Debug)]
pub struct Series {
    interval: Duration,
    capacity: usize,
    window_ms: i64,
    vservers: BTreeMap<String, VserverTrack>,
    ha: Timeline<String>,
    dropped: usize,
    last_ms: Option<i64>,
}

/// A vserver's own track and its backends'.
#[derive(Debug, Default)]
struct VserverTrack {
    own: Track,
    backends: BTreeMap<String, Track>,
}

/// The ring of points of one vserver or backend, and its health timeline.
#[derive(Debug, Default)]
struct Track {
    points: VecDeque<Point>,
    /// The previous sample's counters: the base of the next rates.
    last: Option<Counters>,
    health: Timeline<&'static str>,
}

/// Cumulative counters as last sampled, and the rates last computed from them.
#[derive(Debug, Clone, Copy)]
struct Counters {
    t_ms: i64,
    total_conns: u64,
    bytes: u64,
    /// When they last moved.
    moved_ms: i64,
    /// (new connections/s, bytes/s) when they last moved; `None` before a second sample.
    rates: Option<(f64, f64)>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    t_ms: i64,
    conns: u64,
    new_per_s: Option<f64>,
    bytes_per_s: Option<f64>,
    health: Option<f64>,
}

/// State changes, oldest first; the oldest kept may predate the window (the state at its start).
#[derive(Debug)]
struct Timeline<T> {
    changes: VecDeque<(i64, T)>,
}

impl<T> Default for Timeline<T> {
    fn default() -> Self {
        Self {
            changes: VecDeque::new(),
        }
    }
}

// === the JSON view (`GET /v1/series`) ===

/// Everything the dashboard draws.
#[derive(Debug, Serialize)]
pub struct SeriesView {
    /// The sampling interval.
    pub interval_ms: u64,
    /// How far back the series go.
    pub window_ms: i64,
    /// The time of the newest sample (0: none yet), UNIX milliseconds.
    pub now_ms: i64,
    /// Vservers or backends not tracked because of the limits.
    pub dropped_series: usize,
    /// The HA-state timeline.
    pub ha: Vec<StateChange>,
    /// Every tracked vserver, by name.
    pub vservers: Vec<VserverSeries>,
}

/// A vserver's series.
#[derive(Debug, Serialize)]
pub struct VserverSeries {
    /// The vserver name.
    pub name: String,
    /// Its points.
    pub points: Points,
    /// Its backends, by host.
    pub backends: Vec<BackendSeries>,
}

/// A backend's series within one vserver.
#[derive(Debug, Serialize)]
pub struct BackendSeries {
    /// The backend's host name.
    pub host: String,
    /// Its points.
    pub points: Points,
    /// Its health transitions (`healthy`, `partial`, `unhealthy`, `none`).
    pub transitions: Vec<StateChange>,
}

/// Points in columns (one entry per sample, same order); `null` where there is no value.
#[derive(Debug, Default, Serialize)]
pub struct Points {
    /// Sample times, UNIX milliseconds.
    pub t: Vec<i64>,
    /// Open connections.
    pub conns: Vec<u64>,
    /// New connections per second since the previous sample.
    pub new_per_s: Vec<Option<f64>>,
    /// Bytes per second (both ways) since the previous sample.
    pub bytes_per_s: Vec<Option<f64>>,
    /// Healthy share of the destinations, 0..=1.
    pub health: Vec<Option<f64>>,
}

/// A timeline entry: from `t` on, the state was `state`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StateChange {
    /// UNIX milliseconds.
    pub t: i64,
    /// The state.
    pub state: String,
}

// === impl Sample ===

impl Sample {
    /// A sample from the engine's vservers (and HA status, when it answered).
    pub fn from_model(vservers: &[Vserver], ha: Option<&HaStatus>) -> Self {
        let mut out = Self {
            vservers: BTreeMap::new(),
            ha: ha.map(|h| h.state.clone()),
        };
        for v in vservers {
            let (own, backends) = out.vservers.entry(v.name.clone()).or_default();
            for d in v.services.iter().flat_map(|s| &s.destinations) {
                for r in [&mut *own, backends.entry(d.backend.clone()).or_default()] {
                    r.active_conns = r.active_conns.saturating_add(d.active_conns);
                    r.total_conns = r.total_conns.saturating_add(d.total_conns);
                    r.bytes = r
                        .bytes
                        .saturating_add(d.bytes_in)
                        .saturating_add(d.bytes_out);
                    r.healthy += u32::from(d.healthy);
                    r.destinations += 1;
                }
            }
        }
        out
    }
}

// === impl Series ===

impl Series {
    /// Empty series sampled every `interval` (at least 1 ms) over `window`.
    pub fn new(interval: Duration, window: Duration) -> Self {
        let interval = interval.max(Duration::from_millis(1));
        let per_window = window.as_millis() / interval.as_millis();
        Self {
            interval,
            capacity: usize::try_from(per_window)
                .unwrap_or(MAX_POINTS)
                .clamp(1, MAX_POINTS),
            window_ms: i64::try_from(window.as_millis()).unwrap_or(i64::MAX),
            vservers: BTreeMap::new(),
            ha: Timeline::default(),
            dropped: 0,
            last_ms: None,
        }
    }

    /// The most points a ring holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Records `sample`, taken at `now_ms` (UNIX milliseconds).
    pub fn push(&mut self, sample: &Sample, now_ms: i64) {
        let oldest = now_ms.saturating_sub(self.window_ms);
        self.dropped = sample.vservers.len().saturating_sub(MAX_VSERVERS);
        let kept: BTreeMap<&String, _> = sample.vservers.iter().take(MAX_VSERVERS).collect();
        self.vservers.retain(|name, _| kept.contains_key(name));
        for (name, (reading, backends)) in kept {
            let track = self.vservers.entry(name.clone()).or_default();
            track.own.push(*reading, now_ms, oldest, self.capacity);
            self.dropped += backends.len().saturating_sub(MAX_BACKENDS);
            let kept: BTreeMap<&String, _> = backends.iter().take(MAX_BACKENDS).collect();
            track.backends.retain(|host, _| kept.contains_key(host));
            for (host, reading) in kept {
                track.backends.entry(host.clone()).or_default().push(
                    *reading,
                    now_ms,
                    oldest,
                    self.capacity,
                );
            }
        }
        if let Some(state) = &sample.ha {
            self.ha.push(now_ms, state.clone(), oldest);
        }
        self.last_ms = Some(now_ms);
    }

    /// Points and timelines as the dashboard reads them.
    pub fn view(&self) -> SeriesView {
        SeriesView {
            interval_ms: u64::try_from(self.interval.as_millis()).unwrap_or(u64::MAX),
            window_ms: self.window_ms,
            now_ms: self.last_ms.unwrap_or(0),
            dropped_series: self.dropped,
            ha: self.ha.view(),
            vservers: self
                .vservers
                .iter()
                .map(|(name, v)| VserverSeries {
                    name: name.clone(),
                    points: v.own.points(),
                    backends: v
                        .backends
                        .iter()
                        .map(|(host, b)| BackendSeries {
                            host: host.clone(),
                            points: b.points(),
                            transitions: b.health.view(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

// === impl Track ===

impl Track {
    fn push(&mut self, r: Reading, now_ms: i64, oldest: i64, capacity: usize) {
        let stale_ms = i64::try_from(COUNTER_STALENESS.as_millis()).unwrap_or(i64::MAX);
        let next = match self.last {
            Some(l) if now_ms > l.t_ms => {
                if (l.total_conns, l.bytes) != (r.total_conns, r.bytes) {
                    // They moved since the previous sample, at most `stale_ms` before it.
                    let since = l.moved_ms.max(l.t_ms.saturating_sub(stale_ms));
                    #[allow(clippy::cast_precision_loss, reason = "milliseconds to seconds")]
                    let dt = (now_ms - since) as f64 / 1000.0;
                    Counters {
                        moved_ms: now_ms,
                        rates: Some((
                            increase(l.total_conns, r.total_conns) / dt,
                            increase(l.bytes, r.bytes) / dt,
                        )),
                        ..l
                    }
                } else if now_ms - l.moved_ms <= stale_ms {
                    // The engine may not have read them again yet: as before.
                    l
                } else {
                    // Unchanged for longer than the engine's copy can be stale: idle.
                    Counters {
                        rates: Some((0.0, 0.0)),
                        ..l
                    }
                }
            }
            Some(l) => l,
            None => Counters {
                t_ms: now_ms,
                total_conns: 0,
                bytes: 0,
                moved_ms: now_ms,
                rates: None,
            },
        };
        let next = Counters {
            t_ms: now_ms.max(next.t_ms),
            total_conns: r.total_conns,
            bytes: r.bytes,
            ..next
        };
        let (new_per_s, bytes_per_s) = match (self.last, next.rates) {
            (Some(l), Some((c, b))) if now_ms > l.t_ms => (Some(c), Some(b)),
            _ => (None, None),
        };
        self.last = Some(next);
        let health = (r.destinations > 0).then(|| f64::from(r.healthy) / f64::from(r.destinations));
        while self.points.len() >= capacity || self.points.front().is_some_and(|p| p.t_ms < oldest)
        {
            self.points.pop_front();
        }
        self.points.push_back(Point {
            t_ms: now_ms,
            conns: r.active_conns,
            new_per_s,
            bytes_per_s,
            health,
        });
        let state = match (r.healthy, r.destinations) {
            (_, 0) => "none",
            (0, _) => "unhealthy",
            (h, n) if h == n => "healthy",
            _ => "partial",
        };
        self.health.push(now_ms, state, oldest);
    }

    fn points(&self) -> Points {
        let mut p = Points::default();
        for x in &self.points {
            p.t.push(x.t_ms);
            p.conns.push(x.conns);
            p.new_per_s.push(x.new_per_s);
            p.bytes_per_s.push(x.bytes_per_s);
            p.health.push(x.health);
        }
        p
    }
}

/// How much a cumulative counter grew from `before` to `now`; a counter that went down was reset
/// and counts from zero again.
#[allow(clippy::cast_precision_loss, reason = "a rate for a chart")]
fn increase(before: u64, now: u64) -> f64 {
    if now >= before {
        (now - before) as f64
    } else {
        now as f64
    }
}

// === impl Timeline ===

impl<T: PartialEq + ToString> Timeline<T> {
    /// Records `state` at `now_ms` if it differs from the last; forgets changes that ended before
    /// `oldest` (keeping the one in force then) and any beyond [`MAX_TRANSITIONS`].
    fn push(&mut self, now_ms: i64, state: T, oldest: i64) {
        if self.changes.back().is_none_or(|(_, s)| *s != state) {
            self.changes.push_back((now_ms, state));
        }
        while self.changes.len() > MAX_TRANSITIONS
            || (self.changes.len() > 1 && self.changes[1].0 <= oldest)
        {
            self.changes.pop_front();
        }
    }

    fn view(&self) -> Vec<StateChange> {
        self.changes
            .iter()
            .map(|(t, s)| StateChange {
                t: *t,
                state: s.to_string(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
