//! RADIUS (RFC 2865) Access-Request and response checking: User-Password hiding (§5.2), the
//! Response Authenticator (§3), and Message-Authenticator (RFC 3579 §3.2, HMAC-MD5) both on the
//! request and, when present, on the response. A wrong shared secret therefore fails the check.

use md5::{Digest, Md5};

/// Access-Request.
pub const ACCESS_REQUEST: u8 = 1;
/// Access-Accept.
pub const ACCESS_ACCEPT: u8 = 2;
/// Access-Reject.
pub const ACCESS_REJECT: u8 = 3;
/// Access-Challenge.
pub const ACCESS_CHALLENGE: u8 = 11;

const ATTR_USER_NAME: u8 = 1;
const ATTR_USER_PASSWORD: u8 = 2;
const ATTR_NAS_IP_ADDRESS: u8 = 4;
const ATTR_SERVICE_TYPE: u8 = 6;
const ATTR_NAS_IDENTIFIER: u8 = 32;
const ATTR_NAS_PORT_TYPE: u8 = 61;
const ATTR_MESSAGE_AUTHENTICATOR: u8 = 80;
const SERVICE_TYPE_LOGIN: u32 = 1;
const NAS_PORT_TYPE_VIRTUAL: u32 = 5;

/// The largest packet RFC 2865 allows.
pub const MAX_PACKET: usize = 4096;
const HEADER: usize = 20;

/// Why a request cannot be built or a response is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RadiusCodecError {
    /// User-Password is limited to 128 bytes.
    #[error("radius password longer than 128 bytes")]
    PasswordTooLong,
    /// An attribute value longer than 253 bytes.
    #[error("radius attribute {0} longer than 253 bytes")]
    AttributeTooLong(u8),
    /// Shorter than a header, or than its own length field.
    #[error("truncated radius packet ({0} bytes)")]
    Truncated(usize),
    /// Length field below 20 or above 4096.
    #[error("bad radius length {0}")]
    BadLength(usize),
    /// An attribute running past the packet or shorter than its own header.
    #[error("malformed radius attributes")]
    BadAttributes,
    /// The identifier does not match the request's.
    #[error("radius identifier {got}, want {want}")]
    WrongIdentifier {
        /// Received.
        got: u8,
        /// Sent.
        want: u8,
    },
    /// The Response Authenticator does not verify (wrong secret, or a forged reply).
    #[error("radius response authenticator mismatch (wrong secret?)")]
    BadAuthenticator,
    /// The Message-Authenticator does not verify.
    #[error("radius message-authenticator mismatch (wrong secret?)")]
    BadMessageAuthenticator,
    /// Not a response to an Access-Request.
    #[error("unexpected radius code {0}")]
    UnexpectedCode(u8),
}

/// What an Access-Request carries.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// Packet identifier.
    pub id: u8,
    /// Request Authenticator: 16 unpredictable bytes.
    pub authenticator: [u8; 16],
    /// User-Name.
    pub user: &'a str,
    /// User-Password, in clear (hidden on the wire).
    pub password: &'a str,
    /// Shared secret.
    pub secret: &'a [u8],
    /// NAS-Identifier (Seesaw: the host name).
    pub nas_identifier: &'a str,
    /// NAS-IP-Address, if the probe's source is IPv4.
    pub nas_ip: Option<[u8; 4]>,
}

/// Encodes an Access-Request with User-Name, User-Password, NAS-Identifier, NAS-IP-Address,
/// NAS-Port-Type = Virtual, Service-Type = Login and a Message-Authenticator.
pub fn encode_access_request(r: &AccessRequest<'_>) -> Result<Vec<u8>, RadiusCodecError> {
    let mut p = Vec::with_capacity(128);
    p.extend_from_slice(&[ACCESS_REQUEST, r.id, 0, 0]);
    p.extend_from_slice(&r.authenticator);
    push_attr(&mut p, ATTR_USER_NAME, r.user.as_bytes())?;
    let hidden = hide_password(r.password.as_bytes(), r.secret, &r.authenticator)?;
    push_attr(&mut p, ATTR_USER_PASSWORD, &hidden)?;
    if !r.nas_identifier.is_empty() {
        push_attr(&mut p, ATTR_NAS_IDENTIFIER, r.nas_identifier.as_bytes())?;
    }
    if let Some(ip) = r.nas_ip {
        push_attr(&mut p, ATTR_NAS_IP_ADDRESS, &ip)?;
    }
    push_attr(
        &mut p,
        ATTR_NAS_PORT_TYPE,
        &NAS_PORT_TYPE_VIRTUAL.to_be_bytes(),
    )?;
    push_attr(&mut p, ATTR_SERVICE_TYPE, &SERVICE_TYPE_LOGIN.to_be_bytes())?;
    // Message-Authenticator: HMAC-MD5 over the packet with this attribute zeroed.
    let ma_at = p.len() + 2;
    push_attr(&mut p, ATTR_MESSAGE_AUTHENTICATOR, &[0; 16])?;
    let len = u16::try_from(p.len()).map_err(|_| RadiusCodecError::BadLength(p.len()))?;
    p[2..4].copy_from_slice(&len.to_be_bytes());
    let mac = hmac_md5(r.secret, &p);
    p[ma_at..ma_at + 16].copy_from_slice(&mac);
    Ok(p)
}

/// RFC 2865 §5.2: the password, NUL-padded to a multiple of 16, XORed with
/// MD5(secret + previous block) chained from the Request Authenticator.
pub fn hide_password(
    password: &[u8],
    secret: &[u8],
    authenticator: &[u8; 16],
) -> Result<Vec<u8>, RadiusCodecError> {
    if password.len() > 128 {
        return Err(RadiusCodecError::PasswordTooLong);
    }
    let padded_len = password.len().div_ceil(16).max(1) * 16;
    let mut out = password.to_vec();
    out.resize(padded_len, 0);
    let mut prev: [u8; 16] = *authenticator;
    for block in out.chunks_exact_mut(16) {
        let b = md5(&[secret, &prev]);
        for (c, k) in block.iter_mut().zip(b.iter()) {
            *c ^= k;
        }
        prev.copy_from_slice(block);
    }
    Ok(out)
}

/// Checks a response to the request with `id` and `authenticator`: length, attributes, identifier,
/// Response Authenticator and (if present) Message-Authenticator. Returns the response code.
pub fn check_response(
    buf: &[u8],
    id: u8,
    authenticator: &[u8; 16],
    secret: &[u8],
) -> Result<u8, RadiusCodecError> {
    if buf.len() < HEADER {
        return Err(RadiusCodecError::Truncated(buf.len()));
    }
    let len = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if !(HEADER..=MAX_PACKET).contains(&len) {
        return Err(RadiusCodecError::BadLength(len));
    }
    if buf.len() < len {
        return Err(RadiusCodecError::Truncated(buf.len()));
    }
    // Octets past the length field are padding and are ignored (RFC 2865 §3).
    let pkt = &buf[..len];
    let (code, got_id) = (pkt[0], pkt[1]);
    if got_id != id {
        return Err(RadiusCodecError::WrongIdentifier {
            got: got_id,
            want: id,
        });
    }
    let mut ma_at = None;
    let mut at = HEADER;
    while at < len {
        let (t, l) = match pkt.get(at..at + 2) {
            Some(&[t, l]) => (t, usize::from(l)),
            _ => return Err(RadiusCodecError::BadAttributes),
        };
        if l < 2 || at + l > len {
            return Err(RadiusCodecError::BadAttributes);
        }
        if t == ATTR_MESSAGE_AUTHENTICATOR {
            if l != 18 {
                return Err(RadiusCodecError::BadAttributes);
            }
            ma_at = Some(at + 2);
        }
        at += l;
    }
    let expected = md5(&[&pkt[..4], authenticator, &pkt[HEADER..], secret]);
    if pkt[4..HEADER] != expected {
        return Err(RadiusCodecError::BadAuthenticator);
    }
    if let Some(ma) = ma_at {
        let mut copy = pkt.to_vec();
        copy[4..HEADER].copy_from_slice(authenticator);
        copy[ma..ma + 16].fill(0);
        if pkt[ma..ma + 16] != hmac_md5(secret, &copy) {
            return Err(RadiusCodecError::BadMessageAuthenticator);
        }
    }
    match code {
        ACCESS_ACCEPT | ACCESS_REJECT | ACCESS_CHALLENGE => Ok(code),
        other => Err(RadiusCodecError::UnexpectedCode(other)),
    }
}

/// The name of a response code, for messages.
pub fn code_name(code: u8) -> &'static str {
    match code {
        ACCESS_ACCEPT => "access-accept",
        ACCESS_REJECT => "access-reject",
        ACCESS_CHALLENGE => "access-challenge",
        _ => "unknown",
    }
}

fn push_attr(p: &mut Vec<u8>, t: u8, v: &[u8]) -> Result<(), RadiusCodecError> {
    let l = u8::try_from(v.len() + 2)
        .ok()
        .filter(|&l| l >= 2)
        .ok_or(RadiusCodecError::AttributeTooLong(t))?;
    p.push(t);
    p.push(l);
    p.extend_from_slice(v);
    Ok(())
}

fn md5(parts: &[&[u8]]) -> [u8; 16] {
    let mut h = Md5::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

/// HMAC-MD5 (RFC 2104).
fn hmac_md5(key: &[u8], msg: &[u8]) -> [u8; 16] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..16].copy_from_slice(&md5(&[key]));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let ipad: Vec<u8> = k.iter().map(|b| b ^ 0x36).collect();
    let opad: Vec<u8> = k.iter().map(|b| b ^ 0x5c).collect();
    let inner = md5(&[&ipad, msg]);
    md5(&[&opad, &inner])
}

#[cfg(test)]
mod tests {
    use super::*;

    const AUTH: [u8; 16] = *b"0123456789abcdef";

    /// A response as a server holding `secret` would send it.
    fn response(code: u8, id: u8, attrs: &[u8], secret: &[u8]) -> Vec<u8> {
        let len = u16::try_from(HEADER + attrs.len()).unwrap();
        let mut p = vec![code, id];
        p.extend_from_slice(&len.to_be_bytes());
        p.extend_from_slice(&AUTH);
        p.extend_from_slice(attrs);
        let ra = md5(&[&p[..4], &AUTH, attrs, secret]);
        p[4..20].copy_from_slice(&ra);
        p
    }

    #[test]
    fn rfc2865_password_hiding_round_trips() {
        // Unhiding is the same XOR chain: check against an independent computation.
        let hidden = hide_password(b"arctangent", b"xyzzy5461", &AUTH).unwrap();
        assert_eq!(hidden.len(), 16);
        let b = md5(&[b"xyzzy5461", &AUTH]);
        let clear: Vec<u8> = hidden.iter().zip(b.iter()).map(|(h, k)| h ^ k).collect();
        assert_eq!(&clear[..10], b"arctangent");
        assert!(clear[10..].iter().all(|&c| c == 0));
        // Two blocks chain through the first hidden block.
        let long = hide_password(&[b'p'; 20], b"s", &AUTH).unwrap();
        assert_eq!(long.len(), 32);
        let b2 = md5(&[b"s", &long[..16]]);
        assert_eq!(long[16] ^ b2[0], b'p');
        assert_eq!(
            hide_password(&[0; 129], b"s", &AUTH),
            Err(RadiusCodecError::PasswordTooLong)
        );
        assert_eq!(hide_password(b"", b"s", &AUTH).unwrap().len(), 16);
    }

    #[test]
    fn hmac_md5_matches_rfc2104_vectors() {
        let mac = hmac_md5(&[0x0b; 16], b"Hi There");
        assert_eq!(
            mac,
            [
                0x92, 0x94, 0x72, 0x7a, 0x36, 0x38, 0xbb, 0x1c, 0x13, 0xf4, 0x8e, 0xf8, 0x15, 0x8b,
                0xfc, 0x9d
            ]
        );
        let mac = hmac_md5(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(mac[..4], [0x75, 0x0c, 0x78, 0x3e]);
    }

    #[test]
    fn request_layout_and_message_authenticator() {
        let req = AccessRequest {
            id: 9,
            authenticator: AUTH,
            user: "alice",
            password: "pw",
            secret: b"s3cret",
            nas_identifier: "lb1",
            nas_ip: Some([127, 0, 0, 1]),
        };
        let p = encode_access_request(&req).unwrap();
        assert_eq!(p[0], ACCESS_REQUEST);
        assert_eq!(p[1], 9);
        assert_eq!(usize::from(u16::from_be_bytes([p[2], p[3]])), p.len());
        assert_eq!(&p[4..20], &AUTH);
        assert_eq!(&p[20..27], &[1, 7, b'a', b'l', b'i', b'c', b'e']);
        // The Message-Authenticator is the last attribute and verifies.
        let ma = p.len() - 16;
        assert_eq!(p[ma - 2], ATTR_MESSAGE_AUTHENTICATOR);
        let mut zeroed = p.clone();
        zeroed[ma..].fill(0);
        assert_eq!(p[ma..], hmac_md5(b"s3cret", &zeroed));
        let long = "u".repeat(300);
        assert_eq!(
            encode_access_request(&AccessRequest { user: &long, ..req }),
            Err(RadiusCodecError::AttributeTooLong(ATTR_USER_NAME))
        );
    }

    #[test]
    fn responses_are_authenticated() {
        let ok = response(ACCESS_ACCEPT, 4, &[18, 4, b'h', b'i'], b"sec");
        assert_eq!(check_response(&ok, 4, &AUTH, b"sec"), Ok(ACCESS_ACCEPT));
        assert_eq!(
            check_response(&ok, 4, &AUTH, b"wrong"),
            Err(RadiusCodecError::BadAuthenticator)
        );
        assert_eq!(
            check_response(&ok, 5, &AUTH, b"sec"),
            Err(RadiusCodecError::WrongIdentifier { got: 4, want: 5 })
        );
        let rej = response(ACCESS_REJECT, 1, &[], b"sec");
        assert_eq!(check_response(&rej, 1, &AUTH, b"sec"), Ok(ACCESS_REJECT));
        let ch = response(ACCESS_CHALLENGE, 1, &[], b"sec");
        assert_eq!(check_response(&ch, 1, &AUTH, b"sec"), Ok(ACCESS_CHALLENGE));
        let weird = response(5, 1, &[], b"sec");
        assert_eq!(
            check_response(&weird, 1, &AUTH, b"sec"),
            Err(RadiusCodecError::UnexpectedCode(5))
        );
        // Trailing padding past the length field is ignored.
        let mut padded = ok.clone();
        padded.extend_from_slice(&[0; 7]);
        assert_eq!(check_response(&padded, 4, &AUTH, b"sec"), Ok(ACCESS_ACCEPT));
    }

    #[test]
    fn response_message_authenticator_is_checked() {
        // Build a response with a Message-Authenticator the way a server does.
        let secret = b"sec";
        let mut attrs = vec![ATTR_MESSAGE_AUTHENTICATOR, 18];
        attrs.extend_from_slice(&[0; 16]);
        let mut p = vec![ACCESS_ACCEPT, 2, 0, 38];
        p.extend_from_slice(&AUTH);
        p.extend_from_slice(&attrs);
        let mac = hmac_md5(secret, &p);
        p[22..38].copy_from_slice(&mac);
        let ra = md5(&[&p[..4], &AUTH, &p[20..], secret]);
        p[4..20].copy_from_slice(&ra);
        assert_eq!(check_response(&p, 2, &AUTH, secret), Ok(ACCESS_ACCEPT));
        // Corrupt the MAC and recompute the response authenticator: only the MAC catches it.
        p[30] ^= 1;
        let ra = md5(&[&p[..4], &AUTH, &p[20..], secret]);
        p[4..20].copy_from_slice(&ra);
        assert_eq!(
            check_response(&p, 2, &AUTH, secret),
            Err(RadiusCodecError::BadMessageAuthenticator)
        );
    }

    #[test]
    fn hostile_responses_are_rejected() {
        let ok = response(ACCESS_ACCEPT, 4, &[18, 4, b'h', b'i'], b"sec");
        assert_eq!(
            check_response(&ok[..10], 4, &AUTH, b"s"),
            Err(RadiusCodecError::Truncated(10))
        );
        let mut short_len = ok.clone();
        short_len[3] = 19;
        assert_eq!(
            check_response(&short_len, 4, &AUTH, b"s"),
            Err(RadiusCodecError::BadLength(19))
        );
        let mut over = ok.clone();
        over[3] = 200;
        assert_eq!(
            check_response(&over, 4, &AUTH, b"s"),
            Err(RadiusCodecError::Truncated(24))
        );
        for attrs in [&[18u8, 9, b'h'][..], &[18, 1, 0], &[18], &[80, 4, 0, 0]] {
            let r = response(ACCESS_ACCEPT, 4, attrs, b"sec");
            assert_eq!(
                check_response(&r, 4, &AUTH, b"sec"),
                Err(RadiusCodecError::BadAttributes)
            );
        }
        let mut huge = vec![ACCESS_ACCEPT, 4, 0xff, 0xff];
        huge.resize(70_000, 0);
        assert_eq!(
            check_response(&huge, 4, &AUTH, b"s"),
            Err(RadiusCodecError::BadLength(65535))
        );
    }
}
