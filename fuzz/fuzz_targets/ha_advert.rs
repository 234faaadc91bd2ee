//! Fuzzes the HA advert parser with raw IPv4 datagrams, without and with an advert key: it must
//! never panic; whatever it accepts unsigned must re-encode to the same 8 bytes (the parser and
//! the encoder agree), and whatever it accepts signed must re-sign to the same 32 bytes (so only
//! a datagram carrying the right MAC passes).
#![no_main]

use std::net::{IpAddr, Ipv4Addr};

use libfuzzer_sys::fuzz_target;
use seesaw_ha::advert::{Expect, SIGNED_LEN, parse_ipv4};
use seesaw_ha::auth::{AuthKeys, Key, Verifier};

fuzz_target!(|data: &[u8]| {
    let expect = Expect {
        local: Ipv4Addr::new(192, 0, 2, 1),
        peer: Ipv4Addr::new(192, 0, 2, 2),
        vrid: 60,
    };
    if let Ok(r) = parse_ipv4(data, &expect, None) {
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

    let first = Key::derive(b"the fuzzer's advert key, 32 bytes");
    let second = Key::derive(b"the fuzzer's second key, 32 bytes");
    let mut verifier = Verifier::new(AuthKeys {
        send: first,
        accept: Some(second),
    });
    if let Ok(r) = parse_ipv4(data, &expect, Some(&mut verifier)) {
        // Only reachable with a valid MAC (which a fuzzer cannot forge): the payload re-signs
        // byte-identically with one of the two keys (reserved interval bits clear).
        let ihl = usize::from(data[0] & 0x0f) * 4;
        let dst = Ipv4Addr::new(data[16], data[17], data[18], data[19]);
        let payload = &data[ihl..ihl + SIGNED_LEN];
        let counter = verifier.last_counter();
        assert_eq!(payload[8..16], counter.to_be_bytes());
        if data[ihl + 4] & 0xf0 == 0 {
            assert!(
                [first, second]
                    .iter()
                    .any(|k| r.advert.encode_signed(r.src, dst, k, counter)[..] == payload[..])
            );
        }
    }
});
