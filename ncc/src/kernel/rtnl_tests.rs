//! Golden bytes for the rtnetlink messages ncc sends (written by hand from the layout in the
//! module doc), decoding of kernel-shaped dumps, and hostile input. Little-endian hosts only.
#![cfg(target_endian = "little")]

use super::*;
use crate::kernel::uapi::{FR_ACT_TO_TBL, RT_SCOPE_LINK, RT_SCOPE_UNIVERSE, RTN_UNICAST};
use crate::test_support::hex;

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

// --- Links, routes and rules (layouts in the module doc; linux/rtnetlink.h, linux/fib_rules.h,
// linux/if_link.h) ---

#[test]
fn link_messages() {
    assert_eq!(
        encode_link_dump(1),
        hex("20000000 | 1200 | 0103 | 01000000 | 00000000 | 00000000 00000000 00000000 00000000")
    );
    // ifinfomsg for index 3, IFLA_ADDRESS (6 bytes + 2 padding).
    assert_eq!(
        encode_link_mac(9, 3, [0, 0, 0x5e, 0, 1, 0x3c]),
        hex("2c000000 | 1000 | 0500 | 09000000 | 00000000 |
             00 00 0000 | 03000000 | 00000000 | 00000000 |
             0a00 0100 00005e00013c 0000")
    );
    // IFLA_LINK 3, IFLA_IFNAME "eth1.10\0", IFLA_LINKINFO { KIND "vlan", DATA { VLAN_ID 10 } }.
    assert_eq!(
        encode_vlan_add(10, 3, "eth1.10", 10),
        hex("4c000000 | 1000 | 0506 | 0a000000 | 00000000 |
             00 00 0000 | 00000000 | 00000000 | 00000000 |
             0800 0500 03000000 |
             0c00 0300 657468312e313000 |
             1800 1200 | 0800 0100 766c616e | 0c00 0200 | 0600 0100 0a00 0000")
    );
    // Up (flags and change IFF_UP), IFLA_IFNAME "sstc0000202\0", IFLA_LINKINFO { KIND
    // "ipip", DATA { IPTUN_REMOTE 192.0.2.2 } }.
    assert_eq!(
        encode_tunnel_add(4, "sstc0000202", "192.0.2.2".parse().unwrap(), None),
        hex("48000000 | 1000 | 0506 | 04000000 | 00000000 |
             00 00 0000 | 00000000 | 01000000 | 01000000 |
             1000 0300 737374633030303032303200 |
             1800 1200 | 0800 0100 69706970 | 0c00 0200 | 0800 0300 c0000202")
    );
    // IPv6: "ip6tnl" with a 16-byte local and remote and IPTUN_PROTO 41 (IPv6 in IPv6).
    let v6 = encode_tunnel_add(
        5,
        "sst6",
        "2001:db8::2".parse().unwrap(),
        Some("2001:db8::1".parse().unwrap()),
    );
    assert_eq!(
        v6[44..],
        hex("4400 1200 | 0a00 0100 697036746e6c 0000 | 3400 0200 |
             1400 0200 20010db8000000000000000000000001 |
             1400 0300 20010db8000000000000000000000002 | 0500 0900 29 000000")
    );
    assert_eq!(
        encode_link_del(11, 7),
        hex(
            "20000000 | 1100 | 0500 | 0b000000 | 00000000 | 00 00 0000 | 07000000 | 00000000 | 00000000"
        )
    );
}

fn table2_net() -> RouteInfo {
    RouteInfo {
        table: 2,
        dst: ("192.0.2.0".parse().unwrap(), 24),
        gateway: None,
        oif: Some(3),
        protocol: SEESAW_PROTO,
        scope: RT_SCOPE_LINK,
        kind: RTN_UNICAST,
        metric: None,
    }
}

fn table2_default() -> RouteInfo {
    RouteInfo {
        dst: ("0.0.0.0".parse().unwrap(), 0),
        gateway: Some("192.0.2.254".parse().unwrap()),
        scope: RT_SCOPE_UNIVERSE,
        ..table2_net()
    }
}

#[test]
fn route_messages() {
    assert_eq!(
        encode_route_dump(2, 2),
        hex("1c000000 | 1a00 | 0103 | 02000000 | 00000000 | 02000000 00000000 00000000")
    );
    // rtmsg: AF_INET, /24, table 2, protocol 0x5e, scope link, unicast; DST, OIF, TABLE.
    assert_eq!(
        encode_route(true, 12, &table2_net()),
        hex("34000000 | 1800 | 0506 | 0c000000 | 00000000 |
             02 18 00 00 02 5e fd 01 | 00000000 |
             0800 0100 c0000200 | 0800 0400 03000000 | 0800 0f00 02000000")
    );
    // Default route: no RTA_DST, a gateway, scope universe; delete is plain.
    assert_eq!(
        encode_route(false, 13, &table2_default()),
        hex("34000000 | 1900 | 0500 | 0d000000 | 00000000 |
             02 00 00 00 02 5e 00 01 | 00000000 |
             0800 0500 c00002fe | 0800 0400 03000000 | 0800 0f00 02000000")
    );
    // Table ids above 255 go in RTA_TABLE only (rtm_table RT_TABLE_COMPAT).
    let big = RouteInfo {
        table: 1000,
        ..table2_net()
    };
    let m = encode_route(true, 1, &big);
    assert_eq!(m[16 + 4], 252);
    assert_eq!(&m[m.len() - 4..], &1000u32.to_ne_bytes());
}

fn from_rule() -> RuleInfo {
    RuleInfo {
        family: 2,
        src: Some(("192.0.2.1".parse().unwrap(), 32)),
        dst: None,
        table: 2,
        action: FR_ACT_TO_TBL,
        priority: None,
        protocol: SEESAW_PROTO,
    }
}

#[test]
fn rule_messages() {
    assert_eq!(
        encode_rule_dump(3, 2),
        hex("1c000000 | 2200 | 0103 | 03000000 | 00000000 | 02000000 00000000 00000000")
    );
    // fib_rule_hdr: AF_INET, dst_len 0, src_len 32, table 2, action FR_ACT_TO_TBL; SRC, TABLE,
    // PROTOCOL.
    assert_eq!(
        encode_rule(true, 13, &from_rule()),
        hex("34000000 | 2000 | 0506 | 0d000000 | 00000000 |
             02 00 20 00 02 00 00 01 | 00000000 |
             0800 0200 c0000201 | 0800 0f00 02000000 | 0500 1500 5e 000000")
    );
    let to = RuleInfo {
        src: None,
        dst: Some(("192.0.2.1".parse().unwrap(), 32)),
        priority: Some(32765),
        ..from_rule()
    };
    assert_eq!(
        encode_rule(false, 14, &to),
        hex("3c000000 | 2100 | 0500 | 0e000000 | 00000000 |
             02 20 00 00 02 00 00 01 | 00000000 |
             0800 0100 c0000201 | 0800 0600 fd7f0000 | 0800 0f00 02000000 | 0500 1500 5e 000000")
    );
}

#[test]
fn dumps_decode_links_routes_and_rules() {
    // What the kernel sends is the RTM_NEW* layout the encoders write: round trips.
    let r = decode(&encode_route(true, 1, &table2_default())).unwrap();
    assert_eq!(r, [RtReply::Route(table2_default())]);
    let to = RuleInfo {
        src: None,
        dst: Some(("192.0.2.1".parse().unwrap(), 32)),
        priority: Some(32765),
        ..from_rule()
    };
    let both = [
        encode_rule(true, 1, &from_rule()),
        encode_rule(true, 2, &to),
    ]
    .concat();
    assert_eq!(
        decode(&both).unwrap(),
        [RtReply::Rule(from_rule()), RtReply::Rule(to)]
    );
    // A kernel-shaped VLAN link: flags UP|BROADCAST|LOWER_UP, name, MAC, parent, linkinfo
    // with a NUL-terminated kind and VLAN data (id, then flags we skip).
    let vlan = hex("74000000 1000 0200 01000000 00000000
         00 00 0100 | 05000000 | 43100100 | 00000000 |
         0c00 0300 657468312e313000 |
         0a00 0100 00005e00013c 0000 |
         0a00 3600 020000000001 0000 |
         0800 0500 03000000 |
         2800 1200 | 0900 0100 766c616e00 000000 | 1800 0200 | 0600 0100 0a00 0000 | 0c00 0200 01000000 ffffffff");
    assert_eq!(
        decode(&vlan).unwrap(),
        [RtReply::Link(LinkInfo {
            index: 5,
            name: "eth1.10".into(),
            up: true,
            mac: Some([0, 0, 0x5e, 0, 1, 0x3c]),
            perm_mac: Some([2, 0, 0, 0, 0, 1]),
            parent: Some(3),
            kind: Some("vlan".into()),
            vlan_id: Some(10),
        })]
    );
    // Our VLAN request decodes to the link it asks for.
    match &decode(&encode_vlan_add(1, 3, "eth1.7", 7)).unwrap()[..] {
        [RtReply::Link(l)] => {
            assert_eq!(
                (l.name.as_str(), l.parent, l.kind.as_deref(), l.vlan_id),
                ("eth1.7", Some(3), Some("vlan"), Some(7))
            );
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn hostile_link_route_and_rule_replies_are_errors_never_panics() {
    let samples = [
        encode_route(true, 1, &table2_default()),
        encode_rule(true, 1, &from_rule()),
        encode_vlan_add(1, 3, "eth1.10", 10),
        encode_link_mac(1, 3, [1, 2, 3, 4, 5, 6]),
        encode_tunnel_add(1, "sst6", "2001:db8::2".parse().unwrap(), None),
    ];
    for good in &samples {
        assert!(decode(good).is_ok());
        for cut in 0..good.len() {
            let _ = decode(&good[..cut]);
        }
        for i in 0..good.len() {
            for v in [0u8, 0xff, 0x80, 0x21, 0x03] {
                let mut b = good.clone();
                b[i] = v;
                let _ = decode(&b);
            }
        }
    }
    // Prefix lengths beyond the family's width.
    let mut r = encode_route(true, 1, &table2_net());
    r[17] = 33;
    assert!(decode(&r).is_err());
    let mut r = encode_rule(true, 1, &from_rule());
    r[18] = 129;
    assert!(decode(&r).is_err());
    // A 3-byte RTA_OIF.
    let short = hex(
        "24000000 1800 0200 00000000 00000000 02 00 00 00 02 5e 00 01 00000000
                     0700 0400 030000 00",
    );
    assert!(decode(&short).is_err());
}
