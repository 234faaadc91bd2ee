//! Benchmark of the healthcheck process (not shipped): `bench/healthcheck.sh` runs it.
//!
//! - `hc_bench responder --ports N --first-port P`: TCP listeners on 127.0.77.1:P..P+N that accept
//!   hold each connection ~800 ms (the prober resets it; nobody keeps TIME_WAIT sockets).
//! - `hc_bench run --checks C --interval-ms I --secs S --ports N --first-port P`: the real
//!   `seesaw_healthcheck::run_with_prober` loop (one scheduler, batching outbox) on a
//!   current-thread runtime, with C TCP checks spread over the responders, a stub engine link,
//!   and a prober that times each probe start. Prints one JSON line: probes per second, failures,
//!   and the interval jitter (|gap between two starts of one check − interval|) p50/p99/max.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark tool prints its results"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use seesaw_healthcheck::Options;
use seesaw_healthcheck::check::{Batch, CheckSpec, ProbeOutcome, ProbeSpec};
use seesaw_healthcheck::engine_link::{EngineLink, EngineLinkError, check_from_proto};
use seesaw_healthcheck::probe::{NetProber, Prober};
use seesaw_proto::engine as pb;
use tokio_util::sync::CancellationToken;

/// A loopback address of its own, so the bench's ports do not collide with other listeners.
const RESPONDER_IP: std::net::Ipv4Addr = std::net::Ipv4Addr::new(127, 0, 77, 1);

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let ports = u16::try_from(arg(&args, "--ports", 16)).expect("--ports fits u16");
    let first = u16::try_from(arg(&args, "--first-port", 41000)).expect("--first-port fits u16");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    match args.get(1).map(String::as_str) {
        Some("responder") => rt.block_on(responder(first, ports, arg(&args, "--secs", 120))),
        Some("run") => rt.block_on(run(
            first,
            ports,
            arg(&args, "--checks", 20_000),
            arg(&args, "--interval-ms", 1000),
            arg(&args, "--secs", 20),
        )),
        _ => {
            eprintln!(
                "usage: hc_bench responder|run [--ports N] [--first-port P] [--checks C] [--interval-ms I] [--secs S]"
            );
            std::process::exit(64);
        }
    }
}

/// Accepts on every port until `secs` pass; each connection is held until the peer closes.
async fn responder(first: u16, ports: u16, secs: u64) {
    for p in first..first + ports {
        let l = tokio::net::TcpListener::bind((RESPONDER_IP, p))
            .await
            .unwrap_or_else(|e| panic!("bind {RESPONDER_IP}:{p}: {e}"));
        tokio::spawn(async move {
            // Hold each connection briefly (closing at once could reset it before the prober
            // sees it established), without a task per connection; the prober resets it first.
            let mut held = std::collections::VecDeque::new();
            while let Ok((s, _)) = l.accept().await {
                let now = tokio::time::Instant::now();
                let _ = s.set_zero_linger();
                held.push_back((now, s));
                while held
                    .front()
                    .is_some_and(|(t, _)| now - *t > Duration::from_millis(800))
                {
                    held.pop_front();
                }
            }
        });
    }
    eprintln!("responder on {RESPONDER_IP}:{first}..{}", first + ports - 1);
    tokio::time::sleep(Duration::from_secs(secs)).await;
}

/// The engine side: hands out the check set, counts what comes back.
struct StubEngine {
    checks: Vec<CheckSpec>,
    batches: AtomicU64,
    full: AtomicU64,
}

#[derive(Clone)]
struct Link(Arc<StubEngine>);

impl EngineLink for Link {
    async fn fetch(&self) -> Result<Vec<CheckSpec>, EngineLinkError> {
        Ok(self.0.checks.clone())
    }
    async fn report(&self, batch: &Batch) -> Result<(), EngineLinkError> {
        self.0.batches.fetch_add(1, Ordering::Relaxed);
        if batch.full {
            self.0.full.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Wraps the network prober and records when each check's probes start. A check is recognised
/// by the address of its `ProbeSpec`, which the scheduler keeps in one `Arc` per check.
#[derive(Clone)]
struct Timing {
    inner: NetProber,
    starts: Arc<Mutex<HashMap<usize, tokio::time::Instant>>>,
    jitter_us: Arc<Mutex<Vec<u64>>>,
    interval: Duration,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    last_failure: Arc<Mutex<String>>,
}

impl Prober for Timing {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeOutcome {
        let now = tokio::time::Instant::now();
        let key = std::ptr::from_ref(spec) as usize;
        let prev = self.starts.lock().expect("lock").insert(key, now);
        if let Some(prev) = prev {
            let gap = now - prev;
            let j = gap.abs_diff(self.interval);
            self.jitter_us
                .lock()
                .expect("lock")
                .push(u64::try_from(j.as_micros()).unwrap_or(u64::MAX));
        }
        let o = self.inner.probe(spec).await;
        if o.success {
            self.ok.fetch_add(1, Ordering::Relaxed);
        } else {
            self.failed.fetch_add(1, Ordering::Relaxed);
            o.message
                .clone_into(&mut self.last_failure.lock().expect("lock"));
        }
        o
    }
}

async fn run(first: u16, ports: u16, checks: u64, interval_ms: u64, secs: u64) {
    let specs: Vec<CheckSpec> = (0..checks)
        .map(|i| {
            let port = first + u16::try_from(i % u64::from(ports)).expect("port index");
            let addr = SocketAddr::from((RESPONDER_IP, port));
            check_from_proto(&pb::Check {
                id: i + 1,
                kind: pb::CheckKind::Tcp as i32,
                target: addr.ip().to_string(),
                port: u32::from(port),
                interval_ms: u32::try_from(interval_ms).expect("interval fits u32"),
                timeout_ms: 1000,
                ..Default::default()
            })
        })
        .collect();
    let engine = Arc::new(StubEngine {
        checks: specs,
        batches: AtomicU64::new(0),
        full: AtomicU64::new(0),
    });
    let interval = Duration::from_millis(interval_ms);
    let prober = Timing {
        inner: NetProber::new(false),
        starts: Arc::default(),
        jitter_us: Arc::default(),
        interval,
        ok: Arc::default(),
        failed: Arc::default(),
        last_failure: Arc::default(),
    };
    let shutdown = CancellationToken::new();
    let opts = Options {
        // Fetch once (the set never changes here); the periodic resync still runs every 15 s.
        fetch_interval: Duration::from_secs(3600),
        ..Options::default()
    };
    let task = tokio::spawn(seesaw_healthcheck::run_with_prober(
        opts,
        Link(engine.clone()),
        prober.clone(),
        shutdown.clone(),
    ));
    // Warm-up: the staggered start spreads the checks over one interval.
    let warmup = interval + Duration::from_millis(500);
    tokio::time::sleep(warmup).await;
    let ok0 = prober.ok.load(Ordering::Relaxed);
    let failed0 = prober.failed.load(Ordering::Relaxed);
    prober.jitter_us.lock().expect("lock").clear();
    let cpu0 = cpu_seconds();
    let t0 = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let ok = prober.ok.load(Ordering::Relaxed) - ok0;
    let failed = prober.failed.load(Ordering::Relaxed) - failed0;
    shutdown.cancel();
    let _ = task.await;
    let mut j = std::mem::take(&mut *prober.jitter_us.lock().expect("lock"));
    j.sort_unstable();
    let pct = |q: f64| -> f64 {
        if j.is_empty() {
            return f64::NAN;
        }
        let i = ((j.len() as f64 - 1.0) * q).round() as usize;
        j[i] as f64 / 1000.0
    };
    println!(
        "{{\"checks\":{checks},\"interval_ms\":{interval_ms},\"secs\":{elapsed:.1},\"probes_per_s\":{:.0},\"ok\":{ok},\"failed\":{failed},\"cpu_util\":{:.2},\"jitter_ms_p50\":{:.2},\"jitter_ms_p99\":{:.2},\"jitter_ms_max\":{:.2},\"batches\":{},\"full_resyncs\":{},\"last_failure\":{:?}}}",
        (ok + failed) as f64 / elapsed,
        cpu / elapsed,
        pct(0.5),
        pct(0.99),
        j.last().map_or(f64::NAN, |&m| m as f64 / 1000.0),
        engine.batches.load(Ordering::Relaxed),
        engine.full.load(Ordering::Relaxed),
        prober.last_failure.lock().expect("lock").as_str(),
    );
}

/// User + system CPU time of this process, from /proc/self/stat.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}
