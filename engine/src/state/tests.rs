//! Tests of the engine core: health aggregation, watermarks, VIP activity, the start-up gate.

use super::*;
use crate::config::{load_cluster, seesaw_cfg};
use crate::model::Protocol;
use crate::overrides::{Caller, OverrideKind, OverrideState};

fn loaded(cluster: &str) -> Loaded {
    Loaded {
        // Seesaw's service anycast VIPs off: these tests are about the vservers' VIPs
        // (state::bgp tests the service anycast VIPs).
        settings: seesaw_cfg::parse(
            "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\n[bgp]\nservice_anycast = false\n",
        )
        .unwrap(),
        cluster: load_cluster(cluster.as_bytes(), None).unwrap(),
    }
}

fn t0() -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
}

fn vserver(entry_extra: &str, checks: &str, vip: &str) -> String {
    format!(
        r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        node < fqdn: "n." ipv4: "10.0.0.2/24" >
        vserver < name: "web" rp: "x" entry_address < fqdn: "w." ipv4: "{vip}" >
          vserver_entry < protocol: TCP port: 80 scheduler: WRR mode: NAT {entry_extra} {checks} >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 2 >
          backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > weight: 1 >
          backend < host < fqdn: "b3." ipv4: "10.2.0.3/24" > weight: 1 >
        >"#
    )
}

fn ok(msg: &str) -> CheckResult {
    CheckResult {
        healthy: true,
        message: msg.into(),
        at: t0(),
    }
}
fn bad() -> CheckResult {
    CheckResult {
        healthy: false,
        message: "refused".into(),
        at: t0(),
    }
}

/// The first check of each destination of the first vserver's `service`-th service.
fn first_checks(e: &mut EngineState, service: usize) -> Vec<u64> {
    let (views, _) = e.evaluate();
    views[0].services[service]
        .dests
        .iter()
        .map(|d| d.checks[0].id)
        .collect()
}

/// Sets each backend's single check: true = healthy.
fn set(e: &mut EngineState, health: [bool; 3]) {
    let ids = first_checks(e, 0);
    e.health(
        ids.into_iter()
            .zip(health)
            .map(|(id, h)| (id, if h { ok("") } else { bad() })),
    );
}

fn active_dests(d: &DesiredState) -> Vec<String> {
    d.services
        .iter()
        .flat_map(|s| {
            s.dests
                .iter()
                .map(move |d| format!("{}->{}:{} w{}", s.key, d.ip, d.port, d.weight))
        })
        .collect()
}

const HC: &str = r#"healthcheck < type: TCP >"#;

#[test]
fn backends_without_checks_come_up() {
    let mut e = EngineState::new(loaded(&vserver("", "", "10.1.0.1/32")), t0());
    assert!(e.may_apply(t0()), "no checks: nothing to wait for");
    let (_, d) = e.evaluate();
    assert_eq!(
        active_dests(&d),
        [
            "10.1.0.1:80/TCP->10.2.0.1:80 w2",
            "10.1.0.1:80/TCP->10.2.0.2:80 w1",
            "10.1.0.1:80/TCP->10.2.0.3:80 w1"
        ]
    );
}

#[test]
fn failing_check_removes_only_that_destination() {
    let mut e = EngineState::new(loaded(&vserver("", HC, "10.1.0.1/32")), t0());
    assert!(!e.may_apply(t0()), "waits for first results");
    set(&mut e, [true, false, true]);
    assert!(e.may_apply(t0()));
    let (views, d) = e.evaluate();
    assert_eq!(
        active_dests(&d),
        [
            "10.1.0.1:80/TCP->10.2.0.1:80 w2",
            "10.1.0.1:80/TCP->10.2.0.3:80 w1"
        ]
    );
    let dests = &views[0].services[0].dests;
    assert_eq!(dests[1].checks[0].state, "unhealthy");
    assert!(!dests[1].active && dests[0].active);
    // All down: the service leaves the plane entirely.
    set(&mut e, [false, false, false]);
    assert!(e.evaluate().1.services.is_empty());
}

#[test]
fn watermarks_have_hysteresis() {
    let cfg = vserver(
        "server_low_watermark: 0.3 server_high_watermark: 0.6",
        HC,
        "10.1.0.1/32",
    );
    let mut e = EngineState::new(loaded(&cfg), t0());
    set(&mut e, [true, false, false]); // 1/3 < high 0.6: not yet healthy
    assert!(e.evaluate().1.services.is_empty());
    set(&mut e, [true, true, false]); // 2/3 ≥ 0.6: up
    assert_eq!(e.evaluate().1.services.len(), 1);
    set(&mut e, [true, false, false]); // 1/3 ≥ low 0.3: stays up
    let (views, d) = e.evaluate();
    assert_eq!(d.services.len(), 1);
    assert!((views[0].services[0].current_watermark - 1.0 / 3.0).abs() < 1e-6);
    set(&mut e, [false, false, false]);
    assert!(e.evaluate().1.services.is_empty());
}

#[test]
fn anycast_vip_needs_every_service_healthy() {
    let cfg = vserver("", HC, "192.168.255.7/32").replace(
        "backend < host < fqdn: \"b1.\"",
        "vserver_entry < protocol: TCP port: 81 healthcheck < type: HTTP > > backend < host < fqdn: \"b1.\"",
    );
    let mut e = EngineState::new(loaded(&cfg), t0());
    let tcp = first_checks(&mut e, 0);
    let http = first_checks(&mut e, 1);
    e.health(tcp.iter().map(|id| (*id, ok(""))));
    e.health(http.iter().map(|id| (*id, bad())));
    let (views, d) = e.evaluate();
    assert!(views[0].services[0].healthy && !views[0].services[0].active);
    assert!(
        d.services.is_empty(),
        "one unhealthy service keeps the anycast VIP down"
    );
    e.health(http.iter().map(|id| (*id, ok(""))));
    assert_eq!(e.evaluate().1.services.len(), 2);
}

#[test]
fn reload_keeps_results_of_surviving_checks_and_applies_new_weights() {
    let cfg = vserver("", HC, "10.1.0.1/32");
    let mut e = EngineState::new(loaded(&cfg), t0());
    set(&mut e, [true, true, true]);
    let generation = e.reload(loaded(&cfg.replace("weight: 2", "weight: 5")), t0());
    assert_eq!(generation, 2);
    let (_, d) = e.evaluate();
    assert_eq!(
        d.services[0].dests[0].weight, 5,
        "checks kept their state; no re-probe needed"
    );
    e.reload_refused(vec!["x: bad".into()]);
    assert!(
        e.warnings()
            .iter()
            .any(|w| w.contains("last config reload refused (1 errors"))
    );
}

#[test]
fn startup_gate_opens_after_grace_without_results() {
    let mut e = EngineState::new(loaded(&vserver("", HC, "10.1.0.1/32")), t0());
    assert!(!e.may_apply(t0() + Duration::from_millis(500)));
    // interval 10 s, timeout 5 s: grace = 5 s + 1 s.
    assert!(e.may_apply(t0() + Duration::from_secs(6)));
}

#[test]
fn restarted_engine_adopts_the_plane_until_checks_report() {
    let mut e = EngineState::new(loaded(&vserver("", HC, "10.1.0.1/32")), t0());
    let key = ServiceKey::new("10.1.0.1".parse().unwrap(), Protocol::Tcp, 80);
    // The plane holds b1 and b3 (b2 was down before the restart).
    e.presume([
        (key, ("10.2.0.1".parse().unwrap(), 80)),
        (key, ("10.2.0.3".parse().unwrap(), 80)),
    ]);
    assert!(
        e.may_apply(t0() + Duration::from_secs(6)),
        "grace passed without results"
    );
    let (_, d) = e.evaluate();
    assert_eq!(
        active_dests(&d),
        [
            "10.1.0.1:80/TCP->10.2.0.1:80 w2",
            "10.1.0.1:80/TCP->10.2.0.3:80 w1"
        ]
    );
    // A real result overrides the presumption.
    set(&mut e, [false, true, true]);
    let (_, d) = e.evaluate();
    assert_eq!(
        active_dests(&d),
        [
            "10.1.0.1:80/TCP->10.2.0.2:80 w1",
            "10.1.0.1:80/TCP->10.2.0.3:80 w1"
        ]
    );
}

fn root() -> Caller {
    Caller {
        trusted: true,
        user: "root".into(),
        groups: vec![],
    }
}

const TWO_VSERVERS_SHARING_A_BACKEND: &str = r#"
    seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
    node < fqdn: "n." ipv4: "10.0.0.2/24" >
    vserver < name: "a" rp: "x" entry_address < fqdn: "a." ipv4: "10.1.0.1/32" >
      vserver_entry < protocol: TCP port: 80 mode: NAT >
      backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
      backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > >
      access_grant < grantee: "alice" role: OPS type: USER >
    >
    vserver < name: "b" rp: "x" entry_address < fqdn: "b." ipv4: "10.1.0.2/32" >
      vserver_entry < protocol: TCP port: 80 mode: NAT >
      backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > >
    >
"#;

#[test]
fn backend_override_spans_vservers_destination_override_one_and_both_survive_reload() {
    let mut e = EngineState::new(loaded(TWO_VSERVERS_SHARING_A_BACKEND), t0());
    let msg = e
        .set_override(
            OverrideKind::Backend,
            "b1.",
            OverrideState::Disabled,
            &root(),
            t0(),
        )
        .unwrap();
    assert_eq!(msg, "backend b1.: disabled (was default)");
    let (views, d) = e.evaluate();
    assert_eq!(
        active_dests(&d),
        ["10.1.0.1:80/TCP->10.2.0.2:80 w1"],
        "b1 gone from a and b; b has no destination left"
    );
    assert_eq!(
        views[0].services[0].dests[0].override_state,
        Some(OverrideState::Disabled)
    );

    // A destination override re-enables b1 in vserver a only.
    e.set_override(
        OverrideKind::Destination,
        "a/10.2.0.1:80/TCP",
        OverrideState::Enabled,
        &root(),
        t0(),
    )
    .unwrap();
    assert_eq!(
        active_dests(&e.evaluate().1),
        [
            "10.1.0.1:80/TCP->10.2.0.1:80 w1",
            "10.1.0.1:80/TCP->10.2.0.2:80 w1"
        ]
    );

    // Reload (here with a weight change): both overrides still hold.
    e.reload(
        loaded(&TWO_VSERVERS_SHARING_A_BACKEND.replace(
            r#"fqdn: "b2." ipv4: "10.2.0.2/24" > >"#,
            r#"fqdn: "b2." ipv4: "10.2.0.2/24" > weight: 4 >"#,
        )),
        t0(),
    );
    assert_eq!(
        active_dests(&e.evaluate().1),
        [
            "10.1.0.1:80/TCP->10.2.0.1:80 w1",
            "10.1.0.1:80/TCP->10.2.0.2:80 w4"
        ]
    );
    assert_eq!(e.overrides().iter().count(), 2);
}

#[test]
fn override_of_an_unknown_name_is_refused_a_kept_one_outlives_its_vserver_and_grants_count() {
    let mut e = EngineState::new(loaded(TWO_VSERVERS_SHARING_A_BACKEND), t0());
    for (kind, target) in [
        (OverrideKind::Vserver, "c"),
        (OverrideKind::Backend, "b9."),
        (OverrideKind::Destination, "a/10.2.0.9:80/TCP"),
    ] {
        assert_eq!(
            e.set_override(kind, target, OverrideState::Disabled, &root(), t0()),
            Err(OverrideError::NotFound {
                kind,
                target: target.to_owned()
            })
        );
    }
    assert_eq!(
        OverrideError::NotFound {
            kind: OverrideKind::Vserver,
            target: "c".into()
        }
        .to_string(),
        "no such vserver \"c\""
    );
    assert_eq!(e.overrides().iter().count(), 0, "nothing was stored");

    // An override set while "b" existed is kept when "b" leaves the config and applies again
    // when it comes back; meanwhile it can still be changed.
    let disable_b = |e: &mut EngineState| {
        e.set_override(
            OverrideKind::Vserver,
            "b",
            OverrideState::Disabled,
            &root(),
            t0(),
        )
    };
    disable_b(&mut e).unwrap();
    let without_b = &TWO_VSERVERS_SHARING_A_BACKEND[..TWO_VSERVERS_SHARING_A_BACKEND
        .find(r#"vserver < name: "b""#)
        .unwrap()];
    e.reload(loaded(without_b), t0());
    let msg = disable_b(&mut e).unwrap();
    assert!(msg.contains("applies when it appears"), "{msg}");
    e.reload(loaded(TWO_VSERVERS_SHARING_A_BACKEND), t0());
    let (views, d) = e.evaluate();
    assert!(!views.iter().find(|v| v.name == "b").unwrap().enabled);
    assert!(
        d.services
            .iter()
            .all(|s| s.key.vip != "10.1.0.2".parse::<IpAddr>().unwrap())
    );

    let alice = Caller {
        trusted: false,
        user: "alice".into(),
        groups: vec![],
    };
    let mallory = Caller {
        trusted: false,
        user: "mallory".into(),
        groups: vec![],
    };
    assert!(
        e.set_override(
            OverrideKind::Vserver,
            "a",
            OverrideState::Disabled,
            &alice,
            t0()
        )
        .is_ok()
    );
    assert!(matches!(
        e.set_override(
            OverrideKind::Vserver,
            "b",
            OverrideState::Disabled,
            &alice,
            t0()
        ),
        Err(OverrideError::Denied(_))
    ));
    assert!(matches!(
        e.set_override(
            OverrideKind::Destination,
            "a/10.2.0.1:80/TCP",
            OverrideState::Disabled,
            &mallory,
            t0()
        ),
        Err(OverrideError::Denied(_))
    ));
    assert!(
        matches!(
            e.set_override(
                OverrideKind::Backend,
                "b1.",
                OverrideState::Disabled,
                &alice,
                t0()
            ),
            Err(OverrideError::Denied(_))
        ),
        "backend overrides span vservers: trusted callers only"
    );
    // "enabled" forces a config-disabled vserver up.
    let disabled_a = TWO_VSERVERS_SHARING_A_BACKEND.replace(
        r#"fqdn: "a." ipv4: "10.1.0.1/32" >"#,
        r#"fqdn: "a." ipv4: "10.1.0.1/32" status: DISABLED >"#,
    );
    e.reload(loaded(&disabled_a), t0());
    e.set_override(
        OverrideKind::Vserver,
        "a",
        OverrideState::Enabled,
        &root(),
        t0(),
    )
    .unwrap();
    assert!(e.evaluate().0[0].enabled);
}

#[test]
fn desired_vips_follow_enablement_and_anycast_activity() {
    use crate::model::{Vip, VipKind};
    // Unicast: up while the vserver is enabled, even with every backend down.
    let mut e = EngineState::new(loaded(&vserver("", HC, "10.1.0.1/32")), t0());
    set(&mut e, [false, false, false]);
    let d = e.evaluate().1;
    assert!(d.services.is_empty());
    assert_eq!(
        d.vips,
        [Vip {
            ip: "10.1.0.1".parse().unwrap(),
            kind: VipKind::Unicast
        }]
    );
    // Anycast: only while every service on it is healthy.
    let cfg = vserver("", HC, "192.168.255.7/32");
    let mut e = EngineState::new(loaded(&cfg), t0());
    set(&mut e, [true, true, false]);
    let d = e.evaluate().1;
    assert_eq!(d.services.len(), 1);
    assert_eq!(d.vips.len(), 1);
    assert_eq!(d.vips[0].kind, VipKind::Anycast);
    set(&mut e, [false, false, false]);
    assert!(
        e.evaluate().1.vips.is_empty(),
        "anycast VIP down with its service"
    );
}

#[test]
fn a_check_removed_and_restored_soon_keeps_its_result() {
    let with = vserver("", HC, "10.1.0.1/32");
    let without = vserver("", "", "10.1.0.1/32");
    let mut e = EngineState::new(loaded(&with), t0());
    set(&mut e, [true, true, true]);
    e.reload(loaded(&without), t0() + Duration::from_secs(1));
    // Restored a second later: the healthcheck process never noticed, so no new result comes.
    e.reload(loaded(&with), t0() + Duration::from_secs(2));
    let (views, d) = e.evaluate();
    assert_eq!(views[0].services[0].dests[0].checks[0].state, "healthy");
    assert_eq!(d.services[0].dests.len(), 3);
    // A check still gone when its result is older than RESULT_MEMORY is forgotten.
    e.reload(
        loaded(&without),
        t0() + RESULT_MEMORY + Duration::from_secs(3),
    );
    e.reload(loaded(&with), t0() + RESULT_MEMORY + Duration::from_secs(4));
    assert_eq!(
        e.evaluate().0[0].services[0].dests[0].checks[0].state,
        "unknown"
    );
}

/// Four vservers over three backends with checks shared between them (one with watermarks, one
/// on an anycast VIP, a unicast pair on a peered node), driven by a seeded sequence of check
/// results, HA reports, overrides, counters and reloads: after every step the evaluation that
/// reuses what did not change equals one done from scratch (a copy with every vserver stale).
#[test]
fn reused_evaluations_equal_fresh_ones() {
    let vs = |name: &str, vip: &str, extra: &str, backends: &[&str]| {
        let mut v = format!(
            r#"vserver < name: "{name}" rp: "x" entry_address < fqdn: "{name}." ipv4: "{vip}" >
              vserver_entry < protocol: TCP port: 80 scheduler: WRR mode: NAT {extra} {HC} >"#
        );
        for b in backends {
            v.push_str(&format!(
                r#" backend < host < fqdn: "{b}." ipv4: "10.2.0.{}/24" > weight: 1 >"#,
                &b[1..]
            ));
        }
        v.push_str(" >");
        v
    };
    let cluster = |with_d: bool| {
        let mut c = String::from(
            r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
            node < fqdn: "n." ipv4: "10.0.0.2/24" >
            node < fqdn: "m." ipv4: "10.0.0.3/24" >"#,
        );
        c.push_str(&vs("a", "10.1.0.1/32", "", &["b1", "b2"]));
        c.push_str(&vs(
            "b",
            "10.1.0.2/32",
            "server_low_watermark: 0.3 server_high_watermark: 0.6",
            &["b1", "b2", "b3"],
        ));
        c.push_str(&vs("c", "192.168.255.7/32", "", &["b3"]));
        if with_d {
            c.push_str(&vs("d", "10.1.0.4/32", "", &["b2", "b3"]));
        }
        c
    };
    let with_peer = |c: &str| {
        Loaded {
        settings: seesaw_cfg::parse(
            "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\npeer_ipv4 = 10.0.0.3\n[bgp]\nservice_anycast = false\n",
        )
        .unwrap(),
        cluster: load_cluster(c.as_bytes(), None).unwrap(),
    }
    };
    let mut e = EngineState::new(with_peer(&cluster(true)), t0());
    e.require_ha();
    assert_eq!(e.topology.vservers.len(), 4, "{}", cluster(true));
    assert!(e.checks().count() > 0, "{:?}", e.evaluate().0);
    let mut seed: u64 = 0x5ee5_a11e_0000_0016;
    let mut rnd = |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut reused = 0;
    for step in 0..400 {
        let ids: Vec<u64> = e.checks().map(|c| c.id).collect();
        let now = t0() + Duration::from_secs(step);
        match rnd(20) {
            0..=13 if !ids.is_empty() => {
                let id = ids[usize::try_from(rnd(ids.len() as u64)).unwrap()];
                let r = if rnd(2) == 0 { ok("up") } else { bad() };
                e.health([(id, r)]);
            }
            14 => {
                let state = [HaRole::Leader, HaRole::Backup, HaRole::Unknown][rnd(3) as usize];
                e.ha(HaView {
                    state,
                    ..HaView::default()
                });
            }
            15 => {
                let target = ["b1.", "b2.", "b3."][rnd(3) as usize];
                let state = [OverrideState::Disabled, OverrideState::Default][rnd(2) as usize];
                e.set_override(OverrideKind::Backend, target, state, &root(), now)
                    .unwrap();
            }
            16 => {
                let key = e.evaluate().1.services.first().map(|s| s.key);
                let mut stats = HashMap::new();
                if let Some(k) = key {
                    let d = DestStats {
                        active_conns: rnd(100),
                        ..DestStats::default()
                    };
                    stats.insert((k, ("10.2.0.1".parse().unwrap(), 80)), d);
                }
                e.stats(stats, HashMap::new());
            }
            17 => {
                e.reload(with_peer(&cluster(rnd(2) == 0)), now);
            }
            _ => {
                // Nothing happens: the next evaluation reuses everything.
            }
        }
        let mut fresh = e.clone();
        fresh.touch();
        let want = fresh.evaluate();
        reused += e.topology.vservers.len()
            - e.topology
                .vservers
                .keys()
                .filter(|n| e.reuse.is_stale(n))
                .count();
        let got = e.evaluate();
        assert_eq!(got.0, want.0, "step {step}: views");
        assert_eq!(got.1, want.1, "step {step}: desired state");
    }
    assert!(reused > 400, "the sequence reused evaluations ({reused})");
}

/// The snapshot's shared check list follows the topology: after a reload that changes the
/// checks, it is the new checks, not the list made before.
#[test]
fn the_shared_check_list_follows_a_reload() {
    let cfg = vserver("", HC, "10.1.0.1/32");
    let mut e = EngineState::new(loaded(&cfg), t0());
    let ids = |l: &[CheckSpec]| l.iter().map(|c| c.id).collect::<Vec<_>>();
    let before = e.check_list();
    assert_eq!(ids(&before), e.checks().map(|c| c.id).collect::<Vec<_>>());
    assert!(
        Arc::ptr_eq(&before, &e.check_list()),
        "shared until it changes"
    );
    e.reload(
        loaded(&cfg.replace("type: TCP >", "type: TCP port: 8081 >")),
        t0(),
    );
    let after = e.check_list();
    assert_ne!(ids(&after), ids(&before), "the reload changed the checks");
    assert_eq!(ids(&after), e.checks().map(|c| c.id).collect::<Vec<_>>());
}
