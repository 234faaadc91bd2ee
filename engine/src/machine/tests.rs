//! The core's ordering rules as properties of scripted inputs on an injected clock: a scripted
//! driver carries the effects (the plane and the BGP speaker answer as each test says) and logs
//! them in the order the core asked for them.

use std::time::{Duration, Instant, SystemTime};

use tokio::sync::oneshot;

use super::*;
use crate::config::{load_cluster, seesaw_cfg};
use crate::overrides::{Caller, OverrideKind, OverrideState};
use crate::state::{CheckResult, HaView, OverrideError};

/// Two nodes (this one 10.0.0.2, the peer 10.0.0.3), BGP peering, a unicast vserver (10.1.0.1)
/// and an anycast one (192.168.255.7) with a checked backend; `extra` goes into `[engine]`, and
/// `more` extra unicast vservers are added.
fn loaded(extra: &str, more: usize) -> Loaded {
    let cfg = format!(
        "[cluster]\nname = t\nnode_ipv4 = 10.0.0.2\npeer_ipv4 = 10.0.0.3\n\n[bgp]\ngobgp_api = 127.0.0.1:50051\nservice_anycast = false\n\n[engine]\n{extra}"
    );
    let check = "healthcheck < type: TCP interval: 1 timeout: 1 >";
    let mut cluster = format!(
        r#"seesaw_vip < fqdn: "v." ipv4: "10.0.0.1/24" >
        node < fqdn: "n." ipv4: "10.0.0.2/24" >
        node < fqdn: "m." ipv4: "10.0.0.3/24" >
        bgp_remote_asn: 64512 bgp_local_asn: 64513 bgp_peer < fqdn: "r." ipv4: "10.0.0.254/24" >
        vserver < name: "uni" rp: "x" entry_address < fqdn: "u." ipv4: "10.1.0.1/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT {check} >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 > >
        vserver < name: "any" rp: "x" entry_address < fqdn: "a." ipv4: "192.168.255.7/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT {check} >
          backend < host < fqdn: "b2." ipv4: "10.2.0.2/24" > weight: 1 > >"#
    );
    for i in 0..more {
        cluster.push_str(&format!(
            r#"
        vserver < name: "more{i}" rp: "x" entry_address < fqdn: "m{i}." ipv4: "10.3.{}.{}/32" >
          vserver_entry < protocol: TCP port: 80 scheduler: RR mode: NAT >
          backend < host < fqdn: "b1." ipv4: "10.2.0.1/24" > weight: 1 > >"#,
            i / 200,
            i % 200 + 1
        ));
    }
    Loaded {
        settings: seesaw_cfg::parse(&cfg).expect("seesaw.cfg"),
        cluster: load_cluster(cluster.as_bytes(), None).expect("cluster.pb"),
    }
}

/// The injected clock: `secs` after the test's start.
struct Clock(Instant);

impl Clock {
    fn at(&self, secs: f64) -> Now {
        let d = Duration::from_secs_f64(secs);
        Now {
            mono: self.0 + d,
            wall: SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000) + d,
        }
    }
}

/// A scripted driver: the plane refuses while `refuse` is set; every effect is logged.
#[derive(Default)]
struct Script {
    refuse: bool,
    log: Vec<String>,
    snap: Option<Snapshot>,
    relayed: usize,
}

impl Script {
    /// Hands `input` to the core at `now` and carries every effect, as the driver does: the
    /// outcome of an apply or a BGP call goes back first.
    fn run(&mut self, e: &mut Engine, input: Input, now: Now) {
        let mut inputs = VecDeque::from([input]);
        while let Some(input) = inputs.pop_front() {
            for effect in e.handle(input, now) {
                if let Some(next) = self.carry(effect) {
                    inputs.push_front(next);
                }
            }
        }
    }

    fn carry(&mut self, effect: Effect) -> Option<Input> {
        match effect {
            Effect::Apply(d) => {
                let vips: std::collections::BTreeSet<String> =
                    d.services.iter().map(|s| s.key.vip.to_string()).collect();
                let dests: usize = d.services.iter().map(|s| s.dests.len()).sum();
                let what = format!("{} services {dests} dests {vips:?}", d.services.len());
                if self.refuse {
                    self.log.push(format!("apply refused: {what}"));
                    return Some(Input::Applied(Err("refused by the script".to_owned())));
                }
                self.log.push(format!("apply: {what}"));
                Some(Input::Applied(Ok(vec!["a change".to_owned()])))
            }
            Effect::Bgp(req) => {
                let routes: Vec<String> = req.routes.iter().map(ToString::to_string).collect();
                self.log.push(format!("bgp: {routes:?}"));
                Some(Input::BgpDone(Ok(Vec::new())))
            }
            Effect::Publish(s) => {
                self.log.push("publish".to_owned());
                self.snap = Some(*s);
                None
            }
            Effect::Reply(r) => {
                let name = match r {
                    Reply::Ha(tx, failover) => {
                        let _ = tx.send(failover);
                        "ha"
                    }
                    Reply::Override(tx, r) => {
                        let _ = tx.send(r);
                        "override"
                    }
                    Reply::Failover(tx, r) => {
                        let _ = tx.send(r);
                        "failover"
                    }
                    Reply::Reload(tx, r) => {
                        let _ = tx.send(r);
                        "reload"
                    }
                    Reply::Preview(..) => "preview",
                    Reply::Source(tx, r) => {
                        let _ = tx.send(r);
                        "source"
                    }
                };
                self.log.push(format!("reply {name}"));
                None
            }
            Effect::RelayFailover(_) => {
                self.relayed += 1;
                self.log.push("relay failover".to_owned());
                None
            }
            Effect::ReadStats | Effect::WatchHa(_) => None,
            other => {
                self.log
                    .push(format!("{other:?}").chars().take(40).collect());
                None
            }
        }
    }

    /// The log since `from`, without the snapshot entries.
    /// Runs `input` like [`Script::run`]; what it logged.
    fn logged(&mut self, e: &mut Engine, input: Input, now: Now) -> Vec<String> {
        let mark = self.log.len();
        self.run(e, input, now);
        self.log[mark..].to_vec()
    }
}

/// A trusted operator's override of vserver `target` to `state`, and where its answer arrives.
fn vserver_override(
    target: &str,
    state: OverrideState,
) -> (Event, oneshot::Receiver<Result<String, OverrideError>>) {
    let (tx, rx) = oneshot::channel();
    let event = Event::Override {
        kind: OverrideKind::Vserver,
        target: target.to_owned(),
        state,
        caller: op(),
        reply: tx,
    };
    (event, rx)
}

/// A trusted operator.
fn op() -> Caller {
    Caller {
        trusted: true,
        user: "op".to_owned(),
        groups: Vec::new(),
    }
}

fn report(state: HaRole, transitions: u64, now: Now) -> (Input, oneshot::Receiver<bool>) {
    let (tx, rx) = oneshot::channel();
    let view = HaView {
        state,
        since: Some(now.wall),
        transitions,
        last_update: Some(now.wall),
        ..HaView::default()
    };
    (Input::Event(Event::Ha(view, None, tx)), rx)
}

fn health(e: &Engine, healthy: bool, now: Now) -> Input {
    let results = e
        .state()
        .checks()
        .map(|c| {
            let r = CheckResult {
                healthy,
                message: "scripted".to_owned(),
                at: now.wall,
            };
            (c.id, r)
        })
        .collect();
    Input::Event(Event::Health(results, Vec::new()))
}

/// A core past its start-up gate: every check healthy, then ha's first report (BACKUP).
fn started(clock: &Clock, s: &mut Script) -> Engine {
    let mut e = Engine::new(
        loaded("", 0),
        "/nonexistent".into(),
        (true, false),
        clock.at(0.0),
    );
    let h = health(&e, true, clock.at(0.1));
    s.run(&mut e, h, clock.at(0.1));
    let (r, _) = report(HaRole::Backup, 1, clock.at(0.2));
    s.run(&mut e, r, clock.at(0.2));
    e
}

/// A report is answered only once the plane reflects it: not while ncc refuses the apply
/// (nor on the API's fast path: `ha_reflected` stays at the old report), then right after the
/// first apply that gets through, after the snapshot.
#[test]
fn ha_is_answered_only_once_the_plane_reflects_the_report() {
    let clock = Clock(Instant::now());
    let mut s = Script::default();
    let mut e = started(&clock, &mut s);
    assert_eq!(
        s.snap.as_ref().and_then(|n| n.ha_reflected),
        Some((HaRole::Backup, 1))
    );
    s.refuse = true;
    let (r, mut rx) = report(HaRole::Leader, 2, clock.at(1.0));
    assert_eq!(
        s.logged(&mut e, r, clock.at(1.0)),
        [
            "apply refused: 2 services 2 dests {\"10.1.0.1\", \"192.168.255.7\"}",
            "publish"
        ]
    );
    assert!(
        rx.try_recv().is_err(),
        "answered although the plane refused"
    );
    let snap = s.snap.as_ref().expect("published");
    assert_eq!(snap.ha.state, HaRole::Leader);
    assert_eq!(snap.ha_reflected, Some((HaRole::Backup, 1)));
    // Within the backoff (1 s after one refusal) the same state is not tried again.
    assert_eq!(
        s.logged(&mut e, Input::Tick { ha_heard: None }, clock.at(1.5)),
        ["publish"]
    );
    // ncc heals: the next try after the backoff gets through, then ha hears back.
    s.refuse = false;
    assert_eq!(
        s.logged(&mut e, Input::Tick { ha_heard: None }, clock.at(2.1)),
        [
            "apply: 2 services 2 dests {\"10.1.0.1\", \"192.168.255.7\"}",
            "publish",
            "reply ha"
        ]
    );
    assert_eq!(rx.try_recv(), Ok(false));
    assert_eq!(
        s.snap.as_ref().and_then(|n| n.ha_reflected),
        Some((HaRole::Leader, 2))
    );
    // Stepping down: the unicast VIP leaves the plane before ha hears back.
    let (r, mut rx) = report(HaRole::Backup, 3, clock.at(3.0));
    assert_eq!(
        s.logged(&mut e, r, clock.at(3.0)),
        [
            "apply: 1 services 1 dests {\"192.168.255.7\"}",
            "publish",
            "reply ha"
        ]
    );
    assert_eq!(rx.try_recv(), Ok(false));
}

/// BGP withdrawals go out before the services behind them change, and announcements only for
/// what the plane holds.
#[test]
fn bgp_withdraws_before_the_plane_changes_and_announces_only_what_it_holds() {
    let clock = Clock(Instant::now());
    let mut s = Script::default();
    let mut e = started(&clock, &mut s);
    assert!(
        s.log.iter().any(|l| l == "bgp: [\"192.168.255.7\"]"),
        "{:?}",
        s.log
    );
    let announce = s.log.iter().position(|l| l.starts_with("bgp")).unwrap();
    let apply = s.log.iter().position(|l| l.starts_with("apply")).unwrap();
    assert!(
        apply < announce,
        "announced before the plane held it: {:?}",
        s.log
    );
    // The anycast vserver is disabled: its VIP is withdrawn, then the service leaves.
    let (disable, _rx) = vserver_override("any", OverrideState::Disabled);
    assert_eq!(
        s.logged(&mut e, Input::Event(disable), clock.at(1.0)),
        [
            "bgp: []",
            "apply: 0 services 0 dests {}",
            "publish",
            "reply override"
        ]
    );
    // Enabled again while ncc refuses: the service is tried, the VIP is not announced.
    s.refuse = true;
    let (enable, _rx) = vserver_override("any", OverrideState::Enabled);
    assert_eq!(
        s.logged(&mut e, Input::Event(enable), clock.at(2.0)),
        [
            "apply refused: 1 services 1 dests {\"192.168.255.7\"}",
            "publish",
            "reply override"
        ]
    );
    // ncc heals: applied, then announced.
    s.refuse = false;
    assert_eq!(
        s.logged(&mut e, Input::Tick { ha_heard: None }, clock.at(3.5)),
        [
            "apply: 1 services 1 dests {\"192.168.255.7\"}",
            "bgp: [\"192.168.255.7\"]",
            "publish"
        ]
    );
}

/// `failover` on the backup is relayed to the master's engine; on the master it is handed to
/// ha with the reply to its next report; anywhere else it is refused.
#[test]
fn a_failover_is_relayed_by_the_backup_and_taken_by_the_master() {
    let clock = Clock(Instant::now());
    let mut s = Script::default();
    let mut e = started(&clock, &mut s);
    let (tx, _rx) = oneshot::channel();
    s.run(&mut e, Input::Event(Event::Failover(tx)), clock.at(1.0));
    assert_eq!(s.relayed, 1);
    let (r, _) = report(HaRole::Leader, 2, clock.at(2.0));
    s.run(&mut e, r, clock.at(2.0));
    let (tx, mut rx) = oneshot::channel();
    s.run(&mut e, Input::Event(Event::Failover(tx)), clock.at(2.5));
    assert_eq!(s.relayed, 1);
    assert!(rx.try_recv().expect("answered").is_ok());
    // The next report (the same state) is answered with the request.
    let (r, mut rx) = report(HaRole::Leader, 2, clock.at(3.0));
    s.run(&mut e, r, clock.at(3.0));
    assert_eq!(rx.try_recv(), Ok(true));
    // A core without a peer (peer sync off) refuses on the backup rather than relaying.
    let mut lone = Engine::new(
        loaded("", 0),
        "/nonexistent".into(),
        (false, false),
        clock.at(0.0),
    );
    let (r, _) = report(HaRole::Backup, 1, clock.at(0.1));
    s.run(&mut lone, r, clock.at(0.1));
    let (tx, mut rx) = oneshot::channel();
    s.run(&mut lone, Input::Event(Event::Failover(tx)), clock.at(0.2));
    assert_eq!(s.relayed, 1);
    assert!(rx.try_recv().expect("answered").is_err());
}

/// Inputs that arrive while a pass waits for ncc are handled after it, in order.
#[test]
fn inputs_during_a_pass_wait_for_it() {
    let clock = Clock(Instant::now());
    let mut s = Script::default();
    let mut e = started(&clock, &mut s);
    let (r, mut ha_rx) = report(HaRole::Leader, 2, clock.at(1.0));
    let fx = e.handle(r, clock.at(1.0));
    assert!(
        matches!(fx.as_slice(), [Effect::Apply(_)]),
        "the pass waits for the apply: {fx:?}"
    );
    let (disable, mut ov_rx) = vserver_override("uni", OverrideState::Disabled);
    assert!(e.handle(Input::Event(disable), clock.at(1.1)).is_empty());
    assert_eq!(
        s.logged(&mut e, Input::Applied(Ok(Vec::new())), clock.at(1.2)),
        [
            "publish",
            "reply ha",
            "apply: 1 services 1 dests {\"192.168.255.7\"}",
            "publish",
            "reply override"
        ]
    );
    assert_eq!(ha_rx.try_recv(), Ok(false));
    assert!(ov_rx.try_recv().expect("answered").is_ok());
}

/// A config over the churn limit reaches the plane in steps of at most the limit, one every
/// `CONVERGE_EVERY`, driven by the tick.
#[test]
fn the_churn_limit_steps_a_large_change() {
    let clock = Clock(Instant::now());
    let mut s = Script::default();
    let mut e = started(&clock, &mut s);
    // The leader: unicast vservers are served.
    let (r, _) = report(HaRole::Leader, 2, clock.at(0.5));
    s.run(&mut e, r, clock.at(0.5));
    let mut applied = Vec::new();
    let (tx, _rx) = oneshot::channel();
    s.run(
        &mut e,
        Input::Loaded((Ok(loaded("churn_limit = 10", 25)), Some(tx))),
        clock.at(1.0),
    );
    let services = |s: &Script| {
        s.log
            .iter()
            .rev()
            .find(|l| l.starts_with("apply"))
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|n| n.parse::<usize>().ok())
            .expect("an apply")
    };
    applied.push(services(&s));
    for t in 2..=20 {
        // ha keeps reporting (through the API's pulse).
        let now = clock.at(f64::from(t));
        s.run(
            &mut e,
            Input::Tick {
                ha_heard: Some(now.wall),
            },
            now,
        );
        let n = services(&s);
        if applied.last() != Some(&n) {
            applied.push(n);
        }
    }
    // The two services held, then 10 more at a time.
    assert_eq!(applied, [12, 22, 27], "{:?}", s.log);
}
