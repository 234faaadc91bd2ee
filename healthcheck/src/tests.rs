//! Driver tests: the whole loop ([`run_with_prober`]) against the fake engine, on paused time:
//! batching of transitions, refetches that keep state, full resyncs, and engine outages.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::sleep;

use super::*;
use crate::check::CheckId;
use crate::engine_link::FakeEngineLink;
use crate::test_support::{Behaviour, ScriptedProber, addr, tcp_check};

struct Harness {
    engine: FakeEngineLink,
    prober: ScriptedProber,
    shutdown: CancellationToken,
    task: JoinHandle<()>,
}

impl Harness {
    fn start(checks: Vec<seesaw_proto::engine::Check>) -> Self {
        let engine = FakeEngineLink::new();
        engine.state().checks = checks;
        let prober = ScriptedProber::default();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(run_with_prober(
            // These tests were written against a 5 s refetch; production uses 1 s.
            Options {
                fetch_interval: Duration::from_secs(5),
                ..Options::default()
            },
            engine.clone(),
            prober.clone(),
            shutdown.clone(),
        ));
        Self {
            engine,
            prober,
            shutdown,
            task,
        }
    }

    /// A harness on checks 1 and 2 (of addresses 1 and 2, every second, rise 1 but check 1's
    /// `rise1`).
    fn two_checks(rise1: u32) -> Self {
        Self::start(vec![
            tcp_check(1, 1, 1000, rise1, 0),
            tcp_check(2, 2, 1000, 1, 0),
        ])
    }

    /// A harness on check 1 (of address 1, every second, rise 1), address 1 answering.
    fn one_up() -> Self {
        let h = Self::start(vec![tcp_check(1, 1, 1000, 1, 0)]);
        h.up(&[1]);
        h
    }

    /// The addresses numbered `ns` answer from now on.
    fn up(&self, ns: &[u8]) {
        for n in ns {
            self.prober.set(addr(*n), Behaviour::Up);
        }
    }

    /// (id, healthy, full) of every batch delivered since batch number `from`.
    fn batches_since(&self, from: usize) -> Vec<(Vec<(u64, bool)>, bool)> {
        self.engine.state().batches[from..]
            .iter()
            .map(|b| {
                (
                    b.results.iter().map(|r| (r.id.0, r.healthy)).collect(),
                    b.full,
                )
            })
            .collect()
    }

    fn batch_count(&self) -> usize {
        self.engine.state().batches.len()
    }

    fn engine_view(&self) -> Vec<(u64, bool)> {
        self.engine
            .state()
            .health
            .values()
            .map(|r| (r.id.0, r.healthy))
            .collect()
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("run panicked");
    }
}

#[tokio::test(start_paused = true)]
async fn transitions_are_batched_and_a_lost_server_is_reported() {
    let h = Harness::two_checks(1);
    h.up(&[1, 2]);
    sleep(Duration::from_millis(50)).await;
    // The first fetch triggers a full resync, empty since nothing has a verdict yet.
    assert_eq!(h.batches_since(0), [(vec![], true)]);

    // Probes at 0 and 500 ms: two transitions, two batches (each flushed 100 ms after queueing).
    sleep(Duration::from_millis(700)).await;
    assert_eq!(
        h.batches_since(1),
        [(vec![(1, true)], false), (vec![(2, true)], false)]
    );

    // Server 2 goes away: its next probe (1.5 s) fails and is reported within 100 ms.
    h.prober.set(addr(2), Behaviour::Down);
    let n = h.batch_count();
    sleep(Duration::from_millis(900)).await;
    assert_eq!(h.batches_since(n), [(vec![(2, false)], false)]);
    assert_eq!(h.engine_view(), [(1, true), (2, false)]);
    let msg = h.engine.state().health[&CheckId(2)].message.clone();
    assert_eq!(msg, format!("down {}", addr(2)));
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn many_transitions_share_one_batch() {
    // 30 checks with a 600 ms interval start 20 ms apart: all rise within 600 ms, and each batch
    // holds up to 100 ms of transitions.
    let checks: Vec<_> = (1..=30).map(|i| tcp_check(i, i as u8, 600, 1, 0)).collect();
    let h = Harness::start(checks);
    for i in 1..=30 {
        h.prober.set(addr(i), Behaviour::Up);
    }
    sleep(Duration::from_millis(800)).await;
    let batches = h.batches_since(1);
    assert!(batches.len() < 30 / 2, "{batches:?}");
    assert_eq!(batches.iter().map(|(r, _)| r.len()).sum::<usize>(), 30);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn refetch_keeps_state_of_surviving_checks() {
    let h = Harness::two_checks(3);
    h.up(&[1, 2]);
    sleep(Duration::from_millis(2600)).await;
    assert_eq!(h.engine_view(), [(1, true), (2, true)]);

    // The engine drops check 2, changes check 1 and adds check 3; the refetch at 5 s applies it.
    {
        let mut st = h.engine.state();
        let mut changed = tcp_check(1, 1, 1000, 3, 0);
        changed.description = "renamed".into();
        changed.retries = 2;
        st.checks = vec![changed, tcp_check(3, 3, 1000, 1, 0)];
    }
    h.up(&[3]);
    let n = h.batch_count();
    sleep(Duration::from_millis(5000)).await;
    // Only check 3 is new. Had check 1 restarted from Unknown, rise 3 would report it again.
    assert_eq!(h.batches_since(n), [(vec![(3, true)], false)]);
    let calls_2 = h.prober.calls_to(addr(2)).len();
    sleep(Duration::from_millis(2000)).await;
    assert_eq!(h.prober.calls_to(addr(2)).len(), calls_2, "check 2 stopped");
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn periodic_full_resync() {
    let h = Harness::two_checks(1);
    h.up(&[1]);
    sleep(Duration::from_millis(15_050)).await;
    let fulls: Vec<_> = h.batches_since(0).into_iter().filter(|(_, f)| *f).collect();
    assert_eq!(fulls, [(vec![], true), (vec![(1, true), (2, false)], true)]);
    // Refetched every 5 s while the engine is up (0, 5, 10, 15 s).
    assert_eq!(h.engine.state().fetches, 4);
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn engine_outage_keeps_probing_and_resyncs_when_back() {
    let h = Harness::one_up();
    sleep(Duration::from_millis(500)).await;
    assert_eq!(h.engine_view(), [(1, true)]);

    // The engine dies and restarts with no memory of health; meanwhile the check flips.
    h.engine.state().down = true;
    h.prober.set(addr(1), Behaviour::Down);
    let fetches = h.engine.state().fetches;
    let n = h.batch_count();
    sleep(Duration::from_millis(3000)).await;
    assert_eq!(h.batch_count(), n, "nothing delivered while down");
    let probes_before = h.prober.calls_to(addr(1)).len();
    {
        let mut st = h.engine.state();
        st.down = false;
        st.health.clear();
    }
    // Retries every second: within ~1 s the fetch succeeds and a full resync follows at once.
    sleep(Duration::from_millis(1100)).await;
    assert!(h.engine.state().fetches > fetches);
    let since = h.batches_since(n);
    assert!(since.contains(&(vec![(1, false)], true)), "{since:?}");
    assert_eq!(h.engine_view(), [(1, false)]);
    assert!(
        h.prober.calls_to(addr(1)).len() > probes_before,
        "probing went on"
    );
    h.stop().await;
}

#[tokio::test(start_paused = true)]
async fn failed_report_is_retried() {
    let h = Harness::one_up();
    sleep(Duration::from_millis(50)).await;
    // The engine goes away just before the first transition's batch (due at 100 ms).
    h.engine.state().down = true;
    sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.batches_since(0), [(vec![], true)]);
    h.engine.state().down = false;
    sleep(Duration::from_millis(1100)).await;
    assert_eq!(h.engine_view(), [(1, true)]);
    let incremental: Vec<_> = h.batches_since(1).into_iter().filter(|(_, f)| !f).collect();
    assert_eq!(
        incremental,
        [(vec![(1, true)], false)],
        "the failed batch was kept"
    );
    h.stop().await;
}
