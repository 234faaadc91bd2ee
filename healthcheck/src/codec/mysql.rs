//! The MySQL/MariaDB server greeting (Initial Handshake Packet, protocol version 10): what a
//! healthy server sends first on every connection. An ERR packet instead (too many connections,
//! host blocked) fails the check with the server's own message.

/// Protocol version of every MySQL server since 3.21 and of MariaDB.
pub const PROTOCOL_V10: u8 = 0x0a;
const ERR: u8 = 0xff;
/// The most of the greeting a probe reads.
pub const MAX_GREETING: usize = 16 * 1024;

/// Why the first packet is not a usable greeting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MysqlGreetingError {
    /// Fewer bytes than the packet header or its length field promise.
    #[error("truncated mysql packet ({0} bytes)")]
    Truncated(usize),
    /// The greeting must be packet 0 and fit in [`MAX_GREETING`].
    #[error("bad mysql packet header (length {len}, sequence {seq})")]
    BadHeader {
        /// Payload length.
        len: usize,
        /// Sequence id.
        seq: u8,
    },
    /// The server refused us with an ERR packet.
    #[error("mysql error {code}: {message}")]
    Refused {
        /// Server error code, e.g. 1040 (too many connections).
        code: u16,
        /// Server message.
        message: String,
    },
    /// Some other protocol version.
    #[error("mysql protocol version {0}, want 10")]
    WrongProtocol(u8),
    /// The server version string is not NUL-terminated.
    #[error("malformed mysql greeting")]
    Malformed,
}

/// What a greeting says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The server version string, e.g. `10.11.6-MariaDB-0+deb12u1`.
    pub server_version: String,
    /// The connection id the server assigned.
    pub connection_id: u32,
}

/// How many bytes the first packet needs in total, once its 4-byte header is known; `None` while
/// fewer than 4 bytes have arrived.
pub fn needed(buf: &[u8]) -> Option<usize> {
    let h = buf.get(..4)?;
    Some(4 + usize::from(h[0]) + (usize::from(h[1]) << 8) + (usize::from(h[2]) << 16))
}

/// Parses the first packet the server sent.
pub fn parse_greeting(buf: &[u8]) -> Result<Greeting, MysqlGreetingError> {
    let total = needed(buf).ok_or(MysqlGreetingError::Truncated(buf.len()))?;
    let (len, seq) = (total - 4, buf[3]);
    if seq != 0 || len == 0 || total > MAX_GREETING {
        return Err(MysqlGreetingError::BadHeader { len, seq });
    }
    let payload = buf
        .get(4..total)
        .ok_or(MysqlGreetingError::Truncated(buf.len()))?;
    match payload[0] {
        PROTOCOL_V10 => {
            let rest = &payload[1..];
            let nul = rest
                .iter()
                .position(|&b| b == 0)
                .ok_or(MysqlGreetingError::Malformed)?;
            let server_version = String::from_utf8_lossy(&rest[..nul]).into_owned();
            let id = rest
                .get(nul + 1..nul + 5)
                .ok_or(MysqlGreetingError::Malformed)?;
            Ok(Greeting {
                server_version,
                connection_id: u32::from_le_bytes([id[0], id[1], id[2], id[3]]),
            })
        }
        ERR => {
            let code = payload
                .get(1..3)
                .map_or(0, |c| u16::from_le_bytes([c[0], c[1]]));
            let mut msg = payload.get(3..).unwrap_or_default();
            // 4.1+ servers put `#` and a 5-byte SQL state first; pre-handshake errors do not.
            if msg.first() == Some(&b'#') && msg.len() >= 6 {
                msg = &msg[6..];
            }
            let message: String = String::from_utf8_lossy(msg).chars().take(200).collect();
            Err(MysqlGreetingError::Refused { code, message })
        }
        other => Err(MysqlGreetingError::WrongProtocol(other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet(seq: u8, payload: &[u8]) -> Vec<u8> {
        let n = payload.len();
        let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
        p.extend_from_slice(payload);
        p
    }

    #[test]
    fn parses_a_mariadb_greeting() {
        let mut g = vec![PROTOCOL_V10];
        g.extend_from_slice(b"10.11.6-MariaDB\0");
        g.extend_from_slice(&42u32.to_le_bytes());
        g.extend_from_slice(b"salt1234\0more capability bytes");
        let p = packet(0, &g);
        assert_eq!(needed(&p), Some(p.len()));
        assert_eq!(needed(&p[..3]), None);
        assert_eq!(
            parse_greeting(&p),
            Ok(Greeting {
                server_version: "10.11.6-MariaDB".into(),
                connection_id: 42
            })
        );
    }

    #[test]
    fn err_packet_carries_the_server_message() {
        // Without and with the SQL state marker (`#` and five characters) before the message.
        for (body, code, message) in [
            (
                [&[ERR][..], &1040u16.to_le_bytes(), b"Too many connections"].concat(),
                1040,
                "Too many connections",
            ),
            (
                [&[ERR, 0x15, 0x04][..], b"#28000Access denied"].concat(),
                1045,
                "Access denied",
            ),
        ] {
            assert_eq!(
                parse_greeting(&packet(0, &body)),
                Err(MysqlGreetingError::Refused {
                    code,
                    message: message.into()
                })
            );
        }
    }

    #[test]
    fn hostile_greetings_are_rejected() {
        assert_eq!(parse_greeting(b""), Err(MysqlGreetingError::Truncated(0)));
        assert_eq!(
            parse_greeting(b"\x05\0\0\0\x0a"),
            Err(MysqlGreetingError::Truncated(5))
        );
        assert_eq!(
            parse_greeting(&packet(1, b"\x0a5.7\0abcd")),
            Err(MysqlGreetingError::BadHeader { len: 9, seq: 1 })
        );
        assert!(matches!(
            parse_greeting(b"\xff\xff\xff\0\x0a"),
            Err(MysqlGreetingError::BadHeader { .. })
        ));
        assert_eq!(
            parse_greeting(&packet(0, b"")),
            Err(MysqlGreetingError::BadHeader { len: 0, seq: 0 })
        );
        assert_eq!(
            parse_greeting(&packet(0, b"\x09old")),
            Err(MysqlGreetingError::WrongProtocol(9))
        );
        assert_eq!(
            parse_greeting(&packet(0, b"\x0ano-nul")),
            Err(MysqlGreetingError::Malformed)
        );
        assert_eq!(
            parse_greeting(&packet(0, b"\x0a5\0ab")),
            Err(MysqlGreetingError::Malformed)
        );
        // An HTTP server on the MySQL port.
        assert!(parse_greeting(b"HTTP/1.1 400 Bad Request\r\n\r\n").is_err());
        assert!(matches!(
            parse_greeting(&packet(0, b"\xff")),
            Err(MysqlGreetingError::Refused { code: 0, .. })
        ));
    }
}
