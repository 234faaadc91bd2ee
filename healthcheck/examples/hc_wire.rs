//! What the probe statistics cost on the wire (not shipped; `bench/healthcheck.sh wire` runs it):
//! one full resync of N checks, as `HealthBatch` bytes and conversion + encoding time, with the
//! statistics every result carries and with them stripped (the format before they existed).
//! Prints one JSON line; times are the median of `--reps` encodings.
#![allow(clippy::print_stdout, reason = "a benchmark tool prints its results")]

use std::time::{Duration, Instant};

use prost::Message;
use seesaw_healthcheck::check::{Batch, CheckId, CheckResult, ProbeStats};
use seesaw_healthcheck::engine_link::batch_to_proto;
use seesaw_proto::engine as pb;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let checks = arg("--checks", 20_000);
    let reps = arg("--reps", 7).max(1);
    // A day of 1 s probes per check, latencies spread over the buckets like a loaded backend.
    let results: Vec<CheckResult> = (0..checks)
        .map(|i| {
            let mut stats = ProbeStats::default();
            for p in 0..86_400u64 / 600 {
                let us = 200 + (p * 7919 + i as u64 * 104_729) % 30_000;
                stats.observe(p % 97 != 0, Duration::from_micros(us));
            }
            // Scale the counts to a day's worth without 86,400 loop turns per check.
            stats.successes *= 600;
            stats.failures *= 600;
            stats.latency_sum_us *= 600;
            for c in &mut stats.latency_counts {
                *c *= 600;
            }
            CheckResult {
                id: CheckId(i as u64 + 1),
                healthy: true,
                message: format!(
                    "http 10.{}.{}.{}:80: 200 OK",
                    i >> 16 & 255,
                    i >> 8 & 255,
                    i & 255
                ),
                checked_at_ms: 1_763_700_000_000,
                stats,
            }
        })
        .collect();
    let batch = Batch {
        results,
        full: true,
    };
    let mut with = Vec::new();
    let mut without = Vec::new();
    let (mut bytes_with, mut bytes_without) = (0, 0);
    for _ in 0..reps {
        let t = Instant::now();
        let pb = batch_to_proto(&batch);
        let buf = pb.encode_to_vec();
        with.push(t.elapsed());
        bytes_with = buf.len();

        // The conversion as it was before the statistics existed.
        let t = Instant::now();
        let pb = pb::HealthBatch {
            results: batch
                .results
                .iter()
                .map(|r| pb::HealthResult {
                    id: r.id.0,
                    healthy: r.healthy,
                    message: r.message.clone(),
                    checked_at_ms: r.checked_at_ms,
                    stats: None,
                })
                .collect(),
            full: batch.full,
            latency_bounds_us: Vec::new(),
        };
        let buf = pb.encode_to_vec();
        without.push(t.elapsed());
        bytes_without = buf.len();
    }
    let (with, without) = (median(with), median(without));
    println!(
        "{{\"checks\": {checks}, \"reps\": {reps}, \"bytes_with_stats\": {bytes_with}, \
         \"bytes_without_stats\": {bytes_without}, \"bytes_per_check_added\": {:.1}, \
         \"encode_ms_with_stats\": {:.2}, \"encode_ms_without_stats\": {:.2}}}",
        (bytes_with - bytes_without) as f64 / checks as f64,
        with.as_secs_f64() * 1e3,
        without.as_secs_f64() * 1e3
    );
}
