//! `seesaw trace`: what a plane would do with one flow. Each plane answers from what it holds
//! ([`super::Dataplane::trace`]): the service, the destination its scheduler would give a new
//! flow (for the schedulers whose choice is a function of the flow: sh, mh, dh), how it decided
//! (the Maglev slot), and the flow's live entry when it exists. Read-only: no scheduler state
//! moves (a round-robin cursor is not advanced to predict it).
//!
//! The nftables plane hashes in the kernel (`jhash`, `nft_jhash.c`); [`jhash`] and
//! [`reciprocal_scale`] are the kernel's functions, so the prediction is the kernel's choice.

use std::net::SocketAddr;

use crate::model::Protocol;

pub use seesaw_proto::domain::{PlaneTrace, TraceFlow};

/// The flow of a `TraceRequest`, or why it is not one.
pub fn flow_from_pb(r: &seesaw_proto::ncc::TraceRequest) -> Result<TraceFlow, String> {
    use seesaw_proto::ncc::Protocol as P;
    let proto = match P::try_from(r.protocol) {
        Ok(P::Tcp) => Protocol::Tcp,
        Ok(P::Udp) => Protocol::Udp,
        _ => return Err("protocol must be tcp or udp".to_owned()),
    };
    let addr = |what: &str, s: &str| {
        s.parse::<SocketAddr>()
            .map_err(|_| format!("{what} {s:?} is not an ip:port"))
    };
    Ok(TraceFlow {
        proto,
        client: addr("client", &r.client)?,
        vip: addr("vip", &r.vip)?,
    })
}

const JHASH_INITVAL: u32 = 0xdead_beef;

fn mix(a: &mut u32, b: &mut u32, c: &mut u32) {
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(4);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(6);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(8);
    *b = b.wrapping_add(*a);
    *a = a.wrapping_sub(*c);
    *a ^= c.rotate_left(16);
    *c = c.wrapping_add(*b);
    *b = b.wrapping_sub(*a);
    *b ^= a.rotate_left(19);
    *a = a.wrapping_add(*c);
    *c = c.wrapping_sub(*b);
    *c ^= b.rotate_left(4);
    *b = b.wrapping_add(*a);
}

fn fin(a: &mut u32, b: &mut u32, c: &mut u32) {
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(14));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(11));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(25));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(16));
    *a ^= *c;
    *a = a.wrapping_sub(c.rotate_left(4));
    *b ^= *a;
    *b = b.wrapping_sub(a.rotate_left(14));
    *c ^= *b;
    *c = c.wrapping_sub(b.rotate_left(24));
}

/// The kernel's `jhash(key, length, initval)` (`include/linux/jhash.h`, Bob Jenkins' lookup3)
/// on a little-endian machine (`__get_unaligned_cpu32`).
pub fn jhash(key: &[u8], initval: u32) -> u32 {
    let len = u32::try_from(key.len()).unwrap_or(u32::MAX);
    let mut a = JHASH_INITVAL.wrapping_add(len).wrapping_add(initval);
    let (mut b, mut c) = (a, a);
    let mut k = key;
    let word = |w: &[u8]| u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
    while k.len() > 12 {
        a = a.wrapping_add(word(&k[0..4]));
        b = b.wrapping_add(word(&k[4..8]));
        c = c.wrapping_add(word(&k[8..12]));
        mix(&mut a, &mut b, &mut c);
        k = &k[12..];
    }
    if k.is_empty() {
        return c;
    }
    // The tail, byte by byte into a, b, c (the `switch` with fallthrough).
    for (i, &byte) in k.iter().enumerate() {
        let v = u32::from(byte) << (8 * (i % 4));
        match i / 4 {
            0 => a = a.wrapping_add(v),
            1 => b = b.wrapping_add(v),
            _ => c = c.wrapping_add(v),
        }
    }
    fin(&mut a, &mut b, &mut c);
    c
}

/// The kernel's `reciprocal_scale(val, ep_ro)`: `val` scaled into `0..ep_ro`.
pub fn reciprocal_scale(val: u32, ep_ro: u32) -> u32 {
    u32::try_from((u64::from(val) * u64::from(ep_ro)) >> 32).unwrap_or(u32::MAX)
}

/// `jhash <ip> saddr mod n seed <seed>` of a client address, as `nft_jhash` computes it.
pub fn nft_jhash_addr(ip: std::net::IpAddr, n: u32, seed: u32) -> u32 {
    let h = match ip {
        std::net::IpAddr::V4(a) => jhash(&a.octets(), seed),
        std::net::IpAddr::V6(a) => jhash(&a.octets(), seed),
    };
    reciprocal_scale(h, n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jhash_of_nothing_is_the_initial_value_and_bytes_matter_by_position() {
        assert_eq!(jhash(&[], 0), 0xdead_beef);
        assert_eq!(jhash(&[], 7), 0xdead_beef + 7);
        let a = jhash(&[10, 0, 0, 1], 0x5ee5_a11e);
        assert_ne!(a, jhash(&[1, 0, 0, 10], 0x5ee5_a11e));
        assert_ne!(a, jhash(&[10, 0, 0, 1], 0));
        // 16 bytes: one mixed block, then a 4-byte tail.
        let v6 = jhash(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], 1);
        assert_ne!(
            v6,
            jhash(&[0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], 1)
        );
    }

    #[test]
    fn reciprocal_scale_spans_the_range() {
        assert_eq!(reciprocal_scale(0, 10), 0);
        assert_eq!(reciprocal_scale(u32::MAX, 10), 9);
        assert_eq!(reciprocal_scale(1 << 31, 10), 5);
        assert_eq!(reciprocal_scale(12345, 0), 0);
    }
}
