//! Fuzzes the ICMP echo-reply parser in every framing (raw IPv4 with its header, ping socket,
//! ICMPv6): anything arriving on an ICMP socket must only ever be skipped or accepted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use seesaw_healthcheck::codec::icmp::parse_reply;

fuzz_target!(|data: &[u8]| {
    for (v6, ip_header) in [(false, true), (false, false), (true, false)] {
        let _ = parse_reply(data, v6, ip_header);
    }
});
