//! Golden bytes for every IPVS message ncc sends, written by hand from the UAPI layout in the
//! module doc (not produced by the encoder), decoding of kernel-shaped replies, and hostile
//! input. Native-endian fields are spelled little-endian: these tests run on little-endian
//! hosts only.
#![cfg(target_endian = "little")]

use super::*;
use crate::test_support::hex;

const FAM: u16 = 0x1c;

fn web() -> IpvsService {
    IpvsService {
        id: SvcId::Addr {
            protocol: IPPROTO_TCP,
            addr: "192.0.2.1".parse().unwrap(),
            port: 80,
        },
        sched: "rr".into(),
        flags: 0,
        timeout: 0,
        netmask: 0xffff_ffff,
        stats: Stats::default(),
    }
}

fn be(weight: u32, fwd: Fwd) -> IpvsDest {
    IpvsDest {
        addr: "10.0.0.1".parse().unwrap(),
        port: 8080,
        fwd,
        weight,
        u_thresh: 100,
        l_thresh: 10,
        active_conns: 0,
        inact_conns: 0,
        stats: Stats::default(),
    }
}

// The service identity of 192.0.2.1:80/TCP: AF, PROTOCOL, ADDR, PORT (44 bytes).
const WEB_ID: &str = "0600 0100 0200 0000 | 0600 0200 0600 0000 |
    1400 0300 c0000201 00000000 00000000 00000000 | 0600 0400 0050 0000";

// The full destination 10.0.0.1:8080, weight 3, route (DROUTE = 3), thresholds 100/10.
const DEST_FULL: &str = "1400 0100 0a000001 00000000 00000000 00000000 | 0600 0200 1f90 0000 |
    0800 0300 03000000 | 0800 0400 03000000 | 0800 0500 64000000 | 0800 0600 0a000000 |
    0600 0b00 0200 0000";

#[test]
fn get_family_names_ipvs_to_nlctrl() {
    // len 32 | type GENL_ID_CTRL | REQUEST | seq 7 | pid 0 | cmd 3 v2 | FAMILY_NAME "IPVS\0".
    let want = hex("20000000 | 1000 | 0100 | 07000000 | 00000000 | 03 02 0000 |
        0900 0200 49505653 00 000000");
    assert_eq!(get_family("IPVS", 7), want);
}

#[test]
fn new_service_is_the_full_entry() {
    // 16 + 4 + nested(4 + 44 + sched 8 + flags 12 + timeout 8 + netmask 8 = 84) = 104.
    let want = hex(&format!(
        "68000000 | 1c00 | 0500 | 01000000 | 00000000 | 01 01 0000 |
         5400 0180 | {WEB_ID} | 0700 0600 727200 00 | 0c00 0700 00000000 fdffffff |
         0800 0800 00000000 | 0800 0900 ffffffff"
    ));
    assert_eq!(put_service(FAM, 1, false, &web()), want);
}

#[test]
fn edit_service_with_persistence_and_one_packet() {
    let mut s = web();
    s.sched = "wlc".into();
    s.flags = F_PERSISTENT | F_ONEPACKET;
    s.timeout = 300;
    let want = hex(&format!(
        "68000000 | 1c00 | 0500 | 02000000 | 00000000 | 02 01 0000 |
         5400 0180 | {WEB_ID} | 0800 0600 776c6300 | 0c00 0700 05000000 fdffffff |
         0800 0800 2c010000 | 0800 0900 ffffffff"
    ));
    assert_eq!(put_service(FAM, 2, true, &s), want);
}

#[test]
fn fwmark_ipv6_service() {
    let s = IpvsService {
        id: SvcId::Fwmark {
            af: AF_INET6,
            mark: 7,
        },
        sched: "mh".into(),
        flags: 0,
        timeout: 0,
        netmask: 128,
        stats: Stats::default(),
    };
    // nested: AF 8 + FWMARK 8 + sched 8 + flags 12 + timeout 8 + netmask 8 = 52 + 4 = 56.
    let want = hex("4c000000 | 1c00 | 0500 | 03000000 | 00000000 | 01 01 0000 |
         3800 0180 | 0600 0100 0a00 0000 | 0800 0500 07000000 | 0700 0600 6d6800 00 |
         0c00 0700 00000000 fdffffff | 0800 0800 00000000 | 0800 0900 80000000");
    assert_eq!(put_service(FAM, 3, false, &s), want);
}

#[test]
fn delete_and_dump_services() {
    let want = hex(&format!(
        "44000000 | 1c00 | 0500 | 04000000 | 00000000 | 03 01 0000 | 3000 0180 | {WEB_ID}"
    ));
    assert_eq!(del_service(FAM, 4, &web().id), want);
    // A dump: REQUEST | DUMP, no attributes.
    let want = hex("14000000 | 1c00 | 0103 | 05000000 | 00000000 | 04 01 0000");
    assert_eq!(dump_services(FAM, 5), want);
}

#[test]
fn new_and_edit_destination_carry_the_service_and_the_full_entry() {
    // 20 + service nested 48 + dest nested (4 + 20+8+8+8+8+8+8 = 72) = 140.
    let body = format!("3000 0180 | {WEB_ID} | 4800 0280 | {DEST_FULL}");
    let want = hex(&format!(
        "8c000000 | 1c00 | 0500 | 06000000 | 00000000 | 05 01 0000 | {body}"
    ));
    assert_eq!(put_dest(FAM, 6, false, &web().id, &be(3, Fwd::Route)), want);
    // A weight change is SET_DEST (6), the same full entry: never delete + add.
    let want = hex(&format!(
        "8c000000 | 1c00 | 0500 | 07000000 | 00000000 | 06 01 0000 | {body}"
    ));
    assert_eq!(put_dest(FAM, 7, true, &web().id, &be(3, Fwd::Route)), want);
}

#[test]
fn forwarding_methods_are_masq_0_tunnel_2_route_3() {
    for (fwd, code) in [(Fwd::Masq, 0u8), (Fwd::Tunnel, 2), (Fwd::Route, 3)] {
        let m = put_dest(FAM, 1, false, &web().id, &be(1, fwd));
        // FWD_METHOD payload: 20 hdr + 48 svc + 4 nest + 20 addr + 8 port + 4 attr header = 104.
        assert_eq!(&m[104..108], &[code, 0, 0, 0], "{fwd:?}");
    }
}

#[test]
fn delete_destination_and_dump_destinations() {
    // DEL_DEST: the service, then ADDR, PORT, ADDR_FAMILY only.
    let want = hex(&format!(
        "6c000000 | 1c00 | 0500 | 08000000 | 00000000 | 07 01 0000 | 3000 0180 | {WEB_ID} |
         2800 0280 | 1400 0100 0a000001 00000000 00000000 00000000 | 0600 0200 1f90 0000 |
         0600 0b00 0200 0000"
    ));
    assert_eq!(del_dest(FAM, 8, &web().id, &be(1, Fwd::Masq)), want);
    let want = hex(&format!(
        "44000000 | 1c00 | 0103 | 09000000 | 00000000 | 08 01 0000 | 3000 0180 | {WEB_ID}"
    ));
    assert_eq!(dump_dests(FAM, 9, &web().id), want);
}

/// A service as the kernel dumps it: our attributes plus STATS64 (and a HASHED flag).
fn service_reply() -> Vec<u8> {
    hex(&format!(
        "9c000000 | 1c00 | 0200 | 05000000 | 00000000 | 01 01 0000 |
         8800 0180 | {WEB_ID} | 0700 0600 727200 00 | 0c00 0700 03000000 ffffffff |
         0800 0800 2c010000 | 0800 0900 ffffffff |
         3400 0c80 | 0c00 0100 0500000000000000 | 0c00 0400 e803000000000000 |
                     0c00 0500 d007000000000000 | 0c00 0200 0900000000000000"
    ))
}

#[test]
fn decodes_a_dumped_service_with_stats64() {
    let got = decode(&service_reply(), FAM).unwrap();
    let mut want = web();
    want.flags = F_PERSISTENT | 0x2;
    want.timeout = 300;
    want.stats = Stats {
        conns: 5,
        inpkts: 9,
        outpkts: 0,
        inbytes: 1000,
        outbytes: 2000,
    };
    assert_eq!(got, [Reply::Service(want)]);
}

#[test]
fn decodes_a_dumped_destination_done_acks_and_family() {
    let dest = hex(&format!(
        "{}000000 | 1c00 | 0200 | 06000000 | 00000000 | 05 01 0000 |
         5800 0280 | {DEST_FULL} | 0800 0700 04000000 | 0800 0800 01000000 |
         0000 0000",
        "70"
    ));
    // The trailing zero attribute header is junk the decoder must stop at (len < 4).
    let r = decode(&dest, FAM);
    assert!(r.is_err(), "a zero-length attribute is an error: {r:?}");
    let dest = hex(&format!(
        "74000000 | 1c00 | 0200 | 06000000 | 00000000 | 05 01 0000 |
         6000 0280 | {DEST_FULL} | 0800 0700 04000000 | 0800 0800 01000000 |
         0800 0900 00000000"
    ));
    let mut want = be(3, Fwd::Route);
    want.active_conns = 4;
    want.inact_conns = 1;
    let done = hex("14000000 | 0300 | 0200 | 06000000 | 00000000 | 00000000");
    let ack = hex(
        "24000000 | 0200 | 0000 | 06000000 | 00000000 | 00000000 | 10000000 1c00 0500 06000000 00000000",
    );
    let enoent = hex(
        "24000000 | 0200 | 0000 | 06000000 | 00000000 | feffffff | 10000000 1c00 0500 06000000 00000000",
    );
    let family = hex("28000000 | 1000 | 0000 | 07000000 | 00000000 | 01 02 0000 |
        0900 0200 49505653 00 000000 | 0600 0100 1c00 0000");
    let all = [dest, done, ack, enoent, family].concat();
    assert_eq!(
        decode(&all, FAM).unwrap(),
        [
            Reply::Dest(want),
            Reply::Done,
            Reply::Ack(0),
            Reply::Ack(-2),
            Reply::Family(FAM)
        ]
    );
}

#[test]
fn encode_decode_round_trip_of_a_service() {
    let mut s = web();
    s.sched = "sh".into();
    s.flags = F_PERSISTENT;
    s.timeout = 60;
    // A request re-labelled as the kernel's reply (cmd NEW_SERVICE) decodes to what it encoded.
    let m = put_service(FAM, 1, false, &s);
    assert_eq!(decode(&m, FAM).unwrap(), [Reply::Service(s)]);
}

#[test]
fn hostile_replies_are_errors_never_panics() {
    let good = service_reply();
    // Every truncation and every single-byte corruption: no panic, and no garbage accepted as
    // a different valid service without an error or a plausibly decoded value.
    for cut in 0..good.len() {
        let _ = decode(&good[..cut], FAM);
    }
    for i in 0..good.len() {
        for v in [0u8, 0xff, 0x80, 3] {
            let mut b = good.clone();
            b[i] = v;
            let _ = decode(&b, FAM);
        }
    }
    assert!(decode(&hex("ffffffff 1c00 0000 00000000 00000000"), FAM).is_err());
    assert!(decode(&hex("14000000 9900 0000 00000000 00000000 01010000"), FAM).is_err());
    // A scheduler name without its NUL inside 16 bytes.
    let long = hex(&format!(
        "34000000 | 1c00 | 0200 | 05000000 | 00000000 | 01 01 0000 |
         2000 0180 | 0600 0100 0200 0000 | 1400 0600 {}",
        "61".repeat(16)
    ));
    assert!(decode(&long, FAM).is_err());
}

/// A firewall-mark service's destination has port 0: IPVS then keeps each packet's own
/// destination port (a `use_fwm` vserver's many ports, or a DSR/TUN probe's check port).
///
/// Derivation (`include/uapi/linux/ip_vs.h`, attribute layout in the codec's module doc):
/// - service, nested `IPVS_CMD_ATTR_SERVICE` (1 | `NLA_F_NESTED` 0x8000): `IPVS_SVC_ATTR_AF`
///   (1, u16 AF_INET 2, 2 bytes padding: 8 bytes) + `IPVS_SVC_ATTR_FWMARK` (5, u32 native
///   65536 = `00000100`: 8 bytes) + the nest header 4 = 20 (0x14); no PROTOCOL, ADDR or PORT;
/// - destination, nested `IPVS_CMD_ATTR_DEST` (2 | 0x8000): `ADDR` (1, 16 bytes: 20),
///   `PORT` (2, u16 network order **0**, padded: 8), `FWD_METHOD` (3, `IP_VS_CONN_F_DROUTE`
///   3: 8), `WEIGHT` (4, 1: 8), `U_THRESH` (5, 0: 8), `L_THRESH` (6, 0: 8), `ADDR_FAMILY` (11,
///   u16 2, padded: 8) + 4 = 72 (0x48);
/// - whole message: nlmsghdr 16 + genlmsghdr 4 + 20 + 72 = 112 (0x70); `NEW_DEST` is cmd 5,
///   version 1; flags `NLM_F_REQUEST | NLM_F_ACK` = 0x0005.
#[test]
fn fwmark_service_destination_with_port_zero() {
    let probe = SvcId::Fwmark {
        af: AF_INET,
        mark: 65_536,
    };
    let d = IpvsDest {
        addr: "10.0.0.1".parse().unwrap(),
        port: 0,
        fwd: Fwd::Route,
        weight: 1,
        u_thresh: 0,
        l_thresh: 0,
        active_conns: 0,
        inact_conns: 0,
        stats: Stats::default(),
    };
    const SVC: &str = "1400 0180 | 0600 0100 0200 0000 | 0800 0500 00000100";
    let want = hex(&format!(
        "70000000 | 1c00 | 0500 | 0a000000 | 00000000 | 05 01 0000 | {SVC} |
         4800 0280 | 1400 0100 0a000001 00000000 00000000 00000000 | 0600 0200 0000 0000 |
         0800 0300 03000000 | 0800 0400 01000000 | 0800 0500 00000000 | 0800 0600 00000000 |
         0600 0b00 0200 0000"
    ));
    assert_eq!(put_dest(FAM, 10, false, &probe, &d), want);
    // DEL_DEST (7): the service, then ADDR, PORT 0 and ADDR_FAMILY: 20 + 20 + (4 + 20 + 8 +
    // 8 = 40) + 16 = 80 (0x50).
    let want = hex(&format!(
        "50000000 | 1c00 | 0500 | 0b000000 | 00000000 | 07 01 0000 | {SVC} |
         2800 0280 | 1400 0100 0a000001 00000000 00000000 00000000 | 0600 0200 0000 0000 |
         0600 0b00 0200 0000"
    ));
    assert_eq!(del_dest(FAM, 11, &probe, &d), want);

    // IPv6, a TUN probe (`IP_VS_CONN_F_TUNNEL` 2) to 2001:db8::1, mark 8255 (0x203f): AF_INET6
    // is 10 in both AF attributes; the sizes are those of IPv4 (ADDR is always 16 bytes).
    let v6 = SvcId::Fwmark {
        af: AF_INET6,
        mark: 8255,
    };
    let d6 = IpvsDest {
        addr: "2001:db8::1".parse().unwrap(),
        fwd: Fwd::Tunnel,
        ..d
    };
    let want = hex("70000000 | 1c00 | 0500 | 0c000000 | 00000000 | 05 01 0000 |
         1400 0180 | 0600 0100 0a00 0000 | 0800 0500 3f200000 |
         4800 0280 | 1400 0100 20010db8 00000000 00000000 00000001 | 0600 0200 0000 0000 |
         0800 0300 02000000 | 0800 0400 01000000 | 0800 0500 00000000 | 0800 0600 00000000 |
         0600 0b00 0a00 0000");
    assert_eq!(put_dest(FAM, 12, false, &v6, &d6), want);
}
