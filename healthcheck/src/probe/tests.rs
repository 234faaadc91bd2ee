//! Probe tests against real servers on 127.0.0.1: a TCP echo-ish responder, a hand-written HTTP
//! responder, and a port nobody listens on.

use std::net::SocketAddr;

use hyper::{Method, Uri};

use crate::check::{Dial, HttpProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use super::url_tests::read_head;
use super::*;

/// A port that refuses connections: bound once to get a free number, then closed.
async fn closed_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    addr
}

/// Accepts connections forever; reads what the client sends (up to `expect` bytes) and answers
/// `reply`.
async fn tcp_server(expect: usize, reply: &'static [u8]) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let mut buf = vec![0u8; expect];
            if expect > 0 {
                let _ = s.read_exact(&mut buf).await;
            }
            let _ = s.write_all(reply).await;
        }
    });
    addr
}

/// Answers every request with `status` and `body`, and sends the request head on the channel.
async fn http_server(
    status: &'static str,
    body: &'static str,
) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let _ = tx.send(read_head(&mut s).await);
            let response = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = s.write_all(response.as_bytes()).await;
        }
    });
    (addr, rx)
}

fn tcp_probe(addr: SocketAddr, send: &str, receive: &str) -> TcpProbe {
    TcpProbe {
        dial: Dial::plain(addr),
        tls: None,
        send: send.as_bytes().to_vec(),
        receive: receive.as_bytes().to_vec(),
    }
}

fn http_probe(addr: SocketAddr, code: u16, receive: &str) -> HttpProbe {
    HttpProbe {
        dial: Dial::plain(addr),
        tls: None,
        method: Method::GET,
        uri: Uri::from_static("/healthz"),
        tunnel: None,
        host: addr.to_string(),
        code,
        receive: receive.as_bytes().to_vec(),
    }
}

fn tls() -> TlsClients {
    TlsClients::with_roots(rustls::RootCertStore::empty())
}

async fn http(p: &HttpProbe) -> ProbeOutcome {
    http::http(p, &tls()).await
}

async fn tcp(p: &TcpProbe) -> ProbeOutcome {
    super::tcp(p, &tls()).await
}

/// Asserts that `probe` of a closed port fails with "`kind` connect ADDR: connection refused".
async fn refused_on_a_closed_port<F: Future<Output = ProbeOutcome>>(
    kind: &str,
    probe: impl FnOnce(SocketAddr) -> F,
) {
    let addr = closed_port().await;
    assert_eq!(
        probe(addr).await,
        ProbeOutcome::fail(format!("{kind} connect {addr}: connection refused"))
    );
}

/// Asserts that `out`'s message starts with `prefix`.
#[track_caller]
fn assert_starts(out: &ProbeOutcome, prefix: &str) {
    assert!(out.message.starts_with(prefix), "{}", out.message);
}

#[tokio::test]
async fn tcp_connect_passes_on_a_listener() {
    let addr = tcp_server(0, b"").await;
    let out = tcp(&tcp_probe(addr, "", "")).await;
    assert!(out.success, "{out:?}");
    assert_starts(&out, &format!("tcp {addr} in "));
}

#[tokio::test]
async fn tcp_connect_fails_on_a_closed_port() {
    refused_on_a_closed_port(
        "tcp",
        |addr| async move { tcp(&tcp_probe(addr, "", "")).await },
    )
    .await;
}

#[tokio::test]
async fn tcp_send_and_expected_prefix() {
    let addr = tcp_server(4, b"PONG\r\nmore").await;
    let out = tcp(&tcp_probe(addr, "PING", "PONG")).await;
    assert!(out.success, "{out:?}");

    let out = tcp(&tcp_probe(addr, "PING", "PANG")).await;
    assert!(!out.success);
    assert_eq!(
        out.message,
        format!("tcp {addr}: got \"PONG\", want \"PANG\"")
    );
}

#[tokio::test]
async fn tcp_short_reply_fails() {
    let addr = tcp_server(0, b"PO").await;
    let out = tcp(&tcp_probe(addr, "", "PONG")).await;
    assert_eq!(
        out,
        ProbeOutcome::fail(format!("tcp {addr}: got \"PO\", want \"PONG\""))
    );
}

#[tokio::test]
async fn http_200_passes_and_sends_host_method_and_path() {
    let (addr, mut heads) = http_server("200 OK", "ok").await;
    let out = http(&http_probe(addr, 200, "")).await;
    assert!(out.success, "{out:?}");
    assert!(out.message.starts_with("http 200 in "), "{}", out.message);
    let head = heads.recv().await.unwrap();
    assert!(head.starts_with("GET /healthz HTTP/1.1\r\n"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {addr}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn http_wrong_status_fails() {
    let (addr, _heads) = http_server("500 Internal Server Error", "oops").await;
    let out = http(&http_probe(addr, 200, "")).await;
    assert_eq!(
        out,
        ProbeOutcome::fail(format!("http 500 from {addr}, want 200"))
    );
    // Expecting 500 makes the same server healthy.
    let out = http(&http_probe(addr, 500, "")).await;
    assert!(out.success, "{out:?}");
}

#[tokio::test]
async fn http_body_prefix() {
    let (addr, _heads) = http_server("200 OK", "status: serving\n").await;
    assert!(http(&http_probe(addr, 200, "status: serv")).await.success);
    // Only as much body as the expected prefix is read.
    let out = http(&http_probe(addr, 200, "status: down")).await;
    assert_eq!(
        out,
        ProbeOutcome::fail(format!(
            "http 200 from {addr}: body \"status: serv\" does not start with \"status: down\""
        ))
    );
    // A prefix longer than the body fails too.
    assert!(
        !http(&http_probe(addr, 200, "status: serving\nand more"))
            .await
            .success
    );
}

#[tokio::test]
async fn http_closed_port_fails() {
    refused_on_a_closed_port("http", |addr| async move {
        http(&http_probe(addr, 200, "")).await
    })
    .await;
}

#[tokio::test]
async fn http_garbage_reply_fails() {
    let addr = tcp_server(0, b"SSH-2.0-OpenSSH\r\n").await;
    let out = http(&http_probe(addr, 200, "")).await;
    assert!(!out.success);
    assert_starts(&out, &format!("http {addr}: "));
}

#[tokio::test]
async fn dry_run_passes_and_invalid_checks_say_why() {
    let addr = closed_port().await;
    let spec = ProbeSpec::Tcp(tcp_probe(addr, "", ""));
    assert!(NetProber::new(true).probe(&spec).await.success);
    assert!(!NetProber::new(false).probe(&spec).await.success);

    let bad = ProbeSpec::Invalid {
        reason: "icmp checks cannot run in DSR mode".into(),
    };
    assert_eq!(
        NetProber::new(false).probe(&bad).await,
        ProbeOutcome::fail("icmp checks cannot run in DSR mode")
    );
    assert!(NetProber::new(true).probe(&bad).await.success);
}
