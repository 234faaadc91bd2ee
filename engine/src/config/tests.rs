//! Loads every file in `../shared/compat/seesaw/` (Seesaw's own examples and parser test data) and
//! every shipped file in `etc/`, asserting what each must produce, including Seesaw's warnings.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::*;
use crate::model::*;

fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/compat/seesaw")
}

/// Reads a compat file, or says loudly why the test cannot run and returns `None`.
#[allow(clippy::print_stderr, reason = "a skipped test must say why")]
pub(crate) fn compat_file(name: &str) -> Option<String> {
    let path = compat_dir().join(name);
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(e) => {
            eprintln!(
                "SKIPPED: Seesaw compat file {} not readable ({e}); \
                 clone the project with ../shared beside it to run this test",
                path.display()
            );
            None
        }
    }
}

type Validated = Result<(Cluster, Vec<String>), Vec<String>>;

fn cluster(name: &str) -> Option<Validated> {
    let text = compat_file(&format!("config-testdata/{name}"))?;
    Some(cluster::parse(text.as_bytes()).and_then(|pb| validate::validate(&pb)))
}

fn ok(name: &str) -> Option<Cluster> {
    cluster(name).map(|r| r.unwrap_or_else(|e| panic!("{name}: {e:#?}")).0)
}

/// The names of Seesaw's parser test files, sorted; `None` (said loudly) without `../shared`.
fn compat_testdata() -> Option<Vec<String>> {
    compat_file("README.md")?;
    let mut names: Vec<String> = std::fs::read_dir(compat_dir().join("config-testdata"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    Some(names)
}

#[test]
fn every_compat_file_is_covered() {
    let Some(seen) = compat_testdata() else {
        return;
    };
    // Each of these names is asserted by a test below; a new file must get a test too.
    let covered = [
        "healthcheck0.pb",
        "healthcheck1.pb",
        "healthcheck2.pb",
        "nodes0.pb",
        "nodes1.pb",
        "nodes2.pb",
        "nodes3.pb",
        "nodes4.pb",
        "nodes5.pb",
        "vipsubnets0.pb",
        "vipsubnets1.pb",
        "vipsubnets2.pb",
        "vlans0.pb",
        "vlans1.pb",
        "vlans2.pb",
        "vservers0.pb",
        "vservers1.pb",
        "vservers2.pb",
    ];
    assert_eq!(seen, covered);
}

#[test]
fn healthcheck_fixtures_apply_proto2_defaults() {
    let load = |n: &str| {
        let text = compat_file(&format!("config-testdata/{n}"))?;
        let pb: seesaw_proto::config::Healthcheck =
            cluster::parse_message(text.as_bytes()).unwrap();
        let mut r = validate::Report::default();
        let hc = validate::healthcheck(&pb, Some(0), n, &mut r);
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        hc
    };
    let Some(h0) = load("healthcheck0.pb") else {
        return;
    };
    assert_eq!((h0.kind, h0.mode), (CheckKind::Icmp, CheckMode::Plain));
    assert_eq!(
        (h0.interval, h0.timeout),
        (Duration::from_secs(10), Duration::from_secs(5))
    );
    assert!(h0.tls_verify);
    let h1 = load("healthcheck1.pb").unwrap();
    assert_eq!(
        (h1.kind, h1.mode, h1.port, h1.code),
        (CheckKind::Http, CheckMode::Dsr, 99, 200)
    );
    assert_eq!(
        (h1.interval, h1.timeout),
        (Duration::from_secs(100), Duration::from_secs(200))
    );
    assert_eq!(
        (h1.method.as_str(), h1.send.as_str(), h1.receive.as_str()),
        ("HEAD", "foo", "bar")
    );
    assert!(h1.proxy && h1.tls_verify);
    let h2 = load("healthcheck2.pb").unwrap();
    assert_eq!(
        (h2.kind, h2.port, h2.method.as_str()),
        (CheckKind::Dns, 53, "A")
    );
    assert_eq!(
        (h2.send.as_str(), h2.receive.as_str()),
        ("www.example.com", "192.168.0.1")
    );
}

/// Each node's hostname, priority, and whether HA and vservers are enabled.
fn node_summary(c: &Cluster) -> Vec<(&str, u8, bool, bool)> {
    c.nodes
        .iter()
        .map(|n| {
            (
                n.host.hostname.as_str(),
                n.priority,
                n.ha_enabled,
                n.vservers_enabled,
            )
        })
        .collect()
}

#[test]
fn nodes_get_seesaw_priorities_and_flags() {
    let Some(c) = ok("nodes0.pb") else { return };
    assert!(c.nodes.is_empty());

    let c = ok("nodes1.pb").unwrap();
    assert_eq!(
        node_summary(&c),
        [
            ("seesaw1-1.example.com.", 255, true, true),
            ("seesaw1-2.example.com.", 1, true, true)
        ]
    );
    assert_eq!(c.nodes[0].host.ipv4, Some(("1.2.3.5".parse().unwrap(), 26)));

    for (file, want) in [
        // Disabled cluster VIP: HA off, but a production node still runs vservers.
        ("nodes2.pb", (255, false, true, true, true)),
        // Disabled node: nothing enabled.
        ("nodes3.pb", (255, false, false, false, false)),
    ] {
        let c = ok(file).unwrap();
        let n = &c.nodes[0];
        assert_eq!(
            (
                n.priority,
                n.ha_enabled,
                n.anycast_enabled,
                n.bgp_enabled,
                n.vservers_enabled
            ),
            want,
            "{file}"
        );
    }

    // Sorted by IPv4 whatever the file order.
    let c = ok("nodes4.pb").unwrap();
    assert_eq!(
        node_summary(&c),
        [
            ("seesaw1-1.example.com.", 255, false, false),
            ("seesaw1-2.example.com.", 1, true, true)
        ]
    );

    let c = ok("nodes5.pb").unwrap();
    assert_eq!(
        c.nodes.iter().map(|n| n.priority).collect::<Vec<_>>(),
        [255, 1]
    );
}

#[test]
fn vip_subnets_and_the_duplicate_failure() {
    let Some(c) = ok("vipsubnets0.pb") else {
        return;
    };
    assert!(c.dedicated_vip_subnets.is_empty());
    let c = ok("vipsubnets1.pb").unwrap();
    let s: Vec<String> = c
        .dedicated_vip_subnets
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert_eq!(s, ["192.168.9.0/24", "2015:cafe:9::/64"]);
    // Seesaw's parser test expects this file to fail: the same subnet twice.
    let errs = cluster("vipsubnets2.pb").unwrap().unwrap_err();
    assert_eq!(
        errs,
        ["dedicated_vip_subnet[1]: duplicate subnet 192.168.9.0/24"]
    );
}

#[test]
fn vlans_load() {
    let Some(c) = ok("vlans0.pb") else { return };
    assert!(c.vlans.is_empty());
    let c = ok("vlans1.pb").unwrap();
    assert_eq!(c.vlans.keys().copied().collect::<Vec<_>>(), [114, 116]);
    assert_eq!(
        c.vlans[&114].host.ipv4,
        Some(("192.168.130.10".parse().unwrap(), 28))
    );
    assert_eq!(c.vlans[&116].host.hostname, "seesaw-vlan116.example.com.");
    let c = ok("vlans2.pb").unwrap();
    assert_eq!(
        c.vlans[&100].host.ipv6,
        Some(("2015:100:cafe::10".parse().unwrap(), 64))
    );
    let vs = &c.vservers["dns.resolver@au-syd"];
    assert_eq!(vs.backends.len(), 5);
    assert!(vs.entries.is_empty());
}

#[test]
fn vservers_match_seesaws_parser_expectations() {
    let Some(c) = ok("vservers0.pb") else { return };
    assert!(c.vservers.is_empty());

    let c = ok("vservers1.pb").unwrap();
    assert_eq!(
        c.vservers.keys().collect::<Vec<_>>(),
        [
            "dns.resolver.anycast@au-syd",
            "dns.resolver@au-syd",
            "irc.server@au-syd"
        ]
    );

    let any = &c.vservers["dns.resolver.anycast@au-syd"];
    assert_eq!(
        any.vips.iter().map(ToString::to_string).collect::<Vec<_>>(),
        ["192.168.255.1 (Anycast)"]
    );
    let udp = &any.entries[&EntryKey {
        proto: Protocol::Udp,
        port: 53,
    }];
    assert_eq!(
        (udp.scheduler, udp.mode, udp.persistence, udp.one_packet),
        (Scheduler::Wlc, ForwardMode::Dsr, 100, true)
    );
    assert_eq!((udp.low_watermark, udp.high_watermark), (0.4, 0.8));
    let dns = &udp.healthchecks["DNS/53_0"];
    assert_eq!(
        (dns.kind, dns.mode, dns.port),
        (CheckKind::Dns, CheckMode::Dsr, 53)
    );
    assert_eq!(
        (dns.interval, dns.timeout),
        (Duration::from_secs(2), Duration::from_secs(1))
    );
    let tcp = &any.entries[&EntryKey {
        proto: Protocol::Tcp,
        port: 53,
    }];
    assert_eq!(tcp.persistence, 100);
    assert!(tcp.healthchecks.is_empty());
    assert_eq!(any.backends["dns1-1.example.com."].weight, 5);
    assert_eq!(any.backends["dns1-2.example.com."].weight, 4);
    assert!(any.backends.values().all(|b| b.enabled && b.in_service));
    let https = &any.healthchecks["HTTP/16767_0"];
    assert_eq!(
        (https.kind, https.tls_verify, https.code),
        (CheckKind::Https, false, 200)
    );

    let dns = &c.vservers["dns.resolver@au-syd"];
    let vips: Vec<_> = dns.vips.iter().map(ToString::to_string).collect();
    assert_eq!(
        vips,
        [
            "192.168.36.1 (Dedicated)",
            "2015:cafe:36:0:a800:1ff:ffee:dd01 (Dedicated)"
        ]
    );
    assert_eq!(dns.entries.len(), 2);
    assert!(dns.backends.is_empty());

    let irc = &c.vservers["irc.server@au-syd"];
    assert_eq!(
        irc.entries
            .keys()
            .map(ToString::to_string)
            .collect::<Vec<_>>(),
        ["80/TCP", "6667/TCP", "6697/TCP"]
    );
    let tls = &irc.entries[&EntryKey {
        proto: Protocol::Tcp,
        port: 6697,
    }]
        .healthchecks["TCP/6697_0"];
    assert_eq!(
        (tls.kind, tls.retries, tls.tls_verify),
        (CheckKind::TcpTls, 2, true)
    );
    let tcp = &irc.healthchecks["TCP/6667_0"];
    assert_eq!(
        (
            tcp.kind,
            tcp.send.as_str(),
            tcp.receive.as_str(),
            tcp.tls_verify
        ),
        (CheckKind::Tcp, "ADMIN\r\n", ":", false)
    );
    assert_eq!(irc.access_grants.len(), 2);
    assert_eq!(
        irc.backends["irc1-1.example.com."]
            .host
            .ipv6
            .map(|(a, _)| IpAddr::V6(a)),
        Some("2015:cafe:36::a800:1ff:ffee:dd04".parse().unwrap())
    );

    let c = ok("vservers2.pb").unwrap();
    let gw = &c.vservers["api.gateway1@as-hkg"];
    let e = &gw.entries[&EntryKey {
        proto: Protocol::Tcp,
        port: 443,
    }];
    assert_eq!((e.scheduler, e.mode), (Scheduler::Mh, ForwardMode::Tun));
    assert_eq!(gw.healthchecks["HTTP/8001_0"].mode, CheckMode::Tun);
}

#[test]
fn seesaw_cluster_example_loads_and_passes_plane_neutral_validation() {
    let Some(text) = compat_file("cluster.pb.example") else {
        return;
    };
    let c = load_cluster(text.as_bytes(), None).unwrap();
    assert_eq!(c.vservers.len(), 5);
    assert_eq!(c.nodes.len(), 2);
    assert_eq!(c.vlans.len(), 5);
    assert_eq!(c.bgp.remote_asn, 64513);
    assert_eq!(c.bgp.local_asn, 64512);
    assert_eq!(c.bgp.peers.len(), 2);
    assert!(
        c.vservers
            .values()
            .all(|v| v.vips.iter().all(|v| v.kind == VipKind::Anycast))
    );
    // The same file on the proxy plane is refused, with a reason per entry (DSR is its default mode).
    let errs = load_cluster(text.as_bytes(), Some(DataplaneKind::Proxy)).unwrap_err();
    assert!(
        errs.iter()
            .any(|e| e.contains("mode: DSR is not supported by the proxy data plane")),
        "{errs:#?}"
    );
}

#[test]
fn duplicates_warn_and_are_skipped_like_seesaw() {
    let text = br#"
        seesaw_vip < fqdn: "v." status: PRODUCTION >
        vserver <
          name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "10.1.1.1/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: RR >
          vserver_entry < protocol: TCP port: 80 scheduler: WRR >
          backend < host < fqdn: "b1." ipv4: "10.2.2.1/24" > weight: 2 >
          backend < host < fqdn: "b1." ipv4: "10.2.2.9/24" > >
          access_grant < grantee: "ops" role: OPS type: GROUP >
          access_grant < grantee: "ops" role: OPS type: GROUP >
        >
        misconfigured_vserver < name: "broken" error_message: "no backends" >
    "#;
    let (c, warnings) = validate::validate(&cluster::parse(text).unwrap()).unwrap();
    assert_eq!(
        warnings,
        [
            "vserver[\"web\"].vserver_entry[1]: duplicate entry 80/TCP for vserver \"web\", skipped",
            "vserver[\"web\"].backend[1]: duplicate backend \"b1.\" for vserver \"web\", skipped",
            "vserver[\"web\"].access_grant[1]: duplicate grant for \"ops\", skipped",
            "vserver \"broken\" is misconfigured: no backends",
        ]
    );
    let web = &c.vservers["web"];
    assert_eq!(
        web.entries.values().next().unwrap().scheduler,
        Scheduler::Rr,
        "first entry wins"
    );
    assert_eq!(web.backends["b1."].weight, 2, "first backend wins");
}

#[test]
fn validation_collects_every_error_with_its_path() {
    let text = br#"
        seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/33" >
        vserver <
          name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "10.1.1.1/32" >
          vserver_entry < protocol: TCP port: 0 server_low_watermark: 1.5
            healthcheck < type: HTTP interval: 0 code: 42 > >
          backend < host < fqdn: "b." ipv4: "10.2.2.1/24" > weight: -1 >
          healthcheck < type: TCP >
        >
        dedicated_vip_subnet: "10.9.0.0/99"
    "#;
    let errs = validate::validate(&cluster::parse(text).unwrap()).unwrap_err();
    let want = [
        "seesaw_vip.ipv4: \"10.0.0.1/33\" is not an IPv4 address",
        "dedicated_vip_subnet[0]: \"10.9.0.0/99\" is not a CIDR subnet",
        "vserver[\"web\"].vserver_entry[0].port: 0 is not a valid port",
        "vserver[\"web\"].vserver_entry[0].server_low_watermark: 1.5 is outside 0.0..1.0",
        "vserver[\"web\"].backend[0].weight: -1 is negative",
        "vserver[\"web\"].healthcheck[0].port: required for vserver-level checks",
    ];
    for w in want {
        assert!(
            errs.iter().any(|e| e.starts_with(w)),
            "missing {w:?} in {errs:#?}"
        );
    }
}

#[test]
fn shipped_etc_files_load() {
    let etc = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../etc");
    let loaded = load_dir(&etc).unwrap_or_else(|e| panic!("etc/: {e:#?}"));
    assert!(!loaded.cluster.vservers.is_empty());
    assert!(
        loaded.local_node().is_some(),
        "etc/seesaw.cfg node_ipv4 names a node of etc/cluster.pb"
    );
    let demo = etc.join("demo");
    let loaded = load_dir(&demo).unwrap_or_else(|e| panic!("etc/demo: {e:#?}"));
    assert_eq!(loaded.settings.dataplane, DataplaneKind::Proxy);
    assert!(loaded.local_node().is_some());
}

#[test]
fn mysql_checks_are_our_extension() {
    let text = br#"
        seesaw_vip < fqdn: "v." >
        vserver < name: "db" rp: "x" entry_address < fqdn: "d." ipv4: "10.0.0.5/32" >
          vserver_entry < protocol: TCP port: 3306 mode: NAT healthcheck < type: MYSQL interval: 2 > >
        >
    "#;
    let c = load_cluster(text, None).unwrap();
    let e = &c.vservers["db"].entries[&EntryKey {
        proto: Protocol::Tcp,
        port: 3306,
    }];
    let hc = &e.healthchecks["MYSQL/3306_0"];
    assert_eq!((hc.kind, hc.port), (CheckKind::Mysql, 3306));
}

/// Seesaw's own parser tests (engine/config/config_test.go) load every cluster file here and
/// expect only `vipsubnets2.pb` to fail; the `healthcheck*.pb` files are single `Healthcheck`
/// messages (`healthcheck_fixtures_apply_proto2_defaults`). None of them warns in Seesaw, and
/// none may warn here.
#[test]
fn every_compat_cluster_file_has_seesaws_outcome_and_warnings() {
    let Some(mut names) = compat_testdata() else {
        return;
    };
    names.retain(|n| !n.starts_with("healthcheck"));
    assert_eq!(names.len(), 15);
    for n in &names {
        let got = cluster(n).unwrap();
        if n == "vipsubnets2.pb" {
            assert!(got.is_err(), "{n}: Seesaw refuses it");
        } else {
            let (_, warnings) = got.unwrap_or_else(|e| panic!("{n}: Seesaw accepts it: {e:#?}"));
            assert!(warnings.is_empty(), "{n}: {warnings:#?}");
        }
    }
    let text = compat_file("cluster.pb.example").unwrap();
    let (_, warnings) = validate::validate(&cluster::parse(text.as_bytes()).unwrap()).unwrap();
    assert!(warnings.is_empty(), "{warnings:#?}");
}

/// Where Seesaw's loader skips something and carries on, ours does too, with a warning that
/// names the field.
#[test]
fn seesaw_skip_cases_warn_and_load() {
    let text = br#"
        seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" status: PRODUCTION >
        vserver <
          name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "10.1.1.1/32" ipv6: "2001:db8::1" >
          vserver_entry < protocol: TCP port: 80 scheduler: RR
            healthcheck < type: HTTPS port: 8443 send: "/b" >
            healthcheck < type: HTTP port: 8443 send: "/a" >
            healthcheck < type: TCP_TLS port: 22 >
            healthcheck < type: TCP port: 22 >
            healthcheck < type: ICMP_PING mode: DSR > >
          backend < host < fqdn: "b1." ipv4: "10.2.2.1/24" > >
          backend < host < fqdn: "b2." ipv4: "10.2.2.2" > >
          backend < host < fqdn: "" ipv4: "10.2.2.3/24" > >
          backend < host < fqdn: "b4." ipv4: "10.2.2.300/24" > >
        >
        vserver < name: "web" rp: "x" entry_address < fqdn: "w2." ipv4: "10.1.1.2/32" > >
        vserver < name: "noaddr" rp: "x" entry_address < fqdn: "n." > >
        vserver < name: "bare" rp: "x" entry_address < fqdn: "n." ipv4: "10.1.1.3" > >
        vserver < name: "nofqdn" rp: "x" entry_address < fqdn: "" ipv4: "10.1.1.4/32" > >
        vserver < name: "junk" rp: "x" entry_address < fqdn: "j." ipv4: "ten/8" > >
    "#;
    let (c, warnings) = validate::validate(&cluster::parse(text).unwrap()).unwrap();
    assert_eq!(
        warnings,
        [
            "vserver[\"web\"].entry_address.ipv6: \"2001:db8::1\" has no prefix length (write it like 2001:db8::1/64), dropped as Seesaw drops it",
            "vserver[\"web\"].vserver_entry[0].healthcheck[4].mode: ICMP_PING checks cannot run in DSR mode (an echo to the VIP cannot prove that one backend serves it); check dropped as Seesaw drops it — use PLAIN, or a TCP/UDP/HTTP check in this mode",
            "vserver[\"web\"].vserver_entry[0].healthcheck[0]: HTTPS check on port 8443 is named \"HTTP/8443_0\" like the HTTP check before it; Seesaw keeps the first, skipped",
            "vserver[\"web\"].vserver_entry[0].healthcheck[2]: TCP_TLS check on port 22 is named \"TCP/22_0\" like the TCP check before it; Seesaw keeps the first, skipped",
            "vserver[\"web\"].backend[1].host.ipv4: \"10.2.2.2\" has no prefix length (write it like 10.0.0.1/24), dropped as Seesaw drops it",
            "vserver[\"web\"].backend[1].host: backend has no usable ipv4 or ipv6 address, skipped",
            "vserver[\"web\"].backend[2].host: backend has no fqdn, skipped",
            "vserver[\"web\"].backend[3].host.ipv4: \"10.2.2.300/24\" is not an address with prefix length (like 10.0.0.1/24), dropped",
            "vserver[\"web\"].backend[3].host: backend has no usable ipv4 or ipv6 address, skipped",
            "vserver[1]: duplicate vserver \"web\", skipped (the first is kept)",
            "vserver[\"noaddr\"].entry_address: vserver has no usable ipv4 or ipv6 address, skipped",
            "vserver[\"bare\"].entry_address.ipv4: \"10.1.1.3\" has no prefix length (write it like 10.0.0.1/24), dropped as Seesaw drops it",
            "vserver[\"bare\"].entry_address: vserver has no usable ipv4 or ipv6 address, skipped",
            "vserver[\"nofqdn\"].entry_address: vserver has no fqdn, skipped",
            "vserver[\"junk\"].entry_address.ipv4: \"ten/8\" is not an address with prefix length (like 10.0.0.1/24), dropped",
            "vserver[\"junk\"].entry_address: vserver has no usable ipv4 or ipv6 address, skipped",
        ]
    );
    assert_eq!(c.vservers.keys().collect::<Vec<_>>(), ["web"]);
    let web = &c.vservers["web"];
    assert_eq!(web.host.addr(Af::V4), Some("10.1.1.1".parse().unwrap()));
    assert_eq!(web.host.ipv6, None, "the bare IPv6 address is dropped");
    assert_eq!(web.backends.keys().collect::<Vec<_>>(), ["b1."]);
    let checks = &web.entries.values().next().unwrap().healthchecks;
    let kept: Vec<_> = checks
        .iter()
        .map(|(n, c)| (n.as_str(), c.kind, c.send.as_str()))
        .collect();
    assert_eq!(
        kept,
        [
            ("HTTP/8443_0", CheckKind::Http, "/a"),
            ("TCP/22_0", CheckKind::Tcp, "")
        ]
    );
}

/// Seesaw's check names: sorted by its type order, the counter restarting on a new type or
/// port, so two HTTPS checks beside one HTTP check keep the second HTTPS one as `_1`.
#[test]
fn check_names_follow_seesaws_counter() {
    let text = br#"
        seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        vserver <
          name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "10.1.1.1/32" >
          healthcheck < type: HTTPS port: 443 send: "/x" >
          healthcheck < type: HTTPS port: 443 send: "/y" >
          healthcheck < type: HTTP port: 443 >
          healthcheck < type: DNS port: 53 send: "a." >
          healthcheck < type: DNS port: 53 send: "b." >
        >
    "#;
    let (c, warnings) = validate::validate(&cluster::parse(text).unwrap()).unwrap();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(warnings[0].starts_with("vserver[\"web\"].healthcheck[0]: HTTPS check"));
    let names: Vec<_> = c.vservers["web"]
        .healthchecks
        .iter()
        .map(|(n, c)| (n.as_str(), c.kind, c.send.as_str()))
        .collect();
    assert_eq!(
        names,
        [
            ("DNS/53_0", CheckKind::Dns, "a."),
            ("DNS/53_1", CheckKind::Dns, "b."),
            ("HTTP/443_0", CheckKind::Http, ""),
            ("HTTP/443_1", CheckKind::Https, "/y"),
        ]
    );
}

/// Every plane refuses two services with one key and two destinations with one key, so
/// validation does: a config that validates must be applied.
#[test]
fn a_vip_port_belongs_to_one_vserver_and_an_address_to_one_backend() {
    let text = br#"
        seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        vserver < name: "a" rp: "x" entry_address < fqdn: "a." ipv4: "10.1.1.1/32" >
          vserver_entry < protocol: TCP port: 80 >
          vserver_entry < protocol: UDP port: 53 >
          backend < host < fqdn: "b1." ipv4: "10.2.2.1/24" > >
          backend < host < fqdn: "b1-alias." ipv4: "10.2.2.1/24" > > >
        vserver < name: "b" rp: "x" entry_address < fqdn: "b." ipv4: "10.1.1.1/32" >
          vserver_entry < protocol: TCP port: 80 >
          vserver_entry < protocol: TCP port: 53 > >
    "#;
    let errs = validate::validate(&cluster::parse(text).unwrap()).unwrap_err();
    assert_eq!(
        errs,
        [
            "vserver[\"a\"].backend[\"b1.\"]: address 10.2.2.1 is also backend \"b1-alias.\"'s; one address can be one destination of a service only",
            "vserver[\"b\"].vserver_entry[80/TCP]: 10.1.1.1 port 80/TCP is also served by vserver \"a\"; a VIP, port and protocol belong to one vserver",
        ]
    );
}

/// A file full of unknown names is read in one pass, not one parse per name, and a refusal is
/// shown by its first errors and a count of the rest.
#[test]
fn many_unknown_names_are_all_reported_in_one_pass() {
    let mut text = String::from("seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" >\n");
    for i in 0..300 {
        text.push_str(&format!(
            "vserver < name: \"v{i}\" rp: \"x\" bogus_{i}: 1 entry_address < fqdn: \"w.\" ipv4: \"10.1.{}.{}/32\" >\n  vserver_entry < protocol: TCP port: 80 scheduler: NOPE_{i} > >\n",
            i / 250,
            i % 250
        ));
    }
    let errs = cluster::parse(text.as_bytes()).unwrap_err();
    assert_eq!(
        errs.len(),
        600,
        "every unknown field and enum value: {:?}",
        &errs[..3]
    );
    assert_eq!(
        errs[0],
        "cluster.pb:2:30: field 'bogus_0' not found for message 'seesaw.config.Vserver'"
    );
    assert_eq!(
        errs[1],
        "cluster.pb:3:53: value 'NOPE_0' was not found for enum 'seesaw.config.VserverEntry.Scheduler'"
    );
    let shown = summarize(errs, SHOWN_ERRORS);
    assert_eq!(shown.len(), SHOWN_ERRORS + 1);
    assert_eq!(shown[SHOWN_ERRORS], "... and 550 more errors");
}

/// A big file (over 1 MB) with unknown names is refused on them alone, without the full parse
/// (which costs seconds at 20 MB; `bench/config_refusal.sh` times it): the unknown names, then a
/// line saying the rest was not checked. A small file still gets every error at once (above).
#[test]
fn a_big_file_with_unknown_names_is_refused_on_them_alone() {
    let mut text = String::from("seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" >\n");
    let mut i = 0;
    while text.len() <= 1 << 20 {
        let bogus = if i < 250 {
            format!("bogus_{i}: 1 ")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "vserver < name: \"v{i}\" rp: \"x\" {bogus}entry_address < fqdn: \"w.\" ipv4: \"10.1.{}.{}/32\" > >\n",
            i / 250,
            i % 250
        ));
        i += 1;
    }
    // A syntax error further on is not reached.
    text.push_str("vserver < name: \"broken\"\n");
    let errs = cluster::parse(text.as_bytes()).unwrap_err();
    assert_eq!(errs.len(), 251, "{:?}", &errs[errs.len() - 2..]);
    assert_eq!(
        errs[0],
        "cluster.pb:2:30: field 'bogus_0' not found for message 'seesaw.config.Vserver'"
    );
    assert_eq!(
        errs[250],
        "the rest of cluster.pb was not checked: remove the unknown names first"
    );
}

/// Names and comments reach logs and the shell: a forged log line, a terminal escape or NUL in
/// any of them is refused; check payloads may hold control bytes (Seesaw's own `"ADMIN\r\n"`).
#[test]
fn control_characters_in_names_and_comments_are_refused() {
    let text = br#"
        seesaw_vip < fqdn: "v.\n2026-12-04 INFO forged" ipv4: "10.0.0.1/24" >
        vserver <
          name: "web\r\nINFO forged" rp: "x\x1b[31m" entry_address < fqdn: "w." ipv4: "10.1.1.1/32" >
          vserver_entry < protocol: TCP port: 80
            healthcheck < type: TCP send: "PING\r\n" receive: "+PONG\r\n" > >
          backend < host < fqdn: "b\000." ipv4: "10.2.2.1/24" > >
          access_grant < grantee: "ops\u2028" role: OPS type: GROUP >
        >
    "#;
    let errs = validate::validate(&cluster::parse(text).unwrap()).unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.split(':').next().unwrap()).collect();
    assert_eq!(
        paths,
        [
            "seesaw_vip.fqdn",
            "vserver[0].name",
            "vserver[0].rp",
            "vserver[0].backend[0].host.fqdn",
            "vserver[0].access_grant[0].grantee"
        ],
        "{errs:#?}"
    );
    assert!(
        errs.iter().all(|e| !e.contains('\n') && !e.contains('\r')),
        "the errors themselves are one line each: {errs:#?}"
    );
}

/// A cluster of `n` vservers `v0`, `v1`, … on 10.1.x.y, vserver `i` holding `body(i)` (its
/// entries and backends).
fn many_vservers(n: usize, body: impl Fn(usize) -> String) -> Cluster {
    let mut text = String::from(
        "seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" >\nnode < fqdn: \"n.\" ipv4: \"10.0.0.2/24\" >\n",
    );
    for i in 0..n {
        text.push_str(&format!(
            "vserver < name: \"v{i}\" rp: \"x\" entry_address < fqdn: \"v{i}.\" ipv4: \"10.1.{}.{}/32\" > {} >\n",
            i / 250,
            i % 250,
            body(i)
        ));
    }
    load_cluster(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e:#?}"))
}

/// The proxy plane's descriptor capacity is checked at validation, by the relay's own rule
/// (ncc's `ten_thousand_vservers_fit_in_the_relay` holds the relay to it).
#[test]
fn the_proxy_planes_descriptor_capacity_is_validated() {
    let cluster = |tcp: usize, udp: usize| {
        many_vservers(tcp + udp, |i| {
            let proto = if i < tcp { "TCP" } else { "UDP" };
            format!("vserver_entry < protocol: {proto} port: 80 mode: NAT scheduler: RR >")
        })
    };
    // Limit 2,048, two workers: 256 services get two listeners (512), then one each; 1,024 are
    // kept for connections.
    assert_eq!(validate::proxy_capacity(&cluster(600, 0), 2048, 2), None);
    let refused = validate::proxy_capacity(&cluster(900, 0), 2048, 2).expect("refused");
    assert!(
        refused.starts_with("900 services need 1156 listening sockets in the proxy data plane, which has room for 1024 (open-file limit 2048)"),
        "{refused}"
    );
    let threads = validate::proxy_capacity(&cluster(0, 2049), 1 << 20, 2).expect("refused");
    assert!(
        threads.contains("2049 UDP services need 4098 proxy worker threads"),
        "{threads}"
    );
}

/// The nftables plane's slot map is bounded (`validate/slots.rs`): a config needing more slots
/// than a restarted ncc can read back is refused before it reaches ncc, and only there.
#[test]
fn the_nftables_planes_slot_capacity_is_validated() {
    use crate::config::seesaw_cfg::DataplaneKind;
    let cluster = |mh: usize, wlc: usize| {
        many_vservers(mh + wlc, |i| {
            let sched = if i < mh { "MH" } else { "WLC" };
            format!(
                "vserver_entry < protocol: TCP port: 80 mode: NAT scheduler: {sched} > backend < host < fqdn: \"b1.\" ipv4: \"10.2.0.1/24\" > weight: 1 > backend < host < fqdn: \"b2.\" ipv4: \"10.2.0.2/24\" > weight: 1 >"
            )
        })
    };
    // 18 mh services (65,537 slots each) and 1,000 wlc ones (16 each) fit in 1,200,000 …
    let fits = cluster(18, 1000);
    assert_eq!(validate::nft_capacity(&fits), None);
    assert!(validate::check_plane(&fits, DataplaneKind::Nftables).is_empty());
    // … 300 more wlc services do not, and the refusal says how many and who needs the most.
    let over = cluster(18, 1300);
    let errs = validate::check_plane(&over, DataplaneKind::Nftables);
    assert_eq!(errs.len(), 1, "{errs:#?}");
    assert!(
        errs[0].starts_with("the nftables data plane holds at most 1200000 scheduler slots in all")
            && errs[0].contains("this config needs 1200466 (most: vserver[\"v0\"].vserver_entry[80/TCP] 65537, vserver[\"v1\"]"),
        "{}",
        errs[0]
    );
    // The other planes hold their tables elsewhere.
    assert!(validate::check_plane(&over, DataplaneKind::Ipvs).is_empty());
    // A firewall-mark vserver is one service per address family, whatever its entry count:
    // three mh entries on an IPv4 and an IPv6 VIP add 2 × 65,537 with use_fwm, 6 × 65,537
    // without.
    // `over` with one more vserver (its text); what the refusal counts.
    let with = |vserver: String| {
        let text = format!(
            "seesaw_vip < fqdn: \"v.\" ipv4: \"10.0.0.1/24\" >\nnode < fqdn: \"n.\" ipv4: \"10.0.0.2/24\" >\n{vserver}\n"
        );
        let mut c = over.clone();
        let more = load_cluster(text.as_bytes(), None).unwrap_or_else(|e| panic!("{e:#?}"));
        c.vservers.extend(more.vservers);
        validate::nft_capacity(&c).expect("over")
    };
    let needs = |use_fwm: bool| {
        let entries: String = (80..83)
            .map(|p| format!("vserver_entry < protocol: TCP port: {p} mode: NAT scheduler: MH > "))
            .collect();
        with(format!(
            "vserver < name: \"f\" rp: \"x\" use_fwm: {use_fwm} entry_address < fqdn: \"f.\" ipv4: \"10.1.0.1/32\" ipv6: \"2001:db8::1/128\" > {entries}backend < host < fqdn: \"b1.\" ipv4: \"10.2.0.1/24\" ipv6: \"2001:db8:2::1/64\" > weight: 1 > >"
        ))
    };
    assert!(
        needs(true).contains("this config needs 1331540 "),
        "{}",
        needs(true)
    );
    assert!(
        needs(false).contains("this config needs 1593688 "),
        "{}",
        needs(false)
    );
    // Each DSR/TUN probe target (backend address and mode) is a one-slot service of its own:
    // two backends with two addresses each, one DSR check → 4 more.
    let probed = |mode: &str| {
        with(format!(
            "vserver < name: \"p\" rp: \"x\" entry_address < fqdn: \"p.\" ipv4: \"10.1.9.1/32\" > vserver_entry < protocol: TCP port: 80 mode: DSR scheduler: RR > healthcheck < type: TCP port: 80 {mode} > backend < host < fqdn: \"b1.\" ipv4: \"10.2.0.1/24\" ipv6: \"2001:db8:2::1/64\" > weight: 1 > backend < host < fqdn: \"b2.\" ipv4: \"10.2.0.2/24\" ipv6: \"2001:db8:2::2/64\" > weight: 1 > >"
        ))
    };
    // 1,200,466 + rr over two backends (2) …
    assert!(
        probed("").contains("this config needs 1200468 "),
        "{}",
        probed("")
    );
    // … + four probe targets.
    assert!(
        probed("mode: DSR").contains("this config needs 1200472 "),
        "{}",
        probed("mode: DSR")
    );
}
