//! Golden bytes for both netfilter dump requests, written by hand from the UAPI layout in the
//! module doc (not produced by the encoder); counting of kernel-shaped replies, built here
//! field by field; and hostile input (truncations, lying lengths, wrong sizes, errors), which
//! must give an error or a count, never a panic. Native-endian fields are spelled
//! little-endian: these tests run on little-endian hosts only.
#![cfg(target_endian = "little")]

use super::*;
use crate::kernel::uapi::NFPROTO_NETDEV;

/// Bytes from hex with any whitespace and `|` separators (one group per field).
fn hex(s: &str) -> Vec<u8> {
    let digits: Vec<u8> = s.bytes().filter(u8::is_ascii_hexdigit).collect();
    digits
        .chunks(2)
        .map(|p| u8::from_str_radix(std::str::from_utf8(p).unwrap(), 16).unwrap())
        .collect()
}

/// An attribute (padded), built independently of the encoder.
fn attr(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&u16::try_from(4 + payload.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
    out
}

/// A nested attribute (`NLA_F_NESTED` set, as the kernel sends it).
fn nest(kind: u16, parts: &[Vec<u8>]) -> Vec<u8> {
    attr(kind | 0x8000, &parts.concat())
}

/// A reply message of `ty` with `nfgenmsg` and `body`.
fn msg(ty: u16, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&u32::try_from(20 + body.len()).unwrap().to_le_bytes());
    out.extend_from_slice(&ty.to_le_bytes());
    out.extend_from_slice(&0x0002u16.to_le_bytes()); // NLM_F_MULTI
    out.extend_from_slice(&[9, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&[2, 0, 0, 0]);
    out.extend_from_slice(body);
    out
}

fn done() -> Vec<u8> {
    hex("14000000 0300 0200 09000000 00000000 | 00000000")
}

/// One conntrack entry: protocol, TCP state (if any), mark.
fn ct(proto: u8, state: Option<u8>, mark: u32) -> Vec<u8> {
    let tuple = nest(
        1,
        &[
            nest(1, &[attr(1, &[10, 0, 0, 1]), attr(2, &[10, 0, 0, 2])]),
            nest(2, &[attr(1, &[proto]), attr(2, &[0x1f, 0x90])]),
        ],
    );
    let mut parts = vec![tuple, attr(3, &8u32.to_be_bytes())];
    if let Some(s) = state {
        parts.push(nest(4, &[nest(1, &[attr(1, &[s]), attr(2, &[7])])]));
    }
    parts.push(attr(7, &120u32.to_be_bytes()));
    parts.push(attr(8, &mark.to_be_bytes()));
    msg(0x0100, &parts.concat())
}

/// One set-element message holding elements with these 4-byte values.
fn elems(values: &[u32]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = values
        .iter()
        .map(|v| {
            nest(
                1,
                &[
                    nest(1, &[attr(1, &[192, 0, 2, 7, 0x30, 0x39, 0, 0])]),
                    nest(2, &[attr(1, &v.to_ne_bytes())]),
                    attr(5, &299_000u64.to_be_bytes()),
                ],
            )
        })
        .collect();
    msg(
        0x0a0c,
        &[attr(1, b"seesaw\0"), attr(2, b"k1t300f\0"), nest(3, &list)].concat(),
    )
}

const OURS: u32 = 0x5ee0_0000;
const MASK: u32 = 0xfff0_0000;

#[test]
fn conntrack_dump_request_golden_bytes() {
    // len 36 | type CTNETLINK<<8 | CT_GET | REQUEST|DUMP | seq 5 | pid 0 | AF_UNSPEC v0 res 0 |
    // CTA_MARK be32 | CTA_MARK_MASK be32.
    let want = hex("24000000 0101 0103 05000000 00000000 | 00 00 0000 |
        0800 0800 5ee00000 | 0800 1500 fff00000");
    assert_eq!(conntrack_dump(5, OURS, MASK), want);
}

#[test]
fn setelem_dump_request_golden_bytes() {
    // len 44 | type NFTABLES<<8 | GETSETELEM | REQUEST|DUMP | seq 6 | pid 0 | NETDEV v0 res 0 |
    // LIST_TABLE "seesaw\0" (11, padded) | LIST_SET "k1t300f\0" (12).
    let want = hex("2c000000 0d0a 0103 06000000 00000000 | 05 00 0000 |
        0b00 0100 73656573617700 00 | 0c00 0200 6b3174333030660 0");
    assert_eq!(setelem_dump(6, NFPROTO_NETDEV, "seesaw", "k1t300f"), want);
}

#[test]
fn conntrack_entries_count_as_active_or_inactive_by_mark() {
    let d1 = OURS + 1;
    let d2 = OURS + 2;
    let datagram = [
        ct(6, Some(3), d1),          // TCP ESTABLISHED: active
        ct(6, Some(7), d1),          // TIME_WAIT: inactive
        ct(6, None, d1),             // TCP without protoinfo: inactive
        ct(17, None, d2),            // UDP: active
        ct(6, Some(3), 0x1234),      // not ours: ignored
        ct(6, Some(3), 0x5ef0_0001), // outside the mask: ignored
    ]
    .concat();
    let mut out = HashMap::new();
    assert_eq!(
        count_conntrack(&datagram, OURS, MASK, &mut out),
        Ok(Step::More)
    );
    assert_eq!(
        count_conntrack(&done(), OURS, MASK, &mut out),
        Ok(Step::Done)
    );
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(
        out[&d1],
        Load {
            active: 1,
            inactive: 2
        }
    );
    assert_eq!(
        out[&d2],
        Load {
            active: 1,
            inactive: 0
        }
    );
}

#[test]
fn set_elements_count_by_value() {
    let mut out = HashMap::new();
    let datagram = [elems(&[OURS, OURS + 1, OURS]), done()].concat();
    assert_eq!(count_setelems(&datagram, &mut out), Ok(Step::Done));
    assert_eq!(out[&OURS].active, 2);
    assert_eq!(out[&(OURS + 1)].active, 1);
    // An empty set answers with DONE only (or an empty element list).
    let mut none = HashMap::new();
    assert_eq!(count_setelems(&done(), &mut none), Ok(Step::Done));
    assert!(none.is_empty());
}

#[test]
fn kernel_errors_are_errors() {
    // NLMSG_ERROR -ENOENT (no such set), followed by the offending request's header.
    let enoent = hex("24000000 0200 0001 06000000 00000000 | feffffff |
        2c000000 0d0a 0103 06000000 00000000");
    let mut out = HashMap::new();
    assert_eq!(
        count_setelems(&enoent, &mut out),
        Err(NfnlDecodeError::Errno(2))
    );
    let ack = hex("24000000 0200 0001 06000000 00000000 | 00000000 |
        2c000000 0d0a 0103 06000000 00000000");
    assert_eq!(count_setelems(&ack, &mut out), Ok(Step::Done));
}

#[test]
fn hostile_replies_are_errors_never_panics() {
    let good = [ct(6, Some(3), OURS), elems(&[OURS])].concat();
    // Every truncation and every single-byte corruption of a good datagram.
    for cut in 0..good.len() {
        let mut out = HashMap::new();
        let _ = count_conntrack(&good[..cut], OURS, MASK, &mut out);
        let _ = count_setelems(&good[..cut], &mut out);
    }
    for i in 0..good.len() {
        for v in [0x00, 0x01, 0x03, 0x7f, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] = v;
            let mut out = HashMap::new();
            let _ = count_conntrack(&bad, OURS, MASK, &mut out);
            let _ = count_setelems(&bad, &mut out);
        }
    }
    let mut out = HashMap::new();
    let cases: [(&str, Vec<u8>); 6] = [
        ("short header", hex("10000000 0001")),
        (
            "length below the header",
            hex("08000000 0001 0000 00000000 00000000"),
        ),
        (
            "length past the end",
            hex("ff000000 0001 0000 00000000 00000000 00000000"),
        ),
        (
            "no nfgenmsg",
            hex("12000000 0001 0000 00000000 00000000 0000"),
        ),
        (
            "attribute past its message",
            msg(0x0100, &hex("4000 0800 5ee00000")),
        ),
        ("mark of 2 bytes", msg(0x0100, &attr(8, &[0x5e, 0xe0]))),
    ];
    for (what, b) in cases {
        assert!(
            matches!(
                count_conntrack(&b, OURS, MASK, &mut out),
                Err(NfnlDecodeError::Malformed(_))
            ),
            "{what}"
        );
    }
    let short_value = msg(
        0x0a0c,
        &nest(3, &[nest(1, &[nest(2, &[attr(1, &[1, 2])])])]),
    );
    assert_eq!(
        count_setelems(&short_value, &mut out),
        Err(NfnlDecodeError::Malformed("element value"))
    );
    assert!(out.is_empty(), "nothing counted from malformed input");
    // Zero-length attributes cannot loop forever.
    let zero = msg(0x0100, &hex("0000 0800 0000 0000"));
    assert!(count_conntrack(&zero, OURS, MASK, &mut out).is_err());
}

/// A conntrack entry of a TCP flow `src → dst` NATed to `to`, in state `state`, marked `mark`.
fn ct_flow(src: [u8; 4], sport: u16, dst: [u8; 4], to: [u8; 4], state: u8, mark: u32) -> Vec<u8> {
    let tuple = |a: [u8; 4], ap: u16, b: [u8; 4], bp: u16| {
        vec![
            nest(1, &[attr(1, &a), attr(2, &b)]),
            nest(
                2,
                &[
                    attr(1, &[6]),
                    attr(2, &ap.to_be_bytes()),
                    attr(3, &bp.to_be_bytes()),
                ],
            ),
        ]
    };
    let body = [
        nest(1, &tuple(src, sport, dst, 80)),
        nest(2, &tuple(to, 80, src, sport)),
        nest(4, &[nest(1, &[attr(1, &[state])])]),
        attr(8, &mark.to_be_bytes()),
    ]
    .concat();
    msg(0x0100, &body)
}

#[test]
fn a_flow_is_found_by_its_original_tuple_and_hostile_entries_never_panic() {
    let want = Tuple {
        proto: 6,
        src: "192.0.2.101:40000".parse().unwrap(),
        dst: "198.51.100.1:80".parse().unwrap(),
    };
    // An established flow of client 192.0.2.`client`:40000 to the VIP, sent to backend
    // 203.0.113.`backend`.
    let flow = |client, backend| {
        let (vip, sport, established) = ([198, 51, 100, 1], 40000, 3);
        ct_flow(
            [192, 0, 2, client],
            sport,
            vip,
            [203, 0, 113, backend],
            established,
            OURS,
        )
    };
    let good = [flow(102, 11), flow(101, 12)].concat();
    let mut out = None;
    assert_eq!(find_flow(&good, &want, &mut out), Ok(Step::More));
    assert_eq!(
        out,
        Some(FoundFlow {
            dest: "203.0.113.12:80".parse().unwrap(),
            mark: OURS,
            tcp_state: Some(3),
        })
    );
    assert_eq!(tcp_state_name(3), "ESTABLISHED");
    // Another port of the same client is another flow.
    let mut out = None;
    let elsewhere = Tuple {
        src: "192.0.2.101:40001".parse().unwrap(),
        ..want
    };
    assert_eq!(find_flow(&good, &elsewhere, &mut out), Ok(Step::More));
    assert_eq!(out, None);
    // Every truncation and single-byte corruption: an answer or an error, never a panic.
    for cut in 0..good.len() {
        let _ = find_flow(&good[..cut], &want, &mut None);
    }
    for i in 0..good.len() {
        for v in [0x00, 0x01, 0x03, 0x7f, 0x80, 0xff] {
            let mut bad = good.clone();
            bad[i] = v;
            let _ = find_flow(&bad, &want, &mut None);
        }
    }
    // An address of 3 bytes is malformed.
    let short = msg(
        0x0100,
        &nest(
            1,
            &[nest(1, &[attr(1, &[192, 0, 2])]), nest(2, &[attr(1, &[6])])],
        ),
    );
    assert!(matches!(
        find_flow(&short, &want, &mut None),
        Err(NfnlDecodeError::Malformed(_))
    ));
}

/// An ack (`NLMSG_ERROR` with `error`) of the message with sequence number `seq`, echoing its
/// header.
fn ack(seq: u32, error: i32) -> Vec<u8> {
    let mut m = 36u32.to_ne_bytes().to_vec();
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&[0, 0]);
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&[0; 4]);
    m.extend_from_slice(&error.to_ne_bytes());
    m.extend_from_slice(&[0; 16]);
    m
}

#[test]
fn a_batch_is_done_at_the_ack_of_its_last_message_and_fails_at_the_first_refusal() {
    let both = [ack(5, 0), ack(6, 0)].concat();
    assert_eq!(read_acks(&both, 6), Ok(Step::Done));
    assert_eq!(read_acks(&ack(5, 0), 6), Ok(Step::More));
    // The kernel refused message 5 (ENOENT): the whole batch failed, whatever follows.
    let refused = [ack(5, -2), ack(6, 0)].concat();
    assert_eq!(read_acks(&refused, 6), Err(NfnlDecodeError::Errno(2)));
    // An error's echo cut short by the receive buffer still carries its code.
    let cut = ack(5, -22);
    assert_eq!(read_acks(&cut[..20], 6), Err(NfnlDecodeError::Errno(22)));
    // Hostile replies: an answer or an error, never a panic.
    assert!(read_acks(&[0; 7], 6).is_err());
    assert!(read_acks(&both[..16], 6).is_err());
    for cut in 0..both.len() {
        let _ = read_acks(&both[..cut], 6);
    }
    for i in 0..both.len() {
        for v in [0x00, 0x01, 0x7f, 0x80, 0xff] {
            let mut bad = both.clone();
            bad[i] = v;
            let _ = read_acks(&bad, 6);
        }
    }
}
