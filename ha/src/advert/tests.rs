//! Golden bytes (checksums computed independently, by hand and with a Python one-liner) and
//! hostile-input tests for the advert parser.

use super::*;

const LOCAL: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
const PEER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);

fn expect() -> Expect {
    Expect {
        local: LOCAL,
        peer: PEER,
        vrid: 60,
    }
}

/// A 20-byte IPv4 header (no options) plus `payload`, from `src` to `dst` with `ttl`.
fn datagram(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let total = u16::try_from(20 + payload.len()).expect("small");
    let mut d = vec![0x45, 0];
    d.extend_from_slice(&total.to_be_bytes());
    d.extend_from_slice(&[0, 0, 0x40, 0, ttl, PROTOCOL, 0, 0]);
    d.extend_from_slice(&src.octets());
    d.extend_from_slice(&dst.octets());
    d.extend_from_slice(payload);
    d
}

fn good() -> Vec<u8> {
    let a = Advert {
        vrid: 60,
        priority: 1,
        interval_cs: 1,
    };
    datagram(
        PEER,
        LOCAL,
        255,
        &a.encode(IpAddr::V4(PEER), IpAddr::V4(LOCAL)),
    )
}

#[test]
fn golden_seesaw_default_multicast_advert() {
    // Seesaw defaults: VRID 60, priority 255, 500 ms = 50 cs, to 224.0.0.18.
    let a = Advert::new(60, 255, Duration::from_millis(500));
    assert_eq!(a.interval_cs, 50);
    let b = a.encode(IpAddr::V4(LOCAL), IpAddr::V4(MULTICAST_V4));
    assert_eq!(b, [0x31, 0x3c, 0xff, 0x00, 0x00, 0x32, 0x2d, 0x04]);
    // A correct checksum sums to zero.
    assert_eq!(checksum(IpAddr::V4(LOCAL), IpAddr::V4(MULTICAST_V4), &b), 0);
}

#[test]
fn golden_unicast_10ms_advert() {
    let a = Advert::new(60, 1, Duration::from_millis(10));
    let b = a.encode(IpAddr::V4(PEER), IpAddr::V4(LOCAL));
    assert_eq!(b, [0x31, 0x3c, 0x01, 0x00, 0x00, 0x01, 0x49, 0x46]);
}

#[test]
fn golden_ipv6_pseudo_header() {
    let src: IpAddr = "2001:db8::1".parse().expect("v6");
    let dst: IpAddr = "ff02::12".parse().expect("v6");
    let a = Advert {
        vrid: 7,
        priority: 100,
        interval_cs: 10,
    };
    assert_eq!(
        a.encode(src, dst),
        [0x31, 0x07, 0x64, 0x00, 0x00, 0x0a, 0x3d, 0xa7]
    );
}

#[test]
fn interval_rounds_and_clamps_to_the_field() {
    assert_eq!(
        Advert::new(1, 1, Duration::from_millis(100)).interval_cs,
        10
    );
    assert_eq!(Advert::new(1, 1, Duration::from_millis(5)).interval_cs, 1);
    assert_eq!(
        Advert::new(1, 1, Duration::from_secs(100)).interval_cs,
        4095
    );
    assert_eq!(
        Advert::new(1, 1, Duration::from_millis(250)).interval(),
        Duration::from_millis(250)
    );
}

#[test]
fn parses_a_good_advert() {
    let r = parse_ipv4(&good(), &expect(), None).expect("good advert");
    assert_eq!(r.src, PEER);
    assert_eq!(
        r.advert,
        Advert {
            vrid: 60,
            priority: 1,
            interval_cs: 1
        }
    );
}

#[test]
fn every_receive_check_drops_what_it_should() {
    let e = expect();
    let enc = |a: Advert, src: Ipv4Addr| a.encode(IpAddr::V4(src), IpAddr::V4(LOCAL));
    let base = Advert {
        vrid: 60,
        priority: 100,
        interval_cs: 10,
    };

    // Wrong length: 9 bytes, 7 bytes, an address list.
    let mut long = enc(base, PEER).to_vec();
    long.push(0);
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &long), &e, None),
        Err(AdvertError::Length(9))
    );
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &enc(base, PEER)[..7]), &e, None),
        Err(AdvertError::Length(7))
    );
    // Own source.
    assert_eq!(
        parse_ipv4(&datagram(LOCAL, LOCAL, 255, &enc(base, LOCAL)), &e, None),
        Err(AdvertError::OwnAddress)
    );
    // TTL 254: forwarded by a router.
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 254, &enc(base, PEER)), &e, None),
        Err(AdvertError::Ttl(254))
    );
    // Checksum: any flipped bit.
    let mut bad = enc(base, PEER);
    bad[2] ^= 0x01;
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &bad), &e, None),
        Err(AdvertError::Checksum)
    );
    // The checksum covers the pseudo-header: the same bytes to another destination fail.
    assert_eq!(
        parse_ipv4(
            &datagram(PEER, MULTICAST_V4, 255, &enc(base, PEER)),
            &e,
            None
        ),
        Err(AdvertError::Checksum)
    );
    // Version/type (re-checksummed so only that check can fail).
    let mut v2 = enc(base, PEER);
    v2[0] = 0x21;
    v2[6] = 0;
    v2[7] = 0;
    let s = checksum(IpAddr::V4(PEER), IpAddr::V4(LOCAL), &v2);
    v2[6..8].copy_from_slice(&s.to_be_bytes());
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &v2), &e, None),
        Err(AdvertError::VersionType(0x21))
    );
    // VRID.
    let other = Advert { vrid: 61, ..base };
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &enc(other, PEER)), &e, None),
        Err(AdvertError::Vrid(61))
    );
    // A third node.
    let stranger = Ipv4Addr::new(192, 0, 2, 99);
    assert_eq!(
        parse_ipv4(
            &datagram(stranger, LOCAL, 255, &enc(base, stranger)),
            &e,
            None
        ),
        Err(AdvertError::NotPeer(IpAddr::V4(stranger)))
    );
    // Interval 0.
    let zero = Advert {
        interval_cs: 0,
        ..base
    };
    assert_eq!(
        parse_ipv4(&datagram(PEER, LOCAL, 255, &enc(zero, PEER)), &e, None),
        Err(AdvertError::ZeroInterval)
    );
}

#[test]
fn hostile_ip_headers() {
    let e = expect();
    let g = good();
    // Empty, truncated headers, every prefix of a good datagram.
    for n in 0..g.len() {
        assert!(parse_ipv4(&g[..n], &e, None).is_err(), "prefix {n} parsed");
    }
    // The good datagram with `bytes` written at offset `at`.
    let with = |at: usize, bytes: &[u8]| {
        let mut d = g.clone();
        d[at..at + bytes.len()].copy_from_slice(bytes);
        d
    };
    for (what, d, want) in [
        (
            "IPv6 version nibble",
            with(0, &[0x65]),
            AdvertError::MalformedIp,
        ),
        ("IHL below 5", with(0, &[0x44]), AdvertError::MalformedIp),
        (
            "IHL past the end",
            with(0, &[0x4f]),
            AdvertError::MalformedIp,
        ),
        (
            "total length larger than the datagram",
            with(2, &1000u16.to_be_bytes()),
            AdvertError::MalformedIp,
        ),
        (
            "total length smaller than the header",
            with(2, &10u16.to_be_bytes()),
            AdvertError::MalformedIp,
        ),
        ("more fragments", with(6, &[0x20]), AdvertError::Fragment),
        ("a fragment offset", with(7, &[0x01]), AdvertError::Fragment),
        (
            "another protocol",
            with(9, &[17]),
            AdvertError::Protocol(17),
        ),
    ] {
        assert_eq!(parse_ipv4(&d, &e, None), Err(want), "{what}");
    }
    // Total length shorter than the datagram: trailing junk is not part of the advert.
    let mut padded = g.clone();
    padded.extend_from_slice(&[0xde, 0xad]);
    assert!(parse_ipv4(&padded, &e, None).is_ok());
    // IP options (IHL 6) are skipped correctly.
    let mut opts = g[..20].to_vec();
    opts[0] = 0x46;
    opts.extend_from_slice(&[1, 1, 1, 1]);
    opts.extend_from_slice(&g[20..]);
    let total = u16::try_from(opts.len()).expect("small");
    opts[2..4].copy_from_slice(&total.to_be_bytes());
    assert!(parse_ipv4(&opts, &e, None).is_ok());
}

#[test]
fn random_mutations_never_panic_and_rarely_pass() {
    // A bounded xorshift walk over single- and multi-byte mutations of a good datagram.
    let e = expect();
    let g = good();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut accepted = 0u32;
    for _ in 0..50_000 {
        let mut d = g.clone();
        let flips = 1 + next() % 4;
        for _ in 0..flips {
            let i = usize::try_from(next() % d.len() as u64).expect("index");
            d[i] = (next() & 0xff) as u8;
        }
        let cut = usize::try_from(next() % (d.len() as u64 + 1)).expect("len");
        d.truncate(cut.max(d.len() - 2));
        if let Ok(r) = parse_ipv4(&d, &e, None) {
            // Anything accepted is still from the peer, for our VRID, with a sane interval.
            assert_eq!(r.src, PEER);
            assert_eq!(r.advert.vrid, 60);
            assert!(r.advert.interval_cs >= 1);
            accepted += 1;
        }
    }
    // Mutations that hit only the id/TOS bytes or rewrite a byte to its own value pass; a
    // checksum-blind parser would accept far more.
    assert!(accepted < 10_000, "accepted {accepted} mutated datagrams");
}

#[test]
fn reserved_interval_bits_are_ignored_on_receipt() {
    // Found by the fuzzer: a valid checksum over an interval field with reserved bits set.
    let d = [
        0x45, 0, 0, 0x1c, 0, 0, 0x40, 0, 0xff, 0x70, 0, 0, 192, 0, 2, 2, 192, 0, 2, 1, 0x31, 0x3c,
        0, 0, 0x49, 0x01, 0x01, 0x46,
    ];
    let r = parse_ipv4(&d, &expect(), None).expect("valid apart from reserved bits");
    assert_eq!(r.advert.interval_cs, 0x901);
    assert_eq!(r.advert.priority, 0);
}
