//! Unit tests of the dashboard history: rates from counter differences (resets included), the
//! bounded rings and timelines, and the series of vanished or surplus vservers.

use std::collections::BTreeMap;
use std::time::Duration;

use super::*;
use crate::engine_view::fake;
use crate::model::Destination;

const T0: i64 = 1_700_000_000_000;
const STEP: i64 = 2000;

fn reading(active: u64, total: u64, bytes: u64, healthy: u32, n: u32) -> Reading {
    Reading {
        active_conns: active,
        total_conns: total,
        bytes,
        healthy,
        destinations: n,
    }
}

/// One vserver `web` with one backend `be1` holding `r`.
fn one(r: Reading) -> Sample {
    Sample {
        vservers: BTreeMap::from([(
            "web".to_owned(),
            (r, BTreeMap::from([("be1".to_owned(), r)])),
        )]),
        ha: Some("LEADER".into()),
    }
}

fn series() -> Series {
    Series::new(DEFAULT_INTERVAL, WINDOW)
}

/// A [`series`] that took [`one`] of each reading at its time.
fn pushed(readings: &[(Reading, i64)]) -> Series {
    let mut s = series();
    for (r, at) in readings {
        s.push(&one(*r), *at);
    }
    s
}

#[test]
fn fifteen_minutes_at_two_seconds_is_450_points() {
    assert_eq!(series().capacity(), 450);
    assert_eq!(
        Series::new(Duration::from_millis(1), WINDOW).capacity(),
        MAX_POINTS
    );
    assert_eq!(Series::new(Duration::ZERO, Duration::ZERO).capacity(), 1);
}

#[test]
fn rates_are_counter_differences_over_time() {
    let s = pushed(&[
        (reading(3, 100, 1000, 1, 1), T0),
        (reading(4, 120, 5000, 1, 1), T0 + STEP),
        (reading(2, 150, 5000, 1, 1), T0 + 3 * STEP),
        // Unchanged for longer than the engine's counters can be stale: idle.
        (reading(2, 150, 5000, 1, 1), T0 + 6 * STEP),
    ]);
    let v = s.view();
    let p = &v.vservers[0].points;
    assert_eq!(p.t, [T0, T0 + STEP, T0 + 3 * STEP, T0 + 6 * STEP]);
    assert_eq!(p.conns, [3, 4, 2, 2]);
    assert_eq!(p.new_per_s, [None, Some(10.0), Some(7.5), Some(0.0)]);
    assert_eq!(p.bytes_per_s, [None, Some(2000.0), Some(0.0), Some(0.0)]);
    assert_eq!(p.health, [Some(1.0); 4]);
    assert_eq!(v.now_ms, T0 + 6 * STEP);
    assert_eq!(v.interval_ms, 2000);
}

/// The engine refreshes counters every 2 s; sampled every 500 ms they move on every fourth
/// sample. The rate stays level instead of a spike and three zeros.
#[test]
fn counters_that_move_in_steps_give_a_level_rate() {
    let mut s = Series::new(Duration::from_millis(500), WINDOW);
    for i in 0..16_i64 {
        let total = u64::try_from(i / 4).unwrap() * 200;
        s.push(&one(reading(0, total, total * 10, 1, 1)), T0 + i * 500);
    }
    let p = &s.view().vservers[0].points;
    assert_eq!(p.new_per_s[..4], [None; 4]);
    assert_eq!(p.new_per_s[4..], [Some(100.0); 12]);
    assert_eq!(p.bytes_per_s[4..], [Some(1000.0); 12]);
    // After a long idle spell, a change counts from the last sample's staleness, not from the
    // last change minutes ago.
    let mut s = series();
    s.push(&one(reading(0, 0, 0, 1, 1)), T0);
    for i in 1..=60 {
        s.push(&one(reading(0, 0, 0, 1, 1)), T0 + i * STEP);
    }
    s.push(&one(reading(0, 14, 0, 1, 1)), T0 + 61 * STEP);
    let p = &s.view().vservers[0].points;
    assert_eq!(p.new_per_s[3..61], [Some(0.0); 58]);
    assert_eq!(p.new_per_s.last(), Some(&Some(2.0)));
}

#[test]
fn a_counter_that_goes_down_was_reset_not_a_negative_rate() {
    let s = pushed(&[
        (reading(0, 1_000_000, 9_000_000, 1, 1), T0),
        // The data plane restarted: 8 connections and 400 bytes since.
        (reading(0, 8, 400, 1, 1), T0 + STEP),
        (reading(0, 10, 600, 1, 1), T0 + 2 * STEP),
    ]);
    let p = &s.view().vservers[0].backends[0].points;
    assert_eq!(p.new_per_s, [None, Some(4.0), Some(1.0)]);
    assert_eq!(p.bytes_per_s, [None, Some(200.0), Some(100.0)]);
}

#[test]
fn a_clock_that_does_not_advance_gives_no_rate() {
    let s = pushed(&[
        (reading(0, 10, 10, 1, 1), T0),
        (reading(0, 20, 20, 1, 1), T0),
        (reading(0, 30, 30, 1, 1), T0 - STEP),
    ]);
    let p = &s.view().vservers[0].points;
    assert_eq!(p.new_per_s, [None, None, None]);
}

#[test]
fn rings_hold_at_most_their_capacity_and_the_window() {
    let mut s = Series::new(Duration::from_secs(1), Duration::from_secs(10));
    assert_eq!(s.capacity(), 10);
    for i in 0..25 {
        s.push(
            &one(reading(i, i, i, 1, 1)),
            T0 + i64::try_from(i).unwrap() * 1000,
        );
    }
    let p = &s.view().vservers[0].points;
    assert_eq!(p.t.len(), 10);
    assert_eq!(p.t.first(), Some(&(T0 + 15_000)));
    assert_eq!(p.conns.last(), Some(&24));
    // A long pause (engine down): points older than the window go, whatever the count.
    s.push(&one(reading(0, 40, 40, 1, 1)), T0 + 40_000);
    let p = &s.view().vservers[0].points;
    assert_eq!(p.t, [T0 + 40_000]);
    // No sample in between: the 16 connections spread over the 16 s.
    assert_eq!(p.new_per_s, [Some(1.0)]);
}

#[test]
fn health_transitions_keep_the_state_at_the_window_start() {
    let mut s = Series::new(Duration::from_secs(1), Duration::from_secs(10));
    let states = [(1, 1), (1, 1), (0, 1), (0, 1), (1, 2), (1, 1), (0, 0)];
    for (i, (h, n)) in states.into_iter().enumerate() {
        s.push(
            &one(reading(0, 0, 0, h, n)),
            T0 + i64::try_from(i).unwrap() * 1000,
        );
    }
    let names = |v: &SeriesView| -> Vec<(i64, String)> {
        v.vservers[0].backends[0]
            .transitions
            .iter()
            .map(|c| (c.t - T0, c.state.clone()))
            .collect()
    };
    let v = s.view();
    assert_eq!(
        names(&v),
        [
            (0, "healthy".to_owned()),
            (2000, "unhealthy".to_owned()),
            (4000, "partial".to_owned()),
            (5000, "healthy".to_owned()),
            (6000, "none".to_owned()),
        ]
    );
    assert_eq!(
        v.ha,
        [StateChange {
            t: T0,
            state: "LEADER".into()
        }]
    );
    assert_eq!(v.vservers[0].points.health.last(), Some(&None));
    // 20 s later only the change in force at the window's start is left.
    s.push(&one(reading(0, 0, 0, 0, 0)), T0 + 26_000);
    assert_eq!(names(&s.view()), [(6000, "none".to_owned())]);
}

#[test]
fn timelines_are_bounded() {
    let mut s = series();
    for i in 0..1000_i64 {
        let mut sample = one(reading(0, 0, 0, u32::from(i % 2 == 0), 1));
        sample.ha = Some(if i % 2 == 0 { "LEADER" } else { "BACKUP" }.into());
        s.push(&sample, T0 + i * 10);
    }
    let v = s.view();
    assert_eq!(v.ha.len(), MAX_TRANSITIONS);
    assert_eq!(v.vservers[0].backends[0].transitions.len(), MAX_TRANSITIONS);
    assert_eq!(v.ha.last().map(|c| c.t), Some(T0 + 9990));
}

#[test]
fn vanished_vservers_and_backends_are_forgotten() {
    let mut s = series();
    let mut sample = one(reading(1, 1, 1, 1, 1));
    sample
        .vservers
        .insert("api".into(), (Reading::default(), BTreeMap::new()));
    s.push(&sample, T0);
    assert_eq!(s.view().vservers.len(), 2);
    let mut sample = one(reading(1, 1, 1, 1, 1));
    if let Some((_, backends)) = sample.vservers.get_mut("web") {
        backends.clear();
        backends.insert("be2".into(), Reading::default());
    }
    s.push(&sample, T0 + STEP);
    let v = s.view();
    let names: Vec<&str> = v.vservers.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["web"]);
    let hosts: Vec<&str> = v.vservers[0]
        .backends
        .iter()
        .map(|b| b.host.as_str())
        .collect();
    assert_eq!(hosts, ["be2"]);
    // A vserver that comes back starts afresh: no rate against its old counters.
    s.push(&one(reading(1, 50, 50, 1, 1)), T0 + 2 * STEP);
    assert_eq!(s.view().vservers[0].backends[0].points.new_per_s, [None]);
}

#[test]
fn the_number_of_series_is_bounded() {
    let mut s = series();
    let backends: BTreeMap<String, Reading> = (0..MAX_BACKENDS + 3)
        .map(|i| (format!("be{i:03}"), Reading::default()))
        .collect();
    let sample = Sample {
        vservers: (0..MAX_VSERVERS + 5)
            .map(|i| (format!("vs{i:03}"), (Reading::default(), backends.clone())))
            .collect(),
        ha: None,
    };
    s.push(&sample, T0);
    let v = s.view();
    assert_eq!(v.vservers.len(), MAX_VSERVERS);
    assert!(v.vservers.iter().all(|v| v.backends.len() == MAX_BACKENDS));
    assert_eq!(v.dropped_series, 5 + 3 * MAX_VSERVERS);
    assert!(v.ha.is_empty());
}

#[test]
fn a_sample_sums_services_and_destinations() {
    let dest = |backend: &str, healthy: bool, conns: u64| Destination {
        name: format!("{backend}:80"),
        healthy,
        active: healthy,
        active_conns: conns,
        total_conns: 10 * conns,
        bytes_in: 100,
        bytes_out: 1,
        ..fake::destination(backend, 1)
    };
    let v = fake::vserver(
        "web",
        vec![
            fake::service(80, "rr", vec![dest("be1", true, 1), dest("be2", false, 2)]),
            fake::service(443, "rr", vec![dest("be1", true, 3)]),
        ],
    );
    let sample = Sample::from_model(&[v], None);
    let (own, backends) = &sample.vservers["web"];
    assert_eq!(*own, reading(6, 60, 303, 2, 3));
    assert_eq!(backends["be1"], reading(4, 40, 202, 2, 2));
    assert_eq!(backends["be2"], reading(2, 20, 101, 0, 1));
    assert_eq!(sample.ha, None);
}
