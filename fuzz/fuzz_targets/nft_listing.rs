//! Fuzzes the read-back of the IPVS plane's firewall table (`nft list table inet seesaw_ipvs`,
//! adopted by a new ncc): any text must yield marks or nothing, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_ncc::dataplane::ipvs::firewall;

fuzz_target!(|data: &[u8]| {
    let _ = firewall::marks_in_listing(&String::from_utf8_lossy(data));
});
