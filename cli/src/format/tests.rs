//! Snapshot-style tests of the formatters, from hand-built engine replies.

use seesaw_proto::engine as pb;

use super::*;
use crate::tree::{COMMANDS, Parsed, parse};

/// 2023-11-14 22:13:20 UTC.
const NOW_MS: i64 = 1_700_000_000_000;

fn destination(
    name: &str,
    address: &str,
    healthy: bool,
    checks: Vec<pb::CheckStatus>,
) -> pb::DestinationStatus {
    pb::DestinationStatus {
        name: name.into(),
        backend: name.into(),
        address: address.into(),
        port: 8080,
        weight: 1,
        enabled: true,
        healthy,
        active: healthy,
        checks,
        active_conns: 2,
        total_conns: 120,
        bytes_in: 0,
        bytes_out: 0,
        override_state: String::new(),
    }
}

fn check(name: &str, state: &str, message: &str) -> pb::CheckStatus {
    pb::CheckStatus {
        name: name.into(),
        id: 1,
        state: state.into(),
        message: message.into(),
        stats: None,
    }
}

fn web() -> pb::VserverStatus {
    pb::VserverStatus {
        name: "web@demo".into(),
        hostname: "web.demo.".into(),
        enabled: true,
        config_enabled: true,
        vips: vec!["127.0.0.1".into()],
        override_state: String::new(),
        services: vec![pb::ServiceStatus {
            address: "127.0.0.1".into(),
            protocol: "TCP".into(),
            port: 8080,
            scheduler: "WRR".into(),
            mode: "nat".into(),
            persistence: 0,
            one_packet: false,
            enabled: true,
            healthy: true,
            active: true,
            not_applied: String::new(),
            table_hash: String::new(),
            low_watermark: 0.0,
            high_watermark: 0.0,
            current_watermark: 0.5,
            destinations: vec![
                destination(
                    "be1.demo.",
                    "127.0.0.2",
                    true,
                    vec![check("HTTP/8080_0", "healthy", "200 OK")],
                ),
                destination(
                    "be2.demo.",
                    "127.0.0.3",
                    false,
                    vec![
                        check("HTTP/8080_0", "unhealthy", "connection refused"),
                        check("TCP/8080_1", "healthy", ""),
                    ],
                ),
            ],
        }],
        warnings: vec!["be2.demo. is unhealthy".into()],
    }
}

#[test]
fn vserver_detail_shows_services_destinations_and_checks() {
    let mut v = web();
    // An IPv6 service sorts after the IPv4 one and carries persistence.
    v.services.insert(
        0,
        pb::ServiceStatus {
            address: "2001:db8::1".into(),
            protocol: "UDP".into(),
            port: 53,
            scheduler: "rr".into(),
            mode: "DSR".into(),
            persistence: 30,
            one_packet: true,
            ..Default::default()
        },
    );
    let text = vserver_detail(&Vserver::from(v));
    let expected = "\
Name:     web@demo
Hostname: web.demo.
Status:   enabled
VIPs:     127.0.0.1

IPv4 TCP/8080 (NAT, wrr scheduler)
  State: enabled, healthy, active
  Watermarks: Low 0.00, High 0.00, Currently 0.50
  Destinations:
    NAME       ADDRESS         WEIGHT  ENABLED  HEALTHY  ACTIVE  CONNS  TOTAL  CHECKS
    be1.demo.  127.0.0.2:8080  1       yes      yes      yes     2      120    HTTP/8080_0: healthy (200 OK)
    be2.demo.  127.0.0.3:8080  1       yes      no       no      2      120    HTTP/8080_0: unhealthy (connection refused)
                                                                               TCP/8080_1: healthy

IPv6 UDP/53 (DSR, rr scheduler, one-packet mode, 30s persistence)
  State: disabled, unhealthy, inactive
  Watermarks: Low 0.00, High 0.00, Currently 0.00
  Destinations: none

Warnings:
  - be2.demo. is unhealthy
";
    assert_eq!(text, expected, "got:\n{text}");
}

/// A service the data plane refused is shown as not applied, with the engine's reason.
#[test]
fn vserver_detail_shows_a_service_the_plane_refused() {
    let mut v = web();
    v.services[0].active = false;
    v.services[0].not_applied = "cannot listen on 127.0.0.1:8080/TCP: Too many open files".into();
    let text = vserver_detail(&Vserver::from(v));
    assert!(
        text.contains(
            "  State: enabled, healthy, NOT APPLIED (cannot listen on 127.0.0.1:8080/TCP: Too many open files)\n"
        ),
        "{text}"
    );
}

#[test]
fn vserver_detail_shows_an_override() {
    let mut v = web();
    v.enabled = false;
    v.vips.clear();
    let text = vserver_detail(&Vserver::from(v));
    assert!(
        text.contains("Status:   disabled (config state enabled)\n"),
        "{text}"
    );
    assert!(text.contains("VIPs:     none\n"), "{text}");
}

#[test]
fn vserver_list_numbers_and_marks_disabled() {
    let mut dns = web();
    dns.name = "dns@demo".into();
    dns.enabled = false;
    let list = vec![Vserver::from(web()), Vserver::from(dns)];
    assert_eq!(
        vserver_list(&list, None),
        "[1] web@demo\n[2] dns@demo (disabled)\n"
    );
    assert_eq!(vserver_list(&[], None), "No vservers.\n");
    assert_eq!(vserver_list(&[], Some("x")), "No vserver matches \"x\".\n");
}

#[test]
fn ha_is_seesaws_block() {
    let h = HaStatus::from(pb::HaStatus {
        state: "LEADER".into(),
        since_ms: NOW_MS - 3_723_000,
        transitions: 2,
        adverts_sent: 1234,
        adverts_received: 5,
        last_update_ms: NOW_MS - 400,
        ..Default::default()
    });
    // Seesaw's cli/show.go showHAStatus: labels padded to column 23, Go durations, and times in
    // its "Jan 2 15:04:05 MST" layout.
    let expected = "\
HA Status
  State:               LEADER
  Duration:            1h2m3s (since Nov 14 21:11:17 UTC)
  Transitions:         2
  Advertisements Sent: 1234
  Advertisements Rcvd: 5
  Last Update:         Nov 14 22:13:19 UTC
";
    assert_eq!(ha(&h, NOW_MS), expected);
    let never = HaStatus::from(pb::HaStatus {
        state: "UNKNOWN".into(),
        ..Default::default()
    });
    let text = ha(&never, NOW_MS);
    assert!(text.contains("\n  Duration:            N/A\n"), "{text}");
    assert!(text.ends_with("\n  Last Update:         N/A\n"), "{text}");
}

#[test]
fn ha_shows_rejected_adverts_and_warns_when_the_keys_differ() {
    let with = |rejected: &[(&str, u64)]| {
        let h = HaStatus::from(pb::HaStatus {
            state: "LEADER".into(),
            adverts_rejected: rejected
                .iter()
                .map(|(r, n)| ((*r).to_owned(), *n))
                .collect(),
            ..Default::default()
        });
        ha(&h, NOW_MS)
    };
    let warning =
        "  Warning: the peer's adverts do not verify: the two nodes' [ha] auth keys differ?\n";
    let text = with(&[("replay", 3), ("bad_mac", 12)]);
    assert!(
        text.ends_with(&format!(
            "  adverts rejected: bad_mac 12, replay 3\n{warning}"
        )),
        "{text}"
    );
    for reason in ["unauthenticated", "unexpected_auth"] {
        assert!(with(&[(reason, 1)]).ends_with(warning), "{reason}");
    }
    // Replays alone, or line noise, are shown without the key warning.
    let text = with(&[("replay", 2), ("checksum", 1)]);
    assert!(
        text.ends_with("  adverts rejected: checksum 1, replay 2\n"),
        "{text}"
    );
    // Nothing rejected: Seesaw's block exactly, no extra line.
    assert!(with(&[]).ends_with("  Last Update:         N/A\n"));
    assert!(!with(&[("bad_mac", 0)]).contains("rejected"));
}

#[test]
fn go_durations_match_time_duration_string() {
    for (secs, want) in [
        (0, "0s"),
        (45, "45s"),
        (60, "1m0s"),
        (125, "2m5s"),
        (3_600, "1h0m0s"),
        (3_725, "1h2m5s"),
        (90_061, "25h1m1s"),
    ] {
        assert_eq!(go_duration(secs), want);
    }
}

#[test]
fn nodes_are_seesaws_lines_with_our_columns_after() {
    let c = Cluster::from(pb::ClusterStatus {
        version: 2,
        site: "demo".into(),
        dataplane: "proxy".into(),
        nodes: vec![
            pb::Node {
                hostname: "node1.demo.".into(),
                ipv4: "127.0.0.1".into(),
                priority: 100,
                ha_enabled: true,
                vservers_enabled: true,
                is_local: true,
                ..Default::default()
            },
            pb::Node {
                hostname: "n2.demo.".into(),
                ipv4: "192.0.2.2".into(),
                ipv6: "2001:db8::2".into(),
                priority: 50,
                vservers_enabled: true,
                ..Default::default()
            },
        ],
    });
    // Seesaw's `[n] hostname enabled|disabled`: enabled means HA is not disabled.
    let expected = "\
Nodes
[1] node1.demo. enabled  IPv4 127.0.0.1  IPv6 -            priority 100  (this node)
[2] n2.demo. disabled    IPv4 192.0.2.2  IPv6 2001:db8::2  priority 50
";
    assert_eq!(nodes(&c), expected);
    let detail = node_detail(&c.site, &c.nodes[1]);
    assert!(
        detail.starts_with(
            "Node\n  Hostname:            n2.demo.\n  Site:                demo\n  \
             IPv4 Address:        192.0.2.2\n  IPv6 Address:        2001:db8::2\n  \
             HA Enabled:          false\n"
        ),
        "{detail}"
    );
}

#[test]
fn vlan_detail_prints_not_configured_for_a_missing_family() {
    let v = Vlan::from(pb::Vlan {
        id: 10,
        hostname: "v10.".into(),
        ipv4: "10.0.10.1/24".into(),
        ipv4_backends: 7,
        ipv4_vips: 2,
        ..Default::default()
    });
    assert_eq!(
        vlan_detail(&v),
        "VLAN
  ID:                  10
  Hostname:            v10.
  IPv4 Address:        10.0.10.1/24
  IPv6 Address:        <not configured>
  IPv4 Backend Count:  7
  IPv6 Backend Count:  0
  IPv4 VIP Count:      2
  IPv6 VIP Count:      0
"
    );
}

#[test]
fn warnings_merge_reload_errors_once() {
    let status = ConfigStatus::from(pb::ConfigStatus {
        warnings: vec!["a".into(), "reload: bad port".into()],
        last_reload_errors: vec!["reload: bad port".into(), "b".into()],
        ..Default::default()
    });
    let w = WarningsView::from(status);
    assert_eq!(
        warnings(&w),
        "There are 3 warnings:\n  - a\n  - reload: bad port\n  - b\n"
    );
    assert_eq!(
        warnings(&WarningsView { warnings: vec![] }),
        "No warnings.\n"
    );
}

#[test]
fn reload_prints_message_and_every_error() {
    let ok = Outcome::from(pb::ConfigReloadReply {
        applied: true,
        message: "configuration applied (generation 3)".into(),
        errors: vec![],
    });
    assert_eq!(reload(&ok), "configuration applied (generation 3)\n");
    let refused = Outcome::from(pb::ConfigReloadReply {
        applied: false,
        message: "configuration refused".into(),
        errors: vec![
            "vserver[\"web\"].port: out of range".into(),
            "second".into(),
        ],
    });
    assert_eq!(
        reload(&refused),
        "configuration refused\nConfiguration reload refused:\n  vserver[\"web\"].port: out of range\n  second\n"
    );
}

#[test]
fn config_status_lists_attributes() {
    let c = ConfigStatus::from(pb::ConfigStatus {
        last_updated: NOW_MS / 1000 - 90,
        loaded_at_ms: NOW_MS - 5_000,
        source: "disk".into(),
        generation: 3,
        attributes: vec![
            pb::Attribute {
                name: "owner".into(),
                value: "ops".into(),
            },
            pb::Attribute {
                name: "ticket".into(),
                value: "42".into(),
            },
        ],
        reload_failures: 1,
        ..Default::default()
    });
    let expected = "\
Config Status:
  Last update:     1m 30s ago (2023-11-14 22:11:50 UTC)
  Loaded at:       5s ago (2023-11-14 22:13:15 UTC)
  Source:          disk
  Generation:      3
  Reload failures: 1
  Attributes:
    owner:   ops
    ticket:  42
";
    assert_eq!(config_status(&c, NOW_MS), expected);
    let empty = ConfigStatus::from(pb::ConfigStatus::default());
    assert!(config_status(&empty, NOW_MS).contains("  Attributes:      none\n"));
}

#[test]
fn config_status_shows_the_etcd_source_and_its_trouble() {
    let mut pb = pb::ConfigStatus {
        source: "etcd".into(),
        etcd_key: "/seesaw/site1/cluster.pb".into(),
        etcd_revision: 17,
        ..Default::default()
    };
    let out = config_status(&ConfigStatus::from(pb.clone()), NOW_MS);
    assert!(
        out.contains("  Etcd key:        /seesaw/site1/cluster.pb\n"),
        "{out}"
    );
    assert!(out.contains("  Etcd revision:   17\n"), "{out}");
    assert!(out.contains("  Etcd:            following\n"), "{out}");
    pb.etcd_trouble = "etcd is not reachable: refused".into();
    let out = config_status(&ConfigStatus::from(pb), NOW_MS);
    assert!(
        out.contains("  Etcd:            NOT FOLLOWED: etcd is not reachable: refused (serving the last applied config)\n"),
        "{out}"
    );
    let disk = config_status(&ConfigStatus::from(pb::ConfigStatus::default()), NOW_MS);
    assert!(!disk.contains("Etcd"), "{disk}");
}

#[test]
fn help_options_are_aligned() {
    let Ok(Parsed::Help { options, .. }) = parse(COMMANDS, "config ?") else {
        panic!("expected help");
    };
    assert_eq!(
        help_options(&options),
        "  history   Show the saved cluster.pb versions\n  import    Import vservers from a YAML file\n  \
         reload    Reload the cluster configuration\n  rollback  Restore a saved cluster.pb version and apply it\n  \
         source    Show or set the configuration source\n  status    Show the configuration status\n"
    );
}

#[test]
fn durations_keep_two_units() {
    assert_eq!(duration(0), "0s");
    assert_eq!(duration(7), "7s");
    assert_eq!(duration(60), "1m");
    assert_eq!(duration(125), "2m 5s");
    assert_eq!(duration(90_061), "1d 1h");
    assert_eq!(
        timestamp(NOW_MS + 2_000, NOW_MS),
        "in 2s (2023-11-14 22:13:22 UTC)"
    );
}

#[test]
fn json_uses_the_view_shape() {
    let v = Vserver::from(web());
    let json: serde_json::Value = serde_json::to_value(&v).expect("views serialise");
    assert_eq!(json["name"], "web@demo");
    assert_eq!(
        json["services"][0]["destinations"][1]["checks"][1]["name"],
        "TCP/8080_1"
    );
    assert_eq!(json["services"][0]["scheduler"], "WRR");
}
