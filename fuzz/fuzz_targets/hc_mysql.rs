//! Fuzzes the MySQL check's greeting parser and its framing (`needed`), fed both whole and in the
//! prefixes a slow server would deliver.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_healthcheck::codec::mysql::{needed, parse_greeting};

fuzz_target!(|data: &[u8]| {
    let _ = parse_greeting(data);
    for cut in [0, 3, 4, 5, data.len() / 2] {
        if let Some(prefix) = data.get(..cut) {
            let _ = needed(prefix);
            let _ = parse_greeting(prefix);
        }
    }
});
