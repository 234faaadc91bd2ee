//! Fuzzes cluster.pb loading end to end: text or binary parsing, the required-field walk,
//! validation into domain types, and the proxy plane's capability check. Any panic is a bug:
//! a config is external input and must only ever produce errors.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_engine::config::{DataplaneKind, load_cluster};

fuzz_target!(|data: &[u8]| {
    let _ = load_cluster(data, None);
    let _ = load_cluster(data, Some(DataplaneKind::Proxy));
});
