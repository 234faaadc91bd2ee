//! Fuzzes the DNS check's verdict on a response (what a backend sends is untrusted): decoding,
//! the id/question match and the answer comparison for each kind of expectation must only ever
//! produce a verdict, never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_healthcheck::codec::dns::{check_response, fqdn, parse_expect};
use seesaw_healthcheck::hickory_proto::rr::RecordType;

fuzz_target!(|data: &[u8]| {
    let Ok(name) = fqdn("www.example.test") else {
        return;
    };
    let id = data
        .get(..2)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    for (qtype, receive) in [
        (RecordType::A, "127.0.0.5"),
        (RecordType::AAAA, "::1"),
        (RecordType::CNAME, "real.example.test"),
        (RecordType::TXT, "v=ok"),
        (RecordType::MX, ""),
    ] {
        let expect = parse_expect(qtype, receive).ok().flatten();
        let _ = check_response(data, id, &name, qtype, expect.as_ref());
    }
});
