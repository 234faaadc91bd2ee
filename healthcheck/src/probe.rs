//! Probers: the [`Prober`] trait the scheduler drives, and [`NetProber`], which runs TCP and HTTP
//! probes over real sockets. Time bounds are not applied here: the scheduler wraps every probe in
//! the check's timeout, so a prober may simply await the network.

use std::future::Future;
use std::io;
use std::pin::pin;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HOST, USER_AGENT};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::check::{HttpProbe, ProbeOutcome, ProbeSpec, TcpProbe};

/// The most HTTP body a probe reads, whatever the expected prefix.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

/// Runs one probe. Implementations must not panic on anything the network says.
pub trait Prober: Send + Sync + 'static {
    /// Runs `spec` once and says whether it passed.
    fn probe(&self, spec: &ProbeSpec) -> impl Future<Output = ProbeOutcome> + Send;
}

/// Probes over the network. With `dry_run`, every probe passes without touching the network
/// (Seesaw's `-dry_run`).
#[derive(Debug, Clone, Copy)]
pub struct NetProber {
    dry_run: bool,
}

// === impl NetProber ===

impl NetProber {
    /// A prober; `dry_run` makes every probe pass.
    pub fn new(dry_run: bool) -> Self {
        Self { dry_run }
    }
}

impl Prober for NetProber {
    async fn probe(&self, spec: &ProbeSpec) -> ProbeOutcome {
        if self.dry_run {
            return ProbeOutcome::pass("dry run");
        }
        match spec {
            ProbeSpec::Tcp(p) => tcp(p).await,
            ProbeSpec::Http(p) => http(p).await,
            ProbeSpec::Unsupported { kind } => {
                ProbeOutcome::fail(format!("check kind {kind} not supported yet"))
            }
            ProbeSpec::Invalid { reason } => ProbeOutcome::fail(reason.clone()),
        }
    }
}

/// Connects; writes `send` if set; if `receive` is set, reads until that many bytes arrived and
/// requires them to equal it (failing as soon as a byte differs).
pub async fn tcp(p: &TcpProbe) -> ProbeOutcome {
    let start = Instant::now();
    let mut stream = match TcpStream::connect(p.addr).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("tcp connect {}: {}", p.addr, io_msg(&e))),
    };
    if !p.send.is_empty()
        && let Err(e) = stream.write_all(&p.send).await
    {
        return ProbeOutcome::fail(format!("tcp send to {}: {}", p.addr, io_msg(&e)));
    }
    if !p.receive.is_empty() {
        let mut buf = vec![0u8; p.receive.len()];
        let mut n = 0;
        while n < buf.len() {
            match stream.read(&mut buf[n..]).await {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) => {
                    return ProbeOutcome::fail(format!("tcp read from {}: {}", p.addr, io_msg(&e)));
                }
            }
            if buf[..n] != p.receive[..n] {
                break;
            }
        }
        if buf[..n] != p.receive[..] {
            return ProbeOutcome::fail(format!(
                "tcp {}: got \"{}\", want \"{}\"",
                p.addr,
                escape(&buf[..n]),
                escape(&p.receive)
            ));
        }
    }
    ProbeOutcome::pass(format!(
        "tcp {} in {} ms",
        p.addr,
        start.elapsed().as_millis()
    ))
}

/// One request on a fresh HTTP/1.1 connection; passes iff the status is `code` and, if `receive`
/// is set, the body starts with it.
pub async fn http(p: &HttpProbe) -> ProbeOutcome {
    let start = Instant::now();
    let stream = match TcpStream::connect(p.addr).await {
        Ok(s) => s,
        Err(e) => return ProbeOutcome::fail(format!("http connect {}: {}", p.addr, io_msg(&e))),
    };
    let (mut sender, conn) = match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    {
        Ok(x) => x,
        Err(e) => return ProbeOutcome::fail(format!("http {}: {e}", p.addr)),
    };
    let request = Request::builder()
        .method(p.method.clone())
        .uri(p.path.clone())
        .header(HOST, p.addr.to_string())
        .header(USER_AGENT, "seesaw-healthcheck")
        .body(Empty::<Bytes>::new());
    let request = match request {
        Ok(r) => r,
        Err(e) => return ProbeOutcome::fail(format!("http {}: cannot build request: {e}", p.addr)),
    };
    let want_body = p.receive.len().min(MAX_HTTP_BODY);
    let exchange = async {
        let response = sender.send_request(request).await?;
        let status = response.status();
        let body = read_prefix(response.into_body(), want_body).await?;
        Ok::<_, hyper::Error>((status, body))
    };
    // The connection future does the socket I/O; drive it alongside the exchange rather than in a
    // spawned task so nothing outlives the probe (and its timeout).
    let mut conn = pin!(conn);
    let mut exchange = pin!(exchange);
    let result = tokio::select! {
        r = &mut exchange => r,
        c = &mut conn => match c {
            Ok(()) => exchange.await,
            Err(e) => Err(e),
        },
    };
    let (status, body) = match result {
        Ok(x) => x,
        Err(e) => return ProbeOutcome::fail(format!("http {}: {e}", p.addr)),
    };
    let want = StatusCode::from_u16(p.code).unwrap_or(StatusCode::OK);
    if status != want {
        return ProbeOutcome::fail(format!(
            "http {} from {}, want {}",
            status.as_u16(),
            p.addr,
            want.as_u16()
        ));
    }
    if !body.starts_with(&p.receive[..want_body]) {
        return ProbeOutcome::fail(format!(
            "http {} from {}: body \"{}\" does not start with \"{}\"",
            status.as_u16(),
            p.addr,
            escape(&body),
            escape(&p.receive)
        ));
    }
    ProbeOutcome::pass(format!(
        "http {} in {} ms",
        status.as_u16(),
        start.elapsed().as_millis()
    ))
}

/// Reads the body until `limit` bytes arrived or it ends.
async fn read_prefix(mut body: Incoming, limit: usize) -> Result<Vec<u8>, hyper::Error> {
    let mut buf = Vec::new();
    while buf.len() < limit {
        let Some(frame) = body.frame().await else {
            break;
        };
        if let Ok(data) = frame?.into_data() {
            let take = data.len().min(limit - buf.len());
            buf.extend_from_slice(&data[..take]);
        }
    }
    Ok(buf)
}

/// `Connection refused (os error 111)` → `connection refused`: the message stays readable in
/// `show healthchecks` and the errno adds nothing there.
fn io_msg(e: &io::Error) -> String {
    let s = e.to_string();
    let s = s.split(" (os error").next().unwrap_or(&s);
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Bytes as printable text for messages (at most 64 characters).
fn escape(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(b).escape_debug().collect();
    if s.chars().count() > 64 {
        let cut: String = s.chars().take(64).collect();
        format!("{cut}...")
    } else {
        s
    }
}

#[cfg(test)]
mod tests;
