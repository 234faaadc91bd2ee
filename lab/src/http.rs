//! A deliberately tiny HTTP client over `std::net::TcpStream`: hand-written requests, so what
//! crosses the load balancer is exactly what the test says, and so it works from any thread,
//! including one that has entered a network namespace.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// The largest response head we accept; more means the peer is not the demo backend.
const MAX_HEAD: usize = 64 * 1024;

/// Why an HTTP exchange failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// Connecting, writing or reading failed.
    #[error("http {addr}: {source}")]
    Io {
        /// The peer.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The response was not well-formed HTTP/1.x.
    #[error("http {addr}: malformed response: {reason}")]
    Malformed {
        /// The peer.
        addr: SocketAddr,
        /// What was wrong.
        reason: String,
    },
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lower-cased) and values, in order.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as text, trimmed of surrounding whitespace (the demo backend answers `NAME\n`).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).trim().to_owned()
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP/1.0 GET: connect, send, read to EOF. `timeout` bounds the connect and every read.
pub fn get(addr: SocketAddr, path: &str, timeout: Duration) -> Result<Response, HttpError> {
    let io = |source| HttpError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
    stream.set_read_timeout(Some(timeout)).map_err(io)?;
    stream.set_write_timeout(Some(timeout)).map_err(io)?;
    stream
        .write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
        .map_err(io)?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).map_err(io)?;
    parse_full(addr, &raw)
}

/// An HTTP/1.1 keep-alive connection: several requests on one TCP stream.
#[derive(Debug)]
pub struct KeepAlive {
    addr: SocketAddr,
    reader: BufReader<TcpStream>,
}

impl KeepAlive {
    /// Connects; `timeout` bounds the connect and every later read and write.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> Result<Self, HttpError> {
        let io = |source| HttpError::Io { addr, source };
        let stream = TcpStream::connect_timeout(&addr, timeout).map_err(io)?;
        stream.set_read_timeout(Some(timeout)).map_err(io)?;
        stream.set_write_timeout(Some(timeout)).map_err(io)?;
        Ok(Self {
            addr,
            reader: BufReader::new(stream),
        })
    }

    /// Sends a GET and reads exactly one response (framed by `Content-Length`).
    pub fn get(&mut self, path: &str) -> Result<Response, HttpError> {
        let addr = self.addr;
        let io = |source| HttpError::Io { addr, source };
        self.reader
            .get_mut()
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: keep-alive\r\n\r\n")
                    .as_bytes(),
            )
            .map_err(io)?;
        let mut head = String::new();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).map_err(io)?;
            if n == 0 {
                return Err(malformed(
                    addr,
                    "connection closed inside the response head",
                ));
            }
            head.push_str(&line);
            if head.len() > MAX_HEAD {
                return Err(malformed(addr, "response head too large"));
            }
            if line == "\r\n" || line == "\n" {
                break;
            }
        }
        let mut resp = parse_head(addr, &head)?;
        let len = resp
            .header("content-length")
            .ok_or_else(|| malformed(addr, "keep-alive response without content-length"))?
            .parse::<usize>()
            .map_err(|e| malformed(addr, &format!("content-length: {e}")))?;
        let mut body = vec![0; len];
        self.reader.read_exact(&mut body).map_err(io)?;
        resp.body = body;
        Ok(resp)
    }
}

fn malformed(addr: SocketAddr, reason: &str) -> HttpError {
    HttpError::Malformed {
        addr,
        reason: reason.to_owned(),
    }
}

/// Parses a whole response read to EOF.
fn parse_full(addr: SocketAddr, raw: &[u8]) -> Result<Response, HttpError> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| i + 4)
        .ok_or_else(|| malformed(addr, &format!("no end of head in {} bytes", raw.len())))?;
    let head =
        std::str::from_utf8(&raw[..split]).map_err(|_| malformed(addr, "head is not utf-8"))?;
    let mut resp = parse_head(addr, head)?;
    resp.body = raw[split..].to_vec();
    Ok(resp)
}

/// Parses a status line and headers; the body is left empty.
fn parse_head(addr: SocketAddr, head: &str) -> Result<Response, HttpError> {
    let mut lines = head.lines();
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(malformed(addr, &format!("status line {status_line:?}")));
    }
    let status = parts
        .next()
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| malformed(addr, &format!("status line {status_line:?}")))?;
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn addr() -> SocketAddr {
        "127.0.0.1:9".parse().expect("literal")
    }

    #[test]
    fn parses_a_full_response() {
        let r = parse_full(
            addr(),
            b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX: y\r\n\r\nbe1\n",
        )
        .expect("valid");
        assert_eq!(r.status, 200);
        assert_eq!(r.text(), "be1");
        assert_eq!(r.header("content-length"), Some("4"));
        assert!(parse_full(addr(), b"SSH-2.0\r\n\r\n").is_err());
        assert!(parse_full(addr(), b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn keep_alive_reads_two_responses_on_one_connection() {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind");
        let a = l.local_addr().expect("addr");
        let server = std::thread::spawn(move || {
            let (s, _) = l.accept().expect("accept");
            let mut r = BufReader::new(s);
            for i in 0..2 {
                let mut line = String::new();
                loop {
                    line.clear();
                    r.read_line(&mut line).expect("read request");
                    if line == "\r\n" {
                        break;
                    }
                }
                let body = format!("reply{i}\n");
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                r.get_mut().write_all(resp.as_bytes()).expect("write");
            }
        });
        let mut c = KeepAlive::connect(a, Duration::from_secs(2)).expect("connect");
        assert_eq!(c.get("/").expect("first").text(), "reply0");
        assert_eq!(c.get("/").expect("second").text(), "reply1");
        server.join().expect("server thread");
    }
}
