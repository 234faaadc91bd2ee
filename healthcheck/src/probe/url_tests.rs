//! HTTPS checks whose `send` is a full URL, against an in-process TLS server with a certificate
//! for a DNS name only: the URL's host must be the SNI, the name verified and the Host header;
//! with `proxy: true` the probe must tunnel as Go's transport does (TLS to the proxy, CONNECT,
//! TLS again inside). Built through `check_from_proto`, as the engine's checks are.

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use seesaw_proto::engine as pb;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::check::{HttpProbe, ProbeSpec};
use crate::engine_link::check_from_proto;

const NAME: &str = "backend.seesaw.test";

struct Pki {
    ca: CertificateDer<'static>,
    key: Arc<CertifiedKey>,
}

/// A CA and a leaf for `NAME` (no IP SAN) signed by it.
fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![NAME.to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.serialize_der(),
        )))
        .unwrap();
    Pki {
        ca: ca.der().clone(),
        key: Arc::new(CertifiedKey::new(vec![cert.der().clone()], signing)),
    }
}

/// Serves the one certificate and reports the SNI of every handshake.
#[derive(Debug)]
struct Recorder {
    key: Arc<CertifiedKey>,
    sni: mpsc::UnboundedSender<Option<String>>,
}

impl ResolvesServerCert for Recorder {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let _ = self.sni.send(hello.server_name().map(str::to_owned));
        Some(self.key.clone())
    }
}

fn acceptor(pki: &Pki) -> (TlsAcceptor, mpsc::UnboundedReceiver<Option<String>>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_cert_resolver(Arc::new(Recorder {
        key: pki.key.clone(),
        sni: tx,
    }));
    (TlsAcceptor::from(Arc::new(cfg)), rx)
}

/// The request head (up to the blank line) read byte by byte.
pub(super) async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut byte).await {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn answer<S: AsyncWrite + Unpin>(s: &mut S) {
    let _ = s
        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        .await;
    let _ = s.shutdown().await;
}

/// An HTTPS server: reports each request head.
async fn https_server(acceptor: TlsAcceptor) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    https_endpoint(acceptor, false).await
}

/// An HTTPS proxy: TLS, then `CONNECT` (reported), 200, then TLS again inside the tunnel and one
/// request (reported).
async fn https_proxy(acceptor: TlsAcceptor) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    https_endpoint(acceptor, true).await
}

/// An HTTPS server, or with `proxy` an HTTPS proxy, reporting each head it reads.
async fn https_endpoint(
    acceptor: TlsAcceptor,
    proxy: bool,
) -> (SocketAddr, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let Ok(mut outer) = acceptor.accept(tcp).await else {
                continue;
            };
            let _ = tx.send(read_head(&mut outer).await);
            if !proxy {
                answer(&mut outer).await;
                continue;
            }
            let _ = outer
                .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                .await;
            let Ok(mut inner) = acceptor.accept(outer).await else {
                continue;
            };
            let _ = tx.send(read_head(&mut inner).await);
            answer(&mut inner).await;
        }
    });
    (addr, rx)
}

fn https_check(addr: SocketAddr, send: &str, proxy: bool) -> HttpProbe {
    let c = pb::Check {
        id: 1,
        kind: pb::CheckKind::Https as i32,
        target: addr.ip().to_string(),
        port: u32::from(addr.port()),
        send: send.to_owned(),
        tls_verify: true,
        proxy,
        interval_ms: 1000,
        timeout_ms: 1000,
        ..Default::default()
    };
    match check_from_proto(&c).probe {
        ProbeSpec::Http(h) => h,
        other => panic!("{other:?}"),
    }
}

fn trusting(pki: &Pki) -> TlsClients {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(pki.ca.clone()).unwrap();
    TlsClients::with_roots(roots)
}

#[tokio::test]
async fn a_url_gives_sni_verified_name_and_host() {
    let pki = pki();
    let (acc, mut sni) = acceptor(&pki);
    let (addr, mut heads) = https_server(acc).await;
    let clients = trusting(&pki);

    let p = https_check(addr, &format!("https://{NAME}/health?full=1"), false);
    let o = http::http(&p, &clients).await;
    assert!(o.success, "{}", o.message);
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some(NAME));
    let head = heads.recv().await.unwrap();
    assert!(
        head.starts_with("GET /health?full=1 HTTP/1.1\r\n"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {NAME}\r\n")),
        "{head}"
    );

    // A bare path: the address is the name, which this certificate does not carry.
    let p = https_check(addr, "/health", false);
    let o = http::http(&p, &clients).await;
    assert!(!o.success, "verification against 127.0.0.1 must fail");
    assert!(o.message.contains("tls handshake"), "{}", o.message);
    assert_eq!(
        sni.recv().await.unwrap(),
        None,
        "an IP literal sends no SNI"
    );
}

#[tokio::test]
async fn proxy_mode_tunnels_through_connect_as_seesaw_does() {
    let pki = pki();
    let (acc, mut sni) = acceptor(&pki);
    let (addr, mut heads) = https_proxy(acc).await;
    let p = https_check(addr, &format!("https://{NAME}/status"), true);
    let o = http::http(&p, &trusting(&pki)).await;
    assert!(o.success, "{}", o.message);
    let connect = heads.recv().await.unwrap();
    assert!(
        connect.starts_with(&format!("CONNECT {NAME}:443 HTTP/1.1\r\n")),
        "{connect}"
    );
    let inner = heads.recv().await.unwrap();
    assert!(inner.starts_with("GET /status HTTP/1.1\r\n"), "{inner}");
    assert!(
        inner
            .to_ascii_lowercase()
            .contains(&format!("host: {NAME}\r\n")),
        "{inner}"
    );
    // Both handshakes named the URL's host.
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some(NAME));
    assert_eq!(sni.recv().await.unwrap().as_deref(), Some(NAME));
}

#[tokio::test]
async fn a_proxy_refusing_connect_fails_the_check_with_its_answer() {
    let pki = pki();
    let (acc, _sni) = acceptor(&pki);
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            if let Ok(mut s) = acc.accept(tcp).await {
                let _ = read_head(&mut s).await;
                let _ = s.write_all(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
            }
        }
    });
    let p = https_check(addr, &format!("https://{NAME}/"), true);
    let o = http::http(&p, &trusting(&pki)).await;
    assert!(!o.success);
    assert!(o.message.contains("403 Forbidden"), "{}", o.message);
}
