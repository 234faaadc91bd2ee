//! ICMP and ICMPv6 echo: building the request and recognising our reply among whatever the socket
//! receives (a raw IPv4 socket also sees other ICMP traffic, with the IP header in front).

/// ICMP echo request type (IPv4).
pub const ECHO_REQUEST_V4: u8 = 8;
/// ICMP echo reply type (IPv4).
pub const ECHO_REPLY_V4: u8 = 0;
/// ICMPv6 echo request type.
pub const ECHO_REQUEST_V6: u8 = 128;
/// ICMPv6 echo reply type.
pub const ECHO_REPLY_V6: u8 = 129;

/// Why a received packet is not a usable echo reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IcmpParseError {
    /// Shorter than the headers it claims.
    #[error("truncated icmp packet ({0} bytes)")]
    Truncated(usize),
    /// The IPv4 header is malformed or does not carry ICMP.
    #[error("not an icmp ipv4 packet")]
    NotIcmp,
    /// The ICMP checksum does not verify.
    #[error("bad icmp checksum")]
    BadChecksum,
    /// Some other ICMP message (e.g. destination unreachable, or our own request on loopback).
    #[error("icmp type {kind} code {code} is not an echo reply")]
    NotEchoReply {
        /// ICMP type.
        kind: u8,
        /// ICMP code.
        code: u8,
    },
}

/// An echo reply, borrowed from the received buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EchoReply<'a> {
    /// Identifier (on a ping socket, the kernel's identifier, not ours).
    pub id: u16,
    /// Sequence number.
    pub seq: u16,
    /// Payload after the 8-byte header.
    pub payload: &'a [u8],
}

/// An echo request. IPv4 carries its checksum; for ICMPv6 the kernel computes it (it covers a
/// pseudo-header this side does not know), so it is left zero.
pub fn echo_request(v6: bool, id: u16, seq: u16, payload: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(8 + payload.len());
    p.push(if v6 { ECHO_REQUEST_V6 } else { ECHO_REQUEST_V4 });
    p.push(0);
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(payload);
    if !v6 {
        let c = checksum(&p);
        p[2..4].copy_from_slice(&c.to_be_bytes());
    }
    p
}

/// Parses one received packet. `ip_header` says whether an IPv4 header precedes the ICMP message
/// (raw IPv4 sockets); ping sockets and ICMPv6 sockets deliver the ICMP message alone.
pub fn parse_reply(buf: &[u8], v6: bool, ip_header: bool) -> Result<EchoReply<'_>, IcmpParseError> {
    let icmp = if ip_header && !v6 {
        let first = *buf.first().ok_or(IcmpParseError::Truncated(0))?;
        if first >> 4 != 4 {
            return Err(IcmpParseError::NotIcmp);
        }
        let ihl = usize::from(first & 0x0f) * 4;
        if ihl < 20 {
            return Err(IcmpParseError::NotIcmp);
        }
        if buf.len() < ihl {
            return Err(IcmpParseError::Truncated(buf.len()));
        }
        if buf[9] != 1 {
            return Err(IcmpParseError::NotIcmp);
        }
        &buf[ihl..]
    } else {
        buf
    };
    if icmp.len() < 8 {
        return Err(IcmpParseError::Truncated(icmp.len()));
    }
    // ICMPv6 checksums cover a pseudo-header and are verified by the kernel.
    if !v6 && checksum(icmp) != 0 {
        return Err(IcmpParseError::BadChecksum);
    }
    let (kind, code) = (icmp[0], icmp[1]);
    let want = if v6 { ECHO_REPLY_V6 } else { ECHO_REPLY_V4 };
    if kind != want || code != 0 {
        return Err(IcmpParseError::NotEchoReply { kind, code });
    }
    Ok(EchoReply {
        id: u16::from_be_bytes([icmp[4], icmp[5]]),
        seq: u16::from_be_bytes([icmp[6], icmp[7]]),
        payload: &icmp[8..],
    })
}

/// The Internet checksum (RFC 1071). Over a message that includes its checksum it yields 0.
pub fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = 0;
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Turns a request into the reply a host would send (type flipped, checksum redone).
    fn reply_to(req: &[u8]) -> Vec<u8> {
        let mut r = req.to_vec();
        r[0] = ECHO_REPLY_V4;
        r[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&r);
        r[2..4].copy_from_slice(&c.to_be_bytes());
        r
    }

    fn with_ip_header(icmp: &[u8], proto: u8) -> Vec<u8> {
        let mut p = vec![
            0x45, 0, 0, 0, 0, 0, 0, 0, 64, proto, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1,
        ];
        p.extend_from_slice(icmp);
        p
    }

    #[test]
    fn request_checksum_verifies_and_reply_parses() {
        let req = echo_request(false, 0x1234, 7, b"seesaw");
        assert_eq!(checksum(&req), 0);
        assert_eq!(req[0], ECHO_REQUEST_V4);
        let rep = reply_to(&req);
        let r = parse_reply(&rep, false, false).unwrap();
        assert_eq!((r.id, r.seq, r.payload), (0x1234, 7, &b"seesaw"[..]));
        let framed = with_ip_header(&rep, 1);
        assert_eq!(parse_reply(&framed, false, true).unwrap(), r);
        // Odd-length payloads checksum too.
        let req = echo_request(false, 1, 2, b"odd");
        assert_eq!(checksum(&req), 0);
    }

    #[test]
    fn own_request_and_other_messages_are_not_replies() {
        let req = echo_request(false, 1, 1, b"x");
        assert_eq!(
            parse_reply(&req, false, false),
            Err(IcmpParseError::NotEchoReply { kind: 8, code: 0 })
        );
        let v6 = echo_request(true, 1, 1, b"x");
        assert_eq!(
            parse_reply(&v6, true, false),
            Err(IcmpParseError::NotEchoReply { kind: 128, code: 0 })
        );
        let mut v6r = v6.clone();
        v6r[0] = ECHO_REPLY_V6;
        assert_eq!(parse_reply(&v6r, true, false).unwrap().seq, 1);
    }

    #[test]
    fn hostile_packets_are_rejected() {
        let rep = reply_to(&echo_request(false, 1, 1, b"abc"));
        let mut bad = rep.clone();
        bad[9] ^= 0xff;
        assert_eq!(
            parse_reply(&bad, false, false),
            Err(IcmpParseError::BadChecksum)
        );
        assert_eq!(
            parse_reply(&rep[..5], false, false),
            Err(IcmpParseError::Truncated(5))
        );
        assert_eq!(
            parse_reply(&[], false, true),
            Err(IcmpParseError::Truncated(0))
        );
        // UDP in the IP header, an IHL past the end, an IHL below 5, IPv6 in a v4 socket.
        assert_eq!(
            parse_reply(&with_ip_header(&rep, 17), false, true),
            Err(IcmpParseError::NotIcmp)
        );
        let mut long = with_ip_header(&rep, 1);
        long[0] = 0x4f;
        assert_eq!(
            parse_reply(&long, false, true),
            Err(IcmpParseError::Truncated(31))
        );
        let mut short = with_ip_header(&rep, 1);
        short[0] = 0x44;
        assert_eq!(
            parse_reply(&short, false, true),
            Err(IcmpParseError::NotIcmp)
        );
        assert_eq!(
            parse_reply(&[0x60; 40], false, true),
            Err(IcmpParseError::NotIcmp)
        );
    }
}
