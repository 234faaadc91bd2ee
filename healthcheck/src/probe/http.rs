//! HTTP and HTTPS probes: one request on a fresh HTTP/1.1 connection (hyper's client connection
//! over our own socket, so DSR marks and TLS are ours to set). Redirects are not followed: a 3xx
//! is judged against the expected code, as in Seesaw.

use std::pin::pin;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HOST, USER_AGENT};
use hyper::rt::{Read, Write};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::time::Instant;

use super::{TlsClients, escape, io_msg, net};
use crate::check::{HttpProbe, ProbeOutcome};

/// The most HTTP body a probe reads, whatever the expected prefix.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

/// One request; passes iff the status is `code` and, if `receive` is set, the body starts with it.
pub async fn http(p: &HttpProbe, tls: &TlsClients) -> ProbeOutcome {
    let start = Instant::now();
    let scheme = if p.tls.is_some() { "https" } else { "http" };
    let stream = match net::tcp_connect_nodelay(&p.dial).await {
        Ok(s) => s,
        Err(e) => {
            return ProbeOutcome::fail(format!("{scheme} connect {}: {}", p.dial, io_msg(&e)));
        }
    };
    let result = match &p.tls {
        None => exchange(TokioIo::new(stream), p).await,
        Some(t) => match tls.connect(stream, &t.server, t.verify).await {
            Err(e) => Err(format!("tls handshake: {}", io_msg(&e))),
            Ok(s) => match &p.tunnel {
                None => exchange(TokioIo::new(s), p).await,
                Some(authority) => {
                    Box::pin(async {
                        let s = connect_tunnel(s, authority).await?;
                        match tls.connect(s, &t.server, t.verify).await {
                            Ok(inner) => exchange(TokioIo::new(inner), p).await,
                            Err(e) => Err(format!("tls handshake in the tunnel: {}", io_msg(&e))),
                        }
                    })
                    .await
                }
            },
        },
    };
    let (status, body) = match result {
        Ok(x) => x,
        Err(e) => return ProbeOutcome::fail(format!("{scheme} {}: {e}", p.dial)),
    };
    let want = StatusCode::from_u16(p.code).unwrap_or(StatusCode::OK);
    if status != want {
        return ProbeOutcome::fail(format!(
            "{scheme} {} from {}, want {}",
            status.as_u16(),
            p.dial,
            want.as_u16()
        ));
    }
    let want_body = p.receive.len().min(MAX_HTTP_BODY);
    if !body.starts_with(&p.receive[..want_body]) {
        return ProbeOutcome::fail(format!(
            "{scheme} {} from {}: body \"{}\" does not start with \"{}\"",
            status.as_u16(),
            p.dial,
            escape(&body),
            escape(&p.receive)
        ));
    }
    ProbeOutcome::pass(format!(
        "{scheme} {} in {} ms",
        status.as_u16(),
        start.elapsed().as_millis()
    ))
}

async fn exchange<IO>(io: IO, p: &HttpProbe) -> Result<(StatusCode, Vec<u8>), String>
where
    IO: Read + Write + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io)
        .await
        .map_err(|e| e.to_string())?;
    let request = Request::builder()
        .method(p.method.clone())
        .uri(p.uri.clone())
        .header(HOST, p.host.as_str())
        .header(USER_AGENT, "seesaw-healthcheck")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("cannot build request: {e}"))?;
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
            // The connection may fail only while closing (a peer that already closed, as a
            // tunnelling proxy does), after the whole answer arrived: judge the answer then.
            Err(e) => match tokio::time::timeout(std::time::Duration::ZERO, &mut exchange).await {
                Ok(r) => r,
                Err(_) => Err(e),
            },
        },
    };
    result.map_err(|e| e.to_string())
}

/// The most a proxy's answer to `CONNECT` may hold before its blank line.
const MAX_CONNECT_HEAD: usize = 8 * 1024;

/// Asks the proxy on `io` for a tunnel to `authority` (`CONNECT host:port`) and returns the
/// stream once it answered 2xx. The answer's head is read byte by byte so nothing of the tunnel
/// is consumed.
async fn connect_tunnel<IO>(mut io: IO, authority: &str) -> Result<IO, String>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let request = format!(
        "CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: seesaw-healthcheck\r\n\r\n"
    );
    io.write_all(request.as_bytes())
        .await
        .map_err(|e| format!("proxy connect: {}", io_msg(&e)))?;
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_CONNECT_HEAD {
            return Err(format!(
                "proxy connect: no end of the answer in {MAX_CONNECT_HEAD} bytes"
            ));
        }
        let b = io
            .read_u8()
            .await
            .map_err(|e| format!("proxy connect: {}", io_msg(&e)))?;
        head.push(b);
    }
    let status_line = head.split(|&b| b == b'\n').next().unwrap_or_default();
    let status_line = String::from_utf8_lossy(status_line);
    let status_line = status_line.trim_end();
    let code = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|r| r.get(2..5))
        .and_then(|c| c.parse::<u16>().ok());
    match code {
        Some(200..=299) => Ok(io),
        _ => Err(format!(
            "proxy connect to {authority}: \"{}\"",
            escape(status_line.as_bytes())
        )),
    }
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
