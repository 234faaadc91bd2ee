//! Every check kind passes and fails correctly against a real server: nginx (http, https,
//! tcp_tls, tcp), dnsmasq (dns), MariaDB (mysql) and FreeRADIUS (radius) from Debian packages,
//! started by the test on 127.0.0.1 high ports (see `servers/`); our own responders for udp; the
//! kernel's echo responder for icmp (failure inside a private network namespace that ignores
//! echoes). Checks go through the engine-facing conversion (`check_from_proto`), so the option
//! semantics are the ones a `cluster.pb` gets. A test whose server is not installed skips and says
//! which package to install.

#![allow(clippy::print_stderr, reason = "skip messages go to stderr")]

mod servers;

use std::net::SocketAddr;
use std::time::Duration;

use seesaw_healthcheck::check::ProbeOutcome;
use seesaw_healthcheck::engine_link::check_from_proto;
use seesaw_healthcheck::probe::{NetProber, Prober, TlsClients};
use seesaw_proto::engine as pb;
use servers::TestPki;

/// Bound on one probe in these tests (the scheduler applies the check's timeout in production).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);

fn check(kind: pb::CheckKind, addr: SocketAddr) -> pb::Check {
    pb::Check {
        id: 1,
        kind: kind as i32,
        target: addr.ip().to_string(),
        port: u32::from(addr.port()),
        ..Default::default()
    }
}

fn prober(pki: Option<&TestPki>) -> NetProber {
    let mut roots = rustls::RootCertStore::empty();
    if let Some(p) = pki {
        roots
            .add(p.ca_der.clone().into())
            .expect("test ca is a valid certificate");
    }
    NetProber::with_tls(false, TlsClients::with_roots(roots))
}

async fn run(prober: &NetProber, c: &pb::Check) -> ProbeOutcome {
    let spec = check_from_proto(c);
    match tokio::time::timeout(PROBE_TIMEOUT, prober.probe(&spec.probe)).await {
        Ok(o) => o,
        Err(_) => ProbeOutcome::fail("timed out"),
    }
}

#[track_caller]
fn pass(o: &ProbeOutcome, what: &str) {
    assert!(o.success, "{what} should pass: {}", o.message);
}

#[track_caller]
fn fail(o: &ProbeOutcome, what: &str, needle: &str) {
    assert!(!o.success, "{what} should fail: {}", o.message);
    assert!(
        o.message.contains(needle),
        "{what}: message {:?} should mention {needle:?}",
        o.message
    );
}

/// `o` must pass (no `failure`) or fail, its message mentioning `failure`.
#[track_caller]
fn judge(o: &ProbeOutcome, what: &str, failure: Option<&str>) {
    match failure {
        None => pass(o, what),
        Some(needle) => fail(o, what, needle),
    }
}

/// Runs `c` with `prober`: it must pass.
async fn passes(prober: &NetProber, c: &pb::Check, what: &str) {
    pass(&run(prober, c).await, what);
}

/// Runs `c` with `prober`: it must fail, its message mentioning `needle`.
async fn fails(prober: &NetProber, c: &pb::Check, what: &str, needle: &str) {
    fail(&run(prober, c).await, what, needle);
}

#[tokio::test]
async fn nginx_http_https_tcp_tls_tcp() {
    let pki = servers::test_pki();
    let Some((mut nginx, tls_addr)) = servers::nginx("nginx_http_https_tcp_tls_tcp", &pki) else {
        return;
    };
    let trusted = prober(Some(&pki));
    let untrusted = prober(None);

    // http: code and body prefix.
    let mut c = check(pb::CheckKind::Http, nginx.addr);
    c.send = "/healthz".into();
    c.receive = "serv".into();
    passes(&trusted, &c, "http /healthz").await;
    c.receive = "down".into();
    fails(&trusted, &c, "http wrong body", "does not start with").await;
    let mut c = check(pb::CheckKind::Http, nginx.addr);
    c.send = "/down".into();
    fails(&trusted, &c, "http 503", "http 503").await;
    c.code = 503;
    passes(&trusted, &c, "http expecting 503").await;
    // Redirects are not followed: a 302 is judged against the code.
    let mut c = check(pb::CheckKind::Http, nginx.addr);
    c.send = "/moved".into();
    fails(&trusted, &c, "http 302", "http 302").await;
    c.code = 302;
    passes(&trusted, &c, "http expecting 302").await;
    let mut c = check(pb::CheckKind::Http, nginx.addr);
    c.send = "/healthz".into();
    c.method = "HEAD".into();
    passes(&trusted, &c, "http HEAD").await;

    // Host header from an absolute URL, and proxy mode with an absolute request target: both
    // reach nginx's www.example.test virtual host; a bare path reaches the default server.
    let mut c = check(pb::CheckKind::Http, nginx.addr);
    c.send = "http://www.example.test/anything".into();
    c.receive = "vhost www.example.test".into();
    passes(&trusted, &c, "http Host from URL").await;
    c.proxy = true;
    passes(&trusted, &c, "http proxy mode").await;
    c.send = "/anything".into();
    fails(&trusted, &c, "proxy to the default server", "http 404").await;

    // https: verification on (our CA trusted / not trusted) and off.
    let mut c = check(pb::CheckKind::Https, tls_addr);
    c.send = "/healthz".into();
    c.receive = "serving".into();
    c.tls_verify = true;
    passes(&trusted, &c, "https verified").await;
    fails(&untrusted, &c, "https unknown ca", "tls handshake").await;
    c.tls_verify = false;
    passes(&untrusted, &c, "https without verification").await;
    // Plain HTTP spoken to the TLS port, TLS spoken to the plain port.
    let mut plain_to_tls = check(pb::CheckKind::Http, tls_addr);
    plain_to_tls.send = "/healthz".into();
    fails(&trusted, &plain_to_tls, "http to a tls port", "http 400").await;
    let mut tls_to_plain = check(pb::CheckKind::Https, nginx.addr);
    tls_to_plain.tls_verify = false;
    fails(
        &trusted,
        &tls_to_plain,
        "https to a plain port",
        "tls handshake",
    )
    .await;

    // tcp_tls: handshake, then send/expect over TLS.
    let mut c = check(pb::CheckKind::TcpTls, tls_addr);
    c.tls_verify = true;
    c.send = "GET /healthz HTTP/1.0\r\n\r\n".into();
    c.receive = "HTTP/1.1 200".into();
    passes(&trusted, &c, "tcp_tls verified").await;
    fails(&untrusted, &c, "tcp_tls unknown ca", "tls handshake").await;
    c.tls_verify = false;
    passes(&untrusted, &c, "tcp_tls without verification").await;
    c.receive = "HTTP/1.1 500".into();
    fails(
        &untrusted,
        &c,
        "tcp_tls wrong reply",
        "want \"HTTP/1.1 500\"",
    )
    .await;

    // tcp: connect, and send/expect.
    let mut c = check(pb::CheckKind::Tcp, nginx.addr);
    passes(&trusted, &c, "tcp connect").await;
    c.send = "GET /down HTTP/1.0\r\n\r\n".into();
    c.receive = "HTTP/1.1 503".into();
    passes(&trusted, &c, "tcp send/expect").await;

    // The backend dies: every kind fails.
    nginx.kill();
    let c = check(pb::CheckKind::Tcp, nginx.addr);
    fails(&trusted, &c, "tcp after kill", "connection refused").await;
    let c = check(pb::CheckKind::Http, nginx.addr);
    fails(&trusted, &c, "http after kill", "connection refused").await;
    let mut c = check(pb::CheckKind::Https, tls_addr);
    c.tls_verify = false;
    fails(&trusted, &c, "https after kill", "connection refused").await;
    let c = check(pb::CheckKind::TcpTls, tls_addr);
    fails(&trusted, &c, "tcp_tls after kill", "connection refused").await;
}

#[tokio::test]
async fn dnsmasq_dns() {
    let Some(mut dns) = servers::dnsmasq("dnsmasq_dns") else {
        return;
    };
    let p = prober(None);
    let addr = dns.addr;
    let q = |name: &str, qtype: &str, receive: &str| pb::Check {
        send: name.into(),
        method: qtype.into(),
        receive: receive.into(),
        ..check(pb::CheckKind::Dns, addr)
    };
    // (name, type, expected answer), what, and None to pass or what the failure must say.
    for ((name, qtype, receive), what, failure) in [
        (("www.example.test", "A", "127.0.0.5"), "dns A", None),
        (("WWW.Example.Test.", "", ""), "dns A, any answer", None),
        (
            ("www.example.test", "A", "127.0.0.6"),
            "dns wrong A",
            Some("no A answer equals 127.0.0.6"),
        ),
        // dnsmasq refuses what it would have to forward (it has no upstream here).
        (
            ("www.example.test", "AAAA", ""),
            "dns no AAAA",
            Some("AAAA"),
        ),
        (
            ("missing.example.test", "A", ""),
            "dns unknown name",
            Some("dns"),
        ),
        (
            ("alias.example.test", "CNAME", "www.example.test"),
            "dns CNAME",
            None,
        ),
        (
            ("alias.example.test", "CNAME", "other.example.test"),
            "dns wrong CNAME",
            Some("no CNAME answer equals"),
        ),
        (("txt.example.test", "TXT", "v=ok"), "dns TXT", None),
        (
            ("txt.example.test", "TXT", "v=no"),
            "dns wrong TXT",
            Some("no TXT answer equals"),
        ),
    ] {
        judge(&run(&p, &q(name, qtype, receive)).await, what, failure);
    }
    dns.kill();
    fails(
        &p,
        &q("www.example.test", "A", "127.0.0.5"),
        "dns after kill",
        "connection refused",
    )
    .await;
}

#[tokio::test]
async fn mariadb_mysql() {
    let Some(mut db) = servers::mariadb("mariadb_mysql") else {
        return;
    };
    let p = prober(None);
    let c = check(pb::CheckKind::Mysql, db.addr);
    let o = run(&p, &c).await;
    pass(&o, "mysql greeting");
    assert!(o.message.contains("MariaDB"), "{}", o.message);
    db.kill();
    fails(&p, &c, "mysql after kill", "connection refused").await;
}

#[tokio::test]
async fn mysql_check_against_a_non_mysql_server_fails() {
    let pki = servers::test_pki();
    let Some((nginx, _)) = servers::nginx("mysql_check_against_a_non_mysql_server_fails", &pki)
    else {
        return;
    };
    // nginx waits for a request and never greets: the probe's timeout ends it.
    let o = run(&prober(None), &check(pb::CheckKind::Mysql, nginx.addr)).await;
    fail(&o, "mysql against nginx", "timed out");
}

#[tokio::test]
async fn freeradius_radius() {
    let Some(mut radius) = servers::freeradius("freeradius_radius", "s3cret") else {
        return;
    };
    let p = prober(None);
    let addr = radius.addr;
    let r = |send: &str, receive: &str| pb::Check {
        send: send.into(),
        receive: receive.into(),
        ..check(pb::CheckKind::Radius, addr)
    };
    let o = run(&p, &r("bob:hello:s3cret", "")).await;
    assert!(o.success, "radius accept: {}\n{}", o.message, radius.log());
    // (send, receive), what, and None to pass or what the failure must say.
    for ((send, receive), what, failure) in [
        (("bob:hello:s3cret", "any"), "radius any", None),
        (
            ("bob:wrong:s3cret", "accept"),
            "radius bad password",
            Some("access-reject"),
        ),
        (
            ("bob:wrong:s3cret", "reject"),
            "radius expecting reject",
            None,
        ),
        (("bob:wrong:s3cret", "any"), "radius any on reject", None),
        (
            ("bob:hello:s3cret", "challenge"),
            "radius expecting challenge",
            Some("access-accept"),
        ),
        // A wrong secret: the server cannot verify our Message-Authenticator and stays silent.
        (
            ("bob:hello:wrong", "any"),
            "radius wrong secret",
            Some("timed out"),
        ),
    ] {
        judge(&run(&p, &r(send, receive)).await, what, failure);
    }
    radius.kill();
    fails(
        &p,
        &r("bob:hello:s3cret", ""),
        "radius after kill",
        "connection refused",
    )
    .await;
}

/// Our own UDP responder: answers "PONG <what was sent>" to datagrams starting with "PING",
/// ignores everything else.
async fn udp_responder() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = sock.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = sock.recv_from(&mut buf).await {
            if buf[..n].starts_with(b"PING") {
                let mut reply = b"PONG ".to_vec();
                reply.extend_from_slice(&buf[..n]);
                let _ = sock.send_to(&reply, from).await;
            }
        }
    });
    (addr, task)
}

#[tokio::test]
async fn udp_against_our_responder() {
    let (addr, task) = udp_responder().await;
    let p = prober(None);
    let mut c = check(pb::CheckKind::Udp, addr);
    c.send = "PING 1".into();
    c.receive = "PONG PING 1".into();
    passes(&p, &c, "udp ping").await;
    c.receive = "PONG PING 2".into();
    fails(&p, &c, "udp wrong reply", "want \"PONG PING 2\"").await;
    c.send = "HELLO".into();
    fails(&p, &c, "udp silent responder", "timed out").await;
    task.abort();
    let _ = task.await;
    c.send = "PING 1".into();
    fails(&p, &c, "udp closed port", "connection refused").await;
}

/// Whether this process may open an ICMP socket (root, or a ping_group_range that includes us).
fn can_ping() -> bool {
    servers::is_root()
        || std::fs::read_to_string("/proc/sys/net/ipv4/ping_group_range")
            .ok()
            .and_then(|s| {
                let mut it = s.split_whitespace().map(|x| x.parse::<u64>().ok());
                Some((it.next()??, it.next()??))
            })
            .is_some_and(|(lo, hi)| lo <= hi)
}

#[tokio::test]
async fn icmp_against_loopback() {
    if !can_ping() {
        eprintln!("skipping icmp_against_loopback: needs CAP_NET_RAW or net.ipv4.ping_group_range");
        return;
    }
    let p = prober(None);
    for ip in ["127.0.0.1", "::1"] {
        let c = pb::Check {
            kind: pb::CheckKind::Icmp as i32,
            target: ip.into(),
            ..Default::default()
        };
        let o = run(&p, &c).await;
        if ip == "::1" && !std::path::Path::new("/proc/sys/net/ipv6").exists() {
            continue;
        }
        pass(&o, &format!("icmp {ip}"));
    }
}

/// The failing case: inside a private network namespace whose kernel ignores echo requests, the
/// same probe times out; with echoes enabled again it passes (so the namespace itself works).
#[test]
fn icmp_fails_when_echoes_are_ignored() {
    if !servers::is_root() {
        eprintln!(
            "skipping icmp_fails_when_echoes_are_ignored: needs root for a network namespace"
        );
        return;
    }
    let outcome = std::thread::spawn(|| {
        nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare(CLONE_NEWNET)");
        let up = std::process::Command::new("ip")
            .args(["link", "set", "lo", "up"])
            .status();
        assert!(
            up.is_ok_and(|s| s.success()),
            "ip link set lo up (iproute2) failed"
        );
        let sysctl = "/proc/sys/net/ipv4/icmp_echo_ignore_all";
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let c = pb::Check {
            kind: pb::CheckKind::Icmp as i32,
            target: "127.0.0.1".into(),
            ..Default::default()
        };
        std::fs::write(sysctl, "1").expect("ignore echoes in the namespace");
        let ignored = rt.block_on(async {
            let p = prober(None);
            match tokio::time::timeout(Duration::from_secs(1), p.probe(&check_from_proto(&c).probe))
                .await
            {
                Ok(o) => o,
                Err(_) => ProbeOutcome::fail("timed out"),
            }
        });
        std::fs::write(sysctl, "0").expect("answer echoes again");
        let answered = rt.block_on(async { run(&prober(None), &c).await });
        (ignored, answered)
    })
    .join()
    .expect("namespace thread");
    fail(&outcome.0, "icmp with echoes ignored", "timed out");
    pass(&outcome.1, "icmp with echoes answered");
}
