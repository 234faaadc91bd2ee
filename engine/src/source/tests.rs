//! Config-server fetch against a real HTTPS server on loopback with its own CA: the pinned CA is
//! required, the content type must match exactly, servers are tried in order; plus the archive.

use std::time::{Duration, SystemTime};

use super::*;

#[path = "../../tests/support/tls_server.rs"]
mod tls_server;
use tls_server::{Pki, http, pki};

/// Serves `reply` (raw HTTP) to every connection on 127.0.0.1; returns the port.
async fn serve(pki: &Pki, reply: Vec<u8>) -> u16 {
    tls_server::serve(pki, move |_| reply.clone()).await
}

fn source(dir: &Path, pki: &Pki, port: u16) -> ServerSource {
    let ca = dir.join("ca.crt");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    ServerSource {
        servers: vec!["localhost".to_owned()],
        port,
        cluster: "au-syd".to_owned(),
        ca_file: ca,
        timeout: Duration::from_secs(5),
    }
}

#[tokio::test]
async fn fetches_from_a_server_signed_by_the_pinned_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let port = serve(&pki, http("200 OK", CONTENT_TYPE, b"\x0a\x03\x0a\x01v")).await;
    let body = source(dir.path(), &pki, port).fetch().await.unwrap();
    assert_eq!(body, b"\x0a\x03\x0a\x01v");
}

#[tokio::test]
async fn wrong_content_type_and_status_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki();
    let port = serve(&pki, http("200 OK", "text/plain", b"x")).await;
    let err = source(dir.path(), &pki, port)
        .fetch()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("content type \"text/plain\" is not \"application/x-protobuffer\""),
        "{err}"
    );
    let port = serve(&pki, http("302 Found", CONTENT_TYPE, b"")).await;
    let err = source(dir.path(), &pki, port)
        .fetch()
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("redirects are not followed"), "{err}");
}

#[tokio::test]
async fn a_server_with_another_ca_is_not_trusted_and_the_next_server_is_tried() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (pki(), pki());
    let bad = serve(&theirs, http("200 OK", CONTENT_TYPE, b"evil")).await;
    let mut src = source(dir.path(), &ours, bad);
    let err = src.fetch().await.unwrap_err().to_string();
    assert!(err.contains("TLS"), "{err}");
    // Priority order: the first name fails, the second answers. Both resolve to loopback.
    let good = serve(&ours, http("200 OK", CONTENT_TYPE, b"good")).await;
    src.servers = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    src.port = good;
    // `127.0.0.1` is not in the certificate: only `localhost` can succeed, and it is first.
    assert_eq!(src.fetch().await.unwrap(), b"good");
}

#[test]
fn archive_keeps_old_versions_and_prunes() {
    let dir = tempfile::tempdir().unwrap();
    let t = |s| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
    save_with_archive(dir.path(), b"v1", t(1_000), 3, Duration::from_secs(86_400)).unwrap();
    for (i, body) in ["v2", "v3", "v4", "v5"].iter().enumerate() {
        save_with_archive(
            dir.path(),
            body.as_bytes(),
            t(1_001 + i as u64),
            3,
            Duration::from_secs(86_400),
        )
        .unwrap();
    }
    // Saving the same content again archives nothing.
    save_with_archive(dir.path(), b"v5", t(2_000), 3, Duration::from_secs(86_400)).unwrap();
    assert_eq!(std::fs::read(dir.path().join("cluster.pb")).unwrap(), b"v5");
    let mut archived: Vec<String> = std::fs::read_dir(dir.path().join("archive"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    archived.sort();
    // Each save archives the file it replaces, stamped with the save time (v1 at 1001 ... v4 at
    // 1004); the newest 3 stay.
    assert_eq!(
        archived,
        ["cluster.pb.1002", "cluster.pb.1003", "cluster.pb.1004"],
        "newest 3 kept"
    );
    assert_eq!(
        std::fs::read(dir.path().join("archive/cluster.pb.1002")).unwrap(),
        b"v2"
    );
    // Age pruning.
    prune_archive(
        &dir.path().join("archive"),
        10,
        Duration::from_secs(60),
        t(1_064),
    )
    .unwrap();
    assert_eq!(
        std::fs::read_dir(dir.path().join("archive"))
            .unwrap()
            .count(),
        1
    );
}

#[test]
fn hostile_responses_are_errors() {
    for raw in [
        &b""[..],
        b"HTTP/1.1 200 OK\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuffer\r\nContent-Length: 99\r\n\r\nab",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuffer\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuffer\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffff\r\nab",
        b"\xff\xfe\r\n\r\n",
    ] {
        assert!(parse_response(raw).is_err(), "{raw:?}");
    }
    let ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuffer\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n1\r\nc\r\n0\r\n\r\n";
    assert_eq!(parse_response(ok).unwrap(), b"abc");
}
