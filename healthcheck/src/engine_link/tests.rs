//! Conversion of the engine's `Check` messages: defaults, every kind's options, and every way a
//! check can be unusable.

use super::*;

fn check(kind: pb::CheckKind) -> pb::Check {
    pb::Check {
        id: 7,
        kind: kind as i32,
        target: "127.0.0.2".into(),
        port: 8080,
        ..Default::default()
    }
}

fn invalid(c: &pb::Check) -> String {
    match check_from_proto(c).probe {
        ProbeSpec::Invalid { reason } => reason,
        other => panic!("expected invalid, got {other:?}"),
    }
}

#[test]
fn defaults_apply_to_zero_fields() {
    let s = check_from_proto(&check(pb::CheckKind::Http));
    assert_eq!(s.id, CheckId(7));
    assert_eq!(s.interval, DEFAULT_INTERVAL);
    assert_eq!(s.timeout, DEFAULT_TIMEOUT);
    let ProbeSpec::Http(h) = s.probe else {
        panic!("expected http, got {:?}", s.probe);
    };
    assert_eq!(h.dial, Dial::plain("127.0.0.2:8080".parse().unwrap()));
    assert_eq!(h.method, Method::GET);
    assert_eq!(h.uri, "/");
    assert_eq!(h.host, "127.0.0.2:8080");
    assert_eq!(h.code, 200);
    assert_eq!(h.tls, None);
}

#[test]
fn tcp_tls_and_ipv6_targets() {
    let mut c = check(pb::CheckKind::Tcp);
    c.target = "::1".into();
    c.send = "PING".into();
    c.receive = "PONG".into();
    c.interval_ms = 2000;
    let s = check_from_proto(&c);
    assert_eq!(s.interval, Duration::from_secs(2));
    assert_eq!(
        s.probe,
        ProbeSpec::Tcp(TcpProbe {
            dial: Dial::plain("[::1]:8080".parse().unwrap()),
            tls: None,
            send: b"PING".to_vec(),
            receive: b"PONG".to_vec(),
        })
    );
    let mut c = check(pb::CheckKind::TcpTls);
    c.target = "[::1]".into();
    let ProbeSpec::Tcp(t) = check_from_proto(&c).probe else {
        panic!("expected tcp");
    };
    assert_eq!(
        t.tls,
        Some(TlsSpec {
            verify: false,
            server: "::1".into()
        })
    );
}

/// Seesaw's HTTP checker: a URL in `send` gives the Host header and, for HTTPS, the TLS server
/// name; its scheme is replaced by the check's; `proxy` sends the absolute URL (HTTP) or tunnels
/// with CONNECT after a TLS handshake with the proxy (HTTPS), as Go's transport does.
#[test]
fn https_proxy_and_absolute_urls() {
    let mut c = check(pb::CheckKind::Https);
    c.tls_verify = true;
    c.send = "http://www.example.test/status?x=1".into();
    c.method = "HEAD".into();
    c.code = 204;
    let ProbeSpec::Http(h) = check_from_proto(&c).probe else {
        panic!("expected http");
    };
    assert_eq!(h.uri, "/status?x=1");
    assert_eq!(h.host, "www.example.test");
    assert_eq!(h.method, Method::HEAD);
    assert_eq!(h.code, 204);
    assert_eq!(h.tunnel, None);
    assert_eq!(
        h.tls,
        Some(TlsSpec {
            verify: true,
            server: "www.example.test".into()
        }),
        "the URL's host is the SNI and the name verified"
    );
    assert_eq!(h.dial, Dial::plain("127.0.0.2:8080".parse().unwrap()));

    c.proxy = true;
    let ProbeSpec::Http(h) = check_from_proto(&c).probe else {
        panic!("expected http");
    };
    assert_eq!(h.uri, "/status?x=1");
    assert_eq!(h.tunnel.as_deref(), Some("www.example.test:443"));
    assert_eq!(h.tls.unwrap().server, "www.example.test");
    assert_eq!(h.dial, Dial::plain("127.0.0.2:8080".parse().unwrap()));

    let mut c = check(pb::CheckKind::Http);
    c.proxy = true;
    c.send = "https://www.example.test:8443/s".into();
    let ProbeSpec::Http(h) = check_from_proto(&c).probe else {
        panic!("expected http");
    };
    assert_eq!(
        h.uri, "http://www.example.test:8443/s",
        "the check's scheme wins"
    );
    assert_eq!(h.host, "www.example.test:8443");
    assert_eq!((h.tls, h.tunnel), (None, None));

    c.send = "/healthz".into();
    let ProbeSpec::Http(h) = check_from_proto(&c).probe else {
        panic!("expected http");
    };
    assert_eq!(h.uri, "http://127.0.0.2:8080/healthz");
    assert_eq!(h.host, "127.0.0.2:8080");

    // A bare path over HTTPS: the address dialled is the TLS name.
    let mut c = check(pb::CheckKind::Https);
    c.send = "/healthz".into();
    let ProbeSpec::Http(h) = check_from_proto(&c).probe else {
        panic!("expected http");
    };
    assert_eq!(h.tls.unwrap().server, "127.0.0.2");
}

#[test]
fn dns_radius_mysql_udp_icmp() {
    let mut c = check(pb::CheckKind::Dns);
    c.port = 0;
    c.send = "www.example.test".into();
    c.method = "aaaa".into();
    c.receive = "::1".into();
    let ProbeSpec::Dns(d) = check_from_proto(&c).probe else {
        panic!("expected dns");
    };
    assert_eq!(d.dial.addr.port(), 53);
    assert_eq!(d.name.to_string(), "www.example.test.");
    assert_eq!(d.qtype, RecordType::AAAA);
    assert_eq!(
        d.expect,
        Some(crate::check::DnsExpect::Addr("::1".parse().unwrap()))
    );

    let mut c = check(pb::CheckKind::Radius);
    c.send = "bob:pa:ss:sec:ret".into();
    c.receive = "Reject".into();
    let ProbeSpec::Radius(r) = check_from_proto(&c).probe else {
        panic!("expected radius");
    };
    assert_eq!(
        (r.user.as_str(), r.password.as_str(), r.secret.as_str()),
        ("bob", "pa", "ss:sec:ret")
    );
    assert_eq!(r.expect, RadiusExpect::Reject);

    let mut c = check(pb::CheckKind::Mysql);
    c.port = 0;
    assert_eq!(
        check_from_proto(&c).probe,
        ProbeSpec::Mysql(MysqlProbe {
            dial: Dial::plain("127.0.0.2:3306".parse().unwrap())
        })
    );

    let mut c = check(pb::CheckKind::Udp);
    c.send = "ping".into();
    assert!(matches!(check_from_proto(&c).probe, ProbeSpec::Udp(_)));

    let mut c = check(pb::CheckKind::Icmp);
    c.port = 0;
    assert_eq!(
        check_from_proto(&c).probe,
        ProbeSpec::Icmp(IcmpProbe {
            ip: "127.0.0.2".parse().unwrap()
        })
    );
}

#[test]
fn unusable_checks_become_explicit() {
    let mut c = check(pb::CheckKind::Icmp);
    c.mode = "DSR".into();
    assert_eq!(invalid(&c), "icmp checks cannot run in DSR mode");

    let mut c = check(pb::CheckKind::Tcp);
    c.mode = "NAT".into();
    assert_eq!(invalid(&c), "unknown check mode \"NAT\"");

    let mut c = check(pb::CheckKind::Tcp);
    c.target = "backend.example".into();
    assert_eq!(invalid(&c), "invalid target address \"backend.example\"");
    let mut c = check(pb::CheckKind::Tcp);
    c.port = 70000;
    assert_eq!(invalid(&c), "invalid target port 70000");
    let mut c = check(pb::CheckKind::Tcp);
    c.port = 0;
    assert_eq!(invalid(&c), "invalid target port 0");
    let mut c = check(pb::CheckKind::Http);
    c.method = "GE T".into();
    invalid(&c);
    let mut c = check(pb::CheckKind::Http);
    c.code = 42;
    invalid(&c);
    let mut c = check(pb::CheckKind::Http);
    c.send = "healthz".into();
    invalid(&c);
    let mut c = check(pb::CheckKind::Tcp);
    c.kind = 99;
    assert_eq!(invalid(&c), "unknown check kind 99");
    let mut c = check(pb::CheckKind::Dns);
    c.send = "x.test".into();
    c.method = "BOGUS".into();
    invalid(&c);
    c.method = "A".into();
    c.receive = "::1".into();
    invalid(&c);
    c.send = String::new();
    invalid(&c);
    let mut c = check(pb::CheckKind::Radius);
    c.send = "user:pass".into();
    invalid(&c);
    c.send = "user:pass:".into();
    invalid(&c);
    c.send = "user:pass:secret".into();
    c.receive = "maybe".into();
    invalid(&c);
}

#[test]
fn dsr_and_tun_checks_dial_the_vip_with_the_mark() {
    let through = |kind, mode: &str| {
        let mut c = check(kind);
        c.mode = mode.into();
        c.vip = "192.0.2.1".into();
        c.mark = 65_537;
        c.send = match kind {
            pb::CheckKind::Dns => "www.example.com".into(),
            pb::CheckKind::Radius => "u:p:s".into(),
            _ => String::new(),
        };
        check_from_proto(&c).probe
    };
    let want = Dial::through_vip(
        "192.0.2.1:8080".parse().unwrap(),
        65_537,
        "127.0.0.2".parse().unwrap(),
    );
    assert_eq!(
        want.to_string(),
        "192.0.2.1:8080 (mark 0x10001 to 127.0.0.2)"
    );
    for mode in ["DSR", "TUN", "dsr"] {
        for kind in [
            pb::CheckKind::Tcp,
            pb::CheckKind::TcpTls,
            pb::CheckKind::Udp,
            pb::CheckKind::Http,
            pb::CheckKind::Https,
            pb::CheckKind::Dns,
            pb::CheckKind::Radius,
            pb::CheckKind::Mysql,
        ] {
            let dial = match through(kind, mode) {
                ProbeSpec::Tcp(p) => {
                    if let Some(t) = p.tls {
                        // The backend answers as the VIP.
                        assert_eq!(t.server, "192.0.2.1");
                    }
                    p.dial
                }
                ProbeSpec::Udp(p) => p.dial,
                ProbeSpec::Http(p) => {
                    assert_eq!(p.host, "192.0.2.1:8080");
                    if let Some(t) = p.tls {
                        assert_eq!(t.server, "192.0.2.1");
                    }
                    p.dial
                }
                ProbeSpec::Dns(p) => p.dial,
                ProbeSpec::Radius(p) => p.dial,
                ProbeSpec::Mysql(p) => p.dial,
                other => panic!("{kind:?} {mode}: {other:?}"),
            };
            assert_eq!(dial, want, "{kind:?} {mode}");
        }
    }
    // The mode's VIP and mark are ignored for PLAIN checks.
    let mut c = check(pb::CheckKind::Tcp);
    c.vip = "192.0.2.1".into();
    c.mark = 65_537;
    let ProbeSpec::Tcp(p) = check_from_proto(&c).probe else {
        panic!("tcp");
    };
    assert_eq!(p.dial, Dial::plain("127.0.0.2:8080".parse().unwrap()));
}

#[test]
fn dsr_checks_without_vip_or_mark_are_refused_not_probed_directly() {
    let mut c = check(pb::CheckKind::Tcp);
    c.mode = "DSR".into();
    c.mark = 65_536;
    assert_eq!(invalid(&c), "DSR check without a VIP from the engine");
    c.vip = "vip.example".into();
    assert_eq!(invalid(&c), "invalid DSR check VIP \"vip.example\"");
    c.vip = "2001:db8::1".into();
    assert_eq!(
        invalid(&c),
        "DSR check VIP 2001:db8::1 and backend 127.0.0.2 are of different address families"
    );
    c.vip = "[2001:db8::1]".into();
    c.target = "2001:db8::2".into();
    c.mark = 0;
    c.mode = "TUN".into();
    assert_eq!(
        invalid(&c),
        "TUN check without a firewall mark from the engine"
    );
    c.mark = 65_536;
    let ProbeSpec::Tcp(p) = check_from_proto(&c).probe else {
        panic!("tcp");
    };
    assert_eq!(p.dial.addr, "[2001:db8::1]:8080".parse().unwrap());
    let mut c = check(pb::CheckKind::Icmp);
    c.mode = "TUN".into();
    c.vip = "192.0.2.1".into();
    c.mark = 65_536;
    assert_eq!(invalid(&c), "icmp checks cannot run in TUN mode");
}
