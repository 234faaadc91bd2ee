//! Signed adverts: round trip, tampering, wrong and second keys, replays, counters across a
//! restart, the mixed signed/unsigned cases, and hostile input against a verifying parser.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use super::*;
use crate::advert::{Advert, AdvertError, Expect, SIGNED_LEN, checksum, ipv4_datagram, parse_ipv4};

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
/// Some wall-clock microseconds (2023-11-14).
const NOW_US: u64 = 1_700_000_000_000_000;

/// `d` parsed by a fresh verifier that knows key 1 only.
fn parse_with_key_1(d: &[u8]) -> Result<crate::advert::Received, AdvertError> {
    parse_ipv4(d, &expect(), Some(&mut Verifier::new(keys(1, None))))
}

fn expect() -> Expect {
    Expect {
        local: LOCAL,
        peer: PEER,
        vrid: 60,
    }
}

fn key(b: u8) -> Key {
    Key::derive(&[b; 32])
}

fn keys(send: u8, accept: Option<u8>) -> AuthKeys {
    AuthKeys {
        send: key(send),
        accept: accept.map(key),
    }
}

fn advert(priority: u8) -> Advert {
    Advert::new(60, priority, Duration::from_millis(100))
}

/// A datagram from the peer to us, signed with `k` at `counter`.
fn signed(k: &Key, priority: u8, counter: u64) -> Vec<u8> {
    ipv4_datagram(
        PEER,
        LOCAL,
        &advert(priority).encode_signed(PEER, LOCAL, k, counter),
    )
}

#[test]
fn signed_advert_round_trips_and_its_checksum_covers_all_32_bytes() {
    let payload = advert(100).encode_signed(PEER, LOCAL, &key(1), NOW_US);
    assert_eq!(payload.len(), SIGNED_LEN);
    assert_eq!(checksum(IpAddr::V4(PEER), IpAddr::V4(LOCAL), &payload), 0);
    // The first 8 bytes are the advert; its checksum differs from the unsigned one's.
    let plain = advert(100).encode(IpAddr::V4(PEER), IpAddr::V4(LOCAL));
    assert_eq!(payload[..6], plain[..6]);
    assert_eq!(payload[8..16], NOW_US.to_be_bytes());
    let mut v = Verifier::new(keys(1, None));
    let r = parse_ipv4(
        &ipv4_datagram(PEER, LOCAL, &payload),
        &expect(),
        Some(&mut v),
    )
    .expect("a signed advert verifies");
    assert_eq!((r.src, r.advert), (PEER, advert(100)));
    assert_eq!(v.last_counter(), NOW_US);
}

#[test]
fn a_tampered_byte_anywhere_in_the_payload_is_bad_mac() {
    let good = signed(&key(1), 100, NOW_US);
    for i in 20..good.len() {
        for flip in [0x01u8, 0x80] {
            let mut d = good.clone();
            d[i] ^= flip;
            // Fix the checksum so only the MAC can catch it (an attacker can always do that).
            d[26] = 0;
            d[27] = 0;
            let sum = checksum(IpAddr::V4(PEER), IpAddr::V4(LOCAL), &d[20..]);
            d[26..28].copy_from_slice(&sum.to_be_bytes());
            if d == good {
                continue;
            }
            let mut v = Verifier::new(keys(1, None));
            assert_eq!(
                parse_ipv4(&d, &expect(), Some(&mut v)),
                Err(AdvertError::BadMac),
                "byte {i} ^ {flip:#x}"
            );
            assert_eq!(v.last_counter(), 0);
        }
    }
    // Without fixing the checksum it is a checksum error, before any MAC work.
    let mut d = good.clone();
    d[40] ^= 1;
    assert_eq!(parse_with_key_1(&d), Err(AdvertError::Checksum));
}

#[test]
fn the_mac_binds_the_addresses() {
    // A signed advert the peer sent to someone else, re-addressed to us, does not verify.
    let payload = advert(0).encode_signed(PEER, Ipv4Addr::new(192, 0, 2, 9), &key(1), NOW_US);
    let mut d = ipv4_datagram(PEER, LOCAL, &payload);
    d[26] = 0;
    d[27] = 0;
    let sum = checksum(IpAddr::V4(PEER), IpAddr::V4(LOCAL), &d[20..]);
    d[26..28].copy_from_slice(&sum.to_be_bytes());
    assert_eq!(parse_with_key_1(&d), Err(AdvertError::BadMac));
}

#[test]
fn a_wrong_key_is_bad_mac_and_the_accept_key_verifies() {
    let d = signed(&key(2), 100, NOW_US);
    assert_eq!(parse_with_key_1(&d), Err(AdvertError::BadMac));
    // Rotation step 1 (we accept the new key 2 while still signing with 1) and step 2 (we sign
    // with 2 and still accept 1): both verify the peer's advert signed with either.
    let mut step1 = Verifier::new(keys(1, Some(2)));
    assert!(parse_ipv4(&d, &expect(), Some(&mut step1)).is_ok());
    let mut step2 = Verifier::new(keys(2, Some(1)));
    assert!(parse_ipv4(&signed(&key(1), 100, NOW_US), &expect(), Some(&mut step2)).is_ok());
    assert!(
        parse_ipv4(
            &signed(&key(2), 100, NOW_US + 1),
            &expect(),
            Some(&mut step2)
        )
        .is_ok()
    );
    // A third key still fails.
    assert_eq!(
        parse_ipv4(
            &signed(&key(3), 100, NOW_US + 2),
            &expect(),
            Some(&mut step2)
        ),
        Err(AdvertError::BadMac)
    );
}

#[test]
fn a_replayed_advert_is_replay_and_an_older_counter_too() {
    let mut v = Verifier::new(keys(1, None));
    let first = signed(&key(1), 100, NOW_US);
    assert!(parse_ipv4(&first, &expect(), Some(&mut v)).is_ok());
    assert_eq!(
        parse_ipv4(&first, &expect(), Some(&mut v)),
        Err(AdvertError::Replay)
    );
    let older = signed(&key(1), 0, NOW_US - 1);
    assert_eq!(
        parse_ipv4(&older, &expect(), Some(&mut v)),
        Err(AdvertError::Replay)
    );
    let newer = signed(&key(1), 100, NOW_US + 1);
    assert!(parse_ipv4(&newer, &expect(), Some(&mut v)).is_ok());
    assert_eq!(v.last_counter(), NOW_US + 1);
    // A forged counter far in the future does not move the window: it fails the MAC first.
    let mut forged = signed(&key(2), 100, u64::MAX);
    forged[20 + 8..20 + 16].copy_from_slice(&u64::MAX.to_be_bytes());
    let _ = parse_ipv4(&forged, &expect(), Some(&mut v));
    assert_eq!(v.last_counter(), NOW_US + 1);
    // An advert that verifies but fails a later check does not move it either.
    let other_vrid = ipv4_datagram(
        PEER,
        LOCAL,
        &Advert::new(61, 100, Duration::from_millis(100)).encode_signed(
            PEER,
            LOCAL,
            &key(1),
            NOW_US + 5,
        ),
    );
    assert_eq!(
        parse_ipv4(&other_vrid, &expect(), Some(&mut v)),
        Err(AdvertError::Vrid(61))
    );
    assert_eq!(v.last_counter(), NOW_US + 1);
}

#[test]
fn counters_rise_within_a_run_and_across_a_restart() {
    let mut s = Signer::new(key(1));
    // Many adverts within one microsecond, and a clock stepped back: still strictly rising.
    let a = s.next_counter(NOW_US);
    let b = s.next_counter(NOW_US);
    let c = s.next_counter(NOW_US - 1_000_000);
    assert!(a < b && b < c, "{a} {b} {c}");
    assert_eq!(a, NOW_US);
    // A restarted sender forgot `last` but starts at the wall clock, which moved on (an advert
    // interval at least): the receiver, which kept its window, accepts it.
    let mut v = Verifier::new(keys(1, None));
    assert!(v.accept(c).is_ok());
    let mut restarted = Signer::new(key(1));
    let d = restarted.next_counter(NOW_US + 10_000);
    assert!(d > c);
    assert!(v.accept(d).is_ok());
    // The resign sentinel signs with the wall clock when ha is gone: above ha's last counter.
    let mut sentinel = Signer::new(key(1));
    let e = sentinel.next_counter(NOW_US + 20_000);
    let f = sentinel.next_counter(NOW_US + 20_000);
    assert!(v.accept(e).is_ok() && v.accept(f).is_ok());
    assert!(now_us() > NOW_US, "the wall clock is after 2023");
}

#[test]
fn unsigned_with_a_key_and_signed_without_one_are_refused() {
    let plain = ipv4_datagram(
        PEER,
        LOCAL,
        &advert(0).encode(IpAddr::V4(PEER), IpAddr::V4(LOCAL)),
    );
    let mut v = Verifier::new(keys(1, None));
    assert_eq!(
        parse_ipv4(&plain, &expect(), Some(&mut v)),
        Err(AdvertError::Unauthenticated)
    );
    assert!(parse_ipv4(&plain, &expect(), None).is_ok());
    assert_eq!(
        parse_ipv4(&signed(&key(1), 100, NOW_US), &expect(), None),
        Err(AdvertError::UnexpectedAuth)
    );
    // Other lengths stay length errors either way.
    let odd = ipv4_datagram(PEER, LOCAL, &[0x31; 16]);
    assert_eq!(
        parse_ipv4(&odd, &expect(), Some(&mut v)),
        Err(AdvertError::Length(16))
    );
}

#[test]
fn hostile_input_never_panics_with_a_key() {
    let mut v = Verifier::new(keys(1, Some(2)));
    let good = signed(&key(1), 100, NOW_US);
    // Every prefix, and every payload length 0..64 (zeros and the good bytes repeated).
    for n in 0..good.len() {
        assert!(
            parse_ipv4(&good[..n], &expect(), Some(&mut v)).is_err(),
            "prefix {n}"
        );
    }
    for len in 0..64 {
        let payload: Vec<u8> = good[20..].iter().copied().cycle().take(len).collect();
        let _ = parse_ipv4(
            &ipv4_datagram(PEER, LOCAL, &payload),
            &expect(),
            Some(&mut v),
        );
        let _ = parse_ipv4(
            &ipv4_datagram(PEER, LOCAL, &vec![0; len]),
            &expect(),
            Some(&mut v),
        );
        let _ = v.check_mac(PEER, LOCAL, &payload);
    }
    // Random bytes and random mutations of a good signed datagram.
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut accepted = 0;
    for round in 0..20_000u32 {
        let d: Vec<u8> = if round % 2 == 0 {
            let len = usize::try_from(next() % 80).expect("len");
            (0..len).map(|_| (next() & 0xff) as u8).collect()
        } else {
            let mut d = good.clone();
            let i = usize::try_from(next() % d.len() as u64).expect("index");
            d[i] = (next() & 0xff) as u8;
            d
        };
        let mut fresh = Verifier::new(keys(1, Some(2)));
        if parse_ipv4(&d, &expect(), Some(&mut fresh)).is_ok() {
            accepted += 1;
        }
    }
    // Only mutations of the IP id/TOS bytes (or a byte rewritten to itself) still verify.
    assert!(accepted < 2_000, "accepted {accepted}");
}

#[test]
fn keys_hex_round_trip_and_never_show_in_debug() {
    let k = key(7);
    assert_eq!(Key::from_hex(&k.to_hex()), Some(k));
    assert_eq!(k.to_hex().len(), 64);
    assert_eq!(Key::from_hex("00"), None);
    assert_eq!(Key::from_hex(&"g".repeat(64)), None);
    assert_eq!(Key::from_hex(&"é".repeat(32)), None);
    assert_eq!(
        format!("{:?}", keys(7, Some(8))),
        "AuthKeys { send: Key(..), accept: Some(Key(..)) }"
    );
    // The derived key is SHA-256 of the file's bytes: a trailing newline is part of the key.
    assert_ne!(
        Key::derive(b"secret secret secret secret 32b!"),
        Key::derive(b"secret secret secret secret 32b!\n")
    );
}

#[test]
fn strangers_and_other_vrids_are_not_authentication_alarms() {
    let stranger = Ipv4Addr::new(192, 0, 2, 99);
    let mut v = Verifier::new(keys(1, None));
    // Another VRRP router on the segment (unsigned, its own VRID): a vrid drop.
    let other = Advert::new(7, 100, Duration::from_millis(1000));
    let d = ipv4_datagram(
        stranger,
        LOCAL,
        &other.encode(IpAddr::V4(stranger), IpAddr::V4(LOCAL)),
    );
    assert_eq!(
        parse_ipv4(&d, &expect(), Some(&mut v)),
        Err(AdvertError::Vrid(7))
    );
    // Someone signing on our VRID from another address: not our peer, whatever its MAC.
    let d = ipv4_datagram(
        stranger,
        LOCAL,
        &advert(0).encode_signed(stranger, LOCAL, &key(1), NOW_US),
    );
    assert_eq!(
        parse_ipv4(&d, &expect(), Some(&mut v)),
        Err(AdvertError::NotPeer(IpAddr::V4(stranger)))
    );
    let unsigned = ipv4_datagram(
        stranger,
        LOCAL,
        &advert(0).encode(IpAddr::V4(stranger), IpAddr::V4(LOCAL)),
    );
    assert_eq!(
        parse_ipv4(&unsigned, &expect(), Some(&mut v)),
        Err(AdvertError::NotPeer(IpAddr::V4(stranger)))
    );
    assert_eq!(
        parse_ipv4(&d, &expect(), None),
        Err(AdvertError::NotPeer(IpAddr::V4(stranger)))
    );
}
