//! The HTTPS API over a real TLS socket: a client certificate signed by the configured CA
//! authenticates its mapped user; no credentials get 401; a certificate from another CA is
//! refused in the handshake; a bearer token works without a certificate.

use std::sync::Arc;

use super::{Peer, TlsListener, self_signed, server_config};
use crate::api::{ApiState, router};
use crate::audit::AuditLog;
use crate::auth::{Role, User, Users, token_digest};
use crate::engine_view::fake::FakeEngine;
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

struct Ca {
    issuer: Issuer<'static, KeyPair>,
    pem: String,
}

fn ca(name: &str) -> Ca {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let key = KeyPair::generate().expect("key");
    let cert = params.self_signed(&key).expect("ca cert");
    Ca {
        issuer: Issuer::new(params, key),
        pem: cert.pem(),
    }
}

/// A leaf for `names`, with common name `cn`, signed by `ca`: (cert PEM, key PEM, cert DER,
/// key DER).
fn leaf(
    ca: &Ca,
    cn: &str,
    names: &[&str],
) -> (
    String,
    String,
    CertificateDer<'static>,
    PrivateKeyDer<'static>,
) {
    let mut params =
        CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
            .expect("params");
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, &ca.issuer).expect("signed");
    let key_der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
    (cert.pem(), key.serialize_pem(), cert.der().clone(), key_der)
}

async fn request(
    addr: std::net::SocketAddr,
    server_ca: &Ca,
    client: Option<(CertificateDer<'static>, PrivateKeyDer<'static>)>,
    token: Option<&str>,
) -> std::io::Result<String> {
    let mut roots = rustls::RootCertStore::empty();
    let ca_der = rustls::pki_types::pem::PemObject::from_pem_slice(server_ca.pem.as_bytes())
        .expect("ca pem");
    roots.add(ca_der).expect("root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots);
    let config = match client {
        Some((cert, key)) => builder
            .with_client_auth_cert(vec![cert], key)
            .expect("client cert"),
        None => builder.with_no_client_auth(),
    };
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await?;
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    tls.write_all(
        format!("GET /v1/whoami HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
    .await?;
    let mut out = String::new();
    tls.read_to_string(&mut out).await?;
    Ok(out)
}

/// Serves the API with `users` on `listener` (the fake engine, an audit log in `dir`).
fn serve(
    listener: TlsListener,
    users: Users,
    dir: &std::path::Path,
) -> tokio::task::JoinHandle<std::io::Result<()>> {
    let audit = AuditLog::open(&dir.join("audit.log")).expect("audit");
    let state = Arc::new(ApiState::new(FakeEngine::new(), users, audit));
    let app = router(state).into_make_service_with_connect_info::<Peer>();
    tokio::spawn(async move { axum::serve(listener, app).await })
}

/// Tom, a reader with a token.
fn tom() -> User {
    User {
        name: "tom".into(),
        role: Role::Reader,
        token_sha256: Some(token_digest("tom-token-0123456789")),
        cert_cn: None,
    }
}

#[tokio::test]
async fn client_certificates_and_tokens_over_tls() {
    let dir = tempfile::tempdir().expect("temp dir");
    let server_ca = ca("server ca");
    let client_ca = ca("client ca");
    let (server_pem, key_pem, _, _) = leaf(&server_ca, "lb", &["127.0.0.1"]);
    for (name, text) in [
        ("cert.pem", server_pem.as_str()),
        ("key.pem", key_pem.as_str()),
        ("clients.pem", client_ca.pem.as_str()),
    ] {
        std::fs::write(dir.path().join(name), text).expect("write");
    }
    let tls = server_config(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
        Some(&dir.path().join("clients.pem")),
    )
    .expect("tls config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let listener = TlsListener::new(tcp, tls).expect("listener");
    let users = Users::new(vec![
        User {
            name: "carol".into(),
            role: Role::Operator,
            token_sha256: None,
            cert_cn: Some("carol.example.com".into()),
        },
        tom(),
    ]);
    let server = serve(listener, users, dir.path());

    let (_, _, carol_cert, carol_key) =
        leaf(&client_ca, "carol.example.com", &["carol.example.com"]);
    let answer = request(addr, &server_ca, Some((carol_cert, carol_key)), None)
        .await
        .expect("carol's request");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.contains(r#""user":"carol""#) && answer.contains(r#""via":"certificate""#),
        "{answer}"
    );

    let answer = request(addr, &server_ca, None, None)
        .await
        .expect("anonymous");
    assert!(answer.starts_with("HTTP/1.1 401"), "{answer}");

    let answer = request(addr, &server_ca, None, Some("tom-token-0123456789"))
        .await
        .expect("token");
    assert!(answer.contains(r#""user":"tom""#), "{answer}");

    // A certificate from a CA the server does not trust: the handshake fails.
    let rogue_ca = ca("rogue ca");
    let (_, _, rogue_cert, rogue_key) =
        leaf(&rogue_ca, "carol.example.com", &["carol.example.com"]);
    let refused = request(addr, &server_ca, Some((rogue_cert, rogue_key)), None).await;
    assert!(
        refused.is_err() || refused.as_deref().is_ok_and(|a| !a.contains("200")),
        "{refused:?}"
    );
    server.abort();
}

#[test]
fn self_signed_material_loads_and_bad_files_are_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key) = self_signed(&["127.0.0.1", "localhost"]).expect("generated");
    let (c, k) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
    std::fs::write(&c, cert).expect("write");
    std::fs::write(&k, key).expect("write");
    server_config(&c, &k, None).expect("loads");
    server_config(&c, &k, Some(&c)).expect("own cert as client CA");
    let err = server_config(&k, &k, None).expect_err("a key is no certificate");
    assert!(err.to_string().contains("k.pem"), "{err}");
}

/// A TCP connection to `addr` from the loopback address `from` (so tests can play several
/// clients on one machine).
async fn connect_from(from: [u8; 4], addr: std::net::SocketAddr) -> std::io::Result<TcpStream> {
    let s = tokio::net::TcpSocket::new_v4()?;
    s.bind(std::net::SocketAddr::from((from, 0)))?;
    s.connect(addr).await
}

/// 300 clients that never finish their TLS handshake (from 127.0.0.2) and 50 that send their
/// request headers a byte at a time (from 127.0.0.3) do not slow a reader down (from 127.0.0.1):
/// its p99 stays under 100 ms; the slow-header connections are closed once their deadline
/// passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr, reason = "the measured latencies are reported")]
async fn slow_handshakes_and_slow_headers_do_not_starve_a_reader() {
    use super::Limits;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().expect("temp dir");
    let server_ca = ca("server ca");
    let (server_pem, key_pem, _, _) = leaf(&server_ca, "lb", &["127.0.0.1"]);
    std::fs::write(dir.path().join("cert.pem"), &server_pem).expect("write");
    std::fs::write(dir.path().join("key.pem"), &key_pem).expect("write");
    let tls = server_config(
        &dir.path().join("cert.pem"),
        &dir.path().join("key.pem"),
        None,
    )
    .expect("tls config");
    let tcp = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = tcp.local_addr().expect("addr");
    let limits = Limits {
        header_within: Duration::from_secs(2),
        ..Limits::default()
    };
    let listener = TlsListener::with_limits(tcp, tls, limits).expect("listener");
    let server = serve(listener, Users::new(vec![tom()]), dir.path());

    // 300 connections that say nothing: they would hold handshake slots.
    let mut silent = Vec::new();
    for _ in 0..300 {
        if let Ok(s) = connect_from([127, 0, 0, 2], addr).await {
            silent.push(s);
        }
    }
    // 50 that handshake, then trickle a request line and never finish the headers.
    let mut slow = Vec::new();
    for _ in 0..50 {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(
                rustls::pki_types::pem::PemObject::from_pem_slice(server_ca.pem.as_bytes())
                    .expect("ca pem"),
            )
            .expect("root");
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let Ok(tcp) = connect_from([127, 0, 0, 3], addr).await else {
            continue;
        };
        let name = ServerName::try_from("127.0.0.1").expect("name");
        if let Ok(Ok(mut s)) =
            tokio::time::timeout(Duration::from_secs(1), connector.connect(name, tcp)).await
        {
            let _ = s.write_all(b"GET /v1/whoami HTTP/1.1\r\nHo").await;
            slow.push(s);
        }
    }
    assert!(
        !slow.is_empty(),
        "no slow-header client got through its handshake"
    );
    let started = Instant::now();
    let mut took = Vec::new();
    for _ in 0..30 {
        let t = Instant::now();
        let answer = request(addr, &server_ca, None, Some("tom-token-0123456789"))
            .await
            .expect("the reader's request");
        took.push(t.elapsed());
        assert!(answer.contains(r#""user":"tom""#), "{answer}");
    }
    took.sort();
    let p99 = took[took.len() - 1];
    eprintln!(
        "reader: median {:?}, p99 {p99:?} with {} silent and {} slow-header clients held",
        took[took.len() / 2],
        silent.len(),
        slow.len()
    );
    assert!(p99 <= Duration::from_millis(100), "reader p99 {p99:?}");
    // Past the header deadline every slow-header connection has been closed by the server.
    tokio::time::sleep(
        (limits.header_within + Duration::from_millis(500)).saturating_sub(started.elapsed()),
    )
    .await;
    for s in &mut slow {
        let mut buf = [0u8; 64];
        let r = tokio::time::timeout(Duration::from_secs(2), s.read(&mut buf)).await;
        assert!(
            matches!(r, Ok(Ok(0)) | Ok(Err(_))),
            "a slow-header connection is still open: {r:?}"
        );
    }
    server.abort();
}
