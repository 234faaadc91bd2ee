//! Netlink's framing, shared by the rtnetlink ([`super::rtnl`]), IPVS generic-netlink and
//! nfnetlink codecs: the message header (`nlmsghdr`: length, type, flags, sequence, port id 0,
//! all native-endian), its flags and control types, and attributes (`nlattr`: length, type,
//! payload, zero padding to a multiple of 4). Pure.

use super::uapi::{NLA_F_NESTED, NLA_TYPE_MASK, NLMSG_HDRLEN};

/// Appends the attribute `kind` holding `payload`, padded to a multiple of 4.
pub fn push_attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = u16::try_from(4 + payload.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

/// Appends the nested attribute `kind` (with `NLA_F_NESTED`) whose payload `fill` writes.
pub fn push_nested(out: &mut Vec<u8>, kind: u16, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
    fill(out);
    let len = u16::try_from(out.len() - start).unwrap_or(u16::MAX);
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// A message of type `ty` with `flags` and `seq` (port id 0) holding `body`.
pub fn message(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(NLMSG_HDRLEN + body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    out.extend_from_slice(&len.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(body);
    out
}

/// Iterates the attributes in `b`: (type without flags, payload). A length that overruns is an
/// error carrying its offset, and ends the iteration.
pub fn attrs(b: &[u8]) -> impl Iterator<Item = Result<(u16, &[u8]), usize>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        if b.len().saturating_sub(at) < 4 {
            return None;
        }
        let len = usize::from(u16::from_ne_bytes([b[at], b[at + 1]]));
        let kind = u16::from_ne_bytes([b[at + 2], b[at + 3]]) & NLA_TYPE_MASK;
        if len < 4 || at + len > b.len() {
            let e = at;
            at = b.len();
            return Some(Err(e));
        }
        let payload = &b[at + 4..at + len];
        at += (len + 3) & !3;
        Some(Ok((kind, payload)))
    })
}

/// One message of a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Msg<'a> {
    /// `nlmsg_type`.
    pub ty: u16,
    /// `nlmsg_seq`.
    pub seq: u32,
    /// What follows the header.
    pub body: &'a [u8],
}

/// The messages of one datagram. A header cut short, or a length that is shorter than the
/// header or overruns the datagram, is an error carrying its offset and ends the iteration —
/// except (`cut_ok`) an overrun by the datagram's last message, whose body is then what
/// arrived (an error's echo of a large request, cut by the receive buffer).
pub fn messages(b: &[u8], cut_ok: bool) -> impl Iterator<Item = Result<Msg<'_>, usize>> {
    let mut at = 0usize;
    std::iter::from_fn(move || {
        let rest = b.get(at..).filter(|r| !r.is_empty())?;
        let bad = |at: &mut usize| {
            let e = *at;
            *at = b.len();
            Some(Err(e))
        };
        if rest.len() < NLMSG_HDRLEN {
            return bad(&mut at);
        }
        let len = usize::try_from(u32::from_ne_bytes([rest[0], rest[1], rest[2], rest[3]]))
            .unwrap_or(usize::MAX);
        if len < NLMSG_HDRLEN || (len > rest.len() && !cut_ok) {
            return bad(&mut at);
        }
        let ty = u16::from_ne_bytes([rest[4], rest[5]]);
        let seq = u32::from_ne_bytes([rest[8], rest[9], rest[10], rest[11]]);
        at = at.saturating_add(len.next_multiple_of(4));
        Some(Ok(Msg {
            ty,
            seq,
            body: &rest[NLMSG_HDRLEN..len.min(rest.len())],
        }))
    })
}

/// The code of an `NLMSG_ERROR` body (0 for an ack, else `-errno`), or `None` when the body is
/// shorter than the code.
pub fn error_code(body: &[u8]) -> Option<i32> {
    body.get(..4)
        .map(|e| i32::from_ne_bytes([e[0], e[1], e[2], e[3]]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::uapi::{NLMSG_DONE, NLMSG_ERROR};

    #[test]
    fn messages_walk_a_datagram_and_stop_at_the_first_bad_header() {
        let mut d = message(NLMSG_DONE, 0, 7, &[]);
        d.extend(message(NLMSG_ERROR, 0, 8, &(-22i32).to_ne_bytes()));
        let got: Vec<_> = messages(&d, false).collect();
        assert_eq!(got.len(), 2);
        let err = got[1].unwrap();
        assert_eq!(
            (err.ty, err.seq, error_code(err.body)),
            (NLMSG_ERROR, 8, Some(-22))
        );
        // A trailing partial header is an error at its offset.
        let mut cut = d.clone();
        cut.extend_from_slice(&[1, 2, 3]);
        assert_eq!(messages(&cut, false).last(), Some(Err(d.len())));
        // A length past the end: refused, unless the last message may be cut.
        let mut long = message(NLMSG_ERROR, 0, 9, &[0; 8]);
        long.truncate(20);
        assert_eq!(messages(&long, false).next(), Some(Err(0)));
        assert_eq!(messages(&long, true).next().unwrap().unwrap().body.len(), 4);
        // A length shorter than the header never loops.
        let mut tiny = message(NLMSG_DONE, 0, 1, &[]);
        tiny[0] = 4;
        assert_eq!(messages(&tiny, true).collect::<Vec<_>>(), vec![Err(0)]);
        assert_eq!(error_code(&[1, 2]), None);
    }

    #[test]
    fn a_nested_attribute_holds_its_children_and_its_length() {
        let mut out = Vec::new();
        push_nested(&mut out, 5, |o| push_attr(o, 1, &[9]));
        assert_eq!(u16::from_ne_bytes([out[0], out[1]]), 12);
        assert_eq!(u16::from_ne_bytes([out[2], out[3]]), 5 | NLA_F_NESTED);
        let (kind, inner) = attrs(&out).next().unwrap().unwrap();
        assert_eq!(kind, 5);
        assert_eq!(attrs(inner).next(), Some(Ok((1, &[9][..]))));
    }
}
