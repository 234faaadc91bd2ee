//! Golden bytes for the rtnetlink messages ncc sends (written by hand from the layout in the
//! module doc), decoding of kernel-shaped dumps, and hostile input. Little-endian hosts only.
#![cfg(target_endian = "little")]

use super::*;

fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

#[test]
fn new_ipv4_address_is_marked_ours() {
    // 16 hdr + 8 ifaddrmsg + LOCAL 8 + ADDRESS 8 + FLAGS 8 + PROTO 8 = 56.
    let want = hex("38000000 | 1400 | 0506 | 03000000 | 00000000 |
         02 20 00 00 | 07000000 |
         0800 0200 c0000201 | 0800 0100 c0000201 | 0800 0800 00000000 | 0500 0b00 5e 000000");
    assert_eq!(
        encode_addr(true, 3, 7, "192.0.2.1".parse().unwrap(), 32),
        want
    );
}

#[test]
fn new_ipv6_address_has_nodad_and_delete_is_plain() {
    let want = hex("3c000000 | 1400 | 0506 | 04000000 | 00000000 |
         0a 80 02 00 | 02000000 |
         1400 0100 20010db8 00000000 00000000 00000001 | 0800 0800 02000000 | 0500 0b00 5e 000000");
    assert_eq!(
        encode_addr(true, 4, 2, "2001:db8::1".parse().unwrap(), 128),
        want
    );
    let want = hex("28000000 | 1500 | 0500 | 05000000 | 00000000 |
         02 20 00 00 | 07000000 | 0800 0200 c0000201 | 0800 0100 c0000201");
    assert_eq!(
        encode_addr(false, 5, 7, "192.0.2.1".parse().unwrap(), 32),
        want
    );
}

#[test]
fn dump_and_link_messages() {
    assert_eq!(
        encode_addr_dump(6),
        hex("18000000 | 1600 | 0103 | 06000000 | 00000000 | 00000000 00000000")
    );
    // ifinfomsg: family 0, pad, type 0, index 3, flags IFF_UP, change IFF_UP.
    assert_eq!(
        encode_link_up(7, 3, true),
        hex(
            "20000000 | 1000 | 0500 | 07000000 | 00000000 | 00 00 0000 | 03000000 | 01000000 | 01000000"
        )
    );
    assert_eq!(
        encode_link_up(8, 3, false),
        hex(
            "20000000 | 1000 | 0500 | 08000000 | 00000000 | 00 00 0000 | 03000000 | 00000000 | 01000000"
        )
    );
}

#[test]
fn decodes_a_dump_with_ours_theirs_ipv6_and_done() {
    let ours = hex("38000000 1400 0200 01000000 00000000 02 20 00 00 07000000
         0800 0200 c0000201 0800 0100 c0000201 0800 0800 00000000 0500 0b00 5e 000000");
    // The kernel's own ::1 on lo (IFA_PROTO 1, with a cacheinfo attribute we skip).
    let lo6 = hex("40000000 1400 0200 01000000 00000000 0a 80 80 fe 01000000
         1400 0100 00000000 00000000 00000000 00000001 1400 0600 ffffffff ffffffff 00000000 00000000
         ");
    let lo6 = [&lo6[..], &hex("")[..]].concat();
    let done = hex("14000000 0300 0200 01000000 00000000 00000000");
    let all = [ours, lo6, done].concat();
    assert_eq!(
        decode(&all).unwrap(),
        [
            RtReply::Addr(HeldAddr {
                index: 7,
                addr: "192.0.2.1".parse().unwrap(),
                prefix: 32,
                proto: SEESAW_PROTO
            }),
            RtReply::Addr(HeldAddr {
                index: 1,
                addr: "::1".parse().unwrap(),
                prefix: 128,
                proto: 0
            }),
            RtReply::Done,
        ]
    );
    let eexist =
        hex("24000000 0200 0000 03000000 00000000 efffffff 38000000 1400 0506 03000000 00000000");
    assert_eq!(decode(&eexist).unwrap(), [RtReply::Ack(-17)]);
}

#[test]
fn hostile_dumps_are_errors_never_panics() {
    let good = encode_addr(true, 3, 7, "192.0.2.1".parse().unwrap(), 32);
    let mut as_reply = good.clone();
    as_reply[6] = 2; // flags: NLM_F_MULTI
    assert!(decode(&as_reply).is_ok());
    for cut in 0..as_reply.len() {
        let _ = decode(&as_reply[..cut]);
    }
    for i in 0..as_reply.len() {
        for v in [0u8, 0xff, 0x80, 0x21] {
            let mut b = as_reply.clone();
            b[i] = v;
            let _ = decode(&b);
        }
    }
    // A prefix longer than the address, and an IPv4 address of 5 bytes.
    let mut b = as_reply.clone();
    b[17] = 33;
    assert!(decode(&b).is_err());
    assert!(
        decode(&hex(
            "1c000000 1400 0200 00000000 00000000 02 20 00 00 07000000 0900 0200 0102030405 000000"
        ))
        .is_err()
    );
}
