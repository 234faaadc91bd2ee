//! The shell's tests: commands against a fake engine, completion and output formats.

use seesaw_proto::engine as pb;

use super::*;
use crate::engine::FakeEngine;
use crate::tree::OverrideSet;

#[path = "../../tests/support/bgp.rs"]
mod bgp;

fn vserver(name: &str, enabled: bool) -> pb::VserverStatus {
    pb::VserverStatus {
        name: name.into(),
        hostname: format!("{name}.host."),
        enabled,
        config_enabled: enabled,
        ..Default::default()
    }
}

fn fake() -> FakeEngine {
    FakeEngine {
        vservers: vec![
            vserver("web", true),
            vserver("web2", false),
            vserver("dns", true),
        ],
        ..Default::default()
    }
}

#[tokio::test]
async fn overrides_and_config_source_reach_the_engine() {
    let mut e = fake();
    e.vservers[0].services = vec![pb::ServiceStatus {
        destinations: vec![pb::DestinationStatus {
            name: "web/192.0.2.1:80/TCP".into(),
            backend: "b1.example.com.".into(),
            ..Default::default()
        }],
        ..Default::default()
    }];
    assert_eq!(
        shown(&mut e, "ov ba st dis b1.example.com.").await,
        "backend b1.example.com.: disabled\n"
    );
    assert_eq!(
        shown(&mut e, "override vserver state enabled web").await,
        "vserver web: enabled\n"
    );
    assert_eq!(
        e.overrides,
        [
            (
                OverrideKind::Backend,
                "b1.example.com.".to_owned(),
                OverrideSet::Disabled
            ),
            (
                OverrideKind::Vserver,
                "web".to_owned(),
                OverrideSet::Enabled
            ),
        ]
    );
    assert_eq!(
        refused(text(&mut e, "override destination state default").await),
        "Incomplete command.\n"
    );
    // Names the engine does not know: Seesaw's words, and not ok (a `-c` run exits 1).
    for (line, want) in [
        (
            "override vserver state disabled nosuch",
            "No such vserver - nosuch\n",
        ),
        (
            "ov ba st en b9.example.com.",
            "No such backend - b9.example.com.\n",
        ),
        (
            "ov de st def web/192.0.2.9:80/TCP",
            "No such destination - web/192.0.2.9:80/TCP\n",
        ),
    ] {
        assert_eq!(refused(text(&mut e, line).await), want, "{line}");
    }
    assert_eq!(e.overrides.len(), 2, "refused overrides reach nothing");
    e.source = "disk".into();
    assert_eq!(
        shown(&mut e, "config source none").await,
        "Config source is none (was disk)\n"
    );
    assert_eq!(
        shown(&mut e, "config source").await,
        "Config source is none\n"
    );
}

async fn text(engine: &mut FakeEngine, line: &str) -> Result<Step, EngineError> {
    let Ok(Parsed::Run { action, arg }) = tree::parse(COMMANDS, line) else {
        panic!("{line:?} is not a command");
    };
    execute(engine, action, arg.as_deref(), OutputFormat::Text, 0).await
}

#[tokio::test]
async fn failover_reports_the_engine_answer_and_refusal() {
    let mut e = FakeEngine::default();
    e.ha.state = "BACKUP".into();
    match text(&mut e, "failover").await {
        Ok(Step::Print { text, ok: false }) => {
            assert_eq!(
                text,
                "Failover refused: this node is BACKUP, not the master\n"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    e.ha.state = "LEADER".into();
    assert_eq!(shown(&mut e, "failover").await, "failover requested\n");
    assert_eq!(e.failovers, 1);
}

#[tokio::test]
async fn bgp_neighbors_show_state_uptime_counters_and_routes() {
    let mut e = FakeEngine::default();
    assert_eq!(
        shown(&mut e, "show bgp neighbors").await,
        "No BGP neighbours.\nAnnounced: none\n"
    );
    e.bgp = bgp::neighbors();
    assert_eq!(
        shown(&mut e, "sh bgp n").await,
        "BGP neighbor is 192.0.2.254, remote AS 64512\n  BGP state = ESTABLISHED, up for 01:02:05\n  \
         Remote router ID 192.0.2.254\n  Messages: 12 received (0 updates), 14 sent (3 updates)\n\
         Announced: 192.168.255.1/32\n"
    );
    // One neighbour by address: Seesaw's block (cli/show.go showBGPNeighbors).
    assert_eq!(
        shown(&mut e, "show bgp neighbors 192.0.2.254").await,
        "BGP Neighbor\n\
         \x20 IP Address:          192.0.2.254\n\
         \x20 Router ID:           192.0.2.254\n\
         \x20 ASN:                 64512\n\
         \x20 Description:\n\
         \x20 BGP State:           ESTABLISHED\n\
         \x20 Duration:            1h2m5s\n\
         \x20 Messages:            12 received (0 updates), 14 sent (3 updates)\n"
    );
    for (line, want) in [
        ("sh bgp n 192.0.2.9", "No such neighbor\n"),
        ("sh bgp n peer1", "\"peer1\" is not a valid IP address\n"),
    ] {
        assert_eq!(refused(text(&mut e, line).await), want, "{line}");
    }
    let json = as_json(&mut e, Action::ShowBgpNeighbors, Some("192.0.2.254")).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["peer_asn"], 64512);
}

/// What `line` prints; it must succeed.
async fn shown(engine: &mut FakeEngine, line: &str) -> String {
    printed(text(engine, line).await)
}

/// What `action` (with `arg`) prints as JSON; it must succeed.
async fn as_json(engine: &mut FakeEngine, action: Action, arg: Option<&str>) -> String {
    printed(execute(engine, action, arg, OutputFormat::Json, 0).await)
}

/// The text of a refusal (output printed, the command failed).
fn refused(step: Result<Step, EngineError>) -> String {
    match step {
        Ok(Step::Print { text, ok: false }) => text,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn printed(step: Result<Step, EngineError>) -> String {
    match step {
        Ok(Step::Print { text, ok: true }) => text,
        other => panic!("expected successful output, got {other:?}"),
    }
}

#[tokio::test]
async fn vservers_list_prefix_and_exact_match() {
    let mut e = fake();
    assert_eq!(
        shown(&mut e, "sh vs").await,
        "[1] web\n[2] web2 (disabled)\n[3] dns\n"
    );
    // `web` is exact even though `web2` shares the prefix: detail view.
    assert!(
        shown(&mut e, "sh vs web")
            .await
            .starts_with("Name:     web\n")
    );
    assert!(
        shown(&mut e, "sh vs d")
            .await
            .starts_with("Name:     dns\n")
    );
    assert_eq!(
        shown(&mut e, "sh vs we").await,
        "[1] web\n[2] web2 (disabled)\n"
    );
    assert_eq!(
        shown(&mut e, "sh vs zzz").await,
        "No vserver matches \"zzz\".\n"
    );
    // A cluster with one vserver: the bare command shows it in full.
    e.vservers.truncate(1);
    assert!(shown(&mut e, "sh vs").await.starts_with("Name:     web\n"));
}

#[tokio::test]
async fn reload_refusal_is_not_ok_and_shows_in_warnings() {
    let mut e = fake();
    assert_eq!(
        shown(&mut e, "config reload").await,
        "configuration applied (generation 1)\n"
    );
    e.refuse_reload = vec!["cluster.pb:3: bad port".into()];
    match text(&mut e, "config reload").await {
        Ok(Step::Print { text, ok: false }) => assert_eq!(
            text,
            "configuration refused\nConfiguration reload refused:\n  cluster.pb:3: bad port\n"
        ),
        other => panic!("unexpected {other:?}"),
    }
    assert_eq!(e.reloads, 2);
    assert_eq!(
        shown(&mut e, "show warnings").await,
        "There are 1 warnings:\n  - cluster.pb:3: bad port\n"
    );
}

#[tokio::test]
async fn json_output_and_exit_and_unreachable() {
    let mut e = fake();
    let out = as_json(&mut e, Action::ShowVservers, Some("dns")).await;
    let v: serde_json::Value = serde_json::from_str(&out).expect("valid JSON");
    assert_eq!(v["vservers"][0]["name"], "dns");
    assert_eq!(v["vservers"].as_array().map(Vec::len), Some(1));
    assert_eq!(text(&mut e, "quit").await.ok(), Some(Step::Exit));
    e.down = true;
    let err = text(&mut e, "show ha").await.unwrap_err();
    assert_eq!(error_code(&err), exit::UNAVAILABLE);
    assert_eq!(
        err.to_string(),
        "cannot reach the engine at /fake/engine.sock: No such file or directory (os error 2)"
    );
}

const CLUSTER: &str = r#"
seesaw_vip: < fqdn: "vip.demo." ipv4: "127.0.0.254/8" >
node: < fqdn: "lb1.demo." ipv4: "127.0.0.1/8" >
vlan: < vlan_id: 10 host: < fqdn: "v10.demo." ipv4: "10.0.10.1/24" > >
vlan: < vlan_id: 20 host: < fqdn: "v20.demo." ipv4: "10.0.20.1/24" > >
"#;

#[tokio::test]
async fn history_rollback_and_import_go_through_the_engine() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut e = FakeEngine {
        text: CLUSTER.into(),
        ..Default::default()
    };
    let yaml = dir.path().join("pool.yaml");
    let line = format!("config import {}", yaml.display());
    assert_eq!(
        shown(&mut e, &line).await,
        "configuration applied (version 1)\n"
    );
    assert_eq!(e.versions[0].1, format!("import from {}", yaml.display()));
    let out = shown(&mut e, "config history").await;
    assert!(out.starts_with("Id  When"), "{out}");
    assert!(out.contains("tester"), "{out}");
    assert_eq!(
        shown(&mut e, "config rollback 1").await,
        "configuration applied (version 2)\n"
    );
    match text(&mut e, "config rollback 9").await {
        Ok(Step::Print { text, ok: false }) => {
            assert_eq!(text, "Rollback refused: no config version 9\n");
        }
        other => panic!("{other:?}"),
    }
    e.import_refusal = Some("import refused\n  pool.yaml: documents[0].vip: is required\n".into());
    match text(&mut e, &line).await {
        Ok(Step::Print { text, ok: false }) => {
            assert!(text.contains("documents[0].vip: is required"), "{text}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(e.versions.len(), 2, "a refused import saves nothing");
}

fn dest(vserver: &str, ip: &str, backend: &str, healthy: bool) -> pb::DestinationStatus {
    pb::DestinationStatus {
        name: format!("{vserver}/{ip}:80/TCP"),
        backend: backend.into(),
        address: ip.into(),
        port: 80,
        weight: 1,
        enabled: true,
        healthy,
        active: healthy,
        ..Default::default()
    }
}

#[tokio::test]
async fn vlans_come_from_the_engine_with_its_counts() {
    let mut e = FakeEngine {
        vlan_list: vec![
            pb::Vlan {
                id: 10,
                hostname: "v10.demo.".into(),
                ipv4: "10.0.10.1/24".into(),
                ipv4_backends: 3,
                ipv4_vips: 1,
                ..Default::default()
            },
            pb::Vlan {
                id: 20,
                hostname: "v20.demo.".into(),
                ipv4: "10.0.20.1/24".into(),
                ipv6: "2001:db8:20::1/64".into(),
                ipv6_backends: 2,
                ipv6_vips: 4,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    assert_eq!(
        shown(&mut e, "sh vl").await,
        "VLANs\n\
         [  1] VLAN ID 10 - v10.demo.  10.0.10.1/24  -                  backends 3 IPv4, 0 IPv6  VIPs 1 IPv4, 0 IPv6\n\
         [  2] VLAN ID 20 - v20.demo.  10.0.20.1/24  2001:db8:20::1/64  backends 0 IPv4, 2 IPv6  VIPs 0 IPv4, 4 IPv6\n"
    );
    // By an address inside the subnet (here IPv6) or by id: Seesaw's detail block.
    let detail = "VLAN\n\
         \x20 ID:                  20\n\
         \x20 Hostname:            v20.demo.\n\
         \x20 IPv4 Address:        10.0.20.1/24\n\
         \x20 IPv6 Address:        2001:db8:20::1/64\n\
         \x20 IPv4 Backend Count:  0\n\
         \x20 IPv6 Backend Count:  2\n\
         \x20 IPv4 VIP Count:      0\n\
         \x20 IPv6 VIP Count:      4\n";
    assert_eq!(shown(&mut e, "sh vl 2001:db8:20::99").await, detail);
    assert_eq!(shown(&mut e, "sh vl 20").await, detail);
    for (line, want) in [
        ("sh vl 30", "VLAN ID 30 not found\n"),
        (
            "sh vl 10.0.30.1",
            "VLAN not found for IP address 10.0.30.1\n",
        ),
        (
            "sh vl x",
            "unknown value \"x\" - must be a VLAN ID or IP address\n",
        ),
    ] {
        assert_eq!(refused(text(&mut e, line).await), want, "{line}");
    }
    let json = as_json(&mut e, Action::ShowVlans, None).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["vlans"][0]["ipv4_backends"], 3);
    assert_eq!(v["vlans"][1]["ipv6_vips"], 4);
    assert_eq!(v["vlans"][1]["ipv6"], "2001:db8:20::1/64");
}

#[tokio::test]
async fn backends_and_destinations_list_detail_and_not_found() {
    let mut e = FakeEngine {
        vservers: vec![
            pb::VserverStatus {
                name: "web".into(),
                enabled: true,
                services: vec![pb::ServiceStatus {
                    address: "192.0.2.1".into(),
                    protocol: "TCP".into(),
                    port: 80,
                    destinations: vec![
                        dest("web", "10.0.0.2", "be2.demo.", false),
                        dest("web", "10.0.0.1", "be1.demo.", true),
                    ],
                    ..Default::default()
                }],
                ..Default::default()
            },
            pb::VserverStatus {
                name: "dns".into(),
                enabled: false,
                services: vec![pb::ServiceStatus {
                    address: "192.0.2.53".into(),
                    protocol: "UDP".into(),
                    port: 53,
                    destinations: vec![dest("dns", "10.0.0.1", "be1.demo.", true)],
                    ..Default::default()
                }],
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    e.vservers[0].services[0].destinations[1].override_state = "enabled".into();
    assert_eq!(
        shown(&mut e, "sh ba").await,
        "Backends\n\
         [   1] be1.demo. (partially disabled)  10.0.0.1  dests 2  healthy 2/2  active 2/2  override enabled\n\
         [   2] be2.demo.                       10.0.0.2  dests 1  healthy 0/1  active 0/1\n"
    );
    assert_eq!(
        shown(&mut e, "sh ba be1").await,
        "Backend\n  Hostname: be1.demo.\n  Destinations:\n\
         \x20 [  1] dns/10.0.0.1:80/TCP (vserver disabled)\n\
         \x20 [  2] web/10.0.0.1:80/TCP (enabled, healthy, active)\n\
         \x20 Address: 10.0.0.1\n  Override: enabled\n"
    );
    assert_eq!(
        shown(&mut e, "sh de").await,
        "Destinations\n\
         [   1] dns/10.0.0.1:80/TCP (vserver disabled)              10.0.0.1:80  weight 1  conns 0/0\n\
         [   2] web/10.0.0.1:80/TCP (enabled, healthy, active)      10.0.0.1:80  weight 1  conns 0/0  override enabled\n\
         [   3] web/10.0.0.2:80/TCP (enabled, unhealthy, inactive)  10.0.0.2:80  weight 1  conns 0/0\n"
    );
    assert_eq!(
        shown(&mut e, "sh de dns").await,
        "Destination\n\
         \x20 Name:                dns/10.0.0.1:80/TCP\n\
         \x20 Vserver:             dns (disabled)\n\
         \x20 Backend:             be1.demo.\n\
         \x20 Enabled:             true\n\
         \x20 Healthy:             true\n\
         \x20 Active:              true\n\
         \x20 Service:             192.0.2.53:53/UDP\n\
         \x20 Address:             10.0.0.1:80\n\
         \x20 Weight:              1\n\
         \x20 Override:            -\n\
         \x20 Connections:         0 active, 0 total\n"
    );
    for (line, want) in [
        ("sh ba zz", "backend 'zz...' not found\n"),
        ("sh de zz", "destination 'zz...' not found\n"),
    ] {
        assert_eq!(refused(text(&mut e, line).await), want, "{line}");
    }
    // JSON keeps its shape: the rows, also for one match or none.
    let json = as_json(&mut e, Action::ShowBackends, Some("zz")).await;
    assert_eq!(json, "{\n  \"backends\": []\n}\n");
    let json = as_json(&mut e, Action::ShowBackends, None).await;
    let v: serde_json::Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(v["backends"][0]["status"], "partially disabled");
    assert_eq!(v["backends"][1]["healthy"], 0);
    e.vservers.clear();
    assert_eq!(refused(text(&mut e, "sh ba").await), "no backends found\n");
}

#[tokio::test]
async fn healthchecks_list_every_check() {
    let mut d = dest("web", "127.0.0.2", "be1.demo.", true);
    d.checks = vec![pb::CheckStatus {
        name: "HTTP/80".into(),
        id: 255,
        state: "healthy".into(),
        message: "200 OK".into(),
        stats: Some(pb::ProbeStats {
            successes: 3,
            failures: 1,
            last_latency_us: 1234,
            ..Default::default()
        }),
    }];
    let mut e = FakeEngine {
        vservers: vec![pb::VserverStatus {
            name: "web".into(),
            services: vec![pb::ServiceStatus {
                destinations: vec![d],
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let c = shown(&mut e, "sh he").await;
    assert!(
        c.contains(
            "00000000000000ff  web/127.0.0.2:80/TCP  HTTP/80  healthy  1.2 ms      3/1            200 OK"
        ),
        "{c}"
    );
}

#[tokio::test]
async fn nodes_list_and_one_node_in_detail() {
    let node = |host: &str, ipv4: &str, ha: bool, local: bool| pb::Node {
        hostname: host.into(),
        ipv4: ipv4.into(),
        priority: if local { 255 } else { 1 },
        ha_enabled: ha,
        vservers_enabled: true,
        is_local: local,
        ..Default::default()
    };
    let mut e = FakeEngine {
        cluster: pb::ClusterStatus {
            site: "demo".into(),
            nodes: vec![
                node("lb1.demo.", "192.0.2.1", true, true),
                node("lb2.demo.", "192.0.2.2", false, false),
            ],
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(
        shown(&mut e, "sh n").await,
        "Nodes\n\
         [1] lb1.demo. enabled   IPv4 192.0.2.1  IPv6 -  priority 255  (this node)\n\
         [2] lb2.demo. disabled  IPv4 192.0.2.2  IPv6 -  priority 1\n"
    );
    assert_eq!(
        shown(&mut e, "sh n lb2.demo.").await,
        "Node\n\
         \x20 Hostname:            lb2.demo.\n\
         \x20 Site:                demo\n\
         \x20 IPv4 Address:        192.0.2.2\n\
         \x20 IPv6 Address:        <not configured>\n\
         \x20 HA Enabled:          false\n\
         \x20 Anycast Enabled:     false\n\
         \x20 BGP Enabled:         false\n\
         \x20 Vservers Enabled:    true\n\
         \x20 Priority:            1\n\
         \x20 This Node:           false\n"
    );
    assert!(
        shown(&mut e, "sh n lb1")
            .await
            .starts_with("Node\n  Hostname:            lb1.demo.\n")
    );
    assert!(
        shown(&mut e, "sh n lb")
            .await
            .starts_with("Nodes\n[1] lb1.demo. enabled")
    );
    assert_eq!(
        refused(text(&mut e, "sh n lb9").await),
        "node \"lb9\" not found\n"
    );
}

#[test]
fn banner_warns_when_not_leader() {
    assert_eq!(banner("LEADER"), "Seesaw CLI - Engine version 2");
    assert_eq!(
        banner("BACKUP"),
        "Seesaw CLI - Engine version 2\nThis seesaw is not currently the master."
    );
}

#[test]
fn one_shot_against_a_missing_socket_exits_69() {
    let dir = tempfile::tempdir().expect("temp dir");
    let socket = dir.path().join("engine.sock");
    assert_eq!(one_shot(&socket, "show ha", OutputFormat::Text), 69);
    assert_eq!(one_shot(&socket, "show bogus", OutputFormat::Text), 64);
    assert_eq!(one_shot(&socket, "show", OutputFormat::Text), 64);
    assert_eq!(one_shot(&socket, "show ?", OutputFormat::Text), 0);
}

#[tokio::test]
async fn grpc_unreachable_names_the_socket_and_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = seesaw_common::paths::engine_socket(dir.path());
    let mut engine = GrpcEngine::new(&path);
    match engine.ha_status().await {
        Err(EngineError::Unreachable { path: p, cause }) => {
            assert_eq!(p, path);
            assert!(cause.contains("No such file or directory"), "{cause}");
        }
        other => panic!("expected unreachable, got {other:?}"),
    }
}

#[tokio::test]
async fn dry_run_previews_and_reloads_nothing() {
    let mut e = FakeEngine::default();
    assert_eq!(
        shown(&mut e, "config reload --dry-run").await,
        "Preview (nothing applied):\n  vservers:     0 added, 0 removed, 0 changed\n  \
         services:     0 added, 0 removed, 0 changed\n  destinations: 0 added, 0 removed, 0 changed\n"
    );
    assert_eq!(e.reloads, 0, "a preview is not a reload");
    e.refuse_reload = vec!["cluster.pb:3: bad port".into()];
    match text(&mut e, "config reload --dry-run").await {
        Ok(Step::Print { text, ok: false }) => assert_eq!(
            text,
            "The change would be refused (1 errors):\n  cluster.pb:3: bad port\n"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    match text(&mut e, "config rollback 99 --dry-run").await {
        Ok(Step::Print { text, ok: false }) => {
            assert_eq!(text, "Preview refused: no config version 99\n");
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(e.reloads, 0);
}

#[test]
fn a_preview_lists_each_change_and_the_flows_that_move() {
    let p = Preview::from(pb::Preview {
        valid: true,
        vservers: Some(pb::Changes {
            added: vec!["new".into()],
            removed: vec![],
            changed: vec!["web".into()],
        }),
        flows_moved: vec![pb::FlowsMoved {
            service: "10.1.0.1:80/TCP".into(),
            share: 0.0845,
        }],
        ..Default::default()
    });
    let text = format::preview(&p);
    assert!(
        text.contains("  vservers:     1 added, 0 removed, 1 changed\n    + new\n    ~ web\n"),
        "{text}"
    );
    assert!(
        text.contains("    10.1.0.1:80/TCP                8.45 %\n"),
        "{text}"
    );
}
