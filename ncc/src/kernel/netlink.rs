//! Netlink's framing, shared by the rtnetlink ([`super::rtnl`]) and IPVS generic-netlink codecs:
//! the message header (`nlmsghdr`: length, type, flags, sequence, port id 0, all native-endian)
//! and attributes (`nlattr`: length, type, payload, zero padding to a multiple of 4). Pure.

/// The attribute type without its flags (`NLA_TYPE_MASK`).
const NLA_TYPE_MASK: u16 = 0x3fff;

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

/// A message of type `ty` with `flags` and `seq` (port id 0) holding `body`.
pub fn message(ty: u16, flags: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let len = u32::try_from(16 + body.len()).unwrap_or(u32::MAX);
    let mut out = Vec::with_capacity(16 + body.len());
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
