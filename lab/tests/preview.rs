//! Change preview (issue 17, acceptance 3): the preview of a config change lists exactly the
//! changes a real apply then makes, and for a Maglev (`mh`) service the share of flows it says
//! would move is within 0.5 percentage points of what the new table moves.
//!
//! In-process: the engine's core state takes the config, ncc's stateful fake plane applies the
//! desired states through the real gRPC conversion and diff, and the moved share is measured on
//! the tables ncc's nftables layout builds (`layout::slots`) from what ncc received.
//!
//! `the_shell_previews_a_reload_and_the_daemons_apply_nothing`: the same through real processes
//! (the loopback suite, proxy plane): `config reload --dry-run` lists the destination a cluster.pb
//! edit removes, `show vservers` still shows it, and only the real `config reload` removes it.

#![allow(
    clippy::print_stdout,
    reason = "the moved shares are for the person running the test"
)]

#[path = "support/desired.rs"]
mod desired;

use std::collections::BTreeSet;
use std::time::Duration;

use desired::{loaded, t0};
use seesaw_engine::ncc_port::desired_to_pb;
use seesaw_engine::preview::{Preview, preview};
use seesaw_engine::state::{CheckResult, EngineState};
use seesaw_lab::{LoopbackSuite, wait_until};
use seesaw_ncc::dataplane::nftables::layout::{self, Layout, Member};
use seesaw_ncc::dataplane::{self, Change, fake::FakeDataplane};
use seesaw_ncc::model::Service;

/// Vservers as (name, vip, scheduler, port, backends as (last octets, weight)).
type Spec<'a> = [(&'a str, &'a str, &'a str, u16, Vec<(u16, u32)>)];

fn config(vservers: &Spec) -> String {
    let mut out = r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" status: PRODUCTION >
        node < fqdn: "n." ipv4: "10.0.0.2/24" status: PRODUCTION >
"#
    .to_owned();
    for (name, vip, sched, port, backends) in vservers {
        out.push_str(&format!(
            r#"vserver < name: "{name}" rp: "x" entry_address < fqdn: "{name}." ipv4: "{vip}/24" >
               vserver_entry < protocol: TCP port: {port} mode: NAT scheduler: {sched} healthcheck < type: TCP > >
"#
        ));
        for (n, w) in backends {
            let (a, b) = (n / 250, n % 250 + 1);
            out.push_str(&format!(
                r#"backend < host < fqdn: "b{n}." ipv4: "10.2.{a}.{b}/16" > weight: {w} >
"#
            ));
        }
        out.push_str(">\n");
    }
    out
}

/// Every check the engine knows reports healthy.
fn all_healthy(engine: &mut EngineState) {
    let results: Vec<(u64, CheckResult)> = engine
        .checks()
        .map(|c| {
            let r = CheckResult {
                healthy: true,
                message: String::new(),
                at: t0(),
            };
            (c.id, r)
        })
        .collect();
    engine.health(results);
}

/// The engine's desired services, as ncc receives them.
fn desired(engine: &mut EngineState) -> Vec<Service> {
    let (_, d) = engine.evaluate();
    seesaw_ncc::convert::services_from_pb(desired_to_pb(&d)).expect("ncc takes the engine's state")
}

/// ncc's changes, named as the preview names them.
fn named(changes: &[Change]) -> [BTreeSet<String>; 6] {
    let mut out: [BTreeSet<String>; 6] = Default::default();
    for c in changes {
        let (i, name) = match c {
            Change::AddService(s) => (0, s.key.to_string()),
            Change::DeleteService(k) => (1, k.to_string()),
            Change::UpdateService(s) => (2, s.key.to_string()),
            Change::AddDest(k, d) => (3, format!("{k} {}", d.addr)),
            Change::DeleteDest(k, d) => (4, format!("{k} {}", d.addr)),
            Change::UpdateDest(k, d) => (5, format!("{k} {}", d.addr)),
        };
        out[i].insert(name);
    }
    out
}

fn previewed(p: &Preview) -> [BTreeSet<String>; 6] {
    let set = |v: &[String]| v.iter().cloned().collect::<BTreeSet<_>>();
    [
        set(&p.services.added),
        set(&p.services.removed),
        set(&p.services.changed),
        set(&p.destinations.added),
        set(&p.destinations.removed),
        set(&p.destinations.changed),
    ]
}

/// The live table ncc's nftables plane lays out for `s`, as backend addresses.
fn table(s: &Service) -> Vec<std::net::SocketAddr> {
    let members: Vec<Member> = s
        .dests
        .iter()
        .enumerate()
        .map(|(i, d)| Member {
            id: u32::try_from(i).unwrap(),
            weight: d.weight,
            key: seesaw_common::maglev::addr_key(d.addr),
        })
        .collect();
    layout::slots(Layout::Maglev, &members, &[], s.anchor.as_deref())
        .into_iter()
        .map(|id| s.dests[id as usize].addr)
        .collect()
}

#[test]
fn a_preview_lists_what_the_apply_then_does_and_the_flows_that_move() {
    let web: Vec<(u16, u32)> = (0..200).map(|n| (n, 1)).collect();
    let api: Vec<(u16, u32)> = (300..310).map(|n| (n, 1)).collect();
    let old = config(&[
        ("web", "10.1.0.1", "MH", 80, web.clone()),
        ("api", "10.1.0.2", "WRR", 8080, api.clone()),
        ("gone", "10.1.0.3", "RR", 80, vec![(400, 1)]),
    ]);
    // web: 7 backends leave, 3 change weight, 12 join; api: a scheduler and a weight; gone goes;
    // new comes.
    let mut web2: Vec<(u16, u32)> = web
        .iter()
        .filter(|(n, _)| n % 29 != 5)
        .map(|&(n, w)| (n, if n % 67 == 1 { 3 } else { w }))
        .collect();
    web2.extend((200..212).map(|n| (n, 1)));
    let mut api2 = api.clone();
    api2[0].1 = 5;
    let new = config(&[
        ("web", "10.1.0.1", "MH", 80, web2),
        ("api", "10.1.0.2", "WLC", 8080, api2),
        ("new", "10.1.0.4", "RR", 443, vec![(500, 1), (501, 1)]),
    ]);

    assert!(
        loaded(&old).cluster.warnings.is_empty(),
        "{:?}",
        loaded(&old).cluster.warnings
    );
    let mut engine = EngineState::new(loaded(&old), t0());
    assert!(
        engine.checks().count() > 200,
        "checks {}",
        engine.checks().count()
    );
    all_healthy(&mut engine);
    let mut plane = FakeDataplane::default();
    let before = desired(&mut engine);
    assert!(before.len() >= 2, "{before:?}");
    dataplane::apply(&mut plane, &before).expect("first apply");

    // The fake plane, like IPVS, does not build its own tables.
    let p = preview(&engine, loaded(&new), t0(), false);
    // The preview changed nothing.
    assert_eq!(desired(&mut engine), before);

    // The real change, as the engine's loop makes it: churn-limited steps, each applied.
    engine.reload(loaded(&new), t0());
    let mut changes = Vec::new();
    let after = loop {
        all_healthy(&mut engine);
        let step = desired(&mut engine);
        changes.extend(dataplane::apply(&mut plane, &step).expect("apply"));
        if !engine.converge(t0()) {
            break step;
        }
    };

    let (want, got) = (named(&changes), previewed(&p));
    let what = [
        "services added",
        "services removed",
        "services changed",
        "destinations added",
        "destinations removed",
        "destinations changed",
    ];
    for i in 0..6 {
        assert_eq!(got[i], want[i], "{}", what[i]);
    }
    // The case is not empty: every kind of change happened.
    assert!(want.iter().all(|s| !s.is_empty()), "{want:?}");
    assert_eq!(p.vservers.added, ["new"]);
    assert_eq!(p.vservers.removed, ["gone"]);
    assert_eq!(p.vservers.changed, ["api", "web"]);

    // The moved share: the tables ncc lays out from what it received, before and after.
    let key = |s: &[Service]| {
        s.iter()
            .find(|x| x.key.to_string() == "10.1.0.1:80/TCP")
            .cloned()
            .expect("web")
    };
    let (t1, t2) = (table(&key(&before)), table(&key(&after)));
    assert_eq!(t1.len(), t2.len(), "the anchor keeps the table size");
    let moved = t1.iter().zip(&t2).filter(|(a, b)| a != b).count() as f64 / t1.len() as f64;
    let [(service, share)] = p.flows_moved.as_slice() else {
        panic!("one mh service: {:?}", p.flows_moved);
    };
    assert_eq!(service, "10.1.0.1:80/TCP");
    println!(
        "preview: {:.3} % of web's flows move; the new table moves {:.3} %",
        share * 100.0,
        moved * 100.0
    );
    assert!(
        (share - moved).abs() <= 0.005,
        "preview {share} vs table {moved}"
    );
    assert!(moved > 0.02, "the case moves flows: {moved}");
}

#[test]
fn the_shell_previews_a_reload_and_the_daemons_apply_nothing() {
    let mut suite = LoopbackSuite::start().unwrap_or_else(|e| panic!("suite: {e}"));
    let healthy = |suite: &LoopbackSuite| {
        suite
            .destinations()
            .map(|(_, rows)| rows.iter().filter(|r| r.healthy).count())
            .unwrap_or(0)
    };
    let n = suite.backends().len();
    wait_until("every backend healthy", Duration::from_secs(30), || {
        healthy(&suite) == n
    })
    .expect("healthy");
    let (_, rows) = suite.destinations().expect("show vservers");
    let mut cluster = suite.cluster().clone();
    let (gone, _) = cluster.backends.pop().expect("a backend");
    let gone_row = rows
        .iter()
        .find(|r| {
            let ip = gone.ipv4.split('/').next().unwrap_or_default();
            r.address.split(':').next() == Some(ip)
        })
        .unwrap_or_else(|| panic!("{} in {rows:?}", gone.ipv4))
        .clone();
    suite.write_cluster(cluster).expect("write cluster.pb");

    let out = suite.shell("config reload --dry-run").expect("shell");
    assert!(out.status.success(), "{out:?}");
    let text = &out.stdout;
    assert!(
        text.contains("destinations: 0 added, 1 removed, 0 changed"),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("- ") && l.ends_with(&gone_row.address)),
        "{text} lists {}",
        gone_row.address
    );
    assert!(
        text.contains("vservers:     0 added, 0 removed, 1 changed"),
        "{text}"
    );
    // Nothing applied: the backend is still there, and still serves.
    let (_, after) = suite.destinations().expect("show vservers");
    assert!(
        after.iter().any(|r| r.address == gone_row.address),
        "a preview removed {}: {after:?}",
        gone_row.address
    );
    let out = suite.shell("config reload").expect("shell");
    assert!(out.status.success(), "{out:?}");
    wait_until("the reload removes it", Duration::from_secs(10), || {
        suite
            .destinations()
            .is_ok_and(|(_, rows)| !rows.iter().any(|r| r.address == gone_row.address))
    })
    .expect("applied");
}
