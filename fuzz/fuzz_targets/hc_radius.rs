//! Fuzzes the RADIUS check's response verification (length, attributes, identifier, Response
//! Authenticator, Message-Authenticator): a hostile server must only ever produce an error.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_healthcheck::codec::radius::check_response;

fuzz_target!(|data: &[u8]| {
    let id = data.get(1).copied().unwrap_or(0);
    let _ = check_response(data, id, b"0123456789abcdef", b"secret");
    let _ = check_response(data, id.wrapping_add(1), &[0; 16], b"");
});
