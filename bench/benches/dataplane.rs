//! Divan benches: payload-rule evaluation (100 rules) and the Maglev table build
//! (65537 slots × 1,000 backends). Run: `cargo bench -p seesaw-bench --bench dataplane`.

use divan::{Bencher, black_box};
use seesaw_bench::{mixed_rules, version_rules};
use seesaw_ncc::dataplane::proxy::rules::Compiled;
use seesaw_ncc::model::ServiceOpts;
use seesaw_ncc::sched::maglev;

fn main() {
    divan::main();
}

fn packets() -> Vec<Vec<u8>> {
    (0..64u16)
        .map(|i| {
            let mut p = vec![0u8; 64];
            p[4..6].copy_from_slice(&(i * 3).to_be_bytes());
            p[0] = i as u8;
            p
        })
        .collect()
}

/// 100 `==` rules on one field (merged into one dispatch), 64-byte datagrams, mixed hits/misses.
#[divan::bench]
fn rules_100_version(b: Bencher) {
    bench_route(b, &version_rules());
}

/// 100 two-condition rules that are all evaluated (no match), 64-byte datagrams.
#[divan::bench]
fn rules_100_mixed_worst_case(b: Bencher) {
    bench_route(b, &mixed_rules());
}

/// Routes the 64 packets of `packets()` in turn through the compiled `rules`.
fn bench_route(b: Bencher, rules: &ServiceOpts) {
    let c = Compiled::compile(rules).expect("valid rules");
    let ps = packets();
    let mut i = 0usize;
    b.bench_local(|| {
        i = (i + 1) & 63;
        black_box(c.route(black_box(&ps[i]), None))
    });
}

/// Maglev build: 65537 slots, 1,000 equal backends.
#[divan::bench(sample_count = 30)]
fn maglev_build_65537x1000(b: Bencher) {
    let backends: Vec<(u64, u32)> = (0..1000u32)
        .map(|i| (maglev::key_hash(&i.to_be_bytes()), 1))
        .collect();
    b.bench(|| black_box(maglev::build(black_box(&backends), 65_537)));
}

/// Maglev derive: 1,000 equal backends (131,071 slots), one removed, from the previous table.
#[divan::bench(sample_count = 30)]
fn maglev_derive_one_of_1000_removed(b: Bencher) {
    let backends: Vec<(u64, u32)> = (0..1000u32)
        .map(|i| (maglev::key_hash(&i.to_be_bytes()), 1))
        .collect();
    let prev: Vec<u64> = maglev::build(&backends, maglev::table_size(backends.len()))
        .into_iter()
        .map(|i| backends[i as usize].0)
        .collect();
    let less = &backends[1..];
    b.bench(|| black_box(maglev::derive(black_box(&prev), black_box(less))));
}
