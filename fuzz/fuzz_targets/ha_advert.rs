//! Fuzzes the HA advert parser with raw IPv4 datagrams: it must never panic, and whatever it
//! accepts must re-encode to the same 8 bytes (the parser and the encoder agree).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use seesaw_ha::advert::{Expect, parse_ipv4};

fuzz_target!(|data: &[u8]| {
    let expect = Expect {
        local: Ipv4Addr::new(192, 0, 2, 1),
        peer: Ipv4Addr::new(192, 0, 2, 2),
        vrid: 60,
    };
    if let Ok(r) = parse_ipv4(data, &expect) {
        let ihl = usize::from(data[0] & 0x0f) * 4;
        let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
        let again = r.advert.encode(IpAddr::V4(r.src), IpAddr::V4(dst));
        // The top 4 bits of the interval are reserved and ignored on receipt (RFC 5798 §5.2.7);
        // with them clear, the re-encoded advert is byte-identical, checksum included.
        if data[ihl + 4] & 0xf0 == 0 {
            assert_eq!(&again[..], &data[ihl..ihl + 8]);
        } else {
            assert_eq!(again[4], data[ihl + 4] & 0x0f);
        }
    }
});
