//! Wire formats of the probes, free of I/O: requests are built and responses judged by pure
//! functions, so every parser of what a backend sends is unit-tested with hostile input and fuzzed
//! (`fuzz/fuzz_targets/hc_*.rs`). The probers (the `probe` module) only move bytes.

pub mod dns;
pub mod icmp;
pub mod mysql;
pub mod radius;
