//! TLS ClientHello server-name (SNI) extraction from the first bytes of a TCP connection, for
//! the `TLS_SNI` payload key. Untrusted input: every length is checked against what is there,
//! nothing allocates, and the parser never reads past the buffer (fuzzed by `fuzz/tls_sni`).

/// What the first bytes say about the server name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sni<'a> {
    /// A complete ClientHello with this server name (as sent; compare in lower case).
    Name(&'a [u8]),
    /// A complete ClientHello without a server name, or not TLS at all.
    Absent,
    /// A ClientHello has started but more bytes are needed.
    NeedMore,
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.b.len() < n {
            return None;
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Some(h)
    }
    fn u8(&mut self) -> Option<usize> {
        self.take(1).map(|b| usize::from(b[0]))
    }
    fn u16(&mut self) -> Option<usize> {
        self.take(2)
            .map(|b| usize::from(u16::from_be_bytes([b[0], b[1]])))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]))
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()?;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()?;
        self.take(n)
    }
}

/// Parses the server name out of the first TLS record of `buf`. Only the first record is read
/// (a ClientHello split across records reports `Absent`, like most SNI proxies).
pub fn parse(buf: &[u8]) -> Sni<'_> {
    // Record header: type 22 (handshake), version 3.x, length.
    if buf.is_empty() {
        return Sni::NeedMore;
    }
    if buf[0] != 22 {
        return Sni::Absent;
    }
    if buf.len() < 5 {
        return Sni::NeedMore;
    }
    if buf[1] != 3 {
        return Sni::Absent;
    }
    let rec_len = usize::from(u16::from_be_bytes([buf[3], buf[4]]));
    if buf.len() < 5 + rec_len {
        return Sni::NeedMore;
    }
    let mut r = Reader {
        b: &buf[5..5 + rec_len],
    };
    hello(&mut r).map_or(Sni::Absent, |n| n.map_or(Sni::Absent, Sni::Name))
}

/// `Some(Some(name))`, `Some(None)` (no SNI), or `None` (malformed).
fn hello<'a>(r: &mut Reader<'a>) -> Option<Option<&'a [u8]>> {
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let len = r.u24()?;
    let mut h = Reader { b: r.take(len)? };
    h.take(2 + 32)?; // client version, random
    h.vec8()?; // session id
    h.vec16()?; // cipher suites
    h.vec8()?; // compression methods
    if h.b.is_empty() {
        return Some(None); // no extensions
    }
    let mut ext = Reader { b: h.vec16()? };
    while !ext.b.is_empty() {
        let typ = ext.u16()?;
        let body = ext.vec16()?;
        if typ != 0 {
            continue;
        }
        let mut sn = Reader { b: body };
        let mut list = Reader { b: sn.vec16()? };
        while !list.b.is_empty() {
            let kind = list.u8()?;
            let name = list.vec16()?;
            if kind == 0 {
                return Some(Some(name));
            }
        }
        return Some(None);
    }
    Some(None)
}

/// A minimal TLS 1.2-style ClientHello carrying `name` (for tests and benchmarks).
pub fn client_hello(name: &str) -> Vec<u8> {
    let mut sni = Vec::new();
    let n = name.as_bytes();
    sni.extend_from_slice(&((n.len() + 3) as u16).to_be_bytes());
    sni.push(0);
    sni.extend_from_slice(&(n.len() as u16).to_be_bytes());
    sni.extend_from_slice(n);
    let mut exts = Vec::new();
    exts.extend_from_slice(&0u16.to_be_bytes());
    exts.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    exts.extend_from_slice(&sni);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[0x11; 32]);
    body.push(0); // session id
    body.extend_from_slice(&[0, 2, 0x13, 0x01]); // one cipher suite
    body.extend_from_slice(&[1, 0]); // null compression
    body.extend_from_slice(&(exts.len() as u16).to_be_bytes());
    body.extend_from_slice(&exts);
    let mut hs = vec![1];
    hs.extend_from_slice(&(body.len() as u32).to_be_bytes()[1..]);
    hs.extend_from_slice(&body);
    let mut rec = vec![22, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_name_and_asks_for_more() {
        let h = client_hello("www.example.com");
        assert_eq!(parse(&h), Sni::Name(b"www.example.com"));
        for cut in 0..h.len() {
            assert_eq!(parse(&h[..cut]), Sni::NeedMore, "cut at {cut}");
        }
        assert_eq!(parse(b"GET / HTTP/1.1\r\n"), Sni::Absent);
    }

    #[test]
    fn hostile_lengths_are_absent_not_panics() {
        let mut h = client_hello("a.test");
        // Inflate the inner handshake length beyond the record.
        h[6] = 0xff;
        assert_eq!(parse(&h), Sni::Absent);
        let mut h = client_hello("a.test");
        let last = h.len() - 9;
        h[last] = 0xff; // server name list length
        assert_eq!(parse(&h), Sni::Absent);
        for len in 0..64 {
            let junk: Vec<u8> = (0..len).map(|i| (i * 37 % 251) as u8).collect();
            let mut rec = vec![22, 3, 1, 0, len as u8];
            rec.extend_from_slice(&junk);
            let _ = parse(&rec);
        }
    }
}
