//! Fuzzes ncc's decoder of `nft -j list table` output (and the registry comments inside it):
//! any input must decode to a state or an error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::nftables::parse;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse::parse_table(text);
        let _ = parse::parse_svc_comment(text);
    }
});
